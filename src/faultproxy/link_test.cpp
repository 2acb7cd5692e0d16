// Link on real loopback TCP connections: a host like the data plane's Connection (two links, the
// proxy's ends of a client and an upstream connection) run by an event loop on its own thread,
// while the test plays the client and the server with blocking sockets. Covers the fast/staged
// switch while bytes flow (byte-exact both ways), half-close (FIN one way while the other direction
// keeps flowing), the ends of a connection (RST seen as ECONNRESET, a normal close seen as EOF
// even with bytes nobody read), and readiness as the worker's Poller reports it (edges).
#include "faultproxy/link.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <future>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

namespace faultproxy {
namespace {

using namespace std::chrono_literals;

// A connected loopback TCP pair: {the proxy's end (non-blocking, for a link), the peer's end
// (blocking, with a 10 s receive timeout so that a broken test fails instead of hanging)}.
std::pair<int, int> loopback_pair() {
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listener, 1) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::runtime_error(std::string("listen: ") + std::strerror(errno));
  }
  const int peer = ::socket(AF_INET, SOCK_STREAM, 0);
  if (::connect(peer, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    throw std::runtime_error(std::string("connect: ") + std::strerror(errno));
  const int proxy = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK);
  ::close(listener);
  if (proxy < 0) throw std::runtime_error(std::string("accept: ") + std::strerror(errno));
  const int one = 1;
  ::setsockopt(proxy, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ::setsockopt(peer, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const timeval timeout{10, 0};
  ::setsockopt(peer, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  return {proxy, peer};
}

// What the data plane's Connection does for its links, and a record of how the connection ended.
class TestConnection final : public LinkHost, public SocketEvents {
 public:
  TestConnection(asio::io_context& context, BufferPool& pool, int client_fd, int upstream_fd)
      : LinkHost(context, pool),
        client_(client_fd, this),
        upstream_(upstream_fd, this),
        up(*this, {.direction = Direction::upstream,
                   .source = &client_,
                   .destination = &upstream_,
                   .keeps_client_head = true}),
        down(*this, {.direction = Direction::downstream, .source = &upstream_, .destination = &client_}) {}

  const Link& opposite(const Link& link) const override { return &link == &up ? down : up; }
  std::uint64_t link_seed(Direction d) const override { return d == Direction::upstream ? 1 : 2; }
  std::string_view proxy_name() const override { return "link_test"; }
  bool keep_client_head(const char* data, std::size_t n) override {
    head.keep(data, n);
    return !head.full();
  }
  void link_finished(Link&) override {
    if (up.finished() && down.finished()) close_connection(false);
  }
  void close_connection(bool reset) override {
    if (ended != End::open) return;
    ended = reset ? End::reset : End::closed;
    up.close_source(reset);
    down.close_source(reset);
    up.stop();
    down.stop();
  }
  void toxic_activated(const ToxicSpec&, Direction) override { ++activations; }
  void on_events(DataSocket& socket, std::uint32_t events) override {
    const bool client = &socket == &client_;
    Link::on_socket_events(events, client ? up : down, client ? down : up);
  }
  void watch(Poller& poller) {
    if (poller.add(client_) || poller.add(upstream_)) throw std::runtime_error("epoll_ctl");
  }

  enum class End { open, closed, reset };
  // Written and read on the loop thread only (the test asks through LinkTest::on_loop).
  End ended = End::open;
  int activations = 0;
  ClientHead head;

 private:
  DataSocket client_, upstream_;

 public:
  Link up, down;
};

ToxicSpec toxic(std::uint64_t id, ToxicType type,
                std::initializer_list<std::pair<std::size_t, AttributeValue>> set = {}) {
  ToxicSpec spec{.id = id, .version = 1, .name = "t" + std::to_string(id), .type = type};
  spec.attributes = default_attributes(type);
  for (const auto& [i, v] : set)
    spec.attributes[i] = v;
  return spec;
}

class LinkTest : public ::testing::Test {
 protected:
  // Runs f on the event loop's thread and returns its result.
  template <typename F>
  auto on_loop(F f) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto result = task.get_future();
    asio::post(context_, [&task] { task(); });
    return result.get();
  }

  LinkTest() {
    auto [client_proxy, client_peer] = loopback_pair();
    auto [upstream_proxy, server_peer] = loopback_pair();
    client_ = client_peer;
    server_ = server_peer;
    conn_ = std::make_shared<TestConnection>(context_, pool_, client_proxy, upstream_proxy);
    conn_->watch(poller_);
    loop_ = std::thread([this] { context_.run(); });
  }
  ~LinkTest() override {
    on_loop([this] { conn_->close_connection(false); });
    work_.reset();
    context_.stop();  // the poller's wait would keep the loop running
    loop_.join();
    conn_.reset();
    ::close(client_);
    ::close(server_);
  }

  void apply(Link TestConnection::*link, std::vector<ToxicSpec> toxics) {
    on_loop([&] { ((*conn_).*link).apply(toxics, Clock::now()); });
  }
  void start() {
    on_loop([this] {
      conn_->up.start();
      conn_->down.start();
    });
  }
  TestConnection::End ended() {
    return on_loop([this] { return conn_->ended; });
  }
  // Waits (generously) until the connection ended; returns how.
  TestConnection::End wait_ended() {
    for (int i = 0; i < 1000 && ended() == TestConnection::End::open; ++i)
      std::this_thread::sleep_for(10ms);
    return ended();
  }

  asio::io_context context_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(context_);
  BufferPool pool_;
  Poller poller_{context_};
  std::shared_ptr<TestConnection> conn_;
  std::thread loop_;
  int client_ = -1, server_ = -1;  // the test's ends: the client's and the upstream server's
};

void send_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) throw std::runtime_error(std::string("send: ") + std::strerror(errno));
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

// Reads until EOF (or `limit` bytes); returns what was read and sets `error` to errno on a failure.
std::string read_until_eof(int fd, int& error, std::size_t limit = std::size_t(1) << 30) {
  std::string out;
  char buf[64 * 1024];
  error = 0;
  while (out.size() < limit) {
    const ssize_t n = ::recv(fd, buf, std::min(sizeof buf, limit - out.size()), 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      error = errno;
      break;
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

// A stream in which any lost, duplicated or reordered byte shows: 4-byte little-endian counters.
std::string counting_stream(std::size_t bytes, std::uint32_t first) {
  std::string s(bytes, '\0');
  for (std::size_t i = 0; i < bytes; ++i)
    s[i] = static_cast<char>(((first + i / 4) >> (8 * (i % 4))) & 0xff);
  return s;
}

TEST_F(LinkTest, FastPathCopiesBothWaysAndKeepsTheClientHead) {
  start();
  send_all(client_, "PING one two");
  int error = 0;
  EXPECT_EQ(read_until_eof(server_, error, 12), "PING one two");
  send_all(server_, "+PONG\r\n");
  EXPECT_EQ(read_until_eof(client_, error, 7), "+PONG\r\n");
  EXPECT_EQ(error, 0);
  EXPECT_EQ(on_loop([this] { return std::string(conn_->head.view()); }), "PING one");
  // Idle again: each link gave its buffer back to the pool.
  EXPECT_FALSE(on_loop([this] { return conn_->up.holds_buffer() || conn_->down.holds_buffer(); }));
  EXPECT_GE(on_loop([this] { return pool_.cached(); }), 1u);
  EXPECT_EQ(on_loop([this] { return conn_->up.flow(); }), Link::Flow::open);
}

TEST_F(LinkTest, SwitchesBetweenFastAndStagedMidStreamWithoutLosingAByte) {
  start();
  // Toxics change again and again while the bytes flow: latency (holds bytes), slicer (re-chunks
  // them), none (back to the fast path with whatever the toxics still hold).
  const std::vector<std::vector<ToxicSpec>> cycle = {
      {toxic(1, ToxicType::latency, {{0, std::int64_t{2}}})},
      {},
      {toxic(2, ToxicType::slicer, {{0, std::int64_t{1000}}, {1, std::int64_t{500}}, {2, std::int64_t{20}}})},
      {toxic(1, ToxicType::latency, {{0, std::int64_t{1}}}), toxic(3, ToxicType::noop)},
      {},
  };
  std::atomic<int> switches{0};
  int removed_while_holding = 0;
  auto switch_toxics = [&] {
    const auto& toxics = cycle[static_cast<std::size_t>(switches.load()) % cycle.size()];
    removed_while_holding += on_loop([&] {
      int held = 0;
      for (Link* link : {&conn_->up, &conn_->down}) {
        held += toxics.empty() && link->pipeline() && link->pipeline()->buffered_bytes() > 0;
        link->apply(toxics, Clock::now());
      }
      return held;
    });
    switches.fetch_add(1);
  };
  switch_toxics();  // the stream starts staged

  constexpr std::size_t kBytes = 3 << 20;
  const std::string to_server = counting_stream(kBytes, 0), to_client = counting_stream(kBytes, 1u << 30);
  // Both directions at once, in writes of varying sizes, each followed by a FIN. A writer sends
  // two writes per switch, so that every switch happens mid-stream.
  auto writer = [&switches](int fd, const std::string& bytes) {
    std::size_t off = 0;
    int writes = 0;
    for (std::size_t step = 1; off < bytes.size(); step = step * 7 % 65521 + 1, ++writes) {
      while (switches.load() < writes / 2)
        std::this_thread::sleep_for(50us);
      const std::size_t n = std::min(bytes.size() - off, step);
      send_all(fd, std::string_view(bytes).substr(off, n));
      off += n;
    }
    ::shutdown(fd, SHUT_WR);
  };
  auto reader = [](int fd) {
    int error = 0;
    std::string got = read_until_eof(fd, error);
    return std::make_pair(got, error);
  };
  std::thread client_writer(writer, client_, std::cref(to_server));
  std::thread server_writer(writer, server_, std::cref(to_client));
  auto at_server = std::async(std::launch::async, reader, server_);
  auto at_client = std::async(std::launch::async, reader, client_);
  while (at_server.wait_for(300us) != std::future_status::ready ||
         at_client.wait_for(0ms) != std::future_status::ready)
    switch_toxics();
  client_writer.join();
  server_writer.join();
  const auto [server_got, server_error] = at_server.get();
  const auto [client_got, client_error] = at_client.get();
  EXPECT_EQ(server_error, 0);
  EXPECT_EQ(client_error, 0);
  EXPECT_EQ(server_got.size(), kBytes);
  EXPECT_EQ(client_got.size(), kBytes);
  EXPECT_TRUE(server_got == to_server) << "the client's bytes arrived altered";
  EXPECT_TRUE(client_got == to_client) << "the server's bytes arrived altered";
  // The test did what it says: many switches, some of them with bytes held by the toxics.
  EXPECT_GE(switches.load(), 40);
  EXPECT_GT(removed_while_holding, 0);
  EXPECT_GT(on_loop([this] { return conn_->activations; }), 0);
  // Both FINs passed: the connection closed normally.
  EXPECT_EQ(wait_ended(), TestConnection::End::closed);
}

// splice(2) cannot be told MSG_NOSIGNAL: the pool lends pipes only while SIGPIPE is ignored (as
// faultproxy's main does). Restores the disposition it found.
class SigpipeIgnored {
 public:
  SigpipeIgnored() {
    ::sigaction(SIGPIPE, nullptr, &saved_);
    ::signal(SIGPIPE, SIG_IGN);
  }
  ~SigpipeIgnored() { ::sigaction(SIGPIPE, &saved_, nullptr); }

 private:
  struct sigaction saved_ {};
};

bool is_open_fd(int fd) {
  return ::fcntl(fd, F_GETFD) >= 0;
}

TEST(BufferPoolPipes, LentOnlyWhileSigpipeIsIgnoredAndReusedWhenGivenBackEmpty) {
  {
    struct sigaction saved {};
    ::sigaction(SIGPIPE, nullptr, &saved);
    ::signal(SIGPIPE, SIG_DFL);
    BufferPool pool;
    EXPECT_EQ(pool.acquire_pipe(), BufferPool::kNoPipe) << "a pipe while SIGPIPE would kill the process";
    ::sigaction(SIGPIPE, &saved, nullptr);
  }
  SigpipeIgnored ignored;
  BufferPool pool;
  std::uint32_t first = pool.acquire_pipe();
  ASSERT_NE(first, BufferPool::kNoPipe);
  const BufferPool::Pipe made = pool.pipe(first);
  EXPECT_GE(made.capacity, 256u * 1024);
  EXPECT_EQ(::fcntl(made.read_fd, F_GETFL) & O_NONBLOCK, O_NONBLOCK);
  std::uint32_t second = pool.acquire_pipe();
  ASSERT_NE(second, BufferPool::kNoPipe);
  EXPECT_NE(second, first);
  // Given back empty: lent again as it is.
  const std::uint32_t first_slot = first;
  pool.release_pipe(first, true);
  EXPECT_EQ(first, BufferPool::kNoPipe);
  std::uint32_t again = pool.acquire_pipe();
  EXPECT_EQ(again, first_slot);
  EXPECT_EQ(pool.pipe(again).read_fd, made.read_fd);
  // Given back with bytes in it (its connection closed): closed, never lent with stale bytes.
  const BufferPool::Pipe dirty = pool.pipe(again);
  ASSERT_EQ(::write(dirty.write_fd, "stale", 5), 5);
  pool.release_pipe(again, false);
  EXPECT_FALSE(is_open_fd(dirty.read_fd));
  EXPECT_FALSE(is_open_fd(dirty.write_fd));
  std::uint32_t fresh = pool.acquire_pipe();
  ASSERT_NE(fresh, BufferPool::kNoPipe);
  char byte;
  EXPECT_EQ(::read(pool.pipe(fresh).read_fd, &byte, 1), -1) << "a reused slot holds stale bytes";
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_EQ(pool.pipes_lent(), 4u);
  pool.release_pipe(fresh, true);
  pool.release_pipe(second, true);
}

// A bulk transfer is spliced (the bytes never enter the proxy), and toxics come and go while the
// link holds bytes in its pipe: they are written before anything the toxics release, none lost,
// duplicated or reordered. The server reads slowly, so that the pipe fills behind it.
TEST_F(LinkTest, SplicesABulkTransferAndSwitchesToToxicsWithoutLosingAByte) {
  SigpipeIgnored ignored;
  start();
  constexpr std::size_t kBytes = 24 << 20;
  const std::string to_server = counting_stream(kBytes, 3);
  std::thread client_writer([&] {
    send_all(client_, to_server);
    ::shutdown(client_, SHUT_WR);
  });
  auto at_server = std::async(std::launch::async, [this] {
    std::string got;
    char buf[64 * 1024];
    for (;;) {
      const ssize_t n = ::recv(server_, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, static_cast<std::size_t>(n));
      if (got.size() < kBytes / 2) std::this_thread::sleep_for(200us);  // slow, then at full speed
    }
    return got;
  });
  int switches = 0, switched_while_piped = 0;
  while (at_server.wait_for(0ms) != std::future_status::ready) {
    // Waits (up to 2 s) for the link to splice again, then gives it a latency toxic, then none.
    bool piped = false;
    for (int i = 0; i < 2000 && !piped && at_server.wait_for(0ms) != std::future_status::ready; ++i) {
      piped = on_loop([this] { return conn_->up.splicing(); });
      if (!piped) std::this_thread::sleep_for(1ms);
    }
    switched_while_piped += on_loop([this] {
      const bool held = conn_->up.splicing() && conn_->up.holds_data();
      conn_->up.apply({toxic(1, ToxicType::latency, {{0, std::int64_t{1}}})}, Clock::now());
      return held;
    });
    std::this_thread::sleep_for(2ms);
    apply(&TestConnection::up, {});
    ++switches;
  }
  client_writer.join();
  const std::string server_got = at_server.get();
  EXPECT_EQ(server_got.size(), kBytes);
  EXPECT_TRUE(server_got == to_server) << "the client's bytes arrived altered";
  EXPECT_GE(switches, 3);
  EXPECT_GT(switched_while_piped, 0) << "no switch found bytes in the pipe";
  EXPECT_GE(on_loop([this] { return pool_.pipes_lent(); }), 2u) << "splicing did not resume after a switch";
}

// After a bulk transfer, small messages are copied again (a pipe costs more system calls than a
// small copy), and an idle link holds neither a buffer nor a pipe.
TEST_F(LinkTest, SmallMessagesAfterABulkTransferAreCopiedAgain) {
  SigpipeIgnored ignored;
  start();
  const std::string bulk = counting_stream(4 << 20, 9);
  std::thread client_writer([&] { send_all(client_, bulk); });
  int error = 0;
  EXPECT_TRUE(read_until_eof(server_, error, bulk.size()) == bulk);
  client_writer.join();
  const std::uint64_t lent = on_loop([this] { return pool_.pipes_lent(); });
  EXPECT_GE(lent, 1u) << "the bulk transfer was not spliced";
  for (int i = 0; i < 20; ++i) {
    send_all(client_, "PING");
    EXPECT_EQ(read_until_eof(server_, error, 4), "PING");
  }
  // The first small read may still go through a pipe; it is the last.
  EXPECT_LE(on_loop([this] { return pool_.pipes_lent(); }), lent + 1);
  EXPECT_FALSE(on_loop([this] { return conn_->up.holds_buffer() || conn_->down.holds_buffer(); }));
}

// A chunk is dated by its arrival, but never before the link had toxics: bytes that waited in the
// socket while the link did not read yet (as a connection's first bytes do until the upstream is
// connected) get the full latency from the toxic's creation. (A timer never fires early, so this
// lower bound holds however loaded the machine is.)
TEST_F(LinkTest, LatencyNeverCountsFromBeforeTheToxicExisted) {
  // The kernel stamps what arrives only while some socket asks for stamps: one does here, so that
  // the early bytes carry their arrival.
  const int stamping = ::socket(AF_INET, SOCK_STREAM, 0);
  enable_arrival_stamps(stamping);
  send_all(client_, "early");
  std::this_thread::sleep_for(20ms);
  const TimePoint applied = Clock::now();
  apply(&TestConnection::up, {toxic(1, ToxicType::latency, {{0, std::int64_t{100}}})});
  start();
  int error = 0;
  EXPECT_EQ(read_until_eof(server_, error, 5), "early");
  EXPECT_GE(Clock::now(), applied + 100ms) << "the latency counted from before the toxic existed";
  ::close(stamping);
}

// recv_dated dates the bytes by their arrival (what a latency toxic counts from), within
// kMaxArrivalLead; older ones by the read.
TEST(RecvDated, DatesBytesByTheirArrival) {
  auto [proxy, peer] = loopback_pair();
  enable_arrival_stamps(proxy);
  char buf[64];
  int dated = 0;
  // Each attempt: send, wait 1 ms, read. On a busy machine the wait can overrun the lead, or the
  // kernel deliver the bytes late (in a softirq after the wait): those attempts date by the read.
  // 20 in a row cannot all be such.
  for (int attempt = 0; attempt < 20 && dated == 0; ++attempt) {
    const TimePoint sent = Clock::now();
    send_all(peer, "ping");
    std::this_thread::sleep_for(1ms);
    const TimePoint now = Clock::now();
    TimePoint arrived{};
    ASSERT_EQ(recv_dated(proxy, buf, sizeof buf, now, arrived), 4);
    EXPECT_LE(arrived, now);
    EXPECT_GE(arrived, sent - 200us) << "dated before it was sent";
    dated += arrived <= now - 500us;
  }
  EXPECT_EQ(dated, 1) << "dated by the read, not by the arrival";
  // Waited longer than the lead: dated by the read.
  send_all(peer, "pong");
  std::this_thread::sleep_for(kMaxArrivalLead + 1ms);
  const TimePoint now = Clock::now();
  TimePoint arrived{};
  ASSERT_EQ(recv_dated(proxy, buf, sizeof buf, now, arrived), 4);
  EXPECT_EQ(arrived, now);
  // Nothing to read: EAGAIN, as recv(2).
  EXPECT_EQ(recv_dated(proxy, buf, sizeof buf, now, arrived), -1);
  EXPECT_EQ(errno, EAGAIN);
  ::close(proxy);
  ::close(peer);
}

// Half-close on the fast path and through toxics (a noop toxic keeps the staged path).
class LinkHalfClose : public LinkTest, public ::testing::WithParamInterface<bool> {};

TEST_P(LinkHalfClose, FinOneWayWhileTheOtherDirectionKeepsFlowing) {
  if (GetParam()) {
    apply(&TestConnection::up, {toxic(1, ToxicType::noop)});
    apply(&TestConnection::down, {toxic(2, ToxicType::noop)});
  }
  start();
  send_all(client_, "request");
  ::shutdown(client_, SHUT_WR);
  int error = 0;
  EXPECT_EQ(read_until_eof(server_, error), "request");  // the client's FIN reached the server
  EXPECT_EQ(error, 0);
  EXPECT_EQ(on_loop([this] { return conn_->up.flow(); }), Link::Flow::finished);
  EXPECT_EQ(ended(), TestConnection::End::open);

  // The server answers after the client's FIN, at length: it all reaches the client.
  const std::string answer = counting_stream(1 << 20, 7);
  std::thread server_writer([&] { send_all(server_, answer); });
  EXPECT_TRUE(read_until_eof(client_, error, answer.size()) == answer);
  server_writer.join();
  EXPECT_EQ(ended(), TestConnection::End::open);
  EXPECT_EQ(on_loop([this] { return conn_->down.flow(); }), Link::Flow::open);

  ::shutdown(server_, SHUT_WR);
  EXPECT_EQ(read_until_eof(client_, error), "");  // EOF, not a reset
  EXPECT_EQ(error, 0);
  EXPECT_EQ(wait_ended(), TestConnection::End::closed);
}

INSTANTIATE_TEST_SUITE_P(FastAndStaged, LinkHalfClose, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& p) { return p.param ? "staged" : "fast"; });

TEST_F(LinkTest, CloseWithResetIsSeenAsConnectionResetByBothPeers) {
  start();
  send_all(client_, "hello");
  int error = 0;
  EXPECT_EQ(read_until_eof(server_, error, 5), "hello");
  on_loop([this] { conn_->close_connection(true); });
  EXPECT_EQ(read_until_eof(client_, error), "");
  EXPECT_EQ(error, ECONNRESET);
  EXPECT_EQ(read_until_eof(server_, error), "");
  EXPECT_EQ(error, ECONNRESET);
}

TEST_F(LinkTest, ResetPeerToxicResetsTheConnection) {
  start();
  apply(&TestConnection::up, {toxic(1, ToxicType::reset_peer, {{0, std::int64_t{0}}})});
  send_all(client_, "anything");
  EXPECT_EQ(wait_ended(), TestConnection::End::reset);
  int error = 0;
  EXPECT_EQ(read_until_eof(client_, error), "");
  EXPECT_EQ(error, ECONNRESET);
  EXPECT_EQ(read_until_eof(server_, error), "");  // the held bytes never reached the server
  EXPECT_EQ(error, ECONNRESET);
}

TEST_F(LinkTest, NormalCloseWithUnreadBytesIsAFinNotAReset) {
  // Not started (as while a slow_open delays the upstream connect): the client's bytes stay unread.
  send_all(client_, std::string(20'000, 'x'));
  std::this_thread::sleep_for(50ms);
  on_loop([this] { conn_->close_connection(false); });
  int error = 0;
  EXPECT_EQ(read_until_eof(client_, error), "");
  EXPECT_EQ(error, 0) << std::strerror(error);
  EXPECT_EQ(read_until_eof(server_, error), "");
  EXPECT_EQ(error, 0) << std::strerror(error);
}

TEST_F(LinkTest, AReadErrorClosesTheConnection) {
  start();
  const linger lg{1, 0};
  ::setsockopt(client_, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  ::close(client_);                             // the client resets its connection
  client_ = ::socket(AF_INET, SOCK_STREAM, 0);  // closed again by the fixture
  EXPECT_EQ(wait_ended(), TestConnection::End::closed);
  int error = 0;
  EXPECT_EQ(read_until_eof(server_, error), "");
  EXPECT_EQ(error, 0);
}

// The poller reports a FIN that arrived with the data in the same edge as the data (EPOLLRDHUP),
// never again: a link that took its short read as "drained" would wait forever for the end.
TEST_F(LinkTest, AFinThatCameWithTheDataIsPassedOn) {
  start();
  on_loop([this] {
    // Data and FIN arrive while the loop is busy here, so that one edge reports both.
    send_all(client_, "last words");
    ::shutdown(client_, SHUT_WR);
    std::this_thread::sleep_for(20ms);
  });
  int error = 0;
  EXPECT_EQ(read_until_eof(server_, error), "last words");  // then EOF, well before the 10 s timeout
  EXPECT_EQ(error, 0);
  EXPECT_EQ(on_loop([this] { return conn_->up.flow(); }), Link::Flow::finished);
}

}  // namespace
}  // namespace faultproxy
