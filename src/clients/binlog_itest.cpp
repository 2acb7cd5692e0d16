// clients::mysql::BinlogReader against real mariadbd processes with the binary log on (started
// through src/testing): row changes of users.user in commit order with kinds, values and GTIDs;
// other tables skipped; whole transactions per batch; resuming from a returned position; start("")
// from the current position; empty batches at the deadline; cancellation and stop() of a pending
// next(); backpressure; a SIGKILLed and restarted server (an error, then no change lost or
// duplicated); a SIGSTOPped one (the read timeout; heartbeats keep an idle stream alive); UNSIGNED
// from the table map; a replica's binlog (log_slave_updates) and a position resumed on it after a
// failover; a server whose binlog is not usable (then fixed).
#include <gtest/gtest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <optional>
#include <thread>

#include "clients/binlog.h"
#include "clients/itest_util.h"
#include "testing/servers.h"

namespace clients::mysql {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using itest::Ms;
using itest::run;
using itest::since;
using itest::sleep_for;
using testing_support::MariaDbServer;
using testing_support::TempDir;

// The table the service consumes, exactly, and one it does not.
const char* const kSchema =
    "CREATE DATABASE IF NOT EXISTS users;"
    "CREATE TABLE IF NOT EXISTS users.user (id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin"
    " PRIMARY KEY, name VARCHAR(255), version BIGINT UNSIGNED, updated_at TIMESTAMP(6)) CHARACTER SET "
    "utf8mb4;"
    "CREATE TABLE IF NOT EXISTS users.other (id INT PRIMARY KEY, note VARCHAR(20));";

std::string describe(const Error& e) {
  return std::string(to_string(e.code)) + " " + std::to_string(e.server_errno) + " " + e.message;
}

// Runs `sql` (UTC session) and returns @@last_gtid: the GTID of its (last) transaction.
std::string commit(const MariaDbServer& server, const std::string& sql) {
  std::string out = server.sql("SET time_zone = '+00:00'; " + sql + "; SELECT @@last_gtid;");
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r'))
    out.pop_back();
  const auto nl = out.rfind('\n');
  return nl == std::string::npos ? out : out.substr(nl + 1);
}

BinlogSettings settings_for(std::uint16_t port, std::uint32_t server_id) {
  BinlogSettings s;
  s.connection.port = port;
  s.connection.connect_timeout = 2s;  // generous: a loaded 2-core machine
  s.server_id = server_id;
  s.database = "users";
  s.table = "user";
  s.reconnect = {.initial = Ms(50), .max = Ms(400)};
  return s;
}

struct Collected {
  std::vector<RowChange> changes;
  std::string position;
  int errors = 0;
  std::string last_error;
};

// Calls next() until `n` changes arrived or `limit` passed.
asio::awaitable<Collected> collect(BinlogReader& reader, std::size_t n, Ms limit,
                                   std::size_t max_changes = 100) {
  Collected c;
  const auto until = Clock::now() + limit;
  while (c.changes.size() < n && Clock::now() < until) {
    auto b = co_await reader.next(max_changes, min(Deadline(until), Deadline(1s)));
    if (!b) {
      ++c.errors;
      c.last_error = describe(b.error());
      if (b.error().code == Errc::stopped) break;
      continue;
    }
    for (auto& ch : b->changes)
      c.changes.push_back(std::move(ch));
    c.position = b->position;
  }
  co_return c;
}

std::vector<std::string> ids(const std::vector<RowChange>& changes) {
  std::vector<std::string> out;
  for (const auto& c : changes)
    out.push_back(c.row.empty() ? "?" : c.row[0].to_text());
  return out;
}

template <typename Pred>
asio::awaitable<bool> eventually(Pred pred, Ms limit) {
  const auto until = Clock::now() + limit;
  while (!pred()) {
    if (Clock::now() >= until) co_return false;
    co_await sleep_for(20ms);
  }
  co_return true;
}

// One binlog-enabled server for the suite (the crash test restarts it in place).
class Binlog : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    server_ = new MariaDbServer(MariaDbServer::start(dir_->path() / "db", {}, {.server_id = 1}));
    server_->sql(kSchema);
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
    server_ = nullptr;
    dir_ = nullptr;
  }
  void SetUp() override { server_->sql("DELETE FROM users.user; DELETE FROM users.other;"); }

  static TempDir* dir_;
  static MariaDbServer* server_;
  asio::io_context io_;
};
TempDir* Binlog::dir_ = nullptr;
MariaDbServer* Binlog::server_ = nullptr;

TEST_F(Binlog, DeliversRowChangesInCommitOrderWithKindsValuesAndGtids) {
  const std::string p0 = server_->gtid_binlog_pos();
  BinlogReader reader(io_.get_executor(), settings_for(server_->port(), 101));
  reader.start(p0);
  const std::string g1 =
      commit(*server_, "INSERT INTO users.user VALUES ('a', 'Zoe', 1, '2024-01-02 03:04:05.123456')");
  commit(*server_, "INSERT INTO users.other VALUES (1, 'skipped')");
  const std::string g2 =
      commit(*server_, "UPDATE users.user SET name = 'Alicia', version = 2 WHERE id = 'a'");
  const std::string g3 =
      commit(*server_, "INSERT INTO users.user VALUES ('b', NULL, 18446744073709551615, NULL)");
  const std::string g4 = commit(*server_, "DELETE FROM users.user WHERE id = 'a'");
  commit(*server_, "UPDATE users.other SET note = 'still skipped'");
  const std::string end = server_->gtid_binlog_pos();
  run(io_, [&]() -> asio::awaitable<void> {
    auto got = co_await collect(reader, 4, 15s);
    EXPECT_EQ(got.errors, 0) << got.last_error;
    EXPECT_EQ(got.changes.size(), 4U);
    if (got.changes.size() != 4) co_return;
    const auto& c = got.changes;
    EXPECT_EQ(c[0].kind, RowChange::Kind::insert);
    EXPECT_EQ(c[0].database, "users");
    EXPECT_EQ(c[0].table, "user");
    EXPECT_EQ(c[0].gtid, g1);
    EXPECT_EQ(c[0].row, (Row{"a", "Zoe", std::uint64_t{1}, "2024-01-02 03:04:05.123456"}));
    EXPECT_EQ(c[1].kind, RowChange::Kind::update);
    EXPECT_EQ(c[1].gtid, g2);
    EXPECT_EQ(c[1].row, (Row{"a", "Alicia", std::uint64_t{2}, "2024-01-02 03:04:05.123456"}));
    EXPECT_EQ(c[1].before, (Row{"a", "Zoe", std::uint64_t{1}, "2024-01-02 03:04:05.123456"}));
    EXPECT_TRUE(c[0].before.empty() && c[3].before.empty());
    EXPECT_EQ(c[2].kind, RowChange::Kind::insert);
    EXPECT_EQ(c[2].gtid, g3);
    EXPECT_EQ(c[2].row, (Row{"b", nullptr, UINT64_MAX, nullptr}));
    EXPECT_EQ(c[3].kind, RowChange::Kind::remove);  // the row before the delete
    EXPECT_EQ(c[3].gtid, g4);
    EXPECT_EQ(c[3].row, (Row{"a", "Alicia", std::uint64_t{2}, "2024-01-02 03:04:05.123456"}));
    // The skipped transaction after the delete still advances the position.
    EXPECT_TRUE(co_await eventually([&] { return reader.position() == end; }, 5s))
        << reader.position() << " != " << end;
    if (reader.position() != end) co_return;
    auto empty = co_await reader.next(10, 50ms);
    EXPECT_TRUE(empty && empty->changes.empty() && empty->position == end);
    const auto st = reader.status();
    EXPECT_TRUE(st.running && st.connected);
    EXPECT_EQ(st.counters.changes, 4U);
    EXPECT_GE(st.counters.transactions, 6U);
  });
}

TEST_F(Binlog, ABatchHoldsWholeTransactionsUpToMaxChanges) {
  const std::string p0 = server_->gtid_binlog_pos();
  BinlogReader reader(io_.get_executor(), settings_for(server_->port(), 102));
  reader.start(p0);
  const std::string ga = commit(*server_,
                                "BEGIN; INSERT INTO users.user (id, version) VALUES ('c1', 1), ('c2', 1);"
                                " INSERT INTO users.other VALUES (7, 'same tx');"
                                " INSERT INTO users.user (id, version) VALUES ('c3', 1);"
                                " UPDATE users.user SET version = 2 WHERE id = 'c1'; COMMIT");
  const std::string gb = commit(*server_, "INSERT INTO users.user (id) VALUES ('d1')");
  const std::string gc = commit(*server_, "INSERT INTO users.user (id) VALUES ('d2')");
  run(io_, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await eventually([&] { return reader.status().queued == 3; }, 15s));
    auto a = co_await reader.next(2, 5s);  // the transaction has 4 changes: it comes whole
    EXPECT_TRUE(a) << (a ? "" : describe(a.error()));
    if (!a) co_return;
    EXPECT_EQ(ids(a->changes), (std::vector<std::string>{"c1", "c2", "c3", "c1"}));
    for (const auto& c : a->changes)
      EXPECT_EQ(c.gtid, ga);
    EXPECT_EQ(a->position, ga);
    auto b = co_await reader.next(1, 5s);
    EXPECT_TRUE(b && ids(b->changes) == std::vector<std::string>{"d1"} && b->position == gb);
    auto c = co_await reader.next(5, 5s);
    EXPECT_TRUE(c && ids(c->changes) == std::vector<std::string>{"d2"} && c->position == gc);
  });
}

TEST_F(Binlog, ResumingFromAReturnedPositionDeliversExactlyWhatCameAfter) {
  const std::string p0 = server_->gtid_binlog_pos();
  for (const char* id : {"e1", "e2", "e3"})
    commit(*server_, std::string("INSERT INTO users.user (id) VALUES ('") + id + "')");
  std::string p1;
  {
    BinlogReader first(io_.get_executor(), settings_for(server_->port(), 103));
    first.start(p0);
    run(io_, [&]() -> asio::awaitable<void> {
      auto b = co_await first.next(1, 10s);
      EXPECT_TRUE(b && ids(b->changes) == std::vector<std::string>{"e1"});
      if (b) p1 = b->position;
    });
  }
  commit(*server_, "INSERT INTO users.user (id) VALUES ('e4')");
  BinlogReader second(io_.get_executor(), settings_for(server_->port(), 103));
  second.start(p1);
  EXPECT_EQ(second.position(), p1);
  run(io_, [&]() -> asio::awaitable<void> {
    auto got = co_await collect(second, 3, 15s);
    EXPECT_EQ(ids(got.changes), (std::vector<std::string>{"e2", "e3", "e4"}));
    auto more = co_await second.next(10, 300ms);
    EXPECT_TRUE(more && more->changes.empty());
    EXPECT_EQ(second.position(), server_->gtid_binlog_pos());
  });
}

TEST_F(Binlog, StartFromEmptyDeliversOnlyNewChanges) {
  commit(*server_, "INSERT INTO users.user (id) VALUES ('old')");
  const std::string before = server_->gtid_binlog_pos();
  auto s = settings_for(server_->port(), 104);
  s.connection.source_address = "127.0.1.8";
  BinlogReader reader(io_.get_executor(), s);
  reader.start("");
  run(io_, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await eventually([&] { return reader.status().connected; }, 15s));
    EXPECT_EQ(reader.position(), before);  // resolved at the first connect
    EXPECT_EQ(server_->sql("SELECT COUNT(*) FROM information_schema.PROCESSLIST"
                           " WHERE COMMAND = 'Binlog Dump' AND HOST LIKE '127.0.1.8:%'"),
              "1\n");
    commit(*server_, "INSERT INTO users.user (id) VALUES ('new')");
    auto got = co_await collect(reader, 1, 15s);
    EXPECT_EQ(ids(got.changes), (std::vector<std::string>{"new"}));
    auto more = co_await reader.next(10, 300ms);
    EXPECT_TRUE(more && more->changes.empty());
  });
}

TEST_F(Binlog, NextCompletesEmptyAtItsDeadlineAndRejectsMisuse) {
  BinlogReader reader(io_.get_executor(), settings_for(server_->port(), 105));
  run(io_, [&]() -> asio::awaitable<void> {
    auto early = co_await reader.next(10, 1s);
    EXPECT_TRUE(!early && early.error().code == Errc::invalid_argument);
    co_return;
  });
  const std::string p = server_->gtid_binlog_pos();
  reader.start(p);
  EXPECT_THROW(reader.start(p), std::logic_error);
  run(io_, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await eventually([&] { return reader.status().connected; }, 15s));
    auto zero = co_await reader.next(0, 1s);
    EXPECT_TRUE(!zero && zero.error().code == Errc::invalid_argument);
    // 2.5 s: longer than read_timeout (2 s), so the idle stream lives on the server's heartbeats.
    for (const Ms deadline : {Ms(0), Ms(2500)}) {
      const auto t0 = Clock::now();
      auto b = co_await reader.next(10, deadline);
      const auto took = since(t0);
      EXPECT_TRUE(b && b->changes.empty() && b->position == p);
      EXPECT_GE(took, deadline - Ms(5));
      EXPECT_LE(took, deadline + itest::margin(deadline));
    }
    const auto st = reader.status();
    EXPECT_EQ(st.counters.failures, 0U) << st.last_error;
    EXPECT_GE(st.counters.heartbeats, 2U);
    EXPECT_TRUE(st.connected);
  });
}

TEST_F(Binlog, CancellingAPendingNextLosesNothing) {
  BinlogReader reader(io_.get_executor(), settings_for(server_->port(), 115));
  reader.start(server_->gtid_binlog_pos());
  run(io_, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await eventually([&] { return reader.status().connected; }, 15s));
    std::optional<Result<Batch>> result;
    asio::cancellation_signal cancel;
    asio::co_spawn(
        io_, [&]() -> asio::awaitable<void> { result.emplace(co_await reader.next(10, 20s)); },
        asio::bind_cancellation_slot(cancel.slot(), asio::detached));
    co_await sleep_for(100ms);
    cancel.emit(asio::cancellation_type::terminal);
    EXPECT_TRUE(co_await eventually([&] { return result.has_value(); }, 1s));
    EXPECT_TRUE(result && !*result && (*result).error().code == Errc::cancelled);
    commit(*server_, "INSERT INTO users.user (id) VALUES ('x1')");
    auto got = co_await collect(reader, 1, 15s);
    EXPECT_EQ(ids(got.changes), (std::vector<std::string>{"x1"}));
  });
}

TEST_F(Binlog, StopCompletesAPendingNextPromptly) {
  BinlogReader reader(io_.get_executor(), settings_for(server_->port(), 106));
  reader.start(server_->gtid_binlog_pos());
  run(io_, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await eventually([&] { return reader.status().connected; }, 15s));
    std::optional<Result<Batch>> result;
    asio::co_spawn(
        io_, [&]() -> asio::awaitable<void> { result.emplace(co_await reader.next(10, 20s)); },
        asio::detached);
    co_await sleep_for(100ms);
    EXPECT_FALSE(result);
    const auto t0 = Clock::now();
    reader.stop();  // closes the connection (the thread is blocked reading it) and joins the thread
    EXPECT_LT(since(t0), Ms(500));
    EXPECT_TRUE(co_await eventually([&] { return result.has_value(); }, 1s));
    EXPECT_LT(since(t0), Ms(500));
    EXPECT_TRUE(result && !*result && (*result).error().code == Errc::stopped);
    auto after = co_await reader.next(10, 1s);
    EXPECT_TRUE(!after && after.error().code == Errc::stopped);
    EXPECT_FALSE(reader.status().running);
  });
}

TEST_F(Binlog, AFullQueueStopsReadingUntilNextTakesFromIt) {
  auto s = settings_for(server_->port(), 107);
  s.queue_capacity = 2;
  BinlogReader reader(io_.get_executor(), s);
  reader.start(server_->gtid_binlog_pos());
  for (int i = 0; i < 6; ++i)
    commit(*server_, "INSERT INTO users.user (id) VALUES ('q" + std::to_string(i) + "')");
  run(io_, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await eventually([&] { return reader.status().queued == 2; }, 15s));
    co_await sleep_for(300ms);
    const auto st = reader.status();
    EXPECT_EQ(st.queued, 2U);
    EXPECT_LE(st.counters.transactions, 3U);  // the third waits for room
    auto got = co_await collect(reader, 6, 15s, 1);
    EXPECT_EQ(ids(got.changes), (std::vector<std::string>{"q0", "q1", "q2", "q3", "q4", "q5"}));
  });
}

TEST_F(Binlog, ServerKilledAndRestartedResumesWithNoChangeLostOrDuplicated) {
  BinlogReader reader(io_.get_executor(), settings_for(server_->port(), 108));
  reader.start(server_->gtid_binlog_pos());
  commit(*server_, "INSERT INTO users.user (id) VALUES ('k1')");
  commit(*server_, "INSERT INTO users.user (id) VALUES ('k2')");
  Collected all;
  run(io_, [&]() -> asio::awaitable<void> {
    auto got = co_await collect(reader, 2, 15s);
    EXPECT_EQ(ids(got.changes), (std::vector<std::string>{"k1", "k2"}));
    all = std::move(got);
  });
  commit(*server_, "INSERT INTO users.user (id) VALUES ('k3')");  // may or may not be read before the crash
  server_->kill();
  run(io_, [&]() -> asio::awaitable<void> {
    // The error is reported (after k3 if the reader had it), then the reader keeps retrying.
    const auto until = Clock::now() + 10s;
    while (all.errors == 0 && Clock::now() < until) {
      auto b = co_await reader.next(10, 1s);
      if (!b) {
        ++all.errors;
        EXPECT_TRUE(b.error().is_transient()) << describe(b.error());
        continue;
      }
      for (auto& c : b->changes)
        all.changes.push_back(std::move(c));
    }
    EXPECT_GE(all.errors, 1);
    EXPECT_FALSE(reader.status().connected);
  });
  server_->restart();
  commit(*server_, "INSERT INTO users.user (id) VALUES ('k4')");
  run(io_, [&]() -> asio::awaitable<void> {
    auto got = co_await collect(reader, 4 - all.changes.size(), 20s);  // up to k4
    for (auto& c : got.changes)
      all.changes.push_back(std::move(c));
    EXPECT_EQ(ids(all.changes), (std::vector<std::string>{"k1", "k2", "k3", "k4"}));
    EXPECT_TRUE(co_await eventually([&] { return reader.status().connected; }, 5s));
    auto more = co_await reader.next(10, 300ms);
    EXPECT_TRUE(more && more->changes.empty());
    EXPECT_GE(reader.status().counters.connects, 2U);
  });
}

// A server that stops answering (SIGSTOP: the connection stays open, nothing arrives, not even
// heartbeats) is detected after read_timeout; the reader then retries and resumes once it is back.
TEST_F(Binlog, AnUnresponsiveServerIsDetectedByTheReadTimeout) {
  BinlogReader reader(io_.get_executor(), settings_for(server_->port(), 111));
  reader.start(server_->gtid_binlog_pos());
  bool paused = false;
  run(io_, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await eventually([&] { return reader.status().connected; }, 15s));
    server_->pause();
    paused = true;
    itest::wait_stopped(server_->pid());
    const auto t0 = Clock::now();
    auto b = co_await reader.next(10, 10s);
    const auto took = since(t0);
    EXPECT_TRUE(!b && b.error().is_transient()) << (b ? "ok" : describe(b.error()));
    const Ms read_timeout = 2s;
    EXPECT_GE(took, read_timeout - Ms(600));  // a heartbeat may have been due when it stopped
    EXPECT_LE(took, read_timeout + itest::margin(read_timeout));
    server_->resume();
    paused = false;
    commit(*server_, "INSERT INTO users.user (id) VALUES ('after pause')");
    auto got = co_await collect(reader, 1, 20s);
    EXPECT_EQ(ids(got.changes), (std::vector<std::string>{"after pause"}));
  });
  if (paused) server_->resume();
}

// UNSIGNED comes from the table map when the server logs it (binlog_row_metadata MINIMAL or FULL):
// here the table did not exist when the reader connected, so information_schema could not tell.
TEST_F(Binlog, SignednessFromTheTableMapWhenTheServerLogsIt) {
  server_->sql("DROP TABLE IF EXISTS users.meta; SET GLOBAL binlog_row_metadata = 'FULL'");
  auto s = settings_for(server_->port(), 112);
  s.table = "meta";
  BinlogReader reader(io_.get_executor(), s);
  reader.start(server_->gtid_binlog_pos());
  run(io_, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await eventually([&] { return reader.status().connected; }, 15s));
    commit(
        *server_,
        "CREATE TABLE users.meta (u INT UNSIGNED PRIMARY KEY, s BIGINT, t TINYINT UNSIGNED, d DECIMAL(6,2));"
        " INSERT INTO users.meta VALUES (4294967295, -1, 255, -12.5)");
    auto got = co_await collect(reader, 1, 15s);
    EXPECT_EQ(got.changes.size(), 1U);
    if (got.changes.size() != 1) co_return;
    EXPECT_EQ(got.changes[0].row,
              (Row{std::uint64_t{4294967295}, std::int64_t{-1}, std::uint64_t{255}, "-12.50"}));
  });
  server_->sql("SET GLOBAL binlog_row_metadata = 'NO_LOG'; DROP TABLE users.meta");
}

// A replica with log_slave_updates writes what it applies to its own binlog, with the primary's
// GTIDs: a reader can follow the replica instead of the primary, and a position read from the
// primary resumes on the replica, before and after the replica is promoted (a failover).
TEST_F(Binlog, ReadsTheBinlogOfAReplicaAndResumesOnItAfterAFailover) {
  auto replica = MariaDbServer::start(dir_->path() / "replica", {}, {.server_id = 2, .read_only = true});
  replica.replicate_from(server_->port());
  replica.wait_gtid(server_->gtid_binlog_pos());
  BinlogReader on_replica(io_.get_executor(), settings_for(replica.port(), 109));
  on_replica.start(replica.gtid_binlog_pos());
  BinlogReader on_primary(io_.get_executor(), settings_for(server_->port(), 113));
  on_primary.start(server_->gtid_binlog_pos());
  const std::string g1 = commit(*server_, "INSERT INTO users.user VALUES ('r1', 'via replica', 5, NULL)");
  std::string from_primary;
  run(io_, [&]() -> asio::awaitable<void> {
    auto got = co_await collect(on_replica, 1, 15s);
    EXPECT_EQ(got.changes.size(), 1U);
    if (got.changes.size() != 1) co_return;
    EXPECT_EQ(got.changes[0].gtid, g1);  // the primary's GTID (server id 1)
    EXPECT_EQ(got.changes[0].row, (Row{"r1", "via replica", std::uint64_t{5}, nullptr}));
    EXPECT_EQ(got.position, g1);
    auto p = co_await collect(on_primary, 1, 15s);
    EXPECT_EQ(ids(p.changes), (std::vector<std::string>{"r1"}));
    from_primary = p.position;
  });
  on_primary.stop();
  // Failover: r2 reaches the replica, the primary is left behind, the replica is promoted.
  commit(*server_, "INSERT INTO users.user (id) VALUES ('r2')");
  replica.wait_gtid(server_->gtid_binlog_pos());
  replica.sql("STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = 0;");
  const std::string g3 = commit(replica, "INSERT INTO users.user (id) VALUES ('r3')");
  EXPECT_EQ(g3.rfind("0-2-", 0), 0U) << g3;
  BinlogReader after_failover(io_.get_executor(), settings_for(replica.port(), 114));
  after_failover.start(from_primary);
  run(io_, [&]() -> asio::awaitable<void> {
    auto got = co_await collect(after_failover, 2, 15s);
    EXPECT_EQ(ids(got.changes), (std::vector<std::string>{"r2", "r3"}));
    EXPECT_EQ(got.position, g3);
  });
}

// A position the server's binlog does not hold (here: ahead of it, as after a failover to a server
// that lacks the old primary's last transactions) fails every attempt with the server's error.
TEST_F(Binlog, APositionTheServerDoesNotHoldFailsWithItsError) {
  BinlogReader reader(io_.get_executor(), settings_for(server_->port(), 116));
  reader.start("0-1-999999");
  run(io_, [&]() -> asio::awaitable<void> {
    auto b = co_await reader.next(10, 10s);
    EXPECT_TRUE(!b && b.error().code == Errc::server && b.error().server_errno == 1236 &&
                !b.error().is_transient())
        << (b ? "ok" : describe(b.error()));
    b = co_await reader.next(10, 10s);  // and again: it retries, the server still refuses
    EXPECT_TRUE(!b && b.error().server_errno == 1236) << (b ? "ok" : describe(b.error()));
    EXPECT_EQ(reader.position(), "0-1-999999");
  });
}

// The server's settings are checked at every connect: an unusable binlog fails each attempt with a
// clear error, and the reader comes up by itself once the server is fixed.
TEST_F(Binlog, AServerWithoutRowEventsFailsClearlyUntilFixed) {
  server_->sql("SET GLOBAL binlog_format = 'STATEMENT'");
  BinlogReader reader(io_.get_executor(), settings_for(server_->port(), 110));
  reader.start("");
  run(io_, [&]() -> asio::awaitable<void> {
    auto b = co_await reader.next(10, 10s);
    EXPECT_TRUE(!b && b.error().code == Errc::invalid_argument &&
                b.error().message.find("binlog_format is STATEMENT") != std::string::npos)
        << (b ? "ok" : describe(b.error()));
    EXPECT_FALSE(reader.status().connected);
    EXPECT_EQ(reader.position(), "");  // not resolved yet
    server_->sql("SET GLOBAL binlog_format = 'ROW'");
    EXPECT_TRUE(co_await eventually([&] { return reader.status().connected; }, 10s));
    commit(*server_, "INSERT INTO users.user (id) VALUES ('fixed')");
    auto got = co_await collect(reader, 1, 15s);
    EXPECT_EQ(ids(got.changes), (std::vector<std::string>{"fixed"}));
  });
  server_->sql("SET GLOBAL binlog_format = 'ROW'");
}

TEST(BinlogSettingsTest, RejectsNonsenseAtConstruction) {
  asio::io_context io;
  BinlogSettings s = settings_for(3306, 1);
  EXPECT_NO_THROW(BinlogReader(io.get_executor(), s));
  s.server_id = 0;
  EXPECT_THROW(BinlogReader(io.get_executor(), s), std::invalid_argument);
  s.server_id = 1;
  s.table = "";
  EXPECT_THROW(BinlogReader(io.get_executor(), s), std::invalid_argument);
  s.table = "user";
  s.read_timeout = 0s;
  EXPECT_THROW(BinlogReader(io.get_executor(), s), std::invalid_argument);
  s.read_timeout = 2s;
  s.connection.source_address = "not-an-ip";
  EXPECT_THROW(BinlogReader(io.get_executor(), s), std::invalid_argument);
  s.connection.source_address = "";
  BinlogReader r(io.get_executor(), s);
  EXPECT_THROW(r.start("0-1"), std::invalid_argument);
}

}  // namespace
}  // namespace clients::mysql
