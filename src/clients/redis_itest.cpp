// clients::redis::Client against a real redis-server (started per test through src/testing):
// commands, pipelining, scripts, reconnect, deadlines against a paused (blackholed) server, stall
// detection, overload, AUTH/SELECT, cancellation and shutdown with commands in flight.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <functional>
#include <optional>
#include <thread>

#include "clients/itest_util.h"
#include "clients/redis.h"
#include "testing/servers.h"

namespace clients::redis {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using itest::Ms;
using itest::run;
using itest::since;
using itest::sleep_for;
using testing_support::RedisServer;
using testing_support::TempDir;

Settings settings_for(const RedisServer& server) {
  Settings s;
  s.port = server.port();
  s.name = "test";
  return s;
}

// Builds a command from any string-like arguments. (A braced list of string literals inside a
// co_await expression does not compile with GCC 12.)
template <typename... Args>
std::vector<std::string> cmd(const Args&... args) {
  return std::vector<std::string>{std::string(args)...};
}

// Busy-waits inside the server for ARGV[1] ms (DEBUG SLEEP is disabled by default in Redis 7).
const Script kBusyScript(
    "local t = redis.call('TIME') local start = t[1] * 1000000 + t[2] "
    "repeat local n = redis.call('TIME') until (n[1] * 1000000 + n[2]) - start > tonumber(ARGV[1]) * 1000 "
    "return 'slow'");

class RedisClientTest : public ::testing::Test {
 protected:
  void SetUp() override { server_.emplace(RedisServer::start(dir_.path() / "redis")); }
  TempDir dir_;
  std::optional<RedisServer> server_;
  asio::io_context io_;
};

TEST_F(RedisClientTest, CommandsRoundTripAndRepliesAreBinarySafe) {
  Client redis(io_.get_executor(), settings_for(*server_));
  redis.start();
  run(io_, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await redis.wait_connected(2s));
    const std::string binary("k\0\r\n\xff", 5);
    const std::string value =
        std::string("v\0al\r\nue", 8) + "'; DROP TABLE user; -- \xc3\xab\xf0\x9f\x98\x80";
    Result r = co_await redis.command(cmd("SET", binary, value), 1s);
    EXPECT_TRUE(r && r->is_status("OK"));
    r = co_await redis.command(cmd("GET", binary), 1s);
    EXPECT_TRUE(r && r->is_string() && r->str == value);
    r = co_await redis.command(cmd("GET", "missing"), 1s);
    EXPECT_TRUE(r && r->is_nil());
    r = co_await redis.command(cmd("INCRBY", "n", "-7"), 1s);
    EXPECT_TRUE(r && r->is_integer() && r->integer == -7);
    r = co_await redis.command(cmd("HSET", "h", "id", "42", "name", "Zo\xc3\xab"), 1s);
    EXPECT_TRUE(r && r->integer == 2);
    r = co_await redis.command(cmd("HGETALL", "h"), 1s);
    EXPECT_TRUE(r && r->is_array());
    if (r && r->is_array()) {
      EXPECT_EQ(r->elements.size(), 4u);
    }
    const std::string field = "name";
    const std::array<std::string_view, 4> hmget{"HMGET", "h", field, "absent"};
    r = co_await redis.command_view(hmget, 1s);
    EXPECT_TRUE(r && *r == Reply::from_array({Reply::from_string("Zo\xc3\xab"), Reply::nil()}));
    r = co_await redis.command(cmd("LPUSH", "h", "x"), 1s);  // wrong type: an error *reply*
    EXPECT_TRUE(r && r->is_error() && r->str.rfind("WRONGTYPE", 0) == 0);
    r = co_await redis.ping(1s);
    EXPECT_TRUE(r && r->is_status("PONG"));
    r = co_await redis.command({}, 1s);
    EXPECT_TRUE(!r && r.error().code == Errc::invalid_argument);
    r = co_await redis.command(cmd("subscribe", "ch"), 1s);
    EXPECT_TRUE(!r && r.error().code == Errc::invalid_argument);
    r = co_await redis.command(cmd("GET", "x"), Clock::now() - 1ms);
    EXPECT_TRUE(!r && r.error().code == Errc::timeout);
  });
  const Status s = redis.status();
  EXPECT_EQ(s.state, State::connected);
  EXPECT_EQ(s.counters.connects, 1u);
  EXPECT_EQ(s.counters.replies, 9u);
  EXPECT_EQ(s.counters.error_replies, 1u);
  EXPECT_EQ(s.counters.invalid, 2u);
  EXPECT_EQ(s.counters.timeouts, 1u);
  EXPECT_EQ(s.outstanding, 0u);
}

TEST_F(RedisClientTest, BurstOfConcurrentCommandsPipelinesOnOneConnection) {
  Settings s = settings_for(*server_);
  s.max_pending = 10000;
  s.stall_timeout = 2s;  // this test is about pipelining; on a loaded box the server can lag
  Client redis(io_.get_executor(), s);
  redis.start();
  constexpr int kCommands = 5000;
  run(io_, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await redis.wait_connected(2s));
    int ok = 0, done = 0;
    const auto t0 = Clock::now();
    for (int i = 0; i < kCommands; ++i) {
      redis.command(cmd("SET", "k" + std::to_string(i), "v" + std::to_string(i)), 5s, [&](Result r) {
        ok += (r && r->is_status("OK")) ? 1 : 0;
        ++done;
      });
    }
    EXPECT_GT(redis.status().outstanding, 100u) << "commands should be in flight together";
    while (done < kCommands)
      co_await sleep_for(1ms);
    EXPECT_EQ(ok, kCommands);
    // Read back concurrently: each reply must match its own command (order preserved).
    int matched = 0;
    done = 0;
    for (int i = 0; i < kCommands; ++i) {
      redis.command(cmd("GET", "k" + std::to_string(i)), 5s, [&, i](Result r) {
        matched += (r && r->str == "v" + std::to_string(i)) ? 1 : 0;
        ++done;
      });
    }
    while (done < kCommands)
      co_await sleep_for(1ms);
    EXPECT_EQ(matched, kCommands);
    std::printf("[ figures ] %d pipelined commands in %lld ms\n", 2 * kCommands,
                static_cast<long long>(since(t0).count()));
  });
  EXPECT_EQ(redis.status().counters.connects, 1u);
  EXPECT_EQ(redis.status().counters.replies, 2u * kCommands);
  EXPECT_EQ(redis.status().counters.overloaded, 0u);
  EXPECT_EQ(redis.status().counters.stalls, 0u);
}

// A reply completes a handler of the client's own executor in the read that brought it (a
// coroutine resumes there); a handler bound to another executor runs on that one, never inline.
TEST_F(RedisClientTest, AHandlerBoundToAnotherExecutorIsCompletedThere) {
  Client redis(io_.get_executor(), settings_for(*server_));
  redis.start();
  asio::io_context other;
  std::optional<Result> got;
  std::thread::id ran_on;
  run(io_, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await redis.wait_connected(2s));
    redis.command(cmd("ECHO", "elsewhere"), 1s, asio::bind_executor(other.get_executor(), [&](Result r) {
                    got = std::move(r);
                    ran_on = std::this_thread::get_id();
                  }));
    // Replies come in order: when this one is here, the first one's handler was completed.
    const Result r = co_await redis.command(cmd("ECHO", "here"), 1s);
    EXPECT_TRUE(r && r->is_string() && r->str == "here");
    EXPECT_FALSE(got.has_value()) << "completed on the client's executor instead of its own";
  });
  std::thread elsewhere([&] { other.run(); });
  elsewhere.join();
  ASSERT_TRUE(got.has_value());
  EXPECT_TRUE(*got && (*got)->is_string() && (*got)->str == "elsewhere");
  EXPECT_NE(ran_on, std::this_thread::get_id());
}

TEST_F(RedisClientTest, ScriptsFallBackToEvalOnNoscriptThenUseEvalsha) {
  Client redis(io_.get_executor(), settings_for(*server_));
  redis.start();
  static const Script script(
      "redis.call('SET', KEYS[1], ARGV[1]) return {redis.call('GET', KEYS[1]), #KEYS, #ARGV}");
  run(io_, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await redis.wait_connected(2s));
    co_await redis.command(cmd("SCRIPT", "FLUSH"), 1s);
    const std::string v("bin\0ary", 7);
    std::vector<std::string> keys{"sk"}, args{v, "extra"};
    Result r = co_await redis.eval(script, keys, args, 1s);
    EXPECT_TRUE(r && r->is_array());
    if (r && r->is_array() && r->elements.size() == 3) {
      EXPECT_EQ(r->elements[0].str, v);
      EXPECT_EQ(r->elements[1].integer, 1);
      EXPECT_EQ(r->elements[2].integer, 2);
    }
    const auto errors_after_first = redis.status().counters.error_replies;
    EXPECT_EQ(errors_after_first, 1u) << "the first EVALSHA met NOSCRIPT";
    r = co_await redis.eval(script, keys, args, 1s);
    EXPECT_TRUE(r && r->is_array());
    EXPECT_EQ(redis.status().counters.error_replies, errors_after_first) << "second call used EVALSHA";
    r = co_await redis.command(cmd("SCRIPT", "EXISTS", script.sha1()), 1s);
    EXPECT_TRUE(r && r->is_array() && r->elements.at(0).integer == 1);
    // A script error is an error reply, not a failure.
    static const Script bad("return redis.call('NOPE')");
    r = co_await redis.eval(bad, {}, {}, 1s);
    EXPECT_TRUE(r && r->is_error());
  });
}

TEST_F(RedisClientTest, ReconnectsWithinASecondOfTheServerComingBack) {
  Client redis(io_.get_executor(), settings_for(*server_));
  redis.start();
  run(io_, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await redis.wait_connected(2s));
    server_->stop();
    // The loss is noticed (EOF) and commands fail fast instead of waiting for their deadline.
    for (int i = 0; i < 200 && redis.connected(); ++i)
      co_await sleep_for(5ms);
    EXPECT_FALSE(redis.connected());
    auto t0 = Clock::now();
    Result r = co_await redis.command(cmd("GET", "k"), 1s);
    EXPECT_TRUE(!r && r.error().code == Errc::not_connected) << (r ? "reply" : r.error().message);
    EXPECT_LT(since(t0), itest::kFast);
    // The server is away for a while (refused: retried every backoff.initial).
    co_await sleep_for(1500ms);
    EXPECT_GE(redis.status().counters.connect_failures, 4u);
    EXPECT_NE(redis.status().last_error, "");
    server_->restart();  // returns once the server answers PING
    t0 = Clock::now();
    EXPECT_TRUE(co_await redis.wait_connected(3s));
    const Ms recovery = since(t0);
    std::printf("[ figures ] reconnected %lld ms after the server came back\n",
                static_cast<long long>(recovery.count()));
    EXPECT_LT(recovery, 1000ms);
    r = co_await redis.ping(1s);
    EXPECT_TRUE(r && r->is_status("PONG"));
  });
  EXPECT_EQ(redis.status().counters.connects, 2u);
  EXPECT_EQ(redis.status().counters.disconnects, 1u);
}

TEST_F(RedisClientTest, DeadlineHonouredAgainstAPausedServerThenStalledConnectionIsDropped) {
  Settings s = settings_for(*server_);
  s.stall_timeout = 400ms;
  Client redis(io_.get_executor(), s);
  redis.start();
  run(io_, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await redis.wait_connected(2s));
    server_->pause();  // SIGSTOP: TCP stays up, nothing answers (a blackhole)
    itest::wait_stopped(server_->pid());
    auto t0 = Clock::now();
    Result r = co_await redis.command(cmd("GET", "k"), 100ms);
    const Ms took = since(t0);
    EXPECT_TRUE(!r && r.error().code == Errc::timeout);
    EXPECT_GE(took, 99ms);
    EXPECT_LT(took, 100ms + itest::margin(100ms));
    // Until the stall is detected, further commands also end at their own deadline.
    t0 = Clock::now();
    r = co_await redis.command(cmd("GET", "k"), 50ms);
    EXPECT_TRUE(!r && r.error().code == Errc::timeout);
    EXPECT_LT(since(t0), 50ms + itest::margin(50ms));
    // The oldest reply is now stall_timeout late: the connection is dropped, and reconnect attempts
    // fail their handshake (connect_timeout) with backoff. Commands fail fast meanwhile.
    co_await sleep_for(500ms);
    EXPECT_EQ(redis.status().counters.stalls, 1u);
    EXPECT_FALSE(redis.connected());
    t0 = Clock::now();
    r = co_await redis.command(cmd("GET", "k"), 100ms);
    EXPECT_TRUE(!r && r.error().code == Errc::not_connected);
    EXPECT_LT(since(t0), itest::kFast);
    co_await sleep_for(600ms);
    const auto failures = redis.status().counters.connect_failures;
    EXPECT_GE(failures, 1u);
    EXPECT_LE(failures, 6u) << "attempts are paced by connect_timeout and backoff, no storm";
    server_->resume();
    t0 = Clock::now();
    EXPECT_TRUE(co_await redis.wait_connected(3s));
    std::printf("[ figures ] reconnected %lld ms after SIGCONT\n", static_cast<long long>(since(t0).count()));
    EXPECT_LT(since(t0), 1000ms);
    r = co_await redis.command(cmd("SET", "k", "after"), 200ms);
    EXPECT_TRUE(r && r->is_status("OK"));
  });
  const Status st = redis.status();
  EXPECT_EQ(st.counters.timeouts, 2u);
  EXPECT_EQ(st.counters.connection_lost, 0u) << "both commands had already timed out when dropped";
  EXPECT_EQ(st.counters.late_replies, 0u);
}

// The client keeps one deadline timer per connection, armed for the earliest deadline outstanding:
// a command issued after others with an earlier deadline re-arms it, and one that is answered
// leaves the timer to the others. Each command still ends at its own deadline, in whatever order
// they were issued; the replies that arrive later are discarded and the connection stays in order.
TEST_F(RedisClientTest, DeadlinesInAnyOrderEachEndACommandOnTime) {
  Settings s = settings_for(*server_);
  s.stall_timeout = 2s;  // the pause below is not a stall
  Client redis(io_.get_executor(), s);
  redis.start();
  run(io_, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await redis.wait_connected(2s));
    Result answered = co_await redis.command(cmd("SET", "k", "v"), 50ms);  // arms the timer for +50 ms
    EXPECT_TRUE(answered && answered->is_status("OK"));
    server_->pause();
    itest::wait_stopped(server_->pid());
    const std::vector<Ms> deadlines{300ms, 60ms, 180ms, 120ms};
    std::vector<std::optional<Result>> got(deadlines.size());
    std::vector<Ms> took(deadlines.size());
    const auto t0 = Clock::now();
    for (std::size_t i = 0; i < deadlines.size(); ++i) {
      redis.command(cmd("GET", "k"), deadlines[i], [&, i](Result r) {
        took[i] = since(t0);
        got[i] = std::move(r);
      });
    }
    while (std::any_of(got.begin(), got.end(), [](const auto& g) { return !g; }))
      co_await sleep_for(2ms);
    for (std::size_t i = 0; i < deadlines.size(); ++i) {
      EXPECT_TRUE(!*got[i] && got[i]->error().code == Errc::timeout) << i;
      EXPECT_GE(took[i], deadlines[i] - 1ms) << i;
      EXPECT_LT(took[i], deadlines[i] + itest::margin(deadlines[i])) << i;
    }
    server_->resume();
    Result r = co_await redis.command(cmd("GET", "k"), 1s);
    EXPECT_TRUE(r && r->is_string() && r->str == "v") << "the late replies were not taken for this one";
  });
  EXPECT_EQ(redis.status().counters.timeouts, 4u);
  EXPECT_EQ(redis.status().counters.late_replies, 4u);
  EXPECT_EQ(redis.status().counters.stalls, 0u);
}

// Asio runs socket events before timers found in the same reactor pass, and the watchdog also
// polls the socket before declaring a stall; either way a busy loop must not drop the connection.
TEST_F(RedisClientTest, OurOwnLateEventLoopIsNotMistakenForAStall) {
  Settings s = settings_for(*server_);
  s.stall_timeout = 250ms;
  Client redis(io_.get_executor(), s);
  redis.start();
  run(io_, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await redis.wait_connected(2s));
    // 1. Commands queued, then the loop blocks before it could write them.
    int ok = 0;
    for (int i = 0; i < 10; ++i)
      redis.command(cmd("PING"), 2s, [&](Result r) { ok += (r && r->is_status("PONG")) ? 1 : 0; });
    std::this_thread::sleep_for(600ms);  // deliberately blocks the event loop
    co_await sleep_for(50ms);
    EXPECT_EQ(ok, 10);
    // 2. A command written and answered, but the loop blocks before it reads the reply.
    std::optional<Result> got;
    redis.command(cmd("PING"), 2s, [&](Result r) { got = std::move(r); });
    co_await sleep_for(1ms);  // let it be written (the reply may already be read: then this proves less)
    std::this_thread::sleep_for(600ms);
    co_await sleep_for(50ms);
    EXPECT_TRUE(got && *got && (*got)->is_status("PONG"));
  });
  EXPECT_EQ(redis.status().counters.stalls, 0u);
  EXPECT_EQ(redis.status().counters.connects, 1u);
}

TEST_F(RedisClientTest, SteadyTrafficToABlackholeStillDropsTheConnection) {
  Settings s = settings_for(*server_);
  s.stall_timeout = 300ms;
  Client redis(io_.get_executor(), s);
  redis.start();
  run(io_, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await redis.wait_connected(2s));
    server_->pause();
    itest::wait_stopped(server_->pid());
    // New commands keep reaching the socket, but the server answers none: still a stall.
    const auto t0 = Clock::now();
    int timeouts = 0, not_connected = 0;
    Ms dropped_after{0};
    while (since(t0) < 800ms) {
      Result r = co_await redis.command(cmd("GET", "k"), 20ms);
      if (!r && r.error().code == Errc::timeout) ++timeouts;
      if (!r && r.error().code == Errc::not_connected) {
        if (not_connected++ == 0) dropped_after = since(t0);
        co_await sleep_for(20ms);
      }
    }
    EXPECT_EQ(redis.status().counters.stalls, 1u);
    EXPECT_GT(timeouts, 5);
    EXPECT_GT(not_connected, 3);
    EXPECT_GE(dropped_after, 299ms);
    EXPECT_LT(dropped_after, 1000ms);
    server_->resume();
    EXPECT_TRUE(co_await redis.wait_connected(2s));
  });
}

TEST_F(RedisClientTest, ConnectHasADeadlineAgainstAPausedServer) {
  server_->pause();
  itest::wait_stopped(server_->pid());
  Settings s = settings_for(*server_);
  s.connect_timeout = 150ms;
  Client redis(io_.get_executor(), s);
  const auto t0 = Clock::now();
  redis.start();
  run(io_, [&]() -> asio::awaitable<void> {
    EXPECT_EQ(redis.status().state, State::connecting);
    co_await sleep_for(300ms);  // one connect_timeout plus margin
    EXPECT_GE(redis.status().counters.connect_failures, 1u);
    EXPECT_NE(redis.status().last_error.find("connect timeout"), std::string::npos)
        << redis.status().last_error;
    EXPECT_FALSE(co_await redis.wait_connected(200ms));
    server_->resume();
    EXPECT_TRUE(co_await redis.wait_connected(2s));
  });
  EXPECT_LT(since(t0), 2500ms);
  EXPECT_EQ(redis.status().counters.connects, 1u);
}

TEST_F(RedisClientTest, LateReplyAfterATimeoutIsDiscardedAndTheConnectionStaysInOrder) {
  Settings s = settings_for(*server_);
  s.stall_timeout = 2s;  // the 200 ms script must not be taken for a stall on a loaded machine
  Client redis(io_.get_executor(), s);
  redis.start();
  run(io_, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await redis.wait_connected(2s));
    co_await redis.command(cmd("SET", "k", "fresh"), 1s);
    std::vector<std::string> args{"1"};
    co_await redis.eval(kBusyScript, {}, args, 1s);  // load the script
    args = {"200"};
    const auto t0 = Clock::now();
    Result r = co_await redis.eval(kBusyScript, {}, args, 50ms);
    EXPECT_TRUE(!r && r.error().code == Errc::timeout);
    EXPECT_LT(since(t0), 50ms + itest::margin(50ms));
    r = co_await redis.command(cmd("GET", "k"), 1s);  // queued behind the slow script
    EXPECT_TRUE(r && r->str == "fresh") << "must not receive the slow script's late reply";
  });
  EXPECT_EQ(redis.status().counters.late_replies, 1u);
  EXPECT_EQ(redis.status().counters.stalls, 0u);
  EXPECT_TRUE(redis.connected());
}

// reset(): what a caller does when a reply cannot belong to its command (the stream is out of step).
TEST_F(RedisClientTest, ResetDropsTheConnectionFailsOutstandingCommandsAndReconnectsWithBackoff) {
  Settings s = settings_for(*server_);
  s.stall_timeout = 5s;  // only reset() may drop the connection here
  s.reconnect = {.initial = 100ms, .max = 400ms, .multiplier = 2.0, .jitter = 0.0};
  Client redis(io_.get_executor(), s);
  redis.start();
  run(io_, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await redis.wait_connected(2s));
    const std::uint64_t first = redis.connection_id();
    EXPECT_NE(first, 0u);
    // A command the server sits on for 300 ms is outstanding when the connection is reset.
    std::optional<Result> in_flight;
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          in_flight.emplace(co_await redis.command(cmd("EVAL", kBusyScript.source(), "0", "300"), 5s));
        },
        asio::detached);
    co_await sleep_for(20ms);
    EXPECT_EQ(redis.status().outstanding, 1u);
    EXPECT_FALSE(redis.reset("another connection's problem", first + 1));  // not this connection
    EXPECT_EQ(redis.connection_id(), first);
    const auto t0 = Clock::now();
    EXPECT_TRUE(redis.reset("reply out of step", first));
    EXPECT_EQ(redis.connection_id(), 0u);
    EXPECT_FALSE(redis.connected());
    Result r = co_await redis.ping(1s);
    EXPECT_TRUE(!r && r.error().code == Errc::not_connected) << (r ? "ok" : r.error().message);
    while (!in_flight)
      co_await sleep_for(1ms);
    EXPECT_LT(since(t0), itest::kFast) << "outstanding commands fail at once, not after the server answers";
    EXPECT_TRUE(!*in_flight && in_flight->error().code == Errc::connection_lost &&
                in_flight->error().message.find("reset: reply out of step") != std::string::npos)
        << (*in_flight ? "ok" : in_flight->error().message);
    // A new connection, after the backoff (100 ms without jitter), not at once.
    EXPECT_TRUE(co_await redis.wait_connected(3s));
    EXPECT_GE(since(t0), 100ms - 1ms);
    const std::uint64_t second = redis.connection_id();
    EXPECT_GT(second, first);
    r = co_await redis.ping(1s);
    EXPECT_TRUE(r && r->is_status("PONG"));
    EXPECT_FALSE(redis.reset("late", first)) << "an old id never drops the new connection";
    EXPECT_EQ(redis.connection_id(), second);
  });
  const Status st = redis.status();
  EXPECT_EQ(st.counters.resets, 1u);
  EXPECT_EQ(st.counters.disconnects, 1u);
  EXPECT_EQ(st.counters.connects, 2u);
  EXPECT_EQ(st.counters.connection_lost, 1u);
  EXPECT_NE(st.last_error.find("reset: reply out of step"), std::string::npos) << st.last_error;
}

TEST_F(RedisClientTest, RepliesStreamingForLongerThanTheStallTimeoutAreNotAStall) {
  Settings s = settings_for(*server_);
  s.stall_timeout = 500ms;
  s.max_pending = 100000;
  Client redis(io_.get_executor(), s);
  redis.start();
  constexpr int kGets = 20000;
  run(io_, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await redis.wait_connected(2s));
    const std::string value(2048, 'v');
    Result r = co_await redis.command(cmd("SET", "k", value), 2s);
    EXPECT_TRUE(r && r->is_status("OK"));
    // 20000 commands sent at once: their replies (40 MiB) keep arriving for longer than
    // stall_timeout, but one completes every few microseconds, so the connection is not stalled.
    int ok = 0, done = 0;
    const auto t0 = Clock::now();
    for (int i = 0; i < kGets; ++i) {
      redis.command(cmd("GET", "k"), 20s, [&](Result got) {
        ok += (got && got->str == value) ? 1 : 0;
        ++done;
      });
    }
    const Ms sending = since(t0);
    while (done < kGets)
      co_await sleep_for(1ms);
    EXPECT_EQ(ok, kGets);
    std::printf("[ figures ] %d pipelined GETs of 2 KiB: sent in %lld ms, all answered after %lld ms\n",
                kGets, static_cast<long long>(sending.count()), static_cast<long long>(since(t0).count()));
  });
  EXPECT_EQ(redis.status().counters.stalls, 0u);
  EXPECT_EQ(redis.status().counters.connects, 1u);
}

TEST_F(RedisClientTest, OverloadIsRejectedAtOnceInsteadOfQueueing) {
  Settings s = settings_for(*server_);
  s.max_pending = 4;
  Client redis(io_.get_executor(), s);
  redis.start();
  run(io_, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await redis.wait_connected(2s));
    server_->pause();
    itest::wait_stopped(server_->pid());
    int timeouts = 0, overloaded = 0, done = 0;
    for (int i = 0; i < 10; ++i) {
      redis.command(cmd("GET", "k"), 100ms, [&](Result r) {
        ++done;
        if (!r && r.error().code == Errc::timeout) ++timeouts;
        if (!r && r.error().code == Errc::overloaded) ++overloaded;
      });
    }
    co_await sleep_for(10ms);
    EXPECT_EQ(overloaded, 6);
    while (done < 10)
      co_await sleep_for(5ms);
    EXPECT_EQ(timeouts, 4);
    server_->resume();
  });
}

TEST_F(RedisClientTest, AuthAndSelectHandshake) {
  server_->command("CONFIG SET requirepass s3cret");
  Settings wrong = settings_for(*server_);
  wrong.password = "nope";
  Settings right = settings_for(*server_);
  right.password = "s3cret";
  right.database = 3;
  Client bad(io_.get_executor(), wrong);
  Client good(io_.get_executor(), right);
  bad.start();
  good.start();
  run(io_, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await good.wait_connected(2s));
    EXPECT_FALSE(co_await bad.wait_connected(300ms));
    EXPECT_NE(bad.status().last_error.find("AUTH failed"), std::string::npos) << bad.status().last_error;
    Result r = co_await good.command(cmd("SET", "in3", "yes"), 1s);
    EXPECT_TRUE(r && r->is_status("OK"));
    r = co_await good.command(cmd("CLIENT", "INFO"), 1s);
    EXPECT_TRUE(r && r->str.find("db=3") != std::string::npos) << (r ? r->str : r.error().message);
  });
  EXPECT_EQ(bad.status().counters.connects, 0u);
}

TEST_F(RedisClientTest, CancellationCompletesAtOnce) {
  Client redis(io_.get_executor(), settings_for(*server_));
  redis.start();
  run(io_, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await redis.wait_connected(2s));
    server_->pause();
    itest::wait_stopped(server_->pid());
    asio::cancellation_signal signal;
    std::optional<Result> got;
    redis.command(cmd("GET", "k"), 1s,
                  asio::bind_cancellation_slot(signal.slot(), [&](Result r) { got = r; }));
    co_await sleep_for(20ms);
    EXPECT_FALSE(got.has_value());
    const auto t0 = Clock::now();
    signal.emit(asio::cancellation_type::terminal);
    while (!got)
      co_await sleep_for(1ms);
    EXPECT_LT(since(t0), itest::kFast);
    EXPECT_TRUE(!*got && got->error().code == Errc::cancelled);
    server_->resume();
    Result r = co_await redis.ping(1s);  // the connection is still in order
    EXPECT_TRUE(r && r->is_status("PONG"));
  });
  EXPECT_EQ(redis.status().counters.cancelled, 1u);
  EXPECT_EQ(redis.status().counters.late_replies, 1u);
}

TEST_F(RedisClientTest, StopAndDestructionWithCommandsInFlightCompleteThemWithStopped) {
  auto redis = std::make_unique<Client>(io_.get_executor(), settings_for(*server_));
  redis->start();
  int stopped = 0, done = 0;
  run(io_, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await redis->wait_connected(2s));
    server_->pause();
    itest::wait_stopped(server_->pid());
    for (int i = 0; i < 50; ++i) {
      redis->command(cmd("GET", "k"), 5s, [&](Result r) {
        ++done;
        if (!r && r.error().code == Errc::stopped) ++stopped;
      });
    }
    co_await sleep_for(20ms);
    redis.reset();  // destroy with 50 commands in flight
    const auto t0 = Clock::now();
    while (done < 50 && since(t0) < 1s)
      co_await sleep_for(1ms);
    EXPECT_EQ(done, 50);
    EXPECT_EQ(stopped, 50);
  });
  server_->resume();
}

TEST_F(RedisClientTest, NothingListeningMeansFastFailuresAndPacedRetries) {
  Settings s;
  const testing_support::RefusingPort nothing;
  s.port = nothing.port();
  Client redis(io_.get_executor(), s);
  redis.start();
  run(io_, [&]() -> asio::awaitable<void> {
    co_await sleep_for(1000ms);
    const auto st = redis.status();
    EXPECT_EQ(st.counters.connects, 0u);
    // Refused at once: retried every backoff.initial (12.5..25 ms with jitter), not backed off to
    // the 500 ms cap (which would make 4 to 9 attempts in a second).
    EXPECT_TRUE(st.refused);
    EXPECT_GE(st.counters.connect_failures, 15u);
    EXPECT_LE(st.counters.connect_failures, 90u);
    EXPECT_NE(st.last_error.find("refused"), std::string::npos) << st.last_error;
    const auto t0 = Clock::now();
    Result r = co_await redis.command(cmd("GET", "k"), 100ms);
    EXPECT_TRUE(!r && r.error().code == Errc::not_connected);
    EXPECT_LT(since(t0), itest::kFast);
  });
}

// source_address: the socket is bound to the given local IP before connecting, so the server sees
// it as the peer (all of 127.0.0.0/8 is local on Linux).
TEST_F(RedisClientTest, ConnectsFromTheConfiguredSourceAddress) {
  Settings s = settings_for(*server_);
  s.source_address = "127.0.1.7";
  Client redis(io_.get_executor(), s);
  redis.start();
  run(io_, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await redis.wait_connected(2s));
    Result r = co_await redis.command(cmd("CLIENT", "INFO"), 1s);
    EXPECT_TRUE(r && r->str.find("addr=127.0.1.7:") != std::string::npos) << (r ? r->str : r.error().message);
  });
  EXPECT_NE(server_->command("CLIENT LIST").find("addr=127.0.1.7:"), std::string::npos);
}

// retarget(): a failover hands the client a new address; it moves there at once, without waiting
// for a backoff, and what was outstanding on the old server fails with connection_lost.
TEST_F(RedisClientTest, RetargetMovesToTheNewServerAtOnceAndFailsWhatWasOutstanding) {
  auto other = RedisServer::start(dir_.path() / "other");
  Settings s = settings_for(*server_);
  s.stall_timeout = 5s;
  s.reconnect = {.initial = 3s, .max = 3s, .multiplier = 1.0, .jitter = 0.0};  // a backoff would show
  Client redis(io_.get_executor(), s);
  redis.start();
  run(io_, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await redis.wait_connected(2s));
    Result r = co_await redis.command(cmd("SET", "where", "first"), 1s);
    EXPECT_TRUE(r && r->is_status("OK"));
    const std::uint64_t first = redis.connection_id();
    std::optional<Result> in_flight;
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          in_flight.emplace(co_await redis.command(cmd("EVAL", kBusyScript.source(), "0", "300"), 5s));
        },
        asio::detached);
    co_await sleep_for(20ms);
    EXPECT_FALSE(redis.retarget("127.0.0.1", server_->port())) << "same address: nothing to do";
    EXPECT_EQ(redis.connection_id(), first);
    const auto t0 = Clock::now();
    EXPECT_TRUE(redis.retarget("127.0.0.1", other.port()));
    EXPECT_EQ(redis.settings().port, other.port());
    EXPECT_EQ(redis.connection_id(), 0u);
    while (!in_flight)
      co_await sleep_for(1ms);
    EXPECT_LT(since(t0), itest::kFast);
    EXPECT_TRUE(!*in_flight && in_flight->error().code == Errc::connection_lost &&
                in_flight->error().message.find("retarget to 127.0.0.1:") != std::string::npos)
        << (*in_flight ? "ok" : in_flight->error().message);
    EXPECT_TRUE(co_await redis.wait_connected(2s));
    EXPECT_LT(since(t0), 1s) << "no 3 s backoff before connecting to the new address";
    EXPECT_GT(redis.connection_id(), first);
    r = co_await redis.command(cmd("GET", "where"), 1s);
    EXPECT_TRUE(r && r->is_nil()) << "the new server, not the old one";
  });
  const Status st = redis.status();
  EXPECT_EQ(st.counters.connects, 2u);
  EXPECT_EQ(st.counters.disconnects, 1u);
  EXPECT_EQ(st.counters.connection_lost, 1u);
  EXPECT_EQ(st.state, State::connected);
}

// A connect attempt that hangs (SYN never answered) is abandoned for the new address at once.
TEST_F(RedisClientTest, RetargetAbandonsAConnectAttemptInProgress) {
  itest::SynBlackhole hole;
  Settings s = settings_for(*server_);
  s.port = hole.port();
  s.connect_timeout = 5s;
  s.reconnect = {.initial = 3s, .max = 3s, .multiplier = 1.0, .jitter = 0.0};
  run(io_, [&]() -> asio::awaitable<void> { co_await sleep_for(1ms); });  // the reactor's own fds
  const std::size_t fds_before = itest::open_fds();
  {
    Client redis(io_.get_executor(), s);
    EXPECT_FALSE(redis.retarget("127.0.0.1", hole.port())) << "the address it has";
    redis.start();
    run(io_, [&]() -> asio::awaitable<void> {
      co_await sleep_for(50ms);
      EXPECT_EQ(redis.status().state, State::connecting);
      const auto t0 = Clock::now();
      EXPECT_TRUE(redis.retarget("127.0.0.1", server_->port()));
      EXPECT_TRUE(co_await redis.wait_connected(2s));
      EXPECT_LT(since(t0), 1s);
      Result r = co_await redis.ping(1s);
      EXPECT_TRUE(r && r->is_status("PONG"));
    });
    EXPECT_EQ(redis.status().counters.connects, 1u);
    EXPECT_EQ(redis.status().counters.disconnects, 0u);
  }
  run(io_, [&]() -> asio::awaitable<void> { co_await sleep_for(10ms); });
  EXPECT_LE(itest::open_fds(), fds_before) << "the abandoned socket is closed";
}

TEST_F(RedisClientTest, RetargetBeforeStartAfterStopAndToNonsense) {
  Settings s = settings_for(*server_);
  const testing_support::RefusingPort nothing;
  s.port = nothing.port();
  Client redis(io_.get_executor(), s);
  EXPECT_TRUE(redis.retarget("127.0.0.1", server_->port()));  // before start: only the address
  EXPECT_EQ(redis.status().state, State::idle);
  EXPECT_FALSE(redis.retarget("localhost", 6379));
  EXPECT_FALSE(redis.retarget("127.0.0.1", 0));
  EXPECT_NE(redis.status().last_error.find("retarget refused"), std::string::npos);
  EXPECT_EQ(redis.settings().host, "127.0.0.1");
  EXPECT_EQ(redis.settings().port, server_->port());
  redis.start();
  run(io_, [&]() -> asio::awaitable<void> { EXPECT_TRUE(co_await redis.wait_connected(2s)); });
  redis.stop();
  EXPECT_FALSE(redis.retarget("127.0.0.2", server_->port()));
  EXPECT_EQ(redis.settings().host, "127.0.0.1");
}

TEST(RedisClient, ConnectHasADeadlineWhenTheSynIsNeverAnswered) {
  itest::SynBlackhole hole;
  asio::io_context io;
  Settings s;
  s.port = hole.port();
  s.connect_timeout = 150ms;
  Client redis(io.get_executor(), s);
  redis.start();
  run(io, [&]() -> asio::awaitable<void> {
    co_await sleep_for(250ms);
    EXPECT_EQ(redis.status().counters.connect_failures, 1u);
    EXPECT_NE(redis.status().last_error.find("connect timeout"), std::string::npos)
        << redis.status().last_error;
    const auto t0 = Clock::now();
    Result r = co_await redis.command(cmd("GET", "k"), 100ms);
    EXPECT_TRUE(!r && r.error().code == Errc::not_connected);
    EXPECT_LT(since(t0), itest::kFast);
  });
}

// While the server refuses, neither connect_now() nor a command waits out the backoff (here 5 s): they
// try at once, which costs a refused connect while the server is down and connects as soon as it is
// back.
TEST_F(RedisClientTest, ConnectNowAndCommandsTryAtOnceWhileTheServerRefuses) {
  Settings s = settings_for(*server_);
  s.reconnect = {.initial = 5000ms, .max = 5000ms, .jitter = 0.0};
  Client redis(io_.get_executor(), s);
  redis.start();
  run(io_, [&]() -> asio::awaitable<void> {
    // The first attempt is under way and nothing failed yet: connect_now() does not wait for it.
    EXPECT_FALSE(co_await redis.connect_now(2s));
    EXPECT_TRUE(co_await redis.wait_connected(2s));
    auto t0 = Clock::now();
    EXPECT_TRUE(co_await redis.connect_now(2s));  // connected: true at once
    EXPECT_LT(since(t0), itest::kFast);
    server_->stop();
    for (int i = 0; i < 200 && redis.connected(); ++i)
      co_await sleep_for(5ms);
    EXPECT_FALSE(redis.connected());
    EXPECT_TRUE(redis.status().refused) << redis.status().last_error;  // closed by the server
    const auto failures = redis.status().counters.connect_failures;
    t0 = Clock::now();
    EXPECT_FALSE(co_await redis.connect_now(1s));
    EXPECT_LT(since(t0), itest::kFast);
    EXPECT_EQ(redis.status().counters.connect_failures, failures + 1) << "one attempt, made at once";
    EXPECT_NE(redis.status().last_error.find("refused"), std::string::npos) << redis.status().last_error;
    // A command meanwhile joins an immediate attempt too: refused, it fails at once.
    t0 = Clock::now();
    Result r = co_await redis.ping(1s);
    EXPECT_TRUE(!r && r.error().code == Errc::not_connected) << (r ? "reply" : r.error().message);
    EXPECT_LT(since(t0), itest::kFast);
    EXPECT_EQ(redis.status().counters.connect_failures, failures + 2);
    server_->restart();  // returns once the server answers PING; the backoff has seconds to run
    // The first command after the return is answered: it does not wait out the backoff. It waits
    // for the connection with its own copy of arguments given as views (command_view): the
    // caller's strings are overwritten as soon as the command has started.
    t0 = Clock::now();
    {
      std::string verb = "ECHO", word = "sent once connected";
      const std::array<std::string_view, 2> args{verb, word};
      std::optional<Result> echoed;
      redis.command_view(args, 2s, [&](Result got) { echoed = std::move(got); });
      verb.assign("XXXX");
      word.assign(word.size(), '?');
      while (!echoed)
        co_await sleep_for(1ms);
      r = std::move(*echoed);
    }
    EXPECT_TRUE(r && r->is_string() && r->str == "sent once connected")
        << (r ? "unexpected reply" : r.error().message);
    std::printf("[ figures ] first command after the restart answered in %lld ms (backoff 5000 ms)\n",
                static_cast<long long>(since(t0).count()));
    EXPECT_LT(since(t0), 1000ms);
    EXPECT_TRUE(co_await redis.connect_now(1s));
    EXPECT_EQ(redis.status().counters.connects, 2u);
  });
}

// Attempts that time out are backed off, and connect_now() does not make its caller wait for one.
TEST(RedisClient, TimedOutAttemptsBackOffAndConnectNowDoesNotWaitForOne) {
  itest::SynBlackhole hole;
  asio::io_context io;
  Settings s;
  s.port = hole.port();
  s.connect_timeout = 100ms;
  s.reconnect = {.initial = 20ms, .max = 5000ms, .jitter = 0.0};
  Client redis(io.get_executor(), s);
  redis.start();
  run(io, [&]() -> asio::awaitable<void> {
    co_await sleep_for(1200ms);
    const auto st = redis.status();
    EXPECT_FALSE(st.refused) << st.last_error;
    // 100 ms each, then 20, 40, 80, 160, 320 ms apart: at most 6 in 1.2 s (refused ones: dozens).
    EXPECT_GE(st.counters.connect_failures, 2u);
    EXPECT_LE(st.counters.connect_failures, 6u);
    const auto t0 = Clock::now();
    EXPECT_FALSE(co_await redis.connect_now(1s));
    EXPECT_LT(since(t0), itest::kFast);
  });
}

// A server that breaks the protocol's order: one that refuses in words (Redis at maxclients says
// so and closes) fails the attempt with its words; one that answers more than it was asked is
// dropped at its extra reply, and the client connects again.
TEST(RedisClient, AServerOutOfStepIsDroppedWithWhatItSaid) {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  Settings s;
  s.port = acceptor.local_endpoint().port();
  s.reconnect = {.initial = 10ms, .max = 10ms, .jitter = 0.0};
  Client redis(io.get_executor(), s);
  int accepted = 0;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (;;) {
          auto sock = co_await acceptor.async_accept(asio::use_awaitable);
          ++accepted;
          std::string answer = "-ERR max number of clients reached\r\n";
          if (accepted > 1) {
            std::array<char, 64> buf{};
            co_await sock.async_read_some(asio::buffer(buf), asio::use_awaitable);  // the PING
            answer = "+PONG\r\n+PONG\r\n";
          }
          co_await asio::async_write(sock, asio::buffer(answer), asio::use_awaitable);
          if (accepted == 1) continue;  // closed at once, as Redis does
          std::array<char, 64> rest{};  // kept open until the client drops it
          boost::system::error_code ec;
          while (!ec)
            co_await sock.async_read_some(asio::buffer(rest), asio::redirect_error(asio::use_awaitable, ec));
        }
      },
      asio::detached);
  redis.start();
  run(io, [&]() -> asio::awaitable<void> {
    for (int i = 0; i < 200 && redis.status().counters.connect_failures == 0; ++i)
      co_await sleep_for(2ms);
    EXPECT_NE(redis.status().last_error.find("handshake PING failed: ERR max number of clients reached"),
              std::string::npos)
        << redis.status().last_error;
    for (int i = 0; i < 500 && redis.status().counters.disconnects == 0; ++i)
      co_await sleep_for(2ms);
    const auto st = redis.status();
    EXPECT_GE(st.counters.connects, 1u);
    EXPECT_GE(st.counters.disconnects, 1u);
    EXPECT_NE(st.last_error.find("a reply no command awaits"), std::string::npos) << st.last_error;
    acceptor.close();
  });
}

TEST(RedisSettings, RejectsHostnamesAndNonsense) {
  asio::io_context io;
  EXPECT_THROW(Client(io.get_executor(), Settings{.host = "localhost"}), std::invalid_argument);
  EXPECT_THROW(Client(io.get_executor(), Settings{.port = 0}), std::invalid_argument);
  EXPECT_THROW(Client(io.get_executor(), Settings{.max_pending = 0}), std::invalid_argument);
  EXPECT_NO_THROW(Client(io.get_executor(), Settings{.host = "::1"}));
  EXPECT_THROW(Client(io.get_executor(), Settings{.source_address = "localhost"}), std::invalid_argument);
  EXPECT_THROW(Client(io.get_executor(), Settings{.source_address = "127.0.1"}), std::invalid_argument);
  EXPECT_NO_THROW(Client(io.get_executor(), Settings{.source_address = "127.0.1.7"}));
}

}  // namespace
}  // namespace clients::redis
