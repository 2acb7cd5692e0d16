#include "faultproxy/toxics.h"

#include <algorithm>

namespace faultproxy {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

const std::vector<ToxicTypeInfo>& registry() {
  static const std::vector<ToxicTypeInfo> types = {
      {ToxicType::latency, "latency", "LatencyToxic", {"latency", "jitter"}, "int64"},
      {ToxicType::bandwidth, "bandwidth", "BandwidthToxic", {"rate"}, "int64"},
      {ToxicType::slow_close, "slow_close", "SlowCloseToxic", {"delay"}, "int64"},
      {ToxicType::timeout, "timeout", "TimeoutToxic", {"timeout"}, "int64"},
      {ToxicType::reset_peer, "reset_peer", "ResetToxic", {"timeout"}, "int64"},
      {ToxicType::slicer, "slicer", "SlicerToxic", {"average_size", "size_variation", "delay"}, "int"},
      {ToxicType::limit_data, "limit_data", "LimitDataToxic", {"bytes"}, "int64"},
      // Typed attributes: protocol_attribute_defs().
      {ToxicType::redis_error, "redis_error", "RedisErrorToxic", {}, "int64"},
      {ToxicType::redis_delay, "redis_delay", "RedisDelayToxic", {}, "int64"},
      {ToxicType::mysql_error, "mysql_error", "MysqlErrorToxic", {}, "int64"},
      {ToxicType::mysql_delay, "mysql_delay", "MysqlDelayToxic", {}, "int64"},
      {ToxicType::http_abort, "http_abort", "HttpAbortToxic", {}, "int64"},
      {ToxicType::http_delay, "http_delay", "HttpDelayToxic", {}, "int64"},
      {ToxicType::noop, "noop", "NoopToxic", {}, "int64"},
  };
  return types;
}

std::int64_t clamp_ms(std::int64_t v) {
  return std::clamp<std::int64_t>(v, 0, kMaxMillis);
}

TimePoint add_ms(TimePoint t, std::int64_t ms) {
  if (t == kNever) return kNever;
  return t + milliseconds(clamp_ms(ms));
}

// Passes everything through unchanged.
class NoopStage : public Stage {
 public:
  TimePoint step(EventQueue& in, TimePoint, const Emitter& out) override {
    while (!in.empty()) {
      const TimePoint at = in.front().at;
      out(in.take_front(), at);
    }
    return kNever;
  }
  void update(const Attributes&, TimePoint) override {}
};

// Each chunk is released `latency +/- jitter` after it was read, never before the previous one.
// A chunk's release time is fixed when the stage first sees it, so an update of the attributes
// applies to data that arrives afterwards and what the stage already holds keeps its schedule.
class LatencyStage : public Stage {
 public:
  LatencyStage(const Attributes& a, std::uint64_t seed) : rng_(seed) { update(a, {}); }

  TimePoint step(EventQueue& in, TimePoint now, const Emitter& out) override {
    while (dues_.size() < in.size()) {
      const Event& e = in[dues_.size()];
      last_due_ = std::max(e.is_terminal() ? e.at : e.read_at + delay(), last_due_);
      dues_.push_back(last_due_);
    }
    while (!in.empty()) {
      const TimePoint due = dues_.front();
      if (due > now) return due;
      dues_.pop_front();
      out(in.take_front(), due);
    }
    return kNever;
  }
  void flush(EventQueue&, TimePoint now, const Emitter&, bool) override {
    dues_.clear();  // the pipeline passes the inbox on as is: everything held goes out now
    last_due_ = std::min(last_due_, now);
  }
  void update(const Attributes& a, TimePoint) override {
    latency_ = std::clamp<std::int64_t>(a[0], -kMaxMillis, kMaxMillis);
    jitter_ = clamp_ms(a[1]);
  }

 private:
  nanoseconds delay() {
    std::int64_t ms = latency_;
    if (jitter_ > 0)
      ms += static_cast<std::int64_t>(rng_() % static_cast<std::uint64_t>(2 * jitter_)) - jitter_;
    return milliseconds(ms);
  }
  std::int64_t latency_ = 0, jitter_ = 0;
  std::mt19937_64 rng_;
  std::deque<TimePoint> dues_;  // release times of the first dues_.size() events of the inbox
  TimePoint last_due_{};
};

// Passes `rate` KB/s (1 KB = 1000 bytes): a chunk of n bytes occupies the link n/rate ms; chunks
// larger than 100 ms worth are released in 100 ms pieces, as Toxiproxy does.
class BandwidthStage : public Stage {
 public:
  explicit BandwidthStage(const Attributes& a) { update(a, {}); }

  TimePoint step(EventQueue& in, TimePoint now, const Emitter& out) override {
    while (!in.empty()) {
      Event& e = in.front();
      if (e.is_terminal() || rate_ <= 0) {
        const TimePoint at = std::max(e.at, busy_until_);
        if (at > now) return at;
        busy_until_ = at;
        started_ = false;
        out(in.take_front(), at);  // the rest of a chunk begun at another rate goes at once
        continue;
      }
      if (!started_) {
        started_ = true;
        start_ = std::max(e.at, busy_until_);
        base_ = in.front_offset();
      }
      const std::size_t piece = static_cast<std::size_t>(std::min<std::int64_t>(rate_ * 100, 1 << 30));
      while (in.front_offset() < e.bytes.size()) {
        const std::size_t off = in.front_offset();
        const std::size_t n = std::min(piece, e.bytes.size() - off);
        const TimePoint due = start_ + transmit_time(off - base_ + n);
        if (due > now) return due;
        Event part = Event::data(e.bytes.substr(off, n), e.read_at);
        in.advance_front(n);
        busy_until_ = due;
        out(std::move(part), due);
      }
      started_ = false;
      in.pop_front();
    }
    return kNever;
  }

  void flush(EventQueue&, TimePoint now, const Emitter&, bool) override {
    started_ = false;  // the pipeline passes the unsent rest of the head chunk on
    busy_until_ = std::min(busy_until_, now);
  }

  void update(const Attributes& a, TimePoint now) override {
    const std::int64_t new_rate = std::clamp<std::int64_t>(a[0], 0, std::int64_t{1} << 40);
    if (started_ && new_rate != rate_) {
      // The head chunk's remainder continues at the new rate from now.
      started_ = false;
      busy_until_ = std::max(now, busy_until_);
    }
    rate_ = new_rate;
  }

 private:
  nanoseconds transmit_time(std::size_t bytes) const {
    // bytes / rate ms = bytes * 1e6 / rate ns, split to avoid overflow.
    const std::int64_t b = static_cast<std::int64_t>(bytes);
    return nanoseconds((b / rate_) * 1'000'000 + (b % rate_) * 1'000'000 / rate_);
  }

  std::int64_t rate_ = 0;
  bool started_ = false;
  TimePoint start_{};
  std::size_t base_ = 0;  // head offset when the current rate started on the head chunk
  TimePoint busy_until_{};
};

// Data passes; the end of the stream (or a close) is passed on `delay` ms after it arrived.
class SlowCloseStage : public Stage {
 public:
  explicit SlowCloseStage(const Attributes& a) { update(a, {}); }
  TimePoint step(EventQueue& in, TimePoint now, const Emitter& out) override {
    while (!in.empty()) {
      Event& e = in.front();
      TimePoint at = e.at;
      if (e.is_terminal()) {
        if (!reached_) reached_ = std::max(e.at, last_);
        at = add_ms(*reached_, delay_);
        if (at > now) return at;
        reached_.reset();
      }
      last_ = std::max(last_, at);
      out(in.take_front(), at);
    }
    return kNever;
  }
  void flush(EventQueue&, TimePoint, const Emitter&, bool) override { reached_.reset(); }
  void update(const Attributes& a, TimePoint) override { delay_ = clamp_ms(a[0]); }

 private:
  std::int64_t delay_ = 0;
  std::optional<TimePoint> reached_;
  TimePoint last_{};
};

// Swallows data; with timeout > 0 closes the connection `timeout` ms after it started or after the
// last chunk it swallowed. Removing it closes the connection (Toxiproxy's Cleanup does so). The end
// of the source is held, not lost: if the toxic is deactivated (toxicity lowered), it passes on.
class TimeoutStage : public Stage {
 public:
  explicit TimeoutStage(const Attributes& a) { update(a, {}); }
  TimePoint step(EventQueue& in, TimePoint now, const Emitter& out) override {
    if (fired_) {
      in.clear();
      return kNever;
    }
    while (!in.empty()) {
      Event& e = in.front();
      if (e.kind == EventKind::close || e.kind == EventKind::reset) {
        fired_ = true;
        const TimePoint at = e.at;
        out(in.take_front(), at);
        in.clear();
        return kNever;
      }
      if (e.kind == EventKind::data) last_ = std::max(last_, e.at);
      if (e.kind == EventKind::eof) eof_held_ = true;
      in.pop_front();  // data dropped, eof held (the connection is held open)
    }
    if (timeout_ <= 0) return kNever;
    const TimePoint due = add_ms(last_, timeout_);
    if (due > now) return due;
    fired_ = true;
    out(Event::terminal(EventKind::close, due), due);
    return kNever;
  }
  void flush(EventQueue& in, TimePoint now, const Emitter& out, bool removed) override {
    if (fired_) return;
    // What reached the toxic while it acted was swallowed, as it would have been.
    while (!in.empty()) {
      if (in.front().is_terminal()) eof_held_ = true;
      in.pop_front();
    }
    if (removed) {
      fired_ = true;
      out(Event::terminal(EventKind::close, now), now);
    } else if (eof_held_) {
      eof_held_ = false;
      out(Event::terminal(EventKind::eof, now), now);
    }
  }
  void update(const Attributes& a, TimePoint now) override {
    timeout_ = clamp_ms(a[0]);
    last_ = now;
  }
  void activate(TimePoint now) override { last_ = now; }

 private:
  std::int64_t timeout_ = 0;
  TimePoint last_{};
  bool fired_ = false, eof_held_ = false;
};

// At the first event, starts counting `timeout` ms, then resets the connection. What arrives in
// the meantime is held (it dies with the connection). If the toxic is removed or deactivated before
// it fires, everything it held passes on, in order, and the connection lives on.
class ResetPeerStage : public Stage {
 public:
  explicit ResetPeerStage(const Attributes& a) { update(a, {}); }
  TimePoint step(EventQueue& in, TimePoint now, const Emitter& out) override {
    if (fired_) {
      in.clear();
      return kNever;
    }
    if (!triggered_ && !in.empty()) triggered_ = in.front().at;
    if (!triggered_) return kNever;
    const TimePoint due = add_ms(*triggered_, timeout_);
    if (due > now) return due;  // everything stays in the inbox, held
    fired_ = true;
    in.clear();
    out(Event::terminal(EventKind::reset, due), due);
    return kNever;
  }
  void flush(EventQueue&, TimePoint, const Emitter&, bool) override {
    triggered_.reset();  // the pipeline passes the held inbox on as is
  }
  // The countdown keeps its start: a new timeout counts from the first event.
  void update(const Attributes& a, TimePoint) override { timeout_ = clamp_ms(a[0]); }

 private:
  std::int64_t timeout_ = 0;
  std::optional<TimePoint> triggered_;
  bool fired_ = false;
};

// Slices each chunk around average_size +/- size_variation bytes, `delay` microseconds apart. An
// update applies from the next slice on: the slice due next keeps its time, and a chunk already
// being sliced keeps its slice sizes.
class SlicerStage : public Stage {
 public:
  SlicerStage(const Attributes& a, std::uint64_t seed) : rng_(seed) { update(a, {}); }
  TimePoint step(EventQueue& in, TimePoint now, const Emitter& out) override {
    while (!in.empty()) {
      Event& e = in.front();
      if (e.is_terminal()) {
        const TimePoint at = std::max(e.at, busy_until_);
        if (at > now) return at;
        out(in.take_front(), at);
        continue;
      }
      if (!started_) {
        started_ = true;
        next_due_ = std::max(e.at, busy_until_);
        base_ = in.front_offset();
        offsets_ = slice_offsets(e.bytes.size() - base_, average_, variation_, rng_);
        next_ = 0;
      }
      while (next_ + 1 < offsets_.size()) {
        if (next_due_ > now) return next_due_;
        const std::size_t b = base_ + offsets_[next_], n = offsets_[next_ + 1] - offsets_[next_];
        out(Event::data(e.bytes.substr(b, n), e.read_at), next_due_);
        in.advance_front(n);
        next_ += 2;
        busy_until_ = next_due_ + microseconds(delay_us_);
        next_due_ = busy_until_;
      }
      started_ = false;
      in.pop_front();
    }
    return kNever;
  }
  void flush(EventQueue&, TimePoint now, const Emitter&, bool) override {
    started_ = false;  // the pipeline passes the unsent rest of the head chunk on
    busy_until_ = std::min(busy_until_, now);
  }
  void update(const Attributes& a, TimePoint) override {
    average_ = std::max<std::int64_t>(a[0], 1);
    variation_ = std::max<std::int64_t>(a[1], 0);
    delay_us_ = std::clamp<std::int64_t>(a[2], 0, kMaxMillis * 1000);
  }

 private:
  std::mt19937_64 rng_;
  std::int64_t average_ = 1, variation_ = 0, delay_us_ = 0;
  bool started_ = false;
  TimePoint next_due_{}, busy_until_{};
  std::vector<std::size_t> offsets_;
  std::size_t next_ = 0;
  std::size_t base_ = 0;
};

// Passes `bytes` bytes in total over the connection's life, then closes it.
class LimitDataStage : public Stage {
 public:
  explicit LimitDataStage(const Attributes& a) { update(a, {}); }
  TimePoint step(EventQueue& in, TimePoint, const Emitter& out) override {
    while (!in.empty() && !closed_) {
      Event e = in.take_front();
      const TimePoint at = e.at;
      if (e.is_terminal()) {
        out(std::move(e), at);
        continue;
      }
      const std::uint64_t remaining = limit_ > transmitted_ ? limit_ - transmitted_ : 0;
      if (e.bytes.size() > remaining) e.bytes.resize(remaining);
      if (!e.bytes.empty()) {
        transmitted_ += e.bytes.size();
        out(std::move(e), at);
      }
      if (transmitted_ >= limit_) {
        closed_ = true;
        out(Event::terminal(EventKind::close, at), at);
      }
    }
    if (closed_) in.clear();
    return kNever;
  }
  void update(const Attributes& a, TimePoint) override {
    limit_ = static_cast<std::uint64_t>(std::max<std::int64_t>(a[0], 0));
  }

 private:
  std::uint64_t limit_ = 0, transmitted_ = 0;
  bool closed_ = false;
};

}  // namespace

void Stage::flush(EventQueue&, TimePoint, const Emitter&, bool) {}

const ToxicTypeInfo* find_toxic_type(std::string_view name) {
  for (const auto& t : registry())
    if (t.name == name) return &t;
  return nullptr;
}

const ToxicTypeInfo& toxic_type_info(ToxicType type) {
  return registry()[static_cast<std::size_t>(type)];
}

std::unique_ptr<Stage> make_stage(ToxicType type, const Attributes& a, std::uint64_t seed) {
  switch (type) {
    case ToxicType::latency:
      return std::make_unique<LatencyStage>(a, seed);
    case ToxicType::bandwidth:
      return std::make_unique<BandwidthStage>(a);
    case ToxicType::slow_close:
      return std::make_unique<SlowCloseStage>(a);
    case ToxicType::timeout:
      return std::make_unique<TimeoutStage>(a);
    case ToxicType::reset_peer:
      return std::make_unique<ResetPeerStage>(a);
    case ToxicType::slicer:
      return std::make_unique<SlicerStage>(a, seed);
    case ToxicType::limit_data:
      return std::make_unique<LimitDataStage>(a);
    case ToxicType::redis_error:
    case ToxicType::redis_delay:
    case ToxicType::mysql_error:
    case ToxicType::mysql_delay:
    case ToxicType::http_abort:
    case ToxicType::http_delay:  // built by make_protocol_stage, which needs their settings
    case ToxicType::noop:
      break;
  }
  return std::make_unique<NoopStage>();
}

namespace {
void slice_into(std::vector<std::size_t>& out, std::size_t start, std::size_t end, std::int64_t average,
                std::int64_t variation, std::mt19937_64& rng) {
  const auto size = static_cast<std::int64_t>(end - start);
  if (size - average <= variation || size <= 1) {
    out.push_back(start);
    out.push_back(end);
    return;
  }
  std::int64_t mid = static_cast<std::int64_t>(start) + size / 2;
  if (variation > 0)
    mid += static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(2 * variation)) - variation;
  // Keep both halves non-empty whatever the variation (Toxiproxy recursed forever there).
  mid =
      std::clamp<std::int64_t>(mid, static_cast<std::int64_t>(start) + 1, static_cast<std::int64_t>(end) - 1);
  slice_into(out, start, static_cast<std::size_t>(mid), average, variation, rng);
  slice_into(out, static_cast<std::size_t>(mid), end, average, variation, rng);
}
}  // namespace

std::vector<std::size_t> slice_offsets(std::size_t size, std::int64_t average, std::int64_t variation,
                                       std::mt19937_64& rng) {
  std::vector<std::size_t> out;
  if (size == 0) return out;
  slice_into(out, 0, size, std::max<std::int64_t>(average, 1), std::max<std::int64_t>(variation, 0), rng);
  return out;
}

std::uint64_t mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::uint64_t hash_string(std::string_view s, std::uint64_t seed) {
  std::uint64_t h = 0xcbf29ce484222325ULL ^ seed;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return mix64(h);
}

}  // namespace faultproxy
