// What this instance knows about the cache that the cache itself may not reflect yet: the repair
// queue (cache updates that could not reach the Redis master) and the recent writes (to recognise a
// replica that had not received them before the master went away). Reads consult it so that this
// instance never serves a cache entry it knows to be stale.
//
// - record_write(): after every write or delete that MariaDB committed. `applied` says whether the
//   cache update reached the master. If not, the entry is queued for repair (one slot per user: a
//   newer write replaces the queued one). If it did, it is remembered for `recent_window`.
// - known_stale(): true when the ledger holds a newer version of that user than the cached entry
//   (queued repairs: whichever node answered; recent writes: only for the replica, since the master
//   acknowledged them), or while the ledger is untrusted (see below).
//   Recent writes are off by default (window 0): replication lag on a healthy link is sub-millisecond,
//   and data reset from outside (tests flushing Redis and re-seeding it) would otherwise look stale.
// - take_repairs()/repair_finished(): the repairer applies queued entries once the master is back.
// - Overflow: when the queue is full and another user's update fails, the ledger can no longer tell
//   which entries are stale. It then drops the queue, becomes untrusted (every cached entry counts as
//   possibly stale, so reads go to MariaDB), and the service invalidates all cached values once the
//   master is reachable, after which mark_trusted() is called.
//
// Single-threaded (the service's event loop). Memory is bounded by the two capacities.
//
// Usage:
//   CacheLedger ledger(10000, 10000, std::chrono::seconds(10));
//   ledger.record_write("u-1", CacheEntry{7, false, "Joe"}, /*applied=*/false, Clock::now());
//   ledger.known_stale("u-1", CacheEntry{5, false, "Jack"}, false);   // true
//   for (auto& r : ledger.take_repairs(16)) { ...store_if_newer(r.id, r.entry)...;
//                                             ledger.repair_finished(r.id, r.entry, ok); }
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "user_service/ports.h"

namespace user_service {

class CacheLedger {
 public:
  CacheLedger(std::uint32_t repair_capacity, std::uint32_t recent_capacity, Clock::duration recent_window);

  void record_write(std::string_view id, const CacheEntry& entry, bool applied, Clock::time_point now);

  bool known_stale(std::string_view id, const CacheEntry& cached, bool from_replica) const {
    if (untrusted_) return true;
    if (items_.empty()) return false;
    return known_stale_slow(id, cached, from_replica);
  }

  // The newest entry the ledger holds for `id` that known_stale() would compare a cached entry with
  // (a queued repair; for the replica also a recent write), if any. A read takes it before it asks
  // Redis, so that a repair applied while the read is in flight still counts against its reply.
  std::optional<CacheEntry> known_entry(std::string_view id, bool from_replica) const {
    if (items_.empty()) return std::nullopt;
    return known_entry_slow(id, from_replica);
  }

  struct Repair {
    std::string id;
    CacheEntry entry;
  };
  // Up to `max` queued repairs, oldest first; they stay in the ledger (marked in flight) until
  // repair_finished() is called for each.
  std::vector<Repair> take_repairs(std::size_t max);
  // `entry`: the repair that was tried (as take_repairs() gave it); `applied`: the master now holds
  // it or something newer. The item stays queued unless what it holds now is no newer than `entry`
  // (a delete of the same version, recorded while the value's repair was in flight, is newer).
  void repair_finished(std::string_view id, const CacheEntry& entry, bool applied, Clock::time_point now);

  // Forgets recent writes older than the window (call periodically).
  void expire(Clock::time_point now);

  std::size_t pending() const { return pending_count_; }
  std::size_t recent() const { return recent_count_; }
  std::uint64_t overflows() const { return overflows_; }
  bool untrusted() const { return untrusted_; }
  void mark_trusted() { untrusted_ = false; }

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  struct Item {
    CacheEntry entry;
    bool pending = false;
    bool in_flight = false;
    Clock::time_point applied_at{};
  };
  using Map = std::unordered_map<std::string, Item, Hash, std::equal_to<>>;

  bool known_stale_slow(std::string_view id, const CacheEntry& cached, bool from_replica) const;
  std::optional<CacheEntry> known_entry_slow(std::string_view id, bool from_replica) const;
  void make_recent(Map::iterator it, Clock::time_point now);
  void erase_item(Map::iterator it);

  std::uint32_t repair_capacity_;
  std::uint32_t recent_capacity_;
  Clock::duration recent_window_;
  Map items_;
  std::deque<std::string> queue_;  // ids with a pending repair, oldest first (may hold stale ids)
  std::deque<std::pair<std::string, Clock::time_point>> recent_order_;  // for expiry (may hold stale ids)
  std::size_t pending_count_ = 0;
  std::size_t recent_count_ = 0;
  std::uint64_t overflows_ = 0;
  bool untrusted_ = false;
};

// True if `candidate` should replace `current` in the cache: the rule the Lua script applies.
inline bool supersedes(const CacheEntry& candidate, const CacheEntry& current) {
  if (candidate.version != current.version) return candidate.version > current.version;
  return candidate.tombstone && !current.tombstone;
}

}  // namespace user_service
