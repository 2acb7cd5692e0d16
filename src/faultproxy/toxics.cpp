#include "faultproxy/toxics.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "faultproxy/go/json.h"

namespace faultproxy {
namespace {

// A number in an attribute error, as Go's encoding/json writes it (the values are finite).
std::string go_number(double v) {
  return go::json::encode_float64(v).value_or("0");
}

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

using K = AttributeKind;

// Distribution names for latency's `distribution` (netem's, plus today's uniform).
constexpr std::array<std::string_view, 4> kDistributions = {"uniform", "normal", "pareto", "paretonormal"};

const std::vector<ToxicTypeInfo>& registry() {
  static const std::vector<ToxicTypeInfo> types = {
      {ToxicType::latency,
       "latency",
       "LatencyToxic",
       {{"latency"}, {"jitter"}, {"distribution", K::text, std::string("uniform"), false}},
       "int64"},
      {ToxicType::bandwidth,
       "bandwidth",
       "BandwidthToxic",
       {{"rate"}, {"per_proxy", K::flag, false, false}},
       "int64"},
      {ToxicType::slow_close, "slow_close", "SlowCloseToxic", {{"delay"}}, "int64"},
      {ToxicType::timeout, "timeout", "TimeoutToxic", {{"timeout"}}, "int64"},
      {ToxicType::reset_peer, "reset_peer", "ResetToxic", {{"timeout"}}, "int64"},
      {ToxicType::slicer, "slicer", "SlicerToxic", {{"average_size"}, {"size_variation"}, {"delay"}}, "int"},
      {ToxicType::limit_data, "limit_data", "LimitDataToxic", {{"bytes"}}, "int64"},
      {ToxicType::noop, "noop", "NoopToxic", {}, "int64"},
      // faultproxy's own; packet_loss as upstream Toxiproxy names it (PR #739).
      {ToxicType::packet_loss,
       "packet_loss",
       "PacketLossToxic",
       {{"loss_rate", K::number, 0.1}, {"correlation", K::number, 0.0}},
       "int64"},
      {ToxicType::tcp_loss,
       "tcp_loss",
       "TcpLossToxic",
       {{"loss_rate", K::number, 0.01}, {"burst", K::number, 1.0}, {"rto_ms", K::integer, std::int64_t{200}}},
       "int64"},
      {ToxicType::corrupt, "corrupt", "CorruptToxic", {{"rate", K::number, 0.0001}}, "int64"},
      {ToxicType::slow_open,
       "slow_open",
       "SlowOpenToxic",
       {{"delay", K::integer, std::int64_t{1000}}},
       "int64",
       ToxicScope::connection},
      {ToxicType::refuse, "refuse", "RefuseToxic", {}, "int64", ToxicScope::listener},
      // Protocol-aware toxics (protocol_toxics.h): checked and compiled by compile_protocol_settings.
      {ToxicType::redis_error,
       "redis_error",
       "RedisErrorToxic",
       {{"commands", K::text, std::string()},
        {"error", K::text, std::string("READONLY You can't write against a read only replica.")}},
       "int64"},
      {ToxicType::redis_delay,
       "redis_delay",
       "RedisDelayToxic",
       {{"commands", K::text, std::string()}, {"latency"}, {"jitter"}},
       "int64"},
      {ToxicType::mysql_error,
       "mysql_error",
       "MysqlErrorToxic",
       {{"statement", K::text, std::string()},
        {"code", K::integer, std::int64_t{1213}},
        {"sqlstate", K::text, std::string()},
        {"message", K::text, std::string()}},
       "int64"},
      {ToxicType::mysql_delay,
       "mysql_delay",
       "MysqlDelayToxic",
       {{"statement", K::text, std::string()}, {"latency"}, {"jitter"}},
       "int64"},
      {ToxicType::http_abort,
       "http_abort",
       "HttpAbortToxic",
       {{"status", K::integer, std::int64_t{503}},
        {"percentage", K::number, 100.0},
        {"method", K::text, std::string()},
        {"path_prefix", K::text, std::string()},
        {"header", K::text, std::string()},
        {"body", K::text, std::string()}},
       "int64"},
      {ToxicType::http_delay,
       "http_delay",
       "HttpDelayToxic",
       {{"percentage", K::number, 100.0},
        {"method", K::text, std::string()},
        {"path_prefix", K::text, std::string()},
        {"header", K::text, std::string()},
        {"latency"}},
       "int64"},
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

// A uniform draw in [0, 1) with 53 random bits.
double unit_draw(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0);
}

// netem's delay distributions as tables of 4096 values in units of jitter, built the way iproute2's
// generators build them (normal.c, pareto.c, paretonormal.c: Pareto with a = 3 shifted to mean 0;
// paretonormal = (normal + 3 * pareto) / 4 of the same quantile), clamped to +/-32767/8192 as
// netem's 16-bit tables are. A draw is one entry at random, as netem's tabledist does.
using DistributionTable = std::array<double, 4096>;

// Phi^-1 by Newton's method from 0: Phi is convex left of 0 and concave right of it, so the
// iterates approach the root from one side and never overshoot. A dozen steps at the tails, where
// the bisection this replaces took 100 (the three tables cost ~20 ms at the first latency toxic
// of a process, stalling that connection's data).
double normal_quantile(double u) {
  if (u > 0.5) return -normal_quantile(1.0 - u);
  const double inv_sqrt_2pi = 0.3989422804014327;
  double x = 0;
  for (int i = 0; i < 100; ++i) {
    const double step = (0.5 * std::erfc(-x / std::sqrt(2.0)) - u) / (inv_sqrt_2pi * std::exp(-x * x / 2));
    x -= step;
    if (std::abs(step) <= 1e-15 * (1 + std::abs(x))) break;
  }
  return x;
}

double pareto_quantile(double u) {  // u in [0, 1): a = 3, x_m = 1, mean 1.5 moved to 0, scaled 4/3
  return (4.0 / 3.0) * (1.0 / std::cbrt(1.0 - u) - 1.5);
}

constexpr double kTableLimit = 32767.0 / 8192.0;

template <typename Quantile>
DistributionTable build_table(Quantile quantile) {
  DistributionTable t{};
  for (std::size_t k = 0; k < t.size(); ++k) {
    const double u = (static_cast<double>(k) + 0.5) / static_cast<double>(t.size());
    t[k] = std::clamp(quantile(u), -kTableLimit, kTableLimit);
  }
  return t;
}

// Each table is built the first time a toxic asks for it by name; the uniform distribution (every
// latency toxic without `distribution`) never builds one.
const DistributionTable* distribution_table(std::string_view name) {
  if (name == "normal") {
    static const DistributionTable normal = build_table(normal_quantile);
    return &normal;
  }
  if (name == "pareto") {
    static const DistributionTable pareto = build_table(pareto_quantile);
    return &pareto;
  }
  if (name == "paretonormal") {
    static const DistributionTable paretonormal =
        build_table([](double u) { return (normal_quantile(u) + 3 * pareto_quantile(u)) / 4; });
    return &paretonormal;
  }
  return nullptr;  // uniform
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

// Releases each event, in order, at a time fixed when the stage first sees it (data_due), never
// before the event ahead of it; an end of stream goes right after the data before it. What it
// holds goes out at once on removal or deactivation.
class FixedScheduleStage : public Stage {
 public:
  TimePoint step(EventQueue& in, TimePoint now, const Emitter& out) override {
    while (dues_.size() < in.size()) {
      const Event& e = in[dues_.size()];
      last_due_ = std::max(e.is_terminal() ? e.at : data_due(e), last_due_);
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

 protected:
  virtual TimePoint data_due(const Event& e) = 0;

 private:
  std::deque<TimePoint> dues_;  // release times of the first dues_.size() events of the inbox
  TimePoint last_due_{};
};

// Each chunk is released `latency +/- jitter` after it was read, never before the previous one.
// A chunk's release time is fixed when the stage first sees it, so an update of the attributes
// applies to data that arrives afterwards and what the stage already holds keeps its schedule.
class LatencyStage : public FixedScheduleStage {
 public:
  LatencyStage(const Attributes& a, std::uint64_t seed) : rng_(seed) { update(a, {}); }

  void update(const Attributes& a, TimePoint) override {
    latency_ = std::clamp<std::int64_t>(a.integer(0), -kMaxMillis, kMaxMillis);
    jitter_ = clamp_ms(a.integer(1));
    table_ = distribution_table(a.text(2));
  }

 private:
  nanoseconds delay() {
    std::int64_t ms = latency_;
    if (jitter_ > 0 && table_) {  // latency + jitter * a draw from netem's table
      const double t = (*table_)[rng_() % table_->size()];
      return nanoseconds(
          std::llround((static_cast<double>(latency_) + static_cast<double>(jitter_) * t) * 1e6));
    }
    if (jitter_ > 0)
      ms += static_cast<std::int64_t>(rng_() % static_cast<std::uint64_t>(2 * jitter_)) - jitter_;
    return milliseconds(ms);
  }
  TimePoint data_due(const Event& e) override { return e.read_at + delay(); }
  std::int64_t latency_ = 0, jitter_ = 0;
  const DistributionTable* table_ = nullptr;  // null: uniform, Toxiproxy's +/- jitter
  std::mt19937_64 rng_;
};

// Passes `rate` KB/s (1 KB = 1000 bytes): a chunk of n bytes occupies the link n/rate ms; chunks
// larger than 100 ms worth are released in 100 ms pieces, as Toxiproxy does. With per_proxy, every
// piece reserves its time on the proxy's shared schedule instead: the connections share the rate.
class BandwidthStage : public Stage {
 public:
  BandwidthStage(const Attributes& a, std::shared_ptr<SharedSchedule> shared) : shared_(std::move(shared)) {
    update(a, {});
  }

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
      if (per_proxy_) {
        if (const TimePoint t = step_shared(in, now, out); t != kNever) return t;
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
    piece_due_ = kNever;
    busy_until_ = std::min(busy_until_, now);
  }

  void update(const Attributes& a, TimePoint now) override {
    const std::int64_t new_rate = std::clamp<std::int64_t>(a.integer(0), 0, std::int64_t{1} << 40);
    const bool new_per_proxy = a.flag(1) && shared_;
    if ((started_ || piece_due_ != kNever) && (new_rate != rate_ || new_per_proxy != per_proxy_)) {
      // The head chunk's remainder continues at the new rate from now (a reserved shared slot is
      // given up: the rest is scheduled anew).
      started_ = false;
      piece_due_ = kNever;
      busy_until_ = std::max(now, busy_until_);
    }
    rate_ = new_rate;
    per_proxy_ = new_per_proxy;
  }

 private:
  // One piece of the head chunk on the shared schedule: reserved once, released when its slot ends.
  TimePoint step_shared(EventQueue& in, TimePoint now, const Emitter& out) {
    const Event& e = in.front();
    const std::size_t piece = static_cast<std::size_t>(std::min<std::int64_t>(rate_ * 100, 1 << 30));
    const std::size_t off = in.front_offset();
    const std::size_t n = std::min(piece, e.bytes.size() - off);
    if (piece_due_ == kNever) piece_due_ = shared_->reserve(std::max(e.at, busy_until_), transmit_time(n));
    if (piece_due_ > now) return piece_due_;
    Event part = Event::data(e.bytes.substr(off, n), e.read_at);
    busy_until_ = piece_due_;
    piece_due_ = kNever;
    if (off + n == e.bytes.size()) {
      in.pop_front();
    } else {
      in.advance_front(n);
    }
    out(std::move(part), busy_until_);
    return kNever;
  }

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
  std::shared_ptr<SharedSchedule> shared_;
  bool per_proxy_ = false;
  TimePoint piece_due_ = kNever;  // per_proxy: end of the slot reserved for the head piece
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
  void update(const Attributes& a, TimePoint) override { delay_ = clamp_ms(a.integer(0)); }

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
    timeout_ = clamp_ms(a.integer(0));
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
  void update(const Attributes& a, TimePoint) override { timeout_ = clamp_ms(a.integer(0)); }

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
    average_ = std::max<std::int64_t>(a.integer(0), 1);
    variation_ = std::max<std::int64_t>(a.integer(1), 0);
    delay_us_ = std::clamp<std::int64_t>(a.integer(2), 0, kMaxMillis * 1000);
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
    limit_ = static_cast<std::uint64_t>(std::max<std::int64_t>(a.integer(0), 0));
  }

 private:
  std::uint64_t limit_ = 0, transmitted_ = 0;
  bool closed_ = false;
};

// Upstream Toxiproxy's packet_loss: each chunk is dropped with probability loss_rate, or
// loss_rate + correlation right after a drop (capped at 1). Ends of stream always pass.
class PacketLossStage : public Stage {
 public:
  PacketLossStage(const Attributes& a, std::uint64_t seed) : rng_(seed) { update(a, {}); }
  TimePoint step(EventQueue& in, TimePoint, const Emitter& out) override {
    while (!in.empty()) {
      if (!in.front().is_terminal()) {
        const double p = dropped_ ? std::min(1.0, loss_rate_ + correlation_) : loss_rate_;
        dropped_ = unit_draw(rng_) < p;
        if (dropped_) {
          in.pop_front();
          continue;
        }
      }
      const TimePoint at = in.front().at;
      out(in.take_front(), at);
    }
    return kNever;
  }
  void update(const Attributes& a, TimePoint) override {
    loss_rate_ = std::clamp(a.number(0), 0.0, 1.0);
    correlation_ = std::clamp(a.number(1), 0.0, 1.0);
  }

 private:
  std::mt19937_64 rng_;
  double loss_rate_ = 0, correlation_ = 0;
  bool dropped_ = false;
};

// Loss as TCP shows it to the application: nothing is lost, the direction stalls. Each chunk is
// cut into segments of kSegment bytes; a two-state Gilbert-Elliott chain decides per segment
// whether it is lost (mean loss rate loss_rate, mean losses in a row burst), and each loss holds
// the chunk (and everything behind it) for the retransmission timeout, doubled for each loss in a
// row, as TCP's exponential backoff does (capped at Linux's TCP_RTO_MAX, 120 s).
class TcpLossStage : public FixedScheduleStage {
 public:
  static constexpr std::size_t kSegment = 1448;  // a 1500-byte MTU's payload with TCP timestamps
  static constexpr std::int64_t kMaxRtoMs = 120'000;

  TcpLossStage(const Attributes& a, std::uint64_t seed) : rng_(seed) { update(a, {}); }
  void update(const Attributes& a, TimePoint) override {
    const double p = std::clamp(a.number(0), 0.0, 0.999999);
    const double burst = std::max(a.number(1), 1.0);
    to_good_ = 1.0 / burst;                             // mean stay in "bad": burst segments
    to_bad_ = std::min(1.0, p * to_good_ / (1.0 - p));  // stationary loss rate: p
    rto_ms_ = std::clamp<std::int64_t>(a.integer(2), 0, kMaxRtoMs);
  }

 private:
  TimePoint data_due(const Event& e) override { return e.at + stall(e.bytes.size()); }
  nanoseconds stall(std::size_t bytes) {
    nanoseconds total{0};
    const std::size_t segments = std::max<std::size_t>(1, (bytes + kSegment - 1) / kSegment);
    for (std::size_t i = 0; i < segments; ++i) {
      bad_ = unit_draw(rng_) < (bad_ ? 1.0 - to_good_ : to_bad_);
      if (!bad_) {
        in_a_row_ = 0;
        continue;
      }
      std::int64_t rto = rto_ms_;
      for (int k = 0; k < in_a_row_ && rto < kMaxRtoMs; ++k)
        rto *= 2;
      total += milliseconds(std::min(rto, kMaxRtoMs));
      ++in_a_row_;
    }
    return total;
  }
  std::mt19937_64 rng_;
  double to_bad_ = 0, to_good_ = 1;
  std::int64_t rto_ms_ = 0;
  bool bad_ = false;
  int in_a_row_ = 0;
};

// Flips one random bit of each byte chosen with probability `rate`; the gaps between chosen bytes
// are drawn geometrically, so the cost is per flipped byte, not per byte.
class CorruptStage : public Stage {
 public:
  CorruptStage(const Attributes& a, std::uint64_t seed) : rng_(seed) { update(a, {}); }
  TimePoint step(EventQueue& in, TimePoint, const Emitter& out) override {
    while (!in.empty()) {
      const TimePoint at = in.front().at;
      Event e = in.take_front();
      std::uint64_t pos = skip_;
      while (pos < e.bytes.size()) {
        e.bytes[pos] = static_cast<char>(static_cast<unsigned char>(e.bytes[pos]) ^ (1u << (rng_() % 8)));
        pos += 1 + gap();
      }
      skip_ = pos - e.bytes.size();
      out(std::move(e), at);
    }
    return kNever;
  }
  void update(const Attributes& a, TimePoint) override {
    const double rate = std::clamp(a.number(0), 0.0, 1.0);
    if (rate == rate_) return;
    rate_ = rate;
    skip_ = gap();
  }

 private:
  // Bytes left intact before the next flipped one.
  std::uint64_t gap() {
    constexpr auto kNone = std::numeric_limits<std::uint64_t>::max() / 2;
    if (rate_ <= 0) return kNone;
    if (rate_ >= 1) return 0;
    const double g = std::floor(std::log1p(-unit_draw(rng_)) / std::log1p(-rate_));
    return g >= static_cast<double>(kNone) ? kNone : static_cast<std::uint64_t>(g);
  }
  std::mt19937_64 rng_;
  double rate_ = -1;
  std::uint64_t skip_ = 0;
};

}  // namespace

void Stage::flush(EventQueue&, TimePoint, const Emitter&, bool) {}

std::int64_t Attributes::integer(std::size_t i) const {
  if (const auto* v = std::get_if<std::int64_t>(&values_[i])) return *v;
  return 0;
}

double Attributes::number(std::size_t i) const {
  if (const auto* v = std::get_if<double>(&values_[i])) return *v;
  if (const auto* v = std::get_if<std::int64_t>(&values_[i])) return static_cast<double>(*v);
  return 0;
}

const std::string& Attributes::text(std::size_t i) const {
  static const std::string empty;
  if (const auto* v = std::get_if<std::string>(&values_[i])) return *v;
  return empty;
}

bool Attributes::flag(std::size_t i) const {
  if (const auto* v = std::get_if<bool>(&values_[i])) return *v;
  return false;
}

Attributes default_attributes(ToxicType type) {
  Attributes a;
  const auto& specs = toxic_type_info(type).attributes;
  for (std::size_t i = 0; i < specs.size(); ++i)
    a[i] = specs[i].default_value;
  return a;
}

std::optional<std::string> validate_attributes(ToxicType type, const Attributes& a) {
  auto between = [&](std::size_t i, double lo, double hi) -> std::optional<std::string> {
    const double v = a.number(i);
    if (v >= lo && v <= hi) return std::nullopt;
    return std::string(toxic_type_info(type).attributes[i].name) + ": not between " + go_number(lo) +
           " and " + go_number(hi) + ": " + go_number(v);
  };
  auto at_least = [&](std::size_t i, double lo) -> std::optional<std::string> {
    const double v = a.number(i);
    if (v >= lo) return std::nullopt;
    return std::string(toxic_type_info(type).attributes[i].name) + ": less than " + go_number(lo) + ": " +
           go_number(v);
  };
  switch (type) {
    case ToxicType::latency: {
      const std::string& d = a.text(2);
      if (std::find(kDistributions.begin(), kDistributions.end(), d) == kDistributions.end())
        return "distribution: not one of uniform, normal, pareto, paretonormal: " + d;
      return std::nullopt;
    }
    case ToxicType::packet_loss:
      if (auto e = between(0, 0, 1)) return e;
      return between(1, 0, 1);
    case ToxicType::tcp_loss: {
      if (auto e = between(0, 0, 1)) return e;
      if (auto e = at_least(1, 1)) return e;
      if (auto e = at_least(2, 0)) return e;
      // The chain enters a burst with probability loss_rate / (burst * (1 - loss_rate)): at most 1.
      const double p = a.number(0), burst = a.number(1);
      if (p > burst / (burst + 1))
        return "loss_rate: at most " + go_number(burst / (burst + 1)) + " with burst " + go_number(burst) +
               ": " + go_number(p);
      return std::nullopt;
    }
    case ToxicType::corrupt:
      return between(0, 0, 1);
    case ToxicType::slow_open:
      return at_least(0, 0);
    default:
      return std::nullopt;
  }
}

TimePoint SharedSchedule::reserve(TimePoint earliest, nanoseconds duration) {
  Clock::rep busy = busy_until_.load(std::memory_order_relaxed);
  for (;;) {
    const Clock::rep end = std::max(busy, earliest.time_since_epoch().count()) + duration.count();
    if (busy_until_.compare_exchange_weak(busy, end, std::memory_order_relaxed))
      return TimePoint(Clock::duration(end));
  }
}

const ToxicTypeInfo* find_toxic_type(std::string_view name) {
  for (const auto& t : registry())
    if (t.name == name) return &t;
  return nullptr;
}

const std::vector<ToxicTypeInfo>& toxic_types() {
  return registry();
}

const ToxicTypeInfo& toxic_type_info(ToxicType type) {
  return registry()[static_cast<std::size_t>(type)];
}

std::unique_ptr<Stage> make_stage(ToxicType type, const Attributes& a, std::uint64_t seed,
                                  std::shared_ptr<SharedSchedule> shared) {
  switch (type) {
    case ToxicType::latency:
      return std::make_unique<LatencyStage>(a, seed);
    case ToxicType::bandwidth:
      return std::make_unique<BandwidthStage>(a, std::move(shared));
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
    case ToxicType::packet_loss:
      return std::make_unique<PacketLossStage>(a, seed);
    case ToxicType::tcp_loss:
      return std::make_unique<TcpLossStage>(a, seed);
    case ToxicType::corrupt:
      return std::make_unique<CorruptStage>(a, seed);
    case ToxicType::redis_error:
    case ToxicType::redis_delay:
    case ToxicType::mysql_error:
    case ToxicType::mysql_delay:
    case ToxicType::http_abort:
    case ToxicType::http_delay:  // built by make_protocol_stage, which needs their settings
    case ToxicType::noop:
    case ToxicType::slow_open:  // not stream toxics: never given a stage by the data plane
    case ToxicType::refuse:
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
