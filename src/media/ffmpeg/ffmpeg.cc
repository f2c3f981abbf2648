// FFmpeg error conversion, input opening and stream selection shared by the
// probing, frame grab, audio and video code in media/ffmpeg.
#include "media/ffmpeg/ffmpeg.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <system_error>

namespace bitmill::media::ffmpeg {

std::string errorText(int code) {
    char buffer[AV_ERROR_MAX_STRING_SIZE] = {};
    if (av_strerror(code, buffer, sizeof(buffer)) < 0) {
        return "unknown FFmpeg error " + std::to_string(code);
    }
    std::string text(buffer);
    // FFmpeg capitalizes its texts ("Invalid data found ..."); messages here
    // continue after a colon, so they start in lower case.
    if (!text.empty() && text[0] >= 'A' && text[0] <= 'Z' &&
        (text.size() < 2 || !(text[1] >= 'A' && text[1] <= 'Z'))) {
        text[0] = static_cast<char>(text[0] - 'A' + 'a');
    }
    return text;
}

namespace {

bool isMediaError(int code) {
    switch (code) {
        case AVERROR_INVALIDDATA:
        case AVERROR_EOF:
        case AVERROR_DECODER_NOT_FOUND:
        case AVERROR_DEMUXER_NOT_FOUND:
        case AVERROR_STREAM_NOT_FOUND:
        case AVERROR_PATCHWELCOME:
        case AVERROR_BSF_NOT_FOUND:
            return true;
        default:
            return false;
    }
}

// Converts an error of opening or reading the header of an existing file:
// apart from memory and file system errors, that is a problem of the
// content, whatever the code (demuxers also return EIO or EINVAL for
// garbage).
Error toOpenError(int code, std::string_view action, const std::string& path) {
    Error error = toError(code, action, path);
    if (code == AVERROR(ENOMEM) || code == AVERROR(EACCES) || code == AVERROR(ENOENT) ||
        code == AVERROR(EISDIR) || error.code() == ErrorCode::UnsupportedMedia) {
        return error;
    }
    return Error::unsupportedMedia(
        error.message() + " (the file is truncated, corrupt or not in a supported format)",
        error.detail());
}

}  // namespace

Error toError(int code, std::string_view action, std::string_view subject) {
    std::string text = errorText(code);
    std::string message = std::string(action) + ": " + text;
    // The subject may be a local path, so it only goes into the detail.
    std::string detail;
    if (!subject.empty()) {
        detail = std::string(action) + " '" + std::string(subject) + "': " + text;
    }
    if (code == AVERROR(ENOMEM)) {
        return {ErrorCode::ResourceExhausted, message + " (out of memory)", detail};
    }
    if (isMediaError(code)) {
        if (code == AVERROR_INVALIDDATA || code == AVERROR_EOF) {
            message += " (the file is truncated, corrupt or not in a supported format)";
        }
        return Error::unsupportedMedia(message, detail);
    }
    return Error::internal(message, detail);
}

Result<InputFormatPtr> openInput(const std::string& path) {
    std::error_code size_error;
    const auto size = std::filesystem::file_size(path, size_error);
    if (size_error) {
        return Error::internal("open input: " + size_error.message(),
                               "open input '" + path + "': " + size_error.message());
    }
    if (size == 0) {
        return Error::unsupportedMedia("open input: the file is empty (0 bytes)",
                                       "open input '" + path + "': empty file");
    }

    // Only the file protocol: an HLS playlist, a concat list or any other
    // nested reference inside the file may not open URLs or other protocols.
    AVDictionary* options = nullptr;
    av_dict_set(&options, "protocol_whitelist", "file", 0);

    // The "file:" prefix keeps a path that contains a colon from being read
    // as a protocol name.
    const std::string url = "file:" + path;
    AVFormatContext* raw_context = nullptr;
    int code = avformat_open_input(&raw_context, url.c_str(), nullptr, &options);
    DictionaryPtr unused_options(options);
    if (code < 0) {
        return toOpenError(code, "open input", path);
    }
    InputFormatPtr context(raw_context);

    // Playlist demuxers open the files that a playlist names. With only the
    // file protocol allowed, those can still be any media file on this disk,
    // so an upload could pull another project's file into its outputs.
    const std::string_view format_name = context->iformat->name;
    if (format_name == "hls" || format_name == "concat" || format_name == "dash") {
        return Error::unsupportedMedia("open input: " + std::string(format_name) +
                                       " playlists are not accepted; upload the media itself");
    }

    code = avformat_find_stream_info(context.get(), nullptr);
    if (code < 0) {
        return toOpenError(code, "read stream info", path);
    }
    return context;
}

int streamRotation(const AVStream* stream) {
#if LIBAVFORMAT_VERSION_INT >= AV_VERSION_INT(60, 15, 100)
    const AVPacketSideData* side_data =
        av_packet_side_data_get(stream->codecpar->coded_side_data,
                                stream->codecpar->nb_coded_side_data,
                                AV_PKT_DATA_DISPLAYMATRIX);
    const uint8_t* matrix = side_data != nullptr && side_data->size >= 9 * sizeof(int32_t)
                                ? side_data->data
                                : nullptr;
#else
    size_t size = 0;
    const uint8_t* matrix = av_stream_get_side_data(stream, AV_PKT_DATA_DISPLAYMATRIX, &size);
    if (size < 9 * sizeof(int32_t)) {
        matrix = nullptr;
    }
#endif
    if (matrix == nullptr) {
        return 0;
    }
    // av_display_rotation_get() returns the counterclockwise angle; players
    // turn the picture clockwise by its negation.
    const double counterclockwise =
        av_display_rotation_get(reinterpret_cast<const int32_t*>(matrix));
    if (std::isnan(counterclockwise)) {
        return 0;
    }
    int quarter_turns = static_cast<int>(std::lround(-counterclockwise / 90.0));
    quarter_turns = ((quarter_turns % 4) + 4) % 4;
    return quarter_turns * 90;
}

int findVideoStream(const AVFormatContext* input) {
    int best = -1;
    int64_t best_score = -1;
    for (unsigned i = 0; i < input->nb_streams; ++i) {
        const AVStream* stream = input->streams[i];
        const AVCodecParameters* parameters = stream->codecpar;
        if (parameters->codec_type != AVMEDIA_TYPE_VIDEO) {
            continue;
        }
        if (stream->disposition & (AV_DISPOSITION_ATTACHED_PIC | AV_DISPOSITION_STILL_IMAGE)) {
            continue;
        }
        if (parameters->width <= 0 || parameters->height <= 0) {
            continue;
        }
        int64_t score = static_cast<int64_t>(parameters->width) * parameters->height;
        if (stream->disposition & AV_DISPOSITION_DEFAULT) {
            score += int64_t{1} << 40;
        }
        if (score > best_score) {
            best_score = score;
            best = static_cast<int>(i);
        }
    }
    return best;
}

int findAudioStream(const AVFormatContext* input) {
    int best = -1;
    int64_t best_score = -1;
    for (unsigned i = 0; i < input->nb_streams; ++i) {
        const AVStream* stream = input->streams[i];
        const AVCodecParameters* parameters = stream->codecpar;
        if (parameters->codec_type != AVMEDIA_TYPE_AUDIO) {
            continue;
        }
        if (parameters->ch_layout.nb_channels <= 0 || parameters->sample_rate <= 0) {
            continue;
        }
        int64_t score = parameters->ch_layout.nb_channels;
        if (stream->disposition & AV_DISPOSITION_DEFAULT) {
            score += 1024;
        }
        if (score > best_score) {
            best_score = score;
            best = static_cast<int>(i);
        }
    }
    return best;
}

Result<CodecContextPtr> openDecoder(const AVFormatContext* input, int stream_index,
                                    int threads) {
    const AVStream* stream = input->streams[stream_index];
    const AVCodec* decoder = avcodec_find_decoder(stream->codecpar->codec_id);
    const std::string subject = "stream " + std::to_string(stream_index);
    if (decoder == nullptr) {
        return Error::unsupportedMedia("open decoder: no decoder for codec '" +
                                       std::string(avcodec_get_name(stream->codecpar->codec_id)) +
                                       "' in " + subject);
    }
    CodecContextPtr context(avcodec_alloc_context3(decoder));
    if (!context) {
        return toError(AVERROR(ENOMEM), "allocate decoder");
    }
    int code = avcodec_parameters_to_context(context.get(), stream->codecpar);
    if (code < 0) {
        return toError(code, "copy codec parameters of " + subject);
    }
    context->pkt_timebase = stream->time_base;
    context->thread_count = threads;
    code = avcodec_open2(context.get(), decoder, nullptr);
    if (code < 0) {
        return toError(code, "open " + std::string(decoder->name) + " decoder for " + subject);
    }
    return context;
}

namespace {

// Formats seconds with at most three decimals and no trailing zeros.
std::string formatSeconds(double seconds) {
    char buffer[32];
    std::snprintf(buffer, sizeof(buffer), "%.3f", seconds);
    std::string text = buffer;
    text.erase(text.find_last_not_of('0') + 1);
    if (!text.empty() && text.back() == '.') {
        text.pop_back();
    }
    return text;
}

}  // namespace

Status checkLimits(int width, int height, double duration_seconds, const Limits& limits) {
    if (width > limits.max_video_width) {
        return Error::resourceExhausted("video width " + std::to_string(width) +
                                        " exceeds the limit of " +
                                        std::to_string(limits.max_video_width) +
                                        " pixels (max_video_width)");
    }
    if (height > limits.max_video_height) {
        return Error::resourceExhausted("video height " + std::to_string(height) +
                                        " exceeds the limit of " +
                                        std::to_string(limits.max_video_height) +
                                        " pixels (max_video_height)");
    }
    if (duration_seconds > limits.max_duration_seconds) {
        return Error::resourceExhausted("duration " + formatSeconds(duration_seconds) +
                                        " seconds exceeds the limit of " +
                                        formatSeconds(limits.max_duration_seconds) +
                                        " seconds (max_duration_seconds)");
    }
    return okStatus();
}

}  // namespace bitmill::media::ffmpeg
