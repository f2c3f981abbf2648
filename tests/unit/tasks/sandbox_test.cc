// Checks that sandboxed processes report their output and end states, and
// that a process over a limit or past its time is stopped.
#include "tasks/sandbox.h"

#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

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

}  // namespace
}  // namespace bitmill::tasks
