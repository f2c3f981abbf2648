// The task queue as workers and the API see it: claiming with a lease,
// heartbeats, completion, failure with retry and exponential backoff, and a
// wake-up signal so idle workers sleep instead of polling the database.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "core/error.h"
#include "db/store.h"
#include "domain/records.h"

namespace bitmill::queue {

struct QueueOptions {
    // How long a claim or heartbeat keeps a task leased. A worker should
    // heartbeat several times within this, so one late beat loses nothing.
    int64_t lease_ms = 30'000;
    // Delay before the first retry; it doubles with each further attempt.
    int64_t backoff_base_ms = 5'000;
    // Upper bound of the retry delay.
    int64_t backoff_max_ms = 300'000;
};

// Returns the delay before retrying after failed attempt number `attempts`
// (1-based): base * 2^(attempts - 1), capped at max.
int64_t retryDelayMs(const QueueOptions& options, int attempts);

// Milliseconds since the Unix epoch; replaceable in tests.
using ClockFunction = std::function<int64_t()>;

// Thread-safe. The wake-up signal is in-process, fed also by the store's
// task wake handler when the store is shared by several processes
// (PostgreSQL's LISTEN/NOTIFY). Workers still wait at most `max_wait`, so
// they also see retries whose backoff ended.
class TaskQueue {
public:
    explicit TaskQueue(db::StorePtr store, QueueOptions options = {},
                       ClockFunction clock = nullptr);
    ~TaskQueue();
    TaskQueue(const TaskQueue&) = delete;
    TaskQueue& operator=(const TaskQueue&) = delete;

    const QueueOptions& options() const { return options_; }

    // Inserts `task` and wakes one idle worker. Errors as Store::insertTask.
    Status enqueue(const domain::TaskRecord& task);

    // Claims the oldest due pending task for `worker_id`, leased for
    // lease_ms; nullopt when none is due. The caller must heartbeat, then
    // complete or fail it.
    Result<std::optional<domain::TaskRecord>> claim(const std::string& worker_id);

    // Extends the lease by lease_ms from now and stores `progress` (0-100).
    // Conflict means the task was cancelled or its lease was lost: the
    // worker must stop and discard its outputs.
    Status heartbeat(const std::string& task_id, const std::string& worker_id, int progress);

    // Marks the task completed and publishes `completion` atomically.
    // Conflict as for heartbeat, and then nothing was published.
    Status complete(const std::string& task_id, const std::string& worker_id,
                    const db::TaskCompletion& completion);

    // Records a failed attempt. A retryable `error` with attempts left
    // (attempts < max_attempts, both from the claimed task) puts the task
    // back to pending after retryDelayMs; anything else fails the task with
    // error.message(). Conflict as for heartbeat.
    Status fail(const std::string& task_id, const std::string& worker_id, const Error& error,
                int attempts, int max_attempts);

    // Requeues or fails tasks whose lease expired (see
    // Store::reclaimExpiredLeases) and wakes workers for the requeued ones.
    // Returns how many tasks changed.
    Result<int> reclaimExpired();

    // Wakes one waiting worker, or the next one to wait if none is waiting,
    // so a notification sent between a worker's empty claim and its wait is
    // not lost.
    void notify();
    // Wakes every worker waiting now (shutdown, or many tasks became due).
    void notifyAll();
    // Blocks until notify() or notifyAll() or `max_wait` passes. Returns true
    // when woken by a notification, false on timeout.
    bool waitForWork(std::chrono::milliseconds max_wait);

private:
    int64_t now() const { return clock_(); }
    // Stores `count` wake-ups and wakes up to that many waiting workers.
    void wake(int64_t count);

    db::StorePtr store_;
    QueueOptions options_;
    ClockFunction clock_;

    std::mutex wake_mutex_;
    std::condition_variable wake_condition_;
    // Notifications not yet taken by a waiting worker.
    int64_t pending_wakeups_ = 0;
    // Incremented by notifyAll(), so every current waiter detects a change.
    uint64_t broadcast_generation_ = 0;
};

}  // namespace bitmill::queue
