// Parsing of "s3://" storage URLs into the settings of an S3-compatible
// store (AWS S3, MinIO, Cloudflare R2, Ceph RGW and others).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"
#include "storage/s3/sigv4.h"

namespace bitmill::storage::s3 {

// S3's limits on multipart uploads (Amazon S3 User Guide, "Amazon S3
// multipart upload limits"): every part but the last is at least 5 MiB, a
// part is at most 5 GiB, and an upload has at most 10,000 parts.
inline constexpr int64_t kMinPartBytes = int64_t{5} << 20;
inline constexpr int64_t kMaxPartBytes = int64_t{5} << 30;
inline constexpr int64_t kMaxParts = 10'000;
// Default part size, which is also the largest object sent in one PUT.
inline constexpr int64_t kDefaultPartBytes = int64_t{16} << 20;

struct S3Settings {
    std::string bucket;
    std::string prefix;           // key prefix without leading or trailing '/', may be empty
    std::string endpoint_scheme;  // "http" or "https"
    std::string endpoint_host;    // "s3.us-east-1.amazonaws.com", "127.0.0.1:9000", "[::1]:9000"
    std::string region;
    // True: http://host/bucket/key. False: http://bucket.host/key.
    bool path_style = false;
    int64_t part_bytes = kDefaultPartBytes;
    Credentials credentials;
};

// Returns the value of an environment variable, or nullopt when unset.
using EnvironmentLookup = std::function<std::optional<std::string>(const char* name)>;

// Reads the process environment.
std::optional<std::string> processEnvironment(const char* name);

// Parses "s3://BUCKET[/PREFIX][?PARAMETERS]". Parameters:
//   endpoint=http[s]://HOST[:PORT]  default https://s3.REGION.amazonaws.com
//   region=NAME                     default AWS_REGION, AWS_DEFAULT_REGION, us-east-1
//   path_style=true|false           default false, or true when the bucket
//                                   name cannot be a host name label (it has
//                                   a '.', which TLS wildcard certificates do
//                                   not cover, a '_' or an uppercase letter)
//   part_size=BYTES                 multipart part size and single-PUT limit,
//                                   5 MiB to 5 GiB, default 16 MiB
// Credentials come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the
// optional AWS_SESSION_TOKEN. Returns InvalidArgument, naming the value and
// the fix, for a missing bucket, a bad endpoint, an unknown parameter or
// missing credentials. The message never contains the secret key.
Result<S3Settings> parseS3Url(std::string_view url,
                              const EnvironmentLookup& environment = processEnvironment);

}  // namespace bitmill::storage::s3
