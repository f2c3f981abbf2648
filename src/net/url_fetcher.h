// Downloads http(s) URL inputs into local files without letting them reach loopback, private
// or cloud metadata addresses (server-side request forgery), within size and time limits.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace bitmill::net {

struct FetchOptions {
    int64_t max_bytes = 0;    // larger bodies fail with ResourceExhausted
    int timeout_seconds = 0;  // whole fetch, redirects included, then DeadlineExceeded
    int max_redirects = 5;
    // Hosts, addresses or CIDR ranges that may be reached although blocked, e.g.
    // "127.0.0.1/32", "10.0.0.0/8", "media.internal", "[::1]" (see AllowList).
    std::vector<std::string> allow_list;
};

struct FetchResult {
    std::string final_url;  // after redirects, with any credentials or signature: never log it
    int64_t bytes = 0;
    std::string content_type;  // as the server sent it, "" when absent
};

// Downloads `url` into `output_path` (created or truncated), streaming the body to disk.
//
// Every connection goes only to an address that passed the check: curl resolves the host, and
// the socket callback checks each resolved address before a socket exists, so DNS rebinding
// between a check and the connect is impossible. Redirects are followed here, not by curl, at
// most `max_redirects` of them, and each target is parsed and checked like the first URL.
//
// Errors:
// - InvalidArgument: invalid url or redirect url, unknown host, HTTP 4xx other than 408 and
//   429, too many redirects, a TLS certificate that fails verification, an invalid allow-list
// - PermissionDenied: the host is or resolves to a blocked address that the allow-list does
//   not cover
// - Unavailable: HTTP 5xx, 408 or 429, connection failures (retryable)
// - DeadlineExceeded: `timeout_seconds` ran out
// - ResourceExhausted: Content-Length or the streamed body is above `max_bytes`
// On any error the output file is removed. Thread-safe: calls share no state.
Result<FetchResult> fetchToFile(const std::string& url, const std::string& output_path,
                                const FetchOptions& options);

// Validates `url` as a URL input without any network access: scheme http or https, a host,
// at most 2048 characters. Userinfo is accepted but never appears in messages or logs.
// Returns InvalidArgument naming the value (scheme://host/path only) and what is accepted.
Status validateFetchUrl(std::string_view url);

// True when `address` (numeric IPv4 or IPv6, IPv6 optionally in brackets) is in a range that URL
// inputs may not reach without an allow-list entry. The ranges are loopback, private, link-local,
// unique-local, CGNAT, multicast, broadcast, reserved, 0.0.0.0/8 and cloud metadata, also in
// IPv4-mapped, NAT64 and 6to4 form. Text that is not a numeric address is blocked too.
bool isBlockedAddress(std::string_view address);

}  // namespace bitmill::net
