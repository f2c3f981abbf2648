// One attempt at one task, on the worker side: prepare the work directory
// and job file, run the task process, follow its progress with heartbeats,
// and publish or fail.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "domain/records.h"
#include "tasks/worker_pool.h"

namespace bitmill::tasks {

// Runs `task` (already claimed by `worker_id`) to its end. `abandon` set to
// true makes it kill the task process and put the task back in the queue
// (shutdown). Errors are recorded on the task, never returned.
void executeTask(const WorkerContext& context, const domain::TaskRecord& task,
                 const std::string& worker_id, const std::atomic<bool>& abandon);

}  // namespace bitmill::tasks
