// Settings of a bitmill process, with the documented defaults.
// core/config_loader.cc fills the struct from a config file, BITMILL_*
// environment variables and command-line flags. A flag beats a variable,
// and a variable beats the file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace bitmill {

struct Limits {
    int64_t max_upload_bytes = 10LL * 1024 * 1024 * 1024;  // 10 GiB per file
    int64_t max_image_pixels = 100'000'000;                 // 100 MP decoded
    int max_video_width = 8192;
    int max_video_height = 8192;
    double max_duration_seconds = 4 * 3600.0;
    int64_t max_fetch_bytes = 10LL * 1024 * 1024 * 1024;  // URL inputs
    int fetch_timeout_seconds = 600;
    int max_redirects = 5;
    int task_timeout_seconds = 3600;         // wall time of one attempt
    int task_cpu_seconds = 4 * 3600;         // RLIMIT_CPU of the task process
    int64_t task_memory_bytes = 4LL << 30;   // RLIMIT_AS of the task process
    int max_request_body_bytes = 1 << 20;    // JSON API bodies
};

struct Config {
    std::string data_dir = "bitmill-data";
    std::string listen = "127.0.0.1:8080";
    std::string delivery_listen = "127.0.0.1:8081";
    // Base URL that file `url` fields carry; empty means derived from
    // delivery_listen as http://host:port.
    std::string public_delivery_url;
    // Key to install for the default project instead of generating one.
    std::string api_key;
    // Empty means sqlite at {data_dir}/bitmill.db.
    std::string database_url;
    // Empty means local files under {data_dir}/files.
    std::string storage_url;
    // Number of tasks this process runs at once. -1 means one more than the
    // CPU cores, and 0 runs none (an API-only process of a scale-out deployment).
    int workers = -1;
    int max_attempts = 3;
    int lease_seconds = 30;
    int retry_backoff_seconds = 5;
    // Response body format when a request does not choose one: "bare" or
    // "envelope".
    std::string default_response_mode = "bare";
    bool delivery_private = false;
    // When above 0 and the storage can presign URLs (S3), delivery responds
    // to a GET with a 302 to a presigned URL valid this many seconds, instead
    // of streaming the bytes through bitmill.
    int delivery_redirect_seconds = 0;
    // Hosts or CIDR ranges that URL inputs may reach although they are
    // loopback or private, e.g. "127.0.0.1/32,media.internal".
    std::vector<std::string> url_allow_list;
    // host:port of the health and metrics listener of `bitmill worker`;
    // empty starts none.
    std::string health_listen;
    std::string log_level = "info";
    // Path of the bitmill executable, used to start task processes.
    std::string executable_path;
    Limits limits;
};

}  // namespace bitmill
