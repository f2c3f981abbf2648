// BlobStore on an S3-compatible object store (AWS S3, MinIO, Cloudflare R2,
// Ceph RGW): one object per key under the storage URL's prefix.
#pragma once

#include "core/error.h"
#include "storage/blob_store.h"
#include "storage/s3/s3_url.h"

namespace bitmill::storage::s3 {

// Opens the store that `settings` describes (see parseS3Url) after a HEAD of
// the bucket, so a wrong endpoint, bucket or credentials fail here:
// InvalidArgument for a missing bucket, PermissionDenied for rejected
// credentials, Unavailable when the endpoint cannot be reached.
//
// Objects appear whole or not at all, because S3 publishes an object only
// when its PUT or CompleteMultipartUpload succeeds:
// - putFile streams the file from disk, in one PUT up to settings.part_bytes
//   and as a multipart upload of parts of that size (larger when the file
//   needs more than 10,000 parts) above it. The SHA-256 of each request
//   body is computed by reading it once before the upload, so S3 checks it.
//   A failed multipart upload is aborted. With `move`, the local file is
//   deleted after the upload.
// - openWriter keeps one part in memory and switches to a multipart upload
//   when the data outgrows it; destroying an uncommitted writer aborts it.
// - openReader HEADs the object once. A read smaller than 4 MiB GETs a 4 MiB
//   block (less at the end of the object), so later reads inside it are
//   served from memory. A larger read is one GET. If the object is replaced
//   while a reader is open, S3 rejects later reads (If-Match) with Conflict.
// - stat is a HEAD, remove a DELETE (a missing key succeeds), localPath is
//   always nullopt and presignGet returns a presigned GET URL.
// Keys failing checkBlobKey are InvalidArgument. Other errors are those of
// S3Client (storage/s3/s3_client.h). Thread-safe; readers and writers are
// not shared between threads.
Result<BlobStorePtr> openS3BlobStore(const S3Settings& settings);

}  // namespace bitmill::storage::s3
