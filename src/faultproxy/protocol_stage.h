// Internal to the protocol toxics (protocol_toxics.h): the two stage skeletons that
// redis_toxics.cpp, mysql_toxics.cpp and http_toxics.cpp fill in with their protocol's framing.
//
// RequestHalf (upstream link) reads the client's messages: a protocol's consume() frames them and,
// per message, decide()s to pass, drop (answered or replaced by the toxic) or delay it; route()
// sends bytes where the current message's decision says. Bytes read before the decision wait in
// the stage. What passes is released in order (a delayed message holds back what follows it).
//
// ResponseHalf (downstream link) reads the server's answers: a protocol's consume() frames them,
// resolves the exchange's slots in order and puts the toxic's answers where they belong.
#pragma once

#include <chrono>
#include <random>

#include "faultproxy/protocol_toxics.h"

namespace faultproxy::protocol {

// Events waiting for their release time, released in order.
class Release {
 public:
  void push(Event e, TimePoint due);
  TimePoint run(TimePoint now, const Emitter& out);
  void flush(TimePoint now, const Emitter& out);
  bool empty() const { return q_.empty(); }
  std::size_t bytes() const { return bytes_; }

 private:
  struct Item {
    Event event;
    TimePoint due;
  };
  std::deque<Item> q_;
  std::size_t bytes_ = 0;
  TimePoint last_{};
};

class RequestHalf : public Stage {
 public:
  RequestHalf(const ProtocolStageSpec& spec, std::uint64_t seed, ProtocolSession* session,
              bool uses_exchange);

  TimePoint step(EventQueue& in, TimePoint now, const Emitter& out) final;
  void flush(EventQueue& in, TimePoint now, const Emitter& out, bool removed) final;
  void update(const Attributes&, TimePoint) final {}
  void update_settings(const std::shared_ptr<const ToxicSettings>& settings, TimePoint) final;
  void activate(TimePoint) final;
  std::size_t held_bytes() const final { return release_.bytes() + pending_.size(); }

 protected:
  enum class Action : std::uint8_t { undecided, pass, drop, delay };

  // Frames `data` (the next bytes of the client's stream), calling the helpers below.
  virtual void consume(std::string_view data) = 0;
  // Framing starts afresh (the toxic starts interpreting the connection here).
  virtual void restart() = 0;
  // Whether the connection can be interpreted from here (MySQL: not TLS, not compressed).
  virtual bool interpretable() { return true; }

  // A message starts with the next byte routed.
  void begin_message();
  void route(std::string_view bytes);
  void decide(Action action, TimePoint due = {});
  void end_message() {
    if (mode_ == Mode::synced) action_ = Action::undecided;  // opaque: everything passes
  }
  // Bytes sent to the server in place of the current message (which the caller drops).
  void substitute(std::string bytes);
  // `latency +/- jitter` ms after the current message's first byte was read.
  TimePoint delay_due(std::int64_t latency, std::int64_t jitter);
  void push_slot(ExchangeSlot slot);
  // Nothing more is interpreted on this connection (by either half).
  void go_opaque();
  void count_action();
  bool acting_on_messages() const { return mode_ == Mode::synced; }

  const ProtocolSettings& settings() const { return *settings_; }
  Exchange* exchange() { return exchange_.get(); }
  ProtocolSession* session() { return session_; }
  std::mt19937_64& rng() { return rng_; }

 private:
  enum class Mode : std::uint8_t { unsynced, synced, opaque };
  void try_sync();

  ProtocolStageSpec spec_;
  std::shared_ptr<const ProtocolSettings> settings_;
  ProtocolSession* session_;
  std::shared_ptr<Exchange> exchange_;
  std::mt19937_64 rng_;
  Mode mode_ = Mode::unsynced;
  Action action_ = Action::undecided;
  TimePoint due_{};
  TimePoint cur_read_at_{}, cur_at_{}, msg_read_at_{};
  std::string pending_;  // the current message's bytes read before its decision
  Release release_;
};

class ResponseHalf : public Stage {
 public:
  ResponseHalf(const ProtocolStageSpec& spec, ProtocolSession* session);

  TimePoint step(EventQueue& in, TimePoint now, const Emitter& out) final;
  void flush(EventQueue& in, TimePoint now, const Emitter& out, bool removed) final;
  void update(const Attributes&, TimePoint) final {}
  std::size_t held_bytes() const override { return 0; }

 protected:
  // Frames `data` (the next bytes of the server's stream), calling the helpers below.
  virtual void consume(std::string_view data) = 0;
  virtual void restart() = 0;
  // The server ended its stream (HTTP: a response delimited by the close ends here).
  virtual void server_ended() {}
  // Bytes held until a decision (the start of a packet): handed over when the toxic goes.
  virtual std::string take_held() { return {}; }

  void pass(std::string_view bytes);
  void answer(std::string_view bytes);
  // Emits the answers at the front of the exchange (their turn has come).
  void emit_ready_answers();
  // Closes the connection after what was emitted (an answer with close_after, a cut).
  void close_connection();
  // The front slot's answer has come: pops it, then emits the answers now at the front.
  void resolve_front();
  void go_opaque();
  // The server's stream is not what the protocol says: the answers promised go out now, in order,
  // and nothing more is interpreted.
  void give_up();
  // Still framing the server's stream (not opaque, not closed).
  bool interpreting() const { return !closed_ && engaged(); }
  Exchange& exchange() { return *exchange_; }
  bool closed() const { return closed_; }

 private:
  bool engaged() const;

  std::shared_ptr<Exchange> exchange_;
  const Emitter* out_ = nullptr;
  TimePoint now_{};
  TimePoint read_at_{};
  bool closed_ = false;
};

std::unique_ptr<Stage> make_redis_stage(const ProtocolStageSpec& spec, std::uint64_t seed,
                                        ProtocolSession* session);
std::unique_ptr<Stage> make_mysql_stage(const ProtocolStageSpec& spec, std::uint64_t seed,
                                        ProtocolSession* session);
std::unique_ptr<Stage> make_http_stage(const ProtocolStageSpec& spec, std::uint64_t seed,
                                       ProtocolSession* session);

}  // namespace faultproxy::protocol
