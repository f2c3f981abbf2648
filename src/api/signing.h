// Signed delivery URLs: "{path}?expiry={unix}&method={get|put}&signature=
// {sig}", where sig is an HMAC-SHA256 over path, expiry and method keyed
// with an API key of the file's project.
#pragma once

#include <httplib.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "api/api.h"
#include "core/error.h"
#include "domain/records.h"

namespace bitmill::api {

// Returns base64url without padding of HMAC-SHA256(key = api_key,
// message = path + "?expiry=" + expiry + "&method=" + method). A leading
// '/' of `path` is ignored, so "/a/b.mp4" and "a/b.mp4" sign alike.
std::string signDeliveryPath(std::string_view api_key, std::string_view path, int64_t expiry,
                             std::string_view method);

// Returns true when `signature` is the signature of path, expiry and
// method under `api_key`. The signature may be standard or URL-safe base64,
// padded or not; an empty method means "get". Compares in constant time.
bool verifyDeliverySignature(std::string_view api_key, std::string_view path, int64_t expiry,
                             std::string_view method, std::string_view signature);

// The query parameters of a signed URL, as sent (empty when missing).
struct SignedUrlQuery {
    std::string expiry;
    std::string method;
    std::string signature;
};

// Returns the signed-URL parameters of `request`. httplib decodes '+' in a
// query as a space, so spaces in the signature become '+' again (standard
// base64 sent without percent-encoding).
SignedUrlQuery signedUrlQueryOf(const httplib::Request& request);

// Checks a signed request for `path` that needs `method` ("get" or "put")
// against every non-revoked key of `project_id`, whose secrets are
// unsealed with context.server_secret. Returns the key that signed it.
// Errors: PermissionDenied "invalid signature" when the signature, expiry
// or method does not match any key, PermissionDenied "signature expired at
// …" when a key matches but `now_seconds` is past the expiry, and store
// errors as they come.
Result<domain::ApiKey> checkSignedUrl(const ApiContext& context, const std::string& project_id,
                                      std::string_view path, const SignedUrlQuery& query,
                                      std::string_view method, int64_t now_seconds);

}  // namespace bitmill::api
