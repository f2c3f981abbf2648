#include "tasks/task_execution.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "core/clock.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/metrics.h"
#include "db/path_owner.h"
#include "domain/delivery_path.h"
#include "tasks/job.h"
#include "tasks/sandbox.h"

namespace bitmill::tasks {

namespace {

constexpr std::chrono::milliseconds kMaxHeartbeatInterval{2000};

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Outcome of a task process, as the worker classifies it.
struct ProcessOutcome {
    enum class Kind { Finished, Abandoned, LeaseLost, TimedOut, Crashed } kind;
    std::string message;
};

class Execution {
public:
    Execution(const WorkerContext& context, const domain::TaskRecord& task,
              const std::string& worker_id, const std::atomic<bool>& abandon)
        : context_(context),
          task_(task),
          worker_id_(worker_id),
          abandon_(abandon),
          logger_(log::get("worker")) {}

    void run();

private:
    Result<JobSpec> prepareJob();
    Result<std::string> localInputPath(const domain::FileRecord& file);
    ProcessOutcome runProcess(const JobSpec& job);
    // Reads the progress lines that the child wrote. Returns false at the
    // end of its stdout.
    bool readProgress(int fd);
    Status publish(const JobResult& result);
    domain::FileRecord makeFile(const ProducedFile& produced, const std::string& media_id,
                                bool original, const Json& options);
    void fail(const Error& error);
    // Marks the file row that POST /files created as failed once its ingest
    // task has failed for good.
    void markWaitingFileFailed();

    const WorkerContext& context_;
    domain::TaskRecord task_;
    std::string worker_id_;
    const std::atomic<bool>& abandon_;
    std::shared_ptr<spdlog::logger> logger_;
    std::string work_dir_;
    std::string line_buffer_;
    int progress_ = 0;
    // Storage key of a blob this task stores in `attempt`. Keys name the
    // attempt, so an attempt that lost its lease never overwrites or removes
    // the blob of the attempt that completed.
    std::string attemptKey(int attempt, std::string_view role, const std::string& extension) const;
    void removeEarlierAttemptBlobs(const db::TaskCompletion& completion);

    // How the attempt ended, for metrics: completed, failed, retried, lost
    // (cancelled, or the lease went to another worker) or requeued.
    std::string outcome_ = "completed";
};

void Execution::run() {
    auto started = Clock::now();
    work_dir_ = (fs::path(context_.config.data_dir) / "work" /
                 (task_.id + "." + std::to_string(task_.attempts)))
                    .string();
    std::error_code ignored;
    fs::remove_all(work_dir_, ignored);
    fs::create_directories(work_dir_, ignored);
    logger_->info("task started task_id={} kind={} attempt={}", task_.id, task_.kind,
                  task_.attempts);

    auto job = prepareJob();
    if (!job.ok()) {
        fail(job.error());
    } else {
        ProcessOutcome outcome = runProcess(*job);
        switch (outcome.kind) {
            case ProcessOutcome::Kind::Finished: {
                std::ifstream in(fs::path(work_dir_) / kResultFileName);
                std::stringstream text;
                text << in.rdbuf();
                Json json = Json::parse(text.str(), nullptr, false);
                auto result = json.is_discarded()
                                  ? Result<JobResult>(Error::internal(
                                        "read task result: the task process wrote no result"))
                                  : JobResult::fromJson(json);
                if (!result.ok()) {
                    fail(result.error());
                } else if (result->error) {
                    fail(*result->error);
                } else if (auto published = publish(*result); !published.ok()) {
                    if (published.error().code() == ErrorCode::Conflict) {
                        outcome_ = "lost";
                        logger_->warn("task output discarded task_id={}: {}", task_.id,
                                      published.error().toLogString());
                    } else {
                        fail(published.error());
                    }
                }
                break;
            }
            case ProcessOutcome::Kind::Abandoned: {
                outcome_ = "requeued";
                int64_t now = nowMillis();
                auto requeued = context_.store->retryTask(
                    task_.id, worker_id_, "the server shut down while the task ran", now, now);
                if (!requeued.ok()) {
                    logger_->warn("requeue task failed task_id={}: {}", task_.id,
                                  requeued.error().toLogString());
                }
                break;
            }
            case ProcessOutcome::Kind::LeaseLost:
                outcome_ = "lost";
                logger_->info("task stopped task_id={}: cancelled or lease lost", task_.id);
                break;
            case ProcessOutcome::Kind::TimedOut:
                fail(Error(ErrorCode::DeadlineExceeded, outcome.message));
                break;
            case ProcessOutcome::Kind::Crashed:
                // A crash on a given input repeats on every attempt, so it is
                // not retried.
                fail(Error(ErrorCode::UnsupportedMedia, outcome.message));
                break;
        }
    }
    fs::remove_all(work_dir_, ignored);
    auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
    logger_->info("task ended task_id={} outcome={} duration_ms={}", task_.id, outcome_,
                  elapsed.count());
    metrics::recordTaskAttempt(task_.kind, outcome_, elapsed.count() / 1000.0);
}

Result<std::string> Execution::localInputPath(const domain::FileRecord& file) {
    if (auto local = context_.blobs->localPath(file.storage_key)) {
        return *local;
    }
    // Stores that are not on local disk are copied into the work directory
    // by streaming, never whole in memory.
    std::string path = (fs::path(work_dir_) / ("input." + file.props.extension)).string();
    BM_ASSIGN_OR_RETURN(auto reader, context_.blobs->openReader(file.storage_key));
    std::ofstream out(path, std::ios::binary);
    std::vector<char> buffer(1 << 20);
    int64_t offset = 0;
    for (;;) {
        BM_ASSIGN_OR_RETURN(size_t got, reader->readAt(offset, buffer.data(), buffer.size()));
        if (got == 0) {
            break;
        }
        out.write(buffer.data(), static_cast<std::streamsize>(got));
        offset += static_cast<int64_t>(got);
    }
    if (!out.good()) {
        return Error::unavailable("copy input to the work directory failed");
    }
    return path;
}

Result<JobSpec> Execution::prepareJob() {
    JobSpec job;
    job.task_id = task_.id;
    job.kind = task_.kind;
    job.options = task_.options;
    job.work_dir = work_dir_;
    job.limits = context_.config.limits;
    job.url_allow_list = context_.config.url_allow_list;
    if (task_.input_file_id) {
        auto file = context_.store->getFile(task_.project_id, *task_.input_file_id);
        if (!file.ok()) {
            return Error::notFound("input file '" + *task_.input_file_id +
                                   "' no longer exists");
        }
        BM_ASSIGN_OR_RETURN(job.input_path, localInputPath(*file));
        if (file->status == "ready" && !file->props.kind.empty()) {
            job.input_props = file->props;
        }
    } else if (task_.input_url) {
        job.input_url = *task_.input_url;
    } else {
        return Error::internal("task has neither an input file nor a url");
    }
    std::ofstream out(fs::path(work_dir_) / "job.json");
    out << job.toJson().dump();
    if (!out.good()) {
        return Error::unavailable("write job file failed");
    }
    return job;
}

bool Execution::readProgress(int fd) {
    char buffer[4096];
    for (;;) {
        ssize_t got = read(fd, buffer, sizeof(buffer));
        if (got == 0) {
            return false;
        }
        if (got < 0) {
            return errno == EAGAIN || errno == EINTR;
        }
        line_buffer_.append(buffer, static_cast<size_t>(got));
        size_t newline;
        while ((newline = line_buffer_.find('\n')) != std::string::npos) {
            std::string line = line_buffer_.substr(0, newline);
            line_buffer_.erase(0, newline + 1);
            if (line.rfind("progress ", 0) == 0) {
                progress_ = std::clamp(std::atoi(line.c_str() + 9), 0, 100);
            }
        }
    }
}

ProcessOutcome Execution::runProcess(const JobSpec& job) {
    const Config& config = context_.config;
    SandboxLimits limits;
    limits.memory_bytes = config.limits.task_memory_bytes;
    limits.cpu_seconds = config.limits.task_cpu_seconds;
    std::string job_path = (fs::path(job.work_dir) / "job.json").string();
    auto child = spawnHosted(config.executable_path, {"run-task", job_path}, {}, work_dir_,
                             limits);
    if (!child.ok()) {
        return {ProcessOutcome::Kind::Crashed, child.error().message()};
    }

    auto deadline = Clock::now() + std::chrono::seconds(config.limits.task_timeout_seconds);
    // A failed heartbeat is also how the worker learns that the task was
    // cancelled, possibly by an API process on another machine, so it runs
    // at least every 2 s even when the lease would allow longer gaps.
    auto heartbeat_interval = std::min(std::chrono::milliseconds(config.lease_seconds * 1000 / 3),
                                       kMaxHeartbeatInterval);
    auto next_heartbeat = Clock::now() + std::chrono::seconds(1);
    int reported_progress = -1;
    for (;;) {
        // Waits for progress, the child's exit or the next check, whichever
        // comes first. The child closes its stdout some time before it exits,
        // so after the end of the pipe only the exit is waited for.
        struct pollfd poll_fds[2];
        nfds_t poll_count = 0;
        if (child->stdoutFd() >= 0) {
            poll_fds[poll_count++] = {child->stdoutFd(), POLLIN, 0};
        }
        if (child->exitFd() >= 0) {
            poll_fds[poll_count++] = {child->exitFd(), POLLIN, 0};
        }
        if (poll_count > 0) {
            poll(poll_fds, poll_count, 200);
        } else {
            waitChild(*child, 200);
        }
        if (child->stdoutFd() >= 0 && !readProgress(child->stdoutFd())) {
            child->closeStdout();
        }
        if (auto exit = waitChild(*child, 0)) {
            if (child->stdoutFd() >= 0) {
                readProgress(child->stdoutFd());
            }
            if (exit->exited && exit->code == 0) {
                return {ProcessOutcome::Kind::Finished, {}};
            }
            return {ProcessOutcome::Kind::Crashed, describeExit(*exit, limits)};
        }
        if (abandon_.load()) {
            killAndReap(*child);
            return {ProcessOutcome::Kind::Abandoned, {}};
        }
        auto now = Clock::now();
        if (now >= deadline) {
            killAndReap(*child);
            return {ProcessOutcome::Kind::TimedOut,
                    "the task exceeded the time limit of " +
                        std::to_string(config.limits.task_timeout_seconds) +
                        " s (task_timeout)"};
        }
        // Progress 100 needs no write of its own, because the completion
        // follows.
        if (now >= next_heartbeat || (progress_ != reported_progress && progress_ < 100)) {
            if (now >= next_heartbeat || progress_ >= reported_progress + 5) {
                auto beat = context_.queue->heartbeat(task_.id, worker_id_, progress_);
                if (!beat.ok() && beat.error().code() == ErrorCode::Conflict) {
                    killAndReap(*child);
                    return {ProcessOutcome::Kind::LeaseLost, {}};
                }
                reported_progress = progress_;
                next_heartbeat = now + heartbeat_interval;
            }
        }
    }
}

domain::FileRecord Execution::makeFile(const ProducedFile& produced, const std::string& media_id,
                                       bool original, const Json& options) {
    domain::FileRecord file;
    file.id = newId("file_");
    file.project_id = task_.project_id;
    file.media_id = media_id;
    file.object = "source";
    file.props = produced.props;
    std::error_code ignored;
    file.filesize = static_cast<int64_t>(fs::file_size(produced.path, ignored));
    if (original) {
        file.ref = "original";
        file.original = true;
    }
    if (auto ref = options.find("ref"); ref != options.end() && ref->is_string()) {
        file.ref = ref->get<std::string>();
    }
    if (auto folder = options.find("folder"); folder != options.end() && folder->is_string()) {
        file.folder = folder->get<std::string>();
    }
    if (auto name = options.find("filename"); name != options.end() && name->is_string()) {
        file.filename = name->get<std::string>();
    }
    file.storage_key = task_.project_id + "/" + file.id + "." + file.props.extension;
    file.delivery_path = domain::deliveryPathFor(file);
    file.created_by = task_.created_by;
    file.status = "ready";
    file.created_ms = nowMillis();
    file.updated_ms = file.created_ms;
    file.etag = "\"" + file.id + "-" + std::to_string(file.filesize) + "\"";
    return file;
}

domain::MediaRecord mediaFor(const std::string& project_id, const domain::FileRecord& file) {
    domain::MediaRecord media;
    media.id = newId("med_");
    media.project_id = project_id;
    media.kind = file.props.kind;
    media.width = file.props.width;
    media.height = file.props.height;
    media.duration = file.props.duration;
    media.background = file.props.background;
    media.created_ms = nowMillis();
    media.updated_ms = media.created_ms;
    return media;
}

Status Execution::publish(const JobResult& result) {
    if (!result.output) {
        return Error::internal("the task process reported no output");
    }
    db::TaskCompletion completion;
    std::vector<std::string> stored_keys;
    auto store_blob = [&](const domain::FileRecord& file, const std::string& path) -> Status {
        BM_RETURN_IF_ERROR(
            db::checkDeliveryPathOwner(*context_.store, file.delivery_path, task_.project_id));
        BM_RETURN_IF_ERROR(context_.blobs->putFile(file.storage_key, path, true));
        stored_keys.push_back(file.storage_key);
        return okStatus();
    };

    std::string media_id = task_.media_id.value_or("");
    Json no_options = Json::object();
    if (task_.kind == "ingest") {
        // POST /files creates the file row first (status waiting); its ingest
        // fills that row in place so the id the client has stays valid.
        domain::FileRecord file = makeFile(*result.output, media_id, true, task_.options);
        if (auto fill = task_.options.find("file_id_to_fill"); fill != task_.options.end()) {
            auto existing = context_.store->getFile(task_.project_id, fill->get<std::string>());
            if (existing.ok()) {
                file.id = existing->id;
                file.media_id = existing->media_id;
                file.ref = existing->ref.value_or("original");
                file.folder = existing->folder;
                file.filename = existing->filename;
                file.metadata = existing->metadata;
                file.created_ms = existing->created_ms;
                file.delivery_path = domain::deliveryPathFor(file);
                file.etag = "\"" + file.id + "-" + std::to_string(file.filesize) + "\"";
            }
        }
        if (file.media_id.empty()) {
            completion.media_insert = mediaFor(task_.project_id, file);
            file.media_id = completion.media_insert->id;
        }
        file.storage_key = attemptKey(task_.attempts, "output", file.props.extension);
        BM_RETURN_IF_ERROR(store_blob(file, result.output->path));
        completion.output_file = file;
    } else {
        if (result.fetched_input) {
            domain::FileRecord input = makeFile(*result.fetched_input, "", true, no_options);
            completion.media_insert = mediaFor(task_.project_id, input);
            input.media_id = completion.media_insert->id;
            media_id = input.media_id;
            input.storage_key = attemptKey(task_.attempts, "input", input.props.extension);
            BM_RETURN_IF_ERROR(store_blob(input, result.fetched_input->path));
            completion.input_file = input;
        }
        domain::FileRecord output = makeFile(*result.output, media_id, false, task_.options);
        output.storage_key = attemptKey(task_.attempts, "output", output.props.extension);
        BM_RETURN_IF_ERROR(store_blob(output, result.output->path));
        completion.output_file = output;
    }

    auto completed = context_.queue->complete(task_.id, worker_id_, completion);
    if (!completed.ok()) {
        for (const std::string& key : stored_keys) {
            (void)context_.blobs->remove(key);
        }
        return completed.error();
    }
    removeEarlierAttemptBlobs(completion);
    return okStatus();
}

std::string Execution::attemptKey(int attempt, std::string_view role,
                                  const std::string& extension) const {
    std::string key = fmt::format("{}/{}.{}.{}", task_.project_id, task_.id, attempt, role);
    if (!extension.empty()) {
        key += "." + extension;
    }
    return key;
}

void Execution::removeEarlierAttemptBlobs(const db::TaskCompletion& completion) {
    // An earlier attempt whose worker died between storing a blob and
    // committing left that blob without a row. Its key differs from this
    // attempt's only in the attempt number.
    for (int attempt = 1; attempt < task_.attempts; ++attempt) {
        if (completion.output_file) {
            auto removed = context_.blobs->remove(
                attemptKey(attempt, "output", completion.output_file->props.extension));
            if (!removed.ok()) {
                logger_->warn("remove blob of attempt {} failed task_id={}: {}", attempt,
                              task_.id, removed.error().toLogString());
            }
        }
        if (completion.input_file) {
            (void)context_.blobs->remove(
                attemptKey(attempt, "input", completion.input_file->props.extension));
        }
    }
}

void Execution::fail(const Error& error) {
    outcome_ = error.retryable() && task_.attempts < task_.max_attempts ? "retried" : "failed";
    logger_->error("task failed task_id={} attempt={}: {}", task_.id, task_.attempts,
                   error.toLogString());
    auto status =
        context_.queue->fail(task_.id, worker_id_, error, task_.attempts, task_.max_attempts);
    if (!status.ok()) {
        logger_->warn("record task failure failed task_id={}: {}", task_.id,
                      status.error().toLogString());
        return;
    }
    markWaitingFileFailed();
}

void Execution::markWaitingFileFailed() {
    auto fill = task_.options.find("file_id_to_fill");
    if (task_.kind != "ingest" || fill == task_.options.end() || !fill->is_string()) {
        return;
    }
    // A retry keeps the task pending; only a final failure ends the file.
    auto task = context_.store->getTask(task_.project_id, task_.id);
    if (!task.ok() || task->status != domain::TaskStatus::Failed) {
        return;
    }
    auto file = context_.store->getFile(task_.project_id, fill->get<std::string>());
    if (!file.ok() || file->status != "waiting") {
        return;
    }
    file->status = "failed";
    file->updated_ms = nowMillis();
    if (auto updated = context_.store->updateFile(*file); !updated.ok()) {
        logger_->warn("mark file failed failed file_id={} task_id={}: {}", file->id, task_.id,
                      updated.error().toLogString());
    }
}

}  // namespace

void executeTask(const WorkerContext& context, const domain::TaskRecord& task,
                 const std::string& worker_id, const std::atomic<bool>& abandon) {
    Execution execution(context, task, worker_id, abandon);
    execution.run();
}

}  // namespace bitmill::tasks
