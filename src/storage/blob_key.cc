// Blob key validation.
#include "storage/blob_key.h"

#include <fmt/format.h>

namespace bitmill::storage {

namespace {

// The key goes into the detail only, because messages may reach API
// clients and keys are internal; long keys are cut short.
Error invalidKey(std::string_view key, std::string_view reason) {
    constexpr size_t kShownBytes = 80;
    std::string shown(key.substr(0, kShownBytes));
    for (char& c : shown) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            c = '?';
        }
    }
    return {ErrorCode::InvalidArgument, fmt::format("invalid storage key: {}", reason),
            fmt::format("key='{}'", shown)};
}

}  // namespace

Status checkBlobKey(std::string_view key) {
    if (key.empty()) {
        return invalidKey(key, "it is empty");
    }
    if (key.size() > kMaxBlobKeyBytes) {
        return invalidKey(key, fmt::format("it is longer than {} bytes", kMaxBlobKeyBytes));
    }
    if (key.front() == '/') {
        return invalidKey(key, "it must be relative, not start with '/'");
    }
    for (char c : key) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            return invalidKey(key, "it contains a control character");
        }
    }
    size_t start = 0;
    while (start <= key.size()) {
        size_t end = key.find('/', start);
        if (end == std::string_view::npos) {
            end = key.size();
        }
        std::string_view segment = key.substr(start, end - start);
        if (segment.empty()) {
            return invalidKey(key, "it contains an empty path segment");
        }
        if (segment == "." || segment == "..") {
            return invalidKey(key, "it contains a '.' or '..' segment");
        }
        start = end + 1;
    }
    return okStatus();
}

}  // namespace bitmill::storage
