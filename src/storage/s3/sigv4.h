// AWS Signature Version 4 for S3: canonical request, string to sign, signing
// key, Authorization header and presigned query URLs. Every S3 request that
// bitmill sends is signed here, so the published AWS examples test exactly
// what goes over the wire.
#pragma once

#include <openssl/evp.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bitmill::storage::s3 {

// The x-amz-content-sha256 value of a request whose body is not hashed.
inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
// The hex SHA-256 of an empty body.
inline constexpr std::string_view kEmptyPayloadHash =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
// The maximum validity of a presigned URL that S3 accepts: 7 days.
inline constexpr int64_t kMaxPresignSeconds = 7 * 24 * 3600;

struct Credentials {
    std::string access_key_id;
    std::string secret_access_key;
    std::string session_token;  // empty unless the credentials are temporary
};

using NameValueList = std::vector<std::pair<std::string, std::string>>;

// One request before signing. The path and the query are plain text, not
// percent-encoded: the signer encodes them and returns the encoded forms,
// which the caller must put in the URL it sends.
struct SigningInput {
    std::string method;  // "GET", "PUT", ...
    std::string host;    // the Host header: "bucket.s3.us-east-1.amazonaws.com" or "127.0.0.1:9000"
    std::string path;    // "/bucket/key with spaces", starting with '/'
    NameValueList query;
    // Extra headers to sign and send, such as "range" or "x-amz-storage-class".
    // The signer adds host, x-amz-date, x-amz-content-sha256 and, with a
    // session token, x-amz-security-token.
    NameValueList headers;
    // Hex SHA-256 of the body, or kUnsignedPayload.
    std::string payload_hash = std::string(kEmptyPayloadHash);
};

struct SignedRequest {
    std::string canonical_uri;    // encoded path, for the URL
    std::string canonical_query;  // encoded and sorted query, for the URL
    std::string canonical_request;
    std::string string_to_sign;
    std::string signature;      // lowercase hex
    std::string authorization;  // the Authorization header value
    // Every header to send, lowercase names, including host and authorization.
    NameValueList headers;
};

struct PresignedRequest {
    std::string canonical_uri;
    // The complete query string, X-Amz-Signature last, ready to follow '?'.
    std::string query;
    std::string canonical_request;
    std::string string_to_sign;
    std::string signature;
};

// Percent-encodes `text` the way SigV4 requires: the unreserved characters
// A-Z, a-z, 0-9, '-', '.', '_' and '~' stay, every other byte becomes %XX
// with uppercase hex, and '/' stays only when `encode_slash` is false.
std::string uriEncode(std::string_view text, bool encode_slash);

// Returns the SigV4 timestamp "YYYYMMDDTHHMMSSZ" of `unix_seconds` (UTC).
std::string formatAmzDate(int64_t unix_seconds);

// Returns HMAC-SHA256(HMAC-SHA256(HMAC-SHA256(HMAC-SHA256("AWS4" + secret,
// date), region), service), "aws4_request") as 32 raw bytes.
std::string deriveSigningKey(std::string_view secret_access_key, std::string_view date,
                             std::string_view region, std::string_view service);

// Signs requests for one set of credentials, region and service. Immutable
// and therefore thread-safe.
class Signer {
  public:
    Signer(Credentials credentials, std::string region, std::string service = "s3");

    const std::string& region() const { return region_; }
    const Credentials& credentials() const { return credentials_; }

    // Signs `input` at `unix_seconds` with an Authorization header.
    SignedRequest sign(const SigningInput& input, int64_t unix_seconds) const;

    // Signs a URL that allows `method` on `path` for `expires_seconds` from
    // `unix_seconds` without further credentials (only the host header is
    // signed, the payload is unsigned). `input.headers` and
    // `input.payload_hash` are ignored.
    PresignedRequest presign(const SigningInput& input, int64_t expires_seconds,
                             int64_t unix_seconds) const;

  private:
    std::string scope(std::string_view date) const;
    std::string signString(std::string_view date, std::string_view string_to_sign) const;

    Credentials credentials_;
    std::string region_;
    std::string service_;
};

// Computes SHA-256 incrementally, for bodies streamed from disk.
// Not thread-safe.
class Sha256 {
  public:
    Sha256();
    void update(std::string_view data);
    // Returns the lowercase hex digest; the object cannot be updated after.
    std::string finishHex();

  private:
    struct ContextDeleter {
        void operator()(EVP_MD_CTX* context) const { EVP_MD_CTX_free(context); }
    };
    std::unique_ptr<EVP_MD_CTX, ContextDeleter> context_;
};

}  // namespace bitmill::storage::s3
