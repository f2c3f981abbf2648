// Prometheus text rendering of the metrics registry: histogram buckets are
// cumulative, counters add up, label values are escaped, and gauges sampled
// at scrape time are grouped under one TYPE line.
#include "core/metrics.h"

#include <gtest/gtest.h>

#include <string>

namespace bitmill::metrics {
namespace {

// Returns the value on the line that starts with `series` + " ", or -1.
double valueOf(const std::string& text, const std::string& series) {
    size_t at = text.find("\n" + series + " ");
    if (at == std::string::npos) {
        return -1;
    }
    return std::stod(text.substr(at + series.size() + 2));
}

TEST(MetricsTest, HttpHistogramBucketsAreCumulative) {
    recordHttpRequest("api", "GET", "/unit/histogram", 200, 0.003);
    recordHttpRequest("api", "GET", "/unit/histogram", 200, 0.2);
    std::string text = render({});
    std::string labels = "listener=\"api\",method=\"GET\",route=\"/unit/histogram\",code=\"200\"";
    const std::string name = "bitmill_http_request_duration_seconds";
    EXPECT_EQ(valueOf(text, name + "_bucket{" + labels + ",le=\"0.001\"}"), 0);
    EXPECT_EQ(valueOf(text, name + "_bucket{" + labels + ",le=\"0.005\"}"), 1);
    EXPECT_EQ(valueOf(text, name + "_bucket{" + labels + ",le=\"0.25\"}"), 2);
    EXPECT_EQ(valueOf(text, name + "_bucket{" + labels + ",le=\"+Inf\"}"), 2);
    EXPECT_EQ(valueOf(text, name + "_count{" + labels + "}"), 2);
    EXPECT_NEAR(valueOf(text, name + "_sum{" + labels + "}"), 0.203, 1e-9);
    EXPECT_NE(text.find("# TYPE " + name + " histogram\n"), std::string::npos);
}

TEST(MetricsTest, FailedAttemptsAreCountedAsFailures) {
    recordTaskAttempt("unit-kind", "failed", 1.5);
    recordTaskAttempt("unit-kind", "retried", 0.5);
    recordTaskAttempt("unit-kind", "completed", 2);
    std::string text = render({});
    EXPECT_EQ(valueOf(text, "bitmill_task_failures_total{kind=\"unit-kind\",outcome=\"failed\"}"),
              1);
    EXPECT_EQ(valueOf(text, "bitmill_task_failures_total{kind=\"unit-kind\",outcome=\"retried\"}"),
              1);
    EXPECT_EQ(text.find("bitmill_task_failures_total{kind=\"unit-kind\",outcome=\"completed\"}"),
              std::string::npos);
    EXPECT_EQ(valueOf(text, "bitmill_task_attempt_duration_seconds_count{kind=\"unit-kind\","
                            "outcome=\"completed\"}"),
              1);
}

TEST(MetricsTest, GaugesAreGroupedAndEscaped) {
    std::string text = render({
        {"bitmill_tasks", "Unfinished tasks.", {{"kind", "video"}, {"status", "pending"}}, 3},
        {"bitmill_tasks", "Unfinished tasks.", {{"kind", "a\"b\\c"}, {"status", "waiting"}}, 1},
    });
    size_t first = text.find("# TYPE bitmill_tasks gauge");
    ASSERT_NE(first, std::string::npos);
    EXPECT_EQ(text.find("# TYPE bitmill_tasks gauge", first + 1), std::string::npos);
    EXPECT_EQ(valueOf(text, "bitmill_tasks{kind=\"video\",status=\"pending\"}"), 3);
    EXPECT_EQ(valueOf(text, "bitmill_tasks{kind=\"a\\\"b\\\\c\",status=\"waiting\"}"), 1);
}

TEST(MetricsTest, EscapeLabelValueHandlesNewline) {
    EXPECT_EQ(escapeLabelValue("one\ntwo"), "one\\ntwo");
    EXPECT_EQ(escapeLabelValue("plain"), "plain");
}

}  // namespace
}  // namespace bitmill::metrics
