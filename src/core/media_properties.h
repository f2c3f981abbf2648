// Properties of a media file measured from its bytes by media/probe: the
// measured fields of an API File object. Shared by media/ (which fills it)
// and domain/ (which stores it), so it lives in core.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/error.h"
#include "core/json.h"

namespace bitmill {

struct MediaProperties {
    std::string kind;       // "video", "image" or "audio"
    std::string type;       // MIME, with codecs where known
    std::string container;  // e.g. "mp4", "webm", "jpeg", "png"
    std::string extension;  // file name extension without the dot, e.g. "mp4"
    std::optional<std::string> codec;  // main stream codec, e.g. "h264"
    std::optional<int> width;          // displayed (upright) width in pixels
    std::optional<int> height;         // displayed (upright) height in pixels
    std::optional<std::string> orientation;  // landscape|portrait|square
    std::optional<double> rotation;          // degrees the player must rotate
    std::optional<bool> transparency;
    std::optional<bool> animated;
    std::optional<int64_t> frames;
    std::optional<double> duration;  // seconds
    std::optional<double> fps;
    std::optional<int64_t> bitrate;  // bits per second
    std::optional<std::string> language;     // ISO 639-1
    std::optional<std::string> background;   // dominant colour "#rrggbb"
    std::optional<std::string> placeholder;  // data URI of a tiny preview
    std::optional<std::string> pixel_format; // e.g. "yuv420p" (not an API field)
    std::optional<int> audio_channels;       // not an API field
    std::optional<int> sample_rate;          // Hz, not an API field

    // Returns the fields as a JSON object; empty optionals become null.
    Json toJson() const;

    // Reads what toJson() wrote; fails on a missing kind or a wrong type.
    static Result<MediaProperties> fromJson(const Json& json);
};

}  // namespace bitmill
