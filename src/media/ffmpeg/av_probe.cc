// Measures audio and video files with libavformat: container from content,
// main streams, upright size, timing, MIME type with codecs, and the limits
// of Limits.
#include "media/ffmpeg/av_probe.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "media/ffmpeg/codec_string.h"
#include "media/ffmpeg/ffmpeg.h"

namespace bitmill::media::ffmpeg {

namespace {

// Container name, file extension and MIME type reported in a File object.
struct ContainerInfo {
    std::string container;
    std::string extension;
    std::string mime;
    bool lists_codecs = false;  // whether the MIME type takes a codecs parameter
};

std::string metadataValue(const AVDictionary* metadata, const char* key) {
    const AVDictionaryEntry* entry = av_dict_get(metadata, key, nullptr, 0);
    return entry != nullptr && entry->value != nullptr ? entry->value : "";
}

// Image demuxers of FFmpeg: a still image or an animation that libvips
// describes better (transparency, animation, pages).
bool isImageFormat(std::string_view name) {
    return name == "image2" || name == "gif" || name == "apng" || name == "ico" ||
           name == "webp" || (name.size() > 5 && name.substr(name.size() - 5) == "_pipe");
}

bool isWebmCodec(AVCodecID id) {
    switch (id) {
        case AV_CODEC_ID_VP8:
        case AV_CODEC_ID_VP9:
        case AV_CODEC_ID_AV1:
        case AV_CODEC_ID_OPUS:
        case AV_CODEC_ID_VORBIS:
        case AV_CODEC_ID_WEBVTT:
            return true;
        default:
            return false;
    }
}

// Names the ISO base media file family (FFmpeg's "mov,mp4,m4a,3gp,3g2,mj2"
// demuxer) by its major brand.
ContainerInfo isoMediaContainer(const AVFormatContext* input, bool has_video) {
    const std::string brand = metadataValue(input->metadata, "major_brand");
    if (brand == "qt  ") {
        return {"mov", "mov", "video/quicktime", true};
    }
    if (brand.rfind("3gp", 0) == 0) {
        return {"3gp", "3gp", has_video ? "video/3gpp" : "audio/3gpp", true};
    }
    if (brand.rfind("3g2", 0) == 0) {
        return {"3g2", "3g2", has_video ? "video/3gpp2" : "audio/3gpp2", true};
    }
    if (!has_video) {
        return {"m4a", "m4a", "audio/mp4", true};
    }
    return {"mp4", "mp4", "video/mp4", true};
}

ContainerInfo matroskaContainer(const AVFormatContext* input, bool has_video) {
    // FFmpeg does not export the EBML DocType, so a Matroska file whose
    // streams all fit WebM is reported as WebM.
    bool webm = true;
    for (unsigned i = 0; i < input->nb_streams; ++i) {
        if (!isWebmCodec(input->streams[i]->codecpar->codec_id)) {
            webm = false;
        }
    }
    if (webm) {
        return {"webm", "webm", has_video ? "video/webm" : "audio/webm", true};
    }
    if (has_video) {
        return {"mkv", "mkv", "video/x-matroska", true};
    }
    return {"mka", "mka", "audio/x-matroska", true};
}

ContainerInfo oggContainer(const AVFormatContext* input, bool has_video) {
    if (has_video) {
        return {"ogg", "ogv", "video/ogg", true};
    }
    bool all_opus = input->nb_streams > 0;
    for (unsigned i = 0; i < input->nb_streams; ++i) {
        if (input->streams[i]->codecpar->codec_id != AV_CODEC_ID_OPUS) {
            all_opus = false;
        }
    }
    return {"ogg", all_opus ? "opus" : "ogg", "audio/ogg", true};
}

ContainerInfo containerInfo(const AVFormatContext* input, bool has_video) {
    const std::string_view name = input->iformat->name;
    if (name == "mov,mp4,m4a,3gp,3g2,mj2") {
        return isoMediaContainer(input, has_video);
    }
    if (name == "matroska,webm") {
        return matroskaContainer(input, has_video);
    }
    if (name == "ogg") {
        return oggContainer(input, has_video);
    }
    struct Known {
        std::string_view demuxer;
        ContainerInfo video;
        ContainerInfo audio;
    };
    static const std::vector<Known> kKnown = {
        {"mp3", {"mp3", "mp3", "audio/mpeg"}, {"mp3", "mp3", "audio/mpeg"}},
        {"wav", {"wav", "wav", "audio/wav"}, {"wav", "wav", "audio/wav"}},
        {"flac", {"flac", "flac", "audio/flac"}, {"flac", "flac", "audio/flac"}},
        {"aac", {"aac", "aac", "audio/aac"}, {"aac", "aac", "audio/aac"}},
        {"avi", {"avi", "avi", "video/x-msvideo"}, {"avi", "avi", "video/x-msvideo"}},
        {"mpegts",
         {"mpegts", "ts", "video/mp2t", true},
         {"mpegts", "ts", "audio/mp2t", true}},
        {"mpeg", {"mpeg", "mpg", "video/mpeg"}, {"mpeg", "mpg", "audio/mpeg"}},
        {"flv", {"flv", "flv", "video/x-flv"}, {"flv", "flv", "video/x-flv"}},
        {"asf", {"asf", "wmv", "video/x-ms-wmv"}, {"asf", "wma", "audio/x-ms-wma"}},
        {"aiff", {"aiff", "aiff", "audio/aiff"}, {"aiff", "aiff", "audio/aiff"}},
        {"amr", {"amr", "amr", "audio/amr"}, {"amr", "amr", "audio/amr"}},
        {"ac3", {"ac3", "ac3", "audio/ac3"}, {"ac3", "ac3", "audio/ac3"}},
        {"eac3", {"eac3", "eac3", "audio/eac3"}, {"eac3", "eac3", "audio/eac3"}},
        {"caf", {"caf", "caf", "audio/x-caf"}, {"caf", "caf", "audio/x-caf"}},
        {"w64", {"w64", "w64", "audio/x-w64"}, {"w64", "w64", "audio/x-w64"}},
        {"mxf", {"mxf", "mxf", "application/mxf"}, {"mxf", "mxf", "application/mxf"}},
    };
    for (const Known& known : kKnown) {
        if (name == known.demuxer) {
            return has_video ? known.video : known.audio;
        }
    }

    // Any other demuxer: its first name, first extension and MIME type.
    ContainerInfo info;
    info.container = std::string(name.substr(0, name.find(',')));
    const char* extensions = input->iformat->extensions;
    if (extensions != nullptr && extensions[0] != '\0') {
        const std::string_view list = extensions;
        info.extension = std::string(list.substr(0, list.find(',')));
    } else {
        info.extension = info.container;
    }
    const char* mime = input->iformat->mime_type;
    if (mime != nullptr && mime[0] != '\0') {
        const std::string_view list = mime;
        info.mime = std::string(list.substr(0, list.find(',')));
    } else {
        info.mime = has_video ? "video/x-" + info.container : "audio/x-" + info.container;
    }
    return info;
}

// Returns the ISO 639-1 code of an ISO 639-1 or 639-2 (B or T) tag, or
// nothing for "und", "mul", "zxx" and codes without a 639-1 equivalent
// in this table.
std::optional<std::string> languageCode(std::string tag) {
    std::transform(tag.begin(), tag.end(), tag.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    // "en-US" style tags keep the language subtag only.
    tag = tag.substr(0, tag.find_first_of("-_"));
    if (tag.size() == 2 && std::isalpha(static_cast<unsigned char>(tag[0])) &&
        std::isalpha(static_cast<unsigned char>(tag[1]))) {
        return tag;
    }
    static const std::unordered_map<std::string_view, std::string_view> kTwoLetter = {
        {"eng", "en"}, {"fre", "fr"}, {"fra", "fr"}, {"ger", "de"}, {"deu", "de"},
        {"spa", "es"}, {"ita", "it"}, {"por", "pt"}, {"rus", "ru"}, {"jpn", "ja"},
        {"chi", "zh"}, {"zho", "zh"}, {"kor", "ko"}, {"ara", "ar"}, {"hin", "hi"},
        {"dut", "nl"}, {"nld", "nl"}, {"swe", "sv"}, {"nor", "no"}, {"nob", "nb"},
        {"nno", "nn"}, {"dan", "da"}, {"fin", "fi"}, {"pol", "pl"}, {"tur", "tr"},
        {"gre", "el"}, {"ell", "el"}, {"heb", "he"}, {"cze", "cs"}, {"ces", "cs"},
        {"hun", "hu"}, {"rum", "ro"}, {"ron", "ro"}, {"ukr", "uk"}, {"vie", "vi"},
        {"tha", "th"}, {"ind", "id"}, {"may", "ms"}, {"msa", "ms"}, {"per", "fa"},
        {"fas", "fa"}, {"bul", "bg"}, {"hrv", "hr"}, {"srp", "sr"}, {"slo", "sk"},
        {"slk", "sk"}, {"slv", "sl"}, {"cat", "ca"}, {"baq", "eu"}, {"eus", "eu"},
        {"glg", "gl"}, {"est", "et"}, {"lav", "lv"}, {"lit", "lt"}, {"ice", "is"},
        {"isl", "is"}, {"gle", "ga"}, {"wel", "cy"}, {"cym", "cy"}, {"ben", "bn"},
        {"tam", "ta"}, {"tel", "te"}, {"urd", "ur"}, {"tgl", "tl"}, {"fil", "tl"},
        {"swa", "sw"}, {"afr", "af"}, {"alb", "sq"}, {"sqi", "sq"}, {"arm", "hy"},
        {"hye", "hy"}, {"geo", "ka"}, {"kat", "ka"}, {"mac", "mk"}, {"mkd", "mk"},
        {"bel", "be"}, {"kaz", "kk"}, {"mon", "mn"}, {"nep", "ne"}, {"pan", "pa"},
        {"guj", "gu"}, {"mar", "mr"}, {"kan", "kn"}, {"mal", "ml"}, {"sin", "si"},
        {"khm", "km"}, {"lao", "lo"}, {"bur", "my"}, {"mya", "my"}, {"amh", "am"},
        {"yor", "yo"}, {"zul", "zu"}, {"xho", "xh"}, {"hau", "ha"}, {"ibo", "ig"},
        {"som", "so"}, {"lat", "la"}, {"epo", "eo"}, {"ltz", "lb"}, {"bos", "bs"},
        {"aze", "az"}, {"uzb", "uz"}, {"pus", "ps"}, {"kur", "ku"}, {"tat", "tt"},
    };
    const auto found = kTwoLetter.find(tag);
    if (found == kTwoLetter.end()) {
        return std::nullopt;
    }
    return std::string(found->second);
}

std::optional<std::string> streamLanguage(const AVStream* stream) {
    if (stream == nullptr) {
        return std::nullopt;
    }
    const std::string tag = metadataValue(stream->metadata, "language");
    if (tag.empty()) {
        return std::nullopt;
    }
    return languageCode(tag);
}

// Duration in seconds: the container's, else the longest stream's.
std::optional<double> durationSeconds(const AVFormatContext* input) {
    if (input->duration != AV_NOPTS_VALUE && input->duration > 0) {
        return static_cast<double>(input->duration) / AV_TIME_BASE;
    }
    double longest = 0;
    for (unsigned i = 0; i < input->nb_streams; ++i) {
        const AVStream* stream = input->streams[i];
        if (stream->duration != AV_NOPTS_VALUE && stream->duration > 0) {
            longest = std::max(longest, stream->duration * av_q2d(stream->time_base));
        }
    }
    if (longest > 0) {
        return longest;
    }
    return std::nullopt;
}

std::optional<double> frameRate(const AVStream* stream) {
    AVRational rate = stream->avg_frame_rate;
    if (rate.num <= 0 || rate.den <= 0) {
        rate = stream->r_frame_rate;
    }
    if (rate.num <= 0 || rate.den <= 0) {
        return std::nullopt;
    }
    return av_q2d(rate);
}

// Parses the "HH:MM:SS.nnnnnnnnn" DURATION tag that Matroska muxers write
// per track.
std::optional<double> parseDurationTag(const std::string& text) {
    int hours = 0;
    int minutes = 0;
    double seconds = 0;
    if (std::sscanf(text.c_str(), "%d:%d:%lf", &hours, &minutes, &seconds) != 3) {
        return std::nullopt;
    }
    const double total = hours * 3600.0 + minutes * 60.0 + seconds;
    if (!(total > 0)) {
        return std::nullopt;
    }
    return total;
}

std::optional<int64_t> frameCount(const AVStream* stream, std::optional<double> duration,
                                  std::optional<double> fps) {
    if (stream->nb_frames > 0) {
        return stream->nb_frames;
    }
    // Without a sample table (Matroska, MPEG-TS) the count is estimated from
    // the stream's duration, or the file's, and the average frame rate.
    std::optional<double> seconds = duration;
    const auto tagged = parseDurationTag(metadataValue(stream->metadata, "DURATION"));
    if (stream->duration != AV_NOPTS_VALUE && stream->duration > 0) {
        seconds = stream->duration * av_q2d(stream->time_base);
    } else if (tagged) {
        seconds = tagged;
    }
    if (!seconds || !fps) {
        return std::nullopt;
    }
    return static_cast<int64_t>(std::llround(*seconds * *fps));
}

bool hasAlpha(const AVStream* stream) {
    const AVPixFmtDescriptor* descriptor =
        av_pix_fmt_desc_get(static_cast<AVPixelFormat>(stream->codecpar->format));
    if (descriptor != nullptr && (descriptor->flags & AV_PIX_FMT_FLAG_ALPHA)) {
        return true;
    }
    // VP8/VP9 in WebM carry alpha in a side channel that Matroska flags with
    // an AlphaMode element, exported as this tag.
    return metadataValue(stream->metadata, "alpha_mode") == "1";
}

// Rejects a file whose sample index points past its end, such as an MP4
// cut short after a complete moov box. Decoding it would stop early while
// the duration promises more.
Status checkIndexWithinFile(AVFormatContext* input, int stream_index) {
    if (stream_index < 0 || input->pb == nullptr) {
        return okStatus();
    }
    const int64_t file_size = avio_size(input->pb);
    if (file_size <= 0) {
        return okStatus();
    }
    AVStream* stream = input->streams[stream_index];
    const int entries = avformat_index_get_entries_count(stream);
    if (entries <= 0) {
        return okStatus();
    }
    const AVIndexEntry* last = avformat_index_get_entry(stream, entries - 1);
    if (last != nullptr && last->pos + last->size > file_size) {
        return Error::unsupportedMedia(
            "probe input: the file is truncated (its index needs " +
            std::to_string(last->pos + last->size) + " bytes but the file has " +
            std::to_string(file_size) + ")");
    }
    return okStatus();
}

std::string mimeType(const ContainerInfo& info, const AVStream* video, const AVStream* audio) {
    if (!info.lists_codecs) {
        return info.mime;
    }
    std::string codecs;
    for (const AVStream* stream : {video, audio}) {
        if (stream == nullptr) {
            continue;
        }
        const std::string entry = codecsEntry(stream);
        if (entry.empty()) {
            continue;
        }
        codecs += codecs.empty() ? entry : ", " + entry;
    }
    if (codecs.empty()) {
        return info.mime;
    }
    return info.mime + "; codecs=\"" + codecs + "\"";
}

std::string codecName(AVCodecID id) {
    // The API names HEVC "h265", as the video options do.
    if (id == AV_CODEC_ID_HEVC) {
        return "h265";
    }
    return avcodec_get_name(id);
}

void fillVideo(MediaProperties& properties, const AVStream* stream) {
    const AVCodecParameters* parameters = stream->codecpar;
    const int rotation = streamRotation(stream);
    const bool sideways = rotation == 90 || rotation == 270;
    const int width = sideways ? parameters->height : parameters->width;
    const int height = sideways ? parameters->width : parameters->height;

    properties.codec = codecName(parameters->codec_id);
    properties.width = width;
    properties.height = height;
    properties.rotation = rotation;
    if (width > height) {
        properties.orientation = "landscape";
    } else if (width < height) {
        properties.orientation = "portrait";
    } else {
        properties.orientation = "square";
    }
    properties.fps = frameRate(stream);
    properties.frames = frameCount(stream, properties.duration, properties.fps);
    const char* pixel_format =
        av_get_pix_fmt_name(static_cast<AVPixelFormat>(parameters->format));
    if (pixel_format != nullptr) {
        properties.pixel_format = pixel_format;
    }
    properties.transparency = hasAlpha(stream);
    properties.animated = false;
}

}  // namespace

Result<MediaProperties> probeAudioVideo(const std::string& path, const Limits& limits) {
    BM_ASSIGN_OR_RETURN(InputFormatPtr input, openInput(path));

    const std::string_view format_name = input->iformat->name;
    if (isImageFormat(format_name)) {
        return Error::unsupportedMedia("probe input: the file is an image (" +
                                       std::string(format_name) + "), not audio or video");
    }
    const int video_index = findVideoStream(input.get());
    const int audio_index = findAudioStream(input.get());
    if (video_index < 0 && audio_index < 0) {
        return Error::unsupportedMedia("probe input: the file has no audio or video stream");
    }
    const AVStream* video = video_index >= 0 ? input->streams[video_index] : nullptr;
    const AVStream* audio = audio_index >= 0 ? input->streams[audio_index] : nullptr;
    BM_RETURN_IF_ERROR(
        checkIndexWithinFile(input.get(), video_index >= 0 ? video_index : audio_index));

    MediaProperties properties;
    properties.kind = video != nullptr ? "video" : "audio";
    const ContainerInfo info = containerInfo(input.get(), video != nullptr);
    properties.container = info.container;
    properties.extension = info.extension;
    properties.type = mimeType(info, video, audio);
    properties.duration = durationSeconds(input.get());
    if (input->bit_rate > 0) {
        properties.bitrate = input->bit_rate;
    } else if (properties.duration && *properties.duration > 0 && input->pb != nullptr &&
               avio_size(input->pb) > 0) {
        properties.bitrate =
            static_cast<int64_t>(std::llround(avio_size(input->pb) * 8 / *properties.duration));
    }

    if (video != nullptr) {
        fillVideo(properties, video);
    } else {
        properties.codec = codecName(audio->codecpar->codec_id);
    }
    if (audio != nullptr) {
        properties.audio_channels = audio->codecpar->ch_layout.nb_channels;
        properties.sample_rate = audio->codecpar->sample_rate;
    }
    // A video track is usually tagged "und"; the audio track names the
    // spoken language.
    properties.language = streamLanguage(video);
    if (!properties.language) {
        properties.language = streamLanguage(audio);
    }

    BM_RETURN_IF_ERROR(checkLimits(properties.width.value_or(0), properties.height.value_or(0),
                                   properties.duration.value_or(-1), limits));
    return properties;
}

}  // namespace bitmill::media::ffmpeg
