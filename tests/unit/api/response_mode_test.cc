// Response mode selection: the five rules of the API contract, in order,
// over the headers that ittybit's SDKs send.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "api/http_util.h"

namespace bitmill::api {
namespace {

struct ModeCase {
    const char* name;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string default_mode;
    ResponseMode expected;
};

httplib::Request requestWith(const std::vector<std::pair<std::string, std::string>>& headers) {
    httplib::Request request;
    for (const auto& [name, value] : headers) {
        request.headers.emplace(name, value);
    }
    return request;
}

constexpr auto kBare = ResponseMode::Bare;
constexpr auto kEnvelope = ResponseMode::Envelope;

const std::vector<ModeCase> kModeCases = {
    // Rule 5: no headers, the configured default.
    {"no headers, default bare", {}, "bare", kBare},
    {"no headers, default envelope", {}, "envelope", kEnvelope},
    // Rule 1: the requested version.
    {"version 2025-01-01", {{"Accept-Version", "2025-01-01"}}, "bare", kEnvelope},
    {"version before 2025-08-20", {{"Accept-Version", "2024-06-30"}}, "bare", kEnvelope},
    {"version 2025-08-19", {{"Accept-Version", "2025-08-19"}}, "bare", kEnvelope},
    {"version 2025-08-20", {{"Accept-Version", "2025-08-20"}}, "envelope", kBare},
    {"later version", {{"Accept-Version", "2026-02-01"}}, "envelope", kBare},
    {"version latest", {{"Accept-Version", "latest"}}, "envelope", kBare},
    {"underscore spelling", {{"ACCEPT_VERSION", "2025-01-01"}}, "bare", kEnvelope},
    {"lower-case header", {{"accept-version", "2025-01-01"}}, "bare", kEnvelope},
    {"old version beats SDK 1.0.0",
     {{"Accept-Version", "2025-01-01"}, {"X-Fern-SDK-Version", "1.0.0"}},
     "bare",
     kEnvelope},
    {"unparsable version falls through", {{"Accept-Version", "v2"}}, "envelope", kEnvelope},
    // Rule 2: TypeScript 0.9.2 sends the new date but parses envelopes.
    {"typescript 0.9.2 with new version",
     {{"Accept-Version", "2025-08-20"},
      {"X-Fern-SDK-Name", "@ittybit/sdk"},
      {"X-Fern-SDK-Version", "0.9.2"}},
     "bare",
     kEnvelope},
    {"python 0.9.2 with new version",
     {{"Accept-Version", "2025-08-20"},
      {"X-Fern-SDK-Name", "ittybit"},
      {"X-Fern-SDK-Version", "0.9.2"}},
     "envelope",
     kBare},
    // Rule 3: SDK 1.0.0 and later, and TypeScript 0.10.1 to 0.10.x.
    {"sdk 1.0.0", {{"X-Fern-SDK-Version", "1.0.0"}}, "envelope", kBare},
    {"sdk 2.3.4", {{"X-Fern-SDK-Version", "2.3.4"}}, "envelope", kBare},
    {"sdk 1.0.0 pre-release", {{"X-Fern-SDK-Version", "1.0.0-rc.1"}}, "envelope", kBare},
    {"typescript 0.10.1",
     {{"X-Fern-SDK-Name", "@ittybit/sdk"}, {"X-Fern-SDK-Version", "0.10.1"}},
     "envelope",
     kBare},
    {"typescript 0.10.7",
     {{"X-Fern-SDK-Name", "@ittybit/sdk"}, {"X-Fern-SDK-Version", "0.10.7"}},
     "envelope",
     kBare},
    // Rule 4: other versions below 1.0.0.
    {"typescript 0.10.0",
     {{"X-Fern-SDK-Name", "@ittybit/sdk"}, {"X-Fern-SDK-Version", "0.10.0"}},
     "bare",
     kEnvelope},
    {"python 0.10.1",
     {{"X-Fern-SDK-Name", "ittybit"}, {"X-Fern-SDK-Version", "0.10.1"}},
     "bare",
     kEnvelope},
    {"sdk 0.8.3", {{"X-Fern-SDK-Version", "0.8.3"}}, "bare", kEnvelope},
    {"typescript 0.9.2 without version",
     {{"X-Fern-SDK-Name", "@ittybit/sdk"}, {"X-Fern-SDK-Version", "0.9.2"}},
     "bare",
     kEnvelope},
};

TEST(ResponseModeTest, FollowsContractRules) {
    for (const auto& mode_case : kModeCases) {
        const httplib::Request request = requestWith(mode_case.headers);
        EXPECT_EQ(chooseResponseMode(request, mode_case.default_mode), mode_case.expected)
            << mode_case.name;
    }
}

TEST(ResponseModeTest, ReportsRequestedVersion) {
    EXPECT_EQ(
        responseVersion(requestWith({{"Accept-Version", "2024-11-05"}}), ResponseMode::Envelope),
        "2024-11-05");
    EXPECT_EQ(responseVersion(requestWith({}), ResponseMode::Envelope), "2025-01-01");
    EXPECT_EQ(
        responseVersion(requestWith({{"Accept-Version", "2025-08-20"}}), ResponseMode::Envelope),
        "2025-01-01");
    EXPECT_EQ(responseVersion(requestWith({}), ResponseMode::Bare), "2025-08-20");
}

}  // namespace
}  // namespace bitmill::api
