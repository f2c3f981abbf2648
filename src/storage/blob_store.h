// Byte storage behind one interface: local disk now, S3-compatible object
// stores later. Keys are relative paths such as "prj_x/file_y.mp4". Objects
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
};

using BlobStorePtr = std::shared_ptr<BlobStore>;

}  // namespace bitmill::storage
