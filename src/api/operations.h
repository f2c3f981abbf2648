// Health and metrics endpoints shared by every process role: the API
// listener serves them next to the API, and `bitmill worker` on its own
// optional health listener.
#pragma once

#include <httplib.h>

#include <memory>
#include <string>

#include "api/api.h"
#include "db/store.h"

namespace bitmill::api {

// Returns the Prometheus text of this process's metrics plus the queue
// depth read from `store` (bitmill_tasks{kind,status}). A store failure is
// reported as bitmill_store_up 0 instead of failing the scrape.
std::string renderMetricsText(db::Store& store);

// Returns the /healthz status and body: 200 {"status":"ok"} when a query of
// `store` succeeds, 503 with the error otherwise.
std::pair<int, std::string> checkHealth(db::Store& store);

// Registers GET /metrics on `server`; call before routes with patterns that
// would also match it.
void registerMetricsRoute(httplib::Server& server, db::StorePtr store);

// A listener with only GET /healthz and GET /metrics.
std::unique_ptr<Listener> makeHealthListener(db::StorePtr store);

}  // namespace bitmill::api
