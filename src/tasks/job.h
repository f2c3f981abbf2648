// The contract between a worker and the task process it starts: the job
// file the worker writes and the result file the task process writes back.
// Both are JSON in the task's own work directory.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/error.h"
#include "core/json.h"
#include "core/media_properties.h"

namespace bitmill::tasks {

struct JobSpec {
    std::string task_id;
    std::string kind;
    Json options = Json::object();
    // Local path of the input file; empty when the input is a URL.
    std::string input_path;
    std::string input_url;
    // Measured properties of the input file, when it was probed before (at
    // upload or ingest), so the task process need not probe it again.
    std::optional<MediaProperties> input_props;
    std::string work_dir;
    Limits limits;
    std::vector<std::string> url_allow_list;

    Json toJson() const;
    static Result<JobSpec> fromJson(const Json& json);
};

// A file the task process produced, with its measured properties.
struct ProducedFile {
    std::string path;
    MediaProperties props;
};

struct JobResult {
    // The task's output (for ingest: the fetched file itself).
    std::optional<ProducedFile> output;
    // The fetched original of a URL input to a video/image/audio task; the
    // worker publishes it as the original file of a new media.
    std::optional<ProducedFile> fetched_input;
    std::optional<Error> error;

    Json toJson() const;
    static Result<JobResult> fromJson(const Json& json);
};

Json limitsToJson(const Limits& limits);
Limits limitsFromJson(const Json& json);

// Name of the result file inside the work directory.
inline constexpr const char* kResultFileName = "result.json";

}  // namespace bitmill::tasks
