// Parsing and redirect resolution of the http(s) URLs that bitmill fetches, through libcurl's
// URL API, plus a redacted form of a URL that is safe to log.
#pragma once

#include <string>
#include <string_view>

#include "core/error.h"

namespace bitmill::net {

// Maximum length in characters of a URL input, the original or a redirect target.
inline constexpr size_t kMaxUrlLength = 2048;

// An absolute http or https URL with a host, as curl normalised it.
struct FetchUrl {
    std::string url;       // complete, with userinfo and query: never log it
    std::string scheme;    // "http" or "https"
    std::string host;      // as in the URL, IPv6 in brackets, e.g. "[::1]"
    std::string redacted;  // scheme://host[:port]/path without userinfo, query or fragment
};

// Parses `url`. Returns InvalidArgument naming the redacted value and what is accepted when
// it is longer than kMaxUrlLength, its scheme is not http or https, it has no host or curl
// cannot parse it.
Result<FetchUrl> parseFetchUrl(std::string_view url);

// Resolves the Location header value `location` against `base` (relative references
// included) and validates the result as parseFetchUrl does.
Result<FetchUrl> resolveRedirect(const FetchUrl& base, std::string_view location);

// Returns scheme://host/path of a URL that may not parse: userinfo, query and fragment are cut
// off and the result is at most about 200 characters.
std::string redactUrl(std::string_view url);

}  // namespace bitmill::net
