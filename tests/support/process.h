// Child processes and temporary folders for the end-to-end tests: running a
// command-line tool (ffmpeg, ffprobe, vips, the bitmill CLI) and collecting its
// output, and a folder that removes itself.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace bitmill::e2e {

struct CommandResult {
    // Exit code, or 128 + signal number when the process was killed.
    int exit_code = -1;
    bool timed_out = false;
    std::string stdout_text;
    std::string stderr_text;

    bool ok() const { return exit_code == 0 && !timed_out; }
    // The command line, exit code and the end of stderr, for failure messages.
    std::string describe() const;

    std::string command_line;
};

struct CommandOptions {
    std::chrono::seconds timeout{300};
    // Variables set (or replaced) in the child's environment.
    std::map<std::string, std::string> environment;
    std::filesystem::path working_directory;
};

// Runs `argv` (argv[0] is looked up in PATH) and waits for it. The child gets
// its own process group, so a timeout kills the whole group with SIGKILL.
CommandResult runCommand(const std::vector<std::string>& argv, const CommandOptions& options = {});

// Like runCommand, but throws std::runtime_error (with the command line and
// stderr) unless the command exits 0.
CommandResult runChecked(const std::vector<std::string>& argv, const CommandOptions& options = {});

// A fresh folder under $TMPDIR (default /tmp), removed with its contents when
// the object is destroyed unless keep() was called.
class TempDir {
public:
    explicit TempDir(const std::string& prefix = "bitmill-e2e");
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }
    void keep() { keep_ = true; }

private:
    std::filesystem::path path_;
    bool keep_ = false;
};

// Reads a whole file as bytes; throws std::runtime_error when it cannot.
std::string readFileBytes(const std::filesystem::path& path);

// Writes bytes to a file, replacing it; throws std::runtime_error on failure.
void writeFileBytes(const std::filesystem::path& path, const std::string& bytes);

// The last `max_lines` lines of a text file (empty when it does not exist).
std::string fileTail(const std::filesystem::path& path, size_t max_lines);

// Builds an envp-style list from the current environment: drops every
// variable whose name starts with one of `drop_prefixes`, then applies
// `overrides`.
std::vector<std::string> buildEnvironment(const std::map<std::string, std::string>& overrides,
                                          const std::vector<std::string>& drop_prefixes);

}  // namespace bitmill::e2e
