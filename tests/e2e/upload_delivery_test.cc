// Uploads to and downloads from the delivery listener: measured File fields,
// byte-exact delivery with ranges, ETags and HEAD, chunked uploads,
// rejected uploads (empty, too large, no key), and private delivery with
// signed URLs.
#include <chrono>

#include "e2e_test.h"
#include "signing.h"

namespace bitmill::e2e {
namespace {

class UploadDeliveryTest : public E2eTest {
protected:
    // 640x360, 2 s H.264 + AAC.
    static std::filesystem::path sampleClip() {
        VideoSpec spec;
        spec.width = 640;
        spec.height = 360;
        spec.seconds = 2;
        return makeVideo(spec);
    }

    static int64_t unixNow() {
        return std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
    }
};

TEST_F(UploadDeliveryTest, UploadMeasuresVideoFile) {
    std::filesystem::path clip = sampleClip();
    HttpResponse response = api().upload(clip, "clips/sample.mp4");
    ASSERT_EQ(response.status, 201) << response.describe();
    Json file = response.json();
    expectFileShape(file);
    EXPECT_EQ(file["object"], "source");
    EXPECT_EQ(file["kind"], "video");
    EXPECT_EQ(file["status"], "ready");
    EXPECT_EQ(file.value("width", 0), 640);
    EXPECT_EQ(file.value("height", 0), 360);
    EXPECT_NEAR(file.value("duration", 0.0), 2.0, 0.1) << file.dump();
    EXPECT_EQ(file["filesize"], std::filesystem::file_size(clip));
    EXPECT_EQ(file.value("folder", ""), "clips");
    EXPECT_EQ(file.value("filename", ""), "sample.mp4");
    EXPECT_EQ(file.value("orientation", ""), "landscape");
    EXPECT_EQ(file.value("original", false), true);
    std::string type = file["type"];
    EXPECT_EQ(type.rfind("video/mp4", 0), 0u) << type;
    EXPECT_TRUE(containsText(type, "codecs=")) << type;
    EXPECT_TRUE(containsText(type, "avc1")) << type;
    EXPECT_TRUE(containsText(type, "mp4a")) << type;

    Json media = api().getJson("/media/" + file["media_id"].get<std::string>());
    EXPECT_EQ(media["kind"], "video");
    ASSERT_TRUE(media["urls"].is_object()) << media.dump();
    EXPECT_EQ(media["urls"].value("original", ""), file["url"]) << media.dump();
    EXPECT_NEAR(media.value("duration", 0.0), 2.0, 0.1) << media.dump();
}

TEST_F(UploadDeliveryTest, UploadMeasuresImageAndAudio) {
    ImageSpec image_spec;
    image_spec.width = 480;
    image_spec.height = 640;
    Json image = api().uploadFile(makeImage(image_spec));
    EXPECT_EQ(image["kind"], "image");
    EXPECT_EQ(image.value("width", 0), 480);
    EXPECT_EQ(image.value("height", 0), 640);
    EXPECT_EQ(image.value("orientation", ""), "portrait");
    EXPECT_EQ(image["type"].get<std::string>().rfind("image/jpeg", 0), 0u) << image.dump();

    AudioSpec audio_spec;
    audio_spec.seconds = 1.5;
    Json audio = api().uploadFile(makeAudio(audio_spec));
    EXPECT_EQ(audio["kind"], "audio");
    EXPECT_NEAR(audio.value("duration", 0.0), 1.5, 0.05) << audio.dump();
}

TEST_F(UploadDeliveryTest, DeliveryServesSameBytesWithHeaders) {
    std::filesystem::path clip = sampleClip();
    std::string original = readFileBytes(clip);
    Json file = api().uploadFile(clip, "clips/sample.mp4");
    HttpResponse response = fetchUrl(file["url"]);
    ASSERT_EQ(response.status, 200) << response.describe();
    EXPECT_TRUE(response.body == original) << "delivered bytes differ from the upload";
    EXPECT_EQ(response.header("Content-Type").rfind("video/mp4", 0), 0u)
        << response.header("Content-Type");
    EXPECT_EQ(response.header("Content-Length"), std::to_string(original.size()));
    EXPECT_FALSE(response.header("ETag").empty());
    EXPECT_FALSE(response.header("Last-Modified").empty());
    EXPECT_EQ(response.header("Accept-Ranges"), "bytes");
}

TEST_F(UploadDeliveryTest, RangeRequestsGive206And416) {
    std::filesystem::path clip = sampleClip();
    std::string original = readFileBytes(clip);
    Json file = api().uploadFile(clip, "clips/sample.mp4");
    std::string url = file["url"];

    HttpResponse partial = fetchUrl(url, {{"Range", "bytes=0-99"}});
    ASSERT_EQ(partial.status, 206) << partial.describe();
    EXPECT_TRUE(partial.body == original.substr(0, 100));
    EXPECT_EQ(partial.header("Content-Range"),
              "bytes 0-99/" + std::to_string(original.size()));

    HttpResponse tail = fetchUrl(url, {{"Range", "bytes=-10"}});
    ASSERT_EQ(tail.status, 206) << tail.describe();
    EXPECT_TRUE(tail.body == original.substr(original.size() - 10));

    HttpResponse middle = fetchUrl(url, {{"Range", "bytes=1000-"}});
    ASSERT_EQ(middle.status, 206) << middle.describe();
    EXPECT_TRUE(middle.body == original.substr(1000));

    HttpResponse beyond =
        fetchUrl(url, {{"Range", "bytes=" + std::to_string(original.size() + 10) + "-"}});
    EXPECT_EQ(beyond.status, 416) << beyond.describe();
}

TEST_F(UploadDeliveryTest, ConditionalGetAndHead) {
    Json file = api().uploadFile(sampleClip(), "clips/sample.mp4");
    std::string url = file["url"];
    HttpResponse first = fetchUrl(url);
    ASSERT_EQ(first.status, 200) << first.describe();
    std::string etag = first.header("ETag");
    ASSERT_FALSE(etag.empty());

    HttpResponse unchanged = fetchUrl(url, {{"If-None-Match", etag}});
    EXPECT_EQ(unchanged.status, 304) << unchanged.describe();
    EXPECT_TRUE(unchanged.body.empty());

    auto [origin, path] = splitUrl(url);
    HttpClient client(origin);
    HttpResponse head = client.head(path);
    EXPECT_EQ(head.status, 200) << head.describe();
    EXPECT_TRUE(head.body.empty());
    EXPECT_EQ(head.header("Content-Length"), first.header("Content-Length"));
    EXPECT_EQ(head.header("ETag"), etag);
}

TEST_F(UploadDeliveryTest, ChunkedUploadOutOfOrderAndRepeated) {
    std::filesystem::path clip = sampleClip();
    std::string bytes = readFileBytes(clip);
    const size_t total = bytes.size();
    ASSERT_GT(total, 3000u);
    const size_t third = total / 3;
    struct Chunk {
        size_t first;
        size_t last;  // inclusive
    };
    const Chunk chunks[] = {{0, third - 1}, {third, 2 * third - 1}, {2 * third, total - 1}};
    auto sendChunk = [&](const Chunk& chunk, const std::string& unit_separator) {
        std::string range = "bytes" + unit_separator + std::to_string(chunk.first) + "-" +
                            std::to_string(chunk.last) + "/" + std::to_string(total);
        return api().delivery().send("PUT", "/chunked/clip.mp4",
                                     bytes.substr(chunk.first, chunk.last - chunk.first + 1),
                                     "video/mp4", {{"Content-Range", range}});
    };

    HttpResponse last_chunk = sendChunk(chunks[2], " ");
    EXPECT_EQ(last_chunk.status, 202) << last_chunk.describe();
    HttpResponse first_chunk = sendChunk(chunks[0], "=");
    EXPECT_EQ(first_chunk.status, 202) << first_chunk.describe();
    HttpResponse repeated = sendChunk(chunks[2], " ");
    EXPECT_EQ(repeated.status, 202) << repeated.describe();
    EXPECT_TRUE(containsText(repeated.body, std::to_string(2 * third)))
        << "a partial answer lists the received ranges: " << repeated.describe();

    HttpResponse done = sendChunk(chunks[1], " ");
    ASSERT_EQ(done.status, 201) << done.describe();
    Json file = done.json();
    expectFileShape(file);
    EXPECT_EQ(file["filesize"], total);
    EXPECT_EQ(file.value("width", 0), 640);
    HttpResponse delivered = fetchUrl(file["url"]);
    ASSERT_EQ(delivered.status, 200);
    EXPECT_TRUE(delivered.body == bytes) << "reassembled upload differs from the source";
}

TEST_F(UploadDeliveryTest, EmptyUploadIsRejected) {
    HttpResponse response =
        api().delivery().send("PUT", "/empty/nothing.mp4", "", "video/mp4");
    EXPECT_TRUE(response.status == 400 || response.status == 422) << response.describe();
    EXPECT_FALSE(errorMessage(response).empty()) << response.describe();
    EXPECT_EQ(api().getJson("/files").size(), 0u) << "no file was created";
}

TEST_F(UploadDeliveryTest, ZeroByteCorpusFilesAreRejected) {
    for (const char* name : {"v-zero-bytes.mp4", "i-zero-bytes.jpg"}) {
        HttpResponse response = api().upload(corpusFile(name), std::string("zero/") + name);
        EXPECT_TRUE(response.status == 400 || response.status == 422)
            << name << ": " << response.describe();
    }
    EXPECT_EQ(api().getJson("/media").size(), 0u) << "no media was created";
}

TEST_F(UploadDeliveryTest, NonMediaBytesAreRejected) {
    std::filesystem::path text = scratchDir() / "notes.mp4";
    writeFileBytes(text, std::string(4096, 'x'));
    HttpResponse response = api().upload(text, "junk/notes.mp4");
    EXPECT_TRUE(response.status == 400 || response.status == 415 || response.status == 422)
        << response.describe();
    EXPECT_FALSE(errorMessage(response).empty()) << response.describe();
}

TEST_F(UploadDeliveryTest, UploadWithoutKeyIsRejected) {
    HttpClient anonymous(server().deliveryUrl());
    HttpResponse response =
        anonymous.send("PUT", "/anon/clip.mp4", readFileBytes(sampleClip()), "video/mp4");
    EXPECT_TRUE(response.status == 401 || response.status == 403) << response.describe();
}

TEST_F(UploadDeliveryTest, UploadOverLimitIs413) {
    ServerOptions options;
    options.environment["BITMILL_MAX_UPLOAD_BYTES"] = "100000";
    ServerProcess& limited = startServer(options);
    ApiSession session = sessionFor(limited);
    std::filesystem::path big = scratchDir() / "big.bin";
    writeFileBytes(big, std::string(300000, '\0'));
    HttpResponse response = session.upload(big, "big/too-large.mp4");
    EXPECT_EQ(response.status, 413) << response.describe();
    EXPECT_TRUE(isHealthy(limited));
}

TEST_F(UploadDeliveryTest, SignaturesEndpointSignsAsDocumented) {
    int64_t expiry = unixNow() + 600;
    HttpResponse response = api().api().post(
        "/signatures",
        {{"filename", "clip.mp4"}, {"folder", "signed"}, {"expiry", expiry}, {"method", "get"}});
    ASSERT_EQ(response.status, 200) << response.describe();
    Json signature = response.json();
    for (const char* field : {"domain", "filename", "expiry", "method", "signature", "url"}) {
        EXPECT_TRUE(signature.contains(field)) << "no '" << field << "': " << signature.dump();
    }
    EXPECT_EQ(signature["filename"], "clip.mp4");
    EXPECT_EQ(signature["folder"], "signed");
    EXPECT_EQ(signature["method"], "get");
    EXPECT_TRUE(signature["expiry"].is_number_integer());
    EXPECT_EQ(signature["expiry"], expiry);
    EXPECT_EQ(signature["signature"],
              deliverySignature(api().apiKey(), "signed/clip.mp4", expiry, "get"));
    std::string url = signature["url"];
    EXPECT_TRUE(containsText(url, "/signed/clip.mp4?")) << url;
    EXPECT_TRUE(containsText(url, "expiry=" + std::to_string(expiry))) << url;
    EXPECT_TRUE(containsText(url, "signature=")) << url;
}

class PrivateDeliveryTest : public UploadDeliveryTest {
protected:
    void SetUp() override {
        ServerOptions options;
        options.environment["BITMILL_DELIVERY_PRIVATE"] = "true";
        private_server_ = &startServer(options);
        session_ = std::make_unique<ApiSession>(*private_server_);
        file_ = session_->uploadFile(sampleClip(), "private/clip.mp4");
    }

    std::string signedUrl(int64_t expiry, const std::string& signature) {
        return private_server_->deliveryUrl() + "/private/clip.mp4?expiry=" +
               std::to_string(expiry) + "&method=get&signature=" + signature;
    }

    ServerProcess* private_server_ = nullptr;
    std::unique_ptr<ApiSession> session_;
    Json file_;
};

TEST_F(PrivateDeliveryTest, UnsignedGetIs403) {
    HttpResponse response = fetchUrl(file_["url"]);
    EXPECT_EQ(response.status, 403) << response.describe();
    EXPECT_FALSE(errorMessage(response).empty()) << response.describe();
}

TEST_F(PrivateDeliveryTest, SignatureFromApiGives200) {
    HttpResponse signature = session_->api().post(
        "/signatures", {{"filename", "clip.mp4"}, {"folder", "private"}, {"method", "get"}});
    ASSERT_EQ(signature.status, 200) << signature.describe();
    HttpResponse response = fetchUrl(signature.json()["url"]);
    ASSERT_EQ(response.status, 200) << response.describe();
    EXPECT_EQ(response.body.size(), std::filesystem::file_size(sampleClip()));
}

TEST_F(PrivateDeliveryTest, SelfComputedSignatureVariantsAreAccepted) {
    int64_t expiry = unixNow() + 300;
    const std::string key = private_server_->apiKey();
    std::string unpadded = deliverySignature(key, "private/clip.mp4", expiry, "get");
    EXPECT_EQ(fetchUrl(signedUrl(expiry, unpadded)).status, 200);

    // Padded standard base64, percent-encoded for the query string.
    std::string padded = deliverySignaturePadded(key, "private/clip.mp4", expiry, "get");
    std::string escaped;
    for (char c : padded) {
        if (c == '+') {
            escaped += "%2B";
        } else if (c == '/') {
            escaped += "%2F";
        } else if (c == '=') {
            escaped += "%3D";
        } else {
            escaped += c;
        }
    }
    EXPECT_EQ(fetchUrl(signedUrl(expiry, escaped)).status, 200) << "padded base64: " << padded;

    // A missing method means get.
    std::string without_method = private_server_->deliveryUrl() +
                                 "/private/clip.mp4?expiry=" + std::to_string(expiry) +
                                 "&signature=" + unpadded;
    EXPECT_EQ(fetchUrl(without_method).status, 200) << without_method;
}

TEST_F(PrivateDeliveryTest, ExpiredOrWrongSignatureIs403) {
    const std::string key = private_server_->apiKey();
    int64_t past = unixNow() - 60;
    HttpResponse expired =
        fetchUrl(signedUrl(past, deliverySignature(key, "private/clip.mp4", past, "get")));
    EXPECT_EQ(expired.status, 403) << expired.describe();

    int64_t future = unixNow() + 300;
    std::string other_path = deliverySignature(key, "private/other.mp4", future, "get");
    EXPECT_EQ(fetchUrl(signedUrl(future, other_path)).status, 403);
    std::string wrong_key = deliverySignature(randomApiKey(), "private/clip.mp4", future, "get");
    EXPECT_EQ(fetchUrl(signedUrl(future, wrong_key)).status, 403);
}

TEST_F(UploadDeliveryTest, SignedPutUploadsWithoutKey) {
    HttpResponse signature = api().api().post(
        "/signatures", {{"filename", "clip.mp4"}, {"folder", "dropbox"}, {"method", "put"}});
    ASSERT_EQ(signature.status, 200) << signature.describe();
    auto [origin, path] = splitUrl(signature.json()["url"]);
    HttpClient anonymous(origin);
    HttpResponse response =
        anonymous.send("PUT", path, readFileBytes(sampleClip()), "video/mp4");
    ASSERT_EQ(response.status, 201) << response.describe();
    EXPECT_EQ(response.json()["kind"], "video");
    EXPECT_EQ(response.json().value("filename", ""), "clip.mp4");
}

TEST_F(UploadDeliveryTest, SameDeliveryPathServesNewestUpload) {
    VideoSpec small;
    small.seconds = 1;
    api().uploadFile(sampleClip(), "same/clip.mp4");
    Json newer = api().uploadFile(makeVideo(small), "same/clip.mp4");
    HttpResponse response = fetchUrl(newer["url"]);
    ASSERT_EQ(response.status, 200);
    EXPECT_EQ(response.body.size(), std::filesystem::file_size(makeVideo(small)));
}

}  // namespace
}  // namespace bitmill::e2e
