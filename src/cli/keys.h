// API key management shared by `bitmill serve` (first start, BITMILL_API_KEY)
// and `bitmill keys create|list|revoke`. Keys are "bm_" + 40 base62
// characters; the store keeps their SHA-256 and a sealed copy.
#pragma once

#include <string>
#include <vector>

#include "core/error.h"
#include "db/store.h"

namespace bitmill::cli {

// Generates a key for `project_id`, stores it, and returns the key text,
// which is shown once and never again.
Result<std::string> createApiKey(db::Store& store, const std::string& project_id,
                                 const std::string& name, const std::string& server_secret);

// Stores `key` (chosen by the operator) for `project_id` unless a key with
// the same hash exists.
Status installApiKey(db::Store& store, const std::string& project_id, const std::string& key,
                     const std::string& server_secret);

// Runs `bitmill keys ...`; returns the process exit code.
int runKeysCommand(const std::vector<std::string>& arguments);

}  // namespace bitmill::cli
