// Tasks and the queue operations of PostgresStore. A worker owns a task
// while its status is processing and lease_owner names it. Every
// worker-side update repeats both conditions in its WHERE clause, so an
// update from a worker that lost the task changes nothing and returns
// Conflict. Statements that make a task due NOTIFY kTaskChannel in their
// own transaction, so the notification is sent exactly when they commit.
#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "db/postgres/postgres_store_impl.h"
#include "db/record_mapping.h"
#include "db/store_checks.h"

namespace bitmill::db::postgres {

namespace {

// A WHERE clause of listTasks and its parameters, numbered from $1.
struct TaskQuery {
    std::string where = "project_id = $1";
    Params params;
    int count = 1;
};

TaskQuery buildTaskQuery(const std::string& project_id, const TaskFilter& filter) {
    TaskQuery query;
    query.params.bind(project_id);
    auto add = [&query](const char* column, const std::optional<std::string>& value) {
        if (value) {
            query.where += fmt::format(" AND {} = ${}", column, ++query.count);
            query.params.bind(*value);
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

// Returns "column = EXCLUDED.column" for every column of `columns` but id.
std::string excludedAssignments(std::string_view columns) {
    std::string assignments;
    for (std::string_view column : columnNames(columns)) {
        if (column != "id") {
            assignments +=
                fmt::format("{}{} = EXCLUDED.{}", assignments.empty() ? "" : ", ", column, column);
        }
    }
    return assignments;
}

// The statements completeTask runs after marking the task completed, in
// the same transaction. Their SQL is static, so the commands may point at
// it.
std::vector<Command> publishCommands(const std::string& task_id, const TaskCompletion& completion) {
    static const std::string kInsertMedia =
        fmt::format("INSERT INTO media ({}) VALUES ({})", kMediaColumns, placeholders(1, 12));
    // An ingest started by POST /files fills the row that request created.
    static const std::string kUpsertFile =
        fmt::format("INSERT INTO files ({}) VALUES ({}) ON CONFLICT (id) DO UPDATE SET {}",
                    kFileColumns, placeholders(1, 19), excludedAssignments(kFileColumns));
    static const std::string kUpdateMedia = updateByIdSql("media", kMediaUpdateColumns);
    std::vector<Command> commands;
    if (completion.media_insert) {
        Params media;
        bindMedia(media, *completion.media_insert);
        commands.push_back({kInsertMedia, std::move(media)});
    }
    if (completion.input_file) {
        Params file;
        bindFile(file, *completion.input_file);
        commands.push_back({kUpsertFile, std::move(file)});
        commands.push_back({"UPDATE tasks SET input_file_id = $1 WHERE id = $2",
                            Params().bind(completion.input_file->id).bind(task_id)});
    }
    if (completion.output_file) {
        Params file;
        bindFile(file, *completion.output_file);
        commands.push_back({kUpsertFile, std::move(file)});
    }
    if (completion.media_update) {
        Params media;
        bindMediaUpdate(media, *completion.media_update);
        commands.push_back({kUpdateMedia, std::move(media)});
    }
    return commands;
}

}  // namespace

Status PostgresStore::insertTask(const domain::TaskRecord& task) {
    static const std::string kSql = fmt::format(
        "WITH inserted AS (INSERT INTO tasks ({}) VALUES ({}) RETURNING 1) "
        "SELECT pg_notify('{}', $24) FROM inserted",
        kTaskColumns, placeholders(1, 23), kTaskChannel);
    Params params;
    bindTask(params, task);
    params.bind(notify_payload_);
    BM_RETURN_IF_ERROR(run(kSql, params, "insert task"));
    return okStatus();
}

Result<domain::TaskRecord> PostgresStore::getTask(const std::string& project_id,
                                                  const std::string& task_id) {
    static const std::string kSql =
        fmt::format("SELECT {} FROM tasks WHERE id = $1 AND project_id = $2", kTaskColumns);
    BM_ASSIGN_OR_RETURN(
        std::optional<domain::TaskRecord> task,
        queryFirst<domain::TaskRecord>(kSql, Params().bind(task_id).bind(project_id), "get task",
                                       readTask<Row>));
    if (!task) {
        return Error::notFound(fmt::format("task '{}' not found", task_id));
    }
    return std::move(*task);
}

Result<Page<domain::TaskRecord>> PostgresStore::listTasks(const std::string& project_id,
                                                          const TaskFilter& filter,
                                                          PageRequest page) {
    BM_RETURN_IF_ERROR(checkPage(page));
    TaskQuery query = buildTaskQuery(project_id, filter);
    // The SQL text varies only with which filters are set, so each
    // connection prepares at most 16 variants of each statement.
    std::string count_sql = fmt::format("SELECT COUNT(*) FROM tasks WHERE {}", query.where);
    std::string page_sql = fmt::format(
        "SELECT {} FROM tasks WHERE {} ORDER BY created_ms DESC, seq DESC LIMIT ${} OFFSET ${}",
        kTaskColumns, query.where, query.count + 1, query.count + 2);
    return queryPage<domain::TaskRecord>(count_sql, page_sql, query.params, page, "list tasks",
                                         readTask<Row>);
}

Result<domain::TaskRecord> PostgresStore::cancelTask(const std::string& project_id,
                                                     const std::string& task_id, int64_t now_ms) {
    static const std::string kSelect =
        fmt::format("SELECT {} FROM tasks WHERE id = $1 AND project_id = $2", kTaskColumns);
    constexpr std::string_view kAction = "cancel task";
    // One implicit transaction: the SELECT returns the task as the UPDATE
    // left it.
    BM_ASSIGN_OR_RETURN(
        std::vector<QueryResult> results,
        pipeline({{"UPDATE tasks SET status = 'cancelled', lease_expires_ms = NULL, "
                   "finished_ms = $1, updated_ms = $1 WHERE id = $2 AND project_id = $3 AND "
                   "status IN ('pending', 'waiting', 'processing')",
                   Params().bind(now_ms).bind(task_id).bind(project_id)},
                  {kSelect, Params().bind(task_id).bind(project_id)}},
                 kAction));
    BM_ASSIGN_OR_RETURN(std::optional<domain::TaskRecord> task,
                        readFirstRow<domain::TaskRecord>(results[1], readTask<Row>));
    if (!task) {
        return Error::notFound(fmt::format("task '{}' not found", task_id));
    }
    return std::move(*task);
}

// Queue operations.

Result<std::optional<domain::TaskRecord>> PostgresStore::claimTask(const std::string& worker_id,
                                                                   int64_t now_ms,
                                                                   int64_t lease_ms) {
    // One statement, one round trip. SKIP LOCKED lets concurrent claimers
    // pass over the row another transaction is claiming instead of waiting
    // for it, and FOR UPDATE re-checks status = 'pending' on the newest row
    // version, so a task is never claimed twice. The tasks_queue index
    // (status, created_ms, seq) returns the pending rows in claim order.
    static const std::string kSql = fmt::format(
        "UPDATE tasks SET status = 'processing', attempts = attempts + 1, lease_owner = $1, "
        "lease_expires_ms = $2, started_ms = COALESCE(started_ms, $3), updated_ms = $3 "
        "WHERE seq = (SELECT seq FROM tasks WHERE status = 'pending' AND run_after_ms <= $3 "
        "ORDER BY created_ms, seq LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING {}",
        kTaskColumns);
    return queryFirst<domain::TaskRecord>(
        kSql, Params().bind(worker_id).bind(now_ms + lease_ms).bind(now_ms), "claim task",
        readTask<Row>);
}

Error PostgresStore::leaseLost(Connection& connection, const std::string& task_id,
                               const std::string& worker_id, std::string_view action) {
    Result<QueryResult> task = connection.run("SELECT status, lease_owner FROM tasks WHERE id = $1",
                                              Params().bind(task_id), action);
    if (!task.ok()) {
        return task.error();
    }
    if (task->rowCount() == 0) {
        return leaseLostError(std::nullopt, std::nullopt, task_id, worker_id, action);
    }
    Row row = task->row(0);
    return leaseLostError(row.text(0), row.optionalText(1), task_id, worker_id, action);
}

Status PostgresStore::updateLeasedTask(std::string_view sql, Params params,
                                       const std::string& task_id, const std::string& worker_id,
                                       std::string_view action) {
    BM_ASSIGN_OR_RETURN(PooledConnection connection, pool_.acquire());
    params.bind(task_id).bind(worker_id);
    BM_ASSIGN_OR_RETURN(QueryResult update, connection->run(sql, params, action));
    if (update.affectedRows() == 0) {
        return leaseLost(*connection, task_id, worker_id, action);
    }
    return okStatus();
}

// A lease that expired but was not yet reclaimed still lets its worker
// heartbeat, complete or fail: no other worker can hold the task until
// reclaimExpiredLeases has put it back to pending.
Status PostgresStore::heartbeatTask(const std::string& task_id, const std::string& worker_id,
                                    int progress, int64_t lease_until_ms, int64_t now_ms) {
    return updateLeasedTask(
        "UPDATE tasks SET progress = $1, lease_expires_ms = $2, updated_ms = $3 "
        "WHERE id = $4 AND status = 'processing' AND lease_owner = $5",
        Params().bind(std::clamp(progress, 0, 100)).bind(lease_until_ms).bind(now_ms), task_id,
        worker_id, "heartbeat task");
}

Status PostgresStore::completeTask(const std::string& task_id, const std::string& worker_id,
                                   const TaskCompletion& completion, int64_t now_ms) {
    constexpr std::string_view kAction = "complete task";
    constexpr std::string_view kComplete =
        "UPDATE tasks SET status = 'completed', progress = 100, output_file_id = "
        "COALESCE($1, output_file_id), media_id = COALESCE(media_id, $2), error = NULL, "
        "lease_expires_ms = NULL, finished_ms = $3, updated_ms = $3 WHERE id = $4 AND "
        "status = 'processing' AND lease_owner = $5";
    std::optional<std::string> output_file_id;
    if (completion.output_file) {
        output_file_id = completion.output_file->id;
    }
    std::optional<std::string> inserted_media_id;
    if (completion.media_insert) {
        inserted_media_id = completion.media_insert->id;
    }
    Params complete;
    complete.bind(output_file_id).bind(inserted_media_id).bind(now_ms);
    std::vector<Command> publish = publishCommands(task_id, completion);
    if (publish.empty()) {
        return updateLeasedTask(kComplete, complete, task_id, worker_id, kAction);
    }

    // Round trip one: BEGIN, mark the task, publish the outputs. Round trip
    // two: COMMIT, only when the task was still ours and every output was
    // written; otherwise the transaction rolls back and nothing appears.
    BM_ASSIGN_OR_RETURN(PooledConnection connection, pool_.acquire());
    std::vector<Command> commands{{kComplete, complete.bind(task_id).bind(worker_id)}};
    std::move(publish.begin(), publish.end(), std::back_inserter(commands));
    Result<std::vector<QueryResult>> results = connection->begin(commands, kAction);
    if (!results.ok()) {
        // A lost lease explains the failure better than the output that
        // could not be written after it.
        if (connection->isUsable() && connection->rollback().ok()) {
            Error lost = leaseLost(*connection, task_id, worker_id, kAction);
            if (lost.code() == ErrorCode::Conflict || lost.code() == ErrorCode::NotFound) {
                return lost;
            }
        }
        return results.error();
    }
    if (results->front().affectedRows() == 0) {
        return leaseLost(*connection, task_id, worker_id, kAction);
    }
    if (completion.media_update && results->back().affectedRows() == 0) {
        return Error::notFound(
            fmt::format("{}: media '{}' not found", kAction, completion.media_update->id));
    }
    return connection->commit(kAction);
}

Status PostgresStore::failTask(const std::string& task_id, const std::string& worker_id,
                               const std::string& error, int64_t now_ms) {
    return updateLeasedTask(
        "UPDATE tasks SET status = 'failed', error = $1, lease_expires_ms = NULL, "
        "finished_ms = $2, updated_ms = $2 WHERE id = $3 AND status = 'processing' AND "
        "lease_owner = $4",
        Params().bind(error).bind(now_ms), task_id, worker_id, "fail task");
}

Status PostgresStore::retryTask(const std::string& task_id, const std::string& worker_id,
                                const std::string& error, int64_t run_after_ms, int64_t now_ms) {
    // The error of the failed attempt stays visible while the task waits.
    // The SELECT returns one row, and notifies, only when the UPDATE
    // matched, so updateLeasedTask gets 0 rows when the lease was lost.
    static const std::string kSql = fmt::format(
        "WITH retried AS (UPDATE tasks SET status = 'pending', error = $1, run_after_ms = $2, "
        "progress = 0, lease_owner = NULL, lease_expires_ms = NULL, updated_ms = $3 "
        "WHERE id = $5 AND status = 'processing' AND lease_owner = $6 RETURNING 1) "
        "SELECT pg_notify('{}', $4) FROM retried",
        kTaskChannel);
    return updateLeasedTask(
        kSql, Params().bind(error).bind(run_after_ms).bind(now_ms).bind(notify_payload_), task_id,
        worker_id, "retry task");
}

Result<int> PostgresStore::reclaimExpiredLeases(int64_t now_ms) {
    return reclaimLeasesBefore(now_ms, now_ms);
}

Result<int> PostgresStore::reclaimAllLeases(int64_t now_ms) {
    return reclaimLeasesBefore(std::numeric_limits<int64_t>::max(), now_ms);
}

// Requeues or fails processing tasks whose lease expires before `cutoff_ms`,
// in one statement. The two UPDATEs see the same snapshot, so their
// attempts conditions keep them apart; a notification goes out only when a
// task returned to pending.
Result<int> PostgresStore::reclaimLeasesBefore(int64_t cutoff_ms, int64_t now_ms) {
    static const std::string kSql = fmt::format(
        "WITH failed AS (UPDATE tasks SET status = 'failed', error = 'worker stopped "
        "responding: lease expired on the last attempt (' || attempts || ' of ' || "
        "max_attempts || ')', lease_expires_ms = NULL, finished_ms = $1, updated_ms = $1 "
        "WHERE status = 'processing' AND lease_expires_ms < $2 AND attempts >= max_attempts "
        "RETURNING 1), "
        "requeued AS (UPDATE tasks SET status = 'pending', error = 'worker stopped "
        "responding: lease expired on attempt ' || attempts || ' of ' || max_attempts, "
        "progress = 0, lease_owner = NULL, lease_expires_ms = NULL, run_after_ms = $1, "
        "updated_ms = $1 WHERE status = 'processing' AND lease_expires_ms < $2 AND "
        "attempts < max_attempts RETURNING 1), "
        "notified AS (SELECT pg_notify('{}', $3) FROM (SELECT 1 FROM requeued LIMIT 1) AS "
        "first_requeued) "
        "SELECT (SELECT COUNT(*) FROM failed) + (SELECT COUNT(*) FROM requeued), "
        "(SELECT COUNT(*) FROM notified)",
        kTaskChannel);
    BM_ASSIGN_OR_RETURN(QueryResult reclaimed,
                        run(kSql, Params().bind(now_ms).bind(cutoff_ms).bind(notify_payload_),
                            "reclaim expired task leases"));
    return static_cast<int>(reclaimed.row(0).int64(0));
}

Result<int64_t> PostgresStore::countDueTasks(int64_t now_ms) {
    BM_ASSIGN_OR_RETURN(
        QueryResult count,
        run("SELECT COUNT(*) FROM tasks WHERE status = 'pending' AND run_after_ms <= $1",
            Params().bind(now_ms), "count due tasks"));
    return count.row(0).int64(0);
}

Result<std::vector<TaskCount>> PostgresStore::countUnfinishedTasks() {
    constexpr std::string_view kAction = "count unfinished tasks";
    BM_ASSIGN_OR_RETURN(QueryResult result,
                        run("SELECT kind, status, COUNT(*) FROM tasks WHERE status IN "
                            "('pending', 'waiting', 'processing') GROUP BY kind, status",
                            {}, kAction));
    return readRows<TaskCount>(result, [](const Row& row) -> Result<TaskCount> {
        std::string status = row.text(1);
        std::optional<domain::TaskStatus> parsed = domain::parseTaskStatus(status);
        if (!parsed) {
            return row.corruptRow(fmt::format("unknown task status '{}'", status));
        }
        return TaskCount{row.text(0), *parsed, row.int64(2)};
    });
}

void PostgresStore::setTaskWakeHandler(std::function<void()> handler) {
    listener_.setHandler(std::move(handler));
}

}  // namespace bitmill::db::postgres
