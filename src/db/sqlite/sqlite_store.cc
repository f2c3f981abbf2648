// Opening and migrating the SQLite database, connection leasing, and the
// project, API key, media and file parts of SqliteStore.
#include <fmt/format.h>

#include <algorithm>

#include "core/clock.h"
#include "core/crypto.h"
#include "core/ids.h"
#include "core/log.h"
#include "db/migrations.h"
#include "db/record_mapping.h"
#include "db/sqlite/sqlite_store_impl.h"
#include "db/store_checks.h"

namespace bitmill::db {

Result<StorePtr> openSqliteStore(const std::string& path, const SqliteOptions& options) {
    BM_ASSIGN_OR_RETURN(auto store, sqlite::SqliteStore::open(path, options));
    return StorePtr(std::move(store));
}

}  // namespace bitmill::db

namespace bitmill::db::sqlite {

namespace {

Result<int> appliedSchemaVersion(Connection& connection) {
    BM_ASSIGN_OR_RETURN(Statement query,
                        connection.prepare("SELECT COALESCE(MAX(version), 0) FROM "
                                           "schema_migrations",
                                           "read schema version"));
    BM_ASSIGN_OR_RETURN(bool has_row, query.step());
    return has_row ? static_cast<int>(query.int64(0)) : 0;
}

Status applyMigration(Connection& connection, const Migration& migration) {
    BM_ASSIGN_OR_RETURN(Transaction transaction, Transaction::beginWrite(connection));
    // Another process may have applied it between our version check and
    // this transaction; the write lock makes this second check final.
    BM_ASSIGN_OR_RETURN(int applied, appliedSchemaVersion(connection));
    if (applied >= migration.version) {
        return okStatus();
    }
    for (std::string_view sql : migration.statements) {
        BM_RETURN_IF_ERROR(connection.execute(
            std::string(sql), fmt::format("apply database migration {}", migration.version)));
    }
    {
        BM_ASSIGN_OR_RETURN(Statement record,
                            connection.prepare("INSERT INTO schema_migrations (version, "
                                               "description, applied_ms) VALUES (?, ?, ?)",
                                               "record database migration"));
        record.bind(migration.version).bind(migration.description).bind(nowMillis());
        BM_RETURN_IF_ERROR(record.run());
    }
    return transaction.commit();
}

// Brings the schema to the newest version, each migration in its own
// transaction so a failure leaves the database at the previous version.
Status migrate(Connection& connection, const std::string& path) {
    BM_RETURN_IF_ERROR(connection.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
        "description TEXT NOT NULL, applied_ms INTEGER NOT NULL)",
        "create schema_migrations table"));
    const std::vector<Migration>& migrations = sqliteMigrations();
    int newest = migrations.empty() ? 0 : migrations.back().version;
    BM_ASSIGN_OR_RETURN(int applied, appliedSchemaVersion(connection));
    if (applied > newest) {
        return Error::internal(
            fmt::format("open database: its schema version {} is newer than this bitmill "
                        "supports ({}); run a newer bitmill",
                        applied, newest),
            path);
    }
    for (const Migration& migration : migrations) {
        if (migration.version <= applied) {
            continue;
        }
        BM_RETURN_IF_ERROR(applyMigration(connection, migration));
        log::get("db")->info("applied database migration version={} description=\"{}\"",
                             migration.version, migration.description);
    }
    return okStatus();
}

// Switches the database to write-ahead logging, which lets readers run
// while a write is in progress. The mode is stored in the file.
Status enableWriteAheadLog(Connection& connection, bool in_memory) {
    BM_ASSIGN_OR_RETURN(Statement pragma,
                        connection.prepare("PRAGMA journal_mode = WAL", "enable WAL mode"));
    BM_ASSIGN_OR_RETURN(bool has_row, pragma.step());
    std::string mode = has_row ? pragma.text(0) : "";
    if (mode != "wal" && !in_memory) {
        return Error::unavailable("open database: cannot switch to WAL mode",
                                  "journal_mode is '" + mode + "'");
    }
    return okStatus();
}

std::string newWebhookSecret() {
    // 32 base62 characters carry about 190 random bits.
    return "whsec_" + crypto::base64Encode(randomBase62(32));
}

}  // namespace

std::string placeholders(std::string_view columns) {
    std::string text = "?";
    for (char c : columns) {
        if (c == ',') {
            text += ", ?";
        }
    }
    return text;
}

std::string updateByIdSql(std::string_view table, std::string_view columns) {
    // "a, b" becomes "a = ?, b = ?".
    std::string assignments(columns);
    for (size_t separator = assignments.find(", "); separator != std::string::npos;
         separator = assignments.find(", ", separator + 6)) {
        assignments.replace(separator, 2, " = ?, ");
    }
    assignments += " = ?";
    return fmt::format("UPDATE {} SET {} WHERE id = ? AND project_id = ?", table, assignments);
}

Status insertMediaRow(Connection& connection, const domain::MediaRecord& media,
                      std::string_view action) {
    static const std::string kInsertMedia = fmt::format("INSERT INTO media ({}) VALUES ({})",
                                                        kMediaColumns, placeholders(kMediaColumns));
    BM_ASSIGN_OR_RETURN(Statement insert, connection.prepare(kInsertMedia, action));
    bindMedia(insert, media);
    Result<int64_t> inserted = insert.run();
    if (!inserted.ok()) {
        return inserted.error();
    }
    return okStatus();
}

Result<int64_t> updateMediaRow(Connection& connection, const domain::MediaRecord& media,
                               std::string_view action) {
    static const std::string kUpdateMedia = updateByIdSql("media", kMediaUpdateColumns);
    BM_ASSIGN_OR_RETURN(Statement update, connection.prepare(kUpdateMedia, action));
    bindMediaUpdate(update, media);
    return update.run();
}

Result<std::shared_ptr<SqliteStore>> SqliteStore::open(const std::string& path,
                                                       const SqliteOptions& options) {
    bool in_memory = path == ":memory:";
    ConnectionOptions writer_options;
    writer_options.synchronous_full = options.synchronous_full;
    writer_options.busy_timeout_ms = options.busy_timeout_ms;
    BM_ASSIGN_OR_RETURN(std::unique_ptr<Connection> writer, Connection::open(path, writer_options));
    BM_RETURN_IF_ERROR(enableWriteAheadLog(*writer, in_memory));
    BM_RETURN_IF_ERROR(migrate(*writer, path));

    // Each connection to ":memory:" would be a separate empty database.
    std::vector<std::unique_ptr<Connection>> readers;
    int reader_count = in_memory ? 0 : std::max(options.reader_connections, 0);
    ConnectionOptions reader_options = writer_options;
    reader_options.read_only = true;
    for (int i = 0; i < reader_count; ++i) {
        BM_ASSIGN_OR_RETURN(std::unique_ptr<Connection> reader,
                            Connection::open(path, reader_options));
        readers.push_back(std::move(reader));
    }
    log::get("db")->info("database opened backend=sqlite path={} readers={} synchronous={}",
                         path, reader_count, options.synchronous_full ? "full" : "normal");
    return std::shared_ptr<SqliteStore>(new SqliteStore(std::move(writer), std::move(readers)));
}

ConnectionLease SqliteStore::writer() { return ConnectionLease(*writer_); }

ConnectionLease SqliteStore::reader() {
    if (readers_.empty()) {
        return writer();
    }
    // Take the first idle connection after a rotating start, so concurrent
    // readers spread out; when all are busy, queue on one of them.
    size_t start = next_reader_.fetch_add(1, std::memory_order_relaxed);
    for (size_t i = 0; i < readers_.size(); ++i) {
        Connection& connection = *readers_[(start + i) % readers_.size()];
        std::unique_lock<std::mutex> lock(connection.mutex(), std::try_to_lock);
        if (lock.owns_lock()) {
            return ConnectionLease(connection, std::move(lock));
        }
    }
    return ConnectionLease(*readers_[start % readers_.size()]);
}

// Projects and keys.

Result<domain::Project> SqliteStore::ensureProject(const std::string& name) {
    constexpr std::string_view kAction = "create project";
    ConnectionLease connection = writer();
    BM_ASSIGN_OR_RETURN(Transaction transaction, Transaction::beginWrite(*connection));
    {
        BM_ASSIGN_OR_RETURN(
            Statement query,
            connection->prepare(fmt::format("SELECT {} FROM projects WHERE name = ?",
                                            kProjectColumns),
                                kAction));
        query.bind(name);
        BM_ASSIGN_OR_RETURN(std::optional<domain::Project> existing,
                            readFirst<domain::Project>(query, readProject<Statement>));
        if (existing) {
            return std::move(*existing);
        }
    }

    domain::Project project;
    project.id = newId("prj_");
    project.name = name;
    project.webhook_secret = newWebhookSecret();
    project.created_ms = nowMillis();

    {
        BM_ASSIGN_OR_RETURN(
            Statement insert,
            connection->prepare(fmt::format("INSERT INTO projects ({}) VALUES ({})",
                                            kProjectColumns, placeholders(kProjectColumns)),
                                kAction));
        bindProject(insert, project);
        BM_RETURN_IF_ERROR(insert.run());
    }
    BM_RETURN_IF_ERROR(transaction.commit());
    log::get("db")->info("created project name={} project_id={}", name, project.id);
    return project;
}

Result<domain::Project> SqliteStore::getProject(const std::string& project_id) {
    ConnectionLease connection = reader();
    BM_ASSIGN_OR_RETURN(
        Statement query,
        connection->prepare(fmt::format("SELECT {} FROM projects WHERE id = ?", kProjectColumns),
                            "get project"));
    query.bind(project_id);
    BM_ASSIGN_OR_RETURN(std::optional<domain::Project> project,
                        readFirst<domain::Project>(query, readProject<Statement>));
    if (!project) {
        return Error::notFound(fmt::format("project '{}' not found", project_id));
    }
    return std::move(*project);
}

Status SqliteStore::updateProject(const domain::Project& project) {
    ConnectionLease connection = writer();
    BM_ASSIGN_OR_RETURN(Statement update,
                        connection->prepare("UPDATE projects SET name = ?, delivery_private = ?, "
                                            "webhook_secret = ? WHERE id = ?",
                                            "update project"));
    update.bind(project.name).bind(project.delivery_private).bind(project.webhook_secret);
    update.bind(project.id);
    BM_ASSIGN_OR_RETURN(int64_t changed, update.run());
    if (changed == 0) {
        return Error::notFound(fmt::format("project '{}' not found", project.id));
    }
    return okStatus();
}

Status SqliteStore::insertApiKey(const domain::ApiKey& key) {
    ConnectionLease connection = writer();
    BM_ASSIGN_OR_RETURN(
        Statement insert,
        connection->prepare(fmt::format("INSERT INTO api_keys ({}) VALUES ({})", kApiKeyColumns,
                                        placeholders(kApiKeyColumns)),
                            "insert API key"));
    bindApiKey(insert, key);
    Result<int64_t> inserted = insert.run();
    if (!inserted.ok()) {
        return inserted.error();
    }
    return okStatus();
}

Result<domain::ApiKey> SqliteStore::findApiKeyByHash(const std::string& hash) {
    ConnectionLease connection = reader();
    BM_ASSIGN_OR_RETURN(Statement query,
                        connection->prepare(fmt::format("SELECT {} FROM api_keys WHERE hash = ? "
                                                        "AND revoked_ms IS NULL",
                                                        kApiKeyColumns),
                                            "find API key"));
    query.bind(hash);
    BM_ASSIGN_OR_RETURN(std::optional<domain::ApiKey> key,
                        readFirst<domain::ApiKey>(query, readApiKey<Statement>));
    if (!key) {
        // The hash is a secret's digest, so it stays out of the message.
        return Error::notFound("API key not found");
    }
    return std::move(*key);
}

Result<std::vector<domain::ApiKey>> SqliteStore::listApiKeys(const std::string& project_id) {
    ConnectionLease connection = reader();
    BM_ASSIGN_OR_RETURN(Statement query,
                        connection->prepare(fmt::format("SELECT {} FROM api_keys WHERE "
                                                        "project_id = ? ORDER BY created_ms, id",
                                                        kApiKeyColumns),
                                            "list API keys"));
    query.bind(project_id);
    return readAll<domain::ApiKey>(query, readApiKey<Statement>);
}

Status SqliteStore::revokeApiKey(const std::string& key_id, int64_t now_ms) {
    constexpr std::string_view kAction = "revoke API key";
    ConnectionLease connection = writer();
    BM_ASSIGN_OR_RETURN(Transaction transaction, Transaction::beginWrite(*connection));
    {
        BM_ASSIGN_OR_RETURN(Statement update,
                            connection->prepare("UPDATE api_keys SET revoked_ms = ? WHERE id = ? "
                                                "AND revoked_ms IS NULL",
                                                kAction));
        update.bind(now_ms).bind(key_id);
        BM_ASSIGN_OR_RETURN(int64_t changed, update.run());
        if (changed == 0) {
            // Revoking twice succeeds; only a missing key is an error.
            BM_ASSIGN_OR_RETURN(Statement exists,
                                connection->prepare("SELECT 1 FROM api_keys WHERE id = ?",
                                                    kAction));
            exists.bind(key_id);
            BM_ASSIGN_OR_RETURN(bool found, exists.step());
            if (!found) {
                return Error::notFound(fmt::format("API key '{}' not found", key_id));
            }
        }
    }
    return transaction.commit();
}

// Media.

Status SqliteStore::insertMedia(const domain::MediaRecord& media) {
    ConnectionLease connection = writer();
    return insertMediaRow(*connection, media, "insert media");
}

Result<domain::MediaRecord> SqliteStore::getMedia(const std::string& project_id,
                                                  const std::string& media_id) {
    ConnectionLease connection = reader();
    BM_ASSIGN_OR_RETURN(Statement query,
                        connection->prepare(fmt::format("SELECT {} FROM media WHERE id = ? AND "
                                                        "project_id = ?",
                                                        kMediaColumns),
                                            "get media"));
    query.bind(media_id).bind(project_id);
    BM_ASSIGN_OR_RETURN(std::optional<domain::MediaRecord> media,
                        readFirst<domain::MediaRecord>(query, readMedia<Statement>));
    if (!media) {
        return Error::notFound(fmt::format("media '{}' not found", media_id));
    }
    return std::move(*media);
}

Result<Page<domain::MediaRecord>> SqliteStore::listMedia(const std::string& project_id,
                                                         PageRequest page) {
    constexpr std::string_view kAction = "list media";
    BM_RETURN_IF_ERROR(checkPage(page));
    ConnectionLease connection = reader();
    // One read transaction, so the total and the items come from one snapshot.
    BM_ASSIGN_OR_RETURN(Transaction transaction, Transaction::beginRead(*connection));
    Page<domain::MediaRecord> result;
    {
        BM_ASSIGN_OR_RETURN(
            Statement count,
            connection->prepare("SELECT COUNT(*) FROM media WHERE project_id = ?", kAction));
        count.bind(project_id);
        BM_RETURN_IF_ERROR(count.step());
        result.total = count.int64(0);
    }
    {
        BM_ASSIGN_OR_RETURN(Statement query,
                            connection->prepare(fmt::format("SELECT {} FROM media WHERE "
                                                            "project_id = ? ORDER BY created_ms "
                                                            "DESC, seq DESC LIMIT ? OFFSET ?",
                                                            kMediaColumns),
                                                kAction));
        query.bind(project_id).bind(page.limit).bind(int64_t{page.page - 1} * page.limit);
        BM_ASSIGN_OR_RETURN(result.items,
                            readAll<domain::MediaRecord>(query, readMedia<Statement>));
    }
    BM_RETURN_IF_ERROR(transaction.commit());
    return result;
}

Status SqliteStore::updateMedia(const domain::MediaRecord& media) {
    ConnectionLease connection = writer();
    BM_ASSIGN_OR_RETURN(int64_t changed, updateMediaRow(*connection, media, "update media"));
    if (changed == 0) {
        return Error::notFound(fmt::format("media '{}' not found", media.id));
    }
    return okStatus();
}

Result<std::vector<domain::FileRecord>> SqliteStore::deleteMedia(const std::string& project_id,
                                                                 const std::string& media_id) {
    constexpr std::string_view kAction = "delete media";
    ConnectionLease connection = writer();
    BM_ASSIGN_OR_RETURN(Transaction transaction, Transaction::beginWrite(*connection));
    std::vector<domain::FileRecord> files;
    {
        BM_ASSIGN_OR_RETURN(Statement delete_files,
                            connection->prepare(fmt::format("DELETE FROM files WHERE project_id "
                                                            "= ? AND media_id = ? RETURNING {}",
                                                            kFileColumns),
                                                kAction));
        delete_files.bind(project_id).bind(media_id);
        BM_ASSIGN_OR_RETURN(files, readAll<domain::FileRecord>(delete_files, readFile<Statement>));
    }
    {
        BM_ASSIGN_OR_RETURN(
            Statement delete_media,
            connection->prepare("DELETE FROM media WHERE id = ? AND project_id = ?", kAction));
        delete_media.bind(media_id).bind(project_id);
        BM_ASSIGN_OR_RETURN(int64_t changed, delete_media.run());
        if (changed == 0) {
            return Error::notFound(fmt::format("media '{}' not found", media_id));
        }
    }
    BM_RETURN_IF_ERROR(transaction.commit());
    return files;
}

// Files.

Status SqliteStore::insertFile(const domain::FileRecord& file) {
    ConnectionLease connection = writer();
    static const std::string kInsertFile = fmt::format("INSERT INTO files ({}) VALUES ({})",
                                                       kFileColumns, placeholders(kFileColumns));
    BM_ASSIGN_OR_RETURN(Statement insert, connection->prepare(kInsertFile, "insert file"));
    bindFile(insert, file);
    Result<int64_t> inserted = insert.run();
    if (!inserted.ok()) {
        return inserted.error();
    }
    return okStatus();
}

Result<domain::FileRecord> SqliteStore::getFile(const std::string& project_id,
                                                const std::string& file_id) {
    ConnectionLease connection = reader();
    BM_ASSIGN_OR_RETURN(Statement query,
                        connection->prepare(fmt::format("SELECT {} FROM files WHERE id = ? AND "
                                                        "project_id = ?",
                                                        kFileColumns),
                                            "get file"));
    query.bind(file_id).bind(project_id);
    BM_ASSIGN_OR_RETURN(std::optional<domain::FileRecord> file,
                        readFirst<domain::FileRecord>(query, readFile<Statement>));
    if (!file) {
        return Error::notFound(fmt::format("file '{}' not found", file_id));
    }
    return std::move(*file);
}

Result<Page<domain::FileRecord>> SqliteStore::listFiles(const std::string& project_id,
                                                        PageRequest page) {
    constexpr std::string_view kAction = "list files";
    BM_RETURN_IF_ERROR(checkPage(page));
    ConnectionLease connection = reader();
    BM_ASSIGN_OR_RETURN(Transaction transaction, Transaction::beginRead(*connection));
    Page<domain::FileRecord> result;
    {
        BM_ASSIGN_OR_RETURN(
            Statement count,
            connection->prepare("SELECT COUNT(*) FROM files WHERE project_id = ?", kAction));
        count.bind(project_id);
        BM_RETURN_IF_ERROR(count.step());
        result.total = count.int64(0);
    }
    {
        BM_ASSIGN_OR_RETURN(Statement query,
                            connection->prepare(fmt::format("SELECT {} FROM files WHERE "
                                                            "project_id = ? ORDER BY created_ms "
                                                            "DESC, seq DESC LIMIT ? OFFSET ?",
                                                            kFileColumns),
                                                kAction));
        query.bind(project_id).bind(page.limit).bind(int64_t{page.page - 1} * page.limit);
        BM_ASSIGN_OR_RETURN(result.items, readAll<domain::FileRecord>(query, readFile<Statement>));
    }
    BM_RETURN_IF_ERROR(transaction.commit());
    return result;
}

Result<std::vector<domain::FileRecord>> SqliteStore::listMediaFiles(const std::string& project_id,
                                                                    const std::string& media_id) {
    ConnectionLease connection = reader();
    BM_ASSIGN_OR_RETURN(Statement query,
                        connection->prepare(fmt::format("SELECT {} FROM files WHERE project_id = "
                                                        "? AND media_id = ? ORDER BY created_ms, "
                                                        "seq",
                                                        kFileColumns),
                                            "list media files"));
    query.bind(project_id).bind(media_id);
    return readAll<domain::FileRecord>(query, readFile<Statement>);
}

Status SqliteStore::updateFile(const domain::FileRecord& file) {
    ConnectionLease connection = writer();
    static const std::string kUpdateFile = updateByIdSql("files", kFileUpdateColumns);
    BM_ASSIGN_OR_RETURN(Statement update, connection->prepare(kUpdateFile, "update file"));
    bindFileUpdate(update, file);
    BM_ASSIGN_OR_RETURN(int64_t changed, update.run());
    if (changed == 0) {
        return Error::notFound(fmt::format("file '{}' not found", file.id));
    }
    return okStatus();
}

Result<domain::FileRecord> SqliteStore::deleteFile(const std::string& project_id,
                                                   const std::string& file_id) {
    ConnectionLease connection = writer();
    BM_ASSIGN_OR_RETURN(Statement remove,
                        connection->prepare(fmt::format("DELETE FROM files WHERE id = ? AND "
                                                        "project_id = ? RETURNING {}",
                                                        kFileColumns),
                                            "delete file"));
    remove.bind(file_id).bind(project_id);
    BM_ASSIGN_OR_RETURN(std::optional<domain::FileRecord> file,
                        readFirst<domain::FileRecord>(remove, readFile<Statement>));
    if (!file) {
        return Error::notFound(fmt::format("file '{}' not found", file_id));
    }
    return std::move(*file);
}

Result<domain::FileRecord> SqliteStore::findFileByDeliveryPath(const std::string& path) {
    ConnectionLease connection = reader();
    BM_ASSIGN_OR_RETURN(Statement query,
                        connection->prepare(fmt::format("SELECT {} FROM files WHERE "
                                                        "delivery_path = ? AND status = 'ready' "
                                                        "ORDER BY updated_ms DESC, seq DESC "
                                                        "LIMIT 1",
                                                        kFileColumns),
                                            "find file by delivery path"));
    query.bind(path);
    BM_ASSIGN_OR_RETURN(std::optional<domain::FileRecord> file,
                        readFirst<domain::FileRecord>(query, readFile<Statement>));
    if (!file) {
        return Error::notFound(fmt::format("no file at '{}'", path));
    }
    return std::move(*file);
}

}  // namespace bitmill::db::sqlite
