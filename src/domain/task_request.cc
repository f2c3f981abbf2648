// Parsing of POST /tasks bodies: structure and input here, option rules in
// task_options.cc.
#include "domain/task_request.h"

#include <array>
#include <cstdio>

namespace bitmill::domain {

namespace {

constexpr size_t kMaxFileIdChars = 100;

// Top-level fields that are not options.
constexpr std::array<std::string_view, 4> kStructuralFields = {"kind", "file_id", "url", "options"};

bool isStructural(std::string_view name) {
    for (std::string_view field : kStructuralFields) {
        if (field == name) {
            return true;
        }
    }
    return false;
}

std::string show(const Json& value) {
    return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Result<std::string> parseKind(const Json& body) {
    std::string accepted = "; accepted: " + joinNames(knownKinds());
    if (!body.contains("kind") || body["kind"].is_null()) {
        return Error::invalidArgument("missing field \"kind\"" + accepted);
    }
    const Json& kind = body["kind"];
    if (!kind.is_string()) {
        return Error::invalidArgument("invalid field \"kind\": " + show(kind) +
                                      " must be a string" + accepted);
    }
    auto canonical = canonicalKind(kind.get_ref<const std::string&>());
    if (!canonical) {
        return Error::invalidArgument("unknown kind " + show(kind) + accepted);
    }
    return *canonical;
}

// Merges the "options" object and the top-level options, and the top level
// wins.
Result<Json> mergeOptions(const Json& body, const std::string& kind) {
    Json merged = Json::object();
    if (body.contains("options") && !body["options"].is_null()) {
        const Json& nested = body["options"];
        if (!nested.is_object()) {
            return Error::invalidArgument("invalid field \"options\": " + show(nested) +
                                          " must be an object");
        }
        for (const auto& [name, value] : nested.items()) {
            bool url_target = name == "url" && kind == "http";
            if (isStructural(name) && !url_target) {
                return Error::invalidArgument("field \"" + name +
                                              "\" belongs at the top level of the body, not "
                                              "inside \"options\"");
            }
            if (!value.is_null()) {
                merged[name] = value;
            }
        }
    }
    for (const auto& [name, value] : body.items()) {
        bool url_target = name == "url" && kind == "http";
        if ((!isStructural(name) || url_target) && !value.is_null()) {
            merged[name] = value;
        }
    }
    return merged;
}

Result<std::optional<std::string>> parseFileId(const Json& body) {
    if (!body.contains("file_id") || body["file_id"].is_null()) {
        return std::optional<std::string>();
    }
    const Json& file_id = body["file_id"];
    if (!file_id.is_string() || file_id.get_ref<const std::string&>().empty() ||
        file_id.get_ref<const std::string&>().size() > kMaxFileIdChars) {
        return Error::invalidArgument("invalid field \"file_id\": " + show(file_id) +
                                      " must be a file id such as \"file_abc123\"");
    }
    return std::optional<std::string>(file_id.get<std::string>());
}

Result<std::optional<std::string>> parseInputUrl(const Json& value) {
    if (value.is_null()) {
        return std::optional<std::string>();
    }
    if (!value.is_string()) {
        return Error::invalidArgument("invalid field \"url\": " + show(value) +
                                      " must be an http or https URL");
    }
    if (auto problem = httpUrlProblem("field \"url\"", value.get_ref<const std::string&>())) {
        return Error::invalidArgument(*problem);
    }
    return std::optional<std::string>(value.get<std::string>());
}

// Checks which of file_id and url a kind takes.
Status checkInput(const TaskRequest& request) {
    if (request.kind == "http") {
        return okStatus();  // url is the target, checked as an option
    }
    if (request.kind == "ingest") {
        if (request.file_id) {
            return Error::invalidArgument(
                "invalid field \"file_id\": kind ingest takes a \"url\", not a \"file_id\"");
        }
        if (!request.url) {
            return Error::invalidArgument("missing field \"url\" for kind ingest");
        }
        return okStatus();
    }
    if (request.file_id && request.url) {
        return Error::invalidArgument(
            "invalid request: give either \"file_id\" or \"url\", not both");
    }
    if (!request.file_id && !request.url) {
        return Error::invalidArgument("missing field \"file_id\" or \"url\" for kind " +
                                      request.kind);
    }
    return okStatus();
}

std::optional<std::string> takeString(Json& options, const char* name) {
    if (!options.contains(name)) {
        return std::nullopt;
    }
    return options[name].get<std::string>();
}

// Describes an input file for messages: "audio", "a video without an audio
// stream", "a still image (png)", "an animated image (webp)".
std::string describeInput(const MediaProperties& input) {
    if (input.kind == "audio") {
        return "audio";
    }
    if (input.kind == "video") {
        return input.audio_channels ? "a video" : "a video without an audio stream";
    }
    if (input.kind == "image") {
        const char* motion = input.animated.value_or(false) ? "an animated" : "a still";
        return std::string(motion) + " image (" + input.container + ")";
    }
    return input.kind.empty() ? "a file of unknown kind" : "a file of kind " + input.kind;
}

// Returns true when a task of `kind` can take `input`. FFmpeg 5.1, which
// the video task uses, decodes animated GIF but not animated WebP.
bool acceptsInput(const std::string& kind, const MediaProperties& input) {
    if (kind == "video") {
        const bool animated_gif =
            input.kind == "image" && input.container == "gif" && input.animated.value_or(false);
        return input.kind == "video" || animated_gif;
    }
    if (kind == "audio") {
        // The probe records audio channels for every file with an audio
        // stream, so a video without them has none.
        return input.kind == "audio" || (input.kind == "video" && input.audio_channels);
    }
    if (kind == "image") {
        return input.kind == "image" || input.kind == "video";
    }
    return true;
}

std::string acceptedInputs(const std::string& kind) {
    if (kind == "video") {
        return "a video task needs a video or an animated GIF";
    }
    if (kind == "audio") {
        return "an audio task needs an audio file or a video with an audio stream";
    }
    return "an image task needs an image or a video";
}

// Formats seconds with at most three decimals: 10, 10.5, 10.005.
std::string formatSeconds(double seconds) {
    char text[64];
    std::snprintf(text, sizeof(text), "%.3f", seconds);
    std::string formatted = text;
    formatted.erase(formatted.find_last_not_of('0') + 1);
    if (formatted.back() == '.') {
        formatted.pop_back();
    }
    return formatted;
}

// Checks start and end against the input's duration, when it is known.
Status checkTimesWithinDuration(const TaskRequest& request, const std::string& file_id,
                                const MediaProperties& input) {
    if (!input.duration) {
        return okStatus();
    }
    const std::string duration =
        "the duration of file '" + file_id + "' (" + formatSeconds(*input.duration) + " seconds)";
    const Json& options = request.options;
    if (options.contains("start") && options["start"].get<double>() >= *input.duration) {
        return Error::invalidArgument("invalid option \"start\": " + show(options["start"]) +
                                      " is not less than " + duration);
    }
    if (options.contains("end") && options["end"].get<double>() > *input.duration) {
        return Error::invalidArgument("invalid option \"end\": " + show(options["end"]) +
                                      " is beyond " + duration);
    }
    return okStatus();
}

}  // namespace

Result<TaskRequest> parseTaskRequest(const Json& body) {
    if (!body.is_object()) {
        return Error::invalidArgument("invalid request body: expected a JSON object, got " +
                                      std::string(body.type_name()));
    }

    TaskRequest request;
    BM_ASSIGN_OR_RETURN(request.kind, parseKind(body));
    BM_ASSIGN_OR_RETURN(request.file_id, parseFileId(body));
    if (request.kind != "http" && body.contains("url")) {
        BM_ASSIGN_OR_RETURN(request.url, parseInputUrl(body["url"]));
    }
    BM_ASSIGN_OR_RETURN(Json options, mergeOptions(body, request.kind));

    // The steps of a workflow are validated on their own and not echoed.
    if (request.kind == "workflow") {
        if (!options.contains("workflow")) {
            return Error::invalidArgument("missing field \"workflow\" for kind workflow");
        }
        BM_ASSIGN_OR_RETURN(request.workflow, validateWorkflowSteps(options["workflow"]));
        options.erase("workflow");
    }

    BM_ASSIGN_OR_RETURN(request.options, validateKindOptions(request.kind, options));
    if (request.kind == "http") {
        request.url = takeString(request.options, "url");
        request.options.erase("url");
    }
    BM_RETURN_IF_ERROR(checkInput(request));

    request.ref = takeString(request.options, "ref");
    request.folder = takeString(request.options, "folder");
    request.filename = takeString(request.options, "filename");
    request.webhook_url = takeString(request.options, "webhook_url");
    request.options.erase("webhook_url");
    return request;
}

Status checkTaskInputFile(const TaskRequest& request, const std::string& file_id,
                          const MediaProperties& input) {
    const std::string& kind = request.kind;
    if (kind != "video" && kind != "image" && kind != "audio") {
        return okStatus();
    }
    if (!acceptsInput(kind, input)) {
        return Error::invalidArgument("invalid input for kind " + kind + ": file '" + file_id +
                                      "' is " + describeInput(input) + ", and " +
                                      acceptedInputs(kind));
    }
    // The image task reads "start" only to pick a frame of a video.
    if (kind == "image" && input.kind == "image" && request.options.contains("start")) {
        return Error::invalidArgument("invalid option \"start\" for kind image: file '" +
                                      file_id + "' is " + describeInput(input) +
                                      ", and \"start\" picks a frame of a video input only");
    }
    return checkTimesWithinDuration(request, file_id, input);
}

}  // namespace bitmill::domain
