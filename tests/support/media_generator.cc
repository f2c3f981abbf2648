// Generated test media, cached between test processes.
#include "media_generator.h"

#include <unistd.h>

#include <iomanip>
#include <sstream>

#include "process.h"
#include "test_data.h"

namespace bitmill::e2e {
namespace {

constexpr auto kGeneratorTimeout = std::chrono::seconds(300);

void runGenerator(const std::vector<std::string>& argv) {
    CommandOptions options;
    options.timeout = kGeneratorTimeout;
    runChecked(argv, options);
}

std::string formatSeconds(double seconds) {
    std::ostringstream text;
    text << std::fixed << std::setprecision(3) << seconds;
    return text.str();
}

// A short stable tag for a free-form string, for cache file names.
std::string nameTag(const std::string& text) {
    uint64_t hash = 1469598103934665603ULL;  // FNV-1a
    for (unsigned char c : text) {
        hash = (hash ^ c) * 1099511628211ULL;
    }
    std::ostringstream tag;
    tag << std::hex << (hash & 0xffffffffULL);
    return tag.str();
}

std::vector<std::string> videoEncoderArguments(const VideoSpec& spec) {
    std::vector<std::string> args = {"-c:v", spec.video_codec, "-pix_fmt", spec.pixel_format};
    if (spec.video_codec == "libx264") {
        args.insert(args.end(), {"-preset", "veryfast"});
    } else if (spec.video_codec == "libx265") {
        args.insert(args.end(), {"-preset", "ultrafast", "-x265-params", "log-level=error"});
    } else if (spec.video_codec == "libvpx-vp9" || spec.video_codec == "libvpx") {
        args.insert(args.end(), {"-deadline", "realtime", "-cpu-used", "8", "-b:v", "1M"});
    }
    return args;
}

}  // namespace

std::filesystem::path makeCached(
    const std::string& name, const std::function<void(const std::filesystem::path&)>& generate) {
    std::filesystem::path dir = cacheDir() / "media";
    std::filesystem::create_directories(dir);
    std::filesystem::path target = dir / name;
    if (std::filesystem::exists(target)) {
        return target;
    }
    FileLock lock(dir / ".lock");
    if (std::filesystem::exists(target)) {
        return target;
    }
    std::filesystem::path partial =
        dir / (".partial-" + std::to_string(getpid()) + "-" + target.filename().string());
    std::filesystem::remove(partial);
    try {
        generate(partial);
    } catch (...) {
        std::filesystem::remove(partial);
        throw;
    }
    std::filesystem::rename(partial, target);
    return target;
}

std::filesystem::path makeVideo(const VideoSpec& spec) {
    std::ostringstream name;
    name << "video-" << spec.width << "x" << spec.height << "-" << formatSeconds(spec.seconds)
         << "s-" << spec.fps << "fps-" << spec.video_codec << "-" << spec.pixel_format << "-"
         << (spec.audio ? spec.audio_codec + "-" + std::to_string(spec.sample_rate) + "-" +
                              std::to_string(spec.channels) + "ch"
                        : std::string("silent"))
         << "-" << nameTag(spec.source) << "." << spec.container;
    return makeCached(name.str(), [&](const std::filesystem::path& out) {
        std::vector<std::string> argv = {
            "ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i",
            spec.source + "=size=" + std::to_string(spec.width) + "x" +
                std::to_string(spec.height) + ":rate=" + std::to_string(spec.fps)};
        if (spec.audio) {
            argv.insert(argv.end(), {"-f", "lavfi", "-i",
                                     "sine=frequency=440:sample_rate=" +
                                         std::to_string(spec.sample_rate)});
        }
        argv.insert(argv.end(), {"-t", formatSeconds(spec.seconds)});
        auto encoder = videoEncoderArguments(spec);
        argv.insert(argv.end(), encoder.begin(), encoder.end());
        if (spec.audio) {
            argv.insert(argv.end(), {"-c:a", spec.audio_codec, "-ac",
                                     std::to_string(spec.channels)});
        } else {
            argv.push_back("-an");
        }
        argv.insert(argv.end(), {"-f", spec.container == "mkv" ? "matroska" : spec.container,
                                 out.string()});
        runGenerator(argv);
    });
}

std::filesystem::path makeImage(const ImageSpec& spec) {
    std::string name = "image-" + std::to_string(spec.width) + "x" + std::to_string(spec.height) +
                       "-" + nameTag(spec.source) + "." + spec.format;
    return makeCached(name, [&](const std::filesystem::path& out) {
        // The partial file name keeps the real extension, so image2 picks
        // the encoder from it.
        runGenerator({"ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i",
                      spec.source + "=size=" + std::to_string(spec.width) + "x" +
                          std::to_string(spec.height),
                      "-frames:v", "1", "-q:v", "3", "-update", "1", out.string()});
    });
}

std::filesystem::path makeAudio(const AudioSpec& spec) {
    std::string name = "audio-" + formatSeconds(spec.seconds) + "s-" +
                       std::to_string(spec.sample_rate) + "-" + std::to_string(spec.channels) +
                       "ch-" + spec.codec + "." + spec.container;
    return makeCached(name, [&](const std::filesystem::path& out) {
        std::string container = spec.container == "m4a" ? "ipod" : spec.container;
        runGenerator({"ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i",
                      "sine=frequency=440:sample_rate=" + std::to_string(spec.sample_rate) +
                          ":duration=" + formatSeconds(spec.seconds),
                      "-ac", std::to_string(spec.channels), "-c:a", spec.codec, "-f", container,
                      out.string()});
    });
}

std::filesystem::path makeFitPatternVideo() {
    return makeCached("fit-pattern-640x360.mp4", [](const std::filesystem::path& out) {
        runGenerator({"ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i",
                      "color=c=red:size=640x360:rate=25:duration=2,"
                      "drawbox=x=140:y=0:w=360:h=360:color=lime:t=fill",
                      "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-f", "mp4",
                      out.string()});
    });
}

std::filesystem::path makeHugeJpeg() {
    return makeCached("huge-20000x14000.jpg", [](const std::filesystem::path& out) {
        runGenerator({"vips", "grey", out.string() + "[Q=80]", "20000", "14000", "--uchar"});
    });
}

}  // namespace bitmill::e2e
