#include "tasks/task_process.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "core/log.h"
#include "domain/task_request.h"
#include "media/media.h"
#include "net/url_fetcher.h"
#include "tasks/job.h"
#include "tasks/sandbox.h"

namespace bitmill::tasks {

namespace {

namespace fs = std::filesystem;

// Writes "progress N" lines for the worker, skipping repeats.
class ProgressReporter {
public:
    void report(int percent) {
        std::lock_guard lock(mutex_);
        if (percent <= last_) {
            return;
        }
        last_ = percent;
        std::printf("progress %d\n", percent);
        std::fflush(stdout);
    }

    // Returns a callback that maps 0..100 onto [from, to].
    media::ProgressCallback range(int from, int to) {
        return [this, from, to](int percent) { report(from + (to - from) * percent / 100); };
    }

private:
    std::mutex mutex_;
    int last_ = -1;
};

std::optional<media::Dimension> dimensionOption(const Json& options, const char* name) {
    auto it = options.find(name);
    if (it == options.end() || it->is_null()) {
        return std::nullopt;
    }
    media::Dimension dimension;
    if (it->is_string()) {
        std::string text = it->get<std::string>();
        dimension.value = std::atoi(text.c_str());
        dimension.percent = !text.empty() && text.back() == '%';
    } else {
        dimension.value = it->get<int>();
    }
    return dimension;
}

template <typename T>
std::optional<T> optionalOption(const Json& options, const char* name) {
    auto it = options.find(name);
    if (it == options.end() || it->is_null()) {
        return std::nullopt;
    }
    return it->get<T>();
}

media::Geometry geometryOptions(const Json& options) {
    media::Geometry geometry;
    geometry.width = dimensionOption(options, "width");
    geometry.height = dimensionOption(options, "height");
    geometry.fit = options.value("fit", "fill");
    geometry.position = options.value("position", "center");
    return geometry;
}

media::VideoOptions videoOptions(const Json& options) {
    media::VideoOptions video;
    video.geometry = geometryOptions(options);
    video.background = options.value("background", "#000000");
    video.fps = optionalOption<double>(options, "fps");
    video.format = options.value("format", "mp4");
    video.codec = options.value("codec", video.format == "webm" ? "vp9" : "h264");
    video.audio_codec = options.value("audio_codec", video.format == "webm" ? "opus" : "aac");
    if (auto quality = options.find("quality"); quality != options.end()) {
        video.quality = domain::qualityValue(*quality).value_or(video.quality);
    }
    video.bitrate = optionalOption<int64_t>(options, "bitrate");
    video.audio_bitrate = optionalOption<int64_t>(options, "audio_bitrate");
    video.start = optionalOption<double>(options, "start");
    video.end = optionalOption<double>(options, "end");
    return video;
}

media::AudioOptions audioOptions(const Json& options) {
    media::AudioOptions audio;
    audio.format = options.value("format", "mp3");
    if (auto quality = options.find("quality"); quality != options.end()) {
        audio.quality = domain::qualityValue(*quality);
    }
    audio.bitrate = optionalOption<int64_t>(options, "bitrate");
    audio.channels = optionalOption<int>(options, "channels");
    audio.sample_rate = optionalOption<int>(options, "sample_rate");
    audio.start = optionalOption<double>(options, "start");
    audio.end = optionalOption<double>(options, "end");
    if (auto normalize = options.find("normalize"); normalize != options.end()) {
        if (normalize->is_boolean() && normalize->get<bool>()) {
            audio.normalize_lufs = -16.0;
        } else if (normalize->is_number()) {
            audio.normalize_lufs = normalize->get<double>();
        }
    }
    return audio;
}

// Formats whose input the image kind keeps when no format is requested.
bool isWebImageFormat(const std::string& container) {
    return container == "jpeg" || container == "png" || container == "webp" ||
           container == "avif" || container == "gif";
}

std::string imageExtension(const std::string& format) { return format == "jpeg" ? "jpg" : format; }

std::string videoExtension(const std::string& format) { return format; }

std::string audioExtension(const std::string& format) {
    if (format == "aac") {
        return "m4a";
    }
    if (format == "opus" || format == "ogg") {
        return "ogg";
    }
    return format;
}

Result<ProducedFile> probeProduced(const std::string& path, const Limits& limits) {
    BM_ASSIGN_OR_RETURN(MediaProperties props, media::probe(path, limits));
    return ProducedFile{path, std::move(props)};
}

// Downloads the job's URL into the work directory and probes it.
Result<ProducedFile> fetchInput(const JobSpec& job) {
    net::FetchOptions options;
    options.max_bytes = job.limits.max_fetch_bytes;
    options.timeout_seconds = job.limits.fetch_timeout_seconds;
    options.max_redirects = job.limits.max_redirects;
    options.allow_list = job.url_allow_list;
    std::string path = (fs::path(job.work_dir) / "fetched").string();
    BM_RETURN_IF_ERROR(net::fetchToFile(job.input_url, path, options));
    BM_ASSIGN_OR_RETURN(ProducedFile fetched, probeProduced(path, job.limits));
    // Give the file its real extension, found from its content.
    std::string named = path + "." + fetched.props.extension;
    fs::rename(path, named);
    fetched.path = named;
    return fetched;
}

Status runVideo(const JobSpec& job, const ProducedFile& input, ProgressReporter& progress,
                JobResult& result) {
    // FFmpeg decodes animated GIF, so a GIF becomes a video like any clip.
    bool animated_gif = input.props.kind == "image" && input.props.container == "gif" &&
                        input.props.animated.value_or(false);
    if (input.props.kind != "video" && !animated_gif) {
        return Error::invalidArgument("input is " + input.props.kind +
                                      ", but a video task needs a video or an animated GIF");
    }
    media::VideoOptions options = videoOptions(job.options);
    std::string output = (fs::path(job.work_dir) / ("output." + videoExtension(options.format)))
                             .string();
    BM_RETURN_IF_ERROR(media::transcodeVideo(input.path, output, options, job.limits,
                                             progress.range(5, 95)));
    BM_ASSIGN_OR_RETURN(result.output, probeProduced(output, job.limits));
    return okStatus();
}

Status runAudio(const JobSpec& job, const ProducedFile& input, ProgressReporter& progress,
                JobResult& result) {
    if (input.props.kind == "image") {
        return Error::invalidArgument("input is an image, but an audio task needs audio");
    }
    media::AudioOptions options = audioOptions(job.options);
    std::string output = (fs::path(job.work_dir) / ("output." + audioExtension(options.format)))
                             .string();
    BM_RETURN_IF_ERROR(media::transcodeAudio(input.path, output, options, job.limits,
                                             progress.range(5, 95)));
    BM_ASSIGN_OR_RETURN(result.output, probeProduced(output, job.limits));
    return okStatus();
}

// Reports no progress between 0 and 100: an image task takes well under a
// second, and each report would cost the worker a heartbeat write.
Status runImage(const JobSpec& job, const ProducedFile& input, JobResult& result) {
    if (input.props.kind == "audio") {
        return Error::invalidArgument("input is audio, but an image task needs an image or a "
                                      "video");
    }
    media::ImageOptions options;
    options.geometry = geometryOptions(job.options);
    options.background = optionalOption<std::string>(job.options, "background");
    if (auto format = job.options.find("format"); format != job.options.end()) {
        options.format = format->get<std::string>();
    } else if (input.props.kind == "image" && isWebImageFormat(input.props.container)) {
        options.format = input.props.container;
    } else {
        options.format = "jpeg";
    }
    if (auto quality = job.options.find("quality"); quality != job.options.end()) {
        options.quality = domain::qualityValue(*quality).value_or(options.quality);
    }

    std::string output =
        (fs::path(job.work_dir) / ("output." + imageExtension(options.format))).string();
    if (input.props.kind == "video") {
        media::FrameGrabOptions grab;
        grab.time = optionalOption<double>(job.options, "start");
        BM_RETURN_IF_ERROR(
            media::convertVideoFrame(input.path, output, grab, options, job.limits));
    } else {
        BM_RETURN_IF_ERROR(media::convertImage(input.path, output, options, job.limits));
    }
    BM_ASSIGN_OR_RETURN(result.output, probeProduced(output, job.limits));
    return okStatus();
}

Status runJob(const JobSpec& job, ProgressReporter& progress, JobResult& result) {
    ProducedFile input;
    if (!job.input_url.empty()) {
        BM_ASSIGN_OR_RETURN(input, fetchInput(job));
        progress.report(5);
        if (job.kind == "ingest") {
            result.output = input;
            return okStatus();
        }
        result.fetched_input = input;
    } else if (job.input_props && job.kind != "ingest") {
        input = ProducedFile{job.input_path, *job.input_props};
    } else {
        BM_ASSIGN_OR_RETURN(input, probeProduced(job.input_path, job.limits));
        if (job.kind == "ingest") {
            result.output = input;
            return okStatus();
        }
    }

    if (job.kind == "video") {
        return runVideo(job, input, progress, result);
    }
    if (job.kind == "audio") {
        return runAudio(job, input, progress, result);
    }
    if (job.kind == "image") {
        return runImage(job, input, result);
    }
    return Error::invalidArgument("task kind '" + job.kind + "' is not available in this build");
}

// Test hook: BITMILL_FAULT_INJECTION=crash, hang or spin makes the task
// process crash, sleep forever or use the CPU forever, to show that only
// its own task fails and that the time and CPU limits end it. quiet-pause
// closes stdout and sleeps 2 s before the task runs, like a process that
// is exiting, to show that the worker waits without using the CPU.
void applyFaultInjectionForTest() {
    const char* fault = std::getenv("BITMILL_FAULT_INJECTION");
    if (fault == nullptr) {
        return;
    }
    std::string_view mode(fault);
    if (mode == "crash") {
        raise(SIGSEGV);
    } else if (mode == "hang") {
        for (;;) {
            pause();
        }
    } else if (mode == "spin") {
        volatile uint64_t turns = 0;
        for (;;) {
            turns = turns + 1;
        }
    } else if (mode == "quiet-pause") {
        int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (null_fd >= 0) {
            dup2(null_fd, STDOUT_FILENO);
            close(null_fd);
        }
        std::this_thread::sleep_for(std::chrono::seconds(2));
    }
}

Status writeResult(const std::string& work_dir, const JobResult& result) {
    std::string path = (fs::path(work_dir) / kResultFileName).string();
    std::string temporary = path + ".tmp";
    {
        std::ofstream out(temporary, std::ios::trunc);
        out << result.toJson().dump();
        if (!out.good()) {
            return Error::internal("write task result", temporary);
        }
    }
    fs::rename(temporary, path);
    return okStatus();
}

}  // namespace

int runTaskProcess(const std::string& job_path) {
    auto logger = log::get("task");
    std::ifstream in(job_path);
    std::stringstream buffer;
    buffer << in.rdbuf();
    Json job_json = Json::parse(buffer.str(), nullptr, false);
    if (job_json.is_discarded()) {
        logger->error("read job file: not JSON path={}", job_path);
        return 2;
    }
    auto job = JobSpec::fromJson(job_json);
    if (!job.ok()) {
        logger->error("read job file: {}", job.error().toLogString());
        return 2;
    }

    if (auto status = media::initialize("bitmill"); !status.ok()) {
        logger->error("initialize media: {}", status.error().toLogString());
        return 2;
    }
    applyFaultInjectionForTest();

    ProgressReporter progress;
    progress.report(0);
    JobResult result;
    Status status = runJob(*job, progress, result);
    if (!status.ok()) {
        result = JobResult{};
        result.error = status.error();
    } else {
        progress.report(100);
    }
    if (auto written = writeResult(job->work_dir, result); !written.ok()) {
        logger->error("{}", written.error().toLogString());
        return 2;
    }
    return 0;
}

int runTaskHostProcess() {
    auto logger = log::get("task");
    if (auto status = media::initialize("bitmill"); !status.ok()) {
        logger->error("initialize media: {}", status.error().toLogString());
        return 2;
    }
    media::preloadForForkedProcesses();
    return serveTaskHost(STDIN_FILENO, [](const std::vector<std::string>& arguments) {
        if (arguments.size() == 2 && arguments[0] == "run-task") {
            return runTaskProcess(arguments[1]);
        }
        if ((arguments.size() == 2 || arguments.size() == 3) && arguments[0] == "probe") {
            return runProbeProcess(arguments[1], arguments.size() == 3 ? arguments[2] : "{}");
        }
        log::get("task")->error("task host: unknown command '{}', expected run-task or probe",
                                arguments.empty() ? "" : arguments[0]);
        return 2;
    });
}

int runProbeProcess(const std::string& path, const std::string& limits_json) {
    if (auto status = media::initialize("bitmill"); !status.ok()) {
        std::printf("%s\n", Json{{"error", {{"code", "internal"},
                                            {"message", status.error().message()}}}}
                                .dump()
                                .c_str());
        return 0;
    }
    Json limits_object = Json::parse(limits_json, nullptr, false);
    Limits limits = limits_object.is_object() ? limitsFromJson(limits_object) : Limits{};
    auto props = media::probe(path, limits);
    Json out;
    if (props.ok()) {
        out = Json{{"props", props->toJson()}};
    } else {
        out = Json{{"error",
                    {{"code", std::string(errorCodeName(props.error().code()))},
                     {"message", props.error().message()},
                     {"detail", props.error().detail()}}}};
    }
    std::printf("%s\n", out.dump().c_str());
    return 0;
}

}  // namespace bitmill::tasks
