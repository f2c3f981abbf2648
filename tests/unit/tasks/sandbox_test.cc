// Checks that sandboxed processes report their output and end states, and
// that a process over a limit or past its time is stopped, whether it is
// executed or forked from a task host.
#include "tasks/sandbox.h"

#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>

#include "core/json.h"

namespace bitmill::tasks {
namespace {

std::string readAll(const ChildProcess& child) {
    std::string out;
    char buffer[256];
    ssize_t got;
    while ((got = read(child.stdoutFd(), buffer, sizeof(buffer))) > 0) {
        out.append(buffer, static_cast<size_t>(got));
    }
    return out;
}

std::string tempDir() { return std::filesystem::temp_directory_path().string(); }

TEST(SandboxTest, ReportsStdoutAndExitCode) {
    auto child = spawnSandboxed({"/bin/sh", "-c", "echo progress 42; exit 3"}, {}, tempDir(), {});
    ASSERT_TRUE(child.ok()) << child.error().message();
    auto exit = waitChild(*child, 5000);
    ASSERT_TRUE(exit.has_value());
    EXPECT_TRUE(exit->exited);
    EXPECT_EQ(exit->code, 3);
    EXPECT_EQ(readAll(*child), "progress 42\n");
}

// Returns the CPU time of the calling thread in milliseconds.
double threadCpuMs() {
    struct timespec now;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    return now.tv_sec * 1e3 + now.tv_nsec / 1e6;
}

// waitChild() sleeps on the child's pidfd until the child ends, so waiting
// takes no CPU time, even after the child has closed its stdout.
TEST(SandboxTest, WaitSleepsAfterStdoutCloses) {
    auto child = spawnSandboxed({"/bin/sh", "-c", "exec >&-; sleep 0.3"}, {}, tempDir(), {});
    ASSERT_TRUE(child.ok()) << child.error().message();
    if (child->exitFd() < 0) {
        killAndReap(*child);
        GTEST_SKIP() << "this kernel has no pidfd_open (Linux 5.3 or later)";
    }
    EXPECT_EQ(readAll(*child), "");

    const double cpu_before = threadCpuMs();
    const auto started = std::chrono::steady_clock::now();
    auto exit = waitChild(*child, 5000);
    const auto waited = std::chrono::steady_clock::now() - started;
    ASSERT_TRUE(exit.has_value());
    EXPECT_TRUE(exit->exited);
    EXPECT_EQ(exit->code, 0);
    EXPECT_GE(waited, std::chrono::milliseconds(200));
    EXPECT_LT(threadCpuMs() - cpu_before, 50.0);
}

TEST(SandboxTest, WaitTimesOutWhileChildRuns) {
    auto child = spawnSandboxed({"/bin/sh", "-c", "sleep 5"}, {}, tempDir(), {});
    ASSERT_TRUE(child.ok()) << child.error().message();
    const auto started = std::chrono::steady_clock::now();
    EXPECT_FALSE(waitChild(*child, 100).has_value());
    EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(100));
    EXPECT_FALSE(killAndReap(*child).exited);
}

TEST(SandboxTest, NamesTheSignalOfACrash) {
    auto child = spawnSandboxed({"/bin/sh", "-c", "kill -SEGV $$"}, {}, tempDir(), {});
    ASSERT_TRUE(child.ok());
    auto exit = waitChild(*child, 5000);
    ASSERT_TRUE(exit.has_value());
    EXPECT_FALSE(exit->exited);
    EXPECT_EQ(exit->signal, SIGSEGV);
    std::string text = describeExit(*exit, SandboxLimits{});
    EXPECT_NE(text.find("signal 11 (SIGSEGV)"), std::string::npos) << text;
}

TEST(SandboxTest, KillsAHangingProcessGroup) {
    auto child = spawnSandboxed({"/bin/sh", "-c", "sleep 60 & sleep 60"}, {}, tempDir(), {});
    ASSERT_TRUE(child.ok());
    EXPECT_FALSE(waitChild(*child, 200).has_value());
    ExitStatus exit = killAndReap(*child);
    EXPECT_FALSE(exit.exited);
    EXPECT_EQ(exit.signal, SIGKILL);
    // The background sleep shared the process group, so it is gone too once
    // init has reaped it.
    bool group_gone = false;
    for (int i = 0; i < 100 && !group_gone; ++i) {
        group_gone = killpg(child->pid(), 0) != 0;
        usleep(20'000);
    }
    EXPECT_TRUE(group_gone);
}

TEST(SandboxTest, AppliesTheCpuLimit) {
    SandboxLimits limits;
    limits.cpu_seconds = 1;
    auto child = spawnSandboxed({"/bin/sh", "-c", "while :; do :; done"}, {}, tempDir(), limits);
    ASSERT_TRUE(child.ok());
    auto exit = waitChild(*child, 20000);
    ASSERT_TRUE(exit.has_value());
    EXPECT_EQ(exit->signal, SIGXCPU);
    EXPECT_NE(describeExit(*exit, limits).find("CPU time limit of 1 s"), std::string::npos);
}

TEST(SandboxTest, PassesExtraEnvironmentAndWorkDirectory) {
    auto child = spawnSandboxed({"/bin/sh", "-c", "echo $BITMILL_PROBE_VALUE; pwd"},
                                {"BITMILL_PROBE_VALUE=seen"}, "/", {});
    ASSERT_TRUE(child.ok());
    ASSERT_TRUE(waitChild(*child, 5000).has_value());
    EXPECT_EQ(readAll(*child), "seen\n/\n");
}

// The tests below fork children from a task host: the bitmill binary that
// CTest names in BITMILL_BINARY, run as `bitmill task-host`.
class HostedSandboxTest : public ::testing::Test {
protected:
    void SetUp() override {
        const char* binary = std::getenv("BITMILL_BINARY");
        if (binary == nullptr || !std::filesystem::exists(binary)) {
            GTEST_SKIP() << "BITMILL_BINARY does not name the bitmill binary";
        }
        binary_ = binary;
        work_dir_ = std::filesystem::temp_directory_path() /
                    ("bitmill-hosted-" + std::to_string(getpid()) + "-" +
                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::create_directories(work_dir_);
    }

    void TearDown() override {
        std::error_code ignored;
        std::filesystem::remove_all(work_dir_, ignored);
    }

    // Runs `body` in a thread of its own, so that it starts with no task
    // host and its host ends with it.
    static void inFreshThread(const std::function<void()>& body) {
        std::thread thread(body);
        thread.join();
    }

    // Writes an image job for `input` into the work directory; returns the
    // job file's path.
    std::string writeImageJob(const std::string& input) const {
        const Json job = {{"task_id", "task_hosted"},
                          {"kind", "image"},
                          {"options", {{"width", 32}, {"format", "jpeg"}}},
                          {"input_path", input},
                          {"input_url", ""},
                          {"work_dir", work_dir_.string()},
                          {"limits", Json::object()},
                          {"url_allow_list", Json::array()}};
        const std::string path = (work_dir_ / "job.json").string();
        std::ofstream(path) << job.dump();
        return path;
    }

    // Writes a 64x64 red PNG with the ffmpeg CLI; returns its path.
    std::string writeRedPng() const {
        const std::string path = (work_dir_ / "red.png").string();
        const std::string command = "ffmpeg -nostdin -v error -y -f lavfi -i color=c=red:s=64x64 "
                                    "-frames:v 1 '" + path + "'";
        EXPECT_EQ(std::system(command.c_str()), 0) << command;
        return path;
    }

    Result<ChildProcess> spawnTask(const std::string& job,
                                   const std::vector<std::string>& environment = {},
                                   const SandboxLimits& limits = {}) const {
        return spawnHosted(binary_, {"run-task", job}, environment, work_dir_.string(), limits);
    }

    std::string binary_;
    std::filesystem::path work_dir_;
};

// Returns the parent process id of `pid` from /proc, or -1.
pid_t parentOf(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(stat, line);
    const size_t close_paren = line.rfind(')');
    if (close_paren == std::string::npos) {
        return -1;
    }
    std::istringstream fields(line.substr(close_paren + 2));
    std::string state;
    pid_t parent = -1;
    fields >> state >> parent;
    return parent;
}

TEST_F(HostedSandboxTest, RunsTaskAsOurChild) {
    inFreshThread([&] {
        const std::string job = writeImageJob(writeRedPng());
        auto child = spawnTask(job);
        ASSERT_TRUE(child.ok()) << child.error().message();
        // A zombie keeps its /proc entry until it is reaped.
        EXPECT_EQ(parentOf(child->pid()), getpid());
        EXPECT_GT(taskHostPidForTest(), 0);
        EXPECT_NE(child->pid(), taskHostPidForTest());
        auto exit = waitChild(*child, 60'000);
        ASSERT_TRUE(exit.has_value());
        EXPECT_TRUE(exit->exited) << describeExit(*exit, {});
        EXPECT_EQ(exit->code, 0);
        EXPECT_EQ(readAll(*child), "progress 0\nprogress 100\n");

        std::ifstream result_file(work_dir_ / "result.json");
        const Json result = Json::parse(result_file, nullptr, false);
        ASSERT_TRUE(result.is_object());
        EXPECT_TRUE(result["error"].is_null()) << result.dump();
        EXPECT_EQ(result["output"]["props"]["width"], 32);
        EXPECT_EQ(result["output"]["props"]["height"], 32);
        EXPECT_EQ(result["output"]["props"]["container"], "jpeg");
    });
}

TEST_F(HostedSandboxTest, KeepsHostBetweenTasks) {
    inFreshThread([&] {
        const std::string job = writeImageJob(writeRedPng());
        for (int round = 0; round < 3; ++round) {
            auto child = spawnTask(job);
            ASSERT_TRUE(child.ok()) << child.error().message();
            const pid_t host = taskHostPidForTest();
            auto exit = waitChild(*child, 60'000);
            ASSERT_TRUE(exit.has_value());
            EXPECT_TRUE(exit->exited) << describeExit(*exit, {});
        EXPECT_EQ(exit->code, 0);
            EXPECT_EQ(taskHostPidForTest(), host) << "round " << round;
        }
    });
}

TEST_F(HostedSandboxTest, HostBindsSymbolsAtStart) {
    inFreshThread([&] {
        const std::string job = writeImageJob(writeRedPng());
        auto child = spawnTask(job);
        ASSERT_TRUE(child.ok()) << child.error().message();
        std::ifstream environ_file("/proc/" + std::to_string(taskHostPidForTest()) + "/environ");
        std::string environment((std::istreambuf_iterator<char>(environ_file)),
                                std::istreambuf_iterator<char>());
        EXPECT_NE(environment.find(std::string("LD_BIND_NOW=1\0", 14)), std::string::npos);
        auto exit = waitChild(*child, 60'000);
        ASSERT_TRUE(exit.has_value());
        EXPECT_TRUE(exit->exited) << describeExit(*exit, {});
    });
}

TEST_F(HostedSandboxTest, NamesTheSignalOfACrash) {
    inFreshThread([&] {
        const std::string job = writeImageJob(writeRedPng());
        auto child = spawnTask(job, {"BITMILL_FAULT_INJECTION=crash"});
        ASSERT_TRUE(child.ok()) << child.error().message();
        auto exit = waitChild(*child, 60'000);
        ASSERT_TRUE(exit.has_value());
        EXPECT_FALSE(exit->exited);
        EXPECT_EQ(exit->signal, SIGSEGV);
    });
}

TEST_F(HostedSandboxTest, KillsAHangingTaskAndKeepsTheHost) {
    inFreshThread([&] {
        const std::string job = writeImageJob(writeRedPng());
        auto hanging = spawnTask(job, {"BITMILL_FAULT_INJECTION=hang"});
        ASSERT_TRUE(hanging.ok()) << hanging.error().message();
        const pid_t host = taskHostPidForTest();
        EXPECT_FALSE(waitChild(*hanging, 300).has_value());
        ExitStatus killed = killAndReap(*hanging);
        EXPECT_FALSE(killed.exited);
        EXPECT_EQ(killed.signal, SIGKILL);

        // The hook was set for that task only.
        auto next = spawnTask(job);
        ASSERT_TRUE(next.ok()) << next.error().message();
        auto exit = waitChild(*next, 60'000);
        ASSERT_TRUE(exit.has_value());
        EXPECT_TRUE(exit->exited) << describeExit(*exit, {});
        EXPECT_EQ(exit->code, 0);
        EXPECT_EQ(taskHostPidForTest(), host);
    });
}

TEST_F(HostedSandboxTest, AppliesTheCpuLimit) {
    inFreshThread([&] {
        const std::string job = writeImageJob(writeRedPng());
        SandboxLimits limits;
        limits.cpu_seconds = 1;
        auto child = spawnTask(job, {"BITMILL_FAULT_INJECTION=spin"}, limits);
        ASSERT_TRUE(child.ok()) << child.error().message();
        auto exit = waitChild(*child, 30'000);
        ASSERT_TRUE(exit.has_value());
        EXPECT_EQ(exit->signal, SIGXCPU) << describeExit(*exit, limits);
    });
}

TEST_F(HostedSandboxTest, RestartsAHostThatDied) {
    inFreshThread([&] {
        const std::string job = writeImageJob(writeRedPng());
        auto first = spawnTask(job);
        ASSERT_TRUE(first.ok()) << first.error().message();
        ASSERT_TRUE(waitChild(*first, 60'000).has_value());
        const pid_t host = taskHostPidForTest();
        ASSERT_GT(host, 0);
        kill(host, SIGKILL);

        auto second = spawnTask(job);
        ASSERT_TRUE(second.ok()) << second.error().message();
        auto exit = waitChild(*second, 60'000);
        ASSERT_TRUE(exit.has_value());
        EXPECT_TRUE(exit->exited) << describeExit(*exit, {});
        EXPECT_EQ(exit->code, 0);
        EXPECT_GT(taskHostPidForTest(), 0);
        EXPECT_NE(taskHostPidForTest(), host);
    });
}

TEST_F(HostedSandboxTest, ExecutesWhenNoHostStarts) {
    inFreshThread([&] {
        // /bin/sh cannot act as a task host, so the command is executed.
        auto child = spawnHosted("/bin/sh", {"-c", "echo executed; pwd"}, {}, "/", {});
        ASSERT_TRUE(child.ok()) << child.error().message();
        auto exit = waitChild(*child, 5000);
        ASSERT_TRUE(exit.has_value());
        EXPECT_TRUE(exit->exited);
        EXPECT_EQ(exit->code, 0);
        EXPECT_EQ(readAll(*child), "executed\n/\n");
        EXPECT_EQ(taskHostPidForTest(), -1);
    });
}

}  // namespace
}  // namespace bitmill::tasks
