// URL checks for fetches. libcurl's parser is lenient (it reads "http:///x" as host "x"), so
// the scheme and the "//" authority are checked on the text before curl parses it.
#include "net/fetch_url.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <memory>

#include <fmt/format.h>

namespace bitmill::net {

namespace {

constexpr size_t kMaxRedactedLength = 200;

struct UrlDeleter {
    void operator()(CURLU* url) const { curl_url_cleanup(url); }
};
using UrlHandle = std::unique_ptr<CURLU, UrlDeleter>;

struct CurlStringDeleter {
    void operator()(char* text) const { curl_free(text); }
};

std::string truncateForMessage(std::string text) {
    if (text.size() > kMaxRedactedLength) {
        text.resize(kMaxRedactedLength);
        text += "...";
    }
    return text;
}

std::string asciiLower(std::string_view text) {
    std::string lowered(text);
    std::transform(lowered.begin(), lowered.end(), lowered.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return lowered;
}

// Returns the part of `url` that curl stores, or "" when the URL has no such part.
std::string getPart(CURLU* url, CURLUPart part) {
    char* raw = nullptr;
    if (curl_url_get(url, part, &raw, 0) != CURLUE_OK || raw == nullptr) {
        return {};
    }
    std::unique_ptr<char, CurlStringDeleter> owned(raw);
    return std::string(raw);
}

// `kind` is "url" for a URL input and "redirect url" for a Location target.
Error invalidUrl(std::string_view kind, std::string_view url, std::string_view cause) {
    return Error::invalidArgument(fmt::format("invalid {} '{}': {}", kind, redactUrl(url), cause));
}

// Checks the text before curl parses it: length, an http or https scheme, then "//" and a host.
Status checkUrlText(std::string_view kind, std::string_view url) {
    if (url.size() > kMaxUrlLength) {
        return invalidUrl(
            kind, url,
            fmt::format("it is {} characters long, the maximum is {}", url.size(), kMaxUrlLength));
    }
    const size_t colon = url.find(':');
    const bool has_scheme = colon != std::string_view::npos && colon > 0 &&
                            std::all_of(url.begin(), url.begin() + colon, [](unsigned char c) {
                                return std::isalnum(c) || c == '+' || c == '-' || c == '.';
                            });
    if (!has_scheme) {
        return invalidUrl(kind, url, "expected an absolute http or https URL");
    }
    const std::string scheme = asciiLower(url.substr(0, colon));
    if (scheme != "http" && scheme != "https") {
        return invalidUrl(kind, url,
                          fmt::format("scheme '{}' is not supported, use http or https", scheme));
    }
    const std::string_view rest = url.substr(colon + 1);
    if (rest.size() < 3 || rest.substr(0, 2) != "//" || rest[2] == '/' || rest[2] == '\\') {
        return invalidUrl(kind, url, "the host is missing, expected http(s)://host/path");
    }
    return okStatus();
}

// Reads the parts of a URL that curl parsed and checks what curl may have normalised.
Result<FetchUrl> describeParsedUrl(std::string_view kind, CURLU* handle) {
    FetchUrl parsed;
    parsed.url = getPart(handle, CURLUPART_URL);
    parsed.scheme = asciiLower(getPart(handle, CURLUPART_SCHEME));
    parsed.host = getPart(handle, CURLUPART_HOST);
    if (parsed.scheme != "http" && parsed.scheme != "https") {
        return invalidUrl(
            kind, parsed.url,
            fmt::format("scheme '{}' is not supported, use http or https", parsed.scheme));
    }
    if (parsed.host.empty()) {
        return invalidUrl(kind, parsed.url, "the host is missing, expected http(s)://host/path");
    }
    if (parsed.url.size() > kMaxUrlLength) {
        return invalidUrl(kind, parsed.url,
                          fmt::format("it is {} characters long, the maximum is {}",
                                      parsed.url.size(), kMaxUrlLength));
    }
    const std::string port = getPart(handle, CURLUPART_PORT);
    std::string authority = port.empty() ? parsed.host : parsed.host + ":" + port;
    parsed.redacted = truncateForMessage(
        fmt::format("{}://{}{}", parsed.scheme, authority, getPart(handle, CURLUPART_PATH)));
    return parsed;
}

std::string describeCurlUrlError(CURLUcode code) {
    switch (code) {
        case CURLUE_NO_HOST:
            return "the host is missing, expected http(s)://host/path";
        case CURLUE_BAD_PORT_NUMBER:
            return "the port is not a number from 0 to 65535";
        default:
            return fmt::format("it is not a valid URL ({})", curl_url_strerror(code));
    }
}

}  // namespace

Result<FetchUrl> parseFetchUrl(std::string_view url) {
    BM_RETURN_IF_ERROR(checkUrlText("url", url));
    UrlHandle handle(curl_url());
    if (!handle) {
        return Error::internal("parse url: out of memory");
    }
    const std::string terminated(url);
    const CURLUcode code =
        curl_url_set(handle.get(), CURLUPART_URL, terminated.c_str(), CURLU_NON_SUPPORT_SCHEME);
    if (code != CURLUE_OK) {
        return invalidUrl("url", url, describeCurlUrlError(code));
    }
    return describeParsedUrl("url", handle.get());
}

Result<FetchUrl> resolveRedirect(const FetchUrl& base, std::string_view location) {
    const std::string location_text(location);
    if (location_text.size() > kMaxUrlLength) {
        return invalidUrl("redirect url", location,
                          fmt::format("it is {} characters long, the maximum is {}",
                                      location_text.size(), kMaxUrlLength));
    }

    // An absolute target gets the same text checks as a URL input, so "http:///x" and
    // "file:///etc/passwd" are rejected with the same messages.
    const bool is_absolute =
        location.find("://") != std::string_view::npos || location.find(':') < location.find('/');
    if (is_absolute) {
        BM_RETURN_IF_ERROR(checkUrlText("redirect url", location));
    }

    UrlHandle handle(curl_url());
    if (!handle) {
        return Error::internal("resolve redirect: out of memory");
    }
    CURLUcode code = curl_url_set(handle.get(), CURLUPART_URL, base.url.c_str(), 0);
    if (code == CURLUE_OK) {
        // Setting a relative reference on a handle that holds a URL resolves it (RFC 3986).
        code = curl_url_set(handle.get(), CURLUPART_URL, location_text.c_str(),
                            CURLU_NON_SUPPORT_SCHEME);
    }
    if (code != CURLUE_OK) {
        return invalidUrl("redirect url", location, describeCurlUrlError(code));
    }
    return describeParsedUrl("redirect url", handle.get());
}

std::string redactUrl(std::string_view url) {
    const std::string_view without_query = url.substr(0, url.find_first_of("?#"));
    std::string result;
    const size_t separator = without_query.find("://");
    if (separator == std::string_view::npos) {
        result = std::string(without_query);
    } else {
        const std::string_view after_scheme = without_query.substr(separator + 3);
        const size_t authority_end = after_scheme.find('/');
        const std::string_view authority = after_scheme.substr(0, authority_end);
        const size_t at_sign = authority.rfind('@');
        const std::string_view host_and_path =
            at_sign == std::string_view::npos ? after_scheme : after_scheme.substr(at_sign + 1);
        result = fmt::format("{}://{}", without_query.substr(0, separator), host_and_path);
    }
    return truncateForMessage(std::move(result));
}

}  // namespace bitmill::net
