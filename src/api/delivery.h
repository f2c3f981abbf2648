// Routes of the delivery listener: GET and HEAD /{path} stream a file's
// bytes (single ranges, conditional requests, signed URLs for private
// projects), PUT /{path} uploads a new original file whole or in chunks,
// and OPTIONS responds to CORS preflights.
#pragma once

#include <httplib.h>

#include <memory>

#include "api/api.h"

namespace bitmill::api {

// Registers the delivery routes, an exception guard and the access log on
// `server`; the routes keep `context` alive. The server must not limit the
// payload size below config.limits.max_upload_bytes, because uploads
// enforce that limit themselves with a message naming it.
void registerDeliveryRoutes(httplib::Server& server, std::shared_ptr<ApiContext> context);

}  // namespace bitmill::api
