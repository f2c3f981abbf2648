// Child processes and temporary folders for the end-to-end tests.
#include "process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace bitmill::e2e {
namespace {

std::string joinCommandLine(const std::vector<std::string>& argv) {
    std::string line;
    for (const auto& arg : argv) {
        if (!line.empty()) {
            line += ' ';
        }
        bool needs_quotes = arg.empty() || arg.find_first_of(" \t'\"$") != std::string::npos;
        line += needs_quotes ? "'" + arg + "'" : arg;
    }
    return line;
}

std::vector<char*> pointerArray(std::vector<std::string>& strings) {
    std::vector<char*> pointers;
    pointers.reserve(strings.size() + 1);
    for (auto& text : strings) {
        pointers.push_back(text.data());
    }
    pointers.push_back(nullptr);
    return pointers;
}

int decodeWaitStatus(int status) {
    if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    if (WIFSIGNALED(status)) {
        return 128 + WTERMSIG(status);
    }
    return -1;
}

}  // namespace

std::string CommandResult::describe() const {
    std::ostringstream text;
    text << "command `" << command_line << "` ";
    if (timed_out) {
        text << "timed out";
    } else {
        text << "exited with " << exit_code;
    }
    std::string tail = stderr_text.size() > 3000 ? stderr_text.substr(stderr_text.size() - 3000)
                                                 : stderr_text;
    if (!tail.empty()) {
        text << "; stderr:\n" << tail;
    }
    return text.str();
}

std::vector<std::string> buildEnvironment(const std::map<std::string, std::string>& overrides,
                                          const std::vector<std::string>& drop_prefixes) {
    std::vector<std::string> result;
    for (char** entry = environ; *entry != nullptr; ++entry) {
        std::string variable = *entry;
        std::string name = variable.substr(0, variable.find('='));
        bool dropped = overrides.count(name) > 0;
        for (const auto& prefix : drop_prefixes) {
            if (name.rfind(prefix, 0) == 0) {
                dropped = true;
            }
        }
        if (!dropped) {
            result.push_back(std::move(variable));
        }
    }
    for (const auto& [name, value] : overrides) {
        result.push_back(name + "=" + value);
    }
    return result;
}

CommandResult runCommand(const std::vector<std::string>& argv, const CommandOptions& options) {
    CommandResult result;
    result.command_line = joinCommandLine(argv);
    if (argv.empty()) {
        throw std::invalid_argument("runCommand: empty argv");
    }

    int stdout_pipe[2];
    int stderr_pipe[2];
    if (pipe2(stdout_pipe, O_CLOEXEC) != 0 || pipe2(stderr_pipe, O_CLOEXEC) != 0) {
        throw std::runtime_error("create pipe: " + std::string(std::strerror(errno)));
    }

    // Everything the child needs is prepared before fork(), because only
    // async-signal-safe calls are allowed between fork() and exec().
    std::vector<std::string> args = argv;
    std::vector<char*> arg_pointers = pointerArray(args);
    std::vector<std::string> environment = buildEnvironment(options.environment, {});
    std::vector<char*> env_pointers = pointerArray(environment);
    std::string working_directory = options.working_directory.string();

    pid_t pid = fork();
    if (pid < 0) {
        throw std::runtime_error("fork: " + std::string(std::strerror(errno)));
    }
    if (pid == 0) {
        setpgid(0, 0);
        int null_fd = open("/dev/null", O_RDONLY);
        dup2(null_fd, STDIN_FILENO);
        dup2(stdout_pipe[1], STDOUT_FILENO);
        dup2(stderr_pipe[1], STDERR_FILENO);
        if (!working_directory.empty() && chdir(working_directory.c_str()) != 0) {
            _exit(126);
        }
        execvpe(arg_pointers[0], arg_pointers.data(), env_pointers.data());
        const char message[] = "exec failed\n";
        ssize_t ignored = write(STDERR_FILENO, message, sizeof(message) - 1);
        (void)ignored;
        _exit(127);
    }
    close(stdout_pipe[1]);
    close(stderr_pipe[1]);

    auto deadline = std::chrono::steady_clock::now() + options.timeout;
    pollfd fds[2] = {{stdout_pipe[0], POLLIN, 0}, {stderr_pipe[0], POLLIN, 0}};
    std::string* sinks[2] = {&result.stdout_text, &result.stderr_text};
    int open_count = 2;
    char buffer[65536];
    while (open_count > 0) {
        auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (remaining.count() <= 0) {
            result.timed_out = true;
            kill(-pid, SIGKILL);
            break;
        }
        int ready = poll(fds, 2, static_cast<int>(std::min<int64_t>(remaining.count(), 1000)));
        if (ready < 0 && errno != EINTR) {
            break;
        }
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
                continue;
            }
            ssize_t count = read(fds[i].fd, buffer, sizeof(buffer));
            if (count > 0) {
                sinks[i]->append(buffer, static_cast<size_t>(count));
            } else if (count == 0 || (errno != EINTR && errno != EAGAIN)) {
                close(fds[i].fd);
                fds[i].fd = -1;
                --open_count;
            }
        }
    }
    for (auto& fd : fds) {
        if (fd.fd >= 0) {
            close(fd.fd);
        }
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    result.exit_code = decodeWaitStatus(status);
    return result;
}

CommandResult runChecked(const std::vector<std::string>& argv, const CommandOptions& options) {
    CommandResult result = runCommand(argv, options);
    if (!result.ok()) {
        throw std::runtime_error(result.describe());
    }
    return result;
}

TempDir::TempDir(const std::string& prefix) {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/" +
                          prefix + "-XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    if (mkdtemp(buffer.data()) == nullptr) {
        throw std::runtime_error("create temporary folder " + pattern + ": " +
                                 std::strerror(errno));
    }
    path_ = buffer.data();
}

TempDir::~TempDir() {
    if (keep_) {
        return;
    }
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
}

std::string readFileBytes(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw std::runtime_error("open " + path.string() + " for reading failed");
    }
    std::ostringstream bytes;
    bytes << in.rdbuf();
    return bytes.str();
}

void writeFileBytes(const std::filesystem::path& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) {
        throw std::runtime_error("write " + path.string() + " failed");
    }
}

std::string fileTail(const std::filesystem::path& path, size_t max_lines) {
    std::ifstream in(path);
    if (!in) {
        return {};
    }
    std::deque<std::string> lines;
    std::string line;
    while (std::getline(in, line)) {
        lines.push_back(std::move(line));
        if (lines.size() > max_lines) {
            lines.pop_front();
        }
    }
    std::string tail;
    for (const auto& kept : lines) {
        tail += kept + "\n";
    }
    return tail;
}

}  // namespace bitmill::e2e
