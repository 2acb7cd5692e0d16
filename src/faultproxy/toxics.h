// Toxics as pure state machines over (event, time): no sockets, no timers, no sleeps.
//
// A link (one direction of a proxied connection) is reader -> stages -> writer. The reader turns
// what it reads into timestamped Events; every toxic on the link is a Stage that consumes events
// from its inbox and emits events to the next stage (or the writer) when their time has come. The
// link owns one timer, armed at the earliest time any stage says it can make progress again.
//
// The semantics follow Toxiproxy 2.12's toxics (latency counted from the moment a chunk was read,
// bandwidth in KB/s with 1 KB = 1000 bytes, slicer's recursive halving, limit_data's per-connection
// byte count, ...). Where a toxic ends a connection it emits a terminal event: `close` (both sockets
// closed normally) or `reset` (both sockets closed with SO_LINGER 0, i.e. a TCP RST). Ours:
// packet_loss (upstream Toxiproxy's, after 2.12: drops chunks), tcp_loss (losses seen as TCP shows
// them: stalls of the retransmission timeout), corrupt (bit flips), latency distributions (netem's
// shapes) and a bandwidth shared by a proxy's connections. slow_open and refuse are no stages: the
// data plane and the listener act on them (ToxicScope).
//
// Usage (what Pipeline does for a link):
//   auto stage = make_stage(ToxicType::latency, {100, 0}, /*seed=*/42);
//   EventQueue in;
//   in.push_back(Event::data("hello", now));
//   Emitter out = ...;                        // collects (event, release time)
//   TimePoint next = stage->step(in, now, out);   // nothing yet: next == now + 100 ms
//   next = stage->step(in, next, out);            // "hello" emitted
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace faultproxy {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
inline constexpr TimePoint kNever = TimePoint::max();

enum class EventKind : std::uint8_t {
  data,   // bytes read from the source
  eof,    // the source closed its sending side: the writer half-closes the destination
  close,  // a toxic ends the connection: both sockets closed normally once earlier data is written
  reset,  // a toxic ends the connection abruptly: both sockets closed with a TCP RST
};

struct Event {
  EventKind kind = EventKind::data;
  std::string bytes;    // data only
  TimePoint read_at{};  // when the reader read it (latency counts from here)
  TimePoint at{};       // when it entered the current stage's inbox (its "virtual" arrival time)

  static Event data(std::string b, TimePoint t) { return Event{EventKind::data, std::move(b), t, t}; }
  static Event terminal(EventKind k, TimePoint t) { return Event{k, {}, t, t}; }
  bool is_terminal() const { return kind != EventKind::data; }
};

// A FIFO of events that keeps count of the data bytes in it (for backpressure). A stage that
// passes its head chunk on in pieces advances the head offset instead of copying the rest.
class EventQueue {
 public:
  bool empty() const { return q_.empty(); }
  std::size_t size() const { return q_.size(); }
  std::size_t bytes() const { return bytes_; }
  Event& front() { return q_.front(); }
  const Event& front() const { return q_.front(); }
  const Event& operator[](std::size_t i) const { return q_[i]; }
  // Bytes of the head event already passed on.
  std::size_t front_offset() const { return head_off_; }
  std::string_view front_rest() const { return std::string_view(q_.front().bytes).substr(head_off_); }
  void advance_front(std::size_t n) {
    n = std::min(n, q_.front().bytes.size() - head_off_);
    head_off_ += n;
    bytes_ -= n;
  }
  Event take_front() {
    Event e = std::move(q_.front());
    q_.pop_front();
    if (head_off_ > 0) e.bytes.erase(0, head_off_);
    bytes_ -= e.bytes.size();
    head_off_ = 0;
    return e;
  }
  void pop_front() {
    bytes_ -= q_.front().bytes.size() - head_off_;
    q_.pop_front();
    head_off_ = 0;
  }
  void push_back(Event e) {
    bytes_ += e.bytes.size();
    q_.push_back(std::move(e));
  }
  void clear() {
    q_.clear();
    bytes_ = 0;
    head_off_ = 0;
  }

 private:
  std::deque<Event> q_;
  std::size_t bytes_ = 0;
  std::size_t head_off_ = 0;
};

// Where a stage sends what it releases; `at` is the release time (may be earlier than the `now` of
// the step when a timer fired late), used as the event's arrival time at the next stage.
using Emitter = std::function<void(Event&&, TimePoint at)>;

enum class ToxicType : std::uint8_t {
  latency,
  bandwidth,
  slow_close,
  timeout,
  reset_peer,
  slicer,
  limit_data,
  noop,
  // faultproxy's own (the registry in toxics.cpp says which attributes each takes)
  packet_loss,
  tcp_loss,
  corrupt,
  slow_open,
  refuse,
  // Protocol-aware toxics (protocol_toxics.h): their attributes compiled into a ProtocolSettings.
  redis_error,
  redis_delay,
  mysql_error,
  mysql_delay,
  http_abort,
  http_delay,
};

// One attribute's value. Toxiproxy's toxics take integers; ours also floats, strings and booleans.
using AttributeValue = std::variant<std::int64_t, double, std::string, bool>;
inline constexpr std::size_t kMaxAttributes = 8;

// A toxic's attributes, in the order its ToxicTypeInfo lists them. `{100, 20}` sets the first
// ones (integers); the rest are integer 0 until set.
class Attributes {
 public:
  Attributes() = default;
  Attributes(std::initializer_list<AttributeValue> values) {
    std::size_t i = 0;
    for (const auto& v : values)
      if (i < values_.size()) values_[i++] = v;
  }
  AttributeValue& operator[](std::size_t i) { return values_[i]; }
  const AttributeValue& operator[](std::size_t i) const { return values_[i]; }
  std::size_t size() const { return values_.size(); }
  // Typed reads; a value of another kind reads as 0, 0.0, "" or false (the API stores each
  // attribute with its declared kind, so stages never see one).
  std::int64_t integer(std::size_t i) const;
  double number(std::size_t i) const;  // integers read as numbers too
  const std::string& text(std::size_t i) const;
  bool flag(std::size_t i) const;
  bool operator==(const Attributes&) const = default;

 private:
  std::array<AttributeValue, kMaxAttributes> values_{};
};

enum class AttributeKind : std::uint8_t { integer, number, text, flag };

struct AttributeSpec {
  std::string_view name;  // "latency"
  AttributeKind kind = AttributeKind::integer;
  AttributeValue default_value = std::int64_t{0};
  // False for our additions to Toxiproxy's toxics (latency's distribution, bandwidth's per_proxy):
  // answers leave them out while they hold their default, so they stay Toxiproxy's to the byte.
  bool echo_default = true;
};

// Where a toxic acts: on the bytes of one direction (a Stage), on each new connection before it
// reaches the upstream (slow_open), or on the proxy's listener (refuse).
enum class ToxicScope : std::uint8_t { stream, connection, listener };

struct ToxicTypeInfo {
  ToxicType type;
  std::string_view name;                  // "latency"
  std::string_view go_struct;             // "LatencyToxic", for Go-style decode errors
  std::vector<AttributeSpec> attributes;  // {"latency", "jitter", ...}
  std::string_view go_int_type;           // Go type of its integer attributes: "int64" or "int"
  ToxicScope scope = ToxicScope::stream;
};

const ToxicTypeInfo* find_toxic_type(std::string_view name);
// Every toxic type, in ToxicType's order (GET /toxic-types lists them).
const std::vector<ToxicTypeInfo>& toxic_types();
const ToxicTypeInfo& toxic_type_info(ToxicType type);
// The type's attributes at their defaults (Toxiproxy's: 0; ours: the documented defaults).
Attributes default_attributes(ToxicType type);
// Why `attributes` are unacceptable for `type` ("loss_rate: not between 0 and 1: 1.5"), or nullopt.
// Toxiproxy's own attributes take any integer, as in Toxiproxy.
std::optional<std::string> validate_attributes(ToxicType type, const Attributes& attributes);

// The send schedule that the connections of one proxy share (bandwidth with per_proxy): each piece
// of data reserves the next free slot. Connections run on several workers, hence atomic.
class SharedSchedule {
 public:
  // Reserves `duration` from `earliest` or the end of the last reservation, whichever is later;
  // returns the end of the slot.
  TimePoint reserve(TimePoint earliest, std::chrono::nanoseconds duration);

 private:
  std::atomic<Clock::rep> busy_until_{std::numeric_limits<Clock::rep>::min()};
};

// What a toxic's attributes compile to when its stages need more than the values (the protocol
// toxics': matchers, framed answers), compiled once per change and shared, immutable, by every
// connection's stage.
struct ToxicSettings {
  virtual ~ToxicSettings() = default;
};

// Durations given by users are clamped to this so that no arithmetic overflows (about 11.5 days).
inline constexpr std::int64_t kMaxMillis = 1'000'000'000;

class Stage {
 public:
  virtual ~Stage() = default;
  // Consumes events from the front of `in` as far as it can at `now`, emitting what is due.
  // Returns when it can make progress again without new input (kNever: only new input helps).
  virtual TimePoint step(EventQueue& in, TimePoint now, const Emitter& out) = 0;
  // The toxic is being removed or deactivated: everything it holds goes out now, in order, and
  // `in` is left holding only what must pass on as is (the caller does that: the unsent rest of a
  // chunk begun, and everything the stage held in its inbox). Only timeout may drop data here (it
  // swallowed it while it acted); nothing else is lost, duplicated or reordered.
  // `removed` distinguishes removal (timeout then closes the connection, as Toxiproxy does) from
  // deactivation through a toxicity update.
  virtual void flush(EventQueue& in, TimePoint now, const Emitter& out, bool removed);
  // New attributes; held data keeps its schedule, new data follows the new attributes.
  virtual void update(const Attributes& attributes, TimePoint now) = 0;
  // New compiled attributes (protocol toxics), as update().
  virtual void update_settings(const std::shared_ptr<const ToxicSettings>& /*settings*/, TimePoint /*now*/) {}
  // The stage (re)starts acting at `now` (link start, toxic added, or toxicity raised).
  virtual void activate(TimePoint /*now*/) {}
  // Bytes held inside the stage (not counting its inbox).
  virtual std::size_t held_bytes() const { return 0; }
};

// `seed` feeds the stage's own random numbers (jitter, slice sizes, losses). `shared`: the proxy's
// schedule for a bandwidth toxic with per_proxy (may be null otherwise).
std::unique_ptr<Stage> make_stage(ToxicType type, const Attributes& attributes, std::uint64_t seed,
                                  std::shared_ptr<SharedSchedule> shared = nullptr);

// Toxiproxy's slicer: offsets [0, a, a, b, b, ..., size] splitting `size` bytes around `average`
// +/- `variation` by recursive halving. Exposed for tests.
std::vector<std::size_t> slice_offsets(std::size_t size, std::int64_t average, std::int64_t variation,
                                       std::mt19937_64& rng);

// A deterministic 64-bit mix (splitmix64), used to derive per-connection, per-toxic seeds.
std::uint64_t mix64(std::uint64_t x);
std::uint64_t hash_string(std::string_view s, std::uint64_t seed);

}  // namespace faultproxy
