// Container/codec rules, option checks and encoder setup for transcodeVideo.
#include "media/ffmpeg/video_encoding.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "core/log.h"
#include "media/ffmpeg/video_filters.h"

namespace bitmill::media::ffmpeg {
namespace {

// Video and audio codecs that each container accepts. MOV accepts neither
// VP9/AV1 nor Opus in FFmpeg 5.1's muxer, and WebM only VP8/VP9/AV1 with
// Vorbis/Opus.
struct ContainerRule {
    std::string_view format;
    std::string_view muxer;
    std::vector<std::string_view> video_codecs;
    std::vector<std::string_view> audio_codecs;
};

const std::vector<ContainerRule>& containerRules() {
    static const std::vector<ContainerRule> rules = {
        {"mp4", "mp4", {"h264", "h265", "vp9", "av1"}, {"aac", "opus", "mp3", "none"}},
        {"webm", "webm", {"vp9", "av1"}, {"opus", "none"}},
        {"mov", "mov", {"h264", "h265"}, {"aac", "mp3", "none"}},
        {"mkv", "matroska", {"h264", "h265", "vp9", "av1"}, {"aac", "opus", "mp3", "none"}},
    };
    return rules;
}

const ContainerRule* findRule(std::string_view format) {
    for (const ContainerRule& rule : containerRules()) {
        if (rule.format == format) {
            return &rule;
        }
    }
    return nullptr;
}

bool contains(const std::vector<std::string_view>& values, std::string_view value) {
    return std::find(values.begin(), values.end(), value) != values.end();
}

std::string joined(const std::vector<std::string_view>& values) {
    return fmt::format("{}", fmt::join(values, ", "));
}

// CRF at quality 0, 60 ("medium") and 100; values in between are linear.
// The h264 medium point is x264's own default (CRF 23), which bitmill is
// compared against with preset veryfast; h265's is x265's default (28).
// VP9 and AV1 use a 0..63 scale where about 31-35 is a typical web choice.
//
//   quality | h264 (libx264) | h265 (libx265) | vp9 (libvpx) | av1 (SVT-AV1/libaom)
//   --------+----------------+----------------+--------------+---------------------
//        0  |       45       |       47       |      60      |         60
//       60  |       23       |       28       |      33      |         35
//      100  |       14       |       16       |      15      |         18
struct CrfAnchors {
    std::string_view codec;
    double at_zero;
    double at_medium;
    double at_hundred;
};

constexpr std::array<CrfAnchors, 4> kCrfTable = {{
    {"h264", 45, 23, 14},
    {"h265", 47, 28, 16},
    {"vp9", 60, 33, 15},
    {"av1", 60, 35, 18},
}};

constexpr int kMediumQuality = 60;
constexpr int64_t kDefaultAudioBitrate = 128'000;
constexpr int64_t kMinVideoBitrate = 10'000;
constexpr int64_t kMaxVideoBitrate = 200'000'000;
constexpr double kMaxFps = 240;

// SVT-AV1 1.4 rejects pictures smaller than 64 pixels on either side.
constexpr int kSvtAv1MinSize = 64;

int64_t maxAudioBitrate(std::string_view audio_codec) {
    if (audio_codec == "mp3") {
        return 320'000;
    }
    if (audio_codec == "opus") {
        return 510'000;
    }
    return 512'000;
}

Status validateTrim(const VideoOptions& options) {
    if (options.start && (!std::isfinite(*options.start) || *options.start < 0)) {
        return Error::invalidArgument(fmt::format(
            "invalid option \"start\": {} must be a number of seconds >= 0", *options.start));
    }
    if (options.end && (!std::isfinite(*options.end) || *options.end <= 0)) {
        return Error::invalidArgument(fmt::format(
            "invalid option \"end\": {} must be a number of seconds > 0", *options.end));
    }
    if (options.start && options.end && *options.start >= *options.end) {
        return Error::invalidArgument(
            fmt::format("invalid option \"start\": {} must be less than \"end\" ({})",
                        *options.start, *options.end));
    }
    return okStatus();
}

Status validateRates(const VideoOptions& options) {
    if (options.quality < 0 || options.quality > 100) {
        return Error::invalidArgument(fmt::format(
            "invalid option \"quality\": {} is not between 0 and 100", options.quality));
    }
    if (options.bitrate &&
        (*options.bitrate < kMinVideoBitrate || *options.bitrate > kMaxVideoBitrate)) {
        return Error::invalidArgument(
            fmt::format("invalid option \"bitrate\": {} is not between {} and {} bits per second",
                        *options.bitrate, kMinVideoBitrate, kMaxVideoBitrate));
    }
    int64_t max_audio = maxAudioBitrate(options.audio_codec);
    if (options.audio_bitrate &&
        (*options.audio_bitrate < 8'000 || *options.audio_bitrate > max_audio)) {
        return Error::invalidArgument(fmt::format(
            "invalid option \"audio_bitrate\": {} is not between 8000 and {} bits per second "
            "for {}",
            *options.audio_bitrate, max_audio, options.audio_codec));
    }
    if (options.fps &&
        (!std::isfinite(*options.fps) || *options.fps <= 0 || *options.fps > kMaxFps)) {
        return Error::invalidArgument(
            fmt::format("invalid option \"fps\": {} is not between 0 (exclusive) and {}",
                        *options.fps, kMaxFps));
    }
    return okStatus();
}

Result<const AVCodec*> findEncoder(const char* name) {
    const AVCodec* codec = avcodec_find_encoder_by_name(name);
    if (codec == nullptr) {
        return Error::internal(
            fmt::format("open encoder {}: not available in this FFmpeg build", name));
    }
    return codec;
}

std::string crfText(std::string_view codec, int quality) {
    return std::to_string(crfForQuality(codec, quality));
}

// Returns the encoder's private options for the requested codec: CRF mode,
// or target-bitrate mode when `options.bitrate` is set.
DictionaryPtr videoEncoderOptions(const VideoOptions& options, std::string_view encoder_name) {
    AVDictionary* dictionary = nullptr;
    bool constant_quality = !options.bitrate.has_value();
    std::string crf = crfText(options.codec, options.quality);
    if (encoder_name == "libx264") {
        av_dict_set(&dictionary, "preset", "veryfast", 0);
        av_dict_set(&dictionary, "profile", "high", 0);
    } else if (encoder_name == "libx265") {
        av_dict_set(&dictionary, "preset", "veryfast", 0);
        av_dict_set(&dictionary, "x265-params", "log-level=error", 0);
    } else if (encoder_name == "libvpx-vp9") {
        // deadline good with cpu-used 5 is libvpx's fast "good" mode;
        // row-mt lets threads share the rows of one tile.
        av_dict_set(&dictionary, "deadline", "good", 0);
        av_dict_set(&dictionary, "cpu-used", "5", 0);
        av_dict_set(&dictionary, "row-mt", "1", 0);
    } else if (encoder_name == "libsvtav1") {
        // Presets run from 0 (slowest) to 13. On a 4 s 720p testsrc2 clip
        // (FFmpeg 5.1 CLI, two cores) preset 10 used 2.8 s of CPU, libx264
        // veryfast 1.2 s and libaom cpu-used 8 in "good" usage 11.4 s.
        av_dict_set(&dictionary, "preset", "10", 0);
    } else if (encoder_name == "libaom-av1") {
        av_dict_set(&dictionary, "usage", "realtime", 0);
        av_dict_set(&dictionary, "cpu-used", "8", 0);
        av_dict_set(&dictionary, "row-mt", "1", 0);
    }
    if (constant_quality) {
        av_dict_set(&dictionary, "crf", crf.c_str(), 0);
    }
    return DictionaryPtr(dictionary);
}

void warnUnusedOptions(AVDictionary* dictionary, std::string_view encoder_name) {
    const AVDictionaryEntry* entry = nullptr;
    while ((entry = av_dict_get(dictionary, "", entry, AV_DICT_IGNORE_SUFFIX)) != nullptr) {
        log::get("media")->warn("encoder option ignored encoder={} option={} value={}",
                                encoder_name, entry->key, entry->value);
    }
}

Result<CodecContextPtr> openVideoEncoderNamed(const char* name, const VideoOptions& options,
                                              const VideoEncoderSetup& setup) {
    BM_ASSIGN_OR_RETURN(const AVCodec* codec, findEncoder(name));
    CodecContextPtr context(avcodec_alloc_context3(codec));
    if (!context) {
        return Error::resourceExhausted("allocate video encoder: out of memory");
    }
    context->width = setup.width;
    context->height = setup.height;
    context->pix_fmt = AV_PIX_FMT_YUV420P;
    context->sample_aspect_ratio = {1, 1};
    context->time_base = setup.time_base;
    context->framerate = setup.frame_rate;
    context->color_primaries = AVCOL_PRI_BT709;
    context->color_trc = AVCOL_TRC_BT709;
    context->colorspace = AVCOL_SPC_BT709;
    context->color_range = AVCOL_RANGE_MPEG;
    context->thread_count = 0;  // one per core, chosen by the encoder
    if (options.bitrate) {
        context->bit_rate = *options.bitrate;
    } else {
        // libvpx treats a bitrate of 0 with a CRF as constant quality.
        context->bit_rate = 0;
    }
    if (setup.global_header) {
        context->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    }

    DictionaryPtr encoder_options = videoEncoderOptions(options, name);
    AVDictionary* raw_options = encoder_options.release();
    int code = avcodec_open2(context.get(), codec, &raw_options);
    encoder_options.reset(raw_options);
    if (code < 0) {
        return toError(code, "open video encoder", name);
    }
    warnUnusedOptions(encoder_options.get(), name);
    return context;
}

}  // namespace

Status validateVideoOptions(const VideoOptions& options) {
    const ContainerRule* rule = findRule(options.format);
    if (rule == nullptr) {
        return Error::invalidArgument(fmt::format(
            "invalid option \"format\": \"{}\" is not one of mp4, webm, mov, mkv", options.format));
    }
    if (!contains({"h264", "h265", "vp9", "av1"}, options.codec)) {
        return Error::invalidArgument(fmt::format(
            "invalid option \"codec\": \"{}\" is not one of h264, h265, vp9, av1", options.codec));
    }
    if (!contains({"aac", "opus", "mp3", "none"}, options.audio_codec)) {
        return Error::invalidArgument(
            fmt::format("invalid option \"audio_codec\": \"{}\" is not one of aac, opus, mp3, none",
                        options.audio_codec));
    }
    if (!contains(rule->video_codecs, options.codec)) {
        return Error::invalidArgument(fmt::format(
            "invalid option \"codec\": \"{}\" cannot be stored in format \"{}\", which accepts {}",
            options.codec, options.format, joined(rule->video_codecs)));
    }
    if (!contains(rule->audio_codecs, options.audio_codec)) {
        return Error::invalidArgument(
            fmt::format("invalid option \"audio_codec\": \"{}\" cannot be stored in format \"{}\", "
                        "which accepts {}",
                        options.audio_codec, options.format, joined(rule->audio_codecs)));
    }
    BM_RETURN_IF_ERROR(validateRates(options));
    BM_RETURN_IF_ERROR(validateTrim(options));
    BM_RETURN_IF_ERROR(validateGeometry(options.geometry));
    BM_RETURN_IF_ERROR(parseBackgroundColour(options.background));
    return okStatus();
}

const char* muxerName(const std::string& format) {
    const ContainerRule* rule = findRule(format);
    return rule != nullptr ? rule->muxer.data() : nullptr;
}

bool isQuickTimeFamily(const std::string& format) {
    return format == "mp4" || format == "mov";
}

int crfForQuality(std::string_view codec, int quality) {
    const CrfAnchors* anchors = &kCrfTable[0];
    for (const CrfAnchors& entry : kCrfTable) {
        if (entry.codec == codec) {
            anchors = &entry;
        }
    }
    double crf = 0;
    if (quality <= kMediumQuality) {
        double share = static_cast<double>(quality) / kMediumQuality;
        crf = anchors->at_zero + (anchors->at_medium - anchors->at_zero) * share;
    } else {
        double share = static_cast<double>(quality - kMediumQuality) / (100 - kMediumQuality);
        crf = anchors->at_medium + (anchors->at_hundred - anchors->at_medium) * share;
    }
    return static_cast<int>(std::lround(crf));
}

Result<CodecContextPtr> openVideoEncoder(const VideoOptions& options,
                                         const VideoEncoderSetup& setup) {
    if (options.codec == "h264") {
        return openVideoEncoderNamed("libx264", options, setup);
    }
    if (options.codec == "h265") {
        return openVideoEncoderNamed("libx265", options, setup);
    }
    if (options.codec == "vp9") {
        return openVideoEncoderNamed("libvpx-vp9", options, setup);
    }
    // AV1: SVT-AV1 is the fastest AV1 encoder in this build (librav1e is
    // slower still), but it needs at least 64x64 pixels, so libaom in its
    // realtime mode takes small outputs and any setup SVT-AV1 rejects.
    if (setup.width >= kSvtAv1MinSize && setup.height >= kSvtAv1MinSize) {
        auto svt = openVideoEncoderNamed("libsvtav1", options, setup);
        if (svt.ok()) {
            return svt;
        }
        log::get("media")->warn("libsvtav1 failed, using libaom-av1 error={}",
                                svt.error().toLogString());
    }
    return openVideoEncoderNamed("libaom-av1", options, setup);
}

Result<CodecContextPtr> openAudioEncoder(const VideoOptions& options,
                                         const AudioEncoderSetup& setup) {
    const char* name = "aac";
    if (options.audio_codec == "opus") {
        name = "libopus";
    } else if (options.audio_codec == "mp3") {
        name = "libmp3lame";
    }
    BM_ASSIGN_OR_RETURN(const AVCodec* codec, findEncoder(name));
    CodecContextPtr context(avcodec_alloc_context3(codec));
    if (!context) {
        return Error::resourceExhausted("allocate audio encoder: out of memory");
    }

    // Sample rate: the input's when supported, else the next higher one
    // the encoder lists, else its highest. Opus is always 48 kHz.
    int sample_rate = 48'000;
    if (options.audio_codec != "opus" && codec->supported_samplerates != nullptr) {
        int best_above = 0;
        int highest = 0;
        for (const int* rate = codec->supported_samplerates; *rate != 0; ++rate) {
            highest = std::max(highest, *rate);
            if (*rate >= setup.input_sample_rate && (best_above == 0 || *rate < best_above)) {
                best_above = *rate;
            }
        }
        sample_rate = best_above != 0 ? best_above : highest;
    }

    // Planar float where the encoder takes it, so no extra conversion.
    AVSampleFormat sample_format =
        codec->sample_fmts != nullptr ? codec->sample_fmts[0] : AV_SAMPLE_FMT_FLTP;
    for (const AVSampleFormat* format = codec->sample_fmts;
         format != nullptr && *format != AV_SAMPLE_FMT_NONE; ++format) {
        if (*format == AV_SAMPLE_FMT_FLTP || *format == AV_SAMPLE_FMT_FLT) {
            sample_format = *format;
            break;
        }
    }

    context->sample_rate = sample_rate;
    context->sample_fmt = sample_format;
    av_channel_layout_default(&context->ch_layout, std::clamp(setup.input_channels, 1, 2));
    context->bit_rate = options.audio_bitrate.value_or(kDefaultAudioBitrate);
    context->time_base = {1, sample_rate};
    if (setup.global_header) {
        context->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    }
    int code = avcodec_open2(context.get(), codec, nullptr);
    if (code < 0) {
        return toError(code, "open audio encoder", name);
    }
    return context;
}

}  // namespace bitmill::media::ffmpeg
