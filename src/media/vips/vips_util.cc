// Loader allow-list, header reading and error conversion for the libvips
// operations of the media layer.
#include "media/vips/vips_util.h"

#include <vips/vector.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <regex>
#include <system_error>
#include <utility>

#include <fmt/format.h>

namespace bitmill::media::vips {

namespace {

// Loaders as vips_foreign_find_load_source() names them, and their formats.
constexpr std::array<std::pair<std::string_view, ImageFormat>, 7> kLoaderFormats = {{
    {"VipsForeignLoadJpeg", ImageFormat::Jpeg},
    {"VipsForeignLoadPng", ImageFormat::Png},
    {"VipsForeignLoadWebp", ImageFormat::Webp},
    {"VipsForeignLoadNsgif", ImageFormat::Gif},
    {"VipsForeignLoadHeif", ImageFormat::Heif},
    {"VipsForeignLoadSvg", ImageFormat::Svg},
    {"VipsForeignLoadTiff", ImageFormat::Tiff},
}};

// Words that loaders and decoders put in libvips error text. A failure
// whose text has one of them, and no sign of a write error, comes from the
// input's bytes.
constexpr std::array<std::string_view, 14> kDecoderMarkers = {
    "load",      "VipsJpeg",        "vipspng",           "libpng",    "Premature end",
    "truncated", "not enough data", "out of order read", "XML parse", "rsvg",
    "tiff2vips", "nsgif",           "Corrupt",           "Bogus",
};

// Words of libvips error text when the output could not be written.
constexpr std::array<std::string_view, 3> kWriteMarkers = {
    "unable to open for write",
    "write error",
    "Output file write error",
};
constexpr std::array<std::string_view, 2> kDiskFullMarkers = {
    "No space left on device",
    "out of disk space",
};

// libvips failures mapped to a cause an API client can act on.
constexpr std::array<std::pair<std::string_view, std::string_view>, 10> kKnownCauses = {{
    {"No space left on device", "the disk is full"},
    {"unable to open for write", "cannot create the output file"},
    {"Premature end", "the file is truncated"},
    {"not enough data", "the file is truncated"},
    {"truncated", "the file is truncated"},
    {"libpng read error", "the file is truncated or corrupt"},
    {"out of order read", "the file is truncated or corrupt"},
    {"not a known file format", "the file is not a supported image format"},
    {"XML parse error", "the SVG is not valid XML or uses an external entity"},
    {"Corrupt", "the image data is corrupt"},
}};

constexpr std::size_t kMaxCauseLength = 240;

// Metadata that survives withoutMetadata(): what animated savers read.
constexpr std::array<std::string_view, 5> kAnimationFields = {
    VIPS_META_PAGE_HEIGHT, "delay", "loop", "gif-delay", "gif-loop",
};

std::optional<ImageFormat> formatOfLoader(std::string_view loader) {
    for (const auto& [prefix, format] : kLoaderFormats) {
        if (loader.starts_with(prefix)) {
            return format;
        }
    }
    return std::nullopt;
}

void replaceAll(std::string& text, std::string_view from, std::string_view to) {
    if (from.empty()) {
        return;
    }
    for (std::size_t at = text.find(from); at != std::string::npos;
         at = text.find(from, at + to.size())) {
        text.replace(at, from.size(), to);
    }
}

// Returns the first non-empty line of libvips error text with the input
// and output paths replaced by "input" and "output" and other quoted file
// names removed, so that the public message never shows a server path.
std::string cleanFirstLine(std::string text, const FailureContext& context) {
    // The longer path first, in case one is a prefix of the other.
    if (context.output.size() > context.input.size()) {
        replaceAll(text, context.output, "output");
        replaceAll(text, context.input, "input");
    } else {
        replaceAll(text, context.input, "input");
        replaceAll(text, context.output, "output");
    }
    static const std::regex kQuotedPath(R"("[^"\n]*/[^"\n]*")");
    text = std::regex_replace(text, kQuotedPath, "\"file\"");

    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t end = text.find('\n', start);
        if (end == std::string::npos) {
            end = text.size();
        }
        std::string line = text.substr(start, end - start);
        if (line.find_first_not_of(" \t\r") != std::string::npos) {
            if (line.size() > kMaxCauseLength) {
                line.resize(kMaxCauseLength);
            }
            return line;
        }
        start = end + 1;
    }
    return "unknown libvips error";
}

template <size_t N>
bool containsAny(std::string_view text, const std::array<std::string_view, N>& markers) {
    for (std::string_view marker : markers) {
        if (text.find(marker) != std::string_view::npos) {
            return true;
        }
    }
    return false;
}

ErrorCode classify(std::string_view text, ErrorCode fallback) {
    if (containsAny(text, kDiskFullMarkers)) {
        return ErrorCode::Unavailable;
    }
    if (containsAny(text, kWriteMarkers)) {
        return ErrorCode::Internal;
    }
    if (containsAny(text, kDecoderMarkers)) {
        return ErrorCode::UnsupportedMedia;
    }
    return fallback;
}

}  // namespace

std::optional<ImageFormat> detectFormat(const std::string& path) {
    std::error_code ignored;
    if (std::filesystem::file_size(path, ignored) == 0 || ignored) {
        return std::nullopt;
    }
    VipsSource* source = vips_source_new_from_file(path.c_str());
    if (source == nullptr) {
        takeErrorBuffer();
        return std::nullopt;
    }
    const char* loader = vips_foreign_find_load_source(source);
    std::optional<ImageFormat> format;
    if (loader != nullptr) {
        format = formatOfLoader(loader);
    } else {
        takeErrorBuffer();
    }
    g_object_unref(source);
    return format;
}

Result<ImageHeader> readHeader(const std::string& path, const Limits& limits) {
    // A libvips call that recovers from a failure may leave its text in the
    // buffer. Clearing it keeps it out of the message of a later failure.
    vips_error_clear();
    std::error_code size_error;
    const auto size = std::filesystem::file_size(path, size_error);
    if (size_error) {
        return Error::internal("read image header: cannot open input",
                               fmt::format("{}: {}", path, size_error.message()));
    }
    if (size == 0) {
        return Error::unsupportedMedia("file is empty");
    }
    std::optional<ImageFormat> format = detectFormat(path);
    if (!format) {
        return Error::unsupportedMedia(
            "read image header: the file is not a supported image format (JPEG, PNG, WebP, GIF, "
            "HEIC, AVIF, SVG, TIFF)");
    }

    ImageHeader header;
    header.format = *format;
    try {
        ::vips::VSource source = ::vips::VSource::new_from_file(path.c_str());
        header.image = ::vips::VImage::new_from_source(source, "",
                                                       ::vips::VImage::option()
                                                           ->set("access", VIPS_ACCESS_SEQUENTIAL)
                                                           ->set("fail_on", kFailOn));
    } catch (const ::vips::VError& error) {
        return toError(error, {.action = "read image header",
                               .input = path,
                               .output = {},
                               .fallback = ErrorCode::UnsupportedMedia});
    }

    const ::vips::VImage& image = header.image;
    header.width = image.width();
    header.height = image.height();
    header.has_alpha = image.has_alpha();
    if (image.get_typeof(VIPS_META_N_PAGES) != 0) {
        header.pages = std::max(1, image.get_int(VIPS_META_N_PAGES));
    }
    if (image.get_typeof(VIPS_META_ORIENTATION) != 0) {
        const int orientation = image.get_int(VIPS_META_ORIENTATION);
        header.orientation = orientation >= 1 && orientation <= 8 ? orientation : 1;
    }
    if (header.format == ImageFormat::Heif && image.get_typeof("heif-compression") != 0) {
        header.compression = image.get_string("heif-compression");
    }

    BM_RETURN_IF_ERROR(
        checkPixelLimit("image", header.uprightWidth(), header.uprightHeight(), 1, limits));
    return header;
}

Status checkPixelLimit(std::string_view subject, int64_t width, int64_t height, int64_t frames,
                       const Limits& limits) {
    // A GIF header may claim billions of frames, so the product can
    // overflow; an overflow is above any limit.
    int64_t frame_pixels = 0;
    int64_t pixels = 0;
    const bool overflow = __builtin_mul_overflow(width, height, &frame_pixels) ||
                          __builtin_mul_overflow(frame_pixels, frames, &pixels);
    if (!overflow && pixels <= limits.max_image_pixels) {
        return okStatus();
    }
    if (overflow) {
        pixels = std::numeric_limits<int64_t>::max();
    }
    if (frames > 1) {
        return Error::resourceExhausted(
            fmt::format("{} is {}x{} with {} frames ({} pixels), above the limit of {} pixels "
                        "(max_image_pixels)",
                        subject, width, height, frames, pixels, limits.max_image_pixels));
    }
    return Error::resourceExhausted(
        fmt::format("{} is {}x{} ({} pixels), above the limit of {} pixels (max_image_pixels)",
                    subject, width, height, pixels, limits.max_image_pixels));
}

::vips::VImage thumbnail(const std::string& path, const ImageHeader& header,
                         const ThumbnailRequest& request) {
    // libvips 8.14 does not hand thumbnail's own fail_on to a source
    // loader, so the policy travels in the loader's option string.
    std::string loader_options =
        fmt::format("fail_on={}", vips_enum_nick(VIPS_TYPE_FAIL_ON, kFailOn));
    if (request.all_frames) {
        loader_options += ",n=-1";
    }
    auto* options = ::vips::VImage::option()
                        ->set("height", request.height)
                        ->set("size", request.size)
                        ->set("crop", request.crop)
                        ->set("option_string", loader_options.c_str());
    // Without an export profile, libvips 8.14 keeps the pixels in the
    // embedded profile's space (Display P3 from phones, Adobe RGB), which
    // is wrong once the profile is stripped. Setting one for images without
    // a profile would instead misread 16-bit PNGs, so only these get it.
    if (header.image.get_typeof(VIPS_META_ICC_NAME) != 0) {
        options->set("export_profile", "srgb");
    }
    ::vips::VSource source = ::vips::VSource::new_from_file(path.c_str());
    return ::vips::VImage::thumbnail_source(source, request.width, options);
}

::vips::VImage thumbnailImage(const ::vips::VImage& image, const ThumbnailRequest& request) {
    return image.thumbnail_image(request.width, ::vips::VImage::option()
                                                    ->set("height", request.height)
                                                    ->set("size", request.size)
                                                    ->set("crop", request.crop));
}

::vips::VImage withoutMetadata(const ::vips::VImage& image) {
    ::vips::VImage stripped = image.copy();
    gchar** fields = vips_image_get_fields(stripped.get_image());
    for (gchar** field = fields; *field != nullptr; ++field) {
        const std::string_view name(*field);
        if (std::find(kAnimationFields.begin(), kAnimationFields.end(), name) ==
            kAnimationFields.end()) {
            // Built-in header fields such as width are not in the metadata
            // table, so removing them does nothing.
            stripped.remove(*field);
        }
    }
    g_strfreev(fields);
    return stripped;
}

::vips::VImage toSrgb8(const ::vips::VImage& image) {
    ::vips::VImage converted = image;
    if (converted.interpretation() != VIPS_INTERPRETATION_sRGB ||
        converted.format() != VIPS_FORMAT_UCHAR) {
        converted = converted.colourspace(VIPS_INTERPRETATION_sRGB);
    }
    if (converted.format() != VIPS_FORMAT_UCHAR) {
        converted = converted.cast(VIPS_FORMAT_UCHAR);
    }
    return converted;
}

VectorCodeScope::VectorCodeScope(int64_t output_pixels) {
    // Measured with callgrind on libvips 8.14 and Orc 0.4.33: compiling the
    // vector code of one reducev took 6 to 15 million instructions, and
    // scalar code took about 800 instructions more per RGB output pixel.
    constexpr int64_t kMinVectorOutputPixels = 128 * 128;
    if (output_pixels >= kMinVectorOutputPixels) {
        return;
    }
    if (vips_vector_isenabled()) {
        vips_vector_set_enabled(FALSE);
        changed_ = true;
    }
    // At this size, starting and ending a second worker thread costs more
    // than it saves. With one thread, a queue of 64x64 PNG to 32 px JPEG
    // tasks on 2 cores went from 149 to 166 tasks/s.
    previous_concurrency_ = vips_concurrency_get();
    if (previous_concurrency_ > 1) {
        vips_concurrency_set(1);
    }
}

VectorCodeScope::~VectorCodeScope() {
    if (changed_) {
        vips_vector_set_enabled(TRUE);
    }
    if (previous_concurrency_ > 1) {
        vips_concurrency_set(previous_concurrency_);
    }
}

std::string takeErrorBuffer() {
    std::string text = vips_error_buffer();
    vips_error_clear();
    return text;
}

Error toError(const ::vips::VError& error, const FailureContext& context) {
    std::string text = error.what();
    // VError copies the buffer without clearing it.
    takeErrorBuffer();

    const std::string line = cleanFirstLine(text, context);
    std::string message = fmt::format("{}: {}", context.action, line);
    for (const auto& [marker, cause] : kKnownCauses) {
        if (text.find(marker) != std::string::npos) {
            message = fmt::format("{}: {} ({})", context.action, cause, line);
            break;
        }
    }
    const ErrorCode code = classify(text, context.fallback);
    return Error(code, std::move(message), std::move(text));
}

}  // namespace bitmill::media::vips
