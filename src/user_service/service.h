// The service logic of user-service: cache-aside reads over the Redis master/replica pair with
// MariaDB as the source of truth, writes to MariaDB then to the cache, and everything that keeps it
// answering when a dependency fails: per-call deadlines cut from the request's, a circuit breaker per
// endpoint, background health probes, the repair queue and known-stale tracking (cache_ledger.h).
// HTTP is not known here (see api.h); dependencies are reached only through ports.h.
//
// Behaviour contract: /work/shared/design/failure-matrix.md, explained in README.md beside this file.
//
// Threading: everything runs on the one executor given at construction (a single event loop).
//
// Usage:
//   Service service(io.get_executor(), config, store, cache, registry);
//   service.start();                                    // probers and repairer
//   ReadResult r = co_await service.get_user("u-1", Deadline::after(config.request_deadline));
//   ...
//   co_await service.stop();                            // on SIGTERM, after the HTTP server drained
#pragma once

#include <array>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "common/metrics.h"
#include "user_service/cache_ledger.h"
#include "user_service/config.h"
#include "user_service/dependency.h"
#include "user_service/ports.h"

namespace user_service {

enum class Source { none = 0, cache = 1, origin = 2 };
std::string_view source_name(Source s);

struct ReadResult {
  enum Status { found, not_found, unavailable } status = unavailable;
  Source source = Source::none;
  bool stale = false;  // a cache entry known to be stale, served because MariaDB failed too
  std::string name;
  std::string reason;  // for unavailable
};

struct WriteResult {
  enum Status { created, updated, deleted, not_found, unavailable } status = unavailable;
  std::string reason;
};

class Service {
 public:
  Service(boost::asio::any_io_executor executor, const Config& config, UserStore& store, CachePort& cache,
          common::metrics::Registry& registry);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  boost::asio::awaitable<ReadResult> get_user(std::string_view id, Deadline deadline);
  boost::asio::awaitable<WriteResult> put_user(std::string_view id, std::string_view name, Deadline deadline);
  boost::asio::awaitable<WriteResult> delete_user(std::string_view id, Deadline deadline);

  // Starts the health probers (one per dependency) and the cache repairer.
  void start();
  // Stops them and waits for background work (cache fills, repairs in flight) to end.
  boost::asio::awaitable<void> stop();

  // /health/ready: {"status":..., "dependencies":{...}, "cache":{...}}; ready() is its HTTP verdict.
  std::string health_json() const;
  bool ready() const;
  DepState overall_state() const;

  enum Dep { mysql = 0, redis_master = 1, redis_replica = 2 };
  const Dependency& dependency(Dep d) const { return deps_[d]; }
  const CacheLedger& ledger() const { return ledger_; }
  std::size_t uncertain_writes() const { return uncertain_.size(); }

 private:
  enum Outcome_ { ok = 0, timeout = 1, unavailable_ = 2, rejected = 3, short_circuited = 4, desync = 5 };
  struct DepMetrics {
    std::array<common::metrics::Counter*, 6> calls{};
    common::metrics::Histogram* duration = nullptr;
  };

  Deadline call_deadline(Dep d, Deadline request) const;
  // Breaker and metrics bookkeeping after a call that started at `started`.
  void account(Dep d, Failure f, std::string_view message, Clock::time_point started);
  void short_circuit(Dep d);
  boost::asio::awaitable<bool> update_cache(std::string_view id, const CacheEntry& entry, Deadline request);
  void spawn_fill(std::string_view id, CacheEntry entry);
  boost::asio::awaitable<void> fill(std::string id, CacheEntry entry);
  boost::asio::awaitable<void> probe_loop(Dep d);
  boost::asio::awaitable<void> repair_loop();
  boost::asio::awaitable<void> invalidate_all();
  void wake_repairer();
  void remember_uncertain(std::string_view id);
  boost::asio::awaitable<void> refresh_uncertain();
  boost::asio::awaitable<bool> tombstone_cached_value(std::string_view id, Deadline request);

  boost::asio::any_io_executor executor_;
  Config config_;
  UserStore& store_;
  CachePort& cache_;
  std::array<Dependency, 3> deps_;
  std::array<DepMetrics, 3> dep_metrics_;
  CacheLedger ledger_;
  bool running_ = false;
  std::size_t loops_running_ = 0;
  std::size_t background_ = 0;  // fills in flight
  std::array<std::unique_ptr<boost::asio::steady_timer>, 3> probe_timers_;
  std::unique_ptr<boost::asio::steady_timer> repair_timer_;
  std::set<std::string> uncertain_;  // ids of failed writes that may have committed (Effect::unknown)

  common::metrics::Counter* stale_detected_ = nullptr;
  common::metrics::Counter* stale_served_ = nullptr;
  common::metrics::Counter* fills_ = nullptr;
  common::metrics::Counter* fills_skipped_ = nullptr;
  common::metrics::Counter* repairs_applied_ = nullptr;
  common::metrics::Counter* repairs_failed_ = nullptr;
  common::metrics::Counter* invalidations_ = nullptr;
  common::metrics::Counter* refreshed_ = nullptr;
  common::metrics::Counter* uncertain_dropped_ = nullptr;
};

}  // namespace user_service
