// Checks media::initialize: repeated calls, log routing of libvips and
// FFmpeg into the "media" logger, and the blocked libvips loaders.
#include <spdlog/sinks/ostream_sink.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <iterator>
#include <memory>
#include <sstream>

#include "core/log.h"
#include "image_test_support.h"
#include "media/ffmpeg/ffmpeg.h"
#include "media/media.h"
#include "media/vips/image_probe.h"

namespace bitmill::media {
namespace {

// Copies what the "media" logger writes while it exists.
class CapturedLog {
  public:
    CapturedLog()
        : logger_(log::get("media")),
          sink_(std::make_shared<spdlog::sinks::ostream_sink_mt>(stream_)) {
        logger_->sinks().push_back(sink_);
    }
    CapturedLog(const CapturedLog&) = delete;
    CapturedLog& operator=(const CapturedLog&) = delete;
    ~CapturedLog() {
        auto& sinks = logger_->sinks();
        sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
    }
    std::string text() {
        logger_->flush();
        return stream_.str();
    }

  private:
    std::ostringstream stream_;
    std::shared_ptr<spdlog::logger> logger_;
    std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
};

class MediaInitializeTest : public testing::ImageTest {};

TEST_F(MediaInitializeTest, SecondCallSucceeds) {
    EXPECT_TRUE(initialize("again").ok());
    EXPECT_TRUE(initialize(nullptr).ok());
}

TEST_F(MediaInitializeTest, LibvipsWarningReachesMediaLogger) {
    CapturedLog captured;
    g_log("VIPS", G_LOG_LEVEL_WARNING, "test warning %d", 7);
    EXPECT_NE(captured.text().find("libvips: test warning 7"), std::string::npos)
        << captured.text();
}

TEST_F(MediaInitializeTest, FfmpegLinesReachMediaLogger) {
    CapturedLog captured;
    av_log(nullptr, AV_LOG_WARNING, "first part %d, ", 1);
    av_log(nullptr, AV_LOG_WARNING, "second part\n");
    // Info becomes debug, below the default "info" level.
    av_log(nullptr, AV_LOG_INFO, "chatty info line\n");
    const std::string text = captured.text();
    EXPECT_NE(text.find("ffmpeg: first part 1, second part"), std::string::npos) << text;
    EXPECT_EQ(text.find("chatty info line"), std::string::npos) << text;
}

TEST_F(MediaInitializeTest, UnsupportedLoadersAreBlocked) {
    // libvips reads PPM, CSV and matrix files, but bitmill only offers the
    // usual web and camera formats.
    const std::string ppm = temp_.file("red.ppm");
    testing::writeText(ppm, "P3\n1 1\n255\n255 0 0\n");
    EXPECT_FALSE(vips::isImage(ppm));
    const std::string matrix = temp_.file("matrix.mat");
    testing::writeText(matrix, "2 2\n1 2\n3 4\n");
    EXPECT_FALSE(vips::isImage(matrix));
}

int threadCount() {
    return static_cast<int>(std::distance(std::filesystem::directory_iterator("/proc/self/task"),
                                          std::filesystem::directory_iterator()));
}

TEST_F(MediaInitializeTest, PreloadStartsNoThread) {
    // The task host forks after preloading, which is safe only while it
    // has a single thread.
    const int before = threadCount();
    preloadForForkedProcesses();
    preloadForForkedProcesses();
    EXPECT_EQ(threadCount(), before);

    const std::string ppm = temp_.file("still-blocked.ppm");
    testing::writeText(ppm, "P3\n1 1\n255\n255 0 0\n");
    EXPECT_FALSE(vips::isImage(ppm)) << "preloading must not unblock loaders";
}

}  // namespace
}  // namespace bitmill::media
