// A small labelled-metrics registry behind one mutex. Updates are a map
// lookup and a few additions, cheap next to an HTTP request or a task.
#include "core/metrics.h"

#include <fmt/format.h>

#include <map>
#include <mutex>

namespace bitmill::metrics {

namespace {

enum class Type { Counter, Histogram };

// Returns "{labels}", or "" for a series without labels.
std::string braced(const std::string& labels) {
    return labels.empty() ? std::string() : "{" + labels + "}";
}

struct Series {
    double value = 0;                     // counters
    std::vector<uint64_t> bucket_counts;  // histograms, not cumulative
    double sum = 0;
    uint64_t count = 0;
};

struct Family {
    std::string name;
    Type type;
    std::string help;
    std::vector<double> buckets;  // upper bounds, ascending; histograms only
    // Keyed by the rendered label set, e.g. `kind="video",outcome="failed"`.
    std::map<std::string, Series> series;
};

// Upper bounds in seconds. HTTP handlers respond in microseconds to
// milliseconds, and tasks run for a fraction of a second up to an hour.
const std::vector<double> kHttpBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                          0.05,   0.1,   0.25,   0.5,   1,    2.5,
                                          5,      10};
const std::vector<double> kTaskBuckets = {0.1, 0.25, 0.5, 1,   2.5, 5,    10,  30,
                                          60,  120,  300, 600, 1800, 3600};

class Registry {
public:
    Registry() {
        add({"bitmill_http_request_duration_seconds", Type::Histogram,
             "Time from reading an HTTP request to writing its response, by listener, "
             "method, route pattern and status code.",
             kHttpBuckets,
             {}});
        add({"bitmill_task_attempt_duration_seconds", Type::Histogram,
             "Wall time of one task attempt in this process's workers, by kind and outcome.",
             kTaskBuckets,
             {}});
        add({"bitmill_task_failures_total", Type::Counter,
             "Task attempts of this process's workers that failed or were scheduled for a "
             "retry, by kind and outcome.",
             {},
             {}});
        add({"bitmill_tasks_claimed_total", Type::Counter,
             "Tasks claimed from the queue by this process's workers, by kind.",
             {},
             {}});
    }

    void observe(std::string_view name, const Labels& labels, double value) {
        std::lock_guard lock(mutex_);
        Family& family = families_.at(std::string(name));
        Series& series = family.series[renderLabels(labels)];
        if (series.bucket_counts.empty()) {
            series.bucket_counts.assign(family.buckets.size(), 0);
        }
        for (size_t i = 0; i < family.buckets.size(); ++i) {
            if (value <= family.buckets[i]) {
                ++series.bucket_counts[i];
                break;
            }
        }
        series.sum += value;
        ++series.count;
    }

    void increment(std::string_view name, const Labels& labels, double amount) {
        std::lock_guard lock(mutex_);
        families_.at(std::string(name)).series[renderLabels(labels)].value += amount;
    }

    void renderTo(std::string& out) const {
        std::lock_guard lock(mutex_);
        for (const std::string& name : order_) {
            const Family& family = families_.at(name);
            out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, family.help, name,
                               family.type == Type::Counter ? "counter" : "histogram");
            for (const auto& [labels, series] : family.series) {
                if (family.type == Type::Counter) {
                    out += fmt::format("{}{} {}\n", name, braced(labels), series.value);
                    continue;
                }
                std::string prefix = labels.empty() ? "" : labels + ",";
                uint64_t cumulative = 0;
                for (size_t i = 0; i < family.buckets.size(); ++i) {
                    cumulative += series.bucket_counts[i];
                    out += fmt::format("{}_bucket{{{}le=\"{}\"}} {}\n", name, prefix,
                                       family.buckets[i], cumulative);
                }
                out += fmt::format("{}_bucket{{{}le=\"+Inf\"}} {}\n", name, prefix, series.count);
                out += fmt::format("{}_sum{} {}\n", name, braced(labels), series.sum);
                out += fmt::format("{}_count{} {}\n", name, braced(labels), series.count);
            }
        }
    }

private:
    void add(Family family) {
        order_.push_back(family.name);
        families_.emplace(family.name, std::move(family));
    }

    static std::string renderLabels(const Labels& labels) {
        std::string out;
        for (const auto& [key, value] : labels) {
            if (!out.empty()) {
                out += ',';
            }
            out += fmt::format("{}=\"{}\"", key, escapeLabelValue(value));
        }
        return out;
    }

    mutable std::mutex mutex_;
    std::map<std::string, Family> families_;
    std::vector<std::string> order_;
};

Registry& registry() {
    static Registry* instance = new Registry();  // never destroyed: threads may outlive main
    return *instance;
}

}  // namespace

std::string escapeLabelValue(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '"') {
            out += "\\\"";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

void recordHttpRequest(std::string_view listener, std::string_view method, std::string_view route,
                       int status, double seconds) {
    registry().observe("bitmill_http_request_duration_seconds",
                       {{"listener", std::string(listener)},
                        {"method", std::string(method)},
                        {"route", std::string(route)},
                        {"code", std::to_string(status)}},
                       seconds);
}

void recordTaskAttempt(std::string_view kind, std::string_view outcome, double seconds) {
    Labels labels = {{"kind", std::string(kind)}, {"outcome", std::string(outcome)}};
    registry().observe("bitmill_task_attempt_duration_seconds", labels, seconds);
    if (outcome == "failed" || outcome == "retried") {
        registry().increment("bitmill_task_failures_total", labels, 1);
    }
}

void recordTaskClaimed(std::string_view kind) {
    registry().increment("bitmill_tasks_claimed_total", {{"kind", std::string(kind)}}, 1);
}

std::string render(const std::vector<GaugeSample>& gauges) {
    std::string out;
    registry().renderTo(out);
    std::map<std::string, std::vector<const GaugeSample*>> by_name;
    for (const GaugeSample& gauge : gauges) {
        by_name[gauge.name].push_back(&gauge);
    }
    for (const auto& [name, samples] : by_name) {
        out += fmt::format("# HELP {} {}\n# TYPE {} gauge\n", name, samples.front()->help, name);
        for (const GaugeSample* sample : samples) {
            std::string labels;
            for (const auto& [key, value] : sample->labels) {
                labels += fmt::format("{}{}=\"{}\"", labels.empty() ? "" : ",", key,
                                      escapeLabelValue(value));
            }
            out += fmt::format("{}{} {}\n", name, braced(labels), sample->value);
        }
    }
    return out;
}

}  // namespace bitmill::metrics
