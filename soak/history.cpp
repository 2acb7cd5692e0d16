#include "soak/history.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <climits>
#include <utility>

namespace soak {

namespace {

std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

// What names are made of: plain ASCII, characters JSON must escape, and multi-byte UTF-8 (2 and 3
// bytes), so a value that went through a mangled byte stream is noticed.
constexpr std::array<std::string_view, 44> kPadUnits = {
    "a", "b", "c", "d", "e", "f", "g", "h",  "i",  "j", "k", "l", "m", "n",           "o",
    "p", "q", "r", "s", "t", "u", "v", "w",  "x",  "y", "z", "0", "1", "2",           "3",
    "4", "5", "6", "7", "8", "9", " ", "\"", "\\", "/", "'", "é", "ß", "\xe2\x98\x83"};
constexpr std::size_t kMaxPadUnits = 60;  // at most 180 bytes

std::string pad_for(std::string_view id, std::uint64_t seq) {
  std::uint64_t h = mix(fnv1a(id) ^ mix(seq));
  const std::size_t units = h % (kMaxPadUnits + 1);
  std::string pad;
  for (std::size_t i = 0; i < units; ++i) {
    h = mix(h);
    pad += kPadUnits[h % kPadUnits.size()];
  }
  return pad;
}

bool is_write(Op op) {
  return op == Op::put || op == Op::del;
}

}  // namespace

std::string_view op_name(Op op) {
  switch (op) {
    case Op::get:
      return "GET";
    case Op::put:
      return "PUT";
    case Op::del:
      return "DELETE";
  }
  return "?";
}

std::string_view source_name(Source s) {
  switch (s) {
    case Source::cache:
      return "cache";
    case Source::origin:
      return "origin";
    case Source::origin_replica:
      return "origin-replica";
    case Source::none:
      break;
  }
  return "none";
}

std::string status_name(int status) {
  switch (status) {
    case kRefused:
      return "refused";
    case kReset:
      return "reset";
    case kClosed:
      return "closed";
    case kTimeout:
      return "timeout";
    case kOther:
      return "error";
    default:
      return std::to_string(status);
  }
}

Effect effect_of(const Record& w) {
  if (w.op == Op::put && (w.status == 200 || w.status == 201)) return Effect::applied;
  if (w.op == Op::del && (w.status == 204 || w.status == 404)) return Effect::applied;
  if (w.status == 503 && w.short_circuit) return Effect::none;
  if (w.status == 503 || w.status < 0) return Effect::unknown;
  return Effect::none;  // 4xx and anything else: the service refused it before storing
}

State state_after(const Record& w) {
  return w.op == Op::put ? w.state : kAbsent;
}

std::string make_name(std::string_view id, std::uint64_t seq) {
  std::string name(id);
  name += '~';
  name += std::to_string(seq);
  name += '~';
  name += pad_for(id, seq);
  return name;
}

std::optional<std::uint64_t> parse_name(std::string_view id, std::string_view name) {
  if (name.size() <= id.size() + 1 || name.substr(0, id.size()) != id || name[id.size()] != '~')
    return std::nullopt;
  const std::string_view rest = name.substr(id.size() + 1);
  const auto tilde = rest.find('~');
  if (tilde == std::string_view::npos || tilde == 0) return std::nullopt;
  std::uint64_t seq = 0;
  const auto [p, ec] = std::from_chars(rest.data(), rest.data() + tilde, seq);
  if (ec != std::errc{} || p != rest.data() + tilde || rest[0] == '0') return std::nullopt;
  if (rest.substr(tilde + 1) != pad_for(id, seq)) return std::nullopt;
  return seq;
}

bool allowed_status(Op op, int status) {
  switch (op) {
    case Op::get:
      return status == 200 || status == 404 || status == 503;
    case Op::put:
      return status == 200 || status == 201 || status == 503;
    case Op::del:
      return status == 204 || status == 404 || status == 503;
  }
  return false;
}

std::string_view verdict_name(FinalVerdict::Kind k) {
  switch (k) {
    case FinalVerdict::ok:
      return "ok";
    case FinalVerdict::ok_unacknowledged:
      return "ok (an unacknowledged later write landed)";
    case FinalVerdict::late_unacknowledged:
      return "a write answered 503 landed after a later acknowledged write";
    case FinalVerdict::lost:
      return "the latest acknowledged write is missing";
    case FinalVerdict::unknown:
      return "a value no acknowledged or unknown-outcome write produced";
  }
  return "?";
}

History::History(std::vector<std::string> ids) : ids_(std::move(ids)), writes_(ids_.size()) {}

void History::add(const Record& r) {
  records_.push_back(r);
  if (!is_write(r.op)) return;
  auto& w = writes_[r.id];
  w.push_back(records_.size() - 1);
  // One writer per id: writes arrive in order; keep the invariant even if a caller breaks it.
  for (std::size_t i = w.size() - 1; i > 0 && records_[w[i - 1]].sent_us > records_[w[i]].sent_us; --i)
    std::swap(w[i - 1], w[i]);
}

std::uint64_t History::applied_writes() const {
  std::uint64_t n = 0;
  for (const auto& r : records_)
    if (is_write(r.op) && effect_of(r) == Effect::applied) ++n;
  return n;
}

std::uint16_t History::intern(std::string_view text) {
  for (std::size_t i = 1; i < reasons_.size(); ++i)
    if (reasons_[i] == text) return static_cast<std::uint16_t>(i);
  if (reasons_.size() >= 4096) return static_cast<std::uint16_t>(reasons_.size() - 1);
  reasons_.emplace_back(text);
  return static_cast<std::uint16_t>(reasons_.size() - 1);
}

std::string History::last_writes(std::uint32_t id, std::size_t n) const {
  // The last acknowledged write, then every later write that may have had an effect.
  const auto& w = writes_[id];
  std::size_t k = w.size();
  while (k > 0 && effect_of(records_[w[k - 1]]) != Effect::applied)
    --k;
  std::string out;
  std::size_t shown = 0, skipped = 0;
  for (std::size_t j = k > 0 ? k - 1 : 0; j < w.size(); ++j) {
    if (effect_of(records_[w[j]]) == Effect::none || shown >= n) {
      ++skipped;
      continue;
    }
    out += (out.empty() ? "" : "; ") + describe(w[j]);
    ++shown;
  }
  if (skipped) out += " (+" + std::to_string(skipped) + " later writes not shown or refused before MariaDB)";
  return out.empty() ? "none" : out;
}

std::string History::describe(std::size_t i) const {
  const Record& r = records_[i];
  std::string s(op_name(r.op));
  s += ' ';
  s += ids_[r.id];
  if (r.op == Op::put) s += " seq " + std::to_string(r.state);
  s += " -> " + status_name(r.status);
  if (r.op == Op::get && r.status == 200) s += " seq " + std::to_string(r.state);
  if (r.source == Source::cache) s += r.stale ? " (cache, marked stale)" : " (cache)";
  if (r.source == Source::origin) s += " (origin)";
  if (r.source == Source::origin_replica) s += " (origin-replica)";
  if (r.served_by != 0 && r.served_by < reasons_.size()) s += " via " + reasons_[r.served_by];
  s += " sent " + std::to_string(r.sent_us / 1000) + " ms, answered " + std::to_string(r.done_us / 1000) +
       " ms";
  if (r.reason != 0 && r.reason < reasons_.size()) s += " [" + reasons_[r.reason] + "]";
  return s;
}

static std::string state_text(State s) {
  if (s == kAbsent) return "absent";
  if (s == kUnparsable) return "a value that is no name of this id";
  return "seq " + std::to_string(s);
}

FinalVerdict History::check_final(std::uint32_t id, State stored) const {
  const auto& w = writes_[id];
  FinalVerdict v;
  std::ptrdiff_t k = -1;
  for (std::ptrdiff_t j = static_cast<std::ptrdiff_t>(w.size()) - 1; j >= 0; --j) {
    if (effect_of(records_[w[j]]) == Effect::applied) {
      k = j;
      break;
    }
  }
  v.expected = k >= 0 ? state_after(records_[w[k]]) : kAbsent;
  if (stored == v.expected) {
    v.kind = FinalVerdict::ok;
    return v;
  }
  for (std::size_t j = static_cast<std::size_t>(k + 1); j < w.size(); ++j) {
    const Record& r = records_[w[j]];
    if (effect_of(r) == Effect::unknown && state_after(r) == stored) {
      v.kind = FinalVerdict::ok_unacknowledged;
      return v;
    }
  }
  v.detail = ids_[id] + ": MariaDB holds " + state_text(stored) + ", the latest acknowledged write left " +
             state_text(v.expected) + (k >= 0 ? " (" + describe(w[k]) + ")" : std::string(" (none)"));
  for (std::ptrdiff_t j = k - 1; j >= 0; --j) {
    const Record& r = records_[w[j]];
    if (effect_of(r) == Effect::unknown && state_after(r) == stored) {
      v.kind = FinalVerdict::late_unacknowledged;
      v.detail += "; it is what " + describe(w[j]) + " wrote";
      return v;
    }
  }
  if (stored == kAbsent) {
    v.kind = FinalVerdict::lost;
    return v;
  }
  for (std::size_t j = 0; j < w.size(); ++j) {
    const Record& r = records_[w[j]];
    if (state_after(r) == stored) {
      v.kind = effect_of(r) == Effect::applied ? FinalVerdict::lost : FinalVerdict::unknown;
      v.detail += "; it is what " + describe(w[j]) + " wrote";
      return v;
    }
  }
  v.kind = FinalVerdict::unknown;
  return v;
}

FinalVerdict History::check_at(std::uint32_t id, State stored, std::int64_t cutoff_us) const {
  const auto& w = writes_[id];
  FinalVerdict v;
  std::ptrdiff_t k = -1;
  for (std::size_t j = 0; j < w.size() && records_[w[j]].done_us < cutoff_us; ++j)
    if (effect_of(records_[w[j]]) == Effect::applied) k = static_cast<std::ptrdiff_t>(j);
  v.expected = k >= 0 ? state_after(records_[w[static_cast<std::size_t>(k)]]) : kAbsent;
  if (stored == v.expected) return v;
  for (std::size_t j = static_cast<std::size_t>(k + 1); j < w.size(); ++j) {
    if (effect_of(records_[w[j]]) != Effect::none && state_after(records_[w[j]]) == stored) {
      v.kind = FinalVerdict::ok_unacknowledged;
      return v;
    }
  }
  v.kind = FinalVerdict::lost;
  v.detail = ids_[id] + ": holds " + state_text(stored) + ", but " +
             (k >= 0 ? describe(w[static_cast<std::size_t>(k)]) : std::string("nothing")) +
             " was acknowledged before the primary was lost";
  return v;
}

ReadReport History::check_reads(std::int64_t tolerance_us, const std::vector<Window>& no_master) const {
  ReadReport out;
  out.tolerance_us = tolerance_us;
  for (std::size_t i = 0; i < records_.size(); ++i) {
    const Record& r = records_[i];
    if (r.op != Op::get || (r.status != 200 && r.status != 404)) continue;
    const auto& w = writes_[r.id];
    // Writes to one id do not overlap: their answer times grow with their index. k: the last write
    // applied and answered before this read was sent.
    const auto first_after = std::partition_point(
        w.begin(), w.end(), [&](std::size_t wi) { return records_[wi].done_us < r.sent_us; });
    std::ptrdiff_t k = (first_after - w.begin()) - 1;
    while (k >= 0 && effect_of(records_[w[k]]) != Effect::applied)
      --k;
    const State expected = k >= 0 ? state_after(records_[w[k]]) : kAbsent;

    // The staleness if the value came from write p (-1: the initial state): how long before the read
    // was sent the first acknowledged write after p had been answered (0 if none was by then).
    const auto staleness_from = [&](std::ptrdiff_t p) -> std::pair<std::int64_t, std::ptrdiff_t> {
      for (std::size_t q = static_cast<std::size_t>(p + 1); q < w.size(); ++q) {
        const Record& wq = records_[w[q]];
        if (wq.done_us >= r.sent_us) break;
        if (effect_of(wq) == Effect::applied) return {r.sent_us - wq.done_us, static_cast<std::ptrdiff_t>(q)};
      }
      return {0, -1};
    };
    // Every state that a write sent before the read's answer could have left, the freshest reading.
    bool produced = false;
    bool late = false;
    std::pair<std::int64_t, std::ptrdiff_t> stale{INT64_MAX, -1};
    if (r.state == kAbsent) {  // the initial state
      produced = true;
      stale = std::min(stale, staleness_from(-1));
    }
    for (std::size_t j = 0; j < w.size(); ++j) {
      const Record& wr = records_[w[j]];
      if (wr.sent_us >= r.done_us) break;
      if (state_after(wr) != r.state) continue;
      produced = true;
      const Effect e = effect_of(wr);
      if (e != Effect::none) stale = std::min(stale, staleness_from(static_cast<std::ptrdiff_t>(j)));
      if (static_cast<std::ptrdiff_t>(j) < k && e == Effect::unknown) late = true;
    }

    ReadViolation v;
    v.read = i;
    v.expected = expected;
    v.late_unacknowledged = late;
    if (r.state == kUnparsable || !produced) {
      v.detail =
          describe(i) + ": returned " + state_text(r.state) + ", which no write sent before it produced";
      out.unknown.push_back(std::move(v));
      continue;
    }
    if (r.stale) {
      ++out.marked_stale;
      continue;
    }
    if (r.source == Source::cache) {
      ++out.checked_cache;
    } else {
      ++out.checked_origin;
    }
    if (stale.first == INT64_MAX)  // only a write that had no effect produced it: never a state to serve
      stale = {std::max<std::int64_t>(1, k >= 0 ? r.sent_us - records_[w[k]].done_us : r.sent_us), k};
    v.staleness_us = stale.first;
    if (stale.first > out.max_staleness_us && stale.second >= 0) {
      out.max_staleness_us = stale.first;
      out.max_staleness_read = i;
      out.max_staleness_write = w[static_cast<std::size_t>(stale.second)];
    }
    if (stale.first == 0) continue;
    if (stale.first <= tolerance_us) {
      ++out.within_tolerance;
      continue;
    }
    if (stale.second >= 0) {
      const std::int64_t acked = records_[w[static_cast<std::size_t>(stale.second)]].done_us;
      bool excused = false;
      for (const auto& [from, to] : no_master)
        excused = excused || (acked >= from && acked <= to && r.sent_us - to <= tolerance_us);
      if (excused) {
        ++out.excused;
        out.max_excused_us = std::max(out.max_excused_us, stale.first);
        continue;
      }
    }
    v.detail = describe(i) + ": returned " + state_text(r.state) + ", but " +
               (k >= 0 ? describe(w[k]) : std::string("nothing")) + " was acknowledged before it was sent" +
               (late ? " (an older write answered 503 wrote that value)" : "") + "; stale by " +
               std::to_string(stale.first / 1000) + " ms";
    (r.source == Source::cache ? out.cache : out.origin).push_back(std::move(v));
  }
  return out;
}

}  // namespace soak
