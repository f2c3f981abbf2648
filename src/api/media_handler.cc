// Media endpoints: list, create (an empty media that files join later),
// get, update title/alt/metadata, and delete with its files and their bytes.
#include "api/body_fields.h"
#include "api/handlers.h"
#include "api/json_mapping.h"
#include "api/pagination.h"
#include "core/clock.h"
#include "core/ids.h"
#include "core/log.h"
#include "fmt/format.h"

namespace bitmill::api {

namespace {

constexpr int kDefaultMediaLimit = 20;

Error storeError(const Error& error, const std::string& media_id) {
    if (error.code() == ErrorCode::NotFound) {
        return Error::notFound(fmt::format("media '{}' not found", media_id));
    }
    return error;
}

// The fields of POST and PATCH /media.
struct MediaFields {
    FieldValue<std::string> title;
    FieldValue<std::string> alt;
    FieldValue<Json> metadata;
};

Result<MediaFields> readMediaFields(const Json& body) {
    BM_RETURN_IF_ERROR(checkKnownFields(body, {"title", "alt", "metadata"}));
    MediaFields fields;
    BM_ASSIGN_OR_RETURN(fields.title, readStringField(body, "title"));
    BM_ASSIGN_OR_RETURN(fields.alt, readStringField(body, "alt"));
    BM_ASSIGN_OR_RETURN(fields.metadata, readObjectField(body, "metadata"));
    return fields;
}

Result<Json> mediaJson(RequestContext& context, const domain::MediaRecord& media) {
    BM_ASSIGN_OR_RETURN(auto files,
                        context.api.store->listMediaFiles(context.projectId(), media.id));
    return mediaToJson(media, files, context.api);
}

Result<ApiResponse> listMedia(RequestContext& context) {
    BM_ASSIGN_OR_RETURN(PageInfo page, parsePageQuery(context.request, kDefaultMediaLimit));
    BM_ASSIGN_OR_RETURN(
        auto media_page,
        context.api.store->listMedia(context.projectId(), db::PageRequest{page.page, page.limit}));
    Json items = Json::array();
    for (const auto& media : media_page.items) {
        BM_ASSIGN_OR_RETURN(Json item, mediaJson(context, media));
        items.push_back(std::move(item));
    }
    page.total = media_page.total;
    return ApiResponse::list(std::move(items), page);
}

Result<ApiResponse> createMedia(RequestContext& context) {
    BM_ASSIGN_OR_RETURN(MediaFields fields, readMediaFields(context.body));
    domain::MediaRecord media;
    media.id = newId("med_");
    media.project_id = context.projectId();
    media.title = fields.title.value;
    media.alt = fields.alt.value;
    media.metadata = fields.metadata.value.value_or(Json::object());
    media.created_ms = nowMillis();
    media.updated_ms = media.created_ms;
    BM_RETURN_IF_ERROR(context.api.store->insertMedia(media));
    return ApiResponse::object(mediaToJson(media, {}, context.api), "/media", 201);
}

Result<ApiResponse> getMedia(RequestContext& context) {
    const std::string media_id = context.pathParameter(0);
    auto media = context.api.store->getMedia(context.projectId(), media_id);
    if (!media.ok()) {
        return storeError(media.error(), media_id);
    }
    BM_ASSIGN_OR_RETURN(Json json, mediaJson(context, *media));
    return ApiResponse::object(std::move(json), "/media");
}

Result<ApiResponse> updateMedia(RequestContext& context) {
    BM_ASSIGN_OR_RETURN(MediaFields fields, readMediaFields(context.body));
    const std::string media_id = context.pathParameter(0);
    auto current = context.api.store->getMedia(context.projectId(), media_id);
    if (!current.ok()) {
        return storeError(current.error(), media_id);
    }
    domain::MediaRecord media = std::move(current).value();
    // A field that is present replaces the stored one; null clears it.
    if (fields.title.present) {
        media.title = fields.title.value;
    }
    if (fields.alt.present) {
        media.alt = fields.alt.value;
    }
    if (fields.metadata.present) {
        media.metadata = fields.metadata.value
                             ? mergeMetadata(media.metadata, *fields.metadata.value)
                             : Json::object();
    }
    media.updated_ms = nowMillis();
    auto updated = context.api.store->updateMedia(media);
    if (!updated.ok()) {
        return storeError(updated.error(), media_id);
    }
    BM_ASSIGN_OR_RETURN(Json json, mediaJson(context, media));
    return ApiResponse::object(std::move(json), "/media");
}

Result<ApiResponse> deleteMedia(RequestContext& context) {
    const std::string media_id = context.pathParameter(0);
    auto deleted_files = context.api.store->deleteMedia(context.projectId(), media_id);
    if (!deleted_files.ok()) {
        return storeError(deleted_files.error(), media_id);
    }
    for (const auto& file : *deleted_files) {
        if (file.storage_key.empty()) {
            continue;
        }
        auto removed = context.api.blobs->remove(file.storage_key);
        if (!removed.ok()) {
            // The rows are gone, so the delete succeeded for the client; the
            // bytes stay behind until an operator removes them.
            log::get("api")->error(
                "remove bytes of a deleted media file failed: {} file_id={} request_id={}",
                removed.error().toLogString(), file.id, context.scope.request_id);
        }
    }
    return ApiResponse::deleted(media_id, "/media");
}

}  // namespace

void registerMediaRoutes(Router& router) {
    router.add("GET", "/media", listMedia);
    router.add("POST", "/media", createMedia);
    router.add("GET", "/media/{id}", getMedia);
    router.add("PATCH", "/media/{id}", updateMedia);
    router.add("DELETE", "/media/{id}", deleteMedia);
}

}  // namespace bitmill::api
