#include "faultproxy/protocol_toxics.h"

#include <algorithm>
#include <boost/regex.hpp>
#include <cmath>

#include "common/http_token.h"
#include "faultproxy/http_parser.h"
#include "faultproxy/protocol_stage.h"

namespace faultproxy {

// Boost.Regex rather than std::regex: it does not recurse per character (a long statement cannot
// exhaust the stack) and gives up on pathological patterns with an exception instead of hanging.
struct StatementMatcher {
  boost::regex re;
};

namespace {

using K = AttributeKind;

// Statement texts longer than this are matched on their first kStatementMatchMax bytes.
constexpr std::size_t kStatementMatchMax = 1 << 20;

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return out;
}

bool has_line_break(std::string_view s) {
  return s.find_first_of("\r\n") != std::string_view::npos;
}

}  // namespace

bool is_protocol_toxic(ToxicType type) {
  switch (type) {
    case ToxicType::redis_error:
    case ToxicType::redis_delay:
    case ToxicType::mysql_error:
    case ToxicType::mysql_delay:
    case ToxicType::http_abort:
    case ToxicType::http_delay:
      return true;
    default:
      return false;
  }
}

bool has_response_half(ToxicType type) {
  return type == ToxicType::redis_error || type == ToxicType::mysql_error || type == ToxicType::mysql_delay ||
         type == ToxicType::http_abort;
}

std::pair<std::string_view, std::string_view> mariadb_error_text(std::uint16_t code) {
  switch (code) {
    case 1040:
      return {"08004", "Too many connections"};
    case 1053:
      return {"08S01", "Server shutdown in progress"};
    case 1205:
      return {"HY000", "Lock wait timeout exceeded; try restarting transaction"};
    case 1213:
      return {"40001", "Deadlock found when trying to get lock; try restarting transaction"};
    case 1290:
      return {
          "HY000",
          "The MariaDB server is running with the --read-only option so it cannot execute this statement"};
    case 1317:
      return {"70100", "Query execution was interrupted"};
    case 1792:
      return {"25006", "Cannot execute statement in a READ ONLY transaction"};
    case 1927:
      return {"70100", "Connection was killed"};
    case 1969:
      return {"70100", "Query execution was interrupted (max_statement_time exceeded)"};
    case 2006:
      return {"HY000", "Server has gone away"};
    case 2013:
      return {"HY000", "Lost connection to server during query"};
    default:
      return {"HY000", "Unknown error"};
  }
}

Attributes effective_attributes(ToxicType type, const Attributes& values) {
  Attributes out = values;
  if (type == ToxicType::mysql_error) {
    const auto* code = std::get_if<std::int64_t>(&out[1]);
    const auto [state, message] =
        mariadb_error_text(code && *code >= 0 && *code <= 0xffff ? static_cast<std::uint16_t>(*code) : 0);
    if (auto* s = std::get_if<std::string>(&out[2]); s && s->empty()) *s = state;
    if (auto* m = std::get_if<std::string>(&out[3]); m && m->empty()) *m = message;
  }
  return out;
}

std::variant<std::shared_ptr<const ProtocolSettings>, std::string> compile_protocol_settings(
    ToxicType type, const Attributes& values) {
  if (!is_protocol_toxic(type)) return std::string("not a protocol toxic");
  const auto& defs = toxic_type_info(type).attributes;
  auto s = std::make_shared<ProtocolSettings>();
  s->type = type;
  std::string error;
  auto fail = [&error](std::string_view attribute, std::string_view why) {
    if (error.empty()) error = std::string(attribute) + ": " + std::string(why);
  };
  for (std::size_t i = 0; i < defs.size(); ++i) {
    const AttributeSpec& def = defs[i];
    const AttributeValue& v = values[i];
    const std::string* text = std::get_if<std::string>(&v);
    const std::int64_t* integer = std::get_if<std::int64_t>(&v);
    const double* number = std::get_if<double>(&v);
    if ((def.kind == K::text && !text) || (def.kind == K::integer && !integer) ||
        (def.kind == K::number && !number)) {
      fail(def.name, "wrong type");
      continue;
    }
    const std::string_view name = def.name;
    if (name == "commands") {
      std::string_view rest = *text;
      while (!rest.empty()) {
        const auto comma = rest.find(',');
        std::string_view item = rest.substr(0, comma);
        while (!item.empty() && item.front() == ' ')
          item.remove_prefix(1);
        while (!item.empty() && item.back() == ' ')
          item.remove_suffix(1);
        if (item.empty() || item.size() > 64 ||
            std::any_of(item.begin(), item.end(), [](char c) { return c <= ' ' || c == 0x7f; })) {
          fail(name,
               "a comma-separated list of command names, e.g. \"SET,HSET,EVALSHA\" (empty: every command)");
          break;
        }
        s->commands.push_back(upper(item));
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
        if (rest.empty()) fail(name, "a comma-separated list of command names (a trailing comma)");
      }
    } else if (name == "error") {
      if (text->empty() || has_line_break(*text)) {
        fail(name, "the error reply's text without the leading '-', one line, not empty");
      } else {
        s->redis_reply = "-" + *text + "\r\n";
      }
    } else if (name == "latency" || name == "jitter") {
      if (*integer < 0 || *integer > kMaxMillis) {
        fail(name, "milliseconds, 0.." + std::to_string(kMaxMillis));
      } else {
        (name == "latency" ? s->latency : s->jitter) = *integer;
      }
    } else if (name == "statement") {
      if (!text->empty()) {
        try {
          auto m = std::make_shared<StatementMatcher>();
          m->re = boost::regex(*text, boost::regex::perl | boost::regex::icase);
          s->statement = std::move(m);
        } catch (const std::exception& e) {
          fail(name, std::string("not a valid regular expression: ") + e.what());
        }
      }
    } else if (name == "code") {
      if (*integer < 1 || *integer > 65535) {
        fail(name,
             "a MariaDB error number, 1..65535 (2000..2999: the client's own, produced by cutting the "
             "connection)");
      } else {
        s->code = static_cast<std::uint16_t>(*integer);
      }
    } else if (name == "sqlstate") {
      if (!text->empty() && (text->size() != 5 || !std::all_of(text->begin(), text->end(), [](char c) {
                               return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z');
                             }))) {
        fail(name, "5 characters, digits and capital letters (e.g. \"40001\"; empty: the code's own)");
      }
      s->sqlstate = *text;
    } else if (name == "message") {
      if (text->size() > 65535) fail(name, "at most 65535 bytes");
      s->message = *text;
    } else if (name == "status") {
      if (*integer != 0 && (*integer < 200 || *integer > 599)) {
        fail(name, "an HTTP status 200..599 (0: from each request's x-envoy-fault-abort-request header)");
      } else {
        s->status = static_cast<int>(*integer);
      }
    } else if (name == "percentage") {
      if (!std::isfinite(*number) || *number < 0 || *number > 100) {
        fail(name, "a number 0..100");
      } else {
        s->percentage = *number;
      }
    } else if (name == "method") {
      if (!text->empty() && !common::http::is_http_token(*text))
        fail(name, "an HTTP method such as GET (empty: every method)");
      s->method = *text;
    } else if (name == "path_prefix") {
      if (has_line_break(*text) || text->find(' ') != std::string::npos) {
        fail(name, "a request-target prefix such as /users (no spaces or line breaks)");
      }
      s->path_prefix = *text;
    } else if (name == "header") {
      if (!text->empty()) {
        const auto colon = text->find(':');
        const std::string_view header_name = std::string_view(*text).substr(0, colon);
        std::string_view value;
        if (colon != std::string::npos) value = std::string_view(*text).substr(colon + 1);
        while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
          value.remove_prefix(1);
        while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
          value.remove_suffix(1);
        if (!common::http::is_http_token(header_name) || has_line_break(value)) {
          fail(name, "\"Name: value\" (or \"Name\": present with any value)");
        }
        s->header_name = std::string(header_name);
        s->header_value = std::string(value);
      }
    } else if (name == "body") {
      s->body = *text;
    }
  }
  if (!error.empty()) return error;
  if (type == ToxicType::mysql_error) {
    const auto [state, message] = mariadb_error_text(s->code);
    if (s->sqlstate.empty()) s->sqlstate = state;
    if (s->message.empty()) s->message = message;
  }
  return std::shared_ptr<const ProtocolSettings>(std::move(s));
}

bool ProtocolSettings::statement_matches(std::string_view text) const {
  if (!statement) return true;
  text = text.substr(0, kStatementMatchMax);
  try {
    return boost::regex_search(text.begin(), text.end(), statement->re);
  } catch (const std::exception&) {
    return false;  // too complex for this text: as if it did not match
  }
}

bool ProtocolSettings::command_matches(std::string_view upper_name) const {
  if (commands.empty()) return true;
  return std::find(commands.begin(), commands.end(), upper_name) != commands.end();
}

std::shared_ptr<Exchange> ProtocolSession::exchange(std::uint64_t toxic_id) {
  if (!exchanges_)
    exchanges_ = std::make_unique<std::unordered_map<std::uint64_t, std::weak_ptr<Exchange>>>();
  std::erase_if(*exchanges_, [](const auto& e) { return e.second.expired(); });
  auto& slot = (*exchanges_)[toxic_id];
  auto e = slot.lock();
  if (!e) {
    e = std::make_shared<Exchange>();
    slot = e;
  }
  return e;
}

std::unique_ptr<Stage> make_protocol_stage(const ProtocolStageSpec& spec, std::uint64_t seed,
                                           ProtocolSession* session) {
  switch (spec.type) {
    case ToxicType::redis_error:
    case ToxicType::redis_delay:
      return protocol::make_redis_stage(spec, seed, session);
    case ToxicType::mysql_error:
    case ToxicType::mysql_delay:
      return protocol::make_mysql_stage(spec, seed, session);
    case ToxicType::http_abort:
    case ToxicType::http_delay:
      return protocol::make_http_stage(spec, seed, session);
    default:
      return make_stage(spec.type, Attributes{}, seed);
  }
}

// ---- the stage skeletons ----------------------------------------------------------------------

namespace protocol {

void Release::push(Event e, TimePoint due) {
  due = std::max(due, last_);
  last_ = due;
  bytes_ += e.bytes.size();
  if (!q_.empty() && e.kind == EventKind::data && q_.back().event.kind == EventKind::data &&
      q_.back().due == due) {
    q_.back().event.bytes += e.bytes;  // adjacent pieces released together travel together
    return;
  }
  q_.push_back({std::move(e), due});
}

TimePoint Release::run(TimePoint now, const Emitter& out) {
  while (!q_.empty()) {
    if (q_.front().due > now) return q_.front().due;
    Item item = std::move(q_.front());
    q_.pop_front();
    bytes_ -= item.event.bytes.size();
    out(std::move(item.event), item.due);
  }
  return kNever;
}

void Release::flush(TimePoint now, const Emitter& out) {
  while (!q_.empty()) {
    Item item = std::move(q_.front());
    q_.pop_front();
    bytes_ -= item.event.bytes.size();
    out(std::move(item.event), std::min(item.due, now));
  }
  last_ = std::min(last_, now);
}

RequestHalf::RequestHalf(const ProtocolStageSpec& spec, std::uint64_t seed, ProtocolSession* session,
                         bool uses_exchange)
    : spec_(spec), session_(session), rng_(seed) {
  settings_ = std::dynamic_pointer_cast<const ProtocolSettings>(spec.settings);
  if (!settings_) settings_ = std::make_shared<ProtocolSettings>();
  if (uses_exchange && session_) exchange_ = session_->exchange(spec.toxic_id);
}

void RequestHalf::update_settings(const std::shared_ptr<const ToxicSettings>& settings, TimePoint) {
  if (auto s = std::dynamic_pointer_cast<const ProtocolSettings>(settings)) settings_ = std::move(s);
}

void RequestHalf::activate(TimePoint) {
  if (mode_ != Mode::opaque) mode_ = Mode::unsynced;
}

void RequestHalf::try_sync() {
  if (!session_ || !release_.empty() || !session_->quiet()) return;
  if (exchange_ && (!exchange_->slots.empty() || exchange_->state == Exchange::State::opaque)) {
    if (exchange_->state == Exchange::State::opaque) mode_ = Mode::opaque;
    return;
  }
  mode_ = Mode::synced;
  action_ = Action::undecided;
  pending_.clear();
  restart();
  if (exchange_) {
    exchange_->state = Exchange::State::synced;
    exchange_->resync = true;
  }
  if (!interpretable()) go_opaque();
}

TimePoint RequestHalf::step(EventQueue& in, TimePoint now, const Emitter& out) {
  while (!in.empty()) {
    Event e = in.take_front();
    cur_read_at_ = e.read_at;
    cur_at_ = e.at;
    if (e.is_terminal()) {
      if (!pending_.empty()) {  // an undecided message's start: passed, never dropped
        release_.push(Event::data(std::move(pending_), msg_read_at_), e.at);
        pending_.clear();
      }
      const TimePoint at = e.at;
      release_.push(std::move(e), at);
      continue;
    }
    // The response half gave up (the server's stream is not the protocol): so does this half,
    // passing what it held.
    if (mode_ == Mode::synced && exchange_ && exchange_->state == Exchange::State::opaque) go_opaque();
    if (mode_ == Mode::unsynced) try_sync();
    if (mode_ != Mode::synced) {
      const TimePoint at = e.at;
      release_.push(std::move(e), at);
      continue;
    }
    consume(e.bytes);
  }
  return release_.run(now, out);
}

void RequestHalf::flush(EventQueue&, TimePoint now, const Emitter& out, bool) {
  if (!pending_.empty()) {
    release_.push(Event::data(std::move(pending_), msg_read_at_), now);
    pending_.clear();
  }
  release_.flush(now, out);
  action_ = Action::undecided;
  if (mode_ == Mode::synced) mode_ = Mode::unsynced;
  // The response half goes on placing the answers already promised, then passes everything.
  if (exchange_ && exchange_->state == Exchange::State::synced) exchange_->state = Exchange::State::unsynced;
}

void RequestHalf::begin_message() {
  msg_read_at_ = cur_read_at_;
  action_ = Action::undecided;
}

void RequestHalf::route(std::string_view bytes) {
  if (bytes.empty()) return;
  switch (mode_ == Mode::synced ? action_ : Action::pass) {
    case Action::undecided:
      pending_.append(bytes);
      break;
    case Action::pass:
      release_.push(Event::data(std::string(bytes), cur_read_at_), cur_at_);
      break;
    case Action::delay:
      release_.push(Event::data(std::string(bytes), cur_read_at_), due_);
      break;
    case Action::drop:
      break;
  }
}

void RequestHalf::decide(Action action, TimePoint due) {
  action_ = action;
  due_ = due;
  if (pending_.empty()) return;
  std::string held = std::move(pending_);
  pending_.clear();
  const TimePoint read_at = cur_read_at_;
  cur_read_at_ = msg_read_at_;
  route(held);
  cur_read_at_ = read_at;
}

void RequestHalf::substitute(std::string bytes) {
  release_.push(Event::data(std::move(bytes), msg_read_at_), cur_at_);
}

TimePoint RequestHalf::delay_due(std::int64_t latency, std::int64_t jitter) {
  std::int64_t ms = latency;
  if (jitter > 0) ms += static_cast<std::int64_t>(rng_() % static_cast<std::uint64_t>(2 * jitter)) - jitter;
  return msg_read_at_ + std::chrono::milliseconds(std::max<std::int64_t>(ms, 0));
}

void RequestHalf::push_slot(ExchangeSlot slot) {
  if (!exchange_) return;
  const bool wake = slot.kind == ExchangeSlot::Kind::answered;
  exchange_->slots.push_back(std::move(slot));
  if (wake && session_) session_->wake_downstream();
}

void RequestHalf::go_opaque() {
  if (!pending_.empty()) decide(Action::pass);
  action_ = Action::pass;
  mode_ = Mode::opaque;
  if (exchange_ && exchange_->state != Exchange::State::opaque) {
    exchange_->slots.push_back({.kind = ExchangeSlot::Kind::opaque});
    if (session_) session_->wake_downstream();
  }
}

void RequestHalf::count_action() {
  if (session_) session_->count_action(spec_.name, spec_.type);
}

ResponseHalf::ResponseHalf(const ProtocolStageSpec& spec, ProtocolSession* session) {
  if (session) exchange_ = session->exchange(spec.toxic_id);
}

bool ResponseHalf::engaged() const {
  if (!exchange_) return false;
  return exchange_->state == Exchange::State::synced ||
         (exchange_->state == Exchange::State::unsynced && !exchange_->slots.empty());
}

TimePoint ResponseHalf::step(EventQueue& in, TimePoint now, const Emitter& out) {
  if (closed_) {
    in.clear();
    return kNever;
  }
  out_ = &out;
  now_ = now;
  if (exchange_) emit_ready_answers();
  while (!in.empty() && !closed_) {
    Event e = in.take_front();
    read_at_ = e.read_at;
    if (!exchange_ || e.is_terminal() || !engaged()) {
      if (exchange_ && e.is_terminal() && engaged()) server_ended();
      pass(take_held());  // a packet begun before the toxic stopped interpreting
      if (!closed_) out(std::move(e), now);
      continue;
    }
    if (exchange_->resync) {
      exchange_->resync = false;
      restart();
    }
    consume(e.bytes);
  }
  if (closed_) in.clear();
  out_ = nullptr;
  return kNever;
}

void ResponseHalf::flush(EventQueue&, TimePoint now, const Emitter& out, bool) {
  // Removed: the answers still waiting for their turn go out now (the pipeline passes the rest).
  if (!exchange_ || closed_) return;
  out_ = &out;
  now_ = now;
  pass(take_held());
  for (auto& slot : exchange_->slots) {
    if (slot.kind == ExchangeSlot::Kind::answered || slot.kind == ExchangeSlot::Kind::replaced) {
      out(Event::data(std::move(slot.answer), now), now);
    }
  }
  exchange_->slots.clear();
  out_ = nullptr;
}

void ResponseHalf::pass(std::string_view bytes) {
  if (!bytes.empty() && !closed_) (*out_)(Event::data(std::string(bytes), read_at_), now_);
}

void ResponseHalf::answer(std::string_view bytes) {
  if (!bytes.empty() && !closed_) (*out_)(Event::data(std::string(bytes), now_), now_);
}

void ResponseHalf::close_connection() {
  if (closed_) return;
  closed_ = true;
  (*out_)(Event::terminal(EventKind::close, now_), now_);
}

void ResponseHalf::emit_ready_answers() {
  auto& slots = exchange_->slots;
  while (!slots.empty() && !closed_) {
    ExchangeSlot& front = slots.front();
    if (front.kind == ExchangeSlot::Kind::opaque) {
      go_opaque();
      return;
    }
    if (front.kind != ExchangeSlot::Kind::answered) return;
    answer(front.answer);
    const bool close = front.close_after;
    slots.pop_front();
    if (close) close_connection();
  }
}

void ResponseHalf::resolve_front() {
  if (!exchange_->slots.empty()) exchange_->slots.pop_front();
  emit_ready_answers();
}

void ResponseHalf::give_up() {
  for (auto& slot : exchange_->slots) {
    if (slot.kind == ExchangeSlot::Kind::answered || slot.kind == ExchangeSlot::Kind::replaced)
      answer(slot.answer);
  }
  go_opaque();
}

void ResponseHalf::go_opaque() {
  exchange_->state = Exchange::State::opaque;
  exchange_->slots.clear();
}

}  // namespace protocol
}  // namespace faultproxy
