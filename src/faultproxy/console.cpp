#include "faultproxy/console.h"

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <cctype>

#include "faultproxy/console_assets.h"
#include "faultproxy/go/json.h"

namespace faultproxy::console {

namespace bhttp = common::http::bhttp;
using common::http::Request;
using common::http::Response;

namespace {

// Only what the console itself loads: everything from this origin, nothing inline, no framing.
constexpr std::string_view kContentSecurityPolicy =
    "default-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

std::string_view content_type_for(std::string_view path) {
  const auto dot = path.rfind('.');
  const std::string_view ext = dot == std::string_view::npos ? "" : path.substr(dot + 1);
  if (ext == "html") return "text/html; charset=utf-8";
  if (ext == "js" || ext == "mjs") return "text/javascript; charset=utf-8";
  if (ext == "css") return "text/css; charset=utf-8";
  if (ext == "svg") return "image/svg+xml";
  if (ext == "png") return "image/png";
  if (ext == "json") return "application/json";
  return "application/octet-stream";
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// If-None-Match holds `etag` (a list of tags, or "*").
bool etag_matches(std::string_view if_none_match, std::string_view etag) {
  while (!if_none_match.empty()) {
    const auto comma = if_none_match.find(',');
    std::string_view tag = if_none_match.substr(0, comma);
    while (!tag.empty() && tag.front() == ' ')
      tag.remove_prefix(1);
    while (!tag.empty() && tag.back() == ' ')
      tag.remove_suffix(1);
    if (tag.starts_with("W/")) tag.remove_prefix(2);
    if (tag == "*" || tag == etag) return true;
    if (comma == std::string_view::npos) break;
    if_none_match.remove_prefix(comma + 1);
  }
  return false;
}

Response plain(const Request& req, bhttp::status status, std::string body) {
  Response res{status, req.version()};
  res.keep_alive(req.keep_alive());
  res.set(bhttp::field::content_type, "text/plain; charset=utf-8");
  res.set("X-Content-Type-Options", "nosniff");
  res.body() = std::move(body);
  return res;
}

std::string_view media_type(std::string_view content_type) {
  content_type = content_type.substr(0, content_type.find(';'));
  while (!content_type.empty() && content_type.back() == ' ')
    content_type.remove_suffix(1);
  return content_type;
}

void append_number(std::string& out, double v) {
  out += go::json::encode_float64(v).value_or("0");
}

void append_value(std::string& out, const AttributeValue& v) {
  std::visit(
      [&out](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::int64_t>) {
          out += std::to_string(x);
        } else if constexpr (std::is_same_v<T, double>) {
          append_number(out, x);
        } else if constexpr (std::is_same_v<T, std::string>) {
          go::json::append_quoted(out, x);
        } else {
          out += x ? "true" : "false";
        }
      },
      v);
}

std::string_view kind_name(AttributeKind kind) {
  switch (kind) {
    case AttributeKind::integer:
      return "integer";
    case AttributeKind::number:
      return "number";
    case AttributeKind::text:
      return "string";
    case AttributeKind::flag:
      return "boolean";
  }
  return "string";
}

std::string_view scope_name(ToxicScope scope) {
  switch (scope) {
    case ToxicScope::stream:
      return "stream";
    case ToxicScope::connection:
      return "connection";
    case ToxicScope::listener:
      return "listener";
  }
  return "stream";
}

// One field of the JSON description: name, kind, default, then what a hint adds.
void append_field(std::string& out, std::string_view name, std::string_view kind, const AttributeValue& def,
                  const AttributeHint* hint) {
  out += "{\"name\":";
  go::json::append_quoted(out, name);
  out += ",\"kind\":";
  go::json::append_quoted(out, kind);
  out += ",\"default\":";
  append_value(out, def);
  if (!hint) {
    out += "}";
    return;
  }
  if (hint->min) {
    out += ",\"min\":";
    append_number(out, *hint->min);
  }
  if (hint->max) {
    out += ",\"max\":";
    append_number(out, *hint->max);
  }
  if (!hint->options.empty()) {
    out += ",\"options\":[";
    for (std::size_t i = 0; i < hint->options.size(); ++i) {
      if (i) out += ',';
      go::json::append_quoted(out, hint->options[i]);
    }
    out += ']';
  }
  if (!hint->unit.empty()) {
    out += ",\"unit\":";
    go::json::append_quoted(out, hint->unit);
  }
  out += ",\"help\":";
  go::json::append_quoted(out, hint->help);
  out += "}";
}

const AttributeHint* find_hint(std::string_view type, std::string_view attribute) {
  for (const AttributeHint& h : attribute_hints())
    if (h.type == type && h.attribute == attribute) return &h;
  return nullptr;
}

}  // namespace

Response serve_file(const Request& req, std::string_view path, std::string_view api_host) {
  // Under a DNS-rebound name the console would be another site's page.
  if (!trusted_host(req[bhttp::field::host], api_host)) {
    return plain(req, bhttp::status::forbidden,
                 "Host not allowed: open the console at an IP address, localhost or the -host name\n");
  }
  // HEAD gets GET's answer: the HTTP server sends its header alone (Content-Length included).
  if (req.method() != bhttp::verb::get && req.method() != bhttp::verb::head) {
    Response res{bhttp::status::method_not_allowed, req.version()};
    res.keep_alive(req.keep_alive());
    res.set(bhttp::field::allow, "GET, HEAD");
    return res;
  }
  std::string_view file = path == "/ui" || path == "/ui/" ? std::string_view("index.html") : path.substr(4);
  const auto& assets = console_assets();
  const auto it =
      std::find_if(assets.begin(), assets.end(), [&](const ConsoleAsset& a) { return a.path == file; });
  if (it == assets.end()) return plain(req, bhttp::status::not_found, "404 page not found\n");
  const std::string etag = "\"" + std::string(it->sha256.substr(0, 32)) + "\"";
  const bool unchanged = etag_matches(req[bhttp::field::if_none_match], etag);
  Response res{unchanged ? bhttp::status::not_modified : bhttp::status::ok, req.version()};
  res.keep_alive(req.keep_alive());
  res.set(bhttp::field::content_type, content_type_for(it->path));
  res.set(bhttp::field::etag, etag);
  // Always revalidated (a 304 costs nothing), so a new binary's console is never mixed with an old one.
  res.set(bhttp::field::cache_control, "no-cache");
  res.set("Content-Security-Policy", kContentSecurityPolicy);
  res.set("X-Content-Type-Options", "nosniff");
  res.set("X-Frame-Options", "DENY");
  res.set("Referrer-Policy", "no-referrer");
  res.set("Cross-Origin-Resource-Policy", "same-origin");
  res.set("Cross-Origin-Opener-Policy", "same-origin");
  if (!unchanged) res.body() = std::string(it->bytes);
  return res;
}

bool trusted_host(std::string_view host, std::string_view api_host) {
  std::string_view name = host;
  if (name.starts_with('[')) {  // [v6]:port
    const auto close = name.find(']');
    if (close == std::string_view::npos) return false;
    if (close + 1 < name.size() && name[close + 1] != ':') return false;
    name = name.substr(1, close - 1);
  } else if (const auto colon = name.rfind(':'); colon != std::string_view::npos) {
    name = name.substr(0, colon);
  }
  if (name.empty()) return false;
  boost::system::error_code ec;
  boost::asio::ip::make_address(std::string(name), ec);
  if (!ec) return true;
  return iequals(name, "localhost") || (!api_host.empty() && iequals(name, api_host));
}

std::optional<std::string> cross_site_refusal(const Request& req, std::string_view api_host, bool browser) {
  const std::string_view origin = req[bhttp::field::origin];
  const std::string_view fetch_site = req["Sec-Fetch-Site"];
  const std::string_view host = req[bhttp::field::host];
  const bool has_origin = req.find(bhttp::field::origin) != req.end();
  const bool has_fetch_site = req.find("Sec-Fetch-Site") != req.end();
  if (!browser && !has_origin && !has_fetch_site) return std::nullopt;  // curl, clients, the CLI
  if (has_fetch_site && fetch_site != "same-origin" && fetch_site != "none")
    return "Sec-Fetch-Site is " + std::string(fetch_site) + ", not same-origin";
  if (!trusted_host(host, api_host))
    return "Host " + std::string(host) +
           " is not an IP address, localhost or the -host name (a DNS-rebound name is not trusted)";
  if (has_origin && !iequals(origin, "http://" + std::string(host)))
    return "Origin " + std::string(origin) + " is not this server's (http://" + std::string(host) + ")";
  const auto method = req.method();
  const bool changes = method != bhttp::verb::get && method != bhttp::verb::head;
  if (browser && changes && !has_origin) return "a change from a browser must carry its Origin";
  if (browser && !req.body().empty() && media_type(req[bhttp::field::content_type]) != "application/json")
    return "Content-Type must be application/json";
  return std::nullopt;
}

const std::vector<AttributeHint>& attribute_hints() {
  static const std::vector<AttributeHint> hints = {
      // The fields every toxic has (type ""). toxicity is not range-checked, as in Toxiproxy.
      {"", "name", "", {}, {}, {}, "unique within the proxy; empty: <type>_<stream>"},
      {"", "stream", "", {}, {}, {"downstream", "upstream"}, "downstream: towards the client"},
      {"", "toxicity", "", {}, {}, {}, "share of connections the toxic acts on, 0..1"},
      {"", "client_cidr", "", {}, {}, {}, "only clients in this network (e.g. 127.0.1.2/32); empty: all"},
      {"", "start_after_ms", "ms", 0, {}, {}, "takes effect this long after it was added"},
      {"", "duration_ms", "ms", 0, {}, {}, "removes itself this long after taking effect; 0: stays"},
      {"latency", "latency", "ms", {}, {}, {}, "delay added to each chunk of data"},
      {"latency", "jitter", "ms", {}, {}, {}, "the delay varies by up to this much either way"},
      {"latency",
       "distribution",
       "",
       {},
       {},
       {"uniform", "normal", "pareto", "paretonormal"},
       "shape of the jitter: uniform is Toxiproxy's, the others netem's"},
      {"bandwidth", "rate", "KB/s", {}, {}, {}, "at most this many kilobytes (1000 bytes) per second"},
      {"bandwidth", "per_proxy", "", {}, {}, {}, "the rate is shared by all of the proxy's connections"},
      {"slow_close", "delay", "ms", {}, {}, {}, "delay before the connection's close passes on"},
      {"timeout",
       "timeout",
       "ms",
       {},
       {},
       {},
       "data is held, then the connection closed after this; 0: held until the toxic is removed"},
      {"reset_peer", "timeout", "ms", {}, {}, {}, "the connection is reset (TCP RST) after this"},
      {"slicer", "average_size", "bytes", {}, {}, {}, "mean size of the slices each chunk is cut into"},
      {"slicer", "size_variation", "bytes", {}, {}, {}, "slices vary by up to this much"},
      {"slicer", "delay", "us", {}, {}, {}, "pause between slices (microseconds)"},
      {"limit_data", "bytes", "bytes", {}, {}, {}, "the connection is closed after this many bytes"},
      {"packet_loss", "loss_rate", "", 0, 1, {}, "probability that a chunk is dropped"},
      {"packet_loss", "correlation", "", 0, 1, {}, "added to loss_rate right after a drop"},
      {"tcp_loss",
       "loss_rate",
       "",
       0,
       {},
       {},
       "long-run fraction of segments lost, at most burst / (burst + 1)"},
      {"tcp_loss", "burst", "", 1, {}, {}, "mean number of losses in a row"},
      {"tcp_loss", "rto_ms", "ms", 0, {}, {}, "retransmission timeout, doubled for each loss in a row"},
      {"corrupt", "rate", "", 0, 1, {}, "probability that a byte has one bit flipped"},
      {"slow_open", "delay", "ms", 0, {}, {}, "each new connection waits this long before going upstream"},
      {"redis_error", "commands", "", {}, {}, {}, "comma-separated command names; empty: every command"},
      {"redis_error", "error", "", {}, {}, {}, "the error reply's text, without the leading '-'"},
      {"redis_delay", "commands", "", {}, {}, {}, "comma-separated command names; empty: every command"},
      {"redis_delay", "latency", "ms", 0, kMaxMillis, {}, "delay before each matching command's reply"},
      {"redis_delay", "jitter", "ms", 0, kMaxMillis, {}, "the delay varies by up to this much"},
      {"mysql_error",
       "statement",
       "",
       {},
       {},
       {},
       "case-insensitive regular expression searched in the statement; empty: every statement"},
      {"mysql_error", "code", "", 1, 65535, {}, "MariaDB error number (1213: deadlock)"},
      {"mysql_error", "sqlstate", "", {}, {}, {}, "5 characters; empty: the code's own"},
      {"mysql_error", "message", "", {}, {}, {}, "error text; empty: the code's own"},
      {"mysql_delay",
       "statement",
       "",
       {},
       {},
       {},
       "case-insensitive regular expression searched in the statement; empty: every statement"},
      {"mysql_delay", "latency", "ms", 0, kMaxMillis, {}, "delay before each matching statement's answer"},
      {"mysql_delay", "jitter", "ms", 0, kMaxMillis, {}, "the delay varies by up to this much"},
      {"http_abort",
       "status",
       "",
       0,
       599,
       {},
       "HTTP status 200..599; 0: taken from each request's x-envoy-fault-abort-request header"},
      {"http_abort", "percentage", "%", 0, 100, {}, "share of matching requests aborted"},
      {"http_abort", "method", "", {}, {}, {}, "only this method (e.g. GET); empty: every method"},
      {"http_abort", "path_prefix", "", {}, {}, {}, "only request targets starting with this"},
      {"http_abort", "header", "", {}, {}, {}, "only requests with this header: \"Name: value\" or \"Name\""},
      {"http_abort", "body", "", {}, {}, {}, "the aborted response's body"},
      {"http_delay", "percentage", "%", 0, 100, {}, "share of matching requests delayed"},
      {"http_delay", "method", "", {}, {}, {}, "only this method (e.g. GET); empty: every method"},
      {"http_delay", "path_prefix", "", {}, {}, {}, "only request targets starting with this"},
      {"http_delay", "header", "", {}, {}, {}, "only requests with this header: \"Name: value\" or \"Name\""},
      {"http_delay",
       "latency",
       "ms",
       0,
       kMaxMillis,
       {},
       "delay before each matching request goes upstream; 0: from the request's header"},
  };
  return hints;
}

std::string toxic_types_json() {
  // The fields every toxic has, as POST /proxies/{proxy}/toxics takes them (ToxicDef's defaults).
  using K = AttributeKind;
  static const std::vector<AttributeSpec> common = {
      {"name", K::text, std::string()},
      {"stream", K::text, std::string("downstream")},
      {"toxicity", K::number, 1.0},
      {"client_cidr", K::text, std::string()},
      {"start_after_ms", K::integer, std::int64_t{0}},
      {"duration_ms", K::integer, std::int64_t{0}},
  };
  std::string s = "{\"fields\":[";
  for (std::size_t i = 0; i < common.size(); ++i) {
    if (i) s += ',';
    append_field(s, common[i].name, kind_name(common[i].kind), common[i].default_value,
                 find_hint("", common[i].name));
  }
  s += "],\"types\":[";
  bool first_type = true;
  for (const ToxicTypeInfo& info : toxic_types()) {
    if (!first_type) s += ',';
    first_type = false;
    s += "{\"name\":";
    go::json::append_quoted(s, info.name);
    s += ",\"scope\":";
    go::json::append_quoted(s, scope_name(info.scope));
    s += ",\"attributes\":[";
    for (std::size_t i = 0; i < info.attributes.size(); ++i) {
      const AttributeSpec& spec = info.attributes[i];
      if (i) s += ',';
      append_field(s, spec.name, kind_name(spec.kind), spec.default_value, find_hint(info.name, spec.name));
    }
    s += "]}";
  }
  return s + "]}";
}

}  // namespace faultproxy::console
