// Chunked-upload bookkeeping and idempotency records of SqliteStore.
#include <fmt/format.h>

#include "db/record_mapping.h"
#include "db/sqlite/sqlite_store_impl.h"
#include "db/store_checks.h"

namespace bitmill::db::sqlite {

Result<domain::UploadRecord> SqliteStore::getOrCreateUpload(const domain::UploadRecord& upload) {
    constexpr std::string_view kAction = "start upload";
    ConnectionLease connection = writer();
    BM_ASSIGN_OR_RETURN(Transaction transaction, Transaction::beginWrite(*connection));
    {
        BM_ASSIGN_OR_RETURN(
            Statement insert,
            connection->prepare(fmt::format("INSERT INTO uploads ({}) VALUES ({}) ON CONFLICT "
                                            "(project_id, path) DO NOTHING",
                                            kUploadColumns, placeholders(kUploadColumns)),
                                kAction));
        bindUpload(insert, upload);
        BM_RETURN_IF_ERROR(insert.run());
    }
    std::optional<domain::UploadRecord> stored;
    {
        BM_ASSIGN_OR_RETURN(Statement query,
                            connection->prepare(fmt::format("SELECT {} FROM uploads WHERE "
                                                            "project_id = ? AND path = ?",
                                                            kUploadColumns),
                                                kAction));
        query.bind(upload.project_id).bind(upload.path);
        BM_ASSIGN_OR_RETURN(stored, readFirst<domain::UploadRecord>(query, readUpload<Statement>));
    }
    if (!stored) {
        return Error::internal(
            fmt::format("{}: the upload of '{}' vanished", kAction, upload.path));
    }
    BM_RETURN_IF_ERROR(transaction.commit());
    return std::move(*stored);
}

Result<domain::UploadRecord> SqliteStore::addUploadRange(const std::string& upload_id,
                                                         int64_t first, int64_t last,
                                                         int64_t now_ms) {
    constexpr std::string_view kAction = "record upload range";
    ConnectionLease connection = writer();
    // Read, merge and write under the write lock, so parallel chunks of one
    // upload never overwrite each other's ranges.
    BM_ASSIGN_OR_RETURN(Transaction transaction, Transaction::beginWrite(*connection));
    std::optional<domain::UploadRecord> upload;
    {
        BM_ASSIGN_OR_RETURN(
            Statement query,
            connection->prepare(fmt::format("SELECT {} FROM uploads WHERE id = ?", kUploadColumns),
                                kAction));
        query.bind(upload_id);
        BM_ASSIGN_OR_RETURN(upload, readFirst<domain::UploadRecord>(query, readUpload<Statement>));
    }
    if (!upload) {
        return Error::notFound(fmt::format("upload '{}' not found", upload_id));
    }
    BM_RETURN_IF_ERROR(db::addUploadRange(*upload, first, last, now_ms));
    {
        BM_ASSIGN_OR_RETURN(
            Statement update,
            connection->prepare("UPDATE uploads SET received = ?, updated_ms = ? WHERE id = ?",
                                kAction));
        update.bind(encodeRanges(upload->received)).bind(now_ms).bind(upload_id);
        BM_RETURN_IF_ERROR(update.run());
    }
    BM_RETURN_IF_ERROR(transaction.commit());
    return std::move(*upload);
}

Status SqliteStore::deleteUpload(const std::string& upload_id) {
    ConnectionLease connection = writer();
    BM_ASSIGN_OR_RETURN(Statement remove,
                        connection->prepare("DELETE FROM uploads WHERE id = ?", "delete upload"));
    remove.bind(upload_id);
    Result<int64_t> removed = remove.run();
    if (!removed.ok()) {
        return removed.error();
    }
    return okStatus();
}

Result<std::optional<domain::IdempotencyRecord>> SqliteStore::findIdempotency(
    const std::string& project_id, const std::string& key, int64_t not_before_ms) {
    ConnectionLease connection = reader();
    BM_ASSIGN_OR_RETURN(Statement query,
                        connection->prepare(fmt::format("SELECT {} FROM idempotency WHERE "
                                                        "project_id = ? AND idempotency_key = ? "
                                                        "AND created_ms >= ?",
                                                        kIdempotencyColumns),
                                            "find idempotency record"));
    query.bind(project_id).bind(key).bind(not_before_ms);
    return readFirst<domain::IdempotencyRecord>(query, readIdempotency<Statement>);
}

Status SqliteStore::insertIdempotency(const domain::IdempotencyRecord& record) {
    constexpr std::string_view kAction = "store idempotency record";
    ConnectionLease connection = writer();
    BM_ASSIGN_OR_RETURN(Transaction transaction, Transaction::beginWrite(*connection));
    {
        BM_ASSIGN_OR_RETURN(
            Statement purge,
            connection->prepare("DELETE FROM idempotency WHERE created_ms < ?", kAction));
        purge.bind(record.created_ms - kIdempotencyRetentionMs);
        BM_RETURN_IF_ERROR(purge.run());
    }
    {
        BM_ASSIGN_OR_RETURN(
            Statement insert,
            connection->prepare(fmt::format("INSERT INTO idempotency ({}) VALUES ({})",
                                            kIdempotencyColumns, placeholders(kIdempotencyColumns)),
                                kAction));
        bindIdempotency(insert, record);
        Result<int64_t> inserted = insert.run();
        if (!inserted.ok()) {
            if (inserted.error().code() == ErrorCode::Conflict) {
                return Error::conflict(
                    fmt::format("Idempotency-Key '{}' is already stored", record.key));
            }
            return inserted.error();
        }
    }
    return transaction.commit();
}

Status SqliteStore::completeIdempotency(const domain::IdempotencyRecord& record) {
    ConnectionLease connection = writer();
    BM_ASSIGN_OR_RETURN(
        Statement update,
        connection->prepare("UPDATE idempotency SET status_code = ?, response_body = ? WHERE "
                            "project_id = ? AND idempotency_key = ? AND created_ms = ? AND "
                            "status_code = 0",
                            "store idempotent response"));
    update.bind(int64_t{record.status_code})
        .bind(record.response_body)
        .bind(record.project_id)
        .bind(record.key)
        .bind(record.created_ms);
    BM_ASSIGN_OR_RETURN(int64_t changed, update.run());
    if (changed == 0) {
        return Error::conflict(
            fmt::format("the reservation of Idempotency-Key '{}' is gone", record.key));
    }
    return okStatus();
}

Status SqliteStore::deleteIdempotencyReservation(const std::string& project_id,
                                                 const std::string& key, int64_t created_ms) {
    ConnectionLease connection = writer();
    BM_ASSIGN_OR_RETURN(
        Statement remove,
        connection->prepare("DELETE FROM idempotency WHERE project_id = ? AND idempotency_key = ? "
                            "AND created_ms = ? AND status_code = 0",
                            "delete idempotency reservation"));
    remove.bind(project_id).bind(key).bind(created_ms);
    BM_RETURN_IF_ERROR(remove.run());
    return okStatus();
}

}  // namespace bitmill::db::sqlite
