// Rules every Store backend applies the same way: page bounds, how long
// idempotency records are kept, and the error a worker gets when it no
// longer owns a task.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"
#include "db/store.h"

namespace bitmill::db {

// The API replays a stored Idempotency-Key response for 24 hours; older
// records are deleted when a new one is stored.
inline constexpr int64_t kIdempotencyRetentionMs = 24LL * 3600 * 1000;

// Returns InvalidArgument unless `page` is within the documented bounds
// (page >= 1, limit 1 to 100).
Status checkPage(const PageRequest& page);

// Adds the byte range [first, last] to `upload`'s received ranges and sets
// updated_ms. Returns InvalidArgument, and changes nothing, when the range
// is empty or outside the upload's total_bytes.
Status addUploadRange(domain::UploadRecord& upload, int64_t first, int64_t last, int64_t now_ms);

// Returns the error for a worker-side update of `task_id` by `worker_id`
// that changed no row, given the task's current `status` and `lease_owner`
// (status nullopt: no such task). NotFound for a missing task, Conflict
// naming the task's state otherwise, and Internal when the task is in fact
// processing under `worker_id`, because then the update itself is wrong.
Error leaseLostError(const std::optional<std::string>& status,
                     const std::optional<std::string>& lease_owner, const std::string& task_id,
                     const std::string& worker_id, std::string_view action);

}  // namespace bitmill::db
