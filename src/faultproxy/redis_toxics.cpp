// redis_error and redis_delay (protocol_toxics.h) over RESP framing (resp_parser.h).
#include "faultproxy/protocol_stage.h"
#include "faultproxy/resp_parser.h"

namespace faultproxy::protocol {
namespace {

// Commands after which replies no longer answer commands one to one (subscriptions, MONITOR,
// replication, CLIENT REPLY OFF|SKIP): once one is forwarded, redis_error stops interpreting.
bool ends_request_response(const std::string& name, const std::string& arg) {
  return name == "SUBSCRIBE" || name == "PSUBSCRIBE" || name == "SSUBSCRIBE" || name == "UNSUBSCRIBE" ||
         name == "PUNSUBSCRIBE" || name == "SUNSUBSCRIBE" || name == "MONITOR" || name == "SYNC" ||
         name == "PSYNC" || (name == "CLIENT" && arg == "REPLY");
}

class RedisRequest final : public RequestHalf {
 public:
  RedisRequest(const ProtocolStageSpec& spec, std::uint64_t seed, ProtocolSession* session)
      : RequestHalf(spec, seed, session, spec.type == ToxicType::redis_error),
        answers_(spec.type == ToxicType::redis_error) {}

 private:
  void restart() override {
    scanner_ = RespScanner(RespScanner::Mode::commands);
    in_command_ = false;
  }

  void consume(std::string_view data) override {
    while (!data.empty()) {
      if (!acting_on_messages()) {
        route(data);
        return;
      }
      if (!in_command_) {
        begin_message();
        in_command_ = true;
        matched_ = false;
      }
      const std::size_t n = scanner_.feed(data);
      route(data.substr(0, n));
      data.remove_prefix(n);
      if (scanner_.failed()) {
        go_opaque();  // not RESP: everything passes from here on
        continue;
      }
      if (scanner_.name_known_now()) decide_command();
      if (scanner_.ended()) finish_command();
    }
  }

  void decide_command() {
    const bool is_command = !scanner_.ended() || scanner_.counts();  // not an empty line
    matched_ = is_command && settings().command_matches(scanner_.name());
    if (!matched_) return decide(Action::pass);
    count_action();
    if (answers_) return decide(Action::drop);
    decide(Action::delay, delay_due(settings().latency, settings().jitter));
  }

  void finish_command() {
    in_command_ = false;
    if (!matched_) decide(Action::pass);  // also what never had a name ("*0\r\n")
    end_message();
    if (!answers_ || !scanner_.counts()) return;
    if (matched_) return push_slot({.kind = ExchangeSlot::Kind::answered, .answer = settings().redis_reply});
    if (ends_request_response(scanner_.name(), scanner_.first_argument())) return go_opaque();
    push_slot({.kind = ExchangeSlot::Kind::forwarded});
  }

  bool answers_;
  RespScanner scanner_{RespScanner::Mode::commands};
  bool in_command_ = false, matched_ = false;
};

class RedisResponse final : public ResponseHalf {
 public:
  RedisResponse(const ProtocolStageSpec& spec, ProtocolSession* session) : ResponseHalf(spec, session) {}

 private:
  void restart() override { scanner_ = RespScanner(RespScanner::Mode::replies); }

  void consume(std::string_view data) override {
    while (!data.empty()) {
      if (!interpreting()) {
        pass(data);
        return;
      }
      const std::size_t n = scanner_.feed(data);
      pass(data.substr(0, n));
      data.remove_prefix(n);
      if (scanner_.failed()) {
        give_up();
        continue;
      }
      if (scanner_.ended() && scanner_.counts()) resolve_front();
    }
  }

  RespScanner scanner_{RespScanner::Mode::replies};
};

}  // namespace

std::unique_ptr<Stage> make_redis_stage(const ProtocolStageSpec& spec, std::uint64_t seed,
                                        ProtocolSession* session) {
  if (spec.response_half) return std::make_unique<RedisResponse>(spec, session);
  return std::make_unique<RedisRequest>(spec, seed, session);
}

}  // namespace faultproxy::protocol
