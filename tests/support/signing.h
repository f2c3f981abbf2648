// Signed delivery URLs computed independently of the server, so tests can
// check the server's signatures and build their own (expired, padded ...).
#pragma once

#include <cstdint>
#include <string>

namespace bitmill::e2e {

// base64url without padding of HMAC-SHA256(key = api_key, message =
// "{path}?expiry={expiry}&method={method}"); `path` has no leading slash.
std::string deliverySignature(const std::string& api_key, const std::string& path,
                              int64_t expiry, const std::string& method);

// Standard base64 (with '+', '/' and '=' padding) of the same HMAC.
std::string deliverySignaturePadded(const std::string& api_key, const std::string& path,
                                    int64_t expiry, const std::string& method);

}  // namespace bitmill::e2e
