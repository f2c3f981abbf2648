// HTTP requests of the end-to-end tests through cpp-httplib.
#include "http_client.h"

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace bitmill::e2e {
namespace {

constexpr int kConnectTimeoutSeconds = 10;
// Long enough for a slow upload or a large download on a loaded CI machine.
constexpr int kReadTimeoutSeconds = 120;

bool equalsIgnoreCase(const std::string& left, const std::string& right) {
    return left.size() == right.size() &&
           std::equal(left.begin(), left.end(), right.begin(), [](char a, char b) {
               return std::tolower(static_cast<unsigned char>(a)) ==
                      std::tolower(static_cast<unsigned char>(b));
           });
}

}  // namespace

Json HttpResponse::json() const {
    try {
        return Json::parse(body);
    } catch (const Json::parse_error& error) {
        throw std::runtime_error("response body is not JSON (" + std::string(error.what()) +
                                 "): " + describe());
    }
}

bool HttpResponse::hasHeader(const std::string& name) const {
    return std::any_of(headers.begin(), headers.end(),
                       [&](const auto& entry) { return equalsIgnoreCase(entry.first, name); });
}

std::string HttpResponse::header(const std::string& name) const {
    for (const auto& [key, value] : headers) {
        if (equalsIgnoreCase(key, name)) {
            return value;
        }
    }
    return {};
}

std::string HttpResponse::describe(size_t max_body) const {
    std::string text = request + " -> ";
    if (status == 0) {
        return text + "no response (" + transport_error + ")";
    }
    text += std::to_string(status);
    bool printable = std::all_of(body.begin(), body.begin() + std::min(body.size(), max_body),
                                 [](char c) {
                                     return c == '\n' || c == '\t' ||
                                            static_cast<unsigned char>(c) >= 0x20;
                                 });
    if (!printable) {
        return text + " (" + std::to_string(body.size()) + " bytes of binary body)";
    }
    text += " " + body.substr(0, max_body);
    if (body.size() > max_body) {
        text += "... (" + std::to_string(body.size()) + " bytes)";
    }
    return text;
}

std::pair<std::string, std::string> splitUrl(const std::string& url) {
    size_t scheme_end = url.find("://");
    if (scheme_end == std::string::npos) {
        throw std::invalid_argument("not an absolute URL: '" + url + "'");
    }
    size_t path_start = url.find('/', scheme_end + 3);
    if (path_start == std::string::npos) {
        return {url, "/"};
    }
    return {url.substr(0, path_start), url.substr(path_start)};
}

HttpClient::HttpClient(std::string base_url, std::string api_key)
    : base_url_(std::move(base_url)), api_key_(std::move(api_key)) {
    while (!base_url_.empty() && base_url_.back() == '/') {
        base_url_.pop_back();
    }
}

std::unique_ptr<httplib::Client> HttpClient::makeClient() const {
    auto client = std::make_unique<httplib::Client>(base_url_);
    client->set_connection_timeout(kConnectTimeoutSeconds, 0);
    client->set_read_timeout(kReadTimeoutSeconds, 0);
    client->set_write_timeout(kReadTimeoutSeconds, 0);
    return client;
}

Headers HttpClient::withAuthorization(const Headers& headers) const {
    Headers result = headers;
    bool has_authorization = std::any_of(headers.begin(), headers.end(), [](const auto& entry) {
        return equalsIgnoreCase(entry.first, "Authorization");
    });
    if (!api_key_.empty() && !has_authorization) {
        result.emplace("Authorization", "Bearer " + api_key_);
    }
    return result;
}

HttpResponse HttpClient::finish(const std::string& method, const std::string& path,
                                httplib::Result result) const {
    HttpResponse response;
    response.request = method + " " + base_url_ + path;
    if (!result) {
        response.transport_error = httplib::to_string(result.error());
        return response;
    }
    response.status = result->status;
    response.body = result->body;
    response.headers = result->headers;
    return response;
}

HttpResponse HttpClient::send(const std::string& method, const std::string& path,
                              const std::string& body, const std::string& content_type,
                              const Headers& headers) {
    httplib::Request request;
    request.method = method;
    request.path = path;
    request.headers = withAuthorization(headers);
    if (!content_type.empty()) {
        request.headers.emplace("Content-Type", content_type);
    }
    request.body = body;
    auto client = makeClient();
    return finish(method, path, client->send(request));
}

HttpResponse HttpClient::get(const std::string& path, const Headers& headers) {
    return send("GET", path, "", "", headers);
}

HttpResponse HttpClient::head(const std::string& path, const Headers& headers) {
    return send("HEAD", path, "", "", headers);
}

HttpResponse HttpClient::del(const std::string& path, const Headers& headers) {
    return send("DELETE", path, "", "", headers);
}

HttpResponse HttpClient::post(const std::string& path, const Json& body, const Headers& headers) {
    return send("POST", path, body.dump(), "application/json", headers);
}

HttpResponse HttpClient::patch(const std::string& path, const Json& body, const Headers& headers) {
    return send("PATCH", path, body.dump(), "application/json", headers);
}

HttpResponse HttpClient::put(const std::string& path, const Json& body, const Headers& headers) {
    return send("PUT", path, body.dump(), "application/json", headers);
}

HttpResponse fetchUrl(const std::string& url, const Headers& headers) {
    auto [origin, path] = splitUrl(url);
    HttpClient client(origin);
    return client.get(path, headers);
}

}  // namespace bitmill::e2e
