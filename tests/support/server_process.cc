// Starting, stopping and killing the bitmill binary for end-to-end tests.
#include "server_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <nlohmann/json.hpp>

#include "test_services.h"

namespace bitmill::e2e {
namespace {

constexpr auto kListenFileTimeout = std::chrono::seconds(20);
constexpr auto kPollInterval = std::chrono::milliseconds(50);

std::vector<char*> pointerArray(std::vector<std::string>& strings) {
    std::vector<char*> pointers;
    for (auto& text : strings) {
        pointers.push_back(text.data());
    }
    pointers.push_back(nullptr);
    return pointers;
}

ExitStatus decodeStatus(int status) {
    ExitStatus result;
    if (WIFEXITED(status)) {
        result.exited = true;
        result.code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        result.signal = WTERMSIG(status);
    }
    return result;
}

// Reads "pid (comm) state ppid pgrp ..." from /proc/PID/stat.
bool readProcessStat(pid_t pid, char* state, pid_t* parent, pid_t* group) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(in, line)) {
        return false;
    }
    size_t close_paren = line.rfind(')');
    if (close_paren == std::string::npos) {
        return false;
    }
    std::istringstream fields(line.substr(close_paren + 1));
    long parent_value = 0;
    long group_value = 0;
    fields >> *state >> parent_value >> group_value;
    *parent = static_cast<pid_t>(parent_value);
    *group = static_cast<pid_t>(group_value);
    return static_cast<bool>(fields);
}

}  // namespace

std::string ExitStatus::describe() const {
    if (exited) {
        return "exited with code " + std::to_string(code);
    }
    if (signal != 0) {
        return "killed by signal " + std::to_string(signal) + " (" + strsignal(signal) + ")";
    }
    return "still running";
}

std::string randomApiKey() {
    static const char kAlphabet[] =
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    std::random_device device;
    std::uniform_int_distribution<int> pick(0, 61);
    std::string key = "bm_";
    for (int i = 0; i < 40; ++i) {
        key += kAlphabet[pick(device)];
    }
    return key;
}

std::filesystem::path ServerProcess::binaryPath() {
    const char* binary = std::getenv("BITMILL_BINARY");
    if (binary == nullptr || *binary == '\0') {
        throw std::runtime_error(
            "BITMILL_BINARY is not set: run the e2e tests through ctest, or export "
            "BITMILL_BINARY=/path/to/bitmill");
    }
    return binary;
}

CommandResult ServerProcess::runCli(const std::vector<std::string>& arguments) {
    std::vector<std::string> argv = {binaryPath().string()};
    argv.insert(argv.end(), arguments.begin(), arguments.end());
    CommandOptions options;
    options.timeout = std::chrono::seconds(60);
    return runCommand(argv, options);
}

CommandResult ServerProcess::runAdminCli(const std::vector<std::string>& arguments) const {
    std::vector<std::string> argv = {binaryPath().string()};
    argv.insert(argv.end(), arguments.begin(), arguments.end());
    argv.push_back("--data-dir");
    argv.push_back(data_path_.string());
    std::vector<std::string> backends = backendArguments();
    argv.insert(argv.end(), backends.begin(), backends.end());
    CommandOptions options;
    options.timeout = std::chrono::seconds(60);
    options.environment = options_.environment;
    return runCommand(argv, options);
}

ServerOptions withTestDeployment(ServerOptions options) {
    if (!scaleOutDeployment() || !options.database_url.empty()) {
        return options;
    }
    options.database_url = createPostgresDatabase();
    S3Location location = createS3Location();
    options.storage_url = location.storage_url;
    for (const auto& [name, value] : location.environment) {
        options.environment.emplace(name, value);
    }
    options.environment.emplace("BITMILL_SECRET", randomSecretHex());
    options.worker_processes = std::max(options.worker_processes, 1);
    return options;
}

ServerProcess::ServerProcess(ServerOptions options)
    : options_(withTestDeployment(std::move(options))), work_dir_("bitmill-e2e-server") {
    if (options_.api_key.empty() && options_.pass_api_key) {
        options_.api_key = randomApiKey();
    }
    data_path_ = work_dir_.path() / "data";
    log_path_ = work_dir_.path() / "server.log";
    std::filesystem::create_directories(data_path_);
    for (int i = 0; i < options_.worker_processes; ++i) {
        WorkerProcess worker;
        worker.data_path = work_dir_.path() / ("worker-" + std::to_string(i));
        worker.log_path = work_dir_.path() / ("worker-" + std::to_string(i) + ".log");
        std::filesystem::create_directories(worker.data_path);
        workers_.push_back(worker);
    }
}

ServerProcess::~ServerProcess() {
    if (pid_ > 0 || !workers_.empty()) {
        stop(std::chrono::seconds(10));
    }
    for (pid_t group : process_groups_) {
        kill(-group, SIGKILL);
    }
}

void ServerProcess::setEnvironment(const std::string& name, const std::string& value) {
    options_.environment[name] = value;
}

void ServerProcess::unsetEnvironment(const std::string& name) {
    options_.environment.erase(name);
}

std::vector<std::string> ServerProcess::backendArguments() const {
    std::vector<std::string> args;
    if (!options_.database_url.empty()) {
        args.push_back("--database-url");
        args.push_back(options_.database_url);
    }
    if (!options_.storage_url.empty()) {
        args.push_back("--storage-url");
        args.push_back(options_.storage_url);
    }
    return args;
}

pid_t ServerProcess::spawn(std::vector<std::string> args, const std::filesystem::path& log_path) {
    std::vector<char*> arg_pointers = pointerArray(args);
    std::vector<std::string> environment = buildEnvironment(options_.environment, {"BITMILL_"});
    std::vector<char*> env_pointers = pointerArray(environment);

    int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) {
        throw std::runtime_error("open " + log_path.string() + ": " + std::strerror(errno));
    }
    std::string banner = "---- start:";
    for (const std::string& arg : args) {
        banner += " " + arg;
    }
    banner += "\n";
    ssize_t ignored = write(log_fd, banner.data(), banner.size());
    (void)ignored;

    pid_t pid = fork();
    if (pid < 0) {
        close(log_fd);
        throw std::runtime_error("fork: " + std::string(std::strerror(errno)));
    }
    if (pid == 0) {
        setpgid(0, 0);
        int null_fd = open("/dev/null", O_RDONLY);
        dup2(null_fd, STDIN_FILENO);
        dup2(log_fd, STDOUT_FILENO);
        dup2(log_fd, STDERR_FILENO);
        execve(arg_pointers[0], arg_pointers.data(), env_pointers.data());
        const char message[] = "exec of the bitmill binary failed\n";
        ignored = write(STDERR_FILENO, message, sizeof(message) - 1);
        _exit(127);
    }
    close(log_fd);
    // Set the group from both sides so a kill(-pid) right after fork works.
    setpgid(pid, pid);
    process_groups_.insert(pid);
    return pid;
}

void ServerProcess::start() {
    if (pid_ > 0) {
        throw std::logic_error("ServerProcess::start: the server is already running");
    }
    std::filesystem::remove(data_path_ / "listen.json");
    api_url_.clear();
    delivery_url_.clear();

    std::vector<std::string> args = {binaryPath().string(), "serve",
                                     "--data-dir",          data_path_.string(),
                                     "--listen",            "127.0.0.1:0",
                                     "--delivery-listen",   "127.0.0.1:0"};
    if (options_.pass_api_key) {
        args.push_back("--api-key");
        args.push_back(options_.api_key);
    }
    if (!workers_.empty()) {
        args.push_back("--workers");
        args.push_back("0");
    } else if (options_.workers) {
        args.push_back("--workers");
        args.push_back(std::to_string(*options_.workers));
    }
    std::vector<std::string> backends = backendArguments();
    args.insert(args.end(), backends.begin(), backends.end());
    args.insert(args.end(), options_.extra_arguments.begin(), options_.extra_arguments.end());
    pid_ = spawn(args, log_path_);
    nlohmann::json listen = waitForListenFile(pid_, data_path_, log_path_);
    api_url_ = listen.at("api").get<std::string>();
    delivery_url_ = listen.at("delivery").get<std::string>();
    for (int i = 0; i < static_cast<int>(workers_.size()); ++i) {
        if (workers_[i].pid <= 0) {
            startWorker(i);
        }
    }
}

void ServerProcess::startWorker(int index) {
    WorkerProcess& worker = workers_.at(index);
    if (worker.pid > 0) {
        throw std::logic_error("ServerProcess::startWorker: the worker is already running");
    }
    std::filesystem::remove(worker.data_path / "listen.json");
    std::vector<std::string> args = {binaryPath().string(), "worker", "--data-dir",
                                     worker.data_path.string(), "--health-listen", "127.0.0.1:0",
                                     "--workers", std::to_string(options_.workers.value_or(2))};
    std::vector<std::string> backends = backendArguments();
    args.insert(args.end(), backends.begin(), backends.end());
    args.insert(args.end(), options_.extra_arguments.begin(), options_.extra_arguments.end());
    worker.pid = spawn(args, worker.log_path);
    nlohmann::json listen = waitForListenFile(worker.pid, worker.data_path, worker.log_path);
    worker.health_url = listen.value("health", "");
}

ExitStatus ServerProcess::killWorker(int index) {
    WorkerProcess& worker = workers_.at(index);
    if (worker.pid <= 0) {
        return {};
    }
    kill(worker.pid, SIGKILL);
    int status = 0;
    waitpid(worker.pid, &status, 0);
    worker.pid = -1;
    return decodeStatus(status);
}

nlohmann::json ServerProcess::waitForListenFile(pid_t& pid, const std::filesystem::path& data_path,
                                                const std::filesystem::path& log_path) {
    auto deadline = std::chrono::steady_clock::now() + kListenFileTimeout;
    std::filesystem::path listen_file = data_path / "listen.json";
    std::string last_problem = "listen.json not written yet";
    while (std::chrono::steady_clock::now() < deadline) {
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            pid = -1;
            throw std::runtime_error("bitmill " + decodeStatus(status).describe() +
                                     " before writing listen.json; log tail:\n" +
                                     fileTail(log_path, 80));
        }
        std::ifstream in(listen_file);
        if (in) {
            try {
                return nlohmann::json::parse(in);
            } catch (const std::exception& error) {
                // The file may be half written; read it again on the next round.
                last_problem = std::string("listen.json unreadable: ") + error.what();
            }
        }
        std::this_thread::sleep_for(kPollInterval);
    }
    throw std::runtime_error("bitmill did not write " + listen_file.string() + " within " +
                             std::to_string(kListenFileTimeout.count()) + " s (" + last_problem +
                             "); log tail:\n" + fileTail(log_path, 80));
}

ExitStatus ServerProcess::waitForExit(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
        int status = 0;
        pid_t done = waitpid(pid_, &status, WNOHANG);
        if (done == pid_) {
            pid_ = -1;
            return decodeStatus(status);
        }
        if (done < 0 && errno != EINTR) {
            pid_ = -1;
            return {};
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            return {};
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

ExitStatus ServerProcess::stop(std::chrono::seconds timeout) {
    // Workers get SIGTERM first, so they stop claiming while the API stops.
    for (WorkerProcess& worker : workers_) {
        if (worker.pid > 0) {
            kill(worker.pid, SIGTERM);
        }
    }
    for (WorkerProcess& worker : workers_) {
        if (worker.pid <= 0) {
            continue;
        }
        auto deadline = std::chrono::steady_clock::now() + timeout;
        int status = 0;
        while (waitpid(worker.pid, &status, WNOHANG) == 0) {
            if (std::chrono::steady_clock::now() >= deadline) {
                kill(worker.pid, SIGKILL);
                waitpid(worker.pid, &status, 0);
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        worker.pid = -1;
    }
    if (pid_ <= 0) {
        return {};
    }
    kill(pid_, SIGTERM);
    ExitStatus status = waitForExit(timeout);
    if (pid_ > 0) {
        kill(pid_, SIGKILL);
        waitForExit(std::chrono::seconds(10));
        status.signal = SIGKILL;
    }
    return status;
}

ExitStatus ServerProcess::killHard() {
    if (pid_ <= 0) {
        return {};
    }
    kill(pid_, SIGKILL);
    return waitForExit(std::chrono::seconds(10));
}

bool ServerProcess::running() {
    if (pid_ <= 0) {
        return false;
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
    }
    return true;
}

namespace {

// True when `pid` is a worker's task host (`bitmill task-host`), which
// names itself "bitmill-host"; the task processes it forks are named
// "bitmill-task".
bool isTaskHost(pid_t pid) {
    std::ifstream file("/proc/" + std::to_string(pid) + "/comm");
    std::string name;
    std::getline(file, name);
    return name == "bitmill-host";
}

}  // namespace

std::vector<pid_t> ServerProcess::childProcesses() const {
    std::vector<pid_t> children;
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
        const std::string name = entry.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos) {
            continue;
        }
        pid_t pid = static_cast<pid_t>(std::stol(name));
        char state = '?';
        pid_t parent = 0;
        pid_t group = 0;
        if (pid == pid_ || !readProcessStat(pid, &state, &parent, &group) || state == 'Z') {
            continue;
        }
        // A worker's task host lives as long as the worker; the task
        // processes it forks are children of the server and count.
        if (isTaskHost(pid)) {
            continue;
        }
        bool is_worker = false;
        bool worker_child = false;
        for (const WorkerProcess& worker : workers_) {
            is_worker = is_worker || pid == worker.pid;
            worker_child = worker_child || (worker.pid > 0 && parent == worker.pid);
        }
        if (is_worker) {
            continue;
        }
        if (process_groups_.count(group) > 0 || (pid_ > 0 && parent == pid_) || worker_child) {
            children.push_back(pid);
        }
    }
    return children;
}

std::string ServerProcess::logTail(size_t max_lines) const {
    std::string tail = fileTail(log_path_, max_lines);
    for (const WorkerProcess& worker : workers_) {
        tail += "---- " + worker.log_path.filename().string() + "\n" +
                fileTail(worker.log_path, max_lines);
    }
    return tail;
}

}  // namespace bitmill::e2e
