// File endpoints. POST /files registers a URL to ingest: it creates the
// file row (status waiting, in a new media unless media_id names one) and
// an ingest task that fills that row once the bytes are fetched and probed.
#include "api/body_fields.h"
#include "api/handlers.h"
#include "api/json_mapping.h"
#include "api/pagination.h"
#include "core/clock.h"
#include "core/ids.h"
#include "core/log.h"
#include "db/path_owner.h"
#include "domain/delivery_path.h"
#include "domain/task_request.h"
#include "fmt/format.h"
#include "net/url_fetcher.h"

namespace bitmill::api {

namespace {

constexpr int kDefaultFileLimit = 20;

Error fileNotFound(const std::string& file_id) {
    return Error::notFound(fmt::format("file '{}' not found", file_id));
}

Error storeError(const Error& error, const std::string& file_id) {
    return error.code() == ErrorCode::NotFound ? fileNotFound(file_id) : error;
}

// Reads folder and filename (validated) and ref; an empty string counts as
// absent.
struct PlacementFields {
    FieldValue<std::string> folder;
    FieldValue<std::string> filename;
    FieldValue<std::string> ref;
};

Result<PlacementFields> readPlacementFields(const Json& body) {
    PlacementFields fields;
    BM_ASSIGN_OR_RETURN(fields.folder, readStringField(body, "folder"));
    BM_ASSIGN_OR_RETURN(fields.filename, readStringField(body, "filename"));
    BM_ASSIGN_OR_RETURN(fields.ref, readStringField(body, "ref"));
    for (auto* field : {&fields.folder, &fields.filename, &fields.ref}) {
        if (field->value && field->value->empty()) {
            field->value.reset();
        }
    }
    if (fields.folder.value) {
        BM_RETURN_IF_ERROR(domain::validateFolder(*fields.folder.value));
    }
    if (fields.filename.value) {
        BM_RETURN_IF_ERROR(domain::validateFilename(*fields.filename.value));
    }
    return fields;
}

Result<ApiResponse> listFiles(RequestContext& context) {
    BM_ASSIGN_OR_RETURN(PageInfo page, parsePageQuery(context.request, kDefaultFileLimit));
    BM_ASSIGN_OR_RETURN(
        auto files,
        context.api.store->listFiles(context.projectId(), db::PageRequest{page.page, page.limit}));
    Json items = Json::array();
    for (const auto& file : files.items) {
        items.push_back(fileToJson(file, context.api));
    }
    page.total = files.total;
    return ApiResponse::list(std::move(items), page);
}

// The media that a new file joins.
struct TargetMedia {
    domain::MediaRecord media;
    bool is_new = false;  // not stored yet
};

// Returns the media named by `media_id`, or a new, empty media when it is
// absent.
Result<TargetMedia> targetMedia(RequestContext& context,
                                const std::optional<std::string>& media_id) {
    TargetMedia target;
    if (media_id) {
        auto media = context.api.store->getMedia(context.projectId(), *media_id);
        if (!media.ok()) {
            if (media.error().code() == ErrorCode::NotFound) {
                return Error::notFound(fmt::format("media '{}' not found", *media_id));
            }
            return media.error();
        }
        target.media = std::move(media).value();
        return target;
    }
    target.is_new = true;
    target.media.id = newId("med_");
    target.media.project_id = context.projectId();
    target.media.created_ms = nowMillis();
    target.media.updated_ms = target.media.created_ms;
    return target;
}

// Removes the rows that a POST /files inserted before a later step failed.
void undoCreateFile(RequestContext& context, const std::optional<std::string>& file_id,
                    const std::optional<std::string>& media_id) {
    if (file_id) {
        auto removed = context.api.store->deleteFile(context.projectId(), *file_id);
        if (!removed.ok()) {
            log::get("api")->warn("remove file row after a failed create failed: {} file_id={}",
                                  removed.error().toLogString(), *file_id);
        }
    }
    if (media_id) {
        auto removed = context.api.store->deleteMedia(context.projectId(), *media_id);
        if (!removed.ok()) {
            log::get("api")->warn("remove media row after a failed create failed: {} media_id={}",
                                  removed.error().toLogString(), *media_id);
        }
    }
}

Result<ApiResponse> createFile(RequestContext& context) {
    const Json& body = context.body;
    BM_RETURN_IF_ERROR(
        checkKnownFields(body, {"url", "media_id", "folder", "filename", "ref", "metadata"}));
    BM_ASSIGN_OR_RETURN(auto url, readStringField(body, "url"));
    if (!url.value) {
        return missingField("url");
    }
    BM_RETURN_IF_ERROR(net::validateFetchUrl(*url.value));
    BM_ASSIGN_OR_RETURN(auto media_id, readStringField(body, "media_id"));
    BM_ASSIGN_OR_RETURN(PlacementFields placement, readPlacementFields(body));
    BM_ASSIGN_OR_RETURN(auto metadata, readObjectField(body, "metadata"));

    BM_ASSIGN_OR_RETURN(TargetMedia target, targetMedia(context, media_id.value));
    const domain::MediaRecord& media = target.media;
    const bool media_is_new = target.is_new;
    bool is_original = media_is_new;
    if (!media_is_new) {
        BM_ASSIGN_OR_RETURN(auto existing,
                            context.api.store->listMediaFiles(context.projectId(), media.id));
        is_original = existing.empty();
    }

    const int64_t now = nowMillis();
    domain::FileRecord file;
    file.id = newId("file_");
    file.project_id = context.projectId();
    file.media_id = media.id;
    file.object = "source";
    file.ref = placement.ref.value;
    file.folder = placement.folder.value;
    file.filename = placement.filename.value;
    file.metadata = metadata.value.value_or(Json::object());
    file.original = is_original;
    file.created_by = context.key.id;
    file.status = "waiting";
    file.created_ms = now;
    file.updated_ms = now;
    // NOTE: without a filename the extension is unknown until the ingest
    // has probed the bytes, so the path has none until the worker sets it.
    file.delivery_path = domain::deliveryPathFor(file);
    BM_RETURN_IF_ERROR(
        db::checkDeliveryPathOwner(*context.api.store, file.delivery_path, context.projectId()));

    domain::TaskRecord task;
    task.id = newId("task_");
    task.project_id = context.projectId();
    task.kind = "ingest";
    task.status = domain::TaskStatus::Pending;
    task.input_url = *url.value;
    task.media_id = media.id;
    task.options = Json{{"file_id_to_fill", file.id}};
    task.created_by = context.key.id;
    task.max_attempts = context.api.config.max_attempts;
    task.run_after_ms = now;
    task.created_ms = now;
    task.updated_ms = now;

    // NOTE: the three inserts are not one transaction; a failed step
    // removes the rows of the steps before it.
    if (media_is_new) {
        BM_RETURN_IF_ERROR(context.api.store->insertMedia(media));
    }
    const auto new_media_id = media_is_new ? std::optional(media.id) : std::nullopt;
    auto inserted_file = context.api.store->insertFile(file);
    if (!inserted_file.ok()) {
        undoCreateFile(context, std::nullopt, new_media_id);
        return inserted_file.error();
    }
    auto inserted_task = context.api.store->insertTask(task);
    if (!inserted_task.ok()) {
        undoCreateFile(context, file.id, new_media_id);
        return inserted_task.error();
    }
    if (context.api.wake_workers) {
        context.api.wake_workers();
    }
    return ApiResponse::object(fileToJson(file, context.api), "/files", 201);
}

Result<ApiResponse> getFile(RequestContext& context) {
    const std::string file_id = context.pathParameter(0);
    auto file = context.api.store->getFile(context.projectId(), file_id);
    if (!file.ok()) {
        return storeError(file.error(), file_id);
    }
    return ApiResponse::object(fileToJson(*file, context.api), "/files");
}

Result<ApiResponse> updateFile(RequestContext& context) {
    const Json& body = context.body;
    BM_RETURN_IF_ERROR(checkKnownFields(body, {"folder", "filename", "ref", "metadata"}));
    BM_ASSIGN_OR_RETURN(PlacementFields placement, readPlacementFields(body));
    BM_ASSIGN_OR_RETURN(auto metadata, readObjectField(body, "metadata"));

    const std::string file_id = context.pathParameter(0);
    auto current = context.api.store->getFile(context.projectId(), file_id);
    if (!current.ok()) {
        return storeError(current.error(), file_id);
    }
    domain::FileRecord file = std::move(current).value();
    // A field that is present replaces the stored one; null clears it.
    if (placement.folder.present) {
        file.folder = placement.folder.value;
    }
    if (placement.filename.present) {
        file.filename = placement.filename.value;
    }
    if (placement.ref.present) {
        file.ref = placement.ref.value;
    }
    if (metadata.present) {
        file.metadata =
            metadata.value ? mergeMetadata(file.metadata, *metadata.value) : Json::object();
    }
    if (placement.folder.present || placement.filename.present) {
        file.delivery_path = domain::deliveryPathFor(file);
        BM_RETURN_IF_ERROR(db::checkDeliveryPathOwner(*context.api.store, file.delivery_path,
                                                      context.projectId()));
    }
    file.updated_ms = nowMillis();
    auto updated = context.api.store->updateFile(file);
    if (!updated.ok()) {
        return storeError(updated.error(), file_id);
    }
    return ApiResponse::object(fileToJson(file, context.api), "/files");
}

Result<ApiResponse> deleteFile(RequestContext& context) {
    const std::string file_id = context.pathParameter(0);
    auto deleted = context.api.store->deleteFile(context.projectId(), file_id);
    if (!deleted.ok()) {
        return storeError(deleted.error(), file_id);
    }
    if (!deleted->storage_key.empty()) {
        auto removed = context.api.blobs->remove(deleted->storage_key);
        if (!removed.ok()) {
            // The row is gone, so the client's delete succeeded; the bytes
            // stay behind until an operator removes them.
            log::get("api")->error(
                "remove bytes of a deleted file failed: {} file_id={} "
                "request_id={}",
                removed.error().toLogString(), file_id, context.scope.request_id);
        }
    }
    return ApiResponse::deleted(file_id, "/files");
}

}  // namespace

void registerFileRoutes(Router& router) {
    router.add("GET", "/files", listFiles);
    router.add("POST", "/files", createFile);
    router.add("GET", "/files/{id}", getFile);
    router.add("PATCH", "/files/{id}", updateFile);
    router.add("DELETE", "/files/{id}", deleteFile);
}

}  // namespace bitmill::api
