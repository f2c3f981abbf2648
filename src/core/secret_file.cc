#include "core/secret_file.h"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace bitmill {

namespace {

constexpr size_t kSecretBytes = 32;

std::string toHex(const std::string& bytes) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : bytes) {
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 15]);
    }
    return out;
}

Result<std::string> fromHex(const std::string& text, const std::string& source) {
    if (text.size() != kSecretBytes * 2) {
        return Error::invalidArgument("read server secret from " + source + ": expected " +
                                      std::to_string(kSecretBytes * 2) + " hex digits");
    }
    std::string out;
    for (size_t i = 0; i < text.size(); i += 2) {
        char* end = nullptr;
        std::string pair = text.substr(i, 2);
        long value = std::strtol(pair.c_str(), &end, 16);
        if (*end != '\0') {
            return Error::invalidArgument("read server secret from " + source +
                                          ": not hexadecimal");
        }
        out.push_back(static_cast<char>(value));
    }
    return out;
}

}  // namespace

Result<std::string> loadOrCreateServerSecret(const std::string& data_dir) {
    if (const char* given = std::getenv("BITMILL_SECRET")) {
        return fromHex(given, "BITMILL_SECRET");
    }
    std::string path = (std::filesystem::path(data_dir) / "server.secret").string();
    std::ifstream in(path);
    if (in) {
        std::string text;
        std::getline(in, text);
        return fromHex(text, path);
    }
    std::string secret(kSecretBytes, '\0');
    if (getrandom(secret.data(), secret.size(), 0) != static_cast<ssize_t>(secret.size())) {
        return Error::internal("create server secret: getrandom failed");
    }
    // O_EXCL: when two processes start at once, one creates and both read it.
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        if (errno == EEXIST) {
            return loadOrCreateServerSecret(data_dir);
        }
        return Error::unavailable("create server secret '" + path + "': " + strerror(errno));
    }
    std::string text = toHex(secret) + "\n";
    bool written = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    fsync(fd);
    close(fd);
    if (!written) {
        return Error::unavailable("write server secret '" + path + "' failed");
    }
    return secret;
}

}  // namespace bitmill
