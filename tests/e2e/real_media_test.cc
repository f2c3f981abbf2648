// Real files from Debian packages (scripts/fetch-test-media.sh): a phone
// video through the usual web renditions, phone JPEGs, a 6-channel AAC
// clip, camera footage with non-square pixels, the same clip in many
// containers, and speech WAVs. Each test skips when its files were not
// fetched.
#include <algorithm>
#include <optional>

#include "e2e_test.h"

namespace bitmill::e2e {
namespace {

class RealMediaTest : public E2eTest {};

TEST_F(RealMediaTest, PhoneVideoWebRenditions) {
    std::optional<std::filesystem::path> clip_found = realMediaFile("forensics/VID_20191220_170832.mp4");
    if (!clip_found) {
        GTEST_SKIP() << realMediaSkipMessage("forensics/VID_20191220_170832.mp4");
    }
    const std::filesystem::path clip = *clip_found;
    double source_duration = probeMedia(clip).duration();
    Json input = api().uploadFile(clip, "phone/VID_20191220_170832.mp4");
    EXPECT_EQ(input["kind"], "video");
    EXPECT_EQ(input.value("width", 0), 1920);
    EXPECT_EQ(input.value("height", 0), 1080);
    EXPECT_NEAR(input.value("duration", 0.0), source_duration, 0.1);

    Json webm = api().runTask(
        {{"kind", "video"}, {"file_id", input["id"]}, {"width", 640}, {"format", "webm"}});
    ASSERT_TRUE(taskCompleted(webm));
    ProbeResult webm_probe = probeMedia(downloadOutput(webm));
    ASSERT_NE(webm_probe.stream("video"), nullptr);
    EXPECT_EQ(webm_probe.stream("video")->value("codec_name", ""), "vp9");
    EXPECT_EQ(webm_probe.stream("video")->value("width", 0), 640);
    EXPECT_EQ(webm_probe.stream("video")->value("height", 0), 360);
    ASSERT_NE(webm_probe.stream("audio"), nullptr);
    EXPECT_EQ(webm_probe.stream("audio")->value("codec_name", ""), "opus");
    EXPECT_NEAR(webm_probe.duration(), source_duration, 0.2);

    Json frame = api().runTask(
        {{"kind", "image"}, {"file_id", input["id"]}, {"format", "png"}, {"start", 1.0}});
    ASSERT_TRUE(taskCompleted(frame));
    ImageHeader header = readImageHeader(downloadOutput(frame));
    EXPECT_EQ(header.loader, "pngload");
    EXPECT_EQ(header.width, 1920);
    EXPECT_EQ(header.height, 1080);

    Json mp3 = api().runTask({{"kind", "audio"}, {"file_id", input["id"]}, {"format", "mp3"}});
    ASSERT_TRUE(taskCompleted(mp3));
    ProbeResult mp3_probe = probeMedia(downloadOutput(mp3));
    ASSERT_NE(mp3_probe.stream("audio"), nullptr);
    EXPECT_EQ(mp3_probe.stream("audio")->value("codec_name", ""), "mp3");
    EXPECT_NEAR(mp3_probe.duration(), source_duration, 0.2);

    Json media = api().getJson("/media/" + input["media_id"].get<std::string>());
    EXPECT_EQ(media["files"].size(), 4u) << "original and three outputs: " << media.dump();
}

// A phone JPEG stored upside down (EXIF orientation 3) comes out upright.
TEST_F(RealMediaTest, PhoneJpegUpsideDownToWebp800) {
    std::optional<std::filesystem::path> photo_found = realMediaFile("forensics/IMG_20200124_231153.jpg");
    if (!photo_found) {
        GTEST_SKIP() << realMediaSkipMessage("forensics/IMG_20200124_231153.jpg");
    }
    const std::filesystem::path photo = *photo_found;
    ASSERT_EQ(readImageHeader(photo).orientation, 3) << "fixture changed";
    Json input = api().uploadFile(photo);
    Json task = api().runTask(
        {{"kind", "image"}, {"file_id", input["id"]}, {"format", "webp"}, {"width", 800}});
    ASSERT_TRUE(taskCompleted(task));
    std::filesystem::path output = downloadOutput(task);
    ImageHeader header = readImageHeader(output);
    EXPECT_EQ(header.loader, "webpload");
    EXPECT_EQ(header.width, 800);
    EXPECT_EQ(header.height, 600);
    EXPECT_EQ(header.orientation, 1);

    // vips thumbnail applies the orientation: the upright reference.
    std::filesystem::path reference = scratchDir() / "upright.png";
    runChecked({"vips", "thumbnail", photo.string(), reference.string(), "800"});
    RgbImage actual = decodeImageScaled(output, 80, 60);
    RgbImage upright = decodeImageScaled(reference, 80, 60);
    double diff = meanAbsoluteDifference(actual, upright);
    EXPECT_LT(diff, meanAbsoluteDifference(actual, upright.rotated180()))
        << "output is upside down";
    EXPECT_LT(diff, 12.0);
}

TEST_F(RealMediaTest, PhoneJpegToWebp800) {
    std::optional<std::filesystem::path> photo_found = realMediaFile("forensics/IMG_20200827_231612.jpg");
    if (!photo_found) {
        GTEST_SKIP() << realMediaSkipMessage("forensics/IMG_20200827_231612.jpg");
    }
    const std::filesystem::path photo = *photo_found;
    Json input = api().uploadFile(photo);
    EXPECT_EQ(input.value("width", 0), 4000);
    EXPECT_EQ(input.value("height", 0), 3000);
    Json task = api().runTask(
        {{"kind", "image"}, {"file_id", input["id"]}, {"format", "webp"}, {"width", 800}});
    ASSERT_TRUE(taskCompleted(task));
    std::filesystem::path output = downloadOutput(task);
    ImageHeader header = readImageHeader(output);
    EXPECT_EQ(header.width, 800);
    EXPECT_EQ(header.height, 600);
    EXPECT_TRUE(exifTag(output, "Make").empty()) << "camera metadata must be stripped";
    EXPECT_LT(meanAbsoluteDifference(decodeImageScaled(output, 80, 60),
                                     decodeImageScaled(photo, 80, 60)),
              12.0);
}

TEST_F(RealMediaTest, SixChannelAacToStereoMp3) {
    std::optional<std::filesystem::path> clip_found = realMediaFile("janus/ChID-BLITS-EBU.mp4");
    if (!clip_found) {
        GTEST_SKIP() << realMediaSkipMessage("janus/ChID-BLITS-EBU.mp4");
    }
    const std::filesystem::path clip = *clip_found;
    ProbeResult source = probeMedia(clip);
    ASSERT_NE(source.stream("audio"), nullptr);
    ASSERT_EQ(source.stream("audio")->value("channels", 0), 6) << "fixture changed";
    Json input = api().uploadFile(clip);
    Json task = api().runTask(
        {{"kind", "audio"}, {"file_id", input["id"]}, {"format", "mp3"}, {"channels", 2}});
    ASSERT_TRUE(taskCompleted(task));
    ProbeResult probe = probeMedia(downloadOutput(task));
    ASSERT_NE(probe.stream("audio"), nullptr);
    EXPECT_EQ(probe.stream("audio")->value("codec_name", ""), "mp3");
    EXPECT_EQ(probe.stream("audio")->value("channels", 0), 2);
    EXPECT_NEAR(probe.duration(), source.duration(), 0.3);
}

TEST_F(RealMediaTest, SixChannelAacDefaultMp3IsPlayable) {
    std::optional<std::filesystem::path> clip_found = realMediaFile("janus/ChID-BLITS-EBU.mp4");
    if (!clip_found) {
        GTEST_SKIP() << realMediaSkipMessage("janus/ChID-BLITS-EBU.mp4");
    }
    const std::filesystem::path clip = *clip_found;
    Json input = api().uploadFile(clip);
    Json task = api().runTask({{"kind", "audio"}, {"file_id", input["id"]}});
    ASSERT_TRUE(taskCompleted(task));
    ProbeResult probe = probeMedia(downloadOutput(task));
    ASSERT_NE(probe.stream("audio"), nullptr);
    // MP3 carries at most two channels.
    EXPECT_LE(probe.stream("audio")->value("channels", 0), 2);
}

// PAL camera footage: 720x576 with 16:15 pixels, 4:3 on screen.
TEST_F(RealMediaTest, NonSquarePixelFootageKeepsDisplayAspect) {
    std::optional<std::filesystem::path> clip_found = realMediaFile("mecavideo/balle-jbart.mp4");
    if (!clip_found) {
        GTEST_SKIP() << realMediaSkipMessage("mecavideo/balle-jbart.mp4");
    }
    const std::filesystem::path clip = *clip_found;
    Json input = api().uploadFile(clip);
    Json task = api().runTask({{"kind", "video"}, {"file_id", input["id"]}, {"width", 640}});
    ASSERT_TRUE(taskCompleted(task));
    ProbeResult probe = probeMedia(downloadOutput(task));
    const Json* video = probe.stream("video");
    ASSERT_NE(video, nullptr);
    double width = video->value("width", 0);
    double height = video->value("height", 0);
    double sample_aspect = 1.0;
    std::string sar = video->value("sample_aspect_ratio", "1:1");
    if (sar != "0:1" && sar.find(':') != std::string::npos) {
        sample_aspect = parseRate(sar.replace(sar.find(':'), 1, "/"));
    }
    EXPECT_NEAR(width * sample_aspect / height, 4.0 / 3.0, 0.03)
        << width << "x" << height << " SAR " << video->value("sample_aspect_ratio", "");
}

TEST_F(RealMediaTest, OldCameraContainersTranscode) {
    for (const char* name : {"mecavideo/Force_constante.avi", "mecavideo/balle1-vp9.avi",
                             "mecavideo/Effet_force_magnetique.ogv"}) {
        std::optional<std::filesystem::path> clip_found = realMediaFile(name);
        if (!clip_found) {
            GTEST_SKIP() << realMediaSkipMessage(name);
        }
        const std::filesystem::path clip = *clip_found;
        Json input = api().uploadFile(clip);
        EXPECT_EQ(input["kind"], "video") << name;
        Json task = api().runTask(
            {{"kind", "video"}, {"file_id", input["id"]}, {"format", "webm"}, {"width", 320}});
        ASSERT_TRUE(taskCompleted(task)) << name;
        ProbeResult probe = probeMedia(downloadOutput(task));
        ASSERT_NE(probe.stream("video"), nullptr) << name;
        EXPECT_EQ(probe.stream("video")->value("codec_name", ""), "vp9") << name;
        EXPECT_NEAR(probe.duration(), probeMedia(clip).duration(), 0.3) << name;
    }
}

struct ContainerCase {
    std::string file;
    // Accepted MIME types (before any "; codecs=").
    std::vector<std::string> mime_types;
};

void PrintTo(const ContainerCase& value, std::ostream* out) { *out << value.file; }

class ContainerTest : public RealMediaTest,
                      public ::testing::WithParamInterface<ContainerCase> {};

TEST_P(ContainerTest, ProbesToItsContainerAndTranscodes) {
    std::optional<std::filesystem::path> clip_found = realMediaFile("mimetype/" + GetParam().file);
    if (!clip_found) {
        GTEST_SKIP() << realMediaSkipMessage("mimetype/" + GetParam().file);
    }
    const std::filesystem::path clip = *clip_found;
    Json input = api().uploadFile(clip);
    EXPECT_EQ(input["kind"], "video") << input.dump();
    std::string type = input["type"];
    std::string mime = type.substr(0, type.find(';'));
    const auto& accepted = GetParam().mime_types;
    EXPECT_NE(std::find(accepted.begin(), accepted.end(), mime), accepted.end())
        << "type '" << type << "' for " << GetParam().file;
    EXPECT_EQ(fetchUrl(input["url"]).header("Content-Type").substr(0, mime.size()), mime);

    Json task = api().runTask({{"kind", "video"}, {"file_id", input["id"]}, {"width", 320}});
    ASSERT_TRUE(taskCompleted(task));
    ProbeResult probe = probeMedia(downloadOutput(task));
    ASSERT_NE(probe.stream("video"), nullptr);
    EXPECT_EQ(probe.stream("video")->value("codec_name", ""), "h264");
    EXPECT_EQ(probe.stream("video")->value("width", 0), 320);
}

INSTANTIATE_TEST_SUITE_P(
    Mimetype, ContainerTest,
    ::testing::Values(ContainerCase{"mp4.mp4", {"video/mp4"}},
                      ContainerCase{"mov.mov", {"video/quicktime"}},
                      ContainerCase{"webm.webm", {"video/webm"}},
                      ContainerCase{"mkv.mkv", {"video/x-matroska", "video/matroska"}},
                      ContainerCase{"flv.flv", {"video/x-flv"}},
                      ContainerCase{"asf.asf", {"video/x-ms-asf", "video/x-ms-wmv"}},
                      ContainerCase{"3gp.3gp", {"video/3gpp"}}),
    [](const auto& info) {
        std::string name = info.param.file;
        return name.substr(name.find('.') + 1);
    });

TEST_F(RealMediaTest, SpeechWavsTranscode) {
    for (const char* name :
         {"pocketsphinx/001.wav", "pocketsphinx/sense_and_sensibility_01_austen_64kb-0870.wav"}) {
        std::optional<std::filesystem::path> wav_found = realMediaFile(name);
        if (!wav_found) {
            GTEST_SKIP() << realMediaSkipMessage(name);
        }
        const std::filesystem::path wav = *wav_found;
        Json input = api().uploadFile(wav);
        EXPECT_EQ(input["kind"], "audio") << name;
        Json task = api().runTask({{"kind", "audio"}, {"file_id", input["id"]},
                                   {"format", "opus"}});
        ASSERT_TRUE(taskCompleted(task)) << name;
        ProbeResult probe = probeMedia(downloadOutput(task));
        ASSERT_NE(probe.stream("audio"), nullptr);
        EXPECT_EQ(probe.stream("audio")->value("codec_name", ""), "opus");
        EXPECT_NEAR(probe.duration(), probeMedia(wav).duration(), 0.1) << name;
    }
}

}  // namespace
}  // namespace bitmill::e2e
