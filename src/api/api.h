// The HTTP listeners of bitmill: the JSON API and the delivery listener
// (file bytes, uploads, signed URLs). Both run on cpp-httplib thread pools;
// the composition root (server/) builds an ApiContext and starts them.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/config.h"
#include "core/error.h"
#include "core/media_properties.h"
#include "db/store.h"
#include "storage/blob_store.h"

namespace bitmill::api {

struct ApiContext {
    Config config;
    db::StorePtr store;
    storage::BlobStorePtr blobs;
    // Key (32 bytes) for crypto::seal of API keys; from the data directory.
    std::string server_secret;
    std::string org_id;  // org_…, one per server
    // Wakes idle workers after a task was inserted. May be empty.
    std::function<void()> wake_workers;
    // Probes a local file in a sandboxed task process (server/ supplies
    // it, so no decoder ever runs in the API process).
    std::function<Result<MediaProperties>(const std::string& local_path)> probe_file;
};

// One listening HTTP server. start() binds and serves on a background
// thread; stop() stops accepting and waits for in-flight requests.
class Listener {
public:
    virtual ~Listener() = default;
    // Binds to host:port (port 0 picks a free one); returns the bound port.
    virtual Result<int> start(const std::string& host, int port) = 0;
    virtual void stop() = 0;
};

std::unique_ptr<Listener> makeApiListener(std::shared_ptr<ApiContext> context);
std::unique_ptr<Listener> makeDeliveryListener(std::shared_ptr<ApiContext> context);

}  // namespace bitmill::api
