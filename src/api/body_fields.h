// Parsing and checks of JSON request bodies that produce the API's
// validation messages: unknown fields and wrong types are a 400 naming the
// field, the value and what is accepted.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/json.h"

namespace bitmill::api {

// Maximum nesting depth of arrays and objects in a request body. The JSON
// parser recurses once per level, so an unbounded depth would let one
// request overflow the thread's stack.
inline constexpr int kMaxBodyDepth = 64;

// Rejects `text` when its arrays and objects nest deeper than `max_depth`
// levels: `request body nests deeper than 64 levels`. The check is a linear
// scan that skips string contents and does not recurse. It checks no other
// syntax.
Status checkJsonDepth(std::string_view text, int max_depth = kMaxBodyDepth);

// Parses a JSON request body after checkJsonDepth. Returns InvalidArgument
// naming the problem for every parser error (syntax, invalid UTF-8, a
// number beyond the range of a double) instead of throwing it.
Result<Json> parseJsonBody(std::string_view text);

// Rejects the first field of `body` that is not in `accepted`:
// `unknown field "x"; accepted fields: a, b`.
Status checkKnownFields(const Json& body, const std::vector<std::string_view>& accepted);

// Returns `invalid field "name": <value> is not <expected>`, with the value
// as JSON, shortened when long.
Error wrongFieldType(std::string_view field, const Json& value, std::string_view expected);

// Returns `missing required field "name"`.
Error missingField(std::string_view field);

// A field that may be absent, null or a value. Absent and null differ on
// PATCH: null clears the field.
template <typename T>
struct FieldValue {
    bool present = false;    // the key exists in the body
    std::optional<T> value;  // empty when absent or null
};

// Reads the string field `field`; wrong types are InvalidArgument.
Result<FieldValue<std::string>> readStringField(const Json& body, std::string_view field);

// Reads the integer field `field` (JSON integers, or floats with no
// fractional part).
Result<FieldValue<int64_t>> readIntegerField(const Json& body, std::string_view field);

// Reads the object field `field`.
Result<FieldValue<Json>> readObjectField(const Json& body, std::string_view field);

// Applies a metadata patch: keys set to null are removed, others replace
// the stored value.
Json mergeMetadata(const Json& current, const Json& patch);

}  // namespace bitmill::api
