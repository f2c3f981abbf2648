// Parsing of JSON request bodies: the nesting limit that protects the
// recursive parser's stack, and parser failures that must become 400s.
#include <gtest/gtest.h>

#include <string>

#include "api/body_fields.h"
#include "core/json.h"

namespace bitmill::api {
namespace {

std::string nestedArrays(int depth) {
    return std::string(depth, '[') + std::string(depth, ']');
}

TEST(BodyFieldsTest, DepthLimitCountsArraysAndObjects) {
    EXPECT_TRUE(checkJsonDepth(nestedArrays(64)).ok());
    EXPECT_FALSE(checkJsonDepth(nestedArrays(65)).ok());

    // {"a": [{"b": []}]} nests four levels.
    const std::string mixed = R"({"a": [{"b": []}]})";
    EXPECT_TRUE(checkJsonDepth(mixed, 4).ok());
    EXPECT_FALSE(checkJsonDepth(mixed, 3).ok());

    // Closing brackets bring the depth back down.
    EXPECT_TRUE(checkJsonDepth("[[[]],[[]],[[]]]", 3).ok());
}

TEST(BodyFieldsTest, DepthLimitSkipsStrings) {
    EXPECT_TRUE(checkJsonDepth(R"({"a": "[[[[[[{{{{"})", 1).ok());
    // An escaped quote does not end the string.
    EXPECT_TRUE(checkJsonDepth(R"({"a": "\"[[[[", "b": 1})", 1).ok());
    // An escaped backslash does end it before the quote.
    EXPECT_FALSE(checkJsonDepth(R"({"a": "\\", "b": [[1]]})", 2).ok());
}

TEST(BodyFieldsTest, DeepBodyIsRejectedBeforeParsing) {
    // 20000 levels overflowed the parser's stack before the limit existed.
    const std::string body = R"({"kind":"image","metadata":)" + nestedArrays(20000) + "}";
    auto parsed = parseJsonBody(body);
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.error().code(), ErrorCode::InvalidArgument);
    EXPECT_EQ(parsed.error().message(), "request body nests deeper than 64 levels");

    // Unbalanced openings are caught the same way.
    auto unclosed = parseJsonBody(std::string(100000, '{'));
    ASSERT_FALSE(unclosed.ok());
    EXPECT_EQ(unclosed.error().message(), "request body nests deeper than 64 levels");
}

TEST(BodyFieldsTest, BodyAtTheLimitParses) {
    auto parsed = parseJsonBody(nestedArrays(64));
    ASSERT_TRUE(parsed.ok()) << parsed.error().message();
    EXPECT_TRUE(parsed->is_array());
}

TEST(BodyFieldsTest, ParserFailuresAreInvalidArgument) {
    auto overflow = parseJsonBody(R"({"width": 1e400})");
    ASSERT_FALSE(overflow.ok());
    EXPECT_EQ(overflow.error().code(), ErrorCode::InvalidArgument);
    EXPECT_NE(overflow.error().message().find("number out of range"), std::string::npos)
        << overflow.error().message();
    EXPECT_NE(overflow.error().message().find("1e400"), std::string::npos)
        << overflow.error().message();

    auto negative_overflow = parseJsonBody(R"([-1e999])");
    ASSERT_FALSE(negative_overflow.ok());
    EXPECT_EQ(negative_overflow.error().code(), ErrorCode::InvalidArgument);

    auto syntax = parseJsonBody(R"({"kind": )");
    ASSERT_FALSE(syntax.ok());
    EXPECT_EQ(syntax.error().code(), ErrorCode::InvalidArgument);
    EXPECT_EQ(syntax.error().message().rfind("request body is not valid JSON: ", 0), 0u)
        << syntax.error().message();

    auto bad_utf8 = parseJsonBody("{\"title\": \"\xff\xfe\"}");
    ASSERT_FALSE(bad_utf8.ok());
    EXPECT_EQ(bad_utf8.error().code(), ErrorCode::InvalidArgument);
}

TEST(BodyFieldsTest, LargeIntegersStayNumbers) {
    // Integers beyond 64 bits become doubles rather than errors.
    auto parsed = parseJsonBody(R"({"width": 123456789012345678901234567890})");
    ASSERT_TRUE(parsed.ok()) << parsed.error().message();
    EXPECT_TRUE((*parsed)["width"].is_number_float());
}

}  // namespace
}  // namespace bitmill::api
