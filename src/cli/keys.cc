#include "cli/keys.h"

#include <cstdio>
#include <iostream>

#include "core/clock.h"
#include "core/config_loader.h"
#include "core/crypto.h"
#include "core/ids.h"
#include "core/secret_file.h"
#include "db/open_store.h"

namespace bitmill::cli {

namespace {

domain::ApiKey makeKeyRecord(const std::string& project_id, const std::string& name,
                             const std::string& key, const std::string& server_secret) {
    domain::ApiKey record;
    record.id = newId("key_");
    record.project_id = project_id;
    record.name = name;
    record.display_prefix = key.substr(0, std::min<size_t>(key.size(), 7));
    record.hash = crypto::sha256Hex(key);
    record.sealed_key = crypto::seal(server_secret, key);
    record.created_ms = nowMillis();
    return record;
}

constexpr const char* kKeysUsage =
    "usage: bitmill keys create [--name NAME] [--project PROJECT_NAME]\n"
    "       bitmill keys list [--project PROJECT_NAME]\n"
    "       bitmill keys revoke KEY_ID\n"
    "--project defaults to 'default' and creates the project when it is new.\n"
    "Settings such as --data-dir and --database-url select the server's data.\n";

}  // namespace

Result<std::string> createApiKey(db::Store& store, const std::string& project_id,
                                 const std::string& name, const std::string& server_secret) {
    std::string key = "bm_" + randomBase62(40);
    BM_RETURN_IF_ERROR(store.insertApiKey(makeKeyRecord(project_id, name, key, server_secret)));
    return key;
}

Status installApiKey(db::Store& store, const std::string& project_id, const std::string& key,
                     const std::string& server_secret) {
    if (key.size() < 16) {
        return Error::invalidArgument("invalid setting api_key: it must be at least 16 "
                                      "characters long");
    }
    auto existing = store.findApiKeyByHash(crypto::sha256Hex(key));
    if (existing.ok()) {
        return okStatus();
    }
    return store.insertApiKey(makeKeyRecord(project_id, "configured", key, server_secret));
}

int runKeysCommand(const std::vector<std::string>& arguments) {
    // --name and --project belong to this command, the rest are settings.
    std::vector<std::string> settings_arguments;
    std::string name = "cli";
    std::string project_name = "default";
    for (size_t i = 0; i < arguments.size(); ++i) {
        if ((arguments[i] == "--name" || arguments[i] == "--project") &&
            i + 1 < arguments.size()) {
            (arguments[i] == "--name" ? name : project_name) = arguments[i + 1];
            ++i;
        } else {
            settings_arguments.push_back(arguments[i]);
        }
    }
    std::vector<std::string> positional;
    auto config = loadConfig(settings_arguments, &positional);
    if (!config.ok()) {
        std::cerr << "bitmill keys: " << config.error().message() << "\n" << kKeysUsage;
        return 2;
    }
    if (positional.empty()) {
        std::cerr << kKeysUsage;
        return 2;
    }
    auto store = db::openStore(config->database_url, config->data_dir);
    auto secret = loadOrCreateServerSecret(config->data_dir);
    if (!store.ok() || !secret.ok()) {
        std::cerr << "bitmill keys: "
                  << (!store.ok() ? store.error().message() : secret.error().message()) << "\n";
        return 1;
    }
    auto project = (*store)->ensureProject(project_name);
    if (!project.ok()) {
        std::cerr << "bitmill keys: " << project.error().message() << "\n";
        return 1;
    }
    const std::string& project_id = project->id;

    const std::string& action = positional[0];
    if (action == "create") {
        auto key = createApiKey(**store, project_id, name, *secret);
        if (!key.ok()) {
            std::cerr << "bitmill keys create: " << key.error().message() << "\n";
            return 1;
        }
        std::cout << *key << "\n";
        return 0;
    }
    if (action == "list") {
        auto keys = (*store)->listApiKeys(project_id);
        if (!keys.ok()) {
            std::cerr << "bitmill keys list: " << keys.error().message() << "\n";
            return 1;
        }
        for (const domain::ApiKey& key : *keys) {
            std::cout << key.id << "  " << key.display_prefix << "…  " << key.name << "  "
                      << formatRfc3339(key.created_ms)
                      << (key.revoked_ms ? "  revoked " + formatRfc3339(*key.revoked_ms) : "")
                      << "\n";
        }
        return 0;
    }
    if (action == "revoke" && positional.size() == 2) {
        auto revoked = (*store)->revokeApiKey(positional[1], nowMillis());
        if (!revoked.ok()) {
            std::cerr << "bitmill keys revoke: " << revoked.error().message() << "\n";
            return 1;
        }
        std::cout << "revoked " << positional[1] << "\n";
        return 0;
    }
    std::cerr << kKeysUsage;
    return 2;
}

}  // namespace bitmill::cli
