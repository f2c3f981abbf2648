// libpq connection, parameter, result and pipeline wrappers.
#include "db/postgres/connection.h"

#include <fmt/format.h>
#include <poll.h>

#include <charconv>
#include <cstring>

#include "core/log.h"

namespace bitmill::db::postgres {

namespace {

// libpq ends its messages with a newline, which log lines do not want.
std::string trimmed(const char* message) {
    std::string text = message != nullptr ? message : "";
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
        text.pop_back();
    }
    return text;
}

bool isConnectionLoss(std::string_view sqlstate) {
    // Class 08 is connection exceptions; 57P01-57P03 are the server shutting
    // down or terminating the backend; 53300 is too many connections.
    return sqlstate.substr(0, 2) == "08" || sqlstate == "57P01" || sqlstate == "57P02" ||
           sqlstate == "57P03" || sqlstate == "53300";
}

}  // namespace

// Receives server notices (e.g. "relation already exists, skipping") in
// place of libpq's default, which prints them to stderr. libpq also passes
// here the FATAL error a server sends to an idle connection before closing
// it (shutdown, pg_terminate_backend), which marks the connection broken.
void Connection::receiveNotice(void* connection, const PGresult* notice) {
    const char* severity = PQresultErrorField(notice, PG_DIAG_SEVERITY_NONLOCALIZED);
    std::string message = trimmed(PQresultErrorMessage(notice));
    if (severity != nullptr &&
        (std::string_view(severity) == "FATAL" || std::string_view(severity) == "PANIC")) {
        static_cast<Connection*>(connection)->broken_ = true;
        log::get("db")->debug("postgres closes an idle connection: {}", message);
        return;
    }
    log::get("db")->debug("postgres notice: {}", message);
}

Error postgresError(PGconn* connection, const PGresult* result, std::string_view action) {
    const char* state = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
    std::string_view sqlstate = state != nullptr ? state : "";
    std::string detail =
        trimmed(result != nullptr ? PQresultErrorMessage(result) : PQerrorMessage(connection));
    if (detail.empty()) {
        detail = trimmed(PQerrorMessage(connection));
    }
    if (PQstatus(connection) == CONNECTION_BAD || isConnectionLoss(sqlstate)) {
        return Error::unavailable(fmt::format("{}: the database is unavailable", action), detail);
    }
    // Serialization failure, deadlock, lock not available: trying again
    // may succeed.
    if (sqlstate == "40001" || sqlstate == "40P01" || sqlstate == "55P03") {
        return Error::unavailable(fmt::format("{}: the database is busy, try again", action),
                                  detail);
    }
    if (sqlstate == "23505") {
        return {ErrorCode::Conflict, fmt::format("{}: the record already exists", action), detail};
    }
    if (sqlstate == "23503") {
        return {ErrorCode::NotFound,
                fmt::format("{}: a record it refers to does not exist", action), detail};
    }
    if (sqlstate == "53100") {
        return {ErrorCode::ResourceExhausted, fmt::format("{}: the database disk is full", action),
                detail};
    }
    return Error::internal(fmt::format("{}: database error", action), detail);
}

// Params.

Params& Params::bind(std::string_view value) {
    values_.emplace_back(std::string(value));
    return *this;
}

Params& Params::bind(int64_t value) {
    values_.emplace_back(std::to_string(value));
    return *this;
}

Params& Params::bind(double value) {
    // fmt prints the shortest text that parses back to the same double.
    values_.emplace_back(fmt::format("{}", value));
    return *this;
}

Params& Params::bind(std::nullopt_t) {
    values_.emplace_back(std::nullopt);
    return *this;
}

std::vector<const char*> Params::pointers() const {
    std::vector<const char*> pointers;
    pointers.reserve(values_.size());
    for (const std::optional<std::string>& value : values_) {
        pointers.push_back(value ? value->c_str() : nullptr);
    }
    return pointers;
}

// Row.

bool Row::isNull(int column) const {
    return PQgetisnull(result_, row_, column) != 0;
}

std::string Row::text(int column) const {
    return std::string(PQgetvalue(result_, row_, column),
                       static_cast<size_t>(PQgetlength(result_, row_, column)));
}

std::optional<std::string> Row::optionalText(int column) const {
    if (isNull(column)) {
        return std::nullopt;
    }
    return text(column);
}

int64_t Row::int64(int column) const {
    const char* value = PQgetvalue(result_, row_, column);
    int64_t parsed = 0;
    std::from_chars(value, value + PQgetlength(result_, row_, column), parsed);
    return parsed;
}

std::optional<int64_t> Row::optionalInt64(int column) const {
    if (isNull(column)) {
        return std::nullopt;
    }
    return int64(column);
}

std::optional<int> Row::optionalInt(int column) const {
    if (isNull(column)) {
        return std::nullopt;
    }
    return static_cast<int>(int64(column));
}

std::optional<double> Row::optionalDouble(int column) const {
    if (isNull(column)) {
        return std::nullopt;
    }
    const char* value = PQgetvalue(result_, row_, column);
    double parsed = 0;
    std::from_chars(value, value + PQgetlength(result_, row_, column), parsed);
    return parsed;
}

Error Row::corruptRow(std::string_view detail) const {
    return Error::internal(fmt::format("{}: a stored record is corrupt", action_),
                           std::string(detail));
}

int64_t QueryResult::affectedRows() const {
    const char* count = PQcmdTuples(result_.get());
    int64_t parsed = 0;
    std::from_chars(count, count + std::strlen(count), parsed);
    return parsed;
}

// Connection.

Result<std::unique_ptr<Connection>> Connection::open(const std::string& url) {
    // Defaults listed before the URL, so that the URL's own settings win.
    const char* keywords[] = {"fallback_application_name", "connect_timeout", "dbname", nullptr};
    const char* values[] = {"bitmill", "10", url.c_str(), nullptr};
    ConnectionHandle connection(PQconnectdbParams(keywords, values, /*expand_dbname=*/1));
    if (connection == nullptr) {
        return Error::unavailable("connect to PostgreSQL: out of memory");
    }
    if (PQstatus(connection.get()) != CONNECTION_OK) {
        // The URL is left out of the message because it may hold a password.
        return Error::unavailable(fmt::format("connect to PostgreSQL at {}:{}: {}",
                                              PQhost(connection.get()), PQport(connection.get()),
                                              trimmed(PQerrorMessage(connection.get()))));
    }
    std::unique_ptr<Connection> opened(new Connection(std::move(connection)));
    PQsetNoticeReceiver(opened->handle(), receiveNotice, opened.get());
    return opened;
}

Result<std::string> Connection::prepare(std::string_view sql, std::string_view action) {
    std::string key(sql);
    auto found = statement_names_.find(key);
    if (found != statement_names_.end()) {
        return found->second;
    }
    std::string name = fmt::format("bitmill_{}", statement_names_.size() + 1);
    ResultHandle result(PQprepare(connection_.get(), name.c_str(), key.c_str(), 0, nullptr));
    if (result == nullptr || PQresultStatus(result.get()) != PGRES_COMMAND_OK) {
        return postgresError(connection_.get(), result.get(), action);
    }
    statement_names_.emplace(std::move(key), name);
    return name;
}

Result<QueryResult> Connection::run(std::string_view sql, const Params& params,
                                    std::string_view action) {
    BM_ASSIGN_OR_RETURN(std::string name, prepare(sql, action));
    std::vector<const char*> values = params.pointers();
    ResultHandle result(PQexecPrepared(connection_.get(), name.c_str(), params.count(),
                                       values.data(), nullptr, nullptr, 0));
    ExecStatusType status = result != nullptr ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        return postgresError(connection_.get(), result.get(), action);
    }
    return QueryResult(std::move(result), action);
}

Result<std::vector<QueryResult>> Connection::pipeline(const std::vector<Command>& commands,
                                                      std::string_view action) {
    // Statements are prepared before the pipeline starts, so each command
    // in it is a single Bind and Execute.
    std::vector<std::string> names;
    names.reserve(commands.size());
    for (const Command& command : commands) {
        BM_ASSIGN_OR_RETURN(std::string name, prepare(command.sql, action));
        names.push_back(std::move(name));
    }

    PGconn* connection = connection_.get();
    if (PQenterPipelineMode(connection) != 1) {
        return postgresError(connection, nullptr, action);
    }
    // NOTE: in blocking mode a send can wait for the server to read. The
    // server reads while it executes, so this only stalls for pipelines
    // whose results fill both socket buffers, far beyond a few statements.
    for (size_t i = 0; i < commands.size(); ++i) {
        std::vector<const char*> values = commands[i].params.pointers();
        if (PQsendQueryPrepared(connection, names[i].c_str(), commands[i].params.count(),
                                values.data(), nullptr, nullptr, 0) != 1) {
            broken_ = true;
            return postgresError(connection, nullptr, action);
        }
    }
    if (PQpipelineSync(connection) != 1) {
        broken_ = true;
        return postgresError(connection, nullptr, action);
    }
    Result<std::vector<QueryResult>> results = readPipelineResults(commands.size(), action);
    if (PQexitPipelineMode(connection) != 1) {
        // Results are still pending after a read failed: the protocol state
        // is unknown, so the pool must not hand this connection out again.
        broken_ = true;
        return results.ok() ? postgresError(connection, nullptr, action) : results.error();
    }
    return results;
}

Result<std::vector<QueryResult>> Connection::readPipelineResults(size_t count,
                                                                 std::string_view action) {
    PGconn* connection = connection_.get();
    std::vector<QueryResult> results;
    std::optional<Error> first_error;
    for (size_t i = 0; i < count; ++i) {
        // Each command's results end with a null; a lost connection also
        // returns null, and then nothing more can be read.
        ResultHandle result(PQgetResult(connection));
        if (result == nullptr || PQstatus(connection) == CONNECTION_BAD) {
            return postgresError(connection, result.get(), action);
        }
        ExecStatusType status = PQresultStatus(result.get());
        if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
            results.emplace_back(std::move(result), action);
        } else if (status != PGRES_PIPELINE_ABORTED && !first_error) {
            first_error = postgresError(connection, result.get(), action);
        }
        while (ResultHandle extra{PQgetResult(connection)}) {
            if (PQstatus(connection) == CONNECTION_BAD) {
                return postgresError(connection, extra.get(), action);
            }
        }
    }
    ResultHandle sync(PQgetResult(connection));
    if (sync == nullptr || PQresultStatus(sync.get()) != PGRES_PIPELINE_SYNC) {
        return first_error ? *first_error : postgresError(connection, sync.get(), action);
    }
    if (first_error) {
        return *first_error;
    }
    return results;
}

Result<std::vector<QueryResult>> Connection::begin(const std::vector<Command>& commands,
                                                   std::string_view action) {
    std::vector<Command> with_begin;
    with_begin.reserve(commands.size() + 1);
    with_begin.push_back({"BEGIN", {}});
    with_begin.insert(with_begin.end(), commands.begin(), commands.end());
    BM_ASSIGN_OR_RETURN(std::vector<QueryResult> results, pipeline(with_begin, action));
    results.erase(results.begin());
    return results;
}

Status Connection::commit(std::string_view action) {
    BM_RETURN_IF_ERROR(run("COMMIT", {}, action));
    return okStatus();
}

Status Connection::rollback() {
    BM_RETURN_IF_ERROR(run("ROLLBACK", {}, "roll back transaction"));
    return okStatus();
}

Status Connection::runScript(const std::string& sql, std::string_view action) {
    ResultHandle result(PQexec(connection_.get(), sql.c_str()));
    ExecStatusType status = result != nullptr ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        return postgresError(connection_.get(), result.get(), action);
    }
    return okStatus();
}

bool Connection::isUsable() {
    PGconn* connection = connection_.get();
    if (broken_ || PQstatus(connection) != CONNECTION_OK) {
        return false;
    }
    // An idle connection has nothing to read unless the server sent a
    // notice or is closing it: then it sent an error (e.g. 57P01 after
    // pg_terminate_backend) and the end of the stream. PQconsumeInput stops
    // after the data it finds, so it reads again while the socket stays
    // readable, until it meets the end of the stream (CONNECTION_BAD).
    constexpr int kMaxReads = 4;
    for (int read = 0; read < kMaxReads; ++read) {
        pollfd socket{PQsocket(connection), POLLIN, 0};
        int ready = poll(&socket, 1, 0);
        if (ready == 0) {
            return true;
        }
        if (ready < 0 || PQconsumeInput(connection) != 1 || PQstatus(connection) != CONNECTION_OK) {
            return false;
        }
    }
    return PQstatus(connection) == CONNECTION_OK;
}

bool Connection::inTransaction() const {
    return PQtransactionStatus(connection_.get()) != PQTRANS_IDLE;
}

}  // namespace bitmill::db::postgres
