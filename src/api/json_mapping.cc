// Records to API JSON objects; see json_mapping.h for the field rules.
#include "api/json_mapping.h"

#include <map>

#include "api/pagination.h"
#include "core/clock.h"
#include "domain/delivery_path.h"

namespace bitmill::api {

namespace {

// Option keys that the server stores for its workers but does not echo.
constexpr const char* kInternalOptionKeys[] = {"file_id_to_fill"};

Json stringOrNull(const std::string& value) {
    return value.empty() ? Json(nullptr) : Json(value);
}

Json timeOrNull(const std::optional<int64_t>& unix_millis) {
    return unix_millis ? Json(formatRfc3339(*unix_millis)) : Json(nullptr);
}

Json fileFields(const domain::FileRecord& file, const ApiContext& context, bool with_media_id) {
    const MediaProperties& props = file.props;
    Json json = Json::object();
    json["id"] = file.id;
    if (with_media_id) {
        json["media_id"] = file.media_id;
    }
    json["object"] = file.object;

    // Kind and type stay strings (empty until an ingest has probed the
    // bytes) because strict clients reject null for required fields.
    json["kind"] = props.kind;
    json["type"] = props.type;
    json["codec"] = jsonOrNull(props.codec);
    json["container"] = stringOrNull(props.container);
    json["width"] = jsonOrNull(props.width);
    json["height"] = jsonOrNull(props.height);
    json["orientation"] = jsonOrNull(props.orientation);
    json["rotation"] = jsonOrNull(props.rotation);
    json["transparency"] = jsonOrNull(props.transparency);
    json["animated"] = jsonOrNull(props.animated);
    json["frames"] = jsonOrNull(props.frames);
    json["duration"] = jsonOrNull(props.duration);
    json["fps"] = jsonOrNull(props.fps);
    json["filesize"] = file.filesize;
    json["bitrate"] = jsonOrNull(props.bitrate);
    json["language"] = jsonOrNull(props.language);

    json["label"] = jsonOrNull(file.label);
    json["ref"] = jsonOrNull(file.ref);
    json["folder"] = jsonOrNull(file.folder);
    json["filename"] = jsonOrNull(file.filename);
    json["url"] = fileUrl(file, context.config);
    json["placeholder"] = jsonOrNull(props.placeholder);
    json["background"] = jsonOrNull(props.background);
    json["metadata"] = file.metadata.is_object() ? file.metadata : Json::object();

    json["original"] = file.original;
    json["created_by"] = stringOrNull(file.created_by);
    json["created"] = formatRfc3339(file.created_ms);
    json["updated"] = formatRfc3339(file.updated_ms);
    json["status"] = file.status;
    return json;
}

Json echoedOptions(const Json& options) {
    if (!options.is_object()) {
        return Json::object();
    }
    Json echoed = options;
    for (const char* key : kInternalOptionKeys) {
        echoed.erase(key);
    }
    return echoed;
}

// Returns the File object of `file_id`, or null when it no longer exists.
Json fileOrNull(const std::string& project_id, const std::string& file_id,
                const ApiContext& context, db::Store& store) {
    auto file = store.getFile(project_id, file_id);
    if (!file.ok()) {
        return nullptr;
    }
    return fileToJson(*file, context);
}

}  // namespace

std::string publicDeliveryBase(const Config& config) {
    std::string base = config.public_delivery_url;
    if (base.empty()) {
        base = "http://" + config.delivery_listen;
    }
    while (!base.empty() && base.back() == '/') {
        base.pop_back();
    }
    return base;
}

std::string fileUrl(const domain::FileRecord& file, const Config& config) {
    const std::string path =
        file.delivery_path.empty() ? domain::deliveryPathFor(file) : file.delivery_path;
    return publicDeliveryBase(config) + "/" + percentEncode(path, true);
}

Json fileToJson(const domain::FileRecord& file, const ApiContext& context) {
    return fileFields(file, context, true);
}

Json mediaFileItemJson(const domain::FileRecord& file, const ApiContext& context) {
    return fileFields(file, context, false);
}

Json mediaToJson(const domain::MediaRecord& media, const std::vector<domain::FileRecord>& files,
                 const ApiContext& context) {
    Json items = Json::array();
    // ref -> (updated_ms, url); the most recently updated file wins.
    std::map<std::string, std::pair<int64_t, std::string>> urls_by_ref;
    auto offer = [&urls_by_ref](const std::string& ref, int64_t updated_ms, std::string url) {
        auto it = urls_by_ref.find(ref);
        if (it == urls_by_ref.end() || it->second.first <= updated_ms) {
            urls_by_ref[ref] = {updated_ms, std::move(url)};
        }
    };
    for (const auto& file : files) {
        items.push_back(mediaFileItemJson(file, context));
        if (file.status == "failed") {
            continue;
        }
        const std::string url = fileUrl(file, context.config);
        if (file.original) {
            offer("original", file.updated_ms, url);
        }
        if (file.ref && !file.ref->empty()) {
            offer(*file.ref, file.updated_ms, url);
        }
    }
    Json urls = Json::object();
    for (auto& [ref, entry] : urls_by_ref) {
        urls[ref] = entry.second;
    }

    return Json{
        {"id", media.id},
        {"object", "media"},
        {"kind", jsonOrNull(media.kind)},
        {"title", jsonOrNull(media.title)},
        {"alt", jsonOrNull(media.alt)},
        {"width", jsonOrNull(media.width)},
        {"height", jsonOrNull(media.height)},
        {"duration", jsonOrNull(media.duration)},
        {"files", std::move(items)},
        {"urls", std::move(urls)},
        {"background", jsonOrNull(media.background)},
        {"metadata", media.metadata.is_object() ? media.metadata : Json::object()},
        {"created", formatRfc3339(media.created_ms)},
        {"updated", formatRfc3339(media.updated_ms)},
    };
}

Json taskToJson(const domain::TaskRecord& task, const ApiContext& context, db::Store& store) {
    Json input = nullptr;
    if (task.input_file_id) {
        input = fileOrNull(task.project_id, *task.input_file_id, context, store);
    }
    if (input.is_null() && task.input_url) {
        input = Json{{"url", *task.input_url}};
    }
    Json output = nullptr;
    if (task.output_file_id) {
        output = fileOrNull(task.project_id, *task.output_file_id, context, store);
    }

    return Json{
        {"id", task.id},
        {"object", "task"},
        {"kind", task.kind},
        {"input", std::move(input)},
        {"options", echoedOptions(task.options)},
        {"output", std::move(output)},
        {"status", std::string(domain::toString(task.status))},
        {"progress", task.progress},
        {"error", jsonOrNull(task.error)},
        {"created_by", stringOrNull(task.created_by)},
        {"created", formatRfc3339(task.created_ms)},
        {"updated", formatRfc3339(task.updated_ms)},
        {"parent_id", jsonOrNull(task.parent_id)},
        // NOTE: child tasks of workflows are not listed: workflow tasks are
        // not accepted by this build, so no task has children.
        {"workflow", Json::array()},
        {"started", timeOrNull(task.started_ms)},
        {"finished", timeOrNull(task.finished_ms)},
        {"attempts", task.attempts},
    };
}

}  // namespace bitmill::api
