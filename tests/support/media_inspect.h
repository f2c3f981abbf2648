// Independent checks of media files produced by bitmill, through the ffprobe,
// ffmpeg and vips command-line tools rather than bitmill's own probe:
// streams and format, decoded pixels, image headers and MP4 box order.
// Every function throws std::runtime_error when its tool fails.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace bitmill::e2e {

using Json = nlohmann::json;

// Output of `ffprobe -v error -of json -show_streams -show_format FILE`.
struct ProbeResult {
    Json raw;

    // First stream of a codec_type ("video", "audio", "subtitle"), or null
    // when there is none. Attached pictures (cover art) are not counted as
    // video. The pointer refers into `raw`, so calling this on a temporary
    // does not compile.
    const Json* stream(const std::string& codec_type) const&;
    const Json* stream(const std::string& codec_type) const&& = delete;
    int streamCount(const std::string& codec_type) const;
    // format.format_name, e.g. "mov,mp4,m4a,3gp,3g2,mj2".
    std::string formatName() const;
    // format.duration in seconds, or -1 when absent.
    double duration() const;
    // Display-matrix rotation of the first video stream in degrees (0 when
    // there is none).
    double videoRotation() const;
    // avg_frame_rate of the first video stream as a number, or -1.
    double videoFrameRate() const;
};

ProbeResult probeMedia(const std::filesystem::path& file);

// Parses an ffprobe rate such as "30000/1001"; returns -1 for "0/0".
double parseRate(const std::string& rate);

// 8-bit RGB pixels in rows, top to bottom.
struct RgbImage {
    int width = 0;
    int height = 0;
    std::vector<uint8_t> pixels;

    // {r, g, b} at (x, y); throws when out of range.
    std::vector<int> at(int x, int y) const;
    // Pixel at a position given as fractions of the width and height.
    std::vector<int> atFraction(double fx, double fy) const;
    RgbImage rotated180() const;
};

// Decodes one video frame (the first frame at or after `at_seconds`) or a
// still image through ffmpeg, optionally scaled to `scale_width` x
// `scale_height`. ffmpeg applies display-matrix rotation of video but not
// EXIF orientation of JPEG files.
RgbImage decodeFrame(const std::filesystem::path& file, double at_seconds = 0,
                     int scale_width = 0, int scale_height = 0);

// Decodes any image that libvips reads (JPEG, PNG, WebP, AVIF, HEIC, GIF)
// to 8-bit RGB (alpha flattened onto black), scaled to the given size
// without rotating it by EXIF orientation.
RgbImage decodeImageScaled(const std::filesystem::path& file, int width, int height);

// Mean absolute difference per channel sample, 0..255; the images must have
// the same size.
double meanAbsoluteDifference(const RgbImage& left, const RgbImage& right);

// `vipsheader -a FILE` as fields; the common ones parsed.
struct ImageHeader {
    int width = 0;
    int height = 0;
    int bands = 0;
    std::string format;          // band format: uchar, ushort, float ...
    std::string interpretation;  // srgb, b-w, cmyk, rgb16 ...
    std::string loader;          // jpegload, pngload, webpload, heifload ...
    int pages = 1;               // n-pages for animated images
    int orientation = 1;         // EXIF orientation, 1 when absent
    std::map<std::string, std::string> fields;
};

ImageHeader readImageHeader(const std::filesystem::path& file);

// Band values at (x, y) read by `vips getpoint` (0..255 for 8-bit images,
// 0..65535 for 16-bit ones, alpha as the last band).
std::vector<double> imagePixel(const std::filesystem::path& file, int x, int y);

// Names of the top-level ISO BMFF boxes (ftyp, moov, mdat ...) in file order.
std::vector<std::string> topLevelBoxes(const std::filesystem::path& file);

// True when the moov box comes before the first mdat box.
bool isFaststart(const std::filesystem::path& file);

// Tag values that exiftool reports (-n, numbers unformatted), e.g.
// "Orientation"; empty when the tag is absent.
std::string exifTag(const std::filesystem::path& file, const std::string& tag);

}  // namespace bitmill::e2e
