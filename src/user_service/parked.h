// A coroutine parked until another one wakes it or its deadline passes: how a request waits for a
// shared read (single_flight.h) or for MariaDB capacity (admission.h) without ever waiting past its
// own deadline. Single-threaded: wait() and wake() run on the same executor.
//
// Usage:
//   Parked parked(executor);
//   waiters.push_back(&parked);                      // the waker calls parked->wake()
//   const bool woken = co_await parked.wait(deadline);
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/deadline.h"

namespace user_service {

class Parked {
 public:
  explicit Parked(boost::asio::any_io_executor executor) : timer_(std::move(executor)) {}
  Parked(const Parked&) = delete;
  Parked& operator=(const Parked&) = delete;

  // True when woken, false when the deadline passed first (at once if it already has).
  boost::asio::awaitable<bool> wait(common::Deadline deadline) {
    if (woken_) co_return true;
    timer_.expires_at(deadline.at());
    co_await timer_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    co_return woken_;
  }
  void wake() {
    woken_ = true;
    timer_.cancel();
  }
  bool woken() const { return woken_; }

 private:
  boost::asio::steady_timer timer_;
  bool woken_ = false;
};

}  // namespace user_service
