// One dependency endpoint as the service uses it (mysql, mysql-replica, redis-master,
// redis-replica): its circuit breaker and health (dependency.h), its per-call budget, its probe and its
// metrics, together. Which server stands behind an endpoint may change (a Sentinel failover, a MariaDB
// promotion); the endpoint is the role, and its breaker follows whoever plays it.
//
// Every call goes through call(): refused in microseconds while the breaker is open, otherwise made with
// the endpoint's budget cut from the request's deadline, and its outcome accounted (breaker, health,
// `user_service_dependency_calls_total{dependency,outcome}`, the duration histogram, a debug log line).
// While the breaker is open after fast failures (dependency.h: half-open trials), one call at a time is
// the trial instead: it first asks the client to connect now (set_reconnect: an attempt the dependency
// refuses in microseconds while it is down), then calls. Others keep failing fast meanwhile.
// `user_service_breaker_trials_total{dependency}` counts trials.
//
// Usage (on the service's event loop):
//   Endpoint master("redis-master", config.redis.call_deadline, 3, registry);
//   master.set_probe([&](Deadline d) { return cache.ping(CacheNode::master, d); });
//   master.set_reconnect([&](Deadline d) { return cache.connect_now(CacheNode::master, d); });
//   master.set_on_recovered([&] { wake_repairer(); });  // a call (not the probe) closed the breaker
//   auto got = co_await master.call<std::optional<CacheEntry>>(
//       request, [&](Deadline d) { return cache.get(CacheNode::master, id, d); });
//   co_await master.probe();           // the background prober's one round
#pragma once

#include <array>
#include <boost/asio/awaitable.hpp>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/metrics.h"
#include "user_service/dependency.h"
#include "user_service/ports.h"

namespace user_service {

class Endpoint {
 public:
  using Probe = std::function<boost::asio::awaitable<Outcome<Done>>(Deadline)>;
  // Connects now if there is no connection and the dependency refuses at once (true: connected).
  using Reconnect = std::function<boost::asio::awaitable<bool>(Deadline)>;

  Endpoint(std::string name, Clock::duration budget, std::uint32_t breaker_failures,
           common::metrics::Registry& registry);
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;

  const std::string& name() const { return health_.name(); }
  // Whether a user call may be made now (initialised and breaker closed).
  bool allow() const { return health_.allow(); }
  const Dependency& health() const { return health_; }
  Dependency& health() { return health_; }
  Clock::duration budget() const { return budget_; }
  // New settings (SIGHUP), as the constructor's: from the next call on.
  void reconfigure(Clock::duration budget, std::uint32_t breaker_failures) {
    budget_ = budget;
    health_.reconfigure(breaker_failures, budget / 2);
  }
  // A call's deadline: the endpoint's budget (or `budget`, when given) from `now`, at most the
  // request's.
  Deadline deadline(Deadline request, Clock::duration budget = {},
                    Clock::time_point now = Clock::now()) const {
    return Deadline(now + (budget > Clock::duration::zero() ? budget : budget_)).at_most(request);
  }

  // One call: `fn(deadline)` returns an awaitable of Outcome<T>. While the breaker is open the call is
  // not made and the result is Failure::unavailable ("circuit breaker open"), counted short-circuited.
  // While the breaker is open and a trial is allowed, this call is the trial (see above). `budget`
  // replaces the endpoint's own for this call (a statement that reads a whole page). `fn` is kept
  // (by value) in this coroutine's frame: it may be called after the caller's scope has ended.
  template <typename T, typename Fn>
  boost::asio::awaitable<Outcome<T>> call(Deadline request, Fn fn, Clock::duration budget = {}) {
    std::optional<Trial> trial;
    if (!allow()) {
      if (!health_.trial_allowed()) {
        short_circuit();
        co_return breaker_open<T>();
      }
      trial.emplace(*this);
    }
    const auto started = Clock::now();
    const Deadline d = deadline(request, budget);
    if (trial && reconnect_) {
      const bool connected = co_await reconnect_(d);
      if (!connected) {
        // Still refused (or the client will not try now): as fast as a short circuit, and counted
        // as the failure it is.
        const std::string why = health_.last_error();
        account(Failure::unavailable, why, started);
        co_return breaker_open<T>();
      }
    }
    Outcome<T> r = co_await fn(d);
    account(r.failure, r.message, started);
    co_return r;
  }

  // Breaker, health and metrics bookkeeping after a call made outside call() that started at `started`.
  void account(Failure f, std::string_view message, Clock::time_point started);
  void short_circuit();

  void set_probe(Probe probe) { probe_ = std::move(probe); }
  void set_reconnect(Reconnect reconnect) { reconnect_ = std::move(reconnect); }
  // Runs when a call (a trial, or one already in flight) closes the breaker; probe() does not run it
  // (its caller knows).
  void set_on_recovered(std::function<void()> on_recovered) { on_recovered_ = std::move(on_recovered); }
  bool has_probe() const { return static_cast<bool>(probe_); }
  // One probe round, whatever the breaker state (its first success closes the breaker and marks the
  // endpoint initialised). Returns whether it succeeded.
  boost::asio::awaitable<bool> probe();

  // Counts by outcome, for tests and the health document.
  double calls(std::string_view outcome) const;
  double trials() const { return trials_->value(); }

 private:
  // The half-open trial slot, held for one call (released however the call ends).
  class Trial {
   public:
    explicit Trial(Endpoint& e) : e_(e) {
      e_.health_.begin_trial();
      e_.trials_->inc();
    }
    ~Trial() { e_.health_.end_trial(); }
    Trial(const Trial&) = delete;
    Trial& operator=(const Trial&) = delete;

   private:
    Endpoint& e_;
  };

  template <typename T>
  Outcome<T> breaker_open() const {
    return Outcome<T>::fail(Failure::unavailable, "circuit breaker open: " + health_.last_error());
  }

  enum Outcome_ { ok, timeout, unavailable, rejected, short_circuited, desync, outcome_count };

  Dependency health_;
  Clock::duration budget_;
  Probe probe_;
  Reconnect reconnect_;
  std::function<void()> on_recovered_;
  bool probing_ = false;
  common::metrics::Counter* trials_ = nullptr;
  std::array<common::metrics::Counter*, outcome_count> calls_{};
  common::metrics::Histogram* duration_ = nullptr;
};

}  // namespace user_service
