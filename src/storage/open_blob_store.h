// Chooses and opens the BlobStore backend named by a storage URL.
#pragma once

#include <string>

#include "core/error.h"
#include "storage/blob_store.h"

namespace bitmill::storage {

// Opens the BlobStore for `storage_url`: empty means local files under
// {data_dir}/files; "file://PATH" or a plain path means local files under
// PATH; "s3://BUCKET[/PREFIX][?endpoint=...]" means an S3-compatible store
// (see parseS3Url in storage/s3/s3_url.h for the parameters and the
// AWS_* credential variables). Errors: InvalidArgument for unknown schemes
// and invalid S3 URLs, otherwise what openLocalBlobStore or openS3BlobStore
// returns.
Result<BlobStorePtr> openBlobStore(const std::string& storage_url, const std::string& data_dir);

}  // namespace bitmill::storage
