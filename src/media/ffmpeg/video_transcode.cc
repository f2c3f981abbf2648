// transcodeVideo: one pass of demuxing, decoding, filtering (orientation,
// geometry, colour, fps), encoding and muxing with the libav* libraries,
// producing an upright, web-safe rendition with optional audio.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <unordered_map>

#include "core/log.h"
#include "media/ffmpeg/ffmpeg.h"
#include "media/ffmpeg/video_encoding.h"
#include "media/ffmpeg/video_filters.h"
#include "media/media.h"

namespace bitmill::media {
namespace {

using ffmpeg::CodecContextPtr;
using ffmpeg::FilterPipeline;
using ffmpeg::Flow;
using ffmpeg::FramePtr;
using ffmpeg::InputFormatPtr;
using ffmpeg::Orientation;
using ffmpeg::OutputFormatPtr;
using ffmpeg::PacketPtr;
using ffmpeg::SourcePicture;

constexpr AVRational kMicrosecondBase = {1, AV_TIME_BASE};

// Maximum number of filtered frames that wait for the video encoder
// thread. A few let decoding run ahead while the encoder's own threads
// are all busy, and each costs memory (1.4 MB for a 720p frame).
constexpr size_t kEncoderQueueFrames = 4;

// The video stream's way from packets to the muxer.
struct VideoPath {
    AVStream* input = nullptr;
    CodecContextPtr decoder;
    Orientation orientation;
    SourcePicture configured;  // frame properties the filter graph was built for
    FilterPipeline filters;
    CodecContextPtr encoder;
    AVStream* output = nullptr;

    // Timestamps of decoded frames, in the input stream's time base and
    // relative to the output's time zero.
    int64_t last_pts = AV_NOPTS_VALUE;
    int64_t last_duration = 0;
    // Latest frame before the trim start; it is shown at time zero when the
    // next frame starts after it.
    FramePtr before_start;
    // Filtered frame waiting for its successor, whose timestamp gives its
    // duration. The encoder time base is used from here on.
    FramePtr pending_frame;
    // Frame durations by pts, handed to the packets the encoder makes of
    // them: FFmpeg 5.1's encoders leave packet durations at 0, and the MP4
    // muxer then drops the last frame's duration from the track.
    std::unordered_map<int64_t, int64_t> packet_durations;
    // Encoder time base: where the first packet starts, and the end of the
    // last frame shown.
    int64_t first_pts = AV_NOPTS_VALUE;
    int64_t first_dts = AV_NOPTS_VALUE;
    int64_t presentation_end = 0;
    // While the encoder drains, the newest packet waits here so that the
    // last one can be given the duration that ends the track in time.
    PacketPtr pending_packet;
    PacketPtr encoded_packet;  // packet that the encoder thread receives into
    int64_t frames_encoded = 0;  // number of frames the encoder accepted
    bool encoder_drained = false;  // the encoder returned its end of stream
    int64_t frames_decoded = 0;
    int64_t decode_errors = 0;
    bool done = false;  // the end trim was reached
};

// The audio stream's way from packets to the muxer.
struct AudioPath {
    AVStream* input = nullptr;
    CodecContextPtr decoder;
    FilterPipeline filters;
    int configured_rate = 0;
    int configured_format = -1;
    AVChannelLayout configured_layout = {};
    CodecContextPtr encoder;
    AVStream* output = nullptr;
    int64_t next_pts = AV_NOPTS_VALUE;  // input time base, relative
    bool done = false;

    ~AudioPath() { av_channel_layout_uninit(&configured_layout); }
};

Result<FramePtr> allocateFrame() {
    FramePtr frame(av_frame_alloc());
    if (!frame) {
        return Error::resourceExhausted("allocate frame: out of memory");
    }
    return frame;
}

bool samePicture(const SourcePicture& a, const SourcePicture& b) {
    return a.width == b.width && a.height == b.height && a.format == b.format &&
           a.transfer == b.transfer && a.primaries == b.primaries && a.matrix == b.matrix &&
           a.range == b.range;
}

class VideoTranscoder {
public:
    VideoTranscoder(const VideoOptions& options, const Limits& limits,
                    const ProgressCallback& progress)
        : options_(options), limits_(limits), progress_(progress) {}

    // SVT-AV1 1.4 blocks forever in its teardown, and also when asked to
    // drain, if it never received a frame (seen with FFmpeg 5.1 when the
    // output could not be opened). An unfinished video encoder therefore
    // gets one black frame when it had none, and is drained before it is
    // freed.
    ~VideoTranscoder() {
        stopEncoderThread();
        if (!video_.encoder || video_.encoder_drained) {
            return;
        }
        AVCodecContext* encoder = video_.encoder.get();
        if (video_.frames_encoded == 0) {
            FramePtr black(av_frame_alloc());
            if (!black) {
                return;
            }
            black->width = encoder->width;
            black->height = encoder->height;
            black->format = encoder->pix_fmt;
            black->pts = 0;
            if (av_frame_get_buffer(black.get(), 0) < 0) {
                return;
            }
            for (int plane = 0; plane < 3; ++plane) {
                int rows = plane == 0 ? encoder->height : (encoder->height + 1) / 2;
                std::memset(black->data[plane], plane == 0 ? 16 : 128,
                            static_cast<size_t>(black->linesize[plane]) * rows);
            }
            avcodec_send_frame(encoder, black.get());
        }
        if (avcodec_send_frame(encoder, nullptr) < 0) {
            return;
        }
        PacketPtr discarded(av_packet_alloc());
        while (discarded && avcodec_receive_packet(encoder, discarded.get()) >= 0) {
            av_packet_unref(discarded.get());
        }
    }

    VideoTranscoder(const VideoTranscoder&) = delete;
    VideoTranscoder& operator=(const VideoTranscoder&) = delete;

    // Opens the input, picks streams, checks limits and trim and opens the decoders.
    Status openSource(const std::string& path);

    // Creates the output file, opens the encoders and writes the header.
    Status openOutput(const std::string& path);

    // Runs the pipeline to the end and writes the trailer.
    Status run();

    bool createdOutput() const { return created_output_; }

private:
    Status selectStreams();
    Status checkInput();
    Status seekToStart();
    Status addOutputStream(AVCodecContext* encoder, AVStream** stream);

    Status decodeVideo(const AVPacket* packet);
    Status acceptVideoFrame(FramePtr frame);
    Status filterVideoFrame(FramePtr frame);
    Status buildVideoGraph(const SourcePicture& picture);
    Status closeVideoGraph(int64_t end_pts);
    Status drainVideoGraph();
    Status queueVideoFrame(FramePtr frame);
    Status encodeHeldVideoFrame(int64_t duration);
    Status encodeVideo(FramePtr frame);
    Status encodeVideoNow(AVFrame* frame);
    void runEncoderThread();
    void stopEncoderThread();

    Status decodeAudio(const AVPacket* packet);
    Status filterAudioFrame(FramePtr frame);
    Status buildAudioGraph(const AVFrame& frame);
    Status drainAudioGraph();
    Status encodeAudio(AVFrame* frame);

    Status writeVideoPackets(bool draining);
    Status writeAudioPackets();
    Status writePacket(AVPacket* packet, const AVCodecContext* encoder, AVStream* stream);
    Status finish();
    Status checkComplete() const;
    int64_t lastVideoFrameDuration() const;
    void reportProgress(double output_seconds);

    const VideoOptions& options_;
    const Limits& limits_;
    const ProgressCallback& progress_;

    InputFormatPtr input_;
    OutputFormatPtr output_;
    bool created_output_ = false;
    VideoPath video_;
    std::optional<AudioPath> audio_;
    PacketPtr packet_;
    std::string background_;
    std::optional<AVRational> fps_;

    // Input timestamp (microseconds) that becomes output time zero.
    int64_t origin_us_ = 0;
    // Output duration when `end` is set, in seconds.
    std::optional<double> trim_length_;
    double input_duration_ = -1;     // seconds, negative when unknown
    double expected_duration_ = -1;  // seconds of output, negative when unknown
    int last_percent_ = -1;

    // The video encoder runs on encoder_thread_, so that decoding and
    // filtering go on while it encodes. When the two run in turn, each
    // waits for its codec's own threads while cores sit idle: the ffmpeg
    // 5.1 program kept 1.8 of 2 cores busy on a 1080p to 720p H.264
    // transcode. Frames reach the thread through encoder_queue_, and a
    // null frame makes it drain. The audio path writes to the same muxer,
    // so every write holds mux_mutex_.
    std::thread encoder_thread_;
    std::mutex encoder_mutex_;
    std::condition_variable encoder_wake_;
    std::deque<FramePtr> encoder_queue_;
    bool encoder_stop_ = false;    // set when the transcoder stops early
    bool encoder_exited_ = false;  // set when the thread has ended with encoder_status_
    Status encoder_status_ = okStatus();
    std::mutex mux_mutex_;
};

Status VideoTranscoder::openSource(const std::string& path) {
    BM_ASSIGN_OR_RETURN(input_, ffmpeg::openInput(path));
    packet_.reset(av_packet_alloc());
    if (!packet_) {
        return Error::resourceExhausted("allocate packet: out of memory");
    }
    BM_ASSIGN_OR_RETURN(background_, ffmpeg::parseBackgroundColour(options_.background));
    if (options_.fps) {
        fps_ = av_d2q(*options_.fps, 1'001'000);
    }
    BM_RETURN_IF_ERROR(selectStreams());
    BM_RETURN_IF_ERROR(checkInput());

    BM_ASSIGN_OR_RETURN(video_.decoder, ffmpeg::openDecoder(input_.get(), video_.input->index));
    if (audio_) {
        auto decoder = ffmpeg::openDecoder(input_.get(), audio_->input->index);
        if (!decoder.ok()) {
            // A video with an audio codec FFmpeg cannot decode still converts.
            log::get("media")->warn("audio dropped: {}", decoder.error().toLogString());
            audio_->input->discard = AVDISCARD_ALL;
            audio_.reset();
        } else {
            audio_->decoder = std::move(decoder).value();
        }
    }
    return seekToStart();
}

Status VideoTranscoder::selectStreams() {
    int video_index = ffmpeg::findVideoStream(input_.get());
    if (video_index < 0) {
        return Error::unsupportedMedia("input has no video stream");
    }
    int audio_index = options_.audio_codec == "none" ? -1 : ffmpeg::findAudioStream(input_.get());
    // Reading only the chosen streams skips subtitles, data and cover art.
    int subtitle_streams = 0;
    for (unsigned i = 0; i < input_->nb_streams; ++i) {
        int index = static_cast<int>(i);
        if (index != video_index && index != audio_index) {
            input_->streams[i]->discard = AVDISCARD_ALL;
        }
        if (input_->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_SUBTITLE) {
            ++subtitle_streams;
        }
    }
    if (subtitle_streams > 0) {
        log::get("media")->warn("subtitle streams dropped from the video output count={}",
                                subtitle_streams);
    }

    video_.input = input_->streams[video_index];
    size_t matrix_size = 0;
    const uint8_t* matrix =
        av_stream_get_side_data(video_.input, AV_PKT_DATA_DISPLAYMATRIX, &matrix_size);
    if (matrix != nullptr && matrix_size >= 9 * sizeof(int32_t)) {
        video_.orientation =
            ffmpeg::orientationFromDisplayMatrix(reinterpret_cast<const int32_t*>(matrix));
    }

    if (audio_index >= 0) {
        audio_.emplace();
        audio_->input = input_->streams[audio_index];
    }
    return okStatus();
}

Status VideoTranscoder::checkInput() {
    const AVCodecParameters* parameters = video_.input->codecpar;
    int width = parameters->width;
    int height = parameters->height;
    if (video_.orientation.swaps_axes) {
        std::swap(width, height);
    }
    if (input_->duration != AV_NOPTS_VALUE && input_->duration > 0) {
        input_duration_ = static_cast<double>(input_->duration) / AV_TIME_BASE;
    } else if (video_.input->duration != AV_NOPTS_VALUE && video_.input->duration > 0) {
        input_duration_ =
            static_cast<double>(video_.input->duration) * av_q2d(video_.input->time_base);
    }
    BM_RETURN_IF_ERROR(ffmpeg::checkLimits(width, height, input_duration_, limits_));

    double start = options_.start.value_or(0.0);
    if (input_duration_ >= 0 && start >= input_duration_) {
        return Error::invalidArgument(fmt::format(
            "invalid option \"start\": {} is not before the end of the input ({:.3f} seconds)",
            start, input_duration_));
    }
    if (options_.end) {
        trim_length_ = *options_.end - start;
    }
    double end = input_duration_;
    if (options_.end && (end < 0 || *options_.end < end)) {
        end = *options_.end;
    }
    expected_duration_ = end >= 0 ? end - start : -1;

    int64_t input_start = input_->start_time != AV_NOPTS_VALUE ? input_->start_time : 0;
    origin_us_ = input_start + static_cast<int64_t>(std::llround(start * AV_TIME_BASE));
    return okStatus();
}

Status VideoTranscoder::seekToStart() {
    if (!options_.start || *options_.start <= 0) {
        return okStatus();
    }
    // Lands on the last keyframe at or before the start; the frames between
    // it and the start are decoded and dropped.
    int code = avformat_seek_file(input_.get(), -1, INT64_MIN, origin_us_, origin_us_, 0);
    if (code < 0) {
        log::get("media")->warn("seek failed, reading from the beginning error={}",
                                ffmpeg::errorText(code));
    }
    return okStatus();
}

Status VideoTranscoder::addOutputStream(AVCodecContext* encoder, AVStream** stream) {
    AVStream* created = avformat_new_stream(output_.get(), nullptr);
    if (created == nullptr) {
        return Error::resourceExhausted("create output stream: out of memory");
    }
    int code = avcodec_parameters_from_context(created->codecpar, encoder);
    if (code < 0) {
        return ffmpeg::toError(code, "copy encoder parameters");
    }
    created->time_base = encoder->time_base;
    *stream = created;
    return okStatus();
}

Status VideoTranscoder::openOutput(const std::string& path) {
    // The "file:" prefix keeps a colon in the path from naming a protocol.
    // The muxer keeps the URL: +faststart reopens the file by it.
    std::string url = "file:" + path;
    AVFormatContext* raw_output = nullptr;
    int code = avformat_alloc_output_context2(&raw_output, nullptr,
                                              ffmpeg::muxerName(options_.format), url.c_str());
    if (code < 0 || raw_output == nullptr) {
        return ffmpeg::toError(code < 0 ? code : AVERROR_MUXER_NOT_FOUND, "create output",
                               options_.format);
    }
    output_.reset(raw_output);
    bool global_header = (output_->oformat->flags & AVFMT_GLOBALHEADER) != 0;

    // Video encoder: the frame size comes from the stream parameters; a
    // decoded size that differs is scaled to it in the filter graph.
    SourcePicture declared;
    declared.width = video_.input->codecpar->width;
    declared.height = video_.input->codecpar->height;
    declared.sample_aspect_ratio = video_.input->codecpar->sample_aspect_ratio;
    ffmpeg::DisplaySize upright = ffmpeg::uprightSize(declared, video_.orientation);
    ffmpeg::FramePlan plan =
        ffmpeg::planFrameGeometry(upright.width, upright.height, options_.geometry, limits_);
    ffmpeg::VideoEncoderSetup video_setup;
    video_setup.width = plan.output_width;
    video_setup.height = plan.output_height;
    video_setup.time_base = fps_ ? av_inv_q(*fps_) : video_.input->time_base;
    video_setup.frame_rate =
        fps_ ? *fps_ : av_guess_frame_rate(input_.get(), video_.input, nullptr);
    if (video_setup.frame_rate.num <= 0 || video_setup.frame_rate.den <= 0) {
        video_setup.frame_rate = {25, 1};
    }
    video_setup.global_header = global_header;
    BM_ASSIGN_OR_RETURN(video_.encoder, ffmpeg::openVideoEncoder(options_, video_setup));
    BM_RETURN_IF_ERROR(addOutputStream(video_.encoder.get(), &video_.output));
    if (options_.codec == "h265" && ffmpeg::isQuickTimeFamily(options_.format)) {
        // Apple players only accept HEVC in the 'hvc1' sample entry, which
        // keeps parameter sets out of band; FFmpeg would write 'hev1'.
        video_.output->codecpar->codec_tag = MKTAG('h', 'v', 'c', '1');
    }
    if (fps_) {
        video_.output->avg_frame_rate = *fps_;
    }

    if (audio_) {
        ffmpeg::AudioEncoderSetup audio_setup;
        audio_setup.input_sample_rate = audio_->input->codecpar->sample_rate;
        audio_setup.input_channels = audio_->input->codecpar->ch_layout.nb_channels;
        audio_setup.global_header = global_header;
        BM_ASSIGN_OR_RETURN(audio_->encoder, ffmpeg::openAudioEncoder(options_, audio_setup));
        BM_RETURN_IF_ERROR(addOutputStream(audio_->encoder.get(), &audio_->output));
    }

    AVDictionary* io_options = nullptr;
    av_dict_set(&io_options, "protocol_whitelist", "file", 0);
    code = avio_open2(&output_->pb, url.c_str(), AVIO_FLAG_WRITE, nullptr, &io_options);
    ffmpeg::DictionaryPtr unused_io_options(io_options);
    if (code < 0) {
        return ffmpeg::toError(code, "create output file", path);
    }
    created_output_ = true;

    AVDictionary* muxer_options = nullptr;
    if (ffmpeg::isQuickTimeFamily(options_.format)) {
        // Moves the index before the media data so playback can start
        // before the whole file has been downloaded.
        av_dict_set(&muxer_options, "movflags", "+faststart", 0);
    }
    code = avformat_write_header(output_.get(), &muxer_options);
    ffmpeg::DictionaryPtr unused_muxer_options(muxer_options);
    if (code < 0) {
        return ffmpeg::toError(code, "write output header", options_.format);
    }
    reportProgress(0);
    return okStatus();
}

Status VideoTranscoder::run() {
    while (!video_.done || (audio_ && !audio_->done)) {
        int code = av_read_frame(input_.get(), packet_.get());
        if (code == AVERROR_EOF) {
            break;
        }
        if (code < 0) {
            return ffmpeg::toError(code, "read input");
        }
        Status status = okStatus();
        if (packet_->stream_index == video_.input->index && !video_.done) {
            status = decodeVideo(packet_.get());
        } else if (audio_ && packet_->stream_index == audio_->input->index && !audio_->done) {
            status = decodeAudio(packet_.get());
        }
        av_packet_unref(packet_.get());
        BM_RETURN_IF_ERROR(status);
    }
    return finish();
}

// ---------------------------------------------------------------- video

Status VideoTranscoder::decodeVideo(const AVPacket* packet) {
    int code = avcodec_send_packet(video_.decoder.get(), packet);
    if (code == AVERROR_INVALIDDATA) {
        // A damaged packet costs a few frames, as in any player; a stream
        // that yields no frame at all fails in finish().
        ++video_.decode_errors;
        return okStatus();
    }
    if (code < 0 && code != AVERROR_EOF) {
        return ffmpeg::toError(code, "decode video");
    }
    while (true) {
        BM_ASSIGN_OR_RETURN(FramePtr frame, allocateFrame());
        code = avcodec_receive_frame(video_.decoder.get(), frame.get());
        if (code == AVERROR(EAGAIN) || code == AVERROR_EOF) {
            return okStatus();
        }
        if (code == AVERROR_INVALIDDATA) {
            ++video_.decode_errors;
            continue;
        }
        if (code < 0) {
            return ffmpeg::toError(code, "decode video");
        }
        ++video_.frames_decoded;
        BM_RETURN_IF_ERROR(acceptVideoFrame(std::move(frame)));
    }
}

// Places a decoded frame on the output timeline, applies the trim and
// passes it on to the filter graph.
Status VideoTranscoder::acceptVideoFrame(FramePtr frame) {
    if (video_.done) {
        return okStatus();
    }
    AVRational time_base = video_.input->time_base;
    int64_t origin = av_rescale_q(origin_us_, kMicrosecondBase, time_base);
    int64_t timestamp = frame->best_effort_timestamp;
    if (timestamp == AV_NOPTS_VALUE) {
        timestamp = video_.last_pts != AV_NOPTS_VALUE
                        ? origin + video_.last_pts + std::max<int64_t>(video_.last_duration, 1)
                        : origin;
    }
    int64_t pts = timestamp - origin;

    if (trim_length_ && pts >= av_rescale_q(std::llround(*trim_length_ * AV_TIME_BASE),
                                            kMicrosecondBase, time_base)) {
        video_.done = true;
        return okStatus();
    }
    if (pts < 0) {
        video_.before_start = std::move(frame);
        return okStatus();
    }
    if (video_.last_pts != AV_NOPTS_VALUE && pts <= video_.last_pts) {
        // Timestamps that go backwards or repeat would be rejected by the
        // muxer; the frame is dropped as players do.
        return okStatus();
    }
    double seconds = pts * av_q2d(time_base);
    if (seconds > limits_.max_duration_seconds) {
        return ffmpeg::checkLimits(0, 0, seconds, limits_);
    }

    if (video_.before_start) {
        if (pts > 0) {
            video_.before_start->pts = 0;
            video_.last_pts = 0;
            BM_RETURN_IF_ERROR(filterVideoFrame(std::move(video_.before_start)));
        }
        video_.before_start.reset();
    }
    int64_t duration = frame->pkt_duration;
    if (duration <= 0 && video_.last_pts != AV_NOPTS_VALUE) {
        duration = pts - video_.last_pts;
    }
    if (duration > 0) {
        video_.last_duration = duration;
    }
    video_.last_pts = pts;
    frame->pts = pts;
    return filterVideoFrame(std::move(frame));
}

Status VideoTranscoder::filterVideoFrame(FramePtr frame) {
    if (frame->format < 0 || frame->width <= 0 || frame->height <= 0) {
        return Error::unsupportedMedia("decode video: a frame has no size or pixel format");
    }
    SourcePicture picture = ffmpeg::sourcePictureOf(*frame);
    if (!video_.filters.graph || !samePicture(picture, video_.configured)) {
        if (video_.filters.graph) {
            // The frame size or format changed midway: finish the old graph
            // and build one for the new frames.
            BM_RETURN_IF_ERROR(closeVideoGraph(frame->pts));
        }
        BM_RETURN_IF_ERROR(buildVideoGraph(picture));
    }
    int code = av_buffersrc_add_frame_flags(video_.filters.source, frame.get(), 0);
    if (code < 0) {
        return ffmpeg::toError(code, "filter video");
    }
    return drainVideoGraph();
}

Status VideoTranscoder::buildVideoGraph(const SourcePicture& picture) {
    ffmpeg::DisplaySize upright = ffmpeg::uprightSize(picture, video_.orientation);
    ffmpeg::VideoFilterSpec spec;
    spec.orientation = video_.orientation;
    spec.plan =
        ffmpeg::planFrameGeometry(upright.width, upright.height, options_.geometry, limits_);
    spec.fps = fps_;
    spec.background = background_;
    spec.encoder_width = video_.encoder->width;
    spec.encoder_height = video_.encoder->height;
    std::string description = ffmpeg::describeVideoFilters(picture, spec);
    log::get("media")->debug("video filters graph={}", description);
    BM_ASSIGN_OR_RETURN(video_.filters,
                        ffmpeg::createVideoPipeline(picture, video_.input->time_base, description));
    video_.configured = picture;
    return okStatus();
}

// Ends the graph's input at `end_pts` (input time base) and passes the
// remaining frames on. The end time sets how long the fps filter shows the
// last frame.
Status VideoTranscoder::closeVideoGraph(int64_t end_pts) {
    int code = av_buffersrc_close(video_.filters.source, end_pts, AV_BUFFERSRC_FLAG_PUSH);
    if (code < 0) {
        return ffmpeg::toError(code, "close video filter graph");
    }
    BM_RETURN_IF_ERROR(drainVideoGraph());
    video_.filters = FilterPipeline{};
    return okStatus();
}

Status VideoTranscoder::drainVideoGraph() {
    while (true) {
        BM_ASSIGN_OR_RETURN(FramePtr frame, allocateFrame());
        BM_ASSIGN_OR_RETURN(Flow flow, ffmpeg::pullFilteredFrame(video_.filters.sink, frame.get()));
        if (flow != Flow::Got) {
            return okStatus();
        }
        AVRational sink_base = av_buffersink_get_time_base(video_.filters.sink);
        frame->pts = av_rescale_q(frame->pts, sink_base, video_.encoder->time_base);
        BM_RETURN_IF_ERROR(queueVideoFrame(std::move(frame)));
    }
}

// Holds each filtered frame until the next one arrives, so that its
// duration is known when it goes to the encoder.
Status VideoTranscoder::queueVideoFrame(FramePtr frame) {
    if (video_.pending_frame) {
        int64_t duration = frame->pts - video_.pending_frame->pts;
        if (duration <= 0) {
            return okStatus();
        }
        BM_RETURN_IF_ERROR(encodeHeldVideoFrame(duration));
    }
    video_.pending_frame = std::move(frame);
    return okStatus();
}

Status VideoTranscoder::encodeHeldVideoFrame(int64_t duration) {
    AVFrame* frame = video_.pending_frame.get();
    // A picture type from the decoder would force keyframes where the
    // source had them.
    frame->pict_type = AV_PICTURE_TYPE_NONE;
    frame->pkt_duration = duration;
    if (video_.first_pts == AV_NOPTS_VALUE) {
        video_.first_pts = frame->pts;
    }
    video_.presentation_end = std::max(video_.presentation_end, frame->pts + duration);
    reportProgress(static_cast<double>(frame->pts + duration) * av_q2d(video_.encoder->time_base));
    return encodeVideo(std::move(video_.pending_frame));
}

// Hands `frame` to the encoder thread, which starts on the first frame,
// and waits while the queue is full. A null frame ends the stream: then
// the call waits for the thread to finish. Returns the thread's error
// once it has one.
Status VideoTranscoder::encodeVideo(FramePtr frame) {
    if (!video_.encoded_packet) {
        video_.encoded_packet.reset(av_packet_alloc());
        if (!video_.encoded_packet) {
            return Error::resourceExhausted("allocate packet: out of memory");
        }
    }
    if (!encoder_thread_.joinable()) {
        if (frame == nullptr || encoder_exited_) {
            return encodeVideoNow(frame.get());
        }
        try {
            encoder_thread_ = std::thread(&VideoTranscoder::runEncoderThread, this);
        } catch (const std::system_error& error) {
            // Encoding on this thread from here on gives the same output.
            log::get("media")->warn(
                "start video encoder thread failed, encoding on the calling thread: {}",
                error.what());
            encoder_exited_ = true;
            return encodeVideoNow(frame.get());
        }
    }
    bool end = frame == nullptr;
    {
        std::unique_lock lock(encoder_mutex_);
        encoder_wake_.wait(lock, [&] {
            return encoder_exited_ || encoder_queue_.size() < kEncoderQueueFrames;
        });
        if (encoder_exited_) {
            return encoder_status_;
        }
        encoder_queue_.push_back(std::move(frame));
    }
    encoder_wake_.notify_all();
    if (end) {
        encoder_thread_.join();
        return encoder_status_;
    }
    return okStatus();
}

void VideoTranscoder::runEncoderThread() {
    Status status = okStatus();
    while (true) {
        FramePtr frame;
        {
            std::unique_lock lock(encoder_mutex_);
            encoder_wake_.wait(lock, [&] { return encoder_stop_ || !encoder_queue_.empty(); });
            if (encoder_stop_) {
                break;
            }
            frame = std::move(encoder_queue_.front());
            encoder_queue_.pop_front();
        }
        encoder_wake_.notify_all();
        status = encodeVideoNow(frame.get());
        if (!status.ok() || frame == nullptr) {
            break;
        }
    }
    {
        std::lock_guard lock(encoder_mutex_);
        encoder_status_ = std::move(status);
        encoder_exited_ = true;
    }
    encoder_wake_.notify_all();
}

// Ends the encoder thread without draining the encoder, for a transcoder
// that stops early. The destructor drains the encoder afterwards.
void VideoTranscoder::stopEncoderThread() {
    if (!encoder_thread_.joinable()) {
        return;
    }
    {
        std::lock_guard lock(encoder_mutex_);
        encoder_stop_ = true;
    }
    encoder_wake_.notify_all();
    encoder_thread_.join();
}

Status VideoTranscoder::encodeVideoNow(AVFrame* frame) {
    if (frame != nullptr) {
        video_.packet_durations[frame->pts] = frame->pkt_duration;
    }
    int code = avcodec_send_frame(video_.encoder.get(), frame);
    if (code < 0 && code != AVERROR_EOF) {
        return ffmpeg::toError(code, "encode video", options_.codec);
    }
    if (frame != nullptr) {
        ++video_.frames_encoded;
    }
    return writeVideoPackets(frame == nullptr);
}

// Returns the duration of the last frame in the encoder time base: one
// frame at the requested fps, else the last input frame's duration, cut
// at the end trim.
int64_t VideoTranscoder::lastVideoFrameDuration() const {
    AVRational encoder_base = video_.encoder->time_base;
    int64_t duration = 0;
    if (fps_) {
        duration = av_rescale_q(1, av_inv_q(*fps_), encoder_base);
    } else if (video_.last_duration > 0) {
        duration = av_rescale_q(video_.last_duration, video_.input->time_base, encoder_base);
    } else {
        duration = av_rescale_q(1, av_inv_q(video_.encoder->framerate), encoder_base);
    }
    if (trim_length_ && video_.pending_frame) {
        int64_t end = av_rescale_q(std::llround(*trim_length_ * AV_TIME_BASE), kMicrosecondBase,
                                   encoder_base);
        duration = std::min(duration, end - video_.pending_frame->pts);
    }
    return std::max<int64_t>(duration, 1);
}

// ---------------------------------------------------------------- audio

Status VideoTranscoder::decodeAudio(const AVPacket* packet) {
    int code = avcodec_send_packet(audio_->decoder.get(), packet);
    if (code == AVERROR_INVALIDDATA) {
        return okStatus();
    }
    if (code < 0 && code != AVERROR_EOF) {
        return ffmpeg::toError(code, "decode audio");
    }
    while (true) {
        BM_ASSIGN_OR_RETURN(FramePtr frame, allocateFrame());
        code = avcodec_receive_frame(audio_->decoder.get(), frame.get());
        if (code == AVERROR(EAGAIN) || code == AVERROR_EOF) {
            return okStatus();
        }
        if (code == AVERROR_INVALIDDATA) {
            continue;
        }
        if (code < 0) {
            return ffmpeg::toError(code, "decode audio");
        }
        BM_RETURN_IF_ERROR(filterAudioFrame(std::move(frame)));
    }
}

Status VideoTranscoder::filterAudioFrame(FramePtr frame) {
    if (audio_->done) {
        return okStatus();
    }
    AVRational time_base = audio_->input->time_base;
    int64_t origin = av_rescale_q(origin_us_, kMicrosecondBase, time_base);
    int64_t pts = frame->best_effort_timestamp != AV_NOPTS_VALUE
                      ? frame->best_effort_timestamp - origin
                      : audio_->next_pts;
    if (pts == AV_NOPTS_VALUE) {
        pts = 0;
    }
    if (trim_length_ && pts * av_q2d(time_base) >= *trim_length_) {
        audio_->done = true;
        return okStatus();
    }
    frame->pts = pts;
    audio_->next_pts =
        pts + av_rescale_q(frame->nb_samples, AVRational{1, frame->sample_rate}, time_base);

    // Streams that only give a channel count get the default layout for it.
    if (frame->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC) {
        int channels = frame->ch_layout.nb_channels;
        av_channel_layout_uninit(&frame->ch_layout);
        av_channel_layout_default(&frame->ch_layout, channels);
    }
    bool changed = frame->sample_rate != audio_->configured_rate ||
                   frame->format != audio_->configured_format ||
                   av_channel_layout_compare(&frame->ch_layout, &audio_->configured_layout) != 0;
    if (!audio_->filters.graph || changed) {
        if (audio_->filters.graph) {
            int code = av_buffersrc_close(audio_->filters.source, pts, AV_BUFFERSRC_FLAG_PUSH);
            if (code < 0) {
                return ffmpeg::toError(code, "close audio filter graph");
            }
            BM_RETURN_IF_ERROR(drainAudioGraph());
        }
        BM_RETURN_IF_ERROR(buildAudioGraph(*frame));
    }
    int code = av_buffersrc_add_frame_flags(audio_->filters.source, frame.get(), 0);
    if (code < 0) {
        return ffmpeg::toError(code, "filter audio");
    }
    return drainAudioGraph();
}

Status VideoTranscoder::buildAudioGraph(const AVFrame& frame) {
    const AVCodecContext* encoder = audio_->encoder.get();
    ffmpeg::AudioTarget target;
    target.sample_rate = encoder->sample_rate;
    target.sample_format = encoder->sample_fmt;
    target.channels = encoder->ch_layout.nb_channels;
    target.end_seconds = trim_length_;
    bool variable_size = (encoder->codec->capabilities & AV_CODEC_CAP_VARIABLE_FRAME_SIZE) != 0;
    int frame_size = variable_size ? 0 : encoder->frame_size;
    std::string description = ffmpeg::describeAudioFilters(target);
    log::get("media")->debug("audio filters graph={}", description);
    BM_ASSIGN_OR_RETURN(
        audio_->filters,
        ffmpeg::createAudioPipeline(frame, audio_->input->time_base, description, frame_size));
    audio_->configured_rate = frame.sample_rate;
    audio_->configured_format = frame.format;
    av_channel_layout_uninit(&audio_->configured_layout);
    int code = av_channel_layout_copy(&audio_->configured_layout, &frame.ch_layout);
    if (code < 0) {
        return ffmpeg::toError(code, "copy channel layout");
    }
    return okStatus();
}

Status VideoTranscoder::drainAudioGraph() {
    while (true) {
        BM_ASSIGN_OR_RETURN(FramePtr frame, allocateFrame());
        BM_ASSIGN_OR_RETURN(Flow flow,
                            ffmpeg::pullFilteredFrame(audio_->filters.sink, frame.get()));
        if (flow != Flow::Got) {
            return okStatus();
        }
        AVRational sink_base = av_buffersink_get_time_base(audio_->filters.sink);
        frame->pts = av_rescale_q(frame->pts, sink_base, audio_->encoder->time_base);
        BM_RETURN_IF_ERROR(encodeAudio(frame.get()));
    }
}

Status VideoTranscoder::encodeAudio(AVFrame* frame) {
    int code = avcodec_send_frame(audio_->encoder.get(), frame);
    if (code < 0 && code != AVERROR_EOF) {
        return ffmpeg::toError(code, "encode audio", options_.audio_codec);
    }
    return writeAudioPackets();
}

// ---------------------------------------------------------------- output

Status VideoTranscoder::writeVideoPackets(bool draining) {
    AVCodecContext* encoder = video_.encoder.get();
    AVPacket* packet = video_.encoded_packet.get();
    while (true) {
        int code = avcodec_receive_packet(encoder, packet);
        if (code == AVERROR(EAGAIN)) {
            return okStatus();
        }
        if (code == AVERROR_EOF) {
            video_.encoder_drained = true;
            break;
        }
        if (code < 0) {
            return ffmpeg::toError(code, "encode video", options_.codec);
        }
        auto found = video_.packet_durations.find(packet->pts);
        if (found != video_.packet_durations.end()) {
            packet->duration = found->second;
            video_.packet_durations.erase(found);
        }
        if (video_.first_dts == AV_NOPTS_VALUE) {
            video_.first_dts = packet->dts;
        }
        if (!draining) {
            BM_RETURN_IF_ERROR(writePacket(packet, encoder, video_.output));
            continue;
        }
        if (video_.pending_packet) {
            BM_RETURN_IF_ERROR(writePacket(video_.pending_packet.get(), encoder, video_.output));
        } else {
            video_.pending_packet.reset(av_packet_alloc());
            if (!video_.pending_packet) {
                return Error::resourceExhausted("allocate packet: out of memory");
            }
        }
        av_packet_move_ref(video_.pending_packet.get(), packet);
    }
    if (!video_.pending_packet || video_.pending_packet->size == 0) {
        return okStatus();
    }
    AVPacket* last = video_.pending_packet.get();
    if (ffmpeg::isQuickTimeFamily(options_.format) && video_.first_dts != AV_NOPTS_VALUE) {
        // The MP4 muxer ends a track at the last packet's decoding time
        // plus its duration, counted from the first decoding time. With
        // B-frames and variable frame durations that differs from where
        // the last shown frame ends, so the last duration makes up for it.
        int64_t track_length = video_.presentation_end - video_.first_pts;
        int64_t duration = track_length - (last->dts - video_.first_dts);
        if (duration > 0) {
            last->duration = duration;
        }
    }
    return writePacket(last, encoder, video_.output);
}

Status VideoTranscoder::writeAudioPackets() {
    AVCodecContext* encoder = audio_->encoder.get();
    while (true) {
        int code = avcodec_receive_packet(encoder, packet_.get());
        if (code == AVERROR(EAGAIN) || code == AVERROR_EOF) {
            return okStatus();
        }
        if (code < 0) {
            return ffmpeg::toError(code, "encode audio", options_.audio_codec);
        }
        BM_RETURN_IF_ERROR(writePacket(packet_.get(), encoder, audio_->output));
    }
}

Status VideoTranscoder::writePacket(AVPacket* packet, const AVCodecContext* encoder,
                                    AVStream* stream) {
    packet->stream_index = stream->index;
    av_packet_rescale_ts(packet, encoder->time_base, stream->time_base);
    std::lock_guard lock(mux_mutex_);
    int code = av_interleaved_write_frame(output_.get(), packet);
    if (code < 0) {
        return ffmpeg::toError(code, "write output");
    }
    return okStatus();
}

Status VideoTranscoder::finish() {
    // Frames still inside the decoders.
    if (!video_.done) {
        BM_RETURN_IF_ERROR(decodeVideo(nullptr));
    }
    if (audio_ && !audio_->done) {
        BM_RETURN_IF_ERROR(decodeAudio(nullptr));
    }
    // A start inside the last frame shows that frame.
    if (video_.before_start && video_.last_pts == AV_NOPTS_VALUE) {
        video_.before_start->pts = 0;
        video_.last_pts = 0;
        BM_RETURN_IF_ERROR(filterVideoFrame(std::move(video_.before_start)));
    }
    if (video_.decode_errors > 0) {
        log::get("media")->warn("damaged video packets skipped count={}", video_.decode_errors);
    }
    BM_RETURN_IF_ERROR(checkComplete());
    if (!video_.filters.graph) {
        return Error::unsupportedMedia(
            video_.frames_decoded == 0
                ? "decode video: no frame could be decoded (the file is truncated, corrupt or "
                  "in an unsupported format)"
                : "decode video: no frame falls between start and end");
    }

    BM_RETURN_IF_ERROR(
        closeVideoGraph(video_.last_pts + std::max<int64_t>(video_.last_duration, 1)));
    if (video_.pending_frame) {
        BM_RETURN_IF_ERROR(encodeHeldVideoFrame(lastVideoFrameDuration()));
    }
    BM_RETURN_IF_ERROR(encodeVideo(nullptr));

    if (audio_) {
        if (audio_->filters.graph) {
            int code = av_buffersrc_add_frame_flags(audio_->filters.source, nullptr, 0);
            if (code < 0) {
                return ffmpeg::toError(code, "close audio filter graph");
            }
            BM_RETURN_IF_ERROR(drainAudioGraph());
        }
        BM_RETURN_IF_ERROR(encodeAudio(nullptr));
    }

    int code = av_write_trailer(output_.get());
    if (code < 0) {
        return ffmpeg::toError(code, "write output trailer");
    }
    if (progress_) {
        progress_(100);
    }
    return okStatus();
}

// Rejects input whose media data ends well before the duration its
// header declares, e.g. an MP4 cut after its index. The demuxer reports
// such a cut as a normal end of file.
Status VideoTranscoder::checkComplete() const {
    bool trusted_duration = input_->duration_estimation_method != AVFMT_DURATION_FROM_BITRATE;
    if (video_.done || expected_duration_ <= 0 || !trusted_duration) {
        return okStatus();
    }
    double reached = 0;
    if (video_.last_pts != AV_NOPTS_VALUE) {
        reached = static_cast<double>(video_.last_pts + video_.last_duration) *
                  av_q2d(video_.input->time_base);
    }
    if (audio_ && audio_->next_pts != AV_NOPTS_VALUE) {
        reached = std::max(
            reached, static_cast<double>(audio_->next_pts) * av_q2d(audio_->input->time_base));
    }
    // Streams often end a few frames apart; a cut is much larger.
    double tolerance = 0.5 + 0.01 * expected_duration_;
    if (reached + tolerance < expected_duration_) {
        return Error::unsupportedMedia(fmt::format(
            "read input: the file is truncated: its media data ends after {:.2f} of the {:.2f} "
            "seconds its header declares",
            reached, expected_duration_));
    }
    return okStatus();
}

void VideoTranscoder::reportProgress(double output_seconds) {
    if (!progress_) {
        return;
    }
    int percent = 0;
    if (expected_duration_ > 0) {
        percent = static_cast<int>(output_seconds * 100 / expected_duration_);
    }
    // 100 is reported once the trailer is written.
    percent = std::clamp(percent, 0, 99);
    if (percent > last_percent_) {
        last_percent_ = percent;
        progress_(percent);
    }
}

}  // namespace

Status transcodeVideo(const std::string& input, const std::string& output,
                      const VideoOptions& options, const Limits& limits,
                      const ProgressCallback& progress) {
    BM_RETURN_IF_ERROR(ffmpeg::validateVideoOptions(options));
    bool created_output = false;
    Status status = [&]() -> Status {
        // The transcoder closes the output file when it goes out of scope,
        // before a partial file is removed below.
        VideoTranscoder transcoder(options, limits, progress);
        Status result = transcoder.openSource(input);
        if (result.ok()) {
            result = transcoder.openOutput(output);
        }
        if (result.ok()) {
            result = transcoder.run();
        }
        created_output = transcoder.createdOutput();
        return result;
    }();
    if (!status.ok() && created_output) {
        std::error_code ignored;
        std::filesystem::remove(output, ignored);
    }
    return status;
}

}  // namespace bitmill::media
