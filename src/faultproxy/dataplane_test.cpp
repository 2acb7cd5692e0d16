// Workers' run loop: with and without busy polling it runs what is posted and what timers
// schedule, stops on request, an idle worker sleeps (busy polling spends CPU only right after
// work, never while the proxy is idle), and a flood of handlers does not starve the data sockets.
#include "faultproxy/dataplane.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <future>
#include <thread>

namespace faultproxy {
namespace {

using namespace std::chrono_literals;

// CPU time (user + system) of this whole process so far.
std::chrono::microseconds process_cpu() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  const auto us = [](const timeval& tv) {
    return std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec);
  };
  return std::chrono::duration_cast<std::chrono::microseconds>(us(ru.ru_utime) + us(ru.ru_stime));
}

// Two workers with the test's busy-poll window, worker 0 run by `control_` (as main does).
class WorkersRun : public ::testing::TestWithParam<int> {
 protected:
  WorkersRun() : workers_(2, std::chrono::microseconds(GetParam())) {
    workers_.start_threads();
    control_ = std::async(std::launch::async, [this] { workers_.run_control(); });
  }
  ~WorkersRun() override {
    workers_.control().stop();
    control_.wait();
    workers_.stop();
  }
  // Posts n handlers to worker 0, each counting itself in ran_.
  void post_counted(int n) {
    for (int i = 0; i < n; ++i)
      boost::asio::post(workers_.control(), [this] { ran_.fetch_add(1); });
  }

  Workers workers_;
  std::future<void> control_;
  std::atomic<int> ran_{0};
};

TEST_P(WorkersRun, RunsPostedWorkAndTimersThenStops) {
  post_counted(1000);
  std::promise<std::chrono::steady_clock::time_point> fired;
  const auto armed = std::chrono::steady_clock::now();
  boost::asio::steady_timer timer(workers_.control(), 20ms);
  timer.async_wait([&](boost::system::error_code) { fired.set_value(std::chrono::steady_clock::now()); });

  auto when = fired.get_future();
  ASSERT_EQ(when.wait_for(10s), std::future_status::ready) << "the timer never fired";
  EXPECT_GE(when.get() - armed, 20ms);
  EXPECT_EQ(ran_.load(), 1000);

  // Keep the loop busy, then stop it: run_control returns although work keeps coming.
  std::atomic<bool> feeding{true};
  std::thread feeder([&] {
    while (feeding) {
      boost::asio::post(workers_.control(), [] {});
      std::this_thread::sleep_for(10us);
    }
  });
  std::this_thread::sleep_for(50ms);
  workers_.control().stop();
  EXPECT_EQ(control_.wait_for(10s), std::future_status::ready) << "run_control did not return after stop()";
  feeding = false;
  feeder.join();
}

TEST_P(WorkersRun, AnIdleWorkerSleeps) {
  post_counted(100);
  while (ran_.load() < 100)
    std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(20ms);  // past any busy-poll window (at most 10 ms)

  // 500 ms of idleness: a worker that kept polling would spend about that much CPU. The bound is
  // far above what sleeping threads use (a few ms on a busy machine) and far below a spinning one.
  const auto before = process_cpu();
  std::this_thread::sleep_for(500ms);
  const auto used = process_cpu() - before;
  EXPECT_LT(used, 150ms) << "CPU used while idle: " << used.count() << " us";

  workers_.control().stop();
  EXPECT_EQ(control_.wait_for(10s), std::future_status::ready);
}

// Worker 0 flooded with handlers (its API under attack: each handler brings the next) still hands
// out its data sockets' events: busy polling takes the poller's turn between a bounded number of
// handlers, so an edge that comes during the flood is not left waiting for the flood to end.
TEST_P(WorkersRun, AFloodOfHandlersDoesNotKeepTheSocketsWaiting) {
  struct Readable : SocketEvents {
    void on_events(DataSocket&, std::uint32_t events) override {
      if ((events & EPOLLIN) && !told) {
        told = true;
        at.set_value(std::chrono::steady_clock::now());
      }
    }
    bool told = false;
    std::promise<std::chrono::steady_clock::time_point> at;
  } owner;
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
  DataSocket socket(fds[0], &owner);

  std::atomic<bool> flooding{true};
  struct Flood {
    void operator()() const {
      if (*on) boost::asio::post(*context, *this);
    }
    boost::asio::io_context* context;
    std::atomic<bool>* on;
  };
  for (int i = 0; i < 4; ++i)
    boost::asio::post(workers_.control(), Flood{&workers_.control(), &flooding});
  std::promise<void> added;
  boost::asio::post(workers_.control(), [&] {
    EXPECT_FALSE(workers_.control_poller().add(socket));  // its first edge: writable
    added.set_value();
  });
  ASSERT_EQ(added.get_future().wait_for(10s), std::future_status::ready);
  std::this_thread::sleep_for(50ms);  // the flood goes on; the first edge was handed out meanwhile

  const auto written = std::chrono::steady_clock::now();
  ASSERT_EQ(::write(fds[1], "x", 1), 1);
  auto when = owner.at.get_future();
  const bool told = when.wait_for(2s) == std::future_status::ready;
  flooding = false;
  EXPECT_TRUE(told) << "the socket's edge waited for the flood to end";
  if (told) {
    EXPECT_LT(when.get() - written, 1s);
  }
  workers_.control().stop();
  EXPECT_EQ(control_.wait_for(10s), std::future_status::ready);
  ::close(fds[1]);
}

INSTANTIATE_TEST_SUITE_P(BusyPollMicroseconds, WorkersRun, ::testing::Values(0, 50, 2000));

}  // namespace
}  // namespace faultproxy
