// SigV4 signing as the S3 API Reference describes it ("Authenticating
// Requests (AWS Signature Version 4)"): single-chunk payloads with the
// Authorization header, and query-string (presigned) authentication.
#include "storage/s3/sigv4.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <ctime>

#include "core/crypto.h"

namespace bitmill::storage::s3 {

namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
constexpr std::string_view kTerminator = "aws4_request";

bool isUnreserved(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

std::string toHex(std::string_view bytes) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (char c : bytes) {
        auto byte = static_cast<unsigned char>(c);
        out.push_back(kHex[byte >> 4]);
        out.push_back(kHex[byte & 15]);
    }
    return out;
}

std::string toLower(std::string_view text) {
    std::string out(text);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return out;
}

// Trims a header value and collapses each run of spaces inside it to one,
// as the canonical headers require.
std::string canonicalHeaderValue(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    bool in_space = false;
    for (char c : value) {
        bool space = c == ' ' || c == '\t';
        if (space) {
            in_space = !out.empty();
            continue;
        }
        if (in_space) {
            out.push_back(' ');
            in_space = false;
        }
        out.push_back(c);
    }
    return out;
}

// Encodes every name and value and sorts by name, then value.
std::string canonicalQueryString(const NameValueList& query) {
    NameValueList encoded;
    encoded.reserve(query.size());
    for (const auto& [name, value] : query) {
        encoded.emplace_back(uriEncode(name, true), uriEncode(value, true));
    }
    std::sort(encoded.begin(), encoded.end());
    std::string out;
    for (const auto& [name, value] : encoded) {
        if (!out.empty()) {
            out.push_back('&');
        }
        out += name;
        out.push_back('=');
        out += value;
    }
    return out;
}

struct CanonicalHeaders {
    NameValueList sorted;        // lowercase names, canonical values, sorted by name
    std::string text;            // "name:value\n" lines
    std::string signed_headers;  // "name;name;..."
};

// Lowercases the names, canonicalizes the values, joins repeated names with
// ',' and sorts by name.
CanonicalHeaders canonicalizeHeaders(const NameValueList& headers) {
    NameValueList lowered;
    lowered.reserve(headers.size());
    for (const auto& [name, value] : headers) {
        lowered.emplace_back(toLower(name), canonicalHeaderValue(value));
    }
    std::stable_sort(lowered.begin(), lowered.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    CanonicalHeaders result;
    for (auto& [name, value] : lowered) {
        if (!result.sorted.empty() && result.sorted.back().first == name) {
            result.sorted.back().second += "," + value;
        } else {
            result.sorted.emplace_back(std::move(name), std::move(value));
        }
    }
    for (const auto& [name, value] : result.sorted) {
        result.text += name + ":" + value + "\n";
        if (!result.signed_headers.empty()) {
            result.signed_headers.push_back(';');
        }
        result.signed_headers += name;
    }
    return result;
}

std::string canonicalUri(std::string_view path) {
    return path.empty() ? "/" : uriEncode(path, false);
}

std::string joinCanonicalRequest(std::string_view method, std::string_view uri,
                                 std::string_view query, std::string_view headers,
                                 std::string_view signed_headers, std::string_view payload) {
    return fmt::format("{}\n{}\n{}\n{}\n{}\n{}", method, uri, query, headers, signed_headers,
                       payload);
}

}  // namespace

std::string uriEncode(std::string_view text, bool encode_slash) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(text.size() * 3);
    for (char c : text) {
        auto byte = static_cast<unsigned char>(c);
        if (isUnreserved(byte) || (c == '/' && !encode_slash)) {
            out.push_back(c);
        } else {
            out.push_back('%');
            out.push_back(kHex[byte >> 4]);
            out.push_back(kHex[byte & 15]);
        }
    }
    return out;
}

std::string formatAmzDate(int64_t unix_seconds) {
    std::time_t seconds = static_cast<std::time_t>(unix_seconds);
    std::tm parts{};
    gmtime_r(&seconds, &parts);
    std::array<char, 20> buffer{};
    std::strftime(buffer.data(), buffer.size(), "%Y%m%dT%H%M%SZ", &parts);
    return buffer.data();
}

std::string deriveSigningKey(std::string_view secret_access_key, std::string_view date,
                             std::string_view region, std::string_view service) {
    std::string date_key = crypto::hmacSha256("AWS4" + std::string(secret_access_key), date);
    std::string region_key = crypto::hmacSha256(date_key, region);
    std::string service_key = crypto::hmacSha256(region_key, service);
    return crypto::hmacSha256(service_key, kTerminator);
}

Signer::Signer(Credentials credentials, std::string region, std::string service)
    : credentials_(std::move(credentials)),
      region_(std::move(region)),
      service_(std::move(service)) {
}

std::string Signer::scope(std::string_view date) const {
    return fmt::format("{}/{}/{}/{}", date, region_, service_, kTerminator);
}

std::string Signer::signString(std::string_view date, std::string_view string_to_sign) const {
    std::string key = deriveSigningKey(credentials_.secret_access_key, date, region_, service_);
    return toHex(crypto::hmacSha256(key, string_to_sign));
}

SignedRequest Signer::sign(const SigningInput& input, int64_t unix_seconds) const {
    const std::string amz_date = formatAmzDate(unix_seconds);
    const std::string date = amz_date.substr(0, 8);

    NameValueList headers = input.headers;
    headers.emplace_back("host", input.host);
    headers.emplace_back("x-amz-date", amz_date);
    headers.emplace_back("x-amz-content-sha256", input.payload_hash);
    if (!credentials_.session_token.empty()) {
        headers.emplace_back("x-amz-security-token", credentials_.session_token);
    }
    CanonicalHeaders canonical = canonicalizeHeaders(headers);

    SignedRequest signed_request;
    signed_request.canonical_uri = canonicalUri(input.path);
    signed_request.canonical_query = canonicalQueryString(input.query);
    signed_request.canonical_request = joinCanonicalRequest(
        input.method, signed_request.canonical_uri, signed_request.canonical_query, canonical.text,
        canonical.signed_headers, input.payload_hash);
    signed_request.string_to_sign =
        fmt::format("{}\n{}\n{}\n{}", kAlgorithm, amz_date, scope(date),
                    crypto::sha256Hex(signed_request.canonical_request));
    signed_request.signature = signString(date, signed_request.string_to_sign);
    signed_request.authorization = fmt::format("{} Credential={}/{},SignedHeaders={},Signature={}",
                                               kAlgorithm, credentials_.access_key_id, scope(date),
                                               canonical.signed_headers, signed_request.signature);
    signed_request.headers = std::move(canonical.sorted);
    signed_request.headers.emplace_back("authorization", signed_request.authorization);
    return signed_request;
}

PresignedRequest Signer::presign(const SigningInput& input, int64_t expires_seconds,
                                 int64_t unix_seconds) const {
    const std::string amz_date = formatAmzDate(unix_seconds);
    const std::string date = amz_date.substr(0, 8);

    NameValueList query = input.query;
    query.emplace_back("X-Amz-Algorithm", std::string(kAlgorithm));
    query.emplace_back("X-Amz-Credential", credentials_.access_key_id + "/" + scope(date));
    query.emplace_back("X-Amz-Date", amz_date);
    query.emplace_back("X-Amz-Expires", std::to_string(expires_seconds));
    query.emplace_back("X-Amz-SignedHeaders", "host");
    if (!credentials_.session_token.empty()) {
        query.emplace_back("X-Amz-Security-Token", credentials_.session_token);
    }

    PresignedRequest presigned;
    presigned.canonical_uri = canonicalUri(input.path);
    std::string canonical_query = canonicalQueryString(query);
    presigned.canonical_request = joinCanonicalRequest(
        input.method, presigned.canonical_uri, canonical_query,
        "host:" + canonicalHeaderValue(input.host) + "\n", "host", kUnsignedPayload);
    presigned.string_to_sign = fmt::format("{}\n{}\n{}\n{}", kAlgorithm, amz_date, scope(date),
                                           crypto::sha256Hex(presigned.canonical_request));
    presigned.signature = signString(date, presigned.string_to_sign);
    presigned.query = canonical_query + "&X-Amz-Signature=" + presigned.signature;
    return presigned;
}

Sha256::Sha256() : context_(EVP_MD_CTX_new()) {
    EVP_DigestInit_ex(context_.get(), EVP_sha256(), nullptr);
}

void Sha256::update(std::string_view data) {
    EVP_DigestUpdate(context_.get(), data.data(), data.size());
}

std::string Sha256::finishHex() {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int length = 0;
    EVP_DigestFinal_ex(context_.get(), digest.data(), &length);
    return toHex(std::string_view(reinterpret_cast<const char*>(digest.data()), length));
}

}  // namespace bitmill::storage::s3
