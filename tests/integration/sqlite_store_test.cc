// SQLite-specific behaviour: WAL mode, migrations applied once, the
// database URL factory and the newer-schema guard.
#include <sqlite3.h>

#include <gtest/gtest.h>

#include <filesystem>

#include "db/migrations.h"
#include "db/open_store.h"
#include "db/sqlite/sqlite_store.h"
#include "store_backends.h"

namespace bitmill::integration {
namespace {

// Runs `sql` on a separate raw connection and returns the first column of
// the first row as text.
std::string queryText(const std::filesystem::path& database, const std::string& sql) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2(database.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
    std::string value;
    sqlite3_stmt* statement = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &statement, nullptr), SQLITE_OK) << sql;
    if (sqlite3_step(statement) == SQLITE_ROW && sqlite3_column_text(statement, 0) != nullptr) {
        value = reinterpret_cast<const char*>(sqlite3_column_text(statement, 0));
    }
    sqlite3_finalize(statement);
    sqlite3_close(db);
    return value;
}

TEST(SqliteStoreTest, UsesWalAndAppliesMigrationsOnce) {
    TempFolder folder;
    std::filesystem::path database = folder.path() / "bitmill.db";
    for (int open = 0; open < 2; ++open) {
        auto store = db::openSqliteStore(database.string());
        ASSERT_TRUE(store.ok()) << store.error().toLogString();
    }
    EXPECT_EQ(queryText(database, "PRAGMA journal_mode"), "wal");
    EXPECT_EQ(queryText(database, "SELECT COUNT(*) FROM schema_migrations"),
              std::to_string(db::sqliteMigrations().size()));
    EXPECT_EQ(queryText(database, "SELECT MAX(version) FROM schema_migrations"),
              std::to_string(db::sqliteMigrations().back().version));
}

TEST(SqliteStoreTest, RejectsNewerSchema) {
    TempFolder folder;
    std::filesystem::path database = folder.path() / "bitmill.db";
    ASSERT_TRUE(db::openSqliteStore(database.string()).ok());
    queryText(database,
              "INSERT INTO schema_migrations (version, description, applied_ms) VALUES "
              "(9999, 'from the future', 0)");
    auto store = db::openSqliteStore(database.string());
    ASSERT_FALSE(store.ok());
    EXPECT_NE(store.error().message().find("9999"), std::string::npos)
        << store.error().message();
}

TEST(SqliteStoreTest, InMemoryDatabaseWorks) {
    auto store = db::openSqliteStore(":memory:");
    ASSERT_TRUE(store.ok()) << store.error().toLogString();
    auto project = (*store)->ensureDefaultProject();
    ASSERT_TRUE(project.ok());
    domain::TaskRecord task = makeTask(project->id, 1000);
    ASSERT_TRUE((*store)->insertTask(task).ok());
    EXPECT_TRUE((*store)->getTask(project->id, task.id).ok());
}

TEST(OpenStoreTest, DatabaseUrlSelectsBackend) {
    TempFolder folder;
    auto by_default = db::openStore("", (folder.path() / "data").string());
    ASSERT_TRUE(by_default.ok()) << by_default.error().toLogString();
    EXPECT_TRUE(std::filesystem::exists(folder.path() / "data" / "bitmill.db"));

    std::filesystem::path url_path = folder.path() / "nested" / "url.db";
    auto by_url = db::openStore("sqlite://" + url_path.string(), "ignored");
    ASSERT_TRUE(by_url.ok()) << by_url.error().toLogString();
    EXPECT_TRUE(std::filesystem::exists(url_path));

    std::filesystem::path plain_path = folder.path() / "plain.db";
    ASSERT_TRUE(db::openStore(plain_path.string(), "ignored").ok());
    EXPECT_TRUE(std::filesystem::exists(plain_path));

    // postgres:// URLs need a server: PostgresStoreTest.DatabaseUrlSelectsPostgres
    // (store_postgres_test) covers them.
    auto unknown = db::openStore("mysql://localhost/bitmill", folder.string());
    ASSERT_FALSE(unknown.ok());
    EXPECT_EQ(unknown.error().code(), ErrorCode::InvalidArgument);
}

}  // namespace
}  // namespace bitmill::integration
