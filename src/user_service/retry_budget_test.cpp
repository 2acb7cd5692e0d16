// The retry budget's arithmetic, on a clock the test moves.
#include "user_service/retry_budget.h"

#include <gtest/gtest.h>

namespace user_service {
namespace {

using namespace std::chrono_literals;
using common::Clock;

// Spends every token there is at `now`; returns how many retries were allowed.
int Drain(RetryBudget& b, Clock::time_point now) {
  int n = 0;
  while (b.withdraw(now))
    ++n;
  return n;
}

TEST(RetryBudget, StartsFullWithTenSecondsOfThePerSecondAllowance) {
  RetryBudget b(10, 5);
  const auto t0 = Clock::now();
  EXPECT_EQ(b.capacity(), 50);
  EXPECT_EQ(Drain(b, t0), 50);
  EXPECT_FALSE(b.withdraw(t0));
}

TEST(RetryBudget, AllowsAboutTheGivenShareOfReads) {
  RetryBudget b(10, 0);  // no time allowance: only the share of reads
  const auto t0 = Clock::now();
  Drain(b, t0);
  // 1000 reads, every one failing and asking for a retry: about 100 are allowed, never more.
  int allowed = 0;
  for (int i = 0; i < 1000; ++i) {
    b.deposit(t0);
    if (b.withdraw(t0)) ++allowed;
  }
  EXPECT_GE(allowed, 99);
  EXPECT_LE(allowed, 100);
}

TEST(RetryBudget, AccruesThePerSecondAllowanceOverTime) {
  RetryBudget b(0, 5);
  const auto t0 = Clock::now();
  Drain(b, t0);
  EXPECT_FALSE(b.withdraw(t0 + 100ms));  // half a token
  EXPECT_EQ(Drain(b, t0 + 1s), 5);
  EXPECT_EQ(Drain(b, t0 + 1s + 400ms), 2);
  // Idle for a minute: at most the capacity, not 300.
  EXPECT_EQ(Drain(b, t0 + 61s), 50);
}

TEST(RetryBudget, AStormOfFailuresIsCutToTheBudget) {
  // 100 reads a second for 10 s, every one failing: retries stay within 10 % of the reads plus
  // 5 a second, after the initial bucket.
  RetryBudget b(10, 5);
  const auto t0 = Clock::now();
  int retries = 0;
  for (int i = 0; i < 1000; ++i) {
    const auto now = t0 + i * 10ms;
    b.deposit(now);
    if (b.withdraw(now)) ++retries;
  }
  EXPECT_LE(retries, 50 + 100 + 50 + 1);
  EXPECT_GE(retries, 150);
}

TEST(RetryBudget, WithNoAllowanceOnlyTheStartingTokenIsThere) {
  RetryBudget b(0, 0);
  const auto t0 = Clock::now();
  EXPECT_EQ(Drain(b, t0), 1);
  EXPECT_FALSE(b.withdraw(t0 + 1h));
}

}  // namespace
}  // namespace user_service
