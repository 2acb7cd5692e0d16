// common::Deadline: the one deadline type of every program. A point on the steady clock by which an
// operation must complete; deadlines are passed down, never recomputed from scratch: a dependency
// call's deadline is the request's, shortened to the call's own budget.
//
// It converts implicitly from a duration ("100 ms from now") or a time point, so a caller passes
// whichever is convenient:
//   const common::Deadline request = common::Deadline::after(1000ms);
//   co_await redis.command(args, request.at_most(100ms));   // the earlier of the two
//   co_await redis.command(args, 100ms);
//   if (request.expired()) ...; request.remaining();
#pragma once

#include <chrono>

namespace common {

using Clock = std::chrono::steady_clock;

class Deadline {
 public:
  // "d from now"; negative or zero durations are already expired.
  template <typename Rep, typename Period>
  Deadline(std::chrono::duration<Rep, Period> d)  // NOLINT: implicit on purpose
      : at_(Clock::now() + std::chrono::duration_cast<Clock::duration>(d)) {}
  Deadline(Clock::time_point at) : at_(at) {}  // NOLINT: implicit on purpose

  static Deadline after(Clock::duration d) { return Deadline(Clock::now() + d); }

  Clock::time_point at() const { return at_; }
  bool expired() const { return Clock::now() >= at_; }
  // As of `now`, a time the caller already read (one clock read fewer on a hot path).
  bool expired(Clock::time_point now) const { return now >= at_; }
  // Time left, zero once expired.
  Clock::duration remaining() const {
    const auto left = at_ - Clock::now();
    return left > Clock::duration::zero() ? left : Clock::duration::zero();
  }
  // The earlier of this deadline and `other`.
  Deadline at_most(Deadline other) const { return other.at_ < at_ ? other : *this; }

  friend bool operator<(const Deadline& a, const Deadline& b) { return a.at_ < b.at_; }
  friend bool operator==(const Deadline& a, const Deadline& b) = default;
  friend Deadline min(const Deadline& a, const Deadline& b) { return b < a ? b : a; }

 private:
  Clock::time_point at_;
};

}  // namespace common
