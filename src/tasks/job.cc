#include "tasks/job.h"

namespace bitmill::tasks {

Json limitsToJson(const Limits& limits) {
    return Json{
        {"max_upload_bytes", limits.max_upload_bytes},
        {"max_image_pixels", limits.max_image_pixels},
        {"max_video_width", limits.max_video_width},
        {"max_video_height", limits.max_video_height},
        {"max_duration_seconds", limits.max_duration_seconds},
        {"max_fetch_bytes", limits.max_fetch_bytes},
        {"fetch_timeout_seconds", limits.fetch_timeout_seconds},
        {"max_redirects", limits.max_redirects},
    };
}

Limits limitsFromJson(const Json& json) {
    Limits limits;
    limits.max_upload_bytes = json.value("max_upload_bytes", limits.max_upload_bytes);
    limits.max_image_pixels = json.value("max_image_pixels", limits.max_image_pixels);
    limits.max_video_width = json.value("max_video_width", limits.max_video_width);
    limits.max_video_height = json.value("max_video_height", limits.max_video_height);
    limits.max_duration_seconds =
        json.value("max_duration_seconds", limits.max_duration_seconds);
    limits.max_fetch_bytes = json.value("max_fetch_bytes", limits.max_fetch_bytes);
    limits.fetch_timeout_seconds =
        json.value("fetch_timeout_seconds", limits.fetch_timeout_seconds);
    limits.max_redirects = json.value("max_redirects", limits.max_redirects);
    return limits;
}

namespace {

Json producedToJson(const std::optional<ProducedFile>& file) {
    if (!file) {
        return nullptr;
    }
    return Json{{"path", file->path}, {"props", file->props.toJson()}};
}

Result<std::optional<ProducedFile>> producedFromJson(const Json& json) {
    if (json.is_null()) {
        return std::optional<ProducedFile>();
    }
    ProducedFile file;
    file.path = json.at("path").get<std::string>();
    BM_ASSIGN_OR_RETURN(file.props, MediaProperties::fromJson(json.at("props")));
    return std::optional<ProducedFile>(std::move(file));
}

}  // namespace

Json JobSpec::toJson() const {
    return Json{
        {"task_id", task_id},     {"kind", kind},         {"options", options},
        {"input_path", input_path}, {"input_url", input_url},
        {"input_props", input_props ? input_props->toJson() : Json(nullptr)},
        {"work_dir", work_dir},
        {"limits", limitsToJson(limits)}, {"url_allow_list", url_allow_list},
    };
}

Result<JobSpec> JobSpec::fromJson(const Json& json) {
    try {
        JobSpec spec;
        spec.task_id = json.at("task_id").get<std::string>();
        spec.kind = json.at("kind").get<std::string>();
        spec.options = json.at("options");
        spec.input_path = json.at("input_path").get<std::string>();
        spec.input_url = json.at("input_url").get<std::string>();
        if (auto props = json.find("input_props"); props != json.end() && !props->is_null()) {
            BM_ASSIGN_OR_RETURN(spec.input_props, MediaProperties::fromJson(*props));
        }
        spec.work_dir = json.at("work_dir").get<std::string>();
        spec.limits = limitsFromJson(json.at("limits"));
        spec.url_allow_list = json.at("url_allow_list").get<std::vector<std::string>>();
        return spec;
    } catch (const Json::exception& e) {
        return Error::internal("read job file: malformed", e.what());
    }
}

Json JobResult::toJson() const {
    Json json{{"output", producedToJson(output)}, {"fetched_input", producedToJson(fetched_input)}};
    if (error) {
        json["error"] = Json{{"code", std::string(errorCodeName(error->code()))},
                             {"message", error->message()},
                             {"detail", error->detail()}};
    } else {
        json["error"] = nullptr;
    }
    return json;
}

Result<JobResult> JobResult::fromJson(const Json& json) {
    try {
        JobResult result;
        BM_ASSIGN_OR_RETURN(result.output, producedFromJson(json.at("output")));
        BM_ASSIGN_OR_RETURN(result.fetched_input, producedFromJson(json.at("fetched_input")));
        const Json& error = json.at("error");
        if (!error.is_null()) {
            ErrorCode code = ErrorCode::Internal;
            std::string name = error.at("code").get<std::string>();
            for (ErrorCode candidate :
                 {ErrorCode::InvalidArgument, ErrorCode::Unauthenticated,
                  ErrorCode::PermissionDenied, ErrorCode::NotFound, ErrorCode::Conflict,
                  ErrorCode::UnsupportedMedia, ErrorCode::ResourceExhausted,
                  ErrorCode::Unavailable, ErrorCode::DeadlineExceeded, ErrorCode::Internal}) {
                if (errorCodeName(candidate) == name) {
                    code = candidate;
                }
            }
            result.error = Error(code, error.at("message").get<std::string>(),
                                 error.value("detail", ""));
        }
        return result;
    } catch (const Json::exception& e) {
        return Error::internal("read task result: malformed", e.what());
    }
}

}  // namespace bitmill::tasks
