// Routes of the delivery listener: GET and HEAD /{path} stream a file's
// bytes (single ranges, conditional requests, signed URLs), PUT /{path}
// uploads a new original file whole or in chunks, OPTIONS responds to CORS
// preflights, and other methods get 405.
#pragma once

#include <httplib.h>

#include <memory>

#include "api/api.h"

namespace bitmill::api {

// Registers the delivery routes, an exception guard, the access log and an
// error handler on `server`. The error handler gives httplib's own error
// responses a JSON message. The routes keep `context` alive. The server
// must not limit the payload size below config.limits.max_upload_bytes,
// because uploads enforce that limit themselves with a message naming it.
void registerDeliveryRoutes(httplib::Server& server, std::shared_ptr<ApiContext> context);

}  // namespace bitmill::api
