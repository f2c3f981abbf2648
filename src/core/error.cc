#include "core/error.h"

namespace bitmill {

std::string_view errorCodeName(ErrorCode code) {
    switch (code) {
        case ErrorCode::InvalidArgument:
            return "invalid_argument";
        case ErrorCode::Unauthenticated:
            return "unauthenticated";
        case ErrorCode::PermissionDenied:
            return "permission_denied";
        case ErrorCode::NotFound:
            return "not_found";
        case ErrorCode::Conflict:
            return "conflict";
        case ErrorCode::UnsupportedMedia:
            return "unsupported_media";
        case ErrorCode::ResourceExhausted:
            return "resource_exhausted";
        case ErrorCode::Unavailable:
            return "unavailable";
        case ErrorCode::DeadlineExceeded:
            return "deadline_exceeded";
        case ErrorCode::Internal:
            return "internal";
    }
    return "internal";
}

std::string Error::toLogString() const {
    if (detail_.empty()) {
        return message_;
    }
    return message_ + " (" + detail_ + ")";
}

}  // namespace bitmill
