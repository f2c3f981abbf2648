// Uploads on the delivery listener: PUT /{folder}/{filename} with the whole
// body, or in chunks that each carry a Content-Range. Bytes are staged
// under {data_dir}/uploads, probed in a sandbox, then published as the
// original file of a new media.
#pragma once

#include <httplib.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "api/api.h"
#include "core/error.h"
#include "core/json.h"
#include "domain/records.h"

namespace bitmill::api {

// The Content-Range of one chunk: bytes first to last (inclusive) of total.
struct ChunkRange {
    int64_t first = 0;
    int64_t last = 0;
    int64_t total = 0;
};

// Parses "bytes first-last/total" (also "bytes=first-last/total");
// nullopt when malformed, when first > last or when last >= total.
std::optional<ChunkRange> parseChunkRange(std::string_view header);

// Target of an upload: PUT /{folder}/{filename} or PUT /{filename}.
struct UploadTarget {
    std::string path;  // folder/filename as decoded, no leading '/'
    std::optional<std::string> folder;
    std::string filename;
};

class UploadHandler {
  public:
    explicit UploadHandler(std::shared_ptr<ApiContext> context);
    ~UploadHandler();

    UploadHandler(const UploadHandler&) = delete;
    UploadHandler& operator=(const UploadHandler&) = delete;

    // Handles PUT /{path} authorized by a Bearer key or a method=put
    // signed URL: 201 with the File when the upload is complete, 202 with
    // the received ranges while chunks are missing. Thread-safe: chunks of
    // one upload may arrive in parallel, out of order and repeated, and the
    // upload is published exactly once. 409 when a file of another project
    // is delivered at the path, or when a chunk names another total than
    // the upload of the path in progress.
    void handle(const httplib::Request& request, httplib::Response& response,
                const httplib::ContentReader& content_reader);

  private:
    struct UploadState;

    // Successful response of an upload request.
    struct Reply {
        int status = 201;
        Json body;
        std::string range_header;  // "bytes=0-99,…" for partial uploads
    };

    Result<Reply> uploadWhole(const httplib::Request& request,
                              const httplib::ContentReader& content_reader,
                              const UploadTarget& target, const domain::ApiKey& key);
    Result<Reply> uploadChunk(const httplib::Request& request,
                              const httplib::ContentReader& content_reader,
                              const UploadTarget& target, const domain::ApiKey& key,
                              const ChunkRange& range);
    // Outcome of starting a chunk: the upload to write into, or why there
    // is none.
    struct ChunkStart {
        // The upload to write into, with its state acquired.
        std::optional<domain::UploadRecord> upload;
        std::shared_ptr<UploadState> state;
        // The file of an upload of this path and size that finished moments ago.
        std::optional<domain::FileRecord> finished;
        // An unfinished upload of this path with another size that has
        // received no chunk for a while, so the new size replaces it.
        std::optional<std::string> replaced_upload_id;
    };

    struct RecentUpload {
        domain::FileRecord file;
        int64_t finished_ms = 0;
    };

    // Finds the upload of target + total, creating it, unless an upload of
    // that path and size finished moments ago or one of another size is
    // unfinished. Fails with Conflict when that other upload still receives
    // chunks.
    Result<ChunkStart> startChunk(const UploadTarget& target, const domain::ApiKey& key,
                                  int64_t total);
    void rememberRecentUpload(const std::string& recent_key, const domain::FileRecord& file);
    void forgetRecentUpload(const std::string& recent_key, const std::string& file_id);
    // Ends unfinished upload `upload_id`. Removes its record and staged
    // bytes, so its later chunks fail with Conflict `reason`.
    void discardUpload(const std::string& upload_id, const std::string& reason);
    // Publishes a complete chunked upload once. Later callers get the same
    // outcome.
    Result<domain::FileRecord> finishChunkedUpload(UploadState& state,
                                                   const domain::UploadRecord& upload,
                                                   const UploadTarget& target,
                                                   const domain::ApiKey& key);

    // Returns the in-process state of upload `upload_id`, creating it, and
    // counts the caller as a user until releaseState().
    std::shared_ptr<UploadState> acquireState(const std::string& upload_id);
    void releaseState(const std::string& upload_id);
    // Records that the state's outcome is final, so it outlives its users
    // for a while and repeated final chunks get the same response.
    void markFinished(UploadState& state);

    // Returns the absolute {data_dir}/uploads, read from the context on
    // each call because the composition root may still change the config
    // after construction.
    std::string stagingDir() const;
    std::string partPath(const std::string& upload_id) const;

    // Lock order: an UploadState's lock, then start_mutex_, then mutex_.
    std::shared_ptr<ApiContext> context_;
    // Serializes chunk starts and guards recent_uploads_.
    std::mutex start_mutex_;
    // Finished chunked uploads by project, path and size, kept for a while.
    std::map<std::string, RecentUpload> recent_uploads_;
    // Guards states_ and the users and finished_ms of every UploadState.
    std::mutex mutex_;
    std::map<std::string, std::shared_ptr<UploadState>> states_;
};

}  // namespace bitmill::api
