#include "user_service/cache_ledger.h"

#include <algorithm>

#include "common/log.h"

namespace user_service {

CacheLedger::CacheLedger(std::uint32_t repair_capacity, std::uint32_t recent_capacity,
                         Clock::duration recent_window, Clock::duration replica_lag_window)
    : repair_capacity_(repair_capacity == 0 ? 1 : repair_capacity),
      recent_capacity_(recent_capacity),
      watched_capacity_(static_cast<std::size_t>(repair_capacity_) + recent_capacity),
      recent_window_(recent_window),
      replica_lag_window_(replica_lag_window) {}

bool CacheLedger::known_stale_slow(std::string_view id, const CacheEntry& cached, bool from_replica) const {
  const auto it = items_.find(id);
  if (it == items_.end()) return false;
  if (!it->second.pending && !from_replica) return false;  // the master acknowledged it
  return supersedes(it->second.entry, cached);
}

std::optional<CacheEntry> CacheLedger::known_entry_slow(std::string_view id, bool from_replica) const {
  const auto it = items_.find(id);
  if (it == items_.end()) return std::nullopt;
  if (!it->second.pending && !from_replica) return std::nullopt;  // the master acknowledged it
  return it->second.entry;
}

void CacheLedger::replica_caught_up_slow(std::string_view id, const CacheEntry& cached) {
  const auto it = items_.find(id);
  if (it == items_.end() || it->second.pending) return;  // a queued repair is the master's business
  // Replication applies the master's updates in order: once the replica shows this version (or a
  // newer one), it can no longer show an older one.
  if (!supersedes(it->second.entry, cached)) erase_item(it);
}

void CacheLedger::erase_item(Map::iterator it) {
  if (it->second.pending)
    --pending_count_;
  else
    --watched_count_;
  items_.erase(it);
}

CacheLedger::Map::iterator CacheLedger::add_watched(std::string_view id, const CacheEntry& entry) {
  const auto it = items_.emplace(std::string(id), Item{entry, false, false, {}}).first;
  ++watched_count_;
  return it;
}

void CacheLedger::watch(Map::iterator it, Clock::time_point now, Clock::duration window) {
  if (it->second.pending) {
    it->second.pending = false;
    --pending_count_;
    ++watched_count_;
  }
  if (window.count() <= 0) {
    erase_item(it);
    return;
  }
  const auto until = now + window;
  if (until <= it->second.expires) return;  // already watched at least that long
  it->second.expires = until;
  watch_order_.emplace_back(it->first, until);
  // Over capacity: forget the oldest watched entries first (their replication is the likeliest done).
  while (watched_count_ > watched_capacity_ && !watch_order_.empty()) {
    auto& [old_id, at] = watch_order_.front();
    const auto old = items_.find(old_id);
    if (old != items_.end() && !old->second.pending && old->second.expires == at) erase_item(old);
    watch_order_.pop_front();
  }
}

void CacheLedger::record_write(std::string_view id, const CacheEntry& entry, bool applied,
                               Clock::time_point now) {
  auto it = items_.find(id);
  if (it != items_.end() && !supersedes(entry, it->second.entry)) {
    // Already know something at least as new (a concurrent newer write finished first).
    return;
  }
  if (applied) {
    if (it == items_.end()) {
      // A plain write the master acknowledged: watched only with the optional recent writes.
      if (recent_capacity_ == 0 || recent_window_.count() <= 0) return;
      watch(add_watched(id, entry), now, recent_window_);
      return;
    }
    // This user's update was queued (the master was away) or is watched: the master now holds a
    // newer one, which the replica may lag behind as it may for a repair. A queued older repair is
    // superseded (if it is in flight, its completion finds the item no longer pending).
    it->second.entry = entry;
    watch(it, now, lag_window());
    return;
  }
  if (it != items_.end()) {
    it->second.entry = entry;
    if (!it->second.pending) {
      it->second.pending = true;
      it->second.expires = {};  // its watch record is stale now; watch() starts a new one
      --watched_count_;
      ++pending_count_;
      if (!it->second.in_flight) queue_.emplace_back(it->first);
    }
    return;
  }
  if (pending_count_ >= repair_capacity_) {
    // Full: we cannot remember this one, so we can no longer tell stale entries apart.
    ++overflows_;
    untrusted_ = true;
    common::log::warn("cache repair queue overflowed; cache untrusted until invalidated",
                      {{"capacity", repair_capacity_}});
    for (auto i = items_.begin(); i != items_.end();) {
      if (i->second.pending && !i->second.in_flight) {
        --pending_count_;
        i = items_.erase(i);
      } else {
        ++i;
      }
    }
    queue_.clear();
    return;
  }
  it = items_.emplace(std::string(id), Item{entry, true, false, {}}).first;
  ++pending_count_;
  queue_.emplace_back(it->first);
}

void CacheLedger::record_master_update(std::string_view id, const CacheEntry& entry, Clock::time_point now) {
  auto it = items_.find(id);
  if (it == items_.end()) {
    if (lag_window().count() <= 0) return;
    watch(add_watched(id, entry), now, lag_window());
    return;
  }
  if (supersedes(entry, it->second.entry)) it->second.entry = entry;
  // A queued repair stays queued (applying it is idempotent); it is watched once applied.
  if (!it->second.pending) watch(it, now, lag_window());
}

std::vector<CacheLedger::Repair> CacheLedger::take_repairs(std::size_t max) {
  std::vector<Repair> out;
  while (out.size() < max && !queue_.empty()) {
    const auto it = items_.find(queue_.front());
    queue_.pop_front();
    if (it == items_.end() || !it->second.pending || it->second.in_flight) continue;
    it->second.in_flight = true;
    out.push_back(Repair{it->first, it->second.entry});
  }
  return out;
}

void CacheLedger::repair_finished(std::string_view id, const CacheEntry& entry, bool applied,
                                  Clock::time_point now) {
  const auto it = items_.find(id);
  if (it == items_.end()) return;
  it->second.in_flight = false;
  if (!it->second.pending) return;
  // Not "same version": a tombstone of version v recorded while value v was being repaired must
  // still be applied (found by the chaos soak: the deleted user came back from the cache).
  if (applied && !supersedes(it->second.entry, entry)) {
    // On the master now; the replica receives it asynchronously.
    watch(it, now, lag_window());
    return;
  }
  // Failed, or a newer write arrived meanwhile: keep it queued.
  queue_.emplace_back(it->first);
}

void CacheLedger::expire(Clock::time_point now) {
  if (replica_untrusted_ && now >= replica_trusted_at_) replica_untrusted_ = false;
  while (!watch_order_.empty()) {
    auto& [id, at] = watch_order_.front();
    const auto it = items_.find(id);
    const bool current = it != items_.end() && !it->second.pending && it->second.expires == at;
    if (current && now < at) break;
    if (current) erase_item(it);
    watch_order_.pop_front();
  }
}

void CacheLedger::mark_trusted(Clock::time_point now) {
  untrusted_ = false;
  if (lag_window().count() > 0) {
    replica_untrusted_ = true;
    replica_trusted_at_ = now + lag_window();
  }
}

}  // namespace user_service
