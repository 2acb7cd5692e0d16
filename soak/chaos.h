// The chaos plan: a timed list of faults and recoveries for faultproxy's proxies, derived only from
// a seed and the run's length, so a failing run is replayed by running again with the same seed.
//
// The run is a sequence of episodes separated by calm gaps. An episode applies one to three faults
// (a proxy disabled, or a toxic of any of faultproxy's seven types on either stream with random
// attributes in sensible ranges, sometimes with toxicity below 1), may change a toxic's attributes
// or remove one while traffic flows, and ends by clearing what it applied (removing its toxics and
// enabling its proxies one by one, or with one POST /reset). A calm window is kept around
// `calm_at` (where the soak measures its memory baseline), and the plan is clear at `duration`.
//
// For the HA stack (`process_faults`, proxies named after its nodes), about a third of the episodes
// are process faults instead, one at a time: SIGKILL of a Redis node (the master mostly) and its
// restart a few seconds later, SIGSTOP/SIGCONT of a Redis node, SIGKILL of the MariaDB primary then
// `./dev failover mysql` and later the old primary's restart (as a replica), SIGKILL + restart or
// SIGSTOP/SIGCONT of a user-service instance. Roles are named in the plan ("redis:master") and
// resolved when the fault is applied; the actions after the first act on the node it resolved.
//
// Usage:
//   PlanOptions o;  o.duration = 300s;  o.calm_at = 75s;
//   std::vector<Action> plan = make_plan(seed, o);
//   for (const Action& a : plan) { wait until a.at; send(a.method, a.path, a.body); }
#pragma once

#include <chrono>
#include <cstdint>
#include <iterator>
#include <string>
#include <vector>

namespace soak {

inline constexpr const char* kProxies[] = {"mysql", "redis-master", "redis-replica"};
// The HA stack's proxies (stack/ha/proxies.json).
inline constexpr const char* kHaProxies[] = {"mariadb-1", "mariadb-2", "redis-1", "redis-2", "redis-3"};
inline constexpr const char* kToxicTypes[] = {"latency",    "bandwidth", "slow_close", "timeout",
                                              "reset_peer", "slicer",    "limit_data"};

struct Action {
  enum Kind {
    disable,
    enable,
    add_toxic,
    update_toxic,
    remove_toxic,
    reset,
    // Process faults (HA): no API call; `target` names the process.
    kill,      // SIGKILL
    stop,      // SIGSTOP
    resume,    // SIGCONT to the process the episode stopped
    restart,   // ./dev restart of the process the episode killed
    failover,  // ./dev failover mysql
  } kind = reset;
  std::chrono::milliseconds at{0};  // from the start of the run
  std::string proxy;                // empty for reset
  std::string toxic;                // toxic name (add, update, remove)
  std::string type;                 // toxic type (add)
  std::string stream;               // upstream or downstream (add)
  // kill, stop: "redis:master", "redis:replica", "mariadb:primary" (resolved when applied) or a
  // component's name ("user-service-2"); resume, restart: empty (the episode's process).
  std::string target;
  unsigned pick = 0;  // which one when several match a role (modulo their number)
  // The HTTP call on faultproxy's Toxiproxy API and the status it must answer.
  std::string method;
  std::string path;
  std::string body;
  unsigned expect = 200;
  std::string describe() const;
};

struct PlanOptions {
  std::chrono::milliseconds duration{300'000};
  std::chrono::milliseconds start{2'000};  // healthy at first, so there is data to protect
  std::chrono::milliseconds calm_at{-1};   // a calm window around this point (none if negative)
  std::chrono::milliseconds calm_before{1'500}, calm_after{2'500};
  std::chrono::milliseconds episode_min{1'500}, episode_max{6'000};
  std::chrono::milliseconds gap_min{500}, gap_max{3'000};
  // The proxies toxics and outages go to (kProxies by default; kHaProxies for the HA stack).
  std::vector<std::string> proxies{std::begin(kProxies), std::end(kProxies)};
  bool process_faults = false;  // HA: process fault episodes too
  int instances = 3;            // user-service-1..N
};

inline bool is_process_fault(Action::Kind k) {
  return k >= Action::kill;
}

std::vector<Action> make_plan(std::uint64_t seed, const PlanOptions& options);

}  // namespace soak
