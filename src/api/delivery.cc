// Delivery routes; see delivery.h. Byte ranges are parsed here and
// httplib's own range handling is switched off for every request, because
// cpp-httplib 0.11.4 does not clamp a range that ends past the file: it
// would announce a Content-Length of bytes that are never sent.
#include "api/delivery.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "api/http_util.h"
#include "api/signing.h"
#include "api/upload_staging.h"
#include "api/uploads.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "domain/delivery_path.h"

namespace bitmill::api {

namespace {

// Bytes read from the blob store per write to the socket.
constexpr size_t kReadChunkBytes = 64 * 1024;

constexpr const char* kCorsAllowedHeaders =
    "Authorization, Content-Type, Content-Range, Range, If-None-Match, If-Modified-Since, "
    "If-Range";
constexpr const char* kCorsExposedHeaders =
    "Content-Length, Content-Range, ETag, Last-Modified, Range, X-Request-Id";

// Methods served on a delivery path, and on "/" where no file can be.
constexpr const char* kFileMethods = "GET, HEAD, PUT, OPTIONS";
constexpr const char* kRootMethods = "GET, HEAD, OPTIONS";
// Methods that reach a route of the delivery listener (others get 405 there).
constexpr std::array<std::string_view, 7> kRoutedMethods = {"GET",   "HEAD",   "PUT",    "POST",
                                                            "PATCH", "DELETE", "OPTIONS"};

// Start of the request the current httplib worker thread is serving, for
// the access log; httplib runs routing and logging on one thread.
thread_local std::optional<std::chrono::steady_clock::time_point> request_start;

struct ByteRange {
    int64_t first = 0;
    int64_t last = 0;  // inclusive
};

enum class RangeOutcome { WholeFile, Partial, Unsatisfiable };

struct RangeDecision {
    RangeOutcome outcome = RangeOutcome::WholeFile;
    ByteRange range;
};

std::optional<int64_t> parseOffset(std::string_view text) {
    int64_t value = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || error != std::errc() || end != text.data() + text.size() || value < 0) {
        return std::nullopt;
    }
    return value;
}

// Decides a Range header against a file of `size` bytes: "bytes=a-b",
// "bytes=a-" or "bytes=-n". Several ranges, other units and malformed
// values are ignored and the whole file is sent, as RFC 9110 allows.
RangeDecision decideRange(std::string_view header, int64_t size) {
    constexpr std::string_view kUnit = "bytes=";
    if (!header.starts_with(kUnit) || header.find(',') != std::string_view::npos) {
        return {};
    }
    std::string_view spec = header.substr(kUnit.size());
    size_t dash = spec.find('-');
    if (dash == std::string_view::npos) {
        return {};
    }
    std::string_view first_text = spec.substr(0, dash);
    std::string_view last_text = spec.substr(dash + 1);
    const RangeDecision unsatisfiable{RangeOutcome::Unsatisfiable, {}};

    if (first_text.empty()) {
        auto suffix = parseOffset(last_text);
        if (!suffix) {
            return {};
        }
        if (*suffix == 0 || size == 0) {
            return unsatisfiable;
        }
        return {RangeOutcome::Partial, {std::max<int64_t>(0, size - *suffix), size - 1}};
    }
    auto first = parseOffset(first_text);
    auto last = last_text.empty() ? std::optional<int64_t>(INT64_MAX) : parseOffset(last_text);
    if (!first || !last || *last < *first) {
        return {};
    }
    if (*first >= size) {
        return unsatisfiable;
    }
    return {RangeOutcome::Partial, {*first, std::min(*last, size - 1)}};
}

std::string_view trimmed(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
        text.remove_prefix(1);
    }
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) {
        text.remove_suffix(1);
    }
    return text;
}

std::string_view withoutWeakPrefix(std::string_view etag) {
    return etag.starts_with("W/") ? etag.substr(2) : etag;
}

// True when the If-None-Match list contains "*" or an entity tag that
// matches `etag` by weak comparison.
bool noneMatchHits(std::string_view header, std::string_view etag) {
    while (!header.empty()) {
        size_t comma = header.find(',');
        std::string_view candidate = trimmed(header.substr(0, comma));
        if (candidate == "*" || withoutWeakPrefix(candidate) == withoutWeakPrefix(etag)) {
            return true;
        }
        header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
    }
    return false;
}

bool notModified(const httplib::Request& request, const std::string& etag, int64_t updated_ms) {
    if (request.has_header("If-None-Match")) {
        return noneMatchHits(request.get_header_value("If-None-Match"), etag);
    }
    if (request.has_header("If-Modified-Since")) {
        auto since = parseHttpDate(request.get_header_value("If-Modified-Since"));
        // HTTP dates have whole seconds.
        return since && updated_ms / 1000 <= *since / 1000;
    }
    return false;
}

// True unless an If-Range names another representation, in which case the
// whole file is sent instead of the range.
bool ifRangeAllowsRange(const httplib::Request& request, const std::string& etag,
                        int64_t updated_ms) {
    if (!request.has_header("If-Range")) {
        return true;
    }
    std::string condition = request.get_header_value("If-Range");
    if (condition.starts_with("\"") || condition.starts_with("W/")) {
        return condition == etag && !etag.starts_with("W/");  // strong comparison only
    }
    auto date = parseHttpDate(condition);
    return date && updated_ms / 1000 <= *date / 1000;
}

// Writes `error` as writeError does, with an HTTP status that no ErrorCode
// maps to (405, 416) or that httplib chose.
void writeErrorWithStatus(httplib::Response& response, const RequestScope& scope, int status,
                          const Error& error) {
    writeError(response, scope, error);
    response.status = status;
}

// Requires a valid get signature when the file's delivery is private, and
// checks the signature of a signed request in public mode too, so that an
// expired or wrong signed URL fails the same way wherever it is used.
Status checkDeliveryAccess(ApiContext& context, const httplib::Request& request,
                           const domain::FileRecord& file, const std::string& path,
                           httplib::Response& response) {
    bool is_private = context.config.delivery_private;
    if (!is_private) {
        BM_ASSIGN_OR_RETURN(domain::Project project, context.store->getProject(file.project_id));
        is_private = project.delivery_private;
    }
    const bool is_signed = request.has_param("signature") || request.has_param("expiry");
    if (is_private) {
        response.set_header("Cache-Control", "private");
    }
    if (!is_signed) {
        if (!is_private) {
            return okStatus();
        }
        return Error(ErrorCode::PermissionDenied,
                     "missing signature: this file is private; request a signed URL from POST "
                     "/signatures");
    }
    BM_RETURN_IF_ERROR(checkSignedUrl(context, file.project_id, path, signedUrlQueryOf(request),
                                      "get", nowMillis() / 1000));
    return okStatus();
}

// Streams `length` bytes from `first` in reads of kReadChunkBytes.
void setStreamingBody(httplib::Response& response, std::unique_ptr<storage::BlobReader> reader,
                      int64_t first, int64_t length, const std::string& content_type,
                      const std::string& file_id) {
    struct Stream {
        std::unique_ptr<storage::BlobReader> reader;
        std::vector<char> buffer;
    };
    auto stream = std::make_shared<Stream>(Stream{std::move(reader), {}});
    response.set_content_provider(
        static_cast<size_t>(length), content_type,
        [stream, first, file_id](size_t offset, size_t remaining, httplib::DataSink& sink) {
            stream->buffer.resize(kReadChunkBytes);
            size_t requested = std::min(remaining, kReadChunkBytes);
            auto read = stream->reader->readAt(first + static_cast<int64_t>(offset),
                                               stream->buffer.data(), requested);
            if (!read.ok()) {
                log::get("api")->error("read file for delivery failed: {} file_id={}",
                                       read.error().toLogString(), file_id);
                return false;
            }
            if (*read == 0) {
                log::get("api")->error(
                    "read file for delivery failed: the stored bytes are shorter than their "
                    "size file_id={}",
                    file_id);
                return false;
            }
            return sink.write(stream->buffer.data(), *read);
        });
}

Status serveFile(ApiContext& context, const httplib::Request& request, httplib::Response& response,
                 const RequestScope& scope) {
    const std::string path = request.path.substr(1);
    auto found = context.store->findFileByDeliveryPath(path);
    if (!found.ok()) {
        if (found.error().code() == ErrorCode::NotFound) {
            return Error::notFound("no file at \"/" + path + "\"");
        }
        return found.error();
    }
    const domain::FileRecord& file = *found;
    BM_RETURN_IF_ERROR(checkDeliveryAccess(context, request, file, path, response));

    const std::string etag = domain::deliveryEtagFor(file);
    response.set_header("ETag", etag);
    response.set_header("Last-Modified", formatHttpDate(file.updated_ms));
    response.set_header("Accept-Ranges", "bytes");
    if (notModified(request, etag, file.updated_ms)) {
        response.status = 304;
        return okStatus();
    }
    if (request.method == "GET" && context.config.delivery_redirect_seconds > 0) {
        // The object store serves the bytes, ranges included, from a URL
        // that expires; local storage has no such URL and streams below.
        if (auto url = context.blobs->presignGet(file.storage_key,
                                                 context.config.delivery_redirect_seconds)) {
            response.status = 302;
            response.set_header("Location", *url);
            response.set_header("Cache-Control", "private, no-store");
            return okStatus();
        }
    }

    auto reader = context.blobs->openReader(file.storage_key);
    if (!reader.ok()) {
        if (reader.error().code() == ErrorCode::NotFound) {
            return Error::internal("read file for delivery: the stored bytes are missing",
                                   file.id + " " + reader.error().toLogString());
        }
        return reader.error();
    }
    const int64_t size = (*reader)->size();
    const std::string content_type =
        file.props.type.empty() ? "application/octet-stream" : file.props.type;

    // Choose the bytes to send.
    ByteRange range{0, size - 1};
    response.status = 200;
    if (request.has_header("Range") && ifRangeAllowsRange(request, etag, file.updated_ms)) {
        const std::string range_header = request.get_header_value("Range");
        RangeDecision decision = decideRange(range_header, size);
        if (decision.outcome == RangeOutcome::Unsatisfiable) {
            response.set_header("Content-Range", "bytes */" + std::to_string(size));
            writeErrorWithStatus(response, scope, 416,
                                 Error::invalidArgument("range '" + range_header +
                                                        "' is not satisfiable: the file has " +
                                                        std::to_string(size) + " bytes"));
            return okStatus();
        }
        if (decision.outcome == RangeOutcome::Partial) {
            range = decision.range;
            response.status = 206;
            response.set_header("Content-Range", "bytes " + std::to_string(range.first) + "-" +
                                                     std::to_string(range.last) + "/" +
                                                     std::to_string(size));
        }
    }
    const int64_t length = range.last - range.first + 1;
    if (length <= 0) {
        response.set_content("", content_type);
        return okStatus();
    }
    setStreamingBody(response, std::move(reader).value(), range.first, length, content_type,
                     file.id);
    return okStatus();
}

void handleGet(ApiContext& context, const httplib::Request& request, httplib::Response& response) {
    RequestScope scope = beginRequest(request, response, context);
    Status served = serveFile(context, request, response, scope);
    if (!served.ok()) {
        if (httpStatusFor(served.error()) >= 500) {
            log::get("api")->error("delivery failed: {} request_id={}",
                                   served.error().toLogString(), scope.request_id);
        }
        writeError(response, scope, served.error());
    }
}

// Writes 405 for a method that the delivery listener does not serve on the
// request's path, with the allowed methods in an Allow header.
void writeMethodNotAllowed(ApiContext& context, const httplib::Request& request,
                           httplib::Response& response) {
    RequestScope scope = beginRequest(request, response, context);
    std::string message;
    if (request.path == "/") {
        response.set_header("Allow", kRootMethods);
        message = request.method + " / is not allowed: upload to /{folder}/{filename} or " +
                  "/{filename}; allowed methods on /: " + kRootMethods;
    } else {
        response.set_header("Allow", kFileMethods);
        message = request.method +
                  " is not allowed on a delivery path; allowed methods: " + kFileMethods +
                  ". Files are changed and deleted through the API (/files)";
    }
    writeErrorWithStatus(response, scope, 405, Error::invalidArgument(message));
}

// Writes 405 after discarding the body, so that the client reads the
// response instead of a reset connection.
void answerMethodNotAllowed(ApiContext& context, const httplib::Request& request,
                            httplib::Response& response,
                            const httplib::ContentReader& content_reader) {
    discardBody(request, content_reader);
    writeMethodNotAllowed(context, request, response);
}

void answerPreflight(const httplib::Request&, httplib::Response& response) {
    response.status = 204;
    response.set_header("Access-Control-Allow-Methods", kFileMethods);
    response.set_header("Access-Control-Allow-Headers", kCorsAllowedHeaders);
    response.set_header("Access-Control-Max-Age", "86400");
}

httplib::Server::HandlerResponse beginDeliveryRequest(const httplib::Request& request,
                                                      httplib::Response& response) {
    request_start = std::chrono::steady_clock::now();
    // Switches off httplib's range handling (see the top of this file).
    // The Request object itself is not const, only httplib's view of it.
    const_cast<httplib::Request&>(request).ranges.clear();
    // httplib's set_header adds a header even when one of that name exists.
    if (!response.has_header("Access-Control-Allow-Origin")) {
        response.set_header("Access-Control-Allow-Origin", "*");
        response.set_header("Access-Control-Expose-Headers", kCorsExposedHeaders);
    }
    return httplib::Server::HandlerResponse::Unhandled;
}

// Returns the message of an error response that httplib produced itself.
Error httplibError(const httplib::Request& request, int status) {
    switch (status) {
        case 404:
            return Error::notFound("no file at \"" + request.path + "\"");
        case 414:
            return Error::invalidArgument("request URI is too long");
        case 416:
            return Error::invalidArgument("invalid Range header '" +
                                          request.get_header_value("Range") + "'");
        default:
            return Error::invalidArgument("invalid HTTP request (status " + std::to_string(status) +
                                          ")");
    }
}

// Fills the body of error responses that httplib produced itself: no
// matching route, or a request it rejected before routing.
//
// cpp-httplib 0.11.4 responds with 416 to a Range header it cannot parse
// ("bytes=abc", "bytes=100-50", "items=0-9") before the pre-routing handler
// runs. RFC 9110 section 14.2 lets a server ignore an invalid Range, and
// requires it to ignore an unknown range unit. So such a GET or HEAD is
// served here instead, whole, as if it had been routed.
httplib::Server::HandlerResponse completeHttplibError(ApiContext& context,
                                                      const httplib::Request& request,
                                                      httplib::Response& response) {
    if (!response.body.empty() || response.content_provider_) {
        return httplib::Server::HandlerResponse::Unhandled;  // written by a route
    }
    beginDeliveryRequest(request, response);
    const bool range_rejected = response.status == 416 && request.has_header("Range");
    if (range_rejected && (request.method == "GET" || request.method == "HEAD")) {
        response.status = 200;
        handleGet(context, request, response);
        return httplib::Server::HandlerResponse::Handled;
    }
    if (range_rejected && request.method == "OPTIONS") {
        answerPreflight(request, response);
        return httplib::Server::HandlerResponse::Handled;
    }
    // httplib responds with 400 to methods it has no handler list for
    // (TRACE, CONNECT). Their request line was valid, so the method is the
    // problem.
    const bool unknown_method = response.status == 400 && !request.method.empty() &&
                                std::find(kRoutedMethods.begin(), kRoutedMethods.end(),
                                          request.method) == kRoutedMethods.end();
    if (unknown_method) {
        writeMethodNotAllowed(context, request, response);
        return httplib::Server::HandlerResponse::Handled;
    }
    RequestScope scope = beginRequest(request, response, context);
    writeErrorWithStatus(response, scope, response.status, httplibError(request, response.status));
    return httplib::Server::HandlerResponse::Handled;
}

void logAccess(const httplib::Request& request, const httplib::Response& response) {
    int64_t duration_ms = -1;
    if (request_start) {
        auto elapsed = std::chrono::steady_clock::now() - *request_start;
        duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count();
        metrics::recordHttpRequest("delivery", request.method, "/{path}", response.status,
                                   std::chrono::duration<double>(elapsed).count());
        request_start.reset();
    }
    size_t bytes = response.body.empty() ? response.content_length_ : response.body.size();
    // The route template, not the path: paths are user file names, and the
    // query may carry a signature.
    log::get("access")->info("{} /{{path}} status={} bytes={} duration_ms={} request_id={}",
                             request.method, response.status, bytes, duration_ms,
                             response.get_header_value(kRequestIdHeader));
}

void handleException(const std::shared_ptr<ApiContext>& context, const httplib::Request& request,
                     httplib::Response& response, std::exception_ptr exception) {
    RequestScope scope = beginRequest(request, response, *context);
    std::string description = "unknown exception";
    try {
        std::rethrow_exception(exception);
    } catch (const std::exception& error) {
        description = error.what();
    } catch (...) {
        description = "exception of an unknown type";
    }
    log::get("api")->error("delivery request failed with an exception: {} request_id={}",
                           description, scope.request_id);
    writeError(response, scope, Error::internal("internal error"));
}

}  // namespace

void registerDeliveryRoutes(httplib::Server& server, std::shared_ptr<ApiContext> context) {
    auto uploads = std::make_shared<UploadHandler>(context);
    server.set_pre_routing_handler(beginDeliveryRequest);
    server.set_logger(logAccess);
    server.set_exception_handler([context](const httplib::Request& request,
                                           httplib::Response& response,
                                           std::exception_ptr exception) {
        handleException(context, request, response, exception);
    });
    server.set_error_handler(httplib::Server::HandlerWithResponse(
        [context](const httplib::Request& request, httplib::Response& response) {
            return completeHttplibError(*context, request, response);
        }));
    server.Get(R"(/(.+))", [context](const httplib::Request& request, httplib::Response& response) {
        handleGet(*context, request, response);
    });
    server.Put(R"(/(.+))", [uploads](const httplib::Request& request, httplib::Response& response,
                                     const httplib::ContentReader& content_reader) {
        uploads->handle(request, response, content_reader);
    });
    server.Options(R"(/(.*))", answerPreflight);

    // Every other method, and PUT on "/", gets 405. The handlers take a
    // content reader so that httplib does not read the body into memory.
    auto not_allowed = [context](const httplib::Request& request, httplib::Response& response,
                                 const httplib::ContentReader& content_reader) {
        answerMethodNotAllowed(*context, request, response, content_reader);
    };
    server.Put("/", not_allowed);
    server.Post(R"(/(.*))", not_allowed);
    server.Patch(R"(/(.*))", not_allowed);
    server.Delete(R"(/(.*))", not_allowed);
}

}  // namespace bitmill::api
