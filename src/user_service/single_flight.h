// Single-flight: concurrent callers asking for the same key share one call. The first caller (the
// leader) makes it with its own deadline; the others wait for its result, each within its own
// deadline (a caller whose deadline passes first gets nothing and says so). A result the caller does
// not accept (`accept`: a failure, say) is not taken by a caller whose deadline is later than the
// leader's: it tries again, sharing a new call with the others in the same case, so a client that
// sent a short deadline never fails requests that had more time.
//
// forget(key) detaches a call in flight: later callers start a new one. The service calls it when a
// write of the key starts, so a read that arrives after a write was acknowledged never shares a call
// that started before the write.
//
// Single-threaded (the service's event loop).
//
// Usage:
//   SingleFlight<ReadResult> reads(executor);
//   auto joined = co_await reads.run(id, deadline, [&](Deadline d) { return read(id, d); },
//                                    [](const ReadResult& r) { return r.ok(); });
//   if (!joined.result) ...the deadline passed while waiting...;  joined.shared: another's call
#pragma once

#include <algorithm>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/deadline.h"
#include "user_service/parked.h"

namespace user_service {

template <typename T>
class SingleFlight {
 public:
  struct Joined {
    std::optional<T> result;  // none: the caller's deadline passed while it waited
    bool shared = false;      // the result of another caller's call
  };

  explicit SingleFlight(boost::asio::any_io_executor executor) : executor_(std::move(executor)) {}
  SingleFlight(const SingleFlight&) = delete;
  SingleFlight& operator=(const SingleFlight&) = delete;

  // `fn(deadline)` returns an awaitable of T; `accept(const T&)` says whether a waiter with more
  // time than the leader takes a result.
  template <typename Fn, typename Accept>
  boost::asio::awaitable<Joined> run(std::string_view key, common::Deadline deadline, Fn fn, Accept accept) {
    for (;;) {
      const auto it = flights_.find(key);
      if (it == flights_.end()) {
        auto flight = std::make_shared<Flight>(deadline);
        flights_.emplace(std::string(key), flight);
        const Landing landing(*this, std::string(key), flight);
        T result = co_await fn(deadline);
        flight->result = result;
        co_return Joined{std::move(result), false};
      }
      const std::shared_ptr<Flight> flight = it->second;
      Parked parked(executor_);
      flight->waiters.push_back(&parked);
      co_await parked.wait(deadline);
      std::erase(flight->waiters, &parked);
      if (flight->result) {
        if (accept(*flight->result) || !(flight->deadline < deadline)) co_return Joined{flight->result, true};
      } else if (!flight->ended || deadline.expired()) {
        co_return Joined{};  // the deadline passed first
      }
      // The leader failed (or ended without a result) within its shorter deadline: try again.
    }
  }

  // Later callers of `key` start a new call (the one in flight still answers its own callers).
  void forget(std::string_view key) {
    if (const auto it = flights_.find(key); it != flights_.end()) flights_.erase(it);
  }
  std::size_t in_flight() const { return flights_.size(); }

 private:
  struct Flight {
    explicit Flight(common::Deadline d) : deadline(d) {}
    common::Deadline deadline;  // the leader's
    std::optional<T> result;
    bool ended = false;
    std::vector<Parked*> waiters;
  };
  // The leader's landing, however its call ends: the key is free again and every waiter woken.
  class Landing {
   public:
    Landing(SingleFlight& owner, std::string key, std::shared_ptr<Flight> flight)
        : owner_(owner), key_(std::move(key)), flight_(std::move(flight)) {}
    ~Landing() {
      flight_->ended = true;
      if (const auto it = owner_.flights_.find(key_); it != owner_.flights_.end() && it->second == flight_)
        owner_.flights_.erase(it);
      for (Parked* p : flight_->waiters)
        p->wake();
    }
    Landing(const Landing&) = delete;
    Landing& operator=(const Landing&) = delete;

   private:
    SingleFlight& owner_;
    std::string key_;
    std::shared_ptr<Flight> flight_;
  };

  boost::asio::any_io_executor executor_;
  std::map<std::string, std::shared_ptr<Flight>, std::less<>> flights_;
};

}  // namespace user_service
