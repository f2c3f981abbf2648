// Local-disk BlobStore: temporary file, fsync, rename for every publish;
// pread for range reads.
#include "storage/local/local_blob_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <vector>

#include "core/ids.h"
#include "core/log.h"
#include "storage/blob_key.h"

namespace bitmill::storage {

namespace {

namespace fs = std::filesystem;

constexpr const char* kTempFolder = ".tmp";
constexpr size_t kCopyChunkBytes = 1 << 20;
// Temporary files older than this at startup belong to writes that a crash
// interrupted; younger ones may belong to another running process.
constexpr auto kStaleTempAge = std::chrono::hours(24);

// Converts errno `error_number` from `action` into an Error; `detail`
// names the path, which stays out of the client-visible message.
Error systemError(int error_number, std::string_view action, const std::string& detail) {
    std::string message = fmt::format("{}: {}", action, std::strerror(error_number));
    std::string full_detail = fmt::format("{} ({})", detail, std::strerror(error_number));
    switch (error_number) {
        case ENOENT:
        case ENOTDIR:
            return {ErrorCode::NotFound, fmt::format("{}: object not found", action), full_detail};
        case ENOSPC:
        case EDQUOT:
            return {ErrorCode::ResourceExhausted, message, full_detail};
        default:
            return Error::unavailable(message, full_detail);
    }
}

Error systemError(const std::error_code& error, std::string_view action,
                  const std::string& detail) {
    return systemError(error.value(), action, detail);
}

// Owns one file descriptor.
class FileDescriptor {
public:
    FileDescriptor() = default;
    explicit FileDescriptor(int fd) : fd_(fd) {}
    FileDescriptor(FileDescriptor&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
    FileDescriptor& operator=(FileDescriptor&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = other.fd_;
            other.fd_ = -1;
        }
        return *this;
    }
    FileDescriptor(const FileDescriptor&) = delete;
    ~FileDescriptor() { reset(); }

    int get() const { return fd_; }
    bool valid() const { return fd_ >= 0; }

    // Closes the descriptor and reports close()'s error, which on some file
    // systems is the first sign that written data did not reach the disk.
    int close() {
        int result = ::close(fd_);
        fd_ = -1;
        return result == 0 ? 0 : errno;
    }

private:
    void reset() {
        if (fd_ >= 0) {
            ::close(fd_);
            fd_ = -1;
        }
    }

    int fd_ = -1;
};

Status fsyncPath(const fs::path& path, int flags, std::string_view action) {
    FileDescriptor fd(::open(path.c_str(), flags | O_CLOEXEC));
    if (!fd.valid()) {
        return systemError(errno, action, path.string());
    }
    if (::fsync(fd.get()) != 0) {
        return systemError(errno, action, path.string());
    }
    return okStatus();
}

// Renames the complete file `source` to `target`, creating target's folders,
// and syncs the folder so the new name survives a crash.
Status publishFile(const fs::path& source, const fs::path& target, std::string_view action) {
    std::error_code error;
    fs::create_directories(target.parent_path(), error);
    if (error) {
        return systemError(error, action, target.parent_path().string());
    }
    if (::rename(source.c_str(), target.c_str()) != 0) {
        return systemError(errno, action, source.string() + " -> " + target.string());
    }
    return fsyncPath(target.parent_path(), O_RDONLY | O_DIRECTORY, action);
}

Status writeAll(int fd, std::string_view data, std::string_view action, const fs::path& path) {
    while (!data.empty()) {
        ssize_t written = ::write(fd, data.data(), data.size());
        if (written < 0) {
            if (errno == EINTR) {
                continue;
            }
            return systemError(errno, action, path.string());
        }
        data.remove_prefix(static_cast<size_t>(written));
    }
    return okStatus();
}

// Copies the rest of `source` into `target`: copy_file_range first (which
// lets the kernel clone or copy without user-space buffers), and a bounded
// read/write loop when the file systems do not support it.
Status copyContents(int source, int target, std::string_view action, const fs::path& path) {
    while (true) {
        ssize_t copied = ::copy_file_range(source, nullptr, target, nullptr, kCopyChunkBytes, 0);
        if (copied == 0) {
            return okStatus();
        }
        if (copied > 0) {
            continue;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP) {
            break;
        }
        return systemError(errno, action, path.string());
    }
    // copy_file_range advanced both file offsets, so the loop continues
    // where it stopped.
    std::vector<char> buffer(kCopyChunkBytes);
    while (true) {
        ssize_t got = ::read(source, buffer.data(), buffer.size());
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            return systemError(errno, action, path.string());
        }
        if (got == 0) {
            return okStatus();
        }
        BM_RETURN_IF_ERROR(
            writeAll(target, std::string_view(buffer.data(), static_cast<size_t>(got)), action,
                     path));
    }
}

// A file being written in the temporary folder; removed unless published.
class TempFile {
public:
    static Result<TempFile> create(const fs::path& temp_folder, std::string_view action) {
        fs::path path = temp_folder / (randomBase62(20) + ".part");
        int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0) {
            return systemError(errno, action, path.string());
        }
        return TempFile(FileDescriptor(fd), std::move(path));
    }

    TempFile(TempFile&& other) noexcept
        : fd_(std::move(other.fd_)), path_(std::move(other.path_)), keep_(other.keep_) {
        other.keep_ = true;
    }
    TempFile& operator=(TempFile&&) = delete;
    ~TempFile() {
        if (!keep_) {
            ::unlink(path_.c_str());
        }
    }

    int fd() const { return fd_.get(); }
    const fs::path& path() const { return path_; }

    // Syncs and closes the file, then renames it to `target`.
    Status publish(const fs::path& target, std::string_view action) {
        if (::fsync(fd_.get()) != 0) {
            return systemError(errno, action, path_.string());
        }
        if (int error_number = fd_.close(); error_number != 0) {
            return systemError(error_number, action, path_.string());
        }
        BM_RETURN_IF_ERROR(publishFile(path_, target, action));
        keep_ = true;
        return okStatus();
    }

private:
    TempFile(FileDescriptor fd, fs::path path) : fd_(std::move(fd)), path_(std::move(path)) {}

    FileDescriptor fd_;
    fs::path path_;
    bool keep_ = false;
};

class LocalBlobWriter final : public BlobWriter {
public:
    LocalBlobWriter(TempFile file, fs::path target)
        : file_(std::move(file)), target_(std::move(target)) {}

    Status write(std::string_view data) override {
        if (finished_) {
            return Error::internal("write object: the writer was already committed or failed");
        }
        Status written = writeAll(file_.fd(), data, "write object", file_.path());
        if (!written.ok()) {
            finished_ = true;
        }
        return written;
    }

    Status commit() override {
        if (finished_) {
            return Error::internal("commit object: the writer was already committed or failed");
        }
        finished_ = true;
        return file_.publish(target_, "commit object");
    }

private:
    TempFile file_;
    fs::path target_;
    bool finished_ = false;
};

class LocalBlobReader final : public BlobReader {
public:
    LocalBlobReader(FileDescriptor fd, int64_t size, fs::path path)
        : fd_(std::move(fd)), size_(size), path_(std::move(path)) {}

    int64_t size() const override { return size_; }

    Result<size_t> readAt(int64_t offset, char* buffer, size_t length) override {
        if (offset < 0) {
            return Error::invalidArgument(fmt::format("read object: invalid offset {}", offset));
        }
        while (true) {
            ssize_t got = ::pread(fd_.get(), buffer, length, offset);
            if (got >= 0) {
                return static_cast<size_t>(got);
            }
            if (errno != EINTR) {
                return systemError(errno, "read object", path_.string());
            }
        }
    }

private:
    FileDescriptor fd_;
    int64_t size_;
    fs::path path_;
};

class LocalBlobStore final : public BlobStore {
public:
    explicit LocalBlobStore(fs::path root) : root_(std::move(root)), temp_(root_ / kTempFolder) {}

    Status putFile(const std::string& key, const std::string& local_path, bool move) override {
        constexpr std::string_view kAction = "store file";
        BM_ASSIGN_OR_RETURN(fs::path target, pathFor(key));
        if (::access(local_path.c_str(), F_OK) != 0) {
            return Error{ErrorCode::NotFound,
                         fmt::format("{}: source file not found", kAction), local_path};
        }
        if (move) {
            // Sync the data before the rename makes it visible under the key.
            BM_RETURN_IF_ERROR(fsyncPath(local_path, O_RDONLY, kAction));
            std::error_code error;
            fs::create_directories(target.parent_path(), error);
            if (error) {
                return systemError(error, kAction, target.parent_path().string());
            }
            if (::rename(local_path.c_str(), target.c_str()) == 0) {
                return fsyncPath(target.parent_path(), O_RDONLY | O_DIRECTORY, kAction);
            }
            if (errno != EXDEV) {
                return systemError(errno, kAction, local_path + " -> " + target.string());
            }
        }

        // Copy into a temporary file and publish that.
        FileDescriptor source(::open(local_path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!source.valid()) {
            return systemError(errno, kAction, local_path);
        }
        BM_ASSIGN_OR_RETURN(TempFile copy, TempFile::create(temp_, kAction));
        BM_RETURN_IF_ERROR(copyContents(source.get(), copy.fd(), kAction, copy.path()));
        BM_RETURN_IF_ERROR(copy.publish(target, kAction));
        if (move && ::unlink(local_path.c_str()) != 0) {
            // The object is stored; a leftover source only wastes space.
            log::get("storage")->warn("cannot remove moved file path={} error=\"{}\"",
                                      local_path, std::strerror(errno));
        }
        return okStatus();
    }

    Result<std::unique_ptr<BlobWriter>> openWriter(const std::string& key) override {
        BM_ASSIGN_OR_RETURN(fs::path target, pathFor(key));
        BM_ASSIGN_OR_RETURN(TempFile file, TempFile::create(temp_, "open object for writing"));
        return std::unique_ptr<BlobWriter>(new LocalBlobWriter(std::move(file), target));
    }

    Result<std::unique_ptr<BlobReader>> openReader(const std::string& key) override {
        constexpr std::string_view kAction = "open object";
        BM_ASSIGN_OR_RETURN(fs::path path, pathFor(key));
        FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd.valid()) {
            return systemError(errno, kAction, path.string());
        }
        struct stat info {};
        if (::fstat(fd.get(), &info) != 0) {
            return systemError(errno, kAction, path.string());
        }
        if (!S_ISREG(info.st_mode)) {
            return systemError(ENOENT, kAction, path.string());
        }
        return std::unique_ptr<BlobReader>(
            new LocalBlobReader(std::move(fd), static_cast<int64_t>(info.st_size), path));
    }

    Result<BlobInfo> stat(const std::string& key) override {
        BM_ASSIGN_OR_RETURN(fs::path path, pathFor(key));
        struct stat info {};
        if (::stat(path.c_str(), &info) != 0) {
            return systemError(errno, "stat object", path.string());
        }
        if (!S_ISREG(info.st_mode)) {
            return systemError(ENOENT, "stat object", path.string());
        }
        BlobInfo blob;
        blob.size = static_cast<int64_t>(info.st_size);
        blob.modified_ms = static_cast<int64_t>(info.st_mtim.tv_sec) * 1000 +
                           info.st_mtim.tv_nsec / 1'000'000;
        return blob;
    }

    Status remove(const std::string& key) override {
        BM_ASSIGN_OR_RETURN(fs::path path, pathFor(key));
        if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
            return systemError(errno, "remove object", path.string());
        }
        // Empty folders are left in place: removing one could race with a
        // writer that has just created it for a new object.
        return okStatus();
    }

    std::optional<std::string> localPath(const std::string& key) override {
        Result<fs::path> path = pathFor(key);
        if (!path.ok()) {
            return std::nullopt;
        }
        return path->string();
    }

private:
    Result<fs::path> pathFor(const std::string& key) const {
        BM_RETURN_IF_ERROR(checkBlobKey(key));
        std::string_view first_segment = std::string_view(key).substr(0, key.find('/'));
        if (first_segment == kTempFolder) {
            return Error{ErrorCode::InvalidArgument,
                         "invalid storage key: '.tmp' is reserved for writes in progress",
                         "key='" + key + "'"};
        }
        return root_ / key;
    }

    fs::path root_;
    fs::path temp_;
};

void removeStaleTempFiles(const fs::path& temp_folder) {
    std::error_code error;
    auto cutoff = fs::file_time_type::clock::now() - kStaleTempAge;
    for (const fs::directory_entry& entry : fs::directory_iterator(temp_folder, error)) {
        std::error_code entry_error;
        if (entry.is_regular_file(entry_error) && entry.last_write_time(entry_error) < cutoff) {
            fs::remove(entry.path(), entry_error);
        }
    }
}

}  // namespace

Result<BlobStorePtr> openLocalBlobStore(const std::string& root) {
    std::error_code error;
    fs::path absolute_root = fs::absolute(root, error).lexically_normal();
    if (error) {
        return systemError(error, "open storage folder", root);
    }
    fs::path temp_folder = absolute_root / kTempFolder;
    fs::create_directories(temp_folder, error);
    if (error) {
        return systemError(error, "create storage folder", temp_folder.string());
    }
    removeStaleTempFiles(temp_folder);
    log::get("storage")->info("storage opened backend=local root={}", absolute_root.string());
    return BlobStorePtr(std::make_shared<LocalBlobStore>(absolute_root));
}

}  // namespace bitmill::storage
