// Error and Result<T>: the one error vocabulary of bitmill. Every fallible
// function returns Result<T> (or Status); exceptions are caught only at the
// HTTP dispatch, task runner and main boundaries.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace bitmill {

enum class ErrorCode {
    InvalidArgument,    // client sent a bad value (400)
    Unauthenticated,    // missing or wrong key (401)
    PermissionDenied,   // valid key, forbidden action or bad signature (403)
    NotFound,           // no such object in this project (404)
    Conflict,           // state or idempotency conflict (409)
    UnsupportedMedia,   // bytes are not media we can read (422)
    ResourceExhausted,  // a configured limit was exceeded (413/422)
    Unavailable,        // transient: storage, network, database busy (503)
    DeadlineExceeded,   // a time limit ran out (504 / failed task)
    Internal,           // a bug or an unexpected library failure (500)
};

// Returns the stable lower_snake_case name of `code`, e.g. "not_found".
std::string_view errorCodeName(ErrorCode code);

// An error with a message that is safe to show to API clients and an
// optional internal detail (paths, library text) that only goes to logs.
class Error {
public:
    Error(ErrorCode code, std::string message, std::string detail = {})
        : code_(code), message_(std::move(message)), detail_(std::move(detail)) {}

    static Error invalidArgument(std::string message) {
        return {ErrorCode::InvalidArgument, std::move(message)};
    }
    static Error notFound(std::string message) { return {ErrorCode::NotFound, std::move(message)}; }
    static Error conflict(std::string message) { return {ErrorCode::Conflict, std::move(message)}; }
    static Error unsupportedMedia(std::string message, std::string detail = {}) {
        return {ErrorCode::UnsupportedMedia, std::move(message), std::move(detail)};
    }
    static Error resourceExhausted(std::string message) {
        return {ErrorCode::ResourceExhausted, std::move(message)};
    }
    static Error unavailable(std::string message, std::string detail = {}) {
        return {ErrorCode::Unavailable, std::move(message), std::move(detail)};
    }
    static Error internal(std::string message, std::string detail = {}) {
        return {ErrorCode::Internal, std::move(message), std::move(detail)};
    }

    ErrorCode code() const { return code_; }
    const std::string& message() const { return message_; }
    const std::string& detail() const { return detail_; }

    // True when trying the same work again later may succeed (the queue
    // retries such task failures; everything else fails the task at once).
    bool retryable() const {
        return code_ == ErrorCode::Unavailable || code_ == ErrorCode::Internal;
    }

    // Returns "message" or "message (detail)" for logs.
    std::string toLogString() const;

private:
    ErrorCode code_;
    std::string message_;
    std::string detail_;
};

// Holds either a value of type T or an Error.
template <typename T>
class [[nodiscard]] Result {
public:
    Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}
    Result(Error error) : state_(std::in_place_index<1>, std::move(error)) {}

    bool ok() const { return state_.index() == 0; }
    explicit operator bool() const { return ok(); }

    T& value() & { return std::get<0>(state_); }
    const T& value() const& { return std::get<0>(state_); }
    T&& value() && { return std::get<0>(std::move(state_)); }
    const Error& error() const { return std::get<1>(state_); }

    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

private:
    std::variant<T, Error> state_;
};

// Result of an operation that returns nothing but can fail.
template <>
class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Error error) : error_(std::move(error)) {}

    bool ok() const { return !error_.has_value(); }
    explicit operator bool() const { return ok(); }
    const Error& error() const { return *error_; }

private:
    std::optional<Error> error_;
};

using Status = Result<void>;

inline Status okStatus() { return {}; }

}  // namespace bitmill

#define BM_CONCAT_INNER(a, b) a##b
#define BM_CONCAT(a, b) BM_CONCAT_INNER(a, b)

// Returns the error of `expr` (a Result or Status) from the enclosing function.
#define BM_RETURN_IF_ERROR(expr)                \
    do {                                        \
        auto bm_status_ = (expr);               \
        if (!bm_status_.ok()) {                 \
            return bm_status_.error();          \
        }                                       \
    } while (false)

#define BM_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
    auto tmp = (expr);                           \
    if (!tmp.ok()) {                             \
        return tmp.error();                      \
    }                                            \
    lhs = std::move(tmp).value()

// Declares or assigns `lhs` from the value of `expr`, or returns its error.
#define BM_ASSIGN_OR_RETURN(lhs, expr) \
    BM_ASSIGN_OR_RETURN_IMPL(BM_CONCAT(bm_result_, __LINE__), lhs, expr)
