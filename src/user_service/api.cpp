#include "user_service/api.h"

#include <random>

#include "common/log.h"
#include "user_service/validation.h"

namespace user_service {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using common::http::Request;
using common::http::RequestInfo;
using common::http::Response;

namespace {

constexpr std::array<std::string_view, 6> kRouteNames = {"/users/{id}", "/health/live", "/health/ready",
                                                         "/metrics",    "/config",      "other"};
constexpr std::array<std::string_view, 4> kMethodNames = {"GET", "PUT", "DELETE", "other"};

Response json(const Request& req, bhttp::status status, std::string body) {
  return common::http::make_response(req, status, std::move(body), "application/json");
}

Response error(const Request& req, bhttp::status status, std::string_view message) {
  return json(req, status, error_json(message));
}

}  // namespace

Api::Api(Service& service, const Config& config, common::metrics::Registry& registry)
    : service_(service),
      config_(config),
      config_json_(config_to_json(config)),
      registry_(registry),
      retry_after_(std::to_string(config.resilience.retry_after_s)) {
  std::random_device rd;
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", static_cast<unsigned>(rd()));
  id_prefix_ = buf;
  id_prefix_ += '-';
  for (std::size_t r = 0; r < kRoutes; ++r) {
    for (std::size_t m = 0; m < kMethods; ++m) {
      durations_[r][m] = &registry_.histogram(
          "user_service_http_request_duration_seconds", "Time from a complete request to its answer.",
          common::metrics::default_latency_buckets(),
          {{"route", std::string(kRouteNames[r])}, {"method", std::string(kMethodNames[m])}});
    }
  }
}

common::http::ServerSettings Api::server_settings() const {
  common::http::ServerSettings s;
  s.request_timeout = config_.http.request_timeout;
  s.idle_timeout = config_.http.idle_timeout;
  s.max_connections = config_.http.max_connections;
  s.body_limit = kMaxBodyBytes;
  return s;
}

Response Api::error_response(bhttp::status status, std::string_view message, unsigned version) {
  Response res{status, version};
  res.set(bhttp::field::content_type, "application/json");
  res.body() = error_json(message);
  return res;
}

common::http::ErrorResponder Api::server_errors() {
  return [this](bhttp::status status, std::string_view message, unsigned version) {
    Response res = error_response(status, message, version);
    res.set("X-Request-Id", next_request_id());
    return res;
  };
}

std::string Api::next_request_id() {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id = id_prefix_;
  char buf[16];
  std::size_t n = 0;
  std::uint64_t v = ++id_counter_;
  do {
    buf[n++] = kHex[v & 0xF];
    v >>= 4;
  } while (v != 0);
  while (n > 0)
    id.push_back(buf[--n]);
  return id;
}

void Api::count(Route route, Method method, unsigned status, Source source, Clock::time_point started) {
  std::size_t si = kStatuses.size() - 1;
  for (std::size_t i = 0; i + 1 < kStatuses.size(); ++i) {
    if (kStatuses[i] == status) {
      si = i;
      break;
    }
  }
  auto& slot = requests_[route][method][si][static_cast<std::size_t>(source)];
  if (!slot) {
    slot = &registry_.counter("user_service_http_requests_total",
                              "HTTP requests by route, method, status and data source.",
                              {{"route", std::string(kRouteNames[route])},
                               {"method", std::string(kMethodNames[method])},
                               {"status", si + 1 == kStatuses.size() ? "other" : std::to_string(status)},
                               {"source", std::string(source_name(source))}});
  }
  slot->inc();
  durations_[route][method]->observe(std::chrono::duration<double>(Clock::now() - started).count());
}

asio::awaitable<Response> Api::handle(Request& req, const RequestInfo& info) {
  // The deadline runs from when the request arrived. For a write, from when the load balancer
  // received it, if it says (X-Request-Start): a write can wait in a stopped process's socket past
  // its deadline, the balancer answer 504 meanwhile and the client write again; executed on waking,
  // the old write would land after the newer one. (Reads keep their own arrival time: the balancer
  // may retry a read elsewhere, with the header of its first attempt.)
  Deadline deadline{info.received + config_.request_deadline};
  const bool write = req.method() == bhttp::verb::put || req.method() == bhttp::verb::delete_;
  if (const auto it = req.find("X-Request-Start"); write && it != req.end()) {
    if (const auto at = parse_request_start(it->value())) {
      const auto waited = std::chrono::system_clock::now() - *at;
      if (waited > Clock::duration::zero())
        deadline = deadline.at_most(Deadline(info.received - waited + config_.request_deadline));
    }
  }
  const auto started = Clock::now();

  std::string request_id;
  if (const auto it = req.find("X-Request-Id"); it != req.end() && acceptable_request_id(it->value())) {
    request_id.assign(it->value());
  } else {
    request_id = next_request_id();
  }

  Method method = m_other;
  switch (req.method()) {
    case bhttp::verb::get:
      method = m_get;
      break;
    case bhttp::verb::put:
      method = m_put;
      break;
    case bhttp::verb::delete_:
      method = m_delete;
      break;
    default:
      break;
  }

  std::string_view path = req.target();
  if (const auto q = path.find('?'); q != std::string_view::npos) path = path.substr(0, q);

  Route route = r_other;
  Source source = Source::none;
  Response res;
  static constexpr std::string_view kUsers = "/users/";
  if (path.starts_with(kUsers) && path.find('/', kUsers.size()) == std::string_view::npos) {
    route = r_users;
    res = co_await users(req, path.substr(kUsers.size()), method, deadline, source);
  } else {
    if (path == "/health/live") {
      route = r_live;
    } else if (path == "/health/ready") {
      route = r_ready;
    } else if (path == "/metrics") {
      route = r_metrics;
    } else if (path == "/config") {
      route = r_config;
    }
    if (route == r_other) {
      res = error(req, bhttp::status::not_found, "no such route");
    } else if (method != m_get) {
      res = error(req, bhttp::status::method_not_allowed, "method not allowed");
      res.set(bhttp::field::allow, "GET");
    } else if (route == r_live) {
      res = json(req, bhttp::status::ok, "{\"status\":\"live\"}");
    } else if (route == r_ready) {
      const bool ready = service_.ready();
      res = json(req, ready ? bhttp::status::ok : bhttp::status::service_unavailable, service_.health_json());
      if (!ready) res.set(bhttp::field::retry_after, retry_after_);
    } else if (route == r_metrics) {
      res = common::http::make_response(req, bhttp::status::ok, registry_.render(),
                                        "text/plain; version=0.0.4; charset=utf-8");
    } else {
      res = json(req, bhttp::status::ok, config_json_);
    }
  }

  res.set("X-Request-Id", request_id);
  const unsigned status = res.result_int();
  if (status == 503 && res.find(bhttp::field::retry_after) == res.end())
    res.set(bhttp::field::retry_after, retry_after_);
  count(route, method, status, source, started);
  if (common::log::enabled(common::log::Level::debug)) {
    common::log::debug(
        "request",
        {{"request_id", request_id},
         {"method", std::string_view(req.method_string())},
         {"target", std::string_view(req.target())},
         {"status", status},
         {"source", source_name(source)},
         {"duration_ms", std::chrono::duration<double, std::milli>(Clock::now() - started).count()}});
  }
  co_return res;
}

asio::awaitable<Response> Api::users(Request& req, std::string_view segment, Method method, Deadline deadline,
                                     Source& source) {
  if (method == m_other) {
    Response res = error(req, bhttp::status::method_not_allowed, "method not allowed");
    res.set(bhttp::field::allow, "GET, PUT, DELETE");
    co_return res;
  }
  std::string id;
  if (auto e = decode_user_id(segment, id); !e.empty()) co_return error(req, bhttp::status::bad_request, e);
  if (deadline.expired()) {
    co_return error(req, bhttp::status::service_unavailable,
                    "the request waited past its deadline before it reached the service: not executed");
  }

  if (method == m_get) {
    ReadResult r = co_await service_.get_user(id, deadline);
    source = r.source;
    Response res;
    switch (r.status) {
      case ReadResult::found:
        res = json(req, bhttp::status::ok, user_json(id, r.name));
        break;
      case ReadResult::not_found:
        res = error(req, bhttp::status::not_found, "no such user");
        break;
      case ReadResult::unavailable:
        res = error(req, bhttp::status::service_unavailable, "cannot read the user now: " + r.reason);
        break;
    }
    if (r.source != Source::none) res.set("X-Data-Source", source_name(r.source));
    if (r.stale) res.set("X-Cache-Stale", "true");
    co_return res;
  }

  if (method == m_put) {
    std::string name;
    if (auto e = parse_put_body(req.body(), name); !e.empty())
      co_return error(req, bhttp::status::bad_request, e);
    WriteResult w = co_await service_.put_user(id, name, deadline);
    if (w.status == WriteResult::unavailable)
      co_return error(req, bhttp::status::service_unavailable, "cannot store the user now: " + w.reason);
    source = Source::origin;
    co_return json(req, w.status == WriteResult::created ? bhttp::status::created : bhttp::status::ok,
                   user_json(id, name));
  }

  WriteResult w = co_await service_.delete_user(id, deadline);
  switch (w.status) {
    case WriteResult::deleted:
      source = Source::origin;
      co_return common::http::make_response(req, bhttp::status::no_content, {}, {});
    case WriteResult::not_found:
      source = Source::origin;
      co_return error(req, bhttp::status::not_found, "no such user");
    default:
      co_return error(req, bhttp::status::service_unavailable, "cannot delete the user now: " + w.reason);
  }
}

}  // namespace user_service
