// GET /tasks-config: the output formats of each task kind this build runs,
// for SDK releases before 1.0.0 that read it. Always unwrapped.
#include "api/handlers.h"

namespace bitmill::api {

namespace {

Result<ApiResponse> getTasksConfig(RequestContext&) {
    return ApiResponse::unwrapped(Json{
        {"video", {"mp4", "webm", "mov", "mkv"}},
        {"image", {"jpeg", "png", "webp", "avif", "gif"}},
        {"audio", {"mp3", "aac", "wav", "ogg", "opus", "flac"}},
    });
}

}  // namespace

void registerTasksConfigRoutes(Router& router) {
    router.add("GET", "/tasks-config", getTasksConfig);
}

}  // namespace bitmill::api
