#include "tasks/worker_pool.h"

#include <unistd.h>

#include "core/ids.h"
#include "core/log.h"
#include "core/metrics.h"
#include "tasks/sandbox.h"
#include "tasks/task_execution.h"

namespace bitmill::tasks {

WorkerPool::WorkerPool(std::shared_ptr<WorkerContext> context)
    : context_(std::move(context)), process_id_(newId("wrk_")) {}

WorkerPool::~WorkerPool() { stop(std::chrono::seconds(0)); }

void WorkerPool::start(int count) {
    log::get("worker")->info("workers starting count={} process={}", count, process_id_);
    for (int index = 0; index < count; ++index) {
        threads_.emplace_back([this, index] { workerLoop(index); });
    }
    threads_.emplace_back([this] { maintenanceLoop(); });
}

void WorkerPool::stop(std::chrono::seconds grace) {
    if (threads_.empty()) {
        return;
    }
    stopping_ = true;
    context_->queue->notify();
    // Running tasks get `grace` to finish; after it their processes are
    // killed and the tasks requeued.
    std::thread abandon_timer([this, grace] {
        auto deadline = std::chrono::steady_clock::now() + grace;
        while (std::chrono::steady_clock::now() < deadline && !abandon_running_) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        abandon_running_ = true;
    });
    for (std::thread& thread : threads_) {
        thread.join();
    }
    threads_.clear();
    abandon_running_ = true;
    abandon_timer.join();
    log::get("worker")->info("workers stopped process={}", process_id_);
}

void WorkerPool::workerLoop(int index) {
    auto logger = log::get("worker");
    std::string worker_id = process_id_ + "-" + std::to_string(index);
    // Start this thread's task host now, so the first task does not wait
    // for it to load the media libraries.
    if (Status started = startTaskHost(context_->config.executable_path); !started.ok()) {
        logger->warn("start task host failed worker={}: {}", worker_id,
                     started.error().toLogString());
    }
    while (!stopping_) {
        auto claimed = context_->queue->claim(worker_id);
        if (!claimed.ok()) {
            logger->warn("claim task failed worker={}: {}", worker_id,
                         claimed.error().toLogString());
            context_->queue->waitForWork(std::chrono::milliseconds(1000));
            continue;
        }
        if (!claimed->has_value()) {
            context_->queue->waitForWork(std::chrono::milliseconds(1000));
            continue;
        }
        metrics::recordTaskClaimed((*claimed)->kind);
        executeTask(*context_, **claimed, worker_id, abandon_running_);
    }
}

void WorkerPool::maintenanceLoop() {
    auto logger = log::get("queue");
    while (!stopping_) {
        auto reclaimed = context_->queue->reclaimExpired();
        if (!reclaimed.ok()) {
            logger->warn("reclaim expired leases failed: {}", reclaimed.error().toLogString());
        } else if (*reclaimed > 0) {
            logger->warn("reclaimed expired task leases count={}", *reclaimed);
            context_->queue->notify();
        }
        for (int i = 0; i < 20 && !stopping_; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    }
}

}  // namespace bitmill::tasks
