#include "faultproxy/pipeline.h"

#include <algorithm>

namespace faultproxy {

double toxicity_roll(std::uint64_t connection_seed, std::string_view toxic_name) {
  const std::uint64_t h = hash_string(toxic_name, mix64(connection_seed));
  return static_cast<double>(h >> 11) * (1.0 / 9007199254740992.0);  // 53 bits -> [0,1)
}

void Pipeline::flush_entry(std::size_t i, TimePoint now, bool removed, bool was_active) {
  Entry& e = *entries_[i];
  EventQueue& next = next_inbox(i);
  if (was_active) {
    e.stage->flush(
        e.inbox, now,
        [&next](Event&& ev, TimePoint at) {
          ev.at = at;
          next.push_back(std::move(ev));
        },
        removed);
  }
  while (!e.inbox.empty())
    next.push_back(e.inbox.take_front());
}

void Pipeline::apply(const std::vector<ToxicSpec>& toxics, TimePoint now) {
  // 0. Whatever was due by now happens under the old toxics (a reset_peer whose time has come
  //    fires even if it is being removed; data due leaves before the change).
  run(now);
  // 1. Removals, front to back: each hands what it holds to its successor, so order is kept even
  //    when neighbours are removed together.
  for (std::size_t i = 0; i < entries_.size();) {
    const auto id = entries_[i]->spec.id;
    const bool keep =
        std::any_of(toxics.begin(), toxics.end(), [id](const ToxicSpec& t) { return t.id == id; });
    if (keep) {
      ++i;
      continue;
    }
    flush_entry(i, now, /*removed=*/true, entries_[i]->active);
    entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(i));
  }
  // 2. Updates of the survivors, and additions where they stand in `toxics`: at the end as Toxiproxy
  //    only ever appends, or in between when a toxic's client_cidr came to cover this connection
  //    (toxics_for_client). A stage inserted mid-chain starts with an empty inbox: what already
  //    passed its place is older than anything that will go through it, so order is kept.
  std::size_t next_existing = 0;
  for (const ToxicSpec& spec : toxics) {
    std::size_t found = entries_.size();
    for (std::size_t i = next_existing; i < entries_.size(); ++i) {
      if (entries_[i]->spec.id == spec.id) {
        found = i;
        break;
      }
    }
    if (found < entries_.size()) {
      next_existing = found + 1;
      Entry& e = *entries_[found];
      if (e.spec.version == spec.version) continue;
      const bool was_active = e.active;
      e.spec = spec;
      e.active = e.roll < static_cast<double>(spec.toxicity);
      e.stage->update(spec.attributes, now);
      if (spec.settings) e.stage->update_settings(spec.settings, now);
      if (was_active && !e.active) {
        flush_entry(found, now, /*removed=*/false, /*was_active=*/true);
      } else if (!was_active && e.active) {
        e.stage->activate(now);
        if (on_activation_ && !e.spec.response_half) on_activation_(e.spec);
      }
      continue;
    }
    auto entry = std::make_unique<Entry>();
    entry->spec = spec;
    entry->roll = toxicity_roll(seed_, spec.name);
    entry->active = entry->roll < static_cast<double>(spec.toxicity);
    entry->stage = make_entry_stage(spec);
    if (entry->active) {
      entry->stage->activate(now);
      if (on_activation_ && !spec.response_half) on_activation_(entry->spec);
    }
    entries_.insert(entries_.begin() + static_cast<std::ptrdiff_t>(next_existing), std::move(entry));
    ++next_existing;
  }
}

std::unique_ptr<Stage> Pipeline::make_entry_stage(const ToxicSpec& spec) const {
  const std::uint64_t seed = mix64(seed_ ^ hash_string(spec.name, 0x5eed));
  if (!spec.settings) return make_stage(spec.type, spec.attributes, seed, spec.schedule);
  return make_protocol_stage({spec.type, spec.response_half, spec.id, spec.name, spec.settings}, seed,
                             session_);
}

bool Pipeline::acting(std::uint64_t toxic_id) const {
  return std::any_of(entries_.begin(), entries_.end(),
                     [toxic_id](const auto& e) { return e->spec.id == toxic_id && e->active; });
}

std::vector<ToxicSpec> toxics_for_client(const std::vector<ToxicSpec>& toxics,
                                         const std::optional<IpAddress>& client, const Pipeline* current) {
  std::vector<ToxicSpec> out;
  out.reserve(toxics.size());
  for (const ToxicSpec& t : toxics) {
    if (!t.client_cidr || (client && t.client_cidr->contains(*client))) {
      out.push_back(t);
    } else if (current && current->acting(t.id)) {
      out.push_back(t);
      out.back().toxicity = 0;  // rolls are in [0,1): never acts
    }
  }
  return out;
}

void Pipeline::push(Event e, TimePoint now) {
  e.at = now;
  if (entries_.empty()) {
    output_.push_back(std::move(e));
  } else {
    entries_.front()->inbox.push_back(std::move(e));
  }
}

TimePoint Pipeline::run(TimePoint now) {
  TimePoint wake = kNever;
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    Entry& e = *entries_[i];
    EventQueue& next = next_inbox(i);
    if (!e.active) {
      while (!e.inbox.empty())
        next.push_back(e.inbox.take_front());
      continue;
    }
    const TimePoint t = e.stage->step(e.inbox, now, [&next](Event&& ev, TimePoint at) {
      ev.at = at;
      next.push_back(std::move(ev));
    });
    wake = std::min(wake, t);
  }
  return wake;
}

std::size_t Pipeline::buffered_bytes() const {
  std::size_t n = output_.bytes();
  for (const auto& e : entries_)
    n += e->inbox.bytes() + e->stage->held_bytes();
  return n;
}

}  // namespace faultproxy
