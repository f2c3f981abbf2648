// Byte storage behind one interface: local disk or an S3-compatible object
// store. Keys are relative paths such as "prj_x/file_y.mp4". Objects
// become visible only when complete: a reader never sees a partial write.
// Implementations are thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"

namespace bitmill::storage {

struct BlobInfo {
    int64_t size = 0;
    int64_t modified_ms = 0;
};

// Streams one object out, by ranges. Not thread-safe; one per reader.
class BlobReader {
public:
    virtual ~BlobReader() = default;
    virtual int64_t size() const = 0;
    // Reads up to `length` bytes at `offset` into `buffer`; returns the count
    // (0 only at the end).
    virtual Result<size_t> readAt(int64_t offset, char* buffer, size_t length) = 0;
};

// Streams one object in. Nothing is visible until commit(); destroying an
// uncommitted writer discards what was written.
class BlobWriter {
public:
    virtual ~BlobWriter() = default;
    virtual Status write(std::string_view data) = 0;
    virtual Status commit() = 0;
};

class BlobStore {
public:
    virtual ~BlobStore() = default;

    // Publishes the local file at `local_path` as `key`, moving it when
    // `move` is true and the store is on the same file system.
    virtual Status putFile(const std::string& key, const std::string& local_path, bool move) = 0;
    virtual Result<std::unique_ptr<BlobWriter>> openWriter(const std::string& key) = 0;
    virtual Result<std::unique_ptr<BlobReader>> openReader(const std::string& key) = 0;
    virtual Result<BlobInfo> stat(const std::string& key) = 0;
    // Removes the object; removing a missing key succeeds.
    virtual Status remove(const std::string& key) = 0;
    // Returns a local path that reads the object directly when the store
    // is on local disk, so tasks can decode in place; nullopt otherwise.
    virtual std::optional<std::string> localPath(const std::string& key) = 0;
    // Returns a URL that GETs the object without credentials for
    // `expires_seconds`, when the store can sign one. The S3 store clamps the
    // time to 1 second .. 7 days, S3's limit. Returns nullopt for stores that
    // cannot sign, such as local disk, and for invalid keys. The object need
    // not exist yet. The URL is a bearer credential: hand it only to the
    // client it is meant for, and never log it.
    virtual std::optional<std::string> presignGet(const std::string& key, int64_t expires_seconds) {
        (void)key;
        (void)expires_seconds;
        return std::nullopt;
    }
};

using BlobStorePtr = std::shared_ptr<BlobStore>;

}  // namespace bitmill::storage
