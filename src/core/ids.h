// Random identifiers: a type prefix plus base62 characters drawn from the
// operating system's CSPRNG.
#pragma once

#include <string>
#include <string_view>

namespace bitmill {

// Returns `length` random characters from [0-9A-Za-z].
std::string randomBase62(size_t length);

// Returns `prefix` + 16 random base62 characters, e.g. newId("task_").
std::string newId(std::string_view prefix);

}  // namespace bitmill
