// RedisCache (the CachePort on clients::redis) against a real Redis master and replica: the layout
// of entries, the compare-and-set script's rule in every case, replica reads, and the invalidation
// scan. The rule itself (supersedes) is also checked against random operation orders.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <random>

#include "testing/event_loop.h"
#include "testing/servers.h"
#include "user_service/cache_ledger.h"
#include "user_service/redis_cache.h"

namespace user_service {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

std::string Bulk(const std::string& resp) {
  if (resp.empty() || resp[0] != '$' || resp.starts_with("$-1")) return {};
  const auto eol = resp.find("\r\n");
  const long len = std::strtol(resp.c_str() + 1, nullptr, 10);
  return resp.substr(eol + 2, static_cast<std::size_t>(len));
}

class RedisCacheITest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing_support::TempDir();
    master_ = new testing_support::RedisServer(testing_support::RedisServer::start(dir_->path() / "m"));
    replica_ = new testing_support::RedisServer(
        testing_support::RedisServer::start(dir_->path() / "r", master_->port()));
    replica_->wait_replication_up();
  }
  static void TearDownTestSuite() {
    delete replica_;
    delete master_;
    delete dir_;
  }

  void SetUp() override {
    config_.ttl = std::chrono::seconds(60);
    clients::redis::Settings ms;
    ms.port = master_->port();
    ms.name = "redis-master";
    clients::redis::Settings rs;
    rs.port = replica_->port();
    rs.name = "redis-replica";
    master_client_ = std::make_unique<clients::redis::Client>(io_.get_executor(), ms);
    replica_client_ = std::make_unique<clients::redis::Client>(io_.get_executor(), rs);
    master_client_->start();
    replica_client_->start();
    cache_ = std::make_unique<RedisCache>(*master_client_, *replica_client_, config_);
    ASSERT_TRUE(Run(master_client_->wait_connected(clients::Deadline(5s))));
    ASSERT_TRUE(Run(replica_client_->wait_connected(clients::Deadline(5s))));
  }
  void TearDown() override {
    cache_.reset();
    master_client_.reset();
    replica_client_.reset();
    io_.run_for(20ms);
  }

  template <typename T>
  T Run(asio::awaitable<T> a) {
    return testing_support::run(io_, std::move(a));
  }
  Deadline D() { return Deadline::after(1s); }
  bool Store(const std::string& id, CacheEntry e) {
    auto r = Run(cache_->store_if_newer(id, e, D()));
    EXPECT_TRUE(r.ok()) << r.message;
    return r.value;
  }
  std::optional<CacheEntry> Get(const std::string& id, CacheNode n = CacheNode::master) {
    auto r = Run(cache_->get(n, id, D()));
    EXPECT_TRUE(r.ok()) << r.message;
    return r.value;
  }

  static testing_support::TempDir* dir_;
  static testing_support::RedisServer* master_;
  static testing_support::RedisServer* replica_;
  asio::io_context io_;
  RedisConfig config_;
  std::unique_ptr<clients::redis::Client> master_client_, replica_client_;
  std::unique_ptr<RedisCache> cache_;
};
testing_support::TempDir* RedisCacheITest::dir_ = nullptr;
testing_support::RedisServer* RedisCacheITest::master_ = nullptr;
testing_support::RedisServer* RedisCacheITest::replica_ = nullptr;

TEST_F(RedisCacheITest, LayoutAndCompareAndSet) {
  EXPECT_FALSE(Get("cas").has_value());
  EXPECT_TRUE(Store("cas", {5, false, "Jack"}));
  EXPECT_EQ(Bulk(master_->command("HGET user:cas id")), "cas");
  EXPECT_EQ(Bulk(master_->command("HGET user:cas name")), "Jack");
  EXPECT_EQ(Bulk(master_->command("HGET user:cas version")), "5");
  const auto ttl = std::strtol(master_->command("PTTL user:cas").c_str() + 1, nullptr, 10);
  EXPECT_GT(ttl, 55'000);
  EXPECT_LE(ttl, 60'000);
  auto e = Get("cas");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->name, "Jack");
  EXPECT_EQ(e->version, 5u);

  EXPECT_FALSE(Store("cas", {4, false, "Older"}));  // older loses
  EXPECT_FALSE(Store("cas", {5, false, "Same"}));   // same version: no change
  EXPECT_EQ(Get("cas")->name, "Jack");
  EXPECT_TRUE(Store("cas", {6, false, "Joe"}));
  EXPECT_EQ(Get("cas")->name, "Joe");
  EXPECT_TRUE(Store("cas", {6, true, {}}));  // the delete of version 6 beats its value
  EXPECT_FALSE(Get("cas").has_value());
  EXPECT_EQ(Bulk(master_->command("GET tombstone:user:cas")), "6");
  EXPECT_EQ(master_->command("EXISTS user:cas"), ":0\r\n");
  EXPECT_FALSE(Store("cas", {6, false, "Joe"}));  // a late fill cannot resurrect it
  EXPECT_FALSE(Store("cas", {5, false, "Jack"}));
  EXPECT_FALSE(Store("cas", {6, true, {}}));
  EXPECT_TRUE(Store("cas", {9, false, "Again"}));  // re-created
  EXPECT_EQ(master_->command("EXISTS tombstone:user:cas"), ":0\r\n");
  EXPECT_EQ(Get("cas")->name, "Again");
}

TEST_F(RedisCacheITest, ForeignEntriesAndBinaryValues) {
  // Seeded by hand without a version: version 0, replaced by any write.
  master_->command("HSET user:seeded id seeded name Jack");
  auto e = Get("seeded");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->version, 0u);
  EXPECT_TRUE(Store("seeded", {1, false, "Joe"}));
  // A version that is not a number is never served.
  master_->command("HSET user:garbage name x version abc");
  EXPECT_FALSE(Get("garbage").has_value());
  // Names with quotes, newlines and UTF-8 survive.
  const std::string name = "'; DROP TABLE user; --\n\"\xC3\xA9\xF0\x9F\x98\x80";
  EXPECT_TRUE(Store("weird id/x", {3, false, name}));
  EXPECT_EQ(Get("weird id/x")->name, name);
}

// A hash under user:x that names another id cannot be the reply to "HMGET user:x": treated as a
// desynchronised connection (never served; the connection is dropped and comes back). A hash that
// names no id was not written by the service: a miss. Either is replaced by the service's next
// update of that user, whatever version it claims (it is not ours to order).
TEST_F(RedisCacheITest, AHashNamingAnotherIdIsNeverServed) {
  master_->command("HSET user:victim id intruder name Mallory version 99");
  const auto first = master_client_->connection_id();
  auto r = Run(cache_->get(CacheNode::master, "victim", D()));
  EXPECT_EQ(r.failure, Failure::desync) << r.message;
  EXPECT_FALSE(r.value.has_value());
  EXPECT_EQ(master_client_->status().counters.resets, 1u);
  ASSERT_TRUE(Run(master_client_->wait_connected(clients::Deadline(5s))));
  EXPECT_GT(master_client_->connection_id(), first);
  EXPECT_TRUE(Store("victim", {3, false, "Vic"}));
  auto e = Get("victim");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->name, "Vic");
  EXPECT_EQ(Bulk(master_->command("HGET user:victim id")), "victim");

  master_->command("HSET user:noid name Jack version 99");
  EXPECT_FALSE(Get("noid").has_value());
  EXPECT_EQ(master_client_->status().counters.resets, 1u);
  EXPECT_TRUE(Store("noid", {2, false, "Joe"}));
  e = Get("noid");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->name, "Joe");
  EXPECT_EQ(e->version, 2u);
}

TEST_F(RedisCacheITest, ReplicaReadsAndPing) {
  EXPECT_TRUE(Store("rep", {7, false, "Rita"}));
  std::optional<CacheEntry> e;
  for (int i = 0; i < 100 && !(e = Get("rep", CacheNode::replica)); ++i)
    io_.run_for(10ms);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->name, "Rita");
  EXPECT_TRUE(Run(cache_->ping(CacheNode::master, D())).ok());
  EXPECT_TRUE(Run(cache_->ping(CacheNode::replica, D())).ok());
}

// The probes report replication offsets that show whether the replica holds what the master held
// (replica_freshness.h): after a write the master's offset moves ahead, and the replica reaches it.
TEST_F(RedisCacheITest, ProbesReportComparableReplicationOffsets) {
  const auto before = Run(cache_->ping(CacheNode::master, D()));
  ASSERT_TRUE(before.ok()) << before.message;
  ASSERT_TRUE(before.value.replication_offset);
  EXPECT_TRUE(Store("offset", {1, false, "Olga"}));
  const auto after = Run(cache_->ping(CacheNode::master, D()));
  ASSERT_TRUE(after.ok() && after.value.replication_offset);
  EXPECT_GT(*after.value.replication_offset, *before.value.replication_offset);
  std::uint64_t replica = 0;
  for (int i = 0; i < 200 && replica < *after.value.replication_offset; ++i) {
    const auto r = Run(cache_->ping(CacheNode::replica, D()));
    ASSERT_TRUE(r.ok()) << r.message;
    ASSERT_TRUE(r.value.replication_offset);
    replica = *r.value.replication_offset;
    if (replica < *after.value.replication_offset) io_.run_for(10ms);
  }
  EXPECT_GE(replica, *after.value.replication_offset);
  const auto e = Get("offset", CacheNode::replica);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->name, "Olga");
}

TEST_F(RedisCacheITest, InvalidationRemovesValuesAndKeepsTombstones) {
  for (int i = 0; i < 1200; ++i)
    master_->command("HSET user:inv-" + std::to_string(i) + " name n version 1");
  EXPECT_TRUE(Store("inv-dead", {3, true, {}}));
  master_->command("SET unrelated 1");
  std::uint64_t cursor = 0;
  int steps = 0;
  do {
    auto r = Run(cache_->invalidate_values_step(cursor, D()));
    ASSERT_TRUE(r.ok()) << r.message;
    cursor = r.value;
    ++steps;
  } while (cursor != 0 && steps < 10'000);
  EXPECT_EQ(cursor, 0u);
  EXPECT_EQ(master_->command("EXISTS user:inv-5"), ":0\r\n");
  EXPECT_EQ(master_->command("EXISTS user:cas"), ":0\r\n");
  EXPECT_EQ(Bulk(master_->command("GET tombstone:user:inv-dead")), "3");
  EXPECT_EQ(Bulk(master_->command("GET unrelated")), "1");
}

TEST_F(RedisCacheITest, BlackholedMasterTimesOutAtTheDeadline) {
  EXPECT_TRUE(Store("down", {1, false, "x"}));
  master_->pause();
  const auto t0 = Clock::now();
  auto r = Run(cache_->get(CacheNode::master, "down", Deadline::after(100ms)));
  const auto took = Clock::now() - t0;
  master_->resume();
  EXPECT_EQ(r.failure, Failure::timeout);
  EXPECT_GE(took, 90ms);
  EXPECT_LT(took, 600ms);
}

// Random interleavings of writes, deletes and late fills, applied in a random order: the cache ends
// with the newest entry, whatever the order (the order-independence the guarantee rests on).
TEST_F(RedisCacheITest, AnyArrivalOrderEndsWithTheNewestEntry) {
  std::mt19937 rng(12345);
  for (int round = 0; round < 30; ++round) {
    const std::string id = "order-" + std::to_string(round);
    std::vector<CacheEntry> updates;
    for (std::uint64_t v = 1; v <= 6; ++v) {
      updates.push_back({v, false, "v" + std::to_string(v)});
      if (rng() % 3 == 0) updates.push_back({v, true, {}});
    }
    CacheEntry newest = updates.front();
    for (const auto& u : updates)
      if (supersedes(u, newest)) newest = u;
    std::shuffle(updates.begin(), updates.end(), rng);
    for (const auto& u : updates)
      Run(cache_->store_if_newer(id, u, D()));
    const auto got = Get(id);
    if (newest.tombstone) {
      EXPECT_FALSE(got.has_value()) << id;
      EXPECT_EQ(Bulk(master_->command("GET tombstone:user:" + id)), std::to_string(newest.version));
    } else {
      ASSERT_TRUE(got) << id;
      EXPECT_EQ(got->version, newest.version);
      EXPECT_EQ(got->name, newest.name);
    }
  }
}

}  // namespace
}  // namespace user_service
