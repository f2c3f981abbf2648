// File operations behind uploads: a request body streamed into a staging
// file at an offset, and staged chunks compared with published bytes or
// copied into a part file. Bodies are streamed in pieces, never read into
// memory whole.
#pragma once

#include <httplib.h>
#include <unistd.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"
#include "domain/records.h"
#include "storage/blob_store.h"

namespace bitmill::api {

// Owns a file descriptor.
class FileDescriptor {
  public:
    explicit FileDescriptor(int fd) : fd_(fd) {}
    ~FileDescriptor() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }
    FileDescriptor(const FileDescriptor&) = delete;
    FileDescriptor& operator=(const FileDescriptor&) = delete;

    int get() const { return fd_; }
    bool valid() const { return fd_ >= 0; }

    // Closes now, so a write error that close() reports is not lost.
    int close() {
        int result = ::close(fd_);
        fd_ = -1;
        return result;
    }

  private:
    int fd_;
};

// Removes a staging file when the upload request ends. After a successful
// publish the file was moved away and the removal finds nothing.
class StagingFileGuard {
  public:
    explicit StagingFileGuard(std::string path) : path_(std::move(path)) {}
    ~StagingFileGuard() { ::unlink(path_.c_str()); }
    StagingFileGuard(const StagingFileGuard&) = delete;
    StagingFileGuard& operator=(const StagingFileGuard&) = delete;

  private:
    std::string path_;
};

// Maps an errno of a staging-file operation to an Error: ResourceExhausted
// for a full disk, Unavailable otherwise. The path goes to the detail only.
Error stagingFileError(int error_number, std::string_view action, const std::string& path);

// Writes all of `data` at `offset` of `fd`.
Status writeAt(int fd, const char* data, size_t length, int64_t offset, const std::string& path);

// Parses a decimal count of bytes (0 or more), or returns nullopt when it
// is malformed.
std::optional<int64_t> parseByteCount(std::string_view text);

// Returns the request's Content-Length, or nullopt when it is missing or
// malformed.
std::optional<int64_t> contentLengthOf(const httplib::Request& request);

// Reads and discards the body of a rejected request when it is at most
// 8 MiB, so that the client receives the error instead of a reset
// connection. httplib cannot close the connection after the response, so a
// larger body is left unread and the connection fails on the next read.
void discardBody(const httplib::Request& request, const httplib::ContentReader& content_reader);

// Streams the request body into `fd` from `offset` and returns the byte
// count. Fails with `too_long` once more than `max_bytes` arrive, and then
// discards the rest of a body of at most 8 MiB (see discardBody). A request
// without Content-Length or chunked transfer encoding has no body.
Result<int64_t> receiveBody(const httplib::Request& request,
                            const httplib::ContentReader& content_reader, int fd,
                            const std::string& path, int64_t offset, int64_t max_bytes,
                            const Error& too_long);

// Closes `fd` and reports a write error that close() returns.
Status closeStagingFile(FileDescriptor& fd, const std::string& path);

// Creates `folder` and its parents.
Status ensureFolder(const std::string& folder);

// Returns the error of a chunk body longer than its Content-Range.
Error chunkTooLong(int64_t chunk_bytes);

// Checks that a chunk body had as many bytes as its Content-Range names.
Status checkChunkSize(int64_t received, int64_t chunk_bytes);

// Streams a chunk's body into a new file at `path`.
Status stageChunk(const httplib::Request& request, const httplib::ContentReader& content_reader,
                  const std::string& path, int64_t chunk_bytes);

// Returns true when the staged chunk at `staged_path` equals bytes
// [first, first + length) of the published `file`, false when they differ
// or the file is gone.
Result<bool> sameBytes(storage::BlobStore& blobs, const std::string& staged_path,
                       const domain::FileRecord& file, int64_t first, int64_t length);

// Copies a staged chunk of `length` bytes into the part file at `offset`.
Status copyStagedChunk(const std::string& staged_path, int part_fd, const std::string& part_path,
                       int64_t offset, int64_t length);

}  // namespace bitmill::api
