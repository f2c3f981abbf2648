// Logging facade over spdlog: one named logger per component ("api",
// "access", "queue", "worker", "media", "db", "storage", "server"), all
// writing to stderr with the same pattern. Messages are short, with
// key=value context after them.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace bitmill::log {

// Returns the logger for `component`, creating it on first use. Thread-safe.
std::shared_ptr<spdlog::logger> get(const std::string& component);

// Sets the level of every logger ("trace", "debug", "info", "warn", "error").
void setLevel(const std::string& level);

}  // namespace bitmill::log
