// Workers of one process. Each claims a task from the queue and runs it in a
// sandboxed task process, renewing the lease with heartbeats that carry
// progress. It then publishes the outputs (blobs first, then the rows in one
// transaction), or fails the task or schedules a retry.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/config.h"
#include "db/store.h"
#include "queue/queue.h"
#include "storage/blob_store.h"

namespace bitmill::tasks {

struct WorkerContext {
    Config config;
    db::StorePtr store;
    storage::BlobStorePtr blobs;
    std::shared_ptr<queue::TaskQueue> queue;
};

class WorkerPool {
public:
    explicit WorkerPool(std::shared_ptr<WorkerContext> context);
    ~WorkerPool();

    // Starts `count` worker threads and one lease-reclaim thread.
    void start(int count);

    // Stops claiming, lets running tasks finish for up to `grace`, then
    // kills their processes and puts the tasks back in the queue.
    void stop(std::chrono::seconds grace);

private:
    void workerLoop(int index);
    void maintenanceLoop();

    std::shared_ptr<WorkerContext> context_;
    std::string process_id_;
    std::atomic<bool> stopping_{false};
    std::atomic<bool> abandon_running_{false};
    std::vector<std::thread> threads_;
};

}  // namespace bitmill::tasks
