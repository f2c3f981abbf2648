// SQLite connection, statement and transaction wrappers.
#include "db/sqlite/connection.h"

#include <fmt/format.h>

namespace bitmill::db::sqlite {

Error sqliteError(sqlite3* db, int code, std::string_view action) {
    std::string detail = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(code);
    int extended = db != nullptr ? sqlite3_extended_errcode(db) : code;
    switch (code & 0xff) {
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
            return Error::unavailable(fmt::format("{}: the database is busy, try again", action),
                                      detail);
        case SQLITE_CONSTRAINT:
            if (extended == SQLITE_CONSTRAINT_PRIMARYKEY || extended == SQLITE_CONSTRAINT_UNIQUE) {
                return {ErrorCode::Conflict, fmt::format("{}: the record already exists", action),
                        detail};
            }
            if (extended == SQLITE_CONSTRAINT_FOREIGNKEY) {
                return {ErrorCode::NotFound,
                        fmt::format("{}: a record it refers to does not exist", action), detail};
            }
            return Error::internal(fmt::format("{}: database constraint failed", action), detail);
        case SQLITE_FULL:
            return {ErrorCode::ResourceExhausted,
                    fmt::format("{}: the database disk is full", action), detail};
        case SQLITE_IOERR:
        case SQLITE_CANTOPEN:
        case SQLITE_READONLY:
        case SQLITE_PROTOCOL:
            return Error::unavailable(fmt::format("{}: the database is unavailable", action),
                                      detail);
        default:
            return Error::internal(fmt::format("{}: database error", action), detail);
    }
}

Statement::Statement(sqlite3* db, sqlite3_stmt* statement, std::string_view action)
    : db_(db), statement_(statement), action_(action) {}

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_),
      statement_(other.statement_),
      action_(other.action_),
      next_parameter_(other.next_parameter_) {
    other.statement_ = nullptr;
}

Statement::~Statement() {
    if (statement_ != nullptr) {
        // reset() repeats the last step's error code; that error was
        // already returned from step(), so it is not looked at here.
        sqlite3_reset(statement_);
        sqlite3_clear_bindings(statement_);
    }
}

Statement& Statement::bind(std::string_view value) {
    sqlite3_bind_text64(statement_, next_parameter_++, value.data(), value.size(),
                        SQLITE_TRANSIENT, SQLITE_UTF8);
    return *this;
}

Statement& Statement::bind(int64_t value) {
    sqlite3_bind_int64(statement_, next_parameter_++, value);
    return *this;
}

Statement& Statement::bind(double value) {
    sqlite3_bind_double(statement_, next_parameter_++, value);
    return *this;
}

Statement& Statement::bind(std::nullopt_t) {
    sqlite3_bind_null(statement_, next_parameter_++);
    return *this;
}

Result<bool> Statement::step() {
    int code = sqlite3_step(statement_);
    if (code == SQLITE_ROW) {
        return true;
    }
    if (code == SQLITE_DONE) {
        return false;
    }
    return sqliteError(db_, code, action_);
}

Result<int64_t> Statement::run() {
    while (true) {
        BM_ASSIGN_OR_RETURN(bool has_row, step());
        if (!has_row) {
            break;
        }
    }
    return static_cast<int64_t>(sqlite3_changes64(db_));
}

bool Statement::isNull(int column) const {
    return sqlite3_column_type(statement_, column) == SQLITE_NULL;
}

std::string Statement::text(int column) const {
    const unsigned char* data = sqlite3_column_text(statement_, column);
    if (data == nullptr) {
        return {};
    }
    int size = sqlite3_column_bytes(statement_, column);
    return std::string(reinterpret_cast<const char*>(data), static_cast<size_t>(size));
}

std::optional<std::string> Statement::optionalText(int column) const {
    if (isNull(column)) {
        return std::nullopt;
    }
    return text(column);
}

int64_t Statement::int64(int column) const { return sqlite3_column_int64(statement_, column); }

std::optional<int64_t> Statement::optionalInt64(int column) const {
    if (isNull(column)) {
        return std::nullopt;
    }
    return int64(column);
}

std::optional<int> Statement::optionalInt(int column) const {
    if (isNull(column)) {
        return std::nullopt;
    }
    return sqlite3_column_int(statement_, column);
}

std::optional<double> Statement::optionalDouble(int column) const {
    if (isNull(column)) {
        return std::nullopt;
    }
    return sqlite3_column_double(statement_, column);
}

Error Statement::corruptRow(std::string_view detail) const {
    return Error::internal(fmt::format("{}: a stored record is corrupt", action_),
                           std::string(detail));
}

Result<std::unique_ptr<Connection>> Connection::open(const std::string& path,
                                                     const ConnectionOptions& options) {
    int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI;
    flags |= options.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    sqlite3* raw = nullptr;
    int code = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
    // sqlite3_open_v2 allocates a handle even when it fails, so the error
    // text can be read from it before it is closed.
    DatabaseHandle db(raw);
    if (code != SQLITE_OK) {
        return sqliteError(db.get(), code, "open database");
    }
    sqlite3_extended_result_codes(db.get(), 1);
    sqlite3_busy_timeout(db.get(), options.busy_timeout_ms);

    std::unique_ptr<Connection> connection(new Connection(std::move(db)));
    std::string settings = "PRAGMA foreign_keys = ON;";
    settings += options.synchronous_full ? "PRAGMA synchronous = FULL;"
                                         : "PRAGMA synchronous = NORMAL;";
    if (options.read_only) {
        settings += "PRAGMA query_only = ON;";
    }
    BM_RETURN_IF_ERROR(connection->execute(settings, "configure database connection"));
    return connection;
}

Result<Statement> Connection::prepare(std::string_view sql, std::string_view action) {
    std::string key(sql);
    auto it = statements_.find(key);
    if (it == statements_.end()) {
        sqlite3_stmt* raw = nullptr;
        int code = sqlite3_prepare_v3(db_.get(), sql.data(), static_cast<int>(sql.size()),
                                      SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
        StatementHandle statement(raw);
        if (code != SQLITE_OK) {
            return sqliteError(db_.get(), code, action);
        }
        it = statements_.emplace(std::move(key), std::move(statement)).first;
    }
    return Statement(db_.get(), it->second.get(), action);
}

Status Connection::execute(const std::string& sql, std::string_view action) {
    char* message = nullptr;
    int code = sqlite3_exec(db_.get(), sql.c_str(), nullptr, nullptr, &message);
    sqlite3_free(message);
    if (code != SQLITE_OK) {
        return sqliteError(db_.get(), code, action);
    }
    return okStatus();
}

Result<Transaction> Transaction::beginWrite(Connection& connection) {
    BM_ASSIGN_OR_RETURN(Statement begin,
                        connection.prepare("BEGIN IMMEDIATE", "begin write transaction"));
    BM_RETURN_IF_ERROR(begin.run());
    return Transaction(&connection);
}

Result<Transaction> Transaction::beginRead(Connection& connection) {
    BM_ASSIGN_OR_RETURN(Statement begin,
                        connection.prepare("BEGIN DEFERRED", "begin read transaction"));
    BM_RETURN_IF_ERROR(begin.run());
    return Transaction(&connection);
}

Transaction::Transaction(Transaction&& other) noexcept : connection_(other.connection_) {
    other.connection_ = nullptr;
}

Transaction::~Transaction() {
    if (connection_ == nullptr) {
        return;
    }
    // A failed ROLLBACK leaves nothing to do: SQLite rolls back by itself
    // when the connection closes, and the next BEGIN reports the problem.
    auto rollback = connection_->prepare("ROLLBACK", "roll back transaction");
    if (rollback.ok()) {
        (void)rollback->run();
    }
}

Status Transaction::commit() {
    BM_ASSIGN_OR_RETURN(Statement commit, connection_->prepare("COMMIT", "commit transaction"));
    Result<int64_t> done = commit.run();
    if (!done.ok()) {
        return done.error();
    }
    connection_ = nullptr;
    return okStatus();
}

}  // namespace bitmill::db::sqlite
