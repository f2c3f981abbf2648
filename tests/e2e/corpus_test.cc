// The hard-input corpus (make-corpus.sh output and the real files next to
// it), one table row per input. Each row uploads the file (or expects the
// upload to be rejected) and runs the tasks that broke other pipelines. It
// then checks the outcome the contract requires: upright pictures, hvc1
// tags, 8-bit 4:2:0 SDR video, even sizes, or a failed task with a clear
// error.
#include <functional>

#include "e2e_test.h"

namespace bitmill::e2e {
namespace {

class CorpusTest;

struct CorpusCase {
    // Test name: case id and a short description, e.g. B05_OddSizeBecomesEven.
    std::string name;
    std::function<void(CorpusTest&)> check;
};

void PrintTo(const CorpusCase& value, std::ostream* out) { *out << value.name; }

bool containsAny(const std::string& text, const std::vector<std::string>& words) {
    for (const auto& word : words) {
        if (containsText(text, word)) {
            return true;
        }
    }
    return false;
}

class CorpusTest : public E2eTest, public ::testing::WithParamInterface<CorpusCase> {
public:
    // The table's check functions drive the test through these.
    using E2eTest::scratchDir;
    using E2eTest::server;
    using E2eTest::startServer;

    ApiSession& session() { return api(); }

    Json uploadInput(const std::filesystem::path& file) {
        return api().uploadFile(file, "corpus/" + file.filename().string());
    }

    Json runOn(const Json& file, const std::string& kind, Json options = Json::object()) {
        options["kind"] = kind;
        options["file_id"] = file["id"];
        return api().runTask(options, std::chrono::seconds(240));
    }

    std::filesystem::path output(const Json& task) { return downloadOutput(task); }

    // The contract allows a 4xx at upload or a failed task for unreadable or
    // over-limit input. Checks that one of them happens, that no output
    // exists and that the server stays up; returns the error message.
    std::string rejectionMessage(const std::filesystem::path& file, const std::string& kind,
                                 Json options) {
        HttpResponse upload = api().upload(file, "corpus/" + file.filename().string());
        std::string message;
        if (upload.status >= 400 && upload.status < 500) {
            message = errorMessage(upload);
            EXPECT_TRUE(upload.status == 400 || upload.status == 413 || upload.status == 415 ||
                        upload.status == 422)
                << upload.describe();
        } else {
            EXPECT_EQ(upload.status, 201) << upload.describe();
            if (upload.status != 201) {
                return message;
            }
            Json input = upload.json();
            options["kind"] = kind;
            options["file_id"] = input["id"];
            HttpResponse created = api().api().post("/tasks", options);
            if (created.status == 400 || created.status == 422) {
                message = errorMessage(created);
            } else {
                EXPECT_EQ(created.status, 201) << created.describe();
                if (created.status != 201) {
                    return message;
                }
                Json task = api().waitForTask(created.json()["id"], std::chrono::seconds(240));
                EXPECT_TRUE(taskFailedWithError(task));
                EXPECT_TRUE(task["output"].is_null()) << "a failed task has no output";
                message = task.value("error", "");
            }
        }
        EXPECT_FALSE(message.empty()) << "the rejection carries no message";
        EXPECT_TRUE(isHealthy(server())) << "the server must survive bad input";
        return message;
    }

    // rejectionMessage(), and the message has to contain one of `words`.
    void expectRejectedOrFailed(const std::filesystem::path& file, const std::string& kind,
                                Json options, const std::vector<std::string>& words) {
        std::string message = rejectionMessage(file, kind, std::move(options));
        EXPECT_TRUE(containsAny(message, words))
            << "error '" << message << "' mentions none of " << ::testing::PrintToString(words);
    }

    // Frame of `file` (display rotation applied by ffmpeg) scaled to w x h.
    static RgbImage frame(const std::filesystem::path& file, int width, int height) {
        return decodeFrame(file, 0.5, width, height);
    }

    // An upright 8-bit sRGB rendering of `file` made by vips thumbnail
    // (libvips 8.14 applies EXIF orientation and converts CMYK without a
    // profile through its fallback profile), to compare bitmill's output
    // with. Passing --export-profile srgb would be wrong here: it turns
    // untagged 16-bit RGB into visibly different colours.
    std::filesystem::path vipsReference(const std::filesystem::path& file, int width) {
        std::filesystem::path reference =
            scratchDir() / ("reference-" + file.stem().string() + ".png");
        runChecked({"vips", "thumbnail", file.string(), reference.string(),
                    std::to_string(width)});
        return reference;
    }
};

TEST_P(CorpusTest, MeetsExpectation) { GetParam().check(*this); }

// -------------------------------------------------------------- video checks

// An upright output of a clip whose pixels are 640x360 with a 90° display
// matrix: 360x640 pixels, no rotation left, same picture as the source
// played with its matrix applied.
void expectUprightPortrait(CorpusTest& test, const std::string& name, const std::string& kind) {
    std::filesystem::path source = corpusFile(name);
    Json input = test.uploadInput(source);
    Json options = kind == "image" ? Json{{"format", "jpeg"}} : Json::object();
    Json task = test.runOn(input, kind, options);
    ASSERT_TRUE(taskCompleted(task));
    std::filesystem::path output = test.output(task);
    ProbeResult probe = probeMedia(output);
    const Json* video = probe.stream("video");
    ASSERT_NE(video, nullptr);
    EXPECT_EQ(video->value("width", 0), 360) << name;
    EXPECT_EQ(video->value("height", 0), 640) << name;
    EXPECT_EQ(probe.videoRotation(), 0) << "rotation metadata must be cleared";
    if (kind == "image") {
        EXPECT_EQ(readImageHeader(output).orientation, 1);
    }
    RgbImage expected = CorpusTest::frame(source, 90, 160);
    RgbImage actual = kind == "image" ? decodeFrame(output, 0, 90, 160)
                                      : CorpusTest::frame(output, 90, 160);
    double diff = meanAbsoluteDifference(actual, expected);
    double diff_flipped = meanAbsoluteDifference(actual, expected.rotated180());
    EXPECT_LT(diff, diff_flipped) << "picture turned the wrong way";
    EXPECT_LT(diff, 20.0);
}

void expectWebVideo(const ProbeResult& probe) {
    const Json* video = probe.stream("video");
    ASSERT_NE(video, nullptr);
    EXPECT_EQ(video->value("codec_name", ""), "h264");
    EXPECT_EQ(video->value("pix_fmt", ""), "yuv420p");
    std::string profile = video->value("profile", "");
    EXPECT_TRUE(profile == "High" || profile == "Main" || profile == "Constrained Baseline")
        << "profile " << profile;
    EXPECT_EQ(video->value("width", 0) % 2, 0);
    EXPECT_EQ(video->value("height", 0) % 2, 0);
}

std::vector<CorpusCase> videoCases() {
    return {
        {"B01_RotatedMp4VideoIsUpright",
         [](CorpusTest& test) {
             expectUprightPortrait(test, "v-rotate90-displaymatrix.mp4", "video");
         }},
        {"B01_RotatedMp4FrameGrabIsUpright",
         [](CorpusTest& test) {
             expectUprightPortrait(test, "v-rotate90-displaymatrix.mp4", "image");
         }},
        {"B01_RotatedHevcMovIsUprightH264",
         [](CorpusTest& test) {
             expectUprightPortrait(test, "v-hevc-hvc1-rotate90.mov", "video");
         }},
        {"B02_Hev1InputGivesHvc1Output",
         [](CorpusTest& test) {
             Json input = test.uploadInput(corpusFile("v-hevc-hev1.mov"));
             Json task = test.runOn(input, "video", {{"codec", "h265"}, {"format", "mp4"}});
             ASSERT_TRUE(taskCompleted(task));
             ProbeResult probe = probeMedia(test.output(task));
             ASSERT_NE(probe.stream("video"), nullptr);
             EXPECT_EQ(probe.stream("video")->value("codec_name", ""), "hevc");
             EXPECT_EQ(probe.stream("video")->value("codec_tag_string", ""), "hvc1");
         }},
        {"B04_Hdr10BecomesSdr8Bit",
         [](CorpusTest& test) {
             Json input = test.uploadInput(corpusFile("v-hevc-10bit-hdr10.mp4"));
             Json task = test.runOn(input, "video", {{"width", 640}});
             ASSERT_TRUE(taskCompleted(task));
             ProbeResult probe = probeMedia(test.output(task));
             expectWebVideo(probe);
             const Json* video = probe.stream("video");
             ASSERT_NE(video, nullptr);
             EXPECT_NE(video->value("profile", ""), "High 10");
             EXPECT_NE(video->value("color_transfer", ""), "smpte2084") << "still PQ";
             EXPECT_NE(video->value("color_transfer", ""), "arib-std-b67") << "still HLG";
             EXPECT_NE(video->value("color_primaries", ""), "bt2020");
         }},
        {"B04_Hdr10FrameGrabIs8Bit",
         [](CorpusTest& test) {
             Json input = test.uploadInput(corpusFile("v-hevc-10bit-hdr10.mp4"));
             Json task = test.runOn(input, "image", {{"format", "png"}, {"width", 640}});
             ASSERT_TRUE(taskCompleted(task));
             ImageHeader header = readImageHeader(test.output(task));
             EXPECT_EQ(header.format, "uchar") << "thumbnails are 8-bit";
             EXPECT_EQ(header.width, 640);
             // NOTE: the tone mapping itself is not checked; a PQ signal shown
             // as BT.709 would pass as long as it is 8-bit.
         }},
        {"B05_OddSizeBecomesEven",
         [](CorpusTest& test) {
             Json input = test.uploadInput(corpusFile("v-odd-1921x1081.webm"));
             Json task = test.runOn(input, "video", {{"format", "mp4"}});
             ASSERT_TRUE(taskCompleted(task));
             ProbeResult probe = probeMedia(test.output(task));
             expectWebVideo(probe);
             ASSERT_NE(probe.stream("video"), nullptr);
             EXPECT_NEAR(probe.stream("video")->value("width", 0), 1921, 2);
             EXPECT_NEAR(probe.stream("video")->value("height", 0), 1081, 2);
         }},
        {"B05_AnimatedGifBecomesEvenSizedMp4",
         [](CorpusTest& test) {
             Json input = test.uploadInput(corpusFile("i-animated.gif"));
             Json task = test.runOn(input, "video", {{"format", "mp4"}});
             ASSERT_TRUE(taskCompleted(task)) << task.dump();
             ProbeResult probe = probeMedia(test.output(task));
             expectWebVideo(probe);
             ASSERT_NE(probe.stream("video"), nullptr);
             EXPECT_EQ(probe.stream("video")->value("width", 0) % 2, 0);
             EXPECT_EQ(probe.stream("video")->value("height", 0) % 2, 0);
         }},
        {"B07_Yuv444BecomesYuv420",
         [](CorpusTest& test) {
             Json input = test.uploadInput(corpusFile("v-yuv444p.mp4"));
             Json task = test.runOn(input, "video", Json::object());
             ASSERT_TRUE(taskCompleted(task));
             expectWebVideo(probeMedia(test.output(task)));
         }},
        {"B07_FullRangeBecomesLimited",
         [](CorpusTest& test) {
             // make-corpus.sh has no full-range clip, so one is made here.
             std::filesystem::path clip = makeCached(
                 "full-range-yuvj420p.mp4", [](const std::filesystem::path& out) {
                     runChecked({"ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i",
                                 "testsrc2=size=640x360:rate=25", "-t", "1", "-c:v", "libx264",
                                 "-preset", "veryfast", "-pix_fmt", "yuvj420p", "-f", "mp4",
                                 out.string()});
                 });
             Json input = test.uploadInput(clip);
             Json task = test.runOn(input, "video", Json::object());
             ASSERT_TRUE(taskCompleted(task));
             ProbeResult probe = probeMedia(test.output(task));
             expectWebVideo(probe);
             ASSERT_NE(probe.stream("video"), nullptr);
             EXPECT_NE(probe.stream("video")->value("color_range", ""), "pc");
         }},
        {"B08_MoovAtEndIsReadAndOutputIsFaststart",
         [](CorpusTest& test) {
             Json input = test.uploadInput(corpusFile("v-moov-at-end.mp4"));
             EXPECT_NEAR(input.value("duration", 0.0), 3.0, 0.1) << input.dump();
             Json video = test.runOn(input, "video", {{"width", 640}});
             ASSERT_TRUE(taskCompleted(video));
             EXPECT_TRUE(isFaststart(test.output(video)));
             Json image = test.runOn(input, "image", {{"format", "jpeg"}, {"width", 320}});
             ASSERT_TRUE(taskCompleted(image));
         }},
        {"B09_TruncatedWithoutIndexFailsClearly",
         [](CorpusTest& test) {
             test.expectRejectedOrFailed(corpusFile("v-truncated-no-moov.mp4"), "video",
                                         Json::object(),
                                         {"invalid", "corrupt", "truncated", "moov",
                                          "unreadable", "unsupported"});
         }},
        {"B09_TruncatedFaststartFinishesWithoutHang",
         [](CorpusTest& test) {
             std::filesystem::path file = corpusFile("v-truncated-faststart.mp4");
             HttpResponse upload = test.session().upload(file, "corpus/truncated.mp4");
             if (upload.status != 201) {
                 EXPECT_GE(upload.status, 400) << upload.describe();
                 EXPECT_LT(upload.status, 500) << upload.describe();
                 EXPECT_FALSE(errorMessage(upload).empty());
                 return;
             }
             Json task = test.runOn(upload.json(), "video", {{"width", 320}});
             if (task["status"] == "completed") {
                 ProbeResult probe = probeMedia(test.output(task));
                 EXPECT_NE(probe.stream("video"), nullptr);
                 EXPECT_LT(probe.duration(), 3.1);
             } else {
                 EXPECT_TRUE(taskFailedWithError(task));
             }
             EXPECT_TRUE(isHealthy(test.server()));
         }},
        {"B10_NoAudioStillGivesVideo",
         [](CorpusTest& test) {
             Json input = test.uploadInput(corpusFile("v-no-audio.mp4"));
             Json task = test.runOn(input, "video", {{"format", "webm"}, {"width", 320}});
             ASSERT_TRUE(taskCompleted(task));
             ProbeResult probe = probeMedia(test.output(task));
             EXPECT_NE(probe.stream("video"), nullptr);
             EXPECT_EQ(probe.streamCount("audio"), 0);
         }},
        {"B10_AudioTaskOnSilentVideoFailsClearly",
         [](CorpusTest& test) {
             test.expectRejectedOrFailed(corpusFile("v-no-audio.mp4"), "audio", Json::object(),
                                         {"audio"});
         }},
        {"B12_TextSubtitlesDoNotBreakMp4",
         [](CorpusTest& test) {
             Json input = test.uploadInput(corpusFile("v-subtitles-srt-ass.mkv"));
             Json task = test.runOn(input, "video", {{"format", "mp4"}, {"width", 320}});
             ASSERT_TRUE(taskCompleted(task));
             ProbeResult probe = probeMedia(test.output(task));
             EXPECT_NE(probe.stream("video"), nullptr);
             EXPECT_NE(probe.stream("audio"), nullptr);
             for (const auto& stream : probe.raw["streams"]) {
                 if (stream.value("codec_type", "") == "subtitle") {
                     EXPECT_EQ(stream.value("codec_name", ""), "mov_text");
                 }
             }
         }},
        {"B33_MatroskaNamedMp4IsDetectedFromContent",
         [](CorpusTest& test) {
             Json input = test.uploadInput(corpusFile("v-matroska-content.mp4"));
             std::string type = input["type"];
             EXPECT_EQ(type.rfind("video/mp4", 0), std::string::npos) << type;
             EXPECT_TRUE(containsAny(type, {"matroska", "webm"})) << type;
             Json task = test.runOn(input, "video", {{"width", 320}});
             ASSERT_TRUE(taskCompleted(task));
         }},
        {"B34_UnicodeFileNameIsKept",
         [](CorpusTest& test) {
             const std::string name = "v-nonascii-vidéo 日本語 ünï 😀 it's.mp4";
             Json input = test.session().uploadFile(corpusFile(name), "unicode/" + name);
             EXPECT_EQ(input.value("filename", ""), name);
             EXPECT_EQ(fetchUrl(input["url"]).status, 200) << input["url"];
             Json task = test.runOn(input, "video", {{"width", 160}});
             ASSERT_TRUE(taskCompleted(task));
         }},
    };
}

// -------------------------------------------------------------- image checks

void expectExifUpright(CorpusTest& test, const std::filesystem::path& source) {
    ImageHeader raw = readImageHeader(source);
    Json input = test.uploadInput(source);
    Json task = test.runOn(input, "image", {{"format", "jpeg"}});
    ASSERT_TRUE(taskCompleted(task));
    std::filesystem::path output = test.output(task);
    ImageHeader header = readImageHeader(output);
    // Orientation 5-8 swap width and height.
    EXPECT_EQ(header.width, raw.height);
    EXPECT_EQ(header.height, raw.width);
    EXPECT_EQ(header.orientation, 1);
    std::filesystem::path reference = test.vipsReference(source, raw.height);
    RgbImage actual = decodeImageScaled(output, 60, 80);
    RgbImage expected = decodeImageScaled(reference, 60, 80);
    double diff = meanAbsoluteDifference(actual, expected);
    EXPECT_LT(diff, meanAbsoluteDifference(actual, expected.rotated180()));
    EXPECT_LT(diff, 15.0) << "output does not look like the upright picture";
}

void expectColoursLikeReference(CorpusTest& test, const std::filesystem::path& source,
                                double max_difference) {
    Json input = test.uploadInput(source);
    Json task = test.runOn(input, "image", {{"format", "jpeg"}, {"width", 320}});
    ASSERT_TRUE(taskCompleted(task));
    std::filesystem::path output = test.output(task);
    ImageHeader header = readImageHeader(output);
    EXPECT_EQ(header.interpretation, "srgb");
    EXPECT_EQ(header.bands, 3);
    EXPECT_EQ(header.format, "uchar");
    std::filesystem::path reference = test.vipsReference(source, 320);
    ImageHeader reference_header = readImageHeader(reference);
    RgbImage actual = decodeImageScaled(output, 64, 48);
    RgbImage expected = decodeImageScaled(reference, 64, 48);
    EXPECT_LT(meanAbsoluteDifference(actual, expected), max_difference)
        << "colours differ from an sRGB conversion of the source ("
        << reference_header.width << "x" << reference_header.height << ")";
}

void expectAnimatedHandled(CorpusTest& test, const std::string& name) {
    Json input = test.uploadInput(corpusFile(name));
    EXPECT_EQ(input["kind"], "image");
    if (input.contains("animated")) {
        EXPECT_EQ(input["animated"], true) << input.dump();
    }
    if (input.contains("frames") && !input["frames"].is_null()) {
        EXPECT_EQ(input["frames"], 4) << input.dump();
    }
    Json task = test.runOn(input, "image", {{"format", "webp"}, {"width", 80}});
    ASSERT_TRUE(taskCompleted(task));
    ImageHeader header = readImageHeader(test.output(task));
    EXPECT_EQ(header.width, 80);
    EXPECT_EQ(header.height, 60) << "height of one frame";
    EXPECT_EQ(header.pages, 4) << "an animated output keeps every frame";
}

void expectDecodedImage(CorpusTest& test, const std::filesystem::path& source,
                        const std::vector<std::string>& unsupported_words) {
    ImageHeader raw = readImageHeader(source);
    Json input = test.uploadInput(source);
    Json task = test.runOn(input, "image", {{"format", "jpeg"}});
    if (task["status"] == "failed") {
        EXPECT_TRUE(containsAny(task.value("error", ""), unsupported_words))
            << "a decoder gap must be reported clearly: " << task.dump();
        return;
    }
    ASSERT_TRUE(taskCompleted(task));
    ImageHeader header = readImageHeader(test.output(task));
    EXPECT_EQ(header.width, raw.width);
    EXPECT_EQ(header.height, raw.height);
    EXPECT_EQ(header.loader, "jpegload");
}

std::vector<std::string> pixelLimitWords() { return {"pixel", "limit", "too large"}; }

std::vector<std::string> corruptWords() {
    return {"truncated", "corrupt", "invalid", "premature", "unreadable", "damaged", "decode"};
}

std::vector<CorpusCase> imageCases() {
    return {
        {"B15_PngBombIsRejectedByPixelLimit",
         [](CorpusTest& test) {
             test.expectRejectedOrFailed(corpusFile("i-bomb-30000x30000-1bit.png"), "image",
                                         {{"format", "jpeg"}, {"width", 100}},
                                         pixelLimitWords());
         }},
        {"B15_PngBombHeaderOnlyIsRejected",
         [](CorpusTest& test) {
             std::vector<std::string> words = pixelLimitWords();
             auto corrupt = corruptWords();
             words.insert(words.end(), corrupt.begin(), corrupt.end());
             test.expectRejectedOrFailed(corpusFile("i-bomb-30000x30000-header-only.png"),
                                         "image", {{"format", "jpeg"}, {"width", 100}}, words);
         }},
        {"B15_RealPngBombIsRejectedByPixelLimit",
         [](CorpusTest& test) {
             test.expectRejectedOrFailed(corpusRealFile("png-bomb-65536x65536-1bit.png"),
                                         "image", {{"format", "jpeg"}, {"width", 100}},
                                         pixelLimitWords());
         }},
        {"B16_HugeJpegHitsDefaultLimit",
         [](CorpusTest& test) {
             std::string message = test.rejectionMessage(makeHugeJpeg(), "image",
                                                         {{"format", "webp"}, {"width", 800}});
             // The message names the limit (100 MP) and the value (20000x14000).
             EXPECT_TRUE(containsText(message, "pixel")) << message;
             EXPECT_TRUE(containsText(message, "100")) << message;
             EXPECT_TRUE(containsAny(message, {"20000", "280"})) << message;
         }},
        {"B16_HugeJpegWorksWithRaisedLimit",
         [](CorpusTest& test) {
             ServerOptions options;
             options.environment["BITMILL_MAX_IMAGE_PIXELS"] = "300000000";
             ApiSession session(test.startServer(options));
             Json input = session.uploadFile(makeHugeJpeg());
             EXPECT_EQ(input.value("width", 0), 20000);
             EXPECT_EQ(input.value("height", 0), 14000);
             Json task = session.runTask({{"kind", "image"},
                                          {"file_id", input["id"]},
                                          {"format", "webp"},
                                          {"width", 800}},
                                         std::chrono::seconds(240));
             ASSERT_TRUE(taskCompleted(task));
             std::filesystem::path output = test.scratchDir() / "huge.webp";
             session.download(task["output"]["url"], output);
             ImageHeader header = readImageHeader(output);
             EXPECT_EQ(header.width, 800);
             EXPECT_EQ(header.height, 560);
             // The gradient runs from black on the left to white on the right.
             EXPECT_LT(imagePixel(output, 20, 280)[0], imagePixel(output, 780, 280)[0]);
         }},
        {"B17_CmykJpegBecomesSrgb",
         [](CorpusTest& test) {
             expectColoursLikeReference(test, corpusFile("i-cmyk-adobe.jpg"), 25.0);
         }},
        {"B17_RealCmykJpegBecomesSrgb",
         [](CorpusTest& test) {
             expectColoursLikeReference(test, corpusRealFile("jpeg-cmyk-adobe-no-icc.jpg"),
                                        25.0);
         }},
        {"B19_ExifOrientationSixIsUpright",
         [](CorpusTest& test) { expectExifUpright(test, corpusFile("i-exif-orientation-6.jpg")); }},
        {"B19_RealExifOrientationSixIsUpright",
         [](CorpusTest& test) {
             expectExifUpright(test, corpusRealFile("jpeg-exif-orientation-6.jpg"));
         }},
        {"B20_AnimatedGifIsHandled",
         [](CorpusTest& test) { expectAnimatedHandled(test, "i-animated.gif"); }},
        {"B20_AnimatedWebpIsHandled",
         [](CorpusTest& test) { expectAnimatedHandled(test, "i-animated.webp"); }},
        {"B21_HeicIsDecoded",
         [](CorpusTest& test) {
             expectDecodedImage(test, corpusFile("i-heic-x265.heic"), {"heic", "unsupported"});
         }},
        {"B21_RealIphoneHeicIsDecoded",
         [](CorpusTest& test) {
             expectDecodedImage(test, corpusRealFile("heic-iphone7-photo-gps-stripped.heic"),
                                {"heic", "unsupported"});
         }},
        {"B22_AvifIsDecoded",
         [](CorpusTest& test) {
             expectDecodedImage(test, corpusFile("i-avif-8bit.avif"), {"avif", "unsupported"});
         }},
        {"B23_SixteenBitRgbPngKeepsColours",
         [](CorpusTest& test) {
             expectColoursLikeReference(test, corpusFile("i-16bit-rgb.png"), 8.0);
         }},
        {"B23_RealSixteenBitPngKeepsColours",
         [](CorpusTest& test) {
             expectColoursLikeReference(test, corpusRealFile("png-16bit-rgb.png"), 8.0);
         }},
        {"B23_SixteenBitGreyAlphaKeepsAlpha",
         [](CorpusTest& test) {
             Json input = test.uploadInput(corpusFile("i-16bit-grey-alpha.png"));
             Json task = test.runOn(input, "image", {{"format", "png"}});
             ASSERT_TRUE(taskCompleted(task));
             std::filesystem::path output = test.output(task);
             ImageHeader header = readImageHeader(output);
             EXPECT_EQ(header.format, "uchar");
             EXPECT_EQ(header.width, 320);
             EXPECT_EQ(header.height, 240);
             ASSERT_TRUE(header.bands == 2 || header.bands == 4) << "alpha lost";
             // A radial alpha: opaque in the middle, transparent in the corners.
             EXPECT_GT(imagePixel(output, 160, 120).back(), 200);
             EXPECT_LT(imagePixel(output, 1, 1).back(), 60);
         }},
        {"B24_TransparentPngToJpegIsWhite",
         [](CorpusTest& test) {
             Json input = test.uploadInput(corpusFile("i-alpha-transparent.png"));
             Json task = test.runOn(input, "image", {{"format", "jpeg"}});
             ASSERT_TRUE(taskCompleted(task));
             std::vector<double> corner = imagePixel(test.output(task), 310, 5);
             ASSERT_GE(corner.size(), 3u);
             EXPECT_GT(corner[0], 240);
             EXPECT_GT(corner[1], 240);
             EXPECT_GT(corner[2], 240);
         }},
        {"B25_TruncatedJpegFailsClearly",
         [](CorpusTest& test) {
             test.expectRejectedOrFailed(corpusFile("i-truncated.jpg"), "image",
                                         {{"format", "webp"}}, corruptWords());
         }},
        {"B25_TruncatedPngFailsClearly",
         [](CorpusTest& test) {
             test.expectRejectedOrFailed(corpusFile("i-truncated.png"), "image",
                                         {{"format", "webp"}}, corruptWords());
         }},
        {"B25_RealTruncatedJpegFailsClearly",
         [](CorpusTest& test) {
             test.expectRejectedOrFailed(corpusRealFile("jpeg-truncated-at-10000-bytes.jpg"),
                                         "image", {{"format", "webp"}}, corruptWords());
         }},
        {"B25_RealTruncatedPngFailsClearly",
         [](CorpusTest& test) {
             test.expectRejectedOrFailed(corpusRealFile("png-truncated-at-10000-bytes.png"),
                                         "image", {{"format", "webp"}}, corruptWords());
         }},
        {"B25_RealCorruptHeaderJpegFailsClearly",
         [](CorpusTest& test) {
             std::vector<std::string> words = corruptWords();
             words.push_back("unsupported");
             test.expectRejectedOrFailed(corpusRealFile("jpeg-corrupt-header.jpg"), "image",
                                         {{"format", "webp"}}, words);
         }},
        {"B26_SvgWithExternalRefsIsSafe",
         [](CorpusTest& test) {
             std::filesystem::path svg = corpusFile("i-svg-external-refs.svg");
             HttpResponse upload = test.session().upload(svg, "corpus/external.svg");
             if (upload.status != 201) {
                 EXPECT_GE(upload.status, 400) << "SVG may be rejected: " << upload.describe();
                 EXPECT_LT(upload.status, 500) << upload.describe();
                 return;
             }
             Json task = test.runOn(upload.json(), "image", {{"format", "png"}});
             if (task["status"] == "completed") {
                 ImageHeader header = readImageHeader(test.output(task));
                 EXPECT_EQ(header.width, 320);
                 EXPECT_EQ(header.height, 240);
             } else {
                 EXPECT_TRUE(taskFailedWithError(task));
             }
             EXPECT_TRUE(isHealthy(test.server()));
         }},
        {"B26_SvgEntityIsNotExpanded",
         [](CorpusTest& test) {
             std::filesystem::path svg = corpusFile("i-svg-xxe-entity.svg");
             HttpResponse upload = test.session().upload(svg, "corpus/entity.svg");
             // The entity points at /etc/hostname; its contents must not
             // leak, not even through an error message.
             std::string hostname = readFileBytes("/etc/hostname");
             hostname = hostname.substr(0, hostname.find('\n'));
             if (upload.status != 201) {
                 EXPECT_GE(upload.status, 400) << upload.describe();
                 EXPECT_LT(upload.status, 500) << upload.describe();
                 if (hostname.size() >= 4) {
                     EXPECT_FALSE(containsText(upload.body, hostname)) << upload.describe();
                 }
                 return;
             }
             Json task = test.runOn(upload.json(), "image", {{"format", "png"}});
             EXPECT_TRUE(isTerminalStatus(task["status"]));
             if (hostname.size() >= 4) {
                 EXPECT_FALSE(containsText(task.dump(), hostname)) << task.dump();
             }
             // NOTE: the rendered pixels are not checked for the host name;
             // only a crash, hang or leak through the error text would fail.
             EXPECT_TRUE(isHealthy(test.server()));
         }},
        {"B27_ZeroByteFilesAreRejectedAtUpload",
         [](CorpusTest& test) {
             for (const char* name : {"v-zero-bytes.mp4", "i-zero-bytes.jpg"}) {
                 HttpResponse upload =
                     test.session().upload(corpusFile(name), std::string("corpus/") + name);
                 EXPECT_TRUE(upload.status == 400 || upload.status == 422) << upload.describe();
                 EXPECT_FALSE(errorMessage(upload).empty()) << upload.describe();
             }
         }},
        {"B33_JpegNamedHeicIsDetectedFromContent",
         [](CorpusTest& test) {
             Json input = test.uploadInput(corpusFile("i-jpeg-content.heic"));
             EXPECT_EQ(input["type"].get<std::string>().rfind("image/jpeg", 0), 0u)
                 << input.dump();
             HttpResponse delivered = fetchUrl(input["url"]);
             EXPECT_EQ(delivered.header("Content-Type").rfind("image/jpeg", 0), 0u)
                 << delivered.header("Content-Type");
             Json task = test.runOn(input, "image", {{"format", "webp"}, {"width", 320}});
             ASSERT_TRUE(taskCompleted(task));
             EXPECT_EQ(readImageHeader(test.output(task)).width, 320);
         }},
        {"B33_PngNamedJpgIsDetectedFromContent",
         [](CorpusTest& test) {
             Json input = test.uploadInput(corpusFile("i-png-content.jpg"));
             EXPECT_EQ(input["type"].get<std::string>().rfind("image/png", 0), 0u)
                 << input.dump();
             Json task = test.runOn(input, "image", {{"width", 320}});
             ASSERT_TRUE(taskCompleted(task));
         }},
    };
}

// -------------------------------------------------------------- audio checks

void expectAudioTranscode(CorpusTest& test, const std::string& name) {
    std::filesystem::path source = corpusFile(name);
    double source_duration = probeMedia(source).duration();
    Json input = test.uploadInput(source);
    EXPECT_EQ(input["kind"], "audio") << input.dump();
    Json task = test.runOn(input, "audio", {{"format", "mp3"}});
    ASSERT_TRUE(taskCompleted(task));
    ProbeResult probe = probeMedia(test.output(task));
    ASSERT_NE(probe.stream("audio"), nullptr);
    EXPECT_EQ(probe.stream("audio")->value("codec_name", ""), "mp3");
    EXPECT_NEAR(probe.duration(), source_duration, 0.15);

    Json mono = test.runOn(input, "audio", {{"format", "wav"}, {"sample_rate", 16000},
                                            {"channels", 1}});
    ASSERT_TRUE(taskCompleted(mono));
    ProbeResult mono_probe = probeMedia(test.output(mono));
    ASSERT_NE(mono_probe.stream("audio"), nullptr);
    EXPECT_EQ(mono_probe.stream("audio")->value("sample_rate", ""), "16000");
    EXPECT_EQ(mono_probe.stream("audio")->value("channels", 0), 1);
}

std::vector<CorpusCase> audioCases() {
    return {
        {"B29_Speech22050HzTranscodes",
         [](CorpusTest& test) { expectAudioTranscode(test, "a-speech-22050hz-mono.wav"); }},
        {"B29_Speech16kHzTranscodes",
         [](CorpusTest& test) { expectAudioTranscode(test, "a-speech-16k-mono.wav"); }},
        {"B32_OggOpusVoiceTranscodes",
         [](CorpusTest& test) { expectAudioTranscode(test, "a-speech-opus.ogg"); }},
        {"B31_AudioOnlyM4aIsAudio",
         [](CorpusTest& test) { expectAudioTranscode(test, "a-audio-only.m4a"); }},
        {"B31_VideoTaskOnAudioOnlyFailsClearly",
         [](CorpusTest& test) {
             test.expectRejectedOrFailed(corpusFile("a-audio-only.m4a"), "video",
                                         Json::object(), {"video"});
         }},
        {"B31_ImageTaskOnAudioOnlyDoesNotCrash",
         [](CorpusTest& test) {
             Json input = test.uploadInput(corpusFile("a-audio-only.m4a"));
             HttpResponse created = test.session().api().post(
                 "/tasks", {{"kind", "image"}, {"file_id", input["id"]}, {"format", "png"}});
             if (created.status == 400) {
                 EXPECT_TRUE(containsText(errorMessage(created), "video") ||
                             containsText(errorMessage(created), "audio"))
                     << created.describe();
                 return;
             }
             ASSERT_EQ(created.status, 201) << created.describe();
             Json task = test.session().waitForTask(created.json()["id"]);
             // A waveform or placeholder image, or a failure that explains why.
             if (task["status"] == "failed") {
                 EXPECT_TRUE(containsAny(task.value("error", ""), {"video", "audio"}))
                     << task.dump();
             } else {
                 ASSERT_TRUE(taskCompleted(task));
                 EXPECT_EQ(readImageHeader(test.output(task)).loader, "pngload");
             }
             EXPECT_TRUE(isHealthy(test.server()));
         }},
    };
}

std::vector<CorpusCase> allCases() {
    std::vector<CorpusCase> cases = videoCases();
    for (auto group : {imageCases(), audioCases()}) {
        cases.insert(cases.end(), group.begin(), group.end());
    }
    return cases;
}

INSTANTIATE_TEST_SUITE_P(Corpus, CorpusTest, ::testing::ValuesIn(allCases()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace bitmill::e2e
