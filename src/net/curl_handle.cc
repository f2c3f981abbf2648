// One-time libcurl initialisation.
#include "net/curl_handle.h"

#include <mutex>

namespace bitmill::net {

Status initializeCurl() {
    static std::once_flag once;
    static CURLcode result = CURLE_OK;
    std::call_once(once, [] { result = curl_global_init(CURL_GLOBAL_DEFAULT); });
    if (result != CURLE_OK) {
        return Error::internal("initialize libcurl: failed", curl_easy_strerror(result));
    }
    return okStatus();
}

}  // namespace bitmill::net
