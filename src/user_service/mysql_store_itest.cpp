// MysqlStore over a real MariaDB primary and GTID replica (mysql.endpoints): the primary is the
// endpoint that answers @@read_only = 0, a fenced primary takes no write, a promoted replica takes
// them at the next probe, an old primary that comes back writable is not chosen while the promoted
// one serves, and replica reads return what the primary acknowledged.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "testing/servers.h"
#include "user_service/mysql_store.h"
#include "testing/event_loop.h"

namespace user_service {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using testing_support::MariaDbServer;

// The service's account: everything on its database, binlog reading, replica status, and not
// READ ONLY ADMIN (which root has, and which read_only does not stop).
constexpr const char* kAccount =
    "CREATE USER 'svc'@'%'; GRANT ALL ON users.* TO 'svc'@'%'; "
    "GRANT REPLICATION SLAVE, SLAVE MONITOR, BINLOG MONITOR ON *.* TO 'svc'@'%';";

class MysqlStoreITest : public ::testing::Test {
 protected:
  void SetUp() override {
    primary_ = std::make_unique<MariaDbServer>(MariaDbServer::start(dir_.path() / "p", {}, {.server_id = 1}));
    replica_ = std::make_unique<MariaDbServer>(
        MariaDbServer::start(dir_.path() / "r", {}, {.server_id = 2, .read_only = true}));
    replica_->replicate_from(primary_->port());
    primary_->sql(kAccount);
    replica_->wait_gtid(primary_->gtid_binlog_pos());
    // The replica first: the order of the endpoints does not decide which one is the primary.
    for (const auto* server : {replica_.get(), primary_.get()}) {
      clients::mysql::PoolSettings s;
      s.connection.port = server->port();
      s.connection.user = "svc";
      s.max_size = 2;
      s.name = std::to_string(server->port());
      pools_.push_back(std::make_unique<clients::mysql::Pool>(io_.get_executor(), s));
      pools_.back()->start();
    }
    store_ = std::make_unique<MysqlStore>(
        std::vector<clients::mysql::Pool*>{pools_[0].get(), pools_[1].get()}, config_);
  }
  void TearDown() override {
    store_.reset();
    for (auto& p : pools_)
      p->stop();
    io_.run_for(50ms);
  }

  template <typename T>
  T Run(asio::awaitable<T> a) {
    return testing_support::run(io_, std::move(a));
  }
  Deadline D() { return Deadline::after(2s); }
  // One prober round (the service runs one every probe interval).
  bool Probe() { return Run(store_->probe(D())).ok(); }

  testing_support::TempDir dir_;
  std::unique_ptr<MariaDbServer> primary_, replica_;
  asio::io_context io_;
  MysqlConfig config_;
  std::vector<std::unique_ptr<clients::mysql::Pool>> pools_;
  std::unique_ptr<MysqlStore> store_;
};

TEST_F(MysqlStoreITest, WritesGoToTheWritableEndpointAndReplicaReadsSeeThem) {
  ASSERT_TRUE(Probe());
  EXPECT_EQ(store_->primary(), 1);
  EXPECT_EQ(store_->replica(), 0);
  ASSERT_TRUE(Run(store_->put("u-1", "Ann", D())).ok());
  // The test pair replicates asynchronously: wait for what semi-sync guarantees at the
  // acknowledgement (the replica received the write), not for it to be applied.
  replica_->wait_received(primary_->gtid_binlog_pos());
  // From the replica: it first applies what it received.
  auto r = Run(store_->get_from_replica("u-1", D()));
  ASSERT_TRUE(r.ok()) << r.message;
  ASSERT_TRUE(r.value.has_value());
  EXPECT_EQ(r.value->name, "Ann");
  EXPECT_TRUE(Run(store_->probe_replica(D())).ok());
}

TEST_F(MysqlStoreITest, AFencedPrimaryTakesNoWriteAndThePromotedReplicaDoesAtTheNextProbe) {
  ASSERT_TRUE(Probe());
  ASSERT_TRUE(Run(store_->put("u-1", "Ann", D())).ok());
  primary_->sql("SET GLOBAL read_only = 1");
  // A write that reaches the fenced primary before the next probe is refused (error 1290), not taken.
  auto refused = Run(store_->put("u-1", "Bob", D()));
  EXPECT_EQ(refused.failure, Failure::unavailable) << refused.message;
  EXPECT_EQ(refused.effect, Effect::none);
  EXPECT_FALSE(Probe());
  EXPECT_EQ(store_->primary(), -1);
  const auto started = Clock::now();
  EXPECT_EQ(Run(store_->put("u-1", "Bob", D())).failure, Failure::unavailable);
  EXPECT_LT(Clock::now() - started, 100ms);  // at once, no MariaDB round trip
  replica_->wait_gtid(primary_->gtid_binlog_pos());
  replica_->sql("STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = 0;");
  ASSERT_TRUE(Probe());
  EXPECT_EQ(store_->primary(), 0);
  ASSERT_TRUE(Run(store_->put("u-1", "Cy", D())).ok());
  // The old primary comes back writable (restarted without --read-only): the promoted one stays.
  primary_->sql("SET GLOBAL read_only = 0");
  ASSERT_TRUE(Probe());
  EXPECT_EQ(store_->primary(), 0);
  auto got = Run(store_->get("u-1", D()));
  ASSERT_TRUE(got.ok() && got.value);
  EXPECT_EQ(got.value->name, "Cy");
}

TEST_F(MysqlStoreITest, WithThePrimaryGoneReplicaReadsStillAnswer) {
  ASSERT_TRUE(Probe());
  ASSERT_TRUE(Run(store_->put("u-2", "Dee", D())).ok());
  // Received by the replica, as semi-synchronous replication makes sure before acknowledging (this
  // pair replicates asynchronously: without the wait, the kill could beat the write to the replica).
  replica_->wait_gtid(primary_->gtid_binlog_pos());
  primary_->kill();
  auto r = Run(store_->get_from_replica("u-2", D()));
  ASSERT_TRUE(r.ok()) << r.message;
  ASSERT_TRUE(r.value.has_value());
  EXPECT_EQ(r.value->name, "Dee");
  EXPECT_FALSE(Run(store_->get("u-2", Deadline::after(300ms))).ok());
}

}  // namespace
}  // namespace user_service
