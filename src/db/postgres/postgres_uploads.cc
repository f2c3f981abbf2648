// Chunked-upload bookkeeping and idempotency records of PostgresStore.
#include <fmt/format.h>

#include "db/postgres/postgres_store_impl.h"
#include "db/record_mapping.h"
#include "db/store_checks.h"

namespace bitmill::db::postgres {

Result<domain::UploadRecord> PostgresStore::getOrCreateUpload(const domain::UploadRecord& upload) {
    static const std::string kInsert = fmt::format(
        "INSERT INTO uploads ({}) VALUES ({}) ON CONFLICT (project_id, path) DO "
        "NOTHING",
        kUploadColumns, placeholders(1, 7));
    static const std::string kSelect =
        fmt::format("SELECT {} FROM uploads WHERE project_id = $1 AND path = $2", kUploadColumns);
    constexpr std::string_view kAction = "start upload";
    Params insert;
    bindUpload(insert, upload);
    // One implicit transaction: the SELECT reads the row the INSERT wrote,
    // or the one a concurrent request committed first.
    BM_ASSIGN_OR_RETURN(
        std::vector<QueryResult> results,
        pipeline({{kInsert, insert}, {kSelect, Params().bind(upload.project_id).bind(upload.path)}},
                 kAction));
    BM_ASSIGN_OR_RETURN(std::optional<domain::UploadRecord> stored,
                        readFirstRow<domain::UploadRecord>(results[1], readUpload<Row>));
    if (!stored) {
        return Error::internal(
            fmt::format("{}: the upload of '{}' vanished", kAction, upload.path));
    }
    return std::move(*stored);
}

Result<domain::UploadRecord> PostgresStore::addUploadRange(const std::string& upload_id,
                                                           int64_t first, int64_t last,
                                                           int64_t now_ms) {
    static const std::string kSelect =
        fmt::format("SELECT {} FROM uploads WHERE id = $1 FOR UPDATE", kUploadColumns);
    constexpr std::string_view kAction = "record upload range";
    BM_ASSIGN_OR_RETURN(PooledConnection connection, pool_.acquire());
    // The row stays locked from the read to the commit, so parallel chunks
    // of one upload never overwrite each other's ranges.
    BM_ASSIGN_OR_RETURN(std::vector<QueryResult> read,
                        connection->begin({{kSelect, Params().bind(upload_id)}}, kAction));
    BM_ASSIGN_OR_RETURN(std::optional<domain::UploadRecord> upload,
                        readFirstRow<domain::UploadRecord>(read[0], readUpload<Row>));
    if (!upload) {
        return Error::notFound(fmt::format("upload '{}' not found", upload_id));
    }
    BM_RETURN_IF_ERROR(db::addUploadRange(*upload, first, last, now_ms));
    BM_RETURN_IF_ERROR(connection->pipeline(
        {{"UPDATE uploads SET received = $1, updated_ms = $2 WHERE id = $3",
          Params().bind(encodeRanges(upload->received)).bind(now_ms).bind(upload_id)},
         {"COMMIT", {}}},
        kAction));
    return std::move(*upload);
}

Status PostgresStore::deleteUpload(const std::string& upload_id) {
    BM_RETURN_IF_ERROR(
        run("DELETE FROM uploads WHERE id = $1", Params().bind(upload_id), "delete upload"));
    return okStatus();
}

Result<std::optional<domain::IdempotencyRecord>> PostgresStore::findIdempotency(
    const std::string& project_id, const std::string& key, int64_t not_before_ms) {
    static const std::string kSql = fmt::format(
        "SELECT {} FROM idempotency WHERE project_id = $1 AND idempotency_key = $2 "
        "AND created_ms >= $3",
        kIdempotencyColumns);
    return queryFirst<domain::IdempotencyRecord>(
        kSql, Params().bind(project_id).bind(key).bind(not_before_ms), "find idempotency record",
        readIdempotency<Row>);
}

Status PostgresStore::insertIdempotency(const domain::IdempotencyRecord& record) {
    static const std::string kInsert = fmt::format("INSERT INTO idempotency ({}) VALUES ({})",
                                                   kIdempotencyColumns, placeholders(1, 6));
    Params insert;
    bindIdempotency(insert, record);
    // One implicit transaction: the purge is undone when the insert fails.
    Result<std::vector<QueryResult>> stored =
        pipeline({{"DELETE FROM idempotency WHERE created_ms < $1",
                   Params().bind(record.created_ms - kIdempotencyRetentionMs)},
                  {kInsert, insert}},
                 "store idempotency record");
    if (!stored.ok()) {
        if (stored.error().code() == ErrorCode::Conflict) {
            return Error::conflict(
                fmt::format("Idempotency-Key '{}' is already stored", record.key));
        }
        return stored.error();
    }
    return okStatus();
}

Status PostgresStore::completeIdempotency(const domain::IdempotencyRecord& record) {
    BM_ASSIGN_OR_RETURN(
        QueryResult updated,
        run("UPDATE idempotency SET status_code = $1, response_body = $2 WHERE project_id = $3 "
            "AND idempotency_key = $4 AND created_ms = $5 AND status_code = 0",
            Params()
                .bind(int64_t{record.status_code})
                .bind(record.response_body)
                .bind(record.project_id)
                .bind(record.key)
                .bind(record.created_ms),
            "store idempotent response"));
    if (updated.affectedRows() == 0) {
        return Error::conflict(
            fmt::format("the reservation of Idempotency-Key '{}' is gone", record.key));
    }
    return okStatus();
}

Status PostgresStore::deleteIdempotencyReservation(const std::string& project_id,
                                                   const std::string& key, int64_t created_ms) {
    BM_ASSIGN_OR_RETURN(QueryResult deleted,
                        run("DELETE FROM idempotency WHERE project_id = $1 AND idempotency_key = "
                            "$2 AND created_ms = $3 AND status_code = 0",
                            Params().bind(project_id).bind(key).bind(created_ms),
                            "delete idempotency reservation"));
    (void)deleted;
    return okStatus();
}

}  // namespace bitmill::db::postgres
