// Response helpers shared by the API and delivery listeners. They write
// bodies in the format a client expects (bare objects, or the envelope of
// SDKs before 1.0.0) with a request id on every response, and map errors
// to HTTP statuses.
#pragma once

#include <httplib.h>

#include <cstdint>
#include <optional>
#include <string>

#include "api/api.h"
#include "core/config.h"
#include "core/error.h"
#include "core/json.h"

namespace bitmill::api {

// Response header that carries the request id.
inline constexpr const char* kRequestIdHeader = "X-Request-Id";

enum class ResponseMode { Bare, Envelope };

// Request-wide facts that every response of one request carries.
struct RequestScope {
    std::string request_id;  // req_…
    ResponseMode mode = ResponseMode::Bare;
    // API version reported in envelope meta: the requested version, or
    // "2025-01-01" for envelope clients that sent none.
    std::string version;
    // Scheme and authority of absolute links, e.g. "http://127.0.0.1:8080",
    // taken from the Host header.
    std::string base_url;
    std::string org_id;
    std::string project_id;  // empty until the API key is known
};

// Position of one page in a list: the page (1-based), the page size and
// the number of items over all pages.
struct PageInfo {
    int page = 1;
    int limit = 20;
    int64_t total = 0;
};

// Returns the HTTP status for `error` (InvalidArgument 400, Unauthenticated
// 401, PermissionDenied 403, NotFound 404, Conflict 409, UnsupportedMedia
// 422, ResourceExhausted 413, Unavailable 503, DeadlineExceeded 504,
// Internal 500).
int httpStatusFor(const Error& error);

// Chooses the body format from Accept-Version / ACCEPT_VERSION and the
// X-Fern-SDK-Name / X-Fern-SDK-Version headers; `default_mode` is
// config.default_response_mode ("bare" or "envelope").
ResponseMode chooseResponseMode(const httplib::Request& request, const std::string& default_mode);

// Returns the API version that envelope meta reports for `request`: the
// requested date when it matches `mode`, else "2025-01-01" (envelope) or
// "2025-08-20" (bare).
std::string responseVersion(const httplib::Request& request, ResponseMode mode);

// Builds the scope of `request`. Reuses the X-Request-Id already set on
// `response` or creates a new id and sets the header, so one request keeps
// one id however many helpers touch it.
RequestScope beginRequest(const httplib::Request& request, httplib::Response& response,
                          const ApiContext& context);

// Writes `error` with its HTTP status: {"message": …} in bare mode, the
// envelope with type "error" otherwise. Internal errors show a generic
// message naming the request id; their detail is for the log only.
void writeError(httplib::Response& response, const RequestScope& scope, const Error& error);

// Writes one object with `status`. `path` is the request path (the self
// link of an envelope) and `parent_path` its collection, e.g. "/files".
void writeObject(httplib::Response& response, const RequestScope& scope, int status,
                 const Json& object, const std::string& path, const std::string& parent_path);

// Writes one page of a list: a JSON array with a Link header in bare mode,
// the envelope with list meta and links otherwise. `path` is the list path
// and `query` the request's other query parameters (kept in links).
void writeList(httplib::Response& response, const RequestScope& scope, const Json& items,
               const PageInfo& page, const std::string& path, const std::string& query);

// Writes the body of a successful DELETE: {"message": "<id> deleted"}.
void writeDeleted(httplib::Response& response, const RequestScope& scope, const std::string& id,
                  const std::string& path, const std::string& parent_path);

}  // namespace bitmill::api
