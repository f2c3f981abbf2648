// The one place that includes FFmpeg's headers: owning pointer types with
// a stateless deleter per FFmpeg object, and the conversion of AVERROR
// codes to bitmill::Error. Code outside media/ffmpeg does not include this header.
#pragma once

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavfilter/avfilter.h>
#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libavutil/channel_layout.h>
#include <libavutil/display.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>
}

#include <memory>
#include <string>
#include <string_view>

#include "core/config.h"
#include "core/error.h"

namespace bitmill::media::ffmpeg {

struct FormatInputDeleter {
    void operator()(AVFormatContext* context) const { avformat_close_input(&context); }
};
// An output context owns its AVIOContext, closed here when it was opened.
struct FormatOutputDeleter {
    void operator()(AVFormatContext* context) const {
        if (context->pb != nullptr && !(context->oformat->flags & AVFMT_NOFILE)) {
            avio_closep(&context->pb);
        }
        avformat_free_context(context);
    }
};
struct CodecContextDeleter {
    void operator()(AVCodecContext* context) const { avcodec_free_context(&context); }
};
struct FrameDeleter {
    void operator()(AVFrame* frame) const { av_frame_free(&frame); }
};
struct PacketDeleter {
    void operator()(AVPacket* packet) const { av_packet_free(&packet); }
};
struct FilterGraphDeleter {
    void operator()(AVFilterGraph* graph) const { avfilter_graph_free(&graph); }
};
struct FilterInOutDeleter {
    void operator()(AVFilterInOut* inout) const { avfilter_inout_free(&inout); }
};
struct SwsContextDeleter {
    void operator()(SwsContext* context) const { sws_freeContext(context); }
};
struct SwrContextDeleter {
    void operator()(SwrContext* context) const { swr_free(&context); }
};
struct DictionaryDeleter {
    void operator()(AVDictionary* dictionary) const { av_dict_free(&dictionary); }
};

using InputFormatPtr = std::unique_ptr<AVFormatContext, FormatInputDeleter>;
using OutputFormatPtr = std::unique_ptr<AVFormatContext, FormatOutputDeleter>;
using CodecContextPtr = std::unique_ptr<AVCodecContext, CodecContextDeleter>;
using FramePtr = std::unique_ptr<AVFrame, FrameDeleter>;
using PacketPtr = std::unique_ptr<AVPacket, PacketDeleter>;
using FilterGraphPtr = std::unique_ptr<AVFilterGraph, FilterGraphDeleter>;
using FilterInOutPtr = std::unique_ptr<AVFilterInOut, FilterInOutDeleter>;
using SwsContextPtr = std::unique_ptr<SwsContext, SwsContextDeleter>;
using SwrContextPtr = std::unique_ptr<SwrContext, SwrContextDeleter>;
using DictionaryPtr = std::unique_ptr<AVDictionary, DictionaryDeleter>;

// Outcome of avcodec_send_*/receive_* and av_buffersink_get_frame: EAGAIN
// and EOF are flow control, not errors.
enum class Flow { Got, NeedMoreInput, EndOfStream };

// Returns FFmpeg's text for an AVERROR code.
std::string errorText(int code);

// Converts a negative AVERROR from `action` (e.g. "open input") on `subject`
// (a path or stream description) into an Error: UnsupportedMedia for
// AVERROR_INVALIDDATA and decoder/demuxer failures, ResourceExhausted for
// ENOMEM, Internal otherwise. The message never contains a path.
Error toError(int code, std::string_view action, std::string_view subject = {});

// Opens a local file for demuxing with the `file` protocol only, so a
// playlist or nested protocol inside the file cannot reach the network.
Result<InputFormatPtr> openInput(const std::string& path);

// Returns the clockwise rotation in degrees (0, 90, 180 or 270) that a
// player applies to the decoded frames of `stream`, read from its display
// matrix and rounded to a quarter turn; 0 without a display matrix.
int streamRotation(const AVStream* stream);

// Returns the index of the main video stream of `input`, or -1 when it has
// none. Cover art and still-image streams (AV_DISPOSITION_ATTACHED_PIC,
// AV_DISPOSITION_STILL_IMAGE) are skipped; among the rest a default stream
// wins, then the largest frame.
int findVideoStream(const AVFormatContext* input);

// Returns the index of the main audio stream of `input`, or -1 when it has
// none; streams without channels or sample rate are skipped.
int findAudioStream(const AVFormatContext* input);

// Opens a decoder for stream `stream_index` of `input` with `threads`
// threads (0 lets FFmpeg choose). Errors are UnsupportedMedia when no
// decoder exists for the codec.
Result<CodecContextPtr> openDecoder(const AVFormatContext* input, int stream_index,
                                    int threads = 0);

// Checks an upright frame size and a duration in seconds against `limits`.
// Pass 0 for the size of audio and a negative duration when it is unknown.
// Returns ResourceExhausted naming the value and the limit's setting, e.g.
// "video width 9000 exceeds the limit of 8192 pixels (max_video_width)".
Status checkLimits(int width, int height, double duration_seconds, const Limits& limits);

}  // namespace bitmill::media::ffmpeg
