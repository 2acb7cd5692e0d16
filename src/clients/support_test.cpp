#include "clients/support.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <stdexcept>

namespace clients {
namespace {

using namespace std::chrono_literals;

TEST(Backoff, GrowsExponentiallyWithinJitterBoundsAndCaps) {
  Backoff b({.initial = 20ms, .max = 300ms, .multiplier = 2.0, .jitter = 0.5}, 42);
  const double bases[] = {20, 40, 80, 160, 300, 300, 300, 300};
  for (double base : bases) {
    const auto d = b.next().count();
    EXPECT_GE(d, static_cast<long>(base * 0.5) - 1) << "base " << base;
    EXPECT_LE(d, static_cast<long>(base) + 1) << "base " << base;
  }
  EXPECT_EQ(b.failures(), 8u);
}

TEST(Backoff, ResetStartsOverFromInitial) {
  Backoff b({.initial = 10ms, .max = 1000ms, .multiplier = 3.0, .jitter = 0.0}, 1);
  EXPECT_EQ(b.next(), 10ms);
  EXPECT_EQ(b.next(), 30ms);
  EXPECT_EQ(b.next(), 90ms);
  b.reset();
  EXPECT_EQ(b.failures(), 0u);
  EXPECT_EQ(b.next(), 10ms);
}

TEST(Backoff, RefusedAttemptsStayAtInitialAndTimeoutsGrow) {
  Backoff b({.initial = 10ms, .max = 1000ms, .multiplier = 2.0, .jitter = 0.0}, 1);
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(b.next(AttemptError::refused), 10ms) << "attempt " << i;
  EXPECT_EQ(b.next(AttemptError::slow), 10ms);
  EXPECT_EQ(b.next(AttemptError::slow), 20ms);
  EXPECT_EQ(b.next(AttemptError::slow), 40ms);
  // Refused again: the host answers, so it is worth asking soon whatever came before.
  EXPECT_EQ(b.next(AttemptError::refused), 10ms);
  EXPECT_EQ(b.failures(), 0u);
  EXPECT_EQ(b.next(AttemptError::slow), 10ms);
  EXPECT_EQ(b.next(AttemptError::slow), 20ms);
}

TEST(Backoff, RefusedTextRecognisesTheHostAnswering) {
  EXPECT_TRUE(refused_text("connect failed: Connection refused"));
  EXPECT_TRUE(refused_text("connection lost: Connection reset by peer"));
  EXPECT_TRUE(refused_text("Server closed the connection"));
  EXPECT_FALSE(refused_text("connect timeout after 200 ms"));
  EXPECT_FALSE(refused_text("no reply for 500 ms: connection stalled"));
  EXPECT_FALSE(refused_text("handshake AUTH failed: WRONGPASS invalid username-password pair"));
  EXPECT_FALSE(refused_text(""));
}

TEST(Backoff, NoJitterIsDeterministicAndFullJitterSpreads) {
  Backoff fixed({.initial = 50ms, .max = 50ms, .multiplier = 1.0, .jitter = 0.0}, 7);
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(fixed.next(), 50ms);

  // Jitter spreads clients apart: 1000 draws at the cap cover most of [max/2, max].
  Backoff spread({.initial = 400ms, .max = 400ms, .multiplier = 2.0, .jitter = 0.5}, 99);
  long lo = 1'000'000, hi = 0;
  double sum = 0;
  for (int i = 0; i < 1000; ++i) {
    const long d = spread.next().count();
    lo = std::min(lo, d);
    hi = std::max(hi, d);
    sum += static_cast<double>(d);
  }
  EXPECT_GE(lo, 200);
  EXPECT_LE(hi, 400);
  EXPECT_LT(lo, 215);
  EXPECT_GT(hi, 385);
  EXPECT_NEAR(sum / 1000.0, 300.0, 15.0);
}

TEST(Backoff, DifferentSeedsGiveDifferentSequences) {
  Backoff a({}, 1), b({}, 2);
  bool differ = false;
  for (int i = 0; i < 10; ++i)
    differ = differ || a.next() != b.next();
  EXPECT_TRUE(differ);
}

TEST(Backoff, ManyFailuresNeverOverflow) {
  Backoff b({.initial = 1ms, .max = 500ms, .multiplier = 10.0, .jitter = 0.0}, 3);
  for (int i = 0; i < 5000; ++i)
    EXPECT_LE(b.next(), 500ms);
  EXPECT_EQ(b.next(), 500ms);
}

TEST(BackoffPolicy, RejectsNonsense) {
  EXPECT_THROW((BackoffPolicy{.initial = 0ms}.validate()), std::invalid_argument);
  EXPECT_THROW((BackoffPolicy{.initial = 100ms, .max = 50ms}.validate()), std::invalid_argument);
  EXPECT_THROW((BackoffPolicy{.multiplier = 0.5}.validate()), std::invalid_argument);
  EXPECT_THROW((BackoffPolicy{.jitter = 1.5}.validate()), std::invalid_argument);
  EXPECT_THROW((BackoffPolicy{.jitter = -0.1}.validate()), std::invalid_argument);
  EXPECT_NO_THROW(BackoffPolicy{}.validate());
}

TEST(Deadline, FromDurationAndTimePoint) {
  const auto before = Clock::now();
  Deadline d(100ms);
  EXPECT_GE(d.at(), before + 100ms);
  EXPECT_FALSE(d.expired());
  EXPECT_LE(d.remaining(), 100ms);
  Deadline past(Clock::now() - 1ms);
  EXPECT_TRUE(past.expired());
  EXPECT_EQ(past.remaining(), Clock::duration::zero());
  EXPECT_EQ(min(d, past).at(), past.at());
  Deadline zero(0ms);
  EXPECT_TRUE(zero.expired());
}

TEST(IgnoreSigpipe, SetsIgnoreWhenDefault) {
  ignore_sigpipe();
  struct sigaction current {};
  ASSERT_EQ(::sigaction(SIGPIPE, nullptr, &current), 0);
  EXPECT_EQ(current.sa_handler, SIG_IGN);
}

}  // namespace
}  // namespace clients
