// Bookkeeping of the byte ranges a chunked upload has received, shared by
// every Store backend.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace bitmill::db {

using ByteRanges = std::vector<std::pair<int64_t, int64_t>>;

// Returns `ranges` (sorted, non-overlapping, inclusive [first, last] pairs)
// with [first, last] added. Overlapping and adjacent ranges are merged, so
// [0, 9] and [10, 19] become [0, 19]. Requires: first <= last.
ByteRanges mergeByteRange(const ByteRanges& ranges, int64_t first, int64_t last);

// Returns true when `ranges` (as mergeByteRange returns them) cover every
// byte of an object of `total_bytes` bytes.
bool coversAllBytes(const ByteRanges& ranges, int64_t total_bytes);

}  // namespace bitmill::db
