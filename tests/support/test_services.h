// The PostgreSQL and S3-compatible servers that the tests/services fixtures
// start, as seen from a test: a fresh database or key prefix per test, and
// the choice of deployment the end-to-end suites run against.
#pragma once

#include <map>
#include <string>

namespace bitmill::e2e {

// True when BITMILL_TEST_DEPLOYMENT is "scaleout": every test server then
// runs as `bitmill serve --workers 0` plus `bitmill worker` processes on a
// fresh PostgreSQL database and S3 prefix. Otherwise (unset or "embedded")
// a test server is one `bitmill serve` on SQLite and local files.
bool scaleOutDeployment();

// Creates an empty database on the fixture's PostgreSQL server and returns
// its postgres:// URL. Throws std::runtime_error when the fixture is not
// running.
std::string createPostgresDatabase();

struct S3Location {
    std::string storage_url;  // s3://bucket/unique-prefix?endpoint=…
    // AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY the server accepts.
    std::map<std::string, std::string> environment;
};

// Returns a key prefix of its own on the fixture's S3 server. Throws
// std::runtime_error when the fixture is not running.
S3Location createS3Location();

// 64 random hex digits, a valid BITMILL_SECRET.
std::string randomSecretHex();

}  // namespace bitmill::e2e
