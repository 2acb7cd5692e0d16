// The cache feed against the fakes: one lease holder at a time applies committed changes to the
// master (coalesced per id, newest wins), stores its position beside the lease, and another instance
// takes over from that position when the holder stops or can no longer read the binlog.
#include "user_service/cache_feed.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <functional>

#include "testing/event_loop.h"
#include "user_service/fakes.h"

namespace user_service {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// One instance: its own master endpoint (breaker) and binlog reader, the shared Redis master.
struct Instance {
  Instance(asio::io_context& io, std::string owner, fakes::FakeCache& cache, common::metrics::Registry& r)
      : master("redis-master", 40ms, 3, r),
        source(io.get_executor()),
        feed(io.get_executor(), {.owner = std::move(owner), .lease_ttl = 200ms, .batch = 64}, source, cache,
             master, r) {
    master.set_probe([&cache](Deadline d) -> asio::awaitable<Outcome<Done>> {
      auto pong = co_await cache.ping(CacheNode::master, d);
      co_return pong.ok() ? Outcome<Done>::success({}) : Outcome<Done>::fail(pong.failure, pong.message);
    });
  }
  Endpoint master;
  fakes::FakeChangeSource source;
  CacheFeed feed;
};

class CacheFeedTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (auto* i : {a_.get(), b_.get()})
      if (i) Run(i->feed.stop());
  }
  void Run(asio::awaitable<void> a) { testing_support::run(io_, std::move(a)); }
  void Probe(Endpoint& e) {
    Run([&]() -> asio::awaitable<void> { co_await e.probe(); }());
  }
  bool WaitFor(const std::function<bool()>& cond, Clock::duration limit) {
    return testing_support::wait_for(io_, cond, limit);
  }
  std::unique_ptr<Instance> StartInstance(std::string owner) {
    auto i = std::make_unique<Instance>(io_, std::move(owner), cache_, registry_);
    Probe(i->master);  // up, as the service's prober makes it
    i->feed.start();
    return i;
  }
  // A committed change, as both instances' binlog readers see it.
  void Commit(const std::string& id, CacheEntry e) {
    for (auto* i : {a_.get(), b_.get()})
      if (i) i->source.commit(id, e);
  }
  std::optional<CacheEntry> Cached(const std::string& id) {
    const auto it = cache_.master.entries.find(id);
    return it == cache_.master.entries.end() ? std::nullopt : std::optional(it->second);
  }

  asio::io_context io_;
  // The loop must not stop when it runs out of work between the test's steps.
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
  common::metrics::Registry registry_;
  fakes::FakeCache cache_{io_.get_executor()};
  std::unique_ptr<Instance> a_, b_;
};

TEST_F(CacheFeedTest, OneHolderAppliesCommittedChangesNewestPerIdAndStoresItsPosition) {
  a_ = StartInstance("a");
  ASSERT_TRUE(WaitFor([&] { return a_->feed.holder(); }, 2s));
  b_ = StartInstance("b");
  cache_.master.entries["u1"] = CacheEntry{1, false, "old"};
  Commit("u1", {2, false, "two"});
  Commit("u1", {3, false, "three"});
  Commit("u2", {4, true, ""});
  Commit("u3", {5, false, "five"});
  ASSERT_TRUE(WaitFor([&] { return cache_.position == "0-1-4"; }, 2s)) << cache_.position;
  EXPECT_EQ(Cached("u1")->name, "three");
  EXPECT_EQ(Cached("u1")->version, 3u);
  EXPECT_TRUE(Cached("u2")->tombstone);
  EXPECT_EQ(Cached("u3")->name, "five");
  // Coalesced: u1's two changes arrived in one batch and only the newest was written.
  EXPECT_EQ(registry_.render().find("user_service_cache_feed_changes_total 3") != std::string::npos, true)
      << registry_.render();
  // The other instance never held the lease meanwhile.
  EXPECT_FALSE(b_->feed.holder());
  EXPECT_FALSE(b_->source.running);
}

// A backlog's batch is applied in one round trip (its updates pipelined), not one per change: at 5 ms
// a Redis call, 64 changes one after another outlast the 200 ms lease, another instance takes over
// from the same position, and so on (the HA soak saw the feed stall so after a Redis failover).
TEST_F(CacheFeedTest, ABacklogIsAppliedWithinTheLease) {
  a_ = StartInstance("a");
  ASSERT_TRUE(WaitFor([&] { return a_->feed.holder(); }, 2s));
  b_ = StartInstance("b");
  cache_.master.behaviour.delay = 5ms;
  for (int i = 0; i < 256; ++i)
    Commit("u" + std::to_string(i), {1, false, "n"});
  ASSERT_TRUE(WaitFor([&] { return cache_.position == "0-1-256"; }, 5s)) << cache_.position;
  EXPECT_TRUE(a_->feed.holder());
  EXPECT_FALSE(b_->feed.holder());
  EXPECT_EQ(cache_.master.entries.size(), 256u);
}

TEST_F(CacheFeedTest, AnOlderChangeNeverOverwritesANewerEntry) {
  a_ = StartInstance("a");
  ASSERT_TRUE(WaitFor([&] { return a_->feed.holder(); }, 2s));
  cache_.master.entries["u1"] = CacheEntry{9, false, "newer, from a writer"};
  Commit("u1", {7, false, "older"});
  ASSERT_TRUE(WaitFor([&] { return cache_.position == "0-1-1"; }, 2s));
  EXPECT_EQ(Cached("u1")->name, "newer, from a writer");
}

TEST_F(CacheFeedTest, AnotherInstanceTakesOverFromTheStoredPosition) {
  a_ = StartInstance("a");
  ASSERT_TRUE(WaitFor([&] { return a_->feed.holder(); }, 2s));
  b_ = StartInstance("b");
  Commit("u1", {1, false, "one"});
  ASSERT_TRUE(WaitFor([&] { return cache_.position == "0-1-1"; }, 2s));
  Run(a_->feed.stop());
  Commit("u1", {2, false, "two"});  // committed while nobody feeds
  ASSERT_TRUE(WaitFor([&] { return b_->feed.holder(); }, 2s));
  EXPECT_EQ(b_->source.started_from, "0-1-1");
  ASSERT_TRUE(WaitFor([&] { return Cached("u1") && Cached("u1")->name == "two"; }, 2s));
}

TEST_F(CacheFeedTest, AHolderThatCannotReadTheBinlogLetsAnotherTakeOver) {
  a_ = StartInstance("a");
  ASSERT_TRUE(WaitFor([&] { return a_->feed.holder(); }, 2s));
  ASSERT_TRUE(WaitFor([&] { return cache_.position == "0-1-0"; }, 2s));
  b_ = StartInstance("b");
  a_->source.behaviour.mode = fakes::Behaviour::fail;  // a's path to MariaDB is cut
  Commit("u1", {1, false, "one"});
  // Within the lease TTL (200 ms) of failing, a gives up; b takes the lease and applies the change.
  ASSERT_TRUE(WaitFor([&] { return b_->feed.holder(); }, 3s));
  EXPECT_FALSE(a_->feed.holder());
  ASSERT_TRUE(WaitFor([&] { return Cached("u1") && Cached("u1")->name == "one"; }, 2s));
}

TEST_F(CacheFeedTest, WhileTheMasterIsAwayNothingIsLostAndThePositionWaits) {
  a_ = StartInstance("a");
  ASSERT_TRUE(WaitFor([&] { return a_->feed.holder(); }, 2s));
  ASSERT_TRUE(WaitFor([&] { return cache_.position == "0-1-0"; }, 2s));  // "now", resolved and stored
  Commit("u1", {1, false, "one"});
  ASSERT_TRUE(WaitFor([&] { return cache_.position == "0-1-1"; }, 2s));
  cache_.master.behaviour.mode = fakes::Behaviour::fail;
  Commit("u1", {2, false, "two"});
  io_.run_for(300ms);
  EXPECT_EQ(cache_.position, "0-1-1");
  cache_.master.behaviour.mode = fakes::Behaviour::ok;
  // The breaker of a's master endpoint closes on its next probe (the service's prober does this).
  Probe(a_->master);
  ASSERT_TRUE(WaitFor([&] { return Cached("u1") && Cached("u1")->name == "two"; }, 3s));
  ASSERT_TRUE(WaitFor([&] { return cache_.position == "0-1-2"; }, 2s));
}

// A Redis failover loses the last updates the old master took, and the position saved after them:
// the holder resumes from the position the new master holds and the replay brings them back.
TEST_F(CacheFeedTest, AfterAMasterChangeWhatTheOldMasterLostIsReplayed) {
  a_ = StartInstance("a");
  ASSERT_TRUE(WaitFor([&] { return a_->feed.holder(); }, 2s));
  ASSERT_TRUE(WaitFor([&] { return cache_.position == "0-1-0"; }, 2s));
  Commit("u1", {1, false, "one"});
  ASSERT_TRUE(WaitFor([&] { return cache_.position == "0-1-1"; }, 2s));
  Commit("u2", {2, false, "two"});
  ASSERT_TRUE(WaitFor([&] { return cache_.position == "0-1-2"; }, 2s));
  // The new master has u1 and the position after it, not u2 nor the position after u2.
  cache_.master.entries.erase("u2");
  cache_.position = "0-1-1";
  a_->feed.master_changed();
  ASSERT_TRUE(WaitFor([&] { return Cached("u2") && Cached("u2")->name == "two"; }, 2s));
  EXPECT_TRUE(WaitFor([&] { return cache_.position == "0-1-2" && a_->feed.holder(); }, 2s));
}

}  // namespace
}  // namespace user_service
