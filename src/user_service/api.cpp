#include "user_service/api.h"

#include <boost/asio/deferred.hpp>
#include <cstring>
#include <exception>
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

constexpr std::array<std::string_view, 7> kRouteNames = {
    "/users/{id}", "/users", "/health/live", "/health/ready", "/metrics", "/config", "other"};
constexpr std::array<std::string_view, 5> kMethodNames = {"GET", "HEAD", "PUT", "DELETE", "other"};

constexpr std::string_view kJson = "application/json";

Response json(const Request& req, bhttp::status status, std::string body) {
  return common::http::make_response(req, status, std::move(body), kJson);
}

Response error(const Request& req, std::string_view request_id, bhttp::status status,
               std::string_view message, std::string_view outcome = {}) {
  return json(req, status, error_json(message, request_id, outcome));
}

// An error the server detected before the request was complete (no Request to answer from).
Response server_error(bhttp::status status, std::string_view message, unsigned version,
                      std::string_view request_id) {
  Response res{status, version};
  res.set(bhttp::field::content_type, kJson);
  res.body() = error_json(message, request_id);
  return res;
}

// Joins every field of a header that may be repeated (If-Match, If-None-Match) into one list.
std::optional<std::string> joined_header(const Request& req, bhttp::field field) {
  std::optional<std::string> out;
  for (auto [it, end] = req.equal_range(field); it != end; ++it) {
    if (out) *out += ',';
    out = out.value_or(std::string()) + std::string(it->value());
  }
  return out;
}

// Retry-After in whole seconds: at least `floor`, and the time until the dependency is called
// again rounded up.
std::string retry_after_seconds(std::uint32_t floor, Clock::duration retry_in) {
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(retry_in).count();
  const auto s = static_cast<std::uint64_t>((ms + 999) / 1000);
  return std::to_string(std::max<std::uint64_t>(floor, s));
}

}  // namespace

Api::Api(Service& service, const Config& config, common::metrics::Registry& registry)
    : service_(service), config_(config), config_json_(config_to_json(config)), registry_(registry) {
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
  return server_error(status, message, version, {});
}

common::http::ErrorResponder Api::server_errors() {
  return [this](bhttp::status status, std::string_view message, unsigned version) {
    const std::string id = next_request_id();
    Response res = server_error(status, message, version, id);
    res.add_line("X-Request-Id", id);
    return res;
  };
}

std::string Api::next_request_id() {
  static constexpr char kHex[] = "0123456789abcdef";
  // The counter's hex digits, from the end of a buffer; the prefix (9 bytes) before them.
  char buf[48];
  char* p = buf + sizeof buf;
  std::uint64_t v = ++id_counter_;
  do {
    *--p = kHex[v & 0xF];
    v >>= 4;
  } while (v != 0);
  p -= id_prefix_.size();
  std::memcpy(p, id_prefix_.data(), id_prefix_.size());
  return std::string(p, buf + sizeof buf);
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

void Api::reload(const Config& config) {
  config_ = config;
  config_json_ = config_to_json(config);
}

asio::awaitable<Response> Api::handle(Request& req, const RequestInfo& info, Listener listener) {
  Exchange x{req, info.received};
  Response res;
  const Step step = start(x, info, listener, res);
  if (step == Step::read) {
    // A cached GET is the hot path: the service's read is awaited here, with no coroutine of the
    // API's or the service's own between (every level costs a frame and an await).
    std::exception_ptr thrown;
    ReadResult r = co_await service_.read_user(x.id, x.deadline, thrown, asio::deferred);
    if (thrown) std::rethrow_exception(thrown);
    read_answer(x, r, res);
  } else if (step != Step::answered) {
    // One await for both, as the result of each co_await takes room in this frame; not on a
    // conditional expression, which GCC 12 destroys twice.
    auto call = step == Step::write ? write_user(x) : list_users(x);
    res = co_await std::move(call);
  }
  finish(x, res);
  co_return res;
}

Api::Step Api::start(Exchange& x, const RequestInfo& info, Listener listener, Response& res) {
  const Request& req = x.req;
  std::string_view path = req.target();
  if (const auto q = path.find('?'); q != std::string_view::npos) {
    x.query = path.substr(q + 1);
    path = path.substr(0, q);
  }
  static constexpr std::string_view kUsers = "/users/";
  Route route = r_other;
  if (path.starts_with(kUsers) && path.find('/', kUsers.size()) == std::string_view::npos) {
    route = r_users;
  } else if (path == "/users") {
    route = r_users_list;
  } else if (path == "/health/live") {
    route = r_live;
  } else if (path == "/health/ready") {
    route = r_ready;
  } else if (path == "/metrics") {
    route = r_metrics;
  } else if (path == "/config") {
    route = r_config;
  }
  // Operators' routes only on the admin listener, users' only on the public one.
  const bool admin_route = route == r_metrics || route == r_config;
  const bool both = route == r_live || route == r_ready;
  if (!both && admin_route != (listener == Listener::admin)) route = r_other;
  x.route = route;

  x.deadline =
      Deadline{info.received + (route == r_users_list ? config_.list_deadline : config_.request_deadline)};
  switch (req.method()) {
    case bhttp::verb::get:
      x.method = m_get;
      break;
    case bhttp::verb::head:
      x.method = m_head;
      break;
    case bhttp::verb::put:
      x.method = m_put;
      break;
    case bhttp::verb::delete_:
      x.method = m_delete;
      break;
    default:
      break;
  }
  // The deadline runs from when the request arrived. For a write, from when the load balancer
  // received it, if it says (X-Request-Start): a write can wait in a stopped process's socket past
  // its deadline, the balancer answer 504 meanwhile and the client write again; executed on waking,
  // the old write would land after the newer one. (Reads keep their own arrival time: the balancer
  // may retry a read elsewhere, with the header of its first attempt.)
  const bool write = x.method == m_put || x.method == m_delete;
  if (const auto it = write ? req.find("X-Request-Start") : req.end(); it != req.end()) {
    if (const auto at = parse_request_start(it->value())) {
      const auto waited = std::chrono::system_clock::now() - *at;
      if (waited > Clock::duration::zero())
        x.deadline = x.deadline.at_most(Deadline(info.received - waited + config_.request_deadline));
    }
  }
  if (const auto it = req.find("X-Request-Id"); it != req.end() && acceptable_request_id(it->value())) {
    x.request_id.assign(it->value());
  } else {
    x.request_id = next_request_id();
  }

  // The client's remaining budget (X-Request-Timeout-Ms) shortens the deadline; one already spent
  // is answered 504 at once, not executed.
  std::string budget_error;
  bool budget_spent = false;
  const bool read = x.method == m_get || x.method == m_head;
  const bool user_request = route == r_users ? x.method != m_other : route == r_users_list && read;
  if (user_request) {
    // One lookup (a cached GET pays for it): the field, and whether another follows it.
    const auto [it, end] = req.equal_range("X-Request-Timeout-Ms");
    if (it != end && std::next(it) != end) {
      budget_error = "X-Request-Timeout-Ms must be given once";
    } else if (it != end) {
      std::chrono::milliseconds budget{};
      budget_error = parse_request_timeout(it->value(), budget);
      if (budget_error.empty()) {
        x.deadline = x.deadline.at_most(Deadline(info.received + budget));
        budget_spent = x.deadline.expired();
      }
    }
  }

  if (!budget_error.empty()) {
    res = error(req, x.request_id, bhttp::status::bad_request, budget_error);
  } else if (budget_spent) {
    res = error(req, x.request_id, bhttp::status::gateway_timeout,
                "the client's budget (X-Request-Timeout-Ms) was spent before the request could be served: "
                "not executed",
                write ? "not_applied" : "");
  } else if (route == r_users) {
    if (x.method == m_other) {
      res = error(req, x.request_id, bhttp::status::method_not_allowed, "method not allowed");
      res.set(bhttp::field::allow, "GET, HEAD, PUT, DELETE");
    } else if (auto e = decode_user_id(path.substr(kUsers.size()), x.id); !e.empty()) {
      res = error(req, x.request_id, bhttp::status::bad_request, e);
    } else {
      return read ? start_read(x, res) : Step::write;
    }
  } else if (route == r_other) {
    res = error(req, x.request_id, bhttp::status::not_found, "no such route");
  } else if (!read) {
    res = error(req, x.request_id, bhttp::status::method_not_allowed, "method not allowed");
    res.set(bhttp::field::allow, "GET, HEAD");
  } else if (route == r_users_list) {
    return Step::list;
  } else if (route == r_live) {
    res = json(req, bhttp::status::ok, "{\"status\":\"live\"}");
  } else if (route == r_ready) {
    const bool ready = service_.ready();
    res = json(req, ready ? bhttp::status::ok : bhttp::status::service_unavailable, service_.health_json());
  } else if (route == r_metrics) {
    res = common::http::make_response(req, bhttp::status::ok, registry_.render(),
                                      "text/plain; version=0.0.4; charset=utf-8");
  } else {
    res = json(req, bhttp::status::ok, config_json_);
  }
  return Step::answered;
}

Api::Step Api::start_read(Exchange& x, Response& res) {
  const auto inm = joined_header(x.req, bhttp::field::if_none_match);
  x.conditional = inm.has_value();
  if (inm) {
    if (auto e = parse_entity_tags(*inm, TagComparison::weak, x.none_match); !e.empty()) {
      res = error(x.req, x.request_id, bhttp::status::bad_request, e);
      return Step::answered;
    }
  }
  if (x.deadline.expired()) {
    res = error(x.req, x.request_id, bhttp::status::service_unavailable,
                "the request waited past its deadline before it reached the service: not executed");
    return Step::answered;
  }
  return Step::read;
}

void Api::finish(const Exchange& x, Response& res) {
  res.add_line("X-Request-Id", x.request_id);  // a line: common::http::ResponseFields
  const unsigned status = res.result_int();
  if (status == 503 && res.find(bhttp::field::retry_after) == res.end())
    res.set(bhttp::field::retry_after, std::to_string(config_.resilience.retry_after_s));
  count(x.route, x.method, status, x.source, x.started);
  if (common::log::enabled(common::log::Level::debug)) {
    common::log::debug(
        "request",
        {{"request_id", x.request_id},
         {"method", std::string_view(x.req.method_string())},
         {"target", std::string_view(x.req.target())},
         {"status", status},
         {"source", source_name(x.source)},
         {"duration_ms", std::chrono::duration<double, std::milli>(Clock::now() - x.started).count()}});
  }
}

Response Api::unavailable(const Exchange& x, std::string_view what, const Unavailable& why, bool write) {
  std::string message(what);
  switch (why.cause) {
    case Unavailable::not_called:
      message += ": MariaDB unavailable (recent calls failed; it is not called until it recovers)";
      break;
    case Unavailable::timeout:
      message += ": MariaDB did not answer within the deadline";
      break;
    case Unavailable::failed:
      message += ": MariaDB could not be reached or failed";
      break;
    case Unavailable::shed:
      message += ": shed, MariaDB was not asked (the service has more MariaDB work than it can do in time)";
      break;
  }
  std::string_view outcome;
  if (write && why.effect == Effect::unknown) {
    outcome = "unknown";
    message += x.method == m_put
                   ? "; the write may or may not have been applied (MariaDB received it and its answer was "
                     "lost): retrying the same PUT is safe, it is idempotent"
                   : "; the delete may or may not have been applied (MariaDB received it and its answer was "
                     "lost): retrying it is safe (404 then means it was)";
  } else if (write) {
    outcome = "not_applied";
    message += "; nothing was written";
  }
  // The dependency's own words (which may name servers) are for the operator, with the request id.
  // Refusals at once are counted and (breaker openings) logged already: one line each would flood.
  const auto level = why.cause == Unavailable::not_called || why.cause == Unavailable::shed
                         ? common::log::Level::debug
                         : common::log::Level::warn;
  if (common::log::enabled(level)) {
    common::log::write(level, "request not served",
                       {{"request_id", x.request_id},
                        {"method", std::string_view(x.req.method_string())},
                        {"target", std::string_view(x.req.target())},
                        {"outcome", outcome},
                        {"detail", why.detail}});
  }
  Response res = error(x.req, x.request_id, bhttp::status::service_unavailable, message, outcome);
  res.set(bhttp::field::retry_after, retry_after_seconds(config_.resilience.retry_after_s, why.retry_in));
  return res;
}

void Api::read_answer(Exchange& x, ReadResult& r, Response& res) {
  x.source = r.source;
  switch (r.status) {
    case ReadResult::found:
      // If-None-Match names the version the client has: 304, no body.
      if (x.conditional && x.none_match.matches(r.version)) {
        common::http::fill_response(res, x.req, bhttp::status::not_modified, {}, {});
      } else {
        common::http::fill_response(res, x.req, bhttp::status::ok, user_json(x.id, r.name), kJson);
      }
      res.add_line("ETag", etag(r.version).view());
      break;
    case ReadResult::not_found:
      res = error(x.req, x.request_id, bhttp::status::not_found, "no such user");
      break;
    case ReadResult::unavailable:
      res = unavailable(x, "cannot read the user now", r.why, false);
      break;
  }
  if (r.source != Source::none) res.add_line("X-Data-Source", source_name(r.source));
  if (r.stale) res.add_line("X-Cache-Stale", "true");
}

asio::awaitable<Response> Api::write_user(Exchange& x) {
  const std::string& id = x.id;
  const bool put = x.method == m_put;
  std::string name;
  if (put) {
    if (auto e = check_json_content_type(x.req[bhttp::field::content_type]); !e.empty())
      co_return error(x.req, x.request_id, bhttp::status::unsupported_media_type, e);
    if (auto e = parse_put_body(x.req.body(), id, name); !e.empty())
      co_return error(x.req, x.request_id, bhttp::status::bad_request, e);
  }
  // The preconditions: If-Match (the version the client read, or * for "exists"), and on PUT
  // If-None-Match: * (create only). MariaDB's write statement checks them.
  Precondition when;
  const auto im = joined_header(x.req, bhttp::field::if_match);
  const auto inm = joined_header(x.req, bhttp::field::if_none_match);
  if (im) {
    EntityTags tags;
    if (auto e = parse_entity_tags(*im, TagComparison::strong, tags); !e.empty())
      co_return error(x.req, x.request_id, bhttp::status::bad_request, e);
    when = if_match_precondition(tags);
  }
  if (inm) {
    EntityTags tags;
    if (auto e = parse_entity_tags(*inm, TagComparison::weak, tags); !e.empty())
      co_return error(x.req, x.request_id, bhttp::status::bad_request, e);
    if (!put || !tags.any) {
      co_return error(
          x.req, x.request_id, bhttp::status::bad_request,
          "If-None-Match on a write is supported only as `If-None-Match: *` on PUT (create only)");
    }
    // With If-Match too, the user would have to exist and not exist.
    if (im) {
      co_return error(x.req, x.request_id, bhttp::status::precondition_failed,
                      "If-Match and If-None-Match: * cannot both hold: nothing was written", "not_applied");
    }
    when = Precondition{Precondition::absent, {}};
  }
  if (x.deadline.expired()) {
    co_return error(x.req, x.request_id, bhttp::status::service_unavailable,
                    "the request waited past its deadline before it reached the service: not executed",
                    "not_applied");
  }

  // Not a conditional expression with co_await in both arms: GCC 12 destroys its result twice.
  WriteResult w;
  if (put) {
    w = co_await service_.put_user(id, name, x.deadline, when);
  } else {
    w = co_await service_.delete_user(id, x.deadline, when);
  }
  if (w.status != WriteResult::unavailable) x.source = Source::origin;
  switch (w.status) {
    case WriteResult::created:
    case WriteResult::updated: {
      Response res =
          json(x.req, w.status == WriteResult::created ? bhttp::status::created : bhttp::status::ok,
               user_json(id, name));
      res.add_line("ETag", etag(w.version).view());
      co_return res;
    }
    case WriteResult::deleted:
      co_return common::http::make_response(x.req, bhttp::status::no_content, {}, {});
    case WriteResult::not_found:
      co_return error(x.req, x.request_id, bhttp::status::not_found, "no such user");
    case WriteResult::precondition_failed: {
      std::string message = when.kind == Precondition::absent ? "the user exists (If-None-Match: *)"
                            : w.exists ? "the user's current version is v" + std::to_string(w.version) +
                                             ", not one If-Match names"
                                       : "no such user (If-Match)";
      message += ": nothing was written";
      Response res = error(x.req, x.request_id, bhttp::status::precondition_failed, message, "not_applied");
      if (w.exists) res.add_line("ETag", etag(w.version).view());
      co_return res;
    }
    case WriteResult::unavailable:
      break;
  }
  co_return unavailable(x, put ? "cannot store the user now" : "cannot delete the user now", w.why, true);
}

asio::awaitable<Response> Api::list_users(Exchange& x) {
  PageQuery page;
  if (auto e = parse_page_query(x.query, page); !e.empty())
    co_return error(x.req, x.request_id, bhttp::status::bad_request, e);
  if (x.deadline.expired()) {
    co_return error(x.req, x.request_id, bhttp::status::service_unavailable,
                    "the request waited past its deadline before it reached the service: not executed");
  }
  ListResult r = co_await service_.list_users(page.after, page.limit, x.deadline);
  x.source = r.source;
  if (r.status == ListResult::unavailable) co_return unavailable(x, "cannot list users now", r.why, false);
  Response res = json(x.req, bhttp::status::ok, page_json(r.users, r.more));
  res.add_line("X-Data-Source", source_name(r.source));
  co_return res;
}

}  // namespace user_service
