// Tables of valid and invalid POST /tasks bodies with the exact messages the
// API returns, plus the quality and dimension helpers workers use.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "domain/task_request.h"

namespace bitmill::domain {
namespace {

struct InvalidCase {
    std::string body;
    std::string message;
};

class TaskRequestInvalidTest : public ::testing::TestWithParam<InvalidCase> {};

TEST_P(TaskRequestInvalidTest, RejectsWithMessage) {
    const InvalidCase& test_case = GetParam();
    auto result = parseTaskRequest(Json::parse(test_case.body));
    ASSERT_FALSE(result.ok()) << test_case.body;
    EXPECT_EQ(result.error().code(), ErrorCode::InvalidArgument);
    EXPECT_EQ(result.error().message(), test_case.message);
}

const std::string kVideoOptions =
    "width, height, fit, position, background, fps, format, codec, audio_codec, quality, "
    "bitrate, audio_bitrate, start, end, layers, ref, folder, filename, webhook_url";

const std::string kKinds =
    "ingest, video, image, audio, thumbnails, subtitles, chapters, speech, nsfw, tags, "
    "description, prompt, outline, workflow, conditions, http";

INSTANTIATE_TEST_SUITE_P(
    Bodies, TaskRequestInvalidTest,
    ::testing::Values(
        InvalidCase{R"([1, 2])", "invalid request body: expected a JSON object, got array"},
        InvalidCase{R"({"file_id": "file_1"})", "missing field \"kind\"; accepted: " + kKinds},
        InvalidCase{R"({"kind": 3, "file_id": "file_1"})",
                    "invalid field \"kind\": 3 must be a string; accepted: " + kKinds},
        InvalidCase{R"({"kind": "gif", "file_id": "file_1"})",
                    "unknown kind \"gif\"; accepted: " + kKinds},
        InvalidCase{R"({"kind": "video"})", "missing field \"file_id\" or \"url\" for kind video"},
        InvalidCase{R"({"kind": "video", "file_id": "file_1", "url": "https://a.example/x"})",
                    "invalid request: give either \"file_id\" or \"url\", not both"},
        InvalidCase{R"({"kind": "video", "url": "ftp://a.example/x.mp4"})",
                    "invalid field \"url\": \"ftp://a.example/x.mp4\" must be an http or https "
                    "URL"},
        InvalidCase{R"({"kind": "video", "url": "https:///x.mp4"})",
                    "invalid field \"url\": \"https:///x.mp4\" must be an http or https URL"},
        InvalidCase{R"({"kind": "video", "url": 12})",
                    "invalid field \"url\": 12 must be an http or https URL"},
        InvalidCase{R"({"kind": "ingest", "file_id": "file_1"})",
                    "invalid field \"file_id\": kind ingest takes a \"url\", not a \"file_id\""},
        InvalidCase{R"({"kind": "ingest"})", "missing field \"url\" for kind ingest"},
        InvalidCase{R"({"kind": "video", "file_id": "", "url": null})",
                    "invalid field \"file_id\": \"\" must be a file id such as \"file_abc123\""},
        InvalidCase{R"({"kind": "video", "file_id": "file_1", "options": [1]})",
                    "invalid field \"options\": [1] must be an object"},
        InvalidCase{R"({"kind": "video", "file_id": "file_1", "options": {"file_id": "x"}})",
                    "field \"file_id\" belongs at the top level of the body, not inside "
                    "\"options\""},
        InvalidCase{R"({"kind": "video", "file_id": "file_1", "fit": "stretch"})",
                    "invalid option \"fit\": \"stretch\" is not one of fill, cover, contain"},
        InvalidCase{R"({"kind": "video", "file_id": "file_1", "colour": "red"})",
                    "unknown option \"colour\" for kind video; accepted: " + kVideoOptions},
        InvalidCase{R"({"kind": "video", "file_id": "file_1", "width": -5})",
                    "invalid option \"width\": -5 must be a positive integer or a percentage "
                    "such as \"50%\""},
        InvalidCase{R"({"kind": "video", "file_id": "file_1", "width": "wide"})",
                    "invalid option \"width\": \"wide\" must be a positive integer or a "
                    "percentage such as \"50%\""},
        InvalidCase{R"({"kind": "video", "file_id": "file_1", "width": 10000})",
                    "invalid option \"width\": 10000 is out of range; accepted: 2 to 8192 "
                    "pixels or \"1%\" to \"1000%\""},
        InvalidCase{R"({"kind": "video", "file_id": "file_1", "height": "1500%"})",
                    "invalid option \"height\": \"1500%\" is out of range; accepted: 2 to 8192 "
                    "pixels or \"1%\" to \"1000%\""},
        InvalidCase{R"({"kind": "video", "file_id": "file_1", "fps": 500})",
                    "invalid option \"fps\": 500 must be a number from 1 to 120"},
        InvalidCase{R"({"kind": "video", "file_id": "file_1", "fps": "30"})",
                    "invalid option \"fps\": \"30\" must be a number from 1 to 120"},
        InvalidCase{R"({"kind": "video", "file_id": "file_1", "format": "avi"})",
                    "invalid option \"format\": \"avi\" is not one of mp4, webm, mov, mkv"},
        InvalidCase{R"({"kind": "video", "file_id": "file_1", "format": "hls"})",
                    "invalid option \"format\": \"hls\" is not available in this build; "
                    "accepted: mp4, webm, mov, mkv"},
        InvalidCase{R"({"kind": "video", "file_id": "file_1", "format": "webm", "codec": "h264"})",
                    "invalid option \"codec\": \"h264\" cannot be used with format \"webm\"; "
                    "accepted: vp9, av1"},
        InvalidCase{R"({"kind": "video", "file_id": "file_1", "format": "webm",
                        "audio_codec": "aac"})",
                    "invalid option \"audio_codec\": \"aac\" cannot be used with format "
                    "\"webm\"; accepted: opus, none"},
        InvalidCase{R"({"kind": "video", "file_id": "file_1", "format": "mov", "codec": "vp9"})",
                    "invalid option \"codec\": \"vp9\" cannot be used with format \"mov\"; "
                    "accepted: h264, h265"},
        InvalidCase{R"({"kind": "video", "file_id": "file_1", "start": 10, "end": 5})",
                    "invalid option \"end\": 5 must be greater than \"start\" (10)"},
        InvalidCase{R"({"kind": "video", "file_id": "file_1", "start": -1})",
                    "invalid option \"start\": -1 must be a number of seconds, 0 or more"},
        InvalidCase{R"({"kind": "video", "file_id": "file_1", "bitrate": 0})",
                    "invalid option \"bitrate\": 0 must be an integer from 1000 to 1000000000 "
                    "(bits per second)"},
        InvalidCase{R"({"kind": "video", "file_id": "file_1", "bitrate": 2.5})",
                    "invalid option \"bitrate\": 2.5 must be an integer from 1000 to "
                    "1000000000 (bits per second)"},
        InvalidCase{R"({"kind": "video", "file_id": "file_1", "quality": 101})",
                    "invalid option \"quality\": 101 must be an integer from 0 to 100 or one "
                    "of very_low, low, medium, high, very_high"},
        InvalidCase{R"({"kind": "video", "file_id": "file_1", "quality": "best"})",
                    "invalid option \"quality\": \"best\" must be an integer from 0 to 100 or "
                    "one of very_low, low, medium, high, very_high"},
        InvalidCase{R"({"kind": "video", "file_id": "file_1", "background": "red"})",
                    "invalid option \"background\": \"red\" must be \"#rrggbb\", \"#rrggbbaa\" "
                    "or \"transparent\""},
        InvalidCase{R"({"kind": "video", "file_id": "file_1", "background": "#12345g"})",
                    "invalid option \"background\": \"#12345g\" must be \"#rrggbb\", "
                    "\"#rrggbbaa\" or \"transparent\""},
        InvalidCase{R"({"kind": "video", "file_id": "file_1", "layers": []})",
                    "option \"layers\" is not available in this build"},
        InvalidCase{R"({"kind": "image", "file_id": "file_1", "position": "middle"})",
                    "invalid option \"position\": \"middle\" is not one of center, top, bottom, "
                    "left, right, top_left, top_right, bottom_left, bottom_right, attention, "
                    "entropy"},
        InvalidCase{R"({"kind": "video", "file_id": "file_1", "position": "attention"})",
                    "invalid option \"position\": \"attention\" is not one of center, top, "
                    "bottom, left, right, top_left, top_right, bottom_left, bottom_right"},
        InvalidCase{R"({"kind": "image", "file_id": "file_1", "format": "bmp"})",
                    "invalid option \"format\": \"bmp\" is not one of jpeg, png, webp, avif, "
                    "gif"},
        InvalidCase{R"({"kind": "image", "file_id": "file_1", "end": 3})",
                    "unknown option \"end\" for kind image; accepted: width, height, fit, "
                    "position, background, format, quality, start, layers, ref, folder, "
                    "filename, webhook_url"},
        InvalidCase{R"({"kind": "audio", "file_id": "file_1", "channels": 6})",
                    "invalid option \"channels\": 6 is not one of 1, 2"},
        InvalidCase{R"({"kind": "audio", "file_id": "file_1", "sample_rate": 44000})",
                    "invalid option \"sample_rate\": 44000 is not one of 8000, 11025, 12000, "
                    "16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000, 176400, 192000"},
        InvalidCase{R"({"kind": "audio", "file_id": "file_1", "sample_rate": 96000})",
                    "invalid option \"sample_rate\": 96000 cannot be used with format \"mp3\"; "
                    "accepted: 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000"},
        InvalidCase{R"({"kind": "audio", "file_id": "file_1", "format": "opus",
                        "sample_rate": 44100})",
                    "invalid option \"sample_rate\": 44100 cannot be used with format \"opus\"; "
                    "accepted: 8000, 12000, 16000, 24000, 48000"},
        InvalidCase{R"({"kind": "audio", "file_id": "file_1", "normalize": -80})",
                    "invalid option \"normalize\": -80 must be true, false or a loudness "
                    "target in LUFS from -70 to -5"},
        InvalidCase{R"({"kind": "audio", "file_id": "file_1", "normalize": "yes"})",
                    "invalid option \"normalize\": \"yes\" must be true, false or a loudness "
                    "target in LUFS from -70 to -5"},
        InvalidCase{R"({"kind": "audio", "file_id": "file_1", "format": "m4a"})",
                    "invalid option \"format\": \"m4a\" is not one of mp3, aac, wav, ogg, opus, "
                    "flac"},
        InvalidCase{R"({"kind": "video", "file_id": "file_1", "ref": "a b"})",
                    "invalid option \"ref\": \"a b\" must be 1 to 255 letters, digits, \"_\", "
                    "\".\" or \"-\""},
        InvalidCase{R"({"kind": "video", "file_id": "file_1", "folder": "a/../b"})",
                    "invalid folder \"a/../b\": must not contain \".\" or \"..\" segments"},
        InvalidCase{R"({"kind": "video", "file_id": "file_1", "folder": "/abs"})",
                    "invalid folder \"/abs\": must not start with \"/\""},
        InvalidCase{R"({"kind": "video", "file_id": "file_1", "folder": 7})",
                    "invalid option \"folder\": 7 must be a string such as \"videos/2025\""},
        InvalidCase{R"({"kind": "video", "file_id": "file_1", "filename": "a/b.mp4"})",
                    "invalid filename \"a/b.mp4\": must not contain \"/\"; put directories in "
                    "\"folder\""},
        InvalidCase{R"({"kind": "video", "file_id": "file_1", "webhook_url": "mailto:x@y"})",
                    "invalid option \"webhook_url\": \"mailto:x@y\" must be an http or https "
                    "URL"},
        InvalidCase{R"({"kind": "subtitles", "file_id": "file_1", "speakers": "yes"})",
                    "invalid option \"speakers\": \"yes\" must be true or false"},
        InvalidCase{R"({"kind": "subtitle", "file_id": "file_1", "language": "english"})",
                    "invalid option \"language\": \"english\" must be an ISO 639-1 language "
                    "code such as \"en\", or \"auto\""},
        InvalidCase{R"({"kind": "subtitles", "file_id": "file_1", "max_lines": 0})",
                    "invalid option \"max_lines\": 0 must be an integer from 1 to 10"},
        InvalidCase{R"({"kind": "thumbnails", "file_id": "file_1", "format": "png"})",
                    "invalid option \"format\": \"png\" is not one of jpeg, webp"},
        InvalidCase{R"({"kind": "thumbnails", "file_id": "file_1", "width": "50%"})",
                    "invalid option \"width\": \"50%\" must be an integer from 8 to 1920 "
                    "(pixels)"},
        InvalidCase{R"({"kind": "chapters", "file_id": "file_1", "format": "srt"})",
                    "invalid option \"format\": \"srt\" is not one of vtt, json"},
        InvalidCase{R"({"kind": "nsfw", "file_id": "file_1", "threshold": 2})",
                    "invalid option \"threshold\": 2 must be a number from 0 to 1"},
        InvalidCase{R"({"kind": "tags", "file_id": "file_1", "max": 0})",
                    "invalid option \"max\": 0 must be an integer from 1 to 100"},
        InvalidCase{R"({"kind": "prompt", "file_id": "file_1"})",
                    "missing option \"prompt\" for kind prompt"},
        InvalidCase{R"({"kind": "prompt", "file_id": "file_1", "prompt": ""})",
                    "invalid option \"prompt\": \"\" must be a non-empty string of at most "
                    "4000 characters"},
        InvalidCase{R"({"kind": "outline", "file_id": "file_1", "language": "en"})",
                    "unknown option \"language\" for kind outline; accepted: ref, folder, "
                    "filename, webhook_url"},
        InvalidCase{R"({"kind": "conditions", "file_id": "file_1", "conditions": []})",
                    "invalid option \"conditions\": [] must be an array of 1 to 50 objects "
                    "{\"prop\": string, \"value\": string, number or boolean}"},
        InvalidCase{R"({"kind": "http", "file_id": "file_1"})",
                    "missing option \"url\" for kind http"},
        InvalidCase{R"({"kind": "workflow", "file_id": "file_1"})",
                    "missing field \"workflow\" for kind workflow"},
        InvalidCase{R"({"kind": "workflow", "file_id": "file_1", "workflow": []})",
                    "invalid field \"workflow\": [] must be a non-empty array of steps"},
        InvalidCase{R"({"kind": "workflow", "file_id": "file_1",
                        "workflow": [{"kind": "image"}, {"kind": "resize"}]})",
                    "invalid workflow step workflow[1]: unknown kind \"resize\"; accepted: "
                    "video, image, audio, thumbnails, subtitles, chapters, speech, nsfw, tags, "
                    "description, prompt, outline, conditions, http"},
        InvalidCase{R"({"kind": "workflow", "file_id": "file_1",
                        "workflow": [{"kind": "video", "next": [{"kind": "image",
                                      "fit": "squash"}]}]})",
                    "invalid workflow step workflow[0].next[0] (kind image): invalid option "
                    "\"fit\": \"squash\" is not one of fill, cover, contain"},
        InvalidCase{R"({"kind": "workflow", "file_id": "file_1",
                        "workflow": [{"kind": "workflow"}]})",
                    "invalid workflow step workflow[0]: unknown kind \"workflow\"; accepted: "
                    "video, image, audio, thumbnails, subtitles, chapters, speech, nsfw, tags, "
                    "description, prompt, outline, conditions, http"},
        InvalidCase{R"({"kind": "workflow", "file_id": "file_1", "workflow": [{"ref": "x"}]})",
                    "invalid workflow step workflow[0]: missing \"kind\"; accepted: video, "
                    "image, audio, thumbnails, subtitles, chapters, speech, nsfw, tags, "
                    "description, prompt, outline, conditions, http"}));

TEST(TaskRequestTest, AcceptsIttybitStyleTopLevelOptions) {
    auto result = parseTaskRequest(Json::parse(R"({
        "kind": "video", "file_id": "file_abc", "width": 1280, "height": "50%",
        "fit": "cover", "position": "top_left", "background": "#ff000080", "fps": 29.97,
        "format": "webm", "codec": "av1", "audio_codec": "opus", "quality": "high",
        "bitrate": 2000000, "audio_bitrate": 128000, "start": 1.5, "end": 10,
        "ref": "small_v1", "folder": "videos/2025", "filename": "clip.webm",
        "webhook_url": "https://hooks.example.com/done"})"));
    ASSERT_TRUE(result.ok()) << result.error().message();
    EXPECT_EQ(result->kind, "video");
    EXPECT_EQ(result->file_id, "file_abc");
    EXPECT_FALSE(result->url.has_value());
    EXPECT_EQ(result->ref, "small_v1");
    EXPECT_EQ(result->folder, "videos/2025");
    EXPECT_EQ(result->filename, "clip.webm");
    EXPECT_EQ(result->webhook_url, "https://hooks.example.com/done");
    EXPECT_EQ(result->options["width"], 1280);
    EXPECT_EQ(result->options["height"], "50%");
    EXPECT_EQ(result->options["quality"], "high");
    EXPECT_EQ(result->options["ref"], "small_v1");
    EXPECT_EQ(result->options["folder"], "videos/2025");
    EXPECT_FALSE(result->options.contains("webhook_url"));
    EXPECT_FALSE(result->options.contains("kind"));
    EXPECT_FALSE(result->options.contains("file_id"));
    EXPECT_EQ(result->options.size(), 17u);
}

TEST(TaskRequestTest, TopLevelOptionWinsOverOptionsObject) {
    auto result = parseTaskRequest(Json::parse(R"({
        "kind": "image", "url": "https://cdn.example.com/a.png", "format": "png",
        "options": {"format": "webp", "quality": 70, "width": null}})"));
    ASSERT_TRUE(result.ok()) << result.error().message();
    EXPECT_EQ(result->url, "https://cdn.example.com/a.png");
    EXPECT_EQ(result->options, Json::parse(R"({"format": "png", "quality": 70})"));
}

TEST(TaskRequestTest, ReplacesAliasesWithCanonicalValues) {
    auto image = parseTaskRequest(
        Json::parse(R"({"kind": "image", "file_id": "file_1", "format": "jpg", "width": 640.0})"));
    ASSERT_TRUE(image.ok()) << image.error().message();
    EXPECT_EQ(image->options["format"], "jpeg");
    EXPECT_TRUE(image->options["width"].is_number_integer());

    auto video =
        parseTaskRequest(Json::parse(R"({"kind": "video", "file_id": "file_1", "codec": "hevc"})"));
    ASSERT_TRUE(video.ok()) << video.error().message();
    EXPECT_EQ(video->options["codec"], "h265");

    auto subtitles = parseTaskRequest(Json::parse(R"({"kind": "subtitle", "file_id": "file_1"})"));
    ASSERT_TRUE(subtitles.ok()) << subtitles.error().message();
    EXPECT_EQ(subtitles->kind, "subtitles");
}

TEST(TaskRequestTest, AcceptsAudioOptions) {
    auto result = parseTaskRequest(Json::parse(R"({
        "kind": "audio", "file_id": "file_1", "format": "flac", "channels": 1,
        "sample_rate": 96000, "normalize": -23, "bitrate": 192000, "start": 0, "end": 30})"));
    ASSERT_TRUE(result.ok()) << result.error().message();
    EXPECT_EQ(result->options["sample_rate"], 96000);

    auto normalize_on = parseTaskRequest(
        Json::parse(R"({"kind": "audio", "file_id": "file_1", "normalize": true})"));
    ASSERT_TRUE(normalize_on.ok()) << normalize_on.error().message();
}

TEST(TaskRequestTest, IngestTakesOnlyUrl) {
    auto result = parseTaskRequest(Json::parse(
        R"({"kind": "ingest", "url": "http://media.example.org/in.mov", "folder": "raw"})"));
    ASSERT_TRUE(result.ok()) << result.error().message();
    EXPECT_EQ(result->url, "http://media.example.org/in.mov");
    EXPECT_EQ(result->options, Json::parse(R"({"folder": "raw"})"));
}

TEST(TaskRequestTest, WorkflowStepsAreValidatedAndNotEchoed) {
    auto result = parseTaskRequest(Json::parse(R"({
        "kind": "workflow", "file_id": "file_1",
        "workflow": [
            {"kind": "video", "ref": "web", "format": "mp4", "width": null,
             "next": [{"kind": "image", "format": "jpg"}]},
            {"kind": "subtitle", "language": "pt-BR"},
            {"kind": "conditions", "conditions": [{"prop": "kind", "value": "video"}],
             "next": [{"kind": "http", "url": "https://example.com/hook", "method": "put"}]}
        ]})"));
    ASSERT_TRUE(result.ok()) << result.error().message();
    EXPECT_FALSE(result->options.contains("workflow"));
    ASSERT_TRUE(result->workflow.is_array());
    ASSERT_EQ(result->workflow.size(), 3u);
    EXPECT_EQ(result->workflow[0]["next"][0]["format"], "jpeg");
    EXPECT_FALSE(result->workflow[0].contains("width"));
    EXPECT_EQ(result->workflow[1]["kind"], "subtitles");
    EXPECT_EQ(result->workflow[2]["next"][0]["method"], "PUT");
}

TEST(TaskRequestTest, WorkflowRejectsDeepNesting) {
    Json step = Json::parse(R"({"kind": "image"})");
    for (int level = 0; level < 9; ++level) {
        step = Json{{"kind", "image"}, {"next", Json::array({step})}};
    }
    auto result = parseTaskRequest(
        Json{{"kind", "workflow"}, {"file_id", "file_1"}, {"workflow", Json::array({step})}});
    ASSERT_FALSE(result.ok());
    EXPECT_NE(result.error().message().find("nested deeper than 8 levels"), std::string::npos)
        << result.error().message();
}

TEST(TaskRequestTest, HttpKindTakesUrlAsTarget) {
    auto result = parseTaskRequest(Json::parse(R"({
        "kind": "http", "file_id": "file_1", "url": "https://example.com/notify",
        "headers": {"X-Token": "abc"}})"));
    ASSERT_TRUE(result.ok()) << result.error().message();
    EXPECT_EQ(result->url, "https://example.com/notify");
    EXPECT_FALSE(result->options.contains("url"));
    EXPECT_EQ(result->options["headers"]["X-Token"], "abc");
}

TEST(TaskRequestTest, RejectsOverlongUrl) {
    std::string url = "https://example.com/" + std::string(2100, 'a');
    auto result = parseTaskRequest(Json{{"kind", "ingest"}, {"url", url}});
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().message(),
              "invalid field \"url\": must be at most 2048 characters, got 2120");
}

MediaProperties videoInput(double duration, bool with_audio) {
    MediaProperties input;
    input.kind = "video";
    input.container = "mp4";
    input.duration = duration;
    if (with_audio) {
        input.audio_channels = 2;
    }
    return input;
}

MediaProperties audioInput(double duration) {
    MediaProperties input;
    input.kind = "audio";
    input.container = "mp3";
    input.duration = duration;
    input.audio_channels = 2;
    return input;
}

MediaProperties imageInput(const std::string& container, bool animated) {
    MediaProperties input;
    input.kind = "image";
    input.container = container;
    input.animated = animated;
    if (animated) {
        input.duration = 2.0;
    }
    return input;
}

TaskRequest parsedRequest(const std::string& body) {
    auto request = parseTaskRequest(Json::parse(body));
    EXPECT_TRUE(request.ok()) << body;
    return request.ok() ? *request : TaskRequest{};
}

// Returns the message of checkTaskInputFile, or "" when it passes.
std::string inputProblem(const std::string& body, const MediaProperties& input) {
    Status status = checkTaskInputFile(parsedRequest(body), "file_in", input);
    if (status.ok()) {
        return "";
    }
    EXPECT_EQ(status.error().code(), ErrorCode::InvalidArgument);
    return status.error().message();
}

TEST(TaskInputFileTest, KindMustSuitInput) {
    const std::string video = R"({"kind": "video", "file_id": "file_in"})";
    const std::string image = R"({"kind": "image", "file_id": "file_in"})";
    const std::string audio = R"({"kind": "audio", "file_id": "file_in"})";

    EXPECT_EQ(inputProblem(video, videoInput(10, true)), "");
    EXPECT_EQ(inputProblem(video, videoInput(10, false)), "");
    EXPECT_EQ(inputProblem(video, imageInput("gif", true)), "");
    EXPECT_EQ(inputProblem(video, audioInput(10)),
              "invalid input for kind video: file 'file_in' is audio, and a video task needs a "
              "video or an animated GIF");
    EXPECT_EQ(inputProblem(video, imageInput("png", false)),
              "invalid input for kind video: file 'file_in' is a still image (png), and a video "
              "task needs a video or an animated GIF");
    EXPECT_EQ(inputProblem(video, imageInput("gif", false)),
              "invalid input for kind video: file 'file_in' is a still image (gif), and a video "
              "task needs a video or an animated GIF");
    EXPECT_EQ(inputProblem(video, imageInput("webp", true)),
              "invalid input for kind video: file 'file_in' is an animated image (webp), and a "
              "video task needs a video or an animated GIF");

    EXPECT_EQ(inputProblem(image, imageInput("png", false)), "");
    EXPECT_EQ(inputProblem(image, videoInput(10, false)), "");
    EXPECT_EQ(inputProblem(image, audioInput(10)),
              "invalid input for kind image: file 'file_in' is audio, and an image task needs an "
              "image or a video");

    EXPECT_EQ(inputProblem(audio, audioInput(10)), "");
    EXPECT_EQ(inputProblem(audio, videoInput(10, true)), "");
    EXPECT_EQ(inputProblem(audio, imageInput("jpeg", false)),
              "invalid input for kind audio: file 'file_in' is a still image (jpeg), and an audio "
              "task needs an audio file or a video with an audio stream");
    EXPECT_EQ(inputProblem(audio, videoInput(10, false)),
              "invalid input for kind audio: file 'file_in' is a video without an audio stream, "
              "and an audio task needs an audio file or a video with an audio stream");
}

TEST(TaskInputFileTest, StartAndEndWithinDuration) {
    EXPECT_EQ(inputProblem(R"({"kind": "video", "file_id": "file_in", "start": 2, "end": 10})",
                           videoInput(10, true)),
              "");
    EXPECT_EQ(inputProblem(R"({"kind": "video", "file_id": "file_in", "start": 12.5})",
                           videoInput(10, true)),
              "invalid option \"start\": 12.5 is not less than the duration of file 'file_in' "
              "(10 seconds)");
    EXPECT_EQ(inputProblem(R"({"kind": "video", "file_id": "file_in", "start": 10})",
                           videoInput(10, true)),
              "invalid option \"start\": 10 is not less than the duration of file 'file_in' "
              "(10 seconds)");
    EXPECT_EQ(inputProblem(R"({"kind": "audio", "file_id": "file_in", "end": 30})",
                           audioInput(12.345)),
              "invalid option \"end\": 30 is beyond the duration of file 'file_in' (12.345 "
              "seconds)");
    EXPECT_EQ(inputProblem(R"({"kind": "image", "file_id": "file_in", "start": 61})",
                           videoInput(60.5, false)),
              "invalid option \"start\": 61 is not less than the duration of file 'file_in' "
              "(60.5 seconds)");
    EXPECT_EQ(inputProblem(R"({"kind": "video", "file_id": "file_in", "start": 1.5})",
                           imageInput("gif", true)),
              "");

    // An unknown duration cannot be checked here; the worker checks it.
    MediaProperties no_duration = videoInput(10, true);
    no_duration.duration.reset();
    EXPECT_EQ(inputProblem(R"({"kind": "video", "file_id": "file_in", "start": 500})",
                           no_duration),
              "");
}

TEST(TaskInputFileTest, ImageStartNeedsVideoInput) {
    EXPECT_EQ(inputProblem(R"({"kind": "image", "file_id": "file_in", "start": 1})",
                           imageInput("png", false)),
              "invalid option \"start\" for kind image: file 'file_in' is a still image (png), "
              "and \"start\" picks a frame of a video input only");
    EXPECT_EQ(inputProblem(R"({"kind": "image", "file_id": "file_in", "start": 1})",
                           videoInput(10, false)),
              "");
}

TEST(TaskInputFileTest, OtherKindsPass) {
    EXPECT_EQ(inputProblem(R"({"kind": "speech", "file_id": "file_in"})",
                           imageInput("png", false)),
              "");
}

TEST(TaskRequestTest, QualityWordsMapToNumbers) {
    EXPECT_EQ(qualityValue(Json("very_low")), 20);
    EXPECT_EQ(qualityValue(Json("low")), 40);
    EXPECT_EQ(qualityValue(Json("medium")), 60);
    EXPECT_EQ(qualityValue(Json("high")), 80);
    EXPECT_EQ(qualityValue(Json("very_high")), 95);
    EXPECT_EQ(qualityValue(Json(0)), 0);
    EXPECT_EQ(qualityValue(Json(100)), 100);
    EXPECT_EQ(qualityValue(Json(73.0)), 73);
    EXPECT_FALSE(qualityValue(Json(101)).has_value());
    EXPECT_FALSE(qualityValue(Json(-1)).has_value());
    EXPECT_FALSE(qualityValue(Json("ultra")).has_value());
    EXPECT_FALSE(qualityValue(Json(true)).has_value());
}

TEST(TaskRequestTest, DimensionsParsePixelsAndPercentages) {
    auto pixels = dimensionValue(Json(640));
    ASSERT_TRUE(pixels.has_value());
    EXPECT_FALSE(pixels->percent);
    EXPECT_EQ(pixels->toPixels(1920), 640);

    auto half = dimensionValue(Json("50%"));
    ASSERT_TRUE(half.has_value());
    EXPECT_TRUE(half->percent);
    EXPECT_EQ(half->toPixels(1920), 960);

    auto third = dimensionValue(Json("33.3%"));
    ASSERT_TRUE(third.has_value());
    EXPECT_EQ(third->toPixels(1000), 333);

    for (const char* bad : {"%", "50", "-5%", "5.%", ".5%", "1.2.3%", "abc%", "0%"}) {
        EXPECT_FALSE(dimensionValue(Json(bad)).has_value()) << bad;
    }
    EXPECT_FALSE(dimensionValue(Json(0)).has_value());
    EXPECT_FALSE(dimensionValue(Json(-5)).has_value());
    EXPECT_FALSE(dimensionValue(Json(12.5)).has_value());
}

}  // namespace
}  // namespace bitmill::domain
