#include "soak/timeline.h"

#include <gtest/gtest.h>

namespace soak {
namespace {

Record answer(Op op, int status, std::int64_t sent_ms, std::int64_t latency_ms,
              Source source = Source::none) {
  Record r;
  r.op = op;
  r.status = status;
  r.sent_us = sent_ms * 1000;
  r.done_us = (sent_ms + latency_ms) * 1000;
  r.source = source;
  return r;
}

TEST(PerSecond, CountsEachAnswerInTheSecondItArrived) {
  std::vector<Record> rs{answer(Op::get, 200, 100, 5, Source::cache),
                         answer(Op::get, 200, 990, 20, Source::origin), answer(Op::put, 503, 1500, 10),
                         answer(Op::get, kTimeout, 1000, 5000)};
  Record stale = answer(Op::get, 200, 200, 1, Source::cache);
  stale.stale = true;
  rs.push_back(stale);
  const auto s = per_second(rs, 7000);
  ASSERT_EQ(s.size(), 7u);
  EXPECT_EQ(s[0].by_status.at("200"), 2u);
  EXPECT_EQ(s[0].by_source.at("cache"), 1u);
  EXPECT_EQ(s[0].by_source.at("cache (stale)"), 1u);
  EXPECT_EQ(s[1].by_status.at("200"), 1u);  // sent in second 0, answered in second 1
  EXPECT_EQ(s[1].by_source.at("origin"), 1u);
  EXPECT_EQ(s[1].by_status.at("503"), 1u);
  EXPECT_FALSE(s[1].by_source.contains("none"));  // a 503 has no data source to count
  EXPECT_EQ(s[6].by_status.at("timeout"), 1u);
  EXPECT_TRUE(s[3].by_status.empty());
  EXPECT_EQ(s[3].t, 3);
  EXPECT_EQ(s[3].p99_ms, 0.0);
}

TEST(PerSecond, LatencyPercentilesByNearestRank) {
  std::vector<Record> rs;
  for (int k = 1; k <= 100; ++k)
    rs.push_back(answer(Op::get, 404, 0, k));
  const auto s = per_second(rs, 1000);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_DOUBLE_EQ(s[0].p50_ms, 50.0);
  EXPECT_DOUBLE_EQ(s[0].p99_ms, 99.0);
}

TEST(PerSecond, AnswersAfterTheEndGoToTheLastSecond) {
  const auto s = per_second({answer(Op::del, 204, 2500, 900)}, 2000);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[1].by_status.at("204"), 1u);
}

AppliedAction call(Action::Kind kind, std::int64_t at_ms, std::string proxy = "", std::string toxic = "",
                   bool ok = true) {
  AppliedAction c;
  c.action.kind = kind;
  c.action.proxy = std::move(proxy);
  c.action.toxic = std::move(toxic);
  c.action.type = "latency";
  c.action.stream = "downstream";
  c.action.body = "{\"latency\":100}";
  c.at_ms = at_ms;
  c.ok = ok;
  return c;
}

TEST(FaultWindows, PairsEachFaultWithWhatClearedIt) {
  const auto w = fault_windows(
      {call(Action::add_toxic, 1000, "mysql", "t1"), call(Action::disable, 1500, "redis-master"),
       call(Action::update_toxic, 1800, "mysql", "t1"), call(Action::remove_toxic, 2000, "mysql", "t1"),
       call(Action::enable, 2500, "redis-master")},
      9000);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].target, "mysql");
  EXPECT_EQ(w[0].what, "latency downstream");
  EXPECT_EQ(w[0].from_ms, 1000);
  EXPECT_EQ(w[0].to_ms, 2000);
  EXPECT_NE(w[0].detail.find("at 1800 ms"), std::string::npos);
  EXPECT_EQ(w[1].target, "redis-master");
  EXPECT_EQ(w[1].what, "outage (proxy disabled)");
  EXPECT_EQ(w[1].to_ms, 2500);
}

TEST(FaultWindows, ResetClearsProxyFaultsNotProcessFaults) {
  AppliedAction kill = call(Action::kill, 500);
  kill.action.target = "redis:master";
  kill.resolved = "redis-2";
  const auto w = fault_windows(
      {kill, call(Action::add_toxic, 1000, "redis-1", "a"), call(Action::disable, 1100, "mariadb-1"),
       call(Action::reset, 3000), call(Action::restart, 4000)},
      9000);
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[0].target, "redis-2");
  EXPECT_EQ(w[0].what, "SIGKILL");
  EXPECT_EQ(w[0].to_ms, 4000);
  EXPECT_EQ(w[1].to_ms, 3000);
  EXPECT_EQ(w[2].to_ms, 3000);
}

TEST(FaultWindows, FailedCallsApplyNothingAndOpenWindowsEndAtTheEnd) {
  const auto w = fault_windows({call(Action::add_toxic, 1000, "mysql", "bad", false),
                                call(Action::disable, 2000, "mysql"), call(Action::failover, 2500)},
                               6000);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].what, "outage (proxy disabled)");
  EXPECT_EQ(w[0].to_ms, 6000);
  EXPECT_EQ(w[1].from_ms, 2500);
  EXPECT_EQ(w[1].to_ms, 2500);
}

}  // namespace
}  // namespace soak
