// Whether the Redis replica can serve a read the master cannot: only while it provably holds
// everything the master held at most `max_lag` ago (the cross-instance staleness contract, 1 s).
//
// Redis replication is asynchronous and says nothing about lag on a read. The probes sample both
// nodes' replication offsets (ROLE, every probe interval): once the replica reports an offset at least
// the master's offset of some sample, it holds every write the master had acknowledged then. So a
// replica read is at most `now - that sample's time` stale. A replica whose link is cut or slow (a
// fault between the nodes, or in front of the master that other instances can still write through)
// stops catching up, and once the last sample it caught up with is older than `max_lag`, reads go to
// MariaDB. A master gone for longer than `max_lag` sends reads to MariaDB too: nothing shows any more
// what the replica lacks.
//
// Offsets are only comparable within one replication history: forget() when either node changes.
// Single-threaded (the service's event loop).
//
// Usage:
//   ReplicaFreshness fresh(std::chrono::milliseconds(1000));
//   fresh.master_offset(5000, t0);       // the master's probe
//   fresh.replica_offset(5000);          // the replica's probe: caught up with t0's state
//   fresh.current(t0 + 500ms);           // true: at most 500 ms behind
//   fresh.current(t0 + 1500ms);          // false: nothing newer shows it caught up
#pragma once

#include <cstdint>
#include <deque>
#include <optional>

#include "user_service/ports.h"

namespace user_service {

class ReplicaFreshness {
 public:
  explicit ReplicaFreshness(Clock::duration max_lag) : max_lag_(max_lag) {}

  void master_offset(std::uint64_t offset, Clock::time_point at);
  // The replica's probe: when it was taken does not matter, only what the replica holds.
  void replica_offset(std::uint64_t offset);
  // Either node changed (a failover, another replica): earlier samples say nothing about it.
  void forget();

  bool current(Clock::time_point now) const { return caught_up_ && now - *caught_up_ <= max_lag_; }
  // When the master's state the replica is known to hold was sampled (for /health/ready and tests).
  std::optional<Clock::time_point> caught_up_with() const { return caught_up_; }

 private:
  struct Sample {
    std::uint64_t offset;
    Clock::time_point at;
  };
  Clock::duration max_lag_;
  std::deque<Sample> master_;  // increasing in time and offset; those the replica passed are dropped
  std::optional<std::uint64_t> last_master_;
  std::optional<std::uint64_t> replica_;
  std::optional<Clock::time_point> caught_up_;
};

}  // namespace user_service
