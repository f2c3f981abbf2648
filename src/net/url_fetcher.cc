// fetchToFile: one libcurl transfer per hop, redirects followed by hand, every connected
// address checked in the socket callback, and the body streamed into the output file.
#include "net/url_fetcher.h"

#include <curl/curl.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>

#include <fmt/format.h>

#include "core/log.h"
#include "net/address_policy.h"
#include "net/curl_handle.h"
#include "net/fetch_url.h"

namespace bitmill::net {

namespace {

using Clock = std::chrono::steady_clock;

constexpr char kUserAgent[] = "bitmill/0.1";

using EasyHandle = CurlEasyHandle;

std::shared_ptr<spdlog::logger> logger() {
    static const std::shared_ptr<spdlog::logger> instance = log::get("fetch");
    return instance;
}

// The output file. It is removed on destruction unless finish() succeeded, so no failure
// leaves a partial download behind.
class OutputFile {
  public:
    explicit OutputFile(std::string path) : path_(std::move(path)) {}
    OutputFile(const OutputFile&) = delete;
    OutputFile& operator=(const OutputFile&) = delete;

    ~OutputFile() {
        if (file_ != nullptr) {
            std::fclose(file_);
        }
        if (opened_ && !finished_) {
            std::error_code ignored;
            std::filesystem::remove(path_, ignored);
        }
    }

    Status open() {
        file_ = std::fopen(path_.c_str(), "wb");
        if (file_ == nullptr) {
            return Error::internal(fmt::format("open fetch output: {}", std::strerror(errno)),
                                   path_);
        }
        opened_ = true;
        return okStatus();
    }

    Status write(const char* data, size_t size) {
        if (std::fwrite(data, 1, size, file_) != size) {
            return Error::internal(fmt::format("write fetch output: {}", std::strerror(errno)),
                                   path_);
        }
        return okStatus();
    }

    Status finish() {
        const int result = std::fclose(file_);
        file_ = nullptr;
        if (result != 0) {
            return Error::internal(fmt::format("close fetch output: {}", std::strerror(errno)),
                                   path_);
        }
        finished_ = true;
        return okStatus();
    }

  private:
    std::string path_;
    std::FILE* file_ = nullptr;
    bool opened_ = false;
    bool finished_ = false;
};

// State of one hop's transfer, shared with the curl callbacks.
struct Transfer {
    CURL* handle = nullptr;
    const FetchUrl* url = nullptr;
    const AllowList* allow_list = nullptr;
    OutputFile* output = nullptr;
    int64_t max_bytes = 0;
    int64_t bytes = 0;
    bool status_checked = false;
    bool body_discarded = false;   // a redirect or error body: the transfer was stopped
    std::optional<Error> error;    // a size or write failure that stopped the transfer
    std::optional<Error> blocked;  // the first resolved address that was rejected
};

struct Response {
    long status = 0;
    int64_t bytes = 0;
    std::string location;
    std::string content_type;
};

Error blockedAddressError(std::string_view host, const IpAddress& address, AddressRange range) {
    const std::string address_phrase =
        parseIpAddress(host)
            ? fmt::format("is {}", describeAddressRange(range))
            : fmt::format("resolves to {}, {}", address.toString(), describeAddressRange(range));
    return Error(ErrorCode::PermissionDenied,
                 fmt::format("url host '{}' {}; URL inputs may not reach loopback, private or "
                             "metadata addresses (allow it with BITMILL_URL_ALLOW)",
                             host, address_phrase));
}

Status checkAddress(std::string_view host, const IpAddress& address, const AllowList& allow_list) {
    const AddressRange range = classifyAddress(address);
    if (range == AddressRange::Public || allow_list.allows(host, address)) {
        return okStatus();
    }
    return blockedAddressError(host, address, range);
}

// Rejects a numeric host before curl starts, so a blocked literal is never even resolved.
Status checkLiteralHost(const FetchUrl& url, const AllowList& allow_list) {
    if (std::optional<IpAddress> address = parseIpAddress(url.host)) {
        return checkAddress(url.host, *address, allow_list);
    }
    return okStatus();
}

// CURLOPT_OPENSOCKETFUNCTION: curl calls it with each address it is about to connect to.
// Returning CURL_SOCKET_BAD rejects that address before any socket exists.
curl_socket_t openCheckedSocket(void* user_data, curlsocktype /*purpose*/, curl_sockaddr* address) {
    auto& transfer = *static_cast<Transfer*>(user_data);
    const std::optional<IpAddress> ip = ipAddressFromSockaddr(&address->addr);
    Status allowed =
        ip ? checkAddress(transfer.url->host, *ip, *transfer.allow_list)
           : Status(Error(ErrorCode::PermissionDenied,
                          fmt::format("url host '{}' resolved to neither IPv4 nor IPv6",
                                      transfer.url->host)));
    if (!allowed.ok()) {
        if (!transfer.blocked) {
            transfer.blocked = allowed.error();
        }
        return CURL_SOCKET_BAD;
    }
    return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

Error tooLargeError(const FetchUrl& url, std::string_view measured_size, int64_t max_bytes) {
    return Error::resourceExhausted(
        fmt::format("fetch url '{}': {} is larger than max_fetch_bytes ({} bytes)", url.redacted,
                    measured_size, max_bytes));
}

// Runs when the first body bytes arrive, so the status line and headers are complete.
// Returns false when the body is not to be written.
bool checkResponseStart(Transfer& transfer) {
    long status = 0;
    curl_easy_getinfo(transfer.handle, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status >= 300) {
        transfer.body_discarded = true;
        return false;
    }
    curl_off_t content_length = -1;
    curl_easy_getinfo(transfer.handle, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &content_length);
    if (content_length > transfer.max_bytes) {
        transfer.error = tooLargeError(
            *transfer.url, fmt::format("Content-Length {}", content_length), transfer.max_bytes);
        return false;
    }
    return true;
}

// CURLOPT_WRITEFUNCTION. Returning less than `size` stops the transfer with CURLE_WRITE_ERROR.
size_t writeBody(char* data, size_t /*one*/, size_t size, void* user_data) {
    auto& transfer = *static_cast<Transfer*>(user_data);
    if (!transfer.status_checked) {
        transfer.status_checked = true;
        if (!checkResponseStart(transfer)) {
            return 0;
        }
    }
    if (transfer.bytes + static_cast<int64_t>(size) > transfer.max_bytes) {
        transfer.error = tooLargeError(*transfer.url,
                                       fmt::format("response body (more than {} bytes received)",
                                                   transfer.bytes + static_cast<int64_t>(size)),
                                       transfer.max_bytes);
        return 0;
    }
    if (Status written = transfer.output->write(data, size); !written.ok()) {
        transfer.error = written.error();
        return 0;
    }
    transfer.bytes += static_cast<int64_t>(size);
    return size;
}

Status configureTransfer(Transfer& transfer, std::chrono::milliseconds remaining,
                         char* error_buffer) {
    CURL* handle = transfer.handle;
    CURLcode code = CURLE_OK;
    auto set = [&](CURLoption option, auto value) {
        if (code == CURLE_OK) {
            code = curl_easy_setopt(handle, option, value);
        }
    };
    set(CURLOPT_URL, transfer.url->url.c_str());
    set(CURLOPT_PROTOCOLS_STR, "http,https");
    set(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    set(CURLOPT_FOLLOWLOCATION, 0L);
    // An empty proxy overrides the http_proxy and all_proxy variables. A proxy would connect
    // on our behalf to addresses that the socket callback never checks.
    set(CURLOPT_PROXY, "");
    set(CURLOPT_NOSIGNAL, 1L);
    set(CURLOPT_HTTPGET, 1L);
    set(CURLOPT_USERAGENT, kUserAgent);
    set(CURLOPT_TIMEOUT_MS, static_cast<long>(std::max<int64_t>(remaining.count(), 1)));
    set(CURLOPT_ERRORBUFFER, error_buffer);
    set(CURLOPT_OPENSOCKETFUNCTION, &openCheckedSocket);
    set(CURLOPT_OPENSOCKETDATA, static_cast<void*>(&transfer));
    set(CURLOPT_WRITEFUNCTION, &writeBody);
    set(CURLOPT_WRITEDATA, static_cast<void*>(&transfer));
    if (code != CURLE_OK) {
        return Error::internal("configure libcurl transfer: failed", curl_easy_strerror(code));
    }
    return okStatus();
}

Error transferError(const Transfer& transfer, CURLcode code, const char* error_buffer,
                    int timeout_seconds) {
    const FetchUrl& url = *transfer.url;
    const std::string detail =
        fmt::format("{}: {}", curl_easy_strerror(code), error_buffer[0] ? error_buffer : "-");
    switch (code) {
        case CURLE_OPERATION_TIMEDOUT:
            return Error(ErrorCode::DeadlineExceeded,
                         fmt::format("fetch url '{}': timed out after {} s "
                                     "(fetch_timeout_seconds)",
                                     url.redacted, timeout_seconds),
                         detail);
        case CURLE_COULDNT_RESOLVE_HOST:
            return Error::invalidArgument(fmt::format(
                "fetch url '{}': host '{}' could not be resolved", url.redacted, url.host));
        case CURLE_COULDNT_CONNECT:
            return Error::unavailable(fmt::format("fetch url '{}': could not connect to host '{}'",
                                                  url.redacted, url.host),
                                      detail);
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:
            return Error(ErrorCode::InvalidArgument,
                         fmt::format("fetch url '{}': TLS certificate of host '{}' failed "
                                     "verification",
                                     url.redacted, url.host),
                         detail);
        default:
            return Error::unavailable(fmt::format("fetch url '{}': transfer failed ({})",
                                                  url.redacted, curl_easy_strerror(code)),
                                      detail);
    }
}

std::string readLocation(CURL* handle) {
    curl_header* header = nullptr;
    if (curl_easy_header(handle, "Location", 0, CURLH_HEADER, -1, &header) != CURLHE_OK) {
        return {};
    }
    return header->value;
}

// Performs one GET of `url` and streams a 2xx body into `output`. Bodies of other statuses
// are discarded, so the caller can follow a redirect or report the status.
Result<Response> performRequest(const FetchUrl& url, const AllowList& allow_list,
                                OutputFile& output, const FetchOptions& options,
                                Clock::time_point deadline) {
    const auto remaining =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (remaining.count() <= 0) {
        return Error(ErrorCode::DeadlineExceeded,
                     fmt::format("fetch url '{}': timed out after {} s (fetch_timeout_seconds)",
                                 url.redacted, options.timeout_seconds));
    }
    EasyHandle handle(curl_easy_init());
    if (!handle) {
        return Error::internal("create libcurl handle: failed");
    }
    Transfer transfer;
    transfer.handle = handle.get();
    transfer.url = &url;
    transfer.allow_list = &allow_list;
    transfer.output = &output;
    transfer.max_bytes = options.max_bytes;
    char error_buffer[CURL_ERROR_SIZE] = {};
    BM_RETURN_IF_ERROR(configureTransfer(transfer, remaining, error_buffer));

    const CURLcode code = curl_easy_perform(handle.get());
    if (transfer.error) {
        return *transfer.error;
    }
    if (code == CURLE_COULDNT_CONNECT && transfer.blocked) {
        return *transfer.blocked;
    }
    const bool stopped_on_purpose = code == CURLE_WRITE_ERROR && transfer.body_discarded;
    if (code != CURLE_OK && !stopped_on_purpose) {
        return transferError(transfer, code, error_buffer, options.timeout_seconds);
    }

    Response response;
    curl_easy_getinfo(handle.get(), CURLINFO_RESPONSE_CODE, &response.status);
    response.bytes = transfer.bytes;
    response.location = readLocation(handle.get());
    const char* content_type = nullptr;
    curl_easy_getinfo(handle.get(), CURLINFO_CONTENT_TYPE, &content_type);
    if (content_type != nullptr) {
        response.content_type = content_type;
    }
    return response;
}

bool isRedirectStatus(long status) {
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

// Maps a final (non-redirect) status to success or an error. 408 and 429 are retryable like
// 5xx because the same request may succeed later.
Status checkFinalStatus(const FetchUrl& url, long status) {
    if (status >= 200 && status < 300) {
        return okStatus();
    }
    const std::string message =
        fmt::format("fetch url '{}': server responded with status {}", url.redacted, status);
    if (status >= 500 || status == 408 || status == 429) {
        return Error::unavailable(message);
    }
    return Error::invalidArgument(message);
}

}  // namespace

Result<FetchResult> fetchToFile(const std::string& url, const std::string& output_path,
                                const FetchOptions& options) {
    const Clock::time_point started = Clock::now();
    const Clock::time_point deadline = started + std::chrono::seconds(options.timeout_seconds);
    BM_RETURN_IF_ERROR(initializeCurl());
    BM_ASSIGN_OR_RETURN(const AllowList allow_list, AllowList::create(options.allow_list));
    BM_ASSIGN_OR_RETURN(FetchUrl current, parseFetchUrl(url));
    OutputFile output(output_path);
    BM_RETURN_IF_ERROR(output.open());

    for (int redirect_count = 0;; ++redirect_count) {
        BM_RETURN_IF_ERROR(checkLiteralHost(current, allow_list));
        BM_ASSIGN_OR_RETURN(Response response,
                            performRequest(current, allow_list, output, options, deadline));
        if (!isRedirectStatus(response.status)) {
            BM_RETURN_IF_ERROR(checkFinalStatus(current, response.status));
            BM_RETURN_IF_ERROR(output.finish());
            const auto elapsed =
                std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
            logger()->info("fetch finished url={} bytes={} redirects={} duration_ms={}",
                           current.redacted, response.bytes, redirect_count, elapsed.count());
            return FetchResult{current.url, response.bytes, response.content_type};
        }

        // A redirect: the next hop is parsed and checked like the first URL.
        if (response.location.empty()) {
            return Error::invalidArgument(fmt::format(
                "fetch url '{}': server responded with status {} but no Location header",
                current.redacted, response.status));
        }
        if (redirect_count >= options.max_redirects) {
            return Error::invalidArgument(
                fmt::format("fetch url '{}': more than {} redirects (max_redirects)",
                            redactUrl(url), options.max_redirects));
        }
        BM_ASSIGN_OR_RETURN(FetchUrl next, resolveRedirect(current, response.location));
        logger()->debug("fetch redirected status={} from={} to={}", response.status,
                        current.redacted, next.redacted);
        current = std::move(next);
    }
}

Status validateFetchUrl(std::string_view url) {
    BM_RETURN_IF_ERROR(parseFetchUrl(url));
    return okStatus();
}

bool isBlockedAddress(std::string_view address) {
    const std::optional<IpAddress> parsed = parseIpAddress(address);
    return !parsed || classifyAddress(*parsed) != AddressRange::Public;
}

}  // namespace bitmill::net
