// clients::mysql against a real mariadbd (started through src/testing): prepared statements with
// hostile strings, error classification, transactions, exact deadlines (SLEEP, SIGSTOP), connect
// deadline, pool exhaustion and waiters, start-up while down, restart, bursts, cancellation and
// destruction with work in flight.
#include <gtest/gtest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <optional>

#include "clients/itest_util.h"
#include "clients/mysql.h"
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

std::string describe(const Error& e) {
  return std::string(to_string(e.code)) + " " + std::to_string(e.server_errno) + " " + e.message;
}

template <typename T>
std::string describe(const Result<T>& r) {
  return r ? "ok" : describe(r.error());
}

ConnectSettings connect_settings(std::uint16_t port) {
  ConnectSettings s;
  s.port = port;
  s.database = "users";
  return s;
}

PoolSettings pool_settings(std::uint16_t port) {
  PoolSettings s;
  s.connection = connect_settings(port);
  // Generous: with a load average of 10 on this 2-core box a handshake took over 500 ms. Tests of
  // the connect deadline set their own.
  s.connection.connect_timeout = std::chrono::seconds(2);
  s.max_size = 4;
  s.min_size = 1;
  s.name = "test";
  return s;
}

// mariadb-install-db and mariadbd keep temporary tables in $TMPDIR (default /tmp), where two
// installs running at once (parallel ctest on a shared machine) were seen to fail with "Error on
// delete of '/tmp/#sql-temptable-...'". Each server here gets a private one.
MariaDbServer start_mariadb(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir / "tmp");
  const char* previous = std::getenv("TMPDIR");
  const std::optional<std::string> saved = previous ? std::optional<std::string>(previous) : std::nullopt;
  ::setenv("TMPDIR", (dir / "tmp").c_str(), 1);
  auto restore = [&] {
    if (saved) {
      ::setenv("TMPDIR", saved->c_str(), 1);
    } else {
      ::unsetenv("TMPDIR");
    }
  };
  try {
    MariaDbServer server = MariaDbServer::start(dir);
    restore();
    return server;
  } catch (...) {
    restore();
    throw;
  }
}

const char* const kSchema =
    "CREATE DATABASE IF NOT EXISTS users;"
    "CREATE TABLE IF NOT EXISTS users.user (id VARCHAR(255) PRIMARY KEY, name VARCHAR(255),"
    " version BIGINT NOT NULL DEFAULT 1, data VARBINARY(64), price DECIMAL(10,2),"
    " updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)) CHARACTER SET utf8mb4;";

// One server for the tests that do not stop or pause it.
class SharedServer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    server_ = new MariaDbServer(start_mariadb(dir_->path() / "db"));
    server_->sql(kSchema);
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
    server_ = nullptr;
    dir_ = nullptr;
  }
  void SetUp() override { server_->sql("DELETE FROM users.user;"); }

  static TempDir* dir_;
  static MariaDbServer* server_;
  asio::io_context io_;
};
TempDir* SharedServer::dir_ = nullptr;
MariaDbServer* SharedServer::server_ = nullptr;

// A server of its own, for tests that stop, restart or pause it.
class OwnServer : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.emplace(start_mariadb(dir_.path() / "db"));
    server_->sql(kSchema);
  }
  void TearDown() override {
    if (server_) server_->resume();
  }
  TempDir dir_;
  std::optional<MariaDbServer> server_;
  asio::io_context io_;
};

TEST_F(SharedServer, PreparedStatementsRoundTripHostileStringsVerbatim) {
  Pool pool(io_.get_executor(), pool_settings(server_->port()));
  pool.start();
  const std::vector<std::string> names = {
      "'; DROP TABLE user; --",
      "Robert'); DROP TABLE users;--",
      "quote ' double \" backslash \\ percent % underscore _",
      "Zo\xc3\xab \xe2\x9c\x93 \xf0\x9f\x98\x80 \xe4\xb8\xad\xe6\x96\x87",  // "Zoë ✓ 😀 中文"
      std::string(255, 'x'),
      "",
  };
  const std::string binary("\0\x01\xff\xfe'\"\\\n\r", 9);
  run(io_, [&]() -> asio::awaitable<void> {
    for (std::size_t i = 0; i < names.size(); ++i) {
      std::vector<Value> p{"id-" + std::to_string(i), names[i], binary, "12.50"};
      auto r = co_await pool.execute("INSERT INTO user (id, name, data, price) VALUES (?, ?, ?, ?)",
                                     std::move(p), 2s);
      EXPECT_TRUE(r) << describe(r);
      if (r) {
        EXPECT_EQ(r->affected_rows, 1u);
      }
    }
    for (std::size_t i = 0; i < names.size(); ++i) {
      std::vector<Value> p{"id-" + std::to_string(i)};
      auto r = co_await pool.execute(
          "SELECT id, name, data, version, price, updated_at, NULL AS nothing FROM user WHERE id = ?",
          std::move(p), 2s);
      EXPECT_TRUE(r) << describe(r);
      if (!r) continue;
      EXPECT_EQ(r->columns, (std::vector<std::string>{"id", "name", "data", "version", "price", "updated_at",
                                                      "nothing"}));
      EXPECT_EQ(r->rows.size(), 1u);
      if (r->rows.size() != 1) continue;
      const Row& row = r->rows[0];
      EXPECT_EQ(row[1].string(), names[i]);
      EXPECT_EQ(row[2].string(), binary);
      EXPECT_EQ(row[3], Value(1));
      EXPECT_EQ(row[4].string(), "12.50");
      EXPECT_EQ(row[5].string().size(), 23u) << row[5].to_text();  // "YYYY-MM-DD HH:MM:SS.mmm"
      EXPECT_TRUE(row[6].is_null());
    }
    // The table survived every name, and the text protocol reads the same bytes.
    auto lease = co_await pool.acquire(1s);
    EXPECT_TRUE(lease) << describe(lease);
    if (!lease) co_return;
    auto count =
        co_await (*lease)->query("SELECT COUNT(*), MAX(name = '''; DROP TABLE user; --') FROM user", 1s);
    EXPECT_TRUE(count && count->rows.size() == 1) << describe(count);
    if (count && count->rows.size() == 1) {
      EXPECT_EQ(count->rows[0][0].to_int(), static_cast<std::int64_t>(names.size()));
      EXPECT_EQ(count->rows[0][1].to_int(), 1);
    }
    auto text = co_await (*lease)->query("SELECT name, data FROM user WHERE id = 'id-3'", 1s);
    EXPECT_TRUE(text && text->rows.size() == 1);
    if (text && text->rows.size() == 1) {
      EXPECT_EQ(text->rows[0][0].string(), names[3]);
      EXPECT_EQ(text->rows[0][1].string(), binary);
    }
  });
  EXPECT_EQ(server_->sql("SELECT name FROM users.user WHERE id = 'id-0'"), "'; DROP TABLE user; --\n");
}

TEST_F(SharedServer, ErrorsAreClassifiedAndServerErrorsKeepTheConnection) {
  Pool pool(io_.get_executor(), pool_settings(server_->port()));
  pool.start();
  run(io_, [&]() -> asio::awaitable<void> {
    auto lease = co_await pool.acquire(2s);
    EXPECT_TRUE(lease) << describe(lease);
    if (!lease) co_return;
    Connection& conn = **lease;
    std::vector<Value> p{"dup", "first"};
    auto r = co_await conn.execute("INSERT INTO user (id, name) VALUES (?, ?)", p, 1s);
    EXPECT_TRUE(r) << describe(r);
    r = co_await conn.execute("INSERT INTO user (id, name) VALUES (?, ?)", p, 1s);
    EXPECT_FALSE(r);
    if (!r) {
      EXPECT_TRUE(r.error().is_duplicate_key()) << describe(r.error());
      EXPECT_EQ(r.error().sqlstate, "23000");
      EXPECT_NE(r.error().message.find("Duplicate entry"), std::string::npos);
    }
    EXPECT_TRUE(conn.usable()) << "a server error leaves the connection usable";
    r = co_await conn.execute("SELEKT 1", {}, 1s);  // syntax error at prepare
    EXPECT_TRUE(!r && r.error().code == Errc::server && r.error().server_errno == 1064) << describe(r);
    r = co_await conn.execute("SELECT * FROM no_such_table", {}, 1s);
    EXPECT_TRUE(!r && r.error().server_errno == 1146) << describe(r);
    std::vector<Value> one{"x"};
    r = co_await conn.execute("SELECT ?, ?", std::move(one), 1s);
    EXPECT_TRUE(!r && r.error().code == Errc::invalid_argument) << describe(r);
    std::vector<Value> too_long{"long", std::string(300, 'y')};  // strict mode: data too long
    r = co_await conn.execute("INSERT INTO user (id, name) VALUES (?, ?)", std::move(too_long), 1s);
    EXPECT_TRUE(!r && r.error().code == Errc::server && r.error().server_errno == 1406) << describe(r);
    EXPECT_TRUE(conn.usable());
    auto q = co_await conn.query("SELECT name FROM user WHERE id = 'dup'", 1s);
    EXPECT_TRUE(q && q->rows.size() == 1 && q->rows[0][0].string() == "first") << describe(q);
  });
  EXPECT_EQ(pool.status().counters.discarded, 0u);
}

// Error::outcome_unknown separates a statement known not to have run (refused by the server, no
// connection, bad parameters) from one whose fate is unknown (the deadline passed or the connection
// was lost while the server had it): the latter may have committed.
TEST_F(SharedServer, ErrorsSayWhetherTheStatementMayHaveRun) {
  PoolSettings s = pool_settings(server_->port());
  s.max_size = 3;
  Pool pool(io_.get_executor(), s);
  pool.start();
  run(io_, [&]() -> asio::awaitable<void> {
    const std::string insert = "INSERT INTO user (id, name) VALUES (?, ?)";
    std::vector<Value> p{"dup", "first"};
    auto r = co_await pool.execute(insert, p, 2s);
    EXPECT_TRUE(r) << describe(r);
    // Known not to have run: the server's own error replies, at execute and at prepare, and
    // parameters that do not fit the statement.
    r = co_await pool.execute(insert, p, 2s);
    EXPECT_TRUE(!r && r.error().is_duplicate_key() && !r.error().outcome_unknown) << describe(r);
    r = co_await pool.execute("SELEKT 1", {}, 2s);
    EXPECT_TRUE(!r && r.error().code == Errc::server && !r.error().outcome_unknown) << describe(r);
    std::vector<Value> one{"x"};
    r = co_await pool.execute("SELECT ?, ?", std::move(one), 2s);
    EXPECT_TRUE(!r && r.error().code == Errc::invalid_argument && !r.error().outcome_unknown) << describe(r);

    // The deadline passes while the server runs the statement: unknown.
    r = co_await pool.execute("SELECT SLEEP(3)", {}, 100ms);
    EXPECT_TRUE(!r && r.error().code == Errc::timeout && r.error().outcome_unknown) << describe(r);

    // No connection within the deadline (all three leased): known not to have run.
    {
      auto a = co_await pool.acquire(2s);
      auto b = co_await pool.acquire(2s);
      auto c = co_await pool.acquire(2s);
      EXPECT_TRUE(a && b && c);
      r = co_await pool.execute("SELECT 1", {}, 50ms);
      EXPECT_TRUE(!r && r.error().code == Errc::timeout && !r.error().outcome_unknown) << describe(r);
    }

    // A write waiting for a row lock held by another transaction, then interrupted by the server
    // (KILL QUERY: it answers with an error, the statement is rolled back) or cut off with its
    // connection (KILL CONNECTION: what a reset or a crash does; the client cannot know).
    auto holder = co_await pool.acquire(2s);
    EXPECT_TRUE(holder) << describe(holder);
    if (!holder) co_return;
    EXPECT_TRUE(co_await (*holder)->begin(2s));
    std::vector<Value> lock{"held", "dup"};
    auto locked = co_await (*holder)->execute("UPDATE user SET name = ? WHERE id = ?", std::move(lock), 2s);
    EXPECT_TRUE(locked) << describe(locked);
    for (const std::string kill : {"KILL QUERY ", "KILL CONNECTION "}) {
      auto victim = co_await pool.acquire(2s);
      auto killer = co_await pool.acquire(2s);
      EXPECT_TRUE(victim && killer);
      if (!victim || !killer) co_return;
      auto id = co_await (*victim)->query("SELECT CONNECTION_ID()", 2s);
      EXPECT_TRUE(id && id->rows.size() == 1) << describe(id);
      if (!id || id->rows.empty()) co_return;
      std::optional<Result<ResultSet>> blocked;
      asio::co_spawn(
          io_,
          [&]() -> asio::awaitable<void> {
            std::vector<Value> w{"victim", "dup"};
            blocked.emplace(
                co_await (*victim)->execute("UPDATE user SET name = ? WHERE id = ?", std::move(w), 20s));
          },
          [](std::exception_ptr) {});
      co_await sleep_for(200ms);
      EXPECT_FALSE(blocked) << "the UPDATE should wait for the row lock";
      auto k = co_await (*killer)->query(kill + id->rows[0][0].to_text(), 2s);
      EXPECT_TRUE(k) << kill << describe(k);
      for (int i = 0; i < 500 && !blocked; ++i)
        co_await sleep_for(10ms);
      EXPECT_TRUE(blocked && !*blocked) << kill;
      if (!blocked || *blocked) continue;
      const Error& e = blocked->error();
      if (kill == "KILL QUERY ") {
        EXPECT_TRUE(e.code == Errc::server && e.server_errno == 1317 && !e.outcome_unknown) << describe(e);
      } else {
        EXPECT_TRUE(e.code == Errc::connection_lost && e.outcome_unknown) << describe(e);
      }
    }
    EXPECT_TRUE(co_await (*holder)->rollback(2s));
  });
  EXPECT_EQ(server_->sql("SELECT name FROM users.user WHERE id = 'dup'"), "first\n");
}

TEST_F(SharedServer, TransactionsCommitAndRollBackOnOneConnection) {
  Pool pool(io_.get_executor(), pool_settings(server_->port()));
  pool.start();
  run(io_, [&]() -> asio::awaitable<void> {
    {
      auto lease = co_await pool.acquire(2s);
      EXPECT_TRUE(lease);
      if (!lease) co_return;
      Connection& conn = **lease;
      EXPECT_FALSE(conn.in_transaction());
      EXPECT_TRUE(co_await conn.begin(1s));
      EXPECT_TRUE(conn.in_transaction());
      std::vector<Value> p{"tx-rolled-back", "ghost"};
      auto r = co_await conn.execute("INSERT INTO user (id, name) VALUES (?, ?)", std::move(p), 1s);
      EXPECT_TRUE(r) << describe(r);
      EXPECT_TRUE(co_await conn.rollback(1s));
      EXPECT_FALSE(conn.in_transaction());
      EXPECT_TRUE(co_await conn.begin(1s));
      std::vector<Value> q{"tx-committed", "real"};
      r = co_await conn.execute("INSERT INTO user (id, name) VALUES (?, ?)", std::move(q), 1s);
      EXPECT_TRUE(r) << describe(r);
      EXPECT_TRUE(co_await conn.commit(1s));
    }
    // A connection returned inside a transaction is closed (the server rolls back), never reused.
    {
      auto lease = co_await pool.acquire(2s);
      EXPECT_TRUE(lease);
      if (!lease) co_return;
      EXPECT_TRUE(co_await (*lease)->begin(1s));
      std::vector<Value> p{"tx-abandoned", "ghost"};
      auto r = co_await (*lease)->execute("INSERT INTO user (id, name) VALUES (?, ?)", std::move(p), 1s);
      EXPECT_TRUE(r) << describe(r);
    }
    EXPECT_EQ(pool.status().counters.discarded, 1u);
    co_await sleep_for(100ms);  // the server notices the closed session and rolls back
  });
  EXPECT_EQ(server_->sql("SELECT id FROM users.user ORDER BY id"), "tx-committed\n");
}

TEST_F(SharedServer, StatementDeadlineIsExactAndTheConnectionIsReplaced) {
  Pool pool(io_.get_executor(), pool_settings(server_->port()));
  pool.start();
  run(io_, [&]() -> asio::awaitable<void> {
    auto warm = co_await pool.execute("SELECT 1", {}, 2s);
    EXPECT_TRUE(warm) << describe(warm);
    for (const auto deadline : {Ms(50), Ms(200), Ms(500)}) {
      const auto t0 = Clock::now();
      auto r = co_await pool.execute("SELECT SLEEP(3)", {}, deadline);
      const Ms took = since(t0);
      EXPECT_TRUE(!r && r.error().code == Errc::timeout) << describe(r);
      EXPECT_GE(took, deadline - 1ms);
      EXPECT_LT(took, deadline + itest::margin(deadline)) << "deadline " << deadline.count() << " ms";
      std::printf("[ figures ] SLEEP(3) with a %lld ms deadline returned after %lld ms\n",
                  static_cast<long long>(deadline.count()), static_cast<long long>(took.count()));
    }
    auto r = co_await pool.execute("SELECT 42", {}, 1s);
    EXPECT_TRUE(r && r->rows.at(0).at(0) == Value(42)) << describe(r);
  });
  const auto st = pool.status();
  EXPECT_EQ(st.counters.discarded, 3u) << "a timed-out connection is never reused";
  EXPECT_LE(st.open, 4u);
}

TEST_F(SharedServer, PoolExhaustionWaitersAndTheirDeadlines) {
  PoolSettings s = pool_settings(server_->port());
  s.max_size = 2;
  s.max_waiters = 1;
  Pool pool(io_.get_executor(), s);
  pool.start();
  run(io_, [&]() -> asio::awaitable<void> {
    auto a = co_await pool.acquire(2s);
    auto b = co_await pool.acquire(2s);
    EXPECT_TRUE(a && b);
    EXPECT_EQ(pool.status().in_use, 2u);
    // All in use: a waiter fails at its deadline.
    auto t0 = Clock::now();
    auto c = co_await pool.acquire(150ms);
    EXPECT_TRUE(!c && c.error().code == Errc::timeout) << describe(c);
    EXPECT_GE(since(t0), 149ms);
    EXPECT_LT(since(t0), 150ms + itest::margin(150ms));
    // One waiter queued (max_waiters = 1): the next caller is turned away at once.
    std::optional<Result<Lease>> waited;
    asio::co_spawn(
        io_, [&]() -> asio::awaitable<void> { waited.emplace(co_await pool.acquire(2s)); },
        [](std::exception_ptr) {});
    co_await sleep_for(10ms);
    EXPECT_EQ(pool.status().waiters, 1u);
    t0 = Clock::now();
    auto d = co_await pool.acquire(1s);
    EXPECT_TRUE(!d && d.error().code == Errc::pool_exhausted) << describe(d);
    EXPECT_LT(since(t0), itest::kFast);
    // Returning a connection hands it to the waiter.
    a->release();
    for (int i = 0; i < 100 && !waited; ++i)
      co_await sleep_for(1ms);
    EXPECT_TRUE(waited && *waited);
    if (waited && *waited) {
      auto r = co_await (**waited)->query("SELECT 1", 1s);
      EXPECT_TRUE(r);
    }
  });
  const auto st = pool.status();
  EXPECT_EQ(st.counters.acquire_timeouts, 1u);
  EXPECT_EQ(st.counters.rejected_exhausted, 1u);
  EXPECT_LE(st.open, 2u);
}

TEST_F(SharedServer, BurstOfConcurrentStatementsThroughABoundedPool) {
  PoolSettings s = pool_settings(server_->port());
  s.max_size = 6;
  s.max_waiters = 1000;
  Pool pool(io_.get_executor(), s);
  pool.start();
  constexpr int kCalls = 300;
  run(io_, [&]() -> asio::awaitable<void> {
    int ok = 0, done = 0;
    std::size_t max_open = 0;
    const auto t0 = Clock::now();
    for (int i = 0; i < kCalls; ++i) {
      asio::co_spawn(
          io_,
          [&, i]() -> asio::awaitable<void> {
            std::vector<Value> p{"burst-" + std::to_string(i), "n" + std::to_string(i)};
            auto w = co_await pool.execute("INSERT INTO user (id, name) VALUES (?, ?)", std::move(p), 10s);
            std::vector<Value> q{"burst-" + std::to_string(i)};
            auto r = co_await pool.execute("SELECT name FROM user WHERE id = ?", std::move(q), 10s);
            if (w && r && r->rows.size() == 1 && r->rows[0][0].string() == "n" + std::to_string(i)) ++ok;
            max_open = std::max(max_open, pool.status().open);
            ++done;
          },
          [](std::exception_ptr) {});
    }
    while (done < kCalls)
      co_await sleep_for(2ms);
    EXPECT_EQ(ok, kCalls);
    EXPECT_LE(max_open, 6u);
    std::printf("[ figures ] %d statements through a pool of %zu in %lld ms\n", 2 * kCalls, max_open,
                static_cast<long long>(since(t0).count()));
  });
  EXPECT_EQ(server_->sql("SELECT COUNT(*) FROM users.user"), std::to_string(kCalls) + "\n");
}

TEST_F(SharedServer, StatementCacheEvictsAndKeepsWorking) {
  ConnectSettings s = connect_settings(server_->port());
  s.statement_cache_size = 2;
  run(io_, [&]() -> asio::awaitable<void> {
    auto c = co_await Connection::connect(io_.get_executor(), s, 1s);
    EXPECT_TRUE(c) << describe(c);
    if (!c) co_return;
    Connection& conn = **c;
    for (int round = 0; round < 3; ++round) {
      for (int k = 1; k <= 3; ++k) {
        std::vector<Value> p{k};
        auto r = co_await conn.execute("SELECT ? + " + std::to_string(k), std::move(p), 1s);
        EXPECT_TRUE(r && r->rows.at(0).at(0).to_int() == 2 * k) << describe(r);
      }
    }
    // This session prepared 3 statements per round and closed the evicted ones: at most 2 remain.
    auto st = co_await conn.query(
        "SHOW SESSION STATUS WHERE Variable_name IN ('Com_stmt_prepare', 'Com_stmt_close')", 1s);
    EXPECT_TRUE(st && st->rows.size() == 2) << describe(st);
    if (st && st->rows.size() == 2) {
      std::int64_t prepared = 0, closed = 0;
      for (const auto& row : st->rows) {
        if (row[0].string() == "Com_stmt_prepare") prepared = row[1].to_int().value_or(-1);
        if (row[0].string() == "Com_stmt_close") closed = row[1].to_int().value_or(-1);
      }
      EXPECT_EQ(prepared, 9) << "every round re-prepares what the 2-entry cache evicted";
      EXPECT_EQ(prepared - closed, 2);
    }
  });
}

TEST_F(SharedServer, ConnectErrorsAreClassified) {
  run(io_, [&]() -> asio::awaitable<void> {
    ConnectSettings bad = connect_settings(server_->port());
    bad.user = "nobody";
    auto c = co_await Connection::connect(io_.get_executor(), bad, 1s);
    EXPECT_TRUE(!c && c.error().code == Errc::connect_failed && c.error().server_errno == 1045)
        << describe(c);
    const testing_support::RefusingPort nothing;
    ConnectSettings refused = connect_settings(nothing.port());
    const auto t0 = Clock::now();
    c = co_await Connection::connect(io_.get_executor(), refused, 1s);
    EXPECT_TRUE(!c && c.error().code == Errc::connect_failed && !c.error().outcome_unknown) << describe(c);
    EXPECT_LT(since(t0), 100ms);
    ConnectSettings dns = connect_settings(server_->port());
    dns.host = "localhost";
    c = co_await Connection::connect(io_.get_executor(), dns, 1s);
    EXPECT_TRUE(!c && c.error().code == Errc::invalid_argument) << describe(c);
  });
}

TEST_F(SharedServer, ConnectionsLeaveFromTheirSourceAddress) {
  run(io_, [&]() -> asio::awaitable<void> {
    ConnectSettings s = connect_settings(server_->port());
    s.source_address = "127.0.1.7";
    auto c = co_await Connection::connect(io_.get_executor(), s, 2s);
    EXPECT_TRUE(c) << describe(c);
    if (!c) co_return;
    auto r = co_await (*c)->query(
        "SELECT host FROM information_schema.processlist WHERE id = CONNECTION_ID()", 2s);
    EXPECT_TRUE(r) << describe(r);
    if (!r) co_return;
    EXPECT_EQ(r->rows.size(), 1U);
    if (r->rows.size() != 1) co_return;
    EXPECT_EQ(r->rows[0][0].string().rfind("127.0.1.7:", 0), 0U) << r->rows[0][0].to_text();
    // Without it, the kernel picks 127.0.0.1.
    auto plain = co_await Connection::connect(io_.get_executor(), connect_settings(server_->port()), 2s);
    EXPECT_TRUE(plain) << describe(plain);
    if (!plain) co_return;
    r = co_await (*plain)->query("SELECT host FROM information_schema.processlist WHERE id = CONNECTION_ID()",
                                 2s);
    EXPECT_TRUE(r && r->rows.size() == 1 && r->rows[0][0].string().rfind("127.0.0.1:", 0) == 0)
        << describe(r);
  });
}

TEST_F(SharedServer, APoolWaitsForItsDatabaseToBeCreated) {
  const std::string schema = "later_" + std::to_string(::getpid());
  PoolSettings s = pool_settings(server_->port());
  s.connection.database = schema;
  Pool pool(io_.get_executor(), s);
  pool.start();
  run(io_, [&]() -> asio::awaitable<void> {
    co_await sleep_for(200ms);
    EXPECT_EQ(pool.status().state, PoolState::down);
    EXPECT_NE(pool.status().last_error.find("Unknown database"), std::string::npos)
        << pool.status().last_error;
    ConnectSettings admin = connect_settings(server_->port());
    admin.database.clear();
    auto c = co_await Connection::connect(io_.get_executor(), admin, 1s);
    EXPECT_TRUE(c) << describe(c);
    if (!c) co_return;
    auto created = co_await (*c)->query("CREATE DATABASE " + schema, 1s);
    EXPECT_TRUE(created) << describe(created);
    const auto t0 = Clock::now();
    bool up = false;
    while (!up && since(t0) < 2s) {
      auto r = co_await pool.execute("SELECT DATABASE()", {}, 200ms);
      up = r && r->rows.size() == 1 && r->rows[0][0].string() == schema;
      if (!up) co_await sleep_for(10ms);
    }
    EXPECT_TRUE(up);
    EXPECT_LT(since(t0), 1000ms);
    auto dropped = co_await (*c)->query("DROP DATABASE " + schema, 1s);
    EXPECT_TRUE(dropped) << describe(dropped);
  });
}

TEST_F(SharedServer, CancellationAbandonsTheStatementAndClosesTheConnection) {
  run(io_, [&]() -> asio::awaitable<void> {
    auto c = co_await Connection::connect(io_.get_executor(), connect_settings(server_->port()), 1s);
    EXPECT_TRUE(c) << describe(c);
    if (!c) co_return;
    Connection& conn = **c;
    asio::cancellation_signal signal;
    std::optional<Result<ResultSet>> got;
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> { got.emplace(co_await conn.execute("SELECT SLEEP(3)", {}, 5s)); },
        asio::bind_cancellation_slot(signal.slot(), [](std::exception_ptr) {}));
    co_await sleep_for(50ms);
    const auto t0 = Clock::now();
    signal.emit(asio::cancellation_type::terminal);
    while (!got)
      co_await sleep_for(1ms);
    EXPECT_LT(since(t0), itest::kFast);
    EXPECT_TRUE(!*got && got->error().code == Errc::cancelled) << describe(*got);
    EXPECT_FALSE(conn.usable());
  });
}

TEST_F(OwnServer, DeadlinesHoldAgainstAPausedServerForStatementsAndConnects) {
  Pool pool(io_.get_executor(), pool_settings(server_->port()));
  pool.start();
  run(io_, [&]() -> asio::awaitable<void> {
    auto warm = co_await pool.execute("SELECT 1", {}, 2s);
    EXPECT_TRUE(warm) << describe(warm);
    server_->pause();  // SIGSTOP: connections stay open, nothing answers
    itest::wait_stopped(server_->pid());
    for (const auto deadline : {Ms(100), Ms(300)}) {
      const auto t0 = Clock::now();
      std::vector<Value> p{"k"};
      auto r = co_await pool.execute("SELECT name FROM user WHERE id = ?", std::move(p), deadline);
      const Ms took = since(t0);
      EXPECT_TRUE(!r && (r.error().code == Errc::timeout || r.error().code == Errc::unavailable))
          << describe(r);
      EXPECT_LT(took, deadline + itest::margin(deadline));
      std::printf("[ figures ] statement against a paused server, deadline %lld ms: %s after %lld ms\n",
                  static_cast<long long>(deadline.count()), std::string(to_string(r.error().code)).c_str(),
                  static_cast<long long>(took.count()));
    }
    // A fresh connect: TCP is accepted by the kernel, the handshake never comes.
    for (const auto deadline : {Ms(100), Ms(250)}) {
      const auto t0 = Clock::now();
      auto c = co_await Connection::connect(io_.get_executor(), connect_settings(server_->port()), deadline);
      const Ms took = since(t0);
      EXPECT_TRUE(!c && c.error().code == Errc::timeout) << describe(c);
      EXPECT_GE(took, deadline - 1ms);
      EXPECT_LT(took, deadline + itest::margin(deadline));
    }
    server_->resume();
    const auto t0 = Clock::now();
    bool recovered = false;
    while (!recovered && since(t0) < 3s) {
      auto r = co_await pool.execute("SELECT 1", {}, 200ms);
      recovered = r.has_value();
      if (!recovered) co_await sleep_for(20ms);
    }
    EXPECT_TRUE(recovered);
    std::printf("[ figures ] pool served again %lld ms after SIGCONT\n",
                static_cast<long long>(since(t0).count()));
    EXPECT_LT(since(t0), 1000ms);
  });
}

TEST_F(OwnServer, PoolRecoversWithinASecondOfARestartAndDetectsDeadIdleConnections) {
  PoolSettings s = pool_settings(server_->port());
  s.min_size = 2;
  Pool pool(io_.get_executor(), s);
  pool.start();
  run(io_, [&]() -> asio::awaitable<void> {
    auto warm = co_await pool.execute("SELECT 1", {}, 2s);
    EXPECT_TRUE(warm) << describe(warm);
    co_await sleep_for(100ms);
    EXPECT_EQ(pool.status().open, 2u);
    server_->stop();
    // Idle connections see the server's close at once and are discarded; while it is down the pool
    // fails fast instead of making callers wait for their deadline.
    co_await sleep_for(300ms);
    EXPECT_EQ(pool.status().open, 0u);
    EXPECT_EQ(pool.status().state, PoolState::down);
    auto t0 = Clock::now();
    auto r = co_await pool.execute("SELECT 1", {}, 500ms);
    EXPECT_TRUE(!r && r.error().code == Errc::unavailable) << describe(r);
    EXPECT_LT(since(t0), itest::kFast);
    co_await sleep_for(1000ms);  // away a while (refused: retried every backoff.initial)
    server_->restart();          // returns once it accepts queries
    t0 = Clock::now();
    bool recovered = false;
    int failures = 0;
    while (!recovered && since(t0) < 3s) {
      r = co_await pool.execute("SELECT 1", {}, 200ms);
      recovered = r.has_value();
      if (!recovered) {
        ++failures;
        co_await sleep_for(10ms);
      }
    }
    EXPECT_TRUE(recovered);
    const Ms recovery = since(t0);
    std::printf("[ figures ] pool served again %lld ms after the restart (%d fast failures meanwhile)\n",
                static_cast<long long>(recovery.count()), failures);
    EXPECT_LT(recovery, 1000ms);
    EXPECT_EQ(pool.status().state, PoolState::up);
  });
  EXPECT_GE(pool.status().counters.discarded, 2u);
}

TEST_F(OwnServer, PoolStartedWhileMariaDbIsDownServesOnceItIsUp) {
  const std::uint16_t port = server_->port();
  server_->stop();
  Pool pool(io_.get_executor(), pool_settings(port));
  pool.start();
  run(io_, [&]() -> asio::awaitable<void> {
    co_await sleep_for(800ms);
    auto st = pool.status();
    EXPECT_EQ(st.state, PoolState::down);
    // Refused at once: retried every backoff.initial (12.5..25 ms), not backed off.
    EXPECT_TRUE(st.refused) << st.last_error;
    EXPECT_GE(st.counters.connect_failures, 10u);
    EXPECT_LE(st.counters.connect_failures, 80u) << "paced by the backoff's initial delay";
    EXPECT_NE(st.last_error, "");
    auto r = co_await pool.execute("SELECT 1", {}, 500ms);
    EXPECT_TRUE(!r && r.error().code == Errc::unavailable && !r.error().outcome_unknown) << describe(r);
    server_->restart();
    const auto t0 = Clock::now();
    bool served = false;
    while (!served && since(t0) < 3s) {
      r = co_await pool.execute("SELECT COUNT(*) FROM user", {}, 200ms);
      served = r.has_value();
      if (!served) co_await sleep_for(10ms);
    }
    EXPECT_TRUE(served);
    EXPECT_LT(since(t0), 1000ms);
  });
}

// While MariaDB refuses, a caller does not wait out the backoff (here 5 s): acquire has the connector
// try at once, which costs a refused connect while the server is down and gives the caller the first
// connection once it is back.
TEST_F(OwnServer, AcquireWhileRefusedTriesAtOnceInsteadOfWaitingOutTheBackoff) {
  PoolSettings s = pool_settings(server_->port());
  s.reconnect = {.initial = 5000ms, .max = 5000ms, .jitter = 0.0};
  Pool pool(io_.get_executor(), s);
  pool.start();
  run(io_, [&]() -> asio::awaitable<void> {
    auto warm = co_await pool.execute("SELECT 1", {}, 2s);
    EXPECT_TRUE(warm) << describe(warm);
    server_->stop();
    for (int i = 0; i < 200 && pool.status().state != PoolState::down; ++i)
      co_await sleep_for(10ms);
    EXPECT_EQ(pool.status().state, PoolState::down);
    EXPECT_TRUE(pool.status().refused) << pool.status().last_error;
    const auto failures = pool.status().counters.connect_failures;
    auto t0 = Clock::now();
    auto r = co_await pool.execute("SELECT 1", {}, 1s);
    EXPECT_TRUE(!r && r.error().code == Errc::unavailable && !r.error().outcome_unknown) << describe(r);
    EXPECT_LT(since(t0), itest::kFast);
    EXPECT_EQ(pool.status().counters.connect_failures, failures + 1) << "one attempt, made at once";
    t0 = Clock::now();
    EXPECT_FALSE(co_await pool.connect_now(1s));
    EXPECT_LT(since(t0), itest::kFast);
    server_->restart();  // returns once it accepts queries; the backoff still has seconds to run
    t0 = Clock::now();
    r = co_await pool.execute("SELECT 1", {}, 2s);
    EXPECT_TRUE(r) << describe(r);
    std::printf("[ figures ] first statement after the restart served in %lld ms (backoff 5000 ms)\n",
                static_cast<long long>(since(t0).count()));
    EXPECT_LT(since(t0), 2000ms);
    EXPECT_TRUE(co_await pool.connect_now(1s));
  });
}

// Attempts that time out are backed off, and neither acquire nor connect_now() waits for one.
TEST(MysqlPool, TimedOutAttemptsBackOffAndNobodyWaitsForOne) {
  itest::SynBlackhole hole;
  asio::io_context io;
  PoolSettings s = pool_settings(hole.port());
  s.connection.connect_timeout = 100ms;
  s.reconnect = {.initial = 20ms, .max = 5000ms, .jitter = 0.0};
  Pool pool(io.get_executor(), s);
  pool.start();
  run(io, [&]() -> asio::awaitable<void> {
    co_await sleep_for(1200ms);
    const auto st = pool.status();
    EXPECT_EQ(st.state, PoolState::down);
    EXPECT_FALSE(st.refused) << st.last_error;
    // 100 ms each, then 20, 40, 80, 160, 320 ms apart: at most 6 in 1.2 s (refused ones: dozens).
    EXPECT_GE(st.counters.connect_failures, 2u);
    EXPECT_LE(st.counters.connect_failures, 6u);
    auto t0 = Clock::now();
    EXPECT_FALSE(co_await pool.connect_now(1s));
    auto r = co_await pool.execute("SELECT 1", {}, 1s);
    EXPECT_TRUE(!r && r.error().code == Errc::unavailable) << describe(r);
    EXPECT_LT(since(t0), itest::kFast);
  });
}

TEST_F(OwnServer, DestroyingThePoolWithStatementsInFlightIsSafe) {
  auto pool = std::make_unique<Pool>(io_.get_executor(), pool_settings(server_->port()));
  pool->start();
  int done = 0;
  std::vector<Errc> outcomes;
  run(io_, [&]() -> asio::awaitable<void> {
    auto warm = co_await pool->execute("SELECT 1", {}, 2s);
    EXPECT_TRUE(warm) << describe(warm);
    server_->pause();
    itest::wait_stopped(server_->pid());
    for (int i = 0; i < 6; ++i) {
      asio::co_spawn(
          io_,
          [&, p = pool.get()]() -> asio::awaitable<void> {
            auto r = co_await p->execute("SELECT 1", {}, 300ms);
            outcomes.push_back(r ? Errc{} : r.error().code);
            ++done;
          },
          [](std::exception_ptr) {});
    }
    co_await sleep_for(50ms);
    pool.reset();  // in flight: statements on leased connections, waiters
    const auto t0 = Clock::now();
    while (done < 6 && since(t0) < 2s)
      co_await sleep_for(5ms);
    EXPECT_EQ(done, 6);
    for (Errc e : outcomes)
      EXPECT_TRUE(e == Errc::timeout || e == Errc::stopped) << to_string(e);
    server_->resume();
    co_await sleep_for(50ms);
  });
}

TEST(MysqlConnect, DeadlineHoldsWhenTheSynIsNeverAnswered) {
  itest::SynBlackhole hole;
  asio::io_context io;
  run(io, [&]() -> asio::awaitable<void> {
    co_await sleep_for(1ms);  // the io_context creates its reactor (epoll, timerfd, eventfd) lazily
    const std::size_t fds_before = itest::open_fds();
    for (const auto deadline : {Ms(100), Ms(300), Ms(50)}) {
      const auto t0 = Clock::now();
      auto c = co_await Connection::connect(io.get_executor(), connect_settings(hole.port()), deadline);
      const Ms took = since(t0);
      EXPECT_TRUE(!c && c.error().code == Errc::timeout) << describe(c);
      EXPECT_GE(took, deadline - 1ms);
      EXPECT_LT(took, deadline + itest::margin(deadline));
    }
    EXPECT_EQ(itest::open_fds(), fds_before) << "the half-open sockets were closed by the library";
    // A pool against it: attempts time out, callers are told at once that nothing is available.
    PoolSettings s = pool_settings(hole.port());
    s.connection.connect_timeout = 100ms;
    Pool pool(io.get_executor(), s);
    pool.start();
    co_await sleep_for(300ms);
    EXPECT_EQ(pool.status().state, PoolState::down);
    EXPECT_GE(pool.status().counters.connect_failures, 1u);
    const auto t0 = Clock::now();
    auto r = co_await pool.execute("SELECT 1", {}, 500ms);
    EXPECT_TRUE(!r && r.error().code == Errc::unavailable) << describe(r);
    EXPECT_LT(since(t0), itest::kFast);
  });
}

TEST(MysqlSettings, RejectsNonsenseAtConstruction) {
  asio::io_context io;
  PoolSettings s;
  s.connection.host = "db.example";
  EXPECT_THROW(Pool(io.get_executor(), s), std::invalid_argument);
  s.connection.host = "127.0.0.1";
  s.min_size = 9;
  EXPECT_THROW(Pool(io.get_executor(), s), std::invalid_argument);
  s.min_size = 1;
  s.max_size = 0;
  EXPECT_THROW(Pool(io.get_executor(), s), std::invalid_argument);
  s.max_size = 2;
  EXPECT_NO_THROW(Pool(io.get_executor(), s));
  s.connection.source_address = "my-host";
  EXPECT_THROW(Pool(io.get_executor(), s), std::invalid_argument);
  s.connection.source_address = "127.0.1.7";
  EXPECT_NO_THROW(Pool(io.get_executor(), s));
  s.connection.source_address = "::1";
  EXPECT_NO_THROW(Pool(io.get_executor(), s));
}

}  // namespace
}  // namespace clients::mysql
