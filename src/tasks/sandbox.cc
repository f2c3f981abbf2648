// Sandboxed child processes: started with fork and exec, or forked from a
// task host that runs the same binary with its libraries already loaded.
#include "tasks/sandbox.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <thread>

#include "core/json.h"
#include "core/log.h"

extern char** environ;

namespace bitmill::tasks {

ChildProcess::ChildProcess(pid_t pid, int stdout_fd)
    : pid_(pid),
      stdout_fd_(stdout_fd),
      exit_fd_(static_cast<int>(syscall(SYS_pidfd_open, pid, 0))) {}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(other.pid_), stdout_fd_(other.stdout_fd_), exit_fd_(other.exit_fd_) {
    other.pid_ = -1;
    other.stdout_fd_ = -1;
    other.exit_fd_ = -1;
}

ChildProcess::~ChildProcess() {
    closeStdout();
    if (exit_fd_ >= 0) {
        close(exit_fd_);
    }
}

void ChildProcess::closeStdout() {
    if (stdout_fd_ >= 0) {
        close(stdout_fd_);
        stdout_fd_ = -1;
    }
}

namespace {

// Exit codes of a child that did not get to run its command.
constexpr int kExitParentGone = 126;
constexpr int kExitSetupFailed = 127;

// Process names (/proc/PID/comm, at most 15 characters) of a task host and
// of the task processes it forks, which otherwise show the host's command
// line. Tools can tell the long-lived host from its children by them.
constexpr const char* kTaskHostName = "bitmill-host";
constexpr const char* kHostedTaskName = "bitmill-task";

// Largest spawn request or reply on a task host's socket.
constexpr size_t kMaxMessageBytes = 64 * 1024;

// How long a worker waits for its task host's reply to a spawn request.
// The first request also waits for the host to start and initialize
// libvips and FFmpeg, which took about 0.1 s on an idle 2-core machine.
constexpr int kHostReplyTimeoutMs = 30'000;

// How long a thread executes its task processes after its task host
// failed to start or reply twice in a row.
constexpr auto kHostRetryDelay = std::chrono::seconds(60);

// How long a closing task host may take to exit before it is killed.
constexpr auto kHostExitGrace = std::chrono::seconds(2);

// Puts the calling process, just forked from `parent_pid`, into the
// sandbox: its own process group, SIGKILL when the parent ends, no core
// dumps, `limits`, `work_dir` as working directory (kept when null), stdin
// from `stdin_fd` (/dev/null when -1) and stdout to `stdout_fd`. Only
// async-signal-safe calls, because the parent may have other threads.
// Ends the process when a step fails.
void enterSandbox(pid_t parent_pid, const char* work_dir, const SandboxLimits& limits,
                  int stdin_fd, int stdout_fd) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent_pid) {
        _exit(kExitParentGone);  // the parent died before prctl took effect
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
    if (work_dir != nullptr && chdir(work_dir) != 0) {
        _exit(kExitSetupFailed);
    }
    if (dup2(stdout_fd, STDOUT_FILENO) < 0) {
        _exit(kExitSetupFailed);
    }
    if (stdin_fd < 0) {
        stdin_fd = open("/dev/null", O_RDONLY);
    }
    if (stdin_fd >= 0) {
        dup2(stdin_fd, STDIN_FILENO);
    }
}

// Forks and executes `arguments` in the sandbox; see enterSandbox.
Result<pid_t> forkExecSandboxed(const std::vector<std::string>& arguments,
                                const std::vector<std::string>& environment_entries,
                                const char* work_dir, const SandboxLimits& limits, int stdin_fd,
                                int stdout_fd) {
    // Everything the child needs is built before fork: between fork and exec
    // in a threaded process only async-signal-safe calls are allowed.
    std::vector<char*> argv;
    for (const std::string& argument : arguments) {
        argv.push_back(const_cast<char*>(argument.c_str()));
    }
    argv.push_back(nullptr);
    std::vector<char*> environment;
    for (const std::string& entry : environment_entries) {
        environment.push_back(const_cast<char*>(entry.c_str()));
    }
    environment.push_back(nullptr);

    pid_t parent_pid = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        return Error::unavailable("start task process: fork failed", strerror(errno));
    }
    if (pid == 0) {
        enterSandbox(parent_pid, work_dir, limits, stdin_fd, stdout_fd);
        syscall(SYS_close_range, 3U, ~0U, 0U);
        execve(argv[0], argv.data(), environment.data());
        _exit(kExitSetupFailed);
    }
    setpgid(pid, pid);  // also from the parent, so killpg works at once
    return pid;
}

std::vector<std::string> currentEnvironment() {
    std::vector<std::string> entries;
    for (char** entry = environ; *entry != nullptr; ++entry) {
        entries.emplace_back(*entry);
    }
    return entries;
}

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

// Sends one message on a SOCK_SEQPACKET socket, passing `fd` along when it
// is not -1. Returns false when the peer is gone.
bool sendMessage(int socket, const std::string& text, int fd) {
    struct iovec part = {const_cast<char*>(text.data()), text.size()};
    struct msghdr message = {};
    message.msg_iov = &part;
    message.msg_iovlen = 1;
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    if (fd >= 0) {
        message.msg_control = control;
        message.msg_controllen = sizeof(control);
        struct cmsghdr* header = CMSG_FIRSTHDR(&message);
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(header), &fd, sizeof(int));
    }
    ssize_t sent;
    do {
        sent = sendmsg(socket, &message, MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    return sent == static_cast<ssize_t>(text.size());
}

// Receives one message from a SOCK_SEQPACKET socket, waiting up to
// `timeout_ms` (-1 forever). A passed descriptor goes to `*fd` (close-on-
// exec), else *fd is -1. Returns nullopt on timeout, end of stream or error.
std::optional<std::string> receiveMessage(int socket, int timeout_ms, int* fd) {
    *fd = -1;
    struct pollfd ready = {socket, POLLIN, 0};
    int polled;
    do {
        polled = poll(&ready, 1, timeout_ms);
    } while (polled < 0 && errno == EINTR);
    if (polled <= 0) {
        return std::nullopt;
    }

    std::string text(kMaxMessageBytes, '\0');
    struct iovec part = {text.data(), text.size()};
    struct msghdr message = {};
    message.msg_iov = &part;
    message.msg_iovlen = 1;
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    message.msg_control = control;
    message.msg_controllen = sizeof(control);
    ssize_t got;
    do {
        got = recvmsg(socket, &message, MSG_CMSG_CLOEXEC);
    } while (got < 0 && errno == EINTR);

    // A descriptor may arrive even with a message that is then rejected.
    for (struct cmsghdr* header = CMSG_FIRSTHDR(&message); header != nullptr;
         header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level == SOL_SOCKET && header->cmsg_type == SCM_RIGHTS) {
            memcpy(fd, CMSG_DATA(header), sizeof(int));
        }
    }
    if (got <= 0 || (message.msg_flags & MSG_TRUNC) != 0) {
        if (*fd >= 0) {
            close(*fd);
            *fd = -1;
        }
        return std::nullopt;
    }
    text.resize(static_cast<size_t>(got));
    return text;
}

// The calling thread's task host: a `bitmill task-host` process that this
// thread started, so that it dies with this thread (PR_SET_PDEATHSIG), as
// children that spawnSandboxed starts from this thread do.
class TaskHostConnection {
public:
    ~TaskHostConnection() { stop(); }

    pid_t pid() const { return pid_; }

    // Asks the host to fork a child for `request`, with `stdout_fd` as its
    // stdout; starts or restarts the host when needed. Returns the child's
    // process id.
    Result<pid_t> spawn(const std::string& executable, const std::string& request,
                        int stdout_fd) {
        if (pid_ > 0 && executable != executable_) {
            stop();
        }
        if (pid_ < 0 && std::chrono::steady_clock::now() < retry_after_) {
            return Error::unavailable("start task process: the task host failed recently");
        }
        for (int attempt = 0;; ++attempt) {
            if (pid_ < 0) {
                BM_RETURN_IF_ERROR(start(executable));
            }
            auto pid = exchange(request, stdout_fd);
            if (pid.ok()) {
                return pid;
            }
            stop();
            if (attempt == 1 || pid.error().code() != ErrorCode::Unavailable) {
                // A host that fails twice in a row is not tried again for a
                // while, so that each task does not wait for it.
                retry_after_ = std::chrono::steady_clock::now() + kHostRetryDelay;
                log::get("worker")->warn(
                    "task host failed, executing task processes for the next {} s: {}",
                    std::chrono::duration_cast<std::chrono::seconds>(kHostRetryDelay).count(),
                    pid.error().toLogString());
                return pid;
            }
            // The host died since the last request (it was killed, or ran
            // out of memory): start a new one and ask once more.
        }
    }

    Status ensureStarted(const std::string& executable) {
        if (pid_ > 0 && executable != executable_) {
            stop();
        }
        return pid_ > 0 ? okStatus() : start(executable);
    }

    void stop() {
        if (control_fd_ >= 0) {
            close(control_fd_);  // the host exits when its socket closes
            control_fd_ = -1;
        }
        if (pid_ < 0) {
            return;
        }
        auto deadline = std::chrono::steady_clock::now() + kHostExitGrace;
        while (waitpid(pid_, nullptr, WNOHANG) == 0) {
            if (std::chrono::steady_clock::now() >= deadline) {
                kill(pid_, SIGKILL);
                waitpid(pid_, nullptr, 0);
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        pid_ = -1;
    }

private:
    Status start(const std::string& executable) {
        int fds[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) {
            return Error::unavailable("start task host: socketpair failed", strerror(errno));
        }
        int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        // The host keeps the working directory and has no limits of its own:
        // each child it forks takes the limits of its request.
        //
        // LD_BIND_NOW makes the loader resolve every symbol of every library
        // once, in the host, so that no forked child repeats the lookups. With
        // it, a queue of tiny image tasks took 6% less CPU time on 2 cores.
        std::vector<std::string> environment = currentEnvironment();
        environment.emplace_back("LD_BIND_NOW=1");
        auto pid = forkExecSandboxed({executable, "task-host"}, environment, nullptr,
                                     SandboxLimits{}, fds[1], null_fd >= 0 ? null_fd : fds[1]);
        close(fds[1]);
        if (null_fd >= 0) {
            close(null_fd);
        }
        if (!pid.ok()) {
            close(fds[0]);
            retry_after_ = std::chrono::steady_clock::now() + kHostRetryDelay;
            return pid.error();
        }
        executable_ = executable;
        pid_ = *pid;
        control_fd_ = fds[0];
        return okStatus();
    }

    Result<pid_t> exchange(const std::string& request, int stdout_fd) {
        if (!sendMessage(control_fd_, request, stdout_fd)) {
            return Error::unavailable("start task process: the task host is gone",
                                      strerror(errno));
        }
        int ignored_fd = -1;
        auto reply_text = receiveMessage(control_fd_, kHostReplyTimeoutMs, &ignored_fd);
        if (ignored_fd >= 0) {
            close(ignored_fd);
        }
        if (!reply_text) {
            return Error::unavailable("start task process: no reply from the task host");
        }
        Json reply = Json::parse(*reply_text, nullptr, false);
        if (reply.is_object() && reply.contains("pid") && reply["pid"].is_number_integer()) {
            return reply["pid"].get<pid_t>();
        }
        std::string cause = reply.is_object() ? reply.value("error", *reply_text) : *reply_text;
        return Error::internal("start task process: the task host could not fork", cause);
    }

    std::string executable_;
    pid_t pid_ = -1;
    int control_fd_ = -1;
    std::chrono::steady_clock::time_point retry_after_;
};

thread_local TaskHostConnection thread_task_host;

Json limitsToRequest(const SandboxLimits& limits) {
    return Json{{"memory_bytes", limits.memory_bytes}, {"cpu_seconds", limits.cpu_seconds}};
}

bool isStringArray(const Json& value) {
    if (!value.is_array()) {
        return false;
    }
    for (const Json& item : value) {
        if (!item.is_string()) {
            return false;
        }
    }
    return true;
}

// Checks the fields that runHostedChild reads, so that it cannot throw.
bool isSpawnRequest(const Json& request) {
    if (!request.is_object()) {
        return false;
    }
    const auto arguments = request.find("arguments");
    const auto environment = request.find("environment");
    const auto work_dir = request.find("work_dir");
    const auto limits = request.find("limits");
    return arguments != request.end() && isStringArray(*arguments) && !arguments->empty() &&
           environment != request.end() && isStringArray(*environment) &&
           work_dir != request.end() && work_dir->is_string() && limits != request.end() &&
           limits->is_object() && limits->value("memory_bytes", Json(0)).is_number_integer() &&
           limits->value("cpu_seconds", Json(0)).is_number_integer();
}

// The child side of a spawn request; never returns. The child is a copy of
// the single-threaded host, so any call is allowed here.
[[noreturn]] void runHostedChild(const Json& request, pid_t parent_pid, int stdin_fd,
                                 int stdout_fd, const HostedCommand& command) {
    SandboxLimits limits;
    limits.memory_bytes = request.at("limits").value("memory_bytes", int64_t{0});
    limits.cpu_seconds = request.at("limits").value("cpu_seconds", 0);
    const std::string work_dir = request.at("work_dir").get<std::string>();
    enterSandbox(parent_pid, work_dir.c_str(), limits, stdin_fd, stdout_fd);
    close(stdout_fd);
    prctl(PR_SET_NAME, kHostedTaskName);

    // The same environment that spawnSandboxed gives an executed child.
    setenv("TMPDIR", work_dir.c_str(), 1);
    for (const std::string& entry : request.at("environment").get<std::vector<std::string>>()) {
        const size_t equals = entry.find('=');
        if (equals != std::string::npos) {
            setenv(entry.substr(0, equals).c_str(), entry.c_str() + equals + 1, 1);
        }
    }

    int code = 1;
    try {
        code = command(request.at("arguments").get<std::vector<std::string>>());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bitmill task process: unexpected error: %s\n", e.what());
    }
    // _exit skips the exit handlers and static destructors, which belong
    // to the host's copy of the libraries, so stdio is flushed here.
    std::fflush(nullptr);
    _exit(code);
}

// Forks a child of the host's parent (CLONE_PARENT), so the worker that
// sent the request can wait for it and kill it like any child it forked
// itself, and the host never reaps anything. Returns the child's process
// id in the host and 0 in the child, like fork().
//
// The raw clone system call skips glibc's fork bookkeeping: the child's
// main thread keeps the host's cached thread id, and pthread_atfork
// handlers do not run. That is safe here for two reasons. The host has a
// single thread, so no lock is held at the clone. And glibc's raise() and
// abort() signal the thread that gettid() returns, not the cached id (glibc
// 2.36 of Debian 12), which the hosted crash test in sandbox_test.cc checks.
pid_t forkSibling() {
    // Arguments: flags, then no new stack, parent TID, child TID or TLS.
    const unsigned long flags = CLONE_PARENT | SIGCHLD;
    return static_cast<pid_t>(syscall(SYS_clone, flags, nullptr, nullptr, nullptr, 0UL));
}

}  // namespace

Result<ChildProcess> spawnSandboxed(const std::vector<std::string>& argv,
                                    const std::vector<std::string>& extra_environment,
                                    const std::string& work_dir, const SandboxLimits& limits) {
    std::vector<std::string> environment = currentEnvironment();
    environment.push_back("TMPDIR=" + work_dir);
    for (const std::string& entry : extra_environment) {
        environment.push_back(entry);
    }
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
        return Error::unavailable("start task process: pipe failed", strerror(errno));
    }
    auto pid =
        forkExecSandboxed(argv, environment, work_dir.c_str(), limits, -1, pipe_fds[1]);
    close(pipe_fds[1]);
    if (!pid.ok()) {
        close(pipe_fds[0]);
        return pid.error();
    }
    fcntl(pipe_fds[0], F_SETFL, fcntl(pipe_fds[0], F_GETFL) | O_NONBLOCK);
    return ChildProcess(*pid, pipe_fds[0]);
}

Result<ChildProcess> spawnHosted(const std::string& executable,
                                 const std::vector<std::string>& arguments,
                                 const std::vector<std::string>& extra_environment,
                                 const std::string& work_dir, const SandboxLimits& limits) {
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
        return Error::unavailable("start task process: pipe failed", strerror(errno));
    }
    const Json request = {{"arguments", arguments},
                          {"environment", extra_environment},
                          {"work_dir", work_dir},
                          {"limits", limitsToRequest(limits)}};
    auto pid = thread_task_host.spawn(executable, request.dump(), pipe_fds[1]);
    close(pipe_fds[1]);
    if (pid.ok()) {
        fcntl(pipe_fds[0], F_SETFL, fcntl(pipe_fds[0], F_GETFL) | O_NONBLOCK);
        return ChildProcess(*pid, pipe_fds[0]);
    }
    close(pipe_fds[0]);
    std::vector<std::string> argv = {executable};
    argv.insert(argv.end(), arguments.begin(), arguments.end());
    return spawnSandboxed(argv, extra_environment, work_dir, limits);
}

int serveTaskHost(int control_fd, const HostedCommand& command) {
    prctl(PR_SET_NAME, kTaskHostName);
    // Children read stdin from /dev/null, not from the control socket.
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    for (;;) {
        int stdout_fd = -1;
        auto text = receiveMessage(control_fd, -1, &stdout_fd);
        if (!text) {
            return 0;  // the worker closed the socket, or its thread ended
        }
        const Json request = Json::parse(*text, nullptr, false);
        if (!isSpawnRequest(request) || stdout_fd < 0) {
            sendMessage(control_fd, Json{{"error", "malformed spawn request"}}.dump(), -1);
            if (stdout_fd >= 0) {
                close(stdout_fd);
            }
            continue;
        }

        // Output buffered in the host would otherwise be written again by
        // every child.
        std::fflush(nullptr);
        const pid_t parent_pid = getppid();
        const pid_t pid = forkSibling();
        if (pid == 0) {
            close(control_fd);
            runHostedChild(request, parent_pid, null_fd, stdout_fd, command);
        }
        const int fork_errno = errno;
        close(stdout_fd);
        Json reply = pid > 0 ? Json{{"pid", pid}} : Json{{"error", strerror(fork_errno)}};
        if (!sendMessage(control_fd, reply.dump(), -1)) {
            return 0;
        }
    }
}

Status startTaskHost(const std::string& executable) {
    return thread_task_host.ensureStarted(executable);
}

pid_t taskHostPidForTest() { return thread_task_host.pid(); }

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
        auto now = std::chrono::steady_clock::now();
        if (timeout_ms >= 0 && now >= deadline) {
            return std::nullopt;
        }
        if (child.exitFd() >= 0) {
            // Sleeps until the child exits or the deadline passes.
            int wait_ms = -1;
            if (timeout_ms >= 0) {
                wait_ms = static_cast<int>(
                    std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count());
            }
            struct pollfd ended = {child.exitFd(), POLLIN, 0};
            poll(&ended, 1, wait_ms);
            continue;
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
