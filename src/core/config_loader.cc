#include "core/config_loader.h"

#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>

namespace bitmill {

namespace {

using Setter = std::function<Status(Config&, const std::string&)>;

struct Setting {
    const char* name;
    const char* default_text;
    const char* help;
    Setter set;
};

Error badValue(const char* name, const std::string& value, const char* expected) {
    return Error::invalidArgument("invalid setting " + std::string(name) + ": '" + value +
                                  "' is not " + expected);
}

template <typename Number>
Setter numberSetter(Number Config::*field, const char* name, Number minimum) {
    return [field, name, minimum](Config& config, const std::string& value) -> Status {
        char* end = nullptr;
        long long parsed = std::strtoll(value.c_str(), &end, 10);
        if (value.empty() || *end != '\0' || parsed < static_cast<long long>(minimum)) {
            return badValue(name, value, "a whole number in range");
        }
        config.*field = static_cast<Number>(parsed);
        return okStatus();
    };
}

template <typename Number>
Setter limitSetter(Number Limits::*field, const char* name, Number minimum,
                   int64_t multiplier = 1) {
    return [field, name, minimum, multiplier](Config& config, const std::string& value) -> Status {
        char* end = nullptr;
        long double parsed = std::strtold(value.c_str(), &end);
        if (value.empty() || *end != '\0' || parsed < static_cast<long double>(minimum)) {
            return badValue(name, value, "a positive number");
        }
        config.limits.*field = static_cast<Number>(parsed * multiplier);
        return okStatus();
    };
}

Setter stringSetter(std::string Config::*field) {
    return [field](Config& config, const std::string& value) -> Status {
        config.*field = value;
        return okStatus();
    };
}

Status setBool(bool& out, const char* name, const std::string& value) {
    if (value == "true" || value == "1" || value == "yes" || value == "on") {
        out = true;
    } else if (value == "false" || value == "0" || value == "no" || value == "off") {
        out = false;
    } else {
        return badValue(name, value, "true or false");
    }
    return okStatus();
}

const std::vector<Setting>& settings() {
    static const std::vector<Setting> kSettings = {
        {"data_dir", "bitmill-data", "folder for the SQLite database, files and task work",
         stringSetter(&Config::data_dir)},
        {"listen", "127.0.0.1:8080", "host:port of the API listener (port 0 picks one)",
         stringSetter(&Config::listen)},
        {"delivery_listen", "127.0.0.1:8081", "host:port of the delivery listener",
         stringSetter(&Config::delivery_listen)},
        {"public_delivery_url", "http://{delivery_listen}",
         "base URL that file urls carry, e.g. https://media.example.com",
         stringSetter(&Config::public_delivery_url)},
        {"api_key", "(generated)",
         "API key to install for the default project instead of generating one",
         stringSetter(&Config::api_key)},
        {"database_url", "sqlite://{data_dir}/bitmill.db",
         "metadata and queue database: sqlite://PATH, or postgres://USER@HOST:PORT/DB shared "
         "by several processes",
         stringSetter(&Config::database_url)},
        {"storage_url", "{data_dir}/files",
         "where file bytes are stored: a folder, file://PATH, or "
         "s3://BUCKET/PREFIX?region=R&endpoint=URL&path_style=true",
         stringSetter(&Config::storage_url)},
        {"workers", "auto", "tasks run at once by this process: auto (CPU cores + 1), or a "
         "count; 0 runs no tasks (API only)",
         [](Config& config, const std::string& value) -> Status {
             if (value == "auto") {
                 config.workers = -1;
                 return okStatus();
             }
             char* end = nullptr;
             long parsed = std::strtol(value.c_str(), &end, 10);
             if (value.empty() || *end != '\0' || parsed < 0 || parsed > 1024) {
                 return badValue("workers", value, "auto or a whole number from 0 to 1024");
             }
             config.workers = static_cast<int>(parsed);
             return okStatus();
         }},
        {"health_listen", "(none)",
         "host:port of `bitmill worker`'s /healthz and /metrics listener",
         stringSetter(&Config::health_listen)},
        {"task_max_attempts", "3", "attempts before a task whose process died fails",
         numberSetter(&Config::max_attempts, "task_max_attempts", 1)},
        {"lease_seconds", "30", "a task lease not renewed for this long is reclaimed",
         numberSetter(&Config::lease_seconds, "lease_seconds", 3)},
        {"retry_backoff_seconds", "5", "delay before the first retry, doubled on each retry",
         numberSetter(&Config::retry_backoff_seconds, "retry_backoff_seconds", 0)},
        {"default_response_mode", "bare",
         "body format when a request does not choose one: bare or envelope",
         [](Config& config, const std::string& value) -> Status {
             if (value != "bare" && value != "envelope") {
                 return badValue("default_response_mode", value, "one of bare, envelope");
             }
             config.default_response_mode = value;
             return okStatus();
         }},
        {"delivery_private", "false", "require signed URLs for every delivery GET",
         [](Config& config, const std::string& value) {
             return setBool(config.delivery_private, "delivery_private", value);
         }},
        {"delivery_redirect_seconds", "0",
         "with S3 storage, answer delivery GETs with a 302 to a presigned URL valid this many "
         "seconds (0 streams the bytes through bitmill)",
         numberSetter(&Config::delivery_redirect_seconds, "delivery_redirect_seconds", 0)},
        {"url_allow", "(empty)",
         "comma-separated hosts or CIDR ranges URL inputs may reach although private",
         [](Config& config, const std::string& value) -> Status {
             config.url_allow_list.clear();
             std::stringstream stream(value);
             std::string item;
             while (std::getline(stream, item, ',')) {
                 if (!item.empty()) {
                     config.url_allow_list.push_back(item);
                 }
             }
             return okStatus();
         }},
        {"log_level", "info", "trace, debug, info, warn or error",
         [](Config& config, const std::string& value) -> Status {
             static const char* kLevels[] = {"trace", "debug", "info", "warn", "error", "off"};
             for (const char* level : kLevels) {
                 if (value == level) {
                     config.log_level = value;
                     return okStatus();
                 }
             }
             return badValue("log_level", value, "one of trace, debug, info, warn, error, off");
         }},
        {"max_upload_bytes", "10737418240 (10 GiB)", "largest accepted file, in bytes",
         limitSetter(&Limits::max_upload_bytes, "max_upload_bytes", int64_t{1})},
        {"max_image_pixels", "100000000", "largest image (width x height) that is decoded",
         limitSetter(&Limits::max_image_pixels, "max_image_pixels", int64_t{1})},
        {"max_video_width", "8192", "widest video that is decoded, in pixels",
         limitSetter(&Limits::max_video_width, "max_video_width", 16)},
        {"max_video_height", "8192", "tallest video that is decoded, in pixels",
         limitSetter(&Limits::max_video_height, "max_video_height", 16)},
        {"max_duration", "14400 (4 h)", "longest audio or video input, in seconds",
         limitSetter(&Limits::max_duration_seconds, "max_duration", 1.0)},
        {"max_fetch_bytes", "10737418240 (10 GiB)", "largest URL input, in bytes",
         limitSetter(&Limits::max_fetch_bytes, "max_fetch_bytes", int64_t{1})},
        {"fetch_timeout", "600", "time limit of one URL download, in seconds",
         limitSetter(&Limits::fetch_timeout_seconds, "fetch_timeout", 1)},
        {"task_timeout", "3600", "wall-time limit of one task attempt, in seconds",
         limitSetter(&Limits::task_timeout_seconds, "task_timeout", 1)},
        {"task_cpu_limit", "14400", "CPU-time limit of one task process, in seconds",
         limitSetter(&Limits::task_cpu_seconds, "task_cpu_limit", 1)},
        {"task_memory_limit_mb", "4096", "address-space limit of one task process, in MiB",
         limitSetter(&Limits::task_memory_bytes, "task_memory_limit_mb", int64_t{16},
                     int64_t{1} << 20)},
        {"max_request_body_bytes", "1048576", "largest JSON request body, in bytes",
         limitSetter(&Limits::max_request_body_bytes, "max_request_body_bytes", 1024)},
    };
    return kSettings;
}

const Setting* findSetting(const std::string& name) {
    for (const Setting& setting : settings()) {
        if (name == setting.name) {
            return &setting;
        }
    }
    return nullptr;
}

std::string environmentName(const char* name) {
    std::string out = "BITMILL_";
    for (const char* c = name; *c != '\0'; ++c) {
        out.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(*c))));
    }
    return out;
}

std::string trim(const std::string& text) {
    size_t first = text.find_first_not_of(" \t\r");
    if (first == std::string::npos) {
        return "";
    }
    size_t last = text.find_last_not_of(" \t\r");
    std::string out = text.substr(first, last - first + 1);
    if (out.size() >= 2 && out.front() == '"' && out.back() == '"') {
        out = out.substr(1, out.size() - 2);
    }
    return out;
}

Status applyFile(Config& config, const std::string& path) {
    std::ifstream in(path);
    if (!in) {
        return Error::invalidArgument("read config file '" + path + "': cannot open it");
    }
    std::string line;
    int number = 0;
    while (std::getline(in, line)) {
        ++number;
        std::string content = trim(line.substr(0, line.find('#')));
        if (content.empty()) {
            continue;
        }
        size_t equals = content.find('=');
        if (equals == std::string::npos) {
            return Error::invalidArgument("read config file '" + path + "' line " +
                                          std::to_string(number) + ": expected key = value");
        }
        std::string key = trim(content.substr(0, equals));
        const Setting* setting = findSetting(key);
        if (setting == nullptr) {
            return Error::invalidArgument("read config file '" + path + "' line " +
                                          std::to_string(number) + ": unknown setting '" + key +
                                          "'");
        }
        BM_RETURN_IF_ERROR(setting->set(config, trim(content.substr(equals + 1))));
    }
    return okStatus();
}

}  // namespace

Result<Config> loadConfig(const std::vector<std::string>& arguments,
                          std::vector<std::string>* positional) {
    // Flags are collected first so --config can name the file that the
    // variables and flags then override.
    std::vector<std::pair<const Setting*, std::string>> flags;
    std::string config_path;
    if (const char* from_environment = std::getenv("BITMILL_CONFIG")) {
        config_path = from_environment;
    }
    for (size_t i = 0; i < arguments.size(); ++i) {
        const std::string& word = arguments[i];
        if (word.rfind("--", 0) != 0) {
            positional->push_back(word);
            continue;
        }
        std::string name = word.substr(2);
        std::string value;
        bool has_value = false;
        if (size_t equals = name.find('='); equals != std::string::npos) {
            value = name.substr(equals + 1);
            name = name.substr(0, equals);
            has_value = true;
        }
        for (char& c : name) {
            if (c == '-') {
                c = '_';
            }
        }
        if (!has_value) {
            if (i + 1 >= arguments.size()) {
                return Error::invalidArgument("flag --" + name + " needs a value");
            }
            value = arguments[++i];
        }
        if (name == "config") {
            config_path = value;
            continue;
        }
        const Setting* setting = findSetting(name);
        if (setting == nullptr) {
            return Error::invalidArgument("unknown flag --" + name +
                                          "; run `bitmill help` for the settings");
        }
        flags.emplace_back(setting, value);
    }

    Config config;
    if (!config_path.empty()) {
        BM_RETURN_IF_ERROR(applyFile(config, config_path));
    }
    for (const Setting& setting : settings()) {
        if (const char* value = std::getenv(environmentName(setting.name).c_str())) {
            BM_RETURN_IF_ERROR(setting.set(config, value));
        }
    }
    for (const auto& [setting, value] : flags) {
        BM_RETURN_IF_ERROR(setting->set(config, value));
    }
    return config;
}

std::string settingsHelp() {
    std::ostringstream out;
    for (const Setting& setting : settings()) {
        std::string flag = setting.name;
        for (char& c : flag) {
            if (c == '_') {
                c = '-';
            }
        }
        out << "  --" << flag << " / " << environmentName(setting.name) << "\n      "
            << setting.help << " (default: " << setting.default_text << ")\n";
    }
    return out.str();
}

}  // namespace bitmill
