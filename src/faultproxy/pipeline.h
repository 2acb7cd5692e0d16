// The chain of toxic stages on one link (one direction of one connection), without any I/O.
//
// The link's reader pushes events in; run(now) moves them through the stages; the writer takes
// what reached output(). apply() brings the chain in line with the proxy's current toxics for this
// direction (add, update, remove, toxicity change) while events are in flight: a removed or
// deactivated stage hands everything it holds to the next one in order, so bytes are never lost,
// duplicated or reordered by a change.
//
// Toxicity is decided once per connection and toxic: a number u in [0,1) is derived from the
// connection's seed and the toxic's name, and the toxic acts on this connection while
// u < toxicity. Raising or lowering the toxicity later moves the threshold, not the dice.
//
// Usage:
//   Pipeline p(seed);
//   p.apply({{.id = 1, .name = "lat", .type = ToxicType::latency, .toxicity = 1, .attributes = {100}}}, now);
//   p.push(Event::data("abc", now), now);
//   TimePoint wake = p.run(now);                // arm a timer for `wake`
//   while (!p.output().empty()) write(p.output().take_front());
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "faultproxy/cidr.h"
#include "faultproxy/protocol_toxics.h"
#include "faultproxy/toxics.h"

namespace faultproxy {

// A toxic as the data plane sees it. `id` identifies one toxic for its whole life; `version`
// changes on every update.
struct ToxicSpec {
  std::uint64_t id = 0;
  std::uint64_t version = 0;
  std::string name;
  ToxicType type = ToxicType::noop;
  float toxicity = 1.0f;
  Attributes attributes{};
  // Our extension: the toxic acts only on connections whose client address is in this network
  // (absent: on every connection). See toxics_for_client().
  std::optional<Cidr> client_cidr{};
  // The proxy-wide send schedule of a bandwidth toxic (used with per_proxy), one per toxic.
  std::shared_ptr<SharedSchedule> schedule{};
  // Protocol toxics (protocol_toxics.h): their compiled attributes, and which half this is (the
  // response half, on the downstream link, always acts: the request half's toxicity decides).
  std::shared_ptr<const ToxicSettings> settings{};
  bool response_half = false;
};

// The toxicity dice for (connection seed, toxic name): uniform in [0,1).
double toxicity_roll(std::uint64_t connection_seed, std::string_view toxic_name);

class Pipeline;

// The part of a direction's toxics that concerns a connection whose client is at `client` (unknown:
// only toxics without a client_cidr), computed when toxics change, never per chunk. A toxic whose
// client_cidr does not cover the client is left out, so a connection that no toxic concerns keeps
// the link's fast path; but if `current` (the link's pipeline, may be null) has it acting, it is
// kept with toxicity 0: deactivated exactly as a toxicity update would (what it holds flows on, a
// timeout does not close the connection), then dropped at the next change.
std::vector<ToxicSpec> toxics_for_client(const std::vector<ToxicSpec>& toxics,
                                         const std::optional<IpAddress>& client, const Pipeline* current);

class Pipeline {
 public:
  // `session`: the connection, for protocol toxics (null: they pass everything).
  explicit Pipeline(std::uint64_t connection_seed, ProtocolSession* session = nullptr)
      : seed_(connection_seed), session_(session) {}

  // Called with the toxic's name whenever a toxic starts acting on this link (for metrics; not
  // for a protocol toxic's response half).
  void on_activation(std::function<void(const ToxicSpec&)> f) { on_activation_ = std::move(f); }

  // Brings the chain in line with `toxics` (this direction's toxics, in order).
  void apply(const std::vector<ToxicSpec>& toxics, TimePoint now);
  // An event from the reader.
  void push(Event e, TimePoint now);
  // Moves events through the stages; returns when to call run() again (kNever: on new input).
  TimePoint run(TimePoint now);

  EventQueue& output() { return output_; }
  std::size_t output_bytes() const { return output_.bytes(); }
  // Bytes held anywhere in the chain, output included.
  std::size_t buffered_bytes() const;
  std::size_t stage_count() const { return entries_.size(); }
  // The toxic of that id has a stage here and it is acting (not turned off by its toxicity).
  bool acting(std::uint64_t toxic_id) const;
  // No stages and nothing held: the link may go back to its fast path.
  bool idle() const { return entries_.empty() && output_.empty(); }

 private:
  struct Entry {
    ToxicSpec spec;
    std::unique_ptr<Stage> stage;
    EventQueue inbox;
    double roll = 0;
    bool active = false;
  };
  EventQueue& next_inbox(std::size_t i) { return i + 1 < entries_.size() ? entries_[i + 1]->inbox : output_; }
  void flush_entry(std::size_t i, TimePoint now, bool removed, bool was_active);

  std::unique_ptr<Stage> make_entry_stage(const ToxicSpec& spec) const;

  std::uint64_t seed_;
  ProtocolSession* session_;
  std::vector<std::unique_ptr<Entry>> entries_;
  EventQueue output_;
  std::function<void(const ToxicSpec&)> on_activation_;
};

}  // namespace faultproxy
