// The JSON library used everywhere in bitmill (nlohmann::json), and
// helpers for optional fields.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>

namespace bitmill {

using Json = nlohmann::json;

// Returns `value` as JSON, or null when it is empty.
template <typename T>
Json jsonOrNull(const std::optional<T>& value) {
    return value ? Json(*value) : Json(nullptr);
}

}  // namespace bitmill
