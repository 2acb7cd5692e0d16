#include "user_service/service.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/log.h"

namespace user_service {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

// `fn` for Endpoint::call, which calls it only when it makes the call: `asked` tells whether the
// dependency was asked. Not allow() beforehand: while the breaker is open, a call may be its
// half-open trial, and a trial's answer may be lost like any other.
template <typename Fn>
auto noting_asked(bool& asked, Fn& fn) {
  return [&asked, &fn](Deadline d) {
    asked = true;
    return fn(d);
  };
}

}  // namespace

std::string_view source_name(Source s) {
  switch (s) {
    case Source::cache:
      return "cache";
    case Source::origin:
      return "origin";
    case Source::origin_replica:
      return "origin-replica";
    case Source::none:
      break;
  }
  return "none";
}

void Service::reload(const Config& c) {
  // `c` differs from the running configuration only in what plan_reload applied.
  config_ = c;
  const auto failures = c.resilience.breaker_failures;
  mysql_.reconfigure(c.mysql.call_deadline, failures);
  if (mysql_replica_) mysql_replica_->reconfigure(c.mysql.call_deadline, failures);
  redis_master_.reconfigure(c.redis.call_deadline, failures);
  redis_replica_.reconfigure(c.redis.call_deadline, failures);
}

Service::Service(asio::any_io_executor executor, const Config& config, UserStore& store, CachePort& cache,
                 common::metrics::Registry& registry)
    : executor_(executor),
      config_(config),
      store_(store),
      cache_(cache),
      mysql_("mysql", config.mysql.call_deadline, config.resilience.breaker_failures, registry),
      mysql_replica_(store.has_replica()
                         ? std::make_unique<Endpoint>("mysql-replica", config.mysql.call_deadline,
                                                      config.resilience.breaker_failures, registry)
                         : nullptr),
      redis_master_("redis-master", config.redis.call_deadline, config.resilience.breaker_failures, registry),
      redis_replica_("redis-replica", config.redis.call_deadline, config.resilience.breaker_failures,
                     registry),
      ledger_(config.cache.repair_queue_capacity, config.cache.recent_writes_capacity,
              config.cache.recent_writes_window, config.cache.replica_lag_window),
      replica_freshness_(config.redis.replica_max_lag),
      reads_(executor),
      mysql_work_(executor, config.mysql.in_flight_limit(), config.mysql.max_queued),
      retry_budget_(config.resilience.retry_budget_percent, config.resilience.retry_budget_per_s) {
  mysql_.set_probe([this](Deadline d) { return store_.probe(d); });
  if (mysql_replica_) mysql_replica_->set_probe([this](Deadline d) { return store_.probe_replica(d); });
  redis_master_.set_probe([this](Deadline d) { return probe_cache(CacheNode::master, d); });
  redis_replica_.set_probe([this](Deadline d) { return probe_cache(CacheNode::replica, d); });
  // Half-open trials (endpoint.h) connect first: the primary and the cache nodes (the replica pool
  // has no such hook; its trial is the call itself).
  mysql_.set_reconnect([this](Deadline d) { return store_.connect_now(d); });
  redis_master_.set_reconnect([this](Deadline d) { return cache_.connect_now(CacheNode::master, d); });
  redis_replica_.set_reconnect([this](Deadline d) { return cache_.connect_now(CacheNode::replica, d); });
  redis_master_.set_on_recovered([this] { wake_repairer(); });
  replica_behind_ = &registry.counter(
      "user_service_cache_replica_behind_total",
      "Replica answers not served (MariaDB asked instead) because the replica could not be shown to hold "
      "what the master held within redis.replica_max_lag_ms.");
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
  write_retries_ = &registry.counter(
      "user_service_mysql_write_retries_total",
      "MariaDB writes made a second time because MariaDB rolled the first back over a lock conflict "
      "(deadlock 1213, lock wait timeout 1205).");
  invalidations_ =
      &registry.counter("user_service_cache_invalidations_total",
                        "Full invalidations of cached values after the repair queue overflowed.");
  reads_coalesced_ = &registry.counter(
      "user_service_reads_coalesced_total",
      "Cache misses answered by another request's MariaDB read of the same id (single-flight).");
  const auto shed = [&](std::string_view reason) {
    return &registry.counter("user_service_requests_shed_total",
                             "Requests refused at once (503) by admission control, not calling MariaDB: the "
                             "queue was full, or the wait for MariaDB would not have fit the deadline.",
                             {{"reason", std::string(reason)}});
  };
  shed_queue_full_ = shed("queue_full");
  shed_too_slow_ = shed("too_slow");
  admission_timeouts_ =
      &registry.counter("user_service_admission_timeouts_total",
                        "Requests whose deadline passed while they waited for their turn at MariaDB.");
  const auto retries = [&](std::string_view outcome) {
    return &registry.counter("user_service_read_retries_total",
                             "MariaDB read retries after a lost connection: made (spent) or refused by the "
                             "retry budget (denied).",
                             {{"outcome", std::string(outcome)}});
  };
  retries_spent_ = retries("spent");
  retries_denied_ = retries("denied");
  registry.add_collector([this](common::metrics::Writer& w) {
    w.gauge("user_service_mysql_admission_in_flight", "Requests doing MariaDB work now.", {},
            mysql_work_.in_flight());
    w.gauge("user_service_mysql_admission_limit", "Requests allowed to do MariaDB work at once.", {},
            mysql_work_.limit());
    w.gauge("user_service_mysql_admission_queued", "Requests waiting for their turn at MariaDB.", {},
            static_cast<double>(mysql_work_.queued()));
    // One family at a time (a family's samples must be contiguous in the exposition).
    const auto endpoints = this->endpoints();
    for (const Endpoint* e : endpoints) {
      w.gauge("user_service_circuit_breaker_open", "1 while the dependency's circuit breaker is open.",
              {{"dependency", e->name()}}, e->health().breaker_open() ? 1 : 0);
    }
    for (const Endpoint* e : endpoints) {
      w.counter("user_service_circuit_breaker_openings_total", "Times the circuit breaker opened.",
                {{"dependency", e->name()}}, static_cast<double>(e->health().breaker_openings()));
    }
    for (const Endpoint* e : endpoints) {
      for (const DepState s : {DepState::up, DepState::degraded, DepState::down}) {
        w.gauge("user_service_dependency_state", "1 for the dependency's current state (up, degraded, down).",
                {{"dependency", e->name()}, {"state", std::string(dep_state_name(s))}},
                e->health().state() == s ? 1 : 0);
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
    w.gauge(
        "user_service_cache_replica_current",
        "1 while the Redis replica is shown to hold what the master held within redis.replica_max_lag_ms.",
        {}, replica_freshness_.current(Clock::now()) ? 1 : 0);
    w.gauge("user_service_cache_untrusted", "1 while cached entries are not trusted (after an overflow).", {},
            ledger_.untrusted() ? 1 : 0);
    w.gauge("user_service_cache_refreshes_pending", "Ids to re-read after a write whose outcome was unknown.",
            {}, static_cast<double>(uncertain_.size()));
    w.gauge("user_service_background_fills", "Cache fills in flight.", {}, static_cast<double>(background_));
  });
}

Service::~Service() = default;

std::vector<Endpoint*> Service::endpoints() {
  std::vector<Endpoint*> out{&mysql_};
  if (mysql_replica_) out.push_back(mysql_replica_.get());
  out.push_back(&redis_master_);
  out.push_back(&redis_replica_);
  return out;
}

std::vector<const Endpoint*> Service::endpoints() const {
  std::vector<const Endpoint*> out{&mysql_};
  if (mysql_replica_) out.push_back(mysql_replica_.get());
  out.push_back(&redis_master_);
  out.push_back(&redis_replica_);
  return out;
}

// ---- reads --------------------------------------------------------------------------------

asio::awaitable<ReadResult> Service::get_user(std::string_view id, Deadline deadline) {
  std::exception_ptr thrown;
  ReadResult r = co_await read_user(id, deadline, thrown, asio::deferred);
  if (thrown) std::rethrow_exception(thrown);
  co_return r;
}

// 1. The cache: the master, or the replica when the master cannot answer. An answer from either
//    (hit, miss or known-stale entry) ends the cache lookup. So does a desynchronised connection
//    (a reply that was not this read's): its connection was dropped, and MariaDB answers instead.
//    read_user() asks the master itself while its breaker is closed (nearly always), and continues
//    here after any answer but a hit.
Service::CacheVerdict Service::judge_cache_answer(std::string_view id, bool replica,
                                                  const std::optional<CacheEntry>& known_before,
                                                  CacheGet& got, ReadResult& served,
                                                  std::optional<CacheEntry>& stale) {
  if (got.failure == Failure::desync) return CacheVerdict::origin;
  if (!got.ok()) return CacheVerdict::next_node;
  if (replica && got.value) ledger_.replica_caught_up(id, *got.value);
  // A replica not shown to be close to the master may miss any recent write, this instance's or
  // another's (replica_freshness.h): its entry is kept only for when MariaDB cannot answer either.
  if (replica && !replica_freshness_.current(Clock::now())) {
    replica_behind_->inc();
    if (got.value && !got.value->tombstone) stale = std::move(got.value);
    return CacheVerdict::origin;
  }
  if (got.value && !got.value->tombstone) {
    const bool known_stale = ledger_.known_stale(id, *got.value, replica) ||
                             (known_before && supersedes(*known_before, *got.value));
    if (!known_stale) {
      served.status = ReadResult::found;
      served.source = Source::cache;
      served.name = std::move(got.value->name);
      served.version = got.value->version;
      return CacheVerdict::serve;
    }
    stale_detected_->inc();
    stale = std::move(got.value);
  }
  return CacheVerdict::origin;
}

asio::awaitable<ReadResult> Service::read_from(std::string_view id, Deadline deadline, ReadFrom from,
                                               std::optional<CacheEntry> stale) {
  const std::array<Endpoint*, 2> nodes{&redis_master_, &redis_replica_};
  for (auto n = static_cast<std::size_t>(from); n < nodes.size(); ++n) {
    Endpoint* node = nodes[n];
    const auto started = Clock::now();
    if (deadline.expired(started)) break;
    const bool replica = node == &redis_replica_;
    // What the ledger knows before asking: the reply may predate a repair that lands (and leaves the
    // ledger) while this read is in flight, e.g. a replica's answer overtaken by the master's repair.
    const auto known_before = ledger_.known_entry(id, replica);
    const CacheNode cache_node = replica ? CacheNode::replica : CacheNode::master;
    // Breaker closed: the cache is asked directly and the call accounted as Endpoint::call() would.
    // Open: call() decides (refused at once, or the half-open trial). One co_await for both: each
    // await takes room in this frame, and a frame over 1020 bytes is never recycled by Asio.
    const bool direct = node->allow();
    std::exception_ptr thrown;  // by call(), rethrown here
    auto got = co_await asio::async_initiate<const asio::deferred_t&, void(CacheGet)>(
        [&](auto handler) {
          if (direct)
            return cache_.get(cache_node, id, node->deadline(deadline, {}, started), std::move(handler));
          const auto get = [this, cache_node, id](Deadline d) { return cache_.get(cache_node, id, d); };
          complete_from(node->call<std::optional<CacheEntry>>(deadline, get), thrown, std::move(handler));
        },
        asio::deferred);
    if (thrown) std::rethrow_exception(thrown);
    if (direct) node->account(got.failure, got.message, started);
    ReadResult served;
    const auto verdict = judge_cache_answer(id, replica, known_before, got, served, stale);
    if (verdict == CacheVerdict::serve) co_return served;
    if (verdict == CacheVerdict::origin) break;
  }
  co_return co_await read_origin(id, deadline, std::move(stale));
}

// 2. MariaDB (read_store: the primary, retried after a lost connection; a replica that applied what
//    it received if the primary cannot answer). 3. If neither can, a known-stale entry, marked as
//    such, is better than nothing.
asio::awaitable<ReadResult> Service::read_origin(std::string_view id, Deadline deadline,
                                                 std::optional<CacheEntry> stale) {
  ReadResult result;
  auto joined = co_await reads_.run(
      id, deadline, [&](Deadline d) { return read_user_from_store(id, d); },
      [](const UserRead& r) { return r.value.has_value(); });
  UserRead read;
  if (joined.result) {
    read = std::move(*joined.result);
    if (joined.shared) reads_coalesced_->inc();
  } else {
    read.why.cause = Unavailable::timeout;
    read.why.detail = "request deadline exceeded while waiting for another request's MariaDB read";
  }
  if (read.value) {
    result.source = read.source;
    std::optional<StoredUser>& row = *read.value;
    if (!row) {
      result.status = ReadResult::not_found;
      co_return result;
    }
    result.status = ReadResult::found;
    result.name = row->name;
    result.version = row->version;
    // Not written back from a replica: the primary is away, and a fill would race the writes that
    // resume on a promoted one. The next read after its return fills it.
    // One fill per MariaDB read: the request that made it.
    if (read.source == Source::origin && !joined.shared)
      spawn_fill(id, CacheEntry{row->version, false, std::move(row->name)});
    co_return result;
  }
  if (stale) {
    stale_served_->inc();
    result.status = ReadResult::found;
    result.source = Source::cache;
    result.stale = true;
    result.name = std::move(stale->name);
    result.version = stale->version;
    co_return result;
  }
  result.status = ReadResult::unavailable;
  result.why = std::move(read.why);
  co_return result;
}

asio::awaitable<Service::UserRead> Service::read_user_from_store(std::string_view id, Deadline deadline) {
  Admission::Ticket ticket = co_await mysql_work_.enter(deadline);
  if (ticket.verdict != Admission::admitted) {
    UserRead refused;
    refused.why = not_admitted(ticket.verdict);
    co_return refused;
  }
  co_return co_await read_store<std::optional<StoredUser>>(
      deadline, Clock::duration::zero(), [&](Deadline d) { return store_.get(id, d); },
      [&](Deadline d) { return store_.get_from_replica(id, d); });
}

Unavailable Service::not_admitted(Admission::Verdict verdict) {
  Unavailable why;
  switch (verdict) {
    case Admission::shed_queue_full:
      shed_queue_full_->inc();
      why.cause = Unavailable::shed;
      why.detail = "shed: mysql.max_queued requests were already waiting for MariaDB";
      break;
    case Admission::shed_too_slow:
      shed_too_slow_->inc();
      why.cause = Unavailable::shed;
      why.detail = "shed: at MariaDB's recent pace the wait for a turn would not fit the deadline";
      break;
    case Admission::timed_out:
    case Admission::admitted:
      admission_timeouts_->inc();
      why.cause = Unavailable::timeout;
      why.detail = "request deadline exceeded while waiting for a turn at MariaDB";
      break;
  }
  return why;
}

template <typename T, typename Primary, typename Replica>
asio::awaitable<Service::StoreRead<T>> Service::read_store(Deadline deadline, Clock::duration budget,
                                                           Primary primary, Replica replica) {
  StoreRead<T> out;
  bool called = false;
  Failure failure = Failure::timeout;
  retry_budget_.deposit(Clock::now());
  for (std::uint32_t attempt = 0;; ++attempt) {
    if (deadline.expired()) {
      out.why.detail += "request deadline exceeded; ";
      called = true;  // the deadline, not a breaker, is why MariaDB was not asked (again)
      failure = Failure::timeout;
      break;
    }
    auto got = co_await mysql_.call<T>(deadline, noting_asked(called, primary), budget);
    if (got.ok()) {
      out.value = std::move(got.value);
      out.source = Source::origin;
      co_return out;
    }
    failure = got.failure;
    out.why.detail += "MariaDB: " + got.message + "; ";
    if (got.failure != Failure::unavailable || !mysql_.allow() || attempt >= config_.resilience.read_retries)
      break;
    // A retry only within the budget: a sick MariaDB must not get a second wave of every read.
    if (!retry_budget_.withdraw(Clock::now())) {
      retries_denied_->inc();
      out.why.detail += "retry budget spent; ";
      break;
    }
    retries_spent_->inc();
  }
  Clock::duration retry_in = until_next_call(mysql_);
  if (mysql_replica_ && !deadline.expired()) {
    auto got = co_await mysql_replica_->call<T>(deadline, noting_asked(called, replica), budget);
    if (got.ok()) {
      out.value = std::move(got.value);
      out.source = Source::origin_replica;
      out.why = {};
      co_return out;
    }
    failure = got.failure;
    out.why.detail += "MariaDB replica: " + got.message + "; ";
    retry_in = std::min(retry_in, until_next_call(*mysql_replica_));
  }
  std::string detail = std::move(out.why.detail);
  if (detail.ends_with("; ")) detail.resize(detail.size() - 2);
  out.why = unavailable(mysql_, called, failure, Effect::none, std::move(detail));
  out.why.retry_in = retry_in;
  co_return out;
}

asio::awaitable<ListResult> Service::list_users(std::string_view after, std::uint32_t limit,
                                                Deadline deadline) {
  ListResult result;
  Admission::Ticket ticket = co_await mysql_work_.enter(deadline);
  if (ticket.verdict != Admission::admitted) {
    result.why = not_admitted(ticket.verdict);
    co_return result;
  }
  // One more than asked: whether a next page exists, without a last empty one.
  auto read = co_await read_store<std::vector<ListedUser>>(
      deadline, deadline.remaining(), [&](Deadline d) { return store_.list(after, limit + 1, d); },
      [&](Deadline d) { return store_.list_from_replica(after, limit + 1, d); });
  ticket.permit.release();
  if (!read.value) {
    result.why = std::move(read.why);
    co_return result;
  }
  result.status = ListResult::ok;
  result.source = read.source;
  result.users = std::move(*read.value);
  result.more = result.users.size() > limit;
  if (result.more) result.users.resize(limit);
  co_return result;
}

Unavailable Service::unavailable(const Endpoint& endpoint, bool called, Failure failure, Effect effect,
                                 std::string detail) const {
  Unavailable why;
  why.cause = !called                       ? Unavailable::not_called
              : failure == Failure::timeout ? Unavailable::timeout
                                            : Unavailable::failed;
  why.effect = effect;
  why.retry_in = until_next_call(endpoint);
  why.detail = std::move(detail);
  return why;
}

// While the breaker is closed the next request calls the endpoint; while it is open, its next probe
// does (one in flight ends within the endpoint's budget).
Clock::duration Service::until_next_call(const Endpoint& endpoint) const {
  if (endpoint.allow()) return Clock::duration::zero();
  const auto all = endpoints();
  for (std::size_t i = 0; i < all.size() && i < probe_timers_.size(); ++i) {
    if (all[i] != &endpoint || !probe_timers_[i]) continue;
    const auto left = probe_timers_[i]->expiry() - Clock::now();
    return left > Clock::duration::zero() ? left : endpoint.budget();
  }
  return config_.resilience.probe_interval;
}

void Service::spawn_fill(std::string_view id, CacheEntry entry) {
  if (ledger_.untrusted() || !redis_master_.allow() || background_ >= config_.cache.max_background_fills ||
      !running_) {
    fills_skipped_->inc();
    return;
  }
  ++background_;
  fills_->inc();
  asio::co_spawn(executor_, fill(std::string(id), std::move(entry)), asio::detached);
}

asio::awaitable<void> Service::fill(std::string id, CacheEntry entry) {
  co_await redis_master_.call<bool>(Deadline::after(redis_master_.budget()),
                                    [&](Deadline d) { return cache_.store_if_newer(id, entry, d); });
  --background_;
}

// ---- writes -------------------------------------------------------------------------------

asio::awaitable<bool> Service::update_cache(std::string_view id, const CacheEntry& entry, Deadline request) {
  // The write is committed: give the cache update its own budget even if the request's is spent,
  // bounded so the answer is not held long (on failure it is queued for repair anyway).
  if (request.remaining() < 5ms)
    request = Deadline::after(std::min<Clock::duration>(5ms, redis_master_.budget()));
  auto r = co_await redis_master_.call<bool>(request,
                                             [&](Deadline d) { return cache_.store_if_newer(id, entry, d); });
  co_return r.ok();
}

// A deadlock or a lock wait timeout is a conflict with another transaction of the moment, and
// MariaDB rolled the statement back, so running it again is safe and usually succeeds; once is
// enough (a conflict that persists is not resolved by hammering), and never past the request's
// deadline (the second call's budget is cut to it like every call's).
template <typename T, typename Fn>
asio::awaitable<Outcome<T>> Service::write_store(Deadline deadline, Fn fn) {
  auto r = co_await mysql_.call<T>(deadline, fn);
  if (r.ok() || !r.conflict || deadline.expired()) co_return r;
  write_retries_->inc();
  co_return co_await mysql_.call<T>(deadline, fn);
}

asio::awaitable<WriteResult> Service::put_user(std::string_view id, std::string_view name, Deadline deadline,
                                               Precondition when) {
  WriteResult result;
  // Readers arriving from now on must not share a MariaDB read that started before this write.
  reads_.forget(id);
  Admission::Ticket ticket = co_await mysql_work_.enter(deadline);
  if (ticket.verdict != Admission::admitted) {
    result.why = not_admitted(ticket.verdict);
    co_return result;
  }
  bool called = false;
  auto store = [&](Deadline d) { return store_.put(id, name, when, d); };
  auto put = co_await write_store<PutResult>(deadline, noting_asked(called, store));
  ticket.permit.release();
  if (!put.ok() && put.effect == Effect::unknown) remember_uncertain(id);
  if (!put.ok()) {
    result.why = unavailable(mysql_, called, put.failure, put.effect, "MariaDB: " + put.message);
    co_return result;
  }
  if (put.value.precondition_failed) co_return co_await precondition_failed(id, deadline);
  const CacheEntry entry{put.value.version, false, std::string(name)};
  const bool applied = co_await update_cache(id, entry, deadline);
  ledger_.record_write(id, entry, applied, Clock::now());
  result.status = put.value.created ? WriteResult::created : WriteResult::updated;
  result.version = put.value.version;
  co_return result;
}

asio::awaitable<WriteResult> Service::delete_user(std::string_view id, Deadline deadline, Precondition when) {
  WriteResult result;
  reads_.forget(id);  // as in put_user
  Admission::Ticket ticket = co_await mysql_work_.enter(deadline);
  if (ticket.verdict != Admission::admitted) {
    result.why = not_admitted(ticket.verdict);
    co_return result;
  }
  bool called = false;
  auto store = [&](Deadline d) { return store_.remove(id, when, d); };
  auto removed = co_await write_store<RemoveResult>(deadline, noting_asked(called, store));
  ticket.permit.release();
  if (!removed.ok() && removed.effect == Effect::unknown) remember_uncertain(id);
  if (!removed.ok()) {
    result.why = unavailable(mysql_, called, removed.failure, removed.effect, "MariaDB: " + removed.message);
    co_return result;
  }
  if (removed.value.precondition_failed) co_return co_await precondition_failed(id, deadline);
  if (!removed.value.removed) {
    // MariaDB has no such user, yet the cache may still hold a value whose deletion was never
    // acknowledged (an earlier DELETE whose answer was lost): left there, it would answer 200 right
    // after this 404. It is replaced now, or by the refresh as soon as the master can be asked.
    if (!co_await tombstone_cached_value(id, deadline)) remember_uncertain(id);
    result.status = WriteResult::not_found;
    co_return result;
  }
  const CacheEntry tombstone{removed.value.version, true, {}};
  const bool applied = co_await update_cache(id, tombstone, deadline);
  ledger_.record_write(id, tombstone, applied, Clock::now());
  result.status = WriteResult::deleted;
  result.version = removed.value.version;
  co_return result;
}

// The condition was checked by the write's statement; this only reports and repairs. A cached value
// whose row is gone (a DELETE whose answer was lost) would otherwise keep showing the client a
// version that no conditional write can match, and one older than the row a version it cannot see.
asio::awaitable<WriteResult> Service::precondition_failed(std::string_view id, Deadline deadline) {
  WriteResult result;
  result.status = WriteResult::precondition_failed;
  const StoreSync sync = co_await sync_cache_with_store(id, deadline);
  if (!sync.synced) remember_uncertain(id);
  if (sync.read && sync.row) {
    result.exists = true;
    result.version = sync.row->version;
  }
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
  while (!uncertain_.empty() && running_ && mysql_.allow() && redis_master_.allow()) {
    const std::string id = *uncertain_.begin();
    const StoreSync sync =
        co_await sync_cache_with_store(id, Deadline::after(mysql_.budget() + redis_master_.budget()));
    if (!sync.synced) co_return;
    uncertain_.erase(id);
    refreshed_->inc();
  }
}

asio::awaitable<Service::StoreSync> Service::sync_cache_with_store(std::string_view id, Deadline request) {
  StoreSync sync;
  auto row =
      co_await mysql_.call<std::optional<StoredUser>>(request, [&](Deadline d) { return store_.get(id, d); });
  if (!row.ok()) co_return sync;
  sync.read = true;
  sync.row = std::move(row.value);
  if (sync.row) {
    const CacheEntry target{sync.row->version, false, sync.row->name};
    auto r = co_await redis_master_.call<bool>(
        request, [&](Deadline d) { return cache_.store_if_newer(id, target, d); });
    if (!r.ok()) co_return sync;
    ledger_.record_master_update(id, target, Clock::now());
  } else if (!co_await tombstone_cached_value(id, request)) {
    co_return sync;
  }
  sync.synced = true;
  co_return sync;
}

// MariaDB has no row for `id`: a value cached for it is replaced by a tombstone at the value's own
// version, so exactly that value goes (compare-and-set: anything newer that landed meanwhile wins),
// and the replica is watched until it has the tombstone. False if the master could not be asked or
// could not answer.
asio::awaitable<bool> Service::tombstone_cached_value(std::string_view id, Deadline request) {
  auto cached = co_await redis_master_.call<std::optional<CacheEntry>>(
      request, [&](Deadline d) { return cache_.get(CacheNode::master, id, d); });
  if (!cached.ok()) co_return false;
  if (!cached.value || cached.value->tombstone) co_return true;
  // A local, not a temporary inside the co_await: GCC 12 destroys such a temporary twice.
  const CacheEntry tombstone{cached.value->version, true, {}};
  auto r = co_await redis_master_.call<bool>(
      request, [&](Deadline d) { return cache_.store_if_newer(id, tombstone, d); });
  if (!r.ok()) co_return false;
  ledger_.record_master_update(id, tombstone, Clock::now());
  co_return true;
}

// ---- background: probes and repairs ---------------------------------------------------------

void Service::start() {
  if (running_) return;
  running_ = true;
  probe_timers_.clear();
  for (Endpoint* e : endpoints()) {
    probe_timers_.push_back(std::make_unique<asio::steady_timer>(executor_));
    ++loops_running_;
    asio::co_spawn(executor_, probe_loop(*e, *probe_timers_.back()), asio::detached);
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

asio::awaitable<Outcome<Done>> Service::probe_cache(CacheNode node, Deadline d) {
  auto r = co_await cache_.ping(node, d);
  if (!r.ok()) co_return Outcome<Done>::fail(r.failure, std::move(r.message), r.effect);
  if (const auto offset = r.value.replication_offset) {
    if (node == CacheNode::master) {
      replica_freshness_.master_offset(*offset, Clock::now());
    } else {
      replica_freshness_.replica_offset(*offset);
    }
  }
  co_return Outcome<Done>::success({});
}

void Service::replica_changed() {
  replica_freshness_.forget();
}

void Service::master_changed() {
  replica_freshness_.forget();
  // The prober of the master (second in endpoints() order after the MariaDB ones) runs at once.
  const auto all = endpoints();
  for (std::size_t i = 0; i < all.size(); ++i)
    if (all[i] == &redis_master_ && i < probe_timers_.size() && probe_timers_[i]) probe_timers_[i]->cancel();
}

asio::awaitable<void> Service::probe_loop(Endpoint& endpoint, asio::steady_timer& timer) {
  while (running_) {
    const auto started = Clock::now();
    const bool was_usable = endpoint.allow();
    co_await endpoint.probe();
    if (!running_) break;
    if (&endpoint == &redis_master_ && !was_usable && endpoint.allow()) wake_repairer();
    timer.expires_at(started + config_.resilience.probe_interval);
    co_await timer.async_wait(use_nothrow);
  }
  --loops_running_;
}

asio::awaitable<void> Service::invalidate_all() {
  std::uint64_t cursor = 0;
  do {
    if (!running_) co_return;
    auto r = co_await redis_master_.call<std::uint64_t>(
        Deadline::after(redis_master_.budget()),
        [&](Deadline d) { return cache_.invalidate_values_step(cursor, d); });
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
    if (redis_master_.allow()) {
      if (ledger_.untrusted()) co_await invalidate_all();
      auto batch = ledger_.take_repairs(64);
      bool failed = false;
      for (auto& repair : batch) {
        if (failed || !running_) {
          ledger_.repair_finished(repair.id, repair.entry, false, Clock::now());
          continue;
        }
        auto r = co_await redis_master_.call<bool>(Deadline::after(redis_master_.budget()), [&](Deadline d) {
          return cache_.store_if_newer(repair.id, repair.entry, d);
        });
        ledger_.repair_finished(repair.id, repair.entry, r.ok(), Clock::now());
        if (r.ok()) {
          repairs_applied_->inc();
        } else {
          repairs_failed_->inc();
          failed = true;
        }
      }
      more = !failed && ledger_.pending() > 0 && redis_master_.allow();
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
  bool all_up = true, nothing = true;
  for (const Endpoint* e : endpoints()) {
    all_up = all_up && e->health().state() == DepState::up;
    nothing = nothing && e->health().state() == DepState::down;
  }
  if (all_up) return DepState::up;
  return nothing ? DepState::down : DepState::degraded;
}

bool Service::ready() const {
  return overall_state() != DepState::down;
}

std::string Service::health_json() const {
  std::string out = "{\"instance\":\"";
  common::log::append_json_escaped(out, config_.instance_name);
  out += "\",\"status\":\"";
  out += dep_state_name(overall_state());
  out += "\",\"ready\":";
  out += ready() ? "true" : "false";
  out += ",\"dependencies\":{";
  bool first = true;
  for (const Endpoint* e : endpoints()) {
    if (!first) out += ",";
    first = false;
    out += "\"";
    out += e->name();
    out += "\":";
    out += e->health().to_json();
  }
  out += "},\"cache\":{\"repair_queue\":";
  out += std::to_string(ledger_.pending());
  out += ",\"repair_queue_capacity\":";
  out += std::to_string(config_.cache.repair_queue_capacity);
  out += ",\"untrusted\":";
  out += ledger_.untrusted() ? "true" : "false";
  out += "}";
  if (topology_json_) {
    out += ",\"topology\":{";
    out += topology_json_();
    out += "}";
  }
  out += "}";
  return out;
}

}  // namespace user_service
