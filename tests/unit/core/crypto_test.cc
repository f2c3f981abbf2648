// Checks the hashing and encoding helpers against published test vectors.
#include "core/crypto.h"

#include <gtest/gtest.h>

namespace bitmill::crypto {
namespace {

TEST(CryptoTest, Sha256MatchesKnownVector) {
    EXPECT_EQ(sha256Hex("abc"),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(CryptoTest, HmacSha256MatchesRfc4231Case2) {
    std::string mac = hmacSha256("Jefe", "what do ya want for nothing?");
    std::string hex;
    for (unsigned char c : mac) {
        static constexpr char kHex[] = "0123456789abcdef";
        hex.push_back(kHex[c >> 4]);
        hex.push_back(kHex[c & 15]);
    }
    EXPECT_EQ(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(CryptoTest, Base64RoundTripsAllLengths) {
    std::string data;
    for (int i = 0; i < 40; ++i) {
        data.push_back(static_cast<char>(i * 37));
        auto url = base64UrlEncode(data);
        EXPECT_EQ(url.find('='), std::string::npos);
        auto decoded_url = base64Decode(url);
        ASSERT_TRUE(decoded_url.has_value());
        EXPECT_EQ(*decoded_url, data);
        auto decoded_std = base64Decode(base64Encode(data));
        ASSERT_TRUE(decoded_std.has_value());
        EXPECT_EQ(*decoded_std, data);
    }
}

TEST(CryptoTest, Base64EncodesRfc4648Vectors) {
    EXPECT_EQ(base64Encode("foob"), "Zm9vYg==");
    EXPECT_EQ(base64Encode("fooba"), "Zm9vYmE=");
    EXPECT_EQ(base64UrlEncode("foobar"), "Zm9vYmFy");
}

TEST(CryptoTest, Base64RejectsForeignCharacters) {
    EXPECT_FALSE(base64Decode("ab*d").has_value());
}

TEST(CryptoTest, ConstantTimeEqualsComparesContent) {
    EXPECT_TRUE(constantTimeEquals("secret", "secret"));
    EXPECT_FALSE(constantTimeEquals("secret", "secreT"));
    EXPECT_FALSE(constantTimeEquals("secret", "secrets"));
}

}  // namespace
}  // namespace bitmill::crypto

namespace bitmill::crypto {
namespace {

TEST(CryptoTest, SealRoundTripsAndDetectsTampering) {
    std::string key(32, 'k');
    std::string sealed = seal(key, "bm_secretvalue");
    auto opened = unseal(key, sealed);
    ASSERT_TRUE(opened.has_value());
    EXPECT_EQ(*opened, "bm_secretvalue");
    EXPECT_FALSE(unseal(std::string(32, 'x'), sealed).has_value());
    std::string altered = sealed;
    altered[5] = altered[5] == 'A' ? 'B' : 'A';
    EXPECT_FALSE(unseal(key, altered).has_value());
}

}  // namespace
}  // namespace bitmill::crypto
