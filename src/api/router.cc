// The API request pipeline; see router.h.
#include "api/router.h"

#include <chrono>
#include <exception>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>

#include "api/body_fields.h"
#include "api/pagination.h"
#include "core/clock.h"
#include "core/crypto.h"
#include "core/log.h"
#include "core/metrics.h"
#include "fmt/format.h"

namespace bitmill::api {

// Mutexes by (project, Idempotency-Key), created on first use and removed
// when no request holds or waits for them, so the map only contains keys in
// use.
class IdempotencyLocks {
    struct Entry;

  public:
    // Holds the mutex of one key from construction to destruction.
    class Guard {
      public:
        Guard(IdempotencyLocks& locks, std::string key) : locks_(locks), key_(std::move(key)) {
            entry_ = locks_.acquire(key_);
            entry_->mutex.lock();
        }
        ~Guard() {
            entry_->mutex.unlock();
            locks_.release(key_);
        }
        Guard(const Guard&) = delete;
        Guard& operator=(const Guard&) = delete;

      private:
        IdempotencyLocks& locks_;
        std::string key_;
        Entry* entry_ = nullptr;
    };

  private:
    struct Entry {
        std::mutex mutex;
        int users = 0;  // requests holding or waiting for `mutex`
    };

    Entry* acquire(const std::string& key) {
        std::lock_guard lock(mutex_);
        auto& entry = entries_[key];
        if (!entry) {
            entry = std::make_unique<Entry>();
        }
        ++entry->users;
        return entry.get();
    }

    void release(const std::string& key) {
        std::lock_guard lock(mutex_);
        auto it = entries_.find(key);
        if (it != entries_.end() && --it->second->users == 0) {
            entries_.erase(it);
        }
    }

    std::mutex mutex_;
    std::unordered_map<std::string, std::unique_ptr<Entry>> entries_;
};

namespace {

// Idempotency keys are honoured for this long after the first request.
constexpr int64_t kIdempotencyWindowMs = 24LL * 3600 * 1000;
constexpr size_t kMaxIdempotencyKeyLength = 255;
// A duplicate waits this long for the first request with its key to finish.
constexpr auto kReservationWait = std::chrono::seconds(10);
constexpr auto kReservationPollInterval = std::chrono::milliseconds(25);
// A reservation this old belongs to a process that died mid-request.
constexpr int64_t kStaleReservationMs = 60'000;

// Facts for the access log line of the request this thread is serving.
// httplib runs the pre-routing hook, the handler and the logger of one
// request on the same thread, one request at a time.
struct AccessTrace {
    std::chrono::steady_clock::time_point start;
    std::string route = "-";
};

thread_local AccessTrace tl_access_trace;

ApiResponse withShape(ApiResponse::Shape shape, Json body, int status) {
    ApiResponse response;
    response.shape = shape;
    response.body = std::move(body);
    response.status = status;
    return response;
}

// Returns the token of "Authorization: Bearer <token>", or "" when absent.
std::string bearerToken(const httplib::Request& request) {
    const std::string header = request.get_header_value("Authorization");
    constexpr std::string_view kScheme = "bearer ";
    if (header.size() <= kScheme.size()) {
        return {};
    }
    for (size_t i = 0; i < kScheme.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(header[i])) != kScheme[i]) {
            return {};
        }
    }
    std::string token = header.substr(kScheme.size());
    auto first = token.find_first_not_of(' ');
    auto last = token.find_last_not_of(' ');
    return first == std::string::npos ? std::string() : token.substr(first, last - first + 1);
}

Result<domain::ApiKey> authenticate(const std::string& token, db::Store& store) {
    const Error unauthenticated(ErrorCode::Unauthenticated, "missing or invalid API key");
    if (token.empty()) {
        return unauthenticated;
    }
    auto key = store.findApiKeyByHash(crypto::sha256Hex(token));
    if (!key.ok()) {
        if (key.error().code() == ErrorCode::NotFound) {
            return unauthenticated;
        }
        return key.error();
    }
    if (key->revoked_ms) {
        return unauthenticated;
    }
    return std::move(key).value();
}

// Reads the body of a POST, PATCH or PUT through httplib's content reader.
// A request with neither Content-Length nor Transfer-Encoding has no body
// (RFC 9112, section 6.3). httplib 0.11.4 reads such a body until the
// connection closes or its read timeout passes and then responds with 400, so
// `curl -X POST` without data failed. Skipping the read accepts it.
Result<std::string> readBody(const httplib::Request& request, httplib::Response& response,
                             const httplib::ContentReader& reader, const Config& config) {
    if (!request.has_header("Content-Length") && !request.has_header("Transfer-Encoding")) {
        return std::string();
    }
    if (request.is_multipart_form_data()) {
        return Error::invalidArgument(
            "request body must be a JSON object (Content-Type: application/json), not "
            "multipart/form-data");
    }
    const auto max_bytes = static_cast<size_t>(config.limits.max_request_body_bytes);
    std::string body;
    bool over_limit = false;
    const bool complete = reader([&body, &over_limit, max_bytes](const char* data, size_t size) {
        if (body.size() + size > max_bytes) {
            over_limit = true;
            return false;
        }
        body.append(data, size);
        return true;
    });
    if (complete) {
        return body;
    }
    // httplib sets 413 itself when Content-Length is over its payload limit.
    if (over_limit || response.status == 413) {
        return Error::resourceExhausted(
            fmt::format("request body is larger than the limit of {} bytes",
                        config.limits.max_request_body_bytes));
    }
    return Error::invalidArgument(
        "read request body: the connection closed or timed out before the body was complete");
}

Result<Json> parseBody(const std::string& raw_body, const Config& config) {
    if (static_cast<int64_t>(raw_body.size()) > config.limits.max_request_body_bytes) {
        return Error::resourceExhausted(
            fmt::format("request body is larger than the limit of {} bytes",
                        config.limits.max_request_body_bytes));
    }
    if (raw_body.find_first_not_of(" \t\r\n") == std::string::npos) {
        return Json::object();
    }
    BM_ASSIGN_OR_RETURN(Json body, parseJsonBody(raw_body));
    if (!body.is_object()) {
        return Error::invalidArgument(
            fmt::format("request body must be a JSON object, not {}", body.type_name()));
    }
    return body;
}

std::string requestHash(const httplib::Request& request, const std::string& raw_body) {
    return crypto::sha256Hex(request.method + "\n" + request.path + "\n" + raw_body);
}

// Returns the path of the object a response carries: its collection and
// its id, so that the envelope's self link of a create or a cancel names
// the object rather than the request path. Objects without an id keep the
// request path.
std::string objectPath(const ApiResponse& reply, const httplib::Request& request) {
    if (reply.parent_path.empty() || !reply.body.is_object()) {
        return request.path;
    }
    auto id = reply.body.find("id");
    if (id == reply.body.end() || !id->is_string()) {
        return request.path;
    }
    return reply.parent_path + "/" + id->get<std::string>();
}

void writeResponse(httplib::Response& response, const RequestScope& scope,
                   const httplib::Request& request, const ApiResponse& reply) {
    switch (reply.shape) {
        case ApiResponse::Shape::Object:
            writeObject(response, scope, reply.status, reply.body, objectPath(reply, request),
                        reply.parent_path);
            return;
        case ApiResponse::Shape::List:
            writeList(response, scope, reply.body, reply.page, request.path,
                      otherQueryParameters(request));
            return;
        case ApiResponse::Shape::Deleted:
            writeDeleted(response, scope, reply.deleted_id, request.path, reply.parent_path);
            return;
        case ApiResponse::Shape::Unwrapped:
            response.status = reply.status;
            response.set_content(reply.body.dump(), "application/json");
            return;
    }
}

// Returns the stored response of an earlier POST with the same
// Idempotency-Key, Conflict when that POST had another body, or nullopt.
Result<std::optional<domain::IdempotencyRecord>> findEarlierResponse(
    const std::string& request_hash, const std::string& project_id, const std::string& key,
    db::Store& store) {
    BM_ASSIGN_OR_RETURN(auto earlier,
                        store.findIdempotency(project_id, key, nowMillis() - kIdempotencyWindowMs));
    if (earlier && earlier->request_hash != request_hash) {
        return Error::conflict(fmt::format(
            "Idempotency-Key '{}' was already used for a different request; use a new key for "
            "a new request",
            key));
    }
    return earlier;
}

// Outcome of reserving an Idempotency-Key before running its request.
struct Reservation {
    // The response to replay when an earlier request with the key finished.
    std::optional<domain::IdempotencyRecord> earlier;
    // The reservation row inserted for this request otherwise.
    domain::IdempotencyRecord reserved;
};

// Reserves `key` for this request by inserting a record with status 0, so
// that a duplicate sent to any API process waits for this one and replays
// its response. Waits while another request has reserved the key, and takes
// over a reservation older than kStaleReservationMs, whose process died.
// Returns Conflict when the key was used with another body or stays reserved
// too long.
Result<Reservation> reserveIdempotencyKey(const std::string& request_hash,
                                          const std::string& project_id, const std::string& key,
                                          db::Store& store) {
    const auto wait_until = std::chrono::steady_clock::now() + kReservationWait;
    while (true) {
        BM_ASSIGN_OR_RETURN(auto earlier,
                            findEarlierResponse(request_hash, project_id, key, store));
        const int64_t now = nowMillis();
        if (earlier && earlier->status_code != 0) {
            return Reservation{std::move(earlier), {}};
        }
        if (earlier && now - earlier->created_ms > kStaleReservationMs) {
            log::get("api")->warn("taking over a stale Idempotency-Key reservation key={} "
                                  "project_id={} age_ms={}",
                                  key, project_id, now - earlier->created_ms);
            BM_RETURN_IF_ERROR(
                store.deleteIdempotencyReservation(project_id, key, earlier->created_ms));
            continue;
        }
        if (!earlier) {
            domain::IdempotencyRecord reservation;
            reservation.project_id = project_id;
            reservation.key = key;
            reservation.request_hash = request_hash;
            reservation.status_code = 0;
            reservation.created_ms = now;
            Status inserted = store.insertIdempotency(reservation);
            if (inserted.ok()) {
                return Reservation{std::nullopt, std::move(reservation)};
            }
            if (inserted.error().code() != ErrorCode::Conflict) {
                return inserted.error();
            }
            // Another process reserved the key in between: look again.
            continue;
        }
        if (std::chrono::steady_clock::now() >= wait_until) {
            return Error::conflict(fmt::format(
                "a request with Idempotency-Key '{}' is still running; retry it later", key));
        }
        std::this_thread::sleep_for(kReservationPollInterval);
    }
}

// Stores the response over this request's reservation, or releases the
// reservation when the response is not to be replayed.
void storeResponse(const httplib::Response& response, domain::IdempotencyRecord reservation,
                   const RequestScope& scope, db::Store& store) {
    Status stored = okStatus();
    // 5xx responses are not stored, because SDKs retry them and the retry
    // should run the request again.
    if (response.status >= 500) {
        stored = store.deleteIdempotencyReservation(reservation.project_id, reservation.key,
                                                    reservation.created_ms);
    } else {
        reservation.status_code = response.status;
        reservation.response_body = response.body;
        stored = store.completeIdempotency(reservation);
    }
    if (!stored.ok()) {
        log::get("api")->warn("store idempotent response failed: {} request_id={}",
                              stored.error().toLogString(), scope.request_id);
    }
}

}  // namespace

// One registered route with everything its requests need.
struct RegisteredRoute {
    std::shared_ptr<ApiContext> context;
    std::shared_ptr<IdempotencyLocks> idempotency_locks;
    std::string route;
    RouteHandler handler;
    RouteOptions options;
};

namespace {

// Runs the pipeline for one request. `reader` reads the body of POST, PATCH
// and PUT requests and is null for other methods.
void dispatch(const RegisteredRoute& route, const httplib::Request& request,
              httplib::Response& response, const httplib::ContentReader* reader) {
    ApiContext& context = *route.context;
    tl_access_trace.route = route.route;
    RequestScope scope = beginRequest(request, response, context);
    // This request's Idempotency-Key reservation, released on every path.
    std::optional<domain::IdempotencyRecord> reservation;
    try {
        std::string raw_body;
        if (reader != nullptr) {
            auto read = readBody(request, response, *reader, context.config);
            if (!read.ok()) {
                // The unread rest of the body would be taken for the next
                // request on this connection.
                response.set_header("Connection", "close");
                writeError(response, scope, read.error());
                return;
            }
            raw_body = std::move(read).value();
        }

        domain::ApiKey key;
        const std::string token = bearerToken(request);
        if (route.options.authenticate) {
            auto authenticated = authenticate(token, *context.store);
            if (!authenticated.ok()) {
                writeError(response, scope, authenticated.error());
                return;
            }
            key = std::move(authenticated).value();
            scope.project_id = key.project_id;
        }

        Json body = Json::object();
        if (route.options.parse_body && (request.method == "POST" || request.method == "PATCH")) {
            auto parsed = parseBody(raw_body, context.config);
            if (!parsed.ok()) {
                writeError(response, scope, parsed.error());
                return;
            }
            body = std::move(parsed).value();
        }

        const std::string idempotency_key = request.method == "POST" && route.options.authenticate
                                                ? request.get_header_value("Idempotency-Key")
                                                : std::string();
        const std::string request_hash = requestHash(request, raw_body);
        // Requests with the same key wait for each other from the lookup to
        // the stored response, so a concurrent duplicate replays the first
        // response instead of running again: within this process by a lock,
        // and across API processes by a reservation row in the database.
        std::optional<IdempotencyLocks::Guard> idempotency_guard;
        if (!idempotency_key.empty()) {
            if (idempotency_key.size() > kMaxIdempotencyKeyLength) {
                writeError(response, scope,
                           Error::invalidArgument(
                               fmt::format("invalid Idempotency-Key: longer than {} characters",
                                           kMaxIdempotencyKeyLength)));
                return;
            }
            idempotency_guard.emplace(*route.idempotency_locks,
                                      key.project_id + "\n" + idempotency_key);
            auto reserved = reserveIdempotencyKey(request_hash, key.project_id, idempotency_key,
                                                  *context.store);
            if (!reserved.ok()) {
                writeError(response, scope, reserved.error());
                return;
            }
            if (reserved->earlier) {
                response.status = reserved->earlier->status_code;
                response.set_header("Idempotent-Replayed", "true");
                response.set_content(reserved->earlier->response_body, "application/json");
                return;
            }
            reservation = std::move(reserved->reserved);
        }

        RequestContext request_context{request, scope, context, key, token, body};
        auto reply = route.handler(request_context);
        if (reply.ok()) {
            writeResponse(response, scope, request, *reply);
        } else {
            if (httpStatusFor(reply.error()) >= 500) {
                log::get("api")->error("request failed: {} route={} request_id={}",
                                       reply.error().toLogString(), route.route, scope.request_id);
            }
            writeError(response, scope, reply.error());
        }
        if (reservation) {
            storeResponse(response, std::move(*reservation), scope, *context.store);
            reservation.reset();
        }
    } catch (const std::exception& e) {
        log::get("api")->error("request failed with an exception: {} route={} request_id={}",
                               e.what(), route.route, scope.request_id);
        response.headers.erase("Link");
        writeError(response, scope, Error::internal("internal server error"));
        if (reservation) {
            storeResponse(response, std::move(*reservation), scope, *context.store);
        }
    }
}

// Fills the body of error responses that httplib produced itself (no
// matching route, a body over the size limit, a malformed request).
httplib::Server::HandlerResponse writeHttpError(const ApiContext& context,
                                                const httplib::Request& request,
                                                httplib::Response& response) {
    RequestScope scope = beginRequest(request, response, context);
    if (!response.body.empty()) {
        return httplib::Server::HandlerResponse::Unhandled;
    }
    const int status = response.status;
    std::string message;
    ErrorCode code = ErrorCode::InvalidArgument;
    if (status == 404) {
        code = ErrorCode::NotFound;
        message = fmt::format("no route for {} {}", request.method, request.path);
    } else if (status == 413) {
        code = ErrorCode::ResourceExhausted;
        message = fmt::format("request body is larger than the limit of {} bytes",
                              context.config.limits.max_request_body_bytes);
    } else {
        message = fmt::format("invalid HTTP request (status {})", status);
    }
    writeError(response, scope, Error(code, message));
    response.status = status;
    return httplib::Server::HandlerResponse::Handled;
}

void writeAccessLog(const httplib::Request& request, const httplib::Response& response) {
    const auto elapsed = std::chrono::steady_clock::now() - tl_access_trace.start;
    const double duration_ms =
        std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count() / 1000.0;
    metrics::recordHttpRequest("api", request.method, tl_access_trace.route, response.status,
                               duration_ms / 1000.0);
    log::get("access")->info("{} {} status={} bytes={} duration_ms={:.1f} request_id={}",
                             request.method, tl_access_trace.route, response.status,
                             response.body.size(), duration_ms,
                             response.get_header_value(kRequestIdHeader));
}

}  // namespace

ApiResponse ApiResponse::object(Json object, std::string parent_path, int status) {
    ApiResponse response = withShape(Shape::Object, std::move(object), status);
    response.parent_path = std::move(parent_path);
    return response;
}

ApiResponse ApiResponse::list(Json items, PageInfo page) {
    ApiResponse response = withShape(Shape::List, std::move(items), 200);
    response.page = page;
    return response;
}

ApiResponse ApiResponse::deleted(std::string id, std::string parent_path) {
    ApiResponse response = withShape(Shape::Deleted, nullptr, 200);
    response.deleted_id = std::move(id);
    response.parent_path = std::move(parent_path);
    return response;
}

ApiResponse ApiResponse::unwrapped(Json body) {
    return withShape(Shape::Unwrapped, std::move(body), 200);
}

std::string RequestContext::pathParameter(size_t index) const {
    if (index + 1 >= request.matches.size()) {
        return {};
    }
    return request.matches[index + 1].str();
}

std::string routePattern(const std::string& route) {
    std::string pattern;
    size_t position = 0;
    while (position < route.size()) {
        if (route[position] == '{') {
            auto close = route.find('}', position);
            pattern += "([^/]+)";
            position = close == std::string::npos ? route.size() : close + 1;
            continue;
        }
        const char c = route[position];
        if (std::string_view(".^$|()[]*+?\\").find(c) != std::string_view::npos) {
            pattern += '\\';
        }
        pattern += c;
        ++position;
    }
    return pattern;
}

Router::Router(httplib::Server& server, std::shared_ptr<ApiContext> context)
    : server_(server),
      context_(std::move(context)),
      idempotency_locks_(std::make_shared<IdempotencyLocks>()) {
    // httplib responds with 413 for a Content-Length over this limit without
    // keeping the body; readBody() and the error handler below write the
    // message.
    server_.set_payload_max_length(
        static_cast<size_t>(context_->config.limits.max_request_body_bytes));
    server_.set_pre_routing_handler([](const httplib::Request&, httplib::Response&) {
        tl_access_trace = AccessTrace{std::chrono::steady_clock::now(), "-"};
        return httplib::Server::HandlerResponse::Unhandled;
    });
    auto context_copy = context_;
    server_.set_error_handler(httplib::Server::HandlerWithResponse(
        [context_copy](const httplib::Request& request, httplib::Response& response) {
            return writeHttpError(*context_copy, request, response);
        }));
    server_.set_logger(writeAccessLog);
}

void Router::add(const std::string& method, const std::string& route, RouteHandler handler,
                 RouteOptions options) {
    addPattern(method, routePattern(route), route, std::move(handler), options);
}

void Router::addPattern(const std::string& method, const std::string& pattern,
                        const std::string& route, RouteHandler handler, RouteOptions options) {
    auto entry = std::make_shared<const RegisteredRoute>(
        RegisteredRoute{context_, idempotency_locks_, route, std::move(handler), options});
    httplib::Server::Handler without_body = [entry](const httplib::Request& request,
                                                    httplib::Response& response) {
        dispatch(*entry, request, response, nullptr);
    };
    // Methods with a body take a content reader so that dispatch() decides
    // whether to read (see readBody).
    httplib::Server::HandlerWithContentReader with_body =
        [entry](const httplib::Request& request, httplib::Response& response,
                const httplib::ContentReader& reader) {
            dispatch(*entry, request, response, &reader);
        };
    if (method == "GET") {
        server_.Get(pattern, std::move(without_body));
    } else if (method == "POST") {
        server_.Post(pattern, std::move(with_body));
    } else if (method == "PATCH") {
        server_.Patch(pattern, std::move(with_body));
    } else if (method == "DELETE") {
        server_.Delete(pattern, std::move(without_body));
    } else if (method == "PUT") {
        server_.Put(pattern, std::move(with_body));
    }
}

void Router::addNotFoundFallback() {
    auto not_found = [](RequestContext& context) -> Result<ApiResponse> {
        return Error::notFound(
            fmt::format("no route for {} {}", context.request.method, context.request.path));
    };
    for (const char* method : {"GET", "POST", "PATCH", "DELETE", "PUT"}) {
        addPattern(method, ".*", "-", not_found,
                   RouteOptions{.authenticate = false, .parse_body = false});
    }
}

}  // namespace bitmill::api
