// Entry point of the bitmill binary: the server, the task and probe
// processes it starts, and the admin commands.
#include <iostream>
#include <string>
#include <vector>

#include "cli/keys.h"
#include "core/config_loader.h"
#include "server/serve.h"
#include "tasks/task_process.h"

namespace {

constexpr const char* kUsage =
    "bitmill: a self-hosted media-processing server with an ittybit-compatible API.\n"
    "\n"
    "usage: bitmill serve [settings]          start the API, delivery and workers\n"
    "                                         (--workers 0: API and delivery only)\n"
    "       bitmill worker [settings]         start workers only, for a shared\n"
    "                                         PostgreSQL database and storage\n"
    "       bitmill keys create|list|revoke   manage API keys\n"
    "       bitmill settings                  list every setting and its default\n"
    "       bitmill version\n";

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> arguments(argv + 1, argv + argc);
    if (arguments.empty()) {
        std::cerr << kUsage;
        return 2;
    }
    std::string command = arguments[0];
    std::vector<std::string> rest(arguments.begin() + 1, arguments.end());
    try {
        if (command == "serve" || command == "worker") {
            std::vector<std::string> positional;
            auto config = bitmill::loadConfig(rest, &positional);
            if (!config.ok()) {
                std::cerr << "bitmill " << command << ": " << config.error().message() << "\n";
                return 2;
            }
            if (!positional.empty()) {
                std::cerr << "bitmill " << command << ": unexpected argument '" << positional[0]
                          << "'\n";
                return 2;
            }
            return command == "serve" ? bitmill::server::runServe(*config)
                                      : bitmill::server::runWorker(*config);
        }
        if (command == "run-task" && rest.size() == 1) {
            return bitmill::tasks::runTaskProcess(rest[0]);
        }
        if (command == "task-host" && rest.empty()) {
            return bitmill::tasks::runTaskHostProcess();
        }
        if (command == "probe" && (rest.size() == 1 || rest.size() == 2)) {
            return bitmill::tasks::runProbeProcess(rest[0], rest.size() == 2 ? rest[1] : "{}");
        }
        if (command == "keys") {
            return bitmill::cli::runKeysCommand(rest);
        }
        if (command == "settings") {
            std::cout << "Settings: --flag value, BITMILL_* variable, or `name = value` in the\n"
                         "file named by --config / BITMILL_CONFIG.\n\n"
                      << bitmill::settingsHelp();
            return 0;
        }
        if (command == "version" || command == "--version") {
            std::cout << "bitmill " << BITMILL_VERSION << "\n";
            return 0;
        }
    } catch (const std::exception& e) {
        std::cerr << "bitmill " << command << ": unexpected error: " << e.what() << "\n";
        return 1;
    }
    std::cerr << kUsage;
    return 2;
}
