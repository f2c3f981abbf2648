// JSON mapping of files and media: every required field with the type that
// strict clients expect, URLs from the delivery base, and media urls.
#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "api/json_mapping.h"

namespace bitmill::api {
namespace {

const std::regex kRfc3339Millis(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)");

ApiContext contextWithBase(const std::string& public_delivery_url) {
    ApiContext context;
    context.config.public_delivery_url = public_delivery_url;
    context.config.delivery_listen = "127.0.0.1:9081";
    return context;
}

domain::FileRecord videoFile() {
    domain::FileRecord file;
    file.id = "file_0123456789abcdef";
    file.project_id = "prj_0123456789abcdef";
    file.media_id = "med_0123456789abcdef";
    file.props.kind = "video";
    file.props.type = "video/mp4; codecs=\"avc1.64001f, mp4a.40.2\"";
    file.props.container = "mp4";
    file.props.extension = "mp4";
    file.props.codec = "h264";
    file.props.width = 1280;
    file.props.height = 720;
    file.props.duration = 12.5;
    file.props.fps = 30.0;
    file.props.bitrate = 2'000'000;
    file.filesize = 3'125'000;
    file.folder = "clips";
    file.delivery_path = "clips/file_0123456789abcdef.mp4";
    file.original = true;
    file.created_by = "key_0123456789abcdef";
    file.created_ms = 1'735'694'625'678;
    file.updated_ms = 1'735'694'625'999;
    return file;
}

TEST(JsonMappingTest, FileHasRequiredFieldsWithTypes) {
    const ApiContext context = contextWithBase("https://cdn.example.test/");
    const Json json = fileToJson(videoFile(), context);

    EXPECT_EQ(json["id"], "file_0123456789abcdef");
    EXPECT_EQ(json["media_id"], "med_0123456789abcdef");
    EXPECT_EQ(json["object"], "source");
    EXPECT_EQ(json["kind"], "video");
    EXPECT_TRUE(json["type"].is_string());
    EXPECT_TRUE(json["width"].is_number_integer());
    EXPECT_TRUE(json["height"].is_number_integer());
    EXPECT_TRUE(json["filesize"].is_number_integer());
    EXPECT_TRUE(json["bitrate"].is_number_integer());
    EXPECT_TRUE(json["duration"].is_number());
    EXPECT_TRUE(json["metadata"].is_object());
    EXPECT_TRUE(json["original"].is_boolean());
    EXPECT_EQ(json["status"], "ready");
    EXPECT_EQ(json["url"], "https://cdn.example.test/clips/file_0123456789abcdef.mp4");
    EXPECT_EQ(json["created"], "2025-01-01T01:23:45.678Z");
    EXPECT_TRUE(std::regex_match(json["updated"].get<std::string>(), kRfc3339Millis));
    // Fields that were not measured are present and null.
    ASSERT_TRUE(json.contains("rotation"));
    EXPECT_TRUE(json["rotation"].is_null());
    ASSERT_TRUE(json.contains("ref"));
    EXPECT_TRUE(json["ref"].is_null());
}

TEST(JsonMappingTest, UrlFallsBackToDeliveryListen) {
    const ApiContext context = contextWithBase("");
    EXPECT_EQ(publicDeliveryBase(context.config), "http://127.0.0.1:9081");
    domain::FileRecord file = videoFile();
    file.delivery_path.clear();
    file.folder.reset();
    file.filename = "my clip.mp4";
    EXPECT_EQ(fileToJson(file, context)["url"], "http://127.0.0.1:9081/my%20clip.mp4");
}

TEST(JsonMappingTest, MediaItemHasNoMediaId) {
    const Json item = mediaFileItemJson(videoFile(), contextWithBase("http://d"));
    EXPECT_FALSE(item.contains("media_id"));
    EXPECT_EQ(item["id"], "file_0123456789abcdef");
}

TEST(JsonMappingTest, MediaUrlsByRefNewestWins) {
    const ApiContext context = contextWithBase("http://d");
    domain::MediaRecord media;
    media.id = "med_0123456789abcdef";
    media.kind = "video";
    media.created_ms = 1'000;
    media.updated_ms = 2'000;

    domain::FileRecord original = videoFile();
    domain::FileRecord older = videoFile();
    older.id = "file_older";
    older.original = false;
    older.ref = "small";
    older.delivery_path = "older.mp4";
    older.updated_ms = original.updated_ms + 10;
    domain::FileRecord newer = older;
    newer.id = "file_newer";
    newer.delivery_path = "newer.mp4";
    newer.updated_ms = older.updated_ms + 10;

    const Json json = mediaToJson(media, {original, newer, older}, context);
    EXPECT_EQ(json["object"], "media");
    EXPECT_EQ(json["kind"], "video");
    ASSERT_TRUE(json["files"].is_array());
    EXPECT_EQ(json["files"].size(), 3u);
    EXPECT_EQ(json["urls"]["original"], "http://d/clips/file_0123456789abcdef.mp4");
    EXPECT_EQ(json["urls"]["small"], "http://d/newer.mp4");
    EXPECT_TRUE(json["title"].is_null());
    EXPECT_TRUE(json["metadata"].is_object());
}

TEST(JsonMappingTest, EmptyMediaHasNullKind) {
    domain::MediaRecord media;
    media.id = "med_x";
    const Json json = mediaToJson(media, {}, contextWithBase("http://d"));
    EXPECT_TRUE(json["kind"].is_null());
    EXPECT_TRUE(json["files"].is_array());
    EXPECT_TRUE(json["urls"].is_object());
}

}  // namespace
}  // namespace bitmill::api
