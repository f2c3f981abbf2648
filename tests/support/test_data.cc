// Input files of the end-to-end tests: cache folder, corpus, real media.
#include "test_data.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>

#include "process.h"

#ifndef BITMILL_TEST_CACHE_DEFAULT
#error "BITMILL_TEST_CACHE_DEFAULT must be defined by tests/support/CMakeLists.txt"
#endif
#ifndef BITMILL_TEST_MEDIA_DEFAULT
#error "BITMILL_TEST_MEDIA_DEFAULT must be defined by tests/support/CMakeLists.txt"
#endif
#ifndef BITMILL_SOURCE_DIR_DEFAULT
#error "BITMILL_SOURCE_DIR_DEFAULT must be defined by tests/support/CMakeLists.txt"
#endif

namespace bitmill::e2e {
namespace {

// make-corpus.sh takes about 15 s on a quiet machine; allow for a busy one.
constexpr auto kCorpusTimeout = std::chrono::seconds(600);

std::filesystem::path fromEnvironment(const char* name, const char* fallback) {
    const char* value = std::getenv(name);
    return value != nullptr && *value != '\0' ? value : fallback;
}

struct CorpusState {
    std::once_flag once;
    std::string generator_output;
};

CorpusState& corpusState() {
    static CorpusState state;
    return state;
}

void generateCorpus(const std::filesystem::path& out_dir) {
    std::filesystem::create_directories(out_dir);
    std::filesystem::path stamp = out_dir / ".generated";
    FileLock lock(out_dir.parent_path() / "corpus.lock");
    if (std::filesystem::exists(stamp)) {
        return;
    }
    std::filesystem::path script = corpusSourceDir() / "make-corpus.sh";
    CommandOptions options;
    options.timeout = kCorpusTimeout;
    CommandResult result = runCommand({"bash", script.string(), out_dir.string()}, options);
    corpusState().generator_output = result.describe();
    // A non-zero exit means some files could not be made (e.g. no HEIC
    // encoder); the tests that need those files fail with this output.
    if (result.ok()) {
        writeFileBytes(stamp, "");
    }
}

}  // namespace

FileLock::FileLock(const std::filesystem::path& lock_file) {
    std::filesystem::create_directories(lock_file.parent_path());
    fd_ = open(lock_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) {
        throw std::runtime_error("open lock file " + lock_file.string() + ": " +
                                 std::strerror(errno));
    }
    while (flock(fd_, LOCK_EX) != 0) {
        if (errno != EINTR) {
            throw std::runtime_error("lock " + lock_file.string() + ": " + std::strerror(errno));
        }
    }
}

FileLock::~FileLock() {
    if (fd_ >= 0) {
        flock(fd_, LOCK_UN);
        close(fd_);
    }
}

std::filesystem::path cacheDir() {
    std::filesystem::path dir = fromEnvironment("BITMILL_TEST_CACHE_DIR",
                                                BITMILL_TEST_CACHE_DEFAULT);
    std::filesystem::create_directories(dir);
    return dir;
}

std::filesystem::path sourceDir() {
    return fromEnvironment("BITMILL_SOURCE_DIR", BITMILL_SOURCE_DIR_DEFAULT);
}

std::filesystem::path corpusSourceDir() {
    const char* value = std::getenv("BITMILL_CORPUS_DIR");
    if (value != nullptr && *value != '\0') {
        return value;
    }
    return (sourceDir() / ".." / "shared" / "corpus").lexically_normal();
}

std::filesystem::path corpusFile(const std::string& name) {
    std::filesystem::path out_dir = cacheDir() / "corpus";
    std::call_once(corpusState().once, [&] { generateCorpus(out_dir); });
    std::filesystem::path file = out_dir / name;
    if (!std::filesystem::exists(file)) {
        throw std::runtime_error("corpus file " + file.string() +
                                 " is missing after make-corpus.sh: " +
                                 corpusState().generator_output);
    }
    return file;
}

std::filesystem::path corpusRealFile(const std::string& name) {
    std::filesystem::path file = corpusSourceDir() / "real" / name;
    if (!std::filesystem::exists(file)) {
        throw std::runtime_error("real corpus file " + file.string() + " does not exist");
    }
    return file;
}

std::filesystem::path realMediaDir() {
    return fromEnvironment("BITMILL_TEST_MEDIA_DIR", BITMILL_TEST_MEDIA_DEFAULT);
}

std::optional<std::filesystem::path> realMediaFile(const std::string& relative_path) {
    std::filesystem::path file = realMediaDir() / relative_path;
    std::error_code error;
    if (std::filesystem::file_size(file, error) > 0 && !error) {
        return file;
    }
    return std::nullopt;
}

std::string realMediaSkipMessage(const std::string& relative_path) {
    return "real media file " + (realMediaDir() / relative_path).string() +
           " is missing; run scripts/fetch-test-media.sh " + realMediaDir().string() +
           " (or the fetch_test_media build target) first";
}

}  // namespace bitmill::e2e
