#include "soak/chaos.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

namespace soak {
namespace {

using std::chrono::milliseconds;

// Replays a plan against a model of faultproxy's state and checks that every call would get the
// answer the plan expects, that the calm window is calm and that the plan ends clean.
struct Model {
  std::map<std::string, std::set<std::string>> toxics;  // proxy -> toxic names
  std::set<std::string> disabled;
  std::string killed, stopped;  // the process fault under way (HA), at most one
  bool calm() const {
    for (const auto& [p, t] : toxics)
      if (!t.empty()) return false;
    return disabled.empty() && killed.empty() && stopped.empty();
  }
};

void apply(Model& m, const Action& a) {
  switch (a.kind) {
    case Action::add_toxic:
      ASSERT_TRUE(m.toxics[a.proxy].insert(a.toxic).second) << "duplicate toxic " << a.toxic;
      break;
    case Action::update_toxic:
      ASSERT_TRUE(m.toxics[a.proxy].contains(a.toxic)) << "update of a missing toxic " << a.toxic;
      break;
    case Action::remove_toxic:
      ASSERT_EQ(m.toxics[a.proxy].erase(a.toxic), 1u) << "removal of a missing toxic " << a.toxic;
      break;
    case Action::disable:
      m.disabled.insert(a.proxy);
      break;
    case Action::enable:
      m.disabled.erase(a.proxy);
      break;
    case Action::reset:
      m.toxics.clear();
      m.disabled.clear();
      break;
    case Action::kill:
    case Action::stop:
      ASSERT_TRUE(m.killed.empty() && m.stopped.empty()) << "two process faults at once";
      ASSERT_FALSE(a.target.empty());
      (a.kind == Action::kill ? m.killed : m.stopped) = a.target;
      break;
    case Action::resume:
      ASSERT_FALSE(m.stopped.empty()) << "SIGCONT without a stopped process";
      m.stopped.clear();
      break;
    case Action::failover:
      ASSERT_EQ(m.killed, "mariadb:primary") << "failover without a lost primary";
      break;
    case Action::restart:
      ASSERT_FALSE(m.killed.empty()) << "restart without a killed process";
      m.killed.clear();
      break;
  }
}

PlanOptions options(milliseconds duration, milliseconds calm_at) {
  PlanOptions o;
  o.duration = duration;
  o.calm_at = calm_at;
  return o;
}

TEST(Plan, SameSeedSamePlan) {
  const auto a = make_plan(7, options(milliseconds(60'000), milliseconds(15'000)));
  const auto b = make_plan(7, options(milliseconds(60'000), milliseconds(15'000)));
  const auto c = make_plan(8, options(milliseconds(60'000), milliseconds(15'000)));
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].at, b[i].at);
    EXPECT_EQ(a[i].describe(), b[i].describe());
  }
  bool differs = a.size() != c.size();
  for (std::size_t i = 0; !differs && i < a.size(); ++i)
    differs = a[i].describe() != c[i].describe();
  EXPECT_TRUE(differs);
}

TEST(Plan, ConsistentCalmWhereAskedAndCleanAtTheEnd) {
  for (std::uint64_t seed = 1; seed <= 200; ++seed) {
    const milliseconds duration(60'000), calm_at(15'000);
    const PlanOptions o = options(duration, calm_at);
    const auto plan = make_plan(seed, o);
    ASSERT_FALSE(plan.empty());
    Model m;
    milliseconds last{0};
    for (const auto& a : plan) {
      ASSERT_GE(a.at, last) << "seed " << seed << ": not in time order";
      last = a.at;
      if (a.at >= calm_at - o.calm_before && a.at < calm_at + o.calm_after) {
        ADD_FAILURE() << "seed " << seed << ": " << a.describe() << " at " << a.at.count()
                      << " ms in the calm window";
      }
      apply(m, a);
      if (HasFatalFailure()) return;
      if (a.at > calm_at - o.calm_before && a.at < calm_at + o.calm_after) {
        EXPECT_TRUE(m.calm());
      }
    }
    EXPECT_TRUE(m.calm()) << "seed " << seed << ": faults left at the end";
    EXPECT_LT(plan.back().at, duration + milliseconds(1000)) << "seed " << seed;
    EXPECT_GE(plan.front().at, o.start) << "seed " << seed;
  }
}

TEST(Plan, CoversEveryProxyToxicStreamAndKindOfChange) {
  std::set<std::string> seen;
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    for (const auto& a : make_plan(seed, options(milliseconds(300'000), milliseconds(75'000)))) {
      if (a.kind == Action::add_toxic) {
        seen.insert("proxy:" + a.proxy);
        seen.insert("type:" + a.type);
        seen.insert("stream:" + a.stream);
        seen.insert("type+stream:" + a.type + "/" + a.stream);
        if (a.body.find(R"("toxicity":1,)") == std::string::npos) seen.insert("toxicity<1");
      }
      if (a.kind == Action::disable) seen.insert("outage:" + a.proxy);
      seen.insert("kind:" + std::to_string(static_cast<int>(a.kind)));
    }
  }
  for (const char* p : kProxies) {
    EXPECT_TRUE(seen.contains(std::string("proxy:") + p)) << p;
    EXPECT_TRUE(seen.contains(std::string("outage:") + p)) << p;
  }
  for (const char* t : kToxicTypes) {
    EXPECT_TRUE(seen.contains(std::string("type+stream:") + t + "/upstream")) << t;
    EXPECT_TRUE(seen.contains(std::string("type+stream:") + t + "/downstream")) << t;
  }
  EXPECT_TRUE(seen.contains("toxicity<1"));
  for (int k = Action::disable; k <= Action::reset; ++k)
    EXPECT_TRUE(seen.contains("kind:" + std::to_string(k))) << k;
}

TEST(Plan, CallsLookLikeToxiproxyClientCalls) {
  for (const auto& a : make_plan(3, options(milliseconds(120'000), milliseconds(-1)))) {
    switch (a.kind) {
      case Action::add_toxic:
        EXPECT_EQ(a.method, "POST");
        EXPECT_EQ(a.path, "/proxies/" + a.proxy + "/toxics");
        EXPECT_EQ(a.expect, 200u);
        EXPECT_NE(a.body.find(R"("attributes":{)"), std::string::npos) << a.body;
        break;
      case Action::update_toxic:
        EXPECT_EQ(a.path, "/proxies/" + a.proxy + "/toxics/" + a.toxic);
        EXPECT_EQ(a.expect, 200u);
        break;
      case Action::remove_toxic:
        EXPECT_EQ(a.method, "DELETE");
        EXPECT_EQ(a.expect, 204u);
        break;
      case Action::disable:
      case Action::enable:
        EXPECT_EQ(a.path, "/proxies/" + a.proxy);
        EXPECT_EQ(a.expect, 200u);
        break;
      case Action::reset:
        EXPECT_EQ(a.path, "/reset");
        EXPECT_EQ(a.expect, 204u);
        break;
      default:
        ADD_FAILURE() << "a process fault in a plan without them: " << a.describe();
        break;
    }
  }
}

TEST(Plan, HaPlansAddOneProcessFaultAtATimeAndEndWhole) {
  std::set<std::string> seen;
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    PlanOptions o = options(milliseconds(120'000), milliseconds(30'000));
    o.proxies.assign(std::begin(kHaProxies), std::end(kHaProxies));
    o.process_faults = true;
    const auto plan = make_plan(seed, o);
    EXPECT_EQ(plan.size(), make_plan(seed, o).size());
    Model m;
    bool calm_checked = false;
    for (const auto& a : plan) {
      if (!calm_checked && a.at >= o.calm_at - o.calm_before) {
        EXPECT_TRUE(m.calm()) << "seed " << seed;
        calm_checked = true;
      }
      if (is_process_fault(a.kind)) {
        EXPECT_LE(a.at + milliseconds(2'000), o.duration) << "seed " << seed;
      }
      apply(m, a);
      if (a.kind == Action::add_toxic || a.kind == Action::disable) {
        EXPECT_NE(std::find(o.proxies.begin(), o.proxies.end(), a.proxy), o.proxies.end()) << a.proxy;
        seen.insert("proxy:" + a.proxy);
      }
      if (a.kind == Action::kill || a.kind == Action::stop) seen.insert(a.describe());
      seen.insert("kind:" + std::to_string(static_cast<int>(a.kind)));
    }
    EXPECT_TRUE(m.calm()) << "seed " << seed << ": the plan does not end whole";
  }
  for (const char* p : kHaProxies)
    EXPECT_TRUE(seen.contains(std::string("proxy:") + p)) << p;
  for (const char* f : {"SIGKILL redis:master", "SIGSTOP redis:master", "SIGKILL redis:replica",
                        "SIGKILL mariadb:primary", "SIGKILL user-service-1", "SIGSTOP user-service-3"})
    EXPECT_TRUE(seen.contains(f)) << f;
  for (int k = Action::disable; k <= Action::failover; ++k)
    EXPECT_TRUE(seen.contains("kind:" + std::to_string(k))) << k;
}

TEST(Plan, WithoutProcessFaultsThePlanIsTheSmallStacks) {
  PlanOptions o = options(milliseconds(120'000), milliseconds(30'000));
  for (const auto& a : make_plan(7, o))
    EXPECT_FALSE(is_process_fault(a.kind)) << a.describe();
}

}  // namespace
}  // namespace soak
