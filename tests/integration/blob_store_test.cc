// Local BlobStore: writes appear only on commit, ranged reads, putFile by
// move and copy, key validation, removal, and the storage URL factory.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/ids.h"
#include "storage/local/local_blob_store.h"
#include "storage/open_blob_store.h"

namespace bitmill::storage {
namespace {

namespace fs = std::filesystem;

class BlobStoreTest : public ::testing::Test {
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

    std::string readAll(const std::string& key) {
        auto reader = store_->openReader(key);
        EXPECT_TRUE(reader.ok()) << reader.error().toLogString();
        if (!reader.ok()) {
            return {};
        }
        std::string data(static_cast<size_t>((*reader)->size()), '\0');
        auto got = (*reader)->readAt(0, data.data(), data.size());
        EXPECT_TRUE(got.ok());
        EXPECT_EQ(got.ok() ? *got : 0, data.size());
        return data;
    }

    void writeLocalFile(const fs::path& path, const std::string& data) {
        std::ofstream out(path, std::ios::binary);
        out << data;
    }

    size_t countTempFiles() {
        size_t count = 0;
        for (const auto& entry : fs::directory_iterator(folder_ / "files" / ".tmp")) {
            (void)entry;
            ++count;
        }
        return count;
    }

    fs::path folder_;
    BlobStorePtr store_;
};

// A pattern where every byte depends on its offset, so a read at the wrong
// offset shows up.
std::string pattern(size_t size) {
    std::string data(size, '\0');
    for (size_t i = 0; i < size; ++i) {
        data[i] = static_cast<char>((i * 7 + i / 251) & 0xff);
    }
    return data;
}

TEST_F(BlobStoreTest, WriterPublishesOnCommitAndReadsRanges) {
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
    ASSERT_TRUE((*writer)->commit().ok());
    EXPECT_FALSE((*writer)->write("more").ok());

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
        ASSERT_TRUE(got.ok());
        ASSERT_EQ(*got, sizeof(buffer));
        EXPECT_EQ(std::string(buffer, *got), data.substr(offset, sizeof(buffer)))
            << "offset " << offset;
    }
    auto tail = (*reader)->readAt(static_cast<int64_t>(data.size()) - 5, buffer, sizeof(buffer));
    ASSERT_TRUE(tail.ok());
    EXPECT_EQ(*tail, 5u);
    auto end = (*reader)->readAt(static_cast<int64_t>(data.size()), buffer, sizeof(buffer));
    ASSERT_TRUE(end.ok());
    EXPECT_EQ(*end, 0u);
    EXPECT_EQ(countTempFiles(), 0u);
}

TEST_F(BlobStoreTest, UncommittedWriterLeavesNothing) {
    {
        auto writer = store_->openWriter("prj_a/partial.bin");
        ASSERT_TRUE(writer.ok());
        ASSERT_TRUE((*writer)->write("half of it").ok());
        EXPECT_EQ(countTempFiles(), 1u);
    }
    EXPECT_EQ(store_->stat("prj_a/partial.bin").error().code(), ErrorCode::NotFound);
    EXPECT_EQ(countTempFiles(), 0u);
}

TEST_F(BlobStoreTest, CommitReplacesExistingObject) {
    for (const std::string& content : {std::string("first version"), std::string("second")}) {
        auto writer = store_->openWriter("prj_a/doc.txt");
        ASSERT_TRUE(writer.ok());
        ASSERT_TRUE((*writer)->write(content).ok());
        ASSERT_TRUE((*writer)->commit().ok());
        EXPECT_EQ(readAll("prj_a/doc.txt"), content);
    }
}

TEST_F(BlobStoreTest, PutFileMovesOrCopies) {
    const std::string data = pattern(200'000);
    fs::path moved_source = folder_ / "moved.bin";
    writeLocalFile(moved_source, data);
    ASSERT_TRUE(store_->putFile("prj_a/deep/er/moved.bin", moved_source.string(), true).ok());
    EXPECT_FALSE(fs::exists(moved_source));
    EXPECT_EQ(readAll("prj_a/deep/er/moved.bin"), data);

    fs::path copied_source = folder_ / "copied.bin";
    writeLocalFile(copied_source, data);
    ASSERT_TRUE(store_->putFile("prj_a/copied.bin", copied_source.string(), false).ok());
    EXPECT_TRUE(fs::exists(copied_source));
    EXPECT_EQ(fs::file_size(copied_source), data.size());
    EXPECT_EQ(readAll("prj_a/copied.bin"), data);
    EXPECT_EQ(countTempFiles(), 0u);

    Status missing = store_->putFile("prj_a/x.bin", (folder_ / "absent.bin").string(), true);
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().code(), ErrorCode::NotFound);
    Status missing_copy = store_->putFile("prj_a/x.bin", (folder_ / "absent.bin").string(), false);
    ASSERT_FALSE(missing_copy.ok());
    EXPECT_EQ(missing_copy.error().code(), ErrorCode::NotFound);
}

TEST_F(BlobStoreTest, PutFileCopiesAcrossFileSystems) {
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
    EXPECT_EQ(readAll("prj_a/from_shm.bin"), data);
    std::error_code error;
    fs::remove(shm_source, error);
}

TEST_F(BlobStoreTest, BadKeysAreRejected) {
    const std::string bad_keys[] = {
        "", "/etc/passwd", "../escape", "a/../../b", "a//b", "a/", "./a", "a/./b", "a\nb",
        ".tmp/x", ".tmp", std::string(1025, 'k'),
    };
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
    }
    EXPECT_TRUE(fs::exists(source));
    // Dots inside a segment are fine.
    EXPECT_TRUE(store_->putFile("prj_a/..hidden..name.tar.gz", source.string(), false).ok());
}

TEST_F(BlobStoreTest, RemoveDeletesAndIgnoresMissing) {
    auto writer = store_->openWriter("prj_a/gone.bin");
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->write("bytes").ok());
    ASSERT_TRUE((*writer)->commit().ok());
    ASSERT_TRUE(store_->remove("prj_a/gone.bin").ok());
    EXPECT_EQ(store_->stat("prj_a/gone.bin").error().code(), ErrorCode::NotFound);
    EXPECT_TRUE(store_->remove("prj_a/gone.bin").ok());
    EXPECT_TRUE(store_->remove("prj_never/seen.bin").ok());
}

TEST_F(BlobStoreTest, LocalPathReadsTheObject) {
    auto writer = store_->openWriter("prj_a/local.txt");
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->write("on disk").ok());
    ASSERT_TRUE((*writer)->commit().ok());

    std::optional<std::string> path = store_->localPath("prj_a/local.txt");
    ASSERT_TRUE(path.has_value());
    EXPECT_TRUE(fs::path(*path).is_absolute());
    std::ifstream in(*path, std::ios::binary);
    std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(content, "on disk");
}

TEST_F(BlobStoreTest, StaleTempFilesAreRemovedOnOpen) {
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

TEST_F(BlobStoreTest, StorageUrlSelectsBackend) {
    auto by_default = openBlobStore("", folder_.string());
    ASSERT_TRUE(by_default.ok());
    EXPECT_EQ((*by_default)->localPath("k").value_or(""), (folder_ / "files" / "k").string());

    auto by_file_url = openBlobStore("file://" + (folder_ / "other").string(), "ignored");
    ASSERT_TRUE(by_file_url.ok());
    EXPECT_EQ((*by_file_url)->localPath("k").value_or(""), (folder_ / "other" / "k").string());

    auto by_path = openBlobStore((folder_ / "third").string(), "ignored");
    ASSERT_TRUE(by_path.ok());
    EXPECT_TRUE(fs::is_directory(folder_ / "third" / ".tmp"));

    auto s3 = openBlobStore("s3://bucket/prefix", folder_.string());
    ASSERT_FALSE(s3.ok());
    EXPECT_EQ(s3.error().code(), ErrorCode::InvalidArgument);
    EXPECT_EQ(s3.error().message(), "S3 storage is not built yet");

    auto unknown = openBlobStore("ftp://host/x", folder_.string());
    ASSERT_FALSE(unknown.ok());
    EXPECT_EQ(unknown.error().code(), ErrorCode::InvalidArgument);
}

}  // namespace
}  // namespace bitmill::storage
