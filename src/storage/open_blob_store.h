// Chooses and opens the BlobStore backend named by a storage URL.
#pragma once

#include <string>

#include "core/error.h"
#include "storage/blob_store.h"

namespace bitmill::storage {

// Opens the BlobStore for `storage_url`: empty means local files under
// {data_dir}/files; "file://PATH" or a plain path means local files under
// PATH. Errors: InvalidArgument for "s3://" (not built yet) and unknown
// schemes, otherwise what openLocalBlobStore returns.
Result<BlobStorePtr> openBlobStore(const std::string& storage_url, const std::string& data_dir);

}  // namespace bitmill::storage
