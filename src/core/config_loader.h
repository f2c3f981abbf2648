// Fills a Config from, in rising precedence: built-in defaults, a config
// file (`key = value` lines, '#' comments), BITMILL_* environment variables
// and command-line flags (--key-name value). Every setting has all three
// spellings: data_dir, BITMILL_DATA_DIR, --data-dir.
#pragma once

#include <string>
#include <vector>

#include "core/config.h"
#include "core/error.h"

namespace bitmill {

// Parses `arguments` (the words after the subcommand). Unknown flags and
// bad values are InvalidArgument naming the setting, the value and what is
// accepted. Positional words are returned in `positional`.
Result<Config> loadConfig(const std::vector<std::string>& arguments,
                          std::vector<std::string>* positional);

// Returns the reference of every setting: name, variable, default, help.
std::string settingsHelp();

}  // namespace bitmill
