// Audio tasks: audio extracted from video, every output format, channel
// count, sample rate, trimming, and audio-only inputs.
#include <algorithm>

#include "e2e_test.h"

namespace bitmill::e2e {
namespace {

class TasksAudioTest : public E2eTest {
protected:
    // 320x240, 3 s H.264 with a 48 kHz stereo AAC tone.
    const Json& videoInput() {
        if (video_input_.is_null()) {
            VideoSpec spec;
            spec.seconds = 3;
            video_input_ = api().uploadFile(makeVideo(spec));
        }
        return video_input_;
    }

    Json runAudio(const Json& input_file, Json options) {
        options["kind"] = "audio";
        options["file_id"] = input_file["id"];
        return api().runTask(options);
    }

private:
    Json video_input_;
};

TEST_F(TasksAudioTest, Mp3IsDefaultFromVideo) {
    Json task = runAudio(videoInput(), Json::object());
    ASSERT_TRUE(taskCompleted(task));
    EXPECT_EQ(task["output"]["kind"], "audio");
    EXPECT_EQ(task["output"]["type"].get<std::string>().rfind("audio/mpeg", 0), 0u)
        << task["output"].dump();
    EXPECT_EQ(task["output"]["media_id"], videoInput()["media_id"]);
    ProbeResult probe = probeMedia(downloadOutput(task));
    EXPECT_EQ(probe.streamCount("video"), 0) << "no video (or cover art) in audio output";
    const Json* audio = probe.stream("audio");
    ASSERT_NE(audio, nullptr);
    EXPECT_EQ(audio->value("codec_name", ""), "mp3");
    EXPECT_NEAR(probe.duration(), 3.0, 0.2);
    EXPECT_NEAR(task["output"].value("duration", 0.0), 3.0, 0.2);
}

TEST_F(TasksAudioTest, ChannelsOneGivesMono) {
    Json task = runAudio(videoInput(), {{"channels", 1}});
    ASSERT_TRUE(taskCompleted(task));
    ProbeResult probe = probeMedia(downloadOutput(task));
    const Json* audio = probe.stream("audio");
    ASSERT_NE(audio, nullptr);
    EXPECT_EQ(audio->value("channels", 0), 1);
}

TEST_F(TasksAudioTest, SampleRate22050IsApplied) {
    Json task = runAudio(videoInput(), {{"sample_rate", 22050}});
    ASSERT_TRUE(taskCompleted(task));
    ProbeResult probe = probeMedia(downloadOutput(task));
    const Json* audio = probe.stream("audio");
    ASSERT_NE(audio, nullptr);
    EXPECT_EQ(audio->value("sample_rate", ""), "22050");
}

TEST_F(TasksAudioTest, StartEndTrim) {
    Json task = runAudio(videoInput(), {{"format", "wav"}, {"start", 1.0}, {"end", 2.5}});
    ASSERT_TRUE(taskCompleted(task));
    EXPECT_NEAR(probeMedia(downloadOutput(task)).duration(), 1.5, 0.1);
}

struct FormatCase {
    std::string format;
    // Accepted ffprobe codec names and a word of format_name.
    std::vector<std::string> codecs;
    std::string container_word;
    std::string mime_prefix;
};

void PrintTo(const FormatCase& value, std::ostream* out) { *out << value.format; }

class AudioFormatTest : public TasksAudioTest,
                        public ::testing::WithParamInterface<FormatCase> {};

TEST_P(AudioFormatTest, ProducesFormat) {
    const FormatCase& expected = GetParam();
    Json task = runAudio(videoInput(), {{"format", expected.format}});
    ASSERT_TRUE(taskCompleted(task));
    EXPECT_EQ(task["output"]["type"].get<std::string>().rfind(expected.mime_prefix, 0), 0u)
        << task["output"].dump();
    ProbeResult probe = probeMedia(downloadOutput(task));
    EXPECT_TRUE(containsText(probe.formatName(), expected.container_word)) << probe.formatName();
    const Json* audio = probe.stream("audio");
    ASSERT_NE(audio, nullptr);
    std::string codec = audio->value("codec_name", "");
    EXPECT_NE(std::find(expected.codecs.begin(), expected.codecs.end(), codec),
              expected.codecs.end())
        << "codec " << codec;
    EXPECT_NEAR(probe.duration(), 3.0, 0.25);
}

INSTANTIATE_TEST_SUITE_P(
    Formats, AudioFormatTest,
    ::testing::Values(FormatCase{"wav", {"pcm_s16le", "pcm_s24le", "pcm_f32le"}, "wav", "audio/"},
                      FormatCase{"flac", {"flac"}, "flac", "audio/flac"},
                      FormatCase{"ogg", {"vorbis", "opus"}, "ogg", "audio/ogg"},
                      FormatCase{"opus", {"opus"}, "ogg", "audio/"},
                      FormatCase{"aac", {"aac"}, "", "audio/"},
                      FormatCase{"mp3", {"mp3"}, "mp3", "audio/mpeg"}),
    [](const auto& info) { return info.param.format; });

TEST_F(TasksAudioTest, AudioOnlyM4aInput) {
    Json input = api().uploadFile(corpusFile("a-audio-only.m4a"));
    EXPECT_EQ(input["kind"], "audio") << "classified by streams, not container: " << input.dump();
    Json task = runAudio(input, {{"format", "mp3"}, {"channels", 1}});
    ASSERT_TRUE(taskCompleted(task));
    ProbeResult probe = probeMedia(downloadOutput(task));
    ASSERT_NE(probe.stream("audio"), nullptr);
    EXPECT_EQ(probe.stream("audio")->value("codec_name", ""), "mp3");
    EXPECT_NEAR(probe.duration(), input.value("duration", 0.0), 0.2);
}

TEST_F(TasksAudioTest, WavInputToOpus) {
    AudioSpec spec;
    spec.seconds = 2;
    spec.sample_rate = 44100;
    Json input = api().uploadFile(makeAudio(spec));
    Json task = runAudio(input, {{"format", "opus"}});
    ASSERT_TRUE(taskCompleted(task));
    ProbeResult probe = probeMedia(downloadOutput(task));
    ASSERT_NE(probe.stream("audio"), nullptr);
    EXPECT_EQ(probe.stream("audio")->value("codec_name", ""), "opus");
    EXPECT_NEAR(probe.duration(), 2.0, 0.1);
}

}  // namespace
}  // namespace bitmill::e2e
