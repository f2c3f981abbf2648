// HMAC-SHA256 signatures of delivery paths through OpenSSL.
#include "signing.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <stdexcept>

namespace bitmill::e2e {
namespace {

std::string hmacSha256(const std::string& key, const std::string& message) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
             reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest,
             &length) == nullptr) {
        throw std::runtime_error("HMAC-SHA256 failed");
    }
    return std::string(reinterpret_cast<const char*>(digest), length);
}

std::string base64(const std::string& bytes) {
    std::string encoded(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    int length = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()),
                                 reinterpret_cast<const unsigned char*>(bytes.data()),
                                 static_cast<int>(bytes.size()));
    encoded.resize(static_cast<size_t>(length));
    return encoded;
}

std::string signedMessage(const std::string& path, int64_t expiry, const std::string& method) {
    return path + "?expiry=" + std::to_string(expiry) + "&method=" + method;
}

}  // namespace

std::string deliverySignature(const std::string& api_key, const std::string& path,
                              int64_t expiry, const std::string& method) {
    std::string encoded = base64(hmacSha256(api_key, signedMessage(path, expiry, method)));
    while (!encoded.empty() && encoded.back() == '=') {
        encoded.pop_back();
    }
    for (auto& c : encoded) {
        if (c == '+') {
            c = '-';
        } else if (c == '/') {
            c = '_';
        }
    }
    return encoded;
}

std::string deliverySignaturePadded(const std::string& api_key, const std::string& path,
                                    int64_t expiry, const std::string& method) {
    return base64(hmacSha256(api_key, signedMessage(path, expiry, method)));
}

}  // namespace bitmill::e2e
