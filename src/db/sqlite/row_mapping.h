// Column lists of each table and the conversions between rows and domain
// records. A reader expects the statement's columns in exactly the order of
// the matching k*Columns list; a binder binds parameters in that order.
#pragma once

#include "core/error.h"
#include "db/sqlite/connection.h"
#include "domain/records.h"

namespace bitmill::db::sqlite {

inline constexpr const char* kProjectColumns = "id, name, delivery_private, webhook_secret, created_ms";

inline constexpr const char* kApiKeyColumns =
    "id, project_id, name, display_prefix, hash, sealed_key, created_ms, revoked_ms";

inline constexpr const char* kMediaColumns =
    "id, project_id, kind, title, alt, width, height, duration, background, metadata, "
    "created_ms, updated_ms";

inline constexpr const char* kFileColumns =
    "id, project_id, media_id, object, props, filesize, label, ref, folder, filename, "
    "storage_key, delivery_path, etag, metadata, original, created_by, status, created_ms, "
    "updated_ms";

inline constexpr const char* kTaskColumns =
    "id, project_id, kind, status, progress, input_file_id, input_url, media_id, options, "
    "output_file_id, error, created_by, parent_id, webhook_url, attempts, max_attempts, "
    "lease_owner, lease_expires_ms, run_after_ms, created_ms, updated_ms, started_ms, "
    "finished_ms";

inline constexpr const char* kUploadColumns =
    "id, project_id, path, total_bytes, received, created_ms, updated_ms";

inline constexpr const char* kIdempotencyColumns =
    "project_id, idempotency_key, request_hash, status_code, response_body, created_ms";

Result<domain::Project> readProject(const Statement& row);
Result<domain::ApiKey> readApiKey(const Statement& row);
Result<domain::MediaRecord> readMedia(const Statement& row);
Result<domain::FileRecord> readFile(const Statement& row);
Result<domain::TaskRecord> readTask(const Statement& row);
Result<domain::UploadRecord> readUpload(const Statement& row);
Result<domain::IdempotencyRecord> readIdempotency(const Statement& row);

void bindProject(Statement& statement, const domain::Project& project);
void bindApiKey(Statement& statement, const domain::ApiKey& key);
void bindMedia(Statement& statement, const domain::MediaRecord& media);
void bindFile(Statement& statement, const domain::FileRecord& file);
void bindTask(Statement& statement, const domain::TaskRecord& task);
void bindUpload(Statement& statement, const domain::UploadRecord& upload);
void bindIdempotency(Statement& statement, const domain::IdempotencyRecord& record);

// Received byte ranges as stored: a JSON array of [first, last] pairs.
std::string encodeRanges(const std::vector<std::pair<int64_t, int64_t>>& ranges);
Result<std::vector<std::pair<int64_t, int64_t>>> decodeRanges(const std::string& text);

}  // namespace bitmill::db::sqlite
