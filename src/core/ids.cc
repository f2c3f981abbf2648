#include "core/ids.h"

#include <sys/random.h>

#include <array>
#include <stdexcept>

namespace bitmill {

namespace {

constexpr std::string_view kAlphabet =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

void fillRandom(unsigned char* buffer, size_t size) {
    size_t filled = 0;
    while (filled < size) {
        ssize_t got = getrandom(buffer + filled, size - filled, 0);
        if (got < 0) {
            // getrandom fails only when the kernel lacks it or a bad buffer is
            // passed. Ids without entropy would be guessable, so this is fatal.
            throw std::runtime_error("getrandom failed");
        }
        filled += static_cast<size_t>(got);
    }
}

}  // namespace

std::string randomBase62(size_t length) {
    std::string out;
    out.reserve(length);
    std::array<unsigned char, 64> bytes{};
    while (out.size() < length) {
        fillRandom(bytes.data(), bytes.size());
        for (unsigned char byte : bytes) {
            // 248 = 4 * 62: rejecting larger bytes keeps the draw unbiased.
            if (byte < 248 && out.size() < length) {
                out.push_back(kAlphabet[byte % 62]);
            }
        }
    }
    return out;
}

std::string newId(std::string_view prefix) {
    std::string id(prefix);
    id += randomBase62(16);
    return id;
}

}  // namespace bitmill
