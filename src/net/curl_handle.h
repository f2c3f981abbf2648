// libcurl basics shared by every bitmill component that makes HTTP requests
// (URL inputs, S3 storage): process-wide initialisation and an owning
// handle type.
#pragma once

#include <curl/curl.h>

#include <memory>

#include "core/error.h"

namespace bitmill::net {

struct CurlEasyDeleter {
    void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
};

// An owned libcurl easy handle.
using CurlEasyHandle = std::unique_ptr<CURL, CurlEasyDeleter>;

// Runs curl_global_init once per process, because it must not race with
// other libcurl calls. Call it before the first curl_easy_init.
Status initializeCurl();

}  // namespace bitmill::net
