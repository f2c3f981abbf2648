// Signed delivery URLs: a known HMAC-SHA256 result computed outside bitmill
// (Python's hmac module) and the encodings verification accepts.
#include <gtest/gtest.h>

#include <string>

#include "api/signing.h"

namespace bitmill::api {
namespace {

constexpr const char* kKey = "bm_testkey";
constexpr const char* kPath = "videos/clip.mp4";
constexpr int64_t kExpiry = 1700000000;
// base64url of HMAC-SHA256("bm_testkey", "videos/clip.mp4?expiry=1700000000&method=get").
constexpr const char* kGetSignature = "w5gcVSVfuxUFttE2cvcbRg_6rHHrMxWOL9-aO_G72FQ";
constexpr const char* kPutSignature = "l9hS8CXUVJ6D-bQg6k3y1izWIuTQ8MvvH4EP6tqwfs0";

TEST(SigningTest, MatchesKnownResult) {
    EXPECT_EQ(signDeliveryPath(kKey, kPath, kExpiry, "get"), kGetSignature);
    EXPECT_EQ(signDeliveryPath(kKey, kPath, kExpiry, "put"), kPutSignature);
}

TEST(SigningTest, IgnoresLeadingSlash) {
    EXPECT_EQ(signDeliveryPath(kKey, "/videos/clip.mp4", kExpiry, "get"), kGetSignature);
    EXPECT_TRUE(verifyDeliverySignature(kKey, "/videos/clip.mp4", kExpiry, "get", kGetSignature));
}

TEST(SigningTest, AcceptsEveryBase64Spelling) {
    const char* spellings[] = {
        "w5gcVSVfuxUFttE2cvcbRg_6rHHrMxWOL9-aO_G72FQ",   // URL-safe, unpadded
        "w5gcVSVfuxUFttE2cvcbRg_6rHHrMxWOL9-aO_G72FQ=",  // URL-safe, padded
        "w5gcVSVfuxUFttE2cvcbRg/6rHHrMxWOL9+aO/G72FQ=",  // standard, padded
        "w5gcVSVfuxUFttE2cvcbRg/6rHHrMxWOL9+aO/G72FQ",   // standard, unpadded
    };
    for (const char* signature : spellings) {
        EXPECT_TRUE(verifyDeliverySignature(kKey, kPath, kExpiry, "get", signature)) << signature;
    }
}

TEST(SigningTest, MissingMethodMeansGet) {
    EXPECT_TRUE(verifyDeliverySignature(kKey, kPath, kExpiry, "", kGetSignature));
    EXPECT_FALSE(verifyDeliverySignature(kKey, kPath, kExpiry, "", kPutSignature));
    EXPECT_EQ(signDeliveryPath(kKey, kPath, kExpiry, ""), kGetSignature);
}

TEST(SigningTest, RejectsAnyChangedPart) {
    EXPECT_FALSE(verifyDeliverySignature("bm_otherkey", kPath, kExpiry, "get", kGetSignature));
    EXPECT_FALSE(verifyDeliverySignature(kKey, "videos/clip2.mp4", kExpiry, "get", kGetSignature));
    EXPECT_FALSE(verifyDeliverySignature(kKey, kPath, kExpiry + 1, "get", kGetSignature));
    EXPECT_FALSE(verifyDeliverySignature(kKey, kPath, kExpiry, "put", kGetSignature));
}

TEST(SigningTest, RejectsMalformedSignatures) {
    std::string truncated(kGetSignature);
    truncated.pop_back();
    std::string flipped(kGetSignature);
    flipped[0] = flipped[0] == 'A' ? 'B' : 'A';
    for (const std::string& signature :
         {std::string(), truncated, flipped, std::string("not base64!"), std::string("====")}) {
        EXPECT_FALSE(verifyDeliverySignature(kKey, kPath, kExpiry, "get", signature)) << signature;
    }
}

}  // namespace
}  // namespace bitmill::api
