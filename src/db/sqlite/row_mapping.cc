// Conversions between SQLite rows and domain records.
#include "db/sqlite/row_mapping.h"

#include <fmt/format.h>

namespace bitmill::db::sqlite {

namespace {

// Parses a JSON column. This code never writes invalid JSON, so a column
// that fails to parse is reported as a corrupt row.
Result<Json> readJson(const Statement& row, int column) {
    Json parsed = Json::parse(row.text(column), nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) {
        return row.corruptRow(fmt::format("column {} holds invalid JSON", column));
    }
    return parsed;
}

}  // namespace

Result<domain::Project> readProject(const Statement& row) {
    domain::Project project;
    project.id = row.text(0);
    project.name = row.text(1);
    project.delivery_private = row.int64(2) != 0;
    project.webhook_secret = row.text(3);
    project.created_ms = row.int64(4);
    return project;
}

Result<domain::ApiKey> readApiKey(const Statement& row) {
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

Result<domain::MediaRecord> readMedia(const Statement& row) {
    domain::MediaRecord media;
    media.id = row.text(0);
    media.project_id = row.text(1);
    media.kind = row.optionalText(2);
    media.title = row.optionalText(3);
    media.alt = row.optionalText(4);
    media.width = row.optionalInt(5);
    media.height = row.optionalInt(6);
    media.duration = row.optionalDouble(7);
    media.background = row.optionalText(8);
    BM_ASSIGN_OR_RETURN(media.metadata, readJson(row, 9));
    media.created_ms = row.int64(10);
    media.updated_ms = row.int64(11);
    return media;
}

Result<domain::FileRecord> readFile(const Statement& row) {
    domain::FileRecord file;
    file.id = row.text(0);
    file.project_id = row.text(1);
    file.media_id = row.text(2);
    file.object = row.text(3);
    BM_ASSIGN_OR_RETURN(Json props, readJson(row, 4));
    Result<MediaProperties> parsed = MediaProperties::fromJson(props);
    if (!parsed.ok()) {
        return row.corruptRow(parsed.error().toLogString());
    }
    file.props = std::move(parsed).value();
    file.filesize = row.int64(5);
    file.label = row.optionalText(6);
    file.ref = row.optionalText(7);
    file.folder = row.optionalText(8);
    file.filename = row.optionalText(9);
    file.storage_key = row.text(10);
    file.delivery_path = row.text(11);
    file.etag = row.text(12);
    BM_ASSIGN_OR_RETURN(file.metadata, readJson(row, 13));
    file.original = row.int64(14) != 0;
    file.created_by = row.text(15);
    file.status = row.text(16);
    file.created_ms = row.int64(17);
    file.updated_ms = row.int64(18);
    return file;
}

Result<domain::TaskRecord> readTask(const Statement& row) {
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
    BM_ASSIGN_OR_RETURN(task.options, readJson(row, 8));
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

Result<domain::UploadRecord> readUpload(const Statement& row) {
    domain::UploadRecord upload;
    upload.id = row.text(0);
    upload.project_id = row.text(1);
    upload.path = row.text(2);
    upload.total_bytes = row.int64(3);
    Result<std::vector<std::pair<int64_t, int64_t>>> ranges = decodeRanges(row.text(4));
    if (!ranges.ok()) {
        return row.corruptRow(ranges.error().toLogString());
    }
    upload.received = std::move(ranges).value();
    upload.created_ms = row.int64(5);
    upload.updated_ms = row.int64(6);
    return upload;
}

Result<domain::IdempotencyRecord> readIdempotency(const Statement& row) {
    domain::IdempotencyRecord record;
    record.project_id = row.text(0);
    record.key = row.text(1);
    record.request_hash = row.text(2);
    record.status_code = static_cast<int>(row.int64(3));
    record.response_body = row.text(4);
    record.created_ms = row.int64(5);
    return record;
}

void bindProject(Statement& statement, const domain::Project& project) {
    statement.bind(project.id)
        .bind(project.name)
        .bind(project.delivery_private)
        .bind(project.webhook_secret)
        .bind(project.created_ms);
}

void bindApiKey(Statement& statement, const domain::ApiKey& key) {
    statement.bind(key.id)
        .bind(key.project_id)
        .bind(key.name)
        .bind(key.display_prefix)
        .bind(key.hash)
        .bind(key.sealed_key)
        .bind(key.created_ms)
        .bind(key.revoked_ms);
}

void bindMedia(Statement& statement, const domain::MediaRecord& media) {
    statement.bind(media.id)
        .bind(media.project_id)
        .bind(media.kind)
        .bind(media.title)
        .bind(media.alt)
        .bind(media.width)
        .bind(media.height)
        .bind(media.duration)
        .bind(media.background)
        .bind(media.metadata.dump())
        .bind(media.created_ms)
        .bind(media.updated_ms);
}

void bindFile(Statement& statement, const domain::FileRecord& file) {
    statement.bind(file.id)
        .bind(file.project_id)
        .bind(file.media_id)
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
        .bind(file.created_by)
        .bind(file.status)
        .bind(file.created_ms)
        .bind(file.updated_ms);
}

void bindTask(Statement& statement, const domain::TaskRecord& task) {
    statement.bind(task.id)
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

void bindUpload(Statement& statement, const domain::UploadRecord& upload) {
    statement.bind(upload.id)
        .bind(upload.project_id)
        .bind(upload.path)
        .bind(upload.total_bytes)
        .bind(encodeRanges(upload.received))
        .bind(upload.created_ms)
        .bind(upload.updated_ms);
}

void bindIdempotency(Statement& statement, const domain::IdempotencyRecord& record) {
    statement.bind(record.project_id)
        .bind(record.key)
        .bind(record.request_hash)
        .bind(record.status_code)
        .bind(record.response_body)
        .bind(record.created_ms);
}

std::string encodeRanges(const std::vector<std::pair<int64_t, int64_t>>& ranges) {
    Json array = Json::array();
    for (const auto& [first, last] : ranges) {
        array.push_back(Json::array({first, last}));
    }
    return array.dump();
}

Result<std::vector<std::pair<int64_t, int64_t>>> decodeRanges(const std::string& text) {
    Json array = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!array.is_array()) {
        return Error::internal("decode upload ranges: not a JSON array", text);
    }
    std::vector<std::pair<int64_t, int64_t>> ranges;
    for (const Json& pair : array) {
        if (!pair.is_array() || pair.size() != 2 || !pair[0].is_number_integer() ||
            !pair[1].is_number_integer()) {
            return Error::internal("decode upload ranges: not a [first, last] pair", text);
        }
        ranges.emplace_back(pair[0].get<int64_t>(), pair[1].get<int64_t>());
    }
    return ranges;
}

}  // namespace bitmill::db::sqlite
