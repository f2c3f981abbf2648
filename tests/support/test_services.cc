// Reading the fixture files that tests/services/*.sh write into
// $BITMILL_TEST_SERVICES_DIR, and carving per-test space out of each server.
#include "test_services.h"

#include <cstdlib>
#include <fstream>
#include <random>
#include <stdexcept>

#include "process.h"

namespace bitmill::e2e {
namespace {

std::filesystem::path servicesDir() {
    const char* dir = std::getenv("BITMILL_TEST_SERVICES_DIR");
    if (dir == nullptr || *dir == '\0') {
        throw std::runtime_error(
            "BITMILL_TEST_SERVICES_DIR is not set: run the postgres and s3 tests through ctest, "
            "which starts the servers as fixtures");
    }
    return dir;
}

// Returns the first line of a fixture file, or throws naming the fixture.
std::string readFixtureLine(const std::string& name, const std::string& fixture) {
    std::filesystem::path path = servicesDir() / name;
    std::ifstream in(path);
    std::string line;
    if (!in || !std::getline(in, line) || line.empty()) {
        throw std::runtime_error(path.string() + " is missing: the " + fixture +
                                 " fixture is not running (run the test through ctest, e.g. "
                                 "`ctest -L " +
                                 fixture + "`)");
    }
    return line;
}

std::string randomName(size_t length) {
    static const char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    std::random_device device;
    std::uniform_int_distribution<int> pick(0, 35);
    std::string name;
    for (size_t i = 0; i < length; ++i) {
        name += kAlphabet[pick(device)];
    }
    return name;
}

}  // namespace

bool scaleOutDeployment() {
    const char* deployment = std::getenv("BITMILL_TEST_DEPLOYMENT");
    return deployment != nullptr && std::string(deployment) == "scaleout";
}

std::string createPostgresDatabase() {
    std::string server_url = readFixtureLine("postgres.url", "postgres");
    std::string database = "e2e_" + randomName(12);
    runChecked({"psql", server_url, "-v", "ON_ERROR_STOP=1", "-q", "-c",
                "CREATE DATABASE " + database});
    // The fixture's URL ends in the maintenance database's name; swap it.
    size_t slash = server_url.rfind('/');
    size_t query = server_url.find('?', slash);
    return server_url.substr(0, slash + 1) + database +
           (query == std::string::npos ? "" : server_url.substr(query));
}

S3Location createS3Location() {
    std::string url = readFixtureLine("s3.url", "s3");
    // s3://BUCKET[/PREFIX]?QUERY: keep the bucket and query, replace the prefix.
    const std::string scheme = "s3://";
    size_t bucket_end = url.find_first_of("/?", scheme.size());
    size_t query = url.find('?');
    S3Location location;
    location.storage_url = url.substr(0, bucket_end) + "/e2e-" + randomName(12) +
                           (query == std::string::npos ? "" : url.substr(query));
    std::ifstream env(servicesDir() / "s3.env");
    std::string line;
    while (std::getline(env, line)) {
        size_t equals = line.find('=');
        if (equals != std::string::npos && equals > 0) {
            location.environment[line.substr(0, equals)] = line.substr(equals + 1);
        }
    }
    return location;
}

std::string randomSecretHex() {
    static const char kDigits[] = "0123456789abcdef";
    std::random_device device;
    std::uniform_int_distribution<int> pick(0, 15);
    std::string secret;
    for (int i = 0; i < 64; ++i) {
        secret += kDigits[pick(device)];
    }
    return secret;
}

}  // namespace bitmill::e2e
