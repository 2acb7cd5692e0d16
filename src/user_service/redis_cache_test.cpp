// RedisCache against a Redis impostor: replies no healthy Redis sends, as a connection whose reply
// stream is out of step with its commands delivers them (bytes lost or injected between the service
// and Redis, e.g. by a faulty proxy). Every such reply must fail its call with Failure::desync, never
// be served, and drop the connection (re-established with backoff), so no later command is matched
// to another one's reply. The same checks against a real Redis are in redis_cache_itest.cpp.
#include "user_service/redis_cache.h"

#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <functional>
#include <memory>
#include <optional>

#include "testing/event_loop.h"

namespace user_service {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

// A Redis impostor on a loopback port: parses the commands hiredis sends (RESP arrays of bulk
// strings), answers each connection's first PING (the client's handshake) with PONG, and every other
// command with what `respond` returns (raw RESP; nothing: the reply is swallowed).
class Impostor {
 public:
  using Respond = std::function<std::optional<std::string>(const std::vector<std::string>& args)>;

  Impostor(asio::io_context& io, Respond respond) : state_(std::make_shared<State>(io, std::move(respond))) {
    asio::co_spawn(io, accept(state_), asio::detached);
  }
  ~Impostor() {
    boost::system::error_code ec;
    state_->acceptor.close(ec);
    for (auto& s : state_->sockets)
      s->close(ec);
  }
  Impostor(const Impostor&) = delete;
  Impostor& operator=(const Impostor&) = delete;

  std::uint16_t port() const { return state_->acceptor.local_endpoint().port(); }
  int connections() const { return state_->connections; }
  void respond_with(Respond r) { state_->respond = std::move(r); }

 private:
  struct State {
    State(asio::io_context& io, Respond r)
        : acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)), respond(std::move(r)) {}
    tcp::acceptor acceptor;
    Respond respond;
    int connections = 0;
    std::vector<std::shared_ptr<tcp::socket>> sockets;
  };

  static asio::awaitable<void> accept(std::shared_ptr<State> st) {
    for (;;) {
      auto [ec, socket] = co_await st->acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      auto s = std::make_shared<tcp::socket>(std::move(socket));
      st->sockets.push_back(s);
      ++st->connections;
      asio::co_spawn(st->acceptor.get_executor(), serve(st, s), asio::detached);
    }
  }

  static asio::awaitable<void> serve(std::shared_ptr<State> st, std::shared_ptr<tcp::socket> s) {
    std::string in;
    char chunk[4096];
    bool handshaken = false;
    for (;;) {
      auto [ec, n] = co_await s->async_read_some(asio::buffer(chunk), asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      in.append(chunk, n);
      std::vector<std::string> args;
      while (parse(in, args)) {
        std::optional<std::string> reply;
        if (!handshaken && args.size() == 1 && args[0] == "PING") {
          handshaken = true;
          reply = "+PONG\r\n";
        } else {
          reply = st->respond(args);
        }
        if (!reply) continue;
        auto [wec, w] =
            co_await asio::async_write(*s, asio::buffer(*reply), asio::as_tuple(asio::use_awaitable));
        if (wec) co_return;
      }
    }
  }

  // One complete command off the front of `in` (consumed), or false if it is not all there yet.
  static bool parse(std::string& in, std::vector<std::string>& args) {
    args.clear();
    std::size_t pos = 0;
    auto line = [&]() -> std::optional<std::string> {
      const auto eol = in.find("\r\n", pos);
      if (eol == std::string::npos) return std::nullopt;
      std::string l = in.substr(pos, eol - pos);
      pos = eol + 2;
      return l;
    };
    const auto head = line();
    if (!head || head->empty() || (*head)[0] != '*') return false;
    const long n = std::strtol(head->c_str() + 1, nullptr, 10);
    for (long i = 0; i < n; ++i) {
      const auto len = line();
      if (!len || len->empty() || (*len)[0] != '$') return false;
      const auto size = static_cast<std::size_t>(std::strtol(len->c_str() + 1, nullptr, 10));
      if (in.size() < pos + size + 2) return false;
      args.push_back(in.substr(pos, size));
      pos += size + 2;
    }
    in.erase(0, pos);
    return true;
  }

  std::shared_ptr<State> state_;
};

std::string Bulk(const std::string& s) {
  return "$" + std::to_string(s.size()) + "\r\n" + s + "\r\n";
}
// The reply to HMGET user:<id> id name version for a cached user.
std::string Hash(const std::string& id, const std::string& name, const std::string& version) {
  return "*3\r\n" + Bulk(id) + Bulk(name) + Bulk(version);
}

// Answers like a Redis holding `user:a` = {a, Ann, 5} and `user:b` = {b, Bob, 7}.
std::optional<std::string> Honest(const std::vector<std::string>& args) {
  if (args.at(0) == "PING") return "+PONG\r\n";
  if (args.at(0) == "ROLE") return "*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n";
  if (args.at(0) == "HMGET" && args.at(1) == "user:a") return Hash("a", "Ann", "5");
  if (args.at(0) == "HMGET" && args.at(1) == "user:b") return Hash("b", "Bob", "7");
  if (args.at(0) == "HMGET") return "*3\r\n$-1\r\n$-1\r\n$-1\r\n";
  if (args.at(0) == "EVALSHA") return "*2\r\n:1\r\n" + Bulk(args.at(8));  // {1, id}
  if (args.at(0) == "SCAN") return "*2\r\n$1\r\n0\r\n*0\r\n";
  return "-ERR unexpected\r\n";
}

class RedisCacheDesync : public ::testing::Test {
 protected:
  void Connect(Impostor::Respond respond) {
    impostor_.emplace(io_, std::move(respond));
    clients::redis::Settings s;
    s.port = impostor_->port();
    s.name = "redis-master";
    s.connect_timeout = 2s;
    s.stall_timeout = 10s;
    s.reconnect = {.initial = 20ms, .max = 100ms, .multiplier = 2.0, .jitter = 0.0};
    master_ = std::make_unique<clients::redis::Client>(io_.get_executor(), s);
    clients::redis::Settings r = s;
    r.name = "redis-replica";
    replica_ = std::make_unique<clients::redis::Client>(io_.get_executor(), r);  // not started: unused
    cache_ = std::make_unique<RedisCache>(*master_, *replica_, config_);
    master_->start();
    ASSERT_TRUE(Run(master_->wait_connected(clients::Deadline(5s))));
  }
  void TearDown() override {
    cache_.reset();
    master_.reset();
    replica_.reset();
    impostor_.reset();
    io_.run_for(20ms);
  }

  template <typename T>
  T Run(asio::awaitable<T> a) {
    return testing_support::run(io_, std::move(a));
  }
  Deadline D() { return Deadline::after(2s); }
  // After a reset: the client reconnects (with its backoff) and the next call works again.
  void ExpectReconnected(int connections) {
    ASSERT_TRUE(Run(master_->wait_connected(clients::Deadline(5s))));
    EXPECT_EQ(impostor_->connections(), connections);
  }

  asio::io_context io_;
  RedisConfig config_;
  std::optional<Impostor> impostor_;
  std::unique_ptr<clients::redis::Client> master_, replica_;
  std::unique_ptr<RedisCache> cache_;
};

TEST_F(RedisCacheDesync, HonestRepliesAreServed) {
  Connect(Honest);
  auto a = Run(cache_->get(CacheNode::master, "a", D()));
  ASSERT_TRUE(a.ok()) << a.message;
  ASSERT_TRUE(a.value);
  EXPECT_EQ(a.value->name, "Ann");
  EXPECT_EQ(a.value->version, 5u);
  auto none = Run(cache_->get(CacheNode::master, "nobody", D()));
  EXPECT_TRUE(none.ok() && !none.value);
  EXPECT_TRUE(Run(cache_->store_if_newer("a", CacheEntry{6, false, "Ann"}, D())).ok());
  EXPECT_TRUE(Run(cache_->ping(CacheNode::master, D())).ok());
  EXPECT_EQ(master_->status().counters.resets, 0u);
}

// The reply stream slips by one: the impostor swallows the reply to a's HMGET and answers b's, which
// hiredis then matches to a's command. a must not be served Bob; b must not be served anything from
// that connection either (it is dropped, so b fails as a lost connection), and the next reads work.
TEST_F(RedisCacheDesync, AReplyForAnotherUserIsNeverServedAndTheConnectionIsDropped) {
  Connect([](const std::vector<std::string>& args) -> std::optional<std::string> {
    if (args.at(0) == "HMGET" && args.at(1) == "user:a") return std::nullopt;  // lost on the way
    return Honest(args);
  });
  std::optional<Outcome<std::optional<CacheEntry>>> a, b;
  asio::co_spawn(
      io_, [&]() -> asio::awaitable<void> { a = co_await cache_->get(CacheNode::master, "a", D()); },
      asio::detached);
  asio::co_spawn(
      io_, [&]() -> asio::awaitable<void> { b = co_await cache_->get(CacheNode::master, "b", D()); },
      asio::detached);
  for (int i = 0; i < 500 && !(a && b); ++i)
    io_.run_one_for(10ms);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->failure, Failure::desync) << a->message;
  EXPECT_FALSE(a->value.has_value());
  EXPECT_NE(a->message.find("another user"), std::string::npos) << a->message;
  EXPECT_EQ(b->failure, Failure::unavailable) << b->message;  // its connection was dropped
  EXPECT_EQ(master_->status().counters.resets, 1u);
  impostor_->respond_with(Honest);
  ExpectReconnected(2);
  auto again = Run(cache_->get(CacheNode::master, "b", D()));
  ASSERT_TRUE(again.ok() && again.value) << again.message;
  EXPECT_EQ(again.value->name, "Bob");
}

// Replies that cannot belong to their command, for each kind of call.
TEST_F(RedisCacheDesync, RepliesOfTheWrongShapeAreDesyncs) {
  std::string wrong;  // what the impostor answers to the command under test
  std::string victim;
  Connect([&](const std::vector<std::string>& args) -> std::optional<std::string> {
    if (args.at(0) == victim) return wrong;
    return Honest(args);
  });
  int connections = 1;
  auto check = [&](const char* what, Failure failure) {
    EXPECT_EQ(failure, Failure::desync) << what;
    EXPECT_EQ(master_->status().counters.resets, static_cast<std::uint64_t>(connections)) << what;
    ++connections;
    ExpectReconnected(connections);
  };
  victim = "HMGET";
  wrong = ":1\r\n";  // an integer: the script's reply
  check("HMGET answered with an integer", Run(cache_->get(CacheNode::master, "a", D())).failure);
  wrong = "*2\r\n$1\r\n0\r\n*0\r\n";  // SCAN's reply
  check("HMGET answered with SCAN's reply", Run(cache_->get(CacheNode::master, "a", D())).failure);
  wrong = "*3\r\n:1\r\n$3\r\nAnn\r\n$1\r\n5\r\n";  // a field that is not a string
  check("HMGET answered with a non-string field", Run(cache_->get(CacheNode::master, "a", D())).failure);
  victim = "EVALSHA";
  wrong = Hash("a", "Ann", "5");
  check("the script answered with a hash",
        Run(cache_->store_if_newer("a", CacheEntry{6, false, "Ann"}, D())).failure);
  wrong = ":1\r\n";
  check("the script answered a bare 1",
        Run(cache_->store_if_newer("a", CacheEntry{6, false, "Ann"}, D())).failure);
  wrong = "*2\r\n:1\r\n$1\r\nb\r\n";  // another user's: a command lost on the way
  check("the script answered for b",
        Run(cache_->store_if_newer("a", CacheEntry{6, false, "Ann"}, D())).failure);
  wrong = "*2\r\n:7\r\n$1\r\na\r\n";
  check("the script answered 7", Run(cache_->store_if_newer("a", CacheEntry{6, false, "Ann"}, D())).failure);
  victim = "ROLE";
  wrong = ":1\r\n";
  check("ROLE answered with an integer", Run(cache_->ping(CacheNode::master, D())).failure);
  victim = "SCAN";
  wrong = Hash("a", "Ann", "5");
  check("SCAN answered with a hash", Run(cache_->invalidate_values_step(0, D())).failure);
  wrong = "*2\r\n$1\r\n0\r\n*1\r\n$7\r\nsession\r\n";  // a key that is not ours
  check("SCAN answered with a foreign key", Run(cache_->invalidate_values_step(0, D())).failure);
}

// A master that says it is a replica (demoted by a failover) fails its probe and is reported, so the
// topology is re-resolved; the connection is fine (no desync).
TEST_F(RedisCacheDesync, ADemotedMasterFailsItsProbeAndIsReported) {
  Connect([](const std::vector<std::string>& args) -> std::optional<std::string> {
    if (args.at(0) == "ROLE")
      return "*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:6379\r\n$9\r\nconnected\r\n:1\r\n";
    if (args.at(0) == "EVALSHA") return "-READONLY You can't write against a read only replica.\r\n";
    return Honest(args);
  });
  int demoted = 0;
  cache_->on_master_demoted([&] { ++demoted; });
  const auto probe = Run(cache_->ping(CacheNode::master, D()));
  EXPECT_EQ(probe.failure, Failure::unavailable);
  EXPECT_EQ(demoted, 1);
  const auto write = Run(cache_->store_if_newer("a", CacheEntry{6, false, "Ann"}, D()));
  EXPECT_EQ(write.failure, Failure::unavailable);
  EXPECT_EQ(demoted, 2);
  EXPECT_EQ(master_->status().counters.resets, 0u);
}

// A reply lost on the way (packet loss through a proxy): from then on each reply is matched to the
// command before it, which timed out and discards it, so every command times out although the node
// answers at once. The probe that gets no reply in time drops the connection, and the next one works.
TEST_F(RedisCacheDesync, AProbeWithoutAReplyDropsAConnectionThatLostOne) {
  bool lost = false;
  Connect([&](const std::vector<std::string>& args) -> std::optional<std::string> {
    if (args.at(0) == "HMGET" && !lost) {
      lost = true;
      return std::nullopt;  // the one reply that never arrives
    }
    return Honest(args);
  });
  EXPECT_EQ(Run(cache_->get(CacheNode::master, "a", Deadline::after(50ms))).failure, Failure::timeout);
  // Out of step: the node answers, the reply goes to the command before.
  EXPECT_EQ(Run(cache_->get(CacheNode::master, "b", Deadline::after(50ms))).failure, Failure::timeout);
  EXPECT_EQ(Run(cache_->ping(CacheNode::master, Deadline::after(50ms))).failure, Failure::timeout);
  ExpectReconnected(2);
  const auto probe = Run(cache_->ping(CacheNode::master, D()));
  EXPECT_TRUE(probe.ok()) << probe.message;
  const auto a = Run(cache_->get(CacheNode::master, "a", D()));
  ASSERT_TRUE(a.ok() && a.value) << a.message;
  EXPECT_EQ(a.value->name, "Ann");
}

// A hash that does not name its id was not written by the service: it is never served, but it is no
// sign of a desynchronised connection either (the connection is kept).
TEST_F(RedisCacheDesync, AHashWithoutItsIdIsAMissNotADesync) {
  Connect([](const std::vector<std::string>& args) -> std::optional<std::string> {
    if (args.at(0) == "HMGET") return "*3\r\n$-1\r\n$4\r\nJack\r\n$1\r\n5\r\n";
    return Honest(args);
  });
  auto r = Run(cache_->get(CacheNode::master, "a", D()));
  EXPECT_TRUE(r.ok()) << r.message;
  EXPECT_FALSE(r.value.has_value());
  EXPECT_EQ(master_->status().counters.resets, 0u);
}

}  // namespace
}  // namespace user_service
