// The subset of the S3 REST API that the S3 BlobStore needs, over libcurl:
// object HEAD, ranged GET, PUT and DELETE, multipart uploads and presigned
// GET URLs. Every request is signed by storage/s3/sigv4.h.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "storage/s3/s3_url.h"
#include "storage/s3/sigv4.h"

namespace bitmill::storage::s3 {

// A request body: nothing, bytes in memory, or a range of an open file.
// The referenced memory or descriptor must outlive the request.
struct RequestBody {
    static RequestBody none() { return {}; }
    static RequestBody memory(std::string_view data);
    static RequestBody fileRange(int fd, int64_t offset, int64_t length);

    std::string_view data;
    int fd = -1;
    int64_t offset = 0;
    int64_t length = 0;
    // Hex SHA-256 of the body, computed by the factory for memory bodies and
    // set by the caller for file ranges.
    std::string sha256 = std::string(kEmptyPayloadHash);
};

struct ObjectInfo {
    int64_t size = 0;
    int64_t modified_seconds = 0;  // Last-Modified, Unix seconds
    std::string etag;              // with its quotes, as S3 returns it
};

struct UploadedPart {
    int number = 0;
    std::string etag;
};

class HandlePool;

// Sends S3 requests for one bucket. Thread-safe: requests take libcurl
// handles from a pool, so concurrent calls use separate connections and
// sequential calls reuse them.
//
// Errors: NotFound for a missing object (404 NoSuchKey, or NoSuchUpload);
// Unavailable for network failures, timeouts, 5xx, 429 and a missing bucket;
// PermissionDenied for 401 and 403; Conflict for 409 and 412;
// InvalidArgument for 416; Internal for other rejections. The message names
// the operation and carries S3's error code and message; the key, the
// bucket and S3's request id go into the detail. Transient failures
// (Unavailable) are retried twice with a short backoff before they are
// returned.
class S3Client {
  public:
    explicit S3Client(S3Settings settings);
    ~S3Client();
    S3Client(const S3Client&) = delete;
    S3Client& operator=(const S3Client&) = delete;

    const S3Settings& settings() const { return settings_; }

    // Returns the object key for `key`: the URL prefix, '/', then `key`.
    std::string objectKey(std::string_view key) const;

    // HEAD of the bucket: fails when it is missing or not accessible.
    Status headBucket();

    Result<ObjectInfo> headObject(const std::string& object_key);

    // GETs bytes [offset, offset + length) into `buffer`, which must hold
    // `length` bytes, and returns the count received. `if_match` (an ETag,
    // or empty) makes S3 reject the read with Conflict when the object was
    // replaced since that ETag was read.
    Result<size_t> getRange(const std::string& object_key, int64_t offset, int64_t length,
                            const std::string& if_match, char* buffer);

    Status putObject(const std::string& object_key, const RequestBody& body);

    // DELETE; a missing object succeeds, as in S3.
    Status deleteObject(const std::string& object_key);

    // Returns the upload id of a new multipart upload.
    Result<std::string> createMultipartUpload(const std::string& object_key);

    // Uploads part `part_number` (1 to 10,000) and returns its ETag.
    Result<std::string> uploadPart(const std::string& object_key, const std::string& upload_id,
                                   int part_number, const RequestBody& body);

    Status completeMultipartUpload(const std::string& object_key, const std::string& upload_id,
                                   const std::vector<UploadedPart>& parts);

    Status abortMultipartUpload(const std::string& object_key, const std::string& upload_id);

    // Returns a URL that GETs the object without credentials for
    // `expires_seconds` (1 to kMaxPresignSeconds) from now.
    std::string presignGetUrl(const std::string& object_key, int64_t expires_seconds) const;

  private:
    struct Request;
    struct Response;

    SigningInput signingInput(std::string method, const std::string& object_key,
                              NameValueList query) const;
    Result<Response> perform(const Request& request);
    Result<Response> performOnce(const Request& request);

    S3Settings settings_;
    Signer signer_;
    std::unique_ptr<HandlePool> handles_;
};

}  // namespace bitmill::storage::s3
