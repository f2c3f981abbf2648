// Queue dispatch benchmark: how many trivial tasks per second the workers of
// several processes can claim and complete through one Store, without any
// media work. The tasks are inserted first (timed separately), then
// `--workers` child processes, each with its own Store connection and
// TaskQueue, claim and complete until the queue is empty.
//
// usage: bitmill_queue_bench --database-url URL [--tasks N] [--workers W]
// Prints one JSON object: tasks, workers, insert_per_second,
// dispatch_per_second, seconds, and the count completed.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/ids.h"
#include "core/json.h"
#include "db/open_store.h"
#include "queue/queue.h"

namespace {

using namespace bitmill;
using Clock = std::chrono::steady_clock;

struct Options {
    std::string database_url;
    int tasks = 2000;
    int workers = 4;
};

int usage(const std::string& problem) {
    std::cerr << "bitmill_queue_bench: " << problem
              << "\nusage: bitmill_queue_bench --database-url URL [--tasks N] [--workers W]\n";
    return 2;
}

// Claims and completes tasks until a claim finds none; returns the count.
int drainQueue(const std::string& database_url, int index) {
    auto store = db::openStore(database_url, "/tmp");
    if (!store.ok()) {
        std::cerr << "worker " << index << ": " << store.error().toLogString() << "\n";
        return -1;
    }
    queue::TaskQueue task_queue(*store);
    std::string worker_id = newId("wrk_") + "-" + std::to_string(index);
    int done = 0;
    while (true) {
        auto claimed = task_queue.claim(worker_id);
        if (!claimed.ok()) {
            std::cerr << "claim: " << claimed.error().toLogString() << "\n";
            return -1;
        }
        if (!claimed->has_value()) {
            return done;
        }
        auto completed = task_queue.complete((*claimed)->id, worker_id, db::TaskCompletion{});
        if (!completed.ok()) {
            std::cerr << "complete: " << completed.error().toLogString() << "\n";
            return -1;
        }
        ++done;
    }
}

}  // namespace

int main(int argc, char** argv) {
    Options options;
    for (int i = 1; i < argc; ++i) {
        std::string flag = argv[i];
        if (i + 1 >= argc) {
            return usage("missing value after " + flag);
        }
        std::string value = argv[++i];
        if (flag == "--database-url") {
            options.database_url = value;
        } else if (flag == "--tasks") {
            options.tasks = std::atoi(value.c_str());
        } else if (flag == "--workers") {
            options.workers = std::atoi(value.c_str());
        } else {
            return usage("unknown flag " + flag);
        }
    }
    if (options.database_url.empty() || options.tasks < 1 || options.workers < 1) {
        return usage("--database-url is required, and --tasks and --workers must be positive");
    }

    auto store = db::openStore(options.database_url, "/tmp");
    if (!store.ok()) {
        return usage(store.error().toLogString());
    }
    auto project = (*store)->ensureDefaultProject();
    if (!project.ok()) {
        return usage(project.error().toLogString());
    }

    auto insert_start = Clock::now();
    int64_t now = nowMillis();
    for (int i = 0; i < options.tasks; ++i) {
        domain::TaskRecord task;
        task.id = newId("task_");
        task.project_id = project->id;
        task.kind = "image";
        task.options = Json::object();
        task.input_url = "https://example.com/bench.png";
        task.created_by = "bench";
        task.max_attempts = 1;
        task.run_after_ms = now;
        task.created_ms = now;
        task.updated_ms = now;
        if (auto inserted = (*store)->insertTask(task); !inserted.ok()) {
            return usage(inserted.error().toLogString());
        }
    }
    double insert_seconds = std::chrono::duration<double>(Clock::now() - insert_start).count();
    store->reset();

    // Each worker is a process of its own, as on separate machines.
    auto dispatch_start = Clock::now();
    std::vector<pid_t> children;
    std::vector<int> pipes;
    for (int index = 0; index < options.workers; ++index) {
        int fds[2];
        if (pipe(fds) != 0) {
            return usage("pipe failed");
        }
        pid_t pid = fork();
        if (pid == 0) {
            close(fds[0]);
            int done = drainQueue(options.database_url, index);
            ssize_t written = write(fds[1], &done, sizeof(done));
            _exit(written == sizeof(done) && done >= 0 ? 0 : 1);
        }
        close(fds[1]);
        children.push_back(pid);
        pipes.push_back(fds[0]);
    }
    int completed = 0;
    bool failed = false;
    for (size_t i = 0; i < children.size(); ++i) {
        int done = -1;
        if (read(pipes[i], &done, sizeof(done)) != sizeof(done) || done < 0) {
            failed = true;
        } else {
            completed += done;
        }
        close(pipes[i]);
        int status = 0;
        waitpid(children[i], &status, 0);
    }
    double dispatch_seconds = std::chrono::duration<double>(Clock::now() - dispatch_start).count();

    Json result = {{"tasks", options.tasks},
                   {"workers", options.workers},
                   {"completed", completed},
                   {"insert_per_second", options.tasks / insert_seconds},
                   {"dispatch_per_second", completed / dispatch_seconds},
                   {"seconds", dispatch_seconds}};
    std::cout << result.dump() << "\n";
    return failed || completed != options.tasks ? 1 : 0;
}
