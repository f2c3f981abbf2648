// Wall-clock time in milliseconds since the Unix epoch and its RFC 3339 form.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bitmill {

int64_t nowMillis();

// Formats as "2025-01-01T01:23:45.678Z" (UTC, always milliseconds).
std::string formatRfc3339(int64_t unix_millis);

// Formats as an HTTP date, "Sun, 06 Nov 1994 08:49:37 GMT".
std::string formatHttpDate(int64_t unix_millis);

// Parses an HTTP date; returns nullopt when it is not one.
std::optional<int64_t> parseHttpDate(std::string_view text);

}  // namespace bitmill
