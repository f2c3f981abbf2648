// media::convertImage: libvips' thumbnail operation (shrink-on-load, EXIF
// orientation, colour profile to sRGB), then flattening, a per-frame
// canvas for cover and contain, and the JPEG, PNG, WebP, AVIF or GIF saver.
// vips::convertPixels does the same for pixels already in memory.
#include <vips/vips8>

#include <algorithm>
#include <array>
#include <filesystem>
#include <functional>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "media/vips/image_convert.h"
#include "media/vips/image_geometry.h"
#include "media/vips/vips_util.h"

namespace bitmill::media {

namespace {

using vips::Rgba;
using ::vips::VImage;

enum class OutputFormat { Jpeg, Png, Webp, Avif, Gif };

struct OutputSpec {
    std::string_view name;
    OutputFormat format;
    int max_side;  // largest width or height the format can store
    bool keeps_alpha;
};

// Side limits: JPEG and GIF store sizes in 16 bits, WebP in 14 bits, and
// AV1 allows frames up to 65536 pixels per side.
constexpr std::array<OutputSpec, 5> kOutputs = {{
    {"jpeg", OutputFormat::Jpeg, 65535, false},
    {"png", OutputFormat::Png, VIPS_MAX_COORD, true},
    {"webp", OutputFormat::Webp, 16383, true},
    {"avif", OutputFormat::Avif, 65536, true},
    {"gif", OutputFormat::Gif, 65535, true},
}};

// zlib level 6: the usual balance of size and time for PNG.
constexpr int kPngCompression = 6;
// libwebp's default method (0 fastest .. 6 smallest).
constexpr int kWebpEffort = 4;
// CPU effort for AVIF in libvips' scale, 0 fastest .. 9 slowest.
// NOTE: measured once, for one 800x600 photo at Q 80 with libheif 1.15 and
// aom 3.6 on a shared 2-core machine: effort 2 took 0.76 s for 57.8 kB,
// the default effort 4 took 3.97 s for 58.6 kB. Other pictures may differ.
constexpr int kAvifEffort = 2;
// AVIF at 8 bits per channel: libheif 1.15 with aom on Debian 12 cannot
// write more, and libvips' default for heifsave is 12.
constexpr int kAvifBitDepth = 8;

const Rgba kWhite = {255, 255, 255, 255};
const Rgba kTransparent = {0, 0, 0, 0};

Result<const OutputSpec*> findOutput(const std::string& name) {
    for (const OutputSpec& spec : kOutputs) {
        if (spec.name == name) {
            return &spec;
        }
    }
    return Error::invalidArgument(
        fmt::format("format must be jpeg, png, webp, avif or gif, got '{}'", name));
}

// Removes the output file unless the conversion finished. Only a regular
// file is removed, never a device, directory or what a symbolic link names.
class PartialOutput {
  public:
    explicit PartialOutput(std::string path) : path_(std::move(path)) {}
    PartialOutput(const PartialOutput&) = delete;
    PartialOutput& operator=(const PartialOutput&) = delete;
    ~PartialOutput() {
        std::error_code ignored;
        if (!committed_ &&
            std::filesystem::is_regular_file(std::filesystem::symlink_status(path_, ignored))) {
            std::filesystem::remove(path_, ignored);
        }
    }
    void commit() { committed_ = true; }

  private:
    std::string path_;
    bool committed_ = false;
};

Status checkOutputSize(const vips::ResizePlan& plan, const OutputSpec& spec, int frames,
                       const Limits& limits) {
    const int side = std::max(plan.output_width, plan.output_height);
    if (side > spec.max_side) {
        return Error::invalidArgument(
            fmt::format("output is {}x{}, but {} stores at most {} pixels per side",
                        plan.output_width, plan.output_height, spec.name, spec.max_side));
    }
    return vips::checkPixelLimit("output", plan.output_width, plan.output_height, frames, limits);
}

// Returns the colour behind transparent areas and around contained
// pictures. By default that is transparent, except for JPEG, which has no
// alpha: it gets white, also when the request gives a transparent colour.
Rgba effectiveBackground(const std::optional<Rgba>& requested, const OutputSpec& spec) {
    if (spec.keeps_alpha) {
        return requested.value_or(kTransparent);
    }
    if (!requested || (*requested)[3] == 0) {
        return kWhite;
    }
    Rgba opaque = *requested;
    opaque[3] = 255;
    return opaque;
}

// Returns the height of one frame: the "page-height" of a strip of frames,
// or the whole height.
int frameHeight(const VImage& image) {
    if (image.get_typeof(VIPS_META_PAGE_HEIGHT) != 0) {
        const int page_height = image.get_int(VIPS_META_PAGE_HEIGHT);
        if (page_height > 0 && page_height < image.height() && image.height() % page_height == 0) {
            return page_height;
        }
    }
    return image.height();
}

// Crops (cover) or pads (contain) every frame to the canvas, keeping the
// frames' delays and loop count, which arrayjoin copies from the first.
VImage placeOnCanvas(VImage image, const vips::Canvas& canvas, const Rgba& background,
                     bool keeps_alpha) {
    const int frame_height = frameHeight(image);
    const bool pads = canvas.pad && (image.width() < canvas.width || frame_height < canvas.height);
    if (pads && !image.has_alpha() && keeps_alpha && background[3] < 255) {
        image = image.bandjoin_const({255});
    }
    std::vector<double> fill(background.begin(), background.begin() + (image.has_alpha() ? 4 : 3));

    auto place = [&](const VImage& frame) {
        auto* options =
            VImage::option()->set("extend", canvas.pad ? VIPS_EXTEND_BACKGROUND : VIPS_EXTEND_COPY);
        if (canvas.pad) {
            options->set("background", fill);
        }
        return frame.gravity(canvas.direction, canvas.width, canvas.height, options);
    };

    const int frames = image.height() / frame_height;
    VImage placed;
    if (frames <= 1) {
        placed = place(image);
    } else {
        std::vector<VImage> pages;
        pages.reserve(frames);
        for (int frame = 0; frame < frames; ++frame) {
            pages.push_back(
                place(image.crop(0, frame * frame_height, image.width(), frame_height)));
        }
        placed = VImage::arrayjoin(pages, VImage::option()->set("across", 1));
    }
    placed = placed.copy();
    placed.set(VIPS_META_PAGE_HEIGHT, canvas.height);
    return placed;
}

// Writes `image` to `output` in the requested format, whatever the file
// name's extension, without metadata.
void save(const VImage& image, const std::string& output, const OutputSpec& spec, int quality) {
    ::vips::VTarget target = ::vips::VTarget::new_to_file(output.c_str());
    // Every saver takes Q in 1..100.
    const int q = std::clamp(quality, 1, 100);
    switch (spec.format) {
        case OutputFormat::Jpeg:
            image.jpegsave_target(
                target,
                VImage::option()->set("Q", q)->set("optimize_coding", true)->set("strip", true));
            return;
        case OutputFormat::Png:
            image.pngsave_target(
                target, VImage::option()->set("compression", kPngCompression)->set("strip", true));
            return;
        case OutputFormat::Webp:
            image.webpsave_target(
                target,
                VImage::option()->set("Q", q)->set("effort", kWebpEffort)->set("strip", true));
            return;
        case OutputFormat::Avif:
            image.heifsave_target(target,
                                  VImage::option()
                                      ->set("compression", VIPS_FOREIGN_HEIF_COMPRESSION_AV1)
                                      ->set("Q", q)
                                      ->set("bitdepth", kAvifBitDepth)
                                      ->set("effort", kAvifEffort)
                                      ->set("strip", true));
            return;
        case OutputFormat::Gif:
            image.gifsave_target(target, VImage::option()->set("strip", true));
            return;
    }
}

// The output format, quality and background of a conversion, checked.
struct OutputChoice {
    const OutputSpec* spec = nullptr;
    std::optional<Rgba> requested_background;
};

Result<OutputChoice> chooseOutput(const ImageOptions& options) {
    OutputChoice choice;
    BM_ASSIGN_OR_RETURN(choice.spec, findOutput(options.format));
    if (options.quality < 0 || options.quality > 100) {
        return Error::invalidArgument(
            fmt::format("quality must be between 0 and 100, got {}", options.quality));
    }
    if (options.background) {
        BM_ASSIGN_OR_RETURN(choice.requested_background,
                            vips::parseBackground(*options.background));
    }
    return choice;
}

// Decodes at about the requested size; see vips::thumbnail().
using Decoder = std::function<VImage(const vips::ThumbnailRequest& request)>;

// Decodes with `decode`, then flattens, places on the canvas and saves to
// `output`; `input` names the source in error messages. Removes a partial
// output on failure.
Status resizeAndSave(const Decoder& decode, const std::string& input, const std::string& output,
                     const vips::ResizePlan& plan, const OutputChoice& choice, int quality,
                     int frames, bool animated) {
    const OutputSpec& spec = *choice.spec;
    const Rgba background = effectiveBackground(choice.requested_background, spec);
    PartialOutput partial(output);
    const vips::VectorCodeScope vector_code(int64_t{plan.output_width} * plan.output_height *
                                            frames);
    try {
        vips::ThumbnailRequest request;
        request.width = plan.thumbnail_width;
        request.height = plan.thumbnail_height;
        request.size = plan.size;
        request.crop = plan.crop;
        request.all_frames = animated;
        VImage image = vips::toSrgb8(decode(request));
        // Transparency goes where the format cannot keep it, or where the
        // request asked for an opaque background.
        if (image.has_alpha() && (!spec.keeps_alpha || background[3] == 255)) {
            image = image.flatten(VImage::option()->set(
                "background", std::vector<double>(background.begin(), background.begin() + 3)));
        }
        if (plan.canvas) {
            image = placeOnCanvas(image, *plan.canvas, background, spec.keeps_alpha);
        }
        save(vips::withoutMetadata(image), output, spec, quality);
    } catch (const ::vips::VError& error) {
        return vips::toError(error, {.action = "convert image", .input = input, .output = output});
    }
    partial.commit();
    return okStatus();
}

}  // namespace

Status convertImage(const std::string& input, const std::string& output,
                    const ImageOptions& options, const Limits& limits) {
    BM_ASSIGN_OR_RETURN(const OutputChoice choice, chooseOutput(options));
    const OutputSpec* spec = choice.spec;

    BM_ASSIGN_OR_RETURN(vips::ImageHeader header, vips::readHeader(input, limits));
    const bool animated_input =
        (header.format == vips::ImageFormat::Gif || header.format == vips::ImageFormat::Webp) &&
        header.pages > 1;
    const bool animated_output =
        spec->format == OutputFormat::Gif || spec->format == OutputFormat::Webp;
    // A still output format takes the first frame only.
    const bool animated = animated_input && animated_output;
    const int frames = animated ? header.pages : 1;
    if (animated) {
        BM_RETURN_IF_ERROR(vips::checkPixelLimit("animation", header.uprightWidth(),
                                                 header.uprightHeight(), frames, limits));
    }
    BM_ASSIGN_OR_RETURN(vips::ResizePlan plan,
                        vips::planResize(header.uprightWidth(), header.uprightHeight(),
                                         options.geometry, animated));
    BM_RETURN_IF_ERROR(checkOutputSize(plan, *spec, frames, limits));

    const Decoder decode = [&](const vips::ThumbnailRequest& request) {
        return vips::thumbnail(input, header, request);
    };
    return resizeAndSave(decode, input, output, plan, choice, options.quality, frames, animated);
}

namespace vips {

Status convertPixels(const RgbPixels& pixels, const std::string& output,
                     const ImageOptions& options, const Limits& limits) {
    BM_ASSIGN_OR_RETURN(const OutputChoice choice, chooseOutput(options));
    BM_RETURN_IF_ERROR(checkPixelLimit("image", pixels.width, pixels.height, 1, limits));
    BM_ASSIGN_OR_RETURN(ResizePlan plan,
                        planResize(pixels.width, pixels.height, options.geometry, false));
    BM_RETURN_IF_ERROR(checkOutputSize(plan, *choice.spec, 1, limits));

    const Decoder decode = [&](const ThumbnailRequest& request) {
        // The image reads the caller's memory, which outlives the save.
        const VImage image = VImage::new_from_memory(
            const_cast<uint8_t*>(pixels.pixels),
            static_cast<size_t>(pixels.width) * pixels.height * 3, pixels.width, pixels.height,
            3, VIPS_FORMAT_UCHAR);
        return thumbnailImage(image, request);
    };
    return resizeAndSave(decode, "frame", output, plan, choice, options.quality, 1, false);
}

}  // namespace vips

}  // namespace bitmill::media
