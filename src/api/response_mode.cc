// Selection of the response body format (bare or envelope) from the
// version and SDK headers that ittybit's SDKs send.
#include <charconv>
#include <optional>
#include <string>
#include <string_view>

#include "api/http_util.h"

namespace bitmill::api {

namespace {

// The first API version whose responses are bare objects and arrays.
constexpr std::string_view kFirstBareVersion = "2025-08-20";

struct SemanticVersion {
    int major = 0;
    int minor = 0;
    int patch = 0;
};

enum class VersionChoice { None, Bare, Envelope };

bool isDigit(char c) {
    return c >= '0' && c <= '9';
}

// True for "YYYY-MM-DD".
bool isIsoDate(std::string_view text) {
    if (text.size() != 10 || text[4] != '-' || text[7] != '-') {
        return false;
    }
    for (size_t i = 0; i < text.size(); ++i) {
        if (i != 4 && i != 7 && !isDigit(text[i])) {
            return false;
        }
    }
    return true;
}

std::optional<int> parseNumber(std::string_view text) {
    int value = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size() || text.empty()) {
        return std::nullopt;
    }
    return value;
}

// Parses "1.0.0", "v0.9.2" or "1.2.3-beta.1" (the pre-release part is
// ignored); nullopt for anything else.
std::optional<SemanticVersion> parseSemanticVersion(std::string_view text) {
    if (!text.empty() && (text.front() == 'v' || text.front() == 'V')) {
        text.remove_prefix(1);
    }
    if (auto suffix = text.find_first_of("-+"); suffix != std::string_view::npos) {
        text = text.substr(0, suffix);
    }
    auto first_dot = text.find('.');
    if (first_dot == std::string_view::npos) {
        return std::nullopt;
    }
    auto second_dot = text.find('.', first_dot + 1);
    auto major = parseNumber(text.substr(0, first_dot));
    std::optional<int> minor;
    std::optional<int> patch = 0;
    if (second_dot == std::string_view::npos) {
        minor = parseNumber(text.substr(first_dot + 1));
    } else {
        minor = parseNumber(text.substr(first_dot + 1, second_dot - first_dot - 1));
        patch = parseNumber(text.substr(second_dot + 1));
    }
    if (!major || !minor || !patch) {
        return std::nullopt;
    }
    return SemanticVersion{*major, *minor, *patch};
}

std::string trimmed(std::string value) {
    auto first = value.find_first_not_of(" \t");
    if (first == std::string::npos) {
        return {};
    }
    auto last = value.find_last_not_of(" \t");
    return value.substr(first, last - first + 1);
}

// Returns the requested API version: Accept-Version, or the ACCEPT_VERSION
// spelling that the SDKs send for a version the user set.
std::string requestedVersion(const httplib::Request& request) {
    std::string version = trimmed(request.get_header_value("Accept-Version"));
    if (version.empty()) {
        version = trimmed(request.get_header_value("ACCEPT_VERSION"));
    }
    return version;
}

VersionChoice choiceForVersion(const std::string& version) {
    if (version == "latest") {
        return VersionChoice::Bare;
    }
    if (!isIsoDate(version)) {
        return VersionChoice::None;
    }
    // ISO dates of equal length compare correctly as strings.
    return version < kFirstBareVersion ? VersionChoice::Envelope : VersionChoice::Bare;
}

}  // namespace

ResponseMode chooseResponseMode(const httplib::Request& request, const std::string& default_mode) {
    const VersionChoice version_choice = choiceForVersion(requestedVersion(request));
    const std::string sdk_name = trimmed(request.get_header_value("X-Fern-SDK-Name"));
    const std::string sdk_version_text = trimmed(request.get_header_value("X-Fern-SDK-Version"));
    const auto sdk_version = parseSemanticVersion(sdk_version_text);
    const bool is_typescript_sdk = sdk_name == "@ittybit/sdk";

    // Rule 1: a version date before 2025-08-20 selects envelopes.
    if (version_choice == VersionChoice::Envelope) {
        return ResponseMode::Envelope;
    }

    // Rule 2: TypeScript SDK 0.9.2 sends the 2025-08-20 header but parses
    // envelopes.
    if (is_typescript_sdk && sdk_version && sdk_version->major == 0 && sdk_version->minor == 9 &&
        sdk_version->patch == 2) {
        return ResponseMode::Envelope;
    }

    // Rule 1, second half: a later version date selects bare bodies.
    if (version_choice == VersionChoice::Bare) {
        return ResponseMode::Bare;
    }

    // Rules 3 and 4: the SDK version decides.
    if (sdk_version) {
        if (sdk_version->major >= 1) {
            return ResponseMode::Bare;
        }
        if (is_typescript_sdk && sdk_version->minor == 10 && sdk_version->patch >= 1) {
            return ResponseMode::Bare;
        }
        return ResponseMode::Envelope;
    }

    // Rule 5. NOTE: an X-Fern-SDK-Version that is not a version number
    // falls through to the default instead of counting as "below 1.0.0".
    return default_mode == "envelope" ? ResponseMode::Envelope : ResponseMode::Bare;
}

std::string responseVersion(const httplib::Request& request, ResponseMode mode) {
    std::string version = requestedVersion(request);
    if (mode == ResponseMode::Envelope) {
        return choiceForVersion(version) == VersionChoice::Envelope ? version : "2025-01-01";
    }
    return choiceForVersion(version) == VersionChoice::Bare ? version
                                                            : std::string(kFirstBareVersion);
}

}  // namespace bitmill::api
