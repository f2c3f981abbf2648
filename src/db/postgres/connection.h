// RAII wrappers over one libpq connection: text-format query parameters,
// result rows, statements prepared once per connection, and pipelines that
// send several statements in one round trip. Used only inside db/postgres.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/error.h"

namespace bitmill::db::postgres {

struct ConnectionCloser {
    void operator()(PGconn* connection) const { PQfinish(connection); }
};

struct ResultClearer {
    void operator()(PGresult* result) const { PQclear(result); }
};

using ConnectionHandle = std::unique_ptr<PGconn, ConnectionCloser>;
using ResultHandle = std::unique_ptr<PGresult, ResultClearer>;

// Converts the failure of `action` (e.g. "insert task") into an Error.
// `result` is the failed result, or null when libpq returned none. A lost
// connection, a server shutting down, a serialization failure and a
// deadlock become Unavailable. A unique violation (SQLSTATE 23505) becomes
// Conflict, a foreign-key violation NotFound, a full disk
// ResourceExhausted, and anything else Internal. The server's message goes
// into the detail.
Error postgresError(PGconn* connection, const PGresult* result, std::string_view action);

// Statement parameters in libpq's text format, bound in order to $1, $2…
class Params {
public:
    Params& bind(std::string_view value);
    Params& bind(const std::string& value) { return bind(std::string_view(value)); }
    Params& bind(const char* value) { return bind(std::string_view(value)); }
    Params& bind(int64_t value);
    Params& bind(int value) { return bind(static_cast<int64_t>(value)); }
    // Booleans are stored as 0 or 1 in BIGINT columns, as in SQLite.
    Params& bind(bool value) { return bind(static_cast<int64_t>(value ? 1 : 0)); }
    Params& bind(double value);
    Params& bind(std::nullopt_t);
    template <typename T>
    Params& bind(const std::optional<T>& value) {
        return value ? bind(*value) : bind(std::nullopt);
    }

    int count() const { return static_cast<int>(values_.size()); }
    // Returns one pointer per parameter, null for SQL NULL, valid while
    // this object is unchanged.
    std::vector<const char*> pointers() const;

private:
    std::vector<std::optional<std::string>> values_;
};

// One row of a result, read in text format.
class Row {
public:
    Row(const PGresult* result, int row, std::string_view action)
        : result_(result), row_(row), action_(action) {}

    bool isNull(int column) const;
    std::string text(int column) const;
    std::optional<std::string> optionalText(int column) const;
    // Returns 0 for NULL.
    int64_t int64(int column) const;
    std::optional<int64_t> optionalInt64(int column) const;
    std::optional<int> optionalInt(int column) const;
    std::optional<double> optionalDouble(int column) const;

    // Returns the failure of the current row's conversion, for row readers.
    Error corruptRow(std::string_view detail) const;

private:
    const PGresult* result_;
    int row_;
    std::string_view action_;
};

// The successful result of one statement.
class QueryResult {
public:
    QueryResult(ResultHandle result, std::string_view action)
        : result_(std::move(result)), action_(action) {}

    int rowCount() const { return PQntuples(result_.get()); }
    Row row(int index) const { return Row(result_.get(), index, action_); }
    // Returns the rows an INSERT, UPDATE or DELETE changed, or a SELECT
    // returned (0 for other statements).
    int64_t affectedRows() const;

private:
    ResultHandle result_;
    std::string_view action_;
};

// One statement of a pipeline. `sql` must outlive the call.
struct Command {
    std::string_view sql;
    Params params;
};

// One open connection, used by one thread at a time (ConnectionPool hands
// it out). Statements run through the extended protocol and are prepared
// on first use, so values never become part of the SQL text.
class Connection {
public:
    // Connects to `url` (a libpq URI or key=value string). Errors:
    // Unavailable with libpq's message when the server cannot be reached
    // or rejects the login.
    static Result<std::unique_ptr<Connection>> open(const std::string& url);

    PGconn* handle() { return connection_.get(); }

    // Runs one statement in one round trip (two on its first use on this
    // connection, which prepares it). Outside a transaction it commits by
    // itself.
    Result<QueryResult> run(std::string_view sql, const Params& params, std::string_view action);
    // Sends every command and one Sync in a single round trip (libpq
    // pipeline mode) and returns their results in order, or the first
    // error. Outside an explicit transaction the commands form one implicit
    // transaction: all of them commit, or, after an error, none does.
    Result<std::vector<QueryResult>> pipeline(const std::vector<Command>& commands,
                                              std::string_view action);
    // Sends BEGIN and `commands` in one round trip, like pipeline(), and
    // leaves the transaction open: the caller inspects the results and
    // calls commit(). A connection returned to the pool inside a
    // transaction is rolled back there.
    Result<std::vector<QueryResult>> begin(const std::vector<Command>& commands,
                                           std::string_view action);
    Status commit(std::string_view action);
    Status rollback();
    // Runs statements without parameters through the simple protocol
    // (schema changes, LISTEN).
    Status runScript(const std::string& sql, std::string_view action);

    // Returns false when the connection is lost or was closed by the
    // server (e.g. pg_terminate_backend) while it sat idle. Reads pending
    // input without blocking.
    bool isUsable();
    bool inTransaction() const;

private:
    explicit Connection(ConnectionHandle connection) : connection_(std::move(connection)) {}

    // libpq's notice receiver; `connection` is the Connection.
    static void receiveNotice(void* connection, const PGresult* notice);

    // Returns the name of the statement prepared for `sql`, preparing it on
    // first use.
    Result<std::string> prepare(std::string_view sql, std::string_view action);
    // Reads the results of `count` pipelined commands and the Sync.
    Result<std::vector<QueryResult>> readPipelineResults(size_t count, std::string_view action);

    ConnectionHandle connection_;
    std::unordered_map<std::string, std::string> statement_names_;
    // Set when a pipeline was left with unread results, or when the server
    // announced that it closes the connection.
    bool broken_ = false;
};

}  // namespace bitmill::db::postgres
