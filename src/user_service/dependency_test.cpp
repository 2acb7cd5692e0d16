#include "user_service/dependency.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>

#include "common/log.h"

namespace user_service {
namespace {

using namespace std::chrono_literals;

TEST(Dependency, AnotherServerInTheRoleClosesTheBreaker) {
  Dependency d("mysql", 2, 250ms);
  d.record_failure(Failure::unavailable, "refused");
  d.record_failure(Failure::unavailable, "refused");
  ASSERT_FALSE(d.allow());
  d.server_changed("127.0.0.1:3307");
  EXPECT_TRUE(d.allow());
  EXPECT_EQ(d.consecutive_failures(), 0u);
  EXPECT_EQ(d.state(), DepState::up);
}

TEST(Dependency, FastFailuresAllowOneHalfOpenTrialAtATime) {
  Dependency d("mysql", 2, 250ms);
  EXPECT_FALSE(d.trial_allowed());  // closed: calls are made anyway
  d.record_failure(Failure::unavailable, "Connection refused", 1ms);
  d.record_failure(Failure::unavailable, "Connection refused", 1ms);
  ASSERT_TRUE(d.breaker_open());
  EXPECT_FALSE(d.allow());
  ASSERT_TRUE(d.trial_allowed());
  d.begin_trial();
  EXPECT_FALSE(d.trial_allowed());                                    // one at a time
  d.record_failure(Failure::unavailable, "Connection refused", 1ms);  // still down
  d.end_trial();
  EXPECT_TRUE(d.trial_allowed());
  d.begin_trial();
  d.record_success(2ms);  // back
  d.end_trial();
  EXPECT_TRUE(d.allow());
  EXPECT_FALSE(d.trial_allowed());
}

TEST(Dependency, SlowFailuresWaitForTheProbe) {
  Dependency d("mysql", 2, 250ms);
  d.record_failure(Failure::timeout, "deadline exceeded", 250ms);
  d.record_failure(Failure::timeout, "deadline exceeded", 250ms);
  ASSERT_TRUE(d.breaker_open());
  EXPECT_FALSE(d.trial_allowed());
  // An "unavailable" that took longer than slow_threshold (a connection lost after a long wait) is
  // slow too, and so is one whose duration is not known.
  d.record_failure(Failure::unavailable, "connection lost", 300ms);
  EXPECT_FALSE(d.trial_allowed());
  d.record_failure(Failure::unavailable, "connection lost");
  EXPECT_FALSE(d.trial_allowed());
  // The latest failure decides: a refusal after the timeouts makes trials possible again, and a
  // timeout after that stops them.
  d.record_failure(Failure::unavailable, "Connection refused", 1ms);
  EXPECT_TRUE(d.trial_allowed());
  d.record_failure(Failure::timeout, "deadline exceeded", 250ms);
  EXPECT_FALSE(d.trial_allowed());
  // Rejected calls say nothing about the server's reachability.
  d.record_failure(Failure::rejected, "Data too long", 1ms);
  EXPECT_FALSE(d.trial_allowed());
}

TEST(Dependency, NoTrialBeforeInitialisation) {
  Dependency d("mysql", 1, 250ms, /*initialised=*/false);
  d.record_failure(Failure::unavailable, "Connection refused", 1ms);
  EXPECT_TRUE(d.breaker_open());
  EXPECT_FALSE(d.trial_allowed());
}

TEST(Dependency, OpensAfterConsecutiveFailuresAndClosesOnSuccess) {
  Dependency d("mysql", 3, 250ms);
  EXPECT_TRUE(d.allow());
  EXPECT_EQ(d.state(), DepState::up);
  EXPECT_FALSE(d.record_failure(Failure::timeout, "deadline exceeded"));
  EXPECT_EQ(d.state(), DepState::degraded);
  d.record_success(1ms);  // resets the count
  EXPECT_EQ(d.state(), DepState::up);
  EXPECT_FALSE(d.record_failure(Failure::timeout, "t"));
  EXPECT_FALSE(d.record_failure(Failure::unavailable, "refused"));
  EXPECT_TRUE(d.allow());
  EXPECT_TRUE(d.record_failure(Failure::timeout, "t"));
  EXPECT_FALSE(d.allow());
  EXPECT_EQ(d.state(), DepState::down);
  EXPECT_EQ(d.breaker_openings(), 1u);
  EXPECT_FALSE(d.record_failure(Failure::timeout, "t"));  // already open
  d.record_success(1ms);                                  // the probe succeeded
  EXPECT_TRUE(d.allow());
  EXPECT_EQ(d.state(), DepState::up);
}

TEST(Dependency, RejectedCallsDoNotCount) {
  Dependency d("mysql", 1, 250ms);
  d.record_failure(Failure::rejected, "Data too long");
  EXPECT_TRUE(d.allow());
  EXPECT_EQ(d.last_error(), "Data too long");
}

TEST(Dependency, SlowSuccessIsDegraded) {
  Dependency d("redis-master", 3, 50ms);
  d.record_success(80ms);
  EXPECT_EQ(d.state(), DepState::degraded);
  EXPECT_TRUE(d.allow());
  d.record_success(1ms);
  EXPECT_EQ(d.state(), DepState::up);
}

TEST(Dependency, NotInitialisedIsDownAndRefusesCalls) {
  Dependency d("mysql", 3, 250ms, false);
  EXPECT_FALSE(d.allow());
  EXPECT_EQ(d.state(), DepState::down);
  d.set_initialised(true);
  EXPECT_TRUE(d.allow());
  EXPECT_EQ(d.state(), DepState::up);
}

TEST(Dependency, JsonNamesStateSinceAndLastError) {
  Dependency d("mysql", 1, 250ms);
  d.record_failure(Failure::unavailable, "Can't connect \"x\"");
  const std::string j = d.to_json();
  EXPECT_NE(j.find("\"state\":\"down\""), std::string::npos) << j;
  EXPECT_NE(j.find("\"breaker\":\"open\""), std::string::npos) << j;
  EXPECT_NE(j.find("\"last_error\":\"Can't connect \\\"x\\\"\""), std::string::npos) << j;
  EXPECT_NE(j.find("\"since\":\"20"), std::string::npos) << j;
  EXPECT_EQ(iso8601(std::chrono::system_clock::time_point(std::chrono::milliseconds(1'700'000'000'123))),
            "2023-11-14T22:13:20.123Z");
}

}  // namespace
}  // namespace user_service

namespace user_service {
namespace {

int Count(const std::string& text, const std::string& what) {
  int n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
    ++n;
  return n;
}

// A dependency flapping between failing and answering writes one breaker line a second, not one per
// change, and the next line says how many it did not write; up <-> degraded is not logged at info.
TEST(Dependency, FlappingIsLoggedAtMostOnceASecond) {
  common::log::set_level(common::log::Level::info);
  Dependency d("redis-master", 1, std::chrono::milliseconds(250));
  ::testing::internal::CaptureStderr();
  for (int i = 0; i < 10; ++i) {
    d.record_failure(Failure::unavailable, "connection refused");
    d.record_success(std::chrono::milliseconds(1));
  }
  std::string out = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(Count(out, "circuit breaker"), 1) << out;
  EXPECT_EQ(Count(out, "dependency state changed"), 0) << out;

  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  ::testing::internal::CaptureStderr();
  d.record_failure(Failure::unavailable, "connection refused");
  out = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(Count(out, "circuit breaker opened"), 1) << out;
  EXPECT_EQ(Count(out, "\"changes_not_logged\":19"), 1) << out;

  Dependency slow("mysql", 3, std::chrono::milliseconds(10));
  ::testing::internal::CaptureStderr();
  slow.record_success(std::chrono::milliseconds(50));  // degraded
  slow.record_success(std::chrono::milliseconds(1));   // up
  out = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(out, "");
}

}  // namespace
}  // namespace user_service
