// Test support for the protocol toxics (unit tests and fuzz targets): one connection's two links
// as bare Pipelines with one protocol toxic, and a ProtocolSession standing in for the connection.
//
// Usage:
//   testing_protocols::Connection2 c(ToxicType::redis_error, {{"commands", std::string("SET")}});
//   c.client_sends("*1\r\n$4\r\nPING\r\n", /*piece=*/3);   // returns what reached the server
//   c.server_sends("+PONG\r\n");
//   c.to_client();                                          // what the client got
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "faultproxy/pipeline.h"

namespace faultproxy::testing_protocols {

struct FakeSession : ProtocolSession {
  bool is_quiet = true;
  std::string head;
  int wakes = 0, actions = 0;
  void wake_downstream() override { ++wakes; }
  bool quiet() const override { return is_quiet; }
  std::string_view client_head() const override { return head; }
  void count_action(const std::string&, ToxicType) override { ++actions; }
};

// Both links of one connection with one protocol toxic (attributes by name over the defaults;
// invalid ones throw std::invalid_argument).
class Connection2 {
 public:
  Connection2(ToxicType type, std::vector<std::pair<std::string, AttributeValue>> attributes,
              float toxicity = 1, std::uint64_t seed = 1) {
    Attributes values = default_attributes(type);
    const auto& defs = toxic_type_info(type).attributes;
    for (const auto& [name, value] : attributes)
      for (std::size_t i = 0; i < defs.size(); ++i)
        if (defs[i].name == name) values[i] = value;
    auto compiled = compile_protocol_settings(type, values);
    if (!std::holds_alternative<std::shared_ptr<const ProtocolSettings>>(compiled))
      throw std::invalid_argument(std::get<std::string>(compiled));
    spec_ = ToxicSpec{.id = 1, .version = 1, .name = "t", .type = type, .toxicity = toxicity};
    spec_.settings = std::get<0>(compiled);
    up_ = std::make_unique<Pipeline>(seed, &session);
    down_ = std::make_unique<Pipeline>(seed + 1, &session);
    up_->apply({spec_}, now);
    if (has_response_half(type)) {
      ToxicSpec r = spec_;
      r.response_half = true;
      r.toxicity = 1;
      down_->apply({r}, now);
    }
  }

  // The client sends `bytes` in pieces of `piece`; returns what reached the server so far.
  std::string client_sends(std::string_view bytes, std::size_t piece = 1 << 20) {
    return feed(*up_, bytes, piece, to_server_);
  }
  std::string server_sends(std::string_view bytes, std::size_t piece = 1 << 20) {
    return feed(*down_, bytes, piece, to_client_);
  }
  // Runs both links at `now` (timers, answers ready).
  void run() {
    drain(*up_, to_server_);
    drain(*down_, to_client_);
  }
  void remove_toxic() {
    up_->apply({}, now);
    down_->apply({}, now);
    run();
  }
  const std::string& to_server() const { return to_server_; }
  const std::string& to_client() const { return to_client_; }
  bool client_closed() const { return closed_; }

  FakeSession session;
  TimePoint now = TimePoint{} + std::chrono::hours(1);

 private:
  std::string feed(Pipeline& p, std::string_view bytes, std::size_t piece, std::string& sink) {
    while (!bytes.empty()) {
      p.push(Event::data(std::string(bytes.substr(0, piece)), now), now);
      bytes.remove_prefix(std::min(piece, bytes.size()));
      drain(p, sink);
    }
    return sink;
  }
  void drain(Pipeline& p, std::string& sink) {
    p.run(now);
    while (!p.output().empty()) {
      Event e = p.output().take_front();
      if (e.kind == EventKind::data) {
        sink += e.bytes;
      } else if (e.kind == EventKind::close) {
        closed_ = true;
      }
    }
  }

  ToxicSpec spec_;
  std::unique_ptr<Pipeline> up_, down_;
  std::string to_server_, to_client_;
  bool closed_ = false;
};

}  // namespace faultproxy::testing_protocols
