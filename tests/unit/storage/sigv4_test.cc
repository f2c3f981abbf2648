// SigV4 signer against the examples AWS publishes, intermediate values
// included, plus the encoding rules the examples do not reach.
//
// Vectors (access key AKIAIOSFODNN7EXAMPLE, secret
// wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY, bucket examplebucket,
// 2013-05-24T00:00:00Z, us-east-1):
// - GET Object with Range, PUT Object, GET Bucket Lifecycle and GET Bucket
//   (List Objects): Amazon S3 API Reference, "Signature Calculations for the
//   Authorization Header: Transferring Payload in a Single Chunk (AWS
//   Signature Version 4)", section "Examples: Signature Calculations",
//   https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html
// - Presigned GET: Amazon S3 API Reference, "Authenticating Requests: Using
//   Query Parameters (AWS Signature Version 4)", section "An Example",
//   https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html
// - Signing key: AWS IAM User Guide, "Create a signed AWS API request"
//   (secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, 20150830, iam),
//   https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html
// NOTE: only parts of these pages were readable while writing this file. The
// other canonical requests and hashes were taken from several independent
// projects' copies of the same examples, which all agree with each other.
#include <gtest/gtest.h>

#include <string>

#include "core/crypto.h"
#include "storage/s3/sigv4.h"

namespace bitmill::storage::s3 {
namespace {

constexpr int64_t kExampleTime = 1369353600;  // 2013-05-24T00:00:00Z
constexpr char kExampleHost[] = "examplebucket.s3.amazonaws.com";

Signer exampleSigner() {
    return Signer({"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""},
                  "us-east-1");
}

std::string headerValue(const SignedRequest& request, const std::string& name) {
    for (const auto& [header, value] : request.headers) {
        if (header == name) {
            return value;
        }
    }
    return "(missing)";
}

TEST(SigV4Test, AwsExampleGetObjectWithRange) {
    SigningInput input;
    input.method = "GET";
    input.host = kExampleHost;
    input.path = "/test.txt";
    input.headers = {{"Range", "bytes=0-9"}};
    SignedRequest signed_request = exampleSigner().sign(input, kExampleTime);

    EXPECT_EQ(signed_request.canonical_request,
              "GET\n"
              "/test.txt\n"
              "\n"
              "host:examplebucket.s3.amazonaws.com\n"
              "range:bytes=0-9\n"
              "x-amz-content-sha256:"
              "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
              "x-amz-date:20130524T000000Z\n"
              "\n"
              "host;range;x-amz-content-sha256;x-amz-date\n"
              "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(signed_request.string_to_sign,
              "AWS4-HMAC-SHA256\n"
              "20130524T000000Z\n"
              "20130524/us-east-1/s3/aws4_request\n"
              "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
    EXPECT_EQ(signed_request.signature,
              "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    EXPECT_EQ(signed_request.authorization,
              "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
              "aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
              "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    EXPECT_EQ(signed_request.canonical_uri, "/test.txt");
    EXPECT_EQ(signed_request.canonical_query, "");
    // What is sent carries the same values as what was signed.
    EXPECT_EQ(headerValue(signed_request, "host"), kExampleHost);
    EXPECT_EQ(headerValue(signed_request, "range"), "bytes=0-9");
    EXPECT_EQ(headerValue(signed_request, "x-amz-date"), "20130524T000000Z");
    EXPECT_EQ(headerValue(signed_request, "x-amz-content-sha256"), kEmptyPayloadHash);
    EXPECT_EQ(headerValue(signed_request, "authorization"), signed_request.authorization);
}

TEST(SigV4Test, AwsExamplePutObject) {
    const std::string payload = "Welcome to Amazon S3.";
    SigningInput input;
    input.method = "PUT";
    input.host = kExampleHost;
    input.path = "/test$file.text";
    input.headers = {{"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                     {"x-amz-storage-class", "REDUCED_REDUNDANCY"}};
    input.payload_hash = crypto::sha256Hex(payload);
    ASSERT_EQ(input.payload_hash,
              "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    SignedRequest signed_request = exampleSigner().sign(input, kExampleTime);

    EXPECT_EQ(signed_request.canonical_uri, "/test%24file.text");
    EXPECT_EQ(signed_request.canonical_request,
              "PUT\n"
              "/test%24file.text\n"
              "\n"
              "date:Fri, 24 May 2013 00:00:00 GMT\n"
              "host:examplebucket.s3.amazonaws.com\n"
              "x-amz-content-sha256:"
              "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
              "x-amz-date:20130524T000000Z\n"
              "x-amz-storage-class:REDUCED_REDUNDANCY\n"
              "\n"
              "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
              "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    EXPECT_EQ(signed_request.string_to_sign,
              "AWS4-HMAC-SHA256\n"
              "20130524T000000Z\n"
              "20130524/us-east-1/s3/aws4_request\n"
              "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d");
    EXPECT_EQ(signed_request.signature,
              "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
    EXPECT_EQ(signed_request.authorization,
              "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
              "aws4_request,SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;"
              "x-amz-storage-class,"
              "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST(SigV4Test, AwsExampleGetBucketLifecycle) {
    SigningInput input;
    input.method = "GET";
    input.host = kExampleHost;
    input.path = "/";
    input.query = {{"lifecycle", ""}};
    SignedRequest signed_request = exampleSigner().sign(input, kExampleTime);

    EXPECT_EQ(signed_request.canonical_query, "lifecycle=");
    EXPECT_EQ(signed_request.canonical_request,
              "GET\n"
              "/\n"
              "lifecycle=\n"
              "host:examplebucket.s3.amazonaws.com\n"
              "x-amz-content-sha256:"
              "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
              "x-amz-date:20130524T000000Z\n"
              "\n"
              "host;x-amz-content-sha256;x-amz-date\n"
              "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(signed_request.string_to_sign,
              "AWS4-HMAC-SHA256\n"
              "20130524T000000Z\n"
              "20130524/us-east-1/s3/aws4_request\n"
              "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca");
    EXPECT_EQ(signed_request.signature,
              "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

TEST(SigV4Test, AwsExampleListObjectsSortsTheQuery) {
    SigningInput input;
    input.method = "GET";
    input.host = kExampleHost;
    input.path = "/";
    // Out of order on purpose: the canonical query is sorted.
    input.query = {{"prefix", "J"}, {"max-keys", "2"}};
    SignedRequest signed_request = exampleSigner().sign(input, kExampleTime);

    EXPECT_EQ(signed_request.canonical_query, "max-keys=2&prefix=J");
    EXPECT_EQ(signed_request.canonical_request,
              "GET\n"
              "/\n"
              "max-keys=2&prefix=J\n"
              "host:examplebucket.s3.amazonaws.com\n"
              "x-amz-content-sha256:"
              "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
              "x-amz-date:20130524T000000Z\n"
              "\n"
              "host;x-amz-content-sha256;x-amz-date\n"
              "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(signed_request.string_to_sign,
              "AWS4-HMAC-SHA256\n"
              "20130524T000000Z\n"
              "20130524/us-east-1/s3/aws4_request\n"
              "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7");
    EXPECT_EQ(signed_request.signature,
              "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST(SigV4Test, AwsExamplePresignedGet) {
    SigningInput input;
    input.method = "GET";
    input.host = kExampleHost;
    input.path = "/test.txt";
    PresignedRequest presigned = exampleSigner().presign(input, 86400, kExampleTime);

    EXPECT_EQ(presigned.canonical_request,
              "GET\n"
              "/test.txt\n"
              "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%"
              "2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&"
              "X-Amz-SignedHeaders=host\n"
              "host:examplebucket.s3.amazonaws.com\n"
              "\n"
              "host\n"
              "UNSIGNED-PAYLOAD");
    EXPECT_EQ(presigned.string_to_sign,
              "AWS4-HMAC-SHA256\n"
              "20130524T000000Z\n"
              "20130524/us-east-1/s3/aws4_request\n"
              "3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04");
    EXPECT_EQ(presigned.signature,
              "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
    EXPECT_EQ(
        "https://" + std::string(kExampleHost) + presigned.canonical_uri + "?" + presigned.query,
        "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&"
        "X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&"
        "X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&"
        "X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
}

TEST(SigV4Test, AwsExampleSigningKey) {
    std::string key = deriveSigningKey("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830",
                                       "us-east-1", "iam");
    std::string hex;
    for (char c : key) {
        static constexpr char kHex[] = "0123456789abcdef";
        hex.push_back(kHex[static_cast<unsigned char>(c) >> 4]);
        hex.push_back(kHex[static_cast<unsigned char>(c) & 15]);
    }
    EXPECT_EQ(hex, "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9");
}

TEST(SigV4Test, UriEncodeFollowsAwsRules) {
    EXPECT_EQ(uriEncode("AZaz09-._~", true), "AZaz09-._~");
    EXPECT_EQ(uriEncode("a b+c=d&e", true), "a%20b%2Bc%3Dd%26e");
    EXPECT_EQ(uriEncode("a/b", true), "a%2Fb");
    EXPECT_EQ(uriEncode("a/b", false), "a/b");
    EXPECT_EQ(uriEncode("!*'()$,;:@", true), "%21%2A%27%28%29%24%2C%3B%3A%40");
    // UTF-8 bytes are encoded one by one, in uppercase hex.
    EXPECT_EQ(uriEncode("\xc3\xa9t\xc3\xa9", true), "%C3%A9t%C3%A9");
    EXPECT_EQ(uriEncode("100%", true), "100%25");
}

TEST(SigV4Test, PathSegmentsAreEncodedAndSlashesKept) {
    SigningInput input;
    input.method = "GET";
    input.host = "127.0.0.1:9000";
    input.path = "/bucket/prj a/file+1/\xc3\xa9.mp4";
    input.query = {{"uploadId", "a/b+c"}, {"partNumber", "10"}};
    SignedRequest signed_request = exampleSigner().sign(input, kExampleTime);
    EXPECT_EQ(signed_request.canonical_uri, "/bucket/prj%20a/file%2B1/%C3%A9.mp4");
    EXPECT_EQ(signed_request.canonical_query, "partNumber=10&uploadId=a%2Fb%2Bc");
    EXPECT_EQ(headerValue(signed_request, "host"), "127.0.0.1:9000");
}

TEST(SigV4Test, HeaderValuesAreTrimmedAndNamesLowered) {
    SigningInput input;
    input.method = "GET";
    input.host = kExampleHost;
    input.path = "/x";
    input.headers = {{"X-Amz-Meta-Note", "  two   spaces  here "}};
    SignedRequest signed_request = exampleSigner().sign(input, kExampleTime);
    EXPECT_NE(signed_request.canonical_request.find("\nx-amz-meta-note:two spaces here\n"),
              std::string::npos)
        << signed_request.canonical_request;
    EXPECT_NE(signed_request.authorization.find(
                  "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-meta-note,"),
              std::string::npos)
        << signed_request.authorization;
}

TEST(SigV4Test, SessionTokenIsSigned) {
    Signer signer({"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "token/1"},
                  "us-east-1");
    SigningInput input;
    input.method = "GET";
    input.host = kExampleHost;
    input.path = "/test.txt";
    SignedRequest signed_request = signer.sign(input, kExampleTime);
    EXPECT_EQ(headerValue(signed_request, "x-amz-security-token"), "token/1");
    EXPECT_NE(signed_request.authorization.find(
                  "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"),
              std::string::npos)
        << signed_request.authorization;

    PresignedRequest presigned = signer.presign(input, 60, kExampleTime);
    EXPECT_NE(presigned.query.find("X-Amz-Security-Token=token%2F1&X-Amz-SignedHeaders=host"),
              std::string::npos)
        << presigned.query;
    EXPECT_NE(presigned.signature, exampleSigner().presign(input, 60, kExampleTime).signature);
}

TEST(SigV4Test, UnsignedPayloadAndTimeChangeTheSignature) {
    SigningInput input;
    input.method = "PUT";
    input.host = kExampleHost;
    input.path = "/big.bin";
    input.payload_hash = std::string(kUnsignedPayload);
    SignedRequest unsigned_payload = exampleSigner().sign(input, kExampleTime);
    EXPECT_EQ(headerValue(unsigned_payload, "x-amz-content-sha256"), "UNSIGNED-PAYLOAD");
    EXPECT_EQ(
        unsigned_payload.canonical_request.substr(unsigned_payload.canonical_request.size() - 16),
        "UNSIGNED-PAYLOAD");
    SignedRequest later = exampleSigner().sign(input, kExampleTime + 1);
    EXPECT_NE(later.signature, unsigned_payload.signature);
    EXPECT_EQ(headerValue(later, "x-amz-date"), "20130524T000001Z");
}

TEST(SigV4Test, FormatAmzDate) {
    EXPECT_EQ(formatAmzDate(kExampleTime), "20130524T000000Z");
    EXPECT_EQ(formatAmzDate(1735689599), "20241231T235959Z");
}

TEST(SigV4Test, IncrementalSha256MatchesOneShot) {
    const std::string data(3'000'001, 'x');
    Sha256 hash;
    hash.update(std::string_view(data).substr(0, 1'000'000));
    hash.update(std::string_view(data).substr(1'000'000));
    EXPECT_EQ(hash.finishHex(), crypto::sha256Hex(data));
    EXPECT_EQ(Sha256().finishHex(), kEmptyPayloadHash);
}

}  // namespace
}  // namespace bitmill::storage::s3
