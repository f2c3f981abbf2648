// The server secret: 32 random bytes that seal stored API keys. Kept in
// {data_dir}/server.secret (mode 0600), or given as BITMILL_SECRET (64 hex
// digits) so that several processes sharing one database agree on it.
#pragma once

#include <string>

#include "core/error.h"

namespace bitmill {

// Returns the 32-byte secret, creating the file on first use.
Result<std::string> loadOrCreateServerSecret(const std::string& data_dir);

}  // namespace bitmill
