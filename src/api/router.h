// The request pipeline of the API listener: route templates, request ids,
// response modes, authentication, JSON bodies, idempotent POSTs, error
// mapping, exception containment and the access log. Handlers only see a
// RequestContext and return an ApiResponse or an Error.
#pragma once

#include <httplib.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "api/api.h"
#include "api/http_util.h"
#include "core/error.h"
#include "core/json.h"
#include "domain/records.h"

namespace bitmill::api {

// Result of a handler, which the router writes in the request's mode.
struct ApiResponse {
    enum class Shape { Object, List, Deleted, Unwrapped };

    Shape shape = Shape::Object;
    int status = 200;
    Json body;                // the object, the list items or the unwrapped body
    PageInfo page;            // lists
    std::string parent_path;  // objects and deletes: the collection, e.g. "/files"
    std::string deleted_id;   // deletes

    static ApiResponse object(Json object, std::string parent_path, int status = 200);
    static ApiResponse list(Json items, PageInfo page);
    static ApiResponse deleted(std::string id, std::string parent_path);
    // A body written as is in every mode (health checks, /tasks-config).
    static ApiResponse unwrapped(Json body);
};

// View of one request passed to a handler.
struct RequestContext {
    const httplib::Request& request;
    const RequestScope& scope;
    ApiContext& api;
    // The authenticated key; empty on routes without authentication.
    const domain::ApiKey& key;
    // The bearer token as sent; signatures are keyed with it.
    const std::string& bearer_token;
    // The JSON body, always an object ({} when the request had no body).
    const Json& body;

    const std::string& projectId() const { return key.project_id; }
    // Returns the n-th {placeholder} of the route template (0-based).
    std::string pathParameter(size_t index) const;
};

using RouteHandler = std::function<Result<ApiResponse>(RequestContext&)>;

// Defined in router.cc.
class IdempotencyLocks;
struct RegisteredRoute;

struct RouteOptions {
    bool authenticate = true;
    // Parse the JSON body of POST and PATCH requests into RequestContext::body.
    bool parse_body = true;
};

class Router {
  public:
    // Installs the pipeline's hooks (request ids, error bodies, access log,
    // body size limit) on `server`. Both must outlive the router's use.
    Router(httplib::Server& server, std::shared_ptr<ApiContext> context);

    // Registers `handler` for `method` (GET, POST, PATCH, DELETE) and
    // `route`, a template such as "/tasks/{id}"; each placeholder matches
    // one non-empty path segment.
    void add(const std::string& method, const std::string& route, RouteHandler handler,
             RouteOptions options = {});

    // Registers a 404 "no route for METHOD /path" for every path and method
    // that no route matched. Call it after the last add(): httplib tries
    // routes in registration order.
    void addNotFoundFallback();

  private:
    // Registers `handler` for the regular expression `pattern`; `route` is
    // the template that the access log shows.
    void addPattern(const std::string& method, const std::string& pattern, const std::string& route,
                    RouteHandler handler, RouteOptions options);

    httplib::Server& server_;
    std::shared_ptr<ApiContext> context_;
    // Serializes POSTs with the same project and Idempotency-Key; shared
    // with the registered routes, which outlive the router.
    std::shared_ptr<IdempotencyLocks> idempotency_locks_;
};

// Returns the regular expression that matches `route` (see Router::add).
std::string routePattern(const std::string& route);

}  // namespace bitmill::api
