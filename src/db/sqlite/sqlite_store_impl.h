// The SqliteStore class, shared by the .cc files that implement its parts
// (projects and media, tasks and the queue, uploads and idempotency).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "db/sqlite/connection.h"
#include "db/sqlite/sqlite_store.h"
#include "db/store.h"

namespace bitmill::db::sqlite {

// A connection locked for the current call.
class ConnectionLease {
public:
    explicit ConnectionLease(Connection& connection)
        : lock_(connection.mutex()), connection_(&connection) {}
    // Takes over `lock`, which must hold `connection`'s mutex.
    ConnectionLease(Connection& connection, std::unique_lock<std::mutex> lock)
        : lock_(std::move(lock)), connection_(&connection) {}

    Connection& operator*() { return *connection_; }
    Connection* operator->() { return connection_; }

private:
    std::unique_lock<std::mutex> lock_;
    Connection* connection_;
};

// Runs `statement` and converts every row with `read`.
template <typename T, typename Reader>
Result<std::vector<T>> readAll(Statement& statement, Reader read) {
    std::vector<T> items;
    while (true) {
        BM_ASSIGN_OR_RETURN(bool has_row, statement.step());
        if (!has_row) {
            break;
        }
        BM_ASSIGN_OR_RETURN(T item, read(statement));
        items.push_back(std::move(item));
    }
    return items;
}

// Runs `statement` and converts its first row, if any, with `read`.
template <typename T, typename Reader>
Result<std::optional<T>> readFirst(Statement& statement, Reader read) {
    BM_ASSIGN_OR_RETURN(bool has_row, statement.step());
    if (!has_row) {
        return std::optional<T>();
    }
    BM_ASSIGN_OR_RETURN(T item, read(statement));
    // A RETURNING statement applies its changes on the first step, but the
    // statement still has to reach the end before COMMIT.
    BM_RETURN_IF_ERROR(statement.run());
    return std::optional<T>(std::move(item));
}

// Returns "?, ?, …" with one placeholder for each column of the
// comma-separated list `columns` (one of the k*Columns lists).
std::string placeholders(std::string_view columns);

// Returns "UPDATE table SET c1 = ?, c2 = ?, … WHERE id = ? AND project_id =
// ?" for the comma-separated list `columns`, the parameter order of the
// bind*Update binders.
std::string updateByIdSql(std::string_view table, std::string_view columns);

// Inserts `media` on `connection`, which the caller holds. `action` names
// the operation in errors.
Status insertMediaRow(Connection& connection, const domain::MediaRecord& media,
                      std::string_view action);

// Updates the row of `media` on `connection`, which the caller holds, and
// returns the number of rows changed: 0 when the media does not exist.
Result<int64_t> updateMediaRow(Connection& connection, const domain::MediaRecord& media,
                               std::string_view action);

class SqliteStore final : public Store {
public:
    static Result<std::shared_ptr<SqliteStore>> open(const std::string& path,
                                                     const SqliteOptions& options);

    Result<domain::Project> ensureProject(const std::string& name) override;
    Result<domain::Project> getProject(const std::string& project_id) override;
    Status updateProject(const domain::Project& project) override;
    Status insertApiKey(const domain::ApiKey& key) override;
    Result<domain::ApiKey> findApiKeyByHash(const std::string& hash) override;
    Result<std::vector<domain::ApiKey>> listApiKeys(const std::string& project_id) override;
    Status revokeApiKey(const std::string& key_id, int64_t now_ms) override;

    Status insertMedia(const domain::MediaRecord& media) override;
    Result<domain::MediaRecord> getMedia(const std::string& project_id,
                                         const std::string& media_id) override;
    Result<Page<domain::MediaRecord>> listMedia(const std::string& project_id,
                                                PageRequest page) override;
    Status updateMedia(const domain::MediaRecord& media) override;
    Result<std::vector<domain::FileRecord>> deleteMedia(const std::string& project_id,
                                                        const std::string& media_id) override;

    Status insertFile(const domain::FileRecord& file) override;
    Result<domain::FileRecord> getFile(const std::string& project_id,
                                       const std::string& file_id) override;
    Result<Page<domain::FileRecord>> listFiles(const std::string& project_id,
                                               PageRequest page) override;
    Result<std::vector<domain::FileRecord>> listMediaFiles(const std::string& project_id,
                                                           const std::string& media_id) override;
    Status updateFile(const domain::FileRecord& file) override;
    Result<domain::FileRecord> deleteFile(const std::string& project_id,
                                          const std::string& file_id) override;
    Result<domain::FileRecord> findFileByDeliveryPath(const std::string& path) override;

    Status insertTask(const domain::TaskRecord& task) override;
    Result<domain::TaskRecord> getTask(const std::string& project_id,
                                       const std::string& task_id) override;
    Result<Page<domain::TaskRecord>> listTasks(const std::string& project_id,
                                               const TaskFilter& filter,
                                               PageRequest page) override;
    Result<domain::TaskRecord> cancelTask(const std::string& project_id,
                                          const std::string& task_id, int64_t now_ms) override;

    Result<std::optional<domain::TaskRecord>> claimTask(const std::string& worker_id,
                                                        int64_t now_ms,
                                                        int64_t lease_ms) override;
    Status heartbeatTask(const std::string& task_id, const std::string& worker_id, int progress,
                         int64_t lease_until_ms, int64_t now_ms) override;
    Status completeTask(const std::string& task_id, const std::string& worker_id,
                        const TaskCompletion& completion, int64_t now_ms) override;
    Status failTask(const std::string& task_id, const std::string& worker_id,
                    const std::string& error, int64_t now_ms) override;
    Status retryTask(const std::string& task_id, const std::string& worker_id,
                     const std::string& error, int64_t run_after_ms, int64_t now_ms) override;
    Result<int> reclaimExpiredLeases(int64_t now_ms) override;
    Result<int> reclaimAllLeases(int64_t now_ms) override;
    Result<int64_t> countDueTasks(int64_t now_ms) override;
    Result<std::vector<TaskCount>> countUnfinishedTasks() override;

    Result<domain::UploadRecord> getOrCreateUpload(const domain::UploadRecord& upload) override;
    Result<domain::UploadRecord> addUploadRange(const std::string& upload_id, int64_t first,
                                                int64_t last, int64_t now_ms) override;
    Status deleteUpload(const std::string& upload_id) override;

    Result<std::optional<domain::IdempotencyRecord>> findIdempotency(
        const std::string& project_id, const std::string& key, int64_t not_before_ms) override;
    Status insertIdempotency(const domain::IdempotencyRecord& record) override;
    Status completeIdempotency(const domain::IdempotencyRecord& record) override;
    Status deleteIdempotencyReservation(const std::string& project_id, const std::string& key,
                                        int64_t created_ms) override;

private:
    Result<int> reclaimLeasesBefore(int64_t cutoff_ms, int64_t now_ms);
    SqliteStore(std::unique_ptr<Connection> writer,
                std::vector<std::unique_ptr<Connection>> readers)
        : writer_(std::move(writer)), readers_(std::move(readers)) {}

    // Locks the write connection.
    ConnectionLease writer();
    // Locks a free read connection, or waits for one; the writer serves
    // reads when there are no read connections.
    ConnectionLease reader();

    // Explains why a worker-side update of `task_id` changed no row:
    // NotFound, or Conflict naming the task's state. Runs on `connection`,
    // which the caller holds.
    Error leaseLost(Connection& connection, const std::string& task_id,
                    const std::string& worker_id, std::string_view action);
    // Runs one conditional worker-side UPDATE whose parameters end with
    // task_id and worker_id.
    template <typename Binder>
    Status updateLeasedTask(const std::string& task_id, const std::string& worker_id,
                            std::string_view sql, std::string_view action, Binder bind);

    std::unique_ptr<Connection> writer_;
    std::vector<std::unique_ptr<Connection>> readers_;
    std::atomic<size_t> next_reader_{0};
};

}  // namespace bitmill::db::sqlite
