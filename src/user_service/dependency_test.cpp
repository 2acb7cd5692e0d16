#include "user_service/dependency.h"

#include <gtest/gtest.h>

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
