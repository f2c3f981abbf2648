// Tests of media::transcodeVideo and its planning helpers: inputs come from
// the ffmpeg CLI and make-corpus.sh, outputs are checked with ffprobe and by
// decoding frames with ffmpeg, never by comparing bytes.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "av_test_support.h"
#include "media/ffmpeg/video_encoding.h"
#include "media/ffmpeg/video_filters.h"
#include "media/media.h"

namespace bitmill::media {
namespace {

using testing::CommandOutput;
using testing::FfprobeResult;
using testing::runFfmpeg;
using testing::runFfprobe;
using testing::runShell;
using testing::shellQuote;
using testing::TempDir;
namespace fs = std::filesystem;

// ---------------------------------------------------------------- helpers

// Folder of the files make-corpus.sh generates. Each test case runs in its
// own process under CTest, so the files are made once into a folder shared
// by all of them, under a lock, and reused by later runs.
fs::path corpusDir() {
    static const fs::path dir = [] {
        const char* configured = std::getenv("BITMILL_CORPUS_DIR");
        fs::path source =
            configured != nullptr ? fs::path(configured) : fs::path("/work/shared/corpus");
        fs::path target =
            fs::temp_directory_path() / ("bitmill-video-corpus-" + std::to_string(getuid()));
        fs::create_directories(target);
        std::string lock_path = (target / ".lock").string();
        int lock = open(lock_path.c_str(), O_CREAT | O_RDWR, 0600);
        if (lock >= 0) {
            flock(lock, LOCK_EX);
        }
        if (!fs::exists(target / "MANIFEST.tsv")) {
            // The script exits non-zero when some (image) files fail; the
            // video files are checked one by one in corpusFile().
            runShell(shellQuote((source / "make-corpus.sh").string()) + " " +
                     shellQuote(target.string()) + " >/dev/null");
        }
        if (lock >= 0) {
            flock(lock, LOCK_UN);
            close(lock);
        }
        return target;
    }();
    return dir;
}

std::string corpusFile(const std::string& name) {
    fs::path path = corpusDir() / name;
    if (!fs::exists(path)) {
        throw std::runtime_error("make-corpus.sh did not produce " + name);
    }
    return path.string();
}

// 8-bit RGB frame decoded by ffmpeg (which applies the display matrix).
struct Frame {
    int width = 0;
    int height = 0;
    std::vector<uint8_t> rgb;

    std::array<int, 3> at(int x, int y) const {
        size_t offset = (static_cast<size_t>(y) * width + x) * 3;
        return {rgb[offset], rgb[offset + 1], rgb[offset + 2]};
    }
};

// Decodes the first frame at or after `seconds`, scaled to width x height.
Frame decodeFrame(const std::string& path, const TempDir& scratch, int width, int height,
                  double seconds = 0) {
    std::string raw = scratch.file("frame.rgb");
    runFfmpeg("-ss " + std::to_string(seconds) + " -i " + shellQuote(path) +
              " -frames:v 1 -vf scale=" + std::to_string(width) + ":" + std::to_string(height) +
              " -f rawvideo -pix_fmt rgb24 " + shellQuote(raw));
    std::ifstream file(raw, std::ios::binary);
    Frame frame{width, height, {}};
    frame.rgb.assign(std::istreambuf_iterator<char>(file), {});
    if (frame.rgb.size() != static_cast<size_t>(width) * height * 3) {
        throw std::runtime_error("decoded an unexpected number of bytes from " + path);
    }
    return frame;
}

double meanDifference(const Frame& a, const Frame& b) {
    double sum = 0;
    for (size_t i = 0; i < a.rgb.size() && i < b.rgb.size(); ++i) {
        sum += std::abs(static_cast<int>(a.rgb[i]) - static_cast<int>(b.rgb[i]));
    }
    return sum / static_cast<double>(std::max<size_t>(a.rgb.size(), 1));
}

// Mean of the luma plane of the first frame, read without any conversion.
double meanLuma(const std::string& path, const TempDir& scratch) {
    FfprobeResult probe = runFfprobe(path);
    int width = (*probe.stream("video"))["width"];
    int height = (*probe.stream("video"))["height"];
    std::string raw = scratch.file("frame.yuv");
    runFfmpeg("-i " + shellQuote(path) + " -frames:v 1 -f rawvideo -pix_fmt yuv420p " +
              shellQuote(raw));
    std::ifstream file(raw, std::ios::binary);
    std::vector<uint8_t> bytes(std::istreambuf_iterator<char>(file), {});
    size_t luma_size = static_cast<size_t>(width) * height;
    if (bytes.size() < luma_size) {
        throw std::runtime_error("decoded too few bytes from " + path);
    }
    double sum = 0;
    for (size_t i = 0; i < luma_size; ++i) {
        sum += bytes[i];
    }
    return sum / static_cast<double>(luma_size);
}

// Offsets of the top-level ISO BMFF boxes, keyed by type (first one wins).
std::map<std::string, uint64_t> topLevelBoxes(const std::string& path) {
    std::ifstream file(path, std::ios::binary);
    std::map<std::string, uint64_t> boxes;
    uint64_t offset = 0;
    uint64_t file_size = fs::file_size(path);
    while (offset + 8 <= file_size) {
        file.seekg(static_cast<std::streamoff>(offset));
        unsigned char header[16] = {};
        file.read(reinterpret_cast<char*>(header), 16);
        uint64_t size = (uint64_t{header[0]} << 24) | (uint64_t{header[1]} << 16) |
                        (uint64_t{header[2]} << 8) | header[3];
        std::string type(reinterpret_cast<char*>(header + 4), 4);
        if (size == 1) {
            size = 0;
            for (int i = 8; i < 16; ++i) {
                size = (size << 8) | header[i];
            }
        } else if (size == 0) {
            size = file_size - offset;
        }
        boxes.emplace(type, offset);
        if (size < 8) {
            break;
        }
        offset += size;
    }
    return boxes;
}

// Presentation times in seconds of the video frames, in order.
std::vector<double> videoFrameTimes(const std::string& path) {
    CommandOutput output = runShell(
        "ffprobe -v error -select_streams v:0 -show_entries frame=best_effort_timestamp_time "
        "-of csv=p=0 " +
        shellQuote(path));
    std::vector<double> times;
    std::istringstream lines(output.output);
    for (std::string line; std::getline(lines, line);) {
        if (!line.empty()) {
            times.push_back(std::stod(line));
        }
    }
    return times;
}

double streamDuration(const Json& stream) {
    return std::stod(stream.value("duration", "-1"));
}

Dimension pixels(int value) {
    return Dimension{value, false};
}

// ---------------------------------------------------------------- planning

TEST(VideoFiltersTest, OrientationFollowsDisplayMatrix) {
    int32_t matrix[9];
    // The matrix phones write for portrait video: players turn it 90
    // degrees clockwise.
    av_display_rotation_set(matrix, 90);
    ffmpeg::Orientation clockwise = ffmpeg::orientationFromDisplayMatrix(matrix);
    EXPECT_EQ(clockwise.filters, "transpose=clock");
    EXPECT_TRUE(clockwise.swaps_axes);

    av_display_rotation_set(matrix, -90);
    EXPECT_EQ(ffmpeg::orientationFromDisplayMatrix(matrix).filters, "transpose=cclock");

    av_display_rotation_set(matrix, 180);
    ffmpeg::Orientation half_turn = ffmpeg::orientationFromDisplayMatrix(matrix);
    EXPECT_EQ(half_turn.filters, "hflip,vflip");
    EXPECT_FALSE(half_turn.swaps_axes);

    av_display_rotation_set(matrix, 0);
    av_display_matrix_flip(matrix, 1, 0);
    EXPECT_EQ(ffmpeg::orientationFromDisplayMatrix(matrix).filters, "hflip");

    av_display_rotation_set(matrix, 0);
    EXPECT_EQ(ffmpeg::orientationFromDisplayMatrix(matrix).filters, "");
    EXPECT_EQ(ffmpeg::orientationFromDisplayMatrix(nullptr).filters, "");

    // A matrix of 80 degrees snaps to the nearest quarter turn.
    av_display_rotation_set(matrix, 80);
    EXPECT_EQ(ffmpeg::orientationFromDisplayMatrix(matrix).filters, "transpose=clock");
}

TEST(VideoFiltersTest, OneDimensionKeepsAspectRatio) {
    Geometry geometry;
    geometry.width = pixels(1280);
    ffmpeg::FramePlan plan = ffmpeg::planFrameGeometry(1920, 1080, geometry, Limits{});
    EXPECT_EQ(plan.output_width, 1280);
    EXPECT_EQ(plan.output_height, 720);

    geometry = Geometry{};
    geometry.height = pixels(100);
    plan = ffmpeg::planFrameGeometry(320, 240, geometry, Limits{});
    EXPECT_EQ(plan.output_width, 132);  // 133.3 rounded down to even
    EXPECT_EQ(plan.output_height, 100);

    geometry = Geometry{};
    geometry.width = Dimension{50, true};
    plan = ffmpeg::planFrameGeometry(360, 640, geometry, Limits{});
    EXPECT_EQ(plan.output_width, 180);
    EXPECT_EQ(plan.output_height, 320);
}

TEST(VideoFiltersTest, SizesRoundDownToEven) {
    ffmpeg::FramePlan plan = ffmpeg::planFrameGeometry(1921, 1081, Geometry{}, Limits{});
    EXPECT_EQ(plan.output_width, 1920);
    EXPECT_EQ(plan.output_height, 1080);

    Geometry tiny;
    tiny.width = pixels(1);
    tiny.height = pixels(1);
    plan = ffmpeg::planFrameGeometry(640, 360, tiny, Limits{});
    EXPECT_EQ(plan.output_width, 2);
    EXPECT_EQ(plan.output_height, 2);
}

TEST(VideoFiltersTest, CoverAndContainPlans) {
    Geometry geometry;
    geometry.width = pixels(200);
    geometry.height = pixels(200);
    geometry.fit = "cover";
    geometry.position = "right";
    ffmpeg::FramePlan cover = ffmpeg::planFrameGeometry(400, 200, geometry, Limits{});
    EXPECT_EQ(cover.fit, ffmpeg::FramePlan::Fit::Cover);
    EXPECT_EQ(cover.scaled_width, 400);
    EXPECT_EQ(cover.scaled_height, 200);
    EXPECT_EQ(cover.output_width, 200);
    EXPECT_EQ(cover.offset_x, 200);
    EXPECT_EQ(cover.offset_y, 0);

    geometry.fit = "contain";
    geometry.position = "bottom";
    ffmpeg::FramePlan contain = ffmpeg::planFrameGeometry(400, 200, geometry, Limits{});
    EXPECT_EQ(contain.fit, ffmpeg::FramePlan::Fit::Contain);
    EXPECT_EQ(contain.scaled_width, 200);
    EXPECT_EQ(contain.scaled_height, 100);
    EXPECT_EQ(contain.output_height, 200);
    EXPECT_EQ(contain.offset_x, 0);
    EXPECT_EQ(contain.offset_y, 100);
}

TEST(VideoFiltersTest, LimitsCapOutputBox) {
    Limits limits;
    limits.max_video_width = 1000;
    limits.max_video_height = 1000;
    Geometry geometry;
    geometry.width = pixels(4000);
    geometry.height = pixels(2000);
    ffmpeg::FramePlan plan = ffmpeg::planFrameGeometry(1920, 1080, geometry, limits);
    EXPECT_EQ(plan.output_width, 1000);
    EXPECT_EQ(plan.output_height, 500);
}

TEST(VideoFiltersTest, BackgroundColourParsing) {
    EXPECT_EQ(ffmpeg::parseBackgroundColour("#1e90ff").value(), "0x1E90FF");
    EXPECT_EQ(ffmpeg::parseBackgroundColour("#fff").value(), "0xFFFFFF");
    Result<std::string> bad = ffmpeg::parseBackgroundColour("blue-ish");
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().code(), ErrorCode::InvalidArgument);
    EXPECT_NE(bad.error().message().find("blue-ish"), std::string::npos);
}

TEST(VideoEncodingTest, QualityMapsToCrf) {
    EXPECT_EQ(ffmpeg::crfForQuality("h264", 60), 23);
    EXPECT_EQ(ffmpeg::crfForQuality("h265", 60), 28);
    for (const char* codec : {"h264", "h265", "vp9", "av1"}) {
        for (int quality = 0; quality < 100; quality += 10) {
            EXPECT_GE(ffmpeg::crfForQuality(codec, quality),
                      ffmpeg::crfForQuality(codec, quality + 10))
                << codec << " quality " << quality;
        }
    }
}

TEST(VideoEncodingTest, InvalidCombinationsNameValues) {
    VideoOptions options;
    options.format = "webm";
    options.codec = "h264";
    Status status = ffmpeg::validateVideoOptions(options);
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().code(), ErrorCode::InvalidArgument);
    EXPECT_NE(status.error().message().find("\"h264\""), std::string::npos);
    EXPECT_NE(status.error().message().find("\"webm\""), std::string::npos);
    EXPECT_NE(status.error().message().find("vp9, av1"), std::string::npos);

    options.codec = "vp9";
    options.audio_codec = "aac";
    status = ffmpeg::validateVideoOptions(options);
    ASSERT_FALSE(status.ok());
    EXPECT_NE(status.error().message().find("\"aac\""), std::string::npos);
    EXPECT_NE(status.error().message().find("opus, none"), std::string::npos);

    options.audio_codec = "opus";
    EXPECT_TRUE(ffmpeg::validateVideoOptions(options).ok());

    VideoOptions mov;
    mov.format = "mov";
    mov.codec = "vp9";
    EXPECT_FALSE(ffmpeg::validateVideoOptions(mov).ok());

    VideoOptions unknown;
    unknown.format = "avi";
    status = ffmpeg::validateVideoOptions(unknown);
    ASSERT_FALSE(status.ok());
    EXPECT_NE(status.error().message().find("mp4, webm, mov, mkv"), std::string::npos);
}

TEST(VideoEncodingTest, InvalidOptionValuesRejected) {
    auto rejects = [](const VideoOptions& options, const std::string& fragment) {
        Status status = ffmpeg::validateVideoOptions(options);
        if (status.ok()) {
            return ::testing::AssertionFailure() << "accepted, expected: " << fragment;
        }
        if (status.error().code() != ErrorCode::InvalidArgument ||
            status.error().message().find(fragment) == std::string::npos) {
            return ::testing::AssertionFailure() << status.error().message();
        }
        return ::testing::AssertionSuccess();
    };
    VideoOptions options;
    options.start = 5;
    options.end = 3;
    EXPECT_TRUE(rejects(options, "\"start\": 5 must be less than \"end\" (3)"));

    options = VideoOptions{};
    options.quality = 101;
    EXPECT_TRUE(rejects(options, "\"quality\": 101"));

    options = VideoOptions{};
    options.geometry.fit = "stretch";
    EXPECT_TRUE(rejects(options, "\"stretch\" is not one of fill, cover, contain"));

    options = VideoOptions{};
    options.geometry.position = "attention";
    EXPECT_TRUE(rejects(options, "\"attention\""));

    options = VideoOptions{};
    options.fps = 0;
    EXPECT_TRUE(rejects(options, "\"fps\""));

    options = VideoOptions{};
    options.background = "#12345";
    EXPECT_TRUE(rejects(options, "\"background\""));

    options = VideoOptions{};
    options.audio_codec = "mp3";
    options.audio_bitrate = 400'000;
    EXPECT_TRUE(rejects(options, "\"audio_bitrate\": 400000"));

    options = VideoOptions{};
    options.geometry.width = Dimension{0, false};
    EXPECT_TRUE(rejects(options, "\"width\""));
}

// ---------------------------------------------------------------- transcoding

class VideoTranscodeTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() { av_log_set_level(AV_LOG_ERROR); }

    // A 320x240 25 fps testsrc2 clip with a 440 Hz mono tone unless
    // `extra` adds or replaces settings, written as `name`.
    std::string makeClip(const std::string& name, const std::string& extra = "",
                         double seconds = 1) {
        std::string path = temp_.file(name);
        runFfmpeg(
            "-f lavfi -i testsrc2=size=320x240:rate=25 "
            "-f lavfi -i sine=frequency=440:sample_rate=44100 -t " +
            std::to_string(seconds) + " -c:v libx264 -preset veryfast -pix_fmt yuv420p -c:a aac " +
            extra + " " + shellQuote(path));
        return path;
    }

    Status transcode(const std::string& input, const std::string& output,
                     const VideoOptions& options = {}, const Limits& limits = {}) {
        return transcodeVideo(input, output, options, limits, {});
    }

    // Transcodes and fails the test on an error; returns ffprobe's view.
    FfprobeResult transcodeOk(const std::string& input, const std::string& output,
                              const VideoOptions& options = {}) {
        Status status = transcode(input, output, options);
        if (!status.ok()) {
            throw std::runtime_error("transcodeVideo failed: " + status.error().toLogString());
        }
        return runFfprobe(output);
    }

    // Web-safe video: 8-bit 4:2:0, even size, BT.709 limited range, no
    // rotation left for the player.
    static void expectWebSafeVideo(const Json& video) {
        EXPECT_EQ(video.value("pix_fmt", ""), "yuv420p");
        EXPECT_EQ(video.value("width", 1) % 2, 0);
        EXPECT_EQ(video.value("height", 1) % 2, 0);
        EXPECT_EQ(video.value("color_range", ""), "tv");
        EXPECT_EQ(video.value("color_transfer", ""), "bt709");
        EXPECT_EQ(video.value("color_primaries", ""), "bt709");
        EXPECT_EQ(video.value("color_space", ""), "bt709");
        for (const Json& side_data : video.value("side_data_list", Json::array())) {
            EXPECT_FALSE(side_data.contains("rotation")) << side_data.dump();
        }
    }

    TempDir temp_{"bitmill-video"};
};

TEST_F(VideoTranscodeTest, DefaultIsH264HighAacFaststart) {
    std::string input = makeClip("in.mp4");
    std::string output = temp_.file("out.mp4");
    FfprobeResult probe = transcodeOk(input, output);

    const Json* video = probe.stream("video");
    ASSERT_NE(video, nullptr);
    EXPECT_EQ(video->value("codec_name", ""), "h264");
    EXPECT_EQ(video->value("profile", ""), "High");
    EXPECT_EQ(video->value("width", 0), 320);
    EXPECT_EQ(video->value("height", 0), 240);
    expectWebSafeVideo(*video);
    EXPECT_NEAR(streamDuration(*video), 1.0, 0.1);
    EXPECT_NEAR(probe.duration(), 1.0, 0.1);

    const Json* audio = probe.stream("audio");
    ASSERT_NE(audio, nullptr);
    EXPECT_EQ(audio->value("codec_name", ""), "aac");
    EXPECT_NEAR(std::stod(audio->value("bit_rate", "0")), 128'000, 20'000);

    // The default settings match `-c:v libx264 -preset veryfast -crf 23`;
    // x264 writes its settings into the stream.
    std::string bytes = testing::runShell("strings " + shellQuote(output)).output;
    EXPECT_NE(bytes.find("crf=23.0"), std::string::npos);
    EXPECT_NE(bytes.find("subme=2"), std::string::npos);  // veryfast's subpixel search level

    std::map<std::string, uint64_t> boxes = topLevelBoxes(output);
    ASSERT_TRUE(boxes.count("moov"));
    ASSERT_TRUE(boxes.count("mdat"));
    EXPECT_LT(boxes["moov"], boxes["mdat"]);
}

TEST_F(VideoTranscodeTest, RotatedPhoneClipsComeOutUpright) {
    // Landscape-coded frames with a display matrix, as phones record.
    for (const char* name : {"v-rotate90-displaymatrix.mp4", "v-hevc-hvc1-rotate90.mov"}) {
        SCOPED_TRACE(name);
        std::string input = corpusFile(name);
        std::string output = temp_.file(std::string("upright-") + name + ".mp4");
        FfprobeResult probe = transcodeOk(input, output);
        const Json* video = probe.stream("video");
        ASSERT_NE(video, nullptr);
        EXPECT_EQ(video->value("width", 0), 360);
        EXPECT_EQ(video->value("height", 0), 640);
        expectWebSafeVideo(*video);
        EXPECT_NEAR(probe.duration(), 1.0, 0.1);

        // ffmpeg's own decode of the input applies the matrix: the pictures agree.
        Frame expected = decodeFrame(input, temp_, 36, 64);
        Frame actual = decodeFrame(output, temp_, 36, 64);
        EXPECT_LT(meanDifference(expected, actual), 8.0);
    }
}

TEST_F(VideoTranscodeTest, HevcTaggedHvc1ForAppleContainers) {
    // The input is tagged hev1, which Apple players refuse.
    std::string input = corpusFile("v-hevc-hev1.mov");
    for (const char* format : {"mp4", "mov"}) {
        SCOPED_TRACE(format);
        VideoOptions options;
        options.format = format;
        options.codec = "h265";
        std::string output = temp_.file(std::string("hevc.") + format);
        FfprobeResult probe = transcodeOk(input, output, options);
        const Json* video = probe.stream("video");
        ASSERT_NE(video, nullptr);
        EXPECT_EQ(video->value("codec_name", ""), "hevc");
        EXPECT_EQ(video->value("codec_tag_string", ""), "hvc1");
        EXPECT_EQ(video->value("profile", ""), "Main");
        expectWebSafeVideo(*video);
        EXPECT_NEAR(probe.duration(), 1.0, 0.1);
        std::map<std::string, uint64_t> boxes = topLevelBoxes(output);
        EXPECT_LT(boxes["moov"], boxes["mdat"]);
    }
}

TEST_F(VideoTranscodeTest, HdrInputToneMappedToSdr) {
    // HEVC Main10, BT.2020 primaries, PQ transfer.
    std::string input = corpusFile("v-hevc-10bit-hdr10.mp4");
    std::string output = temp_.file("sdr.mp4");
    FfprobeResult probe = transcodeOk(input, output);
    const Json* video = probe.stream("video");
    ASSERT_NE(video, nullptr);
    EXPECT_EQ(video->value("profile", ""), "High");
    EXPECT_NE(video->value("color_transfer", ""), "smpte2084");
    expectWebSafeVideo(*video);

    // The pictures match an independent zscale/tonemap conversion, and are
    // neither dark nor washed out.
    std::string reference = temp_.file("reference.mp4");
    runFfmpeg("-i " + shellQuote(input) +
              " -vf zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,"
              "tonemap=tonemap=hable:desat=0,zscale=t=bt709:m=bt709:r=tv,format=yuv420p "
              "-c:v libx264 -crf 18 -frames:v 1 " +
              shellQuote(reference));
    Frame expected = decodeFrame(reference, temp_, 64, 36);
    Frame actual = decodeFrame(output, temp_, 64, 36);
    EXPECT_LT(meanDifference(expected, actual), 8.0);
    double luma = meanLuma(output, temp_);
    EXPECT_GT(luma, 40);
    EXPECT_LT(luma, 200);
}

TEST_F(VideoTranscodeTest, OddSizeRoundedDownToEven) {
    // VP9 WebM of 1921x1081, which libx264 rejects in 4:2:0.
    FfprobeResult probe = transcodeOk(corpusFile("v-odd-1921x1081.webm"), temp_.file("even.mp4"));
    const Json* video = probe.stream("video");
    ASSERT_NE(video, nullptr);
    EXPECT_EQ(video->value("width", 0), 1920);
    EXPECT_EQ(video->value("height", 0), 1080);
    expectWebSafeVideo(*video);
    EXPECT_NEAR(probe.duration(), 1.0, 0.1);
}

TEST_F(VideoTranscodeTest, Yuv444BecomesYuv420High) {
    // H.264 High 4:4:4 Predictive, which browsers do not play.
    FfprobeResult probe = transcodeOk(corpusFile("v-yuv444p.mp4"), temp_.file("420.mp4"));
    const Json* video = probe.stream("video");
    ASSERT_NE(video, nullptr);
    EXPECT_EQ(video->value("profile", ""), "High");
    expectWebSafeVideo(*video);
}

TEST_F(VideoTranscodeTest, MoovAtEndInputGivesFaststartOutput) {
    // The index after the media data.
    std::string input = corpusFile("v-moov-at-end.mp4");
    std::map<std::string, uint64_t> input_boxes = topLevelBoxes(input);
    ASSERT_GT(input_boxes["moov"], input_boxes["mdat"]);
    std::string output = temp_.file("faststart.mp4");
    FfprobeResult probe = transcodeOk(input, output);
    EXPECT_NEAR(probe.duration(), 3.0, 0.1);
    std::map<std::string, uint64_t> boxes = topLevelBoxes(output);
    ASSERT_TRUE(boxes.count("moov"));
    ASSERT_TRUE(boxes.count("mdat"));
    EXPECT_LT(boxes["moov"], boxes["mdat"]);
}

TEST_F(VideoTranscodeTest, BrokenInputsFailWithoutOutput) {
    // No index, data cut short of what the index promises, an empty file.
    for (const char* name :
         {"v-truncated-no-moov.mp4", "v-truncated-faststart.mp4", "v-zero-bytes.mp4"}) {
        SCOPED_TRACE(name);
        std::string output = temp_.file(std::string("broken-") + name);
        Status status = transcode(corpusFile(name), output);
        ASSERT_FALSE(status.ok());
        EXPECT_EQ(status.error().code(), ErrorCode::UnsupportedMedia);
        EXPECT_FALSE(fs::exists(output));
    }
}

TEST_F(VideoTranscodeTest, NoAudioInputGivesVideoOnly) {
    FfprobeResult probe = transcodeOk(corpusFile("v-no-audio.mp4"), temp_.file("silent.mp4"));
    EXPECT_EQ(probe.streamCount("video"), 1);
    EXPECT_EQ(probe.streamCount("audio"), 0);
    EXPECT_NEAR(probe.duration(), 1.0, 0.1);
}

TEST_F(VideoTranscodeTest, SubtitleStreamsDropped) {
    // SubRip and ASS cannot go into MP4.
    FfprobeResult probe =
        transcodeOk(corpusFile("v-subtitles-srt-ass.mkv"), temp_.file("nosubs.mp4"));
    EXPECT_EQ(probe.streamCount("subtitle"), 0);
    EXPECT_EQ(probe.streamCount("video"), 1);
    EXPECT_EQ(probe.streamCount("audio"), 1);
    EXPECT_NEAR(probe.duration(), 2.0, 0.1);
}

TEST_F(VideoTranscodeTest, InputWithoutVideoRejected) {
    std::string output = temp_.file("none.mp4");
    Status status = transcode(corpusFile("a-audio-only.m4a"), output);
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().code(), ErrorCode::UnsupportedMedia);
    EXPECT_EQ(status.error().message(), "input has no video stream");
    EXPECT_FALSE(fs::exists(output));

    // An MP3 with cover art has a video stream, but only an attached picture.
    std::string cover = temp_.file("cover.png");
    runFfmpeg("-f lavfi -i color=c=orange:s=64x64 -frames:v 1 " + shellQuote(cover));
    std::string song = temp_.file("song.mp3");
    runFfmpeg("-f lavfi -i sine=d=1 -i " + shellQuote(cover) +
              " -map 0:a -map 1:v -c:a libmp3lame -c:v png -disposition:v attached_pic " +
              shellQuote(song));
    ASSERT_EQ(runFfprobe(song).streamCount("video"), 1);
    status = transcode(song, output);
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().message(), "input has no video stream");
}

TEST_F(VideoTranscodeTest, CoverArtNotTakenForVideo) {
    // A 640x480 cover picture next to the 320x240 video stream: the larger
    // picture must not win.
    std::string clip = makeClip("clip.mp4");
    std::string cover = temp_.file("cover.png");
    runFfmpeg("-f lavfi -i color=c=orange:s=640x480 -frames:v 1 " + shellQuote(cover));
    std::string input = temp_.file("with-cover.mp4");
    runFfmpeg("-i " + shellQuote(clip) + " -i " + shellQuote(cover) +
              " -map 0 -map 1 -c copy -c:v:1 png -disposition:v:1 attached_pic " +
              shellQuote(input));
    ASSERT_EQ(runFfprobe(input).streamCount("video"), 2);
    FfprobeResult probe = transcodeOk(input, temp_.file("out.mp4"));
    const Json* video = probe.stream("video");
    ASSERT_NE(video, nullptr);
    EXPECT_EQ(video->value("width", 0), 320);
    EXPECT_EQ(probe.streamCount("video"), 1);
    EXPECT_NEAR(probe.duration(), 1.0, 0.1);
}

TEST_F(VideoTranscodeTest, AudioCodecNoneDropsAudio) {
    VideoOptions options;
    options.audio_codec = "none";
    FfprobeResult probe = transcodeOk(makeClip("in.mp4"), temp_.file("out.mp4"), options);
    EXPECT_EQ(probe.streamCount("audio"), 0);
    EXPECT_EQ(probe.streamCount("video"), 1);
}

TEST_F(VideoTranscodeTest, FormatsAndCodecs) {
    struct Case {
        const char* format;
        const char* codec;
        const char* audio_codec;
        const char* video_name;  // ffprobe codec_name
        const char* audio_name;
        int audio_rate;
    };
    const Case cases[] = {
        {"webm", "vp9", "opus", "vp9", "opus", 48'000},
        {"webm", "av1", "opus", "av1", "opus", 48'000},
        {"mkv", "av1", "mp3", "av1", "mp3", 44'100},
        {"mkv", "h265", "aac", "hevc", "aac", 44'100},
        {"mp4", "vp9", "opus", "vp9", "opus", 48'000},
        {"mp4", "av1", "aac", "av1", "aac", 44'100},
        {"mov", "h264", "mp3", "h264", "mp3", 44'100},
    };
    std::string input = makeClip("in.mp4");
    for (const Case& c : cases) {
        SCOPED_TRACE(std::string(c.format) + " " + c.codec + " " + c.audio_codec);
        VideoOptions options;
        options.format = c.format;
        options.codec = c.codec;
        options.audio_codec = c.audio_codec;
        std::string output = temp_.file(std::string("out-") + c.codec + "." + c.format);
        FfprobeResult probe = transcodeOk(input, output, options);
        const Json* video = probe.stream("video");
        const Json* audio = probe.stream("audio");
        ASSERT_NE(video, nullptr);
        ASSERT_NE(audio, nullptr);
        EXPECT_EQ(video->value("codec_name", ""), c.video_name);
        EXPECT_EQ(video->value("pix_fmt", ""), "yuv420p");
        EXPECT_EQ(video->value("width", 0), 320);
        EXPECT_EQ(audio->value("codec_name", ""), c.audio_name);
        EXPECT_EQ(std::stoi(audio->value("sample_rate", "0")), c.audio_rate);
        EXPECT_NEAR(probe.duration(), 1.0, 0.1);
    }
}

TEST_F(VideoTranscodeTest, TinyAv1UsesFallbackEncoder) {
    // SVT-AV1 rejects pictures under 64 pixels; libaom takes them.
    VideoOptions options;
    options.codec = "av1";
    options.geometry.width = pixels(40);
    FfprobeResult probe = transcodeOk(makeClip("in.mp4"), temp_.file("tiny.mp4"), options);
    const Json* video = probe.stream("video");
    ASSERT_NE(video, nullptr);
    EXPECT_EQ(video->value("codec_name", ""), "av1");
    EXPECT_EQ(video->value("width", 0), 40);
    EXPECT_EQ(video->value("height", 0), 30);
}

TEST_F(VideoTranscodeTest, Av1EncoderClosedAfterFailure) {
    // SVT-AV1 1.4 hangs when closed before its first frame unless the
    // transcoder feeds and drains it: the call must return, not block.
    VideoOptions options;
    options.codec = "av1";
    std::string output = (temp_.path() / "missing-folder" / "out.mp4").string();
    Status status = transcode(makeClip("in.mp4"), output, options);
    ASSERT_FALSE(status.ok());
    EXPECT_NE(status.error().message().find("create output file"), std::string::npos);
    EXPECT_FALSE(fs::exists(output));
}

TEST_F(VideoTranscodeTest, FillStretchesToBox) {
    VideoOptions options;
    options.geometry.width = pixels(100);
    options.geometry.height = pixels(300);
    FfprobeResult probe = transcodeOk(makeClip("in.mp4"), temp_.file("fill.mp4"), options);
    const Json* video = probe.stream("video");
    ASSERT_NE(video, nullptr);
    EXPECT_EQ(video->value("width", 0), 100);
    EXPECT_EQ(video->value("height", 0), 300);
    EXPECT_EQ(video->value("sample_aspect_ratio", "1:1"), "1:1");
}

// Returns a clip whose left half is red and right half is blue, 320x160.
std::string makeSplitClip(const TempDir& temp) {
    std::string path = temp.file("split.mp4");
    runFfmpeg(
        "-f lavfi -i color=c=red:s=160x160:r=25 -f lavfi -i color=c=blue:s=160x160:r=25 "
        "-filter_complex hstack -t 1 -c:v libx264 -preset veryfast -pix_fmt yuv420p " +
        shellQuote(path));
    return path;
}

void expectColour(const std::array<int, 3>& actual, const std::array<int, 3>& expected) {
    for (int channel = 0; channel < 3; ++channel) {
        EXPECT_NEAR(actual[channel], expected[channel], 24) << "channel " << channel;
    }
}

TEST_F(VideoTranscodeTest, CoverCropsAtPosition) {
    std::string input = makeSplitClip(temp_);
    VideoOptions options;
    options.geometry.width = pixels(160);
    options.geometry.height = pixels(160);
    options.geometry.fit = "cover";
    for (const char* position : {"left", "right"}) {
        SCOPED_TRACE(position);
        options.geometry.position = position;
        std::string output = temp_.file(std::string("cover-") + position + ".mp4");
        FfprobeResult probe = transcodeOk(input, output, options);
        const Json* video = probe.stream("video");
        ASSERT_NE(video, nullptr);
        EXPECT_EQ(video->value("width", 0), 160);
        EXPECT_EQ(video->value("height", 0), 160);
        Frame frame = decodeFrame(output, temp_, 160, 160);
        std::array<int, 3> expected = std::string(position) == "left"
                                          ? std::array<int, 3>{255, 0, 0}
                                          : std::array<int, 3>{0, 0, 255};
        expectColour(frame.at(20, 80), expected);
        expectColour(frame.at(140, 80), expected);
    }
}

TEST_F(VideoTranscodeTest, ContainPadsWithBackground) {
    std::string input = makeSplitClip(temp_);
    VideoOptions options;
    options.geometry.width = pixels(200);
    options.geometry.height = pixels(200);
    options.geometry.fit = "contain";
    options.geometry.position = "top";
    options.background = "#00ff00";
    std::string output = temp_.file("contain.mp4");
    FfprobeResult probe = transcodeOk(input, output, options);
    const Json* video = probe.stream("video");
    ASSERT_NE(video, nullptr);
    EXPECT_EQ(video->value("width", 0), 200);
    EXPECT_EQ(video->value("height", 0), 200);

    // The 200x100 picture sits at the top, green padding below it.
    Frame frame = decodeFrame(output, temp_, 200, 200);
    expectColour(frame.at(40, 50), {255, 0, 0});
    expectColour(frame.at(160, 50), {0, 0, 255});
    expectColour(frame.at(100, 160), {0, 255, 0});
    expectColour(frame.at(10, 190), {0, 255, 0});

    // The default black background, centred.
    options.background = "#000000";
    options.geometry.position = "center";
    std::string centred = temp_.file("contain-black.mp4");
    transcodeOk(input, centred, options);
    frame = decodeFrame(centred, temp_, 200, 200);
    expectColour(frame.at(100, 20), {0, 0, 0});
    expectColour(frame.at(40, 100), {255, 0, 0});
    expectColour(frame.at(100, 185), {0, 0, 0});
}

TEST_F(VideoTranscodeTest, LimitsRejectLargeOrLongInput) {
    std::string input = makeClip("in.mp4");
    Limits narrow;
    narrow.max_video_width = 200;
    Status status = transcode(input, temp_.file("wide.mp4"), {}, narrow);
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().code(), ErrorCode::ResourceExhausted);
    EXPECT_NE(status.error().message().find("max_video_width"), std::string::npos);
    EXPECT_NE(status.error().message().find("320"), std::string::npos);
    EXPECT_FALSE(fs::exists(temp_.file("wide.mp4")));

    Limits short_limit;
    short_limit.max_duration_seconds = 0.5;
    status = transcode(input, temp_.file("long.mp4"), {}, short_limit);
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().code(), ErrorCode::ResourceExhausted);
    EXPECT_NE(status.error().message().find("max_duration_seconds"), std::string::npos);
}

TEST_F(VideoTranscodeTest, OutputCappedAtLimits) {
    Limits limits;
    limits.max_video_width = 400;
    limits.max_video_height = 400;
    VideoOptions options;
    options.geometry.width = pixels(800);
    Status status =
        transcodeVideo(makeClip("in.mp4"), temp_.file("capped.mp4"), options, limits, {});
    ASSERT_TRUE(status.ok()) << status.error().toLogString();
    FfprobeResult probe = runFfprobe(temp_.file("capped.mp4"));
    const Json* video = probe.stream("video");
    ASSERT_NE(video, nullptr);
    EXPECT_EQ(video->value("width", 0), 400);
    EXPECT_EQ(video->value("height", 0), 300);
}

TEST_F(VideoTranscodeTest, FpsOptionConvertsRate) {
    VideoOptions options;
    options.fps = 10;
    std::string output = temp_.file("10fps.mp4");
    FfprobeResult probe = transcodeOk(makeClip("in.mp4", "", 2), output, options);
    const Json* video = probe.stream("video");
    ASSERT_NE(video, nullptr);
    EXPECT_EQ(video->value("avg_frame_rate", ""), "10/1");
    EXPECT_EQ(std::stoi(video->value("nb_frames", "0")), 20);
    EXPECT_NEAR(streamDuration(*video), 2.0, 0.05);
}

TEST_F(VideoTranscodeTest, VariableFrameRateKept) {
    // Ten frames 40 ms apart, then frames 80 and 120 ms apart (the CLI
    // rounds the requested 100 ms to its 1/25 s time base).
    std::string input = temp_.file("vfr.mkv");
    runFfmpeg(
        "-f lavfi -i testsrc2=size=320x240:rate=25 -frames:v 20 "
        "-vf \"setpts='if(lt(N,10),N*0.04,0.4+(N-10)*0.1)/TB'\" -vsync vfr "
        "-c:v libx264 -preset veryfast -pix_fmt yuv420p " +
        shellQuote(input));
    std::vector<double> expected = videoFrameTimes(input);
    ASSERT_EQ(expected.size(), 20u);

    std::string output = temp_.file("vfr.mp4");
    FfprobeResult probe = transcodeOk(input, output);
    std::vector<double> actual = videoFrameTimes(output);
    ASSERT_EQ(actual.size(), expected.size());
    for (size_t i = 0; i < actual.size(); ++i) {
        EXPECT_NEAR(actual[i], expected[i], 0.002) << "frame " << i;
    }
    // The track ends where the input's last frame ends (its packets last
    // 40 ms), although B-frames reorder the packets.
    EXPECT_NEAR(streamDuration(*probe.stream("video")), expected.back() + 0.04, 0.002);
}

TEST_F(VideoTranscodeTest, TrimStartsAtZero) {
    std::string input = makeClip("in.mp4", "-g 50", 3);
    VideoOptions options;
    options.start = 1.3;
    options.end = 2.5;
    std::string output = temp_.file("trim.mp4");
    FfprobeResult probe = transcodeOk(input, output, options);
    const Json* video = probe.stream("video");
    const Json* audio = probe.stream("audio");
    ASSERT_NE(video, nullptr);
    ASSERT_NE(audio, nullptr);
    EXPECT_NEAR(probe.duration(), 1.2, 0.1);
    EXPECT_NEAR(streamDuration(*video), 1.2, 0.05);
    EXPECT_NEAR(streamDuration(*audio), 1.2, 0.1);
    // The input frame on screen at 1.3 s started at 1.28 s. It is shown
    // from 0 to 0.02 s, and the frames from 1.32 s on follow it.
    std::vector<double> times = videoFrameTimes(output);
    ASSERT_EQ(times.size(), 31u);
    EXPECT_NEAR(times[0], 0.0, 0.001);
    EXPECT_NEAR(times[1], 0.02, 0.001);
    EXPECT_NEAR(times.back(), 1.18, 0.001);

    // The first picture is the input's picture at 1.3 s (testsrc2 draws a
    // moving clock), not the keyframe at 1.0 s.
    Frame expected = decodeFrame(input, temp_, 160, 120, 1.3);
    Frame keyframe = decodeFrame(input, temp_, 160, 120, 1.0);
    Frame actual = decodeFrame(output, temp_, 160, 120);
    EXPECT_LT(meanDifference(expected, actual), meanDifference(keyframe, actual));
}

TEST_F(VideoTranscodeTest, StartBeyondInputRejected) {
    VideoOptions options;
    options.start = 5;
    std::string output = temp_.file("late.mp4");
    Status status = transcode(makeClip("in.mp4"), output, options);
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().code(), ErrorCode::InvalidArgument);
    EXPECT_NE(status.error().message().find("\"start\": 5"), std::string::npos);
    EXPECT_FALSE(fs::exists(output));
}

TEST_F(VideoTranscodeTest, FullRangeBecomesLimitedRange) {
    // Full-range white and black stripes as phones and MJPEG write them.
    std::string input = temp_.file("full.mp4");
    runFfmpeg(
        "-f lavfi -i color=c=white:s=320x240:r=25 -t 1 "
        "-vf drawbox=x=0:y=0:w=160:h=240:color=black:t=fill "
        "-c:v libx264 -preset veryfast -pix_fmt yuvj420p " +
        shellQuote(input));
    ASSERT_EQ(runFfprobe(input).stream("video")->value("color_range", ""), "pc");
    std::string output = temp_.file("limited.mp4");
    FfprobeResult probe = transcodeOk(input, output);
    expectWebSafeVideo(*probe.stream("video"));

    // Raw luma is 16 for black and 235 for white in limited range, where
    // full range would keep 0 and 255.
    std::string raw = temp_.file("luma.yuv");
    runFfmpeg("-i " + shellQuote(output) + " -frames:v 1 -f rawvideo -pix_fmt yuv420p " +
              shellQuote(raw));
    std::ifstream file(raw, std::ios::binary);
    std::vector<uint8_t> bytes(std::istreambuf_iterator<char>(file), {});
    ASSERT_GE(bytes.size(), 320u * 240u);
    EXPECT_NEAR(bytes[120 * 320 + 40], 16, 3);    // black half
    EXPECT_NEAR(bytes[120 * 320 + 280], 235, 3);  // white half
}

TEST_F(VideoTranscodeTest, QualityAndBitrateChangeSize) {
    std::string input = makeClip("in.mp4", "", 2);
    VideoOptions low;
    low.quality = 10;
    VideoOptions high;
    high.quality = 95;
    transcodeOk(input, temp_.file("low.mp4"), low);
    transcodeOk(input, temp_.file("high.mp4"), high);
    EXPECT_LT(fs::file_size(temp_.file("low.mp4")) * 2, fs::file_size(temp_.file("high.mp4")));

    VideoOptions target;
    target.bitrate = 300'000;
    target.audio_codec = "none";
    FfprobeResult probe = transcodeOk(input, temp_.file("target.mp4"), target);
    double bitrate = std::stod(probe.stream("video")->value("bit_rate", "0"));
    EXPECT_GT(bitrate, 150'000);
    EXPECT_LT(bitrate, 450'000);
}

TEST_F(VideoTranscodeTest, ProgressRisesToHundred) {
    std::string input = makeClip("in.mp4", "", 2);
    std::vector<int> reported;
    Status status = transcodeVideo(input, temp_.file("out.mp4"), VideoOptions{}, Limits{},
                                   [&](int percent) { reported.push_back(percent); });
    ASSERT_TRUE(status.ok()) << status.error().toLogString();
    ASSERT_GE(reported.size(), 3u);
    EXPECT_EQ(reported.front(), 0);
    EXPECT_EQ(reported.back(), 100);
    EXPECT_LE(reported.size(), 101u);
    EXPECT_TRUE(std::is_sorted(reported.begin(), reported.end()));
    EXPECT_EQ(std::adjacent_find(reported.begin(), reported.end()), reported.end());
}

}  // namespace
}  // namespace bitmill::media
