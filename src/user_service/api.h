// user-service's HTTP API on top of Service: routing, validation, status codes and headers, request
// ids, per-route metrics and the access log. Served by common::http::Server (see main.cpp); the API
// contract is docs/openapi.yaml.
//
//   GET|PUT|DELETE /users/{id}   GET /health/live   GET /health/ready   GET /metrics   GET /config
//
// Every error body is {"error": "..."}; every response carries X-Request-Id (the client's, if it sent
// an acceptable one); 503s carry Retry-After; user reads carry X-Data-Source (cache|origin) and, for a
// known-stale entry served because MariaDB failed too, X-Cache-Stale: true.
//
// Usage:
//   Api api(service, config, registry);
//   common::http::Server server(executor, api.server_settings(),
//       [&api](auto& req, const auto& info) { return api.handle(req, info); });
#pragma once

#include <array>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <string>

#include "common/http_server.h"
#include "common/metrics.h"
#include "user_service/config.h"
#include "user_service/service.h"

namespace user_service {

class Api {
 public:
  Api(Service& service, const Config& config, common::metrics::Registry& registry);

  boost::asio::awaitable<common::http::Response> handle(common::http::Request& req,
                                                        const common::http::RequestInfo& info);

  // Server limits derived from the configuration (body limit: 64 KiB, larger is 413).
  common::http::ServerSettings server_settings() const;

  // The error body format, also for errors the server itself detects (413, 431, malformed).
  static common::http::Response error_response(boost::beast::http::status status, std::string_view message,
                                               unsigned version);
  // The same, with a generated X-Request-Id (the server answers those before the handler runs).
  common::http::ErrorResponder server_errors();

 private:
  enum Route { r_users = 0, r_live, r_ready, r_metrics, r_config, r_other, kRoutes };
  enum Method { m_get = 0, m_put, m_delete, m_other, kMethods };
  static constexpr std::array<unsigned, 10> kStatuses = {200, 201, 204, 400, 404, 405, 413, 500, 503, 0};

  boost::asio::awaitable<common::http::Response> users(common::http::Request& req, std::string_view segment,
                                                       Method method, Deadline deadline, Source& source);
  std::string next_request_id();
  void count(Route route, Method method, unsigned status, Source source, Clock::time_point started);

  Service& service_;
  Config config_;
  std::string config_json_;
  common::metrics::Registry& registry_;
  std::string id_prefix_;
  std::uint64_t id_counter_ = 0;
  std::string retry_after_;
  std::array<
      std::array<std::array<std::array<common::metrics::Counter*, kSources>, kStatuses.size()>, kMethods>,
      kRoutes>
      requests_{};
  std::array<std::array<common::metrics::Histogram*, kMethods>, kRoutes> durations_{};
};

}  // namespace user_service
