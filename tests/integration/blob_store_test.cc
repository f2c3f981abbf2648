// The BlobStore contract on each backend: writes appear only on commit,
// ranged and sequential reads, putFile by move and copy (in parts above the
// part size), key validation, removal and presigned URLs. The same cases run
// on local disk (binary blob_store_test) and on the S3-compatible server of
// the s3 CTest fixture (blob_store_s3_test, built with BITMILL_BLOB_STORE_S3),
// each case under its own key prefix so that cases can run in parallel.
#include <curl/curl.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "core/ids.h"
#include "storage/local/local_blob_store.h"
#include "storage/open_blob_store.h"
#include "storage/s3/s3_blob_store.h"
#include "storage/s3/s3_client.h"
#include "storage/s3/s3_url.h"

#ifndef BITMILL_BLOB_STORE_S3
#define BITMILL_BLOB_STORE_S3 0
#endif

namespace bitmill::storage {
namespace {

namespace fs = std::filesystem;

enum class Backend { Local, S3 };

// Names the backend in test names and in the CTest list.
void PrintTo(Backend backend, std::ostream* out) {
    *out << (backend == Backend::S3 ? "s3" : "local");
}

constexpr Backend kBackend = BITMILL_BLOB_STORE_S3 ? Backend::S3 : Backend::Local;
// The smallest part size S3 accepts, so multipart cases stay small.
constexpr int64_t kTestPartBytes = s3::kMinPartBytes;
constexpr char kS3Bucket[] = "bitmill-test";

// A pattern where every byte depends on its offset, so a read at the wrong
// offset shows up.
std::string pattern(size_t size, size_t seed = 0) {
    std::string data(size, '\0');
    for (size_t i = 0; i < size; ++i) {
        size_t value = i + seed;
        data[i] = static_cast<char>((value * 7 + value / 251) & 0xff);
    }
    return data;
}

void writeLocalFile(const fs::path& path, const std::string& data) {
    std::ofstream out(path, std::ios::binary);
    out << data;
}

std::string readLocalFile(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The server that tests/services/s3.sh started: its storage URL, the
// credentials it accepts and its data folder.
struct S3Service {
    std::string url;
    std::map<std::string, std::string> environment;
    fs::path data_folder;
};

// Loads the S3 service files, or fails the test with what to run instead.
S3Service loadS3Service() {
    S3Service service;
    const char* folder = std::getenv("BITMILL_TEST_SERVICES_DIR");
    if (folder == nullptr || !fs::exists(fs::path(folder) / "s3.url")) {
        ADD_FAILURE() << "the S3 test server is not running; run this test through "
                         "`ctest -L s3`, which starts it (tests/services/s3.sh)";
        return service;
    }
    service.url = readLocalFile(fs::path(folder) / "s3.url");
    while (!service.url.empty() && (service.url.back() == '\n' || service.url.back() == ' ')) {
        service.url.pop_back();
    }
    std::ifstream env_file(fs::path(folder) / "s3.env");
    for (std::string line; std::getline(env_file, line);) {
        size_t equals = line.find('=');
        if (equals != std::string::npos) {
            service.environment[line.substr(0, equals)] = line.substr(equals + 1);
        }
    }
    service.data_folder = fs::path(folder) / "s3-data";
    return service;
}

s3::EnvironmentLookup lookupIn(std::map<std::string, std::string> variables) {
    return [variables = std::move(variables)](const char* name) -> std::optional<std::string> {
        auto found = variables.find(name);
        if (found == variables.end()) {
            return std::nullopt;
        }
        return found->second;
    };
}

// Returns `url` with `/segment` appended to its key prefix and `parameters`
// ("&name=value...") appended to its query.
std::string extendUrl(const std::string& url, const std::string& segment,
                      const std::string& parameters) {
    size_t question = url.find('?');
    std::string base = url.substr(0, question);
    std::string query = question == std::string::npos ? "" : url.substr(question + 1);
    std::string extended = base + "/" + segment;
    std::string full_query = query + parameters;
    if (!full_query.empty() && full_query.front() == '&') {
        full_query.erase(0, 1);
    }
    return full_query.empty() ? extended : extended + "?" + full_query;
}

std::string currentCaseName() {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (char& c : name) {
        if (!std::isalnum(static_cast<unsigned char>(c))) {
            c = '-';
        }
    }
    return name;
}

// GETs `url` with libcurl into `body` and returns the HTTP status, or -1.
long httpGet(const std::string& url, std::string& body) {
    CURL* curl = curl_easy_init();
    if (curl == nullptr) {
        return -1;
    }
    auto append = +[](char* data, size_t, size_t size, void* target) -> size_t {
        static_cast<std::string*>(target)->append(data, size);
        return size;
    };
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, append);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
    long status = -1;
    if (curl_easy_perform(curl) == CURLE_OK) {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    }
    curl_easy_cleanup(curl);
    return status;
}

class BlobStoreTest : public ::testing::TestWithParam<Backend> {
protected:
    void SetUp() override {
        folder_ = fs::temp_directory_path() / ("bitmill-blob-test-" + randomBase62(12));
        fs::create_directories(folder_);
        if (GetParam() == Backend::S3) {
            service_ = loadS3Service();
            ASSERT_FALSE(service_.url.empty());
            case_segment_ = currentCaseName() + "-" + randomBase62(8);
        }
        auto store = openStore(0);
        ASSERT_TRUE(store.ok()) << store.error().toLogString();
        store_ = *store;
    }

    void TearDown() override {
        std::error_code error;
        fs::remove_all(folder_, error);
    }

    // Opens the store of this case. A positive `part_bytes` lowers the part
    // size of S3 stores, and with it the largest single PUT.
    Result<BlobStorePtr> openStore(int64_t part_bytes) {
        if (GetParam() == Backend::Local) {
            return openLocalBlobStore((folder_ / "files").string());
        }
        std::string parameters =
            part_bytes > 0 ? "&part_size=" + std::to_string(part_bytes) : std::string();
        BM_ASSIGN_OR_RETURN(s3::S3Settings settings,
                            s3::parseS3Url(extendUrl(service_.url, case_segment_, parameters),
                                           lookupIn(service_.environment)));
        object_prefix_ = settings.prefix + "/";
        return s3::openS3BlobStore(settings);
    }

    // Counts writes in progress of this case: temporary files on local disk,
    // unfinished multipart uploads under this case's prefix on S3.
    size_t pendingWrites() {
        size_t count = 0;
        if (GetParam() == Backend::Local) {
            for (const auto& entry : fs::directory_iterator(folder_ / "files" / ".tmp")) {
                (void)entry;
                ++count;
            }
            return count;
        }
        // s3rver keeps each upload in a folder holding a file named "key".
        fs::path uploads = service_.data_folder / kS3Bucket / "._S3rver_uploads";
        std::error_code error;
        for (const auto& entry : fs::directory_iterator(uploads, error)) {
            std::string key = readLocalFile(entry.path() / "key");
            if (key.compare(0, object_prefix_.size(), object_prefix_) == 0) {
                ++count;
            }
        }
        return count;
    }

    std::string readAll(const std::string& key) {
        auto reader = store_->openReader(key);
        EXPECT_TRUE(reader.ok()) << reader.error().toLogString();
        if (!reader.ok()) {
            return {};
        }
        std::string data(static_cast<size_t>((*reader)->size()), '\0');
        auto got = (*reader)->readAt(0, data.data(), data.size());
        EXPECT_TRUE(got.ok()) << got.error().toLogString();
        EXPECT_EQ(got.ok() ? *got : 0, data.size());
        return data;
    }

    void writeObject(const std::string& key, const std::string& data) {
        auto writer = store_->openWriter(key);
        ASSERT_TRUE(writer.ok()) << writer.error().toLogString();
        ASSERT_TRUE((*writer)->write(data).ok());
        Status committed = (*writer)->commit();
        ASSERT_TRUE(committed.ok()) << committed.error().toLogString();
    }

    fs::path folder_;
    BlobStorePtr store_;
    S3Service service_;
    std::string case_segment_;
    std::string object_prefix_;
};

TEST_P(BlobStoreTest, WriterPublishesOnCommitAndReadsRanges) {
    const std::string key = "prj_a/file_b.mp4";
    const std::string data = pattern(3 * 1024 * 1024 + 17);

    auto writer = store_->openWriter(key);
    ASSERT_TRUE(writer.ok()) << writer.error().toLogString();
    for (size_t offset = 0; offset < data.size(); offset += 100'000) {
        ASSERT_TRUE((*writer)->write(std::string_view(data).substr(offset, 100'000)).ok());
    }
    // Nothing is visible before commit.
    EXPECT_EQ(store_->stat(key).error().code(), ErrorCode::NotFound);
    EXPECT_EQ(store_->openReader(key).error().code(), ErrorCode::NotFound);
    Status committed = (*writer)->commit();
    ASSERT_TRUE(committed.ok()) << committed.error().toLogString();
    EXPECT_FALSE((*writer)->write("more").ok());
    EXPECT_FALSE((*writer)->commit().ok());

    auto info = store_->stat(key);
    ASSERT_TRUE(info.ok()) << info.error().toLogString();
    EXPECT_EQ(info->size, static_cast<int64_t>(data.size()));
    EXPECT_GT(info->modified_ms, 1'600'000'000'000);

    auto reader = store_->openReader(key);
    ASSERT_TRUE(reader.ok());
    EXPECT_EQ((*reader)->size(), static_cast<int64_t>(data.size()));
    char buffer[4096];
    for (int64_t offset : {int64_t{0}, int64_t{1}, int64_t{1'048'575}, int64_t{3'000'001}}) {
        auto got = (*reader)->readAt(offset, buffer, sizeof(buffer));
        ASSERT_TRUE(got.ok()) << got.error().toLogString();
        ASSERT_EQ(*got, sizeof(buffer));
        EXPECT_EQ(std::string(buffer, *got), data.substr(offset, sizeof(buffer)))
            << "offset " << offset;
    }
    auto tail = (*reader)->readAt(static_cast<int64_t>(data.size()) - 5, buffer, sizeof(buffer));
    ASSERT_TRUE(tail.ok());
    EXPECT_EQ(*tail, 5u);
    EXPECT_EQ(std::string(buffer, 5), data.substr(data.size() - 5));
    auto end = (*reader)->readAt(static_cast<int64_t>(data.size()), buffer, sizeof(buffer));
    ASSERT_TRUE(end.ok());
    EXPECT_EQ(*end, 0u);
    EXPECT_FALSE((*reader)->readAt(-1, buffer, sizeof(buffer)).ok());
    EXPECT_EQ(pendingWrites(), 0u);
}

TEST_P(BlobStoreTest, UncommittedWriterLeavesNothing) {
    {
        auto writer = store_->openWriter("prj_a/partial.bin");
        ASSERT_TRUE(writer.ok());
        ASSERT_TRUE((*writer)->write("half of it").ok());
    }
    EXPECT_EQ(store_->stat("prj_a/partial.bin").error().code(), ErrorCode::NotFound);
    EXPECT_EQ(pendingWrites(), 0u);
}

TEST_P(BlobStoreTest, WriterUsesPartsAndAbortsWhenDropped) {
    auto store = openStore(kTestPartBytes);
    ASSERT_TRUE(store.ok()) << store.error().toLogString();
    store_ = *store;
    const std::string key = "prj_a/streamed.bin";
    const std::string data = pattern(static_cast<size_t>(kTestPartBytes) * 2 + 300'000, 5);
    {
        auto writer = store_->openWriter(key);
        ASSERT_TRUE(writer.ok());
        for (size_t offset = 0; offset < data.size(); offset += 1'000'000) {
            ASSERT_TRUE((*writer)->write(std::string_view(data).substr(offset, 1'000'000)).ok());
        }
        // Two full parts are uploaded by now, the object is still invisible.
        EXPECT_EQ(pendingWrites(), 1u);
        EXPECT_EQ(store_->stat(key).error().code(), ErrorCode::NotFound);
    }
    EXPECT_EQ(pendingWrites(), 0u);
    EXPECT_EQ(store_->stat(key).error().code(), ErrorCode::NotFound);

    auto writer = store_->openWriter(key);
    ASSERT_TRUE(writer.ok());
    // One large write spans several parts.
    ASSERT_TRUE((*writer)->write(data).ok());
    Status committed = (*writer)->commit();
    ASSERT_TRUE(committed.ok()) << committed.error().toLogString();
    EXPECT_EQ(readAll(key), data);
    EXPECT_EQ(pendingWrites(), 0u);
}

TEST_P(BlobStoreTest, WriterOfExactPartMultiple) {
    auto store = openStore(kTestPartBytes);
    ASSERT_TRUE(store.ok()) << store.error().toLogString();
    store_ = *store;
    const std::string data = pattern(static_cast<size_t>(kTestPartBytes) * 2, 9);
    writeObject("prj_a/exact.bin", data);
    EXPECT_EQ(readAll("prj_a/exact.bin"), data);
    EXPECT_EQ(pendingWrites(), 0u);
}

TEST_P(BlobStoreTest, EmptyObject) {
    writeObject("prj_a/empty.txt", "");
    auto info = store_->stat("prj_a/empty.txt");
    ASSERT_TRUE(info.ok()) << info.error().toLogString();
    EXPECT_EQ(info->size, 0);
    auto reader = store_->openReader("prj_a/empty.txt");
    ASSERT_TRUE(reader.ok()) << reader.error().toLogString();
    char byte = 0;
    auto got = (*reader)->readAt(0, &byte, 1);
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(*got, 0u);

    fs::path empty_file = folder_ / "empty.bin";
    writeLocalFile(empty_file, "");
    ASSERT_TRUE(store_->putFile("prj_a/empty.bin", empty_file.string(), false).ok());
    EXPECT_EQ(store_->stat("prj_a/empty.bin")->size, 0);
}

TEST_P(BlobStoreTest, CommitReplacesExistingObject) {
    for (const std::string& content : {std::string("first version"), std::string("second")}) {
        writeObject("prj_a/doc.txt", content);
        EXPECT_EQ(readAll("prj_a/doc.txt"), content);
    }
}

TEST_P(BlobStoreTest, PutFileMovesOrCopies) {
    const std::string data = pattern(200'000);
    fs::path moved_source = folder_ / "moved.bin";
    writeLocalFile(moved_source, data);
    Status moved = store_->putFile("prj_a/deep/er/moved.bin", moved_source.string(), true);
    ASSERT_TRUE(moved.ok()) << moved.error().toLogString();
    EXPECT_FALSE(fs::exists(moved_source));
    EXPECT_EQ(readAll("prj_a/deep/er/moved.bin"), data);

    fs::path copied_source = folder_ / "copied.bin";
    writeLocalFile(copied_source, data);
    ASSERT_TRUE(store_->putFile("prj_a/copied.bin", copied_source.string(), false).ok());
    EXPECT_TRUE(fs::exists(copied_source));
    EXPECT_EQ(fs::file_size(copied_source), data.size());
    EXPECT_EQ(readAll("prj_a/copied.bin"), data);
    EXPECT_EQ(pendingWrites(), 0u);

    Status missing = store_->putFile("prj_a/x.bin", (folder_ / "absent.bin").string(), true);
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().code(), ErrorCode::NotFound);
    Status missing_copy = store_->putFile("prj_a/x.bin", (folder_ / "absent.bin").string(), false);
    ASSERT_FALSE(missing_copy.ok());
    EXPECT_EQ(missing_copy.error().code(), ErrorCode::NotFound);
}

TEST_P(BlobStoreTest, LargeFileUploadsInParts) {
    auto store = openStore(kTestPartBytes);
    ASSERT_TRUE(store.ok()) << store.error().toLogString();
    store_ = *store;
    // 40 MiB and a bit: eight full parts of 5 MiB and a short ninth one.
    const std::string data = pattern((size_t{40} << 20) + 12'345, 3);
    fs::path source = folder_ / "large.bin";
    writeLocalFile(source, data);
    Status stored = store_->putFile("prj_a/large.bin", source.string(), false);
    ASSERT_TRUE(stored.ok()) << stored.error().toLogString();
    EXPECT_EQ(pendingWrites(), 0u);

    auto info = store_->stat("prj_a/large.bin");
    ASSERT_TRUE(info.ok()) << info.error().toLogString();
    EXPECT_EQ(info->size, static_cast<int64_t>(data.size()));

    auto reader = store_->openReader("prj_a/large.bin");
    ASSERT_TRUE(reader.ok()) << reader.error().toLogString();
    // Sequential reads of 64 KiB, which the S3 reader serves from 4 MiB blocks.
    std::string copy;
    std::vector<char> chunk(64 * 1024);
    for (int64_t offset = 0;;) {
        auto got = (*reader)->readAt(offset, chunk.data(), chunk.size());
        ASSERT_TRUE(got.ok()) << got.error().toLogString();
        if (*got == 0) {
            break;
        }
        copy.append(chunk.data(), *got);
        offset += static_cast<int64_t>(*got);
    }
    ASSERT_EQ(copy.size(), data.size());
    EXPECT_TRUE(copy == data) << "the object differs from the uploaded file";

    // Reads across part boundaries, backwards, so none hits the last block.
    for (int64_t part = 8; part >= 1; --part) {
        int64_t offset = part * kTestPartBytes - 100;
        auto got = (*reader)->readAt(offset, chunk.data(), 200);
        ASSERT_TRUE(got.ok());
        ASSERT_EQ(*got, 200u);
        EXPECT_EQ(std::string(chunk.data(), 200), data.substr(offset, 200)) << "offset " << offset;
    }
    // One read larger than the read-ahead block.
    std::string big(9 << 20, '\0');
    auto got = (*reader)->readAt(1'000, big.data(), big.size());
    ASSERT_TRUE(got.ok());
    ASSERT_EQ(*got, big.size());
    EXPECT_TRUE(big == data.substr(1'000, big.size()));
}

TEST_P(BlobStoreTest, KeysWithSpecialCharactersRoundTrip) {
    const std::vector<std::string> keys = {
        "prj_a/with space/file name.mp4",
        "prj_a/plus+and&amp=eq;semi/x.txt",
        "prj_a/percent%25/tilde~under_score.bin",
        "prj_a/(paren)!'*$,@:/\xc3\xbc\xc3\xb1\xc3\xaf.txt",
        "prj_a/question?hash#/end.bin",
    };
    for (size_t i = 0; i < keys.size(); ++i) {
        SCOPED_TRACE(keys[i]);
        const std::string content = "content " + std::to_string(i);
        writeObject(keys[i], content);
        EXPECT_EQ(readAll(keys[i]), content);
        auto info = store_->stat(keys[i]);
        ASSERT_TRUE(info.ok()) << info.error().toLogString();
        EXPECT_EQ(info->size, static_cast<int64_t>(content.size()));
        ASSERT_TRUE(store_->remove(keys[i]).ok());
        EXPECT_EQ(store_->stat(keys[i]).error().code(), ErrorCode::NotFound);
    }
}

TEST_P(BlobStoreTest, BadKeysAreRejected) {
    std::vector<std::string> bad_keys = {
        "",   "/etc/passwd", "../escape", "a/../../b", "a//b",
        "a/", "./a",         "a/./b",     "a\nb",      std::string(1025, 'k'),
    };
    if (GetParam() == Backend::Local) {
        bad_keys.push_back(".tmp/x");
        bad_keys.push_back(".tmp");
    }
    fs::path source = folder_ / "source.bin";
    writeLocalFile(source, "data");
    for (const std::string& key : bad_keys) {
        SCOPED_TRACE("key '" + key.substr(0, 40) + "'");
        auto writer = store_->openWriter(key);
        ASSERT_FALSE(writer.ok());
        EXPECT_EQ(writer.error().code(), ErrorCode::InvalidArgument);
        EXPECT_EQ(store_->openReader(key).error().code(), ErrorCode::InvalidArgument);
        EXPECT_EQ(store_->stat(key).error().code(), ErrorCode::InvalidArgument);
        EXPECT_EQ(store_->remove(key).error().code(), ErrorCode::InvalidArgument);
        EXPECT_EQ(store_->putFile(key, source.string(), false).error().code(),
                  ErrorCode::InvalidArgument);
        EXPECT_FALSE(store_->localPath(key).has_value());
        EXPECT_FALSE(store_->presignGet(key, 60).has_value());
    }
    EXPECT_TRUE(fs::exists(source));
    // Dots inside a segment are fine.
    EXPECT_TRUE(store_->putFile("prj_a/..hidden..name.tar.gz", source.string(), false).ok());
}

TEST_P(BlobStoreTest, RemoveDeletesAndIgnoresMissing) {
    writeObject("prj_a/gone.bin", "bytes");
    ASSERT_TRUE(store_->remove("prj_a/gone.bin").ok());
    EXPECT_EQ(store_->stat("prj_a/gone.bin").error().code(), ErrorCode::NotFound);
    EXPECT_EQ(store_->openReader("prj_a/gone.bin").error().code(), ErrorCode::NotFound);
    EXPECT_TRUE(store_->remove("prj_a/gone.bin").ok());
    EXPECT_TRUE(store_->remove("prj_never/seen.bin").ok());
}

TEST_P(BlobStoreTest, ConcurrentWritersAndReaders) {
    constexpr int kThreads = 4;
    std::vector<std::string> failures(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            const std::string key = "prj_c/thread_" + std::to_string(t) + ".bin";
            const std::string data = pattern(1'500'000 + static_cast<size_t>(t), t);
            for (int round = 0; round < 3; ++round) {
                auto writer = store_->openWriter(key);
                if (!writer.ok() || !(*writer)->write(data).ok() || !(*writer)->commit().ok()) {
                    failures[t] = "write failed";
                    return;
                }
                auto reader = store_->openReader(key);
                if (!reader.ok()) {
                    failures[t] = reader.error().toLogString();
                    return;
                }
                std::string copy(data.size(), '\0');
                auto got = (*reader)->readAt(0, copy.data(), copy.size());
                if (!got.ok() || *got != data.size() || copy != data) {
                    failures[t] = "read back different bytes";
                    return;
                }
            }
        });
    }
    for (std::thread& thread : threads) {
        thread.join();
    }
    for (int t = 0; t < kThreads; ++t) {
        EXPECT_EQ(failures[t], "") << "thread " << t;
    }
}

TEST_P(BlobStoreTest, PresignedGetServesTheObject) {
    const std::string key = "prj_a/shared file+1.txt";
    const std::string content = "shared through a presigned URL";
    writeObject(key, content);
    std::optional<std::string> url = store_->presignGet(key, 300);
    if (GetParam() == Backend::Local) {
        EXPECT_FALSE(url.has_value());
        return;
    }
    ASSERT_TRUE(url.has_value());
    EXPECT_NE(url->find("X-Amz-Signature="), std::string::npos) << *url;
    EXPECT_NE(url->find("X-Amz-Expires=300"), std::string::npos) << *url;
    std::string body;
    EXPECT_EQ(httpGet(*url, body), 200) << body;
    EXPECT_EQ(body, content);

    // A changed signature or a changed key is rejected.
    std::string tampered = *url;
    tampered.back() = tampered.back() == '0' ? '1' : '0';
    std::string rejected_body;
    EXPECT_EQ(httpGet(tampered, rejected_body), 403);
    EXPECT_NE(rejected_body.find("SignatureDoesNotMatch"), std::string::npos) << rejected_body;

    std::optional<std::string> missing = store_->presignGet("prj_a/not-there.txt", 60);
    ASSERT_TRUE(missing.has_value());
    std::string missing_body;
    EXPECT_EQ(httpGet(*missing, missing_body), 404);
}

INSTANTIATE_TEST_SUITE_P(Backends, BlobStoreTest, ::testing::Values(kBackend),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                             return info.param == Backend::S3 ? "s3" : "local";
                         });

#if BITMILL_BLOB_STORE_S3

// Errors of the S3 backend that depend on the server's responses.
class S3BlobStoreTest : public ::testing::Test {
protected:
    void SetUp() override {
        service_ = loadS3Service();
        ASSERT_FALSE(service_.url.empty());
        segment_ = currentCaseName() + "-" + randomBase62(8);
    }

    Result<s3::S3Settings> settingsFor(const std::string& url,
                                       std::map<std::string, std::string> overrides = {}) {
        std::map<std::string, std::string> environment = service_.environment;
        for (auto& [name, value] : overrides) {
            environment[name] = value;
        }
        return s3::parseS3Url(url, lookupIn(environment));
    }

    S3Service service_;
    std::string segment_;
};

TEST_F(S3BlobStoreTest, MissingBucketIsInvalidArgument) {
    std::string url = service_.url;
    url.replace(url.find(kS3Bucket), std::string(kS3Bucket).size(), "no-such-bucket-here");
    auto settings = settingsFor(url);
    ASSERT_TRUE(settings.ok()) << settings.error().message();
    auto store = s3::openS3BlobStore(*settings);
    ASSERT_FALSE(store.ok());
    EXPECT_EQ(store.error().code(), ErrorCode::InvalidArgument);
    EXPECT_NE(store.error().message().find("bucket 'no-such-bucket-here' not found"),
              std::string::npos)
        << store.error().message();
}

TEST_F(S3BlobStoreTest, WrongSecretIsPermissionDenied) {
    auto settings = settingsFor(extendUrl(service_.url, segment_, ""),
                                {{"AWS_SECRET_ACCESS_KEY", "not-the-secret"}});
    ASSERT_TRUE(settings.ok());
    auto store = s3::openS3BlobStore(*settings);
    ASSERT_FALSE(store.ok());
    EXPECT_EQ(store.error().code(), ErrorCode::PermissionDenied);

    // Responses with a body carry S3's error code and message.
    s3::S3Client client(*settings);
    Status removed = client.deleteObject(client.objectKey("prj_a/x.bin"));
    ASSERT_FALSE(removed.ok());
    EXPECT_EQ(removed.error().code(), ErrorCode::PermissionDenied);
    EXPECT_NE(removed.error().message().find("SignatureDoesNotMatch"), std::string::npos)
        << removed.error().message();
    EXPECT_NE(removed.error().message().find("does not match the signature"), std::string::npos)
        << removed.error().message();
}

TEST_F(S3BlobStoreTest, UnknownUploadIsNotFound) {
    auto settings = settingsFor(extendUrl(service_.url, segment_, ""));
    ASSERT_TRUE(settings.ok());
    s3::S3Client client(*settings);
    Status aborted = client.abortMultipartUpload(client.objectKey("prj_a/x.bin"), "no-such-id");
    ASSERT_FALSE(aborted.ok());
    EXPECT_EQ(aborted.error().code(), ErrorCode::NotFound);
    EXPECT_NE(aborted.error().message().find("NoSuchUpload"), std::string::npos)
        << aborted.error().message();
    EXPECT_NE(aborted.error().detail().find("key='"), std::string::npos);
}

TEST_F(S3BlobStoreTest, UnreachableEndpointIsUnavailable) {
    // Port 1 on the loopback address: nothing listens there.
    auto settings = settingsFor(
        "s3://bitmill-test/x?endpoint=http://127.0.0.1:1&region=us-east-1&path_style=true");
    ASSERT_TRUE(settings.ok());
    auto store = s3::openS3BlobStore(*settings);
    ASSERT_FALSE(store.ok());
    EXPECT_EQ(store.error().code(), ErrorCode::Unavailable);
    EXPECT_NE(store.error().message().find("not reachable"), std::string::npos)
        << store.error().message();
}

TEST_F(S3BlobStoreTest, StorageUrlOpensS3Store) {
    for (const auto& [name, value] : service_.environment) {
        ::setenv(name.c_str(), value.c_str(), 1);
    }
    ::unsetenv("AWS_SESSION_TOKEN");
    auto store = openBlobStore(extendUrl(service_.url, segment_, ""), "/nonexistent");
    ASSERT_TRUE(store.ok()) << store.error().toLogString();
    EXPECT_FALSE((*store)->localPath("prj_a/x.bin").has_value());
    auto writer = (*store)->openWriter("prj_a/x.bin");
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->write("via openBlobStore").ok());
    ASSERT_TRUE((*writer)->commit().ok());
    EXPECT_EQ((*store)->stat("prj_a/x.bin")->size, 17);
}

#else

// Behaviour only the local backend has.
class LocalBlobStoreTest : public ::testing::Test {
protected:
    void SetUp() override {
        folder_ = fs::temp_directory_path() / ("bitmill-blob-test-" + randomBase62(12));
        auto store = openLocalBlobStore((folder_ / "files").string());
        ASSERT_TRUE(store.ok()) << store.error().toLogString();
        store_ = *store;
    }

    void TearDown() override {
        std::error_code error;
        fs::remove_all(folder_, error);
    }

    fs::path folder_;
    BlobStorePtr store_;
};

TEST_F(LocalBlobStoreTest, PutFileCopiesAcrossFileSystems) {
    // /dev/shm is tmpfs on Linux; when the test folder is on another file
    // system, rename fails with EXDEV and the store must copy instead.
    fs::path shm_source = fs::path("/dev/shm") / ("bitmill-blob-" + randomBase62(12));
    if (!fs::is_directory("/dev/shm")) {
        GTEST_SKIP() << "/dev/shm is not available";
    }
    const std::string data = pattern(1'500'000);
    writeLocalFile(shm_source, data);
    Status stored = store_->putFile("prj_a/from_shm.bin", shm_source.string(), true);
    ASSERT_TRUE(stored.ok()) << stored.error().toLogString();
    EXPECT_FALSE(fs::exists(shm_source));
    auto reader = store_->openReader("prj_a/from_shm.bin");
    ASSERT_TRUE(reader.ok());
    std::string copy(data.size(), '\0');
    auto got = (*reader)->readAt(0, copy.data(), copy.size());
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(copy, data);
    std::error_code error;
    fs::remove(shm_source, error);
}

TEST_F(LocalBlobStoreTest, LocalPathReadsTheObject) {
    auto writer = store_->openWriter("prj_a/local.txt");
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->write("on disk").ok());
    ASSERT_TRUE((*writer)->commit().ok());

    std::optional<std::string> path = store_->localPath("prj_a/local.txt");
    ASSERT_TRUE(path.has_value());
    EXPECT_TRUE(fs::path(*path).is_absolute());
    EXPECT_EQ(readLocalFile(*path), "on disk");
}

TEST_F(LocalBlobStoreTest, StaleTempFilesAreRemovedOnOpen) {
    fs::path temp_folder = folder_ / "files" / ".tmp";
    fs::path stale = temp_folder / "stale.part";
    fs::path fresh = temp_folder / "fresh.part";
    writeLocalFile(stale, "old");
    writeLocalFile(fresh, "new");
    fs::last_write_time(stale, fs::file_time_type::clock::now() - std::chrono::hours(48));

    auto reopened = openLocalBlobStore((folder_ / "files").string());
    ASSERT_TRUE(reopened.ok());
    EXPECT_FALSE(fs::exists(stale));
    EXPECT_TRUE(fs::exists(fresh));
}

TEST_F(LocalBlobStoreTest, StorageUrlSelectsBackend) {
    auto by_default = openBlobStore("", folder_.string());
    ASSERT_TRUE(by_default.ok());
    EXPECT_EQ((*by_default)->localPath("k").value_or(""), (folder_ / "files" / "k").string());

    auto by_file_url = openBlobStore("file://" + (folder_ / "other").string(), "ignored");
    ASSERT_TRUE(by_file_url.ok());
    EXPECT_EQ((*by_file_url)->localPath("k").value_or(""), (folder_ / "other" / "k").string());

    auto by_path = openBlobStore((folder_ / "third").string(), "ignored");
    ASSERT_TRUE(by_path.ok());
    EXPECT_TRUE(fs::is_directory(folder_ / "third" / ".tmp"));

    // An S3 URL reaches the S3 backend, which needs credentials.
    ::unsetenv("AWS_ACCESS_KEY_ID");
    ::unsetenv("AWS_SECRET_ACCESS_KEY");
    auto s3 = openBlobStore("s3://bucket/prefix", folder_.string());
    ASSERT_FALSE(s3.ok());
    EXPECT_EQ(s3.error().code(), ErrorCode::InvalidArgument);
    EXPECT_NE(s3.error().message().find("AWS_ACCESS_KEY_ID"), std::string::npos)
        << s3.error().message();
    auto bad_s3 = openBlobStore("s3://?endpoint=http://127.0.0.1:1", folder_.string());
    ASSERT_FALSE(bad_s3.ok());
    EXPECT_NE(bad_s3.error().message().find("the bucket is missing"), std::string::npos);

    auto unknown = openBlobStore("ftp://host/x", folder_.string());
    ASSERT_FALSE(unknown.ok());
    EXPECT_EQ(unknown.error().code(), ErrorCode::InvalidArgument);
}

#endif

}  // namespace
}  // namespace bitmill::storage
