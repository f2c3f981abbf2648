// Inputs and checks for the FFmpeg probe, frame grab and audio tests: a
// temporary folder, media generated with the ffmpeg CLI, and independent
// measurements of outputs through ffprobe and ffmpeg.
#pragma once

#include <stdlib.h>

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/json.h"

namespace bitmill::media::testing {

namespace fs = std::filesystem;

// Quotes `text` for /bin/sh.
inline std::string shellQuote(const std::string& text) {
    std::string quoted = "'";
    for (char c : text) {
        if (c == '\'') {
            quoted += "'\\''";
        } else {
            quoted += c;
        }
    }
    return quoted + "'";
}

struct CommandOutput {
    int exit_code = -1;
    std::string output;  // stdout and stderr together
};

// Runs a shell command line and collects its output.
inline CommandOutput runShell(const std::string& command) {
    CommandOutput result;
    FILE* pipe = popen((command + " 2>&1").c_str(), "r");
    if (pipe == nullptr) {
        return result;
    }
    std::array<char, 4096> buffer{};
    size_t count = 0;
    while ((count = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
        result.output.append(buffer.data(), count);
    }
    const int status = pclose(pipe);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return result;
}

// Runs ffmpeg with `arguments` (already quoted) and fails the test when it
// exits with an error.
inline void runFfmpeg(const std::string& arguments) {
    const CommandOutput result = runShell("ffmpeg -nostdin -hide_banner -loglevel error -y " +
                                          arguments);
    if (result.exit_code != 0) {
        throw std::runtime_error("ffmpeg " + arguments + " failed: " + result.output);
    }
}

// A fresh folder under the temporary directory, removed with its contents.
class TempDir {
public:
    explicit TempDir(const std::string& prefix) {
        std::string pattern = (fs::temp_directory_path() / (prefix + "-XXXXXX")).string();
        if (mkdtemp(pattern.data()) == nullptr) {
            throw std::runtime_error("cannot create a temporary folder from " + pattern);
        }
        path_ = pattern;
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir() {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
    }

    const fs::path& path() const { return path_; }
    std::string file(const std::string& name) const { return (path_ / name).string(); }

private:
    fs::path path_;
};

// ffprobe's view of a file: `-show_format -show_streams` as JSON.
struct FfprobeResult {
    Json json;

    // The first stream of `codec_type` ("video", "audio"), or null.
    const Json* stream(const std::string& codec_type) const {
        for (const Json& stream : json["streams"]) {
            if (stream.value("codec_type", "") == codec_type) {
                return &stream;
            }
        }
        return nullptr;
    }
    int streamCount(const std::string& codec_type) const {
        int count = 0;
        for (const Json& stream : json["streams"]) {
            count += stream.value("codec_type", "") == codec_type ? 1 : 0;
        }
        return count;
    }
    std::string formatName() const { return json["format"].value("format_name", ""); }
    double duration() const { return std::stod(json["format"].value("duration", "-1")); }
};

inline FfprobeResult runFfprobe(const std::string& path) {
    const CommandOutput result = runShell(
        "ffprobe -v error -of json -show_format -show_streams " + shellQuote(path));
    if (result.exit_code != 0) {
        throw std::runtime_error("ffprobe " + path + " failed: " + result.output);
    }
    return {Json::parse(result.output)};
}

// 8-bit RGB pixels of an image file, rows top to bottom, decoded by ffmpeg.
struct RgbImage {
    int width = 0;
    int height = 0;
    std::vector<uint8_t> pixels;

    std::array<int, 3> at(int x, int y) const {
        const size_t offset = (static_cast<size_t>(y) * width + x) * 3;
        return {pixels[offset], pixels[offset + 1], pixels[offset + 2]};
    }
    std::array<int, 3> atFraction(double fx, double fy) const {
        return at(static_cast<int>(fx * (width - 1)), static_cast<int>(fy * (height - 1)));
    }
};

inline RgbImage decodeRgb(const std::string& path, const fs::path& scratch_dir) {
    const FfprobeResult probe = runFfprobe(path);
    const Json* video = probe.stream("video");
    if (video == nullptr) {
        throw std::runtime_error(path + " has no picture");
    }
    RgbImage image;
    image.width = video->value("width", 0);
    image.height = video->value("height", 0);
    const std::string raw = (scratch_dir / "decoded.rgb").string();
    runFfmpeg("-i " + shellQuote(path) + " -frames:v 1 -f rawvideo -pix_fmt rgb24 " +
              shellQuote(raw));
    std::ifstream file(raw, std::ios::binary);
    image.pixels.assign(std::istreambuf_iterator<char>(file), {});
    if (image.pixels.size() != static_cast<size_t>(image.width) * image.height * 3) {
        throw std::runtime_error("decoded " + path + " to an unexpected number of bytes");
    }
    return image;
}

// Per-channel RMS levels in dBFS of an audio file, measured by astats.
inline std::vector<double> channelRmsLevels(const std::string& path) {
    const CommandOutput result = runShell("ffmpeg -nostdin -hide_banner -i " + shellQuote(path) +
                                          " -af astats=measure_overall=none -f null -");
    std::vector<double> levels;
    const std::string key = "RMS level dB: ";
    for (size_t at = result.output.find(key); at != std::string::npos;
         at = result.output.find(key, at + 1)) {
        const std::string value = result.output.substr(at + key.size(), 16);
        levels.push_back(value.rfind("-inf", 0) == 0 ? -200.0 : std::stod(value));
    }
    return levels;
}

// Integrated loudness in LUFS measured by the ebur128 filter.
inline double integratedLoudness(const std::string& path) {
    const CommandOutput result = runShell("ffmpeg -nostdin -hide_banner -i " + shellQuote(path) +
                                          " -af ebur128 -f null -");
    const std::string summary = "Integrated loudness:";
    const size_t block = result.output.rfind(summary);
    const size_t at = result.output.find("I:", block);
    if (block == std::string::npos || at == std::string::npos) {
        throw std::runtime_error("no loudness summary for " + path + ": " + result.output);
    }
    return std::stod(result.output.substr(at + 2, 16));
}

// Folder of the generated inputs, shared by every test of the process and
// removed at exit.
inline const TempDir& inputDir() {
    static const TempDir dir("bitmill-av-inputs");
    return dir;
}

// Each input below is generated on first use, once per test process.

// H.264 640x360 25 fps testsrc2 with stereo 48 kHz AAC (440 Hz tone, tagged
// French), 2 s, moov before mdat.
inline const std::string& videoWithAudioMp4() {
    static const std::string path = [] {
        const std::string out = inputDir().file("video-audio.mp4");
        runFfmpeg("-f lavfi -i testsrc2=size=640x360:rate=25 "
                  "-f lavfi -i sine=frequency=440:sample_rate=48000 -t 2 "
                  "-c:v libx264 -preset veryfast -pix_fmt yuv420p -g 25 "
                  "-c:a aac -ac 2 -b:a 96k -metadata:s:a:0 language=fre "
                  "-movflags +faststart " +
                  shellQuote(out));
        return out;
    }();
    return path;
}

// The clip above with a display matrix that players apply as a 90 degree
// clockwise turn, as phones record portrait video. FFmpeg 5.1's MP4 muxer
// reads the rotate tag as counterclockwise degrees, hence 270.
inline const std::string& rotatedVideoMp4() {
    static const std::string path = [] {
        const std::string out = inputDir().file("rotated.mp4");
        runFfmpeg("-i " + shellQuote(videoWithAudioMp4()) +
                  " -c copy -metadata:s:v:0 rotate=270 " + shellQuote(out));
        return out;
    }();
    return path;
}

// H.264 video without an audio stream, 1 s.
inline const std::string& videoOnlyMp4() {
    static const std::string path = [] {
        const std::string out = inputDir().file("video-only.mp4");
        runFfmpeg("-f lavfi -i testsrc2=size=320x240:rate=25 -t 1 -c:v libx264 "
                  "-preset veryfast -pix_fmt yuv420p " +
                  shellQuote(out));
        return out;
    }();
    return path;
}

// Stereo 44.1 kHz AAC in an M4A file, no video, 3 s.
inline const std::string& audioOnlyM4a() {
    static const std::string path = [] {
        const std::string out = inputDir().file("audio-only.m4a");
        runFfmpeg("-f lavfi -i sine=frequency=330:sample_rate=44100 -t 3 -ac 2 -c:a aac "
                  "-b:a 96k " +
                  shellQuote(out));
        return out;
    }();
    return path;
}

// H.264 1280x720 testsrc2, 2 s, with the moov box after the media data
// (FFmpeg's default without +faststart).
inline const std::string& moovAtEndMp4() {
    static const std::string path = [] {
        const std::string out = inputDir().file("moov-at-end.mp4");
        runFfmpeg("-f lavfi -i testsrc2=size=1280x720:rate=25 -t 2 -c:v libx264 "
                  "-preset veryfast -pix_fmt yuv420p " +
                  shellQuote(out));
        return out;
    }();
    return path;
}

// The file above cut in half, so the index is missing.
inline const std::string& truncatedNoMoovMp4() {
    static const std::string path = [] {
        const std::string out = inputDir().file("truncated-no-moov.mp4");
        fs::copy_file(moovAtEndMp4(), out);
        fs::resize_file(out, fs::file_size(out) / 2);
        return out;
    }();
    return path;
}

// A faststart MP4 cut at 60%: the index is complete but promises samples
// that are missing.
inline const std::string& truncatedFaststartMp4() {
    static const std::string path = [] {
        const std::string out = inputDir().file("truncated-faststart.mp4");
        fs::copy_file(videoWithAudioMp4(), out);
        fs::resize_file(out, fs::file_size(out) * 6 / 10);
        return out;
    }();
    return path;
}

inline const std::string& zeroByteMp4() {
    static const std::string path = [] {
        const std::string out = inputDir().file("zero-bytes.mp4");
        std::ofstream{out};
        return out;
    }();
    return path;
}

}  // namespace bitmill::media::testing
