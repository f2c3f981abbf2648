// Writing API responses in bare or envelope form, with request ids, and
// the mapping of errors to HTTP statuses.
#include "api/http_util.h"

#include "api/pagination.h"
#include "core/ids.h"

namespace bitmill::api {

namespace {

constexpr const char* kJsonContentType = "application/json";

Json envelopeMeta(const RequestScope& scope, std::string_view type) {
    return Json{
        {"request_id", scope.request_id},
        {"org_id", scope.org_id.empty() ? Json(nullptr) : Json(scope.org_id)},
        {"project_id", scope.project_id.empty() ? Json(nullptr) : Json(scope.project_id)},
        {"version", scope.version},
        {"type", type},
    };
}

std::string baseUrlOf(const httplib::Request& request, const Config& config) {
    std::string scheme = "http";
    const std::string forwarded = request.get_header_value("X-Forwarded-Proto");
    if (forwarded == "https") {
        scheme = forwarded;
    }
    std::string host = request.get_header_value("Host");
    if (host.empty()) {
        host = config.listen;
    }
    return scheme + "://" + host;
}

void setJson(httplib::Response& response, int status, const Json& body) {
    response.status = status;
    // Replace invalid UTF-8 (e.g. in user metadata) instead of throwing.
    response.set_content(body.dump(-1, ' ', false, Json::error_handler_t::replace),
                         kJsonContentType);
}

}  // namespace

int httpStatusFor(const Error& error) {
    switch (error.code()) {
        case ErrorCode::InvalidArgument:
            return 400;
        case ErrorCode::Unauthenticated:
            return 401;
        case ErrorCode::PermissionDenied:
            return 403;
        case ErrorCode::NotFound:
            return 404;
        case ErrorCode::Conflict:
            return 409;
        case ErrorCode::UnsupportedMedia:
            return 422;
        case ErrorCode::ResourceExhausted:
            return 413;
        case ErrorCode::Unavailable:
            return 503;
        case ErrorCode::DeadlineExceeded:
            return 504;
        case ErrorCode::Internal:
            return 500;
    }
    return 500;
}

RequestScope beginRequest(const httplib::Request& request, httplib::Response& response,
                          const ApiContext& context) {
    RequestScope scope;
    scope.request_id = response.get_header_value(kRequestIdHeader);
    if (scope.request_id.empty()) {
        scope.request_id = newId("req_");
        response.set_header(kRequestIdHeader, scope.request_id);
    }
    scope.mode = chooseResponseMode(request, context.config.default_response_mode);
    scope.version = responseVersion(request, scope.mode);
    scope.base_url = baseUrlOf(request, context.config);
    scope.org_id = context.org_id;
    return scope;
}

void writeError(httplib::Response& response, const RequestScope& scope, const Error& error) {
    const int status = httpStatusFor(error);
    std::string message = error.message();
    if (status >= 500) {
        message += " (request " + scope.request_id + ")";
    }
    if (error.code() == ErrorCode::Unavailable) {
        response.set_header("Retry-After", "1");
    }
    if (scope.mode == ResponseMode::Bare) {
        setJson(response, status, Json{{"message", message}});
        return;
    }
    setJson(response, status,
            Json{
                {"meta", envelopeMeta(scope, "error")},
                {"data", nullptr},
                {"error", Json{{"message", message}}},
                {"links", Json::object()},
            });
}

void writeObject(httplib::Response& response, const RequestScope& scope, int status,
                 const Json& object, const std::string& path, const std::string& parent_path) {
    if (scope.mode == ResponseMode::Bare) {
        setJson(response, status, object);
        return;
    }
    setJson(response, status,
            Json{
                {"meta", envelopeMeta(scope, "object")},
                {"data", object},
                {"error", nullptr},
                {"links",
                 Json{
                     {"self", scope.base_url + percentEncode(path, true)},
                     {"parent", scope.base_url + parent_path},
                 }},
            });
}

void writeList(httplib::Response& response, const RequestScope& scope, const Json& items,
               const PageInfo& page, const std::string& path, const std::string& query) {
    const PageLinks links = buildPageLinks(scope.base_url, path, query, page);
    if (scope.mode == ResponseMode::Bare) {
        response.set_header("Link", formatLinkHeader(links));
        setJson(response, 200, items);
        return;
    }
    Json meta = envelopeMeta(scope, "list");
    meta["limit"] = page.limit;
    meta["total"] = page.total;
    meta["page"] = page.page;
    meta["pages"] = pageCount(page);
    setJson(response, 200,
            Json{
                {"meta", std::move(meta)},
                {"data", items},
                {"error", nullptr},
                {"links",
                 Json{
                     {"self", links.self},
                     {"first", links.first},
                     {"next", jsonOrNull(links.next)},
                     {"prev", jsonOrNull(links.prev)},
                     {"last", links.last},
                 }},
            });
}

void writeDeleted(httplib::Response& response, const RequestScope& scope, const std::string& id,
                  const std::string& path, const std::string& parent_path) {
    const Json message{{"message", id + " deleted"}};
    if (scope.mode == ResponseMode::Bare) {
        setJson(response, 200, message);
        return;
    }
    // NOTE: ittybit does not document the envelope form of a delete. This
    // guess carries the message object as data.
    writeObject(response, scope, 200, message, path, parent_path);
}

}  // namespace bitmill::api
