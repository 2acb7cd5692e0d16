// mysql_error and mysql_delay (protocol_toxics.h) over MySQL packet framing (mysql_parser.h).
//
// A command is a client packet with sequence id 0 (plus the packets continuing it when it is
// 16 MiB or more); everything else the client sends (the handshake, authentication, LOCAL INFILE
// data) passes untouched. A server answer starts with a packet of sequence id 1 (the ids of one
// answer count up from there, wrapping after 255), so answers are told apart without parsing
// result sets. mysql_error does not answer in the server's place: it sends a harmless stand-in
// (`DO 0`; `ROLLBACK` for 1213, as MariaDB rolls a deadlocked transaction back) and replaces the
// stand-in's one-packet answer with the error packet, so the error is in its place whatever the
// client pipelined before it.
#include <utility>

#include "faultproxy/mysql_parser.h"
#include "faultproxy/protocol_stage.h"

namespace faultproxy::protocol {
namespace {

constexpr std::size_t kTextCapture = 1 + (1 << 20);  // command byte + the statement's first 1 MiB
constexpr std::uint32_t kLastPrepared = 0xffffffff;  // MariaDB: "the statement prepared last"

bool client_library_code(std::uint16_t code) {
  return code >= 2000 && code <= 2999;
}

class MysqlRequest final : public RequestHalf {
 public:
  MysqlRequest(const ProtocolStageSpec& spec, std::uint64_t seed, ProtocolSession* session)
      : RequestHalf(spec, seed, session, true), answers_(spec.type == ToxicType::mysql_error) {}

 private:
  void restart() override {
    scanner_ = MysqlPacketScanner(1);
    continued_ = false;
    in_command_ = false;
  }

  bool interpretable() override {
    const MysqlClientHello hello = inspect_client_hello(session()->client_head());
    return hello.valid && !hello.tls && !hello.compress;
  }

  void consume(std::string_view data) override {
    while (!data.empty()) {
      if (!acting_on_messages()) {
        route(data);
        return;
      }
      if (scanner_.at_boundary() && !continued_) begin_message();
      const std::size_t n = scanner_.feed(data);
      route(data.substr(0, n));
      data.remove_prefix(n);
      if (scanner_.prefix_now()) on_prefix();
      if (scanner_.ended()) on_packet_end();
    }
  }

  void on_prefix() {
    if (continued_) return;  // a continuation packet follows its command's decision
    const std::string& prefix = scanner_.prefix();
    if (prefix.size() <= 1) {  // the packet's first byte
      if (scanner_.sequence_id() != 0) {
        in_command_ = false;
        return decide(Action::pass);  // handshake, authentication, LOCAL INFILE data
      }
      in_command_ = true;
      slot_ = {.kind = ExchangeSlot::Kind::forwarded};
      if (prefix.empty()) return decide(Action::pass);
      command_ = static_cast<std::uint8_t>(prefix[0]);
      slot_.command = command_;
      switch (command_) {
        case kComSleep:  // never sent by clients: a compressed packet seen as a plain one
          return go_opaque();
        case kComQuery:
        case kComStmtPrepare:
          scanner_.extend_capture(kTextCapture);
          break;
        case kComStmtExecute:
        case kComStmtBulkExecute:
        case kComStmtClose:
          scanner_.extend_capture(5);
          break;
        default:
          return decide(Action::pass);
      }
      if (!scanner_.prefix_complete()) return;  // the rest of the prefix comes with a later feed
    }
    decide_command(std::string_view(prefix).substr(1));
  }

  void decide_command(std::string_view args) {
    switch (command_) {
      case kComQuery:
        return act_on(args);
      case kComStmtPrepare:
        slot_.info = std::string(args);
        last_prepared_ = slot_.info;
        return decide(Action::pass);
      case kComStmtExecute:
      case kComStmtBulkExecute: {
        const std::uint32_t id = mysql_le(args, 4);
        if (id == kLastPrepared) return act_on(last_prepared_);
        const auto it = exchange()->statements.find(id);
        if (it == exchange()->statements.end()) return decide(Action::pass);
        return act_on(it->second);
      }
      case kComStmtClose:
        exchange()->statements.erase(mysql_le(args, 4));
        return decide(Action::pass);
      default:
        return decide(Action::pass);
    }
  }

  void act_on(std::string_view statement) {
    if (!settings().statement_matches(statement)) return decide(Action::pass);
    count_action();
    if (!answers_) return decide(Action::delay, delay_due(settings().latency, settings().jitter));
    const ProtocolSettings& s = settings();
    if (client_library_code(s.code)) {
      slot_.kind = ExchangeSlot::Kind::cut;
      return decide(Action::pass);
    }
    decide(Action::drop);
    substitute(mysql_query_packet(s.code == 1213 ? "ROLLBACK" : "DO 0"));
    slot_.kind = ExchangeSlot::Kind::replaced;
    slot_.answer = mysql_error_packet(1, s.code, s.sqlstate, s.message);
    slot_.close_after = s.code == 1927;  // "Connection was killed": the server closes it
  }

  void on_packet_end() {
    if (scanner_.payload_length() == MysqlPacketScanner::kMaxPayload) {
      continued_ = true;
      return;
    }
    continued_ = false;
    if (!in_command_) return end_message();
    in_command_ = false;
    decide(Action::pass);  // a command shorter than its prefix never reached decide_command
    end_message();
    switch (command_) {
      case kComQuit:
      case kComStmtClose:
      case kComStmtSendLongData:
        return;  // no answer
      case kComChangeUser:
      case kComBinlogDump:
      case kComBinlogDumpGtid:
        return go_opaque();  // a new authentication, or a replication stream
      default:
        push_slot(std::move(slot_));
    }
  }

  bool answers_;
  MysqlPacketScanner scanner_{1};
  bool continued_ = false, in_command_ = false;
  std::uint8_t command_ = 0;
  ExchangeSlot slot_;
  std::string last_prepared_;
};

class MysqlResponse final : public ResponseHalf {
 public:
  MysqlResponse(const ProtocolStageSpec& spec, ProtocolSession* session) : ResponseHalf(spec, session) {}

 private:
  enum class PacketAction : std::uint8_t { undecided, pass, drop };

  void restart() override {
    scanner_ = MysqlPacketScanner(5);
    pass(take_held());  // framing starts afresh after them
    action_ = PacketAction::undecided;
    previous_seq_ = 0xff;
    cut_after_ = false;
  }

  void consume(std::string_view data) override {
    while (!data.empty()) {
      if (!interpreting()) {
        pass(held_);
        held_.clear();
        pass(data);
        return;
      }
      const std::size_t n = scanner_.feed(data);
      const std::string_view piece = data.substr(0, n);
      data.remove_prefix(n);
      if (action_ == PacketAction::undecided) {
        held_.append(piece);
      } else if (action_ == PacketAction::pass) {
        pass(piece);
      }
      if (scanner_.prefix_now()) on_prefix();
      if (scanner_.ended()) {
        previous_seq_ = scanner_.sequence_id();
        action_ = PacketAction::undecided;
        if (cut_after_) close_connection();
      }
    }
  }

  std::string take_held() override {
    action_ = PacketAction::pass;  // the rest of the packet follows what went before
    return std::exchange(held_, {});
  }
  std::size_t held_bytes() const override { return held_.size(); }

  void decide_packet(PacketAction a) {
    action_ = a;
    if (a == PacketAction::pass) pass(held_);
    held_.clear();
  }

  void on_prefix() {
    const std::uint8_t seq = scanner_.sequence_id();
    const bool answer_starts = seq == 1 && previous_seq_ != 0;  // not 255, 0, 1 within one answer
    if (!answer_starts || exchange().slots.empty()) return decide_packet(PacketAction::pass);
    ExchangeSlot& slot = exchange().slots.front();
    const std::string& prefix = scanner_.prefix();
    const auto first = prefix.empty() ? 0 : static_cast<std::uint8_t>(prefix[0]);
    switch (slot.kind) {
      case ExchangeSlot::Kind::forwarded:
        if (slot.command == kComStmtPrepare && first == 0x00 && prefix.size() >= 5)
          exchange().statements[mysql_le(std::string_view(prefix).substr(1), 4)] = std::move(slot.info);
        decide_packet(PacketAction::pass);
        break;
      case ExchangeSlot::Kind::replaced: {
        decide_packet(PacketAction::drop);  // the stand-in's OK
        answer(slot.answer);
        const bool close = slot.close_after;
        resolve_front();
        if (close) close_connection();
        return;
      }
      case ExchangeSlot::Kind::cut:
        // A one-packet answer (OK, ERR) is cut before it; a result set after its first packet.
        if (first == 0x00 || first == 0xff) {
          decide_packet(PacketAction::drop);
          exchange().slots.pop_front();
          close_connection();
          return;
        }
        decide_packet(PacketAction::pass);
        cut_after_ = true;
        break;
      default:
        decide_packet(PacketAction::pass);
        break;
    }
    resolve_front();
  }

  MysqlPacketScanner scanner_{5};
  std::string held_;  // the current packet's bytes until its prefix is known
  PacketAction action_ = PacketAction::undecided;
  std::uint8_t previous_seq_ = 0xff;
  bool cut_after_ = false;
};

}  // namespace

std::unique_ptr<Stage> make_mysql_stage(const ProtocolStageSpec& spec, std::uint64_t seed,
                                        ProtocolSession* session) {
  if (spec.response_half) return std::make_unique<MysqlResponse>(spec, session);
  return std::make_unique<MysqlRequest>(spec, seed, session);
}

}  // namespace faultproxy::protocol
