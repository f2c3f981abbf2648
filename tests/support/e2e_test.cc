// The end-to-end fixture and shared assertions.
#include "e2e_test.h"

#include <algorithm>
#include <iostream>
#include <regex>

namespace bitmill::e2e {

void E2eTest::TearDown() {
    if (!HasFailure()) {
        return;
    }
    for (const auto& server : servers_) {
        server->keepDataDir();
        std::cerr << "---- bitmill log (" << server->logPath().string() << "), last lines:\n"
                  << server->logTail() << "---- end of log\n";
    }
    if (scratch_) {
        scratch_->keep();
        std::cerr << "test files kept in " << scratch_->path().string() << "\n";
    }
}

ServerProcess& E2eTest::startServer(ServerOptions options) {
    servers_.push_back(std::make_unique<ServerProcess>(std::move(options)));
    servers_.back()->start();
    return *servers_.back();
}

ServerProcess& E2eTest::server() {
    if (default_server_ == nullptr) {
        default_server_ = &startServer();
    }
    return *default_server_;
}

ApiSession& E2eTest::api() {
    if (!default_session_) {
        default_session_ = std::make_unique<ApiSession>(server());
    }
    return *default_session_;
}

ApiSession E2eTest::sessionFor(const ServerProcess& server) { return ApiSession(server); }

const std::filesystem::path& E2eTest::scratchDir() {
    if (!scratch_) {
        scratch_ = std::make_unique<TempDir>("bitmill-e2e-test");
    }
    return scratch_->path();
}

std::filesystem::path E2eTest::downloadOutput(ApiSession& session, const Json& task) {
    if (!task.contains("output") || !task["output"].is_object() ||
        !task["output"].contains("url") || !task["output"]["url"].is_string()) {
        throw std::runtime_error("task has no output url: " + task.dump());
    }
    std::string url = task["output"]["url"].get<std::string>();
    std::string name = url.substr(url.find_last_of('/') + 1);
    name = name.substr(0, name.find('?'));
    std::filesystem::path destination =
        scratchDir() / (task.value("id", std::string("task")) + "-" + name);
    session.download(url, destination);
    return destination;
}

::testing::AssertionResult taskCompleted(const Json& task) {
    if (task.value("status", "") == "completed") {
        return ::testing::AssertionSuccess();
    }
    std::string error = task.contains("error") && task["error"].is_string()
                            ? task["error"].get<std::string>()
                            : "(no error)";
    return ::testing::AssertionFailure()
           << "task " << task.value("id", "?") << " is '" << task.value("status", "?")
           << "' with error: " << error << "\nfull task: " << task.dump(2);
}

::testing::AssertionResult taskFailedWithError(const Json& task) {
    if (task.value("status", "") != "failed") {
        return ::testing::AssertionFailure() << "task " << task.value("id", "?") << " is '"
                                             << task.value("status", "?")
                                             << "', expected failed: " << task.dump(2);
    }
    if (!task.contains("error") || !task["error"].is_string() ||
        task["error"].get<std::string>().empty()) {
        return ::testing::AssertionFailure()
               << "failed task has no error message: " << task.dump(2);
    }
    return ::testing::AssertionSuccess();
}

::testing::AssertionResult isRfc3339Millis(const Json& value) {
    static const std::regex kPattern(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)");
    if (value.is_string() && std::regex_match(value.get<std::string>(), kPattern)) {
        return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure()
           << value.dump() << " is not an RFC 3339 UTC time with milliseconds";
}

::testing::AssertionResult isPrefixedId(const Json& value, const std::string& prefix) {
    static const std::regex kSuffix("[0-9A-Za-z]{16}");
    if (value.is_string()) {
        const std::string text = value.get<std::string>();
        if (text.rfind(prefix, 0) == 0 && std::regex_match(text.substr(prefix.size()), kSuffix)) {
            return ::testing::AssertionSuccess();
        }
    }
    return ::testing::AssertionFailure()
           << value.dump() << " is not '" << prefix << "' followed by 16 base62 characters";
}

bool containsText(const std::string& haystack, const std::string& needle) {
    auto found = std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(),
                             [](char a, char b) {
                                 return std::tolower(static_cast<unsigned char>(a)) ==
                                        std::tolower(static_cast<unsigned char>(b));
                             });
    return found != haystack.end();
}

void expectFileShape(const Json& file) {
    ASSERT_TRUE(file.is_object()) << file.dump();
    EXPECT_TRUE(isPrefixedId(file.value("id", Json()), "file_"));
    EXPECT_TRUE(isPrefixedId(file.value("media_id", Json()), "med_"));
    EXPECT_TRUE(file.value("object", Json()).is_string()) << file.dump();
    EXPECT_TRUE(file.value("kind", Json()).is_string()) << file.dump();
    EXPECT_TRUE(file.value("type", Json()).is_string()) << file.dump();
    EXPECT_TRUE(file.value("filesize", Json()).is_number_integer()) << file.dump();
    EXPECT_TRUE(file.value("url", Json()).is_string()) << file.dump();
    EXPECT_TRUE(file.value("status", Json()).is_string()) << file.dump();
    EXPECT_TRUE(isRfc3339Millis(file.value("created", Json())));
    EXPECT_TRUE(isRfc3339Millis(file.value("updated", Json())));
    for (const char* integer_field : {"width", "height", "frames", "bitrate"}) {
        if (file.contains(integer_field) && !file[integer_field].is_null()) {
            EXPECT_TRUE(file[integer_field].is_number_integer())
                << integer_field << " is not an integer: " << file.dump();
        }
    }
    for (const char* number_field : {"duration", "fps", "rotation"}) {
        if (file.contains(number_field) && !file[number_field].is_null()) {
            EXPECT_TRUE(file[number_field].is_number())
                << number_field << " is not a number: " << file.dump();
        }
    }
}

void expectTaskShape(const Json& task) {
    ASSERT_TRUE(task.is_object()) << task.dump();
    EXPECT_TRUE(isPrefixedId(task.value("id", Json()), "task_"));
    EXPECT_EQ(task.value("object", Json()), "task") << task.dump();
    EXPECT_TRUE(task.value("kind", Json()).is_string()) << task.dump();
    EXPECT_TRUE(task.value("status", Json()).is_string()) << task.dump();
    EXPECT_TRUE(task.value("progress", Json()).is_number_integer()) << task.dump();
    ASSERT_TRUE(task.contains("error")) << task.dump();
    EXPECT_TRUE(task["error"].is_null() || task["error"].is_string()) << task.dump();
    ASSERT_TRUE(task.contains("input")) << task.dump();
    EXPECT_TRUE(task["input"].is_object() || task["input"].is_null()) << task.dump();
    ASSERT_TRUE(task.contains("options")) << task.dump();
    EXPECT_TRUE(task["options"].is_object()) << task.dump();
    ASSERT_TRUE(task.contains("output")) << task.dump();
    EXPECT_TRUE(task["output"].is_object() || task["output"].is_null()) << task.dump();
    EXPECT_TRUE(isRfc3339Millis(task.value("created", Json())));
    EXPECT_TRUE(isRfc3339Millis(task.value("updated", Json())));
}

bool isHealthy(const ServerProcess& server) {
    HttpClient client(server.apiUrl(), server.apiKey());
    return client.get("/healthz").status == 200;
}

std::string errorMessage(const HttpResponse& response) {
    try {
        Json body = response.json();
        if (body.contains("message") && body["message"].is_string()) {
            return body["message"].get<std::string>();
        }
        if (body.contains("error") && body["error"].is_object()) {
            return body["error"].value("message", "");
        }
    } catch (const std::exception&) {
        return response.body;
    }
    return {};
}

}  // namespace bitmill::e2e
