// The embedded SQLite Store, the default metadata backend of a single
// bitmill process.
#pragma once

#include <memory>
#include <string>

#include "core/error.h"
#include "db/store.h"

namespace bitmill::db {

struct SqliteOptions {
    // Connections that serve reads, each used by one thread at a time. All
    // writes go through one further connection, because SQLite allows one
    // writer at a time anyway. In WAL mode a read does not wait for a write.
    int reader_connections = 4;
    // NORMAL (false) syncs the write-ahead log only at checkpoints. A commit
    // is written to the log file before it returns, so it survives the
    // process being killed (kill -9). A power loss or kernel crash can roll
    // back the last commits but leaves the database consistent (Android's
    // SQLiteDatabase.SYNC_MODE_NORMAL notes). FULL (true) syncs on every
    // commit, which survives power loss and costs one fsync per write:
    // every claim, heartbeat and completion.
    bool synchronous_full = false;
    // How long a statement waits for another process's lock before the
    // call fails with Unavailable.
    int busy_timeout_ms = 5000;
};

// Opens (creating when missing) the SQLite database at `path`, switches it
// to WAL mode and applies pending migrations. ":memory:" gives a private
// in-memory database served by the writer connection alone (for tests).
// Errors: Unavailable when the file cannot be opened or is locked,
// Internal when a migration fails or the schema is newer than this build.
// The returned Store is thread-safe; it closes the database when the last
// reference goes away.
//
// Behaviour beyond the Store contract:
// - listMedia and listFiles are newest first, like listTasks.
// - A worker whose lease expired can still heartbeat, complete or fail the
//   task until reclaimExpiredLeases runs, because no other worker can claim
//   it before then.
// - getOrCreateUpload identifies an upload by (project_id, path): it
//   returns the stored upload of that path when there is one, whatever its
//   id and total_bytes, and inserts `upload` otherwise.
// - deleteUpload succeeds when the upload does not exist.
// - insertIdempotency first deletes records older than 24 hours, so a key
//   can be reused after that window and the table stays bounded.
Result<StorePtr> openSqliteStore(const std::string& path, const SqliteOptions& options = {});

}  // namespace bitmill::db
