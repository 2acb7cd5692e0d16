// What this instance knows about the cache that the cache itself may not reflect yet: the repair
// queue (cache updates that could not reach the Redis master) and the watched entries (updates the
// master has but the replica may not have yet). Reads consult it so that this instance never serves
// a cache entry it knows to be stale.
//
// - record_write(): after every write or delete that MariaDB committed. `applied` says whether the
//   cache update reached the master. If not, the entry is queued for repair (one slot per user: a
//   newer write replaces the queued one). If it did, it is watched for `recent_window` (the optional
//   recent writes, off by default), or for the replica lag window if that user's update was queued
//   or watched already (the master was away for it a moment ago).
// - Watched entries: the master received them, the replica may not have yet. Replication is
//   asynchronous: a read that falls back to the replica right after the master received an update
//   (typically: the master returned, the repair was applied, then the master failed a read again)
//   may find the replica one update behind. So every update the master receives from the repair
//   queue, from a refresh after a write whose outcome was unknown (record_master_update()), or after
//   an invalidation (mark_trusted()) stays known-stale for replica reads until a replica read shows
//   that version or a newer one (replica_caught_up()), or for `replica_lag_window`, whichever comes
//   first. This holds whatever the recent-writes setting; the master itself is trusted for what it
//   acknowledged.
// - known_stale(): true when the ledger holds a newer version of that user than the cached entry
//   (queued repairs: whichever node answered; watched entries: only for the replica), or while the
//   ledger is untrusted (see below).
//   Recent writes are off by default (window 0): replication lag on a healthy link is sub-millisecond,
//   and data reset from outside (tests flushing Redis and re-seeding it) would otherwise look stale.
// - take_repairs()/repair_finished(): the repairer applies queued entries once the master is back.
// - Overflow: when the queue is full and another user's update fails, the ledger can no longer tell
//   which entries are stale. It then drops the queue, becomes untrusted (every cached entry counts as
//   possibly stale, so reads go to MariaDB), and the service invalidates all cached values once the
//   master is reachable, after which mark_trusted() is called (the replica, which may not have
//   received the invalidation yet, stays untrusted for the replica lag window).
//
// Single-threaded (the service's event loop). Memory is bounded: at most `repair_capacity` queued
// entries and `repair_capacity + recent_capacity` watched ones (the oldest are forgotten first).
// Expiry happens in expire(), called periodically: an entry may stay watched a little longer than its
// window, which only sends a few more replica reads to MariaDB.
//
// Usage:
//   CacheLedger ledger(10000, 10000, std::chrono::seconds(0), std::chrono::seconds(10));
//   ledger.record_write("u-1", CacheEntry{7, false, "Joe"}, /*applied=*/false, Clock::now());
//   ledger.known_stale("u-1", CacheEntry{5, false, "Jack"}, false);   // true
//   for (auto& r : ledger.take_repairs(16)) { ...store_if_newer(r.id, r.entry)...;
//                                             ledger.repair_finished(r.id, r.entry, ok, now); }
//   ledger.known_stale("u-1", CacheEntry{5, false, "Jack"}, true);    // true until the replica has 7
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
  CacheLedger(std::uint32_t repair_capacity, std::uint32_t recent_capacity, Clock::duration recent_window,
              Clock::duration replica_lag_window);

  void record_write(std::string_view id, const CacheEntry& entry, bool applied, Clock::time_point now);
  // The master received `entry` for id (or holds a newer one) outside a write's own cache update:
  // a refresh from MariaDB after a write whose outcome was unknown. Watched like a repair.
  void record_master_update(std::string_view id, const CacheEntry& entry, Clock::time_point now);

  bool known_stale(std::string_view id, const CacheEntry& cached, bool from_replica) const {
    if (untrusted_ || (from_replica && replica_untrusted_)) return true;
    if (items_.empty()) return false;
    return known_stale_slow(id, cached, from_replica);
  }
  // A replica read returned `cached` for id: if the replica now has what this instance watched for
  // id (that version or a newer one), the entry is forgotten.
  void replica_caught_up(std::string_view id, const CacheEntry& cached) {
    if (items_.empty()) return;
    replica_caught_up_slow(id, cached);
  }

  // The newest entry the ledger holds for `id` that known_stale() would compare a cached entry with
  // (a queued repair; for the replica also a watched entry), if any. A read takes it before it asks
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
  // it or something newer (it is then watched for the replica). The item stays queued if what it
  // holds now is newer than `entry` (a delete of the same version, recorded while the value's repair
  // was in flight, is newer).
  void repair_finished(std::string_view id, const CacheEntry& entry, bool applied, Clock::time_point now);

  // Forgets watched entries whose window has passed (call periodically).
  void expire(Clock::time_point now);

  std::size_t pending() const { return pending_count_; }
  std::size_t watched() const { return watched_count_; }
  std::uint64_t overflows() const { return overflows_; }
  bool untrusted() const { return untrusted_; }
  bool replica_untrusted() const { return replica_untrusted_; }
  // After the invalidation that follows an overflow: the master is trusted again at once, the replica
  // once the replica lag window has passed (it may not have received the invalidation yet).
  void mark_trusted(Clock::time_point now);

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  struct Item {
    CacheEntry entry;
    bool pending = false;         // queued for repair: the master does not have it
    bool in_flight = false;       // a repair of it is being applied
    Clock::time_point expires{};  // watched (not pending): forgotten then
  };
  using Map = std::unordered_map<std::string, Item, Hash, std::equal_to<>>;

  bool known_stale_slow(std::string_view id, const CacheEntry& cached, bool from_replica) const;
  void replica_caught_up_slow(std::string_view id, const CacheEntry& cached);
  std::optional<CacheEntry> known_entry_slow(std::string_view id, bool from_replica) const;
  // Marks the item watched (no longer pending) until now + window at least; erased if window <= 0.
  void watch(Map::iterator it, Clock::time_point now, Clock::duration window);
  Map::iterator add_watched(std::string_view id, const CacheEntry& entry);
  void erase_item(Map::iterator it);
  // How long an update the master received after being away stays watched.
  Clock::duration lag_window() const { return std::max(recent_window_, replica_lag_window_); }

  std::uint32_t repair_capacity_;
  std::uint32_t recent_capacity_;
  std::size_t watched_capacity_;
  Clock::duration recent_window_;
  Clock::duration replica_lag_window_;
  Map items_;
  std::deque<std::string> queue_;  // ids with a pending repair, oldest first (may hold stale ids)
  std::deque<std::pair<std::string, Clock::time_point>>
      watch_order_;  // (id, expires): for expiry
                     // and eviction (may hold stale records)
  std::size_t pending_count_ = 0;
  std::size_t watched_count_ = 0;
  std::uint64_t overflows_ = 0;
  bool untrusted_ = false;
  bool replica_untrusted_ = false;
  Clock::time_point replica_trusted_at_{};
};

// True if `candidate` should replace `current` in the cache: the rule the Lua script applies.
inline bool supersedes(const CacheEntry& candidate, const CacheEntry& current) {
  if (candidate.version != current.version) return candidate.version > current.version;
  return candidate.tombstone && !current.tombstone;
}

}  // namespace user_service
