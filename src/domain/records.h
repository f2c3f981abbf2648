// The stored objects of bitmill: projects, API keys, media, files, tasks,
// chunked uploads and idempotency records. Plain values; db/ stores them
// and api/ maps them to the JSON of the API contract.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "core/media_properties.h"

namespace bitmill::domain {

enum class TaskStatus { Pending, Waiting, Processing, Completed, Failed, Cancelled };

std::string_view toString(TaskStatus status);
std::optional<TaskStatus> parseTaskStatus(std::string_view text);

// True for completed, failed and cancelled: no further transition.
bool isFinal(TaskStatus status);

struct Project {
    std::string id;  // prj_…
    std::string name;
    bool delivery_private = false;
    // Secret for signing webhooks ("whsec_" + base64), generated at creation.
    std::string webhook_secret;
    int64_t created_ms = 0;
};

struct ApiKey {
    std::string id;  // key_…
    std::string project_id;
    std::string name;
    // First characters of the key, shown by `bitmill keys list` so an
    // operator can tell keys apart without the secret.
    std::string display_prefix;
    std::string hash;  // hex SHA-256 of the whole key
    // The key sealed with the server secret (crypto::seal). Signed delivery
    // URLs are an HMAC keyed with the API key itself, so verifying one needs
    // the key back; authentication only ever compares `hash`.
    std::string sealed_key;
    int64_t created_ms = 0;
    std::optional<int64_t> revoked_ms;
};

struct MediaRecord {
    std::string id;  // med_…
    std::string project_id;
    std::optional<std::string> kind;  // video|image|audio, null while empty
    std::optional<std::string> title;
    std::optional<std::string> alt;
    std::optional<int> width;
    std::optional<int> height;
    std::optional<double> duration;
    std::optional<std::string> background;
    Json metadata = Json::object();
    int64_t created_ms = 0;
    int64_t updated_ms = 0;
};

struct FileRecord {
    std::string id;  // file_…
    std::string project_id;
    std::string media_id;
    std::string object = "source";  // source|track|intelligence
    MediaProperties props;           // measured; props.kind is the File kind
    int64_t filesize = 0;
    std::optional<std::string> label;
    std::optional<std::string> ref;
    std::optional<std::string> folder;
    std::optional<std::string> filename;
    std::string storage_key;    // key in the blob store
    std::string delivery_path;  // path on the delivery listener, no leading '/'
    std::string etag;           // quoted strong ETag for delivery
    Json metadata = Json::object();
    bool original = false;
    std::string created_by;
    std::string status = "ready";  // waiting|processing|ready|failed
    int64_t created_ms = 0;
    int64_t updated_ms = 0;
};

struct TaskRecord {
    std::string id;  // task_…
    std::string project_id;
    std::string kind;
    TaskStatus status = TaskStatus::Pending;
    int progress = 0;
    std::optional<std::string> input_file_id;
    std::optional<std::string> input_url;
    std::optional<std::string> media_id;  // media that outputs join
    Json options = Json::object();        // validated, normalized options
    std::optional<std::string> output_file_id;
    std::optional<std::string> error;
    std::string created_by;
    std::optional<std::string> parent_id;
    std::optional<std::string> webhook_url;
    int attempts = 0;
    int max_attempts = 3;
    std::optional<std::string> lease_owner;
    std::optional<int64_t> lease_expires_ms;
    int64_t run_after_ms = 0;
    int64_t created_ms = 0;
    int64_t updated_ms = 0;
    std::optional<int64_t> started_ms;
    std::optional<int64_t> finished_ms;
};

// State of a chunked upload to one delivery path.
struct UploadRecord {
    std::string id;  // upl_…
    std::string project_id;
    std::string path;  // folder/filename, no leading '/'
    int64_t total_bytes = 0;
    // Received byte ranges as sorted, merged [first, last] pairs.
    std::vector<std::pair<int64_t, int64_t>> received;
    int64_t created_ms = 0;
    int64_t updated_ms = 0;
};

// A stored response for an Idempotency-Key.
struct IdempotencyRecord {
    std::string project_id;
    std::string key;
    std::string request_hash;  // hex SHA-256 of method, path and body
    int status_code = 0;
    std::string response_body;
    int64_t created_ms = 0;
};

}  // namespace bitmill::domain
