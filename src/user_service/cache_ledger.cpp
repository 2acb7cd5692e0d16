#include "user_service/cache_ledger.h"

#include "common/log.h"

namespace user_service {

CacheLedger::CacheLedger(std::uint32_t repair_capacity, std::uint32_t recent_capacity,
                         Clock::duration recent_window)
    : repair_capacity_(repair_capacity == 0 ? 1 : repair_capacity),
      recent_capacity_(recent_capacity),
      recent_window_(recent_window) {}

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

void CacheLedger::erase_item(Map::iterator it) {
  if (it->second.pending)
    --pending_count_;
  else
    --recent_count_;
  items_.erase(it);
}

void CacheLedger::make_recent(Map::iterator it, Clock::time_point now) {
  if (it->second.pending) {
    it->second.pending = false;
    --pending_count_;
    ++recent_count_;
  }
  if (recent_capacity_ == 0 || recent_window_.count() <= 0) {
    erase_item(it);
    return;
  }
  it->second.applied_at = now;
  recent_order_.emplace_back(it->first, now);
  // Over capacity: forget the oldest recent writes first (their replication is the likeliest done).
  while (recent_count_ > recent_capacity_ && !recent_order_.empty()) {
    auto& [old_id, at] = recent_order_.front();
    const auto old = items_.find(old_id);
    if (old != items_.end() && !old->second.pending && old->second.applied_at == at) erase_item(old);
    recent_order_.pop_front();
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
      if (recent_capacity_ == 0 || recent_window_.count() <= 0) return;
      it = items_.emplace(std::string(id), Item{entry, false, false, now}).first;
      ++recent_count_;
    } else {
      it->second.entry = entry;
      // A queued older repair is superseded by what the master now holds.
    }
    make_recent(it, now);
    return;
  }
  if (it != items_.end()) {
    it->second.entry = entry;
    if (!it->second.pending) {
      it->second.pending = true;
      --recent_count_;
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
    make_recent(it, now);
    return;
  }
  // Failed, or a newer write arrived meanwhile: keep it queued.
  queue_.emplace_back(it->first);
}

void CacheLedger::expire(Clock::time_point now) {
  while (!recent_order_.empty()) {
    auto& [id, at] = recent_order_.front();
    const auto it = items_.find(id);
    const bool current = it != items_.end() && !it->second.pending && it->second.applied_at == at;
    if (current && now - at < recent_window_) break;
    if (current) erase_item(it);
    recent_order_.pop_front();
  }
}

}  // namespace user_service
