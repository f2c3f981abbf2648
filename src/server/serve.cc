#include "server/serve.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstring>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "api/api.h"
#include "cli/keys.h"
#include "core/clock.h"
#include "core/crypto.h"
#include "core/log.h"
#include "core/secret_file.h"
#include "db/open_store.h"
#include "net/address_policy.h"
#include "queue/queue.h"
#include "storage/open_blob_store.h"
#include "tasks/job.h"
#include "tasks/sandbox.h"
#include "tasks/worker_pool.h"

namespace bitmill::server {

namespace {

namespace fs = std::filesystem;

// How long running tasks may finish after SIGTERM before they are requeued.
constexpr std::chrono::seconds kShutdownGrace{20};

struct HostPort {
    std::string host;
    int port = 0;
};

Result<HostPort> parseListen(const std::string& setting, const std::string& value) {
    size_t colon = value.rfind(':');
    if (colon == std::string::npos || colon == 0) {
        return Error::invalidArgument("invalid setting " + setting + ": '" + value +
                                      "' is not host:port, e.g. 127.0.0.1:8080");
    }
    HostPort out;
    out.host = value.substr(0, colon);
    if (out.host.size() > 2 && out.host.front() == '[' && out.host.back() == ']') {
        out.host = out.host.substr(1, out.host.size() - 2);
    }
    char* end = nullptr;
    long port = std::strtol(value.c_str() + colon + 1, &end, 10);
    if (*end != '\0' || port < 0 || port > 65535) {
        return Error::invalidArgument("invalid setting " + setting + ": port in '" + value +
                                      "' is not 0..65535");
    }
    out.port = static_cast<int>(port);
    return out;
}

std::string executablePath() {
    std::error_code error;
    auto path = fs::read_symlink("/proc/self/exe", error);
    return error ? std::string("bitmill") : path.string();
}

// Probes a file in a sandboxed `bitmill probe` process.
Result<MediaProperties> probeInSandbox(const Config& config, const std::string& path) {
    tasks::SandboxLimits limits;
    limits.memory_bytes = std::min<int64_t>(config.limits.task_memory_bytes, int64_t{2} << 30);
    limits.cpu_seconds = 60;
    std::string work_dir = (fs::path(config.data_dir) / "work").string();
    auto child = tasks::spawnSandboxed(
        {config.executable_path, "probe", path, tasks::limitsToJson(config.limits).dump()}, {},
        work_dir, limits);
    if (!child.ok()) {
        return child.error();
    }

    // Read the child's one-line output until it exits or the time runs out.
    std::string output;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    std::optional<tasks::ExitStatus> exit;
    char buffer[4096];
    while (!(exit = tasks::waitChild(*child, 0))) {
        ssize_t got = read(child->stdoutFd(), buffer, sizeof(buffer));
        if (got > 0) {
            output.append(buffer, static_cast<size_t>(got));
            continue;
        }
        if (std::chrono::steady_clock::now() > deadline) {
            tasks::killAndReap(*child);
            return Error(ErrorCode::DeadlineExceeded, "probing the file took longer than 60 s");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ssize_t got;
    while ((got = read(child->stdoutFd(), buffer, sizeof(buffer))) > 0) {
        output.append(buffer, static_cast<size_t>(got));
    }

    // Map the outcome: a crash, a probe error, or the measured properties.
    if (!exit->exited || exit->code != 0) {
        return Error::unsupportedMedia("the file could not be read as media: " +
                                       tasks::describeExit(*exit, limits));
    }
    Json json = Json::parse(output, nullptr, false);
    if (json.is_discarded()) {
        return Error::internal("probe file: unreadable probe output", output);
    }
    if (json.contains("error")) {
        const Json& error = json["error"];
        std::string code = error.value("code", "unsupported_media");
        ErrorCode mapped = code == "resource_exhausted" ? ErrorCode::ResourceExhausted
                           : code == "internal"         ? ErrorCode::Internal
                                                        : ErrorCode::UnsupportedMedia;
        return Error(mapped, error.value("message", "the file could not be read as media"),
                     error.value("detail", ""));
    }
    return MediaProperties::fromJson(json["props"]);
}

Status writeListenFile(const std::string& data_dir, const std::string& api_url,
                       const std::string& delivery_url) {
    fs::path path = fs::path(data_dir) / "listen.json";
    fs::path temporary = path;
    temporary += ".tmp";
    {
        std::ofstream out(temporary);
        out << Json{{"api", api_url}, {"delivery", delivery_url}}.dump() << "\n";
        if (!out.good()) {
            return Error::unavailable("write " + path.string() + " failed");
        }
    }
    fs::rename(temporary, path);
    return okStatus();
}

std::string orgIdFor(const std::string& server_secret) {
    // Stable per server secret, so every process of one deployment reports
    // the same organisation id.
    std::string digest = crypto::sha256Hex("org:" + server_secret);
    static constexpr std::string_view kAlphabet =
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    std::string id = "org_";
    for (size_t i = 0; i < 16; ++i) {
        id.push_back(kAlphabet[std::stoi(digest.substr(i * 2, 2), nullptr, 16) % 62]);
    }
    return id;
}

Status installKeys(db::Store& store, const domain::Project& project, const Config& config,
                   const std::string& secret) {
    if (!config.api_key.empty()) {
        return cli::installApiKey(store, project.id, config.api_key, secret);
    }
    BM_ASSIGN_OR_RETURN(auto keys, store.listApiKeys(project.id));
    if (!keys.empty()) {
        return okStatus();
    }
    BM_ASSIGN_OR_RETURN(std::string key, cli::createApiKey(store, project.id, "default", secret));
    std::cout << "bitmill: created the API key of project 'default' (shown only once, store it "
                 "now):\n  "
              << key << "\n"
              << std::flush;
    return okStatus();
}

// A lock on the data directory, held for the life of the process.
class DataDirectoryLock {
public:
    explicit DataDirectoryLock(int fd) : fd_(fd) {}
    DataDirectoryLock(DataDirectoryLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    DataDirectoryLock& operator=(DataDirectoryLock&&) = delete;
    ~DataDirectoryLock() {
        if (fd_ >= 0) {
            close(fd_);
        }
    }

private:
    int fd_;
};

Result<DataDirectoryLock> lockDataDirectory(const std::string& data_dir) {
    std::string path = (fs::path(data_dir) / "bitmill.lock").string();
    int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        return Error::unavailable("open " + path + ": " + strerror(errno));
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return Error(ErrorCode::Conflict,
                     "another bitmill process is using the data directory '" + data_dir +
                         "'; stop it or choose another --data-dir");
    }
    return DataDirectoryLock(fd);
}

bool isEmbeddedDatabase(const std::string& database_url) {
    return database_url.empty() || database_url.rfind("sqlite:", 0) == 0 ||
           database_url.find("://") == std::string::npos;
}

int fail(const Error& error) {
    log::get("server")->error("start failed: {}", error.toLogString());
    std::cerr << "bitmill serve: " << error.message() << "\n";
    return 1;
}

}  // namespace

int runServe(Config config) {
    auto logger = log::get("server");
    log::setLevel(config.log_level);

    // Termination signals are handled by sigwait below; every thread started
    // from here on inherits the blocked mask.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    signal(SIGPIPE, SIG_IGN);

    std::error_code fs_error;
    fs::create_directories(config.data_dir, fs_error);
    fs::create_directories(fs::path(config.data_dir) / "work", fs_error);
    fs::create_directories(fs::path(config.data_dir) / "uploads", fs_error);
    if (fs_error) {
        return fail(Error::unavailable("create data directory '" + config.data_dir +
                                       "': " + fs_error.message()));
    }
    config.data_dir = fs::absolute(config.data_dir).string();
    config.executable_path = executablePath();
    if (config.workers <= 0) {
        config.workers = static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
    }

    auto api_address = parseListen("listen", config.listen);
    auto delivery_address = parseListen("delivery_listen", config.delivery_listen);
    if (!api_address.ok()) {
        return fail(api_address.error());
    }
    if (!delivery_address.ok()) {
        return fail(delivery_address.error());
    }

    if (auto allow_list = net::AllowList::create(config.url_allow_list); !allow_list.ok()) {
        return fail(allow_list.error());
    }
    auto data_lock = lockDataDirectory(config.data_dir);
    if (!data_lock.ok()) {
        return fail(data_lock.error());
    }
    // Work folders left by a killed process contain partial outputs of tasks
    // that are retried below. The lock proves that no task runs in them.
    fs::remove_all(fs::path(config.data_dir) / "work", fs_error);
    fs::create_directories(fs::path(config.data_dir) / "work", fs_error);
    auto secret = loadOrCreateServerSecret(config.data_dir);
    if (!secret.ok()) {
        return fail(secret.error());
    }
    auto store = db::openStore(config.database_url, config.data_dir);
    if (!store.ok()) {
        return fail(store.error());
    }
    auto project = (*store)->ensureDefaultProject();
    if (!project.ok()) {
        return fail(project.error());
    }
    if (auto keys = installKeys(**store, *project, config, *secret); !keys.ok()) {
        return fail(keys.error());
    }
    if (isEmbeddedDatabase(config.database_url)) {
        // Only this process uses an embedded database (the lock above), so a
        // task still marked processing belonged to a process that died: run
        // it again now instead of waiting for its lease to expire.
        auto reclaimed = (*store)->reclaimAllLeases(nowMillis());
        if (!reclaimed.ok()) {
            return fail(reclaimed.error());
        }
        if (*reclaimed > 0) {
            logger->warn("requeued tasks of a previous run count={}", *reclaimed);
        }
    }
    auto blobs = storage::openBlobStore(config.storage_url, config.data_dir);
    if (!blobs.ok()) {
        return fail(blobs.error());
    }

    queue::QueueOptions queue_options;
    queue_options.lease_ms = int64_t{config.lease_seconds} * 1000;
    queue_options.backoff_base_ms = int64_t{config.retry_backoff_seconds} * 1000;
    auto task_queue = std::make_shared<queue::TaskQueue>(*store, queue_options);

    auto worker_context = std::make_shared<tasks::WorkerContext>();
    worker_context->config = config;
    worker_context->store = *store;
    worker_context->blobs = *blobs;
    worker_context->queue = task_queue;
    tasks::WorkerPool workers(worker_context);

    auto api_context = std::make_shared<api::ApiContext>();
    api_context->store = *store;
    api_context->blobs = *blobs;
    api_context->server_secret = *secret;
    api_context->org_id = orgIdFor(*secret);
    api_context->wake_workers = [task_queue] { task_queue->notify(); };
    api_context->probe_file = [config](const std::string& path) {
        return probeInSandbox(config, path);
    };

    // The delivery listener binds first so that, with port 0, the public
    // delivery URL is known before any API request can ask for a file URL.
    api_context->config = config;
    auto api_listener = api::makeApiListener(api_context);
    auto delivery_listener = api::makeDeliveryListener(api_context);
    auto delivery_port = delivery_listener->start(delivery_address->host, delivery_address->port);
    if (!delivery_port.ok()) {
        return fail(delivery_port.error());
    }
    std::string delivery_url =
        "http://" + delivery_address->host + ":" + std::to_string(*delivery_port);
    if (config.public_delivery_url.empty()) {
        // NOTE: the delivery listener already accepts requests here, so an
        // upload completed in this instant would return a URL with port 0.
        config.public_delivery_url = delivery_url;
        api_context->config.public_delivery_url = delivery_url;
    }
    auto api_port = api_listener->start(api_address->host, api_address->port);
    if (!api_port.ok()) {
        delivery_listener->stop();
        return fail(api_port.error());
    }
    std::string api_url = "http://" + api_address->host + ":" + std::to_string(*api_port);
    workers.start(config.workers);
    if (auto written = writeListenFile(config.data_dir, api_url, delivery_url); !written.ok()) {
        logger->warn("{}", written.error().toLogString());
    }
    logger->info("bitmill started api={} delivery={} public_delivery_url={} workers={} "
                 "data_dir={}",
                 api_url, delivery_url, config.public_delivery_url, config.workers,
                 config.data_dir);

    int received = 0;
    sigwait(&signals, &received);
    logger->info("shutting down signal={}", received);
    api_listener->stop();
    delivery_listener->stop();
    workers.stop(kShutdownGrace);
    fs::remove(fs::path(config.data_dir) / "listen.json", fs_error);
    logger->info("bitmill stopped");
    return 0;
}

}  // namespace bitmill::server
