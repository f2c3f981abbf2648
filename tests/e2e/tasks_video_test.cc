// Video tasks on a generated 1920x1080, 3 s H.264 + AAC clip: output codecs
// and containers, web defaults (yuv420p, faststart, hvc1), resizing with
// fit modes, trimming, frame rate, and how outputs join their media.
#include <cmath>
#include <thread>

#include "e2e_test.h"

namespace bitmill::e2e {
namespace {

class TasksVideoTest : public E2eTest {
protected:
    static std::filesystem::path fullHdClip() {
        VideoSpec spec;
        spec.width = 1920;
        spec.height = 1080;
        spec.seconds = 3;
        return makeVideo(spec);
    }

    // Uploads the 1080p clip once per test and returns its File.
    const Json& input() {
        if (input_.is_null()) {
            input_ = api().uploadFile(fullHdClip(), "inputs/full-hd.mp4");
        }
        return input_;
    }

    // Runs a video task over the 1080p clip with `options` and returns the
    // completed task; fails the test when it does not complete.
    Json runVideo(Json options) {
        options["kind"] = "video";
        options["file_id"] = input()["id"];
        Json task = api().runTask(options);
        EXPECT_TRUE(taskCompleted(task));
        return task;
    }

private:
    Json input_;
};

TEST_F(TasksVideoTest, WebmWidth640IsVp9WithOpus) {
    Json task = runVideo({{"width", 640}, {"format", "webm"}});
    ASSERT_TRUE(taskCompleted(task));
    const Json& output = task["output"];
    EXPECT_EQ(output["kind"], "video");
    EXPECT_EQ(output.value("width", 0), 640);
    EXPECT_EQ(output.value("height", 0), 360);
    EXPECT_EQ(output["type"].get<std::string>().rfind("video/webm", 0), 0u) << output.dump();

    ProbeResult probe = probeMedia(downloadOutput(task));
    EXPECT_TRUE(containsText(probe.formatName(), "webm")) << probe.formatName();
    const Json* video = probe.stream("video");
    ASSERT_NE(video, nullptr);
    EXPECT_EQ(video->value("codec_name", ""), "vp9");
    EXPECT_EQ(video->value("width", 0), 640);
    EXPECT_EQ(video->value("height", 0) % 2, 0) << "height must be even";
    EXPECT_EQ(video->value("height", 0), 360);
    const Json* audio = probe.stream("audio");
    ASSERT_NE(audio, nullptr) << "audio is kept";
    EXPECT_EQ(audio->value("codec_name", ""), "opus");
    EXPECT_NEAR(probe.duration(), 3.0, 0.2);
}

TEST_F(TasksVideoTest, Mp4DefaultIsWebReadyH264) {
    Json task = runVideo({{"width", 640}});
    ASSERT_TRUE(taskCompleted(task));
    std::filesystem::path output = downloadOutput(task);
    ProbeResult probe = probeMedia(output);
    EXPECT_TRUE(containsText(probe.formatName(), "mp4")) << probe.formatName();
    const Json* video = probe.stream("video");
    ASSERT_NE(video, nullptr);
    EXPECT_EQ(video->value("codec_name", ""), "h264");
    EXPECT_EQ(video->value("pix_fmt", ""), "yuv420p");
    std::string profile = video->value("profile", "");
    EXPECT_TRUE(profile == "High" || profile == "Main" || profile == "Constrained Baseline")
        << "profile " << profile;
    EXPECT_EQ(video->value("codec_tag_string", ""), "avc1");
    const Json* audio = probe.stream("audio");
    ASSERT_NE(audio, nullptr);
    EXPECT_EQ(audio->value("codec_name", ""), "aac");
    EXPECT_TRUE(isFaststart(output)) << "moov must precede mdat; boxes: "
                                     << ::testing::PrintToString(topLevelBoxes(output));
    EXPECT_NEAR(probe.duration(), 3.0, 0.2);
    EXPECT_EQ(task["output"]["filesize"], std::filesystem::file_size(output));
}

TEST_F(TasksVideoTest, H265Mp4IsTaggedHvc1) {
    Json task = runVideo({{"width", 640}, {"codec", "h265"}});
    ASSERT_TRUE(taskCompleted(task));
    ProbeResult probe = probeMedia(downloadOutput(task));
    const Json* video = probe.stream("video");
    ASSERT_NE(video, nullptr);
    EXPECT_EQ(video->value("codec_name", ""), "hevc");
    EXPECT_EQ(video->value("codec_tag_string", ""), "hvc1");
    EXPECT_EQ(video->value("pix_fmt", ""), "yuv420p");
    EXPECT_TRUE(containsText(task["output"]["type"].get<std::string>(), "hvc1"))
        << task["output"].dump();
}

TEST_F(TasksVideoTest, MovAndMkvContainers) {
    Json mov = runVideo({{"width", 320}, {"format", "mov"}});
    ASSERT_TRUE(taskCompleted(mov));
    ProbeResult mov_probe = probeMedia(downloadOutput(mov));
    EXPECT_TRUE(containsText(mov_probe.formatName(), "mov")) << mov_probe.formatName();
    EXPECT_EQ(mov["output"]["type"].get<std::string>().rfind("video/quicktime", 0), 0u)
        << mov["output"].dump();

    Json mkv = runVideo({{"width", 320}, {"format", "mkv"}});
    ASSERT_TRUE(taskCompleted(mkv));
    ProbeResult mkv_probe = probeMedia(downloadOutput(mkv));
    EXPECT_TRUE(containsText(mkv_probe.formatName(), "matroska")) << mkv_probe.formatName();
    ASSERT_NE(mkv_probe.stream("video"), nullptr);
    EXPECT_EQ(mkv_probe.stream("video")->value("codec_name", ""), "h264");
}

TEST_F(TasksVideoTest, PercentWidthScalesFromSource) {
    Json task = runVideo({{"width", "25%"}});
    ASSERT_TRUE(taskCompleted(task));
    ProbeResult probe = probeMedia(downloadOutput(task));
    ASSERT_NE(probe.stream("video"), nullptr);
    EXPECT_EQ(probe.stream("video")->value("width", 0), 480);
    EXPECT_EQ(probe.stream("video")->value("height", 0), 270);
}

TEST_F(TasksVideoTest, StartEndTrimSetsDuration) {
    Json task = runVideo({{"width", 320}, {"start", 0.5}, {"end", 2.0}});
    ASSERT_TRUE(taskCompleted(task));
    ProbeResult probe = probeMedia(downloadOutput(task));
    EXPECT_NEAR(probe.duration(), 1.5, 0.2);
    EXPECT_NEAR(task["output"].value("duration", 0.0), 1.5, 0.2) << task["output"].dump();
}

TEST_F(TasksVideoTest, Fps15ChangesFrameRate) {
    Json task = runVideo({{"width", 320}, {"fps", 15}});
    ASSERT_TRUE(taskCompleted(task));
    ProbeResult probe = probeMedia(downloadOutput(task));
    EXPECT_NEAR(probe.videoFrameRate(), 15.0, 0.1);
    EXPECT_NEAR(probe.duration(), 3.0, 0.2);
    EXPECT_NEAR(task["output"].value("fps", 0.0), 15.0, 0.1) << task["output"].dump();
}

TEST_F(TasksVideoTest, AudioCodecNoneDropsAudio) {
    Json task = runVideo({{"width", 320}, {"audio_codec", "none"}});
    ASSERT_TRUE(taskCompleted(task));
    ProbeResult probe = probeMedia(downloadOutput(task));
    EXPECT_NE(probe.stream("video"), nullptr);
    EXPECT_EQ(probe.streamCount("audio"), 0);
}

TEST_F(TasksVideoTest, OutputJoinsMediaUnderRef) {
    Json task = runVideo({{"width", 320}, {"ref", "small"}});
    ASSERT_TRUE(taskCompleted(task));
    EXPECT_EQ(task["output"]["media_id"], input()["media_id"]);
    EXPECT_EQ(task["output"].value("ref", ""), "small");
    Json media = api().getJson("/media/" + input()["media_id"].get<std::string>());
    ASSERT_TRUE(media["urls"].is_object()) << media.dump();
    EXPECT_EQ(media["urls"].value("small", ""), task["output"]["url"]) << media.dump();
    EXPECT_EQ(media["urls"].value("original", ""), input()["url"]) << media.dump();
    bool listed = false;
    for (const auto& item : media["files"]) {
        listed = listed || item.value("id", "") == task["output"]["id"];
    }
    EXPECT_TRUE(listed) << "output is one of the media's files: " << media.dump();

    // The newest output under a ref wins.
    Json newer = runVideo({{"width", 160}, {"ref", "small"}});
    ASSERT_TRUE(taskCompleted(newer));
    media = api().getJson("/media/" + input()["media_id"].get<std::string>());
    EXPECT_EQ(media["urls"].value("small", ""), newer["output"]["url"]) << media.dump();
}

TEST_F(TasksVideoTest, ProgressRisesToHundred) {
    Json task = api().createTask(
        {{"kind", "video"}, {"file_id", input()["id"]}, {"width", 640}, {"format", "webm"}});
    std::string id = task["id"];
    int last_progress = 0;
    while (true) {
        Json current = api().getTask(id);
        ASSERT_TRUE(current["progress"].is_number_integer()) << current.dump();
        int progress = current["progress"];
        EXPECT_GE(progress, last_progress) << "progress never goes back";
        EXPECT_LE(progress, 100);
        last_progress = progress;
        if (isTerminalStatus(current["status"])) {
            ASSERT_TRUE(taskCompleted(current));
            EXPECT_EQ(progress, 100);
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
}

TEST_F(TasksVideoTest, StartedFinishedAttemptsAreSet) {
    Json task = runVideo({{"width", 160}});
    ASSERT_TRUE(taskCompleted(task));
    EXPECT_TRUE(isRfc3339Millis(task.value("started", Json())));
    EXPECT_TRUE(isRfc3339Millis(task.value("finished", Json())));
    EXPECT_EQ(task.value("attempts", Json()), 1);
}

// ------------------------------------------------------------ fit modes

class VideoFitTest : public E2eTest {
protected:
    // Runs a 320x320 task with `fit` over the red/green pattern clip and
    // returns the middle frame of the output.
    RgbImage fitFrame(const std::string& fit, const Json& extra = Json::object()) {
        Json input = api().uploadFile(makeFitPatternVideo());
        Json body = {{"kind", "video"}, {"file_id", input["id"]}, {"width", 320},
                     {"height", 320},   {"fit", fit}};
        body.update(extra);
        Json task = api().runTask(body);
        EXPECT_TRUE(taskCompleted(task));
        std::filesystem::path output = downloadOutput(task);
        ProbeResult probe = probeMedia(output);
        const Json* video = probe.stream("video");
        EXPECT_NE(video, nullptr);
        if (video != nullptr) {
            EXPECT_EQ(video->value("width", 0), 320) << "fit " << fit;
            EXPECT_EQ(video->value("height", 0), 320) << "fit " << fit;
        }
        return decodeFrame(output, 1.0);
    }
};

bool isRed(const std::vector<int>& rgb) { return rgb[0] > 180 && rgb[1] < 80 && rgb[2] < 80; }
bool isGreen(const std::vector<int>& rgb) { return rgb[1] > 180 && rgb[0] < 80 && rgb[2] < 80; }
bool isBlack(const std::vector<int>& rgb) { return rgb[0] < 40 && rgb[1] < 40 && rgb[2] < 40; }
bool isWhite(const std::vector<int>& rgb) {
    return rgb[0] > 215 && rgb[1] > 215 && rgb[2] > 215;
}

TEST_F(VideoFitTest, CoverCropsToTheCentre) {
    RgbImage frame = fitFrame("cover");
    EXPECT_TRUE(isGreen(frame.atFraction(0.03, 0.5)))
        << ::testing::PrintToString(frame.atFraction(0.03, 0.5));
    EXPECT_TRUE(isGreen(frame.atFraction(0.97, 0.5)));
    EXPECT_TRUE(isGreen(frame.atFraction(0.5, 0.03)));
}

TEST_F(VideoFitTest, FillStretchesWholeFrame) {
    RgbImage frame = fitFrame("fill");
    EXPECT_TRUE(isRed(frame.atFraction(0.05, 0.5)))
        << ::testing::PrintToString(frame.atFraction(0.05, 0.5));
    EXPECT_TRUE(isRed(frame.atFraction(0.95, 0.5)));
    EXPECT_TRUE(isGreen(frame.atFraction(0.5, 0.5)));
}

TEST_F(VideoFitTest, ContainPadsWithBackground) {
    RgbImage frame = fitFrame("contain");
    // 640x360 into 320x320 is 320x180 with 70 px bars above and below.
    EXPECT_TRUE(isBlack(frame.atFraction(0.5, 0.05)))
        << ::testing::PrintToString(frame.atFraction(0.5, 0.05));
    EXPECT_TRUE(isBlack(frame.atFraction(0.5, 0.95)));
    EXPECT_TRUE(isRed(frame.atFraction(0.05, 0.5)));
    EXPECT_TRUE(isGreen(frame.atFraction(0.5, 0.5)));

    RgbImage white = fitFrame("contain", {{"background", "#ffffff"}});
    EXPECT_TRUE(isWhite(white.atFraction(0.5, 0.05)))
        << ::testing::PrintToString(white.atFraction(0.5, 0.05));
}

}  // namespace
}  // namespace bitmill::e2e
