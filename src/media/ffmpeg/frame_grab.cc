// media::grabFrame: seeks to the keyframe before a time, decodes forward to
// the frame at that time, converts it to upright 8-bit sRGB (tone-mapping
// PQ and HLG sources) and writes it as a PNG, or hands it over in memory.
#include "media/ffmpeg/frame_grab.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "core/log.h"
#include "media/ffmpeg/ffmpeg.h"

namespace bitmill::media {

namespace {

using namespace ffmpeg;

// Mean luma (0..255) above which a frame counts as not black when picking
// a representative frame.
constexpr double kNonBlackLuma = 32.0;

// Fractions of the start of the video (its first two minutes at most) that
// are tried, in order, when no time is given.
constexpr double kCandidateFractions[] = {0.1, 0.25, 0.5, 0.75, 0.0};
constexpr double kCandidateWindowSeconds = 120.0;

// Decoding sends a few corrupt packets to the decoder before giving up.
constexpr int kMaxBadPackets = 32;

// A decoder positioned in one video stream of an open input.
class FrameReader {
public:
    static Result<FrameReader> open(const std::string& path, const Limits& limits) {
        FrameReader reader;
        BM_ASSIGN_OR_RETURN(reader.input_, openInput(path));
        reader.stream_index_ = findVideoStream(reader.input_.get());
        if (reader.stream_index_ < 0) {
            return Error::unsupportedMedia("grab frame: the input has no video stream");
        }
        const AVStream* stream = reader.stream();
        const int rotation = streamRotation(stream);
        const bool sideways = rotation == 90 || rotation == 270;
        const int width = sideways ? stream->codecpar->height : stream->codecpar->width;
        const int height = sideways ? stream->codecpar->width : stream->codecpar->height;
        // One frame costs the same in a long video, so only the size is checked.
        BM_RETURN_IF_ERROR(checkLimits(width, height, -1, limits));
        BM_ASSIGN_OR_RETURN(reader.decoder_, openDecoder(reader.input_.get(),
                                                         reader.stream_index_));
        reader.packet_.reset(av_packet_alloc());
        if (!reader.packet_) {
            return toError(AVERROR(ENOMEM), "allocate packet");
        }
        return reader;
    }

    const AVStream* stream() const { return input_->streams[stream_index_]; }

    // Duration of the video in seconds, or nothing when the file does not
    // state one.
    std::optional<double> duration() const {
        const AVStream* video = stream();
        if (video->duration != AV_NOPTS_VALUE && video->duration > 0) {
            return video->duration * av_q2d(video->time_base);
        }
        if (input_->duration != AV_NOPTS_VALUE && input_->duration > 0) {
            return static_cast<double>(input_->duration) / AV_TIME_BASE;
        }
        return std::nullopt;
    }

    // Returns the first frame at or after `seconds` from the start of the
    // stream, or the last frame when the stream ends before that time.
    Result<FramePtr> frameAt(double seconds) {
        const AVStream* video = stream();
        int64_t start = video->start_time != AV_NOPTS_VALUE ? video->start_time : 0;
        const int64_t target =
            start + static_cast<int64_t>(std::llround(seconds / av_q2d(video->time_base)));

        // Seek to the keyframe at or before the target. The first read from
        // the start needs no seek.
        if (packets_read_ > 0 || seconds > 0) {
            int code = avformat_seek_file(input_.get(), stream_index_,
                                          std::numeric_limits<int64_t>::min(), target, target,
                                          0);
            if (code < 0) {
                code = av_seek_frame(input_.get(), stream_index_, target, AVSEEK_FLAG_BACKWARD);
            }
            // An input that cannot seek is still read from its start, when
            // nothing has been read yet, and the frames before the target
            // are dropped.
            if (code < 0 && packets_read_ > 0) {
                return toError(code, "seek to " + std::to_string(seconds) + " s");
            }
            avcodec_flush_buffers(decoder_.get());
        }
        return decodeUntil(target);
    }

private:
    FrameReader() = default;

    Result<FramePtr> decodeUntil(int64_t target) {
        FramePtr frame(av_frame_alloc());
        FramePtr last;
        if (!frame) {
            return toError(AVERROR(ENOMEM), "allocate frame");
        }
        int bad_packets = 0;
        bool input_ended = false;
        while (true) {
            // Drain the decoded frames before reading the next packet.
            while (true) {
                const int code = avcodec_receive_frame(decoder_.get(), frame.get());
                if (code == AVERROR(EAGAIN)) {
                    break;
                }
                if (code == AVERROR_EOF) {
                    if (last) {
                        return last;
                    }
                    return Error::unsupportedMedia(
                        "grab frame: no video frame could be decoded (the file is truncated "
                        "or corrupt)");
                }
                if (code < 0) {
                    return toError(code, "decode video frame");
                }
                int64_t pts = frame->best_effort_timestamp;
                if (pts == AV_NOPTS_VALUE) {
                    pts = frame->pts;
                }
                if (pts == AV_NOPTS_VALUE || pts >= target) {
                    return frame;
                }
                last = std::move(frame);
                frame.reset(av_frame_alloc());
                if (!frame) {
                    return toError(AVERROR(ENOMEM), "allocate frame");
                }
            }
            if (input_ended) {
                continue;
            }

            // Feed the next packet of the video stream, or flush at the end.
            // A read error past the first packets is taken as the end of a
            // truncated file, so the frames before it still count.
            const int read = av_read_frame(input_.get(), packet_.get());
            if (read < 0) {
                if (read != AVERROR_EOF && packets_read_ == 0) {
                    return toError(read, "read video packet");
                }
                input_ended = true;
                avcodec_send_packet(decoder_.get(), nullptr);
                continue;
            }
            PacketPtr owned(av_packet_clone(packet_.get()));
            av_packet_unref(packet_.get());
            if (!owned || owned->stream_index != stream_index_) {
                continue;
            }
            ++packets_read_;
            const int sent = avcodec_send_packet(decoder_.get(), owned.get());
            if (sent == AVERROR_INVALIDDATA && ++bad_packets <= kMaxBadPackets) {
                continue;
            }
            if (sent < 0 && sent != AVERROR(EAGAIN)) {
                return toError(sent, "decode video packet");
            }
        }
    }

    InputFormatPtr input_;
    CodecContextPtr decoder_;
    PacketPtr packet_;
    int stream_index_ = -1;
    int64_t packets_read_ = 0;
};

bool isHdrTransfer(AVColorTransferCharacteristic transfer) {
    return transfer == AVCOL_TRC_SMPTE2084 || transfer == AVCOL_TRC_ARIB_STD_B67;
}

// Names the YCbCr matrix of `frame` for the scale filter. Untagged frames
// are taken as BT.709 from 720 lines up and BT.601 below, as players do.
const char* colorMatrixName(const AVFrame* frame) {
    switch (frame->colorspace) {
        case AVCOL_SPC_BT709:
            return "bt709";
        case AVCOL_SPC_BT470BG:
        case AVCOL_SPC_SMPTE170M:
            return "bt601";
        case AVCOL_SPC_BT2020_NCL:
        case AVCOL_SPC_BT2020_CL:
            return "bt2020";
        case AVCOL_SPC_FCC:
            return "fcc";
        case AVCOL_SPC_SMPTE240M:
            return "smpte240m";
        default:
            return frame->height >= 720 ? "bt709" : "bt601";
    }
}

bool isFullRange(const AVFrame* frame) {
    if (frame->color_range == AVCOL_RANGE_JPEG) {
        return true;
    }
    const auto format = static_cast<AVPixelFormat>(frame->format);
    return format == AV_PIX_FMT_YUVJ420P || format == AV_PIX_FMT_YUVJ422P ||
           format == AV_PIX_FMT_YUVJ444P || format == AV_PIX_FMT_YUVJ440P;
}

// Builds the filter chain from a decoded frame to upright rgb24.
std::string filterDescription(const AVFrame* frame, int rotation) {
    std::string chain;
    const auto* descriptor = av_pix_fmt_desc_get(static_cast<AVPixelFormat>(frame->format));
    const bool is_rgb = descriptor != nullptr && (descriptor->flags & AV_PIX_FMT_FLAG_RGB);
    const bool hdr = isHdrTransfer(frame->color_trc);
    const bool can_tone_map =
        avfilter_get_by_name("zscale") != nullptr && avfilter_get_by_name("tonemap") != nullptr;

    if (hdr && can_tone_map) {
        // PQ or HLG to linear light, BT.2020 to BT.709 primaries, Hable tone
        // curve, then the BT.709 transfer in full-range RGB.
        const char* transfer = frame->color_trc == AVCOL_TRC_SMPTE2084 ? "smpte2084"
                                                                        : "arib-std-b67";
        const char* matrix = frame->colorspace == AVCOL_SPC_BT2020_CL ? "2020_cl" : "2020_ncl";
        chain += std::string("zscale=tin=") + transfer + ":min=" + matrix +
                 ":pin=2020:rin=" + (isFullRange(frame) ? "full" : "limited") +
                 ":t=linear:npl=100,format=gbrpf32le,zscale=p=709,"
                 "tonemap=tonemap=hable:desat=0,"
                 "zscale=t=709:m=709:r=full:d=error_diffusion,format=gbrp,";
    } else {
        // NOTE: without zscale and tonemap (FFmpeg built without libzimg) a PQ
        // or HLG frame is only converted to 8 bits, not tone-mapped.
        if (hdr) {
            log::get("media")->warn(
                "frame grab without tone mapping: this FFmpeg lacks the zscale or tonemap "
                "filter, so the HDR frame comes out dim and flat");
        }
        // full_chroma_int interpolates chroma before the conversion to RGB.
        // accurate_rnd is left out: it turns off swscale's SIMD code, which
        // made a 1080p frame take 45 times the instructions (callgrind,
        // FFmpeg 5.1) for a mean difference of about 1 level of 255.
        chain += "scale=flags=bicubic+full_chroma_int";
        if (!is_rgb) {
            chain += std::string(":in_color_matrix=") + colorMatrixName(frame) +
                     ":in_range=" + (isFullRange(frame) ? "full" : "limited");
        }
        chain += ",";
    }

    // Non-square pixels are stretched to their display width.
    const AVRational sar = frame->sample_aspect_ratio;
    if (sar.num > 0 && sar.den > 0 && sar.num != sar.den) {
        chain += "scale=w=trunc(iw*sar+0.5):h=ih:flags=bicubic,setsar=1,";
    }
    switch (rotation) {
        case 90:
            chain += "transpose=clock,";
            break;
        case 180:
            chain += "hflip,vflip,";
            break;
        case 270:
            chain += "transpose=cclock,";
            break;
        default:
            break;
    }
    chain += "format=rgb24";
    return chain;
}

// Converts `frame` to upright rgb24 through a filter graph.
Result<FramePtr> toUprightRgb(const AVFrame* frame, int rotation) {
    FilterGraphPtr graph(avfilter_graph_alloc());
    if (!graph) {
        return toError(AVERROR(ENOMEM), "allocate filter graph");
    }
    const AVRational sar = frame->sample_aspect_ratio.num > 0 ? frame->sample_aspect_ratio
                                                              : AVRational{1, 1};
    const std::string source_args =
        "video_size=" + std::to_string(frame->width) + "x" + std::to_string(frame->height) +
        ":pix_fmt=" + std::to_string(frame->format) + ":time_base=1/1:pixel_aspect=" +
        std::to_string(sar.num) + "/" + std::to_string(sar.den);
    AVFilterContext* source = nullptr;
    AVFilterContext* sink = nullptr;
    int code = avfilter_graph_create_filter(&source, avfilter_get_by_name("buffer"), "in",
                                            source_args.c_str(), nullptr, graph.get());
    if (code < 0) {
        return toError(code, "create frame source");
    }
    code = avfilter_graph_create_filter(&sink, avfilter_get_by_name("buffersink"), "out",
                                        nullptr, nullptr, graph.get());
    if (code < 0) {
        return toError(code, "create frame sink");
    }

    const std::string description = filterDescription(frame, rotation);
    FilterInOutPtr outputs(avfilter_inout_alloc());
    FilterInOutPtr inputs(avfilter_inout_alloc());
    if (!outputs || !inputs) {
        return toError(AVERROR(ENOMEM), "allocate filter graph");
    }
    outputs->name = av_strdup("in");
    outputs->filter_ctx = source;
    inputs->name = av_strdup("out");
    inputs->filter_ctx = sink;
    AVFilterInOut* raw_inputs = inputs.release();
    AVFilterInOut* raw_outputs = outputs.release();
    code = avfilter_graph_parse_ptr(graph.get(), description.c_str(), &raw_inputs, &raw_outputs,
                                    nullptr);
    inputs.reset(raw_inputs);
    outputs.reset(raw_outputs);
    if (code < 0) {
        return toError(code, "parse filter graph '" + description + "'");
    }
    code = avfilter_graph_config(graph.get(), nullptr);
    if (code < 0) {
        return toError(code, "configure filter graph '" + description + "'");
    }

    // The source takes a new reference, so `frame` stays the caller's.
    code = av_buffersrc_write_frame(source, frame);
    if (code >= 0) {
        code = av_buffersrc_add_frame(source, nullptr);
    }
    if (code < 0) {
        return toError(code, "filter video frame");
    }
    FramePtr rgb(av_frame_alloc());
    if (!rgb) {
        return toError(AVERROR(ENOMEM), "allocate frame");
    }
    code = av_buffersink_get_frame(sink, rgb.get());
    if (code < 0) {
        return toError(code, "filter video frame");
    }
    return rgb;
}

// Returns the mean BT.709 luma (0..255) of an rgb24 frame, sampling every
// fourth pixel of every fourth row.
double meanLuma(const AVFrame* rgb) {
    double sum = 0;
    int64_t count = 0;
    for (int y = 0; y < rgb->height; y += 4) {
        const uint8_t* row = rgb->data[0] + static_cast<ptrdiff_t>(y) * rgb->linesize[0];
        for (int x = 0; x < rgb->width; x += 4) {
            const uint8_t* pixel = row + 3 * x;
            sum += 0.2126 * pixel[0] + 0.7152 * pixel[1] + 0.0722 * pixel[2];
            ++count;
        }
    }
    return count > 0 ? sum / static_cast<double>(count) : 0;
}

Result<std::vector<uint8_t>> encodePng(const AVFrame* rgb) {
    const AVCodec* encoder = avcodec_find_encoder(AV_CODEC_ID_PNG);
    if (encoder == nullptr) {
        return Error::internal("encode png: this FFmpeg has no PNG encoder");
    }
    CodecContextPtr context(avcodec_alloc_context3(encoder));
    if (!context) {
        return toError(AVERROR(ENOMEM), "allocate png encoder");
    }
    context->width = rgb->width;
    context->height = rgb->height;
    context->pix_fmt = AV_PIX_FMT_RGB24;
    context->time_base = {1, 1};
    int code = avcodec_open2(context.get(), encoder, nullptr);
    if (code < 0) {
        return toError(code, "open png encoder");
    }
    code = avcodec_send_frame(context.get(), rgb);
    if (code < 0) {
        return toError(code, "encode png");
    }
    PacketPtr packet(av_packet_alloc());
    if (!packet) {
        return toError(AVERROR(ENOMEM), "allocate packet");
    }
    code = avcodec_receive_packet(context.get(), packet.get());
    if (code < 0) {
        return toError(code, "encode png");
    }
    return std::vector<uint8_t>(packet->data, packet->data + packet->size);
}

Status writeFile(const std::string& path, const std::vector<uint8_t>& bytes) {
    std::ofstream file(path, std::ios::binary | std::ios::trunc);
    file.write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
    file.close();
    if (!file) {
        std::error_code ignored;
        std::filesystem::remove(path, ignored);
        return Error::internal("write frame: cannot write the output file",
                               "write frame '" + path + "' failed");
    }
    return okStatus();
}

// Picks the first candidate frame that is not black, else the brightest.
Result<FramePtr> representativeFrame(FrameReader& reader, int rotation) {
    const double window = std::min(reader.duration().value_or(10.0), kCandidateWindowSeconds);
    FramePtr brightest;
    double brightest_luma = -1;
    for (double fraction : kCandidateFractions) {
        BM_ASSIGN_OR_RETURN(FramePtr frame, reader.frameAt(window * fraction));
        BM_ASSIGN_OR_RETURN(FramePtr rgb, toUprightRgb(frame.get(), rotation));
        const double luma = meanLuma(rgb.get());
        if (luma >= kNonBlackLuma) {
            return rgb;
        }
        if (luma > brightest_luma) {
            brightest_luma = luma;
            brightest = std::move(rgb);
        }
    }
    return brightest;
}

std::string formatSeconds(double seconds) {
    char buffer[32];
    std::snprintf(buffer, sizeof(buffer), "%.3f", seconds);
    return buffer;
}

// Returns the frame that `options` selects as upright rgb24.
Result<FramePtr> grabUprightRgb(const std::string& input, const FrameGrabOptions& options,
                                const Limits& limits) {
    BM_ASSIGN_OR_RETURN(FrameReader reader, FrameReader::open(input, limits));
    const int rotation = streamRotation(reader.stream());
    if (!options.time) {
        return representativeFrame(reader, rotation);
    }
    const double time = *options.time;
    if (!(time >= 0)) {
        return Error::invalidArgument("grab frame: time " + formatSeconds(time) +
                                      " s is negative");
    }
    // A time inside the last frame's display interval returns the last
    // frame; a time past the stated duration is rejected.
    const auto duration = reader.duration();
    if (duration && time > *duration) {
        return Error::invalidArgument("grab frame: time " + formatSeconds(time) +
                                      " s is past the end of the video (duration " +
                                      formatSeconds(*duration) + " s)");
    }
    BM_ASSIGN_OR_RETURN(FramePtr frame, reader.frameAt(time));
    return toUprightRgb(frame.get(), rotation);
}

}  // namespace

Status grabFrame(const std::string& input, const std::string& output_png,
                 const FrameGrabOptions& options, const Limits& limits) {
    BM_ASSIGN_OR_RETURN(FramePtr rgb, grabUprightRgb(input, options, limits));
    BM_ASSIGN_OR_RETURN(std::vector<uint8_t> png, encodePng(rgb.get()));
    return writeFile(output_png, png);
}

namespace ffmpeg {

Result<RgbPixels> grabRgbFrame(const std::string& input, const FrameGrabOptions& options,
                               const Limits& limits) {
    BM_ASSIGN_OR_RETURN(FramePtr rgb, grabUprightRgb(input, options, limits));
    RgbPixels pixels;
    pixels.width = rgb->width;
    pixels.height = rgb->height;
    const size_t row_bytes = static_cast<size_t>(rgb->width) * 3;
    if (rgb->linesize[0] == static_cast<int>(row_bytes)) {
        // FFmpeg pads each row to its buffer alignment (32 or 64 bytes).
        // Rows such as 1920 pixels (5760 bytes) need none, so the frame's
        // own buffer is handed over without a copy.
        pixels.pixels = rgb->data[0];
        pixels.owner = std::shared_ptr<const AVFrame>(rgb.release(), FrameDeleter());
        return pixels;
    }
    auto packed = std::make_shared<std::vector<uint8_t>>(row_bytes * rgb->height);
    for (int row = 0; row < rgb->height; ++row) {
        std::copy_n(rgb->data[0] + static_cast<ptrdiff_t>(row) * rgb->linesize[0], row_bytes,
                    packed->data() + row * row_bytes);
    }
    pixels.pixels = packed->data();
    pixels.owner = std::move(packed);
    return pixels;
}

}  // namespace ffmpeg

}  // namespace bitmill::media
