// Filter planning for transcodeVideo: orientation, geometry, colour and
// audio conversion as libavfilter graph descriptions, and the graphs built
// from them.
#include "media/ffmpeg/video_filters.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <string_view>
#include <vector>

namespace bitmill::media::ffmpeg {
namespace {

constexpr std::string_view kFits = "fill, cover, contain";
constexpr std::string_view kPositions =
    "center, top, bottom, left, right, top_left, top_right, bottom_left, bottom_right";

// Horizontal and vertical share of the free space that goes before the
// picture (contain) or is cut before the kept part (cover).
struct Anchor {
    double x = 0.5;
    double y = 0.5;
};

std::optional<Anchor> anchorOf(std::string_view position) {
    if (position == "center") {
        return Anchor{0.5, 0.5};
    }
    if (position == "top") {
        return Anchor{0.5, 0.0};
    }
    if (position == "bottom") {
        return Anchor{0.5, 1.0};
    }
    if (position == "left") {
        return Anchor{0.0, 0.5};
    }
    if (position == "right") {
        return Anchor{1.0, 0.5};
    }
    if (position == "top_left") {
        return Anchor{0.0, 0.0};
    }
    if (position == "top_right") {
        return Anchor{1.0, 0.0};
    }
    if (position == "bottom_left") {
        return Anchor{0.0, 1.0};
    }
    if (position == "bottom_right") {
        return Anchor{1.0, 1.0};
    }
    return std::nullopt;
}

// Rounds down to an even number of at least 2, which 4:2:0 chroma needs.
// The small epsilon keeps 179.9999999 from a ratio from becoming 178.
int evenFloor(double value) {
    auto whole = static_cast<int64_t>(std::floor(value + 1e-6));
    whole -= whole % 2;
    return static_cast<int>(std::clamp<int64_t>(whole, 2, 1 << 20));
}

// Rounds up to an even number of at least 2.
int evenCeil(double value) {
    auto whole = static_cast<int64_t>(std::ceil(value - 1e-6));
    whole += whole % 2;
    return static_cast<int>(std::clamp<int64_t>(whole, 2, 1 << 20));
}

int evenOffset(double value) {
    int offset = static_cast<int>(std::floor(value));
    return std::max(0, offset - offset % 2);
}

double resolveDimension(const Dimension& dimension, double input_size) {
    return dimension.percent ? input_size * dimension.value / 100.0 : dimension.value;
}

Status validateDimension(const std::optional<Dimension>& dimension, std::string_view name) {
    if (dimension && dimension->value <= 0) {
        return Error::invalidArgument(fmt::format("invalid option \"{}\": {}{} must be positive",
                                                  name, dimension->value,
                                                  dimension->percent ? "%" : ""));
    }
    return okStatus();
}

bool isFullRangeFormat(AVPixelFormat format) {
    return format == AV_PIX_FMT_YUVJ420P || format == AV_PIX_FMT_YUVJ422P ||
           format == AV_PIX_FMT_YUVJ444P || format == AV_PIX_FMT_YUVJ440P ||
           format == AV_PIX_FMT_YUVJ411P;
}

// Returns the scale filter's name of the YCbCr matrix the source was
// encoded with, or empty when it is BT.709 already.
// NOTE: untagged video is a guess: BT.601 below 720 lines, BT.709 from 720
// lines up. A source that was encoded otherwise shifts slightly in hue.
std::string sourceMatrixToConvert(const SourcePicture& picture) {
    switch (picture.matrix) {
        case AVCOL_SPC_BT709:
            return {};
        case AVCOL_SPC_BT470BG:
        case AVCOL_SPC_SMPTE170M:
            return "bt601";
        case AVCOL_SPC_FCC:
            return "fcc";
        case AVCOL_SPC_SMPTE240M:
            return "smpte240m";
        case AVCOL_SPC_RGB:
            return {};
        default:
            break;
    }
    const AVPixFmtDescriptor* descriptor = av_pix_fmt_desc_get(picture.format);
    if (descriptor != nullptr && (descriptor->flags & AV_PIX_FMT_FLAG_RGB)) {
        return {};
    }
    return picture.height < 720 ? "bt601" : std::string{};
}

std::string rangeName(const SourcePicture& picture) {
    bool full = picture.range == AVCOL_RANGE_JPEG || isFullRangeFormat(picture.format);
    return full ? "pc" : "tv";
}

// zscale chain for HDR and wide-gamut input. PQ and HLG are linearised
// with a nominal peak of 100 cd/m2, converted to BT.709 primaries in
// linear light, tone-mapped with the Hable curve and re-encoded.
std::string describeZscaleConversion(const SourcePicture& picture) {
    const char* primaries = "bt2020";
    if (picture.primaries != AVCOL_PRI_UNSPECIFIED &&
        av_color_primaries_name(picture.primaries) != nullptr) {
        primaries = av_color_primaries_name(picture.primaries);
    }
    const char* matrix = "bt2020nc";
    if (picture.matrix == AVCOL_SPC_BT709 || picture.matrix == AVCOL_SPC_BT2020_CL ||
        picture.matrix == AVCOL_SPC_BT470BG || picture.matrix == AVCOL_SPC_SMPTE170M) {
        matrix = av_color_space_name(picture.matrix);
    }
    std::string input = fmt::format("pin={}:min={}:rin={}", primaries, matrix, rangeName(picture));
    if (isHdrTransfer(picture.transfer)) {
        return fmt::format(
            "zscale={}:tin={}:t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,"
            "tonemap=tonemap=hable:desat=0,zscale=t=bt709:m=bt709:r=tv,format=yuv420p",
            input, av_color_transfer_name(picture.transfer));
    }
    // Wide gamut SDR (BT.2020 primaries with an SDR curve): only the
    // primaries and matrix change.
    const char* transfer = picture.transfer == AVCOL_TRC_BT2020_12 ? "bt2020-12" : "bt2020-10";
    return fmt::format("zscale={}:tin={}:p=bt709:t=bt709:m=bt709:r=tv,format=yuv420p", input,
                       transfer);
}

bool isNeutralColour(const std::string& background) {
    // "0xRRGGBB": grey levels give the same Y'CbCr under every matrix.
    return background.size() == 8 && background.substr(2, 2) == background.substr(4, 2) &&
           background.substr(4, 2) == background.substr(6, 2);
}

std::string rationalText(AVRational value) {
    return fmt::format("{}/{}", value.num, value.den);
}

Status checkFilterCall(int code, std::string_view action) {
    if (code < 0) {
        return toError(code, action, "filter graph");
    }
    return okStatus();
}

// Links `source` and `sink` through the chain in `description`.
Status linkGraph(FilterPipeline& pipeline, const std::string& description) {
    FilterInOutPtr outputs(avfilter_inout_alloc());
    FilterInOutPtr inputs(avfilter_inout_alloc());
    if (!outputs || !inputs) {
        return Error::resourceExhausted("allocate filter graph: out of memory");
    }
    // The chain's unlabelled input reads from the source, its output feeds the sink.
    outputs->name = av_strdup("in");
    outputs->filter_ctx = pipeline.source;
    outputs->pad_idx = 0;
    outputs->next = nullptr;
    inputs->name = av_strdup("out");
    inputs->filter_ctx = pipeline.sink;
    inputs->pad_idx = 0;
    inputs->next = nullptr;

    AVFilterInOut* inputs_raw = inputs.release();
    AVFilterInOut* outputs_raw = outputs.release();
    int code = avfilter_graph_parse_ptr(pipeline.graph.get(), description.c_str(), &inputs_raw,
                                        &outputs_raw, nullptr);
    inputs.reset(inputs_raw);
    outputs.reset(outputs_raw);
    if (code < 0) {
        return Error::internal("parse filter graph: " + errorText(code), description);
    }
    code = avfilter_graph_config(pipeline.graph.get(), nullptr);
    if (code < 0) {
        return Error::internal("configure filter graph: " + errorText(code), description);
    }
    return okStatus();
}

}  // namespace

Orientation orientationFromDisplayMatrix(const int32_t* matrix) {
    if (matrix == nullptr) {
        return {};
    }
    // A point (p, q) of the coded picture is displayed at
    // (a*p + c*q, b*p + d*q), with y growing downwards. The matrix stores
    // a and b at [0] and [1], c and d at [3] and [4].
    double a = matrix[0];
    double b = matrix[1];
    double c = matrix[3];
    double d = matrix[4];

    Orientation orientation;
    if (std::abs(a) + std::abs(d) >= std::abs(b) + std::abs(c)) {
        std::vector<std::string> flips;
        if (a < 0) {
            flips.emplace_back("hflip");
        }
        if (d < 0) {
            flips.emplace_back("vflip");
        }
        orientation.filters = fmt::format("{}", fmt::join(flips, ","));
        return orientation;
    }
    // Rows become columns. transpose=clock maps (p, q) to (-q, p),
    // cclock to (q, -p), cclock_flip to (q, p) and clock_flip to (-q, -p),
    // all up to a translation.
    orientation.swaps_axes = true;
    if (c < 0) {
        orientation.filters = b > 0 ? "transpose=clock" : "transpose=clock_flip";
    } else {
        orientation.filters = b > 0 ? "transpose=cclock_flip" : "transpose=cclock";
    }
    return orientation;
}

Status validateGeometry(const Geometry& geometry) {
    if (geometry.fit != "fill" && geometry.fit != "cover" && geometry.fit != "contain") {
        return Error::invalidArgument(
            fmt::format("invalid option \"fit\": \"{}\" is not one of {}", geometry.fit, kFits));
    }
    if (!anchorOf(geometry.position)) {
        return Error::invalidArgument(fmt::format(
            "invalid option \"position\": \"{}\" is not one of {}", geometry.position, kPositions));
    }
    BM_RETURN_IF_ERROR(validateDimension(geometry.width, "width"));
    BM_RETURN_IF_ERROR(validateDimension(geometry.height, "height"));
    return okStatus();
}

FramePlan planFrameGeometry(double input_width, double input_height, const Geometry& geometry,
                            const Limits& limits) {
    // The output box, before rounding.
    double box_width = input_width;
    double box_height = input_height;
    bool both = geometry.width && geometry.height;
    if (geometry.width) {
        box_width = resolveDimension(*geometry.width, input_width);
    }
    if (geometry.height) {
        box_height = resolveDimension(*geometry.height, input_height);
    }
    if (geometry.width && !geometry.height) {
        box_height = input_height * box_width / input_width;
    } else if (geometry.height && !geometry.width) {
        box_width = input_width * box_height / input_height;
    }

    // Cap at the configured maximum, keeping the box's aspect ratio.
    double cap =
        std::min({1.0, limits.max_video_width / box_width, limits.max_video_height / box_height});
    box_width *= cap;
    box_height *= cap;

    FramePlan plan;
    plan.output_width = evenFloor(box_width);
    plan.output_height = evenFloor(box_height);
    plan.scaled_width = plan.output_width;
    plan.scaled_height = plan.output_height;
    if (!both || geometry.fit == "fill") {
        return plan;
    }

    Anchor anchor = anchorOf(geometry.position).value_or(Anchor{});
    double scale_x = plan.output_width / input_width;
    double scale_y = plan.output_height / input_height;
    if (geometry.fit == "cover") {
        double scale = std::max(scale_x, scale_y);
        plan.fit = FramePlan::Fit::Cover;
        plan.scaled_width = std::max(plan.output_width, evenCeil(input_width * scale));
        plan.scaled_height = std::max(plan.output_height, evenCeil(input_height * scale));
        plan.offset_x = evenOffset((plan.scaled_width - plan.output_width) * anchor.x);
        plan.offset_y = evenOffset((plan.scaled_height - plan.output_height) * anchor.y);
        return plan;
    }
    double scale = std::min(scale_x, scale_y);
    plan.fit = FramePlan::Fit::Contain;
    plan.scaled_width = std::min(plan.output_width, evenFloor(input_width * scale));
    plan.scaled_height = std::min(plan.output_height, evenFloor(input_height * scale));
    plan.offset_x = evenOffset((plan.output_width - plan.scaled_width) * anchor.x);
    plan.offset_y = evenOffset((plan.output_height - plan.scaled_height) * anchor.y);
    return plan;
}

Result<std::string> parseBackgroundColour(const std::string& colour) {
    std::string_view digits = colour;
    if (!digits.empty() && digits.front() == '#') {
        digits.remove_prefix(1);
    }
    bool hex = !digits.empty() && std::all_of(digits.begin(), digits.end(), [](char c) {
        return std::isxdigit(static_cast<unsigned char>(c)) != 0;
    });
    if (!hex || (digits.size() != 3 && digits.size() != 6)) {
        return Error::invalidArgument(fmt::format(
            "invalid option \"background\": \"{}\" is not a colour; use #rrggbb or #rgb", colour));
    }
    std::string expanded;
    for (char digit : digits) {
        expanded += static_cast<char>(std::toupper(static_cast<unsigned char>(digit)));
        if (digits.size() == 3) {
            expanded += expanded.back();
        }
    }
    return "0x" + expanded;
}

SourcePicture sourcePictureOf(const AVFrame& frame) {
    SourcePicture picture;
    picture.width = frame.width;
    picture.height = frame.height;
    picture.format = static_cast<AVPixelFormat>(frame.format);
    picture.sample_aspect_ratio = frame.sample_aspect_ratio;
    picture.transfer = frame.color_trc;
    picture.primaries = frame.color_primaries;
    picture.matrix = frame.colorspace;
    picture.range = frame.color_range;
    return picture;
}

DisplaySize uprightSize(const SourcePicture& picture, const Orientation& orientation) {
    double width = picture.width;
    double height = picture.height;
    AVRational sar = picture.sample_aspect_ratio;
    if (sar.num > 0 && sar.den > 0) {
        width = width * sar.num / sar.den;
    }
    if (orientation.swaps_axes) {
        std::swap(width, height);
    }
    return {width, height};
}

bool isHdrTransfer(AVColorTransferCharacteristic transfer) {
    return transfer == AVCOL_TRC_SMPTE2084 || transfer == AVCOL_TRC_ARIB_STD_B67;
}

std::string describeVideoFilters(const SourcePicture& picture, const VideoFilterSpec& spec) {
    std::vector<std::string> chain;
    const FramePlan& plan = spec.plan;

    // Dropping or repeating frames first keeps the later steps from
    // converting frames that the fps filter would drop.
    if (spec.fps) {
        chain.push_back("fps=fps=" + rationalText(*spec.fps));
    }

    // Scale before transposing, so a downscaled frame is the one rotated.
    int scale_width = spec.orientation.swaps_axes ? plan.scaled_height : plan.scaled_width;
    int scale_height = spec.orientation.swaps_axes ? plan.scaled_width : plan.scaled_height;
    bool resize = scale_width != picture.width || scale_height != picture.height;
    bool wide_gamut = picture.primaries == AVCOL_PRI_BT2020 ||
                      picture.matrix == AVCOL_SPC_BT2020_NCL ||
                      picture.matrix == AVCOL_SPC_BT2020_CL;
    if (isHdrTransfer(picture.transfer) || wide_gamut) {
        if (resize) {
            chain.push_back(fmt::format("scale=w={}:h={}", scale_width, scale_height));
        }
        chain.push_back(describeZscaleConversion(picture));
    } else {
        std::string matrix = sourceMatrixToConvert(picture);
        std::string range = rangeName(picture);
        if (resize || !matrix.empty() || range == "pc" || picture.format != AV_PIX_FMT_YUV420P) {
            std::string scale = fmt::format("scale=w={}:h={}:in_range={}:out_range=tv", scale_width,
                                            scale_height, range);
            if (!matrix.empty()) {
                scale += fmt::format(":in_color_matrix={}:out_color_matrix=bt709", matrix);
            }
            chain.push_back(scale);
        }
        chain.push_back("format=yuv420p");
    }

    if (!spec.orientation.filters.empty()) {
        chain.push_back(spec.orientation.filters);
    }

    if (plan.fit == FramePlan::Fit::Cover) {
        chain.push_back(fmt::format("crop=w={}:h={}:x={}:y={}", plan.output_width,
                                    plan.output_height, plan.offset_x, plan.offset_y));
    } else if (plan.fit == FramePlan::Fit::Contain) {
        std::string pad =
            fmt::format("pad=w={}:h={}:x={}:y={}:color={}", plan.output_width, plan.output_height,
                        plan.offset_x, plan.offset_y, spec.background);
        if (isNeutralColour(spec.background)) {
            chain.push_back(pad);
        } else {
            // The pad filter of FFmpeg 5.1 converts its colour with BT.601
            // coefficients (red becomes Y'CbCr 81, 90, 240), so a coloured
            // padding is drawn in RGB and the result converted to BT.709.
            chain.push_back("scale=in_color_matrix=bt709:in_range=tv,format=gbrp");
            chain.push_back(pad);
            chain.push_back("scale=out_color_matrix=bt709:out_range=tv,format=yuv420p");
        }
    }

    // A stream whose frame size changed midway still has to match the
    // size the encoder was opened with.
    if (plan.output_width != spec.encoder_width || plan.output_height != spec.encoder_height) {
        chain.push_back(fmt::format("scale=w={}:h={}", spec.encoder_width, spec.encoder_height));
    }
    chain.push_back("setsar=1");
    chain.push_back("setparams=range=tv:color_primaries=bt709:color_trc=bt709:colorspace=bt709");
    return fmt::format("{}", fmt::join(chain, ","));
}

std::string describeAudioFilters(const AudioTarget& target) {
    std::string trim = "atrim=start=0";
    if (target.end_seconds) {
        trim += fmt::format(":end={:.6f}", *target.end_seconds);
    }
    AVChannelLayout layout;
    av_channel_layout_default(&layout, target.channels);
    char layout_name[64] = {};
    av_channel_layout_describe(&layout, layout_name, sizeof(layout_name));
    av_channel_layout_uninit(&layout);
    // async=1 lets swresample fill a late start or a gap with silence and
    // first_pts=0 anchors the output at timestamp 0, which keeps audio in
    // sync with the video when one of them starts later.
    return fmt::format(
        "{},aresample=async=1:first_pts=0,aformat=sample_fmts={}:sample_rates={}:"
        "channel_layouts={}",
        trim, av_get_sample_fmt_name(target.sample_format), target.sample_rate, layout_name);
}

Result<FilterPipeline> createVideoPipeline(const SourcePicture& picture, AVRational time_base,
                                           const std::string& description) {
    FilterPipeline pipeline;
    pipeline.graph.reset(avfilter_graph_alloc());
    if (!pipeline.graph) {
        return Error::resourceExhausted("allocate filter graph: out of memory");
    }
    AVRational sar = picture.sample_aspect_ratio;
    if (sar.num <= 0 || sar.den <= 0) {
        sar = {1, 1};
    }
    std::string source_args = fmt::format(
        "video_size={}x{}:pix_fmt={}:time_base={}:pixel_aspect={}", picture.width, picture.height,
        av_get_pix_fmt_name(picture.format), rationalText(time_base), rationalText(sar));
    BM_RETURN_IF_ERROR(checkFilterCall(
        avfilter_graph_create_filter(&pipeline.source, avfilter_get_by_name("buffer"), "in",
                                     source_args.c_str(), nullptr, pipeline.graph.get()),
        "create video buffer source"));
    BM_RETURN_IF_ERROR(checkFilterCall(
        avfilter_graph_create_filter(&pipeline.sink, avfilter_get_by_name("buffersink"), "out",
                                     nullptr, nullptr, pipeline.graph.get()),
        "create video buffer sink"));
    BM_RETURN_IF_ERROR(linkGraph(pipeline, description));
    return pipeline;
}

Result<FilterPipeline> createAudioPipeline(const AVFrame& frame, AVRational time_base,
                                           const std::string& description, int frame_size) {
    FilterPipeline pipeline;
    pipeline.graph.reset(avfilter_graph_alloc());
    if (!pipeline.graph) {
        return Error::resourceExhausted("allocate filter graph: out of memory");
    }
    char layout_name[128] = {};
    av_channel_layout_describe(&frame.ch_layout, layout_name, sizeof(layout_name));
    std::string source_args =
        fmt::format("time_base={}:sample_rate={}:sample_fmt={}:channel_layout={}",
                    rationalText(time_base), frame.sample_rate,
                    av_get_sample_fmt_name(static_cast<AVSampleFormat>(frame.format)), layout_name);
    BM_RETURN_IF_ERROR(checkFilterCall(
        avfilter_graph_create_filter(&pipeline.source, avfilter_get_by_name("abuffer"), "in",
                                     source_args.c_str(), nullptr, pipeline.graph.get()),
        "create audio buffer source"));
    BM_RETURN_IF_ERROR(checkFilterCall(
        avfilter_graph_create_filter(&pipeline.sink, avfilter_get_by_name("abuffersink"), "out",
                                     nullptr, nullptr, pipeline.graph.get()),
        "create audio buffer sink"));
    BM_RETURN_IF_ERROR(linkGraph(pipeline, description));
    if (frame_size > 0) {
        av_buffersink_set_frame_size(pipeline.sink, static_cast<unsigned>(frame_size));
    }
    return pipeline;
}

Result<Flow> pullFilteredFrame(AVFilterContext* sink, AVFrame* frame) {
    int code = av_buffersink_get_frame(sink, frame);
    if (code == AVERROR(EAGAIN)) {
        return Flow::NeedMoreInput;
    }
    if (code == AVERROR_EOF) {
        return Flow::EndOfStream;
    }
    if (code < 0) {
        return toError(code, "filter frame", "filter graph");
    }
    return Flow::Got;
}

}  // namespace bitmill::media::ffmpeg
