// Drives a test's io_context from the test's own thread: runs one coroutine to completion, or the
// loop until a condition holds, while everything else spawned on it (probers, background loops)
// runs too. One implementation for every test fixture.
//
// Usage:
//   boost::asio::io_context io;
//   auto r = testing_support::run(io, cache.get(CacheNode::master, "u-1", deadline));
//   ASSERT_TRUE(testing_support::wait_for(io, [&] { return service.ready(); }, 2s));
//   testing_support::settle(io, 50ms);   // let background work run for a while
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <functional>
#include <future>
#include <utility>

namespace testing_support {

// The coroutine's result (its exception rethrown), once it has completed.
template <typename T>
T run(boost::asio::io_context& io, boost::asio::awaitable<T> a) {
  auto f = boost::asio::co_spawn(io, std::move(a), boost::asio::use_future);
  while (f.wait_for(std::chrono::seconds(0)) != std::future_status::ready)
    io.run_one_for(std::chrono::milliseconds(10));
  return f.get();
}

// Runs the loop until `cond` holds; false if it did not within `limit`.
inline bool wait_for(boost::asio::io_context& io, const std::function<bool()>& cond,
                     std::chrono::steady_clock::duration limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > end) return false;
    io.run_one_for(std::chrono::milliseconds(5));
  }
  return true;
}

// Runs the loop for `d`.
inline void settle(boost::asio::io_context& io, std::chrono::steady_clock::duration d) {
  const auto end = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < end)
    io.run_one_for(std::chrono::milliseconds(5));
}

}  // namespace testing_support
