#include "common/metrics.h"

#include <gtest/gtest.h>

namespace common::metrics {
namespace {

TEST(Metrics, RendersCountersGaugesAndLabels) {
  Registry r;
  r.counter("requests_total", "Requests.", {{"route", "/users/{id}"}, {"status", "200"}}).inc(3);
  r.gauge("pool_size", "Pool.").set(4);
  const std::string text = r.render();
  EXPECT_NE(text.find("# HELP requests_total Requests.\n# TYPE requests_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("requests_total{route=\"/users/{id}\",status=\"200\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE pool_size gauge\npool_size 4\n"), std::string::npos);
}

TEST(Metrics, SameSeriesIsTheSameObject) {
  Registry r;
  auto& a = r.counter("c_total", "C.", {{"k", "v"}});
  auto& b = r.counter("c_total", "C.", {{"k", "v"}});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &r.counter("c_total", "C.", {{"k", "w"}}));
  EXPECT_THROW(r.gauge("c_total", "C."), std::logic_error);
}

TEST(Metrics, HistogramBucketsAreCumulative) {
  Registry r;
  auto& h = r.histogram("lat_seconds", "Latency.", {0.1, 1.0}, {{"op", "get"}});
  h.observe(0.05);
  h.observe(0.5);
  h.observe(0.5);
  h.observe(5);
  const std::string text = r.render();
  EXPECT_NE(text.find("lat_seconds_bucket{op=\"get\",le=\"0.1\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_seconds_bucket{op=\"get\",le=\"1\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_seconds_bucket{op=\"get\",le=\"+Inf\"} 4\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_seconds_count{op=\"get\"} 4\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_seconds_sum{op=\"get\"} 6.05\n"), std::string::npos) << text;
}

TEST(Metrics, CollectorsRunAtRenderAndEscapeLabels) {
  Registry r;
  r.add_collector([](Writer& w) {
    w.gauge("breaker_state", "Breaker.", {{"dep", "my\"sql\n"}}, 2);
    w.gauge("breaker_state", "Breaker.", {{"dep", "redis"}}, 0);
  });
  const std::string text = r.render();
  EXPECT_NE(text.find("breaker_state{dep=\"my\\\"sql\\n\"} 2\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("# TYPE breaker_state"), text.rfind("# TYPE breaker_state")) << "one header per family";
}

TEST(Metrics, FormatsValues) {
  EXPECT_EQ(format_value(1000), "1000");
  EXPECT_EQ(format_value(0.25), "0.25");
  EXPECT_EQ(format_value(1.0 / 0.0), "+Inf");
}

}  // namespace
}  // namespace common::metrics
