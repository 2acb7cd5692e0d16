#include "faultproxy/cli/toxiproxy_client.h"

#include <charconv>
#include <cmath>

#include "faultproxy/go/json.h"
#include "faultproxy/go/strconv.h"

namespace faultproxy::cli {
namespace {

using Kind = go::json::Value::Kind;

// A JSON number as Go's client holds it (interface{} and float fields: float64).
double as_double(const go::json::Value& v) {
  return go::parse_float64(v.text).value_or(0);
}

// Go's json.Marshal of an interface{} value decoded from JSON (numbers are float64, map keys sorted).
Result<std::string> encode_any(const go::json::Value& v) {
  switch (v.kind) {
    case Kind::null:
      return {"null", {}};
    case Kind::boolean:
      return {v.boolean ? "true" : "false", {}};
    case Kind::string:
      return {go::json::quote(v.text), {}};
    case Kind::array: {
      std::string out = "[";
      for (std::size_t i = 0; i < v.items.size(); ++i) {
        auto e = encode_any(v.items[i]);
        if (!e.ok()) return e;
        if (i > 0) out += ',';
        out += *e.value;
      }
      return {out + "]", {}};
    }
    case Kind::object: {
      std::map<std::string, const go::json::Value*> sorted;  // a Go map: the last of a key, keys sorted
      for (const auto& [key, value] : v.members)
        sorted[key] = &value;
      std::string out = "{";
      bool first = true;
      for (const auto& [k, val] : sorted) {
        auto e = encode_any(*val);
        if (!e.ok()) return e;
        if (!first) out += ',';
        first = false;
        out += go::json::quote(k) + ":" + *e.value;
      }
      return {out + "}", {}};
    }
    case Kind::number:
      break;
  }
  const double d = as_double(v);
  auto s = go::json::encode_float64(d);
  if (!s) return Result<std::string>::failure("json: unsupported value: " + go::format_float_g(d));
  return {*s, {}};
}

Result<std::string> encode_value(const AttributeValue& value) {
  if (const double* d = std::get_if<double>(&value)) {
    auto s = go::json::encode_float64(*d);
    if (!s) return Result<std::string>::failure("json: unsupported value: " + go::format_float_g(*d));
    return {*s, {}};
  }
  return {go::json::quote(std::get<std::string>(value)), {}};
}

Result<std::string> encode_attributes(const Attributes& attributes) {
  std::string out = "{";
  bool first = true;
  for (const auto& [key, value] : attributes) {
    auto encoded = encode_value(value);
    if (!encoded.ok()) return encoded;
    if (!first) out += ',';
    first = false;
    out += go::json::quote(key) + ":" + *encoded.value;
  }
  return {out + "}", {}};
}

Result<std::string> encode_toxicity(float toxicity) {
  auto s = go::json::encode_float32(toxicity);
  if (!s) return Result<std::string>::failure("json: unsupported value: " + go::format_float_g(toxicity));
  return {*s, {}};
}

bool is_pchar(unsigned char c) {
  if (std::isalnum(c)) return true;
  switch (c) {
    case '-':
    case '.':
    case '_':
    case '~':
    case '!':
    case '$':
    case '&':
    case '\'':
    case '(':
    case ')':
    case '*':
    case '+':
    case ',':
    case ';':
    case '=':
    case ':':
    case '@':
      return true;
    default:
      return false;
  }
}

std::string escape_segment(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (is_pchar(c)) {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  return out;
}

// The first JSON value of an answer, as Go's json.Decoder reads it.
Result<go::json::Value> parse_json(const std::string& body) {
  auto parsed = go::json::parse_first(body);
  if (!parsed.ok())
    return Result<go::json::Value>::failure("invalid JSON in the server's answer: " + parsed.error);
  return {std::move(parsed.value), {}};
}

std::string trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  return std::string(s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1));
}

}  // namespace

Attributes parse_attributes(const std::vector<std::string>& raw) {
  Attributes parsed;
  for (const auto& entry : raw) {
    const auto eq = entry.find('=');
    if (eq == std::string::npos) continue;
    const std::string key = entry.substr(0, eq);
    const std::string value = entry.substr(eq + 1);
    if (auto d = go::parse_float64(value)) {
      parsed[key] = *d;
    } else {
      parsed[key] = value;
    }
  }
  return parsed;
}

ToxicFields take_toxic_fields(std::vector<std::string>& raw) {
  ToxicFields fields;
  std::erase_if(raw, [&](const std::string& entry) {
    const auto eq = entry.find('=');
    if (eq == std::string::npos) return false;
    const std::string_view key = std::string_view(entry).substr(0, eq);
    const std::string value = entry.substr(eq + 1);
    if (key == "client_cidr") {
      fields.client_cidr = value;
    } else if (key == "start_after_ms" || key == "duration_ms") {
      // A number as Go would parse it, else the text (the server then answers why not).
      AttributeValue v = value;
      if (auto d = go::parse_float64(value)) v = *d;
      (key == "start_after_ms" ? fields.start_after_ms : fields.duration_ms) = std::move(v);
    } else {
      return false;
    }
    return true;
  });
  return fields;
}

Result<Toxic> decode_toxic(const go::json::Value& v) {
  if (v.kind != Kind::object) {
    go::json::Decoder outer("Proxy");
    outer.type_error(v.go_kind(), "toxics", "toxiproxy.Toxic");
    return Result<Toxic>::failure(outer.error());
  }
  Toxic t;
  go::json::Decoder d("Toxic");
  for (const auto& [key, value] : v.members) {
    using D = go::json::Decoder;
    if (D::key_is(key, "name")) d.string(value, "name", t.name);
    if (D::key_is(key, "type")) d.string(value, "type", t.type);
    if (D::key_is(key, "stream")) d.string(value, "stream", t.stream);
    if (D::key_is(key, "client_cidr")) d.string(value, "client_cidr", t.client_cidr);
    if (D::key_is(key, "toxicity")) d.float32(value, "toxicity", t.toxicity);
    for (auto [field, out] :
         {std::pair{"start_after_ms", &t.start_after_ms}, std::pair{"duration_ms", &t.duration_ms}}) {
      if (!D::key_is(key, field) || value.kind == Kind::null) continue;
      if (value.kind != Kind::number) d.type_error(value.go_kind(), field, "int64");
      if (!d.failed()) *out = as_double(value);
    }
    if (D::key_is(key, "attributes")) {
      d.expect_object(value, "attributes", "toxiproxy.Attributes");
      if (value.kind == Kind::object)
        for (const auto& [name, attribute] : value.members)
          t.attributes[name] = attribute;
    }
  }
  if (d.failed()) return Result<Toxic>::failure(d.error());
  return {std::move(t), {}};
}

Result<Proxy> decode_proxy(const go::json::Value& v) {
  if (v.kind != Kind::object)
    return Result<Proxy>::failure(go::json::value_type_error(v.go_kind(), "toxiproxy.Proxy"));
  Proxy p;
  go::json::Decoder d("Proxy");
  for (const auto& [key, value] : v.members) {
    using D = go::json::Decoder;
    if (D::key_is(key, "name")) d.string(value, "name", p.name);
    if (D::key_is(key, "listen")) d.string(value, "listen", p.listen);
    if (D::key_is(key, "upstream")) d.string(value, "upstream", p.upstream);
    if (D::key_is(key, "enabled")) d.boolean(value, "enabled", p.enabled);
    if (D::key_is(key, "toxics") && value.kind != Kind::null) {
      if (value.kind != Kind::array) {
        d.type_error(value.go_kind(), "toxics", "toxiproxy.Toxics");
        continue;
      }
      p.toxics.clear();
      for (const auto& item : value.items) {
        auto t = decode_toxic(item);
        if (!t.ok()) return Result<Proxy>::failure(t.error);
        p.toxics.push_back(std::move(*t.value));
      }
    }
  }
  if (d.failed()) return Result<Proxy>::failure(d.error());
  return {std::move(p), {}};
}

Result<std::string> encode_new_proxy(const std::string& name, const std::string& listen,
                                     const std::string& upstream) {
  return {"{\"name\":" + go::json::quote(name) + ",\"listen\":" + go::json::quote(listen) +
              ",\"upstream\":" + go::json::quote(upstream) + ",\"enabled\":true,\"toxics\":null}",
          {}};
}

Result<std::string> encode_proxy(const Proxy& proxy) {
  std::string out = "{\"name\":" + go::json::quote(proxy.name) +
                    ",\"listen\":" + go::json::quote(proxy.listen) +
                    ",\"upstream\":" + go::json::quote(proxy.upstream) +
                    ",\"enabled\":" + (proxy.enabled ? "true" : "false") + ",\"toxics\":[";
  for (std::size_t i = 0; i < proxy.toxics.size(); ++i) {
    const Toxic& t = proxy.toxics[i];
    auto tox = encode_toxicity(t.toxicity);
    if (!tox.ok()) return tox;
    go::json::Value attrs;
    attrs.kind = Kind::object;
    for (const auto& [k, v] : t.attributes)
      attrs.members.emplace_back(k, v);
    auto encoded_attrs = encode_any(attrs);
    if (!encoded_attrs.ok()) return encoded_attrs;
    if (i > 0) out += ',';
    out += "{\"name\":" + go::json::quote(t.name) + ",\"type\":" + go::json::quote(t.type);
    if (!t.stream.empty()) out += ",\"stream\":" + go::json::quote(t.stream);
    out += ",\"toxicity\":" + *tox.value + ",\"attributes\":" + *encoded_attrs.value + "}";
  }
  return {out + "]}", {}};
}

Result<std::string> encode_add_toxic(const ToxicOptions& options) {
  auto tox = encode_toxicity(options.toxicity);
  if (!tox.ok()) return tox;
  auto attrs = encode_attributes(options.attributes);
  if (!attrs.ok()) return attrs;
  std::string out =
      "{\"name\":" + go::json::quote(options.toxic_name) + ",\"type\":" + go::json::quote(options.type);
  if (!options.stream.empty()) out += ",\"stream\":" + go::json::quote(options.stream);
  out += ",\"toxicity\":" + *tox.value + ",\"attributes\":" + *attrs.value;
  auto fields = encode_toxic_fields(options.fields);
  if (!fields.ok()) return fields;
  return {out + *fields.value + "}", {}};
}

Result<std::string> encode_toxic_fields(const ToxicFields& fields) {
  std::string out;
  if (fields.client_cidr) out += ",\"client_cidr\":" + go::json::quote(*fields.client_cidr);
  for (const auto& [key, value] :
       {std::pair{"start_after_ms", &fields.start_after_ms}, std::pair{"duration_ms", &fields.duration_ms}}) {
    if (!*value) continue;
    auto encoded = encode_value(**value);
    if (!encoded.ok()) return encoded;
    out += ",\"" + std::string(key) + "\":" + *encoded.value;
  }
  return {out, {}};
}

Result<std::string> encode_update_toxic(float toxicity, const Attributes& attributes,
                                        const ToxicFields& fields) {
  auto attrs = encode_attributes(attributes);
  if (!attrs.ok()) return attrs;
  auto tox = encode_toxicity(toxicity);
  if (!tox.ok()) return tox;
  auto extra = encode_toxic_fields(fields);
  if (!extra.ok()) return extra;
  return {"{\"attributes\":" + *attrs.value + ",\"toxicity\":" + *tox.value + *extra.value + "}", {}};
}

std::string proxy_path(std::string_view name) {
  return "/proxies/" + escape_segment(name);
}

Result<std::string> ToxiproxyClient::call(std::string_view method, const std::string& path,
                                          const std::optional<std::string>& body) {
  HttpOutcome r = transport_.send(method, path, body);
  if (!r.response) return Result<std::string>::failure("fail to request: " + r.error);
  const unsigned status = r.response->status;
  if (status >= 200 && status < 300) return {std::move(r.response->body), {}};
  // Toxiproxy's error body: {"error":"proxy not found","status":404}
  const auto parsed = go::json::parse_first(r.response->body);
  if (parsed.ok() && parsed.value.kind == Kind::object) {
    const go::json::Value* message = parsed.value.find("error");
    const go::json::Value* code = parsed.value.find("status");
    if (message != nullptr && message->kind == Kind::string) {
      long long shown = status;
      if (code != nullptr && code->kind == Kind::number) {
        long long n = 0;
        const auto [end, ec] = std::from_chars(code->text.data(), code->text.data() + code->text.size(), n);
        if (ec == std::errc() && end == code->text.data() + code->text.size()) shown = n;
      }
      return Result<std::string>::failure("HTTP " + std::to_string(shown) + ": " + message->text);
    }
  }
  std::string text = trim(r.response->body);
  if (text.empty()) text = "no error message (status " + std::to_string(status) + ")";
  return Result<std::string>::failure("HTTP " + std::to_string(status) + ": " + text);
}

Result<ProxyMap> ToxiproxyClient::proxies() {
  auto body = call("GET", "/proxies", std::nullopt);
  if (!body.ok()) return Result<ProxyMap>::failure(body.error);
  auto v = parse_json(*body.value);
  if (!v.ok()) return Result<ProxyMap>::failure(v.error);
  ProxyMap out;
  if (v.value->kind == Kind::null) return {std::move(out), {}};
  if (v.value->kind != Kind::object) {
    return Result<ProxyMap>::failure(
        go::json::value_type_error(v.value->go_kind(), "map[string]*toxiproxy.Proxy"));
  }
  for (const auto& [name, value] : v.value->members) {
    if (value.kind == Kind::null) continue;
    auto p = decode_proxy(value);
    if (!p.ok()) return Result<ProxyMap>::failure(p.error);
    out[name] = std::move(*p.value);
  }
  return {std::move(out), {}};
}

Result<Proxy> ToxiproxyClient::proxy(const std::string& name) {
  auto body = call("GET", proxy_path(name), std::nullopt);
  if (!body.ok()) return Result<Proxy>::failure(body.error);
  auto v = parse_json(*body.value);
  if (!v.ok()) return Result<Proxy>::failure(v.error);
  return decode_proxy(*v.value);
}

Result<Proxy> ToxiproxyClient::create_proxy(const std::string& name, const std::string& listen,
                                            const std::string& upstream) {
  auto request = encode_new_proxy(name, listen, upstream);
  auto body = call("POST", "/proxies", *request.value);
  if (!body.ok()) return Result<Proxy>::failure("Create: " + body.error);
  auto v = parse_json(*body.value);
  if (!v.ok()) return Result<Proxy>::failure("Create: " + v.error);
  auto p = decode_proxy(*v.value);
  if (!p.ok()) return Result<Proxy>::failure("Create: " + p.error);
  return p;
}

Result<Proxy> ToxiproxyClient::save_proxy(const Proxy& proxy) {
  auto request = encode_proxy(proxy);
  if (!request.ok()) return Result<Proxy>::failure(request.error);
  auto body = call("POST", proxy_path(proxy.name), *request.value);
  if (!body.ok()) return Result<Proxy>::failure(body.error);
  auto v = parse_json(*body.value);
  if (!v.ok()) return Result<Proxy>::failure(v.error);
  return decode_proxy(*v.value);
}

Result<Done> ToxiproxyClient::delete_proxy(const std::string& name) {
  auto body = call("DELETE", proxy_path(name), std::nullopt);
  if (!body.ok()) return Result<Done>::failure("Delete: " + body.error);
  return {Done{}, {}};
}

Result<Toxic> ToxiproxyClient::add_toxic(const ToxicOptions& options) {
  auto p = proxy(options.proxy_name);
  if (!p.ok()) {
    return Result<Toxic>::failure("failed to retrieve proxy with name `" + options.proxy_name +
                                  "`: " + p.error);
  }
  const std::string wrap = "failed to add toxic to proxy " + options.proxy_name + ": ";
  auto request = encode_add_toxic(options);
  if (!request.ok()) return Result<Toxic>::failure(wrap + request.error);
  const std::string& name = p.value->name.empty() ? options.proxy_name : p.value->name;
  auto body = call("POST", proxy_path(name) + "/toxics", *request.value);
  if (!body.ok()) return Result<Toxic>::failure(wrap + "AddToxic: " + body.error);
  auto v = parse_json(*body.value);
  if (!v.ok()) return Result<Toxic>::failure(wrap + v.error);
  auto t = decode_toxic(*v.value);
  if (!t.ok()) return Result<Toxic>::failure(wrap + t.error);
  return t;
}

Result<Toxic> ToxiproxyClient::update_toxic(const ToxicOptions& options) {
  auto p = proxy(options.proxy_name);
  if (!p.ok()) {
    return Result<Toxic>::failure("failed to retrieve proxy with name `" + options.proxy_name +
                                  "`: " + p.error);
  }
  const std::string wrap =
      "failed to update toxic '" + options.toxic_name + "' of proxy '" + options.proxy_name + "': ";
  auto request = encode_update_toxic(options.toxicity, options.attributes, options.fields);
  if (!request.ok()) return Result<Toxic>::failure(wrap + request.error);
  const std::string& name = p.value->name.empty() ? options.proxy_name : p.value->name;
  auto body =
      call("PATCH", proxy_path(name) + "/toxics/" + escape_segment(options.toxic_name), *request.value);
  if (!body.ok()) return Result<Toxic>::failure(wrap + body.error);
  auto v = parse_json(*body.value);
  if (!v.ok()) return Result<Toxic>::failure(wrap + v.error);
  auto t = decode_toxic(*v.value);
  if (!t.ok()) return Result<Toxic>::failure(wrap + t.error);
  return t;
}

Result<Done> ToxiproxyClient::remove_toxic(const ToxicOptions& options) {
  auto p = proxy(options.proxy_name);
  if (!p.ok()) {
    return Result<Done>::failure("failed to retrieve proxy with name `" + options.proxy_name +
                                 "`: " + p.error);
  }
  const std::string& name = p.value->name.empty() ? options.proxy_name : p.value->name;
  auto body =
      call("DELETE", proxy_path(name) + "/toxics/" + escape_segment(options.toxic_name), std::nullopt);
  if (!body.ok()) {
    return Result<Done>::failure("failed to remove toxic '" + options.toxic_name + "' from proxy '" +
                                 options.proxy_name + "': " + body.error);
  }
  return {Done{}, {}};
}

}  // namespace faultproxy::cli
