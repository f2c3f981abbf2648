// Registration of the API's resource handlers, one function per handler
// file.
#pragma once

#include "api/router.h"

namespace bitmill::api {

// POST/GET /tasks, GET /tasks/{id}, POST /tasks/{id}/cancel.
void registerTaskRoutes(Router& router);

// GET /tasks-config.
void registerTasksConfigRoutes(Router& router);

// GET/POST /files, GET/PATCH/DELETE /files/{id}.
void registerFileRoutes(Router& router);

// GET/POST /media, GET/PATCH/DELETE /media/{id}.
void registerMediaRoutes(Router& router);

// POST /signatures.
void registerSignatureRoutes(Router& router);

}  // namespace bitmill::api
