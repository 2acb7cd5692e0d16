// Admission control (admission.h) and single-flight (single_flight.h) on their own, on a real event
// loop with short deadlines (bounds with generous margins for a loaded 2-core machine).
#include "user_service/admission.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <vector>

#include "testing/event_loop.h"
#include "user_service/single_flight.h"

namespace user_service {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using common::Clock;
using common::Deadline;

asio::awaitable<void> Sleep(Clock::duration d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
}

// Runs the loop until every one of `items` is done (5 s at most).
template <typename T>
bool AllDoneOn(asio::io_context& io, const std::vector<T>& items) {
  return testing_support::wait_for(
      io, [&] { return std::all_of(items.begin(), items.end(), [](const T& i) { return i.done; }); }, 5s);
}

class AdmissionTest : public ::testing::Test {
 protected:
  // Starts one request: it enters, holds its permit for `work`, and records its verdict and when.
  struct Request {
    Admission::Verdict verdict = Admission::timed_out;
    bool done = false;
    Clock::duration answered_after{};
  };
  void Start(Admission& a, Request& r, Clock::duration deadline, Clock::duration work) {
    asio::co_spawn(
        io_,
        [&a, &r, deadline, work]() -> asio::awaitable<void> {
          const auto t0 = Clock::now();
          Admission::Ticket t = co_await a.enter(Deadline::after(deadline));
          r.verdict = t.verdict;
          r.answered_after = Clock::now() - t0;
          if (t.verdict == Admission::admitted) co_await Sleep(work);
          r.done = true;
        },
        asio::detached);
  }
  bool AllDone(const std::vector<Request>& rs) { return AllDoneOn(io_, rs); }

  asio::io_context io_;
  // The loop must not stop when it runs out of work between two rounds of requests.
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
};

TEST_F(AdmissionTest, AdmitsUpToTheLimitQueuesUpToTheBoundAndShedsTheRestAtOnce) {
  Admission a(io_.get_executor(), 2, 3);
  std::vector<Request> rs(8);
  for (auto& r : rs)
    Start(a, r, 2s, 50ms);
  testing_support::settle(io_, 10ms);
  EXPECT_EQ(a.in_flight(), 2u);
  EXPECT_EQ(a.queued(), 3u);
  ASSERT_TRUE(AllDone(rs));
  int admitted = 0, shed = 0;
  for (const auto& r : rs) {
    if (r.verdict == Admission::admitted) ++admitted;
    if (r.verdict == Admission::shed_queue_full) {
      ++shed;
      EXPECT_LT(r.answered_after, 20ms);  // at once, not after waiting
    }
  }
  EXPECT_EQ(admitted, 5);
  EXPECT_EQ(shed, 3);
  EXPECT_EQ(a.in_flight(), 0u);
  EXPECT_EQ(a.queued(), 0u);
}

TEST_F(AdmissionTest, PermitsPassInArrivalOrder) {
  Admission a(io_.get_executor(), 1, 10);
  std::vector<Request> rs(4);
  for (auto& r : rs)
    Start(a, r, 2s, 20ms);
  ASSERT_TRUE(AllDone(rs));
  for (std::size_t i = 1; i < rs.size(); ++i) {
    EXPECT_EQ(rs[i].verdict, Admission::admitted);
    EXPECT_GT(rs[i].answered_after, rs[i - 1].answered_after);
  }
}

TEST_F(AdmissionTest, AQueuedRequestWaitsNoLongerThanItsDeadline) {
  Admission a(io_.get_executor(), 1, 10);
  std::vector<Request> rs(2);
  Start(a, rs[0], 2s, 400ms);
  Start(a, rs[1], 60ms, 0ms);
  ASSERT_TRUE(AllDone(rs));
  EXPECT_EQ(rs[1].verdict, Admission::timed_out);
  EXPECT_GE(rs[1].answered_after, 55ms);
  EXPECT_LT(rs[1].answered_after, 300ms);
  EXPECT_EQ(a.queued(), 0u);
}

TEST_F(AdmissionTest, ShedsAtOnceWhenTheWaitAtTheRecentPaceWouldNotFitTheDeadline) {
  Admission a(io_.get_executor(), 1, 100);
  // Teach it the pace: each piece of work holds its permit ~100 ms.
  std::vector<Request> warm(8);
  for (auto& r : warm)
    Start(a, r, 5s, 100ms);
  ASSERT_TRUE(AllDone(warm));
  EXPECT_GT(a.pace(), 50ms);
  // One in flight for 100 ms: a request with 150 ms of deadline does not fit behind three queued.
  std::vector<Request> rs(5);
  Start(a, rs[0], 5s, 300ms);
  for (int i = 1; i <= 3; ++i)
    Start(a, rs[i], 5s, 10ms);
  testing_support::settle(io_, 5ms);
  Start(a, rs[4], 150ms, 0ms);
  ASSERT_TRUE(AllDone(rs));
  EXPECT_EQ(rs[4].verdict, Admission::shed_too_slow);
  EXPECT_LT(rs[4].answered_after, 20ms);
  for (int i = 0; i <= 3; ++i)
    EXPECT_EQ(rs[i].verdict, Admission::admitted) << i;
}

TEST_F(AdmissionTest, AsThePaceIsMeasuredWaitersThatWouldMissTheirDeadlineAreShed) {
  Admission a(io_.get_executor(), 1, 10);
  std::vector<Request> rs(5);
  Start(a, rs[0], 5s, 200ms);  // no pace known yet: the others queue behind it
  for (int i = 1; i < 5; ++i)
    Start(a, rs[i], 500ms, 200ms);
  ASSERT_TRUE(AllDone(rs));
  // When the first gives its permit back (~200 ms), the pace says 200 ms a piece: the next one gets
  // the permit, and the others, whose turn would come after their deadline, are shed then.
  EXPECT_EQ(rs[0].verdict, Admission::admitted);
  EXPECT_EQ(rs[1].verdict, Admission::admitted);
  for (int i = 2; i < 5; ++i) {
    EXPECT_EQ(rs[i].verdict, Admission::shed_too_slow) << i;
    EXPECT_GE(rs[i].answered_after, 150ms) << i;
    EXPECT_LT(rs[i].answered_after, 450ms) << i;
  }
  EXPECT_EQ(a.queued(), 0u);
}

TEST_F(AdmissionTest, AReleasedPermitIsGivenBackOnce) {
  Admission a(io_.get_executor(), 1, 0);
  auto t = testing_support::run(io_, a.enter(Deadline::after(1s)));
  ASSERT_EQ(t.verdict, Admission::admitted);
  EXPECT_EQ(testing_support::run(io_, a.enter(Deadline::after(1s))).verdict, Admission::shed_queue_full);
  Admission::Permit moved = std::move(t.permit);
  EXPECT_FALSE(t.permit.held());
  t.permit.release();  // nothing: it moved
  EXPECT_EQ(a.in_flight(), 1u);
  moved.release();
  moved.release();
  EXPECT_EQ(a.in_flight(), 0u);
}

// ---- single-flight ----------------------------------------------------------------------------

class SingleFlightTest : public ::testing::Test {
 protected:
  struct Caller {
    std::optional<int> result;
    bool shared = false;
    bool done = false;
    Clock::duration answered_after{};
  };
  // A call that takes `took` and answers `answer` (counted in calls_).
  void Start(SingleFlight<int>& flights, Caller& c, Clock::duration deadline, Clock::duration took,
             int answer) {
    asio::co_spawn(
        io_,
        [this, &flights, &c, deadline, took, answer]() -> asio::awaitable<void> {
          const auto t0 = Clock::now();
          auto joined = co_await flights.run(
              "u-1", Deadline::after(deadline),
              [this, took, answer](Deadline d) -> asio::awaitable<int> {
                ++calls_;
                co_await Sleep(std::min(took, d.remaining()));
                co_return d.expired() ? -1 : answer;
              },
              [](int r) { return r >= 0; });
          c.result = joined.result;
          c.shared = joined.shared;
          c.answered_after = Clock::now() - t0;
          c.done = true;
        },
        asio::detached);
  }
  bool AllDone(const std::vector<Caller>& cs) { return AllDoneOn(io_, cs); }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  int calls_ = 0;
};

TEST_F(SingleFlightTest, ConcurrentCallersShareOneCall) {
  SingleFlight<int> flights(io_.get_executor());
  std::vector<Caller> cs(20);
  for (auto& c : cs)
    Start(flights, c, 2s, 50ms, 7);
  ASSERT_TRUE(AllDone(cs));
  EXPECT_EQ(calls_, 1);
  int shared = 0;
  for (const auto& c : cs) {
    EXPECT_EQ(c.result, 7);
    shared += c.shared ? 1 : 0;
  }
  EXPECT_EQ(shared, 19);
  EXPECT_EQ(flights.in_flight(), 0u);
  // Later callers make a call of their own.
  std::vector<Caller> later(1);
  Start(flights, later[0], 2s, 0ms, 8);
  ASSERT_TRUE(AllDone(later));
  EXPECT_EQ(later[0].result, 8);
  EXPECT_EQ(calls_, 2);
}

TEST_F(SingleFlightTest, EachWaiterIsBoundedByItsOwnDeadline) {
  SingleFlight<int> flights(io_.get_executor());
  std::vector<Caller> cs(2);
  Start(flights, cs[0], 2s, 400ms, 7);
  Start(flights, cs[1], 50ms, 0ms, 8);
  ASSERT_TRUE(AllDone(cs));
  EXPECT_EQ(cs[0].result, 7);
  EXPECT_FALSE(cs[1].result.has_value());
  EXPECT_LT(cs[1].answered_after, 300ms);
}

TEST_F(SingleFlightTest, AWaiterWithMoreTimeThanAFailedLeaderTriesAgain) {
  SingleFlight<int> flights(io_.get_executor());
  std::vector<Caller> cs(3);
  // The leader's deadline (30 ms) ends its 100 ms call: it fails. The two others have 2 s: they
  // share one more call, which succeeds.
  Start(flights, cs[0], 30ms, 100ms, 7);
  Start(flights, cs[1], 2s, 100ms, 7);
  Start(flights, cs[2], 2s, 100ms, 7);
  ASSERT_TRUE(AllDone(cs));
  EXPECT_EQ(cs[0].result, -1);
  EXPECT_EQ(cs[1].result, 7);
  EXPECT_EQ(cs[2].result, 7);
  EXPECT_EQ(calls_, 2);
}

TEST_F(SingleFlightTest, AForgottenCallIsNotShared) {
  SingleFlight<int> flights(io_.get_executor());
  std::vector<Caller> cs(2);
  Start(flights, cs[0], 2s, 50ms, 7);
  testing_support::settle(io_, 5ms);
  flights.forget("u-1");  // a write started
  Start(flights, cs[1], 2s, 50ms, 8);
  ASSERT_TRUE(AllDone(cs));
  EXPECT_EQ(cs[0].result, 7);
  EXPECT_EQ(cs[1].result, 8);
  EXPECT_FALSE(cs[1].shared);
  EXPECT_EQ(calls_, 2);
}

}  // namespace
}  // namespace user_service
