// Response shapes (bare and envelope), Link headers, pagination parameters
// and error statuses.
#include <gtest/gtest.h>

#include <string>

#include "api/http_util.h"
#include "api/pagination.h"
#include "core/json.h"

namespace bitmill::api {
namespace {

RequestScope scopeFor(ResponseMode mode) {
    RequestScope scope;
    scope.request_id = "req_0123456789abcdef";
    scope.mode = mode;
    scope.version = mode == ResponseMode::Envelope ? "2025-01-01" : "2025-08-20";
    scope.base_url = "http://api.test:8080";
    scope.org_id = "org_0123456789abcdef";
    scope.project_id = "prj_0123456789abcdef";
    return scope;
}

httplib::Request requestWithQuery(const std::string& page, const std::string& limit) {
    httplib::Request request;
    if (!page.empty()) {
        request.params.emplace("page", page);
    }
    if (!limit.empty()) {
        request.params.emplace("limit", limit);
    }
    return request;
}

TEST(HttpUtilTest, BareObjectIsTheObject) {
    httplib::Response response;
    writeObject(response, scopeFor(ResponseMode::Bare), 201, Json{{"id", "task_x"}},
                "/tasks/task_x", "/tasks");
    EXPECT_EQ(response.status, 201);
    EXPECT_EQ(response.get_header_value("Content-Type"), "application/json");
    EXPECT_EQ(Json::parse(response.body), (Json{{"id", "task_x"}}));
}

TEST(HttpUtilTest, EnvelopeObjectHasMetaAndLinks) {
    httplib::Response response;
    writeObject(response, scopeFor(ResponseMode::Envelope), 200, Json{{"id", "task_x"}},
                "/tasks/task_x", "/tasks");
    const Json body = Json::parse(response.body);
    EXPECT_EQ(body["meta"]["request_id"], "req_0123456789abcdef");
    EXPECT_EQ(body["meta"]["org_id"], "org_0123456789abcdef");
    EXPECT_EQ(body["meta"]["project_id"], "prj_0123456789abcdef");
    EXPECT_EQ(body["meta"]["version"], "2025-01-01");
    EXPECT_EQ(body["meta"]["type"], "object");
    EXPECT_EQ(body["data"]["id"], "task_x");
    EXPECT_TRUE(body["error"].is_null());
    EXPECT_EQ(body["links"]["self"], "http://api.test:8080/tasks/task_x");
    EXPECT_EQ(body["links"]["parent"], "http://api.test:8080/tasks");
}

TEST(HttpUtilTest, BareErrorIsMessageOnly) {
    httplib::Response response;
    writeError(response, scopeFor(ResponseMode::Bare), Error::notFound("task 'task_x' not found"));
    EXPECT_EQ(response.status, 404);
    EXPECT_EQ(Json::parse(response.body), (Json{{"message", "task 'task_x' not found"}}));
}

TEST(HttpUtilTest, EnvelopeErrorHasTypeError) {
    httplib::Response response;
    writeError(response, scopeFor(ResponseMode::Envelope), Error::conflict("taken"));
    EXPECT_EQ(response.status, 409);
    const Json body = Json::parse(response.body);
    EXPECT_EQ(body["meta"]["type"], "error");
    EXPECT_TRUE(body["data"].is_null());
    EXPECT_EQ(body["error"]["message"], "taken");
}

TEST(HttpUtilTest, ServerErrorNamesRequestId) {
    httplib::Response response;
    writeError(response, scopeFor(ResponseMode::Bare), Error::internal("internal server error"));
    EXPECT_EQ(response.status, 500);
    const std::string message = Json::parse(response.body)["message"];
    EXPECT_NE(message.find("req_0123456789abcdef"), std::string::npos) << message;
}

TEST(HttpUtilTest, BareListIsArrayWithLinkHeader) {
    httplib::Response response;
    PageInfo page{.page = 2, .limit = 10, .total = 35};
    writeList(response, scopeFor(ResponseMode::Bare), Json::array({1, 2}), page, "/tasks",
              "status=pending");
    EXPECT_TRUE(Json::parse(response.body).is_array());
    EXPECT_EQ(response.get_header_value("Link"),
              "<http://api.test:8080/tasks?page=2&limit=10&status=pending>; rel=\"self\", "
              "<http://api.test:8080/tasks?page=1&limit=10&status=pending>; rel=\"first\", "
              "<http://api.test:8080/tasks?page=1&limit=10&status=pending>; rel=\"prev\", "
              "<http://api.test:8080/tasks?page=3&limit=10&status=pending>; rel=\"next\", "
              "<http://api.test:8080/tasks?page=4&limit=10&status=pending>; rel=\"last\"");
}

TEST(HttpUtilTest, EnvelopeListHasPagingMeta) {
    httplib::Response response;
    PageInfo page{.page = 1, .limit = 20, .total = 3};
    writeList(response, scopeFor(ResponseMode::Envelope), Json::array({1, 2, 3}), page, "/files",
              "");
    const Json body = Json::parse(response.body);
    EXPECT_EQ(body["meta"]["type"], "list");
    EXPECT_EQ(body["meta"]["limit"], 20);
    EXPECT_EQ(body["meta"]["total"], 3);
    EXPECT_EQ(body["meta"]["page"], 1);
    EXPECT_EQ(body["meta"]["pages"], 1);
    EXPECT_EQ(body["data"].size(), 3u);
    EXPECT_EQ(body["links"]["self"], "http://api.test:8080/files?page=1&limit=20");
    EXPECT_EQ(body["links"]["first"], "http://api.test:8080/files?page=1&limit=20");
    EXPECT_EQ(body["links"]["last"], "http://api.test:8080/files?page=1&limit=20");
    EXPECT_TRUE(body["links"]["next"].is_null());
    EXPECT_TRUE(body["links"]["prev"].is_null());
    EXPECT_TRUE(response.get_header_value("Link").empty());
}

TEST(HttpUtilTest, PageLinksAtTheEnds) {
    const PageInfo first{.page = 1, .limit = 10, .total = 25};
    PageLinks links = buildPageLinks("http://h", "/media", "", first);
    EXPECT_FALSE(links.prev.has_value());
    ASSERT_TRUE(links.next.has_value());
    EXPECT_EQ(*links.next, "http://h/media?page=2&limit=10");
    EXPECT_EQ(links.last, "http://h/media?page=3&limit=10");

    const PageInfo past_end{.page = 9, .limit = 10, .total = 25};
    links = buildPageLinks("http://h", "/media", "", past_end);
    ASSERT_TRUE(links.prev.has_value());
    EXPECT_EQ(*links.prev, "http://h/media?page=3&limit=10");
    EXPECT_FALSE(links.next.has_value());

    const PageInfo empty{.page = 1, .limit = 10, .total = 0};
    links = buildPageLinks("http://h", "/media", "", empty);
    EXPECT_EQ(links.last, "http://h/media?page=1&limit=10");
    EXPECT_FALSE(links.next.has_value());
    EXPECT_EQ(pageCount(empty), 0);
}

TEST(HttpUtilTest, PageQueryDefaultsAndBounds) {
    auto defaults = parsePageQuery(requestWithQuery("", ""), 20);
    ASSERT_TRUE(defaults.ok());
    EXPECT_EQ(defaults->page, 1);
    EXPECT_EQ(defaults->limit, 20);

    auto given = parsePageQuery(requestWithQuery("3", "100"), 20);
    ASSERT_TRUE(given.ok());
    EXPECT_EQ(given->page, 3);
    EXPECT_EQ(given->limit, 100);

    for (const auto& [page, limit] : std::vector<std::pair<std::string, std::string>>{
             {"0", ""}, {"-1", ""}, {"x", ""}, {"1.5", ""}, {"", "0"}, {"", "101"}, {"", "ten"}}) {
        auto parsed = parsePageQuery(requestWithQuery(page, limit), 20);
        ASSERT_FALSE(parsed.ok()) << "page=" << page << " limit=" << limit;
        EXPECT_EQ(parsed.error().code(), ErrorCode::InvalidArgument);
    }
    auto bad_limit = parsePageQuery(requestWithQuery("", "101"), 20);
    ASSERT_FALSE(bad_limit.ok());
    EXPECT_EQ(bad_limit.error().message(),
              "invalid query parameter \"limit\": '101' is not an integer from 1 to 100");
}

TEST(HttpUtilTest, OtherQueryParametersAreEncoded) {
    httplib::Request request;
    request.params.emplace("page", "2");
    request.params.emplace("kind", "video");
    request.params.emplace("media_id", "med a&b");
    EXPECT_EQ(otherQueryParameters(request), "kind=video&media_id=med%20a%26b");
}

TEST(HttpUtilTest, StatusForEveryErrorCode) {
    EXPECT_EQ(httpStatusFor(Error::invalidArgument("x")), 400);
    EXPECT_EQ(httpStatusFor(Error(ErrorCode::Unauthenticated, "x")), 401);
    EXPECT_EQ(httpStatusFor(Error(ErrorCode::PermissionDenied, "x")), 403);
    EXPECT_EQ(httpStatusFor(Error::notFound("x")), 404);
    EXPECT_EQ(httpStatusFor(Error::conflict("x")), 409);
    EXPECT_EQ(httpStatusFor(Error::unsupportedMedia("x")), 422);
    EXPECT_EQ(httpStatusFor(Error::resourceExhausted("x")), 413);
    EXPECT_EQ(httpStatusFor(Error::unavailable("x")), 503);
    EXPECT_EQ(httpStatusFor(Error(ErrorCode::DeadlineExceeded, "x")), 504);
    EXPECT_EQ(httpStatusFor(Error::internal("x")), 500);
}

}  // namespace
}  // namespace bitmill::api
