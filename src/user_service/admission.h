// Admission control: a bound on concurrent work for one dependency (MariaDB) and on the requests
// waiting for it. At most `limit` requests hold a permit at once; up to `max_queued` more wait for
// one, first come first served, each within its own deadline. A request is shed (refused at once,
// without calling the dependency) when the queue is full, or when the wait its place in the queue
// implies at the recent pace of the work (a moving average of how long permits are held: its first
// value the first hold, then weight 1/4 as it rises and 3/4 as it falls, so a recovered dependency is
// believed quickly), plus one more such piece of work, would not fit in its deadline:
// queueing it would only turn into a deadline miss that also holds up the requests behind it. As the
// pace changes (each permit given back), waiting requests that no longer fit are shed too, and a
// permit given back goes to the first waiting request whose own work still fits its deadline.
//
// Single-threaded (the service's event loop).
//
// Usage:
//   Admission mysql_work(executor, 4, 64);
//   Admission::Ticket t = co_await mysql_work.enter(deadline);
//   if (t.verdict != Admission::admitted) ...503 (shed) or the deadline passed while queued...;
//   ...the MariaDB calls...; t.permit.release();      // or when the ticket goes out of scope
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <deque>

#include "common/deadline.h"
#include "user_service/parked.h"

namespace user_service {

class Admission {
 public:
  enum Verdict {
    admitted,
    shed_queue_full,  // max_queued requests were waiting already
    shed_too_slow,    // the expected wait would not leave time to do the work within the deadline
    timed_out,        // queued, and the deadline passed before a permit was free
  };

  // The right to do the work: given back when released or destroyed (then the first waiter gets it).
  class Permit {
   public:
    Permit() = default;
    Permit(Permit&& other) noexcept : owner_(other.owner_), since_(other.since_) { other.owner_ = nullptr; }
    Permit& operator=(Permit&& other) noexcept;
    Permit(const Permit&) = delete;
    Permit& operator=(const Permit&) = delete;
    ~Permit() { release(); }
    void release();
    bool held() const { return owner_ != nullptr; }

   private:
    friend class Admission;
    Permit(Admission* owner, common::Clock::time_point since) : owner_(owner), since_(since) {}
    Admission* owner_ = nullptr;
    common::Clock::time_point since_{};
  };

  struct Ticket {
    Verdict verdict = timed_out;
    Permit permit;  // held when admitted
  };

  Admission(boost::asio::any_io_executor executor, std::uint32_t limit, std::uint32_t max_queued);
  Admission(const Admission&) = delete;
  Admission& operator=(const Admission&) = delete;

  boost::asio::awaitable<Ticket> enter(common::Deadline deadline);

  std::uint32_t limit() const { return limit_; }
  std::uint32_t max_queued() const { return max_queued_; }
  std::uint32_t in_flight() const { return in_flight_; }
  std::size_t queued() const { return queue_.size(); }
  // The moving average of how long a permit is held (zero before the first release).
  common::Clock::duration pace() const { return pace_; }

 private:
  struct Waiter {
    Waiter(boost::asio::any_io_executor ex, common::Deadline d) : parked(std::move(ex)), deadline(d) {}
    Parked parked;
    common::Deadline deadline;
    Verdict verdict = timed_out;  // when woken: admitted (the permit was handed to it) or shed
  };
  // Whether work entering after `ahead` waiting requests fits `deadline` at the current pace.
  bool fits(std::size_t ahead, common::Deadline deadline) const;
  void give_back(common::Clock::time_point since);
  // A permit is free: sheds the waiting requests that no longer fit, hands it to the first that does.
  void pass_on();

  boost::asio::any_io_executor executor_;
  std::uint32_t limit_;
  std::uint32_t max_queued_;
  std::uint32_t in_flight_ = 0;
  std::deque<Waiter*> queue_;
  common::Clock::duration pace_{};
  bool paced_ = false;  // pace_ holds a measurement
};

}  // namespace user_service
