// Poller on real loopback sockets: what an edge reports, that a socket closed earlier in the same
// batch hears nothing, and the wait armed through the io_context.
#include "faultproxy/poller.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <stdexcept>
#include <vector>

namespace faultproxy {
namespace {

// A connected pair of stream sockets: {ours, non-blocking; the peer's}.
std::pair<int, int> socket_pair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) != 0) throw std::runtime_error("socketpair");
  return {fds[0], fds[1]};
}

struct Recorder : SocketEvents {
  void on_events(DataSocket& socket, std::uint32_t events) override { seen.push_back({&socket, events}); }
  struct Seen {
    DataSocket* socket;
    std::uint32_t events;
  };
  std::vector<Seen> seen;
};

// One socket watched by a poller, its events recorded; the test holds the peer's end.
struct OneSocket : ::testing::Test {
  OneSocket() {
    auto [ours, their] = socket_pair();
    socket.reset(ours, &owner);
    peer = their;
    if (poller.add(socket)) throw std::runtime_error("epoll_ctl");  // arms (automatic arming)
  }
  ~OneSocket() override { ::close(peer); }
  boost::asio::io_context context;
  Poller poller{context};
  Recorder owner;
  DataSocket socket;
  int peer = -1;
};

TEST_F(OneSocket, OneEdgeReportsDataAndTheEndThatCameWithIt) {
  EXPECT_EQ(poller.poll(), 1u);  // added: writable
  ASSERT_EQ(owner.seen.size(), 1u);
  EXPECT_TRUE(owner.seen[0].events & EPOLLOUT);
  EXPECT_FALSE(owner.seen[0].events & EPOLLIN);
  EXPECT_EQ(poller.poll(), 0u);  // edges: nothing new, nothing reported

  ASSERT_EQ(::write(peer, "hi", 2), 2);
  ::shutdown(peer, SHUT_WR);
  EXPECT_EQ(poller.poll(), 1u);
  ASSERT_EQ(owner.seen.size(), 2u);
  EXPECT_TRUE(owner.seen[1].events & EPOLLIN);
  EXPECT_TRUE(owner.seen[1].events & EPOLLRDHUP);
  EXPECT_EQ(poller.poll(), 0u);  // reported once, though unread
}

TEST(Poller, ASocketClosedEarlierInTheBatchHearsNothing) {
  boost::asio::io_context context;
  Poller poller(context);
  // Whichever socket is handed out first closes the other: the batch's second event is dropped.
  struct Closer : SocketEvents {
    void on_events(DataSocket& s, std::uint32_t) override {
      ++calls;
      (&s == first ? *second : *first).close();
    }
    DataSocket *first = nullptr, *second = nullptr;
    int calls = 0;
  } closer;
  auto [a, a_peer] = socket_pair();
  auto [b, b_peer] = socket_pair();
  DataSocket first(a, &closer), second(b, &closer);
  closer.first = &first;
  closer.second = &second;
  ASSERT_FALSE(poller.add(first));
  ASSERT_FALSE(poller.add(second));
  EXPECT_EQ(poller.poll(), 2u);  // both were ready (writable) when the batch was taken
  EXPECT_EQ(closer.calls, 1);
  EXPECT_NE(first.is_open(), second.is_open());
  ::close(a_peer);
  ::close(b_peer);
}

TEST_F(OneSocket, TheArmedWaitRunsThroughTheIoContext) {
  EXPECT_EQ(context.run_one_for(std::chrono::seconds(5)), 1u);
  ASSERT_EQ(owner.seen.size(), 1u);
  ASSERT_EQ(::write(peer, "x", 1), 1);
  EXPECT_EQ(context.run_one_for(std::chrono::seconds(5)), 1u);  // armed again after the first poll
  ASSERT_EQ(owner.seen.size(), 2u);
  EXPECT_TRUE(owner.seen[1].events & EPOLLIN);

  poller.set_manual_arming(true);
  ASSERT_EQ(::write(peer, "y", 1), 1);
  EXPECT_EQ(context.run_one_for(std::chrono::seconds(5)), 1u);  // the wait armed before
  EXPECT_EQ(owner.seen.size(), 3u);
  ASSERT_EQ(::write(peer, "z", 1), 1);
  EXPECT_EQ(context.run_one_for(std::chrono::milliseconds(50)), 0u);  // not armed again by itself
  context.restart();                                                  // it ran out of work, which stops it
  poller.arm();
  EXPECT_EQ(context.run_one_for(std::chrono::seconds(5)), 1u);
  EXPECT_EQ(owner.seen.size(), 4u);
}

}  // namespace
}  // namespace faultproxy
