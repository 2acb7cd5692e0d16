// The service logic against in-memory fakes: every row of the failure matrix that does not need a
// real network, with deadlines shortened so the suite runs in seconds (bounds in the assertions are
// derived from them, with generous margins for a loaded 2-core machine).
#include "user_service/service.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <functional>

#include "testing/event_loop.h"
#include "user_service/fakes.h"

namespace user_service {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using fakes::Behaviour;

class ServiceTest : public ::testing::Test {
 protected:
  ServiceTest() {
    config_.request_deadline = 400ms;
    config_.redis.call_deadline = 40ms;
    config_.mysql.call_deadline = 150ms;
    config_.resilience.probe_interval = 20ms;
    config_.resilience.breaker_failures = 3;
  }

  void Start() {
    service_ = std::make_unique<Service>(io_.get_executor(), config_, store_, cache_, registry_);
    service_->start();
    WaitFor([&] { return service_->overall_state() == DepState::up; }, 2s);
  }

  void TearDown() override {
    if (service_) Run(service_->stop());
  }

  template <typename T>
  T Run(asio::awaitable<T> a) {
    return testing_support::run(io_, std::move(a));
  }
  bool WaitFor(const std::function<bool()>& cond, Clock::duration limit) {
    return testing_support::wait_for(io_, cond, limit);
  }
  void Settle(Clock::duration d) { testing_support::settle(io_, d); }

  Deadline RequestDeadline() const { return Deadline::after(config_.request_deadline); }
  ReadResult Get(const std::string& id) { return Run(service_->get_user(id, RequestDeadline())); }
  WriteResult Put(const std::string& id, const std::string& name) {
    return Run(service_->put_user(id, name, RequestDeadline()));
  }
  WriteResult Delete(const std::string& id) { return Run(service_->delete_user(id, RequestDeadline())); }

  // "user X with name N is stored" and "... is cached", at the same version.
  void Seed(const std::string& id, const std::string& name) {
    const auto v = ++store_.sequence;
    store_.rows[id] = StoredUser{name, v};
    cache_.seed(id, CacheEntry{v, false, name});
  }

  // Starts with probes too rare to matter (only a request can find MariaDB back), then has writes
  // fail as `mode` says until MariaDB's breaker opens.
  void StartAndOpenTheMariaDbBreaker(Behaviour::Mode mode) {
    config_.resilience.probe_interval = 30s;
    Start();
    store_.behaviour.mode = mode;
    for (std::uint32_t i = 0; i < config_.resilience.breaker_failures; ++i)
      EXPECT_EQ(Put("u-" + std::to_string(i), "X").status, WriteResult::unavailable);
    ASSERT_TRUE(service_->mysql().health().breaker_open());
  }

  Clock::duration Timed(const std::function<void()>& f) {
    const auto t0 = Clock::now();
    f();
    return Clock::now() - t0;
  }

  asio::io_context io_;
  Config config_;
  common::metrics::Registry registry_;
  fakes::FakeStore store_{io_.get_executor()};
  fakes::FakeCache cache_{io_.get_executor()};
  std::unique_ptr<Service> service_;
};

TEST_F(ServiceTest, CacheHitMissFillAndNotFound) {
  Start();
  Seed("u-1", "Jack");
  auto r = Get("u-1");
  EXPECT_EQ(r.status, ReadResult::found);
  EXPECT_EQ(r.source, Source::cache);
  EXPECT_EQ(r.name, "Jack");

  store_.rows["u-2"] = StoredUser{"Joe", 7};
  r = Get("u-2");
  EXPECT_EQ(r.status, ReadResult::found);
  EXPECT_EQ(r.source, Source::origin);
  ASSERT_TRUE(WaitFor([&] { return cache_.master.entries.count("u-2") == 1; }, 1s));  // filled
  EXPECT_EQ(cache_.master.entries["u-2"].version, 7u);
  r = Get("u-2");
  EXPECT_EQ(r.source, Source::cache);

  r = Get("nobody");
  EXPECT_EQ(r.status, ReadResult::not_found);
  EXPECT_EQ(r.source, Source::origin);
  EXPECT_EQ(cache_.master.entries.count("nobody"), 0u);
}

TEST_F(ServiceTest, WritesGoToMariaDbThenTheCacheWithIncreasingVersions) {
  Start();
  EXPECT_EQ(Put("u-1", "Joe").status, WriteResult::created);
  ASSERT_EQ(store_.rows.count("u-1"), 1u);
  const auto v1 = store_.rows["u-1"].version;
  EXPECT_EQ(cache_.master.entries["u-1"].version, v1);
  EXPECT_EQ(Put("u-1", "Jim").status, WriteResult::updated);
  EXPECT_GT(cache_.master.entries["u-1"].version, v1);
  auto r = Get("u-1");
  EXPECT_EQ(r.source, Source::cache);
  EXPECT_EQ(r.name, "Jim");

  EXPECT_EQ(Delete("u-1").status, WriteResult::deleted);
  EXPECT_TRUE(cache_.master.entries["u-1"].tombstone);
  r = Get("u-1");
  EXPECT_EQ(r.status, ReadResult::not_found);  // the tombstone is a miss, MariaDB says absent
  EXPECT_EQ(Delete("u-1").status, WriteResult::not_found);
  // Re-created: its version beats the tombstone, so the cache takes it.
  EXPECT_EQ(Put("u-1", "Again").status, WriteResult::created);
  EXPECT_FALSE(cache_.master.entries["u-1"].tombstone);
  EXPECT_EQ(Get("u-1").name, "Again");
}

TEST_F(ServiceTest, MariaDbDownServesCachedReadsAndRefusesTheRest) {
  Start();
  Seed("cached", "Jack");
  store_.rows["uncached"] = StoredUser{"Joe", 1};
  store_.behaviour.mode = Behaviour::fail;
  auto r = Get("cached");
  EXPECT_EQ(r.status, ReadResult::found);
  EXPECT_EQ(r.source, Source::cache);
  EXPECT_EQ(Get("uncached").status, ReadResult::unavailable);
  const auto before = store_.rows;
  EXPECT_EQ(Put("new", "X").status, WriteResult::unavailable);
  EXPECT_EQ(Put("cached", "X").status, WriteResult::unavailable);
  EXPECT_EQ(Delete("cached").status, WriteResult::unavailable);
  EXPECT_EQ(store_.rows.size(), before.size());
  EXPECT_EQ(store_.rows["cached"].name, "Jack");
  EXPECT_EQ(cache_.master.entries["cached"].name, "Jack");
}

TEST_F(ServiceTest, MariaDbHangingFailsWithinTheDeadlineThenFastOnceTheBreakerOpens) {
  Start();
  Seed("cached", "Jack");
  store_.rows["uncached"] = StoredUser{"Joe", 1};
  store_.behaviour.mode = Behaviour::hang;
  ReadResult r;
  const auto first = Timed([&] { r = Get("uncached"); });
  EXPECT_EQ(r.status, ReadResult::unavailable);
  EXPECT_GE(first, config_.mysql.call_deadline - 5ms);
  EXPECT_LT(first, config_.request_deadline);
  // Cached reads keep their healthy latency meanwhile.
  const auto cached = Timed([&] { r = Get("cached"); });
  EXPECT_EQ(r.source, Source::cache);
  EXPECT_LT(cached, 30ms);
  // The probes and calls open the breaker; then refusals are immediate.
  ASSERT_TRUE(WaitFor([&] { return service_->mysql().health().breaker_open(); }, 3s));
  WriteResult w;
  const auto fast = Timed([&] { w = Put("new", "X"); });
  EXPECT_EQ(w.status, WriteResult::unavailable);
  EXPECT_LT(fast, 20ms);
  EXPECT_EQ(store_.rows.count("new"), 0u);
  // Recovery: the background probe closes the breaker without user traffic.
  store_.behaviour.mode = Behaviour::ok;
  const auto recovered =
      Timed([&] { ASSERT_TRUE(WaitFor([&] { return service_->mysql().health().allow(); }, 2s)); });
  EXPECT_LT(recovered, config_.mysql.call_deadline + 4 * config_.resilience.probe_interval + 200ms);
  EXPECT_EQ(Put("new", "X").status, WriteResult::created);
}

// Recovery with no refusal window: the probes are made too rare to matter, so only a user request
// can be the one that finds the dependency back.
TEST_F(ServiceTest, WriteRightAfterARefusingMariaDbReturnsSucceeds) {
  StartAndOpenTheMariaDbBreaker(Behaviour::fail);  // refused at once
  // While it refuses, a request is the trial: it asks for a connection, which is refused, and
  // the statement is not even sent.
  const int calls = store_.calls;
  WriteResult w;
  const auto refused = Timed([&] { w = Put("new", "X"); });
  EXPECT_EQ(w.status, WriteResult::unavailable);
  EXPECT_LT(refused, 20ms);
  EXPECT_EQ(store_.connects_now, 1);
  EXPECT_EQ(store_.calls, calls);
  EXPECT_TRUE(service_->mysql().health().breaker_open());
  // It is back: the very next write succeeds and closes the breaker.
  store_.behaviour.mode = Behaviour::ok;
  EXPECT_EQ(Put("new", "X").status, WriteResult::created);
  EXPECT_TRUE(service_->mysql().allow());
  EXPECT_EQ(service_->mysql().trials(), 2);
  EXPECT_EQ(store_.rows.count("new"), 1u);
}

// A half-open trial is a real call: when it fails, the answer must not say MariaDB was not asked
// (a client told "not called" takes the write as certainly not applied, and this one landed).
TEST_F(ServiceTest, ATrialThatFailsIsNotReportedAsNotCalled) {
  StartAndOpenTheMariaDbBreaker(Behaviour::fail);
  store_.behaviour.mode = Behaviour::ok;
  store_.behaviour.ack_lost = true;                     // applied, then the answer is lost ...
  store_.behaviour.ack_failure = Failure::unavailable;  // ... at once, so the next request is a trial too
  const WriteResult put = Put("new", "X");
  EXPECT_EQ(put.status, WriteResult::unavailable);
  EXPECT_EQ(put.why.cause, Unavailable::failed);
  EXPECT_EQ(put.why.effect, Effect::unknown);
  EXPECT_EQ(store_.rows.count("new"), 1u);
  const WriteResult del = Delete("new");
  EXPECT_EQ(del.status, WriteResult::unavailable);
  EXPECT_EQ(del.why.cause, Unavailable::failed);
  EXPECT_EQ(del.why.effect, Effect::unknown);
  EXPECT_EQ(store_.rows.count("new"), 0u);
  store_.behaviour = Behaviour{};
  store_.behaviour.mode = Behaviour::reject;  // the statement is sent and refused
  const ReadResult read = Get("other");
  EXPECT_EQ(read.status, ReadResult::unavailable);
  EXPECT_EQ(read.why.cause, Unavailable::failed);
  EXPECT_EQ(service_->mysql().trials(), 3);
  // Not asked at all: a trial that cannot connect, and calls while the trial is not allowed.
  store_.behaviour.mode = Behaviour::fail;
  EXPECT_EQ(Put("later", "X").why.cause, Unavailable::not_called);
}

TEST_F(ServiceTest, OneTrialAtATimeTheOthersFailFastMeanwhile) {
  StartAndOpenTheMariaDbBreaker(Behaviour::fail);
  store_.behaviour.mode = Behaviour::ok;
  store_.behaviour.delay = 60ms;  // the trial takes a while
  std::optional<WriteResult> trial, other;
  Clock::duration other_took{};
  asio::co_spawn(io_, service_->put_user("a", "A", RequestDeadline()),
                 [&](std::exception_ptr, WriteResult r) { trial = r; });
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<WriteResult> {
        const auto t0 = Clock::now();
        auto r = co_await service_->put_user("b", "B", RequestDeadline());
        other_took = Clock::now() - t0;
        co_return r;
      },
      [&](std::exception_ptr, WriteResult r) { other = r; });
  ASSERT_TRUE(WaitFor([&] { return trial && other; }, 2s));
  EXPECT_EQ(trial->status, WriteResult::created);
  EXPECT_EQ(other->status, WriteResult::unavailable);
  EXPECT_LT(other_took, 40ms);  // did not wait for the trial's 60 ms
  EXPECT_EQ(service_->mysql().trials(), 1);
  EXPECT_EQ(store_.rows.count("b"), 0u);
  EXPECT_TRUE(service_->mysql().allow());
}

TEST_F(ServiceTest, AfterTimeoutsNoRequestIsTheTrialTheProbeFindsItBack) {
  StartAndOpenTheMariaDbBreaker(Behaviour::hang);
  store_.behaviour.mode = Behaviour::ok;
  // Back, but nothing shows it yet except a probe: requests keep failing fast rather than one of
  // them paying a deadline for a dependency that may still be dead.
  const int calls = store_.calls;
  WriteResult w;
  const auto fast = Timed([&] { w = Put("new", "X"); });
  EXPECT_EQ(w.status, WriteResult::unavailable);
  EXPECT_LT(fast, 20ms);
  EXPECT_EQ(store_.calls, calls);
  EXPECT_EQ(store_.connects_now, 0);
  EXPECT_EQ(service_->mysql().trials(), 0);
  EXPECT_TRUE(Run(service_->mysql().probe()));
  EXPECT_EQ(Put("new", "X").status, WriteResult::created);
}

TEST_F(ServiceTest, WriteRightAfterARefusingRedisMasterReturnsUpdatesTheCache) {
  config_.resilience.probe_interval = 30s;
  Start();
  cache_.master.behaviour.mode = Behaviour::fail;
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(Put("u", "X" + std::to_string(i)).status, i == 0 ? WriteResult::created : WriteResult::updated);
  ASSERT_TRUE(service_->redis_master().health().breaker_open());
  cache_.master.behaviour.mode = Behaviour::ok;
  EXPECT_EQ(Put("v", "V").status, WriteResult::created);
  ASSERT_EQ(cache_.master.entries.count("v"), 1u);  // written by the request itself
  EXPECT_EQ(cache_.master.entries["v"].version, store_.rows["v"].version);
  EXPECT_TRUE(service_->redis_master().allow());
  EXPECT_GE(cache_.master.connects_now, 1);
  // The writes that missed the cache are repaired now that it is back, without waiting for a probe.
  ASSERT_TRUE(WaitFor([&] { return cache_.master.entries["u"].version == store_.rows["u"].version; }, 2s));
}

// The read that finds the master back is its breaker's trial: a connect first (which, as a real
// one, completes later, not within the call), then the read, served from the cache.
TEST_F(ServiceTest, ReadRightAfterARefusingRedisMasterReturnsIsServedFromTheCache) {
  config_.resilience.probe_interval = 30s;
  Start();
  Seed("u", "Jack");
  cache_.master.behaviour.mode = Behaviour::fail;
  cache_.replica.behaviour.mode = Behaviour::fail;
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(Get("u").source, Source::origin);
  ASSERT_TRUE(service_->redis_master().health().breaker_open());
  cache_.master.behaviour.mode = Behaviour::ok;
  const int connects = cache_.master.connects_now;
  const auto r = Get("u");
  EXPECT_EQ(r.status, ReadResult::found);
  EXPECT_EQ(r.source, Source::cache);
  EXPECT_EQ(r.name, "Jack");
  EXPECT_GT(cache_.master.connects_now, connects) << "the read was the trial";
  EXPECT_TRUE(service_->redis_master().allow());
}

TEST_F(ServiceTest, SlowMariaDbUnderTheDeadlineStillAnswers) {
  Start();
  store_.rows["u"] = StoredUser{"Joe", 1};
  store_.behaviour.delay = 60ms;  // under the 150 ms call deadline
  EXPECT_EQ(Get("u").source, Source::origin);
  EXPECT_EQ(Put("u", "Jim").status, WriteResult::updated);
  EXPECT_EQ(Delete("u").status, WriteResult::deleted);
}

TEST_F(ServiceTest, ReadIsRetriedOnceAfterALostConnection) {
  Start();
  store_.rows["u"] = StoredUser{"Joe", 1};
  store_.behaviour.fail_next = 1;
  auto r = Get("u");
  EXPECT_EQ(r.status, ReadResult::found);
  EXPECT_EQ(r.source, Source::origin);
  // Writes are not retried.
  store_.behaviour.fail_next = 1;
  EXPECT_EQ(Put("u", "Jim").status, WriteResult::unavailable);
  EXPECT_EQ(store_.rows["u"].name, "Joe");
}

// A deadlock or lock wait timeout rolled the write back: it is made once more within the request's
// deadline (counted), and only once; other failures are not repeated (above).
TEST_F(ServiceTest, AWriteRolledBackOverALockConflictIsMadeOnceMore) {
  Start();
  Seed("u", "Jack");
  const auto retries = [&] {
    return registry_.counter("user_service_mysql_write_retries_total", "").value();
  };
  store_.behaviour.conflict_next = 1;
  auto w = Put("u", "Joe");
  EXPECT_EQ(w.status, WriteResult::updated);
  EXPECT_EQ(store_.rows["u"].name, "Joe");
  EXPECT_EQ(cache_.master.entries["u"].name, "Joe");
  EXPECT_EQ(retries(), 1);
  EXPECT_FALSE(service_->mysql().health().breaker_open());

  store_.behaviour.conflict_next = 1;
  EXPECT_EQ(Delete("u").status, WriteResult::deleted);
  EXPECT_EQ(store_.rows.count("u"), 0u);
  EXPECT_EQ(retries(), 2);

  // Conflicting twice: 503, nothing written, certainly not applied, and no third attempt.
  const int calls = store_.calls;
  store_.behaviour.conflict_next = 5;
  w = Put("u", "Jim");
  EXPECT_EQ(w.status, WriteResult::unavailable);
  EXPECT_EQ(w.why.effect, Effect::none);
  EXPECT_EQ(store_.calls - calls, 2);
  EXPECT_EQ(store_.rows.count("u"), 0u);
  EXPECT_EQ(retries(), 3);
  EXPECT_EQ(service_->uncertain_writes(), 0u);
}

TEST_F(ServiceTest, MasterDownReadsFromReplicaAndRepairsWhenItReturns) {
  Start();
  Seed("u", "Jack");
  cache_.master.behaviour.mode = Behaviour::fail;
  auto r = Get("u");
  EXPECT_EQ(r.source, Source::cache);  // from the replica
  EXPECT_EQ(r.name, "Jack");
  EXPECT_GT(cache_.replica.calls, 0);

  // The write succeeds; its cache update is queued.
  EXPECT_EQ(Put("u", "Joe").status, WriteResult::updated);
  EXPECT_EQ(service_->ledger().pending(), 1u);
  EXPECT_EQ(cache_.master.entries["u"].name, "Jack");
  // The replica still holds Jack: this instance knows it is stale and reads MariaDB.
  r = Get("u");
  EXPECT_EQ(r.status, ReadResult::found);
  EXPECT_EQ(r.source, Source::origin);
  EXPECT_EQ(r.name, "Joe");

  // A delete while the master is down: tombstone queued too, reads say 404 from MariaDB.
  Seed("d", "Dora");
  EXPECT_EQ(Delete("d").status, WriteResult::deleted);
  EXPECT_EQ(Get("d").status, ReadResult::not_found);

  // The master returns: within a probe interval or two the queue is applied and reads use the cache.
  cache_.master.behaviour.mode = Behaviour::ok;
  const auto t = Timed([&] { ASSERT_TRUE(WaitFor([&] { return service_->ledger().pending() == 0; }, 2s)); });
  EXPECT_LT(t, 1s);
  EXPECT_EQ(cache_.master.entries["u"].name, "Joe");
  EXPECT_TRUE(cache_.master.entries["d"].tombstone);
  r = Get("u");
  EXPECT_EQ(r.source, Source::cache);
  EXPECT_EQ(r.name, "Joe");
}

TEST_F(ServiceTest, KnownStaleEntryIsServedMarkedOnlyWhenMariaDbIsDownToo) {
  Start();
  Seed("u", "Jack");
  cache_.master.behaviour.mode = Behaviour::fail;
  EXPECT_EQ(Put("u", "Joe").status, WriteResult::updated);
  store_.behaviour.mode = Behaviour::fail;
  auto r = Get("u");
  EXPECT_EQ(r.status, ReadResult::found);
  EXPECT_EQ(r.source, Source::cache);
  EXPECT_TRUE(r.stale);
  EXPECT_EQ(r.name, "Jack");
  // Uncached reads and writes: 503.
  EXPECT_EQ(Get("other").status, ReadResult::unavailable);
  EXPECT_EQ(Put("u", "Jim").status, WriteResult::unavailable);
}

TEST_F(ServiceTest, LaggingReplicaIsRecognisedFromRecentWrites) {
  config_.cache.recent_writes_window = 10s;
  Start();
  Seed("u", "Jack");
  cache_.replicate = false;  // the replica never got the write
  EXPECT_EQ(Put("u", "Joe").status, WriteResult::updated);
  EXPECT_EQ(service_->ledger().pending(), 0u);
  cache_.master.behaviour.mode = Behaviour::fail;
  auto r = Get("u");
  EXPECT_EQ(r.source, Source::origin);
  EXPECT_EQ(r.name, "Joe");
}

TEST_F(ServiceTest, SlowMasterFallsBackToReplicaWithinDeadlineThenFast) {
  Start();
  Seed("u", "Jack");
  cache_.master.behaviour.mode = Behaviour::hang;
  ReadResult r;
  const auto first = Timed([&] { r = Get("u"); });
  EXPECT_EQ(r.source, Source::cache);
  EXPECT_GE(first, config_.redis.call_deadline - 5ms);
  EXPECT_LT(first, config_.request_deadline);
  ASSERT_TRUE(WaitFor([&] { return service_->redis_master().health().breaker_open(); }, 2s));
  const auto fast = Timed([&] { r = Get("u"); });
  EXPECT_EQ(r.source, Source::cache);
  EXPECT_LT(fast, 20ms);
  // Writes still succeed (the cache update is skipped and queued).
  WriteResult w;
  const auto write = Timed([&] { w = Put("u", "Joe"); });
  EXPECT_EQ(w.status, WriteResult::updated);
  EXPECT_LT(write, 20ms);
}

TEST_F(ServiceTest, BothRedisDownReadsFromMariaDbWithoutPilingUpCacheCalls) {
  Start();
  Seed("u", "Jack");
  cache_.master.behaviour.mode = Behaviour::hang;
  cache_.replica.behaviour.mode = Behaviour::hang;
  auto r = Get("u");
  EXPECT_EQ(r.status, ReadResult::found);
  EXPECT_EQ(r.source, Source::origin);
  ASSERT_TRUE(WaitFor(
      [&] {
        return service_->redis_master().health().breaker_open() &&
               service_->redis_replica().health().breaker_open();
      },
      2s));
  const int master_calls = cache_.master.calls, replica_calls = cache_.replica.calls;
  for (int i = 0; i < 20; ++i) {
    const auto t = Timed([&] { r = Get("u"); });
    EXPECT_EQ(r.source, Source::origin);
    EXPECT_LT(t, 20ms);
  }
  EXPECT_EQ(cache_.master.calls, master_calls);
  EXPECT_EQ(cache_.replica.calls, replica_calls);
  EXPECT_EQ(Put("u", "Joe").status, WriteResult::updated);
  EXPECT_EQ(Delete("u").status, WriteResult::deleted);
}

TEST_F(ServiceTest, EverythingDownIsFast503AndNotReady) {
  Start();
  Seed("u", "Jack");
  store_.behaviour.mode = Behaviour::fail;
  cache_.master.behaviour.mode = Behaviour::fail;
  cache_.replica.behaviour.mode = Behaviour::fail;
  // Fast: every dependency fails at once, so no read waits for a call's deadline.
  for (int i = 0; i < 5; ++i) {
    const auto t = Timed([&] { EXPECT_EQ(Get("u").status, ReadResult::unavailable); });
    EXPECT_LT(t, config_.redis.call_deadline);
  }
  EXPECT_EQ(Put("u", "X").status, WriteResult::unavailable);
  ASSERT_TRUE(WaitFor([&] { return !service_->ready(); }, 2s));
  EXPECT_NE(service_->health_json().find("\"status\":\"down\""), std::string::npos);
}

TEST_F(ServiceTest, StartsWithEverythingDownAndBecomesReadyWhenTheyArrive) {
  store_.behaviour.mode = Behaviour::fail;
  cache_.master.behaviour.mode = Behaviour::fail;
  cache_.replica.behaviour.mode = Behaviour::fail;
  service_ = std::make_unique<Service>(io_.get_executor(), config_, store_, cache_, registry_);
  service_->start();
  Settle(100ms);
  EXPECT_FALSE(service_->ready());
  const std::string health = service_->health_json();
  for (const char* dep : {"\"mysql\"", "\"redis-master\"", "\"redis-replica\""})
    EXPECT_NE(health.find(dep), std::string::npos) << health;
  EXPECT_EQ(Put("u", "X").status, WriteResult::unavailable);
  store_.behaviour.mode = Behaviour::ok;
  cache_.master.behaviour.mode = Behaviour::ok;
  cache_.replica.behaviour.mode = Behaviour::ok;
  const auto t =
      Timed([&] { ASSERT_TRUE(WaitFor([&] { return service_->overall_state() == DepState::up; }, 2s)); });
  EXPECT_LT(t, 1s);
  EXPECT_TRUE(service_->ready());
  EXPECT_EQ(Put("u", "X").status, WriteResult::created);
}

TEST_F(ServiceTest, RepairQueueOverflowDistrustsTheCacheUntilInvalidated) {
  config_.cache.repair_queue_capacity = 2;
  Start();
  Seed("a", "A");
  Seed("b", "B");
  Seed("c", "C");
  Seed("z", "Z");
  cache_.master.behaviour.mode = Behaviour::fail;
  EXPECT_EQ(Put("a", "A2").status, WriteResult::updated);
  EXPECT_EQ(Put("b", "B2").status, WriteResult::updated);
  EXPECT_EQ(Put("c", "C2").status, WriteResult::updated);  // overflow
  EXPECT_TRUE(service_->ledger().untrusted());
  // Nothing cached is trusted now, not even users this instance never wrote.
  EXPECT_EQ(Get("z").source, Source::origin);
  EXPECT_EQ(Get("c").name, "C2");
  cache_.master.behaviour.mode = Behaviour::ok;
  cache_.replicate = false;  // the replica has not received the invalidation yet
  ASSERT_TRUE(WaitFor([&] { return !service_->ledger().untrusted(); }, 2s));
  EXPECT_EQ(cache_.invalidations, 1);
  // Stale values are gone from the master; reads fill it again from MariaDB.
  EXPECT_EQ(Get("c").name, "C2");
  ASSERT_TRUE(WaitFor([&] { return cache_.master.entries.count("c") == 1; }, 1s));
  EXPECT_EQ(Get("c").source, Source::cache);
  EXPECT_EQ(Get("c").name, "C2");
  // The replica is trusted only once it can have caught up with the invalidation.
  EXPECT_TRUE(service_->ledger().replica_untrusted());
  cache_.master.behaviour.mode = Behaviour::fail;
  const auto r = Get("c");
  EXPECT_EQ(r.source, Source::origin);
  EXPECT_EQ(r.name, "C2");
}

TEST_F(ServiceTest, ConcurrentWritersAndReadersNeverLeaveAnOlderValueCached) {
  Start();
  store_.behaviour.delay = 1ms;
  cache_.master.behaviour.delay = 2ms;
  std::vector<std::future<WriteResult>> writes;
  std::vector<std::future<ReadResult>> reads;
  std::vector<std::string> names;  // the string_views passed down must outlive the calls
  for (int i = 0; i < 50; ++i)
    names.push_back("v" + std::to_string(i));
  for (int i = 0; i < 50; ++i) {
    writes.push_back(
        asio::co_spawn(io_, service_->put_user("hot", names[static_cast<std::size_t>(i)], RequestDeadline()),
                       asio::use_future));
    reads.push_back(asio::co_spawn(io_, service_->get_user("hot", RequestDeadline()), asio::use_future));
  }
  ASSERT_TRUE(WaitFor(
      [&] {
        for (auto& f : writes)
          if (f.wait_for(0s) != std::future_status::ready) return false;
        for (auto& f : reads)
          if (f.wait_for(0s) != std::future_status::ready) return false;
        return true;
      },
      5s));
  Settle(50ms);  // background fills land
  ASSERT_EQ(cache_.master.entries.count("hot"), 1u);
  EXPECT_EQ(cache_.master.entries["hot"].version, store_.rows["hot"].version);
  EXPECT_EQ(cache_.master.entries["hot"].name, store_.rows["hot"].name);
}

TEST_F(ServiceTest, WriteWhoseAcknowledgementWasLostIsReconciledFromMariaDb) {
  Start();
  Seed("u", "Jack");
  Seed("d", "Dora");
  store_.behaviour.ack_lost = true;
  EXPECT_EQ(Put("u", "Joe").status, WriteResult::unavailable);  // committed, but we cannot know
  EXPECT_EQ(Delete("d").status, WriteResult::unavailable);
  EXPECT_EQ(store_.rows["u"].name, "Joe");
  EXPECT_EQ(store_.rows.count("d"), 0u);
  store_.behaviour.ack_lost = false;
  ASSERT_TRUE(WaitFor([&] { return service_->uncertain_writes() == 0; }, 2s));
  EXPECT_EQ(cache_.master.entries["u"].name, "Joe");
  EXPECT_EQ(cache_.master.entries["u"].version, store_.rows["u"].version);
  EXPECT_TRUE(cache_.master.entries["d"].tombstone);
  EXPECT_EQ(Get("u").name, "Joe");
  EXPECT_EQ(Get("d").status, ReadResult::not_found);
}

// The catalog's "write/delete when 'mysql' resets connections" and "MariaDB goes away during the
// write/delete": MariaDB ran the statement, then the connection was lost before its answer arrived
// ("Lost connection to server during query"): a 503 whose write may have committed. Not a timeout,
// yet just as unknown: the cache must be brought to what MariaDB holds once it answers again.
TEST_F(ServiceTest, WriteWhoseConnectionWasLostMidStatementIsReconciledFromMariaDb) {
  Start();
  Seed("u", "Jack");
  Seed("d", "Dora");
  store_.behaviour.ack_lost = true;
  store_.behaviour.ack_failure = Failure::unavailable;
  EXPECT_EQ(Put("u", "Joe").status, WriteResult::unavailable);
  EXPECT_EQ(Delete("d").status, WriteResult::unavailable);
  EXPECT_EQ(store_.rows["u"].name, "Joe");  // committed: only the answer was lost
  EXPECT_EQ(store_.rows.count("d"), 0u);
  store_.behaviour.ack_lost = false;
  ASSERT_TRUE(WaitFor([&] { return service_->uncertain_writes() == 0; }, 2s));
  EXPECT_EQ(cache_.master.entries["u"].name, "Joe");
  EXPECT_EQ(cache_.master.entries["u"].version, store_.rows["u"].version);
  EXPECT_TRUE(cache_.master.entries["d"].tombstone);
  auto r = Get("u");
  EXPECT_EQ(r.source, Source::cache);
  EXPECT_EQ(r.name, "Joe");
  EXPECT_EQ(Get("d").status, ReadResult::not_found);
}

TEST_F(ServiceTest, AWriteTheServerRefusedIsNotTrackedAsUncertain) {
  Start();
  store_.behaviour.mode = Behaviour::reject;
  EXPECT_EQ(Put("u", "Joe").status, WriteResult::unavailable);
  EXPECT_EQ(service_->uncertain_writes(), 0u);
}

// Found by the chaos soak: a DELETE answered 404 left the value of a user whose earlier deletion
// had committed unacknowledged in the cache, so reads answered 200 right after the 404.
TEST_F(ServiceTest, DeleteOfAnAbsentUserRemovesItsStaleCachedValue) {
  Start();
  Seed("d", "Dora");
  store_.rows.erase("d");  // deleted, but the cache was never told
  EXPECT_EQ(Delete("d").status, WriteResult::not_found);
  EXPECT_TRUE(cache_.master.entries["d"].tombstone);
  EXPECT_EQ(Get("d").status, ReadResult::not_found);
  EXPECT_EQ(service_->uncertain_writes(), 0u);
  // A newer value is never replaced by that tombstone.
  EXPECT_EQ(Put("d", "Dan").status, WriteResult::created);
  EXPECT_EQ(Delete("nobody").status, WriteResult::not_found);
  EXPECT_EQ(Get("d").name, "Dan");
}

TEST_F(ServiceTest, DeleteOfAnAbsentUserWhileTheMasterIsDownRepairsTheCacheWhenItReturns) {
  Start();
  Seed("d", "Dora");
  store_.rows.erase("d");
  cache_.master.behaviour.mode = Behaviour::fail;
  EXPECT_EQ(Delete("d").status, WriteResult::not_found);
  EXPECT_EQ(service_->uncertain_writes(), 1u);
  cache_.master.behaviour.mode = Behaviour::ok;
  ASSERT_TRUE(WaitFor([&] { return service_->uncertain_writes() == 0; }, 2s));
  EXPECT_TRUE(cache_.master.entries["d"].tombstone);
  EXPECT_EQ(Get("d").status, ReadResult::not_found);
}

// Found by the chaos soak (limit_data on the master's replies: the master flaps, reads fall back to
// the replica while repairs land): a replica read sent while a repair was queued was answered after
// the repair had landed and left the ledger, and its pre-repair value was served as fresh.
TEST_F(ServiceTest, AReplicaReplyOvertakenByARepairIsStillKnownStale) {
  config_.redis.call_deadline = 200ms;
  config_.cache.replica_lag_window = 0ms;  // only the read's own memory of the queued repair counts
  Start();
  Seed("u", "Jack");
  cache_.master.behaviour.mode = Behaviour::fail;
  ASSERT_TRUE(WaitFor([&] { return service_->redis_master().health().breaker_open(); }, 2s));
  EXPECT_EQ(Put("u", "Joe").status, WriteResult::updated);  // the cache update is queued
  EXPECT_EQ(service_->ledger().pending(), 1u);
  cache_.replica.behaviour.delay = 120ms;
  cache_.replica.answer_as_of_call = true;  // the replica answers "Jack", as of the call
  auto read = asio::co_spawn(io_, service_->get_user("u", RequestDeadline()), asio::use_future);
  Settle(5ms);                                   // the replica read is in flight
  cache_.master.behaviour.mode = Behaviour::ok;  // the master returns: the repair lands
  ASSERT_TRUE(WaitFor([&] { return service_->ledger().pending() == 0; }, 2s));
  ASSERT_EQ(read.wait_for(0s), std::future_status::timeout) << "the repair should land first";
  ASSERT_TRUE(WaitFor([&] { return read.wait_for(0s) == std::future_status::ready; }, 2s));
  const ReadResult r = read.get();
  EXPECT_EQ(r.name, "Joe");
  EXPECT_EQ(r.source, Source::origin);
}

// Failures known to have left nothing behind are not reconciled (there is nothing to learn); a
// deadline that passed while the statement was out is.
TEST_F(ServiceTest, OnlyWritesThatMayHaveRunAreReconciled) {
  Start();
  Seed("u", "Jack");
  store_.behaviour.mode = Behaviour::reject;  // MariaDB refused the statement
  EXPECT_EQ(Put("u", "Joe").status, WriteResult::unavailable);
  EXPECT_EQ(Delete("u").status, WriteResult::unavailable);
  store_.behaviour.mode = Behaviour::ok;
  store_.behaviour.fail_next = 2;  // no connection: never sent
  EXPECT_EQ(Put("u", "Joe").status, WriteResult::unavailable);
  EXPECT_EQ(Delete("u").status, WriteResult::unavailable);
  EXPECT_EQ(service_->uncertain_writes(), 0u);
  store_.behaviour.mode = Behaviour::fail;  // refused connections, until the breaker opens
  ASSERT_TRUE(WaitFor(
      [&] {
        Put("u", "Joe");
        return service_->mysql().health().breaker_open();
      },
      3s));
  EXPECT_EQ(Put("u", "Joe").status, WriteResult::unavailable);  // short-circuited
  EXPECT_EQ(service_->uncertain_writes(), 0u);
  EXPECT_EQ(store_.rows["u"].name, "Jack");
  store_.behaviour.mode = Behaviour::ok;
  ASSERT_TRUE(WaitFor([&] { return service_->mysql().health().allow(); }, 2s));
  store_.behaviour.mode = Behaviour::hang;  // sent, and no answer by the deadline
  EXPECT_EQ(Put("u", "Joe").status, WriteResult::unavailable);
  EXPECT_EQ(service_->uncertain_writes(), 1u);
}

// The catalog once saw, 108 ms after the Redis master came back, a cached read answer the value from
// before a write: the repair had landed on the master, the next read's master call failed, and the
// replica had not received the repair yet. A repaired entry stays known-stale for replica reads
// until the replica shows it (or the replica lag window ends), whatever the recent-writes setting.
TEST_F(ServiceTest, RepairedEntryIsStaleOnALaggingReplicaUntilItCatchesUp) {
  ASSERT_EQ(config_.cache.recent_writes_window, Clock::duration::zero());  // the default: off
  Start();
  Seed("u", "Jack");
  Seed("d", "Dora");
  cache_.master.behaviour.mode = Behaviour::fail;
  EXPECT_EQ(Put("u", "Joe").status, WriteResult::updated);
  EXPECT_EQ(Delete("d").status, WriteResult::deleted);
  EXPECT_EQ(service_->ledger().pending(), 2u);
  // The master returns and takes the repairs; the replica lags behind them.
  cache_.replicate = false;
  cache_.master.behaviour.mode = Behaviour::ok;
  ASSERT_TRUE(WaitFor([&] { return service_->ledger().pending() == 0; }, 2s));
  EXPECT_EQ(cache_.master.entries["u"].name, "Joe");
  EXPECT_TRUE(cache_.master.entries["d"].tombstone);
  EXPECT_EQ(cache_.replica.entries["u"].name, "Jack");
  EXPECT_EQ(cache_.replica.entries["d"].name, "Dora");
  EXPECT_EQ(Get("u").source, Source::cache);  // the master is trusted for what it acknowledged
  // The master fails the next reads: the replica's entries are the old ones, known stale.
  cache_.master.behaviour.mode = Behaviour::hang;
  auto r = Get("u");
  EXPECT_EQ(r.status, ReadResult::found);
  EXPECT_EQ(r.source, Source::origin);
  EXPECT_EQ(r.name, "Joe");
  EXPECT_EQ(Get("d").status, ReadResult::not_found);
  EXPECT_GT(cache_.replica.calls, 0);
  // The replica catches up: its entry is served again, and the watch on it ends.
  cache_.catch_up();
  r = Get("u");
  EXPECT_EQ(r.source, Source::cache);
  EXPECT_EQ(r.name, "Joe");
  EXPECT_EQ(Get("d").status, ReadResult::not_found);
  EXPECT_EQ(service_->ledger().watched(), 0u);  // (Redis reads show a tombstone as a miss, so there
                                                // a tombstone's watch ends with the window instead)
}

// Another instance's write reached the master, not the replica (its link is cut or slow): this instance
// cannot know that id is stale, but the probes show the replica behind the master, so when the master
// fails a read the replica's entry is not served; MariaDB is asked. Once the replica shows it caught up,
// it serves again, for redis.replica_max_lag after the last master state it was shown to hold.
TEST_F(ServiceTest, AReplicaShownBehindTheMasterDoesNotServe) {
  config_.redis.replica_max_lag = 300ms;
  Start();
  Seed("u", "Jack");
  cache_.replicate = false;
  ASSERT_TRUE(
      Run(cache_.store_if_newer("u", CacheEntry{store_.sequence + 1, false, "Joe"}, RequestDeadline())).ok());
  store_.rows["u"] = StoredUser{"Joe", store_.sequence + 1};  // what the other instance wrote
  // Both nodes probed since, for longer than the replica may lag.
  Settle(config_.redis.replica_max_lag + 3 * config_.resilience.probe_interval);
  EXPECT_FALSE(service_->replica_freshness().current(Clock::now()));
  cache_.master.behaviour.mode = Behaviour::fail;
  auto r = Get("u");
  EXPECT_EQ(r.status, ReadResult::found);
  EXPECT_EQ(r.source, Source::origin);
  EXPECT_EQ(r.name, "Joe");
  EXPECT_GT(cache_.replica.calls, 0);
  EXPECT_EQ(registry_.counter("user_service_cache_replica_behind_total", "").value(), 1);

  // MariaDB fails too: the replica's entry is all there is, served marked stale.
  store_.behaviour.mode = Behaviour::fail;
  r = Get("u");
  EXPECT_EQ(r.status, ReadResult::found);
  EXPECT_TRUE(r.stale);
  EXPECT_EQ(r.name, "Jack");
  store_.behaviour.mode = Behaviour::ok;

  // The replica catches up with what the master held when last probed: it serves again...
  cache_.catch_up();
  ASSERT_TRUE(WaitFor([&] { return service_->replica_freshness().current(Clock::now()); }, 2s));
  r = Get("u");
  EXPECT_EQ(r.source, Source::cache);
  EXPECT_EQ(r.name, "Joe");
  // ...until nothing newer shows it close to the master (which is not answering).
  Settle(config_.redis.replica_max_lag + 2 * config_.resilience.probe_interval);
  r = Get("u");
  EXPECT_EQ(r.source, Source::origin);
  EXPECT_EQ(r.name, "Joe");
}

// The same for an entry the master received from a refresh after a write whose outcome was unknown.
TEST_F(ServiceTest, RefreshedEntryIsStaleOnALaggingReplicaToo) {
  Start();
  Seed("u", "Jack");
  cache_.replicate = false;
  store_.behaviour.ack_lost = true;
  store_.behaviour.ack_failure = Failure::unavailable;
  EXPECT_EQ(Put("u", "Joe").status, WriteResult::unavailable);
  store_.behaviour.ack_lost = false;
  ASSERT_TRUE(WaitFor([&] { return service_->uncertain_writes() == 0; }, 2s));
  EXPECT_EQ(cache_.master.entries["u"].name, "Joe");
  EXPECT_EQ(cache_.replica.entries["u"].name, "Jack");
  cache_.master.behaviour.mode = Behaviour::fail;
  const auto r = Get("u");
  EXPECT_EQ(r.source, Source::origin);
  EXPECT_EQ(r.name, "Joe");
}

// A cache reply that was not this read's (Failure::desync: the adapter dropped the connection) is
// never served, and the read goes to MariaDB rather than to another node.
TEST_F(ServiceTest, DesynchronisedCacheReplyIsNotServedAndMariaDbAnswers) {
  Start();
  Seed("u", "Jack");
  store_.rows["u"].name = "Joe";  // so a cache answer would show
  cache_.master.behaviour.mode = Behaviour::desync;
  const int replica_calls = cache_.replica.calls;
  const auto r = Get("u");
  EXPECT_EQ(r.status, ReadResult::found);
  EXPECT_EQ(r.source, Source::origin);
  EXPECT_EQ(r.name, "Joe");
  EXPECT_EQ(cache_.replica.calls, replica_calls);
  const std::string metrics = registry_.render();
  const std::string line =
      "user_service_dependency_calls_total{dependency=\"redis-master\",outcome=\"desync\"} ";
  const auto at = metrics.find(line);
  ASSERT_NE(at, std::string::npos) << metrics;
  EXPECT_GE(std::strtod(metrics.c_str() + at + line.size(), nullptr), 1.0);
}

TEST_F(ServiceTest, WithoutRecentWritesExternallyReseededEntriesAreServed) {
  Start();  // default: recent writes off
  EXPECT_EQ(Put("u", "Joe").status, WriteResult::created);
  // A test resets the data and seeds the user again, unversioned, on both nodes.
  cache_.master.entries.clear();
  cache_.replica.entries.clear();
  store_.rows.clear();
  Seed("u", "Jack");
  cache_.master.entries["u"].version = 0;
  cache_.replica.entries["u"].version = 0;
  EXPECT_EQ(Get("u").source, Source::cache);
  cache_.master.behaviour.mode = Behaviour::fail;
  auto r = Get("u");
  EXPECT_EQ(r.source, Source::cache) << service_->ledger().watched() << " " << service_->ledger().pending()
                                     << " " << cache_.replica.calls << " " << service_->health_json();
  EXPECT_EQ(r.name, "Jack");
}

TEST_F(ServiceTest, HealthJsonNamesEveryDependency) {
  Start();
  const std::string h = service_->health_json();
  EXPECT_NE(h.find("\"status\":\"up\""), std::string::npos) << h;
  EXPECT_NE(h.find("\"redis-replica\":{\"state\":\"up\""), std::string::npos) << h;
  EXPECT_NE(h.find("\"repair_queue\":0"), std::string::npos) << h;
  const std::string m = registry_.render();
  EXPECT_NE(m.find("user_service_dependency_calls_total{dependency=\"mysql\",outcome=\"ok\"}"),
            std::string::npos);
  EXPECT_NE(m.find("user_service_cache_repair_queue_size 0"), std::string::npos);
  EXPECT_NE(m.find("user_service_circuit_breaker_open{dependency=\"redis-master\"} 0"), std::string::npos);
}

// ---- resilience patterns (issue 14 section 3) ---------------------------------------------------

// Every future ready, running the loop meanwhile.
template <typename T>
bool AllReady(std::vector<std::future<T>>& fs) {
  for (auto& f : fs)
    if (f.wait_for(0s) != std::future_status::ready) return false;
  return true;
}

TEST_F(ServiceTest, ConcurrentMissesOfOneIdShareOneMariaDbRead) {
  Start();
  Seed("hot", "Jack");
  cache_.master.entries.clear();  // a Redis flush: every read misses
  cache_.replica.entries.clear();
  store_.behaviour.delay = 30ms;
  const int calls = store_.calls;
  std::vector<std::future<ReadResult>> reads;
  for (int i = 0; i < 20; ++i)
    reads.push_back(asio::co_spawn(io_, service_->get_user("hot", RequestDeadline()), asio::use_future));
  ASSERT_TRUE(WaitFor([&] { return AllReady(reads); }, 5s));
  for (auto& f : reads) {
    const ReadResult r = f.get();
    EXPECT_EQ(r.status, ReadResult::found);
    EXPECT_EQ(r.source, Source::origin);
    EXPECT_EQ(r.name, "Jack");
  }
  EXPECT_EQ(store_.calls - calls, 1);
  EXPECT_EQ(registry_.counter("user_service_reads_coalesced_total", "").value(), 19);
  EXPECT_EQ(registry_.counter("user_service_cache_fills_total", "").value(), 1);  // one fill, by the reader
  ASSERT_TRUE(WaitFor([&] { return cache_.master.entries.count("hot") == 1; }, 1s));
}

TEST_F(ServiceTest, AReadArrivingAfterAWriteDoesNotShareAReadStartedBeforeIt) {
  Start();
  Seed("u", "Old");
  cache_.master.behaviour.mode = Behaviour::fail;  // every read goes to MariaDB, writes still commit
  cache_.replica.behaviour.mode = Behaviour::fail;
  store_.behaviour.delay = 60ms;
  store_.answer_as_of_call = true;
  auto before = asio::co_spawn(io_, service_->get_user("u", RequestDeadline()), asio::use_future);
  Settle(10ms);                  // its MariaDB read is in flight
  store_.behaviour.delay = 0ms;  // the write overtakes it
  ASSERT_EQ(Put("u", "New").status, WriteResult::updated);
  const ReadResult after = Get("u");
  EXPECT_EQ(after.name, "New");
  ASSERT_TRUE(WaitFor([&] { return before.wait_for(0s) == std::future_status::ready; }, 2s));
  EXPECT_EQ(before.get().name, "Old");  // its SELECT ran before the write
}

TEST_F(ServiceTest, MariaDbWorkBeyondTheAdmissionBoundIsShedAtOnce) {
  config_.mysql.max_in_flight = 2;
  config_.mysql.max_queued = 2;
  Start();
  store_.behaviour.delay = 100ms;
  std::vector<std::string> ids;
  for (int i = 0; i < 10; ++i)
    ids.push_back("w-" + std::to_string(i));
  std::vector<std::future<WriteResult>> writes;
  std::vector<Clock::time_point> started;
  for (const auto& id : ids)
    writes.push_back(asio::co_spawn(io_, service_->put_user(id, "X", RequestDeadline()), asio::use_future));
  const auto t0 = Clock::now();
  ASSERT_TRUE(WaitFor([&] { return AllReady(writes); }, 5s));
  int created = 0, shed = 0;
  for (auto& f : writes) {
    const WriteResult w = f.get();
    if (w.status == WriteResult::created) ++created;
    if (w.status == WriteResult::unavailable) {
      EXPECT_EQ(w.why.cause, Unavailable::shed);
      EXPECT_EQ(w.why.effect, Effect::none);
      ++shed;
    }
  }
  EXPECT_EQ(created, 4);  // two at once, two queued behind them
  EXPECT_EQ(shed, 6);
  EXPECT_EQ(store_.rows.size(), 4u);  // shed writes left nothing
  EXPECT_LT(Clock::now() - t0, 2s);
  EXPECT_EQ(registry_.counter("user_service_requests_shed_total", "", {{"reason", "queue_full"}}).value(), 6);
}

TEST_F(ServiceTest, ReadRetriesSpendTheRetryBudget) {
  config_.resilience.read_retries = 1;
  config_.resilience.breaker_failures = 100;  // the breaker stays closed: only the budget limits
  config_.resilience.retry_budget_percent = 0;
  config_.resilience.retry_budget_per_s = 0;  // one token, never refilled
  Start();
  store_.behaviour.mode = Behaviour::fail;  // every call: connection refused (a retryable failure)
  const int calls = store_.calls;
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(Get("nobody-" + std::to_string(i)).status, ReadResult::unavailable);
  EXPECT_EQ(store_.calls - calls, 5);  // one retry in all, not four
  EXPECT_EQ(registry_.counter("user_service_read_retries_total", "", {{"outcome", "spent"}}).value(), 1);
  EXPECT_EQ(registry_.counter("user_service_read_retries_total", "", {{"outcome", "denied"}}).value(), 3);
}

}  // namespace
}  // namespace user_service
