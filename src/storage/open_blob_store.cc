// Selection of the BlobStore backend from the configured storage URL.
#include "storage/open_blob_store.h"

#include <fmt/format.h>

#include <filesystem>

#include "storage/local/local_blob_store.h"
#include "storage/s3/s3_blob_store.h"
#include "storage/s3/s3_url.h"

namespace bitmill::storage {

Result<BlobStorePtr> openBlobStore(const std::string& storage_url, const std::string& data_dir) {
    constexpr std::string_view kFileScheme = "file://";
    if (storage_url.empty()) {
        return openLocalBlobStore((std::filesystem::path(data_dir) / "files").string());
    }
    if (storage_url.compare(0, kFileScheme.size(), kFileScheme) == 0) {
        std::string path = storage_url.substr(kFileScheme.size());
        if (path.empty()) {
            return Error::invalidArgument("invalid storage URL 'file://': the path is empty");
        }
        return openLocalBlobStore(path);
    }
    if (storage_url.compare(0, 5, "s3://") == 0) {
        BM_ASSIGN_OR_RETURN(s3::S3Settings settings, s3::parseS3Url(storage_url));
        return s3::openS3BlobStore(settings);
    }
    size_t scheme_end = storage_url.find("://");
    if (scheme_end != std::string::npos) {
        return Error::invalidArgument(fmt::format(
            "unsupported storage URL scheme '{}': use file://PATH, s3://BUCKET or a folder path",
            storage_url.substr(0, scheme_end)));
    }
    return openLocalBlobStore(storage_url);
}

}  // namespace bitmill::storage
