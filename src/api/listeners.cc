// Construction of the two listeners: the JSON API with its routes, and the
// delivery listener whose routes live in api/delivery.h.
#include <memory>

#include "api/api.h"
#include "api/delivery.h"
#include "api/handlers.h"
#include "api/http_listener.h"
#include "api/operations.h"
#include "api/router.h"
#include "core/clock.h"

namespace bitmill::api {

namespace {

Result<ApiResponse> getHealth(RequestContext& context) {
    auto due = context.api.store->countDueTasks(nowMillis());
    if (!due.ok()) {
        return Error::unavailable("the metadata store is unreachable: " + due.error().message());
    }
    return ApiResponse::unwrapped(Json{{"status", "ok"}});
}

}  // namespace

std::unique_ptr<Listener> makeApiListener(std::shared_ptr<ApiContext> context) {
    auto server = std::make_unique<httplib::Server>();
    configureServer(*server);
    registerMetricsRoute(*server, context->store);
    Router router(*server, context);
    router.add("GET", "/healthz", getHealth, RouteOptions{.authenticate = false});
    registerTaskRoutes(router);
    registerTasksConfigRoutes(router);
    registerFileRoutes(router);
    registerMediaRoutes(router);
    registerSignatureRoutes(router);
    router.addNotFoundFallback();
    return std::make_unique<HttpListener>(std::move(server), "api");
}

std::unique_ptr<Listener> makeDeliveryListener(std::shared_ptr<ApiContext> context) {
    auto server = std::make_unique<httplib::Server>();
    configureServer(*server);
    registerDeliveryRoutes(*server, std::move(context));
    return std::make_unique<HttpListener>(std::move(server), "delivery");
}

}  // namespace bitmill::api
