// RAII wrappers over one SQLite connection: the handle, a cache of prepared
// statements, statements that reset themselves, and transactions that roll
// back unless committed. Used only inside db/sqlite.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/error.h"

namespace bitmill::db::sqlite {

struct DatabaseCloser {
    void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};

struct StatementFinalizer {
    void operator()(sqlite3_stmt* statement) const { sqlite3_finalize(statement); }
};

using DatabaseHandle = std::unique_ptr<sqlite3, DatabaseCloser>;
using StatementHandle = std::unique_ptr<sqlite3_stmt, StatementFinalizer>;

// Converts the SQLite result `code` of `action` (e.g. "insert task") into an
// Error: busy or I/O failures are Unavailable, unique-key violations
// Conflict, foreign-key violations NotFound, a full disk ResourceExhausted,
// anything else Internal. SQLite's own text goes into the detail.
Error sqliteError(sqlite3* db, int code, std::string_view action);

// A prepared statement borrowed from a Connection's cache. Parameters are
// bound in order with bind(); the destructor resets the statement and
// clears its bindings so the cache can hand it out again. Not thread-safe:
// use it while holding the connection's mutex.
class Statement {
public:
    Statement(sqlite3* db, sqlite3_stmt* statement, std::string_view action);
    Statement(Statement&& other) noexcept;
    Statement& operator=(Statement&&) = delete;
    Statement(const Statement&) = delete;
    ~Statement();

    // Binds the next parameter; nullopt binds NULL.
    Statement& bind(std::string_view value);
    Statement& bind(const std::string& value) { return bind(std::string_view(value)); }
    Statement& bind(const char* value) { return bind(std::string_view(value)); }
    Statement& bind(int64_t value);
    Statement& bind(int value) { return bind(static_cast<int64_t>(value)); }
    Statement& bind(bool value) { return bind(static_cast<int64_t>(value ? 1 : 0)); }
    Statement& bind(double value);
    Statement& bind(std::nullopt_t);
    template <typename T>
    Statement& bind(const std::optional<T>& value) {
        return value ? bind(*value) : bind(std::nullopt);
    }

    // Advances to the next row: true when a row is ready, false when done.
    Result<bool> step();
    // Steps until done, ignoring rows; returns the number of rows changed.
    Result<int64_t> run();

    bool isNull(int column) const;
    std::string text(int column) const;
    std::optional<std::string> optionalText(int column) const;
    int64_t int64(int column) const;
    std::optional<int64_t> optionalInt64(int column) const;
    std::optional<int> optionalInt(int column) const;
    std::optional<double> optionalDouble(int column) const;

    // Returns the failure of the current row's conversion, for row readers.
    Error corruptRow(std::string_view detail) const;

private:
    sqlite3* db_;
    sqlite3_stmt* statement_;
    std::string_view action_;
    int next_parameter_ = 1;
};

struct ConnectionOptions {
    bool read_only = false;
    bool synchronous_full = false;
    int busy_timeout_ms = 5000;
};

// One open database connection. Callers serialize use with mutex(); SQLite
// is opened without its own per-connection mutex for that reason.
class Connection {
public:
    // Opens `path` (created when missing unless read_only) and applies the
    // per-connection settings: busy timeout, foreign keys, synchronous mode,
    // and query_only for read connections.
    static Result<std::unique_ptr<Connection>> open(const std::string& path,
                                                    const ConnectionOptions& options);

    std::mutex& mutex() { return mutex_; }
    sqlite3* handle() { return db_.get(); }

    // Returns the cached statement for `sql`, preparing it on first use.
    // `action` names the operation in errors; it must outlive the Statement.
    Result<Statement> prepare(std::string_view sql, std::string_view action);
    // Runs one or more statements without results (pragmas, DDL).
    Status execute(const std::string& sql, std::string_view action);

private:
    explicit Connection(DatabaseHandle db) : db_(std::move(db)) {}

    std::mutex mutex_;
    DatabaseHandle db_;
    std::unordered_map<std::string, StatementHandle> statements_;
};

// A transaction on a locked connection. Write transactions start with BEGIN
// IMMEDIATE, so they take the write lock up front and cannot get
// SQLITE_BUSY later when upgrading a read lock. Read transactions give several SELECTs one
// snapshot. The destructor rolls back a transaction that was not committed.
class Transaction {
public:
    static Result<Transaction> beginWrite(Connection& connection);
    static Result<Transaction> beginRead(Connection& connection);
    Transaction(Transaction&& other) noexcept;
    Transaction& operator=(Transaction&&) = delete;
    ~Transaction();

    Status commit();

private:
    explicit Transaction(Connection* connection) : connection_(connection) {}

    Connection* connection_;
};

}  // namespace bitmill::db::sqlite
