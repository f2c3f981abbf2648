// Signing and verification of delivery URLs. Keys and signatures never go
// into messages or logs; only key ids do.
#include "api/signing.h"

#include <algorithm>
#include <charconv>

#include "core/clock.h"
#include "core/crypto.h"
#include "core/log.h"

namespace bitmill::api {

namespace {

std::string_view withoutLeadingSlash(std::string_view path) {
    if (!path.empty() && path.front() == '/') {
        path.remove_prefix(1);
    }
    return path;
}

std::string signedMessage(std::string_view path, int64_t expiry, std::string_view method) {
    std::string message(withoutLeadingSlash(path));
    message += "?expiry=" + std::to_string(expiry) + "&method=";
    message += method.empty() ? std::string_view("get") : method;
    return message;
}

std::optional<int64_t> parseExpiry(std::string_view text) {
    int64_t expiry = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), expiry);
    if (text.empty() || error != std::errc() || end != text.data() + text.size()) {
        return std::nullopt;
    }
    return expiry;
}

Error invalidSignature() {
    return Error(ErrorCode::PermissionDenied, "invalid signature");
}

}  // namespace

std::string signDeliveryPath(std::string_view api_key, std::string_view path, int64_t expiry,
                             std::string_view method) {
    return crypto::base64UrlEncode(
        crypto::hmacSha256(api_key, signedMessage(path, expiry, method)));
}

bool verifyDeliverySignature(std::string_view api_key, std::string_view path, int64_t expiry,
                             std::string_view method, std::string_view signature) {
    auto presented = crypto::base64Decode(signature);
    if (!presented) {
        return false;
    }
    std::string expected = crypto::hmacSha256(api_key, signedMessage(path, expiry, method));
    return crypto::constantTimeEquals(*presented, expected);
}

SignedUrlQuery signedUrlQueryOf(const httplib::Request& request) {
    SignedUrlQuery query;
    query.expiry = request.get_param_value("expiry");
    query.method = request.get_param_value("method");
    query.signature = request.get_param_value("signature");
    std::replace(query.signature.begin(), query.signature.end(), ' ', '+');
    return query;
}

Result<domain::ApiKey> checkSignedUrl(const ApiContext& context, const std::string& project_id,
                                      std::string_view path, const SignedUrlQuery& query,
                                      std::string_view method, int64_t now_seconds) {
    // Both branches are views: a std::string branch would make the result a
    // temporary string that the view outlives.
    std::string_view signed_method =
        query.method.empty() ? std::string_view("get") : std::string_view(query.method);
    auto expiry = parseExpiry(query.expiry);
    if (query.signature.empty() || !expiry || signed_method != method) {
        return invalidSignature();
    }

    BM_ASSIGN_OR_RETURN(std::vector<domain::ApiKey> keys, context.store->listApiKeys(project_id));
    for (const domain::ApiKey& key : keys) {
        if (key.revoked_ms || key.sealed_key.empty()) {
            continue;
        }
        auto secret = crypto::unseal(context.server_secret, key.sealed_key);
        if (!secret) {
            log::get("api")->warn(
                "cannot unseal API key for signature checks; was the server secret replaced? "
                "key_id={}",
                key.id);
            continue;
        }
        if (!verifyDeliverySignature(*secret, path, *expiry, signed_method, query.signature)) {
            continue;
        }
        if (*expiry < now_seconds) {
            return Error(
                ErrorCode::PermissionDenied,
                "signature expired at " + formatRfc3339(std::max<int64_t>(*expiry, 0) * 1000));
        }
        return key;
    }
    return invalidSignature();
}

}  // namespace bitmill::api
