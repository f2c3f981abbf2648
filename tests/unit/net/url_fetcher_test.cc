// Checks the URL fetcher: the blocked address table, URL validation, and real downloads from an
// HTTP server that the test starts on 127.0.0.1. Blocked targets must fail before any connect,
// so their errors have to name the blocked address (a connect attempt would fail differently).
#include "net/url_fetcher.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

#include <fmt/format.h>

namespace bitmill::net {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kFileSize = 64 * 1024;
constexpr int64_t kLargeBodySize = 100 * 1024;
constexpr int64_t kSmallLimit = 10 * 1024;

std::string patternBytes(int64_t size) {
    std::string bytes(static_cast<size_t>(size), '\0');
    for (int64_t i = 0; i < size; ++i) {
        bytes[static_cast<size_t>(i)] = static_cast<char>((i * 31) % 251);
    }
    return bytes;
}

std::string readFile(const fs::path& path) {
    std::ifstream input(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(input), std::istreambuf_iterator<char>()};
}

// Starts `server` (already bound) on a thread and waits until it accepts: httplib's stop() is a
// no-op before listen_after_bind() has marked the server running, so a test that ends quickly
// would otherwise leave the thread blocked in accept().
std::thread startServer(httplib::Server& server) {
    std::thread thread([&server] { server.listen_after_bind(); });
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!server.is_running() && std::chrono::steady_clock::now() < give_up) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return thread;
}

// Returns a loopback port that nothing listens on: bound without listen(), then closed.
int unusedLoopbackPort() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    int port = -1;
    if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
        port = ntohs(address.sin_port);
    }
    close(fd);
    return port;
}

bool contains(const std::string& text, std::string_view part) {
    return text.find(part) != std::string::npos;
}

TEST(IsBlockedAddressTest, BlocksSpecialRanges) {
    const char* blocked[] = {
        "127.0.0.1",
        "127.255.255.254",
        "::1",
        "[::1]",
        "::ffff:127.0.0.1",
        "::ffff:7f00:1",
        "0.0.0.0",
        "0.1.2.3",
        "::",
        "10.0.0.1",
        "10.255.255.255",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "169.254.169.254",
        "169.254.0.1",
        "100.64.0.1",
        "100.127.255.254",
        "100.100.100.200",
        "168.63.129.16",
        "fd00:ec2::254",
        "fc00::1",
        "fdff:ffff::1",
        "fe80::1",
        "fe80::1%eth0",
        "febf::1",
        "fec0::1",
        "ff02::1",
        "224.0.0.1",
        "239.255.255.250",
        "255.255.255.255",
        "240.0.0.1",
        "192.0.0.8",
        "192.0.2.1",
        "198.18.0.1",
        "198.51.100.7",
        "203.0.113.9",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:192.168.0.1",
        "64:ff9b::7f00:1",
        "64:ff9b::a00:1",
        "64:ff9b:1::1",
        "2002:7f00:1::",
        "2002:c0a8:101::1",
        "::127.0.0.1",
        "2001:db8::1",
        "2001::1",
        "100::1",
        "not-an-address",
        "",
        "1.2.3",
        "256.1.1.1",
        "example.com",
    };
    for (const char* address : blocked) {
        EXPECT_TRUE(isBlockedAddress(address)) << address;
    }
}

TEST(IsBlockedAddressTest, AllowsPublicAddresses) {
    const char* allowed[] = {
        "93.184.216.34",
        "8.8.8.8",
        "1.1.1.1",
        "172.15.255.255",
        "172.32.0.1",
        "100.63.255.255",
        "100.128.0.1",
        "192.169.0.1",
        "11.0.0.1",
        "169.253.255.255",
        "223.255.255.255",
        "::ffff:93.184.216.34",
        "2606:2800:220:1:248:1893:25c8:1946",
        "2001:4860:4860::8888",
        "[2a00:1450:4001::200e]",
        "64:ff9b::5db8:d822",
        "2002:5db8:d822::1",
    };
    for (const char* address : allowed) {
        EXPECT_FALSE(isBlockedAddress(address)) << address;
    }
}

TEST(ValidateFetchUrlTest, AcceptsHttpAndHttps) {
    const std::string exactly_max = "http://example.com/" + std::string(2048 - 19, 'a');
    ASSERT_EQ(exactly_max.size(), 2048u);
    const std::string valid[] = {
        "http://example.com/a.mp4",
        "https://example.com:8443/x?sig=abc#t=1",
        "HTTPS://EXAMPLE.COM/",
        "http://user:pass@example.com/v.mp4",
        "http://[2001:db8::1]/x",
        "http://127.0.0.1/x",
        exactly_max,
    };
    for (const std::string& url : valid) {
        Status status = validateFetchUrl(url);
        EXPECT_TRUE(status.ok()) << url << ": " << status.error().message();
    }
}

TEST(ValidateFetchUrlTest, RejectsOtherSchemesAndShapes) {
    struct Case {
        std::string url;
        std::string expected_part;
    };
    const Case cases[] = {
        {"ftp://example.com/a", "scheme 'ftp' is not supported"},
        {"file:///etc/passwd", "scheme 'file' is not supported"},
        {"gopher://example.com/", "scheme 'gopher' is not supported"},
        {"javascript:alert(1)", "scheme 'javascript' is not supported"},
        {"http://", "host is missing"},
        {"http:///path", "host is missing"},
        {"http:/example.com", "host is missing"},
        {"https://:443/x", "host is missing"},
        {"example.com/a.mp4", "expected an absolute http or https URL"},
        {"", "expected an absolute http or https URL"},
        {"http://example.com/" + std::string(2030, 'a'), "the maximum is 2048"},
        {"http://exa mple.com/", "not a valid URL"},
        {"http://example.com:99999/", "port"},
    };
    for (const Case& test_case : cases) {
        Status status = validateFetchUrl(test_case.url);
        ASSERT_FALSE(status.ok()) << test_case.url;
        EXPECT_EQ(status.error().code(), ErrorCode::InvalidArgument) << test_case.url;
        EXPECT_TRUE(contains(status.error().message(), "invalid url")) << status.error().message();
        EXPECT_TRUE(contains(status.error().message(), test_case.expected_part))
            << status.error().message();
    }
}

TEST(ValidateFetchUrlTest, KeepsSecretsOutOfMessages) {
    Status status = validateFetchUrl("ftp://user:hunter2@example.com/a.mp4?signature=s3cr3t");
    ASSERT_FALSE(status.ok());
    EXPECT_FALSE(contains(status.error().message(), "hunter2")) << status.error().message();
    EXPECT_FALSE(contains(status.error().message(), "s3cr3t")) << status.error().message();
    EXPECT_TRUE(contains(status.error().message(), "ftp://example.com/a.mp4"))
        << status.error().message();
}

// An httplib server on 127.0.0.1, port chosen by the kernel, with the routes the fetch tests
// need. Each test gets a fresh server and a fresh temporary directory.
class UrlFetcherTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char dir_template[] = "/tmp/bitmill-net-test-XXXXXX";
        ASSERT_NE(mkdtemp(dir_template), nullptr);
        temp_dir_ = dir_template;
        output_ = temp_dir_ / "download.bin";

        addRoutes();
        port_ = server_.bind_to_any_port("127.0.0.1");
        ASSERT_GT(port_, 0);
        server_thread_ = startServer(server_);
        ASSERT_TRUE(server_.is_running());
    }

    void TearDown() override {
        server_.stop();
        if (server_thread_.joinable()) {
            server_thread_.join();
        }
        std::error_code ignored;
        fs::remove_all(temp_dir_, ignored);
    }

    std::string url(std::string_view path) const {
        return fmt::format("http://127.0.0.1:{}{}", port_, path);
    }

    // Options that allow the test server and nothing else that is blocked.
    FetchOptions allowLoopback() const {
        FetchOptions options;
        options.max_bytes = 1 << 20;
        options.timeout_seconds = 10;
        options.allow_list = {"127.0.0.1/32"};
        return options;
    }

    Result<FetchResult> fetch(std::string_view path, const FetchOptions& options) {
        return fetchToFile(url(path), output_.string(), options);
    }

    void addRoutes() {
        server_.Get("/file", [](const httplib::Request&, httplib::Response& response) {
            response.set_content(patternBytes(kFileSize), "video/mp4");
        });
        server_.Get("/empty", [](const httplib::Request&, httplib::Response& response) {
            response.status = 204;
        });

        // /chain/N redirects N times before the body; odd hops send absolute Location values,
        // even hops relative ones.
        server_.Get(R"(/chain/(\d+))", [this](const httplib::Request& request,
                                              httplib::Response& response) {
            const int remaining = std::stoi(request.matches[1]);
            if (remaining == 0) {
                response.set_content("done", "text/plain");
                return;
            }
            const std::string next = std::to_string(remaining - 1);
            response.set_redirect(remaining % 2 == 1 ? url("/chain/" + next) : next, 302);
        });

        addRedirect("/to-metadata", "http://169.254.169.254/latest/meta-data/");
        addRedirect("/to-ipv6-loopback", "http://[::1]:{port}/file");
        addRedirect("/to-private", "http://10.1.2.3/file");
        addRedirect("/to-mapped", "http://[::ffff:169.254.169.254]/");
        addRedirect("/to-file", "file:///etc/passwd");
        server_.Get("/no-location", [](const httplib::Request&, httplib::Response& response) {
            response.status = 302;
        });

        server_.Get("/big", [](const httplib::Request&, httplib::Response& response) {
            response.set_content(patternBytes(kLargeBodySize), "application/octet-stream");
        });
        server_.Get("/big-chunked", [](const httplib::Request&, httplib::Response& response) {
            response.set_chunked_content_provider(
                "application/octet-stream", [](size_t offset, httplib::DataSink& sink) {
                    if (offset >= static_cast<size_t>(kLargeBodySize)) {
                        sink.done();
                        return true;
                    }
                    const std::string chunk(1024, 'c');
                    return sink.write(chunk.data(), chunk.size());
                });
        });

        server_.Get("/slow", [](const httplib::Request&, httplib::Response& response) {
            std::this_thread::sleep_for(std::chrono::seconds(2));
            response.set_content("late", "text/plain");
        });
        server_.Get("/missing", [](const httplib::Request&, httplib::Response& response) {
            response.status = 404;
            response.set_content("not here", "text/plain");
        });
        server_.Get("/busy", [](const httplib::Request&, httplib::Response& response) {
            response.status = 503;
        });
    }

    // Adds a route that redirects to `location`, where "{port}" stands for the server port
    // (known only after bind).
    void addRedirect(const std::string& path, std::string location) {
        server_.Get(path, [this, location](const httplib::Request&, httplib::Response& response) {
            std::string target = location;
            if (const size_t at = target.find("{port}"); at != std::string::npos) {
                target.replace(at, std::string_view("{port}").size(), std::to_string(port_));
            }
            response.set_redirect(target, 302);
        });
    }

    httplib::Server server_;
    std::thread server_thread_;
    int port_ = 0;
    fs::path temp_dir_;
    fs::path output_;
};

TEST_F(UrlFetcherTest, DownloadsBodyToFile) {
    Result<FetchResult> result = fetch("/file", allowLoopback());
    ASSERT_TRUE(result.ok()) << result.error().message();
    EXPECT_EQ(result->bytes, kFileSize);
    EXPECT_EQ(result->content_type, "video/mp4");
    EXPECT_EQ(result->final_url, url("/file"));
    ASSERT_TRUE(fs::exists(output_));
    EXPECT_EQ(static_cast<int64_t>(fs::file_size(output_)), kFileSize);
    EXPECT_TRUE(readFile(output_) == patternBytes(kFileSize));
}

TEST_F(UrlFetcherTest, DownloadsEmptyBody) {
    Result<FetchResult> result = fetch("/empty", allowLoopback());
    ASSERT_TRUE(result.ok()) << result.error().message();
    EXPECT_EQ(result->bytes, 0);
    ASSERT_TRUE(fs::exists(output_));
    EXPECT_EQ(fs::file_size(output_), 0u);
}

TEST_F(UrlFetcherTest, RejectsLoopbackWithoutAllowList) {
    FetchOptions options = allowLoopback();
    options.allow_list.clear();
    Result<FetchResult> result = fetch("/file", options);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().code(), ErrorCode::PermissionDenied);
    EXPECT_TRUE(contains(result.error().message(), "'127.0.0.1' is a loopback address"))
        << result.error().message();
    EXPECT_TRUE(contains(result.error().message(), "BITMILL_URL_ALLOW"))
        << result.error().message();
    EXPECT_FALSE(fs::exists(output_));
}

// "localhost" is not an address literal, so this exercises the check that runs in curl's
// socket callback after name resolution.
TEST_F(UrlFetcherTest, RejectsResolvedLoopbackName) {
    FetchOptions options = allowLoopback();
    options.allow_list.clear();
    Result<FetchResult> result =
        fetchToFile(fmt::format("http://localhost:{}/file", port_), output_.string(), options);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().code(), ErrorCode::PermissionDenied);
    const std::string& message = result.error().message();
    EXPECT_TRUE(contains(message, "url host 'localhost' resolves to")) << message;
    EXPECT_TRUE(contains(message, "127.0.0.1") || contains(message, "::1")) << message;
    EXPECT_TRUE(contains(message, "a loopback address")) << message;
    EXPECT_FALSE(fs::exists(output_));
}

TEST_F(UrlFetcherTest, AllowsHostNameEntry) {
    FetchOptions options = allowLoopback();
    options.allow_list = {"LOCALHOST"};
    Result<FetchResult> result =
        fetchToFile(fmt::format("http://localhost:{}/file", port_), output_.string(), options);
    ASSERT_TRUE(result.ok()) << result.error().message();
    EXPECT_EQ(result->bytes, kFileSize);
}

TEST_F(UrlFetcherTest, FollowsRedirectsUpToLimit) {
    FetchOptions options = allowLoopback();
    options.max_redirects = 5;
    Result<FetchResult> result = fetch("/chain/5", options);
    ASSERT_TRUE(result.ok()) << result.error().message();
    EXPECT_EQ(result->final_url, url("/chain/0"));
    EXPECT_EQ(readFile(output_), "done");
}

TEST_F(UrlFetcherTest, RejectsRedirectsOverLimit) {
    FetchOptions options = allowLoopback();
    options.max_redirects = 5;
    Result<FetchResult> result = fetch("/chain/6", options);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().code(), ErrorCode::InvalidArgument);
    EXPECT_TRUE(contains(result.error().message(), "more than 5 redirects"))
        << result.error().message();
    EXPECT_FALSE(fs::exists(output_));
}

TEST_F(UrlFetcherTest, RejectsAnyRedirectWhenLimitIsZero) {
    FetchOptions options = allowLoopback();
    options.max_redirects = 0;
    Result<FetchResult> result = fetch("/chain/1", options);
    ASSERT_FALSE(result.ok());
    EXPECT_TRUE(contains(result.error().message(), "more than 0 redirects"))
        << result.error().message();
}

TEST_F(UrlFetcherTest, RejectsRedirectToBlockedAddresses) {
    struct Case {
        const char* path;
        const char* expected_part;
    };
    const Case cases[] = {
        {"/to-metadata", "'169.254.169.254' is a cloud metadata address"},
        {"/to-ipv6-loopback", "'[::1]' is a loopback address"},
        {"/to-private", "'10.1.2.3' is a private address"},
        {"/to-mapped", "'[::ffff:169.254.169.254]' is a cloud metadata address"},
    };
    for (const Case& test_case : cases) {
        Result<FetchResult> result = fetch(test_case.path, allowLoopback());
        ASSERT_FALSE(result.ok()) << test_case.path;
        EXPECT_EQ(result.error().code(), ErrorCode::PermissionDenied) << test_case.path;
        EXPECT_TRUE(contains(result.error().message(), test_case.expected_part))
            << result.error().message();
        EXPECT_FALSE(fs::exists(output_)) << test_case.path;
    }
}

TEST_F(UrlFetcherTest, RejectsRedirectToOtherScheme) {
    Result<FetchResult> result = fetch("/to-file", allowLoopback());
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().code(), ErrorCode::InvalidArgument);
    EXPECT_TRUE(contains(result.error().message(), "scheme 'file' is not supported"))
        << result.error().message();
}

TEST_F(UrlFetcherTest, RejectsRedirectWithoutLocation) {
    Result<FetchResult> result = fetch("/no-location", allowLoopback());
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().code(), ErrorCode::InvalidArgument);
    EXPECT_TRUE(contains(result.error().message(), "status 302 but no Location header"))
        << result.error().message();
}

TEST_F(UrlFetcherTest, RejectsContentLengthOverLimit) {
    FetchOptions options = allowLoopback();
    options.max_bytes = kSmallLimit;
    Result<FetchResult> result = fetch("/big", options);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().code(), ErrorCode::ResourceExhausted);
    const std::string& message = result.error().message();
    EXPECT_TRUE(contains(message, "max_fetch_bytes (10240 bytes)")) << message;
    EXPECT_TRUE(contains(message, "Content-Length 102400")) << message;
    EXPECT_FALSE(fs::exists(output_));
}

TEST_F(UrlFetcherTest, RejectsChunkedBodyOverLimit) {
    FetchOptions options = allowLoopback();
    options.max_bytes = kSmallLimit;
    Result<FetchResult> result = fetch("/big-chunked", options);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().code(), ErrorCode::ResourceExhausted);
    const std::string& message = result.error().message();
    EXPECT_TRUE(contains(message, "max_fetch_bytes (10240 bytes)")) << message;
    EXPECT_TRUE(contains(message, "response body")) << message;
    EXPECT_FALSE(fs::exists(output_));
}

TEST_F(UrlFetcherTest, AcceptsBodyExactlyAtLimit) {
    FetchOptions options = allowLoopback();
    options.max_bytes = kFileSize;
    Result<FetchResult> result = fetch("/file", options);
    ASSERT_TRUE(result.ok()) << result.error().message();
    EXPECT_EQ(result->bytes, kFileSize);
}

TEST_F(UrlFetcherTest, TimesOutOnSlowServer) {
    FetchOptions options = allowLoopback();
    options.timeout_seconds = 1;
    const auto started = std::chrono::steady_clock::now();
    Result<FetchResult> result = fetch("/slow", options);
    const auto elapsed = std::chrono::steady_clock::now() - started;
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().code(), ErrorCode::DeadlineExceeded);
    EXPECT_TRUE(contains(result.error().message(), "timed out after 1 s"))
        << result.error().message();
    EXPECT_LT(elapsed, std::chrono::milliseconds(1800));
    EXPECT_FALSE(fs::exists(output_));
}

TEST_F(UrlFetcherTest, MapsClientErrorToInvalidArgument) {
    Result<FetchResult> result = fetch("/missing?signature=s3cr3t", allowLoopback());
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().code(), ErrorCode::InvalidArgument);
    EXPECT_FALSE(result.error().retryable());
    EXPECT_TRUE(contains(result.error().message(), "server responded with status 404"))
        << result.error().message();
    EXPECT_FALSE(contains(result.error().message(), "s3cr3t")) << result.error().message();
    EXPECT_FALSE(fs::exists(output_));
}

TEST_F(UrlFetcherTest, MapsServerErrorToUnavailable) {
    Result<FetchResult> result = fetch("/busy", allowLoopback());
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().code(), ErrorCode::Unavailable);
    EXPECT_TRUE(result.error().retryable());
    EXPECT_TRUE(contains(result.error().message(), "server responded with status 503"))
        << result.error().message();
    EXPECT_FALSE(fs::exists(output_));
}

TEST_F(UrlFetcherTest, ReportsRefusedConnectionAsUnavailable) {
    const int free_port = unusedLoopbackPort();
    ASSERT_GT(free_port, 0);
    Result<FetchResult> result = fetchToFile(fmt::format("http://127.0.0.1:{}/", free_port),
                                             output_.string(), allowLoopback());
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().code(), ErrorCode::Unavailable);
    EXPECT_TRUE(contains(result.error().message(), "could not connect"))
        << result.error().message();
}

TEST_F(UrlFetcherTest, RejectsInvalidAllowListEntry) {
    FetchOptions options = allowLoopback();
    options.allow_list = {"10.0.0.0/99"};
    Result<FetchResult> result = fetch("/file", options);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().code(), ErrorCode::InvalidArgument);
    EXPECT_TRUE(contains(result.error().message(), "10.0.0.0/99")) << result.error().message();
}

TEST(UrlFetcherIpv6Test, FetchesFromIpv6LoopbackWhenAllowed) {
    httplib::Server server;
    server.Get("/file", [](const httplib::Request&, httplib::Response& response) {
        response.set_content(patternBytes(kFileSize), "video/mp4");
    });
    const int port = server.bind_to_any_port("::1");
    if (port <= 0) {
        GTEST_SKIP() << "no IPv6 loopback on this machine";
    }
    std::thread server_thread = startServer(server);

    char dir_template[] = "/tmp/bitmill-net-test-XXXXXX";
    ASSERT_NE(mkdtemp(dir_template), nullptr);
    const fs::path output = fs::path(dir_template) / "download.bin";
    const std::string url = fmt::format("http://[::1]:{}/file", port);

    FetchOptions options;
    options.max_bytes = 1 << 20;
    options.timeout_seconds = 10;
    options.allow_list = {"127.0.0.1/32"};
    Result<FetchResult> blocked = fetchToFile(url, output.string(), options);

    options.allow_list = {"[::1]"};
    Result<FetchResult> allowed = fetchToFile(url, output.string(), options);

    server.stop();
    server_thread.join();
    const int64_t downloaded =
        fs::exists(output) ? static_cast<int64_t>(fs::file_size(output)) : -1;
    fs::remove_all(dir_template);

    ASSERT_FALSE(blocked.ok());
    EXPECT_EQ(blocked.error().code(), ErrorCode::PermissionDenied);
    ASSERT_TRUE(allowed.ok()) << allowed.error().message();
    EXPECT_EQ(allowed->bytes, kFileSize);
    EXPECT_EQ(downloaded, kFileSize);
}

}  // namespace
}  // namespace bitmill::net
