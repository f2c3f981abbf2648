// Page bounds and lease-loss errors shared by the Store backends.
#include "db/store_checks.h"

#include <fmt/format.h>

#include "db/upload_ranges.h"

namespace bitmill::db {

namespace {

constexpr int kMaxPageLimit = 100;

}  // namespace

Status checkPage(const PageRequest& page) {
    if (page.page < 1) {
        return Error::invalidArgument(
            fmt::format("invalid page {}: pages are numbered from 1", page.page));
    }
    if (page.limit < 1 || page.limit > kMaxPageLimit) {
        return Error::invalidArgument(
            fmt::format("invalid limit {}: use 1 to {}", page.limit, kMaxPageLimit));
    }
    return okStatus();
}

Status addUploadRange(domain::UploadRecord& upload, int64_t first, int64_t last, int64_t now_ms) {
    if (first < 0 || last < first || last >= upload.total_bytes) {
        return Error::invalidArgument(
            fmt::format("invalid byte range {}-{}: the upload has {} bytes (0-{})", first, last,
                        upload.total_bytes, upload.total_bytes - 1));
    }
    upload.received = mergeByteRange(upload.received, first, last);
    upload.updated_ms = now_ms;
    return okStatus();
}

Error leaseLostError(const std::optional<std::string>& status,
                     const std::optional<std::string>& lease_owner, const std::string& task_id,
                     const std::string& worker_id, std::string_view action) {
    if (!status) {
        return Error::notFound(fmt::format("{}: task '{}' not found", action, task_id));
    }
    if (*status == "processing" && lease_owner == worker_id) {
        return Error::internal(fmt::format("{}: task '{}' did not update", action, task_id));
    }
    if (*status == "processing") {
        return Error::conflict(
            fmt::format("{}: task '{}' is leased to another worker, not '{}'; stop working on it",
                        action, task_id, worker_id));
    }
    return Error::conflict(fmt::format("{}: task '{}' is {}, not processing; stop working on it",
                                       action, task_id, *status));
}

}  // namespace bitmill::db
