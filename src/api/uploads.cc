// Whole and chunked uploads (see uploads.h). A chunk is written with pwrite
// into {data_dir}/uploads/{upload_id}.part while its upload's state is held
// shared; publishing takes the state exclusively, so no chunk writes into
// bytes that are being moved into the blob store.
#include "api/uploads.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <shared_mutex>

#include "api/http_util.h"
#include "api/json_mapping.h"
#include "api/signing.h"
#include "api/upload_staging.h"
#include "core/clock.h"
#include "core/crypto.h"
#include "core/ids.h"
#include "core/log.h"
#include "db/path_owner.h"
#include "db/upload_ranges.h"
#include "domain/delivery_path.h"

namespace bitmill::api {

namespace {

namespace fs = std::filesystem;

// How long the outcome of a finished chunked upload stays in memory, so
// that a repeated or parallel final chunk gets the same response.
constexpr int64_t kOutcomeRetentionMs = 10 * 60 * 1000;

// Tries to find or create the upload of a chunk before giving up, when
// uploads of the same path keep replacing each other.
constexpr int kMaxStartAttempts = 4;

// How long an unfinished upload must have received no chunk before a chunk
// with another total may replace it. Until then such a chunk gets 409, so a
// second client cannot silently discard the bytes of one still uploading.
constexpr int64_t kAbandonedUploadMs = 60 * 60 * 1000;

template <typename Function>
class ScopeExit {
  public:
    explicit ScopeExit(Function function) : function_(std::move(function)) {}
    ~ScopeExit() { function_(); }
    ScopeExit(const ScopeExit&) = delete;
    ScopeExit& operator=(const ScopeExit&) = delete;

  private:
    Function function_;
};

std::string jsonQuoted(std::string_view text) {
    return Json(std::string(text)).dump(-1, ' ', false, Json::error_handler_t::replace);
}

Status checkPathOwner(ApiContext& context, const std::string& path, const std::string& project_id) {
    return db::checkDeliveryPathOwner(*context.store, path, project_id);
}

Result<UploadTarget> parseUploadTarget(const std::string& path) {
    UploadTarget target;
    target.path = path;
    size_t slash = path.rfind('/');
    if (slash == std::string::npos) {
        target.filename = path;
    } else {
        target.folder = path.substr(0, slash);
        target.filename = path.substr(slash + 1);
        BM_RETURN_IF_ERROR(domain::validateFolder(*target.folder));
    }
    BM_RETURN_IF_ERROR(domain::validateFilename(target.filename));
    return target;
}

Error unauthenticated() {
    return Error(ErrorCode::Unauthenticated, "missing or invalid API key");
}

Result<domain::ApiKey> authenticateBearer(ApiContext& context, std::string_view authorization) {
    constexpr std::string_view kScheme = "bearer ";
    if (authorization.size() <= kScheme.size()) {
        return unauthenticated();
    }
    for (size_t i = 0; i < kScheme.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(authorization[i])) != kScheme[i]) {
            return unauthenticated();
        }
    }
    std::string_view token = authorization.substr(kScheme.size());
    while (!token.empty() && token.front() == ' ') {
        token.remove_prefix(1);
    }
    auto key = context.store->findApiKeyByHash(crypto::sha256Hex(token));
    if (!key.ok() && key.error().code() == ErrorCode::NotFound) {
        return unauthenticated();
    }
    return key;
}

// Checks a method=put signed URL. The path names no project, so the keys
// tried are those of the project that already has a file at the path and
// those of the default project.
Result<domain::ApiKey> authenticateSignature(ApiContext& context, const httplib::Request& request,
                                             const std::string& path) {
    std::vector<std::string> project_ids;
    auto existing = context.store->findFileByDeliveryPath(path);
    if (existing.ok()) {
        project_ids.push_back(existing->project_id);
    } else if (existing.error().code() != ErrorCode::NotFound) {
        return existing.error();
    }
    // NOTE: a signed upload to a new path of a project other than the
    // default one is rejected, because nothing in the URL names its project.
    BM_ASSIGN_OR_RETURN(domain::Project default_project, context.store->ensureDefaultProject());
    if (project_ids.empty() || project_ids.front() != default_project.id) {
        project_ids.push_back(default_project.id);
    }

    SignedUrlQuery query = signedUrlQueryOf(request);
    std::optional<Error> rejection;
    for (const std::string& project_id : project_ids) {
        auto key = checkSignedUrl(context, project_id, path, query, "put", nowMillis() / 1000);
        if (key.ok() || key.error().code() != ErrorCode::PermissionDenied) {
            return key;
        }
        // An expired signature of one project is more useful to report than
        // a mismatch in another.
        if (!rejection || key.error().message() != "invalid signature") {
            rejection = key.error();
        }
    }
    return *rejection;
}

Result<domain::ApiKey> authenticateUpload(ApiContext& context, const httplib::Request& request,
                                          const std::string& path) {
    std::string authorization = request.get_header_value("Authorization");
    if (!authorization.empty()) {
        return authenticateBearer(context, authorization);
    }
    if (request.has_param("signature")) {
        return authenticateSignature(context, request, path);
    }
    return unauthenticated();
}

// Maps a probe failure to the upload's error. Limits and an unavailable
// sandbox keep their status, and everything else means unreadable media (422).
Error probeError(const Error& error) {
    if (error.code() == ErrorCode::Unavailable || error.code() == ErrorCode::ResourceExhausted) {
        return error;
    }
    return Error(ErrorCode::UnsupportedMedia, error.message(), error.detail());
}

void removeBlobAfterFailure(ApiContext& context, const domain::FileRecord& file) {
    Status removed = context.blobs->remove(file.storage_key);
    if (!removed.ok()) {
        log::get("api")->warn("remove uploaded bytes after a failed insert failed: {} file_id={}",
                              removed.error().toLogString(), file.id);
    }
}

// Probes the staged bytes, moves them into the blob store and inserts the
// media and its original file.
Result<domain::FileRecord> publishUpload(ApiContext& context, const std::string& staging_path,
                                         int64_t size, const UploadTarget& target,
                                         const domain::ApiKey& key) {
    if (!context.probe_file) {
        return Error::internal("probe upload: no probe is configured");
    }
    Result<MediaProperties> probed = context.probe_file(staging_path);
    if (!probed.ok()) {
        return probeError(probed.error());
    }
    const int64_t now = nowMillis();

    domain::MediaRecord media;
    media.id = newId("med_");
    media.project_id = key.project_id;
    media.kind = probed->kind;
    media.width = probed->width;
    media.height = probed->height;
    media.duration = probed->duration;
    media.background = probed->background;
    media.created_ms = now;
    media.updated_ms = now;

    domain::FileRecord file;
    file.id = newId("file_");
    file.project_id = key.project_id;
    file.media_id = media.id;
    file.object = "source";
    file.props = std::move(probed).value();
    file.filesize = size;
    file.ref = "original";
    file.folder = target.folder;
    file.filename = target.filename;
    file.original = true;
    file.created_by = key.id;
    file.status = "ready";
    file.created_ms = now;
    file.updated_ms = now;
    file.storage_key = key.project_id + "/" + file.id;
    if (!file.props.extension.empty()) {
        file.storage_key += "." + file.props.extension;
    }
    file.delivery_path = domain::deliveryPathFor(file);
    file.etag = domain::deliveryEtagFor(file);

    // Checked again because another project may have published the path
    // while the bytes arrived.
    BM_RETURN_IF_ERROR(checkPathOwner(context, file.delivery_path, key.project_id));
    BM_RETURN_IF_ERROR(context.blobs->putFile(file.storage_key, staging_path, true));
    Status inserted = context.store->insertMedia(media);
    if (inserted.ok()) {
        inserted = context.store->insertFile(file);
        if (!inserted.ok()) {
            auto removed = context.store->deleteMedia(media.project_id, media.id);
            if (!removed.ok()) {
                log::get("api")->warn(
                    "remove media row after a failed upload failed: {} "
                    "media_id={}",
                    removed.error().toLogString(), media.id);
            }
        }
    }
    if (!inserted.ok()) {
        removeBlobAfterFailure(context, file);
        return inserted.error();
    }
    log::get("api")->info("upload stored file_id={} media_id={} project_id={} bytes={}", file.id,
                          media.id, file.project_id, size);
    return file;
}

// Returns the key of recent_uploads_, which distinguishes uploads by
// project, path and size.
std::string recentUploadKey(const std::string& project_id, const std::string& path, int64_t total) {
    return project_id + "\n" + path + "\n" + std::to_string(total);
}

}  // namespace

std::optional<ChunkRange> parseChunkRange(std::string_view header) {
    constexpr std::string_view kUnit = "bytes";
    if (!header.starts_with(kUnit) || header.size() == kUnit.size() ||
        (header[kUnit.size()] != ' ' && header[kUnit.size()] != '=')) {
        return std::nullopt;
    }
    std::string_view rest = header.substr(kUnit.size() + 1);
    while (!rest.empty() && rest.front() == ' ') {
        rest.remove_prefix(1);
    }
    size_t dash = rest.find('-');
    size_t slash = rest.find('/');
    if (dash == std::string_view::npos || slash == std::string_view::npos || slash < dash) {
        return std::nullopt;
    }
    auto first = parseByteCount(rest.substr(0, dash));
    auto last = parseByteCount(rest.substr(dash + 1, slash - dash - 1));
    auto total = parseByteCount(rest.substr(slash + 1));
    if (!first || !last || !total || *first > *last || *last >= *total) {
        return std::nullopt;
    }
    return ChunkRange{*first, *last, *total};
}

// In-process state of one chunked upload.
struct UploadHandler::UploadState {
    // Shared while a chunk is written and recorded, exclusive to publish or
    // discard the upload.
    std::shared_mutex lock;
    // Set under the exclusive lock once the upload is over: the published
    // file, or the error that every later chunk gets.
    std::optional<Result<domain::FileRecord>> outcome;
    int users = 0;            // guarded by UploadHandler::mutex_
    int64_t finished_ms = 0;  // guarded by UploadHandler::mutex_; 0 while unfinished
};

UploadHandler::UploadHandler(std::shared_ptr<ApiContext> context) : context_(std::move(context)) {
}

UploadHandler::~UploadHandler() = default;

void UploadHandler::handle(const httplib::Request& request, httplib::Response& response,
                           const httplib::ContentReader& content_reader) {
    RequestScope scope = beginRequest(request, response, *context_);
    const std::string path = request.path.substr(1);
    // Notes whether the body was read, so a request rejected before that
    // can have its body discarded.
    bool body_read = false;
    const httplib::ContentReader tracked_reader(
        [&](httplib::ContentReceiver receiver) {
            body_read = true;
            return content_reader(std::move(receiver));
        },
        [&](httplib::MultipartContentHeader header, httplib::ContentReceiver receiver) {
            body_read = true;
            return content_reader(std::move(header), std::move(receiver));
        });

    Result<Reply> reply = [&]() -> Result<Reply> {
        BM_ASSIGN_OR_RETURN(domain::ApiKey key, authenticateUpload(*context_, request, path));
        scope.project_id = key.project_id;
        BM_ASSIGN_OR_RETURN(UploadTarget target, parseUploadTarget(path));
        BM_RETURN_IF_ERROR(checkPathOwner(*context_, target.path, key.project_id));
        std::string content_range = request.get_header_value("Content-Range");
        if (content_range.empty()) {
            return uploadWhole(request, tracked_reader, target, key);
        }
        auto range = parseChunkRange(content_range);
        if (!range) {
            return Error::invalidArgument("invalid Content-Range " + jsonQuoted(content_range) +
                                          ": expected \"bytes first-last/total\" with first <= "
                                          "last < total");
        }
        return uploadChunk(request, tracked_reader, target, key, *range);
    }();

    if (!reply.ok()) {
        if (!body_read) {
            discardBody(request, content_reader);
        }
        if (httpStatusFor(reply.error()) >= 500) {
            log::get("api")->error("upload failed: {} request_id={}", reply.error().toLogString(),
                                   scope.request_id);
        }
        writeError(response, scope, reply.error());
        return;
    }
    if (!reply->range_header.empty()) {
        response.set_header("Range", reply->range_header);
    }
    std::string self = reply->status == 201 ? "/files/" + reply->body.value("id", "") : "/" + path;
    writeObject(response, scope, reply->status, reply->body, self, "/files");
}

Result<UploadHandler::Reply> UploadHandler::uploadWhole(
    const httplib::Request& request, const httplib::ContentReader& content_reader,
    const UploadTarget& target, const domain::ApiKey& key) {
    const int64_t limit = context_->config.limits.max_upload_bytes;
    const Error too_large =
        Error::resourceExhausted("upload is larger than the limit of " + std::to_string(limit) +
                                 " bytes (max_upload_bytes)");
    if (contentLengthOf(request).value_or(0) > limit) {
        return too_large;
    }

    BM_RETURN_IF_ERROR(ensureFolder(stagingDir()));
    const std::string staging_path = stagingDir() + "/" + newId("put_") + ".part";
    FileDescriptor fd(::open(staging_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd.valid()) {
        return stagingFileError(errno, "create upload staging file", staging_path);
    }
    StagingFileGuard guard(staging_path);
    BM_ASSIGN_OR_RETURN(int64_t size, receiveBody(request, content_reader, fd.get(), staging_path,
                                                  0, limit, too_large));
    BM_RETURN_IF_ERROR(closeStagingFile(fd, staging_path));
    if (size == 0) {
        return Error::invalidArgument("upload is empty");
    }

    BM_ASSIGN_OR_RETURN(domain::FileRecord file,
                        publishUpload(*context_, staging_path, size, target, key));
    return Reply{201, fileToJson(file, *context_), {}};
}

Result<UploadHandler::Reply> UploadHandler::uploadChunk(
    const httplib::Request& request, const httplib::ContentReader& content_reader,
    const UploadTarget& target, const domain::ApiKey& key, const ChunkRange& range) {
    const int64_t limit = context_->config.limits.max_upload_bytes;
    if (range.total > limit) {
        return Error::resourceExhausted("upload of " + std::to_string(range.total) +
                                        " bytes is larger than the limit of " +
                                        std::to_string(limit) + " bytes (max_upload_bytes)");
    }
    const int64_t chunk_bytes = range.last - range.first + 1;
    auto declared = contentLengthOf(request);
    if (declared && *declared != chunk_bytes) {
        return Error::invalidArgument("chunk has a Content-Length of " + std::to_string(*declared) +
                                      " bytes but its Content-Range names " +
                                      std::to_string(chunk_bytes));
    }
    BM_RETURN_IF_ERROR(ensureFolder(stagingDir()));

    // Find the upload to write into. A chunk for the path and size of an
    // upload that finished moments ago repeats that upload (a retry after a
    // lost response, or a duplicate sent in parallel) when its bytes equal the
    // published ones; otherwise it starts a new upload. Comparing needs the
    // bytes, so such a chunk is staged in a file of its own first.
    std::optional<std::string> staged_path;
    std::optional<StagingFileGuard> staged_guard;
    ChunkStart start;
    for (int attempt = 0;; ++attempt) {
        if (attempt == kMaxStartAttempts) {
            return Error::conflict("other uploads of " + jsonQuoted(target.path) +
                                   " keep starting at the same time; retry");
        }
        BM_ASSIGN_OR_RETURN(start, startChunk(target, key, range.total));
        if (start.replaced_upload_id) {
            // The store keeps one upload per path, and the abandoned one
            // gives way to the new total.
            discardUpload(*start.replaced_upload_id,
                          "upload of " + jsonQuoted(target.path) +
                              " was replaced by an upload of another size; start again");
            continue;
        }
        if (!start.finished) {
            break;
        }
        if (!staged_path) {
            staged_path = stagingDir() + "/" + newId("chunk_") + ".part";
            staged_guard.emplace(*staged_path);
            BM_RETURN_IF_ERROR(stageChunk(request, content_reader, *staged_path, chunk_bytes));
        }
        BM_ASSIGN_OR_RETURN(bool repeated, sameBytes(*context_->blobs, *staged_path,
                                                     *start.finished, range.first, chunk_bytes));
        if (repeated) {
            return Reply{201, fileToJson(*start.finished, *context_), {}};
        }
        forgetRecentUpload(recentUploadKey(key.project_id, target.path, range.total),
                           start.finished->id);
    }
    domain::UploadRecord upload = std::move(*start.upload);
    std::shared_ptr<UploadState> state = std::move(start.state);
    ScopeExit release([this, upload_id = upload.id] { releaseState(upload_id); });

    // Write and record the chunk.
    {
        std::shared_lock lock(state->lock);
        if (state->outcome) {
            BM_ASSIGN_OR_RETURN(domain::FileRecord file, *state->outcome);
            return Reply{201, fileToJson(file, *context_), {}};
        }
        const std::string part = partPath(upload.id);
        FileDescriptor fd(::open(part.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
        if (!fd.valid()) {
            return stagingFileError(errno, "open upload staging file", part);
        }
        if (staged_path) {
            BM_RETURN_IF_ERROR(
                copyStagedChunk(*staged_path, fd.get(), part, range.first, chunk_bytes));
        } else {
            BM_ASSIGN_OR_RETURN(int64_t received,
                                receiveBody(request, content_reader, fd.get(), part, range.first,
                                            chunk_bytes, chunkTooLong(chunk_bytes)));
            BM_RETURN_IF_ERROR(checkChunkSize(received, chunk_bytes));
        }
        BM_RETURN_IF_ERROR(closeStagingFile(fd, part));
        BM_ASSIGN_OR_RETURN(upload, context_->store->addUploadRange(upload.id, range.first,
                                                                    range.last, nowMillis()));
    }

    // Respond with the ranges so far, or publish.
    if (!db::coversAllBytes(upload.received, upload.total_bytes)) {
        Json received = Json::array();
        std::string range_header;
        for (const auto& [first, last] : upload.received) {
            received.push_back(Json::array({first, last}));
            range_header += range_header.empty() ? "bytes=" : ",";
            range_header += std::to_string(first) + "-" + std::to_string(last);
        }
        return Reply{202, Json{{"received", received}, {"total", upload.total_bytes}},
                     range_header};
    }
    BM_ASSIGN_OR_RETURN(domain::FileRecord file, finishChunkedUpload(*state, upload, target, key));
    return Reply{201, fileToJson(file, *context_), {}};
}

Result<UploadHandler::ChunkStart> UploadHandler::startChunk(const UploadTarget& target,
                                                            const domain::ApiKey& key,
                                                            int64_t total) {
    const std::string recent_key = recentUploadKey(key.project_id, target.path, total);
    std::lock_guard guard(start_mutex_);
    const int64_t now = nowMillis();
    std::erase_if(recent_uploads_, [now](const auto& entry) {
        return now - entry.second.finished_ms > kOutcomeRetentionMs;
    });

    ChunkStart start;
    if (auto recent = recent_uploads_.find(recent_key); recent != recent_uploads_.end()) {
        start.finished = recent->second.file;
        return start;
    }
    domain::UploadRecord fresh;
    fresh.id = newId("upl_");
    fresh.project_id = key.project_id;
    fresh.path = target.path;
    fresh.total_bytes = total;
    fresh.created_ms = now;
    fresh.updated_ms = now;
    BM_ASSIGN_OR_RETURN(domain::UploadRecord upload, context_->store->getOrCreateUpload(fresh));
    if (upload.total_bytes != total) {
        if (now - upload.updated_ms < kAbandonedUploadMs) {
            return Error::conflict(
                "chunk names a total of " + std::to_string(total) + " bytes, but the upload of '" +
                target.path + "' in progress has a total of " + std::to_string(upload.total_bytes) +
                " bytes; send the rest of that upload, or " +
                "start again with the new total after it has received no chunk for " +
                std::to_string(kAbandonedUploadMs / 60000) + " minutes");
        }
        start.replaced_upload_id = upload.id;
        return start;
    }
    start.state = acquireState(upload.id);
    start.upload = std::move(upload);
    return start;
}

void UploadHandler::rememberRecentUpload(const std::string& recent_key,
                                         const domain::FileRecord& file) {
    std::lock_guard guard(start_mutex_);
    recent_uploads_[recent_key] = RecentUpload{file, nowMillis()};
}

void UploadHandler::forgetRecentUpload(const std::string& recent_key, const std::string& file_id) {
    std::lock_guard guard(start_mutex_);
    auto recent = recent_uploads_.find(recent_key);
    if (recent != recent_uploads_.end() && recent->second.file.id == file_id) {
        recent_uploads_.erase(recent);
    }
}

void UploadHandler::discardUpload(const std::string& upload_id, const std::string& reason) {
    std::shared_ptr<UploadState> state = acquireState(upload_id);
    ScopeExit release([this, &upload_id] { releaseState(upload_id); });
    std::unique_lock lock(state->lock);
    if (state->outcome) {
        return;
    }
    Status deleted = context_->store->deleteUpload(upload_id);
    if (!deleted.ok()) {
        log::get("api")->warn("discard upload failed: {} upload_id={}",
                              deleted.error().toLogString(), upload_id);
    }
    ::unlink(partPath(upload_id).c_str());
    state->outcome = Error::conflict(reason);
    markFinished(*state);
}

Result<domain::FileRecord> UploadHandler::finishChunkedUpload(UploadState& state,
                                                              const domain::UploadRecord& upload,
                                                              const UploadTarget& target,
                                                              const domain::ApiKey& key) {
    std::unique_lock lock(state.lock);
    if (state.outcome) {
        return *state.outcome;
    }
    const std::string part = partPath(upload.id);
    struct stat info {};
    if (::stat(part.c_str(), &info) != 0 || info.st_size != upload.total_bytes) {
        return Error::internal("finish upload: the staged bytes do not match the received ranges",
                               part);
    }

    Result<domain::FileRecord> published =
        publishUpload(*context_, part, upload.total_bytes, target, key);
    // A transient failure that left the staged bytes in place can be
    // retried by sending the final chunk again; anything else ends the
    // upload.
    if (!published.ok() && published.error().code() == ErrorCode::Unavailable && fs::exists(part)) {
        return published;
    }
    // The upload is remembered before its record is deleted, so a repeated
    // chunk finds one of them and never starts a new upload.
    if (published.ok()) {
        rememberRecentUpload(recentUploadKey(upload.project_id, upload.path, upload.total_bytes),
                             *published);
    }
    Status deleted = context_->store->deleteUpload(upload.id);
    if (!deleted.ok()) {
        log::get("api")->warn("delete finished upload failed: {} upload_id={}",
                              deleted.error().toLogString(), upload.id);
    }
    ::unlink(part.c_str());
    state.outcome = published;
    markFinished(state);
    return published;
}

std::shared_ptr<UploadHandler::UploadState> UploadHandler::acquireState(
    const std::string& upload_id) {
    std::lock_guard guard(mutex_);
    const int64_t now = nowMillis();
    for (auto it = states_.begin(); it != states_.end();) {
        const UploadState& state = *it->second;
        bool expired = state.users == 0 && state.finished_ms != 0 &&
                       now - state.finished_ms > kOutcomeRetentionMs;
        it = expired ? states_.erase(it) : std::next(it);
    }
    std::shared_ptr<UploadState>& state = states_[upload_id];
    if (!state) {
        state = std::make_shared<UploadState>();
    }
    ++state->users;
    return state;
}

void UploadHandler::releaseState(const std::string& upload_id) {
    std::lock_guard guard(mutex_);
    auto it = states_.find(upload_id);
    if (it == states_.end()) {
        return;
    }
    UploadState& state = *it->second;
    if (--state.users == 0 && state.finished_ms == 0) {
        states_.erase(it);
    }
}

void UploadHandler::markFinished(UploadState& state) {
    std::lock_guard guard(mutex_);
    state.finished_ms = nowMillis();
}

std::string UploadHandler::stagingDir() const {
    // Absolute, because the sandboxed probe runs in another working folder.
    std::error_code error;
    fs::path folder = fs::absolute(fs::path(context_->config.data_dir) / "uploads", error);
    return error ? context_->config.data_dir + "/uploads" : folder.string();
}

std::string UploadHandler::partPath(const std::string& upload_id) const {
    return stagingDir() + "/" + upload_id + ".part";
}

}  // namespace bitmill::api
