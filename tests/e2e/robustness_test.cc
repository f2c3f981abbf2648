// The server under failure: restart after SIGKILL with queued and running
// tasks, cancelling a running task, task processes that crash, hang or run
// out of memory (through the BITMILL_FAULT_INJECTION hook and the task
// limits), and graceful shutdown on SIGTERM.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "e2e_test.h"

namespace bitmill::e2e {
namespace {

using std::chrono::seconds;

class RobustnessTest : public E2eTest {
protected:
    static std::filesystem::path smallClip() {
        VideoSpec spec;
        spec.seconds = 1;
        return makeVideo(spec);
    }

    // A clip whose H.264 encode at 1280x720 (500 frames) takes several
    // seconds even with a fast preset, long enough to be caught running.
    static std::filesystem::path longClip() {
        VideoSpec spec;
        spec.width = 640;
        spec.height = 360;
        spec.seconds = 20;
        return makeVideo(spec);
    }

    static Json slowTaskBody(const Json& input) {
        return {{"kind", "video"}, {"file_id", input["id"]}, {"width", 1280}};
    }

    // Processes in `after` that are not in `before`: the processes started
    // for a task between two snapshots of ServerProcess::childProcesses().
    static std::vector<pid_t> startedBetween(const std::vector<pid_t>& before,
                                             const std::vector<pid_t>& after) {
        std::vector<pid_t> started;
        for (pid_t pid : after) {
            if (std::find(before.begin(), before.end(), pid) == before.end()) {
                started.push_back(pid);
            }
        }
        return started;
    }

    // Waits up to `timeout` for every process of `pids` to exit; returns the
    // ones still running.
    static std::vector<pid_t> waitForExit(const std::vector<pid_t>& pids, seconds timeout) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        std::vector<pid_t> alive = pids;
        while (true) {
            alive.erase(std::remove_if(alive.begin(), alive.end(),
                                       [](pid_t pid) { return !processAlive(pid); }),
                        alive.end());
            if (alive.empty() || std::chrono::steady_clock::now() >= deadline) {
                return alive;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    }

    static bool processAlive(pid_t pid) {
        std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
        std::string line;
        if (!std::getline(stat, line)) {
            return false;
        }
        size_t close_paren = line.rfind(')');
        return close_paren != std::string::npos && close_paren + 2 < line.size() &&
               line[close_paren + 2] != 'Z';
    }
};

TEST_F(RobustnessTest, QueuedTasksSurviveKill) {
    ServerProcess& bitmill = server();
    Json input = api().uploadFile(smallClip());
    std::vector<std::string> ids;
    for (int width : {96, 128, 160}) {
        ids.push_back(api().createTask({{"kind", "video"}, {"file_id", input["id"]},
                                        {"width", width}})["id"]
                          .get<std::string>());
    }
    ExitStatus killed = bitmill.killHard();
    EXPECT_EQ(killed.signal, SIGKILL) << killed.describe();

    bitmill.restart();
    ApiSession session = sessionFor(bitmill);
    for (const auto& id : ids) {
        Json task = session.waitForTask(id, seconds(180));
        EXPECT_TRUE(taskCompleted(task));
    }
    EXPECT_EQ(session.getJson("/tasks").size(), 3u) << "no task was lost or duplicated";
}

TEST_F(RobustnessTest, RunningTaskIsRetriedAfterKill) {
    ServerProcess& bitmill = server();
    Json input = api().uploadFile(longClip());
    std::string id = api().createTask(slowTaskBody(input))["id"];
    api().waitForStatus(id, "processing", seconds(60));
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    if (bitmill.scaledOut()) {
        // The task runs in the worker process: kill that one. Its lease
        // expires and the restarted worker, a new worker id, retries it.
        bitmill.killWorker(0);
        bitmill.startWorker(0);
    } else {
        bitmill.killHard();
        bitmill.restart();
    }
    ApiSession session = sessionFor(bitmill);
    Json task = session.waitForTask(id, seconds(400));
    ASSERT_TRUE(taskCompleted(task));
    EXPECT_EQ(task.value("attempts", Json()), 2) << "one interrupted attempt, one retry";
    ProbeResult probe = probeMedia(downloadOutput(session, task));
    EXPECT_NEAR(probe.duration(), 20.0, 0.3);
    if (!bitmill.scaledOut()) {
        // Stored bytes: the input and one output. Nothing of the killed
        // attempt is left, even if it stored its output before dying.
        std::vector<std::string> stored;
        for (const auto& entry :
             std::filesystem::recursive_directory_iterator(bitmill.dataDir() / "files")) {
            std::string relative = entry.path().lexically_relative(bitmill.dataDir() / "files");
            if (entry.is_regular_file() && relative.rfind(".tmp", 0) != 0) {
                stored.push_back(relative);
            }
        }
        EXPECT_EQ(stored.size(), 2u) << ::testing::PrintToString(stored);
    }
}

TEST_F(RobustnessTest, CancelStopsRunningTask) {
    Json input = api().uploadFile(longClip());
    size_t files_before = api().getJson("/files").size();
    std::vector<pid_t> idle = server().childProcesses();
    std::string id = api().createTask(slowTaskBody(input))["id"];
    api().waitForStatus(id, "processing", seconds(60));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    std::vector<pid_t> task_processes = startedBetween(idle, server().childProcesses());
    EXPECT_FALSE(task_processes.empty()) << "no task process found in the server's group";

    HttpResponse response = api().api().post("/tasks/" + id + "/cancel", Json::object());
    ASSERT_EQ(response.status, 200) << response.describe();
    EXPECT_EQ(response.json()["status"], "cancelled");

    std::vector<pid_t> survivors = waitForExit(task_processes, seconds(15));
    EXPECT_TRUE(survivors.empty()) << "task processes still running after cancel: "
                                   << ::testing::PrintToString(survivors);

    std::this_thread::sleep_for(std::chrono::seconds(2));
    Json task = api().getTask(id);
    EXPECT_EQ(task["status"], "cancelled") << "cancel is final: " << task.dump();
    EXPECT_TRUE(task["output"].is_null());
    EXPECT_EQ(api().getJson("/files").size(), files_before) << "no output file was kept";
    EXPECT_TRUE(isHealthy(server()));
}

TEST_F(RobustnessTest, CancelPendingTask) {
    ServerOptions options;
    options.workers = 1;
    ServerProcess& bitmill = startServer(options);
    ApiSession session = sessionFor(bitmill);
    Json input = session.uploadFile(longClip());
    // The only worker is busy with the first task, so the second one waits.
    std::string busy = session.createTask(slowTaskBody(input))["id"];
    std::string queued = session.createTask(slowTaskBody(input))["id"];
    HttpResponse response = session.api().post("/tasks/" + queued + "/cancel", Json::object());
    ASSERT_EQ(response.status, 200) << response.describe();
    EXPECT_EQ(response.json()["status"], "cancelled");
    session.api().post("/tasks/" + busy + "/cancel", Json::object());
    EXPECT_EQ(session.getTask(queued)["status"], "cancelled");
}

TEST_F(RobustnessTest, CrashingTaskFailsAndServerLivesOn) {
    ServerProcess& bitmill = server();
    Json input = api().uploadFile(smallClip());
    bitmill.stop();
    bitmill.setEnvironment("BITMILL_FAULT_INJECTION", "crash");
    bitmill.setEnvironment("BITMILL_TASK_MAX_ATTEMPTS", "1");
    bitmill.restart();
    ApiSession session = sessionFor(bitmill);

    Json task = session.runTask({{"kind", "video"}, {"file_id", input["id"]}, {"width", 96}},
                                seconds(120));
    ASSERT_TRUE(taskFailedWithError(task));
    std::string error = task["error"];
    EXPECT_TRUE(containsText(error, "SIGSEGV") || containsText(error, "signal 11") ||
                containsText(error, "segmentation"))
        << "error does not name the signal: " << error;
    EXPECT_TRUE(task["output"].is_null());
    EXPECT_TRUE(isHealthy(bitmill));

    // The worker loop still runs tasks (they crash too while the hook is on).
    Json second = session.runTask({{"kind", "image"}, {"file_id", input["id"]}}, seconds(120));
    EXPECT_TRUE(taskFailedWithError(second));

    bitmill.stop();
    bitmill.unsetEnvironment("BITMILL_FAULT_INJECTION");
    bitmill.restart();
    ApiSession healthy = sessionFor(bitmill);
    Json third = healthy.runTask({{"kind", "video"}, {"file_id", input["id"]}, {"width", 96}},
                                 seconds(120));
    EXPECT_TRUE(taskCompleted(third));
}

// Returns the user and system CPU time of `pid` in seconds, read from
// /proc, or -1 when the file cannot be parsed.
double processCpuSeconds(pid_t pid) {
    std::ifstream stat_file("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
    // The command name may contain spaces, so fields are counted from the
    // last ')'. State is field 3, utime field 14 and stime field 15.
    std::istringstream fields(stat.substr(stat.rfind(')') + 2));
    std::vector<std::string> values;
    for (std::string value; fields >> value;) {
        values.push_back(value);
    }
    if (values.size() < 13) {
        return -1;
    }
    return (std::stod(values[11]) + std::stod(values[12])) / sysconf(_SC_CLK_TCK);
}

TEST_F(RobustnessTest, WorkerSleepsWhileTaskEndsQuietly) {
    ServerProcess& bitmill = server();
    Json input = api().uploadFile(smallClip());
    bitmill.stop();
    bitmill.setEnvironment("BITMILL_FAULT_INJECTION", "quiet-pause");
    bitmill.restart();
    ApiSession session = sessionFor(bitmill);

    // The scale-out deployment runs tasks in a separate worker process.
    const pid_t worker = bitmill.workerProcessCount() > 0 ? bitmill.workerPid(0) : bitmill.pid();
    const double cpu_before = processCpuSeconds(worker);
    Json task = session.runTask({{"kind", "image"}, {"file_id", input["id"]}, {"width", 16}},
                                seconds(60));
    const double cpu_used = processCpuSeconds(worker) - cpu_before;
    bitmill.stop();
    bitmill.unsetEnvironment("BITMILL_FAULT_INJECTION");
    bitmill.restart();

    EXPECT_TRUE(taskCompleted(task)) << task.dump();
    // The task process was silent for 2 s. A worker that polled its closed
    // stdout in a loop used most of that time as CPU time.
    ASSERT_GE(cpu_before, 0);
    EXPECT_LT(cpu_used, 0.5) << "the worker's process used " << cpu_used << " s of CPU";
}

TEST_F(RobustnessTest, HangingTaskHitsTimeLimit) {
    ServerProcess& bitmill = server();
    Json input = api().uploadFile(smallClip());
    bitmill.stop();
    bitmill.setEnvironment("BITMILL_FAULT_INJECTION", "hang");
    bitmill.setEnvironment("BITMILL_TASK_TIMEOUT", "3");
    bitmill.setEnvironment("BITMILL_TASK_MAX_ATTEMPTS", "1");
    bitmill.restart();
    ApiSession session = sessionFor(bitmill);

    std::vector<pid_t> idle = bitmill.childProcesses();
    auto started = std::chrono::steady_clock::now();
    std::string id =
        session.createTask({{"kind", "video"}, {"file_id", input["id"]}, {"width", 96}})["id"];
    session.waitForStatus(id, "processing", seconds(30));
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    std::vector<pid_t> task_processes = startedBetween(idle, bitmill.childProcesses());
    EXPECT_FALSE(task_processes.empty()) << "no task process found in the server's group";
    Json task = session.waitForTask(id, seconds(60));
    auto elapsed = std::chrono::steady_clock::now() - started;

    ASSERT_TRUE(taskFailedWithError(task));
    std::string error = task["error"];
    EXPECT_TRUE(containsText(error, "3")) << "error does not name the limit: " << error;
    EXPECT_TRUE(containsText(error, "time") || containsText(error, "deadline"))
        << "error does not say it ran out of time: " << error;
    EXPECT_LT(elapsed, seconds(30)) << "the 3 s limit was not enforced promptly";
    std::vector<pid_t> survivors = waitForExit(task_processes, seconds(5));
    EXPECT_TRUE(survivors.empty()) << "the hanging task process was not killed: "
                                   << ::testing::PrintToString(survivors);
    EXPECT_TRUE(isHealthy(bitmill));
}

TEST_F(RobustnessTest, MemoryLimitFailsTaskNotServer) {
    ServerOptions options;
    options.environment["BITMILL_MAX_IMAGE_PIXELS"] = "300000000";
    ServerProcess& bitmill = startServer(options);
    Json input = sessionFor(bitmill).uploadFile(makeHugeJpeg());
    bitmill.stop();
    bitmill.setEnvironment("BITMILL_TASK_MEMORY_LIMIT_MB", "64");
    bitmill.setEnvironment("BITMILL_TASK_MAX_ATTEMPTS", "1");
    bitmill.restart();
    ApiSession session = sessionFor(bitmill);

    // Full-size PNG output needs the whole 280 MP image decoded.
    Json task = session.runTask({{"kind", "image"}, {"file_id", input["id"]}, {"format", "png"}},
                                seconds(240));
    ASSERT_TRUE(taskFailedWithError(task));
    EXPECT_TRUE(task["output"].is_null());
    EXPECT_TRUE(isHealthy(bitmill));
    EXPECT_TRUE(bitmill.running());
}

TEST_F(RobustnessTest, SigtermExitsWithCodeZero) {
    ServerProcess& bitmill = server();
    api().uploadFile(smallClip());
    ExitStatus status = bitmill.stop(seconds(30));
    EXPECT_TRUE(status.exited) << status.describe();
    EXPECT_EQ(status.code, 0) << status.describe();
}

TEST_F(RobustnessTest, SigtermDuringTaskThenRestartCompletesIt) {
    ServerProcess& bitmill = server();
    Json input = api().uploadFile(longClip());
    std::string id = api().createTask(slowTaskBody(input))["id"];
    api().waitForStatus(id, "processing", seconds(60));
    ExitStatus status = bitmill.stop(seconds(60));
    EXPECT_TRUE(status.exited) << status.describe();
    EXPECT_EQ(status.code, 0) << status.describe();

    bitmill.restart();
    ApiSession session = sessionFor(bitmill);
    Json task = session.waitForTask(id, seconds(400));
    EXPECT_TRUE(taskCompleted(task));
}

TEST_F(RobustnessTest, DataSurvivesRestart) {
    ServerProcess& bitmill = server();
    Json file = api().uploadFile(smallClip());
    Json task = api().runTask({{"kind", "image"}, {"file_id", file["id"]}, {"width", 64}});
    ASSERT_TRUE(taskCompleted(task));
    bitmill.stop();
    bitmill.restart();
    ApiSession session = sessionFor(bitmill);
    EXPECT_EQ(session.getJson("/files/" + file["id"].get<std::string>())["id"], file["id"]);
    Json again = session.getTask(task["id"]);
    EXPECT_EQ(again["status"], "completed");
    // The server builds delivery URLs from its new port, so the file is
    // fetched through its current record.
    Json output = session.getJson("/files/" + task["output"]["id"].get<std::string>());
    EXPECT_EQ(fetchUrl(output["url"]).status, 200) << output.dump();
}

TEST_F(RobustnessTest, SecondServerOnSameDataDirIsRejected) {
    CommandResult second = ServerProcess::runCli(
        {"serve", "--data-dir", server().dataDir().string(), "--listen", "127.0.0.1:0",
         "--delivery-listen", "127.0.0.1:0"});
    EXPECT_EQ(second.exit_code, 1) << second.describe();
    EXPECT_NE(second.stderr_text.find("another bitmill process is using the data directory"),
              std::string::npos)
        << second.describe();
    EXPECT_TRUE(server().running());
}

}  // namespace
}  // namespace bitmill::e2e
