#include "user_service/admission.h"

#include <algorithm>

namespace user_service {

using common::Clock;

Admission::Permit& Admission::Permit::operator=(Permit&& other) noexcept {
  if (this != &other) {
    release();
    owner_ = other.owner_;
    since_ = other.since_;
    other.owner_ = nullptr;
  }
  return *this;
}

void Admission::Permit::release() {
  if (owner_ == nullptr) return;
  Admission* owner = owner_;
  owner_ = nullptr;
  owner->give_back(since_);
}

Admission::Admission(boost::asio::any_io_executor executor, std::uint32_t limit, std::uint32_t max_queued)
    : executor_(std::move(executor)), limit_(std::max<std::uint32_t>(limit, 1)), max_queued_(max_queued) {}

boost::asio::awaitable<Admission::Ticket> Admission::enter(common::Deadline deadline) {
  Ticket ticket;
  if (in_flight_ < limit_ && queue_.empty()) {
    ++in_flight_;
    ticket.verdict = admitted;
    ticket.permit = Permit(this, Clock::now());
    co_return ticket;
  }
  if (queue_.size() >= max_queued_) {
    ticket.verdict = shed_queue_full;
    co_return ticket;
  }
  if (!fits(queue_.size(), deadline)) {
    ticket.verdict = shed_too_slow;
    co_return ticket;
  }
  Waiter waiter(executor_, deadline);
  queue_.push_back(&waiter);
  co_await waiter.parked.wait(deadline);
  if (!waiter.parked.woken()) std::erase(queue_, &waiter);
  // Woken: give_back() took it off the queue, handing it the permit (in_flight_ unchanged) or shedding it.
  ticket.verdict = waiter.verdict;
  if (ticket.verdict == admitted && deadline.expired()) {
    // Handed the permit as its deadline passed (the loop was busy): of no use to it, so on to the
    // next, without counting as work done.
    pass_on();
    ticket.verdict = timed_out;
  }
  if (ticket.verdict == admitted) ticket.permit = Permit(this, Clock::now());
  co_return ticket;
}

// Ahead of it: `ahead` waiting, then the work in flight; `limit_` pieces of work proceed at once.
bool Admission::fits(std::size_t ahead, common::Deadline deadline) const {
  const auto rounds = static_cast<Clock::rep>(ahead / limit_ + 1);
  return pace_ * rounds + pace_ <= deadline.remaining();
}

void Admission::give_back(Clock::time_point since) {
  const auto held = Clock::now() - since;
  // Believed quickly when the work gets faster (a recovered dependency), slowly when it gets slower.
  pace_ = !paced_ ? held : held < pace_ ? pace_ + (held - pace_) * 3 / 4 : pace_ + (held - pace_) / 4;
  paced_ = true;
  pass_on();
}

void Admission::pass_on() {
  // Those waiting whose turn, at the pace now measured, would come too late are shed now; the
  // permit goes to the first that fits (so none is admitted only to miss its deadline in the call).
  std::size_t kept = 0;
  for (auto it = queue_.begin(); it != queue_.end();) {
    Waiter* w = *it;
    // The first kept gets the permit now: only its own work must fit. The others wait behind it.
    if (kept == 0 ? pace_ <= w->deadline.remaining() : fits(kept - 1, w->deadline)) {
      ++it;
      ++kept;
      continue;
    }
    it = queue_.erase(it);
    w->verdict = w->deadline.expired() ? timed_out : shed_too_slow;  // its timer has yet to run
    w->parked.wake();
  }
  if (queue_.empty()) {
    --in_flight_;
    return;
  }
  Waiter* next = queue_.front();
  queue_.pop_front();
  next->verdict = admitted;
  next->parked.wake();  // the permit passes to it (in_flight_ unchanged)
}

}  // namespace user_service
