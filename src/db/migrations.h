// Versioned schema migrations. Each backend keeps its own list with the same
// version numbers and the same tables and columns, so a database of any
// backend at version N has the same logical schema.
#pragma once

#include <string_view>
#include <vector>

namespace bitmill::db {

struct Migration {
    int version = 0;  // starts at 1, consecutive
    std::string_view description;
    // Statements run in order inside one transaction, together with the row
    // recording `version` in schema_migrations.
    std::vector<std::string_view> statements;
};

// Returns the SQLite migrations, ordered by version.
const std::vector<Migration>& sqliteMigrations();

// Returns the PostgreSQL migrations, ordered by version, with the same
// versions as sqliteMigrations().
const std::vector<Migration>& postgresMigrations();

}  // namespace bitmill::db
