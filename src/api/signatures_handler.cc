// POST /signatures: a signed delivery URL for a folder/filename path,
// keyed with the API key of the request, valid until `expiry`.
#include "api/body_fields.h"
#include "api/handlers.h"
#include "api/json_mapping.h"
#include "api/pagination.h"
#include "api/signing.h"
#include "core/clock.h"
#include "domain/delivery_path.h"
#include "fmt/format.h"

namespace bitmill::api {

namespace {

// Lifetime of a signature when the request sets no expiry.
constexpr int64_t kDefaultSignatureSeconds = 3600;

// Returns the host (and port) of a base URL such as "http://host:8081".
std::string hostOf(const std::string& base_url) {
    auto scheme_end = base_url.find("://");
    std::string rest = scheme_end == std::string::npos ? base_url : base_url.substr(scheme_end + 3);
    return rest.substr(0, rest.find('/'));
}

Result<std::string> readMethod(const Json& body) {
    BM_ASSIGN_OR_RETURN(auto method_field, readStringField(body, "method"));
    std::string method = method_field.value.value_or("get");
    for (auto& c : method) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    if (method != "get" && method != "put") {
        return Error::invalidArgument(fmt::format(
            "invalid field \"method\": \"{}\" is not one of get, put", *method_field.value));
    }
    return method;
}

Result<ApiResponse> createSignature(RequestContext& context) {
    const Json& body = context.body;
    BM_RETURN_IF_ERROR(checkKnownFields(body, {"filename", "folder", "expiry", "method"}));
    BM_ASSIGN_OR_RETURN(auto filename, readStringField(body, "filename"));
    if (!filename.value || filename.value->empty()) {
        return missingField("filename");
    }
    BM_RETURN_IF_ERROR(domain::validateFilename(*filename.value));
    BM_ASSIGN_OR_RETURN(auto folder, readStringField(body, "folder"));
    if (folder.value && folder.value->empty()) {
        folder.value.reset();
    }
    if (folder.value) {
        BM_RETURN_IF_ERROR(domain::validateFolder(*folder.value));
    }
    BM_ASSIGN_OR_RETURN(auto expiry_field, readIntegerField(body, "expiry"));
    const int64_t now_seconds = nowMillis() / 1000;
    const int64_t expiry = expiry_field.value.value_or(now_seconds + kDefaultSignatureSeconds);
    if (expiry <= now_seconds) {
        return Error::invalidArgument(fmt::format(
            "invalid field \"expiry\": {} is not in the future (now is {} unix seconds)", expiry,
            now_seconds));
    }
    BM_ASSIGN_OR_RETURN(std::string method, readMethod(body));

    const std::string path = folder.value ? *folder.value + "/" + *filename.value : *filename.value;
    const std::string signature = signDeliveryPath(context.bearer_token, path, expiry, method);
    const std::string base = publicDeliveryBase(context.api.config);
    const std::string url =
        fmt::format("{}/{}?expiry={}&method={}&signature={}", base, percentEncode(path, true),
                    expiry, method, percentEncode(signature, false));
    return ApiResponse::object(
        Json{
            {"domain", hostOf(base)},
            {"filename", *filename.value},
            {"folder", jsonOrNull(folder.value)},
            {"expiry", expiry},
            {"method", method},
            {"signature", signature},
            {"url", url},
        },
        "/signatures");
}

}  // namespace

void registerSignatureRoutes(Router& router) {
    router.add("POST", "/signatures", createSignature);
}

}  // namespace bitmill::api
