// Where the end-to-end tests find their input files: the cache folder in the
// build tree, the hard-case corpus (generated once by make-corpus.sh and
// shared by every test binary), and the real media that
// scripts/fetch-test-media.sh copies out of Debian packages.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace bitmill::e2e {

// $BITMILL_TEST_CACHE_DIR, else the build tree's test-cache folder. Created
// on first use.
std::filesystem::path cacheDir();

// The bitmill source tree: $BITMILL_SOURCE_DIR, else the one this library
// was configured from.
std::filesystem::path sourceDir();

// The folder holding make-corpus.sh and real/: $BITMILL_CORPUS_DIR, else
// SOURCE/../shared/corpus.
std::filesystem::path corpusSourceDir();

// Path of a generated corpus file such as "v-no-audio.mp4". The first call
// in any process runs make-corpus.sh into cacheDir()/corpus under a file
// lock; later calls (and other test binaries) reuse the output. Throws
// std::runtime_error when the file is missing afterwards, with the
// generator's output.
std::filesystem::path corpusFile(const std::string& name);

// Path of a real corpus file such as "jpeg-exif-orientation-6.jpg"; throws
// when it does not exist.
std::filesystem::path corpusRealFile(const std::string& name);

// Folder filled by scripts/fetch-test-media.sh: $BITMILL_TEST_MEDIA_DIR, else
// the build tree's test-media folder.
std::filesystem::path realMediaDir();

// A file below realMediaDir() (e.g. "forensics/VID_20191220_170832.mp4"), or
// nullopt when the fetch did not provide it.
std::optional<std::filesystem::path> realMediaFile(const std::string& relative_path);

// The message tests give GTEST_SKIP when real media are missing.
std::string realMediaSkipMessage(const std::string& relative_path);

// An exclusive flock() on a lock file, released on destruction. Serialises
// generators between test processes that ctest runs in parallel.
class FileLock {
public:
    explicit FileLock(const std::filesystem::path& lock_file);
    ~FileLock();
    FileLock(const FileLock&) = delete;
    FileLock& operator=(const FileLock&) = delete;

private:
    int fd_ = -1;
};

}  // namespace bitmill::e2e
