#include "tasks/sandbox.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

extern char** environ;

namespace bitmill::tasks {

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(other.pid_), stdout_fd_(other.stdout_fd_) {
    other.pid_ = -1;
    other.stdout_fd_ = -1;
}

ChildProcess::~ChildProcess() { closeStdout(); }

void ChildProcess::closeStdout() {
    if (stdout_fd_ >= 0) {
        close(stdout_fd_);
        stdout_fd_ = -1;
    }
}

Result<ChildProcess> spawnSandboxed(const std::vector<std::string>& argv,
                                    const std::vector<std::string>& extra_environment,
                                    const std::string& work_dir, const SandboxLimits& limits) {
    // Everything the child needs is built before fork: between fork and exec
    // in a threaded process only async-signal-safe calls are allowed.
    std::vector<char*> arguments;
    for (const std::string& argument : argv) {
        arguments.push_back(const_cast<char*>(argument.c_str()));
    }
    arguments.push_back(nullptr);
    std::vector<std::string> environment_storage;
    for (char** entry = environ; *entry != nullptr; ++entry) {
        environment_storage.emplace_back(*entry);
    }
    environment_storage.push_back("TMPDIR=" + work_dir);
    for (const std::string& entry : extra_environment) {
        environment_storage.push_back(entry);
    }
    std::vector<char*> environment;
    for (const std::string& entry : environment_storage) {
        environment.push_back(const_cast<char*>(entry.c_str()));
    }
    environment.push_back(nullptr);

    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
        return Error::unavailable("start task process: pipe failed", strerror(errno));
    }
    pid_t parent_pid = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(pipe_fds[0]);
        close(pipe_fds[1]);
        return Error::unavailable("start task process: fork failed", strerror(errno));
    }
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent_pid) {
            _exit(126);  // the parent died before prctl took effect
        }
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        if (limits.memory_bytes > 0) {
            struct rlimit memory = {static_cast<rlim_t>(limits.memory_bytes),
                                    static_cast<rlim_t>(limits.memory_bytes)};
            setrlimit(RLIMIT_AS, &memory);
        }
        if (limits.cpu_seconds > 0) {
            // The soft limit sends SIGXCPU; the hard limit SIGKILLs a process
            // that ignores it.
            struct rlimit cpu = {static_cast<rlim_t>(limits.cpu_seconds),
                                 static_cast<rlim_t>(limits.cpu_seconds + 5)};
            setrlimit(RLIMIT_CPU, &cpu);
        }
        if (chdir(work_dir.c_str()) != 0) {
            _exit(127);
        }
        dup2(pipe_fds[1], STDOUT_FILENO);
        int null_fd = open("/dev/null", O_RDONLY);
        if (null_fd >= 0) {
            dup2(null_fd, STDIN_FILENO);
        }
        syscall(SYS_close_range, 3U, ~0U, 0U);
        execve(arguments[0], arguments.data(), environment.data());
        _exit(127);
    }
    close(pipe_fds[1]);
    setpgid(pid, pid);  // also from the parent, so killpg works at once
    fcntl(pipe_fds[0], F_SETFL, fcntl(pipe_fds[0], F_GETFL) | O_NONBLOCK);
    return ChildProcess(pid, pipe_fds[0]);
}

namespace {

ExitStatus toExitStatus(int raw) {
    ExitStatus status;
    if (WIFEXITED(raw)) {
        status.exited = true;
        status.code = WEXITSTATUS(raw);
    } else if (WIFSIGNALED(raw)) {
        status.signal = WTERMSIG(raw);
    }
    return status;
}

}  // namespace

std::optional<ExitStatus> waitChild(const ChildProcess& child, int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
        int raw = 0;
        pid_t done = waitpid(child.pid(), &raw, timeout_ms < 0 ? 0 : WNOHANG);
        if (done == child.pid()) {
            return toExitStatus(raw);
        }
        if (done < 0 && errno != EINTR) {
            return ExitStatus{false, 0, SIGKILL};  // already reaped elsewhere
        }
        if (timeout_ms >= 0 && std::chrono::steady_clock::now() >= deadline) {
            return std::nullopt;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

ExitStatus killAndReap(const ChildProcess& child) {
    killpg(child.pid(), SIGKILL);
    kill(child.pid(), SIGKILL);
    return waitChild(child, -1).value_or(ExitStatus{false, 0, SIGKILL});
}

std::string describeExit(const ExitStatus& status, const SandboxLimits& limits) {
    if (status.exited) {
        return "the task process exited with code " + std::to_string(status.code);
    }
    if (status.signal == SIGXCPU) {
        return "the task process exceeded the CPU time limit of " +
               std::to_string(limits.cpu_seconds) + " s (task_cpu_limit)";
    }
    std::string name = sigabbrev_np(status.signal) != nullptr
                           ? std::string("SIG") + sigabbrev_np(status.signal)
                           : "unknown";
    std::string text = "the task process was killed by signal " +
                       std::to_string(status.signal) + " (" + name + ")";
    if (status.signal == SIGABRT || status.signal == SIGKILL || status.signal == SIGSEGV) {
        if (limits.memory_bytes > 0) {
            text += "; it may have run out of its memory limit of " +
                    std::to_string(limits.memory_bytes >> 20) + " MiB (task_memory_limit_mb)";
        }
    }
    return text;
}

}  // namespace bitmill::tasks
