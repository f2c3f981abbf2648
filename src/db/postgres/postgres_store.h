// The PostgreSQL Store, the metadata backend that several bitmill processes
// (servers and workers on other machines) can share.
#pragma once

#include <string>

#include "core/error.h"
#include "db/store.h"

namespace bitmill::db {

struct PostgresOptions {
    // Connections the store's calls share; a call waits while all are busy.
    // The wake-up listener uses one more. A "pool_size=N" query parameter
    // in the URL overrides this.
    int pool_size = 8;
};

// Opens the store at `url`, a libpq connection URI
// ("postgres://user:password@host:port/database?sslmode=require") or
// key=value string, and applies pending migrations. Several processes may
// open one empty database at the same moment: migrations run under a
// transaction-level advisory lock, so exactly one applies each version.
// Errors: InvalidArgument for a bad pool_size, Unavailable when the server
// cannot be reached, Internal when a migration fails or the schema is newer
// than this build. The returned Store is thread-safe.
//
// Behaviour beyond the Store contract, as in the SQLite store:
// - listMedia and listFiles are newest first, like listTasks; a page and
//   its total come from one snapshot.
// - A worker whose lease expired can still heartbeat, complete or fail the
//   task until reclaimExpiredLeases runs.
// - getOrCreateUpload identifies an upload by (project_id, path), and
//   deleteUpload succeeds when the upload does not exist.
// - insertIdempotency first deletes records older than 24 hours.
// - insertTask, retryTask and lease reclaims that requeue a task NOTIFY the
//   channel bitmill_tasks in the same transaction, and setTaskWakeHandler
//   calls its handler for those sent by other stores.
Result<StorePtr> openPostgresStore(const std::string& url, const PostgresOptions& options = {});

}  // namespace bitmill::db
