// "s3://" storage URL parsing, with an error for each mistake that names the
// value and how to fix it.
#include "storage/s3/s3_url.h"

#include <fmt/format.h>

#include <charconv>
#include <cstdlib>

#include "storage/blob_key.h"

namespace bitmill::storage::s3 {

namespace {

constexpr std::string_view kScheme = "s3://";
constexpr std::string_view kDefaultRegion = "us-east-1";

Error invalidUrl(std::string_view url, std::string_view problem) {
    return Error::invalidArgument(fmt::format("invalid storage URL '{}': {}", url, problem));
}

int hexValue(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

std::optional<std::string> percentDecode(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '%') {
            out.push_back(text[i]);
            continue;
        }
        if (i + 2 >= text.size()) {
            return std::nullopt;
        }
        int high = hexValue(text[i + 1]);
        int low = hexValue(text[i + 2]);
        if (high < 0 || low < 0) {
            return std::nullopt;
        }
        out.push_back(static_cast<char>(high * 16 + low));
        i += 2;
    }
    return out;
}

bool isBucketCharacter(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

// True when the bucket can be the first label of a virtual host name: 3 to
// 63 lowercase letters, digits and hyphens (the rules of "General purpose
// bucket naming rules" in the S3 User Guide, without dots).
bool isVirtualHostBucket(std::string_view bucket) {
    if (bucket.size() < 3 || bucket.size() > 63 || bucket.front() == '-' || bucket.back() == '-') {
        return false;
    }
    for (char c : bucket) {
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
            return false;
        }
    }
    return true;
}

Status checkBucket(std::string_view url, std::string_view bucket) {
    if (bucket.empty()) {
        return invalidUrl(url, "the bucket is missing. Use s3://BUCKET[/PREFIX][?endpoint=...]");
    }
    if (bucket.size() < 3 || bucket.size() > 255) {
        return invalidUrl(url,
                          fmt::format("bucket name '{}' must be 3 to 255 characters long", bucket));
    }
    for (char c : bucket) {
        if (!isBucketCharacter(c)) {
            return invalidUrl(url, fmt::format("bucket name '{}' may contain only letters, "
                                               "digits, '.', '-' and '_'",
                                               bucket));
        }
    }
    return okStatus();
}

Result<std::string> parsePrefix(std::string_view url, std::string_view raw_path) {
    std::optional<std::string> decoded = percentDecode(raw_path);
    if (!decoded) {
        return invalidUrl(url,
                          fmt::format("key prefix '{}' has an invalid percent-escape", raw_path));
    }
    std::string prefix = std::move(*decoded);
    while (!prefix.empty() && prefix.back() == '/') {
        prefix.pop_back();
    }
    if (prefix.empty()) {
        return prefix;
    }
    if (!checkBlobKey(prefix).ok()) {
        return invalidUrl(url, fmt::format("key prefix '{}' must be '/'-separated names "
                                           "without empty, '.' or '..' segments",
                                           prefix));
    }
    return prefix;
}

Status parseEndpoint(std::string_view url, std::string_view endpoint, S3Settings& settings) {
    const std::string fix = "Use endpoint=http://HOST:PORT or endpoint=https://HOST.";
    size_t scheme_end = endpoint.find("://");
    if (scheme_end == std::string_view::npos) {
        return invalidUrl(url, fmt::format("endpoint '{}' has no scheme. {}", endpoint, fix));
    }
    std::string_view scheme = endpoint.substr(0, scheme_end);
    if (scheme != "http" && scheme != "https") {
        return invalidUrl(url,
                          fmt::format("endpoint scheme '{}' is not supported. {}", scheme, fix));
    }
    std::string_view rest = endpoint.substr(scheme_end + 3);
    if (!rest.empty() && rest.back() == '/') {
        rest.remove_suffix(1);
    }
    if (rest.empty()) {
        return invalidUrl(url, fmt::format("endpoint '{}' has no host. {}", endpoint, fix));
    }
    if (rest.find_first_of("/?#@ ") != std::string_view::npos) {
        return invalidUrl(url, fmt::format("endpoint '{}' must be only a scheme, a host and a "
                                           "port, without a path, query or user name. {}",
                                           endpoint, fix));
    }
    // A port follows the last ':' unless that ':' is inside an IPv6 literal.
    size_t colon = rest.rfind(':');
    size_t bracket = rest.rfind(']');
    if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
        std::string_view port_text = rest.substr(colon + 1);
        int port = 0;
        auto [end, error] =
            std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
        if (error != std::errc() || end != port_text.data() + port_text.size() || port < 1 ||
            port > 65535 || colon == 0) {
            return invalidUrl(
                url, fmt::format("endpoint '{}' has an invalid host or port. {}", endpoint, fix));
        }
    }
    settings.endpoint_scheme = std::string(scheme);
    settings.endpoint_host = std::string(rest);
    return okStatus();
}

Result<bool> parseBool(std::string_view url, std::string_view name, std::string_view value) {
    if (value == "true" || value == "1") {
        return true;
    }
    if (value == "false" || value == "0") {
        return false;
    }
    return invalidUrl(url, fmt::format("{}='{}' is not a boolean. Use true or false", name, value));
}

Result<int64_t> parsePartSize(std::string_view url, std::string_view value) {
    int64_t bytes = 0;
    auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), bytes);
    if (error != std::errc() || end != value.data() + value.size() || bytes < kMinPartBytes ||
        bytes > kMaxPartBytes) {
        return invalidUrl(url, fmt::format("part_size='{}' must be a number of bytes from {} "
                                           "(5 MiB) to {} (5 GiB)",
                                           value, kMinPartBytes, kMaxPartBytes));
    }
    return bytes;
}

struct UrlParameters {
    std::optional<std::string> endpoint;
    std::optional<std::string> region;
    std::optional<bool> path_style;
    std::optional<int64_t> part_bytes;
};

Result<UrlParameters> parseParameters(std::string_view url, std::string_view query) {
    UrlParameters parameters;
    size_t start = 0;
    while (start < query.size()) {
        size_t end = query.find('&', start);
        if (end == std::string_view::npos) {
            end = query.size();
        }
        std::string_view pair = query.substr(start, end - start);
        start = end + 1;
        if (pair.empty()) {
            continue;
        }
        size_t equals = pair.find('=');
        std::string_view name = pair.substr(0, equals);
        std::optional<std::string> value =
            percentDecode(equals == std::string_view::npos ? "" : pair.substr(equals + 1));
        if (!value) {
            return invalidUrl(url,
                              fmt::format("parameter '{}' has an invalid percent-escape", name));
        }
        if (value->empty()) {
            return invalidUrl(
                url, fmt::format("parameter '{}' has no value. Write {}=VALUE", name, name));
        }
        if (name == "endpoint") {
            parameters.endpoint = std::move(*value);
        } else if (name == "region") {
            parameters.region = std::move(*value);
        } else if (name == "path_style") {
            BM_ASSIGN_OR_RETURN(parameters.path_style, parseBool(url, name, *value));
        } else if (name == "part_size") {
            BM_ASSIGN_OR_RETURN(parameters.part_bytes, parsePartSize(url, *value));
        } else {
            return invalidUrl(url, fmt::format("unknown parameter '{}'. The parameters are "
                                               "endpoint, region, path_style and part_size",
                                               name));
        }
    }
    return parameters;
}

std::string firstSet(const EnvironmentLookup& environment, std::initializer_list<const char*> names,
                     std::string_view fallback) {
    for (const char* name : names) {
        std::optional<std::string> value = environment(name);
        if (value && !value->empty()) {
            return *value;
        }
    }
    return std::string(fallback);
}

Result<Credentials> readCredentials(std::string_view url, const EnvironmentLookup& environment) {
    Credentials credentials;
    credentials.access_key_id = environment("AWS_ACCESS_KEY_ID").value_or("");
    credentials.secret_access_key = environment("AWS_SECRET_ACCESS_KEY").value_or("");
    credentials.session_token = environment("AWS_SESSION_TOKEN").value_or("");
    if (credentials.access_key_id.empty() || credentials.secret_access_key.empty()) {
        return invalidUrl(url,
                          "S3 credentials are missing. Set AWS_ACCESS_KEY_ID and "
                          "AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary "
                          "credentials)");
    }
    return credentials;
}

}  // namespace

std::optional<std::string> processEnvironment(const char* name) {
    const char* value = std::getenv(name);
    if (value == nullptr) {
        return std::nullopt;
    }
    return std::string(value);
}

Result<S3Settings> parseS3Url(std::string_view url, const EnvironmentLookup& environment) {
    if (url.substr(0, kScheme.size()) != kScheme) {
        return invalidUrl(url, "an S3 storage URL starts with s3://");
    }
    std::string_view rest = url.substr(kScheme.size());
    if (size_t fragment = rest.find('#'); fragment != std::string_view::npos) {
        return invalidUrl(url, "remove the '#' fragment");
    }
    std::string_view query;
    if (size_t question = rest.find('?'); question != std::string_view::npos) {
        query = rest.substr(question + 1);
        rest = rest.substr(0, question);
    }
    size_t slash = rest.find('/');
    std::string_view bucket = rest.substr(0, slash);
    std::string_view raw_prefix = slash == std::string_view::npos ? "" : rest.substr(slash + 1);

    S3Settings settings;
    BM_RETURN_IF_ERROR(checkBucket(url, bucket));
    settings.bucket = std::string(bucket);
    BM_ASSIGN_OR_RETURN(settings.prefix, parsePrefix(url, raw_prefix));
    BM_ASSIGN_OR_RETURN(UrlParameters parameters, parseParameters(url, query));

    settings.region = parameters.region.value_or(
        firstSet(environment, {"AWS_REGION", "AWS_DEFAULT_REGION"}, kDefaultRegion));
    std::string endpoint =
        parameters.endpoint.value_or(fmt::format("https://s3.{}.amazonaws.com", settings.region));
    BM_RETURN_IF_ERROR(parseEndpoint(url, endpoint, settings));
    settings.path_style = parameters.path_style.value_or(!isVirtualHostBucket(settings.bucket));
    settings.part_bytes = parameters.part_bytes.value_or(kDefaultPartBytes);
    BM_ASSIGN_OR_RETURN(settings.credentials, readCredentials(url, environment));
    return settings;
}

}  // namespace bitmill::storage::s3
