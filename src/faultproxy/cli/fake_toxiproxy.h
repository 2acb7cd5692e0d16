// Test support: an in-memory Toxiproxy API behind the CLI's Transport seam, answering the routes the
// CLI uses the way Toxiproxy 2.12 answers them (status codes, error texts, defaults, toxic order),
// and recording every request so tests can check the exact bodies the CLI sends.
//
// Usage:
//   FakeToxiproxy fake;
//   fake.add_proxy("echo", "127.0.0.1:18480", "127.0.0.1:18100");
//   run_cli("toxiproxy-cli", args, env, io, [&](const std::string&) { return fake.transport(); });
//   EXPECT_EQ(fake.requests().back().body, "...");
#pragma once

#include <boost/json.hpp>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "faultproxy/cli/http_client.h"

namespace faultproxy::cli::testing {

struct RecordedRequest {
  std::string method;
  std::string path;
  std::string body;
};

class FakeToxiproxy {
 public:
  void add_proxy(const std::string& name, const std::string& listen, const std::string& upstream) {
    proxies_[name] = Proxy{name, listen, upstream, true, {}};
  }

  const std::vector<RecordedRequest>& requests() const { return requests_; }

  std::unique_ptr<Transport> transport() { return std::make_unique<Adapter>(*this); }

  HttpOutcome handle(std::string_view method, std::string_view raw_path,
                     const std::optional<std::string>& body) {
    requests_.push_back({std::string(method), std::string(raw_path), body.value_or("")});
    std::vector<std::string> parts;
    std::string path = decode(raw_path);  // gorilla/mux matches the decoded path
    std::size_t pos = 1;
    while (pos <= path.size()) {
      const auto slash = path.find('/', pos);
      parts.push_back(path.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos));
      if (slash == std::string::npos) break;
      pos = slash + 1;
    }
    for (const auto& p : parts) {
      if (p.empty()) return page_not_found();
    }
    const std::string b = body.value_or("");
    if (parts.size() == 1 && parts[0] == "proxies") {
      if (method == "GET") return list();
      if (method == "POST") return create(b);
    }
    if (parts.size() >= 2 && parts[0] == "proxies") {
      auto it = proxies_.find(parts[1]);
      if (parts.size() == 2) {
        if (it == proxies_.end()) return error(404, "proxy not found");
        if (method == "GET") return ok(200, proxy_json(it->second));
        if (method == "POST" || method == "PATCH") return update_proxy(it->second, b);
        if (method == "DELETE") {
          proxies_.erase(it);
          return ok(204, "");
        }
      }
      if (parts.size() == 3 && parts[2] == "toxics") {
        if (it == proxies_.end()) return error(404, "proxy not found");
        if (method == "POST") return add_toxic(it->second, b);
      }
      if (parts.size() == 4 && parts[2] == "toxics") {
        if (it == proxies_.end()) return error(404, "proxy not found");
        auto& toxics = it->second.toxics;
        auto t = toxics.begin();
        while (t != toxics.end() && t->at("name").as_string() != parts[3])
          ++t;
        if (t == toxics.end()) return error(404, "toxic not found");
        if (method == "GET") return ok(200, boost::json::serialize(*t));
        if (method == "PATCH" || method == "POST") return update_toxic(*t, b);
        if (method == "DELETE") {
          toxics.erase(t);
          return ok(204, "");
        }
      }
    }
    return page_not_found();
  }

 private:
  struct Proxy {
    std::string name, listen, upstream;
    bool enabled = true;
    std::vector<boost::json::object> toxics;  // insertion order; rendered upstream first
  };

  class Adapter final : public Transport {
   public:
    explicit Adapter(FakeToxiproxy& fake) : fake_(fake) {}
    HttpOutcome send(std::string_view method, std::string_view path,
                     const std::optional<std::string>& body) override {
      return fake_.handle(method, path, body);
    }

   private:
    FakeToxiproxy& fake_;
  };

  static std::string decode(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '%' && i + 2 < s.size()) {
        out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
        i += 2;
      } else {
        out += s[i];
      }
    }
    return out;
  }

  static HttpOutcome ok(unsigned status, std::string body) {
    return {HttpResponse{status, std::move(body)}, {}};
  }
  static HttpOutcome error(unsigned status, const std::string& message) {
    return ok(status, "{\"error\":" + boost::json::serialize(boost::json::value(message)) +
                          ",\"status\":" + std::to_string(status) + "}\n");
  }
  static HttpOutcome page_not_found() { return ok(404, "404 page not found\n"); }

  static std::string go_struct(const std::string& type) {
    static const std::map<std::string, std::string> names = {
        {"latency", "LatencyToxic"},      {"bandwidth", "BandwidthToxic"},
        {"slow_close", "SlowCloseToxic"}, {"timeout", "TimeoutToxic"},
        {"reset_peer", "ResetToxic"},     {"slicer", "SlicerToxic"},
        {"limit_data", "LimitDataToxic"}, {"noop", "NoopToxic"}};
    return names.at(type);
  }

  static const std::map<std::string, std::vector<std::string>>& attribute_names() {
    static const std::map<std::string, std::vector<std::string>> names = {
        {"latency", {"latency", "jitter"}},
        {"bandwidth", {"rate"}},
        {"slow_close", {"delay"}},
        {"timeout", {"timeout"}},
        {"reset_peer", {"timeout"}},
        {"limit_data", {"bytes"}},
        {"slicer", {"average_size", "size_variation", "delay"}},
        {"noop", {}}};
    return names;
  }

  std::string proxy_json(const Proxy& p) const {
    boost::json::array toxics;
    for (const char* stream : {"upstream", "downstream"}) {
      for (const auto& t : p.toxics) {
        if ((t.at("stream").as_string() == "upstream") == (std::string_view(stream) == "upstream"))
          toxics.push_back(t);
      }
    }
    return "{\"name\":" + boost::json::serialize(boost::json::value(p.name)) +
           ",\"listen\":" + boost::json::serialize(boost::json::value(p.listen)) +
           ",\"upstream\":" + boost::json::serialize(boost::json::value(p.upstream)) +
           ",\"enabled\":" + (p.enabled ? "true" : "false") +
           ",\"Logger\":{},\"toxics\":" + boost::json::serialize(toxics) + "}";
  }

  HttpOutcome list() const {
    std::string out = "{";
    for (const auto& [name, p] : proxies_) {
      if (out.size() > 1) out += ',';
      out += boost::json::serialize(boost::json::value(name)) + ":" + proxy_json(p);
    }
    return ok(200, out + "}");
  }

  static std::optional<boost::json::object> parse_object(const std::string& body) {
    boost::system::error_code ec;
    auto v = boost::json::parse(body, ec);
    if (ec || !v.is_object()) return std::nullopt;
    return v.as_object();
  }

  HttpOutcome create(const std::string& body) {
    auto o = parse_object(body);
    if (!o) return error(400, "bad request body: EOF");
    auto str = [&](const char* k) {
      auto* v = o->if_contains(k);
      return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
    };
    if (str("name").empty()) return error(400, "missing required field: name");
    if (str("upstream").empty()) return error(400, "missing required field: upstream");
    if (proxies_.count(str("name"))) return error(409, "proxy already exists");
    Proxy p{str("name"), str("listen"), str("upstream"), true, {}};
    if (auto* e = o->if_contains("enabled"); e != nullptr && e->is_bool()) p.enabled = e->as_bool();
    proxies_[p.name] = p;
    return ok(201, proxy_json(p));
  }

  HttpOutcome update_proxy(Proxy& p, const std::string& body) {
    auto o = parse_object(body);
    if (!o) return error(400, "bad request body: EOF");
    if (auto* e = o->if_contains("enabled"); e != nullptr && e->is_bool()) p.enabled = e->as_bool();
    if (auto* l = o->if_contains("listen"); l != nullptr && l->is_string()) p.listen = l->as_string();
    if (auto* u = o->if_contains("upstream"); u != nullptr && u->is_string()) p.upstream = u->as_string();
    return ok(200, proxy_json(p));
  }

  // Validates and merges `attrs` into the toxic's attributes, as Go's json.Unmarshal into int64 fields.
  static std::optional<HttpOutcome> merge_attributes(boost::json::object& toxic,
                                                     const boost::json::value* attrs) {
    if (attrs == nullptr || attrs->is_null()) return std::nullopt;
    const std::string type(toxic.at("type").as_string());
    auto& target = toxic["attributes"].as_object();
    for (const auto& name : attribute_names().at(type)) {
      const auto* v = attrs->as_object().if_contains(name);
      if (v == nullptr) continue;
      const std::string field =
          "Go struct field " + go_struct(type) + ".attributes." + name + " of type int64";
      if (v->is_string()) return error(400, "bad request body: json: cannot unmarshal string into " + field);
      if (v->is_double()) {
        if (v->as_double() != static_cast<double>(static_cast<long long>(v->as_double()))) {
          return error(400, "bad request body: json: cannot unmarshal number " + boost::json::serialize(*v) +
                                " into " + field);
        }
        target[name] = static_cast<long long>(v->as_double());
      } else if (v->is_int64()) {
        target[name] = v->as_int64();
      }
    }
    return std::nullopt;
  }

  HttpOutcome add_toxic(Proxy& p, const std::string& body) {
    auto o = parse_object(body);
    if (!o) return error(400, "bad request body: EOF");
    auto str = [&](const char* k) {
      auto* v = o->if_contains(k);
      return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
    };
    std::string stream = o->if_contains("stream") ? str("stream") : "downstream";
    if (stream != "upstream" && stream != "downstream") {
      return error(400, "stream was invalid, can be either upstream or downstream");
    }
    const std::string type = str("type");
    std::string name = str("name");
    if (name.empty()) name = type + "_" + stream;
    if (!attribute_names().count(type)) return error(400, "invalid toxic type");
    for (const auto& t : p.toxics) {
      if (t.at("name").as_string() == name) return error(409, "toxic already exists");
    }
    boost::json::object toxic;
    boost::json::object defaults;
    for (const auto& a : attribute_names().at(type))
      defaults[a] = 0;
    toxic["attributes"] = defaults;
    toxic["name"] = name;
    toxic["type"] = type;
    toxic["stream"] = stream;
    toxic["toxicity"] = 1;
    if (auto* tox = o->if_contains("toxicity"); tox != nullptr && tox->is_number()) toxic["toxicity"] = *tox;
    if (auto failure = merge_attributes(toxic, o->if_contains("attributes"))) return *failure;
    p.toxics.push_back(toxic);
    return ok(200, boost::json::serialize(toxic));
  }

  HttpOutcome update_toxic(boost::json::object& toxic, const std::string& body) {
    auto o = parse_object(body);
    if (!o) return error(400, "bad request body: EOF");
    boost::json::object copy = toxic;
    if (auto failure = merge_attributes(copy, o->if_contains("attributes"))) return *failure;
    if (auto* tox = o->if_contains("toxicity"); tox != nullptr && tox->is_number()) copy["toxicity"] = *tox;
    toxic = copy;
    return ok(200, boost::json::serialize(toxic));
  }

  std::map<std::string, Proxy> proxies_;
  std::vector<RecordedRequest> requests_;
};

}  // namespace faultproxy::cli::testing
