// Pagination of list endpoints: the page and limit query parameters and the
// self/first/prev/next/last links of a page.
#pragma once

#include <httplib.h>

#include <optional>
#include <string>

#include "api/http_util.h"
#include "core/error.h"

namespace bitmill::api {

inline constexpr int kMaxPageLimit = 100;

// Absolute URLs of the pages around one page; prev and next are absent at
// the ends.
struct PageLinks {
    std::string self;
    std::string first;
    std::optional<std::string> prev;
    std::optional<std::string> next;
    std::string last;
};

// Reads `page` (integer >= 1, default 1) and `limit` (integer 1..100,
// default `default_limit`) from the query; InvalidArgument naming the
// parameter and the value otherwise.
Result<PageInfo> parsePageQuery(const httplib::Request& request, int default_limit);

// Returns the number of pages: ceil(total / limit), 0 for an empty list.
int pageCount(const PageInfo& page);

// Returns the query parameters of `request` other than page and limit,
// percent-encoded and joined with '&' (empty when there are none).
std::string otherQueryParameters(const httplib::Request& request);

// Builds the links of `page` for the list at base_url + path, keeping
// `query` (see otherQueryParameters) in every link.
PageLinks buildPageLinks(const std::string& base_url, const std::string& path,
                         const std::string& query, const PageInfo& page);

// Formats `links` as an RFC 8288 Link header value:
// <url>; rel="self", <url>; rel="first", …
std::string formatLinkHeader(const PageLinks& links);

// Percent-encodes everything but RFC 3986 unreserved characters; '/' is
// kept when `keep_slash` is true (for paths).
std::string percentEncode(const std::string& text, bool keep_slash);

}  // namespace bitmill::api
