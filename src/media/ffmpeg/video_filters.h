// Planning and building of the libavfilter graphs behind transcodeVideo:
// orientation from a display matrix, output geometry (fit, position, even
// sizes, limits), colour conversion to SDR BT.709 limited range, and the
// audio conversion to an encoder's sample format, rate and layout.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/config.h"
#include "core/error.h"
#include "media/ffmpeg/ffmpeg.h"
#include "media/media.h"

namespace bitmill::media::ffmpeg {

// Filters that turn coded pixels upright.
struct Orientation {
    std::string filters;      // e.g. "transpose=clock" or "hflip,vflip"; empty when upright
    bool swaps_axes = false;  // true when the filters exchange width and height
};

// Derives the orientation from a stream's display matrix (9 values, 16.16
// fixed point as FFmpeg stores them), or upright when `matrix` is null.
// Angles that are not a multiple of 90 degrees snap to the nearest one.
Orientation orientationFromDisplayMatrix(const int32_t* matrix);

// How the upright picture is scaled and then cropped or padded.
struct FramePlan {
    enum class Fit { Fill, Cover, Contain };
    Fit fit = Fit::Fill;
    int scaled_width = 0;  // after scaling, before crop or pad
    int scaled_height = 0;
    int output_width = 0;  // final size, always even and at least 2
    int output_height = 0;
    int offset_x = 0;  // crop origin (cover) or picture origin inside the padding (contain)
    int offset_y = 0;
};

// Rejects an unknown fit or position and non-positive dimensions with
// InvalidArgument naming the option and the accepted values.
Status validateGeometry(const Geometry& geometry);

// Plans the output of an upright input of `input_width` x `input_height`
// square pixels. Requires: validateGeometry(geometry) succeeded and both
// input sizes are positive. An output box larger than the limits' maximum
// video width or height is scaled down to fit, keeping its aspect ratio.
FramePlan planFrameGeometry(double input_width, double input_height, const Geometry& geometry,
                            const Limits& limits);

// Converts a colour "#rrggbb" or "#rgb" (the "#" is optional) to
// "0xRRGGBB" for the pad filter, or InvalidArgument naming the value.
Result<std::string> parseBackgroundColour(const std::string& colour);

// Properties of the decoded frames that the video filter graph starts from.
struct SourcePicture {
    int width = 0;
    int height = 0;
    AVPixelFormat format = AV_PIX_FMT_NONE;
    AVRational sample_aspect_ratio = {0, 1};  // {0, 1} means square or unknown
    AVColorTransferCharacteristic transfer = AVCOL_TRC_UNSPECIFIED;
    AVColorPrimaries primaries = AVCOL_PRI_UNSPECIFIED;
    AVColorSpace matrix = AVCOL_SPC_UNSPECIFIED;
    AVColorRange range = AVCOL_RANGE_UNSPECIFIED;
};

// Reads the properties of a decoded frame.
SourcePicture sourcePictureOf(const AVFrame& frame);

// Width and height in square pixels.
struct DisplaySize {
    double width = 0;
    double height = 0;
};

// Returns the upright display size of `picture`: the sample aspect ratio
// applied to the width, then the axes swapped when the orientation
// transposes.
DisplaySize uprightSize(const SourcePicture& picture, const Orientation& orientation);

// True for PQ (SMPTE ST 2084) and HLG (ARIB STD-B67) transfer, which are
// tone-mapped to SDR.
bool isHdrTransfer(AVColorTransferCharacteristic transfer);

// Everything besides the source that shapes the video filter graph.
struct VideoFilterSpec {
    Orientation orientation;
    FramePlan plan;
    std::optional<AVRational> fps;  // empty keeps the source timestamps
    std::string background;         // "0xRRGGBB", used by contain
    int encoder_width = 0;          // final size the encoder was opened with
    int encoder_height = 0;
};

// Returns the filter chain (libavfilter graph syntax, one input, one
// output) that turns `picture` into upright 8-bit yuv420p BT.709 limited
// range frames of the encoder's size with square pixels.
std::string describeVideoFilters(const SourcePicture& picture, const VideoFilterSpec& spec);

// Output format of the audio filter graph: what the encoder was opened with.
struct AudioTarget {
    int sample_rate = 0;
    AVSampleFormat sample_format = AV_SAMPLE_FMT_NONE;
    int channels = 0;                   // 1 or 2
    std::optional<double> end_seconds;  // output timestamp where audio stops
};

// Returns the audio filter chain: samples before timestamp 0 and after
// `end_seconds` cut, a start that comes later than 0 filled with silence,
// then resampled and remixed to `target`.
std::string describeAudioFilters(const AudioTarget& target);

// A configured filter graph with one buffer source and one buffer sink.
struct FilterPipeline {
    FilterGraphPtr graph;
    AVFilterContext* source = nullptr;  // owned by graph
    AVFilterContext* sink = nullptr;    // owned by graph
};

// Builds a video graph fed with frames like `picture` in `time_base`.
Result<FilterPipeline> createVideoPipeline(const SourcePicture& picture, AVRational time_base,
                                           const std::string& description);

// Builds an audio graph fed with frames like `frame` in `time_base`; the
// sink hands out frames of exactly `frame_size` samples when it is not 0.
Result<FilterPipeline> createAudioPipeline(const AVFrame& frame, AVRational time_base,
                                           const std::string& description, int frame_size);

// Takes the next frame from a sink into `frame`: Got, NeedMoreInput when the
// graph needs input first, EndOfStream after the last frame.
Result<Flow> pullFilteredFrame(AVFilterContext* sink, AVFrame* frame);

}  // namespace bitmill::media::ffmpeg
