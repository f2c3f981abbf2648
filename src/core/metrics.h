// Process-wide metrics for GET /metrics, in the Prometheus text exposition
// format 0.0.4: labelled counters and histograms updated from any thread,
// plus gauges that the caller samples at scrape time (queue depth).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bitmill::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

// A value read at scrape time, e.g. the number of pending video tasks.
struct GaugeSample {
    std::string name;  // e.g. "bitmill_tasks"
    std::string help;
    Labels labels;
    double value = 0;
};

// Records one HTTP request: `route` is the matched pattern (e.g.
// "/tasks/{id}"), never the raw path, so that ids do not create series.
void recordHttpRequest(std::string_view listener, std::string_view method, std::string_view route,
                       int status, double seconds);

// Records one finished task attempt of `kind`. `outcome` is completed,
// failed, retried, cancelled or lost (the lease went to another worker).
void recordTaskAttempt(std::string_view kind, std::string_view outcome, double seconds);

// Counts tasks claimed by this process's workers.
void recordTaskClaimed(std::string_view kind);

// Renders every recorded series, then `gauges` grouped by name.
std::string render(const std::vector<GaugeSample>& gauges);

// Escapes a label value: backslash, double quote and newline.
std::string escapeLabelValue(std::string_view value);

}  // namespace bitmill::metrics
