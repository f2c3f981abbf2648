// media::transcodeAudio: decodes the main audio stream, trims it, optionally
// normalizes its loudness, resamples it and encodes it to MP3, AAC in M4A,
// WAV, Vorbis or Opus in Ogg, or FLAC.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "media/ffmpeg/ffmpeg.h"
#include "media/media.h"

namespace bitmill::media {

namespace {

using namespace ffmpeg;

constexpr int64_t kDefaultLossyBitrate = 128'000;
constexpr int kOpusSampleRate = 48'000;
constexpr int kDefaultVorbisQuality = 40;  // on the 0..100 scale: Vorbis q4

// Seeking for a trim lands this many seconds early so the decoder has
// settled (MDCT overlap, MP3 bit reservoir) when the kept part starts.
constexpr double kSeekPrerollSeconds = 0.5;

// Loudness range and true peak targets passed to loudnorm with the
// requested integrated loudness; these are the filter's own defaults.
constexpr double kLoudnessRange = 11.0;
constexpr double kTruePeak = -1.5;

// Encoder and muxer of an output format.
struct OutputFormat {
    std::string_view name;
    const char* encoder;
    const char* muxer;
    bool lossy;
};

constexpr OutputFormat kOutputFormats[] = {
    {"mp3", "libmp3lame", "mp3", true},
    // "aac" is AAC-LC in an MP4 container (M4A brand unless the output
    // name ends in .mp4), written with +faststart.
    {"aac", "aac", "ipod", true},
    {"wav", "pcm_s16le", "wav", false},
    {"ogg", "libvorbis", "ogg", true},
    {"opus", "libopus", "ogg", true},
    {"flac", "flac", "flac", false},
};

// Formats seconds with microsecond precision and no trailing zeros.
std::string formatSeconds(double seconds) {
    char buffer[48];
    std::snprintf(buffer, sizeof(buffer), "%.6f", seconds);
    std::string text = buffer;
    text.erase(text.find_last_not_of('0') + 1);
    if (!text.empty() && text.back() == '.') {
        text.pop_back();
    }
    return text;
}

Result<OutputFormat> findOutputFormat(const AudioOptions& options, const std::string& output) {
    for (const OutputFormat& format : kOutputFormats) {
        if (format.name != options.format) {
            continue;
        }
        OutputFormat chosen = format;
        if (chosen.name == "aac" && std::filesystem::path(output).extension() == ".mp4") {
            chosen.muxer = "mp4";
        }
        return chosen;
    }
    return Error::invalidArgument("transcode audio: format '" + options.format +
                                  "' is not one of mp3, aac, wav, ogg, opus, flac");
}

Status validateOptions(const AudioOptions& options) {
    if (options.channels && *options.channels != 1 && *options.channels != 2) {
        return Error::invalidArgument("transcode audio: channels " +
                                      std::to_string(*options.channels) + " is not 1 or 2");
    }
    if (options.sample_rate && (*options.sample_rate < 8000 || *options.sample_rate > 192000)) {
        return Error::invalidArgument("transcode audio: sample_rate " +
                                      std::to_string(*options.sample_rate) +
                                      " is outside 8000..192000 Hz");
    }
    if (options.quality && (*options.quality < 0 || *options.quality > 100)) {
        return Error::invalidArgument("transcode audio: quality " +
                                      std::to_string(*options.quality) + " is outside 0..100");
    }
    if (options.bitrate && (*options.bitrate < 8000 || *options.bitrate > 640000)) {
        return Error::invalidArgument("transcode audio: bitrate " +
                                      std::to_string(*options.bitrate) +
                                      " is outside 8000..640000 bits per second");
    }
    if (options.start && !(*options.start >= 0)) {
        return Error::invalidArgument("transcode audio: start " + formatSeconds(*options.start) +
                                      " is negative");
    }
    if (options.end && options.start && !(*options.end > *options.start)) {
        return Error::invalidArgument("transcode audio: end " + formatSeconds(*options.end) +
                                      " is not after start " + formatSeconds(*options.start));
    }
    if (options.end && !(*options.end > 0)) {
        return Error::invalidArgument("transcode audio: end " + formatSeconds(*options.end) +
                                      " is not after the start of the input");
    }
    if (options.normalize_lufs &&
        (*options.normalize_lufs < -70 || *options.normalize_lufs > -5)) {
        return Error::invalidArgument("transcode audio: normalize " +
                                      formatSeconds(*options.normalize_lufs) +
                                      " is outside -70..-5 LUFS");
    }
    return okStatus();
}

// Removes a partly written output unless the transcode finished.
class OutputRemover {
public:
    explicit OutputRemover(std::string path) : path_(std::move(path)) {}
    OutputRemover(const OutputRemover&) = delete;
    OutputRemover& operator=(const OutputRemover&) = delete;
    ~OutputRemover() {
        if (!keep_) {
            std::error_code ignored;
            std::filesystem::remove(path_, ignored);
        }
    }
    void keep() { keep_ = true; }

private:
    std::string path_;
    bool keep_ = false;
};

AVChannelLayout defaultLayout(int channels) {
    AVChannelLayout layout{};
    av_channel_layout_default(&layout, channels);
    return layout;
}

// Picks the output channel layout: the requested count, else the source's
// layout when the encoder takes it, else a layout of the encoder with as
// many channels, else stereo (or the encoder's first layout).
AVChannelLayout chooseLayout(const AVCodec* encoder, const AVChannelLayout& source,
                             std::optional<int> requested) {
    AVChannelLayout wanted{};
    if (requested) {
        wanted = defaultLayout(*requested);
    } else if (source.order == AV_CHANNEL_ORDER_NATIVE) {
        av_channel_layout_copy(&wanted, &source);
    } else {
        wanted = defaultLayout(source.nb_channels);
    }
    if (encoder->ch_layouts == nullptr) {
        return wanted;
    }
    const AVChannelLayout* same_count = nullptr;
    const AVChannelLayout* stereo = nullptr;
    const AVChannelLayout stereo_layout = AV_CHANNEL_LAYOUT_STEREO;
    for (const AVChannelLayout* layout = encoder->ch_layouts; layout->nb_channels != 0;
         ++layout) {
        if (av_channel_layout_compare(layout, &wanted) == 0) {
            return wanted;
        }
        if (same_count == nullptr && layout->nb_channels == wanted.nb_channels) {
            same_count = layout;
        }
        if (av_channel_layout_compare(layout, &stereo_layout) == 0) {
            stereo = layout;
        }
    }
    av_channel_layout_uninit(&wanted);
    const AVChannelLayout* chosen =
        same_count != nullptr ? same_count : (stereo != nullptr ? stereo : encoder->ch_layouts);
    AVChannelLayout result{};
    av_channel_layout_copy(&result, chosen);
    return result;
}

// Picks the output sample rate: the requested one when the encoder takes
// it, else the source's, else the encoder's nearest rate. Opus is always
// encoded at 48 kHz unless another rate is requested.
Result<int> chooseSampleRate(const AVCodec* encoder, int source, std::optional<int> requested) {
    const int* rates = encoder->supported_samplerates;
    if (requested) {
        if (rates == nullptr) {
            return *requested;
        }
        std::string accepted;
        for (const int* rate = rates; *rate != 0; ++rate) {
            if (*rate == *requested) {
                return *requested;
            }
            accepted += (accepted.empty() ? "" : ", ") + std::to_string(*rate);
        }
        return Error::invalidArgument("transcode audio: sample_rate " +
                                      std::to_string(*requested) + " is not supported by " +
                                      encoder->name + "; use one of " + accepted);
    }
    if (encoder->id == AV_CODEC_ID_OPUS) {
        return kOpusSampleRate;
    }
    if (rates == nullptr) {
        return source;
    }
    int nearest = rates[0];
    for (const int* rate = rates; *rate != 0; ++rate) {
        const int distance = std::abs(*rate - source);
        const int best_distance = std::abs(nearest - source);
        if (distance < best_distance || (distance == best_distance && *rate > nearest)) {
            nearest = *rate;
        }
    }
    return nearest;
}

AVSampleFormat chooseSampleFormat(const AVCodec* encoder, const AVCodecContext* decoder) {
    const AVSampleFormat* formats = encoder->sample_fmts;
    if (formats == nullptr) {
        return AV_SAMPLE_FMT_FLTP;
    }
    auto supports = [formats](AVSampleFormat wanted) {
        for (const AVSampleFormat* format = formats; *format != AV_SAMPLE_FMT_NONE; ++format) {
            if (*format == wanted) {
                return true;
            }
        }
        return false;
    };
    if (encoder->id == AV_CODEC_ID_FLAC) {
        // FLAC keeps 24-bit sources at 24 bits in s32 samples.
        const bool deep = decoder->bits_per_raw_sample > 16 ||
                          av_get_bytes_per_sample(decoder->sample_fmt) > 2;
        return deep && supports(AV_SAMPLE_FMT_S32) ? AV_SAMPLE_FMT_S32 : AV_SAMPLE_FMT_S16;
    }
    for (AVSampleFormat preferred : {AV_SAMPLE_FMT_FLTP, AV_SAMPLE_FMT_FLT}) {
        if (supports(preferred)) {
            return preferred;
        }
    }
    return formats[0];
}

// Sets the rate control of a lossy encoder. A bitrate wins over a quality.
// With neither, the bitrate is 128 kb/s, except for Vorbis: its managed
// bitrate mode rejects rates that do not fit the channels and sample rate,
// so it gets quality 4 (about 128 kb/s for 44.1 kHz stereo) instead.
// Quality 0..100 is variable bitrate for MP3 (LAME V9..V0) and Vorbis
// (q0..q10). For AAC and Opus, whose FFmpeg encoders have no comparable
// quality scale, it picks a bitrate.
void setRateControl(AVCodecContext* encoder, const AudioOptions& options) {
    if (options.bitrate) {
        encoder->bit_rate = *options.bitrate;
        return;
    }
    if (!options.quality && encoder->codec_id != AV_CODEC_ID_VORBIS) {
        encoder->bit_rate = kDefaultLossyBitrate;
        return;
    }
    const double quality = options.quality.value_or(kDefaultVorbisQuality) / 100.0;
    const int channels = std::min(encoder->ch_layout.nb_channels, 2);
    switch (encoder->codec_id) {
        case AV_CODEC_ID_MP3:
            encoder->flags |= AV_CODEC_FLAG_QSCALE;
            encoder->global_quality = static_cast<int>(std::lround((1 - quality) * 9)) *
                                      FF_QP2LAMBDA;
            break;
        case AV_CODEC_ID_VORBIS:
            encoder->flags |= AV_CODEC_FLAG_QSCALE;
            encoder->global_quality = static_cast<int>(std::lround(quality * 10 * FF_QP2LAMBDA));
            break;
        case AV_CODEC_ID_OPUS:
            // 16..128 kb/s per channel.
            encoder->bit_rate = channels * static_cast<int64_t>(16'000 + quality * 112'000);
            break;
        default:
            // 32..160 kb/s per channel.
            encoder->bit_rate = channels * static_cast<int64_t>(32'000 + quality * 128'000);
            break;
    }
}

struct Source {
    InputFormatPtr input;
    int stream_index = -1;
    CodecContextPtr decoder;
    int64_t start_pts = 0;  // first timestamp of the stream, in its time base
    std::optional<double> duration;
    // True when `duration` comes from a sample table and edit list (MP4,
    // MOV), which mark the encoder padding at the end as not to be played.
    bool exact_duration = false;
};

Result<Source> openSource(const std::string& path, const Limits& limits) {
    Source source;
    BM_ASSIGN_OR_RETURN(source.input, openInput(path));
    source.stream_index = findAudioStream(source.input.get());
    if (source.stream_index < 0) {
        return Error::unsupportedMedia("transcode audio: the input has no audio stream");
    }
    const AVStream* stream = source.input->streams[source.stream_index];
    if (stream->start_time != AV_NOPTS_VALUE) {
        source.start_pts = stream->start_time;
    }
    if (stream->duration != AV_NOPTS_VALUE && stream->duration > 0) {
        source.duration = stream->duration * av_q2d(stream->time_base);
        source.exact_duration =
            std::string_view(source.input->iformat->name) == "mov,mp4,m4a,3gp,3g2,mj2";
    } else if (source.input->duration != AV_NOPTS_VALUE && source.input->duration > 0) {
        source.duration = static_cast<double>(source.input->duration) / AV_TIME_BASE;
    }
    BM_RETURN_IF_ERROR(checkLimits(0, 0, source.duration.value_or(-1), limits));
    BM_ASSIGN_OR_RETURN(source.decoder, openDecoder(source.input.get(), source.stream_index));
    return source;
}

struct Encoder {
    CodecContextPtr context;
    bool fixed_frame_size = false;  // every frame but the last has frame_size samples
};

Result<Encoder> openEncoder(const OutputFormat& format, const AudioOptions& options,
                            const AVCodecContext* decoder, bool global_header) {
    const AVCodec* codec = avcodec_find_encoder_by_name(format.encoder);
    if (codec == nullptr) {
        return Error::internal(std::string("transcode audio: this FFmpeg has no ") +
                               format.encoder + " encoder");
    }
    Encoder encoder;
    encoder.context.reset(avcodec_alloc_context3(codec));
    if (!encoder.context) {
        return toError(AVERROR(ENOMEM), "allocate audio encoder");
    }
    AVCodecContext* context = encoder.context.get();
    BM_ASSIGN_OR_RETURN(context->sample_rate,
                        chooseSampleRate(codec, decoder->sample_rate, options.sample_rate));
    context->ch_layout = chooseLayout(codec, decoder->ch_layout, options.channels);
    context->sample_fmt = chooseSampleFormat(codec, decoder);
    context->time_base = {1, context->sample_rate};
    if (context->sample_fmt == AV_SAMPLE_FMT_S32) {
        context->bits_per_raw_sample = 24;
    }
    if (format.lossy) {
        setRateControl(context, options);
    }
    if (global_header) {
        context->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    }
    // A failed open resets the context, so the settings are described first.
    const std::string settings =
        (context->bit_rate > 0 ? std::to_string(context->bit_rate) + " bits per second at "
                               : std::string()) +
        std::to_string(context->sample_rate) + " Hz with " +
        std::to_string(context->ch_layout.nb_channels) +
        (context->ch_layout.nb_channels == 1 ? " channel" : " channels");
    const int code = avcodec_open2(context, codec, nullptr);
    if (code == AVERROR(EINVAL)) {
        // Encoders reject bitrates that do not fit the channels and rate.
        return Error::invalidArgument(std::string("transcode audio: the ") + format.encoder +
                                      " encoder rejects " + settings);
    }
    if (code < 0) {
        return toError(code, std::string("open ") + format.encoder + " encoder");
    }
    encoder.fixed_frame_size =
        context->frame_size > 0 && !(codec->capabilities & AV_CODEC_CAP_VARIABLE_FRAME_SIZE);
    return encoder;
}

struct AudioGraph {
    FilterGraphPtr graph;
    AVFilterContext* source = nullptr;
    AVFilterContext* sink = nullptr;
};

std::string layoutName(const AVChannelLayout& layout) {
    char buffer[128] = {};
    av_channel_layout_describe(&layout, buffer, sizeof(buffer));
    return buffer;
}

// Builds abuffer -> [atrim] -> [loudnorm] -> aresample -> aformat ->
// abuffersink for frames like `first`. aresample (libswresample) converts
// the rate, the sample format and the channel layout, with its standard
// downmix matrix.
Result<AudioGraph> buildGraph(const AVFrame* first, const AVCodecContext* encoder,
                              const AudioOptions& options, bool fixed_frame_size) {
    AudioGraph result;
    result.graph.reset(avfilter_graph_alloc());
    if (!result.graph) {
        return toError(AVERROR(ENOMEM), "allocate filter graph");
    }
    const std::string source_args =
        "time_base=1/" + std::to_string(first->sample_rate) +
        ":sample_rate=" + std::to_string(first->sample_rate) +
        ":sample_fmt=" + av_get_sample_fmt_name(static_cast<AVSampleFormat>(first->format)) +
        ":channel_layout=" + layoutName(first->ch_layout);
    int code = avfilter_graph_create_filter(&result.source, avfilter_get_by_name("abuffer"),
                                            "in", source_args.c_str(), nullptr,
                                            result.graph.get());
    if (code < 0) {
        return toError(code, "create audio source");
    }
    code = avfilter_graph_create_filter(&result.sink, avfilter_get_by_name("abuffersink"),
                                        "out", nullptr, nullptr, result.graph.get());
    if (code < 0) {
        return toError(code, "create audio sink");
    }

    std::string chain;
    if (options.start || options.end) {
        chain += "atrim";
        char separator = '=';
        if (options.start) {
            chain += separator + std::string("start=") + formatSeconds(*options.start);
            separator = ':';
        }
        if (options.end) {
            chain += separator + std::string("end=") + formatSeconds(*options.end);
        }
        chain += ",asetpts=PTS-STARTPTS,";
    }
    if (options.normalize_lufs) {
        // Single-pass loudnorm: dynamic gain towards the target, which
        // lands within about 1 LU of it on speech and music.
        chain += "loudnorm=I=" + formatSeconds(*options.normalize_lufs) +
                 ":LRA=" + formatSeconds(kLoudnessRange) + ":TP=" + formatSeconds(kTruePeak) +
                 ",";
    }
    const std::string layout = layoutName(encoder->ch_layout);
    const std::string sample_format = av_get_sample_fmt_name(encoder->sample_fmt);
    const std::string rate = std::to_string(encoder->sample_rate);
    chain += "aresample=osr=" + rate + ":ochl=" + layout + ":osf=" + sample_format +
             ",aformat=sample_fmts=" + sample_format + ":sample_rates=" + rate +
             ":channel_layouts=" + layout;

    FilterInOutPtr outputs(avfilter_inout_alloc());
    FilterInOutPtr inputs(avfilter_inout_alloc());
    if (!outputs || !inputs) {
        return toError(AVERROR(ENOMEM), "allocate filter graph");
    }
    outputs->name = av_strdup("in");
    outputs->filter_ctx = result.source;
    inputs->name = av_strdup("out");
    inputs->filter_ctx = result.sink;
    AVFilterInOut* raw_inputs = inputs.release();
    AVFilterInOut* raw_outputs = outputs.release();
    code = avfilter_graph_parse_ptr(result.graph.get(), chain.c_str(), &raw_inputs,
                                    &raw_outputs, nullptr);
    inputs.reset(raw_inputs);
    outputs.reset(raw_outputs);
    if (code < 0) {
        return toError(code, "parse audio filter graph '" + chain + "'");
    }
    code = avfilter_graph_config(result.graph.get(), nullptr);
    if (code < 0) {
        return toError(code, "configure audio filter graph '" + chain + "'");
    }
    if (fixed_frame_size) {
        av_buffersink_set_frame_size(result.sink, encoder->frame_size);
    }
    return result;
}

// Runs decoded frames through the graph and the encoder into the muxer,
// and reports progress.
class AudioPipeline {
public:
    AudioPipeline(Source& source, Encoder& encoder, AVFormatContext* output,
                  const AudioOptions& options, const ProgressCallback& progress)
        : source_(source),
          encoder_(encoder),
          output_(output),
          options_(options),
          progress_(progress) {}
    AudioPipeline(const AudioPipeline&) = delete;
    AudioPipeline& operator=(const AudioPipeline&) = delete;
    ~AudioPipeline() { av_channel_layout_uninit(&first_layout_); }

    Status run() {
        seekToStart();
        PacketPtr packet(av_packet_alloc());
        FramePtr frame(av_frame_alloc());
        if (!packet || !frame) {
            return toError(AVERROR(ENOMEM), "allocate packet");
        }
        bool reading = true;
        while (reading) {
            const int read = av_read_frame(source_.input.get(), packet.get());
            if (read == AVERROR_EOF) {
                break;
            }
            if (read < 0) {
                // A damaged tail ends the input; what was decoded is kept.
                if (samples_encoded_ == 0 && decoded_frames_ == 0) {
                    return toError(read, "read audio packet");
                }
                break;
            }
            if (packet->stream_index != source_.stream_index) {
                av_packet_unref(packet.get());
                continue;
            }
            int code = avcodec_send_packet(source_.decoder.get(), packet.get());
            av_packet_unref(packet.get());
            if (code == AVERROR_INVALIDDATA) {
                continue;  // one corrupt packet costs a frame of audio, not the file
            }
            if (code < 0) {
                return toError(code, "decode audio packet");
            }
            BM_ASSIGN_OR_RETURN(reading, drainDecoder(frame.get()));
        }
        avcodec_send_packet(source_.decoder.get(), nullptr);
        const Result<bool> drained = drainDecoder(frame.get());
        if (!drained.ok()) {
            return drained.error();
        }

        if (decoded_frames_ == 0) {
            return Error::unsupportedMedia(
                "transcode audio: no audio frame could be decoded (the file is truncated or "
                "corrupt)");
        }

        // End of input: flush the graph, then the encoder.
        const int code = av_buffersrc_add_frame(graph_.source, nullptr);
        if (code < 0) {
            return toError(code, "flush audio filter graph");
        }
        BM_RETURN_IF_ERROR(drainGraph());
        BM_RETURN_IF_ERROR(encode(nullptr));
        if (samples_encoded_ == 0) {
            return Error::invalidArgument(
                "transcode audio: no audio in the selected range (start and end must lie "
                "within the input)");
        }
        return okStatus();
    }

private:
    void seekToStart() {
        if (!options_.start || *options_.start <= kSeekPrerollSeconds) {
            return;
        }
        const AVStream* stream = source_.input->streams[source_.stream_index];
        const int64_t target =
            source_.start_pts + static_cast<int64_t>((*options_.start - kSeekPrerollSeconds) /
                                                     av_q2d(stream->time_base));
        const int code = avformat_seek_file(source_.input.get(), source_.stream_index,
                                            std::numeric_limits<int64_t>::min(), target, target,
                                            0);
        // Without a seek the input is read from its start and atrim drops
        // the samples before the start, so a failed seek costs only time.
        if (code >= 0) {
            avcodec_flush_buffers(source_.decoder.get());
        }
    }

    // Returns false once the decoded time is past the requested end.
    Result<bool> drainDecoder(AVFrame* frame) {
        const AVStream* stream = source_.input->streams[source_.stream_index];
        while (true) {
            const int code = avcodec_receive_frame(source_.decoder.get(), frame);
            if (code == AVERROR(EAGAIN) || code == AVERROR_EOF) {
                return true;
            }
            if (code < 0) {
                return toError(code, "decode audio frame");
            }
            if (frame->ch_layout.order != AV_CHANNEL_ORDER_NATIVE) {
                // An unordered layout cannot be downmixed; assume the usual one.
                const int channels = frame->ch_layout.nb_channels;
                av_channel_layout_uninit(&frame->ch_layout);
                frame->ch_layout = defaultLayout(channels);
            }
            // The graph takes the parameters of the first decoded frame,
            // which can differ from the container's (HE-AAC, layouts).
            if (decoded_frames_++ == 0) {
                BM_ASSIGN_OR_RETURN(graph_, buildGraph(frame, encoder_.context.get(), options_,
                                                       encoder_.fixed_frame_size));
                first_rate_ = frame->sample_rate;
                first_format_ = frame->format;
                av_channel_layout_copy(&first_layout_, &frame->ch_layout);
            } else if (frame->sample_rate != first_rate_ || frame->format != first_format_ ||
                       av_channel_layout_compare(&frame->ch_layout, &first_layout_) != 0) {
                av_frame_unref(frame);
                return Error::unsupportedMedia(
                    "transcode audio: the sample rate, sample format or channel layout "
                    "changes inside the stream");
            }

            // Timestamps count samples from the start of the stream; without
            // one the frame follows the previous frame.
            const AVRational sample_base = {1, frame->sample_rate};
            int64_t pts = next_input_pts_;
            if (frame->best_effort_timestamp != AV_NOPTS_VALUE) {
                pts = av_rescale_q(frame->best_effort_timestamp - source_.start_pts,
                                   stream->time_base, sample_base);
            }
            frame->pts = pts;
            next_input_pts_ = pts + frame->nb_samples;
            const double seconds = static_cast<double>(pts) / frame->sample_rate;
            reportProgress(seconds);

            const int added =
                av_buffersrc_add_frame_flags(graph_.source, frame, AV_BUFFERSRC_FLAG_KEEP_REF);
            av_frame_unref(frame);
            if (added < 0) {
                return toError(added, "filter audio frame");
            }
            BM_RETURN_IF_ERROR(drainGraph());
            if (options_.end && seconds > *options_.end + kSeekPrerollSeconds) {
                return false;
            }
        }
    }

    Status drainGraph() {
        FramePtr filtered(av_frame_alloc());
        if (!filtered) {
            return toError(AVERROR(ENOMEM), "allocate frame");
        }
        while (true) {
            const int code = av_buffersink_get_frame(graph_.sink, filtered.get());
            if (code == AVERROR(EAGAIN) || code == AVERROR_EOF) {
                return okStatus();
            }
            if (code < 0) {
                return toError(code, "filter audio frame");
            }
            BM_RETURN_IF_ERROR(encode(filtered.get()));
            av_frame_unref(filtered.get());
        }
    }

    // Sends one frame (nullptr flushes) and writes every packet that comes out.
    Status encode(AVFrame* frame) {
        AVCodecContext* encoder = encoder_.context.get();
        if (frame != nullptr) {
            // Encoders without small-last-frame support get the final short
            // frame padded with silence.
            if (encoder_.fixed_frame_size && frame->nb_samples < encoder->frame_size &&
                !(encoder->codec->capabilities & AV_CODEC_CAP_SMALL_LAST_FRAME)) {
                BM_RETURN_IF_ERROR(padFrame(frame, encoder->frame_size));
            }
            // Sample-count timestamps keep the output gapless and exact.
            frame->pts = samples_encoded_;
            samples_encoded_ += frame->nb_samples;
        }
        int code = avcodec_send_frame(encoder, frame);
        if (code < 0) {
            return toError(code, "encode audio frame");
        }
        PacketPtr packet(av_packet_alloc());
        if (!packet) {
            return toError(AVERROR(ENOMEM), "allocate packet");
        }
        AVStream* stream = output_->streams[0];
        while (true) {
            code = avcodec_receive_packet(encoder, packet.get());
            if (code == AVERROR(EAGAIN) || code == AVERROR_EOF) {
                return okStatus();
            }
            if (code < 0) {
                return toError(code, "encode audio frame");
            }
            packet->stream_index = 0;
            av_packet_rescale_ts(packet.get(), encoder->time_base, stream->time_base);
            code = av_interleaved_write_frame(output_, packet.get());
            if (code < 0) {
                return toError(code, "write audio packet");
            }
        }
    }

    static Status padFrame(AVFrame* frame, int samples) {
        FramePtr padded(av_frame_alloc());
        if (!padded) {
            return toError(AVERROR(ENOMEM), "allocate frame");
        }
        padded->format = frame->format;
        padded->sample_rate = frame->sample_rate;
        padded->nb_samples = samples;
        av_channel_layout_copy(&padded->ch_layout, &frame->ch_layout);
        int code = av_frame_get_buffer(padded.get(), 0);
        if (code < 0) {
            return toError(code, "allocate frame");
        }
        const int channels = frame->ch_layout.nb_channels;
        const auto format = static_cast<AVSampleFormat>(frame->format);
        av_samples_copy(padded->extended_data, frame->extended_data, 0, 0, frame->nb_samples,
                        channels, format);
        av_samples_set_silence(padded->extended_data, frame->nb_samples,
                               samples - frame->nb_samples, channels, format);
        av_frame_unref(frame);
        av_frame_move_ref(frame, padded.get());
        return okStatus();
    }

    void reportProgress(double decoded_seconds) {
        if (!progress_) {
            return;
        }
        const double begin = options_.start.value_or(0);
        std::optional<double> finish = options_.end;
        if (source_.duration && (!finish || *finish > *source_.duration)) {
            finish = source_.duration;
        }
        if (!finish || *finish <= begin) {
            return;
        }
        const double fraction = (decoded_seconds - begin) / (*finish - begin);
        // 100 is reported once the file is complete.
        const int percent = std::clamp(static_cast<int>(fraction * 100), 0, 99);
        if (percent > last_percent_) {
            last_percent_ = percent;
            progress_(percent);
        }
    }

    Source& source_;
    Encoder& encoder_;
    AudioGraph graph_;
    AVFormatContext* output_;
    const AudioOptions& options_;
    const ProgressCallback& progress_;
    int64_t next_input_pts_ = 0;
    int64_t samples_encoded_ = 0;
    int64_t decoded_frames_ = 0;
    int last_percent_ = -1;
    int first_rate_ = 0;
    int first_format_ = AV_SAMPLE_FMT_NONE;
    AVChannelLayout first_layout_{};
};

Result<OutputFormatPtr> openOutput(const std::string& path, const OutputFormat& format) {
    // The muxer keeps the URL: +faststart reopens the file to move the index.
    const std::string url = "file:" + path;
    AVFormatContext* raw_context = nullptr;
    int code = avformat_alloc_output_context2(&raw_context, nullptr, format.muxer, url.c_str());
    if (code < 0 || raw_context == nullptr) {
        return toError(code < 0 ? code : AVERROR_MUXER_NOT_FOUND,
                       std::string("create ") + format.muxer + " muxer");
    }
    OutputFormatPtr context(raw_context);
    code = avio_open(&context->pb, url.c_str(), AVIO_FLAG_WRITE);
    if (code < 0) {
        return toError(code, "open output", path);
    }
    return context;
}

}  // namespace

Status transcodeAudio(const std::string& input, const std::string& output,
                      const AudioOptions& options, const Limits& limits,
                      const ProgressCallback& progress) {
    BM_RETURN_IF_ERROR(validateOptions(options));
    BM_ASSIGN_OR_RETURN(const OutputFormat format, findOutputFormat(options, output));
    BM_ASSIGN_OR_RETURN(Source source, openSource(input, limits));
    if (options.start && source.duration && *options.start >= *source.duration) {
        return Error::invalidArgument("transcode audio: start " + formatSeconds(*options.start) +
                                      " s is not before the end of the input (duration " +
                                      formatSeconds(*source.duration) + " s)");
    }

    // Decoders of MP4 audio return the padding of the last frame too, so
    // the stated duration ends the output where the source's players stop.
    AudioOptions effective = options;
    if (source.exact_duration && (!effective.end || *effective.end > *source.duration)) {
        effective.end = *source.duration;
    }

    OutputRemover remover(output);
    BM_ASSIGN_OR_RETURN(OutputFormatPtr muxer, openOutput(output, format));
    const bool global_header = muxer->oformat->flags & AVFMT_GLOBALHEADER;
    BM_ASSIGN_OR_RETURN(Encoder encoder,
                        openEncoder(format, effective, source.decoder.get(), global_header));

    AVStream* stream = avformat_new_stream(muxer.get(), nullptr);
    if (stream == nullptr) {
        return toError(AVERROR(ENOMEM), "create output stream");
    }
    int code = avcodec_parameters_from_context(stream->codecpar, encoder.context.get());
    if (code < 0) {
        return toError(code, "copy encoder parameters");
    }
    stream->time_base = encoder.context->time_base;

    AVDictionary* muxer_options = nullptr;
    if (std::string_view(format.muxer) == "ipod" || std::string_view(format.muxer) == "mp4") {
        // The index goes before the media data so players can start
        // before the whole file has arrived.
        av_dict_set(&muxer_options, "movflags", "+faststart", 0);
    }
    code = avformat_write_header(muxer.get(), &muxer_options);
    DictionaryPtr unused_options(muxer_options);
    if (code < 0) {
        return toError(code, std::string("write ") + format.muxer + " header");
    }

    AudioPipeline pipeline(source, encoder, muxer.get(), effective, progress);
    BM_RETURN_IF_ERROR(pipeline.run());
    code = av_write_trailer(muxer.get());
    if (code < 0) {
        return toError(code, std::string("write ") + format.muxer + " trailer");
    }
    code = avio_closep(&muxer->pb);
    if (code < 0) {
        return toError(code, "close output", output);
    }
    remover.keep();
    if (progress) {
        progress(100);
    }
    return okStatus();
}

}  // namespace bitmill::media
