// Validation of a POST /tasks body: the kind, the input (file_id or url),
// the shared options and the kind's options, merged from the top level and
// an "options" object.
#pragma once

#include <optional>
#include <string>

#include "core/error.h"
#include "core/json.h"
#include "core/media_properties.h"
#include "domain/delivery_path.h"
#include "domain/task_options.h"

namespace bitmill::domain {

struct TaskRequest {
    std::string kind;  // canonical ("subtitle" is stored as "subtitles")
    std::optional<std::string> file_id;
    // The input URL; for kind http the URL the request is sent to.
    std::optional<std::string> url;
    std::optional<std::string> ref;
    std::optional<std::string> folder;
    std::optional<std::string> filename;
    std::optional<std::string> webhook_url;
    // Validated options to store and echo: every option given except kind,
    // url, file_id, webhook_url and workflow, with canonical values.
    Json options = Json::object();
    // Validated steps for kind workflow (see validateWorkflowSteps), else null.
    Json workflow;
};

// Validates a POST /tasks body. The kind must be known, and exactly one of
// file_id or url is required: ingest takes only url, and http takes url as
// its target with an optional file_id. Kind options may sit at the top level
// or inside "options", and the top level wins on conflict. Null values count
// as absent. Every option name must be known for the kind, of the right
// JSON type and in range (see validateKindOptions). Returns InvalidArgument
// naming the field or option, its value and what is accepted.
//
// Kinds other than ingest, video, image and audio are validated too, but
// whether they can run is for the caller to decide.
Result<TaskRequest> parseTaskRequest(const Json& body);

// Checks a parsed request of kind video, image or audio against its input
// file `file_id` with the measured properties `input`, for when the input
// is known at creation. A video task needs a video or an animated GIF, an
// audio task a video or audio file with an audio stream, and an image task
// an image or a video. `start` and `end` must lie within the input's
// duration when it is known, and `start` of an image task needs a video
// input. Returns InvalidArgument naming the input's kind, or the option, its
// value and the duration. Other kinds pass.
Status checkTaskInputFile(const TaskRequest& request, const std::string& file_id,
                          const MediaProperties& input);

}  // namespace bitmill::domain
