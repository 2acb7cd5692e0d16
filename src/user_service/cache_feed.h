// The cache feed: every change committed to MariaDB, read from its binlog (ChangeSource), applied to
// the Redis master by the same versioned compare-and-set as every other cache update, by one instance
// at a time. It is what makes the cache guarantee hold across instances and crashes: a write whose
// own cache update failed (its instance partitioned from the master, or killed with `kill -9` before
// its repair queue drained) still reaches the cache, from the binlog, within the feed's lag.
//
// One instance at a time: a lease on the Redis master (a key holding the owner, with a TTL, renewed
// every ttl/4; cache_port.take_lease). The lease lives where the feed writes, so the holder is always
// an instance that reaches the master; a holder that cannot renew it stops feeding, and another takes
// over once the TTL ends, resuming from the position the feed stores beside the lease after each
// applied batch (the binlog's GTID position). Exclusivity is for economy, not correctness: two
// instances feeding at once (a lease lost in a Redis failover) apply the same idempotent
// compare-and-sets, and an older change never overwrites a newer entry.
//
// A Redis failover can lose the last updates the old master took (replication is asynchronous): on
// every master change the holder resumes from the position the new master holds, which never claims
// an update the new master lacks, so the replay restores them.
//
// Bounds: while a holder runs, a committed change reaches the master within one batch (milliseconds);
// after the holder dies, within the lease TTL + renew period + the catch-up. Changes of a batch are
// coalesced per id (the newest wins), so catching up on a backlog never sets an entry back in time.
//
// Usage (on the service's event loop):
//   CacheFeed feed(ex, {.owner = "user-service-1/42", .lease_ttl = 600ms}, source, cache,
//   service.redis_master(),
//                  registry);
//   feed.start();  ...  co_await feed.stop();
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <string>

#include "common/metrics.h"
#include "user_service/endpoint.h"
#include "user_service/ports.h"

namespace user_service {

struct CacheFeedSettings {
  std::string owner;  // unique per process: instance name, pid, random
  Clock::duration lease_ttl{std::chrono::milliseconds(600)};
  std::size_t batch = 256;  // changes per batch, about
};

class CacheFeed {
 public:
  CacheFeed(boost::asio::any_io_executor executor, CacheFeedSettings settings, ChangeSource& source,
            CachePort& cache, Endpoint& master, common::metrics::Registry& registry);
  CacheFeed(const CacheFeed&) = delete;
  CacheFeed& operator=(const CacheFeed&) = delete;

  void start();
  // Stops feeding, releases the lease if held, and waits for the loop to end.
  boost::asio::awaitable<void> stop();

  // The Redis master changed (a failover): the holder resumes from the position the new master holds.
  void master_changed();

  bool holder() const { return holder_; }
  const std::string& position() const { return position_; }
  // {"holder":true,"owner":"...","position":"0-1-42","applied":12}
  std::string to_json() const;

 private:
  boost::asio::awaitable<void> run();
  boost::asio::awaitable<bool> renew();
  boost::asio::awaitable<void> lose(std::string_view why);
  // Applies the batch (coalesced per id) to the master; false if any update failed.
  boost::asio::awaitable<bool> apply(const ChangeBatch& batch);

  boost::asio::any_io_executor executor_;
  CacheFeedSettings settings_;
  ChangeSource& source_;
  CachePort& cache_;
  Endpoint& master_;
  boost::asio::steady_timer timer_;
  bool running_ = false;
  bool loop_running_ = false;
  bool holder_ = false;
  bool master_changed_ = false;
  Clock::time_point renewed_at_{};
  std::string position_;
  std::uint64_t applied_ = 0;

  common::metrics::Counter* changes_ = nullptr;
  common::metrics::Counter* batches_ = nullptr;
  common::metrics::Counter* source_errors_ = nullptr;
  common::metrics::Counter* takeovers_ = nullptr;
};

}  // namespace user_service
