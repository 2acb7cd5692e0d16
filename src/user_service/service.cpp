#include "user_service/service.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/log.h"

namespace user_service {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);
constexpr std::array<std::string_view, 3> kDepNames = {"mysql", "redis-master", "redis-replica"};
constexpr std::array<std::string_view, 6> kOutcomeNames = {"ok",       "timeout",         "unavailable",
                                                           "rejected", "short_circuited", "desync"};

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

}  // namespace

std::string_view source_name(Source s) {
  switch (s) {
    case Source::cache:
      return "cache";
    case Source::origin:
      return "origin";
    case Source::none:
      break;
  }
  return "none";
}

Service::Service(asio::any_io_executor executor, const Config& config, UserStore& store, CachePort& cache,
                 common::metrics::Registry& registry)
    : executor_(executor),
      config_(config),
      store_(store),
      cache_(cache),
      // Every dependency starts "down" (not yet probed): the first successful probe brings it up, so
      // /health/ready never claims a dependency it has not seen.
      deps_{Dependency(std::string(kDepNames[0]), config.resilience.breaker_failures,
                       config.mysql.call_deadline / 2, false),
            Dependency(std::string(kDepNames[1]), config.resilience.breaker_failures,
                       config.redis.call_deadline / 2, false),
            Dependency(std::string(kDepNames[2]), config.resilience.breaker_failures,
                       config.redis.call_deadline / 2, false)},
      ledger_(config.cache.repair_queue_capacity, config.cache.recent_writes_capacity,
              config.cache.recent_writes_window, config.cache.replica_lag_window) {
  for (std::size_t d = 0; d < deps_.size(); ++d) {
    for (std::size_t o = 0; o < kOutcomeNames.size(); ++o) {
      dep_metrics_[d].calls[o] = &registry.counter(
          "user_service_dependency_calls_total", "Calls to each dependency by outcome.",
          {{"dependency", std::string(kDepNames[d])}, {"outcome", std::string(kOutcomeNames[o])}});
    }
    dep_metrics_[d].duration = &registry.histogram(
        "user_service_dependency_call_duration_seconds", "Duration of dependency calls (probes included).",
        common::metrics::default_latency_buckets(), {{"dependency", std::string(kDepNames[d])}});
  }
  stale_detected_ =
      &registry.counter("user_service_cache_known_stale_total",
                        "Cache entries not served because this instance knows a newer version.");
  stale_served_ =
      &registry.counter("user_service_cache_stale_served_total",
                        "Known-stale cache entries served (X-Cache-Stale) because MariaDB failed.");
  fills_ = &registry.counter("user_service_cache_fills_total", "Cache fills started after a miss.");
  fills_skipped_ = &registry.counter("user_service_cache_fills_skipped_total",
                                     "Cache fills skipped (too many in flight, master unavailable).");
  repairs_applied_ = &registry.counter("user_service_cache_repairs_applied_total",
                                       "Queued cache updates applied to the master after it returned.");
  repairs_failed_ = &registry.counter("user_service_cache_repairs_failed_total",
                                      "Attempts to apply a queued cache update that failed.");
  refreshed_ =
      &registry.counter("user_service_cache_refreshes_total",
                        "Cache entries re-read from MariaDB after a write whose outcome was unknown.");
  uncertain_dropped_ = &registry.counter("user_service_cache_refreshes_dropped_total",
                                         "Writes with an unknown outcome not tracked (set full).");
  invalidations_ =
      &registry.counter("user_service_cache_invalidations_total",
                        "Full invalidations of cached values after the repair queue overflowed.");
  registry.add_collector([this](common::metrics::Writer& w) {
    for (std::size_t d = 0; d < deps_.size(); ++d) {
      const common::metrics::Labels labels{{"dependency", std::string(kDepNames[d])}};
      w.gauge("user_service_circuit_breaker_open", "1 while the dependency's circuit breaker is open.",
              labels, deps_[d].breaker_open() ? 1 : 0);
      w.counter("user_service_circuit_breaker_openings_total", "Times the circuit breaker opened.", labels,
                static_cast<double>(deps_[d].breaker_openings()));
      for (const DepState s : {DepState::up, DepState::degraded, DepState::down}) {
        w.gauge("user_service_dependency_state", "1 for the dependency's current state (up, degraded, down).",
                {{"dependency", std::string(kDepNames[d])}, {"state", std::string(dep_state_name(s))}},
                deps_[d].state() == s ? 1 : 0);
      }
    }
    w.gauge("user_service_cache_repair_queue_size", "Cache updates waiting for the Redis master.", {},
            static_cast<double>(ledger_.pending()));
    w.gauge("user_service_cache_repair_queue_capacity", "Capacity of the repair queue.", {},
            config_.cache.repair_queue_capacity);
    w.counter("user_service_cache_repair_queue_overflows_total",
              "Times the repair queue overflowed (cache then invalidated).", {},
              static_cast<double>(ledger_.overflows()));
    w.gauge("user_service_cache_recent_writes",
            "Updates the master has and the replica may not have yet (repairs, refreshes, recent writes), "
            "remembered to detect a lagging replica.",
            {}, static_cast<double>(ledger_.watched()));
    w.gauge("user_service_cache_replica_untrusted",
            "1 while replica entries are not trusted (after an invalidation, for the replica lag window).",
            {}, ledger_.replica_untrusted() ? 1 : 0);
    w.gauge("user_service_cache_untrusted", "1 while cached entries are not trusted (after an overflow).", {},
            ledger_.untrusted() ? 1 : 0);
    w.gauge("user_service_cache_refreshes_pending", "Ids to re-read after a write whose outcome was unknown.",
            {}, static_cast<double>(uncertain_.size()));
    w.gauge("user_service_background_fills", "Cache fills in flight.", {}, static_cast<double>(background_));
  });
}

Service::~Service() = default;

Deadline Service::call_deadline(Dep d, Deadline request) const {
  const auto budget = d == mysql ? config_.mysql.call_deadline : config_.redis.call_deadline;
  return Deadline::after(budget).at_most(request);
}

void Service::account(Dep d, Failure f, std::string_view message, Clock::time_point started) {
  auto& m = dep_metrics_[d];
  m.duration->observe(seconds_since(started));
  switch (f) {
    case Failure::none:
      m.calls[ok]->inc();
      deps_[d].record_success(Clock::now() - started);
      return;
    case Failure::timeout:
      m.calls[timeout]->inc();
      break;
    case Failure::unavailable:
      m.calls[unavailable_]->inc();
      break;
    case Failure::rejected:
      m.calls[rejected]->inc();
      break;
    case Failure::desync:
      m.calls[desync]->inc();
      break;
  }
  deps_[d].record_failure(f, message);
  if (common::log::enabled(common::log::Level::debug)) {
    common::log::debug("dependency call failed",
                       {{"dependency", kDepNames[d]}, {"outcome", failure_name(f)}, {"error", message}});
  }
}

void Service::short_circuit(Dep d) {
  dep_metrics_[d].calls[short_circuited]->inc();
}

// ---- reads --------------------------------------------------------------------------------

asio::awaitable<ReadResult> Service::get_user(std::string_view id, Deadline deadline) {
  ReadResult result;
  std::optional<CacheEntry> stale;

  // 1. The cache: the master, or the replica when the master cannot answer. An answer from either
  //    (hit, miss or known-stale entry) ends the cache lookup. So does a desynchronised connection
  //    (a reply that was not this read's): its connection was dropped, and MariaDB answers instead.
  for (const Dep d : {redis_master, redis_replica}) {
    if (!deps_[d].allow()) {
      short_circuit(d);
      continue;
    }
    if (deadline.expired()) break;
    // What the ledger knows before asking: the reply may predate a repair that lands (and leaves the
    // ledger) while this read is in flight, e.g. a replica's answer overtaken by the master's repair.
    const auto known_before = ledger_.known_entry(id, d == redis_replica);
    const auto started = Clock::now();
    auto got = co_await cache_.get(d == redis_master ? CacheNode::master : CacheNode::replica, id,
                                   call_deadline(d, deadline));
    account(d, got.failure, got.message, started);
    if (got.failure == Failure::desync) break;
    if (!got.ok()) continue;
    if (d == redis_replica && got.value) ledger_.replica_caught_up(id, *got.value);
    if (got.value && !got.value->tombstone) {
      const bool known_stale = ledger_.known_stale(id, *got.value, d == redis_replica) ||
                               (known_before && supersedes(*known_before, *got.value));
      if (!known_stale) {
        result.status = ReadResult::found;
        result.source = Source::cache;
        result.name = std::move(got.value->name);
        co_return result;
      }
      stale_detected_->inc();
      stale = std::move(got.value);
    }
    break;
  }

  // 2. MariaDB. A read is idempotent: after a lost connection it is retried, within the deadline.
  for (std::uint32_t attempt = 0;; ++attempt) {
    if (!deps_[mysql].allow()) {
      short_circuit(mysql);
      result.reason = "MariaDB unavailable: " + deps_[mysql].last_error();
      break;
    }
    if (deadline.expired()) {
      result.reason = "request deadline exceeded";
      break;
    }
    const auto started = Clock::now();
    auto got = co_await store_.get(id, call_deadline(mysql, deadline));
    account(mysql, got.failure, got.message, started);
    if (got.ok()) {
      result.source = Source::origin;
      if (!got.value) {
        result.status = ReadResult::not_found;
        co_return result;
      }
      result.status = ReadResult::found;
      result.name = got.value->name;
      spawn_fill(id, CacheEntry{got.value->version, false, std::move(got.value->name)});
      co_return result;
    }
    result.reason = "MariaDB: " + got.message;
    if (got.failure != Failure::unavailable || attempt >= config_.resilience.read_retries) break;
  }

  // 3. MariaDB could not answer: a stale entry is better than nothing, marked as such.
  if (stale) {
    stale_served_->inc();
    result.status = ReadResult::found;
    result.source = Source::cache;
    result.stale = true;
    result.name = std::move(stale->name);
    co_return result;
  }
  result.status = ReadResult::unavailable;
  co_return result;
}

void Service::spawn_fill(std::string_view id, CacheEntry entry) {
  if (ledger_.untrusted() || !deps_[redis_master].allow() ||
      background_ >= config_.cache.max_background_fills || !running_) {
    fills_skipped_->inc();
    return;
  }
  ++background_;
  fills_->inc();
  asio::co_spawn(executor_, fill(std::string(id), std::move(entry)), asio::detached);
}

asio::awaitable<void> Service::fill(std::string id, CacheEntry entry) {
  const auto started = Clock::now();
  auto r = co_await cache_.store_if_newer(id, entry, Deadline::after(config_.redis.call_deadline));
  account(redis_master, r.failure, r.message, started);
  --background_;
}

// ---- writes -------------------------------------------------------------------------------

asio::awaitable<bool> Service::update_cache(std::string_view id, const CacheEntry& entry, Deadline request) {
  if (!deps_[redis_master].allow()) {
    short_circuit(redis_master);
    co_return false;
  }
  // The write is committed: give the cache update its own budget even if the request's is spent,
  // bounded so the answer is not held long (on failure it is queued for repair anyway).
  Deadline d = call_deadline(redis_master, request);
  if (d.remaining() < 5ms) d = Deadline::after(std::min<Clock::duration>(5ms, config_.redis.call_deadline));
  const auto started = Clock::now();
  auto r = co_await cache_.store_if_newer(id, entry, d);
  account(redis_master, r.failure, r.message, started);
  co_return r.ok();
}

asio::awaitable<WriteResult> Service::put_user(std::string_view id, std::string_view name,
                                               Deadline deadline) {
  WriteResult result;
  if (!deps_[mysql].allow()) {
    short_circuit(mysql);
    result.reason = "MariaDB unavailable: " + deps_[mysql].last_error();
    co_return result;
  }
  const auto started = Clock::now();
  auto put = co_await store_.put(id, name, call_deadline(mysql, deadline));
  account(mysql, put.failure, put.message, started);
  if (!put.ok() && put.effect == Effect::unknown) remember_uncertain(id);
  if (!put.ok()) {
    result.reason = "MariaDB: " + put.message;
    co_return result;
  }
  const CacheEntry entry{put.value.version, false, std::string(name)};
  const bool applied = co_await update_cache(id, entry, deadline);
  ledger_.record_write(id, entry, applied, Clock::now());
  result.status = put.value.created ? WriteResult::created : WriteResult::updated;
  co_return result;
}

asio::awaitable<WriteResult> Service::delete_user(std::string_view id, Deadline deadline) {
  WriteResult result;
  if (!deps_[mysql].allow()) {
    short_circuit(mysql);
    result.reason = "MariaDB unavailable: " + deps_[mysql].last_error();
    co_return result;
  }
  const auto started = Clock::now();
  auto removed = co_await store_.remove(id, call_deadline(mysql, deadline));
  account(mysql, removed.failure, removed.message, started);
  if (!removed.ok() && removed.effect == Effect::unknown) remember_uncertain(id);
  if (!removed.ok()) {
    result.reason = "MariaDB: " + removed.message;
    co_return result;
  }
  if (!removed.value) {
    // MariaDB has no such user, yet the cache may still hold a value whose deletion was never
    // acknowledged (an earlier DELETE whose answer was lost): left there, it would answer 200 right
    // after this 404. It is replaced now, or by the refresh as soon as the master can be asked.
    if (!co_await tombstone_cached_value(id, deadline)) remember_uncertain(id);
    result.status = WriteResult::not_found;
    co_return result;
  }
  const CacheEntry tombstone{*removed.value, true, {}};
  const bool applied = co_await update_cache(id, tombstone, deadline);
  ledger_.record_write(id, tombstone, applied, Clock::now());
  result.status = WriteResult::deleted;
  co_return result;
}

// ---- writes whose outcome is unknown --------------------------------------------------------

// A write that failed after its statement may have reached MariaDB (a deadline passed mid-statement,
// the connection was lost while MariaDB ran or answered it: Effect::unknown) may still have committed;
// only its acknowledgement was lost. One known not to have run (no connection, breaker open, refused)
// is not tracked. Its caller got a 503, so serving the previous value meanwhile is a correct answer;
// but the cache must not keep it for the rest of its TTL: once MariaDB and the master answer again,
// the id is re-read from MariaDB and the cache brought to what MariaDB holds, by the same
// compare-and-set (and the replica, which receives that update a moment later, is watched).
void Service::remember_uncertain(std::string_view id) {
  if (uncertain_.size() >= config_.cache.repair_queue_capacity) {
    uncertain_dropped_->inc();
    return;
  }
  uncertain_.emplace(id);
}

asio::awaitable<void> Service::refresh_uncertain() {
  while (!uncertain_.empty() && running_ && deps_[mysql].allow() && deps_[redis_master].allow()) {
    const std::string id = *uncertain_.begin();
    auto started = Clock::now();
    auto row = co_await store_.get(id, Deadline::after(config_.mysql.call_deadline));
    account(mysql, row.failure, row.message, started);
    if (!row.ok()) co_return;
    if (row.value) {
      const CacheEntry target{row.value->version, false, std::move(row.value->name)};
      started = Clock::now();
      auto r = co_await cache_.store_if_newer(id, target, Deadline::after(config_.redis.call_deadline));
      account(redis_master, r.failure, r.message, started);
      if (!r.ok()) co_return;
      ledger_.record_master_update(id, target, Clock::now());
    } else if (!co_await tombstone_cached_value(id, Deadline::after(config_.redis.call_deadline))) {
      co_return;
    }
    uncertain_.erase(id);
    refreshed_->inc();
  }
}

// MariaDB has no row for `id`: a value cached for it is replaced by a tombstone at the value's own
// version, so exactly that value goes (compare-and-set: anything newer that landed meanwhile wins),
// and the replica is watched until it has the tombstone. False if the master could not be asked or
// could not answer.
asio::awaitable<bool> Service::tombstone_cached_value(std::string_view id, Deadline request) {
  if (!deps_[redis_master].allow()) {
    short_circuit(redis_master);
    co_return false;
  }
  auto started = Clock::now();
  auto cached = co_await cache_.get(CacheNode::master, id, call_deadline(redis_master, request));
  account(redis_master, cached.failure, cached.message, started);
  if (!cached.ok()) co_return false;
  if (!cached.value || cached.value->tombstone) co_return true;
  // A local, not a temporary inside the co_await: GCC 12 destroys such a temporary twice.
  const CacheEntry tombstone{cached.value->version, true, {}};
  started = Clock::now();
  auto r = co_await cache_.store_if_newer(id, tombstone, call_deadline(redis_master, request));
  account(redis_master, r.failure, r.message, started);
  if (!r.ok()) co_return false;
  ledger_.record_master_update(id, tombstone, Clock::now());
  co_return true;
}

// ---- background: probes and repairs ---------------------------------------------------------

void Service::start() {
  if (running_) return;
  running_ = true;
  for (const Dep d : {mysql, redis_master, redis_replica}) {
    probe_timers_[d] = std::make_unique<asio::steady_timer>(executor_);
    ++loops_running_;
    asio::co_spawn(executor_, probe_loop(d), asio::detached);
  }
  repair_timer_ = std::make_unique<asio::steady_timer>(executor_);
  ++loops_running_;
  asio::co_spawn(executor_, repair_loop(), asio::detached);
}

asio::awaitable<void> Service::stop() {
  running_ = false;
  for (auto& t : probe_timers_)
    if (t) t->cancel();
  if (repair_timer_) repair_timer_->cancel();
  asio::steady_timer poll(executor_);
  while (loops_running_ > 0 || background_ > 0) {
    poll.expires_after(2ms);
    co_await poll.async_wait(use_nothrow);
  }
}

void Service::wake_repairer() {
  if (repair_timer_) repair_timer_->cancel();
}

asio::awaitable<void> Service::probe_loop(Dep d) {
  auto& timer = *probe_timers_[d];
  while (running_) {
    const auto started = Clock::now();
    const bool was_usable = deps_[d].allow();
    Outcome<Done> r;
    if (d == mysql) {
      r = co_await store_.probe(Deadline::after(config_.mysql.call_deadline));
    } else {
      r = co_await cache_.ping(d == redis_master ? CacheNode::master : CacheNode::replica,
                               Deadline::after(config_.redis.call_deadline));
    }
    if (!running_) break;
    account(d, r.failure, r.message, started);
    if (r.ok() && !deps_[d].initialised()) deps_[d].set_initialised(true);
    if (d == redis_master && !was_usable && deps_[d].allow()) wake_repairer();
    timer.expires_at(started + config_.resilience.probe_interval);
    co_await timer.async_wait(use_nothrow);
  }
  --loops_running_;
}

asio::awaitable<void> Service::invalidate_all() {
  std::uint64_t cursor = 0;
  do {
    if (!running_ || !deps_[redis_master].allow()) co_return;
    const auto started = Clock::now();
    auto r = co_await cache_.invalidate_values_step(cursor, Deadline::after(config_.redis.call_deadline));
    account(redis_master, r.failure, r.message, started);
    if (!r.ok()) co_return;
    cursor = r.value;
  } while (cursor != 0);
  invalidations_->inc();
  ledger_.mark_trusted(Clock::now());
  common::log::info("cache invalidated after repair queue overflow; cache trusted again");
}

asio::awaitable<void> Service::repair_loop() {
  auto& timer = *repair_timer_;
  while (running_) {
    ledger_.expire(Clock::now());
    bool more = false;
    if (deps_[redis_master].allow()) {
      if (ledger_.untrusted()) co_await invalidate_all();
      auto batch = ledger_.take_repairs(64);
      bool failed = false;
      for (auto& repair : batch) {
        if (failed || !running_) {
          ledger_.repair_finished(repair.id, repair.entry, false, Clock::now());
          continue;
        }
        const auto started = Clock::now();
        auto r = co_await cache_.store_if_newer(repair.id, repair.entry,
                                                Deadline::after(config_.redis.call_deadline));
        account(redis_master, r.failure, r.message, started);
        ledger_.repair_finished(repair.id, repair.entry, r.ok(), Clock::now());
        if (r.ok()) {
          repairs_applied_->inc();
        } else {
          repairs_failed_->inc();
          failed = true;
        }
      }
      more = !failed && ledger_.pending() > 0 && deps_[redis_master].allow();
      if (!more && !failed) co_await refresh_uncertain();
    }
    if (more || !running_) continue;
    timer.expires_after(config_.resilience.probe_interval);
    co_await timer.async_wait(use_nothrow);
  }
  --loops_running_;
}

// ---- health ---------------------------------------------------------------------------------

DepState Service::overall_state() const {
  const bool all_up = deps_[mysql].state() == DepState::up && deps_[redis_master].state() == DepState::up &&
                      deps_[redis_replica].state() == DepState::up;
  if (all_up) return DepState::up;
  const bool nothing = deps_[mysql].state() == DepState::down &&
                       deps_[redis_master].state() == DepState::down &&
                       deps_[redis_replica].state() == DepState::down;
  return nothing ? DepState::down : DepState::degraded;
}

bool Service::ready() const {
  return overall_state() != DepState::down;
}

std::string Service::health_json() const {
  std::string out = "{\"status\":\"";
  out += dep_state_name(overall_state());
  out += "\",\"ready\":";
  out += ready() ? "true" : "false";
  out += ",\"dependencies\":{";
  for (std::size_t d = 0; d < deps_.size(); ++d) {
    if (d) out += ",";
    out += "\"";
    out += kDepNames[d];
    out += "\":";
    out += deps_[d].to_json();
  }
  out += "},\"cache\":{\"repair_queue\":";
  out += std::to_string(ledger_.pending());
  out += ",\"repair_queue_capacity\":";
  out += std::to_string(config_.cache.repair_queue_capacity);
  out += ",\"untrusted\":";
  out += ledger_.untrusted() ? "true" : "false";
  out += "}}";
  return out;
}

}  // namespace user_service
