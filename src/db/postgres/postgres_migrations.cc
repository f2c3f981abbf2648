// The PostgreSQL schema as numbered migrations. Each version mirrors the
// SQLite migration of the same number: TEXT stays TEXT, INTEGER becomes
// BIGINT, REAL becomes DOUBLE PRECISION, and the INTEGER PRIMARY KEY `seq`
// becomes an identity column, so both backends hold the same logical schema.
#include "db/migrations.h"

namespace bitmill::db {

namespace {

// Version 1: every table of the first release. Media, files and tasks have
// a `seq` key in insertion order, which breaks ties between rows created in
// the same millisecond when listing and claiming. Their text id is the
// public identifier, and foreign keys reference it.
const Migration kInitialSchema{
    1,
    "projects, api keys, media, files, tasks, uploads and idempotency records",
    {
        R"sql(CREATE TABLE projects (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            delivery_private BIGINT NOT NULL DEFAULT 0,
            webhook_secret TEXT NOT NULL,
            created_ms BIGINT NOT NULL
        ))sql",
        R"sql(CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            display_prefix TEXT NOT NULL,
            hash TEXT NOT NULL UNIQUE,
            sealed_key TEXT NOT NULL,
            created_ms BIGINT NOT NULL,
            revoked_ms BIGINT
        ))sql",
        "CREATE INDEX api_keys_project ON api_keys (project_id, created_ms)",
        R"sql(CREATE TABLE media (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
            kind TEXT,
            title TEXT,
            alt TEXT,
            width BIGINT,
            height BIGINT,
            duration DOUBLE PRECISION,
            background TEXT,
            metadata TEXT NOT NULL,
            created_ms BIGINT NOT NULL,
            updated_ms BIGINT NOT NULL
        ))sql",
        "CREATE INDEX media_project ON media (project_id, created_ms, seq)",
        R"sql(CREATE TABLE files (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
            media_id TEXT NOT NULL REFERENCES media (id) ON DELETE CASCADE,
            object TEXT NOT NULL,
            props TEXT NOT NULL,
            filesize BIGINT NOT NULL,
            label TEXT,
            ref TEXT,
            folder TEXT,
            filename TEXT,
            storage_key TEXT NOT NULL,
            delivery_path TEXT NOT NULL,
            etag TEXT NOT NULL,
            metadata TEXT NOT NULL,
            original BIGINT NOT NULL,
            created_by TEXT NOT NULL,
            status TEXT NOT NULL,
            created_ms BIGINT NOT NULL,
            updated_ms BIGINT NOT NULL
        ))sql",
        "CREATE INDEX files_project ON files (project_id, created_ms, seq)",
        "CREATE INDEX files_media ON files (media_id, created_ms, seq)",
        "CREATE INDEX files_delivery_path ON files (delivery_path, updated_ms, seq)",
        // Task references to media and files carry no foreign key on purpose:
        // a task stays as history after its media or files are deleted.
        R"sql(CREATE TABLE tasks (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            status TEXT NOT NULL,
            progress BIGINT NOT NULL,
            input_file_id TEXT,
            input_url TEXT,
            media_id TEXT,
            options TEXT NOT NULL,
            output_file_id TEXT,
            error TEXT,
            created_by TEXT NOT NULL,
            parent_id TEXT,
            webhook_url TEXT,
            attempts BIGINT NOT NULL,
            max_attempts BIGINT NOT NULL,
            lease_owner TEXT,
            lease_expires_ms BIGINT,
            run_after_ms BIGINT NOT NULL,
            created_ms BIGINT NOT NULL,
            updated_ms BIGINT NOT NULL,
            started_ms BIGINT,
            finished_ms BIGINT
        ))sql",
        "CREATE INDEX tasks_project ON tasks (project_id, created_ms, seq)",
        "CREATE INDEX tasks_queue ON tasks (status, created_ms, seq)",
        "CREATE INDEX tasks_lease ON tasks (status, lease_expires_ms)",
        "CREATE INDEX tasks_parent ON tasks (parent_id)",
        R"sql(CREATE TABLE uploads (
            id TEXT PRIMARY KEY,
            project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
            path TEXT NOT NULL,
            total_bytes BIGINT NOT NULL,
            received TEXT NOT NULL,
            created_ms BIGINT NOT NULL,
            updated_ms BIGINT NOT NULL,
            UNIQUE (project_id, path)
        ))sql",
        R"sql(CREATE TABLE idempotency (
            project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
            idempotency_key TEXT NOT NULL,
            request_hash TEXT NOT NULL,
            status_code BIGINT NOT NULL,
            response_body TEXT NOT NULL,
            created_ms BIGINT NOT NULL,
            PRIMARY KEY (project_id, idempotency_key)
        ))sql",
        "CREATE INDEX idempotency_created ON idempotency (created_ms)",
    },
};

}  // namespace

const std::vector<Migration>& postgresMigrations() {
    static const std::vector<Migration> migrations{kInitialSchema};
    return migrations;
}

}  // namespace bitmill::db
