// A small HTTP client over cpp-httplib for the end-to-end tests: JSON bodies,
// raw bytes, extra headers, and responses that describe themselves in failure
// messages.
#pragma once

#include <memory>
#include <string>
#include <utility>

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace bitmill::e2e {

using Json = nlohmann::json;
using Headers = httplib::Headers;

struct HttpResponse {
    // 0 when no response arrived (see transport_error).
    int status = 0;
    std::string body;
    Headers headers;
    std::string transport_error;
    // "METHOD URL", for failure messages.
    std::string request;

    // Parses the body as JSON; throws std::runtime_error naming the request
    // when it is not JSON.
    Json json() const;
    bool hasHeader(const std::string& name) const;
    // First value of a header (case-insensitive name), or "" when missing.
    std::string header(const std::string& name) const;
    // "GET /tasks -> 400 {...}" with the body cut to `max_body` characters.
    std::string describe(size_t max_body = 2000) const;
};

// Splits "http://host:port/path?query" into the origin and "/path?query".
std::pair<std::string, std::string> splitUrl(const std::string& url);

class HttpClient {
public:
    // `base_url` is an origin such as http://127.0.0.1:8080. A non-empty
    // `api_key` is sent as "Authorization: Bearer KEY" on every request.
    explicit HttpClient(std::string base_url, std::string api_key = "");

    void setApiKey(std::string api_key) { api_key_ = std::move(api_key); }
    const std::string& baseUrl() const { return base_url_; }

    HttpResponse get(const std::string& path, const Headers& headers = {});
    HttpResponse head(const std::string& path, const Headers& headers = {});
    HttpResponse del(const std::string& path, const Headers& headers = {});
    HttpResponse post(const std::string& path, const Json& body, const Headers& headers = {});
    HttpResponse patch(const std::string& path, const Json& body, const Headers& headers = {});
    HttpResponse put(const std::string& path, const Json& body, const Headers& headers = {});
    // Sends `body` as is, e.g. malformed JSON or media bytes.
    HttpResponse send(const std::string& method, const std::string& path, const std::string& body,
                      const std::string& content_type, const Headers& headers = {});

private:
    Headers withAuthorization(const Headers& headers) const;
    HttpResponse finish(const std::string& method, const std::string& path,
                        httplib::Result result) const;
    std::unique_ptr<httplib::Client> makeClient() const;

    std::string base_url_;
    std::string api_key_;
};

// GET of an absolute URL (e.g. a file's delivery `url`), with optional headers.
HttpResponse fetchUrl(const std::string& url, const Headers& headers = {});

}  // namespace bitmill::e2e
