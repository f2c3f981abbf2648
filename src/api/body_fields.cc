// Validation of JSON request body fields; see body_fields.h.
#include "api/body_fields.h"

#include <cmath>

#include "fmt/format.h"

namespace bitmill::api {

namespace {

constexpr size_t kMaxShownValueLength = 80;

std::string shownValue(const Json& value) {
    std::string text = value.dump(-1, ' ', false, Json::error_handler_t::replace);
    if (text.size() > kMaxShownValueLength) {
        text = text.substr(0, kMaxShownValueLength) + "…";
    }
    return text;
}

// Drops the "[json.exception.parse_error.101] " prefix of nlohmann messages.
std::string parserMessage(const std::string& what) {
    if (!what.empty() && what.front() == '[') {
        auto end = what.find("] ");
        if (end != std::string::npos) {
            return what.substr(end + 2);
        }
    }
    return what;
}

std::string joined(const std::vector<std::string_view>& names) {
    std::string text;
    for (auto name : names) {
        if (!text.empty()) {
            text += ", ";
        }
        text += name;
    }
    return text;
}

}  // namespace

Status checkJsonDepth(std::string_view text, int max_depth) {
    int depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (in_string) {
            if (c == '\\') {
                ++i;  // the escaped character cannot end the string
            } else if (c == '"') {
                in_string = false;
            }
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth) {
                return Error::invalidArgument(
                    fmt::format("request body nests deeper than {} levels", max_depth));
            }
        } else if ((c == ']' || c == '}') && depth > 0) {
            --depth;
        }
    }
    return okStatus();
}

Result<Json> parseJsonBody(std::string_view text) {
    BM_RETURN_IF_ERROR(checkJsonDepth(text));
    try {
        return Json::parse(text);
    } catch (const Json::parse_error& e) {
        return Error::invalidArgument("request body is not valid JSON: " + parserMessage(e.what()));
    } catch (const Json::out_of_range& e) {
        // Thrown for a number beyond the range of a double, e.g. 1e400.
        return Error::invalidArgument(
            fmt::format("request body has a number out of range: {}; numbers must fit a 64-bit "
                        "floating-point value",
                        parserMessage(e.what())));
    } catch (const Json::exception& e) {
        return Error::invalidArgument("request body cannot be parsed: " + parserMessage(e.what()));
    }
}

Status checkKnownFields(const Json& body, const std::vector<std::string_view>& accepted) {
    for (const auto& [name, value] : body.items()) {
        bool known = false;
        for (auto candidate : accepted) {
            known = known || candidate == name;
        }
        if (!known) {
            return Error::invalidArgument(
                fmt::format("unknown field \"{}\"; accepted fields: {}", name, joined(accepted)));
        }
    }
    return okStatus();
}

Error wrongFieldType(std::string_view field, const Json& value, std::string_view expected) {
    return Error::invalidArgument(
        fmt::format("invalid field \"{}\": {} is not {}", field, shownValue(value), expected));
}

Error missingField(std::string_view field) {
    return Error::invalidArgument(fmt::format("missing required field \"{}\"", field));
}

Result<FieldValue<std::string>> readStringField(const Json& body, std::string_view field) {
    FieldValue<std::string> result;
    auto it = body.find(field);
    if (it == body.end()) {
        return result;
    }
    result.present = true;
    if (it->is_null()) {
        return result;
    }
    if (!it->is_string()) {
        return wrongFieldType(field, *it, "a string");
    }
    result.value = it->get<std::string>();
    return result;
}

Result<FieldValue<int64_t>> readIntegerField(const Json& body, std::string_view field) {
    FieldValue<int64_t> result;
    auto it = body.find(field);
    if (it == body.end()) {
        return result;
    }
    result.present = true;
    if (it->is_null()) {
        return result;
    }
    if (it->is_number_integer()) {
        if (it->is_number_unsigned() && it->get<uint64_t>() > INT64_MAX) {
            return wrongFieldType(field, *it, "an integer in the 64-bit range");
        }
        result.value = it->get<int64_t>();
        return result;
    }
    if (it->is_number_float()) {
        const double number = it->get<double>();
        if (std::isfinite(number) && std::trunc(number) == number && std::fabs(number) < 9e15) {
            result.value = static_cast<int64_t>(number);
            return result;
        }
    }
    return wrongFieldType(field, *it, "an integer");
}

Result<FieldValue<Json>> readObjectField(const Json& body, std::string_view field) {
    FieldValue<Json> result;
    auto it = body.find(field);
    if (it == body.end()) {
        return result;
    }
    result.present = true;
    if (it->is_null()) {
        return result;
    }
    if (!it->is_object()) {
        return wrongFieldType(field, *it, "an object");
    }
    result.value = *it;
    return result;
}

Json mergeMetadata(const Json& current, const Json& patch) {
    Json merged = current.is_object() ? current : Json::object();
    for (const auto& [key, value] : patch.items()) {
        if (value.is_null()) {
            merged.erase(key);
        } else {
            merged[key] = value;
        }
    }
    return merged;
}

}  // namespace bitmill::api
