// Public entry points of the media layer: probing, video, audio and image
// conversion, and frame grabs. This is the only folder that includes FFmpeg
// or libvips headers; callers pass local file paths and plain option
// structs, so nothing here depends on the database, storage or HTTP.
//
// Every function is synchronous, may use several threads internally, and
// reports failures as Error: UnsupportedMedia for input that cannot be read
// (corrupt, truncated, not media), ResourceExhausted when a limit in
// `Limits` is exceeded (the message names the limit and the value),
// InvalidArgument for options that do not fit the input, Internal for
// unexpected library failures. Outputs are written to the given path; on
// failure a partial output is removed.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "core/config.h"
#include "core/error.h"
#include "core/media_properties.h"

namespace bitmill::media {

// Initializes libvips and routes FFmpeg's and libvips' log output into the
// "media" logger. Call once per process before any other function here.
Status initialize(const char* argv0);

// Does once the library setup that the first operation of a process would
// otherwise do: libvips' operation and loader classes. Starts no thread, so
// a process may call it and then fork processes that each run operations
// (the task host does). Requires: initialize() succeeded.
void preloadForForkedProcesses();

// Called with 0..100 as work advances; may be called from worker threads.
using ProgressCallback = std::function<void(int percent)>;

// A width or height: pixels, or a percentage of the input's.
struct Dimension {
    int value = 0;
    bool percent = false;
};

// Output size and fit. When both width and height are given, `fit` sets
// how the box is filled:
// "fill" stretches, "cover" scales and crops, "contain" scales and pads.
// `position` picks the kept part (cover) or the placement (contain):
// center, top, bottom, left, right, top_left, top_right, bottom_left,
// bottom_right; images also accept attention and entropy.
struct Geometry {
    std::optional<Dimension> width;
    std::optional<Dimension> height;
    std::string fit = "fill";
    std::string position = "center";
};

// Describes the file at `path` from its bytes: container and codecs from
// content (never from the extension), upright dimensions, rotation,
// duration, frames, fps, bitrate, transparency, animation. Cover art is
// not taken for a video stream. Checks pixel and duration limits.
Result<MediaProperties> probe(const std::string& path, const Limits& limits);

struct VideoOptions {
    Geometry geometry;
    std::string background = "#000000";  // padding colour for contain
    std::optional<double> fps;           // empty keeps the source timing
    std::string format = "mp4";          // mp4, webm, mov, mkv
    std::string codec = "h264";          // h264, h265, vp9, av1
    std::string audio_codec = "aac";     // aac, opus, mp3, none
    int quality = 60;                    // 0..100; 60 is "medium"
    std::optional<int64_t> bitrate;      // video bits per second
    std::optional<int64_t> audio_bitrate;
    std::optional<double> start;  // seconds
    std::optional<double> end;    // seconds
};

// Transcodes to a web-safe video: upright, 8-bit 4:2:0, even dimensions,
// SDR BT.709 limited range, +faststart for MP4/MOV, HEVC tagged hvc1.
// A source without audio gives a video without audio.
Status transcodeVideo(const std::string& input, const std::string& output,
                      const VideoOptions& options, const Limits& limits,
                      const ProgressCallback& progress);

struct AudioOptions {
    std::string format = "mp3";  // mp3, aac, wav, ogg, opus, flac
    std::optional<int> quality;  // 0..100
    std::optional<int64_t> bitrate;
    std::optional<int> channels;     // 1 or 2
    std::optional<int> sample_rate;  // Hz
    std::optional<double> start;
    std::optional<double> end;
    std::optional<double> normalize_lufs;  // EBU R128 integrated loudness
};

// Extracts and encodes the audio of any input with an audio stream.
Status transcodeAudio(const std::string& input, const std::string& output,
                      const AudioOptions& options, const Limits& limits,
                      const ProgressCallback& progress);

struct FrameGrabOptions {
    // Seconds into the video; empty picks a representative non-black frame.
    std::optional<double> time;
};

// Writes one upright, 8-bit sRGB frame of a video as a lossless PNG,
// seeking to the nearest keyframe before the time instead of decoding from
// the start.
Status grabFrame(const std::string& input, const std::string& output_png,
                 const FrameGrabOptions& options, const Limits& limits);

struct ImageOptions {
    Geometry geometry;
    // Empty means transparent where the format allows, else black, and
    // white for JPEG (transparent input is flattened onto it).
    std::optional<std::string> background;
    std::string format = "jpeg";  // jpeg, png, webp, avif, gif
    int quality = 80;             // 0..100
};

// Converts an image with libvips' shrink-on-load path: upright (EXIF
// orientation applied, tag removed), colour profile converted to sRGB,
// metadata stripped, animation kept for GIF and WebP outputs.
Status convertImage(const std::string& input, const std::string& output,
                    const ImageOptions& options, const Limits& limits);

// Grabs a frame of a video as grabFrame does and converts it as
// convertImage does an upright sRGB image, passing the pixels in memory
// instead of through a PNG file. Errors are theirs.
Status convertVideoFrame(const std::string& input, const std::string& output,
                         const FrameGrabOptions& grab, const ImageOptions& options,
                         const Limits& limits);

}  // namespace bitmill::media
