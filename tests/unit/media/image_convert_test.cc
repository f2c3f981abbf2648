// Checks media::convertImage: geometry, formats, orientation, colour
// handling, animation, and the hard inputs (bombs, huge, truncated, SVG
// with external references, wrong extension) from the media corpus.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <vips/vips8>
// After vips8: vector.h uses libvips' types without including them.
#include <vips/vector.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/crypto.h"
#include "image_test_support.h"
#include "media/media.h"
#include "media/vips/vips_util.h"

namespace bitmill::media {
namespace {

namespace fs = std::filesystem;
using testing::corpusFile;
using testing::expectColourNear;
using testing::pixelAt;
using testing::realFile;
using testing::VImage;

class ImageConvertTest : public testing::ImageTest {
  protected:
    // Converts `input` with `options` into a file of the temp folder and
    // opens the result; fails the test when the conversion fails.
    VImage convert(const std::string& input, const ImageOptions& options,
                   const Limits& limits = Limits{}) {
        const std::string output = temp_.file("out-" + std::to_string(++outputs_));
        Status status = convertImage(input, output, options, limits);
        EXPECT_TRUE(status.ok()) << status.error().toLogString();
        if (!status.ok()) {
            return VImage();
        }
        return VImage::new_from_file(output.c_str());
    }

    std::string writeJpeg(const VImage& image, const std::string& name) {
        const std::string path = temp_.file(name);
        image.jpegsave(path.c_str(), VImage::option()->set("Q", 95));
        return path;
    }

    std::string writePng(const VImage& image, const std::string& name) {
        const std::string path = temp_.file(name);
        image.pngsave(path.c_str());
        return path;
    }

    int outputs_ = 0;
};

std::string loaderOf(const VImage& image) {
    return image.get_string("vips-loader");
}

ImageOptions sized(std::optional<int> width, std::optional<int> height, std::string fit = "fill",
                   std::string position = "center") {
    ImageOptions options;
    if (width) {
        options.geometry.width = Dimension{*width, false};
    }
    if (height) {
        options.geometry.height = Dimension{*height, false};
    }
    options.geometry.fit = std::move(fit);
    options.geometry.position = std::move(position);
    return options;
}

// A 400x300 picture: left half red, right half blue.
VImage redBlue() {
    return testing::withRect(testing::solid(400, 300, {255, 0, 0}), 200, 0, 200, 300, {0, 0, 255});
}

TEST_F(ImageConvertTest, WidthOnlyKeepsAspectRatio) {
    const std::string input = writeJpeg(redBlue(), "in.jpg");
    ImageOptions options = sized(200, std::nullopt);
    options.format = "webp";
    VImage out = convert(input, options);
    ASSERT_EQ(out.width(), 200);
    EXPECT_EQ(out.height(), 150);
    EXPECT_EQ(loaderOf(out), "webpload");
    expectColourNear(pixelAt(out, 20, 75), {255, 0, 0}, 30, "left");
    expectColourNear(pixelAt(out, 180, 75), {0, 0, 255}, 30, "right");
}

TEST_F(ImageConvertTest, HeightOnlyAndPercentKeepAspectRatio) {
    const std::string input = writePng(redBlue(), "in.png");
    VImage by_height = convert(input, sized(std::nullopt, 60));
    EXPECT_EQ(by_height.width(), 80);
    EXPECT_EQ(by_height.height(), 60);

    ImageOptions percent;
    percent.geometry.width = Dimension{50, true};
    VImage half = convert(input, percent);
    EXPECT_EQ(half.width(), 200);
    EXPECT_EQ(half.height(), 150);

    ImageOptions upscale;
    upscale.geometry.height = Dimension{200, true};
    VImage twice = convert(input, upscale);
    EXPECT_EQ(twice.width(), 800);
    EXPECT_EQ(twice.height(), 600);
}

TEST_F(ImageConvertTest, NoGeometryKeepsSize) {
    const std::string input = writePng(redBlue(), "in.png");
    VImage out = convert(input, ImageOptions{});
    EXPECT_EQ(out.width(), 400);
    EXPECT_EQ(out.height(), 300);
    EXPECT_EQ(loaderOf(out), "jpegload");
}

TEST_F(ImageConvertTest, FillStretches) {
    const std::string input = writePng(redBlue(), "in.png");
    VImage out = convert(input, sized(100, 200, "fill"));
    EXPECT_EQ(out.width(), 100);
    EXPECT_EQ(out.height(), 200);
    expectColourNear(pixelAt(out, 10, 100), {255, 0, 0}, 30, "left");
    expectColourNear(pixelAt(out, 90, 100), {0, 0, 255}, 30, "right");
}

TEST_F(ImageConvertTest, CoverCropsAtPosition) {
    // The 400x300 input scales to 200x150, red in columns 0..99 and blue in
    // 100..199; the 150x150 crop moves the red-blue edge by what it cuts.
    const std::string input = writePng(redBlue(), "in.png");
    struct Case {
        const char* position;
        int first_blue_column;
    };
    for (const Case& c : {Case{"left", 100}, Case{"top_left", 100}, Case{"center", 75},
                          Case{"right", 50}, Case{"bottom_right", 50}}) {
        ImageOptions options = sized(150, 150, "cover", c.position);
        options.format = "png";
        VImage out = convert(input, options);
        ASSERT_EQ(out.width(), 150) << c.position;
        ASSERT_EQ(out.height(), 150) << c.position;
        expectColourNear(pixelAt(out, c.first_blue_column - 3, 75), {255, 0, 0}, 1, c.position);
        expectColourNear(pixelAt(out, c.first_blue_column + 2, 75), {0, 0, 255}, 1, c.position);
    }

    for (const char* smart : {"attention", "entropy"}) {
        ImageOptions options = sized(150, 150, "cover", smart);
        VImage out = convert(input, options);
        EXPECT_EQ(out.width(), 150) << smart;
        EXPECT_EQ(out.height(), 150) << smart;
    }
}

TEST_F(ImageConvertTest, ContainPadsWithBackground) {
    const std::string input = writePng(redBlue(), "in.png");

    // PNG keeps transparency, so the padding is transparent by default.
    ImageOptions png = sized(200, 200, "contain");
    png.format = "png";
    VImage transparent = convert(input, png);
    ASSERT_EQ(transparent.width(), 200);
    ASSERT_EQ(transparent.height(), 200);
    ASSERT_EQ(transparent.bands(), 4);
    EXPECT_EQ(pixelAt(transparent, 100, 10)[3], 0);
    EXPECT_EQ(pixelAt(transparent, 100, 100)[3], 255);

    // JPEG pads with white unless asked otherwise.
    VImage white = convert(input, sized(200, 200, "contain"));
    expectColourNear(pixelAt(white, 100, 5), {255, 255, 255}, 3, "jpeg padding");

    ImageOptions green = sized(200, 200, "contain", "top");
    green.background = "#00FF00";
    green.format = "png";
    VImage top = convert(input, green);
    ASSERT_EQ(top.height(), 200);
    expectColourNear(pixelAt(top, 100, 195), {0, 255, 0}, 1, "bottom padding");
    expectColourNear(pixelAt(top, 10, 5), {255, 0, 0}, 1, "picture at the top");
}

TEST_F(ImageConvertTest, OutputFormatComesFromOptionNotExtension) {
    const std::string input = writePng(redBlue(), "in.png");
    struct Case {
        const char* format;
        const char* loader;
    };
    for (const Case& c :
         {Case{"jpeg", "jpegload"}, Case{"png", "pngload"}, Case{"webp", "webpload"},
          Case{"avif", "heifload"}, Case{"gif", "gifload"}}) {
        const std::string output = temp_.file(std::string("out-") + c.format + ".png.bin");
        ImageOptions options = sized(100, std::nullopt);
        options.format = c.format;
        options.quality = 70;
        Status status = convertImage(input, output, options, Limits{});
        ASSERT_TRUE(status.ok()) << c.format << ": " << status.error().toLogString();
        VImage out = VImage::new_from_file(output.c_str());
        EXPECT_EQ(loaderOf(out), c.loader) << c.format;
        EXPECT_EQ(out.width(), 100) << c.format;
        EXPECT_EQ(out.height(), 75) << c.format;
        expectColourNear(pixelAt(out, 10, 37), {255, 0, 0}, 40, c.format);
        expectColourNear(pixelAt(out, 90, 37), {0, 0, 255}, 40, c.format);
        if (std::string(c.format) == "avif") {
            EXPECT_EQ(out.get_string("heif-compression"), std::string("av1"));
        }
    }
}

TEST_F(ImageConvertTest, MetadataIsStrippedInEveryFormat) {
    const std::string input = writeJpeg(redBlue(), "tagged.jpg");
    const std::string command =
        "exiftool -q -overwrite_original -GPSLatitude=48.85 "
        "-GPSLatitudeRef=N -Artist='Secret Person' '" +
        input + "' >/dev/null 2>&1";
    if (std::system(command.c_str()) != 0) {
        GTEST_SKIP() << "exiftool is needed to tag the input";
    }
    ASSERT_NE(VImage::new_from_file(input.c_str()).get_typeof("exif-ifd3-GPSLatitude"), 0u);

    for (const char* format : {"jpeg", "png", "webp", "avif", "gif"}) {
        ImageOptions options = sized(100, std::nullopt);
        options.format = format;
        VImage out = convert(input, options);
        EXPECT_EQ(out.get_typeof("exif-ifd3-GPSLatitude"), 0u) << format;
        EXPECT_EQ(out.get_typeof("exif-ifd0-Artist"), 0u) << format;
        EXPECT_EQ(out.get_typeof(VIPS_META_XMP_NAME), 0u) << format;
    }
}

TEST_F(ImageConvertTest, ExifOrientationSixComesOutUpright) {
    // Upright 300x400 picture with a red top-left corner, stored turned
    // 90 degrees anticlockwise with orientation 6 ("rotate 90 clockwise").
    VImage upright =
        testing::withRect(testing::solid(300, 400, {255, 255, 255}), 0, 0, 60, 60, {255, 0, 0});
    VImage stored = upright.rot(VIPS_ANGLE_D270).copy();
    stored.set(VIPS_META_ORIENTATION, 6);
    const std::string input = writeJpeg(stored, "orientation6.jpg");
    ASSERT_EQ(VImage::new_from_file(input.c_str()).width(), 400);

    VImage out = convert(input, ImageOptions{});
    ASSERT_EQ(out.width(), 300);
    ASSERT_EQ(out.height(), 400);
    expectColourNear(pixelAt(out, 10, 10), {255, 0, 0}, 30, "top-left");
    expectColourNear(pixelAt(out, 290, 10), {255, 255, 255}, 30, "top-right");
    expectColourNear(pixelAt(out, 10, 390), {255, 255, 255}, 30, "bottom-left");
    EXPECT_EQ(out.get_typeof(VIPS_META_ORIENTATION), 0u) << "orientation tag kept";

    VImage real = convert(realFile("jpeg-exif-orientation-6.jpg"), sized(300, std::nullopt));
    EXPECT_EQ(real.width(), 300);
    EXPECT_EQ(real.height(), 225);
    EXPECT_EQ(real.get_typeof(VIPS_META_ORIENTATION), 0u) << "orientation tag kept";
}

TEST_F(ImageConvertTest, CmykWithoutProfileBecomesPlausibleSrgb) {
    std::vector<std::string> inputs = {realFile("jpeg-cmyk-adobe-no-icc.jpg")};
    if (const std::string path = corpusFile("i-cmyk-adobe.jpg"); !path.empty()) {
        inputs.push_back(path);
    }
    for (const std::string& input : inputs) {
        VImage out = convert(input, ImageOptions{});
        EXPECT_EQ(out.bands(), 3) << input;
        EXPECT_EQ(out.interpretation(), VIPS_INTERPRETATION_sRGB) << input;
        // Not black, not blown out: the mean of a photo stays in mid range.
        EXPECT_GT(out.avg(), 60) << input;
        EXPECT_LT(out.avg(), 200) << input;
    }
    // In the real photo the lawn on the left is green and the child's coat red.
    VImage photo = convert(inputs[0], ImageOptions{});
    ASSERT_EQ(photo.width(), 500);
    const VImage lawn = photo.extract_area(20, 230, 40, 30);
    const std::vector<double> grass = {lawn[0].avg(), lawn[1].avg(), lawn[2].avg()};
    EXPECT_GT(grass[1], grass[0]);
    EXPECT_GT(grass[1], grass[2]);
}

TEST_F(ImageConvertTest, EmbeddedProfileIsConvertedToSrgb) {
    // sRGB red stored in Display P3 numbers (about 234, 51, 35) with the P3
    // profile embedded; read without the profile it would look dull.
    VImage red = testing::solid(64, 64, {255, 0, 0});
    VImage p3 = red.icc_export(VImage::option()->set("output_profile", "p3"));
    const std::string input = writePng(p3, "p3.png");
    ASSERT_NE(VImage::new_from_file(input.c_str()).get_typeof(VIPS_META_ICC_NAME), 0u);
    const std::vector<double> stored = pixelAt(VImage::new_from_file(input.c_str()), 5, 5);
    ASSERT_LT(stored[0], 240);

    for (const char* format : {"jpeg", "png", "webp"}) {
        ImageOptions options;
        options.format = format;
        VImage out = convert(input, options);
        expectColourNear(pixelAt(out, 5, 5), {255, 0, 0}, 12, format);
        EXPECT_EQ(out.get_typeof(VIPS_META_ICC_NAME), 0u) << format;
    }
}

TEST_F(ImageConvertTest, SixteenBitPngKeepsColours) {
    // Flag of the Netherlands: red #ae1c28, white, blue #21468b stripes.
    VImage flag = convert(realFile("png-16bit-rgb.png"), sized(300, std::nullopt, "fill"));
    ASSERT_EQ(flag.width(), 300);
    ASSERT_EQ(flag.height(), 200);
    EXPECT_EQ(flag.format(), VIPS_FORMAT_UCHAR);
    expectColourNear(pixelAt(flag, 150, 30), {0xae, 0x1c, 0x28}, 6, "red stripe");
    expectColourNear(pixelAt(flag, 150, 100), {255, 255, 255}, 6, "white stripe");
    expectColourNear(pixelAt(flag, 150, 170), {0x21, 0x46, 0x8b}, 6, "blue stripe");

    // A generated 16-bit picture with known values: 8-bit values times 257.
    VImage eight_bit =
        testing::withRect(testing::solid(200, 100, {255, 0, 0}), 100, 0, 100, 100, {0, 128, 255});
    VImage wide = (eight_bit * 257)
                      .cast(VIPS_FORMAT_USHORT)
                      .copy(VImage::option()->set("interpretation", VIPS_INTERPRETATION_RGB16));
    const std::string input = writePng(wide, "rgb16.png");
    ASSERT_EQ(VImage::new_from_file(input.c_str()).format(), VIPS_FORMAT_USHORT);
    ImageOptions png;
    png.format = "png";
    VImage out = convert(input, png);
    expectColourNear(pixelAt(out, 50, 50), {255, 0, 0}, 2, "16-bit red");
    expectColourNear(pixelAt(out, 150, 50), {0, 128, 255}, 2, "16-bit blue");

    if (const std::string grey = corpusFile("i-16bit-grey-alpha.png"); !grey.empty()) {
        VImage grey_out = convert(grey, png);
        EXPECT_EQ(grey_out.format(), VIPS_FORMAT_UCHAR);
        EXPECT_TRUE(grey_out.has_alpha());
    }
}

TEST_F(ImageConvertTest, AlphaFlattenedOntoWhiteForJpeg) {
    VImage rgba = testing::withRect(testing::solid(320, 240, {0, 0, 0, 0}), 100, 80, 120, 80,
                                    {0, 0, 255, 255});
    const std::string input = writePng(rgba, "alpha.png");

    VImage jpeg = convert(input, ImageOptions{});
    EXPECT_EQ(jpeg.bands(), 3);
    expectColourNear(pixelAt(jpeg, 5, 5), {255, 255, 255}, 3, "transparent corner");
    expectColourNear(pixelAt(jpeg, 160, 120), {0, 0, 255}, 20, "opaque centre");

    ImageOptions black_background;
    black_background.background = "#000000";
    VImage black = convert(input, black_background);
    expectColourNear(pixelAt(black, 5, 5), {0, 0, 0}, 3, "requested background");

    ImageOptions png;
    png.format = "png";
    VImage kept = convert(input, png);
    ASSERT_EQ(kept.bands(), 4);
    EXPECT_EQ(pixelAt(kept, 5, 5)[3], 0);

    if (const std::string corpus = corpusFile("i-alpha-transparent.png"); !corpus.empty()) {
        VImage flattened = convert(corpus, ImageOptions{});
        expectColourNear(pixelAt(flattened, 300, 230), {255, 255, 255}, 3, "corpus corner");
    }
}

TEST_F(ImageConvertTest, AnimationKeepsFramesForGifAndWebp) {
    const std::vector<std::vector<double>> colours = {
        {255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {0, 0, 0}};
    for (const char* input_name : {"anim.gif", "anim.webp"}) {
        const std::string input = temp_.file(input_name);
        testing::writeAnimation(input, 160, 120, colours);
        for (const char* format : {"gif", "webp"}) {
            const std::string where = std::string(input_name) + " to " + format;
            ImageOptions options = sized(80, std::nullopt);
            options.format = format;
            const std::string output = temp_.file(std::string("anim-out.") + format);
            Status status = convertImage(input, output, options, Limits{});
            ASSERT_TRUE(status.ok()) << where << ": " << status.error().toLogString();

            VImage out = VImage::new_from_file(output.c_str(), VImage::option()->set("n", -1));
            EXPECT_EQ(out.get_int(VIPS_META_N_PAGES), 4) << where;
            ASSERT_EQ(out.get_int(VIPS_META_PAGE_HEIGHT), 60) << where;
            EXPECT_EQ(out.width(), 80) << where;
            EXPECT_EQ(out.height(), 240) << where;
            const std::vector<int> delays = out.get_array_int("delay");
            ASSERT_EQ(delays.size(), 4u) << where;
            EXPECT_EQ(delays[2], 250) << where;
            EXPECT_EQ(out.get_int("loop"), 0) << where << ": not looping forever";
            for (int frame = 0; frame < 4; ++frame) {
                expectColourNear(pixelAt(out, 40, frame * 60 + 30), colours[frame], 40,
                                 where + " frame " + std::to_string(frame));
            }
        }

        // Cover crops every frame, not the strip of frames.
        ImageOptions cover = sized(50, 50, "cover", "left");
        cover.format = "gif";
        const std::string covered = temp_.file("anim-cover.gif");
        ASSERT_TRUE(convertImage(input, covered, cover, Limits{}).ok()) << input_name;
        VImage out = VImage::new_from_file(covered.c_str(), VImage::option()->set("n", -1));
        EXPECT_EQ(out.get_int(VIPS_META_N_PAGES), 4) << input_name;
        EXPECT_EQ(out.width(), 50) << input_name;
        EXPECT_EQ(out.get_int(VIPS_META_PAGE_HEIGHT), 50) << input_name;
        expectColourNear(pixelAt(out, 25, 75), colours[1], 40, "cover frame 1");

        // A still format takes the first frame.
        VImage still = convert(input, ImageOptions{});
        EXPECT_EQ(still.height(), 120) << input_name;
        expectColourNear(pixelAt(still, 80, 60), colours[0], 40, "first frame");
    }
}

TEST_F(ImageConvertTest, HeicAndAvifInputsAreDecoded) {
    VImage heic =
        convert(realFile("heic-iphone7-photo-gps-stripped.heic"), sized(400, std::nullopt));
    EXPECT_EQ(heic.width(), 400);
    EXPECT_EQ(heic.height(), 300);
    EXPECT_EQ(loaderOf(heic), "jpegload");

    for (const char* name : {"i-heic-x265.heic", "i-avif-8bit.avif"}) {
        const std::string input = corpusFile(name);
        if (input.empty()) {
            continue;
        }
        ImageOptions options = sized(320, std::nullopt);
        options.format = "png";
        VImage out = convert(input, options);
        EXPECT_EQ(out.width(), 320) << name;
        EXPECT_EQ(out.height(), 240) << name;
    }
}

TEST_F(ImageConvertTest, PixelBombsAreRejectedQuickly) {
    std::vector<std::string> bombs = {realFile("png-bomb-65536x65536-1bit.png")};
    for (const char* name : {"i-bomb-30000x30000-1bit.png", "i-bomb-30000x30000-header-only.png"}) {
        if (const std::string path = corpusFile(name); !path.empty()) {
            bombs.push_back(path);
        }
    }
    for (const std::string& bomb : bombs) {
        const std::string output = temp_.file("bomb.jpg");
        const auto start = std::chrono::steady_clock::now();
        Status status = convertImage(bomb, output, sized(200, std::nullopt), Limits{});
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        ASSERT_FALSE(status.ok()) << bomb;
        EXPECT_EQ(status.error().code(), ErrorCode::ResourceExhausted) << bomb;
        EXPECT_NE(status.error().message().find("max_image_pixels"), std::string::npos)
            << status.error().message();
        EXPECT_LT(seconds, 2.0) << bomb;
        EXPECT_FALSE(fs::exists(output)) << bomb;
    }
}

TEST_F(ImageConvertTest, HugeJpegNeedsARaisedLimit) {
    // 20000x14000 = 280 megapixels; a flat picture keeps the file small.
    const std::string input = temp_.file("huge.jpg");
    testing::withRect(testing::solid(20000, 14000, {40, 120, 200}), 0, 0, 10000, 14000,
                      {250, 200, 30})
        .jpegsave(input.c_str(), VImage::option()->set("Q", 60));

    Status rejected =
        convertImage(input, temp_.file("rejected.webp"), sized(800, std::nullopt), Limits{});
    ASSERT_FALSE(rejected.ok());
    EXPECT_EQ(rejected.error().code(), ErrorCode::ResourceExhausted);
    EXPECT_EQ(rejected.error().message(),
              "image is 20000x14000 (280000000 pixels), above the limit of 100000000 pixels "
              "(max_image_pixels)");

    Limits raised;
    raised.max_image_pixels = 300'000'000;
    ImageOptions options = sized(800, std::nullopt);
    options.format = "webp";
    const auto start = std::chrono::steady_clock::now();
    VImage out = convert(input, options, raised);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(out.width(), 800);
    EXPECT_EQ(out.height(), 560);
    expectColourNear(pixelAt(out, 100, 280), {250, 200, 30}, 20, "left half");
    expectColourNear(pixelAt(out, 700, 280), {40, 120, 200}, 20, "right half");
    // Shrink-on-load decodes at 1/8 scale; a full decode takes several times longer.
    EXPECT_LT(seconds, 5.0);
}

TEST_F(ImageConvertTest, TruncatedAndCorruptInputsFailCleanly) {
    const std::string full = temp_.file("full.jpg");
    VImage noise = VImage::gaussnoise(1200, 900).cast(VIPS_FORMAT_UCHAR);
    noise.bandjoin({noise, noise}).jpegsave(full.c_str());
    const std::string cut = temp_.file("cut.jpg");
    testing::writePrefix(full, cut, fs::file_size(full) * 4 / 10);

    std::vector<std::string> damaged = {
        cut,
        realFile("jpeg-truncated-at-10000-bytes.jpg"),
        realFile("png-truncated-at-10000-bytes.png"),
        realFile("jpeg-corrupt-header.jpg"),
    };
    for (const char* name : {"i-truncated.jpg", "i-truncated.png"}) {
        if (const std::string path = corpusFile(name); !path.empty()) {
            damaged.push_back(path);
        }
    }
    for (const std::string& input : damaged) {
        for (const char* format : {"jpeg", "webp", "png"}) {
            const std::string output = temp_.file(std::string("damaged.") + format);
            ImageOptions options = sized(200, std::nullopt);
            options.format = format;
            Status status = convertImage(input, output, options, Limits{});
            ASSERT_FALSE(status.ok()) << input << " to " << format;
            EXPECT_EQ(status.error().code(), ErrorCode::UnsupportedMedia)
                << input << ": " << status.error().toLogString();
            EXPECT_NE(status.error().message().find("truncated"), std::string::npos)
                << status.error().message();
            EXPECT_FALSE(fs::exists(output)) << "partial output left for " << input;
        }
    }
}

TEST_F(ImageConvertTest, EmptyAndNonImageInputsAreRejected) {
    const std::string empty = temp_.file("empty.jpg");
    testing::writeText(empty, "");
    Status status = convertImage(empty, temp_.file("out.jpg"), ImageOptions{}, Limits{});
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().code(), ErrorCode::UnsupportedMedia);
    EXPECT_EQ(status.error().message(), "file is empty");

    const std::string text = temp_.file("text.png");
    testing::writeText(text, "%PDF-1.4 not an image at all\n");
    status = convertImage(text, temp_.file("out.jpg"), ImageOptions{}, Limits{});
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().code(), ErrorCode::UnsupportedMedia);
}

TEST_F(ImageConvertTest, WrongExtensionIsDetectedFromContent) {
    const std::string jpeg_named_heic = temp_.file("photo.heic");
    redBlue().jpegsave(jpeg_named_heic.c_str());
    VImage out = convert(jpeg_named_heic, sized(100, std::nullopt));
    EXPECT_EQ(out.width(), 100);

    if (const std::string corpus = corpusFile("i-jpeg-content.heic"); !corpus.empty()) {
        VImage converted = convert(corpus, sized(100, std::nullopt));
        EXPECT_EQ(converted.width(), 100);
    }
}

// Returns the file at `path` as a data URI, as an SVG may embed a PNG.
std::string dataUri(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return "data:image/png;base64," + crypto::base64Encode(bytes);
}

// Returns a listening TCP socket on 127.0.0.1 and its port in `port`.
int listenOnLoopback(int& port) {
    const int server = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    if (server < 0 || bind(server, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
        listen(server, 4) != 0) {
        return -1;
    }
    socklen_t length = sizeof(address);
    getsockname(server, reinterpret_cast<sockaddr*>(&address), &length);
    port = ntohs(address.sin_port);
    return server;
}

TEST_F(ImageConvertTest, SvgExternalReferencesAreNotLoaded) {
    // A red PNG next to the SVG, referenced by relative and absolute path
    // and by file URL, and an HTTP reference to a socket of this test. The
    // same PNG inline as a data URI shows that <image> itself is drawn.
    const std::string red = temp_.file("red.png");
    testing::solid(40, 40, {255, 0, 0}).pngsave(red.c_str());
    int port = 0;
    const int server = listenOnLoopback(port);
    ASSERT_GE(server, 0);
    const std::string svg = temp_.file("refs.svg");
    testing::writeText(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" "
        "width=\"200\" height=\"100\">"
        "<rect width=\"200\" height=\"100\" fill=\"#dddddd\"/>"
        "<image x=\"0\" y=\"50\" width=\"50\" height=\"50\" xlink:href=\"" +
            dataUri(red) +
            "\"/>"
            "<image x=\"0\" y=\"0\" width=\"50\" height=\"50\" xlink:href=\"red.png\"/>"
            "<image x=\"50\" y=\"0\" width=\"50\" height=\"50\" xlink:href=\"" +
            red +
            "\"/>"
            "<image x=\"100\" y=\"0\" width=\"50\" height=\"50\" xlink:href=\"file://" +
            red +
            "\"/>"
            "<image x=\"150\" y=\"0\" width=\"50\" height=\"50\" href=\"http://127.0.0.1:" +
            std::to_string(port) +
            "/probe.png\"/>"
            "</svg>");

    ImageOptions options;
    options.format = "png";
    VImage out = convert(svg, options);
    ASSERT_EQ(out.width(), 200);
    ASSERT_EQ(out.height(), 100);
    expectColourNear(pixelAt(out, 25, 75), {255, 0, 0}, 2, "inline data URI");
    for (int x : {25, 75, 125, 175}) {
        expectColourNear(pixelAt(out, x, 25), {0xdd, 0xdd, 0xdd}, 2,
                         "image " + std::to_string(x / 50));
    }
    const int client = accept(server, nullptr, nullptr);
    EXPECT_LT(client, 0) << "the SVG renderer connected to the network";
    if (client >= 0) {
        close(client);
    }
    close(server);

    if (const std::string corpus = corpusFile("i-svg-external-refs.svg"); !corpus.empty()) {
        VImage rendered = convert(corpus, options);
        EXPECT_EQ(rendered.width(), 320);
    }
}

TEST_F(ImageConvertTest, SvgXmlEntityIsNotExpanded) {
    const std::string svg = temp_.file("xxe.svg");
    testing::writeText(svg,
                       "<?xml version=\"1.0\"?>\n<!DOCTYPE svg [\n"
                       "  <!ENTITY secret SYSTEM \"file:///etc/hostname\">\n]>\n"
                       "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100\" height=\"40\">"
                       "<text x=\"5\" y=\"30\">&secret;</text></svg>");
    const std::string output = temp_.file("xxe.png");
    Status status = convertImage(svg, output, ImageOptions{}, Limits{});
    // librsvg 2.54 rejects the undefined entity instead of reading the file.
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().code(), ErrorCode::UnsupportedMedia);
    EXPECT_FALSE(fs::exists(output));
}

TEST_F(ImageConvertTest, OutputWriteFailuresAreNotBlamedOnInput) {
    const std::string input = writePng(redBlue(), "in.png");
    const std::string missing_folder = temp_.file("missing/out.jpg");
    Status status = convertImage(input, missing_folder, ImageOptions{}, Limits{});
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().code(), ErrorCode::Internal) << status.error().toLogString();
    EXPECT_EQ(status.error().message().find(temp_.path().string()), std::string::npos)
        << "message shows the path: " << status.error().message();

    // A full disk is transient, so the task may be retried; the device
    // itself must survive the removal of partial output.
    if (!fs::is_character_file("/dev/full")) {
        GTEST_SKIP() << "/dev/full is missing";
    }
    status = convertImage(input, "/dev/full", ImageOptions{}, Limits{});
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().code(), ErrorCode::Unavailable) << status.error().toLogString();
    EXPECT_TRUE(fs::is_character_file("/dev/full"));
}

TEST_F(ImageConvertTest, InvalidOptionsAreRejected) {
    const std::string input = writePng(redBlue(), "in.png");
    std::vector<std::pair<std::string, ImageOptions>> cases;
    ImageOptions options;
    options.format = "bmp";
    cases.emplace_back("format", options);
    options = ImageOptions{};
    options.quality = 101;
    cases.emplace_back("quality", options);
    options = ImageOptions{};
    options.background = "red";
    cases.emplace_back("background", options);
    options = ImageOptions{};
    options.background = "#12345";
    cases.emplace_back("background", options);
    options = sized(100, 100, "stretch");
    cases.emplace_back("fit", options);
    options = sized(100, 100, "cover", "middle");
    cases.emplace_back("position", options);
    options = sized(0, std::nullopt);
    cases.emplace_back("width", options);
    options = sized(20000, std::nullopt);
    options.format = "webp";
    cases.emplace_back("16383", options);

    for (const auto& [expected_word, invalid] : cases) {
        const std::string output = temp_.file("invalid.out");
        Status status = convertImage(input, output, invalid, Limits{});
        ASSERT_FALSE(status.ok()) << expected_word;
        EXPECT_EQ(status.error().code(), ErrorCode::InvalidArgument) << expected_word;
        EXPECT_NE(status.error().message().find(expected_word), std::string::npos)
            << status.error().message();
        EXPECT_FALSE(fs::exists(output));
    }
}

TEST_F(ImageConvertTest, OutputAboveThePixelLimitIsRejected) {
    const std::string input = writePng(redBlue(), "in.png");
    ImageOptions options;
    options.geometry.width = Dimension{5000, true};
    Status status = convertImage(input, temp_.file("big.png"), options, Limits{});
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().code(), ErrorCode::ResourceExhausted);
    EXPECT_EQ(status.error().message(),
              "output is 20000x15000 (300000000 pixels), above the limit of 100000000 pixels "
              "(max_image_pixels)");
}

TEST_F(ImageConvertTest, VectorCodeOffForSmallOutputOnly) {
    const bool enabled = vips_vector_isenabled();
    {
        const vips::VectorCodeScope small(32 * 32);
        EXPECT_FALSE(vips_vector_isenabled());
    }
    EXPECT_EQ(vips_vector_isenabled(), enabled);
    {
        const vips::VectorCodeScope large(800 * 600);
        EXPECT_EQ(vips_vector_isenabled(), enabled);
    }
    EXPECT_EQ(vips_vector_isenabled(), enabled);
}

TEST_F(ImageConvertTest, SmallOutputUsesOneThread) {
    const int threads = vips_concurrency_get();
    {
        const vips::VectorCodeScope small(32 * 32);
        EXPECT_EQ(vips_concurrency_get(), 1);
    }
    EXPECT_EQ(vips_concurrency_get(), threads);
    {
        const vips::VectorCodeScope large(800 * 600);
        EXPECT_EQ(vips_concurrency_get(), threads);
    }
    EXPECT_EQ(vips_concurrency_get(), threads);
}

TEST_F(ImageConvertTest, SmallAndLargeResizesKeepColour) {
    // A small output is resized by scalar code, a large one by vector code
    // (when libvips has Orc); both must give the same colours.
    const std::string input =
        writePng(testing::withRect(testing::solid(1600, 1200, {200, 100, 50}), 800, 0, 800, 1200,
                                   {20, 40, 220}),
                 "halves.png");
    for (const int width : {40, 800}) {
        const VImage out = convert(input, sized(width, std::nullopt));
        ASSERT_EQ(out.width(), width);
        const std::string where = std::to_string(width) + " px";
        expectColourNear(pixelAt(out, width / 4, out.height() / 2), {200, 100, 50}, 2, where);
        expectColourNear(pixelAt(out, width * 3 / 4, out.height() / 2), {20, 40, 220}, 2, where);
    }
}

}  // namespace
}  // namespace bitmill::media
