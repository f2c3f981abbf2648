#include "core/media_properties.h"

namespace bitmill {

namespace {

template <typename T>
void readOptional(const Json& json, const char* name, std::optional<T>& out) {
    auto it = json.find(name);
    if (it != json.end() && !it->is_null()) {
        out = it->get<T>();
    }
}

}  // namespace

Json MediaProperties::toJson() const {
    return Json{
        {"kind", kind},
        {"type", type},
        {"container", container},
        {"extension", extension},
        {"codec", jsonOrNull(codec)},
        {"width", jsonOrNull(width)},
        {"height", jsonOrNull(height)},
        {"orientation", jsonOrNull(orientation)},
        {"rotation", jsonOrNull(rotation)},
        {"transparency", jsonOrNull(transparency)},
        {"animated", jsonOrNull(animated)},
        {"frames", jsonOrNull(frames)},
        {"duration", jsonOrNull(duration)},
        {"fps", jsonOrNull(fps)},
        {"bitrate", jsonOrNull(bitrate)},
        {"language", jsonOrNull(language)},
        {"background", jsonOrNull(background)},
        {"placeholder", jsonOrNull(placeholder)},
        {"pixel_format", jsonOrNull(pixel_format)},
        {"audio_channels", jsonOrNull(audio_channels)},
        {"sample_rate", jsonOrNull(sample_rate)},
    };
}

Result<MediaProperties> MediaProperties::fromJson(const Json& json) {
    if (!json.is_object() || !json.contains("kind") || !json["kind"].is_string()) {
        return Error::internal("read media properties: missing kind");
    }
    try {
        MediaProperties props;
        props.kind = json.at("kind").get<std::string>();
        props.type = json.value("type", "");
        props.container = json.value("container", "");
        props.extension = json.value("extension", "");
        readOptional(json, "codec", props.codec);
        readOptional(json, "width", props.width);
        readOptional(json, "height", props.height);
        readOptional(json, "orientation", props.orientation);
        readOptional(json, "rotation", props.rotation);
        readOptional(json, "transparency", props.transparency);
        readOptional(json, "animated", props.animated);
        readOptional(json, "frames", props.frames);
        readOptional(json, "duration", props.duration);
        readOptional(json, "fps", props.fps);
        readOptional(json, "bitrate", props.bitrate);
        readOptional(json, "language", props.language);
        readOptional(json, "background", props.background);
        readOptional(json, "placeholder", props.placeholder);
        readOptional(json, "pixel_format", props.pixel_format);
        readOptional(json, "audio_channels", props.audio_channels);
        readOptional(json, "sample_rate", props.sample_rate);
        return props;
    } catch (const Json::exception& e) {
        return Error::internal("read media properties: wrong type", e.what());
    }
}

}  // namespace bitmill
