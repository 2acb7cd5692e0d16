// http_abort and http_delay (protocol_toxics.h) over HTTP/1.x framing (http_parser.h), with
// Envoy's fault filter semantics: a request is matched by method, path prefix and header, then
// faulted with the configured percentage; request headers can drive the fault per request
// (x-envoy-fault-abort-request: <status>, x-envoy-fault-delay-request: <ms>, and the
// *-percentage variants, which can only lower the configured percentage).
#include <cstdlib>

#include "faultproxy/http_parser.h"
#include "faultproxy/protocol_stage.h"

namespace faultproxy::protocol {
namespace {

std::string_view reason_phrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Fault";
  }
}

std::optional<std::int64_t> header_integer(const HttpHead& head, std::string_view name) {
  const auto v = head.header(name);
  if (!v || v->empty() || v->size() > 12) return std::nullopt;
  std::int64_t n = 0;
  for (char c : *v) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  return n;
}

std::optional<double> header_percentage(const HttpHead& head, std::string_view name) {
  const auto v = head.header(name);
  if (!v || v->empty() || v->size() > 32) return std::nullopt;
  const std::string text(*v);
  char* end = nullptr;
  const double d = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !(d >= 0 && d <= 100)) return std::nullopt;
  return d;
}

std::string abort_response(int status, std::string_view body, bool head_request, bool close) {
  std::string r = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason_phrase(status)) +
                  "\r\ncontent-length: " + std::to_string(body.size()) + "\r\n";
  if (!body.empty()) r += "content-type: text/plain\r\n";
  if (close) r += "connection: close\r\n";
  r += "\r\n";
  if (!head_request) r += body;
  return r;
}

class HttpRequest final : public RequestHalf {
 public:
  HttpRequest(const ProtocolStageSpec& spec, std::uint64_t seed, ProtocolSession* session)
      : RequestHalf(spec, seed, session, spec.type == ToxicType::http_abort),
        aborts_(spec.type == ToxicType::http_abort) {}

 private:
  void restart() override {
    scanner_ = HttpScanner(HttpScanner::Mode::requests);
    discard_rest_ = false;
  }

  void consume(std::string_view data) override {
    while (!data.empty()) {
      if (discard_rest_) return;  // after an abort that closes the connection
      if (!acting_on_messages()) {
        route(data);
        return;
      }
      if (scanner_.at_boundary()) begin_message();
      const std::size_t n = scanner_.feed(data);
      route(data.substr(0, n));
      data.remove_prefix(n);
      if (scanner_.failed()) {
        go_opaque();
        continue;
      }
      if (scanner_.head_now()) decide_request(scanner_.head());
      if (scanner_.ended()) {
        end_message();
        if (scanner_.switched()) go_opaque();  // CONNECT or an upgrade: no longer HTTP
      }
    }
  }

  bool matches(const HttpHead& head) const {
    const ProtocolSettings& s = settings();
    if (!s.method.empty() && !http_iequals(s.method, head.method)) return false;
    if (head.target.compare(0, s.path_prefix.size(), s.path_prefix) != 0) return false;
    if (!s.header_name.empty()) {
      const auto v = head.header(s.header_name);
      if (!v || (!s.header_value.empty() && *v != s.header_value)) return false;
    }
    return true;
  }

  void decide_request(const HttpHead& head) {
    const ProtocolSettings& s = settings();
    const ExchangeSlot forwarded{.kind = ExchangeSlot::Kind::forwarded, .info = head.method};
    int status = s.status;
    std::int64_t latency = s.latency;
    double percentage = s.percentage;
    if (aborts_) {
      if (auto h = header_integer(head, "x-envoy-fault-abort-request"); h && *h >= 200 && *h <= 599)
        status = static_cast<int>(*h);
      if (auto p = header_percentage(head, "x-envoy-fault-abort-request-percentage"))
        percentage = std::min(percentage, *p);
    } else {
      if (auto h = header_integer(head, "x-envoy-fault-delay-request"); h && *h <= kMaxMillis) latency = *h;
      if (auto p = header_percentage(head, "x-envoy-fault-delay-request-percentage"))
        percentage = std::min(percentage, *p);
    }
    const bool active = aborts_ ? status != 0 : latency > 0;
    // One draw per request: the same requests are faulted on every run with the same -seed.
    const double roll = static_cast<double>(rng()() >> 11) * (100.0 / 9007199254740992.0);
    if (!active || !matches(head) || roll >= percentage) {
      decide(Action::pass);
      return push_slot(forwarded);
    }
    count_action();
    if (!aborts_) {
      decide(Action::delay, delay_due(latency, 0));
      return push_slot(forwarded);
    }
    // The client may wait for "100 Continue" before sending the body: it never comes, so the
    // connection closes after the answer (as a server answering early must, RFC 9110 10.1.1).
    const bool waits_for_continue = head.header("expect").has_value() && !scanner_.ended();
    const bool close = !head.keep_alive() || waits_for_continue;
    decide(Action::drop);
    push_slot({.kind = ExchangeSlot::Kind::answered,
               .answer = abort_response(status, s.body, http_iequals(head.method, "HEAD"), close),
               .close_after = close});
    if (close) discard_rest_ = true;
  }

  bool aborts_;
  HttpScanner scanner_{HttpScanner::Mode::requests};
  bool discard_rest_ = false;
};

class HttpResponse final : public ResponseHalf {
 public:
  HttpResponse(const ProtocolStageSpec& spec, ProtocolSession* session) : ResponseHalf(spec, session) {}

 private:
  void restart() override { scanner_ = HttpScanner(HttpScanner::Mode::responses); }

  void consume(std::string_view data) override {
    while (!data.empty()) {
      if (!interpreting()) {
        pass(data);
        return;
      }
      if (scanner_.at_boundary()) {
        emit_ready_answers();
        const auto& slots = exchange().slots;
        scanner_.answering(slots.empty() ? std::string_view() : std::string_view(slots.front().info));
        if (!interpreting()) continue;
      }
      const std::size_t n = scanner_.feed(data);
      pass(data.substr(0, n));
      data.remove_prefix(n);
      if (scanner_.failed()) {
        give_up();
        continue;
      }
      if (scanner_.ended()) {
        if (scanner_.switched()) {
          go_opaque();
        } else if (!scanner_.interim()) {
          resolve_front();
        }
      }
    }
  }

  void server_ended() override {
    // A response delimited by the close ends here; nothing after it can reach the client.
    if (scanner_.finish()) exchange().slots.clear();
  }

  HttpScanner scanner_{HttpScanner::Mode::responses};
};

}  // namespace

std::unique_ptr<Stage> make_http_stage(const ProtocolStageSpec& spec, std::uint64_t seed,
                                       ProtocolSession* session) {
  if (spec.response_half) return std::make_unique<HttpResponse>(spec, session);
  return std::make_unique<HttpRequest>(spec, seed, session);
}

}  // namespace faultproxy::protocol
