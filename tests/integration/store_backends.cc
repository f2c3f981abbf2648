// Backend list and record builders of the integration tests.
#include "store_backends.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <memory>

#include "core/ids.h"
#include "db/postgres/postgres_store.h"
#include "db/sqlite/sqlite_store.h"

namespace bitmill::integration {

namespace {

// Returns `server_url` with its database replaced by `database`.
std::string databaseUrl(const std::string& server_url, const std::string& database) {
    size_t host_start = server_url.find("://");
    size_t path_start = server_url.find('/', host_start == std::string::npos ? 0 : host_start + 3);
    size_t query_start = server_url.find('?');
    std::string query = query_start == std::string::npos ? "" : server_url.substr(query_start);
    return server_url.substr(0, std::min(path_start, query_start)) + "/" + database + query;
}

std::optional<std::string> readFirstLine(const std::filesystem::path& path) {
    std::ifstream file(path);
    std::string line;
    if (!file || !std::getline(file, line) || line.empty()) {
        return std::nullopt;
    }
    return line;
}

#if defined(BITMILL_TEST_POSTGRES)
// Opens a PostgreSQL store on the database of the test folder `folder`:
// created on the first open and named in {folder}/postgres.database, so a
// later open (a restart, or a second process) reaches the same data.
Result<db::StorePtr> openPostgresInFolder(const std::string& folder) {
    std::filesystem::path name_file = std::filesystem::path(folder) / "postgres.database";
    BM_ASSIGN_OR_RETURN(std::string server_url, postgresServerUrl());
    if (std::optional<std::string> database = readFirstLine(name_file)) {
        return db::openPostgresStore(databaseUrl(server_url, *database));
    }
    BM_ASSIGN_OR_RETURN(std::string url, createPostgresDatabase());
    std::ofstream(name_file) << url.substr(url.rfind('/') + 1) << "\n";
    return db::openPostgresStore(url);
}
#endif

}  // namespace

std::vector<StoreBackend> storeBackends() {
#if defined(BITMILL_TEST_POSTGRES)
    return {{"Postgres", openPostgresInFolder}};
#else
    return {
        {"Sqlite",
         [](const std::string& folder) {
             return db::openSqliteStore((std::filesystem::path(folder) / "bitmill.db").string());
         }},
    };
#endif
}

Result<std::string> postgresServerUrl() {
    const char* services_dir = std::getenv("BITMILL_TEST_SERVICES_DIR");
    if (services_dir == nullptr || *services_dir == '\0') {
        return Error::unavailable(
            "BITMILL_TEST_SERVICES_DIR is not set: run the postgres tests through ctest -L "
            "postgres, which starts the server as a fixture");
    }
    std::filesystem::path url_file = std::filesystem::path(services_dir) / "postgres.url";
    std::optional<std::string> url = readFirstLine(url_file);
    if (!url) {
        return Error::unavailable("read '" + url_file.string() +
                                  "': missing or empty; start the server with ctest -L postgres "
                                  "or tests/services/postgres.sh start " +
                                  services_dir);
    }
    return *url;
}

Result<std::string> createPostgresDatabase() {
    BM_ASSIGN_OR_RETURN(std::string server_url, postgresServerUrl());
    std::string database = "bm_" + randomBase62(16);
    std::transform(database.begin(), database.end(), database.begin(),
                   [](unsigned char c) { return std::tolower(c); });

    std::unique_ptr<PGconn, decltype(&PQfinish)> connection(PQconnectdb(server_url.c_str()),
                                                            PQfinish);
    if (PQstatus(connection.get()) != CONNECTION_OK) {
        return Error::unavailable("connect to '" + server_url +
                                  "': " + PQerrorMessage(connection.get()));
    }
    // The name is generated above from [a-z0-9], so it is safe in the SQL
    // text; CREATE DATABASE takes no parameters.
    std::unique_ptr<PGresult, decltype(&PQclear)> created(
        PQexec(connection.get(), ("CREATE DATABASE " + database).c_str()), PQclear);
    if (PQresultStatus(created.get()) != PGRES_COMMAND_OK) {
        return Error::internal("create database " + database + ": " +
                               PQresultErrorMessage(created.get()));
    }
    return databaseUrl(server_url, database);
}

TempFolder::TempFolder() {
    path_ = std::filesystem::temp_directory_path() / ("bitmill-test-" + randomBase62(12));
    std::filesystem::create_directories(path_);
}

TempFolder::~TempFolder() {
    std::error_code error;
    std::filesystem::remove_all(path_, error);
}

domain::MediaRecord makeMedia(const std::string& project_id, int64_t created_ms) {
    domain::MediaRecord media;
    media.id = newId("med_");
    media.project_id = project_id;
    media.kind = "video";
    media.title = "Holiday";
    media.width = 1920;
    media.height = 1080;
    media.duration = 12.5;
    media.metadata = Json{{"camera", "x100"}};
    media.created_ms = created_ms;
    media.updated_ms = created_ms;
    return media;
}

domain::FileRecord makeFile(const std::string& project_id, const std::string& media_id,
                            int64_t created_ms) {
    domain::FileRecord file;
    file.id = newId("file_");
    file.project_id = project_id;
    file.media_id = media_id;
    file.props.kind = "video";
    file.props.type = "video/mp4";
    file.props.container = "mp4";
    file.props.extension = "mp4";
    file.props.codec = "h264";
    file.props.width = 1920;
    file.props.height = 1080;
    file.props.duration = 12.5;
    file.props.fps = 30.0;
    file.filesize = 123456;
    file.ref = "original";
    file.storage_key = project_id + "/" + file.id + ".mp4";
    file.delivery_path = file.id + ".mp4";
    file.etag = "\"" + file.id + "\"";
    file.metadata = Json{{"source", "test"}};
    file.original = true;
    file.created_by = "user";
    file.created_ms = created_ms;
    file.updated_ms = created_ms;
    return file;
}

domain::TaskRecord makeTask(const std::string& project_id, int64_t created_ms) {
    domain::TaskRecord task;
    task.id = newId("task_");
    task.project_id = project_id;
    task.kind = "video";
    task.options = Json{{"width", 640}, {"format", "mp4"}};
    task.input_url = "https://example.com/input.mp4";
    task.created_by = "user";
    task.max_attempts = 3;
    task.run_after_ms = created_ms;
    task.created_ms = created_ms;
    task.updated_ms = created_ms;
    return task;
}

}  // namespace bitmill::integration
