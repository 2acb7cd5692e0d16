// One dependency endpoint as the service uses it (mysql, mysql-replica, redis-master,
// redis-replica): its circuit breaker and health (dependency.h), its per-call budget, its probe and its
// metrics, together. Which server stands behind an endpoint may change (a Sentinel failover, a MariaDB
// promotion); the endpoint is the role, and its breaker follows whoever plays it.
//
// Every call goes through call(): refused in microseconds while the breaker is open, otherwise made with
// the endpoint's budget cut from the request's deadline, and its outcome accounted (breaker, health,
// `user_service_dependency_calls_total{dependency,outcome}`, the duration histogram, a debug log line).
//
// Usage (on the service's event loop):
//   Endpoint master("redis-master", config.redis.call_deadline, 3, registry);
//   master.set_probe([&](Deadline d) { return cache.ping(CacheNode::master, d); });
//   auto got = co_await master.call<std::optional<CacheEntry>>(
//       request, [&](Deadline d) { return cache.get(CacheNode::master, id, d); });
//   co_await master.probe();           // the background prober's one round
#pragma once

#include <array>
#include <boost/asio/awaitable.hpp>
#include <functional>
#include <string>
#include <string_view>

#include "common/metrics.h"
#include "user_service/dependency.h"
#include "user_service/ports.h"

namespace user_service {

class Endpoint {
 public:
  using Probe = std::function<boost::asio::awaitable<Outcome<Done>>(Deadline)>;

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
  // A call's deadline: the endpoint's budget from now, at most the request's.
  Deadline deadline(Deadline request) const { return Deadline::after(budget_).at_most(request); }

  // One call: `fn(deadline)` returns an awaitable of Outcome<T>. While the breaker is open the call is
  // not made and the result is Failure::unavailable ("circuit breaker open"), counted short-circuited.
  // `budget` replaces the endpoint's own for this call (a statement that reads a whole page).
  template <typename T, typename Fn>
  boost::asio::awaitable<Outcome<T>> call(Deadline request, Fn&& fn, Clock::duration budget = {}) {
    if (!allow()) {
      short_circuit();
      co_return Outcome<T>::fail(Failure::unavailable, "circuit breaker open: " + health_.last_error());
    }
    const auto started = Clock::now();
    Outcome<T> r =
        co_await fn(Deadline::after(budget > Clock::duration::zero() ? budget : budget_).at_most(request));
    account(r.failure, r.message, started);
    co_return r;
  }

  // Breaker, health and metrics bookkeeping after a call made outside call() that started at `started`.
  void account(Failure f, std::string_view message, Clock::time_point started);
  void short_circuit();

  void set_probe(Probe probe) { probe_ = std::move(probe); }
  bool has_probe() const { return static_cast<bool>(probe_); }
  // One probe round, whatever the breaker state (its first success closes the breaker and marks the
  // endpoint initialised). Returns whether it succeeded.
  boost::asio::awaitable<bool> probe();

  // Counts by outcome, for tests and the health document.
  double calls(std::string_view outcome) const;

 private:
  enum Outcome_ { ok, timeout, unavailable, rejected, short_circuited, desync, outcome_count };

  Dependency health_;
  Clock::duration budget_;
  Probe probe_;
  std::array<common::metrics::Counter*, outcome_count> calls_{};
  common::metrics::Histogram* duration_ = nullptr;
};

}  // namespace user_service
