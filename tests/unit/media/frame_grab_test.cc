// Tests of media::grabFrame: frame accuracy after keyframe seeks, upright
// output of rotated video, colour of 10-bit HDR and full-range input, the
// representative frame, and inputs without a usable video stream. Also
// media::convertVideoFrame, the same grab handed to libvips in memory.
#include <gtest/gtest.h>

#include <cmath>

#include "av_test_support.h"
#include "media/media.h"

namespace bitmill::media {
namespace {

using testing::decodeRgb;
using testing::inputDir;
using testing::RgbImage;
using testing::runFfmpeg;
using testing::shellQuote;
using testing::TempDir;

// Red for 1 s, green for 1 s, blue for 1 s, 320x240 at 25 fps, with one
// keyframe only, so every grab after 0 s must decode forward from it.
const std::string& colourSequenceMp4() {
    static const std::string path = [] {
        const std::string out = inputDir().file("red-green-blue.mp4");
        runFfmpeg("-f lavfi -i color=c=red:s=320x240:r=25:d=1 "
                  "-f lavfi -i color=c=lime:s=320x240:r=25:d=1 "
                  "-f lavfi -i color=c=blue:s=320x240:r=25:d=1 "
                  "-filter_complex concat=n=3:v=1:a=0 -c:v libx264 -preset veryfast "
                  "-g 250 -pix_fmt yuv420p " +
                  shellQuote(out));
        return out;
    }();
    return path;
}

class FrameGrabTest : public ::testing::Test {
protected:
    std::string output() const { return scratch_.file("frame.png"); }

    RgbImage grab(const std::string& input, std::optional<double> time) {
        FrameGrabOptions options;
        options.time = time;
        const Status status = grabFrame(input, output(), options, Limits{});
        if (!status.ok()) {
            ADD_FAILURE() << "grab frame: " << status.error().toLogString();
            return {};
        }
        return decodeRgb(output(), scratch_.path());
    }

    TempDir scratch_{"bitmill-frame-grab"};
};

// Matches a pixel against an expected colour, channel by channel.
void expectColour(const std::array<int, 3>& pixel, const std::array<int, 3>& expected,
                  int tolerance, const std::string& where) {
    for (int channel = 0; channel < 3; ++channel) {
        EXPECT_NEAR(pixel[channel], expected[channel], tolerance)
            << where << " channel " << channel << " is " << pixel[0] << "," << pixel[1] << ","
            << pixel[2];
    }
}

TEST_F(FrameGrabTest, WritesRgb24Png) {
    grab(colourSequenceMp4(), 0.0);
    const auto probe = testing::runFfprobe(output());
    ASSERT_NE(probe.stream("video"), nullptr);
    EXPECT_EQ(probe.stream("video")->value("codec_name", ""), "png");
    EXPECT_EQ(probe.stream("video")->value("pix_fmt", ""), "rgb24");
    EXPECT_EQ(probe.stream("video")->value("width", 0), 320);
    EXPECT_EQ(probe.stream("video")->value("height", 0), 240);
}

TEST_F(FrameGrabTest, GrabsFrameAtRequestedTime) {
    const RgbImage red = grab(colourSequenceMp4(), 0.5);
    expectColour(red.atFraction(0.5, 0.5), {255, 0, 0}, 12, "0.5 s");
    const RgbImage green = grab(colourSequenceMp4(), 1.5);
    expectColour(green.atFraction(0.5, 0.5), {0, 255, 0}, 12, "1.5 s");
    const RgbImage blue = grab(colourSequenceMp4(), 2.5);
    expectColour(blue.atFraction(0.5, 0.5), {0, 0, 255}, 12, "2.5 s");
}

TEST_F(FrameGrabTest, GrabsFirstFrameAtExactBoundary) {
    // The first green frame has pts 1.0 s exactly; the frame before is red.
    const RgbImage green = grab(colourSequenceMp4(), 1.0);
    expectColour(green.atFraction(0.5, 0.5), {0, 255, 0}, 12, "1.0 s");
    const RgbImage red = grab(colourSequenceMp4(), 0.96);
    expectColour(red.atFraction(0.5, 0.5), {255, 0, 0}, 12, "0.96 s");
}

TEST_F(FrameGrabTest, GrabsLastFrameInsideFinalFrameInterval) {
    // The last frame starts at 2.96 s and the video lasts 3 s.
    const RgbImage blue = grab(colourSequenceMp4(), 2.99);
    expectColour(blue.atFraction(0.5, 0.5), {0, 0, 255}, 12, "2.99 s");
}

TEST_F(FrameGrabTest, RejectsTimePastEnd) {
    FrameGrabOptions options;
    options.time = 7.5;
    const Status status = grabFrame(colourSequenceMp4(), output(), options, Limits{});
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().code(), ErrorCode::InvalidArgument);
    EXPECT_NE(status.error().message().find("7.500"), std::string::npos)
        << status.error().message();
    EXPECT_NE(status.error().message().find("duration 3.000"), std::string::npos)
        << status.error().message();
    EXPECT_FALSE(std::filesystem::exists(output()));
}

TEST_F(FrameGrabTest, TurnsRotatedVideoUpright) {
    const RgbImage frame = grab(testing::rotatedVideoMp4(), 0.5);
    EXPECT_EQ(frame.width, 360);
    EXPECT_EQ(frame.height, 640);
    // testsrc2's bars run red to cyan from left to right; turned 90 degrees
    // clockwise, red is at the top and cyan at the bottom.
    expectColour(frame.atFraction(0.2, 0.05), {255, 0, 0}, 40, "top");
    expectColour(frame.atFraction(0.2, 0.95), {0, 255, 255}, 40, "bottom");

    // ffmpeg's own display-matrix handling gives the same picture.
    const std::string reference = scratch_.file("reference.png");
    runFfmpeg("-ss 0.5 -i " + shellQuote(testing::rotatedVideoMp4()) + " -frames:v 1 " +
              shellQuote(reference));
    const RgbImage expected = decodeRgb(reference, scratch_.path());
    ASSERT_EQ(expected.width, frame.width);
    ASSERT_EQ(expected.height, frame.height);
    double difference = 0;
    for (size_t i = 0; i < frame.pixels.size(); ++i) {
        difference += std::abs(frame.pixels[i] - expected.pixels[i]);
    }
    EXPECT_LT(difference / static_cast<double>(frame.pixels.size()), 4.0);
}

TEST_F(FrameGrabTest, ConvertsTenBitHdrWithoutTint) {
    const std::string path = inputDir().file("hdr10-bars.mp4");
    runFfmpeg("-f lavfi -i testsrc2=size=640x360:rate=25 -t 1 -c:v libx265 -preset ultrafast "
              "-pix_fmt yuv420p10le -x265-params "
              "log-level=error:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc "
              "-color_primaries bt2020 -color_trc smpte2084 -colorspace bt2020nc " +
              shellQuote(path));
    const RgbImage frame = grab(path, 0.2);
    const auto probe = testing::runFfprobe(output());
    EXPECT_EQ(probe.stream("video")->value("pix_fmt", ""), "rgb24");
    EXPECT_EQ(frame.width, 640);
    EXPECT_EQ(frame.height, 360);
    // The first bar is red, the second green and the fourth blue: a frame
    // read as 8-bit data or with the wrong matrix turns them green or grey.
    const auto red = frame.atFraction(0.08, 0.6);
    EXPECT_GT(red[0], 150);
    EXPECT_LT(red[1], 80);
    EXPECT_LT(red[2], 80);
    const auto green = frame.atFraction(0.25, 0.6);
    EXPECT_GT(green[1], 150);
    EXPECT_LT(green[0], 80);
    EXPECT_LT(green[2], 80);
    const auto blue = frame.atFraction(0.58, 0.6);
    EXPECT_GT(blue[2], 150);
    EXPECT_LT(blue[0], 80);
    EXPECT_LT(blue[1], 80);
}

TEST_F(FrameGrabTest, KeepsColourOfFullAndLimitedRange) {
    // rgb(200, 100, 50) through full-range (yuvj420p) and limited-range BT.601.
    for (const std::string pixel_format : {"yuvj420p", "yuv420p"}) {
        const std::string path = inputDir().file("orange-" + pixel_format + ".mp4");
        runFfmpeg("-f lavfi -i color=c=0xC86432:s=160x120:r=25:d=1 -c:v libx264 "
                  "-preset veryfast -qp 0 -vf scale=out_color_matrix=bt601:out_range=" +
                  std::string(pixel_format == "yuvj420p" ? "full" : "limited") +
                  " -pix_fmt " + pixel_format + " -colorspace smpte170m -color_range " +
                  (pixel_format == "yuvj420p" ? "pc " : "tv ") + shellQuote(path));
        const RgbImage frame = grab(path, 0.1);
        expectColour(frame.atFraction(0.5, 0.5), {200, 100, 50}, 6, pixel_format);
    }
}

TEST_F(FrameGrabTest, PicksNonBlackFrameWithoutTime) {
    // Two seconds of black, then testsrc2.
    const std::string path = inputDir().file("black-then-bars.mp4");
    runFfmpeg("-f lavfi -i color=c=black:s=320x240:r=25:d=2 "
              "-f lavfi -i testsrc2=s=320x240:r=25:d=3 "
              "-filter_complex concat=n=2:v=1:a=0 -c:v libx264 -preset veryfast "
              "-pix_fmt yuv420p " +
              shellQuote(path));
    const RgbImage frame = grab(path, std::nullopt);
    double sum = 0;
    for (uint8_t value : frame.pixels) {
        sum += value;
    }
    EXPECT_GT(sum / static_cast<double>(frame.pixels.size()), 60.0);
}

TEST_F(FrameGrabTest, ReturnsBrightestFrameOfDarkVideo) {
    const std::string path = inputDir().file("all-black.mp4");
    runFfmpeg("-f lavfi -i color=c=black:s=160x120:r=25:d=2 -c:v libx264 -preset veryfast "
              "-pix_fmt yuv420p " +
              shellQuote(path));
    const RgbImage frame = grab(path, std::nullopt);
    EXPECT_EQ(frame.width, 160);
    EXPECT_EQ(frame.height, 120);
}

TEST_F(FrameGrabTest, ReadsMp4WithMoovAtEnd) {
    const RgbImage frame = grab(testing::moovAtEndMp4(), 1.0);
    EXPECT_EQ(frame.width, 1280);
    EXPECT_EQ(frame.height, 720);
}

TEST_F(FrameGrabTest, RejectsAudioOnlyInput) {
    const Status status = grabFrame(testing::audioOnlyM4a(), output(), {}, Limits{});
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().code(), ErrorCode::UnsupportedMedia);
    EXPECT_NE(status.error().message().find("input has no video stream"), std::string::npos)
        << status.error().message();
    EXPECT_FALSE(std::filesystem::exists(output()));
}

TEST_F(FrameGrabTest, SkipsCoverArt) {
    const std::string cover = inputDir().file("cover-art.png");
    runFfmpeg("-f lavfi -i color=c=orange:s=200x200 -frames:v 1 " + shellQuote(cover));
    const std::string path = inputDir().file("song-with-cover.m4a");
    runFfmpeg("-f lavfi -i sine=sample_rate=44100 -i " + shellQuote(cover) +
              " -t 1 -map 0 -map 1 -c:a aac -c:v png -disposition:v attached_pic " +
              shellQuote(path));
    const Status status = grabFrame(path, output(), {}, Limits{});
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().code(), ErrorCode::UnsupportedMedia);
}

TEST_F(FrameGrabTest, RejectsTruncatedMp4) {
    const Status status = grabFrame(testing::truncatedNoMoovMp4(), output(), {}, Limits{});
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().code(), ErrorCode::UnsupportedMedia);
    EXPECT_FALSE(std::filesystem::exists(output()));
}

TEST_F(FrameGrabTest, RejectsZeroByteFile) {
    const Status status = grabFrame(testing::zeroByteMp4(), output(), {}, Limits{});
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().code(), ErrorCode::UnsupportedMedia);
}

TEST_F(FrameGrabTest, RejectsFrameOverSizeLimit) {
    Limits limits;
    limits.max_video_width = 200;
    const Status status = grabFrame(colourSequenceMp4(), output(), {}, limits);
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().code(), ErrorCode::ResourceExhausted);
    EXPECT_NE(status.error().message().find("max_video_width"), std::string::npos);
}

class ConvertVideoFrameTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() { ASSERT_TRUE(initialize("frame_grab_test").ok()); }

    // Grabs the frame at `time` and converts it to `format` at `width`
    // pixels wide (the source width when empty).
    Status convert(const std::string& input, double time, const std::string& format,
                   std::optional<int> width, const std::string& output) {
        FrameGrabOptions grab;
        grab.time = time;
        ImageOptions options;
        options.format = format;
        if (width) {
            options.geometry.width = Dimension{*width, false};
        }
        return convertVideoFrame(input, output, grab, options, Limits{});
    }

    TempDir scratch_{"bitmill-video-frame"};
};

TEST_F(ConvertVideoFrameTest, WritesResizedJpegOfTheFrame) {
    const std::string output = scratch_.file("frame.jpg");
    const Status status = convert(colourSequenceMp4(), 1.5, "jpeg", 160, output);
    ASSERT_TRUE(status.ok()) << status.error().toLogString();
    const auto probe = testing::runFfprobe(output);
    ASSERT_NE(probe.stream("video"), nullptr);
    EXPECT_EQ(probe.stream("video")->value("codec_name", ""), "mjpeg");
    EXPECT_EQ(probe.stream("video")->value("width", 0), 160);
    EXPECT_EQ(probe.stream("video")->value("height", 0), 120);
    const RgbImage green = decodeRgb(output, scratch_.path());
    expectColour(green.atFraction(0.5, 0.5), {0, 255, 0}, 12, "1.5 s");
}

TEST_F(ConvertVideoFrameTest, TurnsRotatedVideoUpright) {
    const std::string output = scratch_.file("frame.png");
    const Status status = convert(testing::rotatedVideoMp4(), 0.5, "png", std::nullopt, output);
    ASSERT_TRUE(status.ok()) << status.error().toLogString();
    const RgbImage frame = decodeRgb(output, scratch_.path());
    EXPECT_EQ(frame.width, 360);
    EXPECT_EQ(frame.height, 640);
    expectColour(frame.atFraction(0.2, 0.05), {255, 0, 0}, 40, "top");
    expectColour(frame.atFraction(0.2, 0.95), {0, 255, 255}, 40, "bottom");
}

TEST_F(ConvertVideoFrameTest, MatchesGrabThenConvertForPaddedRows) {
    // 322 pixels of rgb24 are 966 bytes, which FFmpeg pads, so the rows are
    // packed before libvips reads them.
    const std::string path = inputDir().file("bars-322x240.mp4");
    runFfmpeg("-f lavfi -i testsrc2=s=322x240:r=25:d=1 -c:v libx264 -preset veryfast "
              "-pix_fmt yuv420p " +
              shellQuote(path));
    const std::string direct = scratch_.file("direct.png");
    const Status status = convert(path, 0.4, "png", 200, direct);
    ASSERT_TRUE(status.ok()) << status.error().toLogString();

    const std::string frame = scratch_.file("frame.png");
    FrameGrabOptions grab;
    grab.time = 0.4;
    ASSERT_TRUE(grabFrame(path, frame, grab, Limits{}).ok());
    ImageOptions options;
    options.format = "png";
    options.geometry.width = Dimension{200, false};
    const std::string through_file = scratch_.file("through-file.png");
    ASSERT_TRUE(convertImage(frame, through_file, options, Limits{}).ok());

    const RgbImage expected = decodeRgb(through_file, scratch_.path());
    const RgbImage actual = decodeRgb(direct, scratch_.path());
    ASSERT_EQ(actual.width, 200);
    ASSERT_EQ(actual.height, expected.height);
    double difference = 0;
    for (size_t i = 0; i < actual.pixels.size(); ++i) {
        difference += std::abs(actual.pixels[i] - expected.pixels[i]);
    }
    EXPECT_LT(difference / static_cast<double>(actual.pixels.size()), 1.0);
}

TEST_F(ConvertVideoFrameTest, RejectsTimePastEndWithoutOutput) {
    const std::string output = scratch_.file("late.jpg");
    const Status status = convert(colourSequenceMp4(), 7.5, "jpeg", 160, output);
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().code(), ErrorCode::InvalidArgument);
    EXPECT_FALSE(std::filesystem::exists(output));
}

TEST_F(ConvertVideoFrameTest, RejectsBadOptionsWithoutOutput) {
    const std::string output = scratch_.file("bad.bmp");
    const Status status = convert(colourSequenceMp4(), 0.5, "bmp", 160, output);
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().code(), ErrorCode::InvalidArgument);
    EXPECT_FALSE(std::filesystem::exists(output));
}

TEST_F(ConvertVideoFrameTest, RejectsFrameOverPixelLimit) {
    Limits limits;
    limits.max_image_pixels = 320 * 240 - 1;
    FrameGrabOptions grab;
    grab.time = 0.5;
    ImageOptions options;
    const std::string output = scratch_.file("large.jpg");
    const Status status = convertVideoFrame(colourSequenceMp4(), output, grab, options, limits);
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().code(), ErrorCode::ResourceExhausted);
    EXPECT_NE(status.error().message().find("max_image_pixels"), std::string::npos)
        << status.error().message();
    EXPECT_FALSE(std::filesystem::exists(output));
}

}  // namespace
}  // namespace bitmill::media
