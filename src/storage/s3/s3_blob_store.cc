// S3 BlobStore: single PUTs and multipart uploads for writes, block-sized
// ranged GETs for reads.
#include "storage/s3/s3_blob_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "core/log.h"
#include "storage/blob_key.h"
#include "storage/s3/s3_client.h"

namespace bitmill::storage::s3 {

namespace {

// Size of the GET behind reads smaller than it. Bigger blocks mean fewer
// requests for sequential readers and more wasted bytes for random ones.
constexpr int64_t kReadAheadBytes = int64_t{4} << 20;
constexpr size_t kHashChunkBytes = 1 << 20;

std::shared_ptr<spdlog::logger> logger() {
    static const std::shared_ptr<spdlog::logger> instance = log::get("storage");
    return instance;
}

// Owns one file descriptor.
class FileDescriptor {
  public:
    explicit FileDescriptor(int fd) : fd_(fd) {}
    FileDescriptor(const FileDescriptor&) = delete;
    FileDescriptor& operator=(const FileDescriptor&) = delete;
    ~FileDescriptor() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }

    int get() const { return fd_; }
    bool valid() const { return fd_ >= 0; }

  private:
    int fd_;
};

Error localFileError(int error_number, std::string_view action, const std::string& path) {
    std::string detail = fmt::format("path={} ({})", path, std::strerror(error_number));
    if (error_number == ENOENT || error_number == ENOTDIR) {
        return {ErrorCode::NotFound, fmt::format("{}: source file not found", action), detail};
    }
    return Error::unavailable(
        fmt::format("{}: reading the source file failed: {}", action, std::strerror(error_number)),
        detail);
}

// Returns the hex SHA-256 of bytes [offset, offset + length) of `fd`.
Result<std::string> hashFileRange(int fd, int64_t offset, int64_t length, std::string_view action,
                                  const std::string& path) {
    Sha256 hash;
    std::vector<char> buffer(static_cast<size_t>(std::min<int64_t>(length, kHashChunkBytes)));
    int64_t done = 0;
    while (done < length) {
        size_t requested = static_cast<size_t>(std::min<int64_t>(length - done, buffer.size()));
        ssize_t got = ::pread(fd, buffer.data(), requested, offset + done);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            return localFileError(errno, action, path);
        }
        if (got == 0) {
            return Error::unavailable(
                fmt::format("{}: the source file shrank during the upload", action),
                fmt::format("path={}", path));
        }
        hash.update(std::string_view(buffer.data(), static_cast<size_t>(got)));
        done += got;
    }
    return hash.finishHex();
}

// Aborts a multipart upload after a failure. The failure is what the caller
// reports, so an abort that fails too is only logged: the parts then stay
// until a bucket lifecycle rule removes them.
void abortQuietly(S3Client& client, const std::string& object_key, const std::string& upload_id) {
    Status aborted = client.abortMultipartUpload(object_key, upload_id);
    if (!aborted.ok()) {
        logger()->warn("cannot abort S3 multipart upload key={} error=\"{}\"", object_key,
                       aborted.error().toLogString());
    }
}

class S3BlobWriter final : public BlobWriter {
  public:
    S3BlobWriter(std::shared_ptr<S3Client> client, std::string object_key)
        : client_(std::move(client)),
          object_key_(std::move(object_key)),
          part_bytes_(static_cast<size_t>(client_->settings().part_bytes)) {}

    S3BlobWriter(const S3BlobWriter&) = delete;
    S3BlobWriter& operator=(const S3BlobWriter&) = delete;

    ~S3BlobWriter() override {
        if (!upload_id_.empty() && !completed_) {
            abortQuietly(*client_, object_key_, upload_id_);
        }
    }

    Status write(std::string_view data) override {
        if (finished_) {
            return Error::internal("write object: the writer was already committed or failed");
        }
        while (!data.empty()) {
            size_t appended = std::min(data.size(), part_bytes_ - buffer_.size());
            buffer_.append(data.substr(0, appended));
            data.remove_prefix(appended);
            if (buffer_.size() == part_bytes_) {
                if (Status flushed = flushPart(); !flushed.ok()) {
                    fail();
                    return flushed;
                }
            }
        }
        return okStatus();
    }

    Status commit() override {
        if (finished_) {
            return Error::internal("commit object: the writer was already committed or failed");
        }
        finished_ = true;
        if (upload_id_.empty()) {
            return client_->putObject(object_key_, RequestBody::memory(buffer_));
        }
        if (!buffer_.empty()) {
            if (Status flushed = flushPart(); !flushed.ok()) {
                fail();
                return flushed;
            }
        }
        if (Status completed = client_->completeMultipartUpload(object_key_, upload_id_, parts_);
            !completed.ok()) {
            fail();
            return completed;
        }
        completed_ = true;
        return okStatus();
    }

  private:
    // Uploads the buffer as the next part, starting the multipart upload on
    // the first call.
    Status flushPart() {
        if (static_cast<int64_t>(parts_.size()) >= kMaxParts) {
            return Error::resourceExhausted(fmt::format(
                "write object: more than {} parts of {} bytes. Raise part_size in the storage URL",
                kMaxParts, part_bytes_));
        }
        if (upload_id_.empty()) {
            BM_ASSIGN_OR_RETURN(upload_id_, client_->createMultipartUpload(object_key_));
        }
        int number = static_cast<int>(parts_.size()) + 1;
        BM_ASSIGN_OR_RETURN(std::string etag, client_->uploadPart(object_key_, upload_id_, number,
                                                                  RequestBody::memory(buffer_)));
        parts_.push_back({number, std::move(etag)});
        buffer_.clear();
        return okStatus();
    }

    void fail() {
        finished_ = true;
        if (!upload_id_.empty()) {
            abortQuietly(*client_, object_key_, upload_id_);
            upload_id_.clear();
        }
    }

    std::shared_ptr<S3Client> client_;
    std::string object_key_;
    size_t part_bytes_;
    std::string buffer_;
    std::string upload_id_;
    std::vector<UploadedPart> parts_;
    bool finished_ = false;
    bool completed_ = false;
};

class S3BlobReader final : public BlobReader {
  public:
    S3BlobReader(std::shared_ptr<S3Client> client, std::string object_key, ObjectInfo info)
        : client_(std::move(client)), object_key_(std::move(object_key)), info_(std::move(info)) {}

    int64_t size() const override { return info_.size; }

    Result<size_t> readAt(int64_t offset, char* buffer, size_t length) override {
        if (offset < 0) {
            return Error::invalidArgument(fmt::format("read object: invalid offset {}", offset));
        }
        if (offset >= info_.size) {
            return size_t{0};
        }
        const size_t requested = static_cast<size_t>(
            std::min<int64_t>(static_cast<int64_t>(length), info_.size - offset));
        size_t done = 0;
        while (done < requested) {
            int64_t position = offset + static_cast<int64_t>(done);
            size_t remaining = requested - done;
            if (!inBlock(position) && static_cast<int64_t>(remaining) >= kReadAheadBytes) {
                // Large reads go straight into the caller's buffer.
                BM_ASSIGN_OR_RETURN(
                    size_t got, fetch(position, static_cast<int64_t>(remaining), buffer + done));
                done += got;
                continue;
            }
            if (!inBlock(position)) {
                BM_RETURN_IF_ERROR(fillBlock(position));
            }
            size_t block_offset = static_cast<size_t>(position - block_start_);
            size_t copied = std::min(remaining, block_.size() - block_offset);
            std::memcpy(buffer + done, block_.data() + block_offset, copied);
            done += copied;
        }
        return done;
    }

  private:
    bool inBlock(int64_t position) const {
        return position >= block_start_ &&
               position < block_start_ + static_cast<int64_t>(block_.size());
    }

    Status fillBlock(int64_t position) {
        int64_t length = std::min(kReadAheadBytes, info_.size - position);
        block_.resize(static_cast<size_t>(length));
        block_start_ = position;
        Result<size_t> got = fetch(position, length, block_.data());
        if (!got.ok()) {
            block_.clear();
            return got.error();
        }
        block_.resize(*got);
        return okStatus();
    }

    // GETs [position, position + length); fails instead of returning zero
    // bytes, so the read loop always advances.
    Result<size_t> fetch(int64_t position, int64_t length, char* target) {
        BM_ASSIGN_OR_RETURN(size_t got,
                            client_->getRange(object_key_, position, length, info_.etag, target));
        if (got == 0) {
            return Error::internal("read object: S3 returned no data inside the object",
                                   fmt::format("key='{}' offset={}", object_key_, position));
        }
        return got;
    }

    std::shared_ptr<S3Client> client_;
    std::string object_key_;
    ObjectInfo info_;
    std::string block_;
    int64_t block_start_ = 0;
};

class S3BlobStore final : public BlobStore {
  public:
    explicit S3BlobStore(std::shared_ptr<S3Client> client) : client_(std::move(client)) {}

    Status putFile(const std::string& key, const std::string& local_path, bool move) override {
        constexpr std::string_view kAction = "store file";
        BM_RETURN_IF_ERROR(checkBlobKey(key));
        FileDescriptor file(::open(local_path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!file.valid()) {
            return localFileError(errno, kAction, local_path);
        }
        struct stat info {};
        if (::fstat(file.get(), &info) != 0) {
            return localFileError(errno, kAction, local_path);
        }
        const int64_t size = static_cast<int64_t>(info.st_size);
        const std::string object_key = client_->objectKey(key);

        const int64_t part_bytes = partBytesFor(size);
        if (part_bytes > kMaxPartBytes) {
            return Error::resourceExhausted(fmt::format(
                "{}: the file is larger than S3's maximum object size ({} parts of {} bytes)",
                kAction, kMaxParts, kMaxPartBytes));
        }
        if (size <= part_bytes) {
            RequestBody body = RequestBody::fileRange(file.get(), 0, size);
            BM_ASSIGN_OR_RETURN(body.sha256,
                                hashFileRange(file.get(), 0, size, kAction, local_path));
            BM_RETURN_IF_ERROR(client_->putObject(object_key, body));
        } else {
            BM_RETURN_IF_ERROR(
                uploadFileParts(file.get(), size, part_bytes, object_key, local_path));
        }
        if (move && ::unlink(local_path.c_str()) != 0) {
            // The object is stored; a leftover source only wastes space.
            logger()->warn("cannot remove moved file path={} error=\"{}\"", local_path,
                           std::strerror(errno));
        }
        return okStatus();
    }

    Result<std::unique_ptr<BlobWriter>> openWriter(const std::string& key) override {
        BM_RETURN_IF_ERROR(checkBlobKey(key));
        return std::unique_ptr<BlobWriter>(new S3BlobWriter(client_, client_->objectKey(key)));
    }

    Result<std::unique_ptr<BlobReader>> openReader(const std::string& key) override {
        BM_RETURN_IF_ERROR(checkBlobKey(key));
        std::string object_key = client_->objectKey(key);
        BM_ASSIGN_OR_RETURN(ObjectInfo info, client_->headObject(object_key));
        return std::unique_ptr<BlobReader>(
            new S3BlobReader(client_, std::move(object_key), std::move(info)));
    }

    Result<BlobInfo> stat(const std::string& key) override {
        BM_RETURN_IF_ERROR(checkBlobKey(key));
        BM_ASSIGN_OR_RETURN(ObjectInfo info, client_->headObject(client_->objectKey(key)));
        BlobInfo blob;
        blob.size = info.size;
        blob.modified_ms = info.modified_seconds * 1000;
        return blob;
    }

    Status remove(const std::string& key) override {
        BM_RETURN_IF_ERROR(checkBlobKey(key));
        return client_->deleteObject(client_->objectKey(key));
    }

    std::optional<std::string> localPath(const std::string& /*key*/) override {
        return std::nullopt;
    }

    std::optional<std::string> presignGet(const std::string& key,
                                          int64_t expires_seconds) override {
        if (!checkBlobKey(key).ok()) {
            return std::nullopt;
        }
        int64_t clamped = std::clamp<int64_t>(expires_seconds, 1, kMaxPresignSeconds);
        return client_->presignGetUrl(client_->objectKey(key), clamped);
    }

  private:
    // Returns the configured part size, or the smallest size that fits the
    // file in kMaxParts parts when that is larger.
    int64_t partBytesFor(int64_t size) const {
        int64_t needed = (size + kMaxParts - 1) / kMaxParts;
        return std::max(client_->settings().part_bytes, needed);
    }

    Status uploadFileParts(int fd, int64_t size, int64_t part_bytes, const std::string& object_key,
                           const std::string& local_path) {
        constexpr std::string_view kAction = "store file";
        BM_ASSIGN_OR_RETURN(std::string upload_id, client_->createMultipartUpload(object_key));
        std::vector<UploadedPart> parts;
        for (int64_t offset = 0; offset < size; offset += part_bytes) {
            int64_t length = std::min(part_bytes, size - offset);
            RequestBody body = RequestBody::fileRange(fd, offset, length);
            Result<std::string> hash = hashFileRange(fd, offset, length, kAction, local_path);
            if (!hash.ok()) {
                abortQuietly(*client_, object_key, upload_id);
                return hash.error();
            }
            body.sha256 = std::move(*hash);
            int number = static_cast<int>(parts.size()) + 1;
            Result<std::string> etag = client_->uploadPart(object_key, upload_id, number, body);
            if (!etag.ok()) {
                abortQuietly(*client_, object_key, upload_id);
                return etag.error();
            }
            parts.push_back({number, std::move(*etag)});
        }
        Status completed = client_->completeMultipartUpload(object_key, upload_id, parts);
        if (!completed.ok()) {
            abortQuietly(*client_, object_key, upload_id);
        }
        return completed;
    }

    std::shared_ptr<S3Client> client_;
};

}  // namespace

Result<BlobStorePtr> openS3BlobStore(const S3Settings& settings) {
    auto client = std::make_shared<S3Client>(settings);
    BM_RETURN_IF_ERROR(client->headBucket());
    log::get("storage")->info(
        "storage opened backend=s3 endpoint={}://{} bucket={} prefix={} region={} path_style={} "
        "part_bytes={}",
        settings.endpoint_scheme, settings.endpoint_host, settings.bucket, settings.prefix,
        settings.region, settings.path_style, settings.part_bytes);
    return BlobStorePtr(std::make_shared<S3BlobStore>(std::move(client)));
}

}  // namespace bitmill::storage::s3
