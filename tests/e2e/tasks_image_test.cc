// Image tasks: frame grabs from video, format conversion and resizing,
// quality, alpha flattening for JPEG, and EXIF orientation.
#include "e2e_test.h"

namespace bitmill::e2e {
namespace {

class TasksImageTest : public E2eTest {
protected:
    Json runImage(const Json& input_file, Json options) {
        options["kind"] = "image";
        options["file_id"] = input_file["id"];
        return api().runTask(options);
    }
};

TEST_F(TasksImageTest, FrameGrabFromVideoAtStart) {
    VideoSpec spec;
    spec.width = 640;
    spec.height = 360;
    spec.seconds = 3;
    std::filesystem::path clip = makeVideo(spec);
    Json input = api().uploadFile(clip);
    Json task = runImage(input, {{"format", "png"}, {"start", 1.0}});
    ASSERT_TRUE(taskCompleted(task));
    EXPECT_EQ(task["output"]["kind"], "image");
    EXPECT_EQ(task["output"]["type"].get<std::string>().rfind("image/png", 0), 0u);
    EXPECT_EQ(task["output"]["media_id"], input["media_id"]);

    std::filesystem::path output = downloadOutput(task);
    ImageHeader header = readImageHeader(output);
    EXPECT_EQ(header.loader, "pngload");
    EXPECT_EQ(header.width, 640);
    EXPECT_EQ(header.height, 360);

    // testsrc2 moves over time, so the grab must look like the frame at 1 s
    // rather than the first frame.
    RgbImage grabbed = decodeFrame(output, 0, 160, 90);
    double diff_at_one = meanAbsoluteDifference(grabbed, decodeFrame(clip, 1.0, 160, 90));
    double diff_at_zero = meanAbsoluteDifference(grabbed, decodeFrame(clip, 0.0, 160, 90));
    EXPECT_LT(diff_at_one, 12.0);
    EXPECT_LT(diff_at_one, diff_at_zero) << "the grab is not the frame at start=1.0";
}

TEST_F(TasksImageTest, JpegToWebp800Wide) {
    ImageSpec spec;
    spec.width = 1600;
    spec.height = 1200;
    std::filesystem::path source = makeImage(spec);
    Json task = runImage(api().uploadFile(source), {{"format", "webp"}, {"width", 800}});
    ASSERT_TRUE(taskCompleted(task));
    EXPECT_EQ(task["output"].value("width", 0), 800);
    EXPECT_EQ(task["output"].value("height", 0), 600);
    EXPECT_EQ(task["output"]["type"].get<std::string>().rfind("image/webp", 0), 0u);
    std::filesystem::path output = downloadOutput(task);
    ImageHeader header = readImageHeader(output);
    EXPECT_EQ(header.loader, "webpload");
    EXPECT_EQ(header.width, 800);
    EXPECT_EQ(header.height, 600);
    double diff = meanAbsoluteDifference(decodeImageScaled(output, 200, 150),
                                         decodeImageScaled(source, 200, 150));
    EXPECT_LT(diff, 10.0) << "the picture content changed";
}

TEST_F(TasksImageTest, DefaultFormatKeepsWebFriendlyInput) {
    ImageSpec spec;
    spec.format = "png";
    Json task = runImage(api().uploadFile(makeImage(spec)), {{"width", 320}});
    ASSERT_TRUE(taskCompleted(task));
    EXPECT_EQ(readImageHeader(downloadOutput(task)).loader, "pngload");
}

TEST_F(TasksImageTest, LowerQualityMakesSmallerFile) {
    ImageSpec spec;
    spec.width = 1600;
    spec.height = 1200;
    Json input = api().uploadFile(makeImage(spec));
    Json low = runImage(input, {{"format", "jpeg"}, {"quality", 20}});
    Json high = runImage(input, {{"format", "jpeg"}, {"quality", 95}});
    Json named = runImage(input, {{"format", "jpeg"}, {"quality", "very_low"}});
    ASSERT_TRUE(taskCompleted(low));
    ASSERT_TRUE(taskCompleted(high));
    ASSERT_TRUE(taskCompleted(named));
    int64_t low_size = low["output"]["filesize"];
    int64_t high_size = high["output"]["filesize"];
    int64_t named_size = named["output"]["filesize"];
    EXPECT_LT(low_size * 2, high_size) << "quality 20 vs 95";
    EXPECT_LT(named_size, high_size) << "very_low vs 95";
}

TEST_F(TasksImageTest, TransparentPngToJpegHasWhiteBackground) {
    Json task = runImage(api().uploadFile(corpusFile("i-alpha-transparent.png")),
                         {{"format", "jpeg"}});
    ASSERT_TRUE(taskCompleted(task));
    std::filesystem::path output = downloadOutput(task);
    ImageHeader header = readImageHeader(output);
    EXPECT_EQ(header.loader, "jpegload");
    EXPECT_EQ(header.width, 320);
    EXPECT_EQ(header.height, 240);
    std::vector<double> corner = imagePixel(output, 300, 230);
    ASSERT_GE(corner.size(), 3u);
    for (int band = 0; band < 3; ++band) {
        EXPECT_GT(corner[band], 240) << "transparent corner is not white: "
                                     << ::testing::PrintToString(corner);
    }
    // The opaque black square stays black.
    std::vector<double> square = imagePixel(output, 50, 50);
    EXPECT_LT(square[0], 40) << ::testing::PrintToString(square);
}

TEST_F(TasksImageTest, PngOutputKeepsTransparency) {
    Json task = runImage(api().uploadFile(corpusFile("i-alpha-transparent.png")),
                         {{"format", "webp"}, {"width", 160}});
    ASSERT_TRUE(taskCompleted(task));
    EXPECT_EQ(task["output"].value("transparency", false), true) << task["output"].dump();
    std::filesystem::path output = downloadOutput(task);
    ImageHeader header = readImageHeader(output);
    EXPECT_EQ(header.bands, 4);
    std::vector<double> corner = imagePixel(output, 2, 2);
    ASSERT_EQ(corner.size(), 4u);
    EXPECT_LT(corner[3], 10) << "corner alpha " << corner[3];
}

TEST_F(TasksImageTest, ExifOrientationIsAppliedToPixels) {
    Json input = api().uploadFile(corpusFile("i-exif-orientation-6.jpg"));
    EXPECT_EQ(input.value("width", 0), 300) << "measured size is the upright size";
    EXPECT_EQ(input.value("height", 0), 400) << input.dump();
    EXPECT_EQ(input.value("orientation", ""), "portrait");
    Json task = runImage(input, {{"format", "jpeg"}});
    ASSERT_TRUE(taskCompleted(task));
    std::filesystem::path output = downloadOutput(task);
    ImageHeader header = readImageHeader(output);
    EXPECT_EQ(header.width, 300);
    EXPECT_EQ(header.height, 400);
    EXPECT_EQ(header.orientation, 1) << "orientation tag must be cleared";
    // Upright: the navy triangle is near the top, the bottom is white.
    std::vector<double> triangle = imagePixel(output, 150, 110);
    std::vector<double> bottom = imagePixel(output, 150, 385);
    EXPECT_LT(triangle[0], 90) << "no triangle at the top: " << ::testing::PrintToString(triangle);
    EXPECT_GT(triangle[2], 60) << ::testing::PrintToString(triangle);
    EXPECT_GT(bottom[0], 220) << "bottom is not white: " << ::testing::PrintToString(bottom);
}

TEST_F(TasksImageTest, FitCoverGivesExactBox) {
    ImageSpec spec;
    Json input = api().uploadFile(makeImage(spec));
    Json task = runImage(input, {{"width", 200}, {"height", 200}, {"fit", "cover"},
                                 {"format", "png"}});
    ASSERT_TRUE(taskCompleted(task));
    ImageHeader header = readImageHeader(downloadOutput(task));
    EXPECT_EQ(header.width, 200);
    EXPECT_EQ(header.height, 200);
}

TEST_F(TasksImageTest, AvifOutputIsDecodable) {
    ImageSpec spec;
    Json task = runImage(api().uploadFile(makeImage(spec)), {{"format", "avif"}, {"width", 320}});
    ASSERT_TRUE(taskCompleted(task));
    EXPECT_EQ(task["output"]["type"].get<std::string>().rfind("image/avif", 0), 0u);
    ImageHeader header = readImageHeader(downloadOutput(task));
    EXPECT_EQ(header.loader, "heifload");
    EXPECT_EQ(header.width, 320);
    EXPECT_EQ(header.height, 240);
}

}  // namespace
}  // namespace bitmill::e2e
