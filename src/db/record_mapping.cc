// The stored form of an upload's received byte ranges.
#include "db/record_mapping.h"

namespace bitmill::db {

std::string encodeRanges(const ByteRanges& ranges) {
    Json array = Json::array();
    for (const auto& [first, last] : ranges) {
        array.push_back(Json::array({first, last}));
    }
    return array.dump();
}

Result<ByteRanges> decodeRanges(const std::string& text) {
    Json array = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!array.is_array()) {
        return Error::internal("decode upload ranges: not a JSON array", text);
    }
    ByteRanges ranges;
    for (const Json& pair : array) {
        if (!pair.is_array() || pair.size() != 2 || !pair[0].is_number_integer() ||
            !pair[1].is_number_integer()) {
            return Error::internal("decode upload ranges: not a [first, last] pair", text);
        }
        ranges.emplace_back(pair[0].get<int64_t>(), pair[1].get<int64_t>());
    }
    return ranges;
}

}  // namespace bitmill::db
