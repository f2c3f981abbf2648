// The delivery listener over real HTTP on 127.0.0.1: uploads (whole and
// chunked), downloads with ranges and conditional requests, and private
// delivery with signed URLs. Uses a real SQLite store and local blob store
// in a temporary folder; the probe returns fixed properties.
#include <gtest/gtest.h>
#include <httplib.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "api/delivery.h"
#include "api/signing.h"
#include "api/uploads.h"
#include "core/clock.h"
#include "core/crypto.h"
#include "core/ids.h"
#include "db/open_store.h"
#include "storage/open_blob_store.h"

namespace bitmill::api {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kUploadLimit = 4 * 1024 * 1024;
constexpr size_t kFileBytes = 300 * 1024;  // several 64 KiB reads

std::string randomBytes(size_t size, uint32_t seed) {
    std::mt19937 generator(seed);
    std::string bytes(size, '\0');
    for (char& byte : bytes) {
        byte = static_cast<char>(generator() & 0xff);
    }
    return bytes;
}

// Returns `signature` in standard base64 with padding.
std::string toStandardBase64(std::string signature) {
    std::replace(signature.begin(), signature.end(), '-', '+');
    std::replace(signature.begin(), signature.end(), '_', '/');
    while (signature.size() % 4 != 0) {
        signature += '=';
    }
    return signature;
}

class DeliveryTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char pattern[] = "/tmp/bitmill-delivery-test-XXXXXX";
        ASSERT_NE(::mkdtemp(pattern), nullptr);
        data_dir_ = pattern;

        context_ = std::make_shared<ApiContext>();
        context_->config.data_dir = data_dir_;
        context_->config.public_delivery_url = "http://delivery.test";
        context_->config.limits.max_upload_bytes = kUploadLimit;
        context_->server_secret = randomBase62(32);
        context_->org_id = "org_test";
        auto store = db::openStore("", data_dir_);
        ASSERT_TRUE(store.ok()) << store.error().toLogString();
        context_->store = *store;
        auto blobs = storage::openBlobStore("", data_dir_);
        ASSERT_TRUE(blobs.ok()) << blobs.error().toLogString();
        context_->blobs = *blobs;
        context_->probe_file = [this](const std::string& path) { return probe(path); };

        auto project = context_->store->ensureDefaultProject();
        ASSERT_TRUE(project.ok()) << project.error().toLogString();
        project_ = *project;
        api_key_ = "bm_" + randomBase62(40);
        insertKey(api_key_);

        server_.new_task_queue = [] { return new httplib::ThreadPool(16); };
        registerDeliveryRoutes(server_, context_);
        port_ = server_.bind_to_any_port("127.0.0.1");
        ASSERT_GT(port_, 0);
        thread_ = std::thread([this] { server_.listen_after_bind(); });
        while (!server_.is_running()) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }

    void TearDown() override {
        server_.stop();
        if (thread_.joinable()) {
            thread_.join();
        }
        std::error_code ignored;
        fs::remove_all(data_dir_, ignored);
    }

    // Fixed properties, or an error for bytes that start with "BAD".
    Result<MediaProperties> probe(const std::string& path) {
        ++probe_calls_;
        std::ifstream input(path, std::ios::binary);
        char head[3] = {};
        input.read(head, 3);
        if (std::string_view(head, 3) == "BAD") {
            return Error::unsupportedMedia(
                "probe upload: invalid data found when processing input");
        }
        MediaProperties properties;
        properties.kind = "video";
        properties.type = "video/mp4; codecs=\"avc1.64001f\"";
        properties.container = "mp4";
        properties.extension = "mp4";
        properties.width = 320;
        properties.height = 240;
        properties.duration = 2.0;
        return properties;
    }

    void insertKey(const std::string& secret) { insertKeyOf(project_.id, secret); }

    void insertKeyOf(const std::string& project_id, const std::string& secret) {
        domain::ApiKey key;
        key.id = newId("key_");
        key.project_id = project_id;
        key.name = "test";
        key.display_prefix = secret.substr(0, 6);
        key.hash = crypto::sha256Hex(secret);
        key.sealed_key = crypto::seal(context_->server_secret, secret);
        key.created_ms = nowMillis();
        ASSERT_TRUE(context_->store->insertApiKey(key).ok());
    }

    void makeDeliveryPrivate() {
        project_.delivery_private = true;
        ASSERT_TRUE(context_->store->updateProject(project_).ok());
    }

    // Creates the project `name` with a key and returns the key.
    std::string addProject(const std::string& name) {
        auto project = context_->store->ensureProject(name);
        EXPECT_TRUE(project.ok());
        const std::string secret = "bm_" + randomBase62(40);
        if (project.ok()) {
            insertKeyOf(project->id, secret);
        }
        return secret;
    }

    std::unique_ptr<httplib::Client> client() {
        auto http = std::make_unique<httplib::Client>("127.0.0.1", port_);
        http->set_read_timeout(30, 0);
        http->set_write_timeout(30, 0);
        return http;
    }

    httplib::Headers bearer() const { return {{"Authorization", "Bearer " + api_key_}}; }

    // Uploads `bytes` whole to `path` and returns the File JSON.
    Json uploadWhole(const std::string& path, const std::string& bytes) {
        auto response = client()->Put(path, bearer(), bytes, "application/octet-stream");
        EXPECT_TRUE(response);
        if (!response) {
            return Json();
        }
        EXPECT_EQ(response->status, 201) << response->body;
        return Json::parse(response->body, nullptr, false);
    }

    httplib::Result putChunk(const std::string& path, const std::string& bytes, size_t first,
                             size_t last) {
        return putChunkWithKey(api_key_, path, bytes, first, last);
    }

    httplib::Result putChunkWithKey(const std::string& key, const std::string& path,
                                    const std::string& bytes, size_t first, size_t last) {
        httplib::Headers headers = {{"Authorization", "Bearer " + key}};
        headers.emplace("Content-Range", "bytes " + std::to_string(first) + "-" +
                                             std::to_string(last) + "/" +
                                             std::to_string(bytes.size()));
        return client()->Put(path, headers, bytes.substr(first, last - first + 1),
                             "application/octet-stream");
    }

    std::string signedQuery(const std::string& path, int64_t expiry, const std::string& method,
                            const std::string& key) const {
        return "?expiry=" + std::to_string(expiry) + "&method=" + method +
               "&signature=" + signDeliveryPath(key, path, expiry, method);
    }

    std::string data_dir_;
    std::shared_ptr<ApiContext> context_;
    domain::Project project_;
    std::string api_key_;
    std::atomic<int> probe_calls_{0};
    httplib::Server server_;
    std::thread thread_;
    int port_ = 0;
};

TEST_F(DeliveryTest, UploadsAndServesWholeFile) {
    const std::string bytes = randomBytes(kFileBytes, 1);
    Json file = uploadWhole("/videos/clip.mp4", bytes);
    ASSERT_TRUE(file.is_object());
    EXPECT_TRUE(file["id"].get<std::string>().starts_with("file_"));
    EXPECT_TRUE(file["media_id"].get<std::string>().starts_with("med_"));
    EXPECT_EQ(file["filesize"], kFileBytes);
    EXPECT_EQ(file["folder"], "videos");
    EXPECT_EQ(file["filename"], "clip.mp4");
    EXPECT_EQ(file["original"], true);
    EXPECT_EQ(file["kind"], "video");
    EXPECT_EQ(file["url"], "http://delivery.test/videos/clip.mp4");

    auto response = client()->Get("/videos/clip.mp4");
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->body.size(), bytes.size());
    EXPECT_TRUE(response->body == bytes);
    EXPECT_EQ(response->get_header_value("Content-Type"), "video/mp4; codecs=\"avc1.64001f\"");
    EXPECT_EQ(response->get_header_value("Content-Length"), std::to_string(kFileBytes));
    EXPECT_EQ(response->get_header_value("Accept-Ranges"), "bytes");
    EXPECT_FALSE(response->get_header_value("ETag").empty());
    EXPECT_TRUE(parseHttpDate(response->get_header_value("Last-Modified")).has_value());
}

TEST_F(DeliveryTest, HeadSendsHeadersOnly) {
    uploadWhole("/clip.mp4", randomBytes(kFileBytes, 2));
    auto response = client()->Head("/clip.mp4");
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->get_header_value("Content-Length"), std::to_string(kFileBytes));
    EXPECT_TRUE(response->body.empty());
}

TEST_F(DeliveryTest, ServesSingleRanges) {
    const std::string bytes = randomBytes(kFileBytes, 3);
    uploadWhole("/media/range.mp4", bytes);
    const std::string size = std::to_string(kFileBytes);
    struct Case {
        std::string header;
        size_t first;
        size_t last;
    };
    const Case cases[] = {
        {"bytes=1000-1999", 1000, 1999},
        {"bytes=0-0", 0, 0},
        {"bytes=-100", kFileBytes - 100, kFileBytes - 1},
        {"bytes=300000-", 300000, kFileBytes - 1},
        {"bytes=70000-99999999", 70000, kFileBytes - 1},  // clamped to the end
    };
    for (const Case& test_case : cases) {
        auto response = client()->Get("/media/range.mp4", {{"Range", test_case.header}});
        ASSERT_TRUE(response) << test_case.header;
        EXPECT_EQ(response->status, 206) << test_case.header;
        EXPECT_EQ(response->get_header_value("Content-Range"),
                  "bytes " + std::to_string(test_case.first) + "-" +
                      std::to_string(test_case.last) + "/" + size)
            << test_case.header;
        EXPECT_EQ(response->get_header_value("Content-Length"),
                  std::to_string(test_case.last - test_case.first + 1))
            << test_case.header;
        EXPECT_TRUE(response->body ==
                    bytes.substr(test_case.first, test_case.last - test_case.first + 1))
            << test_case.header;
    }
}

TEST_F(DeliveryTest, UnsatisfiableRangeIs416) {
    uploadWhole("/range416.mp4", randomBytes(kFileBytes, 4));
    for (const char* header : {"bytes=307200-", "bytes=999999-1000000", "bytes=-0"}) {
        auto response = client()->Get("/range416.mp4", {{"Range", header}});
        ASSERT_TRUE(response) << header;
        EXPECT_EQ(response->status, 416) << header;
        EXPECT_EQ(response->get_header_value("Content-Range"), "bytes */307200") << header;
        EXPECT_EQ(
            Json::parse(response->body)["message"],
            std::string("range '") + header + "' is not satisfiable: the file has 307200 bytes");
    }
}

TEST_F(DeliveryTest, InvalidRangeIsIgnored) {
    const std::string bytes = randomBytes(kFileBytes, 19);
    uploadWhole("/invalid-range.mp4", bytes);
    // httplib rejects these before routing; the first two also fail its
    // parser, the others only ours.
    for (const char* header : {"bytes=abc", "bytes=100-50", "bytes=-", "items=0-9", "bytes=1-x"}) {
        auto response = client()->Get("/invalid-range.mp4", {{"Range", header}});
        ASSERT_TRUE(response) << header;
        EXPECT_EQ(response->status, 200) << header;
        EXPECT_EQ(response->get_header_value("Content-Length"), std::to_string(kFileBytes))
            << header;
        EXPECT_FALSE(response->has_header("Content-Range")) << header;
        EXPECT_TRUE(response->body == bytes) << header;
        EXPECT_EQ(response->get_header_value("Access-Control-Allow-Origin"), "*") << header;
        EXPECT_EQ(response->get_header_value_count("Access-Control-Allow-Origin"), 1u) << header;

        auto head = client()->Head("/invalid-range.mp4", {{"Range", header}});
        ASSERT_TRUE(head) << header;
        EXPECT_EQ(head->status, 200) << header;
        EXPECT_EQ(head->get_header_value("Content-Length"), std::to_string(kFileBytes)) << header;
    }

    auto missing = client()->Get("/no-such-file.mp4", {{"Range", "bytes=abc"}});
    ASSERT_TRUE(missing);
    EXPECT_EQ(missing->status, 404);
    EXPECT_EQ(Json::parse(missing->body)["message"], "no file at \"/no-such-file.mp4\"");
}

TEST_F(DeliveryTest, IgnoresMultipleRangesAndStaleIfRange) {
    const std::string bytes = randomBytes(kFileBytes, 5);
    uploadWhole("/multi.mp4", bytes);
    auto multiple = client()->Get("/multi.mp4", {{"Range", "bytes=0-9,20-29"}});
    ASSERT_TRUE(multiple);
    EXPECT_EQ(multiple->status, 200);
    EXPECT_TRUE(multiple->body == bytes);

    auto stale = client()->Get("/multi.mp4", {{"Range", "bytes=0-9"}, {"If-Range", "\"old\""}});
    ASSERT_TRUE(stale);
    EXPECT_EQ(stale->status, 200);
    EXPECT_EQ(stale->body.size(), bytes.size());
}

TEST_F(DeliveryTest, ConditionalRequestsGet304) {
    uploadWhole("/cached.mp4", randomBytes(kFileBytes, 6));
    auto first = client()->Get("/cached.mp4");
    ASSERT_TRUE(first);
    const std::string etag = first->get_header_value("ETag");
    const std::string last_modified = first->get_header_value("Last-Modified");

    auto by_etag = client()->Get("/cached.mp4", {{"If-None-Match", etag}});
    ASSERT_TRUE(by_etag);
    EXPECT_EQ(by_etag->status, 304);
    EXPECT_TRUE(by_etag->body.empty());
    EXPECT_EQ(by_etag->get_header_value("ETag"), etag);

    auto by_list = client()->Get("/cached.mp4", {{"If-None-Match", "\"x\", W/" + etag}});
    ASSERT_TRUE(by_list);
    EXPECT_EQ(by_list->status, 304);

    auto other_etag = client()->Get("/cached.mp4", {{"If-None-Match", "\"something-else\""}});
    ASSERT_TRUE(other_etag);
    EXPECT_EQ(other_etag->status, 200);

    auto by_date = client()->Get("/cached.mp4", {{"If-Modified-Since", last_modified}});
    ASSERT_TRUE(by_date);
    EXPECT_EQ(by_date->status, 304);

    auto old_date =
        client()->Get("/cached.mp4", {{"If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT"}});
    ASSERT_TRUE(old_date);
    EXPECT_EQ(old_date->status, 200);
}

TEST_F(DeliveryTest, MissingPathIs404) {
    auto response = client()->Get("/nothing/here.mp4");
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 404);
    EXPECT_EQ(Json::parse(response->body)["message"], "no file at \"/nothing/here.mp4\"");
}

TEST_F(DeliveryTest, NewestUploadWinsThePath) {
    uploadWhole("/same.mp4", randomBytes(1000, 7));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    const std::string newer = randomBytes(2000, 8);
    uploadWhole("/same.mp4", newer);
    auto response = client()->Get("/same.mp4");
    ASSERT_TRUE(response);
    EXPECT_TRUE(response->body == newer);
}

TEST_F(DeliveryTest, RejectsUnauthenticatedUploads) {
    auto anonymous = client()->Put("/a.mp4", "data", "application/octet-stream");
    ASSERT_TRUE(anonymous);
    EXPECT_EQ(anonymous->status, 401);
    EXPECT_EQ(Json::parse(anonymous->body)["message"], "missing or invalid API key");

    auto wrong = client()->Put("/a.mp4", {{"Authorization", "Bearer bm_wrong"}}, "data",
                               "application/octet-stream");
    ASSERT_TRUE(wrong);
    EXPECT_EQ(wrong->status, 401);
}

TEST_F(DeliveryTest, RejectsBadUploads) {
    auto empty = client()->Put("/empty.mp4", bearer(), "", "application/octet-stream");
    ASSERT_TRUE(empty);
    EXPECT_EQ(empty->status, 400);
    EXPECT_EQ(Json::parse(empty->body)["message"], "upload is empty");

    auto dots = client()->Put("/a/%2e%2e/b.mp4", bearer(), "data", "application/octet-stream");
    ASSERT_TRUE(dots);
    EXPECT_EQ(dots->status, 400);
    EXPECT_EQ(Json::parse(dots->body)["message"],
              "invalid folder \"a/..\": must not contain \".\" or \"..\" segments");

    auto control = client()->Put("/bad%01name.mp4", bearer(), "data", "application/octet-stream");
    ASSERT_TRUE(control);
    EXPECT_EQ(control->status, 400);

    auto unreadable = client()->Put("/broken.mp4", bearer(), "BAD bytes", "video/mp4");
    ASSERT_TRUE(unreadable);
    EXPECT_EQ(unreadable->status, 422);
    EXPECT_EQ(Json::parse(unreadable->body)["message"],
              "probe upload: invalid data found when processing input");

    auto too_large = client()->Put("/huge.mp4", bearer(), std::string(kUploadLimit + 1, 'x'),
                                   "application/octet-stream");
    ASSERT_TRUE(too_large);
    EXPECT_EQ(too_large->status, 413);
    EXPECT_EQ(Json::parse(too_large->body)["message"],
              "upload is larger than the limit of 4194304 bytes (max_upload_bytes)");
    EXPECT_TRUE(fs::is_empty(data_dir_ + "/uploads"));
}

TEST_F(DeliveryTest, ChunkedUploadReportsPartialRanges) {
    const std::string bytes = randomBytes(1000, 9);
    auto middle = putChunk("/parts/clip.mp4", bytes, 400, 599);
    ASSERT_TRUE(middle);
    EXPECT_EQ(middle->status, 202);
    EXPECT_EQ(Json::parse(middle->body),
              Json::parse(R"({"received": [[400, 599]], "total": 1000})"));
    EXPECT_EQ(middle->get_header_value("Range"), "bytes=400-599");

    auto first = putChunk("/parts/clip.mp4", bytes, 0, 399);
    ASSERT_TRUE(first);
    EXPECT_EQ(first->status, 202);
    EXPECT_EQ(Json::parse(first->body)["received"], Json::parse("[[0, 599]]"));

    auto repeated = putChunk("/parts/clip.mp4", bytes, 0, 399);
    ASSERT_TRUE(repeated);
    EXPECT_EQ(repeated->status, 202);

    auto last = putChunk("/parts/clip.mp4", bytes, 600, 999);
    ASSERT_TRUE(last);
    EXPECT_EQ(last->status, 201) << last->body;
    EXPECT_EQ(Json::parse(last->body)["filesize"], 1000);

    auto download = client()->Get("/parts/clip.mp4");
    ASSERT_TRUE(download);
    EXPECT_TRUE(download->body == bytes);
    EXPECT_EQ(probe_calls_.load(), 1);
}

TEST_F(DeliveryTest, ParallelRepeatedChunksPublishOnce) {
    const std::string bytes = randomBytes(kFileBytes, 10);
    constexpr size_t kChunkBytes = 32 * 1024;
    std::vector<std::pair<size_t, size_t>> chunks;
    for (size_t first = 0; first < bytes.size(); first += kChunkBytes) {
        chunks.emplace_back(first, std::min(first + kChunkBytes, bytes.size()) - 1);
    }
    // Every chunk twice, the last ones three times, in a shuffled order.
    std::vector<std::pair<size_t, size_t>> sends = chunks;
    sends.insert(sends.end(), chunks.begin(), chunks.end());
    sends.push_back(chunks.back());
    sends.push_back(chunks[chunks.size() - 2]);
    std::shuffle(sends.begin(), sends.end(), std::mt19937(11));

    std::mutex results_mutex;
    std::vector<int> statuses;
    std::set<std::string> file_ids;
    std::vector<std::thread> threads;
    std::atomic<size_t> next{0};
    for (int t = 0; t < 6; ++t) {
        threads.emplace_back([&] {
            for (size_t i = next++; i < sends.size(); i = next++) {
                auto response =
                    putChunk("/parallel/big.mp4", bytes, sends[i].first, sends[i].second);
                std::lock_guard lock(results_mutex);
                statuses.push_back(response ? response->status : 0);
                if (response && response->status == 201) {
                    file_ids.insert(Json::parse(response->body)["id"].get<std::string>());
                }
            }
        });
    }
    for (std::thread& thread : threads) {
        thread.join();
    }

    for (int status : statuses) {
        EXPECT_TRUE(status == 201 || status == 202) << status;
    }
    EXPECT_EQ(file_ids.size(), 1u);
    EXPECT_EQ(probe_calls_.load(), 1);
    auto download = client()->Get("/parallel/big.mp4");
    ASSERT_TRUE(download);
    EXPECT_EQ(download->status, 200);
    EXPECT_TRUE(download->body == bytes);
    // The staged part was moved into the blob store.
    EXPECT_TRUE(fs::is_empty(data_dir_ + "/uploads"));
}

TEST_F(DeliveryTest, ChunkAfterFinishRepeatsOrStartsOver) {
    const std::string bytes = randomBytes(1000, 15);
    ASSERT_EQ(putChunk("/again.mp4", bytes, 0, 499)->status, 202);
    auto finished = putChunk("/again.mp4", bytes, 500, 999);
    ASSERT_TRUE(finished);
    ASSERT_EQ(finished->status, 201);
    const std::string file_id = Json::parse(finished->body)["id"];

    // The same chunk again, as after a lost response: the same file.
    auto repeated = putChunk("/again.mp4", bytes, 500, 999);
    ASSERT_TRUE(repeated);
    EXPECT_EQ(repeated->status, 201);
    EXPECT_EQ(Json::parse(repeated->body)["id"], file_id);
    EXPECT_TRUE(fs::is_empty(data_dir_ + "/uploads"));

    // Other bytes of the same size start a new upload.
    const std::string other = randomBytes(1000, 16);
    auto first = putChunk("/again.mp4", other, 0, 499);
    ASSERT_TRUE(first);
    EXPECT_EQ(first->status, 202) << first->body;
    auto last = putChunk("/again.mp4", other, 500, 999);
    ASSERT_TRUE(last);
    EXPECT_EQ(last->status, 201);
    EXPECT_NE(Json::parse(last->body)["id"], file_id);
    auto download = client()->Get("/again.mp4");
    ASSERT_TRUE(download);
    EXPECT_TRUE(download->body == other);
    EXPECT_EQ(probe_calls_.load(), 2);
}

TEST_F(DeliveryTest, AdjacentChunksComplete) {
    // The sizes of a real upload that stayed at 202: the upper half first.
    const std::string bytes = randomBytes(199319, 20);
    auto upper = putChunk("/a/rev.mp4", bytes, 99659, 199318);
    ASSERT_TRUE(upper);
    EXPECT_EQ(upper->status, 202);
    EXPECT_EQ(Json::parse(upper->body),
              Json::parse(R"({"received": [[99659, 199318]], "total": 199319})"));

    auto lower = putChunk("/a/rev.mp4", bytes, 0, 99658);
    ASSERT_TRUE(lower);
    EXPECT_EQ(lower->status, 201) << lower->body;
    EXPECT_EQ(Json::parse(lower->body)["filesize"], 199319);

    auto download = client()->Get("/a/rev.mp4");
    ASSERT_TRUE(download);
    EXPECT_TRUE(download->body == bytes);
    EXPECT_EQ(probe_calls_.load(), 1);
    EXPECT_TRUE(fs::is_empty(data_dir_ + "/uploads"));
}

TEST_F(DeliveryTest, NewTotalConflictsWithUploadInProgress) {
    const std::string old_bytes = randomBytes(1000, 17);
    ASSERT_EQ(putChunk("/resized.mp4", old_bytes, 0, 499)->status, 202);
    const std::string new_bytes = randomBytes(800, 18);
    auto other_total = putChunk("/resized.mp4", new_bytes, 0, 399);
    ASSERT_TRUE(other_total);
    EXPECT_EQ(other_total->status, 409);
    EXPECT_EQ(Json::parse(other_total->body)["message"],
              "chunk names a total of 800 bytes, but the upload of 'resized.mp4' in progress has "
              "a total of 1000 bytes; send the rest of that upload, or start again with the new "
              "total after it has received no chunk for 60 minutes");

    // The upload in progress kept its bytes and finishes.
    auto last = putChunk("/resized.mp4", old_bytes, 500, 999);
    ASSERT_TRUE(last);
    EXPECT_EQ(last->status, 201) << last->body;
    auto download = client()->Get("/resized.mp4");
    ASSERT_TRUE(download);
    EXPECT_TRUE(download->body == old_bytes);
}

TEST_F(DeliveryTest, NewTotalReplacesAbandonedUpload) {
    // An upload of another total that received its last chunk two hours ago.
    domain::UploadRecord abandoned;
    abandoned.id = newId("upl_");
    abandoned.project_id = project_.id;
    abandoned.path = "resized.mp4";
    abandoned.total_bytes = 1000;
    abandoned.received = {{0, 499}};
    abandoned.created_ms = nowMillis() - 2 * 3600 * 1000;
    abandoned.updated_ms = abandoned.created_ms;
    ASSERT_TRUE(context_->store->getOrCreateUpload(abandoned).ok());

    const std::string new_bytes = randomBytes(800, 18);
    auto first = putChunk("/resized.mp4", new_bytes, 0, 399);
    ASSERT_TRUE(first);
    EXPECT_EQ(first->status, 202) << first->body;
    EXPECT_EQ(Json::parse(first->body)["total"], 800);
    auto last = putChunk("/resized.mp4", new_bytes, 400, 799);
    ASSERT_TRUE(last);
    EXPECT_EQ(last->status, 201) << last->body;
    auto download = client()->Get("/resized.mp4");
    ASSERT_TRUE(download);
    EXPECT_TRUE(download->body == new_bytes);
}

TEST_F(DeliveryTest, PathOfAnotherProjectIsRejected) {
    const std::string bytes = randomBytes(5000, 21);
    uploadWhole("/examples/clip.mp4", bytes);
    const std::string other_key = addProject("other");
    const std::string expected =
        "path 'examples/clip.mp4' is used by another project; choose another folder or filename";

    auto whole = client()->Put("/examples/clip.mp4", {{"Authorization", "Bearer " + other_key}},
                               randomBytes(4000, 22), "application/octet-stream");
    ASSERT_TRUE(whole);
    EXPECT_EQ(whole->status, 409);
    EXPECT_EQ(Json::parse(whole->body)["message"], expected);

    const std::string other_bytes = randomBytes(1000, 23);
    auto chunk = putChunkWithKey(other_key, "/examples/clip.mp4", other_bytes, 0, 999);
    ASSERT_TRUE(chunk);
    EXPECT_EQ(chunk->status, 409);
    EXPECT_EQ(Json::parse(chunk->body)["message"], expected);

    auto download = client()->Get("/examples/clip.mp4");
    ASSERT_TRUE(download);
    EXPECT_TRUE(download->body == bytes);
    EXPECT_EQ(probe_calls_.load(), 1);
    EXPECT_TRUE(fs::is_empty(data_dir_ + "/uploads"));

    // Another folder is free, and the owner may still replace its file.
    auto elsewhere = client()->Put("/other/clip.mp4", {{"Authorization", "Bearer " + other_key}},
                                   other_bytes, "application/octet-stream");
    ASSERT_TRUE(elsewhere);
    EXPECT_EQ(elsewhere->status, 201) << elsewhere->body;
    const std::string replacement = randomBytes(6000, 25);
    uploadWhole("/examples/clip.mp4", replacement);
    auto replaced = client()->Get("/examples/clip.mp4");
    ASSERT_TRUE(replaced);
    EXPECT_TRUE(replaced->body == replacement);
}

TEST_F(DeliveryTest, OtherMethodsGet405) {
    uploadWhole("/methods.mp4", randomBytes(1000, 26));
    struct Case {
        std::string method;
        std::string path;
        std::string allow;
    };
    const Case cases[] = {
        {"POST", "/methods.mp4", "GET, HEAD, PUT, OPTIONS"},
        {"PATCH", "/methods.mp4", "GET, HEAD, PUT, OPTIONS"},
        {"DELETE", "/methods.mp4", "GET, HEAD, PUT, OPTIONS"},
        {"POST", "/", "GET, HEAD, OPTIONS"},
        {"PUT", "/", "GET, HEAD, OPTIONS"},
    };
    auto http = client();
    for (const Case& test_case : cases) {
        const std::string label = test_case.method + " " + test_case.path;
        httplib::Request request;
        request.method = test_case.method;
        request.path = test_case.path;
        request.headers = bearer();
        // A body larger than one read, which the server must discard.
        request.body = randomBytes(200 * 1024, 27);
        request.set_header("Content-Type", "application/octet-stream");
        auto response = http->send(request);
        ASSERT_TRUE(response) << label;
        EXPECT_EQ(response->status, 405) << label;
        EXPECT_EQ(response->get_header_value("Allow"), test_case.allow) << label;
        Json body = Json::parse(response->body, nullptr, false);
        ASSERT_TRUE(body.is_object()) << label << ": " << response->body;
        const std::string message = body.value("message", "");
        EXPECT_TRUE(message.starts_with(test_case.method)) << label << ": " << message;
        EXPECT_NE(message.find(test_case.allow), std::string::npos) << label << ": " << message;
    }
    // The connection survived the discarded bodies.
    auto after = http->Get("/methods.mp4");
    ASSERT_TRUE(after);
    EXPECT_EQ(after->status, 200);

    // httplib itself rejects TRACE, before any route.
    httplib::Request trace;
    trace.method = "TRACE";
    trace.path = "/methods.mp4";
    auto traced = http->send(trace);
    ASSERT_TRUE(traced);
    EXPECT_EQ(traced->status, 405);
    EXPECT_EQ(traced->get_header_value("Allow"), "GET, HEAD, PUT, OPTIONS");
}

TEST_F(DeliveryTest, NotFoundHasMessage) {
    for (const char* path : {"/", "/missing.mp4", "/folder/missing.mp4"}) {
        auto response = client()->Get(path);
        ASSERT_TRUE(response) << path;
        EXPECT_EQ(response->status, 404) << path;
        Json body = Json::parse(response->body, nullptr, false);
        ASSERT_TRUE(body.is_object()) << path << ": " << response->body;
        EXPECT_EQ(body["message"], std::string("no file at \"") + path + "\"") << path;

        auto head = client()->Head(path);
        ASSERT_TRUE(head) << path;
        EXPECT_EQ(head->status, 404) << path;
    }
}

TEST_F(DeliveryTest, ChunkedUploadRejectsBadRanges) {
    httplib::Headers headers = bearer();
    headers.emplace("Content-Range", "bytes 10-5/100");
    auto reversed = client()->Put("/bad.mp4", headers, "x", "application/octet-stream");
    ASSERT_TRUE(reversed);
    EXPECT_EQ(reversed->status, 400);
    EXPECT_EQ(Json::parse(reversed->body)["message"],
              "invalid Content-Range \"bytes 10-5/100\": expected \"bytes first-last/total\" with "
              "first <= last < total");

    httplib::Headers short_headers = bearer();
    short_headers.emplace("Content-Range", "bytes=0-9/100");
    auto short_body = client()->Put("/bad.mp4", short_headers, "12345", "application/octet-stream");
    ASSERT_TRUE(short_body);
    EXPECT_EQ(short_body->status, 400);
    EXPECT_EQ(Json::parse(short_body->body)["message"],
              "chunk has a Content-Length of 5 bytes but its Content-Range names 10");

    httplib::Headers huge_headers = bearer();
    huge_headers.emplace("Content-Range", "bytes 0-0/99999999999");
    auto huge = client()->Put("/bad.mp4", huge_headers, "x", "application/octet-stream");
    ASSERT_TRUE(huge);
    EXPECT_EQ(huge->status, 413);
}

TEST_F(DeliveryTest, ParsesChunkRanges) {
    auto spaced = parseChunkRange("bytes 0-99/1000");
    ASSERT_TRUE(spaced.has_value());
    EXPECT_EQ(spaced->first, 0);
    EXPECT_EQ(spaced->last, 99);
    EXPECT_EQ(spaced->total, 1000);
    auto equals = parseChunkRange("bytes=900-999/1000");
    ASSERT_TRUE(equals.has_value());
    EXPECT_EQ(equals->first, 900);
    for (const char* bad : {"bytes 0-99/*", "bytes 5-4/10", "bytes 0-10/10", "items 0-1/2",
                            "bytes -1-2/3", "bytes 0-1", "bytes0-1/2"}) {
        EXPECT_FALSE(parseChunkRange(bad).has_value()) << bad;
    }
}

TEST_F(DeliveryTest, PrivateDeliveryRequiresSignature) {
    makeDeliveryPrivate();
    const std::string bytes = randomBytes(5000, 12);
    uploadWhole("/private/clip.mp4", bytes);
    const std::string path = "private/clip.mp4";
    const int64_t later = nowMillis() / 1000 + 600;

    auto unsigned_get = client()->Get("/private/clip.mp4");
    ASSERT_TRUE(unsigned_get);
    EXPECT_EQ(unsigned_get->status, 403);
    EXPECT_EQ(Json::parse(unsigned_get->body)["message"],
              "missing signature: this file is private; request a signed URL from POST "
              "/signatures");

    auto wrong = client()->Get("/private/clip.mp4" + signedQuery(path, later, "get", "bm_other"));
    ASSERT_TRUE(wrong);
    EXPECT_EQ(wrong->status, 403);
    EXPECT_EQ(Json::parse(wrong->body)["message"], "invalid signature");

    const int64_t past = 1700000000;
    auto expired = client()->Get("/private/clip.mp4" + signedQuery(path, past, "get", api_key_));
    ASSERT_TRUE(expired);
    EXPECT_EQ(expired->status, 403);
    EXPECT_EQ(Json::parse(expired->body)["message"],
              "signature expired at 2023-11-14T22:13:20.000Z");

    auto put_signature =
        client()->Get("/private/clip.mp4" + signedQuery(path, later, "put", api_key_));
    ASSERT_TRUE(put_signature);
    EXPECT_EQ(put_signature->status, 403);

    auto good = client()->Get("/private/clip.mp4" + signedQuery(path, later, "get", api_key_));
    ASSERT_TRUE(good);
    EXPECT_EQ(good->status, 200);
    EXPECT_TRUE(good->body == bytes);
    EXPECT_EQ(good->get_header_value("Cache-Control"), "private");

    // Without method (meaning get), and with the signature in standard base64.
    const std::string signature = signDeliveryPath(api_key_, path, later, "get");
    auto no_method = client()->Get("/private/clip.mp4?expiry=" + std::to_string(later) +
                                   "&signature=" + signature);
    ASSERT_TRUE(no_method);
    EXPECT_EQ(no_method->status, 200);
    auto standard = client()->Get("/private/clip.mp4?expiry=" + std::to_string(later) +
                                  "&method=get&signature=" +
                                  httplib::detail::encode_query_param(toStandardBase64(signature)));
    ASSERT_TRUE(standard);
    EXPECT_EQ(standard->status, 200);
}

TEST_F(DeliveryTest, PublicDeliveryChecksPresentSignature) {
    const std::string bytes = randomBytes(5000, 28);
    uploadWhole("/public/clip.mp4", bytes);
    const std::string path = "public/clip.mp4";
    const int64_t later = nowMillis() / 1000 + 600;

    auto plain = client()->Get("/public/clip.mp4");
    ASSERT_TRUE(plain);
    EXPECT_EQ(plain->status, 200);

    auto wrong = client()->Get("/public/clip.mp4" + signedQuery(path, later, "get", "bm_other"));
    ASSERT_TRUE(wrong);
    EXPECT_EQ(wrong->status, 403);
    EXPECT_EQ(Json::parse(wrong->body)["message"], "invalid signature");

    auto expired =
        client()->Get("/public/clip.mp4" + signedQuery(path, 1700000000, "get", api_key_));
    ASSERT_TRUE(expired);
    EXPECT_EQ(expired->status, 403);
    EXPECT_EQ(Json::parse(expired->body)["message"],
              "signature expired at 2023-11-14T22:13:20.000Z");

    auto expiry_only = client()->Get("/public/clip.mp4?expiry=" + std::to_string(later));
    ASSERT_TRUE(expiry_only);
    EXPECT_EQ(expiry_only->status, 403);

    auto good = client()->Get("/public/clip.mp4" + signedQuery(path, later, "get", api_key_));
    ASSERT_TRUE(good);
    EXPECT_EQ(good->status, 200);
    EXPECT_TRUE(good->body == bytes);
}

TEST_F(DeliveryTest, SignatureWithUnencodedPlusVerifies) {
    makeDeliveryPrivate();
    uploadWhole("/plus.mp4", randomBytes(100, 13));
    // Find an expiry whose standard-base64 signature contains '+', which a
    // client may leave unencoded; the server then decodes it as a space.
    int64_t expiry = nowMillis() / 1000 + 600;
    std::string standard;
    for (;; ++expiry) {
        standard = toStandardBase64(signDeliveryPath(api_key_, "plus.mp4", expiry, "get"));
        if (standard.find('+') != std::string::npos) {
            break;
        }
    }
    std::string as_sent = standard;
    std::replace(as_sent.begin(), as_sent.end(), '+', ' ');
    auto response =
        client()->Get("/plus.mp4?expiry=" + std::to_string(expiry) +
                      "&method=get&signature=" + httplib::detail::encode_query_param(as_sent));
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 200) << response->body;
}

TEST_F(DeliveryTest, SignedPutUploadsWithoutKey) {
    const std::string bytes = randomBytes(4000, 14);
    const int64_t later = nowMillis() / 1000 + 600;
    auto response =
        client()->Put("/signed/up.mp4" + signedQuery("signed/up.mp4", later, "put", api_key_),
                      bytes, "video/mp4");
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 201) << response->body;

    auto get_signature =
        client()->Put("/signed/other.mp4" + signedQuery("signed/other.mp4", later, "get", api_key_),
                      bytes, "video/mp4");
    ASSERT_TRUE(get_signature);
    EXPECT_EQ(get_signature->status, 403);

    auto download = client()->Get("/signed/up.mp4");
    ASSERT_TRUE(download);
    EXPECT_TRUE(download->body == bytes);
}

TEST_F(DeliveryTest, RespondsToCorsPreflight) {
    auto response = client()->Options("/any/file.mp4");
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 204);
    EXPECT_EQ(response->get_header_value("Access-Control-Allow-Origin"), "*");
    EXPECT_NE(response->get_header_value("Access-Control-Allow-Methods").find("PUT"),
              std::string::npos);
}

}  // namespace
}  // namespace bitmill::api
