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
// closed normally) or `reset` (both sockets closed with SO_LINGER 0, i.e. a TCP RST).
//
// Usage (what Pipeline does for a link):
//   auto stage = make_stage(ToxicType::latency, {100, 0, 0}, /*seed=*/42);
//   EventQueue in;
//   in.push_back(Event::data("hello", now));
//   Emitter out = ...;                        // collects (event, release time)
//   TimePoint next = stage->step(in, now, out);   // nothing yet: next == now + 100 ms
//   next = stage->step(in, next, out);            // "hello" emitted
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
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
  // Protocol-aware toxics (protocol_toxics.h): typed attributes in a ProtocolSettings.
  redis_error,
  redis_delay,
  mysql_error,
  mysql_delay,
  http_abort,
  http_delay,
  noop
};

// Up to three integer attributes, in the order Toxiproxy lists them (see attribute_names()).
using Attributes = std::array<std::int64_t, 3>;

struct ToxicTypeInfo {
  ToxicType type;
  std::string_view name;                     // "latency"
  std::string_view go_struct;                // "LatencyToxic", for Go-style decode errors
  std::vector<std::string_view> attributes;  // {"latency", "jitter"}
  std::string_view go_int_type;              // "int64" or "int"
};

const ToxicTypeInfo* find_toxic_type(std::string_view name);
const ToxicTypeInfo& toxic_type_info(ToxicType type);

// Attributes that are not three integers (the protocol toxics'), compiled once per change and
// shared, immutable, by every connection's stage.
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
  // New typed attributes (protocol toxics), as update().
  virtual void update_settings(const std::shared_ptr<const ToxicSettings>& /*settings*/, TimePoint /*now*/) {}
  // The stage (re)starts acting at `now` (link start, toxic added, or toxicity raised).
  virtual void activate(TimePoint /*now*/) {}
  // Bytes held inside the stage (not counting its inbox).
  virtual std::size_t held_bytes() const { return 0; }
};

// `seed` feeds the stage's own random numbers (jitter, slice sizes).
std::unique_ptr<Stage> make_stage(ToxicType type, const Attributes& attributes, std::uint64_t seed);

// Toxiproxy's slicer: offsets [0, a, a, b, b, ..., size] splitting `size` bytes around `average`
// +/- `variation` by recursive halving. Exposed for tests.
std::vector<std::size_t> slice_offsets(std::size_t size, std::int64_t average, std::int64_t variation,
                                       std::mt19937_64& rng);

// A deterministic 64-bit mix (splitmix64), used to derive per-connection, per-toxic seeds.
std::uint64_t mix64(std::uint64_t x);
std::uint64_t hash_string(std::string_view s, std::uint64_t seed);

}  // namespace faultproxy
