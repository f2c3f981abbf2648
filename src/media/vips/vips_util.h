// Helpers shared by the libvips operations: the loaders bitmill accepts,
// reading an input's header under the pixel limit before any pixel is
// decoded, and turning libvips exceptions into Error.
#pragma once

#include <vips/vips8>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/config.h"
#include "core/error.h"

namespace bitmill::media::vips {

// Image formats whose libvips loaders stay enabled. initialize() blocks
// every other loader (ImageMagick, PDF, OpenSlide, FITS, Matlab, CSV,
// raw...), so libvips never falls back to one of them.
enum class ImageFormat { Jpeg, Png, Webp, Gif, Heif, Svg, Tiff };

// libvips loader base classes of the formats above, as
// vips_operation_block_set() names them.
inline constexpr std::array<const char*, 7> kAllowedLoaders = {
    "VipsForeignLoadJpeg", "VipsForeignLoadPng", "VipsForeignLoadWebp", "VipsForeignLoadNsgif",
    "VipsForeignLoadHeif", "VipsForeignLoadSvg", "VipsForeignLoadTiff",
};

// Every load uses this policy: a truncated file fails instead of decoding
// to a grey-filled picture, while harmless decoder warnings (such as extra
// bytes before a JPEG marker) are tolerated.
inline constexpr VipsFailOn kFailOn = VIPS_FAIL_ON_TRUNCATED;

// Returns a copy of `image` without EXIF, XMP, IPTC, ICC or other
// metadata, keeping only the frame layout, delays and loop count that
// animated savers read. Needed because webpsave in libvips 8.14 writes the
// EXIF block (GPS position included) even with strip set.
::vips::VImage withoutMetadata(const ::vips::VImage& image);

// The header of an input, read without decoding pixels.
struct ImageHeader {
    ImageFormat format = ImageFormat::Jpeg;
    int width = 0;        // one page as stored, before EXIF orientation
    int height = 0;       // one page as stored, before EXIF orientation
    int pages = 1;        // frames of a GIF or WebP, images of a HEIF or TIFF
    int orientation = 1;  // EXIF orientation, 1..8
    bool has_alpha = false;
    std::string compression;  // HEIF only: "hevc" or "av1"
    ::vips::VImage image;     // header of the first page; pixels decode on use

    // True when EXIF orientation 5..8 swaps width and height for display.
    bool swapsAxes() const { return orientation >= 5 && orientation <= 8; }
    int uprightWidth() const { return swapsAxes() ? height : width; }
    int uprightHeight() const { return swapsAxes() ? width : height; }
};

// Returns the format of the file at `path` sniffed from its first bytes,
// or nullopt when no allowed loader recognizes it (empty, missing, not an
// image, or a format whose loader is blocked).
std::optional<ImageFormat> detectFormat(const std::string& path);

// Opens the file at `path` and reads its header. Errors: UnsupportedMedia
// for an empty file, a file that is not an allowed image format, or an
// unreadable header; ResourceExhausted when one page has more pixels than
// limits.max_image_pixels; Internal when the file cannot be opened.
Result<ImageHeader> readHeader(const std::string& path, const Limits& limits);

// Arguments of one shrink-on-load decode with vips_thumbnail_source.
struct ThumbnailRequest {
    int width = 0;   // VIPS_MAX_COORD leaves the width free
    int height = 0;  // VIPS_MAX_COORD leaves the height free
    VipsSize size = VIPS_SIZE_BOTH;
    VipsInteresting crop = VIPS_INTERESTING_NONE;
    bool all_frames = false;  // load every frame of a GIF or WebP
};

// Decodes the file at `path` at about the requested size with libvips'
// thumbnail operation: shrink-on-load, EXIF orientation applied, an
// embedded ICC profile converted to sRGB (CMYK without a profile goes
// through libvips' fallback CMYK profile), and the kFailOn policy.
// `header` is the header readHeader() returned for `path`. The result is
// lazy and can be read once, from top to bottom. Throws ::vips::VError.
::vips::VImage thumbnail(const std::string& path, const ImageHeader& header,
                         const ThumbnailRequest& request);

// Resizes an image that is already decoded, as thumbnail() does a file but
// without shrink-on-load, orientation or profile handling: the image must
// be upright sRGB. `request.all_frames` is ignored. The result is lazy.
// Throws ::vips::VError.
::vips::VImage thumbnailImage(const ::vips::VImage& image, const ThumbnailRequest& request);

// Returns ResourceExhausted when `frames` pictures of width x height pixels
// exceed limits.max_image_pixels. `subject` names the picture in the
// message: "image", "animation" or "output".
Status checkPixelLimit(std::string_view subject, int64_t width, int64_t height, int64_t frames,
                       const Limits& limits);

// Converts a decoded image to 8-bit sRGB with 3 bands, or 4 with alpha:
// 16-bit input is scaled down, greyscale is expanded and CMYK or Lab is
// converted. Throws ::vips::VError like any libvips call.
::vips::VImage toSrgb8(const ::vips::VImage& image);

// Scope in which libvips builds operations without vector code and runs
// them on one worker thread, when the output has few pixels. libvips
// compiles vector code (with Orc) for each resize it builds, which costs
// about as much as resizing 10,000 to 20,000 pixels without it, so scalar
// code is faster below that. Scalar and vector code round differently, by
// up to 3 levels of 255. Both settings are process-wide, so operations
// that other threads build meanwhile get them too.
class VectorCodeScope {
  public:
    explicit VectorCodeScope(int64_t output_pixels);
    VectorCodeScope(const VectorCodeScope&) = delete;
    VectorCodeScope& operator=(const VectorCodeScope&) = delete;
    ~VectorCodeScope();

  private:
    bool changed_ = false;
    int previous_concurrency_ = 0;  // libvips' thread count, restored when above 1
};

// Reads and clears libvips' error buffer. The buffer is process-wide, so
// each failure path calls this once.
std::string takeErrorBuffer();

// The operation and files of a failed libvips call.
struct FailureContext {
    std::string_view action;  // e.g. "convert image"
    std::string_view input;   // path of the input file
    std::string_view output;  // path of the output file; empty when none
    ErrorCode fallback = ErrorCode::Internal;
};

// Converts a libvips exception into an Error and clears the error buffer.
// The code is Unavailable for a full disk, Internal when the output cannot
// be written, UnsupportedMedia when a loader reported the failure (corrupt,
// truncated or unsupported data), and `context.fallback` otherwise. The
// public message names the input and output instead of their paths; the
// libvips text goes to the detail.
Error toError(const ::vips::VError& error, const FailureContext& context);

}  // namespace bitmill::media::vips
