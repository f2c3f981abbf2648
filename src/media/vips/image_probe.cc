// Image probing with libvips: format and geometry from the header, then
// one shrink-on-load decode for the average colour and the placeholder.
#include "media/vips/image_probe.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string_view>

#include <fmt/format.h>

#include "core/crypto.h"
#include "media/vips/vips_util.h"

namespace bitmill::media::vips {

namespace {

// Side of the box the colour preview is shrunk into, in pixels.
constexpr int kPreviewSize = 32;
// Width of the placeholder picture, in pixels. Five test images (four
// photos, one with alpha) gave WebP files of 96 to 298 bytes.
constexpr int kPlaceholderWidth = 16;
constexpr int kPlaceholderQuality = 40;

struct FormatNames {
    std::string_view container;
    std::string_view extension;
    std::string_view type;
    std::string_view codec;
};

FormatNames namesOf(const ImageHeader& header) {
    switch (header.format) {
        case ImageFormat::Jpeg:
            return {"jpeg", "jpg", "image/jpeg", "jpeg"};
        case ImageFormat::Png:
            return {"png", "png", "image/png", "png"};
        case ImageFormat::Webp:
            return {"webp", "webp", "image/webp", "webp"};
        case ImageFormat::Gif:
            return {"gif", "gif", "image/gif", "gif"};
        case ImageFormat::Heif:
            if (header.compression == "av1") {
                return {"avif", "avif", "image/avif", "av1"};
            }
            if (header.compression == "hevc") {
                return {"heic", "heic", "image/heic", "hevc"};
            }
            return {"heif", "heif", "image/heif", header.compression};
        case ImageFormat::Svg:
            return {"svg", "svg", "image/svg+xml", "svg"};
        case ImageFormat::Tiff:
            return {"tiff", "tiff", "image/tiff", "tiff"};
    }
    return {"", "", "application/octet-stream", ""};
}

// Returns the degrees clockwise a viewer turns the stored pixels for EXIF
// orientation `orientation`. The mirrored variants 2, 4, 5 and 7 also flip,
// which a rotation cannot express.
double rotationOf(int orientation) {
    switch (orientation) {
        case 3:
        case 4:
            return 180;
        case 6:
        case 7:
            return 90;
        case 5:
        case 8:
            return 270;
        default:
            return 0;
    }
}

std::string orientationOf(int width, int height) {
    if (width > height) {
        return "landscape";
    }
    if (width < height) {
        return "portrait";
    }
    return "square";
}

// Returns the playing time of an animation in seconds from the per-frame
// "delay" metadata (milliseconds), or nullopt when the loader gave none.
std::optional<double> animationDuration(const ::vips::VImage& image) {
    if (image.get_typeof("delay") == 0) {
        return std::nullopt;
    }
    int64_t total_ms = 0;
    for (int delay_ms : image.get_array_int("delay")) {
        total_ms += delay_ms;
    }
    return static_cast<double>(total_ms) / 1000.0;
}

// Returns the mean colour of an 8-bit sRGB image as "#rrggbb". Each pixel
// counts by its alpha, so transparent areas do not tint the result. Returns
// nullopt when every pixel is transparent. Requires: `rgb` is in memory
// (copy_memory) with 3 or 4 bands. The preview is small, so a loop here
// costs less than the libvips operations that would do the same.
std::optional<std::string> averageColour(const ::vips::VImage& rgb) {
    const auto* pixels = static_cast<const uint8_t*>(rgb.data());
    const int bands = rgb.bands();
    const size_t count = static_cast<size_t>(rgb.width()) * rgb.height();
    double sums[3] = {0, 0, 0};
    double coverage = 0;
    for (size_t index = 0; index < count; ++index) {
        const uint8_t* pixel = pixels + index * bands;
        const double weight = bands >= 4 ? pixel[3] / 255.0 : 1.0;
        coverage += weight;
        for (int band = 0; band < 3; ++band) {
            sums[band] += pixel[band] * weight;
        }
    }
    if (coverage <= 0) {
        return std::nullopt;
    }
    double channels[3];
    for (int band = 0; band < 3; ++band) {
        channels[band] = sums[band] / coverage;
    }
    auto toByte = [](double value) {
        return static_cast<int>(std::clamp(value + 0.5, 0.0, 255.0));
    };
    return fmt::format("#{:02x}{:02x}{:02x}", toByte(channels[0]), toByte(channels[1]),
                       toByte(channels[2]));
}

uint32_t readLittleEndian32(const std::string& bytes, size_t at) {
    uint32_t value = 0;
    for (int index = 3; index >= 0; --index) {
        value = (value << 8) | static_cast<unsigned char>(bytes[at + index]);
    }
    return value;
}

void writeLittleEndian32(std::string& bytes, size_t at, uint32_t value) {
    for (int index = 0; index < 4; ++index) {
        bytes[at + index] = static_cast<char>((value >> (8 * index)) & 0xff);
    }
}

// Returns a WebP file without its EXIF and XMP chunks. webpsave in libvips
// 8.14 always adds a minimal EXIF block of about 190 bytes, twice the size
// of a placeholder's pixels. Malformed input comes back unchanged.
std::string withoutWebpMetadata(const std::string& webp) {
    // RIFF header: "RIFF", the size of what follows, "WEBP"; then chunks of
    // a four-character code, a little-endian size and data padded to even.
    constexpr size_t kRiffHeaderSize = 12;
    constexpr size_t kChunkHeaderSize = 8;
    // Feature flags in the first data byte of a VP8X chunk.
    constexpr char kExifFlag = 0x08;
    constexpr char kXmpFlag = 0x04;
    if (webp.size() < kRiffHeaderSize || webp.compare(0, 4, "RIFF") != 0 ||
        webp.compare(8, 4, "WEBP") != 0) {
        return webp;
    }

    std::string stripped = webp.substr(0, kRiffHeaderSize);
    size_t at = kRiffHeaderSize;
    while (at + kChunkHeaderSize <= webp.size()) {
        const std::string_view code(webp.data() + at, 4);
        const size_t data_size = readLittleEndian32(webp, at + 4);
        const size_t chunk_size = kChunkHeaderSize + data_size + (data_size & 1);
        if (chunk_size > webp.size() - at) {
            return webp;
        }
        if (code != "EXIF" && code != "XMP ") {
            stripped.append(webp, at, chunk_size);
        }
        at += chunk_size;
    }

    // The VP8X flags announce the removed chunks, and the RIFF size counts them.
    const size_t flags_at = kRiffHeaderSize + kChunkHeaderSize;
    if (stripped.size() > flags_at && stripped.compare(kRiffHeaderSize, 4, "VP8X") == 0) {
        stripped[flags_at] = static_cast<char>(stripped[flags_at] & ~(kExifFlag | kXmpFlag));
    }
    writeLittleEndian32(stripped, 4, static_cast<uint32_t>(stripped.size() - 8));
    return stripped;
}

// Encodes `preview` at placeholder size as a WebP data URI.
std::string placeholderDataUri(const ::vips::VImage& preview) {
    ::vips::VImage tiny = preview;
    if (tiny.width() > kPlaceholderWidth) {
        tiny = tiny.resize(static_cast<double>(kPlaceholderWidth) / tiny.width());
    }
    void* buffer = nullptr;
    size_t size = 0;
    tiny.write_to_buffer(
        ".webp", &buffer, &size,
        ::vips::VImage::option()->set("Q", kPlaceholderQuality)->set("strip", true));
    std::string bytes(static_cast<const char*>(buffer), size);
    g_free(buffer);
    return "data:image/webp;base64," + crypto::base64Encode(withoutWebpMetadata(bytes));
}

// Returns true when a GIF really uses transparency. libvips gives every GIF
// an alpha band, so only the alpha values tell. Decodes the first frame.
bool gifUsesTransparency(const ::vips::VImage& first_frame) {
    return first_frame.bands() >= 4 && first_frame[3].min() < 255;
}

}  // namespace

bool isImage(const std::string& path) {
    return detectFormat(path).has_value();
}

Result<MediaProperties> probeImage(const std::string& path, const Limits& limits) {
    BM_ASSIGN_OR_RETURN(ImageHeader header, readHeader(path, limits));

    MediaProperties properties;
    const FormatNames names = namesOf(header);
    properties.kind = "image";
    properties.container = names.container;
    properties.extension = names.extension;
    properties.type = names.type;
    if (!names.codec.empty()) {
        properties.codec = std::string(names.codec);
    }
    properties.width = header.uprightWidth();
    properties.height = header.uprightHeight();
    properties.orientation = orientationOf(header.uprightWidth(), header.uprightHeight());
    properties.rotation = rotationOf(header.orientation);

    const bool animatable = header.format == ImageFormat::Gif || header.format == ImageFormat::Webp;
    properties.animated = animatable && header.pages > 1;
    properties.frames = *properties.animated ? header.pages : 1;
    if (*properties.animated) {
        properties.duration = animationDuration(header.image);
    }

    // Every resize here makes at most kPreviewSize x kPreviewSize pixels.
    const VectorCodeScope vector_code(kPreviewSize * kPreviewSize);
    try {
        properties.transparency = header.format == ImageFormat::Gif
                                      ? gifUsesTransparency(header.image)
                                      : header.has_alpha;

        // One small decode, with shrink-on-load where the format has it,
        // also proves that the pixel data is complete (kFailOn).
        ThumbnailRequest request;
        request.width = kPreviewSize;
        request.height = kPreviewSize;
        ::vips::VImage preview = thumbnail(path, header, request);
        // The loader reads its source once, in order, but the colour
        // statistics below make several passes, so keep the pixels.
        preview = withoutMetadata(toSrgb8(preview)).copy_memory();
        properties.background = averageColour(preview);
        properties.placeholder = placeholderDataUri(preview);
    } catch (const ::vips::VError& error) {
        return toError(error, {.action = "decode image",
                               .input = path,
                               .output = {},
                               .fallback = ErrorCode::UnsupportedMedia});
    }
    return properties;
}

}  // namespace bitmill::media::vips
