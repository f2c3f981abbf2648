#include "core/clock.h"

#include <time.h>

#include <chrono>
#include <cstdio>

namespace bitmill {

int64_t nowMillis() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::string formatRfc3339(int64_t unix_millis) {
    time_t seconds = static_cast<time_t>(unix_millis / 1000);
    int millis = static_cast<int>(unix_millis % 1000);
    if (millis < 0) {
        millis += 1000;
        seconds -= 1;
    }
    struct tm utc {};
    gmtime_r(&seconds, &utc);
    char buffer[64];
    std::snprintf(buffer, sizeof(buffer), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                  utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min,
                  utc.tm_sec, millis);
    return buffer;
}

std::string formatHttpDate(int64_t unix_millis) {
    time_t seconds = static_cast<time_t>(unix_millis / 1000);
    struct tm utc {};
    gmtime_r(&seconds, &utc);
    char buffer[64];
    strftime(buffer, sizeof(buffer), "%a, %d %b %Y %H:%M:%S GMT", &utc);
    return buffer;
}

std::optional<int64_t> parseHttpDate(std::string_view text) {
    std::string copy(text);
    struct tm utc {};
    const char* end = strptime(copy.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &utc);
    if (end == nullptr || *end != '\0') {
        return std::nullopt;
    }
    return static_cast<int64_t>(timegm(&utc)) * 1000;
}

}  // namespace bitmill
