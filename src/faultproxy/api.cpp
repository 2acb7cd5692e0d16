#include "faultproxy/api.h"

#include <sys/resource.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <random>

#include "common/log.h"
#include "faultproxy/console.h"
#include "faultproxy/go/json.h"

namespace faultproxy {

namespace bhttp = common::http::bhttp;
using common::http::Request;
using common::http::Response;

namespace {

constexpr std::string_view kPopulateGoType =
    "[]struct { toxiproxy.Proxy; Enabled *bool \"json:\\\"enabled\\\"\" }";

struct Ctx {
  const Request& req;
  std::string request_id;
};

Response base(const Ctx& c, bhttp::status status) {
  Response res{status, c.req.version()};
  res.keep_alive(c.req.keep_alive());
  return res;
}

Response json_ok(const Ctx& c, std::string body, bhttp::status status = bhttp::status::ok) {
  Response res = base(c, status);
  res.set(bhttp::field::content_type, "application/json");
  res.set("X-Toxiproxy-Request-Id", c.request_id);
  res.body() = std::move(body);
  return res;
}

std::string error_body(const ApiError& e) {
  std::string body = "{\"error\":";
  go::json::append_quoted(body, e.message);
  body += ",\"status\":" + std::to_string(e.status) + "}";
  return body;
}

// Go's http.Error: text/plain, nosniff, body + "\n".
Response go_error(const Ctx& c, const ApiError& e) {
  Response res = base(c, static_cast<bhttp::status>(e.status));
  res.set(bhttp::field::content_type, "text/plain; charset=utf-8");
  res.set("X-Content-Type-Options", "nosniff");
  res.set("X-Toxiproxy-Request-Id", c.request_id);
  res.body() = error_body(e) + "\n";
  return res;
}

Response no_content(const Ctx& c) {
  Response res = base(c, bhttp::status::no_content);
  res.set("X-Toxiproxy-Request-Id", c.request_id);
  return res;
}

Response not_found_page(const Request& req) {
  Response res{bhttp::status::not_found, req.version()};
  res.keep_alive(req.keep_alive());
  res.set(bhttp::field::content_type, "text/plain; charset=utf-8");
  res.set("X-Content-Type-Options", "nosniff");
  res.body() = "404 page not found\n";
  return res;
}

Response method_not_allowed(const Request& req) {
  Response res{bhttp::status::method_not_allowed, req.version()};
  res.keep_alive(req.keep_alive());
  return res;
}

ApiError bad_body(const std::string& why) {
  return ApiError{400, "bad request body: " + why};
}

std::string percent_decode(std::string_view s, bool& ok) {
  std::string out;
  ok = true;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    if (i + 2 >= s.size() || hex(s[i + 1]) < 0 || hex(s[i + 2]) < 0) {
      ok = false;
      return out;
    }
    out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
    i += 2;
  }
  return out;
}

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  std::size_t i = 1;
  while (i <= path.size()) {
    const auto j = path.find('/', i);
    const auto end = j == std::string::npos ? path.size() : j;
    parts.push_back(path.substr(i, end - i));
    if (j == std::string::npos) break;
    i = j + 1;
  }
  return parts;
}

// A toxic's client_cidr as sent (our extension): empty is every client, else a CIDR.
std::variant<ClientFilter, ApiError> parse_client_filter(const std::string& text) {
  ClientFilter f{text, std::nullopt};
  if (text.empty()) return f;
  f.cidr = Cidr::parse(text);
  if (!f.cidr) return bad_body("client_cidr: invalid CIDR address: " + text);
  return f;
}

// Decodes a toxic's attributes object into `out`, Go-style: the keys given replace their values
// (create starts from the type's defaults, update from the toxic's current attributes).
void decode_attributes(const go::json::Value& v, const ToxicTypeInfo& info, go::json::Decoder& d,
                       Attributes& out) {
  if (v.kind == go::json::Value::Kind::null) return;
  if (v.kind != go::json::Value::Kind::object) {
    d.type_error(v.go_kind(), "", "toxics." + std::string(info.go_struct));
    return;
  }
  go::json::Decoder inner(std::string(info.go_struct) + ".attributes");
  for (const auto& [key, value] : v.members) {
    for (std::size_t i = 0; i < info.attributes.size(); ++i) {
      const AttributeSpec& spec = info.attributes[i];
      if (!go::json::Decoder::key_is(key, spec.name)) continue;
      if (value.kind == go::json::Value::Kind::null) break;  // Go leaves the field as it was
      switch (spec.kind) {
        case AttributeKind::integer: {
          std::int64_t x = 0;
          inner.int64(value, spec.name, info.go_int_type, x);
          if (!inner.failed()) out[i] = x;
          break;
        }
        case AttributeKind::number: {
          double x = 0;
          inner.float64(value, spec.name, x);
          if (!inner.failed()) out[i] = x;
          break;
        }
        case AttributeKind::text: {
          std::string x;
          if (value.kind == go::json::Value::Kind::number && is_protocol_toxic(info.type)) {
            // faultproxy-cli, like toxiproxy-cli, sends `-a sqlstate=40001` as a number: taken as
            // written, and a SQLSTATE so given keeps its leading zeros.
            x = value.text;
            if (spec.name == "sqlstate" && x.size() < 5 &&
                x.find_first_not_of("0123456789") == std::string::npos)
              x.insert(0, 5 - x.size(), '0');
          } else {
            inner.string(value, spec.name, x);
          }
          if (!inner.failed()) out[i] = std::move(x);
          break;
        }
        case AttributeKind::flag: {
          // toxiproxy-cli sends `-a per_proxy=true` as the string "true": taken as the boolean.
          if (value.kind == go::json::Value::Kind::string &&
              (value.text == "true" || value.text == "false")) {
            out[i] = value.text == "true";
            break;
          }
          bool x = false;
          inner.boolean(value, spec.name, x);
          if (!inner.failed()) out[i] = x;
          break;
        }
      }
      break;
    }
    if (inner.failed()) break;
  }
  if (inner.failed()) d.fail(inner.error());
}

// Checks what Go's types cannot: attribute ranges, the time window, and client_cidr where it
// cannot apply; and compiles a protocol toxic's attributes into def.protocol. Errors read like
// client_cidr's: "bad request body: <field>: <why>: <value>" (a protocol toxic's: "attributes.<name>:
// <why>").
std::optional<ApiError> check_toxic(ToxicDef& def) {
  if (auto why = validate_attributes(def.type, def.attributes)) return bad_body(*why);
  if (def.start_after_ms < 0)
    return bad_body("start_after_ms: less than 0: " + std::to_string(def.start_after_ms));
  if (def.duration_ms < 0) return bad_body("duration_ms: less than 0: " + std::to_string(def.duration_ms));
  if (def.type == ToxicType::refuse && def.client.cidr)
    return bad_body("client_cidr: refuse acts on the listener, before any client is known: " +
                    def.client.text);
  if (is_protocol_toxic(def.type)) {
    auto compiled = compile_protocol_settings(def.type, def.attributes);
    if (auto* why = std::get_if<std::string>(&compiled)) return bad_body("attributes." + *why);
    def.protocol = std::move(std::get<0>(compiled));
  }
  return std::nullopt;
}

// POST /proxies/{p}/toxics body, checked in Toxiproxy's order: JSON, stream, name, type,
// duplicate (by the caller), attributes; then our fields and ranges (check_toxic).
std::variant<ToxicDef, ApiError> parse_toxic(const go::json::Value& root, const Proxy* proxy_for_duplicates) {
  ToxicDef def;
  if (root.kind != go::json::Value::Kind::object && root.kind != go::json::Value::Kind::null) {
    return bad_body(go::json::value_type_error(root.go_kind(), "toxics.ToxicWrapper"));
  }
  go::json::Decoder d("ToxicWrapper");
  const go::json::Value* attributes = nullptr;
  std::string type_name, client_cidr;
  for (const auto& [key, value] : root.members) {
    if (go::json::Decoder::key_is(key, "name")) d.string(value, "name", def.name);
    if (go::json::Decoder::key_is(key, "client_cidr")) d.string(value, "client_cidr", client_cidr);
    if (go::json::Decoder::key_is(key, "start_after_ms"))
      d.int64(value, "start_after_ms", "int64", def.start_after_ms);
    if (go::json::Decoder::key_is(key, "duration_ms"))
      d.int64(value, "duration_ms", "int64", def.duration_ms);
    if (go::json::Decoder::key_is(key, "type")) d.string(value, "type", type_name);
    if (go::json::Decoder::key_is(key, "stream")) d.string(value, "stream", def.stream);
    if (go::json::Decoder::key_is(key, "toxicity")) d.float32(value, "toxicity", def.toxicity);
    if (go::json::Decoder::key_is(key, "attributes")) {
      d.expect_object(value, "attributes", "toxics.NoopToxic");
      attributes = &value;
    }
  }
  if (d.failed()) return bad_body(d.error());
  std::string lower = def.stream;
  for (auto& ch : lower)
    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (lower == "upstream") {
    def.direction = Direction::upstream;
  } else if (lower == "downstream") {
    def.direction = Direction::downstream;
  } else {
    return ApiError{400, "stream was invalid, can be either upstream or downstream"};
  }
  if (def.name.empty()) def.name = type_name + "_" + def.stream;
  const ToxicTypeInfo* info = find_toxic_type(type_name);
  if (!info) return ApiError{400, "invalid toxic type"};
  def.type = info->type;
  if (proxy_for_duplicates && proxy_for_duplicates->find_toxic(def.name))
    return ApiError{409, "toxic already exists"};
  def.attributes = default_attributes(def.type);
  if (attributes) {
    go::json::Decoder ad("ToxicWrapper");
    decode_attributes(*attributes, *info, ad, def.attributes);
    if (ad.failed()) return bad_body(ad.error());
  }
  auto client = parse_client_filter(client_cidr);
  if (auto* e = std::get_if<ApiError>(&client)) return *e;
  def.client = std::move(std::get<ClientFilter>(client));
  if (auto e = check_toxic(def)) return *e;
  return def;
}

struct ProxyFields {
  std::optional<std::string> name, listen, upstream;
  std::optional<bool> enabled;
  const go::json::Value* toxics = nullptr;
};

std::optional<ApiError> decode_proxy(const go::json::Value& root, std::string_view go_type,
                                     go::json::Decoder& d, ProxyFields& f, bool allow_toxics) {
  if (root.kind == go::json::Value::Kind::null) return std::nullopt;
  if (root.kind != go::json::Value::Kind::object) {
    return bad_body(go::json::value_type_error(root.go_kind(), go_type));
  }
  for (const go::json::Member& member : root.members) {
    // Named references, not a structured binding: lambdas may capture those only since clang 16.
    const std::string& key = member.key;
    const go::json::Value& value = member.value;
    auto str = [&](std::string_view field, std::optional<std::string>& out) {
      if (!go::json::Decoder::key_is(key, field)) return;
      std::string s = out.value_or("");
      d.string(value, field, s);
      if (value.kind == go::json::Value::Kind::string) out = s;
    };
    str("name", f.name);
    str("listen", f.listen);
    str("upstream", f.upstream);
    if (go::json::Decoder::key_is(key, "enabled")) {
      bool b = false;
      d.boolean(value, "enabled", b);
      if (value.kind == go::json::Value::Kind::boolean) f.enabled = b;
    }
    if (allow_toxics && go::json::Decoder::key_is(key, "toxics")) {
      if (value.kind == go::json::Value::Kind::array) {
        f.toxics = &value;
      } else if (value.kind != go::json::Value::Kind::null) {
        d.type_error(value.go_kind(), "toxics", "[]toxics.ToxicWrapper");
      }
    }
  }
  if (d.failed()) return bad_body(d.error());
  return std::nullopt;
}

std::string proxies_array(const ProxyCollection& proxies, const std::vector<std::string>& names) {
  if (names.empty()) return "null";
  std::string s = "[";
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i) s += ',';
    if (const Proxy* p = proxies.find(names[i])) s += proxy_json(*p);
  }
  return s + "]";
}

void runtime_metrics(common::metrics::Writer& w) {
  long pages = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  w.gauge("process_resident_memory_bytes", "Resident memory size in bytes.", {},
          static_cast<double>(resident) * page);
  w.gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", {},
          static_cast<double>(pages) * page);
  std::size_t fds = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++fds;
  w.gauge("process_open_fds", "Open file descriptors.", {}, static_cast<double>(fds));
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const double cpu = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                     static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  w.counter("process_cpu_seconds_total", "User and system CPU time spent in seconds.", {}, cpu);
}

}  // namespace

std::string toxic_json(const ToxicDef& t) {
  const ToxicTypeInfo& info = toxic_type_info(t.type);
  std::string s = "{\"attributes\":{";
  // mysql_error shows the SQLSTATE and message it answers with where they were left empty.
  const Attributes shown =
      is_protocol_toxic(t.type) ? effective_attributes(t.type, t.attributes) : t.attributes;
  bool first = true;
  for (std::size_t i = 0; i < info.attributes.size(); ++i) {
    const AttributeSpec& spec = info.attributes[i];
    if (!spec.echo_default && shown[i] == spec.default_value) continue;  // Toxiproxy's answer
    if (!first) s += ',';
    first = false;
    go::json::append_quoted(s, spec.name);
    s += ':';
    switch (spec.kind) {
      case AttributeKind::integer:
        s += std::to_string(shown.integer(i));
        break;
      case AttributeKind::number:
        s += go::json::encode_float64(shown.number(i)).value_or("0");
        break;
      case AttributeKind::text:
        go::json::append_quoted(s, shown.text(i));
        break;
      case AttributeKind::flag:
        s += shown.flag(i) ? "true" : "false";
        break;
    }
  }
  s += "},\"name\":";
  go::json::append_quoted(s, t.name);
  s += ",\"type\":";
  go::json::append_quoted(s, info.name);
  s += ",\"stream\":";
  go::json::append_quoted(s, t.stream);
  s += ",\"toxicity\":" + go::json::encode_float32(t.toxicity).value_or("0");
  // Our fields, only when set: answers for other toxics stay Toxiproxy's.
  if (!t.client.text.empty()) {
    s += ",\"client_cidr\":";
    go::json::append_quoted(s, t.client.text);
  }
  if (t.start_after_ms != 0) s += ",\"start_after_ms\":" + std::to_string(t.start_after_ms);
  if (t.duration_ms != 0) s += ",\"duration_ms\":" + std::to_string(t.duration_ms);
  return s + "}";
}

std::string proxy_json(const Proxy& p) {
  std::string s = "{\"name\":";
  go::json::append_quoted(s, p.name);
  s += ",\"listen\":";
  go::json::append_quoted(s, p.listen);
  s += ",\"upstream\":";
  go::json::append_quoted(s, p.upstream);
  s += p.enabled ? ",\"enabled\":true" : ",\"enabled\":false";
  s += ",\"Logger\":{},\"toxics\":[";
  bool first = true;
  for (const ToxicDef* t : p.ordered_toxics()) {
    if (!first) s += ',';
    first = false;
    s += toxic_json(*t);
  }
  return s + "]}";
}

std::variant<std::vector<ProxyCollection::PopulateEntry>, ApiError> parse_populate(std::string_view body) {
  auto parsed = go::json::parse_first(body);
  if (!parsed.ok()) return bad_body(parsed.error);
  const auto& root = parsed.value;
  std::vector<ProxyCollection::PopulateEntry> entries;
  if (root.kind == go::json::Value::Kind::null) return entries;
  if (root.kind != go::json::Value::Kind::array) {
    return bad_body(go::json::value_type_error(root.go_kind(), kPopulateGoType));
  }
  for (std::size_t i = 0; i < root.items.size(); ++i) {
    go::json::Decoder d("Proxy");
    ProxyFields f;
    if (auto e = decode_proxy(root.items[i], kPopulateGoType.substr(2), d, f, true)) return *e;
    ProxyCollection::PopulateEntry entry;
    entry.config = {f.name.value_or(""), f.listen.value_or(""), f.upstream.value_or("")};
    entry.enabled = f.enabled.value_or(true);
    if (f.toxics) {
      Proxy scratch;  // for duplicate names within this proxy's list
      std::vector<ToxicDef> toxics;
      for (std::size_t k = 0; k < f.toxics->items.size(); ++k) {
        auto t = parse_toxic(f.toxics->items[k], &scratch);
        if (auto* e = std::get_if<ApiError>(&t)) {
          e->message += " at proxy " + std::to_string(i + 1) + " toxic " + std::to_string(k + 1);
          return *e;
        }
        scratch.toxics.push_back(std::get<ToxicDef>(t));
        toxics.push_back(std::get<ToxicDef>(t));
      }
      entry.toxics = std::move(toxics);
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

std::string new_request_id() {
  // xid layout: 4 bytes of seconds, 3 of machine id, 2 of pid, 3 of counter; base32hex, 20 chars.
  static const std::uint32_t machine = [] {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    return static_cast<std::uint32_t>(hash_string(host, 0) & 0xffffff);
  }();
  static std::atomic<std::uint32_t> counter{static_cast<std::uint32_t>(std::random_device{}())};
  const auto now = static_cast<std::uint32_t>(std::time(nullptr));
  const auto pid = static_cast<std::uint32_t>(getpid());
  const std::uint32_t n = counter.fetch_add(1, std::memory_order_relaxed);
  const std::array<std::uint8_t, 12> id = {
      static_cast<std::uint8_t>(now >> 24),     static_cast<std::uint8_t>(now >> 16),
      static_cast<std::uint8_t>(now >> 8),      static_cast<std::uint8_t>(now),
      static_cast<std::uint8_t>(machine >> 16), static_cast<std::uint8_t>(machine >> 8),
      static_cast<std::uint8_t>(machine),       static_cast<std::uint8_t>(pid >> 8),
      static_cast<std::uint8_t>(pid),           static_cast<std::uint8_t>(n >> 16),
      static_cast<std::uint8_t>(n >> 8),        static_cast<std::uint8_t>(n)};
  static const char* alphabet = "0123456789abcdefghijklmnopqrstuv";
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (std::uint8_t b : id) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(acc >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(acc << (5 - bits)) & 31];
  return out;
}

Api::Api(ProxyCollection& proxies, common::metrics::Registry& registry, Settings settings)
    : proxies_(proxies), registry_(registry), settings_(settings) {
  if (settings_.proxy_metrics) {
    registry_.add_collector([this](common::metrics::Writer& w) {
      for (const auto& [name, p] : proxies_.proxies()) {
        const double live = p->listener ? static_cast<double>(p->listener->runtime->live.load()) : 0.0;
        w.gauge("faultproxy_proxy_connections", "Open client connections.", {{"proxy", name}}, live);
      }
    });
  }
  if (settings_.runtime_metrics) registry_.add_collector(runtime_metrics);
}

Response Api::server_error(bhttp::status status, std::string_view message, unsigned version) {
  Response res{status, version};
  res.set(bhttp::field::content_type, "text/plain; charset=utf-8");
  res.set("X-Content-Type-Options", "nosniff");
  res.body() = error_body(ApiError{static_cast<int>(status), std::string(message)}) + "\n";
  return res;
}

Response Api::handle(const Request& req, const common::http::RequestInfo& info) {
  const auto started = std::chrono::steady_clock::now();
  std::string_view target = req.target();
  if (const auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
  bool decoded_ok = true;
  const std::string path = percent_decode(target, decoded_ok);
  if (!decoded_ok || path.empty() || path[0] != '/') return not_found_page(req);
  // The console's static files: no state and no data, so browsers may load them.
  if (path == "/ui" || path.starts_with("/ui/")) return console::serve_file(req, path, settings_.api_host);
  const auto parts = split_path(path);
  for (const auto& part : parts)
    if (part.empty()) return not_found_page(req);
  const auto method = req.method();
  using V = bhttp::verb;

  // Route table: which methods a path takes (gorilla/mux answers 405 for the others).
  enum class Route { none, reset, proxies, populate, proxy, toxics, toxic, version, metrics, toxic_types };
  Route route = Route::none;
  std::vector<V> allowed;
  if (parts.size() == 1 && parts[0] == "reset") {
    route = Route::reset, allowed = {V::post};
  } else if (parts.size() == 1 && parts[0] == "proxies") {
    route = Route::proxies, allowed = {V::get, V::post};
  } else if (parts.size() == 1 && parts[0] == "populate") {
    route = Route::populate, allowed = {V::post};
  } else if (parts.size() == 2 && parts[0] == "proxies") {
    route = Route::proxy, allowed = {V::get, V::post, V::patch, V::delete_};
  } else if (parts.size() == 3 && parts[0] == "proxies" && parts[2] == "toxics") {
    route = Route::toxics, allowed = {V::get, V::post};
  } else if (parts.size() == 4 && parts[0] == "proxies" && parts[2] == "toxics") {
    route = Route::toxic, allowed = {V::get, V::post, V::patch, V::delete_};
  } else if (parts.size() == 1 && parts[0] == "toxic-types") {
    route = Route::toxic_types, allowed = {V::get};
  } else if (parts.size() == 1 && parts[0] == "version") {
    route = Route::version, allowed = {V::get};
  } else if (parts.size() == 1 && parts[0] == "metrics" &&
             (settings_.proxy_metrics || settings_.runtime_metrics)) {
    route = Route::metrics;
  }
  if (route == Route::none) return not_found_page(req);
  if (route != Route::metrics && std::find(allowed.begin(), allowed.end(), method) == allowed.end()) {
    return method_not_allowed(req);
  }

  Ctx c{req, new_request_id()};
  Response res = [&]() -> Response {
    // Toxiproxy's guard against cross-site requests: browsers are refused, unless the request is
    // the console's own (its header, which another origin cannot send without a CORS preflight
    // that is never granted) and passes the same-origin checks below.
    const bool browser = req[bhttp::field::user_agent].starts_with("Mozilla/");
    if (browser && req[console::kConsoleHeader] != "1") {
      Response r = base(c, bhttp::status::forbidden);
      r.set(bhttp::field::content_type, "text/plain; charset=utf-8");
      r.set("X-Content-Type-Options", "nosniff");
      r.set("X-Toxiproxy-Request-Id", c.request_id);
      r.body() = "User agent not allowed\n";
      return r;
    }
    // Also for any client showing a browser's marks (Origin, Sec-Fetch-Site), whatever its agent.
    if (auto why = console::cross_site_refusal(req, settings_.api_host, browser))
      return go_error(c, {403, "cross-site request refused: " + *why});
    switch (route) {
      case Route::toxic_types:
        return json_ok(c, console::toxic_types_json());
      case Route::version: {
        Response r = base(c, bhttp::status::ok);
        r.set(bhttp::field::content_type, "application/json;charset=utf-8");
        r.set("X-Toxiproxy-Request-Id", c.request_id);
        r.body() = "{\"version\": \"" + std::string(kToxiproxyVersion) + "\"}\n";
        return r;
      }
      case Route::metrics: {
        Response r = base(c, bhttp::status::ok);
        r.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
        r.set("X-Toxiproxy-Request-Id", c.request_id);
        r.body() = registry_.render();
        return r;
      }
      case Route::reset: {
        if (auto e = proxies_.reset()) return go_error(c, *e);
        return no_content(c);
      }
      case Route::proxies: {
        if (method == V::get) {
          std::string s = "{";
          bool first = true;
          for (const auto& [name, p] : proxies_.proxies()) {  // std::map: sorted, as encoding/json sorts keys
            if (!first) s += ',';
            first = false;
            go::json::append_quoted(s, name);
            s += ':' + proxy_json(*p);
          }
          return json_ok(c, s + "}");
        }
        auto parsed = go::json::parse_first(req.body());
        if (!parsed.ok()) return go_error(c, bad_body(parsed.error));
        go::json::Decoder d("Proxy");
        ProxyFields f;
        if (auto e = decode_proxy(parsed.value, "toxiproxy.Proxy", d, f, false)) return go_error(c, *e);
        if (f.name.value_or("").empty()) return go_error(c, {400, "missing required field: name"});
        if (f.upstream.value_or("").empty()) return go_error(c, {400, "missing required field: upstream"});
        if (auto e =
                proxies_.create({*f.name, f.listen.value_or(""), *f.upstream}, f.enabled.value_or(true))) {
          return go_error(c, *e);
        }
        return json_ok(c, proxy_json(*proxies_.find(*f.name)), bhttp::status::created);
      }
      case Route::populate: {
        auto parsed = parse_populate(req.body());
        std::vector<std::string> names;
        std::optional<ApiError> err;
        if (auto* e = std::get_if<ApiError>(&parsed)) {
          err = *e;
        } else {
          err = proxies_.populate(std::move(std::get<std::vector<ProxyCollection::PopulateEntry>>(parsed)),
                                  names);
        }
        // Populate answers errors as JSON (not http.Error), with the proxies it created: none.
        if (err) {
          std::string body = error_body(*err);
          body.pop_back();
          return json_ok(c, body + ",\"proxies\":null}", static_cast<bhttp::status>(err->status));
        }
        return json_ok(c, "{\"proxies\":" + proxies_array(proxies_, names) + "}", bhttp::status::created);
      }
      case Route::proxy: {
        const std::string& name = parts[1];
        const Proxy* p = proxies_.find(name);
        if (!p) return go_error(c, {404, "proxy not found"});
        if (method == V::get) return json_ok(c, proxy_json(*p));
        if (method == V::delete_) {
          if (auto e = proxies_.remove(name)) return go_error(c, *e);
          return no_content(c);
        }
        if (method == V::post)
          common::log::warn("ProxyUpdate: HTTP method POST is deprecated. Use HTTP PATCH instead.");
        auto parsed = go::json::parse_first(req.body());
        if (!parsed.ok()) return go_error(c, bad_body(parsed.error));
        go::json::Decoder d("Proxy");
        ProxyFields f;
        if (auto e = decode_proxy(parsed.value, "toxiproxy.Proxy", d, f, false)) return go_error(c, *e);
        if (auto e = proxies_.update(name, f.listen, f.upstream, f.enabled)) return go_error(c, *e);
        return json_ok(c, proxy_json(*proxies_.find(name)));
      }
      case Route::toxics: {
        const Proxy* p = proxies_.find(parts[1]);
        if (!p) return go_error(c, {404, "proxy not found"});
        if (method == V::get) {
          std::string s = "[";
          bool first = true;
          for (const ToxicDef* t : p->ordered_toxics()) {
            if (!first) s += ',';
            first = false;
            s += toxic_json(*t);
          }
          return json_ok(c, s + "]");
        }
        auto parsed = go::json::parse_first(req.body());
        if (!parsed.ok()) return go_error(c, bad_body(parsed.error));
        auto def = parse_toxic(parsed.value, p);
        if (auto* e = std::get_if<ApiError>(&def)) return go_error(c, *e);
        const std::string toxic_name = std::get<ToxicDef>(def).name;
        if (auto e = proxies_.add_toxic(parts[1], std::move(std::get<ToxicDef>(def)))) return go_error(c, *e);
        return json_ok(c, toxic_json(*proxies_.find(parts[1])->find_toxic(toxic_name)));
      }
      case Route::toxic: {
        const Proxy* p = proxies_.find(parts[1]);
        if (!p) return go_error(c, {404, "proxy not found"});
        const ToxicDef* t = p->find_toxic(parts[3]);
        if (!t) return go_error(c, {404, "toxic not found"});
        if (method == V::get) return json_ok(c, toxic_json(*t));
        if (method == V::delete_) {
          if (auto e = proxies_.remove_toxic(parts[1], parts[3])) return go_error(c, *e);
          return no_content(c);
        }
        if (method == V::post)
          common::log::warn("ToxicUpdate: HTTP method POST is deprecated. Use HTTP PATCH instead.");
        auto parsed = go::json::parse_first(req.body());
        if (!parsed.ok()) return go_error(c, bad_body(parsed.error));
        const ToxicTypeInfo& type_info = toxic_type_info(t->type);
        ToxicDef updated = *t;  // what the body gives replaces, the rest stays
        std::optional<std::string> client_text;
        const auto& root = parsed.value;
        if (root.kind != go::json::Value::Kind::object && root.kind != go::json::Value::Kind::null) {
          return go_error(c, bad_body(go::json::value_type_error(
                                 root.go_kind(),
                                 "struct { Attributes interface {} \"json:\\\"attributes\\\"\"; "
                                 "Toxicity float32 \"json:\\\"toxicity\\\"\" }")));
        }
        go::json::Decoder d("");
        for (const auto& [key, value] : root.members) {
          if (go::json::Decoder::key_is(key, "attributes"))
            decode_attributes(value, type_info, d, updated.attributes);
          if (go::json::Decoder::key_is(key, "toxicity")) d.float32(value, "toxicity", updated.toxicity);
          if (go::json::Decoder::key_is(key, "client_cidr")) {  // absent or null: kept; "": every client
            std::string text;
            d.string(value, "client_cidr", text);
            if (value.kind == go::json::Value::Kind::string) client_text = std::move(text);
          }
          // Our time window (absent or null: kept); it counts from when the toxic was added.
          if (go::json::Decoder::key_is(key, "start_after_ms"))
            d.int64(value, "start_after_ms", "int64", updated.start_after_ms);
          if (go::json::Decoder::key_is(key, "duration_ms"))
            d.int64(value, "duration_ms", "int64", updated.duration_ms);
          if (d.failed()) break;
        }
        if (d.failed()) return go_error(c, bad_body(d.error()));
        if (client_text) {
          auto filter = parse_client_filter(*client_text);
          if (auto* e = std::get_if<ApiError>(&filter)) return go_error(c, *e);
          updated.client = std::move(std::get<ClientFilter>(filter));
        }
        if (auto e = check_toxic(updated)) return go_error(c, *e);
        if (auto e = proxies_.update_toxic(parts[1], updated)) return go_error(c, *e);
        // A time window already over removed the toxic: it is answered as it was last.
        const ToxicDef* now_t = proxies_.find(parts[1])->find_toxic(updated.name);
        return json_ok(c, toxic_json(now_t ? *now_t : updated));
      }
      case Route::none:
        break;
    }
    return not_found_page(req);
  }();
  if (common::log::enabled(common::log::Level::debug)) {
    const auto us =
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started);
    common::log::debug("request", {{"request_id", c.request_id},
                                   {"client", info.remote.address().to_string()},
                                   {"method", std::string_view(req.method_string())},
                                   {"url", std::string_view(req.target())},
                                   {"status", res.result_int()},
                                   {"size", res.body().size()},
                                   {"duration_us", static_cast<long long>(us.count())}});
  }
  return res;
}

}  // namespace faultproxy
