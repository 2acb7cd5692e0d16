// Protocol-aware toxics: redis_error, redis_delay, mysql_error, mysql_delay, http_abort, http_delay.
//
// Each parses its protocol's framing on the client's stream (resp_parser.h, mysql_parser.h,
// http_parser.h) and acts on whole commands, statements or requests; every other byte passes as
// it came. A toxic that answers in the server's place (redis_error, mysql_error, http_abort) has a
// second stage on the downstream link, its *response half*, which frames the server's answers too
// and puts each of the toxic's answers exactly where the server's answer to that request would have
// been, so pipelined clients get their replies in order. The two halves of one toxic on one
// connection share an Exchange (the requests in flight, in order) through the connection's
// ProtocolSession. mysql_delay has a response half too: it learns prepared statements' ids there.
//
// Attributes are typed (text, integer, number: the registry's AttributeSpecs in toxics.cpp give
// their kinds and defaults), validated and compiled once per change (compile_protocol_settings)
// into an immutable ProtocolSettings that every connection's stage shares. The `stream` of such a
// toxic does not matter: it always reads requests and answers.
//
// A toxic starts interpreting a connection at a quiet moment: at its start, or (added later, or its
// toxicity raised) at the first request sent while nothing is held in either direction, so that
// it starts at a message boundary with no answer outstanding (always so for request/response
// clients; a client pipelining across the change is interpreted from its next pause). Bytes it
// cannot interpret (not the protocol, TLS, compression, a subscription, an upgrade) make it pass
// the connection through untouched from there on.
//
// Usage (what the API, ProxyCollection and Pipeline do):
//   Attributes a = default_attributes(ToxicType::redis_error);
//   a[0] = std::string("SET,EVALSHA");
//   auto s = compile_protocol_settings(ToxicType::redis_error, a);   // or an error text
//   auto stage = make_protocol_stage({ToxicType::redis_error, false, id, "ro", settings}, seed, &session);
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "faultproxy/toxics.h"

namespace faultproxy {

bool is_protocol_toxic(ToxicType type);
// The toxic has a response half on the downstream link.
bool has_response_half(ToxicType type);

struct StatementMatcher;  // a compiled case-insensitive regular expression

// What a protocol toxic's stages act on, compiled from its attributes.
struct ProtocolSettings : ToxicSettings {
  ToxicType type = ToxicType::noop;
  // redis: command names, upper-cased (empty: every command); the error reply, framed.
  std::vector<std::string> commands;
  std::string redis_reply;
  // mysql: the statement pattern (null: every statement); the error; code 2000..2999 are the
  // client library's own codes: the toxic cuts the connection instead of answering.
  std::shared_ptr<const StatementMatcher> statement;
  std::uint16_t code = 0;
  std::string sqlstate, message;
  // http: matching, and the answer.
  double percentage = 100;
  std::string method, path_prefix, header_name, header_value;  // header_value empty: present at all
  int status = 0;                                              // 0: from the request's header
  std::string body;
  // delays (ms)
  std::int64_t latency = 0, jitter = 0;

  bool statement_matches(std::string_view text) const;
  bool command_matches(std::string_view upper_name) const;
};

// Validates `values` (in the order toxic_type_info(type).attributes lists them) and compiles
// them; on error, a text naming the attribute ("code: must be 1..65535").
std::variant<std::shared_ptr<const ProtocolSettings>, std::string> compile_protocol_settings(
    ToxicType type, const Attributes& values);

// The attribute values as shown by the API: mysql_error's empty sqlstate and message are shown as
// the ones used (MariaDB's for the code).
Attributes effective_attributes(ToxicType type, const Attributes& values);

// MariaDB's SQLSTATE and message for an error code ("HY000", "Unknown error" for codes not known).
std::pair<std::string_view, std::string_view> mariadb_error_text(std::uint16_t code);

// What the toxic's stages put in each other's way, in request order.
struct ExchangeSlot {
  enum class Kind : std::uint8_t {
    forwarded,  // went to the server: its answer passes
    answered,   // the toxic answers: `answer` goes out once everything before it has
    replaced,   // went to the server as a harmless stand-in: its answer is replaced by `answer`
    cut,        // went to the server: the connection is cut in its answer (MySQL's 2013)
    opaque,     // the stream is not interpreted from its answer on
  };
  Kind kind = Kind::forwarded;
  std::string answer{};
  bool close_after = false;  // answered/replaced: the connection closes after the answer
  std::string info{};        // http: the request's method; mysql: a prepared statement's text
  std::uint8_t command = 0;  // mysql: the command byte
};

struct Exchange {
  enum class State : std::uint8_t { unsynced, synced, opaque };
  State state = State::unsynced;
  bool resync = false;  // the response half restarts framing at its next byte
  std::deque<ExchangeSlot> slots;
  std::unordered_map<std::uint32_t, std::string> statements;  // mysql: prepared statements by id
};

// What protocol stages need of their connection. Implemented by the data plane's Connection.
class ProtocolSession {
 public:
  virtual ~ProtocolSession() = default;
  // The exchange of one toxic on this connection, shared by its two halves.
  std::shared_ptr<Exchange> exchange(std::uint64_t toxic_id);
  // The downstream link should run its toxics soon (an answer is ready to go).
  virtual void wake_downstream() = 0;
  // Nothing is held between client and server in either direction, but in the stages' own inboxes.
  virtual bool quiet() const = 0;
  // The first bytes the client sent on this connection (up to 8).
  virtual std::string_view client_head() const = 0;
  // A toxic acted on one request (for /metrics).
  virtual void count_action(const std::string& toxic_name, ToxicType type) = 0;

 private:
  // Made by the first protocol toxic on the connection: most connections never have one, and every
  // byte of an idle connection counts (bench/: RSS per idle connection).
  std::unique_ptr<std::unordered_map<std::uint64_t, std::weak_ptr<Exchange>>> exchanges_;
};

struct ProtocolStageSpec {
  ToxicType type = ToxicType::noop;
  bool response_half = false;
  std::uint64_t toxic_id = 0;
  std::string name;
  std::shared_ptr<const ToxicSettings> settings;
};

// `session` may be null (no connection: the toxic then passes everything).
std::unique_ptr<Stage> make_protocol_stage(const ProtocolStageSpec& spec, std::uint64_t seed,
                                           ProtocolSession* session);

}  // namespace faultproxy
