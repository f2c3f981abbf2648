// Queue policy on top of the Store's atomic task operations.
#include "queue/queue.h"

#include <algorithm>

#include "core/clock.h"
#include "core/log.h"

namespace bitmill::queue {

namespace {

// Bounds stored wake-ups, so a burst of enqueues with no idle worker
// causes at most this many empty claims later.
constexpr int64_t kMaxPendingWakeups = 1024;

}  // namespace

int64_t retryDelayMs(const QueueOptions& options, int attempts) {
    int64_t delay = std::max<int64_t>(options.backoff_base_ms, 0);
    // Double once per attempt after the first, stopping at the cap (which
    // also keeps the shift from overflowing).
    for (int i = 1; i < attempts && delay < options.backoff_max_ms; ++i) {
        delay *= 2;
    }
    return std::min(delay, options.backoff_max_ms);
}

TaskQueue::TaskQueue(db::StorePtr store, QueueOptions options, ClockFunction clock)
    : store_(std::move(store)), options_(options), clock_(std::move(clock)) {
    if (!clock_) {
        clock_ = nowMillis;
    }
    // Another process enqueued or requeued a task: wake every idle worker,
    // because a notification may stand for several tasks.
    store_->setTaskWakeHandler([this] { notifyAll(); });
}

TaskQueue::~TaskQueue() { store_->setTaskWakeHandler(nullptr); }

Status TaskQueue::enqueue(const domain::TaskRecord& task) {
    BM_RETURN_IF_ERROR(store_->insertTask(task));
    notify();
    return okStatus();
}

Result<std::optional<domain::TaskRecord>> TaskQueue::claim(const std::string& worker_id) {
    return store_->claimTask(worker_id, now(), options_.lease_ms);
}

Status TaskQueue::heartbeat(const std::string& task_id, const std::string& worker_id,
                            int progress) {
    int64_t now_ms = now();
    return store_->heartbeatTask(task_id, worker_id, progress, now_ms + options_.lease_ms, now_ms);
}

Status TaskQueue::complete(const std::string& task_id, const std::string& worker_id,
                           const db::TaskCompletion& completion) {
    return store_->completeTask(task_id, worker_id, completion, now());
}

Status TaskQueue::fail(const std::string& task_id, const std::string& worker_id,
                       const Error& error, int attempts, int max_attempts) {
    int64_t now_ms = now();
    if (error.retryable() && attempts < max_attempts) {
        int64_t delay_ms = retryDelayMs(options_, attempts);
        BM_RETURN_IF_ERROR(
            store_->retryTask(task_id, worker_id, error.message(), now_ms + delay_ms, now_ms));
        log::get("queue")->warn("task retry scheduled task_id={} attempt={} max_attempts={} "
                                "delay_ms={} error=\"{}\"",
                                task_id, attempts, max_attempts, delay_ms, error.toLogString());
        return okStatus();
    }
    return store_->failTask(task_id, worker_id, error.message(), now_ms);
}

Result<int> TaskQueue::reclaimExpired() {
    BM_ASSIGN_OR_RETURN(int changed, store_->reclaimExpiredLeases(now()));
    if (changed > 0) {
        log::get("queue")->warn("reclaimed tasks with expired leases count={}", changed);
        // Some of the changed tasks may have failed rather than returned to
        // pending; waking a worker too many only costs an empty claim.
        wake(changed);
    }
    return changed;
}

void TaskQueue::notify() { wake(1); }

void TaskQueue::wake(int64_t count) {
    {
        std::lock_guard<std::mutex> lock(wake_mutex_);
        pending_wakeups_ = std::min(pending_wakeups_ + count, kMaxPendingWakeups);
    }
    if (count == 1) {
        wake_condition_.notify_one();
    } else {
        wake_condition_.notify_all();
    }
}

void TaskQueue::notifyAll() {
    {
        std::lock_guard<std::mutex> lock(wake_mutex_);
        ++broadcast_generation_;
    }
    wake_condition_.notify_all();
}

bool TaskQueue::waitForWork(std::chrono::milliseconds max_wait) {
    std::unique_lock<std::mutex> lock(wake_mutex_);
    uint64_t generation = broadcast_generation_;
    bool woken = wake_condition_.wait_for(lock, max_wait, [&] {
        return pending_wakeups_ > 0 || broadcast_generation_ != generation;
    });
    if (!woken) {
        return false;
    }
    if (pending_wakeups_ > 0) {
        --pending_wakeups_;
    }
    return true;
}

}  // namespace bitmill::queue
