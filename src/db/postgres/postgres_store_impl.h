// The PostgresStore class, shared by the .cc files that implement its parts
// (projects and media, tasks and the queue, uploads and idempotency).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "db/postgres/connection.h"
#include "db/postgres/connection_pool.h"
#include "db/postgres/postgres_store.h"
#include "db/postgres/task_listener.h"
#include "db/store.h"

namespace bitmill::db::postgres {

// Converts every row of `result` with `read`.
template <typename T, typename Reader>
Result<std::vector<T>> readRows(const QueryResult& result, Reader read) {
    std::vector<T> items;
    items.reserve(static_cast<size_t>(result.rowCount()));
    for (int i = 0; i < result.rowCount(); ++i) {
        BM_ASSIGN_OR_RETURN(T item, read(result.row(i)));
        items.push_back(std::move(item));
    }
    return items;
}

// Converts the first row of `result`, if any, with `read`.
template <typename T, typename Reader>
Result<std::optional<T>> readFirstRow(const QueryResult& result, Reader read) {
    if (result.rowCount() == 0) {
        return std::optional<T>();
    }
    BM_ASSIGN_OR_RETURN(T item, read(result.row(0)));
    return std::optional<T>(std::move(item));
}

// Returns "$first, $first+1, …" for `count` parameters.
std::string placeholders(int first, int count);

// Returns the names of a comma-separated column list such as kFileColumns.
std::vector<std::string_view> columnNames(std::string_view columns);

// Returns "UPDATE table SET c1 = $1, c2 = $2, … WHERE id = $n AND
// project_id = $n+1" for the columns of `columns`, the parameter order of
// the bind*Update binders.
std::string updateByIdSql(std::string_view table, std::string_view columns);

class PostgresStore final : public Store {
public:
    static Result<std::shared_ptr<PostgresStore>> open(const std::string& url,
                                                       const PostgresOptions& options);

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
                                               const TaskFilter& filter, PageRequest page) override;
    Result<domain::TaskRecord> cancelTask(const std::string& project_id, const std::string& task_id,
                                          int64_t now_ms) override;

    Result<std::optional<domain::TaskRecord>> claimTask(const std::string& worker_id,
                                                        int64_t now_ms, int64_t lease_ms) override;
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
    void setTaskWakeHandler(std::function<void()> handler) override;

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
    PostgresStore(const std::string& url, int pool_size);

    // Runs one statement on a pooled connection.
    Result<QueryResult> run(std::string_view sql, const Params& params, std::string_view action);
    // Runs `commands` in one round trip and one implicit transaction.
    Result<std::vector<QueryResult>> pipeline(const std::vector<Command>& commands,
                                              std::string_view action);
    // Runs one statement and converts its first row, if any.
    template <typename T, typename Reader>
    Result<std::optional<T>> queryFirst(std::string_view sql, const Params& params,
                                        std::string_view action, Reader read) {
        BM_ASSIGN_OR_RETURN(QueryResult result, run(sql, params, action));
        return readFirstRow<T>(result, read);
    }
    template <typename T, typename Reader>
    Result<std::vector<T>> queryAll(std::string_view sql, const Params& params,
                                    std::string_view action, Reader read) {
        BM_ASSIGN_OR_RETURN(QueryResult result, run(sql, params, action));
        return readRows<T>(result, read);
    }
    // Returns one page of rows and the total over all pages from one
    // snapshot. `count_sql` and `page_sql` take `filter` as their first
    // parameters; `page_sql` takes LIMIT and OFFSET after them.
    template <typename T, typename Reader>
    Result<Page<T>> queryPage(std::string_view count_sql, std::string_view page_sql,
                              const Params& filter, PageRequest page, std::string_view action,
                              Reader read);

    // Explains why a worker-side update of `task_id` changed no row:
    // NotFound, or Conflict naming the task's state.
    Error leaseLost(Connection& connection, const std::string& task_id,
                    const std::string& worker_id, std::string_view action);
    // Runs one conditional worker-side UPDATE whose last two parameters are
    // task_id and worker_id, and returns leaseLost when it matched nothing.
    Status updateLeasedTask(std::string_view sql, Params params, const std::string& task_id,
                            const std::string& worker_id, std::string_view action);
    Result<int> reclaimLeasesBefore(int64_t cutoff_ms, int64_t now_ms);

    ConnectionPool pool_;
    // Payload of this store's NOTIFYs, so its listener can skip them.
    std::string notify_payload_;
    // Declared after pool_, so its thread stops before the pool closes.
    TaskWakeListener listener_;
};

template <typename T, typename Reader>
Result<Page<T>> PostgresStore::queryPage(std::string_view count_sql, std::string_view page_sql,
                                         const Params& filter, PageRequest page,
                                         std::string_view action, Reader read) {
    Params page_params = filter;
    page_params.bind(page.limit).bind(int64_t{page.page - 1} * page.limit);
    // A repeatable-read transaction gives the count and the page one
    // snapshot; all four statements go in one round trip.
    BM_ASSIGN_OR_RETURN(std::vector<QueryResult> results,
                        pipeline({{"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", {}},
                                  {count_sql, filter},
                                  {page_sql, page_params},
                                  {"COMMIT", {}}},
                                 action));
    Page<T> result;
    result.total = results[1].row(0).int64(0);
    BM_ASSIGN_OR_RETURN(result.items, readRows<T>(results[2], read));
    return result;
}

}  // namespace bitmill::db::postgres
