// Staging-file operations of uploads; see upload_staging.h.
#include "api/upload_staging.h"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <vector>

namespace bitmill::api {

namespace {

namespace fs = std::filesystem;

// A rejected body of at most this many bytes is still read and discarded,
// so that the client receives the error instead of a reset connection.
// httplib cannot close the connection after the response, so a larger body
// is left unread and the connection fails on the next read.
constexpr int64_t kDrainBytes = 8 * 1024 * 1024;

// Bytes per read when staged chunks are compared or copied.
constexpr size_t kCopyBytes = 64 * 1024;

// True when the request announces a body. httplib would wait for the
// connection to close to read a body that has neither a length nor chunked
// transfer encoding, so such a request counts as empty.
bool announcesBody(const httplib::Request& request) {
    std::string encoding = request.get_header_value("Transfer-Encoding");
    if (encoding.find("chunked") != std::string::npos) {
        return true;
    }
    return contentLengthOf(request).value_or(0) > 0;
}

// Reads `length` bytes at `offset` of a local file, or fewer at its end.
Result<size_t> readFileAt(int fd, char* buffer, size_t length, int64_t offset,
                          const std::string& path) {
    size_t done = 0;
    while (done < length) {
        ssize_t count =
            ::pread(fd, buffer + done, length - done, static_cast<off_t>(offset) + done);
        if (count < 0) {
            if (errno == EINTR) {
                continue;
            }
            return stagingFileError(errno, "read upload staging file", path);
        }
        if (count == 0) {
            break;
        }
        done += static_cast<size_t>(count);
    }
    return done;
}

// Reads `length` bytes at `offset` of a blob, or fewer at its end.
Result<size_t> readBlobAt(storage::BlobReader& reader, char* buffer, size_t length,
                          int64_t offset) {
    size_t done = 0;
    while (done < length) {
        BM_ASSIGN_OR_RETURN(size_t count, reader.readAt(offset + static_cast<int64_t>(done),
                                                        buffer + done, length - done));
        if (count == 0) {
            break;
        }
        done += count;
    }
    return done;
}

}  // namespace

Error stagingFileError(int error_number, std::string_view action, const std::string& path) {
    if (error_number == ENOSPC || error_number == EDQUOT) {
        return Error(ErrorCode::ResourceExhausted, std::string(action) + ": the disk is full",
                     path);
    }
    return Error::unavailable(std::string(action) + ": " + std::strerror(error_number), path);
}

Status writeAt(int fd, const char* data, size_t length, int64_t offset, const std::string& path) {
    while (length > 0) {
        ssize_t written = ::pwrite(fd, data, length, static_cast<off_t>(offset));
        if (written < 0) {
            if (errno == EINTR) {
                continue;
            }
            return stagingFileError(errno, "write upload", path);
        }
        data += written;
        length -= static_cast<size_t>(written);
        offset += written;
    }
    return okStatus();
}

std::optional<int64_t> parseByteCount(std::string_view text) {
    int64_t value = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || error != std::errc() || end != text.data() + text.size() || value < 0) {
        return std::nullopt;
    }
    return value;
}

std::optional<int64_t> contentLengthOf(const httplib::Request& request) {
    if (!request.has_header("Content-Length")) {
        return std::nullopt;
    }
    return parseByteCount(request.get_header_value("Content-Length"));
}

void discardBody(const httplib::Request& request, const httplib::ContentReader& content_reader) {
    auto declared = contentLengthOf(request);
    if (!announcesBody(request) || !declared || *declared > kDrainBytes) {
        return;
    }
    content_reader([](const char*, size_t) { return true; });
}

Result<int64_t> receiveBody(const httplib::Request& request,
                            const httplib::ContentReader& content_reader, int fd,
                            const std::string& path, int64_t offset, int64_t max_bytes,
                            const Error& too_long) {
    if (!announcesBody(request)) {
        return int64_t{0};
    }
    int64_t received = 0;
    int64_t discarded = 0;
    std::optional<Error> failure;
    bool complete = content_reader([&](const char* data, size_t length) {
        if (failure) {
            discarded += static_cast<int64_t>(length);
            return received + discarded <= kDrainBytes;
        }
        if (received + static_cast<int64_t>(length) > max_bytes) {
            failure = too_long;
            discarded += static_cast<int64_t>(length);
            return received + discarded <= kDrainBytes;
        }
        Status written = writeAt(fd, data, length, offset + received, path);
        if (!written.ok()) {
            failure = written.error();
            return false;
        }
        received += static_cast<int64_t>(length);
        return true;
    });
    if (failure) {
        return *failure;
    }
    if (!complete) {
        return Error::invalidArgument(
            "read upload body: the connection closed or timed out before the body was complete");
    }
    return received;
}

Status closeStagingFile(FileDescriptor& fd, const std::string& path) {
    if (fd.close() != 0) {
        return stagingFileError(errno, "write upload", path);
    }
    return okStatus();
}

Status ensureFolder(const std::string& folder) {
    std::error_code error;
    fs::create_directories(folder, error);
    if (error) {
        return Error::unavailable("create upload staging folder: " + error.message(), folder);
    }
    return okStatus();
}

Error chunkTooLong(int64_t chunk_bytes) {
    return Error::invalidArgument("chunk has more bytes than its Content-Range names (" +
                                  std::to_string(chunk_bytes) + ")");
}

Status checkChunkSize(int64_t received, int64_t chunk_bytes) {
    if (received != chunk_bytes) {
        return Error::invalidArgument("chunk has " + std::to_string(received) +
                                      " bytes but its Content-Range names " +
                                      std::to_string(chunk_bytes));
    }
    return okStatus();
}

Status stageChunk(const httplib::Request& request, const httplib::ContentReader& content_reader,
                  const std::string& path, int64_t chunk_bytes) {
    FileDescriptor fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd.valid()) {
        return stagingFileError(errno, "create upload staging file", path);
    }
    BM_ASSIGN_OR_RETURN(int64_t received, receiveBody(request, content_reader, fd.get(), path, 0,
                                                      chunk_bytes, chunkTooLong(chunk_bytes)));
    BM_RETURN_IF_ERROR(closeStagingFile(fd, path));
    return checkChunkSize(received, chunk_bytes);
}

Result<bool> sameBytes(storage::BlobStore& blobs, const std::string& staged_path,
                       const domain::FileRecord& file, int64_t first, int64_t length) {
    auto reader = blobs.openReader(file.storage_key);
    if (!reader.ok()) {
        if (reader.error().code() == ErrorCode::NotFound) {
            return false;  // deleted since
        }
        return reader.error();
    }
    if ((*reader)->size() < first + length) {
        return false;
    }
    FileDescriptor fd(::open(staged_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) {
        return stagingFileError(errno, "open upload staging file", staged_path);
    }
    std::vector<char> staged(kCopyBytes);
    std::vector<char> published(kCopyBytes);
    for (int64_t done = 0; done < length;) {
        size_t requested = static_cast<size_t>(std::min<int64_t>(kCopyBytes, length - done));
        BM_ASSIGN_OR_RETURN(size_t staged_count,
                            readFileAt(fd.get(), staged.data(), requested, done, staged_path));
        BM_ASSIGN_OR_RETURN(size_t published_count,
                            readBlobAt(**reader, published.data(), requested, first + done));
        if (staged_count != requested || published_count != requested ||
            std::memcmp(staged.data(), published.data(), requested) != 0) {
            return false;
        }
        done += static_cast<int64_t>(requested);
    }
    return true;
}

Status copyStagedChunk(const std::string& staged_path, int part_fd, const std::string& part_path,
                       int64_t offset, int64_t length) {
    FileDescriptor fd(::open(staged_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) {
        return stagingFileError(errno, "open upload staging file", staged_path);
    }
    std::vector<char> buffer(kCopyBytes);
    for (int64_t done = 0; done < length;) {
        size_t requested = static_cast<size_t>(std::min<int64_t>(kCopyBytes, length - done));
        BM_ASSIGN_OR_RETURN(size_t count,
                            readFileAt(fd.get(), buffer.data(), requested, done, staged_path));
        if (count != requested) {
            return Error::internal("copy upload chunk: the staged chunk is shorter than expected",
                                   staged_path);
        }
        BM_RETURN_IF_ERROR(writeAt(part_fd, buffer.data(), count, offset + done, part_path));
        done += static_cast<int64_t>(count);
    }
    return okStatus();
}

}  // namespace bitmill::api
