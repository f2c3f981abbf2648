// GoogleTest fixture and assertions for the end-to-end suites: a bitmill
// server per test (started on first use), scratch space for downloads, and
// the server log printed when a test fails.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "api_session.h"
#include "http_client.h"
#include "media_generator.h"
#include "media_inspect.h"
#include "process.h"
#include "server_process.h"
#include "test_data.h"

namespace bitmill::e2e {

class E2eTest : public ::testing::Test {
protected:
    void TearDown() override;

    // The test's default server (default options), started on first use.
    ServerProcess& server();
    // A session with the default server's key and listeners.
    ApiSession& api();

    // Starts another server with its own data folder and options; its log is
    // printed too when the test fails. The server lives until the test ends.
    ServerProcess& startServer(ServerOptions options = {});
    // A session for `server` as it listens now (build a new one after a
    // restart, because the ports change).
    static ApiSession sessionFor(const ServerProcess& server);

    // A folder for this test's downloads, removed after a passing test.
    const std::filesystem::path& scratchDir();

    // Downloads the output file of a completed task into scratchDir() and
    // returns its path; throws when the task has no output url.
    std::filesystem::path downloadOutput(ApiSession& session, const Json& task);
    std::filesystem::path downloadOutput(const Json& task) { return downloadOutput(api(), task); }

    // Uploads `local_file` to the default server and returns the File.
    Json upload(const std::filesystem::path& local_file) { return api().uploadFile(local_file); }

private:
    std::vector<std::unique_ptr<ServerProcess>> servers_;
    ServerProcess* default_server_ = nullptr;
    std::unique_ptr<ApiSession> default_session_;
    std::unique_ptr<TempDir> scratch_;
};

// Success when the task's status is "completed"; the message shows the
// task's error and the whole task otherwise.
::testing::AssertionResult taskCompleted(const Json& task);
// Success when the status is "failed" and `error` is a non-empty string.
::testing::AssertionResult taskFailedWithError(const Json& task);
// Success for a string such as "2025-01-01T01:23:45.678Z".
::testing::AssertionResult isRfc3339Millis(const Json& value);
// Success for a string of `prefix` followed by 16 base62 characters.
::testing::AssertionResult isPrefixedId(const Json& value, const std::string& prefix);
// Case-insensitive substring test.
bool containsText(const std::string& haystack, const std::string& needle);
// Checks (with EXPECT_*) the fields a strict client requires of a File and
// their JSON types: id, media_id, object, kind, type, filesize, url, status,
// created, updated.
void expectFileShape(const Json& file);
// The same for a Task: id, object, kind, status, progress, error, input,
// options, output, created, updated.
void expectTaskShape(const Json& task);
// True when GET /healthz returns 200.
bool isHealthy(const ServerProcess& server);
// The "message" of an error body in bare or envelope form ("" when absent).
std::string errorMessage(const HttpResponse& response);

}  // namespace bitmill::e2e
