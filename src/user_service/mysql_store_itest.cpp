// MysqlStore over a real MariaDB primary and GTID replica (mysql.endpoints): the primary is the
// endpoint that answers @@read_only = 0, a fenced primary takes no write, a promoted replica takes
// them at the next probe, an old primary that comes back writable is not chosen while the promoted
// one serves, and replica reads return what the primary acknowledged; a write checks its fence when
// it starts and once it holds its row.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <future>
#include <thread>

#include "testing/event_loop.h"
#include "testing/servers.h"
#include "user_service/mysql_store.h"

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
    // With binary logging on, an account without SUPER cannot create triggers: an administrator
    // creates the schema and its triggers, the store finds them.
    primary_->sql(store_->schema_script());
    replica_->wait_gtid(primary_->gtid_binlog_pos());
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

// Conditional writes: the condition is the statement's own (WHERE or the primary key), and the
// version the row gets comes from the one sequence as for unconditional writes.
TEST_F(MysqlStoreITest, ConditionalWritesAreCheckedByTheirStatement) {
  ASSERT_TRUE(Probe());
  const Precondition absent{Precondition::absent, {}};
  const Precondition exists{Precondition::exists, {}};
  const auto in = [](std::uint64_t v) { return Precondition{Precondition::version_in, {v}}; };
  // Create only.
  auto p = Run(store_->put("c-1", "Ann", absent, D()));
  ASSERT_TRUE(p.ok()) << p.message;
  EXPECT_TRUE(p.value.created);
  EXPECT_FALSE(p.value.precondition_failed);
  const std::uint64_t v1 = p.value.version;
  p = Run(store_->put("c-1", "Bob", absent, D()));
  ASSERT_TRUE(p.ok()) << p.message;  // a duplicate key is an answer, not a failure
  EXPECT_TRUE(p.value.precondition_failed);
  // Update if the version is v1; then v1 is gone.
  p = Run(store_->put("c-1", "Cy", in(v1), D()));
  ASSERT_TRUE(p.ok()) << p.message;
  EXPECT_FALSE(p.value.precondition_failed);
  EXPECT_FALSE(p.value.created);
  const std::uint64_t v2 = p.value.version;
  EXPECT_GT(v2, v1);
  p = Run(store_->put("c-1", "Dee", in(v1), D()));
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p.value.precondition_failed);
  p = Run(store_->put("c-1", "Dee", Precondition{Precondition::version_in, {v1, v2}}, D()));
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p.value.precondition_failed);
  const std::uint64_t v3 = p.value.version;
  EXPECT_GT(v3, v2);
  p = Run(store_->put("c-1", "Eve", Precondition{Precondition::version_in, {}}, D()));
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p.value.precondition_failed);
  // If it exists: not for a missing row (nothing created).
  p = Run(store_->put("c-2", "Fay", exists, D()));
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p.value.precondition_failed);
  EXPECT_FALSE(Run(store_->get("c-2", D())).value.has_value());
  auto got = Run(store_->get("c-1", D()));
  ASSERT_TRUE(got.ok() && got.value);
  EXPECT_EQ(got.value->name, "Dee");
  EXPECT_EQ(got.value->version, v3);
  // Delete if the version is v3 (not v2).
  auto r = Run(store_->remove("c-1", in(v2), D()));
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_TRUE(r.value.precondition_failed);
  EXPECT_FALSE(r.value.removed);
  r = Run(store_->remove("c-1", in(v3), D()));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.value.removed);
  EXPECT_EQ(r.value.version, v3);
  r = Run(store_->remove("c-1", exists, D()));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.value.precondition_failed);
  r = Run(store_->remove("c-1", D()));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r.value.removed);
  EXPECT_FALSE(r.value.precondition_failed);
}

// Many writers with the same If-Match at once, on as many connections: exactly one finds the
// version it requires; MariaDB holds its write.
TEST_F(MysqlStoreITest, OfConcurrentWritesRequiringTheSameVersionExactlyOneSucceeds) {
  clients::mysql::PoolSettings s;
  s.connection.port = primary_->port();
  s.connection.user = "svc";
  s.max_size = 12;
  s.name = "wide";
  clients::mysql::Pool wide(io_.get_executor(), s);
  wide.start();
  MysqlStore store({&wide}, config_);
  ASSERT_TRUE(Run(store.probe(D())).ok());
  auto first = Run(store.put("race", "v0", D()));
  ASSERT_TRUE(first.ok());
  std::uint64_t version = first.value.version;
  for (int round = 0; round < 5; ++round) {
    const Precondition when{Precondition::version_in, {version}};
    std::vector<std::future<Outcome<PutResult>>> writes;
    std::vector<std::string> names;
    for (int i = 0; i < 12; ++i)
      names.push_back("r" + std::to_string(round) + "-w" + std::to_string(i));
    for (int i = 0; i < 12; ++i)
      writes.push_back(asio::co_spawn(io_, store.put("race", names[i], when, D()), asio::use_future));
    ASSERT_TRUE(testing_support::wait_for(
        io_,
        [&] {
          return std::all_of(writes.begin(), writes.end(),
                             [](auto& w) { return w.wait_for(0s) == std::future_status::ready; });
        },
        30s));
    int won = 0, lost = 0;
    std::string winner;
    for (int i = 0; i < 12; ++i) {
      const auto w = writes[i].get();
      ASSERT_TRUE(w.ok()) << w.message;
      if (w.value.precondition_failed) {
        ++lost;
      } else {
        ++won;
        winner = names[i];
        EXPECT_GT(w.value.version, version);
        version = w.value.version;
      }
    }
    EXPECT_EQ(won, 1) << "round " << round;
    EXPECT_EQ(lost, 11) << "round " << round;
    auto got = Run(store.get("race", D()));
    ASSERT_TRUE(got.ok() && got.value);
    EXPECT_EQ(got.value->name, winner);
    EXPECT_EQ(got.value->version, version);
  }
  wide.stop();
}

// Pages in byte order of the ids (binary collation, no pad), from the primary and from the replica
// once it applied what it received.
TEST_F(MysqlStoreITest, ListsPagesInByteOrder) {
  ASSERT_TRUE(Probe());
  const std::vector<std::string> ids = {"b", "a", "B", "a ", "\xC3\xA9", "c", "a  "};
  for (const auto& id : ids)
    ASSERT_TRUE(Run(store_->put(id, "n-" + id, D())).ok());
  std::vector<std::string> sorted = ids;
  std::sort(sorted.begin(), sorted.end());  // std::string compares bytes as unsigned char
  std::vector<std::string> seen;
  std::string after;
  for (;;) {
    auto page = Run(store_->list(after, 3, D()));
    ASSERT_TRUE(page.ok()) << page.message;
    for (const auto& u : page.value) {
      seen.push_back(u.id);
      EXPECT_EQ(u.name, "n-" + u.id);
      EXPECT_GT(u.version, 0u);
    }
    if (page.value.size() < 3) break;
    after = page.value.back().id;
  }
  EXPECT_EQ(seen, sorted);
  auto replica = Run(store_->list_from_replica("a", 2, D()));
  ASSERT_TRUE(replica.ok()) << replica.message;
  ASSERT_EQ(replica.value.size(), 2u);
  EXPECT_EQ(replica.value[0].id, "a ");
  EXPECT_EQ(replica.value[1].id, "a  ");
}

// A write statement that reaches MariaDB after its deadline changes nothing. The delay is played by
// the session's clock: with @@timestamp an hour ahead, NOW(6) is where it would be for a statement
// held up that long on its way (by a slow link or a proxy), far past the call's 2 s deadline. The
// clock is the session's, so the check holds only if every statement ran on that one connection:
// under load the pool may replace it (a health check timing out), and a write on the fresh session
// is in time. An attempt whose connection changed (CONNECTION_ID) proves nothing either way and is
// made again with new ids.
TEST_F(MysqlStoreITest, AWriteThatArrivesAfterItsDeadlineIsNotApplied) {
  clients::mysql::PoolSettings s;
  s.connection.port = primary_->port();
  s.connection.user = "svc";
  s.max_size = 1;  // one connection: the session clock set below is the writes' own
  s.health_check_timeout = 5s;
  s.name = "late";
  clients::mysql::Pool pool(io_.get_executor(), s);
  pool.start();
  MysqlStore store({&pool}, config_);
  ASSERT_TRUE(Run(store.probe(D())).ok());
  std::vector<clients::mysql::Value> none;
  auto connection_id = [&] {
    auto r = Run(pool.execute("SELECT CONNECTION_ID()", none, D()));
    return r && !r->rows.empty() ? r->rows[0][0].to_text() : std::string("?");
  };
  bool checked = false;
  for (int attempt = 0; attempt < 3 && !checked; ++attempt) {
    const std::string id = "late-" + std::to_string(attempt), fresh = id + "-new";
    // A replacement may have come before the clock was set: the connection set ahead is still the
    // pool's, and this attempt's first write would be late too.
    ASSERT_TRUE(Run(pool.execute("SET timestamp = DEFAULT", none, D())).has_value());
    ASSERT_TRUE(Run(store.put(id, "Ann", D())).ok());
    const std::string row = "SELECT name, version FROM users.user WHERE id = '" + id + "'";
    const std::string before = primary_->sql(row);
    const std::string session = connection_id();
    ASSERT_TRUE(Run(pool.execute("SET timestamp = UNIX_TIMESTAMP(NOW(6)) + 3600", none, D())).has_value());
    const auto late = Run(store.put(id, "Bob", D()));
    const auto late_create = Run(store.put(fresh, "Bob", Precondition{Precondition::absent, {}}, D()));
    (void)Run(store.put(id, "Bob", Precondition{Precondition::exists, {}}, D()));
    (void)Run(store.remove(id, D()));
    if (connection_id() != session) {
      std::printf("[ note ] attempt %d: the pool replaced its connection (discarded %llu): again\n", attempt,
                  static_cast<unsigned long long>(pool.status().counters.discarded));
      continue;
    }
    checked = true;
    EXPECT_FALSE(late.ok());
    EXPECT_EQ(late.effect, Effect::none) << late.message;
    EXPECT_FALSE(late_create.ok());
    EXPECT_EQ(late_create.effect, Effect::none) << late_create.message;
    EXPECT_EQ(primary_->sql(row), before);
    EXPECT_EQ(primary_->sql("SELECT COUNT(*) FROM users.user WHERE id = '" + fresh + "'"), "0\n");

    // In time again: the same writes apply.
    ASSERT_TRUE(Run(pool.execute("SET timestamp = DEFAULT", none, D())).has_value());
    ASSERT_TRUE(Run(store.put(id, "Bob", D())).ok());
    EXPECT_NE(primary_->sql(row), before);
  }
  EXPECT_TRUE(checked) << "the connection was replaced in every attempt";
  pool.stop();
  io_.run_for(50ms);
}

// A write that started in time but reaches its row only after its deadline (here it waits for
// another transaction's locks; a stalled thread is the same) is rolled back by the fence triggers,
// whatever the statement: it cannot land after a write sent once its 503 was answered.
TEST_F(MysqlStoreITest, AWriteThatReachesItsRowAfterItsDeadlineIsRolledBack) {
  ASSERT_TRUE(Probe());
  ASSERT_TRUE(Run(store_->put("held-1", "Ann", D())).ok());
  ASSERT_TRUE(Run(store_->put("held-2", "Ann", D())).ok());
  const std::string rows = "SELECT id, name, version FROM users.user WHERE id LIKE 'held-%' ORDER BY id";
  const std::string before = primary_->sql(rows);
  // The rows, and the gap where a new id would go, locked for a while by another session.
  std::thread holder([this] {
    primary_->sql(
        "BEGIN; SELECT id FROM users.user WHERE id IN ('held-1', 'held-2', 'held-3') FOR UPDATE;"
        " DO SLEEP(3); ROLLBACK;");
  });
  const std::string sleeping =
      "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'DO SLEEP%'";
  for (int i = 0; i < 100 && primary_->sql(sleeping) != "1\n"; ++i)
    std::this_thread::sleep_for(20ms);
  if (primary_->sql(sleeping) != "1\n") {
    holder.join();
    FAIL() << "the session meant to hold the rows did not start";
  }
  const auto late = [](const auto& outcome) { return !outcome.ok() && outcome.failure == Failure::timeout; };
  EXPECT_TRUE(late(Run(store_->remove("held-1", Deadline::after(300ms)))));
  EXPECT_TRUE(late(Run(store_->put("held-2", "Bob", Deadline::after(300ms)))));
  EXPECT_TRUE(late(
      Run(store_->put("held-3", "Bob", Precondition{Precondition::absent, {}}, Deadline::after(300ms)))));
  holder.join();
  // The three statements took their rows once the holder rolled back; wait until they ended.
  const std::string writing =
      "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE '%`users`.`user`%' AND ID <> "
      "CONNECTION_ID()";
  for (int i = 0; i < 250 && primary_->sql(writing) != "0\n"; ++i)
    std::this_thread::sleep_for(20ms);
  EXPECT_EQ(primary_->sql(writing), "0\n");
  EXPECT_EQ(primary_->sql(rows), before);
  // In time, the same writes apply.
  EXPECT_TRUE(Run(store_->remove("held-1", D())).ok());
  EXPECT_TRUE(Run(store_->put("held-3", "Bob", Precondition{Precondition::absent, {}}, D())).ok());
  EXPECT_EQ(primary_->sql("SELECT id, name FROM users.user WHERE id LIKE 'held-%' ORDER BY id"),
            "held-2\tAnn\nheld-3\tBob\n");
}

// Without its triggers (an account that may not create them, with binary logging on) the store is
// not ready, and says why; once an administrator created them, it is.
TEST_F(MysqlStoreITest, WithoutItsFenceTriggersTheStoreIsNotReady) {
  primary_->sql("DROP TRIGGER users.user_write_fence_delete");
  EXPECT_FALSE(Probe());
  const auto refused = Run(store_->probe(D()));
  EXPECT_NE(refused.message.find("SUPER"), std::string::npos) << refused.message;
  primary_->sql(store_->schema_script());
  EXPECT_TRUE(Probe());
}

}  // namespace
}  // namespace user_service
