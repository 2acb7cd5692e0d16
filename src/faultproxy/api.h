// Toxiproxy 2.12's HTTP API over ProxyCollection, answered byte for byte as Toxiproxy does: routes
// and methods (gorilla/mux's 404 and 405), status codes, Go-style error bodies, header sets,
// X-Toxiproxy-Request-Id, JSON key order, the browser (CSRF) guard, /version and /metrics. Ours
// besides: the web console (/ui) and the toxic types it builds its forms from (/toxic-types),
// console.h.
//
// handle() is synchronous and runs on the control thread; it is driven in-process by the unit
// tests and by the HTTP server (common::http::Server) in main.
//
// Usage:
//   Api api(proxies, registry, {.proxy_metrics = true, .api_host = "localhost"});
//   common::http::Server server(ex, settings, [&](Request& req, const RequestInfo& info)
//       -> asio::awaitable<Response> { co_return api.handle(req, info); }, Api::server_error);
#pragma once

#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/http_server.h"
#include "common/metrics.h"
#include "common/version.h"
#include "faultproxy/proxy.h"

namespace faultproxy {

// The Toxiproxy version whose API we speak (GET /version).
inline constexpr std::string_view kToxiproxyVersion = "2.12.0";
// faultproxy's own version (-version).
inline constexpr std::string_view kFaultproxyVersion = common::kVersion;

class Api {
 public:
  struct Settings {
    bool proxy_metrics = false;
    bool runtime_metrics = false;
    // The -host flag: a name browsers may use for the console besides IP literals and localhost.
    std::string api_host;
  };
  Api(ProxyCollection& proxies, common::metrics::Registry& registry, Settings settings);

  common::http::Response handle(const common::http::Request& req, const common::http::RequestInfo& info);

  // The HTTP server's own errors (malformed request, 413, 431) in Toxiproxy's error format.
  static common::http::Response server_error(common::http::bhttp::status status, std::string_view message,
                                             unsigned version);

 private:
  ProxyCollection& proxies_;
  common::metrics::Registry& registry_;
  Settings settings_;
};

// JSON renderings (exposed for tests).
std::string proxy_json(const Proxy& p);
std::string toxic_json(const ToxicDef& t);

// Parses a populate body (POST /populate, -config file): the array of proxies with our optional
// "toxics" per proxy. Errors carry Toxiproxy's texts.
std::variant<std::vector<ProxyCollection::PopulateEntry>, ApiError> parse_populate(std::string_view body);

// A 20-character request id in the alphabet and layout of the xid library Toxiproxy uses.
std::string new_request_id();

}  // namespace faultproxy
