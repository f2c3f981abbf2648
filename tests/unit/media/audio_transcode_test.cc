// Tests of media::transcodeAudio: every output format checked with ffprobe,
// exact durations, trims, resampling, the 5.1 to stereo downmix, loudness
// normalization, progress, and inputs without usable audio.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <mutex>
#include <vector>

#include "av_test_support.h"
#include "media/media.h"

namespace bitmill::media {
namespace {

using testing::FfprobeResult;
using testing::inputDir;
using testing::runFfmpeg;
using testing::runFfprobe;
using testing::shellQuote;
using testing::TempDir;

// 5.1 AAC, 3 s, with a 440 Hz tone in one channel (FL or FC) only.
const std::string& fiveOneWithToneIn(const std::string& channel) {
    static std::map<std::string, std::string> paths;
    auto found = paths.find(channel);
    if (found == paths.end()) {
        const std::string out = inputDir().file("five-one-" + channel + ".m4a");
        runFfmpeg("-f lavfi -i sine=frequency=440:sample_rate=48000:duration=3 "
                  "-af " +
                  shellQuote("pan=5.1|" + channel + "=c0") + " -c:a aac -b:a 192k " +
                  shellQuote(out));
        found = paths.emplace(channel, out).first;
    }
    return found->second;
}

// Mono 16-bit WAV at 22050 Hz, 2.5 s.
const std::string& mono22050Wav() {
    static const std::string path = [] {
        const std::string out = inputDir().file("mono-22050.wav");
        runFfmpeg("-f lavfi -i sine=frequency=300:sample_rate=22050:duration=2.5 "
                  "-c:a pcm_s16le " +
                  shellQuote(out));
        return out;
    }();
    return path;
}

// Opus in Ogg, mono, 2 s, as voice messages are sent.
const std::string& voiceOpusOgg() {
    static const std::string path = [] {
        const std::string out = inputDir().file("voice.ogg");
        runFfmpeg("-f lavfi -i sine=frequency=250:sample_rate=48000:duration=2 -c:a libopus "
                  "-b:a 24k " +
                  shellQuote(out));
        return out;
    }();
    return path;
}

// Names of the top-level ISO BMFF boxes of a file, in order.
std::vector<std::string> topLevelBoxes(const std::string& path) {
    std::ifstream file(path, std::ios::binary);
    std::vector<std::string> boxes;
    while (true) {
        unsigned char header[8];
        if (!file.read(reinterpret_cast<char*>(header), sizeof(header))) {
            break;
        }
        uint64_t size = (uint64_t{header[0]} << 24) | (uint64_t{header[1]} << 16) |
                        (uint64_t{header[2]} << 8) | uint64_t{header[3]};
        boxes.emplace_back(reinterpret_cast<char*>(header + 4), 4);
        if (size == 1) {
            unsigned char large[8];
            file.read(reinterpret_cast<char*>(large), sizeof(large));
            size = 0;
            for (unsigned char byte : large) {
                size = (size << 8) | byte;
            }
            file.seekg(static_cast<std::streamoff>(size) - 16, std::ios::cur);
        } else if (size < 8) {
            break;
        } else {
            file.seekg(static_cast<std::streamoff>(size) - 8, std::ios::cur);
        }
    }
    return boxes;
}

// Duration in seconds of the samples a decoder returns for `path`, which
// applies the encoder delay and padding that the container records.
double decodedDuration(const std::string& path, const TempDir& scratch) {
    const std::string wav = scratch.file("decoded.wav");
    runFfmpeg("-i " + shellQuote(path) + " -c:a pcm_s16le " + shellQuote(wav));
    return runFfprobe(wav).duration();
}

class AudioTranscodeTest : public ::testing::Test {
protected:
    // Transcodes `input` and returns ffprobe's view of the output.
    FfprobeResult transcode(const std::string& input, const std::string& output_name,
                            const AudioOptions& options) {
        output_ = scratch_.file(output_name);
        const Status status = transcodeAudio(input, output_, options, Limits{}, nullptr);
        if (!status.ok()) {
            throw std::runtime_error("transcode audio: " + status.error().toLogString());
        }
        return runFfprobe(output_);
    }

    static AudioOptions format(const std::string& name) {
        AudioOptions options;
        options.format = name;
        return options;
    }

    TempDir scratch_{"bitmill-audio-transcode"};
    std::string output_;
};

TEST_F(AudioTranscodeTest, EncodesMp3ByDefault) {
    const FfprobeResult probe = transcode(testing::videoWithAudioMp4(), "out.mp3", {});
    EXPECT_EQ(probe.formatName(), "mp3");
    ASSERT_NE(probe.stream("audio"), nullptr);
    EXPECT_EQ(probe.stream("audio")->value("codec_name", ""), "mp3");
    EXPECT_EQ(probe.stream("audio")->value("sample_rate", ""), "48000");
    EXPECT_EQ(probe.stream("audio")->value("channels", 0), 2);
    EXPECT_EQ(probe.streamCount("video"), 0);
    // 128 kb/s constant bitrate.
    EXPECT_EQ(probe.stream("audio")->value("bit_rate", ""), "128000");
    EXPECT_NEAR(decodedDuration(output_, scratch_), 2.0, 0.002);
}

TEST_F(AudioTranscodeTest, EncodesAacInFaststartM4a) {
    const FfprobeResult probe = transcode(testing::audioOnlyM4a(), "out.m4a", format("aac"));
    EXPECT_NE(probe.formatName().find("mp4"), std::string::npos);
    EXPECT_EQ(probe.json["format"]["tags"].value("major_brand", ""), "M4A ");
    ASSERT_NE(probe.stream("audio"), nullptr);
    EXPECT_EQ(probe.stream("audio")->value("codec_name", ""), "aac");
    EXPECT_EQ(probe.stream("audio")->value("sample_rate", ""), "44100");
    EXPECT_EQ(probe.stream("audio")->value("channels", 0), 2);
    EXPECT_NEAR(probe.duration(), 3.0, 0.001);
    const auto boxes = topLevelBoxes(output_);
    const auto moov = std::find(boxes.begin(), boxes.end(), "moov");
    const auto mdat = std::find(boxes.begin(), boxes.end(), "mdat");
    ASSERT_NE(moov, boxes.end());
    ASSERT_NE(mdat, boxes.end());
    EXPECT_LT(moov - boxes.begin(), mdat - boxes.begin());
}

TEST_F(AudioTranscodeTest, EncodesWavWithExactDuration) {
    const FfprobeResult probe = transcode(testing::videoWithAudioMp4(), "out.wav",
                                          format("wav"));
    EXPECT_EQ(probe.formatName(), "wav");
    EXPECT_EQ(probe.stream("audio")->value("codec_name", ""), "pcm_s16le");
    // The source's edit list ends at 2 s; the decoder's padding is dropped.
    EXPECT_NEAR(probe.duration(), 2.0, 0.0001);
}

TEST_F(AudioTranscodeTest, EncodesVorbisInOgg) {
    const FfprobeResult probe = transcode(mono22050Wav(), "out.ogg", format("ogg"));
    EXPECT_EQ(probe.formatName(), "ogg");
    EXPECT_EQ(probe.stream("audio")->value("codec_name", ""), "vorbis");
    EXPECT_EQ(probe.stream("audio")->value("sample_rate", ""), "22050");
    EXPECT_EQ(probe.stream("audio")->value("channels", 0), 1);
    EXPECT_NEAR(decodedDuration(output_, scratch_), 2.5, 0.001);
}

TEST_F(AudioTranscodeTest, EncodesOpusAt48kHz) {
    const FfprobeResult probe = transcode(mono22050Wav(), "out.opus", format("opus"));
    EXPECT_EQ(probe.formatName(), "ogg");
    EXPECT_EQ(probe.stream("audio")->value("codec_name", ""), "opus");
    EXPECT_EQ(probe.stream("audio")->value("sample_rate", ""), "48000");
    EXPECT_NEAR(decodedDuration(output_, scratch_), 2.5, 0.001);
}

TEST_F(AudioTranscodeTest, EncodesFlac) {
    const FfprobeResult probe = transcode(voiceOpusOgg(), "out.flac", format("flac"));
    EXPECT_EQ(probe.formatName(), "flac");
    EXPECT_EQ(probe.stream("audio")->value("codec_name", ""), "flac");
    EXPECT_EQ(probe.stream("audio")->value("sample_rate", ""), "48000");
    EXPECT_EQ(probe.stream("audio")->value("channels", 0), 1);
    EXPECT_NEAR(probe.duration(), 2.0, 0.001);
}

TEST_F(AudioTranscodeTest, ResamplesSpeechTo16kHzMono) {
    // Speech recognizers take 16 kHz mono PCM; voice notes come as WAV at
    // other rates or as Opus in Ogg.
    AudioOptions options = format("wav");
    options.channels = 1;
    options.sample_rate = 16000;
    const std::pair<std::string, double> inputs[] = {{mono22050Wav(), 2.5},
                                                     {voiceOpusOgg(), 2.0}};
    for (const auto& [input, duration] : inputs) {
        const FfprobeResult probe = transcode(input, "speech.wav", options);
        EXPECT_EQ(probe.stream("audio")->value("codec_name", ""), "pcm_s16le") << input;
        EXPECT_EQ(probe.stream("audio")->value("sample_rate", ""), "16000") << input;
        EXPECT_EQ(probe.stream("audio")->value("channels", 0), 1) << input;
        EXPECT_NEAR(probe.duration(), duration, 0.001) << input;
    }
}

TEST_F(AudioTranscodeTest, UpmixesMonoToStereo) {
    AudioOptions options = format("mp3");
    options.channels = 2;
    const FfprobeResult probe = transcode(mono22050Wav(), "stereo.mp3", options);
    EXPECT_EQ(probe.stream("audio")->value("channels", 0), 2);
    EXPECT_EQ(probe.stream("audio")->value("sample_rate", ""), "22050");
}

TEST_F(AudioTranscodeTest, DownmixesFiveOneToStereo) {
    AudioOptions options = format("wav");
    options.channels = 2;

    // The tone is at -21 dBFS RMS. libswresample scales the downmix matrix
    // so that no sum can clip 16-bit output, which costs a few dB more.

    // Front left stays left.
    transcode(fiveOneWithToneIn("FL"), "front-left.wav", options);
    const auto left_only = testing::channelRmsLevels(output_);
    ASSERT_EQ(left_only.size(), 2U);
    EXPECT_GT(left_only[0], -30.0);
    EXPECT_LT(left_only[1], -80.0);

    // Centre goes to both sides equally, 3 dB below front left.
    transcode(fiveOneWithToneIn("FC"), "centre.wav", options);
    const auto centre = testing::channelRmsLevels(output_);
    ASSERT_EQ(centre.size(), 2U);
    EXPECT_NEAR(centre[0], left_only[0] - 3.0, 1.0);
    EXPECT_NEAR(centre[0], centre[1], 0.1);
}

TEST_F(AudioTranscodeTest, KeepsFiveOneWhenEncoderAcceptsIt) {
    const FfprobeResult probe = transcode(fiveOneWithToneIn("FL"), "surround.m4a",
                                          format("aac"));
    EXPECT_EQ(probe.stream("audio")->value("channels", 0), 6);
}

TEST_F(AudioTranscodeTest, FitsFiveOneIntoStereoForMp3) {
    // LAME takes mono and stereo only.
    const FfprobeResult probe = transcode(fiveOneWithToneIn("FL"), "surround.mp3",
                                          format("mp3"));
    EXPECT_EQ(probe.stream("audio")->value("channels", 0), 2);
}

TEST_F(AudioTranscodeTest, TrimsStartAndEnd) {
    AudioOptions options = format("wav");
    options.start = 0.75;
    options.end = 2.0;
    const FfprobeResult probe = transcode(testing::audioOnlyM4a(), "trimmed.wav", options);
    EXPECT_NEAR(probe.duration(), 1.25, 0.0001);
}

TEST_F(AudioTranscodeTest, TrimsStartOnly) {
    AudioOptions options = format("flac");
    options.start = 1.0;
    const FfprobeResult probe = transcode(testing::audioOnlyM4a(), "tail.flac", options);
    EXPECT_NEAR(probe.duration(), 2.0, 0.001);
}

TEST_F(AudioTranscodeTest, NormalizesLoudness) {
    const std::string quiet = inputDir().file("quiet-noise.wav");
    runFfmpeg("-f lavfi -i anoisesrc=color=pink:amplitude=0.05:duration=6:sample_rate=44100 "
              "-ac 2 " +
              shellQuote(quiet));
    ASSERT_LT(testing::integratedLoudness(quiet), -35.0);
    AudioOptions options = format("wav");
    options.normalize_lufs = -16;
    const FfprobeResult probe = transcode(quiet, "loud.wav", options);
    // Single-pass loudnorm lands within about 1 LU of the target.
    EXPECT_NEAR(testing::integratedLoudness(output_), -16.0, 1.5);
    EXPECT_EQ(probe.stream("audio")->value("sample_rate", ""), "44100");
    EXPECT_NEAR(probe.duration(), 6.0, 0.001);
}

TEST_F(AudioTranscodeTest, MapsQualityToVariableBitrate) {
    AudioOptions low = format("mp3");
    low.quality = 0;
    AudioOptions high = format("mp3");
    high.quality = 100;
    const std::string noise = inputDir().file("white-noise.wav");
    runFfmpeg("-f lavfi -i anoisesrc=amplitude=0.3:duration=3:sample_rate=44100 -ac 2 " +
              shellQuote(noise));
    const FfprobeResult low_probe = transcode(noise, "low.mp3", low);
    const FfprobeResult high_probe = transcode(noise, "high.mp3", high);
    const double low_rate = std::stod(low_probe.json["format"].value("bit_rate", "0"));
    const double high_rate = std::stod(high_probe.json["format"].value("bit_rate", "0"));
    EXPECT_GT(high_rate, low_rate * 2) << low_rate << " vs " << high_rate;
}

TEST_F(AudioTranscodeTest, UsesRequestedBitrate) {
    AudioOptions options = format("aac");
    options.bitrate = 64000;
    const FfprobeResult probe = transcode(testing::audioOnlyM4a(), "low.m4a", options);
    const double bitrate = std::stod(probe.stream("audio")->value("bit_rate", "0"));
    EXPECT_NEAR(bitrate, 64000, 12000);
}

TEST_F(AudioTranscodeTest, ReportsProgressUpTo100) {
    std::mutex mutex;
    std::vector<int> reports;
    const std::string out = scratch_.file("progress.mp3");
    const Status status = transcodeAudio(testing::audioOnlyM4a(), out, format("mp3"), Limits{},
                                         [&](int percent) {
                                             std::lock_guard lock(mutex);
                                             reports.push_back(percent);
                                         });
    ASSERT_TRUE(status.ok()) << status.error().toLogString();
    ASSERT_GE(reports.size(), 3U);
    EXPECT_EQ(reports.back(), 100);
    EXPECT_TRUE(std::is_sorted(reports.begin(), reports.end()));
    EXPECT_GE(reports.front(), 0);
    EXPECT_LT(reports.front(), 50);
}

TEST_F(AudioTranscodeTest, RejectsInputWithoutAudio) {
    const std::string out = scratch_.file("none.mp3");
    const Status status = transcodeAudio(testing::videoOnlyMp4(), out, {}, Limits{}, nullptr);
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().code(), ErrorCode::UnsupportedMedia);
    EXPECT_NE(status.error().message().find("no audio stream"), std::string::npos)
        << status.error().message();
    EXPECT_FALSE(std::filesystem::exists(out));
}

TEST_F(AudioTranscodeTest, RejectsTruncatedInput) {
    const std::string out = scratch_.file("broken.mp3");
    const Status status =
        transcodeAudio(testing::truncatedNoMoovMp4(), out, {}, Limits{}, nullptr);
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().code(), ErrorCode::UnsupportedMedia);
    EXPECT_FALSE(std::filesystem::exists(out));
}

TEST_F(AudioTranscodeTest, RejectsDurationOverLimit) {
    Limits limits;
    limits.max_duration_seconds = 2;
    const std::string out = scratch_.file("long.mp3");
    const Status status = transcodeAudio(testing::audioOnlyM4a(), out, {}, limits, nullptr);
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().code(), ErrorCode::ResourceExhausted);
    EXPECT_NE(status.error().message().find("max_duration_seconds"), std::string::npos);
    EXPECT_FALSE(std::filesystem::exists(out));
}

TEST_F(AudioTranscodeTest, RejectsInvalidOptions) {
    struct Case {
        std::string name;
        AudioOptions options;
        std::string message_part;
    };
    std::vector<Case> cases;
    cases.push_back({"format", format("aiff"), "format 'aiff'"});
    AudioOptions channels;
    channels.channels = 6;
    cases.push_back({"channels", channels, "channels 6"});
    AudioOptions opus_rate = format("opus");
    opus_rate.sample_rate = 44100;
    cases.push_back({"opus sample rate", opus_rate, "48000"});
    AudioOptions quality;
    quality.quality = 101;
    cases.push_back({"quality", quality, "quality 101"});
    AudioOptions range;
    range.start = 2;
    range.end = 1;
    cases.push_back({"range", range, "end 1"});
    AudioOptions late_start;
    late_start.start = 10;
    cases.push_back({"start past end", late_start, "start 10"});

    for (const Case& test_case : cases) {
        const std::string out = scratch_.file("invalid.mp3");
        const Status status =
            transcodeAudio(testing::audioOnlyM4a(), out, test_case.options, Limits{}, nullptr);
        ASSERT_FALSE(status.ok()) << test_case.name;
        EXPECT_EQ(status.error().code(), ErrorCode::InvalidArgument) << test_case.name;
        EXPECT_NE(status.error().message().find(test_case.message_part), std::string::npos)
            << test_case.name << ": " << status.error().message();
        EXPECT_FALSE(std::filesystem::exists(out)) << test_case.name;
    }
}

}  // namespace
}  // namespace bitmill::media
