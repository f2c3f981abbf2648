// Chooses and opens the Store backend named by a database URL.
#pragma once

#include <string>

#include "core/error.h"
#include "db/store.h"

namespace bitmill::db {

// Opens the Store for `database_url`: empty means SQLite at
// {data_dir}/bitmill.db; "sqlite://PATH" or a plain path means SQLite at
// PATH; "postgres://…" or "postgresql://…" means PostgreSQL at that libpq
// URI. Parent folders of a SQLite file are created. Errors:
// InvalidArgument for unknown schemes, otherwise what openSqliteStore or
// openPostgresStore returns.
Result<StorePtr> openStore(const std::string& database_url, const std::string& data_dir);

}  // namespace bitmill::db
