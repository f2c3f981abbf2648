// media::initialize: starts libvips with a small operation cache, leaves
// only the supported image loaders enabled, and routes libvips' and
// FFmpeg's own log output into the "media" logger.
#include <vips/vips.h>

#include <chrono>
#include <cstdarg>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "core/log.h"
#include "media/ffmpeg/ffmpeg.h"
#include "media/media.h"
#include "media/vips/vips_util.h"

namespace bitmill::media {

namespace {

// The operation cache only pays off when a process repeats an operation
// on the same image. Task processes are short-lived and the server only
// probes, so a small cache keeps memory and open files low.
constexpr int kCacheMaxOperations = 50;
constexpr size_t kCacheMaxBytes = 32 * 1024 * 1024;
constexpr int kCacheMaxFiles = 10;

// At most this many library log lines per window reach the logger; the rest
// are counted. One truncated PNG alone makes libvips warn hundreds of times.
constexpr int kMaxLinesPerWindow = 20;
constexpr auto kWindow = std::chrono::seconds(10);

// Longest FFmpeg line kept while its pieces arrive in several av_log calls.
constexpr size_t kMaxPendingLine = 4096;

spdlog::logger& mediaLogger() {
    // Never destroyed: FFmpeg and libvips threads may still log during exit.
    static auto* logger = new std::shared_ptr<spdlog::logger>(log::get("media"));
    return **logger;
}

// Limits the lines one library writes per time window, per process.
class LogThrottle {
  public:
    // Returns false when the line must be dropped. When a new window opens,
    // `dropped` receives the number of lines dropped in the previous one.
    bool admit(int& dropped) {
        std::lock_guard lock(mutex_);
        const auto now = std::chrono::steady_clock::now();
        dropped = 0;
        if (now - window_start_ >= kWindow) {
            dropped = dropped_;
            window_start_ = now;
            lines_ = 0;
            dropped_ = 0;
        }
        if (lines_ >= kMaxLinesPerWindow) {
            ++dropped_;
            return false;
        }
        ++lines_;
        return true;
    }

  private:
    std::mutex mutex_;
    std::chrono::steady_clock::time_point window_start_;
    int lines_ = 0;
    int dropped_ = 0;
};

void emit(LogThrottle& throttle, spdlog::level::level_enum level, std::string_view library,
          std::string_view text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
        text.remove_suffix(1);
    }
    if (text.empty()) {
        return;
    }
    int dropped = 0;
    if (!throttle.admit(dropped)) {
        return;
    }
    spdlog::logger& logger = mediaLogger();
    if (dropped > 0) {
        logger.log(level, "dropped library log lines library={} count={}", library, dropped);
    }
    logger.log(level, "{}: {}", library, text);
}

LogThrottle& vipsThrottle() {
    static auto* throttle = new LogThrottle();
    return *throttle;
}

LogThrottle& ffmpegThrottle() {
    static auto* throttle = new LogThrottle();
    return *throttle;
}

spdlog::level::level_enum levelOfGlib(GLogLevelFlags flags) {
    if ((flags & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL)) != 0) {
        return spdlog::level::err;
    }
    if ((flags & G_LOG_LEVEL_WARNING) != 0) {
        return spdlog::level::warn;
    }
    if ((flags & (G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO)) != 0) {
        return spdlog::level::debug;
    }
    return spdlog::level::trace;
}

void vipsLogHandler(const gchar* /*domain*/, GLogLevelFlags flags, const gchar* message,
                    gpointer /*user_data*/) {
    const auto level = levelOfGlib(flags);
    if (message == nullptr || !mediaLogger().should_log(level)) {
        return;
    }
    emit(vipsThrottle(), level, "libvips", message);
}

// FFmpeg's AV_LOG_ERROR becomes a warning: decoders report recoverable
// damage at that level, and an operation that really fails returns an
// Error that its caller logs once.
spdlog::level::level_enum levelOfFfmpeg(int level) {
    if (level <= AV_LOG_FATAL) {
        return spdlog::level::err;
    }
    if (level <= AV_LOG_WARNING) {
        return spdlog::level::warn;
    }
    if (level <= AV_LOG_INFO) {
        return spdlog::level::debug;
    }
    return spdlog::level::trace;
}

void ffmpegLogCallback(void* context, int level, const char* format, va_list arguments) {
    // A line may arrive in several calls; its pieces collect here.
    thread_local std::string pending;
    thread_local int print_prefix = 1;

    const auto spd_level = levelOfFfmpeg(level);
    if (level > AV_LOG_VERBOSE || !mediaLogger().should_log(spd_level)) {
        const size_t length = std::strlen(format);
        print_prefix = length > 0 && format[length - 1] == '\n';
        pending.clear();
        return;
    }
    char line[1024];
    av_log_format_line2(context, level, format, arguments, line, sizeof(line), &print_prefix);
    pending += line;
    if ((!pending.empty() && pending.back() == '\n') || pending.size() > kMaxPendingLine) {
        emit(ffmpegThrottle(), spd_level, "ffmpeg", pending);
        pending.clear();
    }
}

Status initializeOnce(const char* argv0) {
    g_log_set_handler(
        "VIPS",
        static_cast<GLogLevelFlags>(G_LOG_LEVEL_MASK | G_LOG_FLAG_FATAL | G_LOG_FLAG_RECURSION),
        vipsLogHandler, nullptr);
    // Debug and trace output of FFmpeg is never formatted.
    av_log_set_level(AV_LOG_VERBOSE);
    av_log_set_callback(ffmpegLogCallback);

    if (VIPS_INIT(argv0 != nullptr ? argv0 : "bitmill") != 0) {
        return Error::internal("initialize libvips: startup failed", vips::takeErrorBuffer());
    }
    vips_cache_set_max(kCacheMaxOperations);
    vips_cache_set_max_mem(kCacheMaxBytes);
    vips_cache_set_max_files(kCacheMaxFiles);

    // Loaders such as ImageMagick, PDF or Matlab widen the attack surface
    // and are no formats bitmill offers, so only the supported ones stay.
    vips_operation_block_set("VipsForeignLoad", TRUE);
    for (const char* loader : vips::kAllowedLoaders) {
        vips_operation_block_set(loader, FALSE);
    }
    mediaLogger().debug("libvips started version={}", vips_version_string());
    return okStatus();
}

}  // namespace

void preloadForForkedProcesses() {
    // The first lookup of an operation by name initializes the class of
    // every operation: about a fifth of the instructions of a task process
    // that converts a 64x64 PNG (callgrind, libvips 8.14).
    vips_type_find("VipsOperation", "thumbnail_source");

    // The first format sniff runs each loader's own setup.
    static const unsigned char kPngSignature[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    VipsSource* source = vips_source_new_from_memory(kPngSignature, sizeof(kPngSignature));
    if (source != nullptr) {
        vips_foreign_find_load_source(source);
        g_object_unref(source);
    }
    vips_error_clear();
}

Status initialize(const char* argv0) {
    static std::once_flag once;
    static Status status;
    std::call_once(once, [argv0] { status = initializeOnce(argv0); });
    return status;
}

}  // namespace bitmill::media
