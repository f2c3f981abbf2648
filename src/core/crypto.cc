#include "core/crypto.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <array>
#include <memory>

namespace bitmill::crypto {

namespace {

constexpr std::string_view kBase64 =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string encode(std::string_view data, bool url_safe) {
    std::string out;
    out.reserve((data.size() + 2) / 3 * 4);
    size_t i = 0;
    auto byte = [&](size_t index) { return static_cast<unsigned char>(data[index]); };
    for (; i + 2 < data.size(); i += 3) {
        uint32_t triple = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
        for (int shift = 18; shift >= 0; shift -= 6) {
            out.push_back(kBase64[(triple >> shift) & 63]);
        }
    }
    size_t rest = data.size() - i;
    if (rest > 0) {
        uint32_t triple = byte(i) << 16;
        if (rest == 2) {
            triple |= byte(i + 1) << 8;
        }
        out.push_back(kBase64[(triple >> 18) & 63]);
        out.push_back(kBase64[(triple >> 12) & 63]);
        out.push_back(rest == 2 ? kBase64[(triple >> 6) & 63] : '=');
        out.push_back('=');
    }
    if (url_safe) {
        while (!out.empty() && out.back() == '=') {
            out.pop_back();
        }
        for (char& c : out) {
            if (c == '+') {
                c = '-';
            } else if (c == '/') {
                c = '_';
            }
        }
    }
    return out;
}

}  // namespace

std::string sha256Hex(std::string_view data) {
    std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
    SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest.data());
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(digest.size() * 2);
    for (unsigned char b : digest) {
        out.push_back(kHex[b >> 4]);
        out.push_back(kHex[b & 15]);
    }
    return out;
}

std::string hmacSha256(std::string_view key, std::string_view message) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int length = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest.data(),
         &length);
    return std::string(reinterpret_cast<const char*>(digest.data()), length);
}

std::string base64UrlEncode(std::string_view data) { return encode(data, true); }

std::string base64Encode(std::string_view data) { return encode(data, false); }

std::optional<std::string> base64Decode(std::string_view text) {
    while (!text.empty() && text.back() == '=') {
        text.remove_suffix(1);
    }
    std::string out;
    uint32_t accumulator = 0;
    int bits = 0;
    for (char c : text) {
        int value;
        if (c >= 'A' && c <= 'Z') {
            value = c - 'A';
        } else if (c >= 'a' && c <= 'z') {
            value = c - 'a' + 26;
        } else if (c >= '0' && c <= '9') {
            value = c - '0' + 52;
        } else if (c == '+' || c == '-') {
            value = 62;
        } else if (c == '/' || c == '_') {
            value = 63;
        } else {
            return std::nullopt;
        }
        accumulator = (accumulator << 6) | static_cast<uint32_t>(value);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((accumulator >> bits) & 0xff));
        }
    }
    if (bits >= 6) {
        return std::nullopt;  // a single leftover character cannot encode a byte
    }
    return out;
}

bool constantTimeEquals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
        return false;
    }
    unsigned char difference = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        difference |= static_cast<unsigned char>(a[i] ^ b[i]);
    }
    return difference == 0;
}

}  // namespace bitmill::crypto

namespace bitmill::crypto {

namespace {

constexpr int kNonceBytes = 12;
constexpr int kTagBytes = 16;

struct CipherContextDeleter {
    void operator()(EVP_CIPHER_CTX* context) const { EVP_CIPHER_CTX_free(context); }
};
using CipherContextPtr = std::unique_ptr<EVP_CIPHER_CTX, CipherContextDeleter>;

const unsigned char* bytes(std::string_view text) {
    return reinterpret_cast<const unsigned char*>(text.data());
}

}  // namespace

std::string seal(std::string_view key, std::string_view plaintext) {
    std::string nonce(kNonceBytes, '\0');
    RAND_bytes(reinterpret_cast<unsigned char*>(nonce.data()), kNonceBytes);
    std::string ciphertext(plaintext.size(), '\0');
    std::string tag(kTagBytes, '\0');
    CipherContextPtr context(EVP_CIPHER_CTX_new());
    int length = 0;
    EVP_EncryptInit_ex(context.get(), EVP_aes_256_gcm(), nullptr, bytes(key), bytes(nonce));
    EVP_EncryptUpdate(context.get(), reinterpret_cast<unsigned char*>(ciphertext.data()),
                      &length, bytes(plaintext), static_cast<int>(plaintext.size()));
    EVP_EncryptFinal_ex(context.get(), nullptr, &length);
    EVP_CIPHER_CTX_ctrl(context.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes, tag.data());
    return base64Encode(nonce + ciphertext + tag);
}

std::optional<std::string> unseal(std::string_view key, std::string_view sealed) {
    auto raw = base64Decode(sealed);
    if (!raw || raw->size() < kNonceBytes + kTagBytes) {
        return std::nullopt;
    }
    std::string_view all(*raw);
    std::string_view nonce = all.substr(0, kNonceBytes);
    std::string_view ciphertext = all.substr(kNonceBytes, all.size() - kNonceBytes - kTagBytes);
    std::string tag(all.substr(all.size() - kTagBytes));
    std::string plaintext(ciphertext.size(), '\0');
    CipherContextPtr context(EVP_CIPHER_CTX_new());
    int length = 0;
    EVP_DecryptInit_ex(context.get(), EVP_aes_256_gcm(), nullptr, bytes(key), bytes(nonce));
    EVP_DecryptUpdate(context.get(), reinterpret_cast<unsigned char*>(plaintext.data()), &length,
                      bytes(ciphertext), static_cast<int>(ciphertext.size()));
    EVP_CIPHER_CTX_ctrl(context.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, tag.data());
    if (EVP_DecryptFinal_ex(context.get(), nullptr, &length) != 1) {
        return std::nullopt;
    }
    return plaintext;
}

}  // namespace bitmill::crypto
