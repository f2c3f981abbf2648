// The request pipeline around handlers: exceptions become a 500 naming the
// request id, and route templates match one path segment per placeholder.
#include <gtest/gtest.h>
#include <httplib.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "api/http_listener.h"
#include "api/router.h"
#include "core/json.h"

namespace bitmill::api {
namespace {

TEST(RouterTest, RoutePatternMatchesOneSegment) {
    EXPECT_EQ(routePattern("/tasks/{id}/cancel"), "/tasks/([^/]+)/cancel");
    EXPECT_EQ(routePattern("/tasks-config"), "/tasks-config");
    EXPECT_EQ(routePattern("/a.b"), "/a\\.b");
}

TEST(RouterTest, ExceptionBecomesServerError) {
    auto context = std::make_shared<ApiContext>();
    auto server = std::make_unique<httplib::Server>();
    configureServer(*server);
    Router router(*server, context);
    router.add(
        "GET", "/boom",
        [](RequestContext&) -> Result<ApiResponse> { throw std::runtime_error("broken"); },
        RouteOptions{.authenticate = false});
    router.add(
        "GET", "/echo/{name}",
        [](RequestContext& request) -> Result<ApiResponse> {
            return ApiResponse::unwrapped(Json{{"name", request.pathParameter(0)}});
        },
        RouteOptions{.authenticate = false});
    router.addNotFoundFallback();

    HttpListener listener(std::move(server), "test");
    auto port = listener.start("127.0.0.1", 0);
    ASSERT_TRUE(port.ok()) << port.error().toLogString();
    httplib::Client client("127.0.0.1", *port);

    auto failed = client.Get("/boom");
    ASSERT_TRUE(failed);
    EXPECT_EQ(failed->status, 500);
    const std::string request_id = failed->get_header_value("X-Request-Id");
    ASSERT_FALSE(request_id.empty());
    const std::string message = Json::parse(failed->body)["message"];
    EXPECT_NE(message.find(request_id), std::string::npos) << message;
    EXPECT_EQ(message.find("broken"), std::string::npos) << message;

    auto echoed = client.Get("/echo/clip");
    ASSERT_TRUE(echoed);
    EXPECT_EQ(Json::parse(echoed->body)["name"], "clip");

    auto nested = client.Get("/echo/a/b");
    ASSERT_TRUE(nested);
    EXPECT_EQ(nested->status, 404);

    listener.stop();
}

}  // namespace
}  // namespace bitmill::api
