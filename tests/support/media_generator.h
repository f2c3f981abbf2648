// Test inputs made with the ffmpeg and vips command-line tools. Each file is
// generated once into cacheDir()/media under a file lock and reused by later
// tests and other test binaries, because several tests need the same clip.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

namespace bitmill::e2e {

struct VideoSpec {
    int width = 320;
    int height = 240;
    double seconds = 2;
    int fps = 25;
    std::string video_codec = "libx264";
    std::string pixel_format = "yuv420p";
    bool audio = true;
    std::string audio_codec = "aac";
    int sample_rate = 48000;
    int channels = 2;
    // File extension, which also selects the container.
    std::string container = "mp4";
    // An ffmpeg lavfi video source; size and rate are appended.
    std::string source = "testsrc2";
};

struct ImageSpec {
    int width = 640;
    int height = 480;
    // File extension: jpg, png, webp.
    std::string format = "jpg";
    std::string source = "testsrc2";
};

struct AudioSpec {
    double seconds = 2;
    int sample_rate = 48000;
    int channels = 2;
    std::string codec = "pcm_s16le";
    // File extension: wav, m4a, mp3, ogg, flac.
    std::string container = "wav";
};

// A testsrc2 clip with a 440 Hz tone (unless audio is false).
std::filesystem::path makeVideo(const VideoSpec& spec);

// One testsrc2 frame as an image.
std::filesystem::path makeImage(const ImageSpec& spec);

// A 440 Hz tone.
std::filesystem::path makeAudio(const AudioSpec& spec);

// A 640x360, 2 s H.264 clip that is red with a green 360x360 square in the
// middle: `cover` into a square keeps only green, `fill` squeezes the red
// edges in, `contain` adds bars above and below.
std::filesystem::path makeFitPatternVideo();

// A 20000x14000 (280 MP) greyscale JPEG with a horizontal gradient, about
// 3.5 MB: larger than the default 100 MP image limit.
std::filesystem::path makeHugeJpeg();

// The cached file `name` in cacheDir()/media, created by `generate(path)`
// when missing. The generator writes to a temporary name that is renamed
// into place only when it succeeds.
std::filesystem::path makeCached(const std::string& name,
                                 const std::function<void(const std::filesystem::path&)>& generate);

}  // namespace bitmill::e2e
