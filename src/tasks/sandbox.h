// Starts bitmill's own binary as a child process under resource limits.
// The child gets an address-space limit (RLIMIT_AS), a CPU-time limit
// (RLIMIT_CPU), no core dumps, its own process group and working directory,
// and dies with its parent. A hostile input can then end only that process.
// A child is either executed anew (spawnSandboxed) or forked from a task
// host that has loaded and initialized the libraries once (spawnHosted).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"

namespace bitmill::tasks {

struct SandboxLimits {
    int64_t memory_bytes = 0;  // 0 means unlimited
    int cpu_seconds = 0;       // 0 means unlimited
};

// A started child. The owner must reap it with waitChild() or
// killAndReap(); the destructor only closes the pipe.
class ChildProcess {
public:
    ChildProcess(pid_t pid, int stdout_fd);
    ChildProcess(ChildProcess&& other) noexcept;
    ChildProcess& operator=(ChildProcess&&) = delete;
    ~ChildProcess();

    pid_t pid() const { return pid_; }
    // Read end of the child's stdout, non-blocking; -1 once closed.
    int stdoutFd() const { return stdout_fd_; }
    void closeStdout();
    // Pidfd of the child, which poll() reports readable once the child has
    // exited, or -1 on kernels without pidfd_open (before Linux 5.3).
    int exitFd() const { return exit_fd_; }

private:
    pid_t pid_;
    int stdout_fd_;
    int exit_fd_;
};

// Exit code or signal of a child that ended.
struct ExitStatus {
    bool exited = false;  // true: exited with `code`; false: killed by `signal`
    int code = 0;
    int signal = 0;
};

// Starts `argv` (argv[0] is the executable path) in `work_dir` with
// `limits`, extra environment entries "NAME=value" added to ours, and its
// stdout on a pipe. stderr is inherited, so its log lines reach ours.
Result<ChildProcess> spawnSandboxed(const std::vector<std::string>& argv,
                                    const std::vector<std::string>& extra_environment,
                                    const std::string& work_dir, const SandboxLimits& limits);

// Waits up to `timeout_ms` for the child to end (-1 waits forever);
// returns nullopt when it is still running.
std::optional<ExitStatus> waitChild(const ChildProcess& child, int timeout_ms);

// Kills the child's whole process group with SIGKILL and reaps it.
ExitStatus killAndReap(const ChildProcess& child);

// Describes an abnormal end for a task error, e.g. "the task process was
// killed by signal 11 (SIGSEGV)"; names the CPU limit for SIGXCPU.
std::string describeExit(const ExitStatus& status, const SandboxLimits& limits);

// Starts `executable` with `arguments` (e.g. {"run-task", JOB_FILE}) like
// spawnSandboxed: same limits, environment, working directory, stdout pipe
// and process group, and the child is a child of this process, so
// waitChild(), killAndReap() and describeExit() apply unchanged. The child
// is forked from this thread's task host (`executable task-host`, see
// serveTaskHost), which this call starts on first use and restarts when it
// died. The host and its children die with the calling thread. When no host
// can be started or reached, the child is executed with spawnSandboxed.
Result<ChildProcess> spawnHosted(const std::string& executable,
                                 const std::vector<std::string>& arguments,
                                 const std::vector<std::string>& extra_environment,
                                 const std::string& work_dir, const SandboxLimits& limits);

// Starts the calling thread's task host now instead of at the first
// spawnHosted(), so that the first task does not wait for the host to load
// the media libraries. Does nothing when the host already runs.
Status startTaskHost(const std::string& executable);

// The code that a task host runs in each child it forks, given the
// arguments that followed the executable; returns the child's exit code.
using HostedCommand = std::function<int(const std::vector<std::string>& arguments)>;

// Runs the task host's loop: reads spawn requests from the socket
// `control_fd` and forks one child per request, which runs `command` and
// exits. Returns 0 when the socket closes. The host's process name
// (/proc/PID/comm) becomes "bitmill-host", and its children's
// "bitmill-task". Requires: the calling process
// has only one thread, because each child is forked without exec. Set up
// whatever the children share (libraries, caches) before calling this.
int serveTaskHost(int control_fd, const HostedCommand& command);

// Returns the process id of the calling thread's task host, or -1 when it
// has none.
pid_t taskHostPidForTest();

}  // namespace bitmill::tasks
