// clients::redis::Sentinel against real processes: a Redis master with two replicas and three
// Sentinels (src/testing), plus a fake sentinel that hands out a replica's address. Discovery of the
// master and replicas, the ROLE check refusing a wrong answer, 2 of 3 sentinels down, and a SIGKILLed
// master replaced by Sentinel and adopted through +switch-master.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <memory>
#include <optional>

#include "clients/itest_util.h"
#include "clients/redis.h"
#include "clients/redis_detail.h"
#include "clients/redis_reply_reader.h"
#include "clients/sentinel.h"
#include "clients/sentinel_detail.h"
#include "testing/servers.h"

namespace clients::redis {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;
using itest::Ms;
using itest::run;
using itest::since;
using itest::sleep_for;
using testing_support::RedisServer;
using testing_support::SentinelServer;
using testing_support::TempDir;

constexpr const char* kName = "users";

Address local(std::uint16_t port) {
  return Address{"127.0.0.1", port};
}

// A master, two replicas and three sentinels (quorum 2), all on loopback.
struct Cluster {
  // With `for_failover`, waits until the sentinels know each other too (hello messages through the
  // master every 2 s): a failover needs a quorum that agrees. Discovery alone does not.
  Cluster(const std::filesystem::path& root, bool for_failover) {
    master.emplace(RedisServer::start(root / "master"));
    for (int i = 0; i < 2; ++i)
      replicas.push_back(RedisServer::start(root / ("replica" + std::to_string(i)), master->port()));
    for (auto& r : replicas)
      r.wait_replication_up();
    for (int i = 0; i < 3; ++i)
      sentinels.push_back(
          SentinelServer::start(root / ("sentinel" + std::to_string(i)), kName, master->port()));
    for (auto& s : sentinels)
      s.wait_monitoring(2, for_failover ? 3 : 1, 20s);
  }
  std::vector<Address> sentinel_addresses() const {
    std::vector<Address> out;
    for (const auto& s : sentinels)
      out.push_back(local(s.port()));
    return out;
  }
  std::vector<Address> replica_addresses() const {
    std::vector<Address> out;
    for (const auto& r : replicas)
      out.push_back(local(r.port()));
    std::sort(out.begin(), out.end());
    return out;
  }
  std::optional<RedisServer> master;
  std::vector<RedisServer> replicas;
  std::vector<SentinelServer> sentinels;
};

SentinelSettings settings_for(std::vector<Address> sentinels) {
  SentinelSettings s;
  s.sentinels = std::move(sentinels);
  s.master_name = kName;
  s.query_timeout = 300ms;  // generous: the machine is small and shared
  s.connect_timeout = 500ms;
  return s;
}

// Waits (polling the view) until `pred` holds; false after `limit`.
template <typename Pred>
asio::awaitable<bool> eventually(Pred pred, Ms limit) {
  const auto t0 = Clock::now();
  while (!pred()) {
    if (since(t0) > limit) co_return false;
    co_await sleep_for(10ms);
  }
  co_return true;
}

// A sentinel that lies: it answers get-master-addr-by-name with a fixed address (a replica's), no
// replicas, and accepts subscriptions. Enough of the protocol for clients::redis::Sentinel.
class FakeSentinel {
 public:
  FakeSentinel(asio::io_context& io, Address answer)
      : acceptor_(std::make_shared<tcp::acceptor>(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0))) {
    asio::co_spawn(io, accept_loop(acceptor_, std::move(answer)), asio::detached);
  }
  ~FakeSentinel() {
    boost::system::error_code ignored;
    acceptor_->close(ignored);
  }
  std::uint16_t port() const { return acceptor_->local_endpoint().port(); }

 private:
  static asio::awaitable<void> accept_loop(std::shared_ptr<tcp::acceptor> acceptor, Address answer) {
    for (;;) {
      auto [ec, socket] = co_await acceptor->async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      asio::co_spawn(acceptor->get_executor(), session(std::move(socket), answer), asio::detached);
    }
  }
  static std::string bulk(const std::string& s) {
    return "$" + std::to_string(s.size()) + "\r\n" + s + "\r\n";
  }
  static std::string answer_to(const Reply& cmd, const Address& answer) {
    if (!cmd.is_array() || cmd.elements.empty()) return "-ERR protocol\r\n";
    std::string name = cmd.elements[0].str;
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    const std::string sub = cmd.elements.size() > 1 ? cmd.elements[1].str : "";
    if (name == "ping") return "+PONG\r\n";
    if (name == "sentinel" && sub == "get-master-addr-by-name")
      return "*2\r\n" + bulk(answer.host) + bulk(std::to_string(answer.port));
    if (name == "sentinel" && sub == "replicas") return "*0\r\n";
    if (name == "subscribe") {
      std::string out;
      for (std::size_t i = 1; i < cmd.elements.size(); ++i)
        out += "*3\r\n" + bulk("subscribe") + bulk(cmd.elements[i].str) + ":" + std::to_string(i) + "\r\n";
      return out;
    }
    return "-ERR unknown command\r\n";
  }
  static asio::awaitable<void> session(tcp::socket socket, Address answer) {
    ReplyReader reader;  // reads commands as well: they are arrays of bulk strings
    for (;;) {
      const std::span<char> room = reader.buffer();
      auto [ec, n] = co_await socket.async_read_some(asio::buffer(room.data(), room.size()),
                                                     asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      reader.commit(n);
      std::string out;
      Reply cmd;
      while (reader.next(cmd) == ReplyReader::Status::reply)
        out += answer_to(cmd, answer);
      auto [wec, wn] =
          co_await asio::async_write(socket, asio::buffer(out), asio::as_tuple(asio::use_awaitable));
      if (wec) co_return;
    }
  }

  std::shared_ptr<tcp::acceptor> acceptor_;
};

// One cluster for the tests that leave it as they found it.
class SentinelDiscoveryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    cluster_ = new Cluster(dir_->path(), /*for_failover=*/false);
  }
  static void TearDownTestSuite() {
    delete cluster_;
    delete dir_;
  }
  static TempDir* dir_;
  static Cluster* cluster_;
  asio::io_context io_;
};
TempDir* SentinelDiscoveryTest::dir_ = nullptr;
Cluster* SentinelDiscoveryTest::cluster_ = nullptr;

TEST_F(SentinelDiscoveryTest, FindsTheMasterAndTheHealthyReplicasAndSubscribesToEverySentinel) {
  Cluster& c = *cluster_;
  SentinelSettings s = settings_for(c.sentinel_addresses());
  s.source_address = "127.0.1.9";
  Sentinel sentinel(io_.get_executor(), s);
  std::vector<Topology> seen;
  sentinel.on_change([&](const Topology& t) { seen.push_back(t); });
  sentinel.start();
  run(io_, [&]() -> asio::awaitable<void> {
    const auto t0 = Clock::now();
    EXPECT_TRUE(co_await sentinel.wait_master(5s));
    EXPECT_LT(since(t0), 3s);
    EXPECT_EQ(sentinel.topology().master, local(c.master->port()));
    EXPECT_TRUE(
        co_await eventually([&] { return sentinel.topology().replicas == c.replica_addresses(); }, 5s))
        << sentinel.topology().replicas.size() << " replicas";
    EXPECT_TRUE(co_await eventually(
        [&] {
          const auto st = sentinel.status();
          return std::all_of(st.sentinels.begin(), st.sentinels.end(),
                             [](auto& n) { return n.subscribed && n.reachable; });
        },
        5s));
    co_await sleep_for(20ms);  // the listener runs from a post
  });
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().master, local(c.master->port()));
  EXPECT_EQ(seen.back().generation, sentinel.topology().generation);
  const SentinelStatus st = sentinel.status();
  EXPECT_GE(st.counters.discoveries, 1u);
  EXPECT_EQ(st.counters.master_changes, 1u);
  EXPECT_EQ(st.counters.failed_verifications, 0u);
  EXPECT_TRUE(st.sentinels[0].reachable) << st.sentinels[0].last_error;
  // Queries and subscriptions come from the source address.
  const std::string clients = c.sentinels[0].command("CLIENT LIST");
  std::size_t from_source = 0;
  for (std::size_t at = 0; (at = clients.find("addr=127.0.1.9:", at)) != std::string::npos; ++at)
    ++from_source;
  EXPECT_GE(from_source, 2u) << clients;  // the query connection and the subscription
}

TEST_F(SentinelDiscoveryTest, AnAnswerThatFailsTheRoleCheckIsNotAdopted) {
  Cluster& c = *cluster_;
  const Address replica = c.replica_addresses()[0];
  FakeSentinel liar(io_, replica);
  {
    // Only the liar: its answer is a replica, ROLE says so, nothing is adopted; retried with backoff.
    Sentinel sentinel(io_.get_executor(), settings_for({local(liar.port())}));
    sentinel.start();
    run(io_, [&]() -> asio::awaitable<void> {
      EXPECT_FALSE(co_await sentinel.wait_master(1500ms));
      EXPECT_FALSE(sentinel.topology().master.has_value());
      EXPECT_EQ(sentinel.topology().generation, 0u);
    });
    const SentinelStatus st = sentinel.status();
    EXPECT_GE(st.counters.failed_verifications, 2u) << "a failed round is retried soon";
    EXPECT_GE(st.counters.failed_rounds, 2u);
    EXPECT_EQ(st.counters.discoveries, 0u);
    EXPECT_NE(st.sentinels[0].last_error.find("ROLE says slave"), std::string::npos)
        << st.sentinels[0].last_error;
    EXPECT_NE(st.sentinels[0].last_error.find(replica.to_string()), std::string::npos);
  }
  {
    // The liar first, a real sentinel second: the real one's answer is adopted, and goes first.
    auto addresses = c.sentinel_addresses();
    addresses.insert(addresses.begin(), local(liar.port()));
    Sentinel sentinel(io_.get_executor(), settings_for(addresses));
    sentinel.start();
    run(io_, [&]() -> asio::awaitable<void> {
      EXPECT_TRUE(co_await sentinel.wait_master(5s));
      EXPECT_EQ(sentinel.topology().master, local(c.master->port()));
      const auto failed = sentinel.status().counters.failed_verifications;
      EXPECT_GE(failed, 1u);
      // Later rounds ask the real sentinel first: no more failed checks.
      sentinel.refresh();
      co_await sleep_for(300ms);
      sentinel.refresh();
      co_await sleep_for(300ms);
      EXPECT_EQ(sentinel.status().counters.failed_verifications, failed);
      EXPECT_GE(sentinel.status().counters.discoveries, 3u);
    });
    EXPECT_EQ(sentinel.status().counters.master_changes, 1u);
  }
}

TEST_F(SentinelDiscoveryTest, TwoOfThreeSentinelsDownStillResolvesThroughTheThird) {
  Cluster& c = *cluster_;
  SentinelSettings s = settings_for(c.sentinel_addresses());
  s.refresh_interval = 200ms;
  Sentinel running(io_.get_executor(), s);
  running.start();
  run(io_, [&]() -> asio::awaitable<void> { EXPECT_TRUE(co_await running.wait_master(5s)); });
  const auto master_changes = running.status().counters.master_changes;

  c.sentinels[0].kill();
  c.sentinels[1].kill();
  Sentinel fresh(io_.get_executor(), settings_for(c.sentinel_addresses()));
  fresh.start();
  run(io_, [&]() -> asio::awaitable<void> {
    const auto t0 = Clock::now();
    EXPECT_TRUE(co_await fresh.wait_master(5s));
    EXPECT_LT(since(t0), 3s);
    EXPECT_EQ(fresh.topology().master, local(c.master->port()));
    // The running one keeps resolving (rounds every 200 ms), now through the third sentinel.
    const auto before = running.status().counters.discoveries;
    EXPECT_TRUE(co_await eventually([&] { return running.status().counters.discoveries >= before + 3; }, 5s));
  });
  for (Sentinel* x : {&running, &fresh}) {
    const SentinelStatus st = x->status();
    EXPECT_FALSE(st.sentinels[0].reachable);
    EXPECT_FALSE(st.sentinels[1].reachable);
    EXPECT_FALSE(st.sentinels[0].subscribed);
    EXPECT_TRUE(st.sentinels[2].reachable) << st.sentinels[2].last_error;
    EXPECT_TRUE(st.sentinels[2].subscribed);
    EXPECT_EQ(st.topology.master, local(c.master->port()));
  }
  // The master stayed (the replicas in the view may still be filling in: Sentinel learns them from
  // the master's INFO, so the view's generation may move).
  EXPECT_EQ(running.status().counters.master_changes, master_changes) << "the master did not change";
  c.sentinels[0].restart();
  c.sentinels[1].restart();
}

TEST_F(SentinelDiscoveryTest, StopWithEverythingInFlightCompletesWaitsAndCallsNoListener) {
  Cluster& c = *cluster_;
  // A paused sentinel: connects hang in the handshake, queries time out; stop() must not wait.
  c.sentinels[2].pause();
  itest::wait_stopped(c.sentinels[2].pid());
  SentinelSettings s = settings_for({local(c.sentinels[2].port())});
  s.query_timeout = 5s;
  s.connect_timeout = 5s;
  auto sentinel = std::make_unique<Sentinel>(io_.get_executor(), s);
  int calls = 0;
  sentinel->on_change([&](const Topology&) { ++calls; });
  sentinel->start();
  std::optional<bool> waited;
  run(io_, [&]() -> asio::awaitable<void> {
    asio::co_spawn(
        io_, [&]() -> asio::awaitable<void> { waited = co_await sentinel->wait_master(10s); },
        asio::detached);
    co_await sleep_for(100ms);
    const auto t0 = Clock::now();
    sentinel.reset();  // destroyed with a query, a connect and a wait in flight
    while (!waited)
      co_await sleep_for(1ms);
    EXPECT_LT(since(t0), itest::kFast);
    EXPECT_FALSE(*waited);
    co_await sleep_for(50ms);
  });
  EXPECT_EQ(calls, 0);
  c.sentinels[2].resume();
}

// What the service does on every READONLY reply: many refresh() calls, each returning at once,
// coalesced into a round or two.
TEST_F(SentinelDiscoveryTest, RefreshIsCoalescedAndNeverBlocks) {
  Cluster& c = *cluster_;
  SentinelSettings s = settings_for(c.sentinel_addresses());
  s.refresh_interval = 10s;
  s.refresh_min_gap = 100ms;
  Sentinel sentinel(io_.get_executor(), s);
  sentinel.refresh();  // before start(): nothing
  sentinel.start();
  run(io_, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await sentinel.wait_master(5s));
    co_await sleep_for(500ms);  // the rounds the subscriptions asked for are over
    const auto before = sentinel.status().counters.rounds;
    const auto t0 = Clock::now();
    for (int i = 0; i < 10000; ++i)
      sentinel.refresh();
    EXPECT_LT(since(t0), 50ms);
    co_await sleep_for(400ms);
    const auto rounds = sentinel.status().counters.rounds - before;
    EXPECT_GE(rounds, 1u);
    EXPECT_LE(rounds, 2u);
  });
}

// A replica that dies is flagged by the sentinels (+sdown after down-after-milliseconds): the event
// triggers a round, and the replica leaves the view.
TEST_F(SentinelDiscoveryTest, AReplicaThatGoesDownLeavesTheView) {
  Cluster& c = *cluster_;
  SentinelSettings s = settings_for(c.sentinel_addresses());
  s.refresh_interval = 10s;  // only the event can make it quick
  Sentinel sentinel(io_.get_executor(), s);
  sentinel.start();
  const Address gone = local(c.replicas[1].port());
  const Address kept = local(c.replicas[0].port());
  run(io_, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await sentinel.wait_master(5s));
    EXPECT_TRUE(co_await eventually([&] { return sentinel.topology().replicas.size() == 2; }, 5s));
    co_await sleep_for(500ms);
    const auto t0 = Clock::now();
    c.replicas[1].kill();
    EXPECT_TRUE(
        co_await eventually([&] { return sentinel.topology().replicas == std::vector<Address>{kept}; }, 8s));
    std::printf("[ figures ] replica dropped from the view %lld ms after its SIGKILL (down-after 1000 ms)\n",
                static_cast<long long>(since(t0).count()));
  });
  EXPECT_EQ(sentinel.topology().master, local(c.master->port()));
  EXPECT_EQ(std::count(sentinel.topology().replicas.begin(), sentinel.topology().replicas.end(), gone), 0);
  c.replicas[1].restart();  // back for the tests that follow in this process
}

// A paused sentinel keeps its TCP connections open but answers nothing: its query times out (the
// next sentinel answers), its silent subscription is dropped by the keep-alive, and both come back
// after it resumes.
TEST_F(SentinelDiscoveryTest, APausedSentinelIsPassedOverAndItsSilentSubscriptionDropped) {
  Cluster& c = *cluster_;
  SentinelSettings s = settings_for(c.sentinel_addresses());
  s.refresh_interval = 300ms;
  Sentinel sentinel(io_.get_executor(), s);
  sentinel.start();
  auto node = [&](std::size_t i) { return sentinel.status().sentinels[i]; };
  run(io_, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await sentinel.wait_master(5s));
    EXPECT_TRUE(co_await eventually([&] { return node(0).subscribed && node(0).reachable; }, 5s));
    c.sentinels[0].pause();
    itest::wait_stopped(c.sentinels[0].pid());
    const auto t0 = Clock::now();
    // Keep-alive: a PING every 300 ms, dropped after a silent interval: well within 3 s.
    EXPECT_TRUE(co_await eventually([&] { return !node(0).subscribed; }, 3s));
    EXPECT_TRUE(co_await eventually([&] { return !node(0).reachable; }, 3s));
    std::printf(
        "[ figures ] paused sentinel: subscription dropped and query connection unreachable after %lld ms\n",
        static_cast<long long>(since(t0).count()));
    const auto discoveries = sentinel.status().counters.discoveries;
    EXPECT_TRUE(
        co_await eventually([&] { return sentinel.status().counters.discoveries > discoveries + 2; }, 3s))
        << "rounds go on through the others";
    EXPECT_EQ(sentinel.topology().master, local(c.master->port()));
    c.sentinels[0].resume();
    EXPECT_TRUE(co_await eventually([&] { return node(0).subscribed && node(0).reachable; }, 5s))
        << node(0).last_error;
  });
  EXPECT_GE(sentinel.status().counters.subscription_drops, 1u);
  EXPECT_EQ(sentinel.status().counters.master_changes, 1u);
}

// A fresh cluster: this one loses its master.
TEST(SentinelFailover, AKilledMasterIsReplacedAndThePromotedReplicaAdoptedThroughSwitchMaster) {
  TempDir dir;
  Cluster c(dir.path(), /*for_failover=*/true);
  asio::io_context io;
  SentinelSettings s = settings_for(c.sentinel_addresses());
  s.refresh_interval = 2s;
  Sentinel sentinel(io.get_executor(), s);
  // The pattern a service uses: its master client follows the view.
  Client master(io.get_executor(), Settings{.port = c.master->port(), .name = "master"});
  std::vector<Topology> seen;
  sentinel.on_change([&](const Topology& t) {
    seen.push_back(t);
    if (t.master) master.retarget(t.master->host, t.master->port);
  });
  sentinel.start();
  master.start();
  run(io, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await sentinel.wait_master(5s));
    EXPECT_TRUE(co_await master.wait_connected(2s));
    EXPECT_TRUE(co_await eventually(
        [&] {
          const auto st = sentinel.status();
          return std::all_of(st.sentinels.begin(), st.sentinels.end(), [](auto& n) { return n.subscribed; });
        },
        5s));
  });
  const Address old_master = local(c.master->port());
  ASSERT_EQ(sentinel.topology().master, old_master);

  const auto killed_at = Clock::now();
  c.master->kill();
  run(io, [&]() -> asio::awaitable<void> {
    // down-after 1 s, agreement, election, promotion: typically 2-4 s; generous on a loaded machine.
    EXPECT_TRUE(co_await eventually(
        [&] { return sentinel.topology().master && *sentinel.topology().master != old_master; }, 25s));
    std::printf("[ figures ] new master adopted %lld ms after the SIGKILL\n",
                static_cast<long long>(since(killed_at).count()));
    const Address promoted = *sentinel.topology().master;
    const auto replicas = c.replica_addresses();
    EXPECT_TRUE(std::find(replicas.begin(), replicas.end(), promoted) != replicas.end());
    EXPECT_NE(testing_support::redis_command(promoted.port, "ROLE").find("master"), std::string::npos);
    // The retargeted client writes to the new master.
    EXPECT_TRUE(co_await master.wait_connected(2s));
    std::vector<std::string> set{"SET", "after", "failover"};
    Result r = co_await master.command(std::move(set), 1s);
    EXPECT_TRUE(r && r->is_status("OK")) << (r ? r->str : r.error().message);
    // The other replica follows the new master; the dead one is not listed.
    std::vector<Address> others;
    for (const auto& a : replicas)
      if (a != promoted) others.push_back(a);
    EXPECT_TRUE(co_await eventually([&] { return sentinel.topology().replicas == others; }, 15s))
        << sentinel.topology().replicas.size() << " replicas";
  });
  const SentinelStatus st = sentinel.status();
  EXPECT_GE(st.counters.switch_master_events, 1u);
  EXPECT_EQ(st.counters.master_changes, 2u);
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().master, sentinel.topology().master);
  EXPECT_EQ(master.settings().port, sentinel.topology().master->port);
}

}  // namespace
}  // namespace clients::redis
