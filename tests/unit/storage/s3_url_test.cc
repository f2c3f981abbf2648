// S3 storage URL parsing: defaults, parameters, credentials from the
// environment, and the error for each kind of mistake.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "storage/s3/s3_url.h"

namespace bitmill::storage::s3 {
namespace {

// An environment made of `variables` only.
EnvironmentLookup fakeEnvironment(std::map<std::string, std::string> variables) {
    return [variables = std::move(variables)](const char* name) -> std::optional<std::string> {
        auto found = variables.find(name);
        if (found == variables.end()) {
            return std::nullopt;
        }
        return found->second;
    };
}

EnvironmentLookup withCredentials(std::map<std::string, std::string> extra = {}) {
    extra.emplace("AWS_ACCESS_KEY_ID", "AKIDTEST");
    extra.emplace("AWS_SECRET_ACCESS_KEY", "secret-value");
    return fakeEnvironment(std::move(extra));
}

// Returns the error message of parsing `url`, or "(parsed)".
std::string errorOf(const std::string& url, const EnvironmentLookup& environment) {
    Result<S3Settings> settings = parseS3Url(url, environment);
    if (settings.ok()) {
        return "(parsed)";
    }
    EXPECT_EQ(settings.error().code(), ErrorCode::InvalidArgument) << url;
    return settings.error().message();
}

TEST(S3UrlTest, FullUrlForLocalServer) {
    auto settings = parseS3Url(
        "s3://bitmill-test/runs/42?endpoint=http://127.0.0.1:9000&region=eu-west-3&path_style=true",
        withCredentials({{"AWS_SESSION_TOKEN", "session"}}));
    ASSERT_TRUE(settings.ok()) << settings.error().message();
    EXPECT_EQ(settings->bucket, "bitmill-test");
    EXPECT_EQ(settings->prefix, "runs/42");
    EXPECT_EQ(settings->endpoint_scheme, "http");
    EXPECT_EQ(settings->endpoint_host, "127.0.0.1:9000");
    EXPECT_EQ(settings->region, "eu-west-3");
    EXPECT_TRUE(settings->path_style);
    EXPECT_EQ(settings->part_bytes, kDefaultPartBytes);
    EXPECT_EQ(settings->credentials.access_key_id, "AKIDTEST");
    EXPECT_EQ(settings->credentials.secret_access_key, "secret-value");
    EXPECT_EQ(settings->credentials.session_token, "session");
}

TEST(S3UrlTest, DefaultsToAwsEndpointAndVirtualHosts) {
    auto settings = parseS3Url("s3://media-bucket", withCredentials());
    ASSERT_TRUE(settings.ok()) << settings.error().message();
    EXPECT_EQ(settings->prefix, "");
    EXPECT_EQ(settings->region, "us-east-1");
    EXPECT_EQ(settings->endpoint_scheme, "https");
    EXPECT_EQ(settings->endpoint_host, "s3.us-east-1.amazonaws.com");
    EXPECT_FALSE(settings->path_style);
    EXPECT_TRUE(settings->credentials.session_token.empty());
}

TEST(S3UrlTest, RegionFromEnvironmentInOrder) {
    auto both = parseS3Url(
        "s3://media-bucket/",
        withCredentials({{"AWS_REGION", "ap-south-1"}, {"AWS_DEFAULT_REGION", "eu-north-1"}}));
    ASSERT_TRUE(both.ok());
    EXPECT_EQ(both->region, "ap-south-1");
    EXPECT_EQ(both->endpoint_host, "s3.ap-south-1.amazonaws.com");
    EXPECT_EQ(both->prefix, "");

    auto fallback =
        parseS3Url("s3://media-bucket", withCredentials({{"AWS_DEFAULT_REGION", "eu-north-1"}}));
    ASSERT_TRUE(fallback.ok());
    EXPECT_EQ(fallback->region, "eu-north-1");

    auto from_url = parseS3Url("s3://media-bucket?region=auto&endpoint=https://x.example.com",
                               withCredentials({{"AWS_REGION", "ap-south-1"}}));
    ASSERT_TRUE(from_url.ok());
    EXPECT_EQ(from_url->region, "auto");
    EXPECT_EQ(from_url->endpoint_host, "x.example.com");
}

TEST(S3UrlTest, DottedBucketDefaultsToPathStyle) {
    auto dotted = parseS3Url("s3://media.example.com/p", withCredentials());
    ASSERT_TRUE(dotted.ok());
    EXPECT_TRUE(dotted->path_style);
    auto forced = parseS3Url("s3://media.example.com/p?path_style=false", withCredentials());
    ASSERT_TRUE(forced.ok());
    EXPECT_FALSE(forced->path_style);
}

TEST(S3UrlTest, PercentEncodedValuesAndPrefix) {
    auto settings = parseS3Url(
        "s3://bucket-1/a%20b/c/?endpoint=http%3A%2F%2F%5B%3A%3A1%5D%3A9000%2F&part_size=5242880",
        withCredentials());
    ASSERT_TRUE(settings.ok()) << settings.error().message();
    EXPECT_EQ(settings->prefix, "a b/c");
    EXPECT_EQ(settings->endpoint_host, "[::1]:9000");
    EXPECT_EQ(settings->part_bytes, 5242880);
}

TEST(S3UrlTest, MissingBucketIsRejected) {
    std::string message = errorOf("s3://", withCredentials());
    EXPECT_NE(message.find("the bucket is missing"), std::string::npos) << message;
    EXPECT_NE(message.find("s3://BUCKET"), std::string::npos) << message;
    EXPECT_NE(errorOf("s3:///prefix", withCredentials()).find("bucket is missing"),
              std::string::npos);
}

TEST(S3UrlTest, BadBucketNamesAreRejected) {
    std::string message = errorOf("s3://bu cket/x", withCredentials());
    EXPECT_NE(message.find("bucket name 'bu cket'"), std::string::npos) << message;
    EXPECT_NE(errorOf("s3://ab", withCredentials()).find("3 to 255"), std::string::npos);
}

TEST(S3UrlTest, BadEndpointsAreRejected) {
    std::string scheme = errorOf("s3://bucket?endpoint=ftp://host", withCredentials());
    EXPECT_NE(scheme.find("endpoint scheme 'ftp'"), std::string::npos) << scheme;
    EXPECT_NE(scheme.find("endpoint=http://HOST:PORT"), std::string::npos) << scheme;

    std::string no_scheme = errorOf("s3://bucket?endpoint=127.0.0.1:9000", withCredentials());
    EXPECT_NE(no_scheme.find("endpoint '127.0.0.1:9000' has no scheme"), std::string::npos)
        << no_scheme;

    std::string with_path = errorOf("s3://bucket?endpoint=http://host/path", withCredentials());
    EXPECT_NE(with_path.find("without a path"), std::string::npos) << with_path;

    std::string bad_port = errorOf("s3://bucket?endpoint=http://host:99999", withCredentials());
    EXPECT_NE(bad_port.find("invalid host or port"), std::string::npos) << bad_port;

    std::string no_host = errorOf("s3://bucket?endpoint=http://", withCredentials());
    EXPECT_NE(no_host.find("has no host"), std::string::npos) << no_host;
}

TEST(S3UrlTest, UnknownAndBadParametersAreRejected) {
    std::string unknown = errorOf("s3://bucket?endpiont=http://h", withCredentials());
    EXPECT_NE(unknown.find("unknown parameter 'endpiont'"), std::string::npos) << unknown;
    EXPECT_NE(unknown.find("endpoint, region, path_style and part_size"), std::string::npos)
        << unknown;

    std::string boolean = errorOf("s3://bucket?path_style=yes", withCredentials());
    EXPECT_NE(boolean.find("path_style='yes' is not a boolean"), std::string::npos) << boolean;

    std::string small = errorOf("s3://bucket?part_size=1024", withCredentials());
    EXPECT_NE(small.find("part_size='1024'"), std::string::npos) << small;
    EXPECT_NE(small.find("5 MiB"), std::string::npos) << small;

    std::string empty = errorOf("s3://bucket?region=", withCredentials());
    EXPECT_NE(empty.find("parameter 'region' has no value"), std::string::npos) << empty;

    std::string bad_prefix = errorOf("s3://bucket/a/../b", withCredentials());
    EXPECT_NE(bad_prefix.find("key prefix 'a/../b'"), std::string::npos) << bad_prefix;
}

TEST(S3UrlTest, MissingCredentialsAreRejected) {
    std::string none = errorOf("s3://bucket", fakeEnvironment({}));
    EXPECT_NE(none.find("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"), std::string::npos) << none;
    std::string no_secret = errorOf("s3://bucket", fakeEnvironment({{"AWS_ACCESS_KEY_ID", "AK"}}));
    EXPECT_NE(no_secret.find("credentials are missing"), std::string::npos) << no_secret;
}

TEST(S3UrlTest, ErrorsNeverContainTheSecret) {
    auto environment = withCredentials();
    for (const std::string& url :
         {std::string("s3://"), std::string("s3://bucket?x=1"), std::string("s3://b")}) {
        Result<S3Settings> settings = parseS3Url(url, environment);
        ASSERT_FALSE(settings.ok()) << url;
        EXPECT_EQ(settings.error().message().find("secret-value"), std::string::npos);
        EXPECT_EQ(settings.error().detail().find("secret-value"), std::string::npos);
    }
}

}  // namespace
}  // namespace bitmill::storage::s3
