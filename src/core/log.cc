#include "core/log.h"

#include <spdlog/sinks/stdout_sinks.h>

#include <mutex>

namespace bitmill::log {

namespace {

std::mutex& registryMutex() {
    static std::mutex mutex;
    return mutex;
}

spdlog::level::level_enum& currentLevel() {
    static spdlog::level::level_enum level = spdlog::level::info;
    return level;
}

}  // namespace

std::shared_ptr<spdlog::logger> get(const std::string& component) {
    std::lock_guard lock(registryMutex());
    if (auto existing = spdlog::get(component)) {
        return existing;
    }
    static auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    auto logger = std::make_shared<spdlog::logger>(component, sink);
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %L %n: %v", spdlog::pattern_time_type::utc);
    logger->set_level(currentLevel());
    spdlog::register_logger(logger);
    return logger;
}

void setLevel(const std::string& level) {
    std::lock_guard lock(registryMutex());
    currentLevel() = spdlog::level::from_str(level);
    spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& logger) {
        logger->set_level(currentLevel());
    });
}

}  // namespace bitmill::log
