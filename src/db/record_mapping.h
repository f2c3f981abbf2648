// Column lists of each table and the conversions between rows and domain
// records, shared by the SQL backends. The readers and binders are
// templates over the backend's row and parameter types, so every backend
// stores a record in the same columns with the same encoding.
//
// A Row offers text(i), optionalText(i), int64(i), optionalInt64(i),
// optionalInt(i), optionalDouble(i) and corruptRow(detail). A Binder offers
// bind() for strings, int64_t, int, bool, double, std::nullopt and
// std::optional of those, and binds parameters in order. A reader expects
// the columns in exactly the order of the matching k*Columns list, and a
// binder binds them in that order.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/json.h"
#include "db/upload_ranges.h"
#include "domain/records.h"

namespace bitmill::db {

inline constexpr const char* kProjectColumns =
    "id, name, delivery_private, webhook_secret, created_ms";

inline constexpr const char* kApiKeyColumns =
    "id, project_id, name, display_prefix, hash, sealed_key, created_ms, revoked_ms";

// The columns an update may change come last in kMediaColumns and
// kFileColumns, in the order of kMediaUpdateColumns and kFileUpdateColumns,
// so one binder serves inserts and updates.
inline constexpr const char* kMediaColumns =
    "id, project_id, created_ms, kind, title, alt, width, height, duration, background, "
    "metadata, updated_ms";
inline constexpr const char* kMediaUpdateColumns =
    "kind, title, alt, width, height, duration, background, metadata, updated_ms";

inline constexpr const char* kFileColumns =
    "id, project_id, created_by, created_ms, media_id, object, props, filesize, label, ref, "
    "folder, filename, storage_key, delivery_path, etag, metadata, original, status, "
    "updated_ms";
inline constexpr const char* kFileUpdateColumns =
    "media_id, object, props, filesize, label, ref, folder, filename, storage_key, "
    "delivery_path, etag, metadata, original, status, updated_ms";

inline constexpr const char* kTaskColumns =
    "id, project_id, kind, status, progress, input_file_id, input_url, media_id, options, "
    "output_file_id, error, created_by, parent_id, webhook_url, attempts, max_attempts, "
    "lease_owner, lease_expires_ms, run_after_ms, created_ms, updated_ms, started_ms, "
    "finished_ms";

inline constexpr const char* kUploadColumns =
    "id, project_id, path, total_bytes, received, created_ms, updated_ms";

inline constexpr const char* kIdempotencyColumns =
    "project_id, idempotency_key, request_hash, status_code, response_body, created_ms";

// Received byte ranges as stored: a JSON array of [first, last] pairs.
std::string encodeRanges(const ByteRanges& ranges);
Result<ByteRanges> decodeRanges(const std::string& text);

// Parses the JSON stored in `column`. Stores never write invalid JSON, so a
// column that fails to parse is reported as a corrupt row.
template <typename Row>
Result<Json> readJsonColumn(const Row& row, int column) {
    Json parsed = Json::parse(row.text(column), nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) {
        return row.corruptRow(fmt::format("column {} holds invalid JSON", column));
    }
    return parsed;
}

template <typename Row>
Result<domain::Project> readProject(const Row& row) {
    domain::Project project;
    project.id = row.text(0);
    project.name = row.text(1);
    project.delivery_private = row.int64(2) != 0;
    project.webhook_secret = row.text(3);
    project.created_ms = row.int64(4);
    return project;
}

template <typename Row>
Result<domain::ApiKey> readApiKey(const Row& row) {
    domain::ApiKey key;
    key.id = row.text(0);
    key.project_id = row.text(1);
    key.name = row.text(2);
    key.display_prefix = row.text(3);
    key.hash = row.text(4);
    key.sealed_key = row.text(5);
    key.created_ms = row.int64(6);
    key.revoked_ms = row.optionalInt64(7);
    return key;
}

template <typename Row>
Result<domain::MediaRecord> readMedia(const Row& row) {
    domain::MediaRecord media;
    media.id = row.text(0);
    media.project_id = row.text(1);
    media.created_ms = row.int64(2);
    media.kind = row.optionalText(3);
    media.title = row.optionalText(4);
    media.alt = row.optionalText(5);
    media.width = row.optionalInt(6);
    media.height = row.optionalInt(7);
    media.duration = row.optionalDouble(8);
    media.background = row.optionalText(9);
    BM_ASSIGN_OR_RETURN(media.metadata, readJsonColumn(row, 10));
    media.updated_ms = row.int64(11);
    return media;
}

template <typename Row>
Result<domain::FileRecord> readFile(const Row& row) {
    domain::FileRecord file;
    file.id = row.text(0);
    file.project_id = row.text(1);
    file.created_by = row.text(2);
    file.created_ms = row.int64(3);
    file.media_id = row.text(4);
    file.object = row.text(5);
    BM_ASSIGN_OR_RETURN(Json props, readJsonColumn(row, 6));
    Result<MediaProperties> parsed = MediaProperties::fromJson(props);
    if (!parsed.ok()) {
        return row.corruptRow(parsed.error().toLogString());
    }
    file.props = std::move(parsed).value();
    file.filesize = row.int64(7);
    file.label = row.optionalText(8);
    file.ref = row.optionalText(9);
    file.folder = row.optionalText(10);
    file.filename = row.optionalText(11);
    file.storage_key = row.text(12);
    file.delivery_path = row.text(13);
    file.etag = row.text(14);
    BM_ASSIGN_OR_RETURN(file.metadata, readJsonColumn(row, 15));
    file.original = row.int64(16) != 0;
    file.status = row.text(17);
    file.updated_ms = row.int64(18);
    return file;
}

template <typename Row>
Result<domain::TaskRecord> readTask(const Row& row) {
    domain::TaskRecord task;
    task.id = row.text(0);
    task.project_id = row.text(1);
    task.kind = row.text(2);
    std::string status = row.text(3);
    std::optional<domain::TaskStatus> parsed = domain::parseTaskStatus(status);
    if (!parsed) {
        return row.corruptRow(fmt::format("task '{}' has unknown status '{}'", task.id, status));
    }
    task.status = *parsed;
    task.progress = static_cast<int>(row.int64(4));
    task.input_file_id = row.optionalText(5);
    task.input_url = row.optionalText(6);
    task.media_id = row.optionalText(7);
    BM_ASSIGN_OR_RETURN(task.options, readJsonColumn(row, 8));
    task.output_file_id = row.optionalText(9);
    task.error = row.optionalText(10);
    task.created_by = row.text(11);
    task.parent_id = row.optionalText(12);
    task.webhook_url = row.optionalText(13);
    task.attempts = static_cast<int>(row.int64(14));
    task.max_attempts = static_cast<int>(row.int64(15));
    task.lease_owner = row.optionalText(16);
    task.lease_expires_ms = row.optionalInt64(17);
    task.run_after_ms = row.int64(18);
    task.created_ms = row.int64(19);
    task.updated_ms = row.int64(20);
    task.started_ms = row.optionalInt64(21);
    task.finished_ms = row.optionalInt64(22);
    return task;
}

template <typename Row>
Result<domain::UploadRecord> readUpload(const Row& row) {
    domain::UploadRecord upload;
    upload.id = row.text(0);
    upload.project_id = row.text(1);
    upload.path = row.text(2);
    upload.total_bytes = row.int64(3);
    Result<ByteRanges> ranges = decodeRanges(row.text(4));
    if (!ranges.ok()) {
        return row.corruptRow(ranges.error().toLogString());
    }
    upload.received = std::move(ranges).value();
    upload.created_ms = row.int64(5);
    upload.updated_ms = row.int64(6);
    return upload;
}

template <typename Row>
Result<domain::IdempotencyRecord> readIdempotency(const Row& row) {
    domain::IdempotencyRecord record;
    record.project_id = row.text(0);
    record.key = row.text(1);
    record.request_hash = row.text(2);
    record.status_code = static_cast<int>(row.int64(3));
    record.response_body = row.text(4);
    record.created_ms = row.int64(5);
    return record;
}

template <typename Binder>
void bindProject(Binder& binder, const domain::Project& project) {
    binder.bind(project.id)
        .bind(project.name)
        .bind(project.delivery_private)
        .bind(project.webhook_secret)
        .bind(project.created_ms);
}

template <typename Binder>
void bindApiKey(Binder& binder, const domain::ApiKey& key) {
    binder.bind(key.id)
        .bind(key.project_id)
        .bind(key.name)
        .bind(key.display_prefix)
        .bind(key.hash)
        .bind(key.sealed_key)
        .bind(key.created_ms)
        .bind(key.revoked_ms);
}

// Binds the kMediaUpdateColumns of `media`.
template <typename Binder>
void bindMediaChanges(Binder& binder, const domain::MediaRecord& media) {
    binder.bind(media.kind)
        .bind(media.title)
        .bind(media.alt)
        .bind(media.width)
        .bind(media.height)
        .bind(media.duration)
        .bind(media.background)
        .bind(media.metadata.dump())
        .bind(media.updated_ms);
}

template <typename Binder>
void bindMedia(Binder& binder, const domain::MediaRecord& media) {
    binder.bind(media.id).bind(media.project_id).bind(media.created_ms);
    bindMediaChanges(binder, media);
}

// Binds the kMediaUpdateColumns, then id and project_id for the WHERE
// clause of an update.
template <typename Binder>
void bindMediaUpdate(Binder& binder, const domain::MediaRecord& media) {
    bindMediaChanges(binder, media);
    binder.bind(media.id).bind(media.project_id);
}

// Binds the kFileUpdateColumns of `file`.
template <typename Binder>
void bindFileChanges(Binder& binder, const domain::FileRecord& file) {
    binder.bind(file.media_id)
        .bind(file.object)
        .bind(file.props.toJson().dump())
        .bind(file.filesize)
        .bind(file.label)
        .bind(file.ref)
        .bind(file.folder)
        .bind(file.filename)
        .bind(file.storage_key)
        .bind(file.delivery_path)
        .bind(file.etag)
        .bind(file.metadata.dump())
        .bind(file.original)
        .bind(file.status)
        .bind(file.updated_ms);
}

template <typename Binder>
void bindFile(Binder& binder, const domain::FileRecord& file) {
    binder.bind(file.id).bind(file.project_id).bind(file.created_by).bind(file.created_ms);
    bindFileChanges(binder, file);
}

// Binds the kFileUpdateColumns, then id and project_id for the WHERE clause
// of an update.
template <typename Binder>
void bindFileUpdate(Binder& binder, const domain::FileRecord& file) {
    bindFileChanges(binder, file);
    binder.bind(file.id).bind(file.project_id);
}

template <typename Binder>
void bindTask(Binder& binder, const domain::TaskRecord& task) {
    binder.bind(task.id)
        .bind(task.project_id)
        .bind(task.kind)
        .bind(domain::toString(task.status))
        .bind(task.progress)
        .bind(task.input_file_id)
        .bind(task.input_url)
        .bind(task.media_id)
        .bind(task.options.dump())
        .bind(task.output_file_id)
        .bind(task.error)
        .bind(task.created_by)
        .bind(task.parent_id)
        .bind(task.webhook_url)
        .bind(task.attempts)
        .bind(task.max_attempts)
        .bind(task.lease_owner)
        .bind(task.lease_expires_ms)
        .bind(task.run_after_ms)
        .bind(task.created_ms)
        .bind(task.updated_ms)
        .bind(task.started_ms)
        .bind(task.finished_ms);
}

template <typename Binder>
void bindUpload(Binder& binder, const domain::UploadRecord& upload) {
    binder.bind(upload.id)
        .bind(upload.project_id)
        .bind(upload.path)
        .bind(upload.total_bytes)
        .bind(encodeRanges(upload.received))
        .bind(upload.created_ms)
        .bind(upload.updated_ms);
}

template <typename Binder>
void bindIdempotency(Binder& binder, const domain::IdempotencyRecord& record) {
    binder.bind(record.project_id)
        .bind(record.key)
        .bind(record.request_hash)
        .bind(record.status_code)
        .bind(record.response_body)
        .bind(record.created_ms);
}

}  // namespace bitmill::db
