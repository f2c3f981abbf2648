// Selection of the Store backend from the configured database URL.
#include "db/open_store.h"

#include <fmt/format.h>

#include <filesystem>
#include <system_error>

#include "db/postgres/postgres_store.h"
#include "db/sqlite/sqlite_store.h"

namespace bitmill::db {

namespace {

bool startsWith(const std::string& text, std::string_view prefix) {
    return text.compare(0, prefix.size(), prefix) == 0;
}

Result<StorePtr> openSqliteFile(const std::string& path) {
    if (path.empty()) {
        return Error::invalidArgument("invalid database URL 'sqlite://': the path is empty");
    }
    if (path != ":memory:") {
        std::filesystem::path parent = std::filesystem::path(path).parent_path();
        std::error_code error;
        if (!parent.empty()) {
            std::filesystem::create_directories(parent, error);
        }
        if (error) {
            return Error::unavailable(
                fmt::format("create database folder '{}': {}", parent.string(), error.message()));
        }
    }
    return openSqliteStore(path);
}

}  // namespace

Result<StorePtr> openStore(const std::string& database_url, const std::string& data_dir) {
    if (database_url.empty()) {
        return openSqliteFile((std::filesystem::path(data_dir) / "bitmill.db").string());
    }
    if (startsWith(database_url, "sqlite://")) {
        return openSqliteFile(database_url.substr(std::string_view("sqlite://").size()));
    }
    if (startsWith(database_url, "postgres://") || startsWith(database_url, "postgresql://")) {
        return openPostgresStore(database_url);
    }
    size_t scheme_end = database_url.find("://");
    if (scheme_end != std::string::npos) {
        return Error::invalidArgument(
            fmt::format("unsupported database URL scheme '{}': use sqlite://PATH, a file path or "
                        "postgres://USER@HOST:PORT/DATABASE",
                        database_url.substr(0, scheme_end)));
    }
    return openSqliteFile(database_url);
}

}  // namespace bitmill::db
