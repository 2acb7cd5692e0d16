// Helpers shared by the clients' integration tests: running a coroutine body on an io_context
// with a time limit, sleeping in coroutines, and a TCP blackhole at the SYN stage.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "clients/support.h"
#include "testing/servers.h"

namespace clients::itest {

using Ms = std::chrono::milliseconds;

inline Ms since(Clock::time_point t) {
  return std::chrono::duration_cast<Ms>(Clock::now() - t);
}

inline boost::asio::awaitable<void> sleep_for(Clock::duration d) {
  boost::asio::steady_timer t(co_await boost::asio::this_coro::executor, d);
  co_await t.async_wait(boost::asio::use_awaitable);
}

// How late an operation may complete after its deadline in an assertion: event-loop latency on a
// shared, sometimes heavily loaded 2-core machine (a load average of 12 delayed timers by ~200 ms).
inline Ms margin(Ms deadline) {
  return Ms(150) + deadline / 2;
}

// "At once": failing fast completes in the next turn of the event loop, which a loaded machine may
// delay by tens of milliseconds; still far below the deadlines (100 ms and more) those calls had.
inline constexpr Ms kFast{60};

// Runs `body` as a coroutine on `io` until it finishes; fails the test after `limit`.
inline void run(boost::asio::io_context& io, std::function<boost::asio::awaitable<void>()> body,
                Ms limit = Ms(60000)) {
  bool done = false;
  std::exception_ptr error;
  boost::asio::co_spawn(io, body(), [&](std::exception_ptr e) {
    done = true;
    error = e;
    io.stop();
  });
  io.run_for(limit);
  io.restart();
  ASSERT_TRUE(done) << "test body did not finish within " << limit.count() << " ms";
  if (error) std::rethrow_exception(error);
}

// Open file descriptors of this process (to prove that abandoned connects leave no socket behind).
inline std::size_t open_fds() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd"))
    ++n;
  return n;
}

// SIGSTOP is delivered asynchronously: waits until every thread of `pid` is stopped
// (testing_support::wait_stopped); fails the test if that takes longer than `limit`.
inline void wait_stopped(pid_t pid, Ms limit = Ms(2000)) {
  if (!testing_support::wait_stopped(pid, limit)) FAIL() << "process " << pid << " did not stop";
}

// A loopback port whose accept queue is full and never drained: the kernel drops further SYNs,
// so a connect to it stays in progress (what a firewalled or dead host does), unlike a paused
// server, which completes the TCP handshake and then never answers.
class SynBlackhole {
 public:
  SynBlackhole() {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (listener_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        ::listen(listener_, 0) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
      throw std::runtime_error("SynBlackhole: cannot listen");
    port_ = ntohs(addr.sin_port);
    // Fill the accept queue (backlog 0 holds one connection) with non-blocking connects.
    for (int i = 0; i < 3; ++i) {
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
      fillers_.push_back(fd);
    }
    ::usleep(20000);
  }
  ~SynBlackhole() {
    for (int fd : fillers_)
      ::close(fd);
    ::close(listener_);
  }
  SynBlackhole(const SynBlackhole&) = delete;
  SynBlackhole& operator=(const SynBlackhole&) = delete;
  std::uint16_t port() const { return port_; }

 private:
  int listener_ = -1;
  std::uint16_t port_ = 0;
  std::vector<int> fillers_;
};

}  // namespace clients::itest
