// Tests of probeAudioVideo on files generated with the ffmpeg CLI: container
// and MIME type from content, upright size of rotated video, cover art,
// timing, languages, limits and unreadable files.
#include "media/ffmpeg/av_probe.h"

#include <gtest/gtest.h>

#include <regex>

#include "av_test_support.h"

namespace bitmill::media {
namespace {

using ffmpeg::probeAudioVideo;
using testing::inputDir;
using testing::runFfmpeg;
using testing::shellQuote;

MediaProperties probeOrFail(const std::string& path, const Limits& limits = {}) {
    auto result = probeAudioVideo(path, limits);
    if (!result.ok()) {
        ADD_FAILURE() << "probe " << path << ": " << result.error().toLogString();
        return {};
    }
    return std::move(result).value();
}

TEST(AvProbeTest, DescribesH264AacMp4) {
    const MediaProperties properties = probeOrFail(testing::videoWithAudioMp4());
    EXPECT_EQ(properties.kind, "video");
    EXPECT_EQ(properties.container, "mp4");
    EXPECT_EQ(properties.extension, "mp4");
    EXPECT_TRUE(std::regex_match(
        properties.type, std::regex(R"(video/mp4; codecs="avc1\.64[0-9a-f]{4}, mp4a\.40\.2")")))
        << properties.type;
    EXPECT_EQ(properties.codec, "h264");
    EXPECT_EQ(properties.width, 640);
    EXPECT_EQ(properties.height, 360);
    EXPECT_EQ(properties.orientation, "landscape");
    EXPECT_EQ(properties.rotation, 0);
    EXPECT_EQ(properties.frames, 50);
    ASSERT_TRUE(properties.fps.has_value());
    EXPECT_DOUBLE_EQ(*properties.fps, 25.0);
    ASSERT_TRUE(properties.duration.has_value());
    EXPECT_NEAR(*properties.duration, 2.0, 0.05);
    ASSERT_TRUE(properties.bitrate.has_value());
    EXPECT_GT(*properties.bitrate, 10'000);
    EXPECT_EQ(properties.pixel_format, "yuv420p");
    EXPECT_EQ(properties.audio_channels, 2);
    EXPECT_EQ(properties.sample_rate, 48000);
    EXPECT_EQ(properties.transparency, false);
    EXPECT_EQ(properties.animated, false);
}

TEST(AvProbeTest, MapsLanguageTagToIso6391) {
    // The audio stream is tagged "fre" (ISO 639-2/B); the video is "und".
    const MediaProperties properties = probeOrFail(testing::videoWithAudioMp4());
    EXPECT_EQ(properties.language, "fr");
}

TEST(AvProbeTest, ReportsUprightSizeOfRotatedVideo) {
    const MediaProperties properties = probeOrFail(testing::rotatedVideoMp4());
    EXPECT_EQ(properties.width, 360);
    EXPECT_EQ(properties.height, 640);
    EXPECT_EQ(properties.orientation, "portrait");
    EXPECT_EQ(properties.rotation, 90);
}

TEST(AvProbeTest, DescribesVideoWithoutAudio) {
    const MediaProperties properties = probeOrFail(testing::videoOnlyMp4());
    EXPECT_EQ(properties.kind, "video");
    EXPECT_TRUE(std::regex_match(properties.type,
                                 std::regex(R"(video/mp4; codecs="avc1\.[0-9a-f]{6}")")))
        << properties.type;
    EXPECT_FALSE(properties.audio_channels.has_value());
    EXPECT_FALSE(properties.sample_rate.has_value());
}

TEST(AvProbeTest, DescribesAudioOnlyM4aAsAudio) {
    const MediaProperties properties = probeOrFail(testing::audioOnlyM4a());
    EXPECT_EQ(properties.kind, "audio");
    EXPECT_EQ(properties.container, "m4a");
    EXPECT_EQ(properties.extension, "m4a");
    EXPECT_EQ(properties.type, "audio/mp4; codecs=\"mp4a.40.2\"");
    EXPECT_EQ(properties.codec, "aac");
    EXPECT_EQ(properties.audio_channels, 2);
    EXPECT_EQ(properties.sample_rate, 44100);
    ASSERT_TRUE(properties.duration.has_value());
    EXPECT_NEAR(*properties.duration, 3.0, 0.05);
    EXPECT_FALSE(properties.width.has_value());
    EXPECT_FALSE(properties.frames.has_value());
    EXPECT_FALSE(properties.pixel_format.has_value());
}

TEST(AvProbeTest, DetectsMatroskaNamedMp4FromContent) {
    const std::string path = inputDir().file("matroska-content.mp4");
    runFfmpeg("-i " + shellQuote(testing::videoWithAudioMp4()) + " -c copy -f matroska " +
              shellQuote(path));
    const MediaProperties properties = probeOrFail(path);
    EXPECT_EQ(properties.container, "mkv");
    EXPECT_EQ(properties.extension, "mkv");
    EXPECT_EQ(properties.type.rfind("video/x-matroska; codecs=\"avc1.64", 0), 0)
        << properties.type;
    // Matroska has no frame count; it is estimated from duration and rate.
    ASSERT_TRUE(properties.frames.has_value());
    EXPECT_NEAR(static_cast<double>(*properties.frames), 50, 1);
}

TEST(AvProbeTest, DescribesVp9OpusWebm) {
    const std::string path = inputDir().file("vp9-opus.webm");
    runFfmpeg("-f lavfi -i testsrc2=size=320x240:rate=25 -f lavfi -i sine=sample_rate=48000 "
              "-t 1 -c:v libvpx-vp9 -deadline realtime -cpu-used 8 -b:v 300k -c:a libopus " +
              shellQuote(path));
    const MediaProperties properties = probeOrFail(path);
    EXPECT_EQ(properties.container, "webm");
    EXPECT_EQ(properties.extension, "webm");
    // 320x240 at 25 fps fits VP9 level 2.0 (at most 122880 pixels).
    EXPECT_EQ(properties.type, "video/webm; codecs=\"vp09.00.20.08, opus\"");
    EXPECT_EQ(properties.codec, "vp9");
}

TEST(AvProbeTest, DescribesTenBitHevcHdr) {
    const std::string path = inputDir().file("hevc-10bit-hdr10.mp4");
    runFfmpeg("-f lavfi -i testsrc2=size=640x360:rate=25 -t 1 -c:v libx265 -preset ultrafast "
              "-pix_fmt yuv420p10le -x265-params "
              "log-level=error:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc "
              "-tag:v hvc1 " +
              shellQuote(path));
    const MediaProperties properties = probeOrFail(path);
    EXPECT_EQ(properties.codec, "h265");
    EXPECT_EQ(properties.pixel_format, "yuv420p10le");
    // Main 10 profile (idc 2, compatibility flag 2), main tier.
    EXPECT_TRUE(std::regex_match(
        properties.type, std::regex(R"(video/mp4; codecs="hvc1\.2\.4\.L[0-9]+(\.[0-9A-F]+)*")")))
        << properties.type;
}

TEST(AvProbeTest, ReportsHev1SampleEntry) {
    const std::string path = inputDir().file("hevc-hev1.mov");
    runFfmpeg("-f lavfi -i testsrc2=size=320x240:rate=25 -t 1 -c:v libx265 -preset ultrafast "
              "-x265-params log-level=error -pix_fmt yuv420p -tag:v hev1 " +
              shellQuote(path));
    const MediaProperties properties = probeOrFail(path);
    EXPECT_EQ(properties.container, "mov");
    EXPECT_EQ(properties.type.rfind("video/quicktime; codecs=\"hev1.1.6.L", 0), 0)
        << properties.type;
}

TEST(AvProbeTest, ReportsTransparencyOfAlphaVideo) {
    const std::string path = inputDir().file("alpha.mov");
    runFfmpeg("-f lavfi -i testsrc2=size=160x120:rate=10 -t 0.5 -c:v qtrle -pix_fmt argb " +
              shellQuote(path));
    const MediaProperties properties = probeOrFail(path);
    EXPECT_EQ(properties.transparency, true);
}

TEST(AvProbeTest, ReportsTransparencyOfVp9AlphaWebm) {
    const std::string path = inputDir().file("alpha.webm");
    runFfmpeg("-f lavfi -i testsrc2=size=160x120:rate=10 -t 0.5 -vf format=yuva420p "
              "-c:v libvpx-vp9 -deadline realtime -cpu-used 8 " +
              shellQuote(path));
    const MediaProperties properties = probeOrFail(path);
    EXPECT_EQ(properties.transparency, true);
}

TEST(AvProbeTest, IgnoresCoverArtOfMp3) {
    const std::string cover = inputDir().file("cover.png");
    runFfmpeg("-f lavfi -i color=c=orange:s=200x200 -frames:v 1 " + shellQuote(cover));
    const std::string path = inputDir().file("with-cover.mp3");
    runFfmpeg("-f lavfi -i sine=sample_rate=44100 -i " + shellQuote(cover) +
              " -t 2 -map 0 -map 1 -c:a libmp3lame -c:v png -disposition:v attached_pic " +
              shellQuote(path));
    const MediaProperties properties = probeOrFail(path);
    EXPECT_EQ(properties.kind, "audio");
    EXPECT_EQ(properties.container, "mp3");
    EXPECT_EQ(properties.type, "audio/mpeg");
    EXPECT_EQ(properties.codec, "mp3");
    EXPECT_FALSE(properties.width.has_value());
}

TEST(AvProbeTest, DescribesWavAt22050Hz) {
    const std::string path = inputDir().file("mono-22050.wav");
    runFfmpeg("-f lavfi -i sine=sample_rate=22050 -t 1.5 -c:a pcm_s16le " + shellQuote(path));
    const MediaProperties properties = probeOrFail(path);
    EXPECT_EQ(properties.kind, "audio");
    EXPECT_EQ(properties.container, "wav");
    EXPECT_EQ(properties.type, "audio/wav");
    EXPECT_EQ(properties.codec, "pcm_s16le");
    EXPECT_EQ(properties.sample_rate, 22050);
    EXPECT_EQ(properties.audio_channels, 1);
    ASSERT_TRUE(properties.duration.has_value());
    EXPECT_NEAR(*properties.duration, 1.5, 0.01);
    // The container bitrate counts the header too.
    ASSERT_TRUE(properties.bitrate.has_value());
    EXPECT_NEAR(static_cast<double>(*properties.bitrate), 22050 * 16, 22050 * 16 * 0.01);
}

TEST(AvProbeTest, DescribesOggOpus) {
    const std::string path = inputDir().file("speech.ogg");
    runFfmpeg("-f lavfi -i sine=sample_rate=48000 -t 1 -c:a libopus -b:a 32k " +
              shellQuote(path));
    const MediaProperties properties = probeOrFail(path);
    EXPECT_EQ(properties.kind, "audio");
    EXPECT_EQ(properties.container, "ogg");
    EXPECT_EQ(properties.extension, "opus");
    EXPECT_EQ(properties.type, "audio/ogg; codecs=\"opus\"");
    EXPECT_EQ(properties.codec, "opus");
}

TEST(AvProbeTest, ReadsMp4WithMoovAtEnd) {
    const MediaProperties properties = probeOrFail(testing::moovAtEndMp4());
    EXPECT_EQ(properties.width, 1280);
    EXPECT_EQ(properties.height, 720);
    EXPECT_EQ(properties.frames, 50);
}

TEST(AvProbeTest, RejectsWidthOverLimit) {
    Limits limits;
    limits.max_video_width = 320;
    const auto result = probeAudioVideo(testing::videoWithAudioMp4(), limits);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().code(), ErrorCode::ResourceExhausted);
    EXPECT_EQ(result.error().message(),
              "video width 640 exceeds the limit of 320 pixels (max_video_width)");
}

TEST(AvProbeTest, ChecksUprightHeightOfRotatedVideo) {
    Limits limits;
    limits.max_video_height = 400;
    const auto result = probeAudioVideo(testing::rotatedVideoMp4(), limits);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().code(), ErrorCode::ResourceExhausted);
    EXPECT_EQ(result.error().message(),
              "video height 640 exceeds the limit of 400 pixels (max_video_height)");
}

TEST(AvProbeTest, RejectsDurationOverLimit) {
    Limits limits;
    limits.max_duration_seconds = 1.5;
    const auto result = probeAudioVideo(testing::audioOnlyM4a(), limits);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().code(), ErrorCode::ResourceExhausted);
    EXPECT_NE(result.error().message().find("exceeds the limit of 1.5 seconds "
                                            "(max_duration_seconds)"),
              std::string::npos)
        << result.error().message();
}

TEST(AvProbeTest, RejectsZeroByteFile) {
    const auto result = probeAudioVideo(testing::zeroByteMp4(), {});
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().code(), ErrorCode::UnsupportedMedia);
    EXPECT_NE(result.error().message().find("empty"), std::string::npos)
        << result.error().message();
}

TEST(AvProbeTest, RejectsTruncatedMp4WithoutMoov) {
    const auto result = probeAudioVideo(testing::truncatedNoMoovMp4(), {});
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().code(), ErrorCode::UnsupportedMedia);
    EXPECT_NE(result.error().message().find("truncated"), std::string::npos)
        << result.error().message();
    // The message is for API clients: no local path.
    EXPECT_EQ(result.error().message().find(inputDir().path().string()), std::string::npos);
}

TEST(AvProbeTest, RejectsMp4CutAfterItsIndex) {
    const auto result = probeAudioVideo(testing::truncatedFaststartMp4(), {});
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().code(), ErrorCode::UnsupportedMedia);
    EXPECT_NE(result.error().message().find("truncated"), std::string::npos)
        << result.error().message();
}

TEST(AvProbeTest, RejectsStillImage) {
    const std::string path = inputDir().file("photo.heic");
    runFfmpeg("-f lavfi -i color=c=blue:s=64x48 -frames:v 1 -f image2 -c:v mjpeg " +
              shellQuote(path));
    const auto result = probeAudioVideo(path, {});
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().code(), ErrorCode::UnsupportedMedia);
    EXPECT_NE(result.error().message().find("image"), std::string::npos)
        << result.error().message();
}

TEST(AvProbeTest, RejectsTextFile) {
    const std::string path = inputDir().file("notes.mp3");
    std::ofstream(path) << "these are not the bytes of an mp3 file\n";
    const auto result = probeAudioVideo(path, {});
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().code(), ErrorCode::UnsupportedMedia);
}

TEST(AvProbeTest, RejectsHlsPlaylist) {
    // A playlist may name any file on the server's disk.
    const std::string path = inputDir().file("list.m3u8");
    std::ofstream(path) << "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n"
                        << testing::videoWithAudioMp4() << "\n#EXT-X-ENDLIST\n";
    const auto result = probeAudioVideo(path, {});
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().code(), ErrorCode::UnsupportedMedia);
}

}  // namespace
}  // namespace bitmill::media
