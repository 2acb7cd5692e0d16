#include "soak/chaos.h"

#include <algorithm>
#include <cstdio>
#include <map>

namespace soak {

namespace {

using std::chrono::milliseconds;

// A small deterministic generator (splitmix64): the same plan from the same seed with any standard
// library (std::uniform_*_distribution are implementation-defined).
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : s_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (s_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [lo, hi].
  std::int64_t uniform(std::int64_t lo, std::int64_t hi) {
    if (hi <= lo) return lo;
    return lo + static_cast<std::int64_t>(next() % static_cast<std::uint64_t>(hi - lo + 1));
  }
  bool chance(double p) { return static_cast<double>(next() >> 11) * 0x1.0p-53 < p; }

 private:
  std::uint64_t s_;
};

struct Toxic {
  std::string proxy, name, type, stream;
};

// Attributes in ranges that cover "harmless", "around the deadlines" and "far beyond them".
std::string attributes_for(const std::string& type, Rng& rng) {
  char buf[160];
  if (type == "latency") {
    const double r = static_cast<double>(rng.uniform(0, 99));
    const std::int64_t latency = r < 40   ? rng.uniform(1, 80)
                                 : r < 70 ? rng.uniform(80, 700)
                                          : rng.uniform(700, 3000);
    const std::int64_t jitter = rng.chance(0.5) ? rng.uniform(0, latency / 2) : 0;
    std::snprintf(buf, sizeof buf, R"({"latency":%lld,"jitter":%lld})", static_cast<long long>(latency),
                  static_cast<long long>(jitter));
  } else if (type == "bandwidth") {
    const double r = static_cast<double>(rng.uniform(0, 99));
    const std::int64_t rate = r < 40   ? rng.uniform(1, 5)
                              : r < 70 ? rng.uniform(5, 100)
                                       : rng.uniform(100, 5000);
    std::snprintf(buf, sizeof buf, R"({"rate":%lld})", static_cast<long long>(rate));
  } else if (type == "slow_close") {
    std::snprintf(buf, sizeof buf, R"({"delay":%lld})", static_cast<long long>(rng.uniform(0, 3000)));
  } else if (type == "timeout") {
    const std::int64_t t = rng.chance(0.3) ? 0 : rng.uniform(1, 3000);
    std::snprintf(buf, sizeof buf, R"({"timeout":%lld})", static_cast<long long>(t));
  } else if (type == "reset_peer") {
    const std::int64_t t = rng.chance(0.3) ? 0 : rng.uniform(1, 2000);
    std::snprintf(buf, sizeof buf, R"({"timeout":%lld})", static_cast<long long>(t));
  } else if (type == "slicer") {
    const std::int64_t average = rng.uniform(1, 64);
    const std::int64_t variation = rng.uniform(0, average / 2);
    const std::int64_t delay_us = rng.uniform(0, 2000);
    std::snprintf(buf, sizeof buf, R"({"average_size":%lld,"size_variation":%lld,"delay":%lld})",
                  static_cast<long long>(average), static_cast<long long>(variation),
                  static_cast<long long>(delay_us));
  } else {  // limit_data
    const double r = static_cast<double>(rng.uniform(0, 99));
    const std::int64_t bytes = r < 30   ? rng.uniform(0, 100)
                               : r < 70 ? rng.uniform(100, 2000)
                                        : rng.uniform(2000, 100000);
    std::snprintf(buf, sizeof buf, R"({"bytes":%lld})", static_cast<long long>(bytes));
  }
  return buf;
}

std::string toxicity_for(Rng& rng) {
  if (rng.chance(0.75)) return "1";
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.2f", static_cast<double>(rng.uniform(20, 95)) / 100.0);
  return buf;
}

Action make(Action::Kind kind, milliseconds at, std::string proxy) {
  Action a;
  a.kind = kind;
  a.at = at;
  a.proxy = std::move(proxy);
  return a;
}

Action set_enabled(milliseconds at, const std::string& proxy, bool enabled) {
  Action a = make(enabled ? Action::enable : Action::disable, at, proxy);
  a.method = "POST";
  a.path = "/proxies/" + proxy;
  a.body = enabled ? R"({"enabled":true})" : R"({"enabled":false})";
  a.expect = 200;
  return a;
}

Action remove_toxic(milliseconds at, const Toxic& t) {
  Action a = make(Action::remove_toxic, at, t.proxy);
  a.toxic = t.name;
  a.method = "DELETE";
  a.path = "/proxies/" + t.proxy + "/toxics/" + t.name;
  a.expect = 204;
  return a;
}

// One process fault and its repair, from `t` (HA stack).
std::vector<Action> process_episode(milliseconds t, const PlanOptions& o, Rng& rng) {
  std::vector<Action> e;
  const auto fault = [&](Action::Kind kind, milliseconds at, std::string target) {
    Action a = make(kind, at, "");
    a.target = std::move(target);
    a.pick = static_cast<unsigned>(rng.uniform(0, 1000));
    e.push_back(a);
  };
  const std::string redis = rng.chance(0.7) ? "redis:master" : "redis:replica";
  const std::string instance = "user-service-" + std::to_string(rng.uniform(1, std::max(1, o.instances)));
  // Each step draws its random numbers in sequence (the order of evaluation of operands is not fixed).
  const auto after = [&](std::int64_t lo, std::int64_t hi) {
    return e.back().at + milliseconds(rng.uniform(lo, hi));
  };
  switch (rng.uniform(0, 4)) {
    case 0:  // a Redis node crashes and is restarted (a master comes back empty, then Sentinel demotes it)
      fault(Action::kill, t, redis);
      fault(Action::restart, after(2'000, 5'000), "");
      break;
    case 1:  // a Redis node freezes (longer than down-after-milliseconds: Sentinel fails it over)
      fault(Action::stop, t, redis);
      fault(Action::resume, after(500, 4'000), "");
      break;
    case 2:  // the MariaDB primary crashes, the replica is promoted, the old primary returns as replica
      fault(Action::kill, t, "mariadb:primary");
      fault(Action::failover, after(500, 3'000), "");
      fault(Action::restart, after(2'000, 6'000), "");
      break;
    case 3:  // an instance crashes and is restarted
      fault(Action::kill, t, instance);
      fault(Action::restart, after(1'000, 5'000), "");
      break;
    default:  // an instance freezes
      fault(Action::stop, t, instance);
      fault(Action::resume, after(500, 4'000), "");
      break;
  }
  return e;
}

}  // namespace

std::string Action::describe() const {
  std::string s;
  switch (kind) {
    case disable:
      s = "disable " + proxy;
      break;
    case enable:
      s = "enable " + proxy;
      break;
    case add_toxic:
      s = "add " + toxic + " to " + proxy + " " + body;
      break;
    case update_toxic:
      s = "update " + toxic + " on " + proxy + " " + body;
      break;
    case remove_toxic:
      s = "remove " + toxic + " from " + proxy;
      break;
    case reset:
      s = "reset (every proxy enabled, every toxic removed)";
      break;
    case kill:
      s = "SIGKILL " + target;
      break;
    case stop:
      s = "SIGSTOP " + target;
      break;
    case resume:
      s = "SIGCONT (the stopped process)";
      break;
    case restart:
      s = "./dev restart (the killed process)";
      break;
    case failover:
      s = "./dev failover mysql";
      break;
  }
  return s;
}

std::vector<Action> make_plan(std::uint64_t seed, const PlanOptions& o) {
  Rng rng(seed ^ 0x736f616b5f706c61ULL);  // "soak_pla": this plan's stream, apart from other uses of the seed
  std::vector<Action> plan;
  std::uint64_t counter = 0;
  milliseconds t = o.start;
  const bool has_calm = o.calm_at.count() >= 0;
  const milliseconds calm_lo = o.calm_at - o.calm_before, calm_hi = o.calm_at + o.calm_after;

  while (t < o.duration) {
    milliseconds len{rng.uniform(o.episode_min.count(), o.episode_max.count())};
    const milliseconds gap{rng.uniform(o.gap_min.count(), o.gap_max.count())};
    if (has_calm && t < calm_hi && t + len + milliseconds(1000) > calm_lo) {  // keep the calm window calm
      t = calm_hi;
      continue;
    }
    if (o.process_faults && rng.chance(0.35)) {
      std::vector<Action> episode = process_episode(t, o, rng);
      const milliseconds end = episode.back().at;
      if (end + milliseconds(2'000) > o.duration) break;  // the end of the run is for recovery
      if (has_calm && t < calm_hi && end + milliseconds(1000) > calm_lo) {
        t = calm_hi;
        continue;
      }
      plan.insert(plan.end(), episode.begin(), episode.end());
      t = end + milliseconds(1'000) + gap;
      continue;
    }
    if (t + len > o.duration) len = o.duration - t;
    if (len < o.episode_min / 2) break;
    const milliseconds end = t + len;

    const int faults = rng.chance(0.5) ? 1 : rng.chance(0.7) ? 2 : 3;
    std::vector<Toxic> toxics;
    std::vector<std::string> disabled;
    std::vector<Action> episode;
    for (int f = 0; f < faults; ++f) {
      const std::string proxy = o.proxies[static_cast<std::size_t>(
          rng.uniform(0, static_cast<std::int64_t>(o.proxies.size()) - 1))];
      const milliseconds at = t + milliseconds(rng.uniform(0, std::min<std::int64_t>(800, len.count() / 3)));
      const bool outage = rng.chance(0.18);
      if (outage && std::find(disabled.begin(), disabled.end(), proxy) == disabled.end()) {
        disabled.push_back(proxy);
        episode.push_back(set_enabled(at, proxy, false));
        if (rng.chance(0.25)) {  // it comes back by itself, before the episode ends
          const milliseconds back =
              at + milliseconds(rng.uniform(100, std::max<std::int64_t>(100, (end - at).count())));
          if (back < end) {
            episode.push_back(set_enabled(back, proxy, true));
            disabled.pop_back();
          }
        }
        continue;
      }
      Toxic tx;
      tx.proxy = proxy;
      tx.type = kToxicTypes[rng.uniform(0, 6)];
      tx.stream = rng.chance(0.5) ? "upstream" : "downstream";
      tx.name = "soak_" + tx.type + "_" + tx.stream + "_" + std::to_string(++counter);
      Action a = make(Action::add_toxic, at, proxy);
      a.toxic = tx.name;
      a.type = tx.type;
      a.stream = tx.stream;
      a.method = "POST";
      a.path = "/proxies/" + proxy + "/toxics";
      a.body = R"({"name":")" + tx.name + R"(","type":")" + tx.type + R"(","stream":")" + tx.stream +
               R"(","toxicity":)" + toxicity_for(rng) + R"(,"attributes":)" + attributes_for(tx.type, rng) +
               "}";
      a.expect = 200;
      episode.push_back(a);

      // While traffic flows: new attributes (and sometimes a new toxicity), or an early removal.
      const double r = static_cast<double>(rng.uniform(0, 99));
      if (r < 30 && end - at > milliseconds(200)) {
        Action u =
            make(Action::update_toxic, at + milliseconds(rng.uniform(100, (end - at).count() - 50)), proxy);
        u.toxic = tx.name;
        u.method = "POST";
        u.path = "/proxies/" + proxy + "/toxics/" + tx.name;
        u.body = R"({"attributes":)" + attributes_for(tx.type, rng) +
                 (rng.chance(0.3) ? R"(,"toxicity":)" + toxicity_for(rng) : std::string()) + "}";
        u.expect = 200;
        episode.push_back(u);
      } else if (r < 45 && end - at > milliseconds(200)) {
        episode.push_back(remove_toxic(at + milliseconds(rng.uniform(100, (end - at).count() - 50)), tx));
        continue;
      }
      toxics.push_back(tx);
    }
    // The end of the episode: everything it applied is cleared.
    if (rng.chance(0.2)) {
      Action a = make(Action::reset, end, "");
      a.method = "POST";
      a.path = "/reset";
      a.expect = 204;
      episode.push_back(a);
    } else {
      milliseconds at = end;
      for (const auto& tx : toxics) {
        episode.push_back(remove_toxic(at, tx));
        at += milliseconds(rng.uniform(0, 150));
      }
      for (const auto& p : disabled) {
        episode.push_back(set_enabled(at, p, true));
        at += milliseconds(rng.uniform(0, 150));
      }
    }
    std::stable_sort(episode.begin(), episode.end(),
                     [](const Action& a, const Action& b) { return a.at < b.at; });
    plan.insert(plan.end(), episode.begin(), episode.end());
    t = std::max(end + milliseconds(200), episode.back().at + milliseconds(50)) + gap;
  }
  return plan;
}

}  // namespace soak
