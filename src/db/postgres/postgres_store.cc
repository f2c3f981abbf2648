// Opening and migrating the PostgreSQL database, and the project, API key,
// media and file parts of PostgresStore.
#include <fmt/format.h>

#include <charconv>

#include "core/clock.h"
#include "core/crypto.h"
#include "core/ids.h"
#include "core/log.h"
#include "db/migrations.h"
#include "db/postgres/postgres_store_impl.h"
#include "db/record_mapping.h"
#include "db/store_checks.h"

namespace bitmill::db {

Result<StorePtr> openPostgresStore(const std::string& url, const PostgresOptions& options) {
    BM_ASSIGN_OR_RETURN(auto store, postgres::PostgresStore::open(url, options));
    return StorePtr(std::move(store));
}

}  // namespace bitmill::db

namespace bitmill::db::postgres {

namespace {

// Key of the advisory lock that serialises migrations: "bitmill" in ASCII.
constexpr int64_t kMigrationLockKey = 0x62'69'74'6d'69'6c'6c;
constexpr int kMaxPoolSize = 1000;

// Removes bitmill's own `pool_size` query parameter from the URI `url`,
// because libpq rejects parameters it does not know, and returns its value.
Result<std::optional<int>> takePoolSize(std::string& url) {
    bool is_uri = url.rfind("postgres://", 0) == 0 || url.rfind("postgresql://", 0) == 0;
    size_t query_start = url.find('?');
    if (!is_uri || query_start == std::string::npos) {
        return std::optional<int>();
    }
    std::optional<int> pool_size;
    std::string kept_parameters;
    std::string_view query = std::string_view(url).substr(query_start + 1);
    while (!query.empty()) {
        size_t end = query.find('&');
        std::string_view parameter = query.substr(0, end);
        query = end == std::string_view::npos ? std::string_view() : query.substr(end + 1);
        constexpr std::string_view kName = "pool_size=";
        if (parameter.substr(0, kName.size()) != kName) {
            kept_parameters += kept_parameters.empty() ? "" : "&";
            kept_parameters += parameter;
            continue;
        }
        std::string_view value = parameter.substr(kName.size());
        int parsed = 0;
        auto [rest, error] = std::from_chars(value.data(), value.data() + value.size(), parsed);
        if (error != std::errc() || rest != value.data() + value.size() || parsed < 1 ||
            parsed > kMaxPoolSize) {
            return Error::invalidArgument(fmt::format(
                "invalid database URL: pool_size '{}' must be 1 to {}", value, kMaxPoolSize));
        }
        pool_size = parsed;
    }
    url.resize(query_start);
    if (!kept_parameters.empty()) {
        url += "?" + kept_parameters;
    }
    return pool_size;
}

Result<int> appliedSchemaVersion(Connection& connection) {
    BM_ASSIGN_OR_RETURN(QueryResult version,
                        connection.run("SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                                       {}, "read schema version"));
    return static_cast<int>(version.row(0).int64(0));
}

// Applies the oldest migration that is not applied yet, in one transaction
// that holds the migration lock, so processes opening the database at the
// same moment take turns and each version is applied once. Returns the
// migration applied, or null when the schema is up to date.
Result<const Migration*> applyNextMigration(Connection& connection) {
    BM_RETURN_IF_ERROR(
        connection.begin({{"SELECT pg_advisory_xact_lock($1)", Params().bind(kMigrationLockKey)}},
                         "lock database schema"));
    BM_RETURN_IF_ERROR(connection.runScript(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, "
        "description TEXT NOT NULL, applied_ms BIGINT NOT NULL)",
        "create schema_migrations table"));
    BM_ASSIGN_OR_RETURN(int applied, appliedSchemaVersion(connection));
    const std::vector<Migration>& migrations = postgresMigrations();
    int newest = migrations.empty() ? 0 : migrations.back().version;
    if (applied > newest) {
        return Error::internal(
            fmt::format("open database: its schema version {} is newer than this bitmill "
                        "supports ({}); run a newer bitmill",
                        applied, newest));
    }
    const Migration* next = nullptr;
    for (const Migration& migration : migrations) {
        if (migration.version > applied) {
            next = &migration;
            break;
        }
    }
    if (next != nullptr) {
        std::string action = fmt::format("apply database migration {}", next->version);
        for (std::string_view sql : next->statements) {
            BM_RETURN_IF_ERROR(connection.runScript(std::string(sql), action));
        }
        BM_RETURN_IF_ERROR(
            connection.run("INSERT INTO schema_migrations (version, description, "
                           "applied_ms) VALUES ($1, $2, $3)",
                           Params().bind(next->version).bind(next->description).bind(nowMillis()),
                           "record database migration"));
    }
    BM_RETURN_IF_ERROR(connection.commit("commit database migration"));
    return next;
}

// Brings the schema to the newest version.
Status migrate(Connection& connection) {
    while (true) {
        BM_ASSIGN_OR_RETURN(const Migration* applied, applyNextMigration(connection));
        if (applied == nullptr) {
            return okStatus();
        }
        log::get("db")->info("applied database migration version={} description=\"{}\"",
                             applied->version, applied->description);
    }
}

std::string newWebhookSecret() {
    // 32 base62 characters carry about 190 random bits.
    return "whsec_" + crypto::base64Encode(randomBase62(32));
}

}  // namespace

std::string placeholders(int first, int count) {
    std::string text;
    for (int i = 0; i < count; ++i) {
        text += fmt::format("{}${}", i == 0 ? "" : ", ", first + i);
    }
    return text;
}

std::vector<std::string_view> columnNames(std::string_view columns) {
    std::vector<std::string_view> names;
    while (!columns.empty()) {
        size_t end = columns.find(", ");
        names.push_back(columns.substr(0, end));
        columns = end == std::string_view::npos ? std::string_view() : columns.substr(end + 2);
    }
    return names;
}

std::string updateByIdSql(std::string_view table, std::string_view columns) {
    std::string assignments;
    int parameter = 0;
    for (std::string_view column : columnNames(columns)) {
        assignments += fmt::format("{}{} = ${}", parameter == 0 ? "" : ", ", column, parameter + 1);
        ++parameter;
    }
    return fmt::format("UPDATE {} SET {} WHERE id = ${} AND project_id = ${}", table, assignments,
                       parameter + 1, parameter + 2);
}

PostgresStore::PostgresStore(const std::string& url, int pool_size)
    : pool_(url, pool_size), notify_payload_(randomBase62(16)), listener_(url, notify_payload_) {
}

Result<std::shared_ptr<PostgresStore>> PostgresStore::open(const std::string& url,
                                                           const PostgresOptions& options) {
    std::string libpq_url = url;
    BM_ASSIGN_OR_RETURN(std::optional<int> url_pool_size, takePoolSize(libpq_url));
    int pool_size = url_pool_size.value_or(options.pool_size);
    if (pool_size < 1 || pool_size > kMaxPoolSize) {
        return Error::invalidArgument(
            fmt::format("invalid PostgreSQL pool size {}: use 1 to {}", pool_size, kMaxPoolSize));
    }
    std::shared_ptr<PostgresStore> store(new PostgresStore(libpq_url, pool_size));
    {
        BM_ASSIGN_OR_RETURN(PooledConnection connection, store->pool_.acquire());
        BM_RETURN_IF_ERROR(migrate(*connection));
        log::get("db")->info(
            "database opened backend=postgres host={} port={} database={} "
            "pool_size={}",
            PQhost(connection->handle()), PQport(connection->handle()), PQdb(connection->handle()),
            pool_size);
    }
    return store;
}

Result<QueryResult> PostgresStore::run(std::string_view sql, const Params& params,
                                       std::string_view action) {
    BM_ASSIGN_OR_RETURN(PooledConnection connection, pool_.acquire());
    return connection->run(sql, params, action);
}

Result<std::vector<QueryResult>> PostgresStore::pipeline(const std::vector<Command>& commands,
                                                         std::string_view action) {
    BM_ASSIGN_OR_RETURN(PooledConnection connection, pool_.acquire());
    return connection->pipeline(commands, action);
}

// Projects and keys.

Result<domain::Project> PostgresStore::ensureProject(const std::string& name) {
    static const std::string kInsert =
        fmt::format("INSERT INTO projects ({}) VALUES ({}) ON CONFLICT (name) DO NOTHING",
                    kProjectColumns, placeholders(1, 5));
    static const std::string kSelect =
        fmt::format("SELECT {} FROM projects WHERE name = $1", kProjectColumns);
    constexpr std::string_view kAction = "create project";

    domain::Project project;
    project.id = newId("prj_");
    project.name = name;
    project.webhook_secret = newWebhookSecret();
    project.created_ms = nowMillis();
    Params insert;
    bindProject(insert, project);
    // One implicit transaction: the SELECT reads the row the INSERT wrote,
    // or the one a concurrent caller committed first.
    BM_ASSIGN_OR_RETURN(std::vector<QueryResult> results,
                        pipeline({{kInsert, insert}, {kSelect, Params().bind(name)}}, kAction));
    BM_ASSIGN_OR_RETURN(std::optional<domain::Project> stored,
                        readFirstRow<domain::Project>(results[1], readProject<Row>));
    if (!stored) {
        return Error::internal(fmt::format("{}: project '{}' vanished", kAction, name));
    }
    if (results[0].affectedRows() == 1) {
        log::get("db")->info("created project name={} project_id={}", name, stored->id);
    }
    return std::move(*stored);
}

Result<domain::Project> PostgresStore::getProject(const std::string& project_id) {
    static const std::string kSql =
        fmt::format("SELECT {} FROM projects WHERE id = $1", kProjectColumns);
    BM_ASSIGN_OR_RETURN(std::optional<domain::Project> project,
                        queryFirst<domain::Project>(kSql, Params().bind(project_id), "get project",
                                                    readProject<Row>));
    if (!project) {
        return Error::notFound(fmt::format("project '{}' not found", project_id));
    }
    return std::move(*project);
}

Status PostgresStore::updateProject(const domain::Project& project) {
    BM_ASSIGN_OR_RETURN(QueryResult update,
                        run("UPDATE projects SET name = $1, delivery_private = $2, "
                            "webhook_secret = $3 WHERE id = $4",
                            Params()
                                .bind(project.name)
                                .bind(project.delivery_private)
                                .bind(project.webhook_secret)
                                .bind(project.id),
                            "update project"));
    if (update.affectedRows() == 0) {
        return Error::notFound(fmt::format("project '{}' not found", project.id));
    }
    return okStatus();
}

Status PostgresStore::insertApiKey(const domain::ApiKey& key) {
    static const std::string kSql =
        fmt::format("INSERT INTO api_keys ({}) VALUES ({})", kApiKeyColumns, placeholders(1, 8));
    Params params;
    bindApiKey(params, key);
    BM_RETURN_IF_ERROR(run(kSql, params, "insert API key"));
    return okStatus();
}

Result<domain::ApiKey> PostgresStore::findApiKeyByHash(const std::string& hash) {
    static const std::string kSql = fmt::format(
        "SELECT {} FROM api_keys WHERE hash = $1 AND revoked_ms IS NULL", kApiKeyColumns);
    BM_ASSIGN_OR_RETURN(
        std::optional<domain::ApiKey> key,
        queryFirst<domain::ApiKey>(kSql, Params().bind(hash), "find API key", readApiKey<Row>));
    if (!key) {
        // The hash is a secret's digest, so it stays out of the message.
        return Error::notFound("API key not found");
    }
    return std::move(*key);
}

Result<std::vector<domain::ApiKey>> PostgresStore::listApiKeys(const std::string& project_id) {
    static const std::string kSql = fmt::format(
        "SELECT {} FROM api_keys WHERE project_id = $1 ORDER BY created_ms, id", kApiKeyColumns);
    return queryAll<domain::ApiKey>(kSql, Params().bind(project_id), "list API keys",
                                    readApiKey<Row>);
}

Status PostgresStore::revokeApiKey(const std::string& key_id, int64_t now_ms) {
    constexpr std::string_view kAction = "revoke API key";
    BM_ASSIGN_OR_RETURN(
        std::vector<QueryResult> results,
        pipeline({{"UPDATE api_keys SET revoked_ms = $1 WHERE id = $2 AND revoked_ms IS NULL",
                   Params().bind(now_ms).bind(key_id)},
                  {"SELECT 1 FROM api_keys WHERE id = $1", Params().bind(key_id)}},
                 kAction));
    // Revoking twice succeeds; only a missing key is an error.
    if (results[1].rowCount() == 0) {
        return Error::notFound(fmt::format("API key '{}' not found", key_id));
    }
    return okStatus();
}

// Media.

Status PostgresStore::insertMedia(const domain::MediaRecord& media) {
    static const std::string kSql =
        fmt::format("INSERT INTO media ({}) VALUES ({})", kMediaColumns, placeholders(1, 12));
    Params params;
    bindMedia(params, media);
    BM_RETURN_IF_ERROR(run(kSql, params, "insert media"));
    return okStatus();
}

Result<domain::MediaRecord> PostgresStore::getMedia(const std::string& project_id,
                                                    const std::string& media_id) {
    static const std::string kSql =
        fmt::format("SELECT {} FROM media WHERE id = $1 AND project_id = $2", kMediaColumns);
    BM_ASSIGN_OR_RETURN(
        std::optional<domain::MediaRecord> media,
        queryFirst<domain::MediaRecord>(kSql, Params().bind(media_id).bind(project_id), "get media",
                                        readMedia<Row>));
    if (!media) {
        return Error::notFound(fmt::format("media '{}' not found", media_id));
    }
    return std::move(*media);
}

Result<Page<domain::MediaRecord>> PostgresStore::listMedia(const std::string& project_id,
                                                           PageRequest page) {
    static const std::string kPage = fmt::format(
        "SELECT {} FROM media WHERE project_id = $1 ORDER BY created_ms DESC, seq "
        "DESC LIMIT $2 OFFSET $3",
        kMediaColumns);
    BM_RETURN_IF_ERROR(checkPage(page));
    return queryPage<domain::MediaRecord>("SELECT COUNT(*) FROM media WHERE project_id = $1", kPage,
                                          Params().bind(project_id), page, "list media",
                                          readMedia<Row>);
}

Status PostgresStore::updateMedia(const domain::MediaRecord& media) {
    static const std::string kSql = updateByIdSql("media", kMediaUpdateColumns);
    Params params;
    bindMediaUpdate(params, media);
    BM_ASSIGN_OR_RETURN(QueryResult update, run(kSql, params, "update media"));
    if (update.affectedRows() == 0) {
        return Error::notFound(fmt::format("media '{}' not found", media.id));
    }
    return okStatus();
}

Result<std::vector<domain::FileRecord>> PostgresStore::deleteMedia(const std::string& project_id,
                                                                   const std::string& media_id) {
    static const std::string kDeleteFiles = fmt::format(
        "DELETE FROM files WHERE project_id = $1 AND media_id = $2 RETURNING {}", kFileColumns);
    constexpr std::string_view kAction = "delete media";
    BM_ASSIGN_OR_RETURN(PooledConnection connection, pool_.acquire());
    // The transaction stays open until the media row is known to exist, so
    // a missing media deletes no files.
    BM_ASSIGN_OR_RETURN(std::vector<QueryResult> results,
                        connection->begin({{kDeleteFiles, Params().bind(project_id).bind(media_id)},
                                           {"DELETE FROM media WHERE id = $1 AND project_id = $2",
                                            Params().bind(media_id).bind(project_id)}},
                                          kAction));
    if (results[1].affectedRows() == 0) {
        return Error::notFound(fmt::format("media '{}' not found", media_id));
    }
    BM_ASSIGN_OR_RETURN(std::vector<domain::FileRecord> files,
                        readRows<domain::FileRecord>(results[0], readFile<Row>));
    BM_RETURN_IF_ERROR(connection->commit(kAction));
    return files;
}

// Files.

Status PostgresStore::insertFile(const domain::FileRecord& file) {
    static const std::string kSql =
        fmt::format("INSERT INTO files ({}) VALUES ({})", kFileColumns, placeholders(1, 19));
    Params params;
    bindFile(params, file);
    BM_RETURN_IF_ERROR(run(kSql, params, "insert file"));
    return okStatus();
}

Result<domain::FileRecord> PostgresStore::getFile(const std::string& project_id,
                                                  const std::string& file_id) {
    static const std::string kSql =
        fmt::format("SELECT {} FROM files WHERE id = $1 AND project_id = $2", kFileColumns);
    BM_ASSIGN_OR_RETURN(
        std::optional<domain::FileRecord> file,
        queryFirst<domain::FileRecord>(kSql, Params().bind(file_id).bind(project_id), "get file",
                                       readFile<Row>));
    if (!file) {
        return Error::notFound(fmt::format("file '{}' not found", file_id));
    }
    return std::move(*file);
}

Result<Page<domain::FileRecord>> PostgresStore::listFiles(const std::string& project_id,
                                                          PageRequest page) {
    static const std::string kPage = fmt::format(
        "SELECT {} FROM files WHERE project_id = $1 ORDER BY created_ms DESC, seq "
        "DESC LIMIT $2 OFFSET $3",
        kFileColumns);
    BM_RETURN_IF_ERROR(checkPage(page));
    return queryPage<domain::FileRecord>("SELECT COUNT(*) FROM files WHERE project_id = $1", kPage,
                                         Params().bind(project_id), page, "list files",
                                         readFile<Row>);
}

Result<std::vector<domain::FileRecord>> PostgresStore::listMediaFiles(const std::string& project_id,
                                                                      const std::string& media_id) {
    static const std::string kSql = fmt::format(
        "SELECT {} FROM files WHERE project_id = $1 AND media_id = $2 ORDER BY created_ms, seq",
        kFileColumns);
    return queryAll<domain::FileRecord>(kSql, Params().bind(project_id).bind(media_id),
                                        "list media files", readFile<Row>);
}

Status PostgresStore::updateFile(const domain::FileRecord& file) {
    static const std::string kSql = updateByIdSql("files", kFileUpdateColumns);
    Params params;
    bindFileUpdate(params, file);
    BM_ASSIGN_OR_RETURN(QueryResult update, run(kSql, params, "update file"));
    if (update.affectedRows() == 0) {
        return Error::notFound(fmt::format("file '{}' not found", file.id));
    }
    return okStatus();
}

Result<domain::FileRecord> PostgresStore::deleteFile(const std::string& project_id,
                                                     const std::string& file_id) {
    static const std::string kSql = fmt::format(
        "DELETE FROM files WHERE id = $1 AND project_id = $2 RETURNING {}", kFileColumns);
    BM_ASSIGN_OR_RETURN(
        std::optional<domain::FileRecord> file,
        queryFirst<domain::FileRecord>(kSql, Params().bind(file_id).bind(project_id), "delete file",
                                       readFile<Row>));
    if (!file) {
        return Error::notFound(fmt::format("file '{}' not found", file_id));
    }
    return std::move(*file);
}

Result<domain::FileRecord> PostgresStore::findFileByDeliveryPath(const std::string& path) {
    static const std::string kSql = fmt::format(
        "SELECT {} FROM files WHERE delivery_path = $1 AND status = 'ready' ORDER BY "
        "updated_ms DESC, seq DESC LIMIT 1",
        kFileColumns);
    BM_ASSIGN_OR_RETURN(
        std::optional<domain::FileRecord> file,
        queryFirst<domain::FileRecord>(kSql, Params().bind(path), "find file by delivery path",
                                       readFile<Row>));
    if (!file) {
        return Error::notFound(fmt::format("no file at '{}'", path));
    }
    return std::move(*file);
}

}  // namespace bitmill::db::postgres
