// /healthz and /metrics. Both respond without authentication, so a load
// balancer and a Prometheus server can reach them. The metrics contain
// counts and timings, never ids, paths or keys.
#include "api/operations.h"

#include "api/http_listener.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/metrics.h"

namespace bitmill::api {

namespace {

constexpr const char* kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace

std::string renderMetricsText(db::Store& store) {
    std::vector<metrics::GaugeSample> gauges;
    auto counts = store.countUnfinishedTasks();
    gauges.push_back({"bitmill_store_up", "1 when the last query of the metadata store succeeded.",
                      {}, counts.ok() ? 1.0 : 0.0});
    if (counts.ok()) {
        // Every kind and unfinished status appears, with 0 when empty, so a
        // series does not vanish when its queue drains.
        std::map<std::pair<std::string, std::string>, int64_t> depth;
        for (const char* kind : {"ingest", "video", "image", "audio"}) {
            for (const char* status : {"pending", "waiting", "processing"}) {
                depth[{kind, status}] = 0;
            }
        }
        for (const db::TaskCount& count : *counts) {
            depth[{count.kind, std::string(domain::toString(count.status))}] += count.count;
        }
        for (const auto& [key, value] : depth) {
            gauges.push_back({"bitmill_tasks",
                              "Unfinished tasks of every project by kind and status.",
                              {{"kind", key.first}, {"status", key.second}},
                              static_cast<double>(value)});
        }
    } else {
        log::get("metrics")->warn("count unfinished tasks failed: {}",
                                  counts.error().toLogString());
    }
    return metrics::render(gauges);
}

std::pair<int, std::string> checkHealth(db::Store& store) {
    auto due = store.countDueTasks(nowMillis());
    if (!due.ok()) {
        return {503, Json{{"status", "unavailable"}, {"error", due.error().message()}}.dump()};
    }
    return {200, Json{{"status", "ok"}}.dump()};
}

void registerMetricsRoute(httplib::Server& server, db::StorePtr store) {
    server.Get("/metrics", [store](const httplib::Request&, httplib::Response& response) {
        response.set_content(renderMetricsText(*store), kPrometheusContentType);
    });
}

std::unique_ptr<Listener> makeHealthListener(db::StorePtr store) {
    auto server = std::make_unique<httplib::Server>();
    configureServer(*server);
    registerMetricsRoute(*server, store);
    server->Get("/healthz", [store](const httplib::Request&, httplib::Response& response) {
        auto [status, body] = checkHealth(*store);
        response.status = status;
        response.set_content(body, "application/json");
    });
    return std::make_unique<HttpListener>(std::move(server), "health");
}

}  // namespace bitmill::api
