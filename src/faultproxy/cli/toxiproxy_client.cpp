#include "faultproxy/cli/toxiproxy_client.h"

#include <boost/json/parse.hpp>
#include <cmath>

#include "faultproxy/go/json.h"
#include "faultproxy/go/strconv.h"

namespace faultproxy::cli {
namespace {

namespace json = boost::json;

std::string json_kind(const json::value& v) {
  switch (v.kind()) {
    case json::kind::string:
      return "string";
    case json::kind::bool_:
      return "bool";
    case json::kind::object:
      return "object";
    case json::kind::array:
      return "array";
    case json::kind::null:
      return "null";
    default:
      return "number";
  }
}

double as_double(const json::value& v) {
  if (v.is_double()) return v.get_double();
  if (v.is_int64()) return static_cast<double>(v.get_int64());
  return static_cast<double>(v.get_uint64());
}

std::string type_error(const json::value& v, std::string_view field, std::string_view go_type) {
  return "json: cannot unmarshal " + json_kind(v) + " into Go struct field " + std::string(field) +
         " of type " + std::string(go_type);
}

// Go's json.Unmarshal into a string/bool field: null leaves the zero value, another kind is an error.
bool read_string(const json::object& o, std::string_view key, std::string_view field, std::string& out,
                 std::string& error) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return true;
  if (!v->is_string()) {
    error = type_error(*v, field, "string");
    return false;
  }
  out = std::string(v->get_string());
  return true;
}

// Go's json.Marshal of an interface{} value decoded from JSON (numbers are float64, map keys sorted).
Result<std::string> encode_any(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return {"null", {}};
    case json::kind::bool_:
      return {v.get_bool() ? "true" : "false", {}};
    case json::kind::string:
      return {go::json::quote(v.get_string()), {}};
    case json::kind::array: {
      std::string out = "[";
      for (std::size_t i = 0; i < v.get_array().size(); ++i) {
        auto e = encode_any(v.get_array()[i]);
        if (!e.ok()) return e;
        if (i > 0) out += ',';
        out += *e.value;
      }
      return {out + "]", {}};
    }
    case json::kind::object: {
      std::map<std::string, const json::value*> sorted;
      for (const auto& kv : v.get_object())
        sorted[std::string(kv.key())] = &kv.value();
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
    default: {
      const double d = as_double(v);
      auto s = go::json::encode_float64(d);
      if (!s) return Result<std::string>::failure("json: unsupported value: " + go::format_float_g(d));
      return {*s, {}};
    }
  }
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

Result<json::value> parse_json(const std::string& body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec) return Result<json::value>::failure("invalid JSON in the server's answer: " + ec.message());
  return {std::move(v), {}};
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

Result<Toxic> decode_toxic(const json::value& v) {
  if (!v.is_object()) return Result<Toxic>::failure(type_error(v, "Proxy.toxics", "toxiproxy.Toxic"));
  const auto& o = v.get_object();
  Toxic t;
  std::string error;
  if (!read_string(o, "name", "Toxic.name", t.name, error) ||
      !read_string(o, "type", "Toxic.type", t.type, error) ||
      !read_string(o, "stream", "Toxic.stream", t.stream, error) ||
      !read_string(o, "client_cidr", "Toxic.client_cidr", t.client_cidr, error)) {
    return Result<Toxic>::failure(error);
  }
  for (auto [key, out] :
       {std::pair{"start_after_ms", &t.start_after_ms}, std::pair{"duration_ms", &t.duration_ms}}) {
    const json::value* field = o.if_contains(key);
    if (field == nullptr || field->is_null()) continue;
    if (!field->is_number())
      return Result<Toxic>::failure(type_error(*field, std::string("Toxic.") + key, "int64"));
    *out = as_double(*field);
  }
  if (const json::value* tox = o.if_contains("toxicity"); tox != nullptr && !tox->is_null()) {
    if (!tox->is_number()) return Result<Toxic>::failure(type_error(*tox, "Toxic.toxicity", "float32"));
    t.toxicity = static_cast<float>(as_double(*tox));
  }
  if (const json::value* attrs = o.if_contains("attributes"); attrs != nullptr && !attrs->is_null()) {
    if (!attrs->is_object()) {
      return Result<Toxic>::failure(type_error(*attrs, "Toxic.attributes", "toxiproxy.Attributes"));
    }
    for (const auto& kv : attrs->get_object())
      t.attributes[std::string(kv.key())] = kv.value();
  }
  return {std::move(t), {}};
}

Result<Proxy> decode_proxy(const json::value& v) {
  if (!v.is_object()) return Result<Proxy>::failure(type_error(v, "Proxy", "toxiproxy.Proxy"));
  const auto& o = v.get_object();
  Proxy p;
  std::string error;
  if (!read_string(o, "name", "Proxy.name", p.name, error) ||
      !read_string(o, "listen", "Proxy.listen", p.listen, error) ||
      !read_string(o, "upstream", "Proxy.upstream", p.upstream, error)) {
    return Result<Proxy>::failure(error);
  }
  if (const json::value* en = o.if_contains("enabled"); en != nullptr && !en->is_null()) {
    if (!en->is_bool()) return Result<Proxy>::failure(type_error(*en, "Proxy.enabled", "bool"));
    p.enabled = en->get_bool();
  }
  if (const json::value* toxics = o.if_contains("toxics"); toxics != nullptr && !toxics->is_null()) {
    if (!toxics->is_array())
      return Result<Proxy>::failure(type_error(*toxics, "Proxy.toxics", "toxiproxy.Toxics"));
    for (const auto& tv : toxics->get_array()) {
      auto t = decode_toxic(tv);
      if (!t.ok()) return Result<Proxy>::failure(t.error);
      p.toxics.push_back(std::move(*t.value));
    }
  }
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
    json::object attrs;
    for (const auto& [k, v] : t.attributes)
      attrs[k] = v;
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
  boost::system::error_code ec;
  json::value v = json::parse(r.response->body, ec);
  if (!ec && v.is_object()) {
    const auto& o = v.get_object();
    const json::value* message = o.if_contains("error");
    const json::value* code = o.if_contains("status");
    if (message != nullptr && message->is_string()) {
      const long long shown = code != nullptr && code->is_int64() ? code->get_int64() : status;
      return Result<std::string>::failure("HTTP " + std::to_string(shown) + ": " +
                                          std::string(message->get_string()));
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
  if (v.value->is_null()) return {std::move(out), {}};
  if (!v.value->is_object()) {
    return Result<ProxyMap>::failure("json: cannot unmarshal " + json_kind(*v.value) +
                                     " into Go value of type map[string]*toxiproxy.Proxy");
  }
  for (const auto& kv : v.value->get_object()) {
    if (kv.value().is_null()) continue;
    auto p = decode_proxy(kv.value());
    if (!p.ok()) return Result<ProxyMap>::failure(p.error);
    out[std::string(kv.key())] = std::move(*p.value);
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
