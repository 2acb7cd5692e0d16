// The service logic of user-service: cache-aside reads over the Redis master/replica pair with
// MariaDB as the source of truth, writes to MariaDB then to the cache, and everything that keeps it
// answering when a dependency fails: per-call deadlines cut from the request's, a circuit breaker per
// endpoint, background health probes, the repair queue and known-stale tracking (cache_ledger.h);
// and what keeps an overload from becoming an outage: concurrent misses of one id share one MariaDB
// read (single_flight.h), MariaDB work is admitted up to a bound and the excess shed at once
// (admission.h), and read retries spend a budget (retry_budget.h).
// HTTP is not known here (see api.h); dependencies are reached only through ports.h.
//
// Behaviour contract: the failure-mode catalog (features/), explained in README.md beside this file.
//
// Threading: everything runs on the one executor given at construction (a single event loop).
//
// Usage:
//   Service service(io.get_executor(), config, store, cache, registry);
//   service.start();                                    // probers and repairer
//   ReadResult r = co_await service.get_user("u-1", Deadline::after(config.request_deadline));
//   std::exception_ptr thrown;                          // or, with no coroutine of its own:
//   ReadResult r = co_await service.read_user("u-1", deadline, thrown, asio::deferred);
//   ...
//   co_await service.stop();                            // on SIGTERM, after the HTTP server drained
#pragma once

#include <array>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/metrics.h"
#include "user_service/admission.h"
#include "user_service/cache_ledger.h"
#include "user_service/config.h"
#include "user_service/endpoint.h"
#include "user_service/ports.h"
#include "user_service/replica_freshness.h"
#include "user_service/retry_budget.h"
#include "user_service/single_flight.h"

namespace user_service {

// Where a read's answer came from (X-Data-Source): the cache, MariaDB's primary, or a MariaDB replica
// (when the primary cannot answer; only once the replica applied every write it had received).
enum class Source { none = 0, cache = 1, origin = 2, origin_replica = 3 };
inline constexpr std::size_t kSources = 4;
std::string_view source_name(Source s);

// Why a request could not be served. The client is told the cause, whether a write may have been
// applied, and when to retry; `detail` (the dependencies' own error texts, which may name servers)
// is for the log only.
struct Unavailable {
  enum Cause {
    not_called,  // MariaDB's breaker was open: it was not asked (a write certainly left nothing)
    timeout,     // no answer within the deadline
    failed,      // refused, lost or failed the call
    shed,        // admission control refused it at once (too much MariaDB work): MariaDB was not asked
  };
  Cause cause = failed;
  Effect effect = Effect::none;  // writes: Effect::unknown when MariaDB may have applied it
  // How long until the service expects to call the dependency again: zero while its breaker is
  // closed (the next request does); while open, until its next probe.
  Clock::duration retry_in{};
  std::string detail;
};

struct ReadResult {
  enum Status { found, not_found, unavailable } status = unavailable;
  Source source = Source::none;
  bool stale = false;  // a cache entry known to be stale, served because MariaDB failed too
  std::string name;
  std::uint64_t version = 0;  // of the entry or row served (the ETag)
  Unavailable why;            // for unavailable
};

struct WriteResult {
  enum Status { created, updated, deleted, not_found, precondition_failed, unavailable } status = unavailable;
  // created, updated: the version written. precondition_failed: the current one, if `exists`.
  std::uint64_t version = 0;
  bool exists = false;  // precondition_failed: MariaDB, read right after, has the user
  Unavailable why;      // for unavailable
};

// A page of GET /users: up to `limit` users after an id, in byte order of the ids.
struct ListResult {
  enum Status { ok, unavailable } status = unavailable;
  Source source = Source::none;  // origin or origin_replica
  std::vector<ListedUser> users;
  bool more = false;  // users follow the last one (the next page starts after it)
  Unavailable why;    // for unavailable
};

class Service {
 public:
  Service(boost::asio::any_io_executor executor, const Config& config, UserStore& store, CachePort& cache,
          common::metrics::Registry& registry);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  boost::asio::awaitable<ReadResult> get_user(std::string_view id, Deadline deadline);
  // The same read as an asynchronous operation (what the API awaits, with asio::deferred): its
  // common case, a hit on the cache master while its breaker is closed, completes from the cache's
  // reply, with no coroutine of its own; every other case continues in one. An exception thrown
  // there completes the read with an empty result and is stored in `thrown`, for the caller to
  // rethrow (it outlives the operation: the caller is suspended until the completion).
  template <typename Token>
  auto read_user(std::string_view id, Deadline deadline, std::exception_ptr& thrown, Token&& token);
  // Conditional when `when` says so (If-Match, If-None-Match: *): checked by MariaDB's statement.
  boost::asio::awaitable<WriteResult> put_user(std::string_view id, std::string_view name, Deadline deadline,
                                               Precondition when = {});
  boost::asio::awaitable<WriteResult> delete_user(std::string_view id, Deadline deadline,
                                                  Precondition when = {});
  // From MariaDB only (the primary; a replica that applied what it received if the primary cannot
  // answer), one statement whose budget is the whole `deadline`.
  boost::asio::awaitable<ListResult> list_users(std::string_view after, std::uint32_t limit,
                                                Deadline deadline);

  // Starts the health probers (one per dependency) and the cache repairer.
  void start();
  // Stops them and waits for background work (cache fills, repairs in flight) to end.
  boost::asio::awaitable<void> stop();

  // /health/ready: {"status":..., "dependencies":{...}, "cache":{...}}; ready() is its HTTP verdict.
  std::string health_json() const;
  bool ready() const;
  DepState overall_state() const;

  // The endpoints: MariaDB's primary (`mysql`) and, with several MariaDB endpoints, a replica
  // (`mysql-replica`); the Redis master and replica (whichever servers play those roles now).
  Endpoint& mysql() { return mysql_; }
  Endpoint& redis_master() { return redis_master_; }
  Endpoint& redis_replica() { return redis_replica_; }
  Endpoint* mysql_replica() { return mysql_replica_.get(); }
  const Endpoint& mysql() const { return mysql_; }
  const Endpoint& redis_master() const { return redis_master_; }
  // Extra members of /health/ready's "topology" object (the adapters' view: which servers play which
  // role), e.g. {"mysql":{...},"redis":{...}} without the braces.
  void set_topology_json(std::function<std::string()> f) { topology_json_ = std::move(f); }
  // SIGHUP: the reloadable settings of `c` (plan_reload in config.h: deadlines, breaker and retry
  // settings), in effect from the next call and the next probe round.
  void reload(const Config& c);
  // Wakes the prober of the Redis master (after the topology changed: a new master is used at once).
  void master_changed();
  // Another node plays the Redis replica: what the probes showed of the previous one no longer holds.
  void replica_changed();
  const ReplicaFreshness& replica_freshness() const { return replica_freshness_; }
  const CacheLedger& ledger() const { return ledger_; }
  std::size_t uncertain_writes() const { return uncertain_.size(); }

 private:
  // Every endpoint, for the probers, /health/ready and the metrics.
  std::vector<Endpoint*> endpoints();
  std::vector<const Endpoint*> endpoints() const;
  using CacheGet = Outcome<std::optional<CacheEntry>>;
  // What a cache node's answer to a read leads to: serving it, asking the next node (the replica
  // after the master), or MariaDB (`stale`: a known-stale entry to serve if MariaDB cannot answer).
  enum class CacheVerdict { serve, next_node, origin };
  // Judges `got`, a node's answer (`known_before`: what the ledger knew before asking); `served`
  // is filled for serve, `stale` may be for origin.
  CacheVerdict judge_cache_answer(std::string_view id, bool replica,
                                  const std::optional<CacheEntry>& known_before, CacheGet& got,
                                  ReadResult& served, std::optional<CacheEntry>& stale);
  // Where the rest of a read starts: a cache node (then the next one), or MariaDB.
  enum class ReadFrom : std::uint8_t { master, replica, origin };
  // The rest of a read in a coroutine: the cache nodes from `from` on, then MariaDB.
  boost::asio::awaitable<ReadResult> read_from(std::string_view id, Deadline deadline, ReadFrom from,
                                               std::optional<CacheEntry> stale);
  // Runs `op` in a coroutine of its own and completes `handler` with its result. An exception it
  // throws is stored in `thrown` (the handler then gets T{}), for the awaiting caller to rethrow.
  template <typename T, typename Handler>
  void complete_from(boost::asio::awaitable<T> op, std::exception_ptr& thrown, Handler handler) {
    boost::asio::co_spawn(executor_, std::move(op),
                          [&thrown, h = std::move(handler)](std::exception_ptr e, T result) mutable {
                            thrown = e;
                            std::move(h)(std::move(result));
                          });
  }
  // read_user() continued in a coroutine (read_from(), or read_origin() at once), completing
  // `handler`.
  template <typename Handler>
  void continue_read(std::string_view id, Deadline deadline, ReadFrom from, std::optional<CacheEntry> stale,
                     std::exception_ptr& thrown, Handler handler);
  boost::asio::awaitable<ReadResult> read_origin(std::string_view id, Deadline deadline,
                                                 std::optional<CacheEntry> stale);
  // What read_store() got: MariaDB's answer and where it came from, or why there is none.
  template <typename T>
  struct StoreRead {
    std::optional<T> value;
    Source source = Source::none;
    Unavailable why;
  };
  // The policy of every MariaDB read: the primary, retried after a lost connection within the
  // deadline; if it cannot answer, a replica (`replica`) that applied what it received. Each call
  // gets `budget` (0: the endpoint's own), cut to the deadline.
  template <typename T, typename Primary, typename Replica>
  boost::asio::awaitable<StoreRead<T>> read_store(Deadline deadline, Clock::duration budget, Primary primary,
                                                  Replica replica);
  // One MariaDB write (`fn(call deadline)`), made once more if MariaDB rolled it back over a lock
  // conflict (deadlock, lock wait timeout: nothing was written) and the request's deadline allows.
  template <typename T, typename Fn>
  boost::asio::awaitable<Outcome<T>> write_store(Deadline deadline, Fn fn);
  using UserRead = StoreRead<std::optional<StoredUser>>;
  // One user's MariaDB read, admitted (admission control) and shared by concurrent readers of the id.
  boost::asio::awaitable<UserRead> read_user_from_store(std::string_view id, Deadline deadline);
  // The Unavailable of a request admission control did not admit.
  Unavailable not_admitted(Admission::Verdict verdict);
  // The Unavailable of a failed MariaDB call; `called`: whether the endpoint allowed the call.
  Unavailable unavailable(const Endpoint& endpoint, bool called, Failure failure, Effect effect,
                          std::string detail) const;
  Clock::duration until_next_call(const Endpoint& endpoint) const;
  // A conditional write found its condition false: reports what MariaDB holds now and brings the
  // cache to it.
  boost::asio::awaitable<WriteResult> precondition_failed(std::string_view id, Deadline deadline);
  // Reads `id` from MariaDB and brings the master's entry to it (compare-and-set; no row: a cached
  // value is replaced by a tombstone at its version).
  struct StoreSync {
    bool read = false;  // MariaDB answered: `row` is what it holds
    std::optional<StoredUser> row;
    bool synced = false;  // and the master took it
  };
  boost::asio::awaitable<StoreSync> sync_cache_with_store(std::string_view id, Deadline request);
  boost::asio::awaitable<bool> update_cache(std::string_view id, const CacheEntry& entry, Deadline request);
  void spawn_fill(std::string_view id, CacheEntry entry);
  boost::asio::awaitable<void> fill(std::string id, CacheEntry entry);
  boost::asio::awaitable<void> probe_loop(Endpoint& endpoint, boost::asio::steady_timer& timer);
  boost::asio::awaitable<Outcome<Done>> probe_cache(CacheNode node, Deadline d);
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
  Endpoint mysql_;
  std::unique_ptr<Endpoint> mysql_replica_;  // only with several MariaDB endpoints
  Endpoint redis_master_;
  Endpoint redis_replica_;
  CacheLedger ledger_;
  ReplicaFreshness replica_freshness_;
  SingleFlight<UserRead> reads_;  // MariaDB reads of one id in flight, shared
  Admission mysql_work_;          // requests doing MariaDB work, and those waiting for their turn
  RetryBudget retry_budget_;      // of MariaDB read retries
  bool running_ = false;
  std::size_t loops_running_ = 0;
  std::size_t background_ = 0;                                            // fills in flight
  std::vector<std::unique_ptr<boost::asio::steady_timer>> probe_timers_;  // in endpoints() order
  std::unique_ptr<boost::asio::steady_timer> repair_timer_;
  std::set<std::string> uncertain_;
  std::function<std::string()>
      topology_json_;  // ids of failed writes that may have committed (Effect::unknown)

  common::metrics::Counter* stale_detected_ = nullptr;
  common::metrics::Counter* stale_served_ = nullptr;
  common::metrics::Counter* replica_behind_ = nullptr;
  common::metrics::Counter* fills_ = nullptr;
  common::metrics::Counter* fills_skipped_ = nullptr;
  common::metrics::Counter* repairs_applied_ = nullptr;
  common::metrics::Counter* repairs_failed_ = nullptr;
  common::metrics::Counter* invalidations_ = nullptr;
  common::metrics::Counter* refreshed_ = nullptr;
  common::metrics::Counter* uncertain_dropped_ = nullptr;
  common::metrics::Counter* write_retries_ = nullptr;
  common::metrics::Counter* reads_coalesced_ = nullptr;
  common::metrics::Counter* shed_queue_full_ = nullptr;
  common::metrics::Counter* shed_too_slow_ = nullptr;
  common::metrics::Counter* admission_timeouts_ = nullptr;
  common::metrics::Counter* retries_spent_ = nullptr;
  common::metrics::Counter* retries_denied_ = nullptr;
};

template <typename Token>
auto Service::read_user(std::string_view id, Deadline deadline, std::exception_ptr& thrown, Token&& token) {
  namespace asio = boost::asio;
  return asio::async_initiate<Token, void(ReadResult)>(
      [this, id, deadline, &thrown](auto handler) {
        const auto started = Clock::now();
        // Out of time, or the master's breaker not closed: Endpoint::call() decides, in read_from().
        if (deadline.expired(started) || !redis_master_.allow())
          return continue_read(id, deadline, ReadFrom::master, std::nullopt, thrown, std::move(handler));
        // Cancellation reaches the cache's read as it would from the caller's own handler.
        const auto slot = asio::get_associated_cancellation_slot(handler);
        cache_.get(CacheNode::master, id, redis_master_.deadline(deadline, {}, started),
                   asio::bind_cancellation_slot(
                       slot, [this, id, deadline, started, known_before = ledger_.known_entry(id, false),
                              &thrown, h = std::move(handler)](CacheGet got) mutable {
                         redis_master_.account(got.failure, got.message, started);
                         ReadResult served;
                         std::optional<CacheEntry> stale;
                         switch (judge_cache_answer(id, false, known_before, got, served, stale)) {
                           case CacheVerdict::serve:
                             return std::move(h)(std::move(served));
                           case CacheVerdict::next_node:
                             return continue_read(id, deadline, ReadFrom::replica, std::nullopt, thrown,
                                                  std::move(h));
                           case CacheVerdict::origin:
                             return continue_read(id, deadline, ReadFrom::origin, std::move(stale), thrown,
                                                  std::move(h));
                         }
                       }));
      },
      token);
}

template <typename Handler>
void Service::continue_read(std::string_view id, Deadline deadline, ReadFrom from,
                            std::optional<CacheEntry> stale, std::exception_ptr& thrown, Handler handler) {
  auto rest = from == ReadFrom::origin ? read_origin(id, deadline, std::move(stale))
                                       : read_from(id, deadline, from, std::move(stale));
  complete_from(std::move(rest), thrown, std::move(handler));
}

}  // namespace user_service
