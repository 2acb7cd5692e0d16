#include "user_service/replica_freshness.h"

#include <gtest/gtest.h>

namespace user_service {
namespace {

using namespace std::chrono_literals;

class ReplicaFreshnessTest : public ::testing::Test {
 protected:
  ReplicaFreshness fresh{1000ms};
  const Clock::time_point t0 = Clock::now();
};

TEST_F(ReplicaFreshnessTest, NothingKnownIsNotCurrent) {
  EXPECT_FALSE(fresh.current(t0));
  fresh.master_offset(100, t0);
  EXPECT_FALSE(fresh.current(t0));  // the replica was never seen
  fresh.forget();
  fresh.replica_offset(100);
  EXPECT_FALSE(fresh.current(t0));  // the master was never seen
}

TEST_F(ReplicaFreshnessTest, CurrentForMaxLagAfterTheMasterStateItHolds) {
  fresh.master_offset(100, t0);
  fresh.replica_offset(100);
  EXPECT_EQ(fresh.caught_up_with(), t0);
  EXPECT_TRUE(fresh.current(t0 + 1000ms));
  EXPECT_FALSE(fresh.current(t0 + 1001ms));
}

// The replica's sample may come before the master's: what counts is the offset it holds.
TEST_F(ReplicaFreshnessTest, AReplicaAheadOfALaterMasterSampleIsCaughtUpWithIt) {
  fresh.replica_offset(150);
  fresh.master_offset(150, t0 + 200ms);
  EXPECT_EQ(fresh.caught_up_with(), t0 + 200ms);
  fresh.master_offset(180, t0 + 400ms);  // writes the replica has not shown yet
  EXPECT_EQ(fresh.caught_up_with(), t0 + 200ms);
}

// A replica whose link is cut stops catching up: it is current only until max_lag after the last
// master state it showed, however often the master is sampled meanwhile.
TEST_F(ReplicaFreshnessTest, ALaggingReplicaStopsBeingCurrent) {
  fresh.master_offset(100, t0);
  fresh.replica_offset(100);
  for (int i = 1; i <= 10; ++i) {
    fresh.master_offset(100 + 10 * i, t0 + i * 200ms);
    fresh.replica_offset(105);  // stuck
  }
  EXPECT_EQ(fresh.caught_up_with(), t0);
  EXPECT_FALSE(fresh.current(t0 + 2000ms));
  // It catches up with the state of 1.2 s, not later ones.
  fresh.replica_offset(160);
  EXPECT_EQ(fresh.caught_up_with(), t0 + 1200ms);
  EXPECT_TRUE(fresh.current(t0 + 2100ms));
  EXPECT_FALSE(fresh.current(t0 + 2201ms));
  fresh.replica_offset(200);
  EXPECT_EQ(fresh.caught_up_with(), t0 + 2000ms);
}

// A master that stops answering (killed, stopped, cut off) leaves the replica current only for
// max_lag after its last sample the replica holds.
TEST_F(ReplicaFreshnessTest, AGoneMasterLeavesTheReplicaCurrentForMaxLag) {
  fresh.master_offset(100, t0);
  fresh.replica_offset(100);
  fresh.replica_offset(100);
  fresh.replica_offset(100);
  EXPECT_TRUE(fresh.current(t0 + 900ms));
  EXPECT_FALSE(fresh.current(t0 + 1100ms));
}

TEST_F(ReplicaFreshnessTest, AnOffsetGoingBackForgetsWhatItShowed) {
  fresh.master_offset(100, t0);
  fresh.replica_offset(100);
  fresh.replica_offset(20);  // resynchronised from scratch, or another node
  EXPECT_FALSE(fresh.current(t0 + 100ms));
  fresh.master_offset(120, t0 + 200ms);
  fresh.replica_offset(120);
  EXPECT_TRUE(fresh.current(t0 + 250ms));

  fresh.master_offset(10, t0 + 300ms);  // another history: the replica's 120 says nothing of it
  EXPECT_FALSE(fresh.current(t0 + 300ms));
}

TEST_F(ReplicaFreshnessTest, ForgetStartsOver) {
  fresh.master_offset(100, t0);
  fresh.replica_offset(100);
  fresh.forget();
  EXPECT_FALSE(fresh.current(t0));
  fresh.master_offset(100, t0 + 10ms);
  EXPECT_FALSE(fresh.current(t0 + 10ms));
  fresh.replica_offset(100);
  EXPECT_TRUE(fresh.current(t0 + 20ms));
}

// Memory stays bounded while the replica never catches up.
TEST_F(ReplicaFreshnessTest, SamplesAreBoundedWhileTheReplicaLags) {
  fresh.replica_offset(0);
  for (int i = 1; i <= 10'000; ++i)
    fresh.master_offset(static_cast<std::uint64_t>(i), t0 + i * 1ms);
  fresh.replica_offset(10'000);
  EXPECT_EQ(fresh.caught_up_with(), t0 + 10'000ms);
}

}  // namespace
}  // namespace user_service
