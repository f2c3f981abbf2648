// Merging of received byte ranges for chunked uploads.
#include "db/upload_ranges.h"

#include <algorithm>

namespace bitmill::db {

ByteRanges mergeByteRange(const ByteRanges& ranges, int64_t first, int64_t last) {
    ByteRanges sorted = ranges;
    sorted.emplace_back(first, last);
    std::sort(sorted.begin(), sorted.end());

    ByteRanges merged;
    for (const auto& [range_first, range_last] : sorted) {
        // Ranges are inclusive, so one that starts right after the previous
        // one ends (last + 1) continues it.
        if (!merged.empty() && range_first <= merged.back().second + 1) {
            merged.back().second = std::max(merged.back().second, range_last);
        } else {
            merged.emplace_back(range_first, range_last);
        }
    }
    return merged;
}

bool coversAllBytes(const ByteRanges& ranges, int64_t total_bytes) {
    if (total_bytes == 0) {
        return true;
    }
    return ranges.size() == 1 && ranges[0].first == 0 && ranges[0].second >= total_bytes - 1;
}

}  // namespace bitmill::db
