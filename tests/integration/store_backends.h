// The Store backends the integration suites run against, a temporary
// folder per test, and builders of valid records.
#pragma once

#include <filesystem>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "core/error.h"
#include "db/store.h"
#include "domain/records.h"

namespace bitmill::integration {

struct StoreBackend {
    std::string name;  // used in test names, e.g. "Sqlite"
    // Opens the backend's store keeping its data in `folder`; opening the
    // same folder again reaches the same data, as after a restart.
    std::function<Result<db::StorePtr>(const std::string& folder)> open;
};

// Returns the backends this binary tests: SQLite, or PostgreSQL alone in
// binaries built with BITMILL_TEST_POSTGRES defined. Those need the
// postgres CTest fixture; SQLite binaries run without a PostgreSQL server.
std::vector<StoreBackend> storeBackends();

// Returns the URL of the server the postgres CTest fixture started, read
// from $BITMILL_TEST_SERVICES_DIR/postgres.url. When the file is missing,
// the error names the command that starts the server.
Result<std::string> postgresServerUrl();

// Creates an empty database named bm_<random> on that server and returns
// its URL.
Result<std::string> createPostgresDatabase();

// Prints the backend's name in failure messages.
inline void PrintTo(const StoreBackend& backend, std::ostream* out) { *out << backend.name; }

// Prints the backend name for parameterised test names.
struct BackendName {
    template <typename ParamInfo>
    std::string operator()(const ParamInfo& info) const {
        return info.param.name;
    }
};

// A fresh folder under the system temporary folder, removed with its
// contents on destruction.
class TempFolder {
public:
    TempFolder();
    ~TempFolder();
    TempFolder(const TempFolder&) = delete;
    TempFolder& operator=(const TempFolder&) = delete;

    const std::filesystem::path& path() const { return path_; }
    std::string string() const { return path_.string(); }

private:
    std::filesystem::path path_;
};

domain::MediaRecord makeMedia(const std::string& project_id, int64_t created_ms);
domain::FileRecord makeFile(const std::string& project_id, const std::string& media_id,
                            int64_t created_ms);
domain::TaskRecord makeTask(const std::string& project_id, int64_t created_ms);

}  // namespace bitmill::integration
