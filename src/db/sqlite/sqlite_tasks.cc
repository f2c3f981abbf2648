// Tasks and the queue operations of SqliteStore. A worker owns a task while
// its status is processing and lease_owner names it. Every worker-side
// update repeats both conditions in its WHERE clause, so an update from a
// worker that lost the task changes nothing and returns Conflict.
#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "db/record_mapping.h"
#include "db/sqlite/sqlite_store_impl.h"
#include "db/store_checks.h"

namespace bitmill::db::sqlite {

namespace {

// A WHERE clause of listTasks and the values it binds, in order.
struct TaskQuery {
    std::string where = "project_id = ?";
    std::vector<std::string> values;
};

TaskQuery buildTaskQuery(const std::string& project_id, const TaskFilter& filter) {
    TaskQuery query;
    query.values.push_back(project_id);
    auto add = [&query](const char* column, const std::optional<std::string>& value) {
        if (value) {
            query.where += fmt::format(" AND {} = ?", column);
            query.values.push_back(*value);
        }
    };
    if (filter.status) {
        add("status", std::string(domain::toString(*filter.status)));
    }
    add("kind", filter.kind);
    add("media_id", filter.media_id);
    add("parent_id", filter.parent_id);
    return query;
}

// Inserts `file`, or replaces the row with the same id: an ingest started
// by POST /files fills the row that request created.
Status upsertFileRow(Connection& connection, const domain::FileRecord& file,
                     std::string_view action) {
    static const std::string kUpsertFile = fmt::format(
        "INSERT OR REPLACE INTO files ({}) VALUES ({})", kFileColumns, placeholders(kFileColumns));
    BM_ASSIGN_OR_RETURN(Statement insert, connection.prepare(kUpsertFile, action));
    bindFile(insert, file);
    Result<int64_t> inserted = insert.run();
    if (!inserted.ok()) {
        return inserted.error();
    }
    return okStatus();
}

}  // namespace

Status SqliteStore::insertTask(const domain::TaskRecord& task) {
    ConnectionLease connection = writer();
    BM_ASSIGN_OR_RETURN(
        Statement insert,
        connection->prepare(fmt::format("INSERT INTO tasks ({}) VALUES ({})", kTaskColumns,
                                        placeholders(kTaskColumns)),
                            "insert task"));
    bindTask(insert, task);
    Result<int64_t> inserted = insert.run();
    if (!inserted.ok()) {
        return inserted.error();
    }
    return okStatus();
}

Result<domain::TaskRecord> SqliteStore::getTask(const std::string& project_id,
                                                const std::string& task_id) {
    ConnectionLease connection = reader();
    BM_ASSIGN_OR_RETURN(Statement query,
                        connection->prepare(fmt::format("SELECT {} FROM tasks WHERE id = ? AND "
                                                        "project_id = ?",
                                                        kTaskColumns),
                                            "get task"));
    query.bind(task_id).bind(project_id);
    BM_ASSIGN_OR_RETURN(std::optional<domain::TaskRecord> task,
                        readFirst<domain::TaskRecord>(query, readTask<Statement>));
    if (!task) {
        return Error::notFound(fmt::format("task '{}' not found", task_id));
    }
    return std::move(*task);
}

Result<Page<domain::TaskRecord>> SqliteStore::listTasks(const std::string& project_id,
                                                        const TaskFilter& filter,
                                                        PageRequest page) {
    constexpr std::string_view kAction = "list tasks";
    BM_RETURN_IF_ERROR(checkPage(page));
    TaskQuery where = buildTaskQuery(project_id, filter);
    ConnectionLease connection = reader();
    BM_ASSIGN_OR_RETURN(Transaction transaction, Transaction::beginRead(*connection));
    Page<domain::TaskRecord> result;
    {
        // The SQL text varies only with which filters are set, so the
        // statement cache contains at most 16 variants of each query.
        BM_ASSIGN_OR_RETURN(
            Statement count,
            connection->prepare(fmt::format("SELECT COUNT(*) FROM tasks WHERE {}", where.where),
                                kAction));
        for (const std::string& value : where.values) {
            count.bind(value);
        }
        BM_RETURN_IF_ERROR(count.step());
        result.total = count.int64(0);
    }
    {
        BM_ASSIGN_OR_RETURN(Statement query,
                            connection->prepare(fmt::format("SELECT {} FROM tasks WHERE {} ORDER "
                                                            "BY created_ms DESC, seq DESC LIMIT ? "
                                                            "OFFSET ?",
                                                            kTaskColumns, where.where),
                                                kAction));
        for (const std::string& value : where.values) {
            query.bind(value);
        }
        query.bind(page.limit).bind(int64_t{page.page - 1} * page.limit);
        BM_ASSIGN_OR_RETURN(result.items, readAll<domain::TaskRecord>(query, readTask<Statement>));
    }
    BM_RETURN_IF_ERROR(transaction.commit());
    return result;
}

Result<domain::TaskRecord> SqliteStore::cancelTask(const std::string& project_id,
                                                   const std::string& task_id, int64_t now_ms) {
    constexpr std::string_view kAction = "cancel task";
    ConnectionLease connection = writer();
    BM_ASSIGN_OR_RETURN(Transaction transaction, Transaction::beginWrite(*connection));
    {
        BM_ASSIGN_OR_RETURN(
            Statement update,
            connection->prepare("UPDATE tasks SET status = 'cancelled', lease_expires_ms = NULL, "
                                "finished_ms = ?1, updated_ms = ?1 WHERE id = ?2 AND project_id "
                                "= ?3 AND status IN ('pending', 'waiting', 'processing')",
                                kAction));
        update.bind(now_ms).bind(task_id).bind(project_id);
        BM_RETURN_IF_ERROR(update.run());
    }
    std::optional<domain::TaskRecord> task;
    {
        BM_ASSIGN_OR_RETURN(Statement query,
                            connection->prepare(fmt::format("SELECT {} FROM tasks WHERE id = ? "
                                                            "AND project_id = ?",
                                                            kTaskColumns),
                                                kAction));
        query.bind(task_id).bind(project_id);
        BM_ASSIGN_OR_RETURN(task, readFirst<domain::TaskRecord>(query, readTask<Statement>));
    }
    if (!task) {
        return Error::notFound(fmt::format("task '{}' not found", task_id));
    }
    BM_RETURN_IF_ERROR(transaction.commit());
    return std::move(*task);
}

// Queue operations.

Result<std::optional<domain::TaskRecord>> SqliteStore::claimTask(const std::string& worker_id,
                                                                 int64_t now_ms,
                                                                 int64_t lease_ms) {
    constexpr std::string_view kAction = "claim task";
    ConnectionLease connection = writer();
    BM_ASSIGN_OR_RETURN(Transaction transaction, Transaction::beginWrite(*connection));
    std::optional<domain::TaskRecord> task;
    {
        // The repeated status check in the outer WHERE keeps the statement
        // safe even without the write lock (as in PostgreSQL, where the
        // subquery would use FOR UPDATE SKIP LOCKED).
        BM_ASSIGN_OR_RETURN(
            Statement claim,
            connection->prepare(
                fmt::format("UPDATE tasks SET status = 'processing', attempts = attempts + 1, "
                            "lease_owner = ?1, lease_expires_ms = ?2, started_ms = "
                            "COALESCE(started_ms, ?3), updated_ms = ?3 WHERE seq = (SELECT seq "
                            "FROM tasks WHERE status = 'pending' AND run_after_ms <= ?3 ORDER BY "
                            "created_ms, seq LIMIT 1) AND status = 'pending' RETURNING {}",
                            kTaskColumns),
                kAction));
        claim.bind(worker_id).bind(now_ms + lease_ms).bind(now_ms);
        BM_ASSIGN_OR_RETURN(task, readFirst<domain::TaskRecord>(claim, readTask<Statement>));
    }
    BM_RETURN_IF_ERROR(transaction.commit());
    return task;
}

Error SqliteStore::leaseLost(Connection& connection, const std::string& task_id,
                             const std::string& worker_id, std::string_view action) {
    auto query = connection.prepare("SELECT status, lease_owner FROM tasks WHERE id = ?", action);
    if (!query.ok()) {
        return query.error();
    }
    query->bind(task_id);
    Result<bool> has_row = query->step();
    if (!has_row.ok()) {
        return has_row.error();
    }
    if (!*has_row) {
        return leaseLostError(std::nullopt, std::nullopt, task_id, worker_id, action);
    }
    return leaseLostError(query->text(0), query->optionalText(1), task_id, worker_id, action);
}

template <typename Binder>
Status SqliteStore::updateLeasedTask(const std::string& task_id, const std::string& worker_id,
                                     std::string_view sql, std::string_view action, Binder bind) {
    ConnectionLease connection = writer();
    int64_t changed = 0;
    {
        BM_ASSIGN_OR_RETURN(Statement update, connection->prepare(sql, action));
        bind(update);
        update.bind(task_id).bind(worker_id);
        BM_ASSIGN_OR_RETURN(changed, update.run());
    }
    if (changed == 0) {
        return leaseLost(*connection, task_id, worker_id, action);
    }
    return okStatus();
}

// A lease that expired but was not yet reclaimed still lets its worker
// heartbeat, complete or fail: no other worker can hold the task until
// reclaimExpiredLeases has put it back to pending.
Status SqliteStore::heartbeatTask(const std::string& task_id, const std::string& worker_id,
                                  int progress, int64_t lease_until_ms, int64_t now_ms) {
    int clamped = std::clamp(progress, 0, 100);
    return updateLeasedTask(task_id, worker_id,
                            "UPDATE tasks SET progress = ?, lease_expires_ms = ?, updated_ms = ? "
                            "WHERE id = ? AND status = 'processing' AND lease_owner = ?",
                            "heartbeat task", [&](Statement& update) {
                                update.bind(clamped).bind(lease_until_ms).bind(now_ms);
                            });
}

Status SqliteStore::completeTask(const std::string& task_id, const std::string& worker_id,
                                 const TaskCompletion& completion, int64_t now_ms) {
    constexpr std::string_view kAction = "complete task";
    ConnectionLease connection = writer();
    BM_ASSIGN_OR_RETURN(Transaction transaction, Transaction::beginWrite(*connection));

    // Mark the task first: when the lease is gone nothing else is written.
    {
        BM_ASSIGN_OR_RETURN(
            Statement update,
            connection->prepare("UPDATE tasks SET status = 'completed', progress = 100, "
                                "output_file_id = COALESCE(?, output_file_id), media_id = "
                                "COALESCE(media_id, ?), error = NULL, lease_expires_ms = NULL, "
                                "finished_ms = ?, updated_ms = ? WHERE id = ? AND status = "
                                "'processing' AND lease_owner = ?",
                                kAction));
        std::optional<std::string> output_file_id;
        if (completion.output_file) {
            output_file_id = completion.output_file->id;
        }
        std::optional<std::string> inserted_media_id;
        if (completion.media_insert) {
            inserted_media_id = completion.media_insert->id;
        }
        update.bind(output_file_id).bind(inserted_media_id).bind(now_ms).bind(now_ms);
        update.bind(task_id).bind(worker_id);
        BM_ASSIGN_OR_RETURN(int64_t changed, update.run());
        if (changed == 0) {
            return leaseLost(*connection, task_id, worker_id, kAction);
        }
    }

    // Then publish the outputs; any failure rolls the completion back too.
    if (completion.media_insert) {
        BM_RETURN_IF_ERROR(insertMediaRow(*connection, *completion.media_insert, kAction));
    }
    if (completion.input_file) {
        BM_RETURN_IF_ERROR(upsertFileRow(*connection, *completion.input_file, kAction));
        BM_ASSIGN_OR_RETURN(Statement link,
                            connection->prepare("UPDATE tasks SET input_file_id = ? WHERE id = ?",
                                                kAction));
        link.bind(completion.input_file->id).bind(task_id);
        BM_RETURN_IF_ERROR(link.run());
    }
    if (completion.output_file) {
        BM_RETURN_IF_ERROR(upsertFileRow(*connection, *completion.output_file, kAction));
    }
    if (completion.media_update) {
        BM_ASSIGN_OR_RETURN(int64_t changed,
                            updateMediaRow(*connection, *completion.media_update, kAction));
        if (changed == 0) {
            return Error::notFound(fmt::format("{}: media '{}' not found", kAction,
                                               completion.media_update->id));
        }
    }
    return transaction.commit();
}

Status SqliteStore::failTask(const std::string& task_id, const std::string& worker_id,
                             const std::string& error, int64_t now_ms) {
    return updateLeasedTask(task_id, worker_id,
                            "UPDATE tasks SET status = 'failed', error = ?, lease_expires_ms = "
                            "NULL, finished_ms = ?, updated_ms = ? WHERE id = ? AND status = "
                            "'processing' AND lease_owner = ?",
                            "fail task", [&](Statement& update) {
                                update.bind(error).bind(now_ms).bind(now_ms);
                            });
}

Status SqliteStore::retryTask(const std::string& task_id, const std::string& worker_id,
                              const std::string& error, int64_t run_after_ms, int64_t now_ms) {
    // The error of the failed attempt stays visible while the task waits.
    return updateLeasedTask(task_id, worker_id,
                            "UPDATE tasks SET status = 'pending', error = ?, run_after_ms = ?, "
                            "progress = 0, lease_owner = NULL, lease_expires_ms = NULL, "
                            "updated_ms = ? WHERE id = ? AND status = 'processing' AND "
                            "lease_owner = ?",
                            "retry task", [&](Statement& update) {
                                update.bind(error).bind(run_after_ms).bind(now_ms);
                            });
}

Result<int> SqliteStore::reclaimExpiredLeases(int64_t now_ms) {
    return reclaimLeasesBefore(now_ms, now_ms);
}

Result<int> SqliteStore::reclaimAllLeases(int64_t now_ms) {
    return reclaimLeasesBefore(std::numeric_limits<int64_t>::max(), now_ms);
}

// Requeues or fails processing tasks whose lease expires before `cutoff_ms`.
Result<int> SqliteStore::reclaimLeasesBefore(int64_t cutoff_ms, int64_t now_ms) {
    constexpr std::string_view kAction = "reclaim expired task leases";
    ConnectionLease connection = writer();
    BM_ASSIGN_OR_RETURN(Transaction transaction, Transaction::beginWrite(*connection));
    int64_t failed = 0;
    int64_t requeued = 0;
    {
        BM_ASSIGN_OR_RETURN(
            Statement fail,
            connection->prepare("UPDATE tasks SET status = 'failed', error = 'worker stopped "
                                "responding: lease expired on the last attempt (' || attempts || "
                                "' of ' || max_attempts || ')', lease_expires_ms = NULL, "
                                "finished_ms = ?1, updated_ms = ?1 WHERE status = 'processing' "
                                "AND lease_expires_ms < ?2 AND attempts >= max_attempts",
                                kAction));
        fail.bind(now_ms).bind(cutoff_ms);
        BM_ASSIGN_OR_RETURN(failed, fail.run());
    }
    {
        BM_ASSIGN_OR_RETURN(
            Statement requeue,
            connection->prepare("UPDATE tasks SET status = 'pending', error = 'worker stopped "
                                "responding: lease expired on attempt ' || attempts || ' of ' || "
                                "max_attempts, progress = 0, lease_owner = NULL, lease_expires_ms "
                                "= NULL, run_after_ms = ?1, updated_ms = ?1 WHERE status = "
                                "'processing' AND lease_expires_ms < ?2",
                                kAction));
        requeue.bind(now_ms).bind(cutoff_ms);
        BM_ASSIGN_OR_RETURN(requeued, requeue.run());
    }
    BM_RETURN_IF_ERROR(transaction.commit());
    return static_cast<int>(failed + requeued);
}

Result<int64_t> SqliteStore::countDueTasks(int64_t now_ms) {
    ConnectionLease connection = reader();
    BM_ASSIGN_OR_RETURN(Statement count,
                        connection->prepare("SELECT COUNT(*) FROM tasks WHERE status = 'pending' "
                                            "AND run_after_ms <= ?",
                                            "count due tasks"));
    count.bind(now_ms);
    BM_RETURN_IF_ERROR(count.step());
    return count.int64(0);
}

Result<std::vector<TaskCount>> SqliteStore::countUnfinishedTasks() {
    ConnectionLease connection = reader();
    BM_ASSIGN_OR_RETURN(
        Statement count,
        connection->prepare("SELECT kind, status, COUNT(*) FROM tasks WHERE status IN "
                            "('pending', 'waiting', 'processing') GROUP BY kind, status",
                            "count unfinished tasks"));
    std::vector<TaskCount> counts;
    while (true) {
        BM_ASSIGN_OR_RETURN(bool has_row, count.step());
        if (!has_row) {
            break;
        }
        auto status = domain::parseTaskStatus(count.text(1));
        if (!status) {
            return Error::internal("count unfinished tasks: unknown status", count.text(1));
        }
        counts.push_back({count.text(0), *status, count.int64(2)});
    }
    return counts;
}

}  // namespace bitmill::db::sqlite
