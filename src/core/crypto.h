// Hashing, HMAC and encodings used for API keys, signed URLs and ETags.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace bitmill::crypto {

// Returns the lowercase hex SHA-256 of `data`.
std::string sha256Hex(std::string_view data);

// Returns the raw 32-byte HMAC-SHA256 of `message` under `key`.
std::string hmacSha256(std::string_view key, std::string_view message);

// Encodes `data` as base64url without padding.
std::string base64UrlEncode(std::string_view data);

// Encodes `data` as standard base64 with padding.
std::string base64Encode(std::string_view data);

// Decodes standard or URL-safe base64, padded or not; nullopt on bad input.
std::optional<std::string> base64Decode(std::string_view text);

// Compares in time that depends only on the lengths, for secrets.
bool constantTimeEquals(std::string_view a, std::string_view b);

}  // namespace bitmill::crypto

namespace bitmill::crypto {

// Encrypts `plaintext` with AES-256-GCM under `key` (32 bytes) and returns
// base64 of nonce, ciphertext and tag.
std::string seal(std::string_view key, std::string_view plaintext);

// Reverses seal(); nullopt when the data was altered or the key differs.
std::optional<std::string> unseal(std::string_view key, std::string_view sealed);

}  // namespace bitmill::crypto
