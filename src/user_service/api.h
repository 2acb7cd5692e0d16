// user-service's HTTP API on top of Service: routing, validation, status codes and headers, request
// ids, per-route metrics and the access log. Served by common::http::Server (see main.cpp); the API
// contract is docs/openapi.yaml.
//
//   public listener:  GET|HEAD|PUT|DELETE /users/{id}   GET|HEAD /users?limit=N&after=ID
//                     GET /health/live   GET /health/ready              (for load balancers)
//   admin listener:   GET /metrics   GET /config   GET /health/live   GET /health/ready
//   (HEAD on every GET route; any other path is 404 on either listener)
//
// Every error body is {"error": "...", "request_id": "..."} (and, for a write answered 503,
// "outcome": "not_applied" or "unknown"); it says what the client needs, never a dependency's own
// error text or address (those go to the log with the request id). Every response carries
// X-Request-Id (the client's, if it sent an acceptable one); 503s carry Retry-After (when the service
// expects to call the dependency again, at least resilience.retry_after_s); user answers carry
// ETag "v<version>" and X-Data-Source (cache|origin|origin-replica) and, for a known-stale entry
// served because MariaDB failed too, X-Cache-Stale: true. Conditional requests: If-None-Match on
// GET/HEAD (304), If-Match on PUT and DELETE and If-None-Match: * on PUT (412), checked by MariaDB's
// write statement itself. X-Request-Timeout-Ms on the /users routes is the client's remaining budget:
// the deadline is the smaller of it and the configured one; 0 or already spent: 504 at once.
// A 503 whose message says "shed" was refused at once by admission control (MariaDB not asked).
//
// Usage:
//   Api api(service, config, registry);
//   common::http::Server server(executor, api.server_settings(),
//       [&api](auto& req, const auto& info) { return api.handle(req, info); });
//   common::http::Server admin(executor, api.server_settings(),
//       [&api](auto& req, const auto& info) { return api.handle(req, info, Api::Listener::admin); });
#pragma once

#include <array>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <string>

#include "common/http_server.h"
#include "common/metrics.h"
#include "user_service/config.h"
#include "user_service/service.h"
#include "user_service/validation.h"

namespace user_service {

class Api {
 public:
  Api(Service& service, const Config& config, common::metrics::Registry& registry);

  enum class Listener { public_port, admin };
  boost::asio::awaitable<common::http::Response> handle(common::http::Request& req,
                                                        const common::http::RequestInfo& info,
                                                        Listener listener = Listener::public_port);

  // SIGHUP: the effective configuration from now on (deadlines, Retry-After, GET /config).
  void reload(const Config& config);

  // Server limits derived from the configuration (body limit: 64 KiB, larger is 413).
  common::http::ServerSettings server_settings() const;

  // The error body format, also for errors the server itself detects (413, 431, malformed).
  static common::http::Response error_response(boost::beast::http::status status, std::string_view message,
                                               unsigned version);
  // The same, with a generated X-Request-Id (the server answers those before the handler runs).
  common::http::ErrorResponder server_errors();

 private:
  enum Route { r_users = 0, r_users_list, r_live, r_ready, r_metrics, r_config, r_other, kRoutes };
  enum Method { m_get = 0, m_head, m_put, m_delete, m_other, kMethods };
  static constexpr std::array<unsigned, 14> kStatuses = {200, 201, 204, 304, 400, 404, 405,
                                                         412, 413, 415, 500, 503, 504, 0};

  // One request being answered: what every answer to it needs.
  struct Exchange {
    Exchange(common::http::Request& r, Clock::time_point at) : req(r), started(at), deadline(at) {}

    common::http::Request& req;
    Clock::time_point started;
    Route route = r_other;
    Method method = m_other;
    Deadline deadline;  // set by start()
    Source source = Source::none;
    std::string request_id;
    std::string id;          // r_users: the user id, decoded
    std::string_view query;  // r_users_list: the query string
    // A read with If-None-Match: the tags it names (a match is answered 304).
    bool conditional = false;
    EntityTags none_match;
  };
  // What handle() does once start() has looked at the request: answer with what start() built, or
  // ask the service. Everything around the service's call is in plain functions, so that handle()'s
  // coroutine frame holds only what lives across its one await: a frame over 1,020 bytes bypasses
  // Asio's recycling cache and costs a malloc and a free on every request.
  enum class Step { answered, read, write, list };
  Step start(Exchange& x, const common::http::RequestInfo& info, Listener listener,
             common::http::Response& res);
  // A user read's If-None-Match (400 if malformed), then its deadline (503 if already passed).
  Step start_read(Exchange& x, common::http::Response& res);
  // The answer to a GET or HEAD of a user, from what the service found, built into `res` (as
  // start() left it: empty).
  void read_answer(Exchange& x, ReadResult& r, common::http::Response& res);
  boost::asio::awaitable<common::http::Response> write_user(Exchange& x);
  boost::asio::awaitable<common::http::Response> list_users(Exchange& x);
  // What every answer gets (X-Request-Id, Retry-After on a 503), the metrics and the access log.
  void finish(const Exchange& x, common::http::Response& res);
  // 503 for a request the dependencies could not serve: what the client may know, Retry-After, and
  // the details in the log. `write`: the body says whether it may have been applied.
  common::http::Response unavailable(const Exchange& x, std::string_view what, const Unavailable& why,
                                     bool write);
  std::string next_request_id();
  void count(Route route, Method method, unsigned status, Source source, Clock::time_point started);

  Service& service_;
  Config config_;
  std::string config_json_;
  common::metrics::Registry& registry_;
  std::string id_prefix_;
  std::uint64_t id_counter_ = 0;
  std::array<
      std::array<std::array<std::array<common::metrics::Counter*, kSources>, kStatuses.size()>, kMethods>,
      kRoutes>
      requests_{};
  std::array<std::array<common::metrics::Histogram*, kMethods>, kRoutes> durations_{};
};

}  // namespace user_service
