// Page and limit parsing and page links for list endpoints.
#include "api/pagination.h"

#include <charconv>
#include <string_view>

#include "fmt/format.h"

namespace bitmill::api {

namespace {

std::optional<int64_t> parseInteger(const std::string& text) {
    int64_t value = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || error != std::errc() || end != text.data() + text.size()) {
        return std::nullopt;
    }
    return value;
}

std::string pageUrl(const std::string& base_url, const std::string& path, const std::string& query,
                    int page, int limit) {
    std::string url = fmt::format("{}{}?page={}&limit={}", base_url, path, page, limit);
    if (!query.empty()) {
        url += "&" + query;
    }
    return url;
}

}  // namespace

Result<PageInfo> parsePageQuery(const httplib::Request& request, int default_limit) {
    PageInfo info;
    info.limit = default_limit;
    if (request.has_param("page")) {
        const std::string text = request.get_param_value("page");
        auto page = parseInteger(text);
        if (!page || *page < 1 || *page > 1'000'000'000) {
            return Error::invalidArgument(
                fmt::format("invalid query parameter \"page\": '{}' is not an integer >= 1", text));
        }
        info.page = static_cast<int>(*page);
    }
    if (request.has_param("limit")) {
        const std::string text = request.get_param_value("limit");
        auto limit = parseInteger(text);
        if (!limit || *limit < 1 || *limit > kMaxPageLimit) {
            return Error::invalidArgument(fmt::format(
                "invalid query parameter \"limit\": '{}' is not an integer from 1 to {}", text,
                kMaxPageLimit));
        }
        info.limit = static_cast<int>(*limit);
    }
    return info;
}

int pageCount(const PageInfo& page) {
    if (page.total <= 0 || page.limit <= 0) {
        return 0;
    }
    return static_cast<int>((page.total + page.limit - 1) / page.limit);
}

std::string percentEncode(const std::string& text, bool keep_slash) {
    static constexpr char kHexDigits[] = "0123456789ABCDEF";
    std::string encoded;
    encoded.reserve(text.size());
    for (unsigned char c : text) {
        const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                                (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
                                c == '~' || (keep_slash && c == '/');
        if (unreserved) {
            encoded += static_cast<char>(c);
        } else {
            encoded += '%';
            encoded += kHexDigits[c >> 4];
            encoded += kHexDigits[c & 0x0F];
        }
    }
    return encoded;
}

std::string otherQueryParameters(const httplib::Request& request) {
    std::string query;
    // httplib keeps parameters in a multimap, so the order is by name.
    for (const auto& [name, value] : request.params) {
        if (name == "page" || name == "limit") {
            continue;
        }
        if (!query.empty()) {
            query += '&';
        }
        query += percentEncode(name, false) + "=" + percentEncode(value, false);
    }
    return query;
}

PageLinks buildPageLinks(const std::string& base_url, const std::string& path,
                         const std::string& query, const PageInfo& page) {
    const int last_page = std::max(pageCount(page), 1);
    PageLinks links;
    links.self = pageUrl(base_url, path, query, page.page, page.limit);
    links.first = pageUrl(base_url, path, query, 1, page.limit);
    links.last = pageUrl(base_url, path, query, last_page, page.limit);
    if (page.page > 1) {
        // A page past the end points back to the last page that exists.
        links.prev = pageUrl(base_url, path, query, std::min(page.page - 1, last_page), page.limit);
    }
    if (page.page < last_page) {
        links.next = pageUrl(base_url, path, query, page.page + 1, page.limit);
    }
    return links;
}

std::string formatLinkHeader(const PageLinks& links) {
    std::string header;
    auto add = [&header](const std::string& url, std::string_view rel) {
        if (!header.empty()) {
            header += ", ";
        }
        header += fmt::format("<{}>; rel=\"{}\"", url, rel);
    };
    add(links.self, "self");
    add(links.first, "first");
    if (links.prev) {
        add(*links.prev, "prev");
    }
    if (links.next) {
        add(*links.next, "next");
    }
    add(links.last, "last");
    return header;
}

}  // namespace bitmill::api
