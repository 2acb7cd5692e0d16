// A retry budget: a token bucket that bounds how many reads are retried, so that a sick dependency
// is never hit by a retry storm (every failing read retried multiplies its load just when it can
// least take it). Each read deposits `percent`/100 of a token, and `per_second` tokens accrue over
// time; a retry withdraws one whole token and is denied when there is none. The bucket holds at most
// ten seconds of the per-second allowance (at least one token), and starts full. So retries stay
// within about `percent` % of the reads plus `per_second` a second, however many reads fail.
//
// Single-threaded (the service's event loop); the clock is passed in, for tests.
//
// Usage:
//   RetryBudget budget(10, 5);
//   budget.deposit(Clock::now());                           // every read
//   if (failed && budget.withdraw(Clock::now())) retry();   // else: answer with the failure
#pragma once

#include <cstdint>

#include "common/deadline.h"

namespace user_service {

class RetryBudget {
 public:
  RetryBudget(std::uint32_t percent, std::uint32_t per_second);

  void deposit(common::Clock::time_point now);
  // True (and one token spent) when a retry may be made now.
  bool withdraw(common::Clock::time_point now);
  double tokens(common::Clock::time_point now);
  double capacity() const { return capacity_; }

 private:
  void accrue(common::Clock::time_point now);

  double per_read_;
  double per_second_;
  double capacity_;
  double tokens_;
  common::Clock::time_point last_{};
  bool started_ = false;
};

}  // namespace user_service
