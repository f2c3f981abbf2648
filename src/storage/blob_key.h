// Validation of blob keys, shared by every BlobStore backend.
#pragma once

#include <string_view>

#include "core/error.h"

namespace bitmill::storage {

// Maximum key length in bytes, the same as the S3 limit on object key names
// (1,024 bytes of UTF-8, AWS S3 User Guide, "Naming Amazon S3 objects").
inline constexpr size_t kMaxBlobKeyBytes = 1024;

// Returns InvalidArgument unless `key` is a relative path of non-empty
// segments separated by '/', without "." or ".." segments, control
// characters or a leading or trailing '/', and at most kMaxBlobKeyBytes.
Status checkBlobKey(std::string_view key);

}  // namespace bitmill::storage
