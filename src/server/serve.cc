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
#include "api/operations.h"
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

// Writes {data_dir}/listen.json atomically: the bound addresses, and for
// scripts and tests the sign that the process is ready.
Status writeListenFile(const std::string& data_dir, const Json& addresses) {
    fs::path path = fs::path(data_dir) / "listen.json";
    fs::path temporary = path;
    temporary += ".tmp";
    {
        std::ofstream out(temporary);
        out << addresses.dump() << "\n";
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

int fail(std::string_view command, const Error& error) {
    log::get("server")->error("start failed: {}", error.toLogString());
    std::cerr << "bitmill " << command << ": " << error.message() << "\n";
    return 1;
}

// Blocks SIGTERM and SIGINT in this thread and every thread started after
// it, so that only waitForTermination() receives them.
sigset_t blockTerminationSignals() {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    signal(SIGPIPE, SIG_IGN);
    return signals;
}

int waitForTermination(const sigset_t& signals) {
    int received = 0;
    sigwait(&signals, &received);
    return received;
}

// The resources every process role shares: the locked data directory, the
// store, the blob store and the queue.
struct Runtime {
    std::optional<DataDirectoryLock> data_lock;
    db::StorePtr store;
    storage::BlobStorePtr blobs;
    std::shared_ptr<queue::TaskQueue> task_queue;
};

// Prepares the data directory and opens the backends. `config` gets its
// absolute data_dir, the executable path and the worker count resolved.
Result<Runtime> openRuntime(Config& config) {
    std::error_code fs_error;
    fs::create_directories(fs::path(config.data_dir) / "work", fs_error);
    fs::create_directories(fs::path(config.data_dir) / "uploads", fs_error);
    if (fs_error) {
        return Error::unavailable("create data directory '" + config.data_dir +
                                  "': " + fs_error.message());
    }
    config.data_dir = fs::absolute(config.data_dir).string();
    config.executable_path = executablePath();
    if (config.workers < 0) {
        // One more than the cores, because a worker also waits for its task
        // process to start and exit and for the output's fsync. The extra
        // task keeps the cores busy meanwhile: a queue of tiny image tasks on
        // 2 cores ran at 167 tasks/s with 2 workers and 181 to 191 with 3.
        config.workers = static_cast<int>(std::max(1U, std::thread::hardware_concurrency())) + 1;
    }
    if (auto allow_list = net::AllowList::create(config.url_allow_list); !allow_list.ok()) {
        return allow_list.error();
    }

    Runtime runtime;
    BM_ASSIGN_OR_RETURN(DataDirectoryLock lock, lockDataDirectory(config.data_dir));
    runtime.data_lock.emplace(std::move(lock));
    // Work folders left by a killed process contain partial outputs of tasks
    // that are retried. The lock proves that no task of this folder runs.
    fs::remove_all(fs::path(config.data_dir) / "work", fs_error);
    fs::create_directories(fs::path(config.data_dir) / "work", fs_error);

    BM_ASSIGN_OR_RETURN(runtime.store, db::openStore(config.database_url, config.data_dir));
    if (isEmbeddedDatabase(config.database_url)) {
        // Only this process uses an embedded database (the lock above), so a
        // task still marked processing belonged to a process that died: run
        // it again now instead of waiting for its lease to expire.
        BM_ASSIGN_OR_RETURN(int reclaimed, runtime.store->reclaimAllLeases(nowMillis()));
        if (reclaimed > 0) {
            log::get("server")->warn("requeued tasks of a previous run count={}", reclaimed);
        }
    }
    BM_ASSIGN_OR_RETURN(runtime.blobs, storage::openBlobStore(config.storage_url, config.data_dir));

    queue::QueueOptions queue_options;
    queue_options.lease_ms = int64_t{config.lease_seconds} * 1000;
    queue_options.backoff_base_ms = int64_t{config.retry_backoff_seconds} * 1000;
    runtime.task_queue = std::make_shared<queue::TaskQueue>(runtime.store, queue_options);
    return runtime;
}

std::shared_ptr<tasks::WorkerContext> makeWorkerContext(const Config& config,
                                                        const Runtime& runtime) {
    auto context = std::make_shared<tasks::WorkerContext>();
    context->config = config;
    context->store = runtime.store;
    context->blobs = runtime.blobs;
    context->queue = runtime.task_queue;
    return context;
}

// Loads the server secret. Processes that share a database must all use
// the same one, because it seals the stored API keys and keys signed URLs,
// so with a shared database it has to come from BITMILL_SECRET.
Result<std::string> loadSecret(const Config& config) {
    if (!isEmbeddedDatabase(config.database_url) && std::getenv("BITMILL_SECRET") == nullptr) {
        return Error::invalidArgument(
            "a shared database needs the same server secret in every API process: set "
            "BITMILL_SECRET to 64 hex digits (e.g. the output of `openssl rand -hex 32`)");
    }
    return loadOrCreateServerSecret(config.data_dir);
}

}  // namespace

int runServe(Config config) {
    auto logger = log::get("server");
    log::setLevel(config.log_level);
    sigset_t signals = blockTerminationSignals();

    auto api_address = parseListen("listen", config.listen);
    if (!api_address.ok()) {
        return fail("serve", api_address.error());
    }
    auto delivery_address = parseListen("delivery_listen", config.delivery_listen);
    if (!delivery_address.ok()) {
        return fail("serve", delivery_address.error());
    }
    auto runtime = openRuntime(config);
    if (!runtime.ok()) {
        return fail("serve", runtime.error());
    }
    auto secret = loadSecret(config);
    if (!secret.ok()) {
        return fail("serve", secret.error());
    }
    auto project = runtime->store->ensureDefaultProject();
    if (!project.ok()) {
        return fail("serve", project.error());
    }
    if (auto keys = installKeys(*runtime->store, *project, config, *secret); !keys.ok()) {
        return fail("serve", keys.error());
    }

    tasks::WorkerPool workers(makeWorkerContext(config, *runtime));

    auto api_context = std::make_shared<api::ApiContext>();
    api_context->store = runtime->store;
    api_context->blobs = runtime->blobs;
    api_context->server_secret = *secret;
    api_context->org_id = orgIdFor(*secret);
    api_context->wake_workers = [task_queue = runtime->task_queue] { task_queue->notify(); };
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
        return fail("serve", delivery_port.error());
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
        return fail("serve", api_port.error());
    }
    std::string api_url = "http://" + api_address->host + ":" + std::to_string(*api_port);
    if (config.workers > 0) {
        workers.start(config.workers);
    }
    if (auto written = writeListenFile(config.data_dir, Json{{"api", api_url}, {"delivery", delivery_url}}); !written.ok()) {
        logger->warn("{}", written.error().toLogString());
    }
    logger->info("bitmill started api={} delivery={} public_delivery_url={} workers={} "
                 "data_dir={}",
                 api_url, delivery_url, config.public_delivery_url, config.workers,
                 config.data_dir);

    int received = waitForTermination(signals);
    logger->info("shutting down signal={}", received);
    api_listener->stop();
    delivery_listener->stop();
    workers.stop(kShutdownGrace);
    std::error_code fs_error;
    fs::remove(fs::path(config.data_dir) / "listen.json", fs_error);
    logger->info("bitmill stopped");
    return 0;
}

int runWorker(Config config) {
    auto logger = log::get("server");
    log::setLevel(config.log_level);
    sigset_t signals = blockTerminationSignals();

    std::optional<HostPort> health_address;
    if (!config.health_listen.empty()) {
        auto parsed = parseListen("health_listen", config.health_listen);
        if (!parsed.ok()) {
            return fail("worker", parsed.error());
        }
        health_address = *parsed;
    }
    if (config.workers == 0) {
        return fail("worker", Error::invalidArgument(
                                  "invalid setting workers: '0' leaves `bitmill worker` "
                                  "nothing to do; use auto or a count of 1 or more"));
    }
    auto runtime = openRuntime(config);
    if (!runtime.ok()) {
        return fail("worker", runtime.error());
    }

    std::unique_ptr<api::Listener> health_listener;
    std::string health_url;
    if (health_address) {
        health_listener = api::makeHealthListener(runtime->store);
        auto port = health_listener->start(health_address->host, health_address->port);
        if (!port.ok()) {
            return fail("worker", port.error());
        }
        health_url = "http://" + health_address->host + ":" + std::to_string(*port);
    }
    tasks::WorkerPool workers(makeWorkerContext(config, *runtime));
    workers.start(config.workers);
    if (auto written = writeListenFile(config.data_dir, Json{{"health", health_url}}); !written.ok()) {
        logger->warn("{}", written.error().toLogString());
    }
    logger->info("bitmill worker started workers={} health={} data_dir={}", config.workers,
                 health_url.empty() ? "none" : health_url, config.data_dir);

    int received = waitForTermination(signals);
    logger->info("shutting down signal={}", received);
    if (health_listener) {
        health_listener->stop();
    }
    workers.stop(kShutdownGrace);
    std::error_code fs_error;
    fs::remove(fs::path(config.data_dir) / "listen.json", fs_error);
    logger->info("bitmill worker stopped");
    return 0;
}

}  // namespace bitmill::server
