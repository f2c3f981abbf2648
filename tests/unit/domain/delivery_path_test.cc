// Delivery paths, ETags and the folder and filename rules.
#include <gtest/gtest.h>

#include <string>

#include "domain/delivery_path.h"

namespace bitmill::domain {
namespace {

FileRecord fileWith(std::optional<std::string> folder, std::optional<std::string> filename) {
    FileRecord file;
    file.id = "file_abc";
    file.props.extension = "mp4";
    file.folder = std::move(folder);
    file.filename = std::move(filename);
    return file;
}

TEST(DeliveryPathTest, CombinesFolderFilenameAndId) {
    EXPECT_EQ(deliveryPathFor(fileWith(std::nullopt, std::nullopt)), "file_abc.mp4");
    EXPECT_EQ(deliveryPathFor(fileWith("videos/2025", std::nullopt)), "videos/2025/file_abc.mp4");
    EXPECT_EQ(deliveryPathFor(fileWith(std::nullopt, "clip.mp4")), "clip.mp4");
    EXPECT_EQ(deliveryPathFor(fileWith("videos", "clip.mp4")), "videos/clip.mp4");
}

TEST(DeliveryPathTest, EtagPrefersStoredValue) {
    FileRecord file = fileWith(std::nullopt, std::nullopt);
    file.filesize = 10;
    file.updated_ms = 1000;
    std::string derived = deliveryEtagFor(file);
    EXPECT_EQ(derived.size(), 34u);
    EXPECT_EQ(derived.front(), '"');
    EXPECT_EQ(derived.back(), '"');

    file.updated_ms = 2000;
    EXPECT_NE(deliveryEtagFor(file), derived);

    file.etag = "\"stored\"";
    EXPECT_EQ(deliveryEtagFor(file), "\"stored\"");
}

TEST(DeliveryPathTest, AcceptsOrdinaryFoldersAndFilenames) {
    EXPECT_TRUE(validateFolder("videos").ok());
    EXPECT_TRUE(validateFolder("videos/2025/june").ok());
    EXPECT_TRUE(validateFolder("a..b/c").ok());
    EXPECT_TRUE(validateFilename("clip final (1).mp4").ok());
    EXPECT_TRUE(validateFilename("résumé.png").ok());
    EXPECT_TRUE(validateFolder(std::string(255, 'a') + "/" + std::string(255, 'b')).ok());
}

TEST(DeliveryPathTest, RejectsBadFolders) {
    struct Case {
        std::string folder;
        std::string message;
    };
    const Case cases[] = {
        {"", "invalid folder \"\": must not be empty"},
        {"/videos", "invalid folder \"/videos\": must not start with \"/\""},
        {"..", "invalid folder \"..\": must not contain \".\" or \"..\" segments"},
        {"a/./b", "invalid folder \"a/./b\": must not contain \".\" or \"..\" segments"},
        {"a//b",
         "invalid folder \"a//b\": must not contain empty segments (\"//\" or a trailing \"/\")"},
        {"a/",
         "invalid folder \"a/\": must not contain empty segments (\"//\" or a trailing \"/\")"},
        {"a\nb", "invalid folder \"a\\nb\": must not contain control characters"},
        {"a\x7f", "invalid folder \"a\\u007f\": must not contain control characters"},
    };
    for (const Case& test_case : cases) {
        Status status = validateFolder(test_case.folder);
        ASSERT_FALSE(status.ok()) << test_case.folder;
        EXPECT_EQ(status.error().code(), ErrorCode::InvalidArgument);
        EXPECT_EQ(status.error().message(), test_case.message);
    }
}

TEST(DeliveryPathTest, RejectsOverlongFolders) {
    std::string long_segment(256, 'a');
    Status segment = validateFolder("ok/" + long_segment);
    ASSERT_FALSE(segment.ok());
    EXPECT_NE(segment.error().message().find("each segment must be at most 255 bytes, got 256"),
              std::string::npos);

    std::string long_total;
    for (int i = 0; i < 5; ++i) {
        long_total += std::string(250, 'a') + "/";
    }
    long_total += "end";
    Status total = validateFolder(long_total);
    ASSERT_FALSE(total.ok());
    EXPECT_NE(total.error().message().find("must be at most 1024 bytes, got 1258"),
              std::string::npos);
}

TEST(DeliveryPathTest, RejectsBadFilenames) {
    EXPECT_EQ(validateFilename("a/b.mp4").error().message(),
              "invalid filename \"a/b.mp4\": must not contain \"/\"; put directories in "
              "\"folder\"");
    EXPECT_EQ(validateFilename("..").error().message(),
              "invalid filename \"..\": must not contain \".\" or \"..\" segments");
    EXPECT_EQ(validateFilename(std::string(256, 'x')).error().message().substr(0, 8), "invalid ");
    EXPECT_FALSE(validateFilename("tab\there.mp4").ok());
    EXPECT_FALSE(validateFilename("").ok());
}

}  // namespace
}  // namespace bitmill::domain
