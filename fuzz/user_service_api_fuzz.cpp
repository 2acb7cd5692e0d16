// Fuzz target: user-service's whole HTTP API (user_service::Api::handle over the real Service logic)
// in-process, with the in-memory fakes of src/user_service/fakes.h as MariaDB and Redis.
//
// An input is a script of requests (fuzz/support/fuzz_support.h); directive lines switch the fakes'
// behaviour between requests: @store=ok|fail|reject|acklost, @master=..., @replica=...,
// @replicate=0|1. Checked, besides memory safety and UB:
// - every answer is one of the documented statuses (never 500), carries X-Request-Id (the client's
//   when acceptable), Retry-After on 503, and a JSON body ({"error": "..."} for errors);
// - while no directive has injected a failure, the API behaves as a map from id to name: PUT
//   answers 201 then 200 (with an ETag), GET returns the last name stored or 404, DELETE 204 then
//   404, invalid ids, bodies and methods get 400/405, a PUT without JSON Content-Type 415, and
//   conditional requests (If-Match, If-None-Match) 304/412 or what the map says;
// - every error body carries the answer's request id.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <map>
#include <memory>
#include <set>

#include "common/log.h"
#include "support/fuzz_support.h"
#include "user_service/api.h"
#include "user_service/fakes.h"
#include "user_service/validation.h"

namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using namespace std::chrono_literals;
using fuzz_support::check;
using namespace user_service;

// One service with its fakes, fresh for every input.
struct World {
  explicit World(asio::io_context& io, const Config& config)
      : store(io.get_executor()),
        cache(io.get_executor()),
        service(io.get_executor(), config, store, cache, registry),
        api(service, config, registry) {}
  common::metrics::Registry registry;
  fakes::FakeStore store;
  fakes::FakeCache cache;
  Service service;
  Api api;
};

// Shared by every input; the guard keeps it from stopping when it runs out of work between inputs.
asio::io_context& io() {
  static asio::io_context ctx;
  static auto guard = asio::make_work_guard(ctx);
  return ctx;
}

Config config() {
  Config c;
  c.request_deadline = 2s;  // nothing here waits: fakes answer at once
  c.redis.call_deadline = 1s;
  c.mysql.call_deadline = 1s;
  c.resilience.probe_interval = 50ms;
  c.mysql.password = "secret";
  return c;
}

template <typename T>
T run(asio::awaitable<T> a) {
  auto result = std::make_shared<std::optional<T>>();
  asio::co_spawn(io(), std::move(a), [result](std::exception_ptr e, T v) {
    if (e) std::rethrow_exception(e);
    *result = std::move(v);
  });
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  while (!*result) {
    check(std::chrono::steady_clock::now() < give_up, "a request did not complete within 10 s");
    io().run_one_for(10ms);
  }
  return std::move(**result);
}

fakes::Behaviour::Mode mode_of(std::string_view v, bool& ack_lost) {
  ack_lost = v == "acklost";
  if (v == "fail") return fakes::Behaviour::fail;
  if (v == "reject") return fakes::Behaviour::reject;
  return fakes::Behaviour::ok;
}

// Applies directives; returns true if any of them makes a dependency misbehave.
bool apply_directives(World& w, const std::vector<std::string>& directives) {
  bool faulty = false;
  for (const auto& d : directives) {
    const auto eq = d.find('=');
    if (eq == std::string::npos) continue;
    const std::string_view key(d.data(), eq);
    const std::string_view value(d.data() + eq + 1, d.size() - eq - 1);
    fakes::Behaviour* b = nullptr;
    if (key == "store") b = &w.store.behaviour;
    if (key == "master") b = &w.cache.master.behaviour;
    if (key == "replica") b = &w.cache.replica.behaviour;
    if (b) {
      b->mode = mode_of(value, b->ack_lost);
      faulty |= b->mode != fakes::Behaviour::ok || b->ack_lost;
    } else if (key == "replicate") {
      w.cache.replicate = value != "0";
      faulty |= !w.cache.replicate;
    }
  }
  return faulty;
}

const std::set<unsigned> kStatuses = {200, 201, 204, 304, 400, 404, 405, 412, 415, 503};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  common::log::set_level(common::log::Level::off);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Config cfg = config();
  auto world = std::make_shared<World>(io(), cfg);
  world->service.start();
  // The first probes bring every dependency up (the fakes answer at once).
  for (int i = 0; i < 1000 && world->service.overall_state() != DepState::up; ++i)
    io().poll_one();
  check(world->service.overall_state() == DepState::up, "fake dependencies did not come up");

  bool faulty = false;
  std::map<std::string, std::string> model;  // id -> name, while no fault was injected
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (auto& step : fuzz_support::parse_script(text, 32)) {
    faulty |= apply_directives(*world, step.directives);
    auto& req = step.request;
    const std::string client_id(req["X-Request-Id"]);
    const common::http::RequestInfo info{{}, std::chrono::steady_clock::now()};
    const common::http::Response res = run(world->api.handle(req, info));
    const unsigned status = res.result_int();
    const std::string detail = std::string(req.method_string()) + " " + std::string(req.target()) + " -> " +
                               std::to_string(status) + " " + res.body();

    check(kStatuses.contains(status), "unexpected status", detail);
    check(res.line_value("X-Request-Id").has_value(), "no X-Request-Id", detail);
    if (acceptable_request_id(client_id))
      check(res.line_value("X-Request-Id") == client_id, "X-Request-Id not echoed", detail);
    if (status == 503)
      check(res.find(bhttp::field::retry_after) != res.end(), "503 without Retry-After", detail);
    boost::json::value body;
    if (res[bhttp::field::content_type] == "application/json") {
      boost::system::error_code ec;
      body = boost::json::parse(res.body(), ec);
      check(!ec && body.is_object(), "JSON body does not parse", detail);
      // GET /health/ready answers 503 with its readiness document (docs/openapi.yaml), not an error.
      const bool not_ready = status == 503 && std::string_view(req.target()).starts_with("/health/ready") &&
                             body.as_object().if_contains("ready") && body.at("ready") == false;
      if (status >= 400 && !not_ready)
        check(body.as_object().if_contains("error") && body.at("error").is_string(),
              "error body without an error string", detail);
    } else {
      check(status == 204 || status == 200 || status == 304, "non-JSON body on an error", detail);
    }
    if (body.is_object() && body.as_object().if_contains("error"))
      check(body.is_object() && body.as_object().if_contains("request_id") &&
                body.at("request_id").as_string() == res.line_value("X-Request-Id").value_or(""),
            "error body without the answer's request id", detail);

    // The map model, for /users/{id} while every dependency behaves.
    std::string_view path = req.target();
    if (const auto q = path.find('?'); q != std::string_view::npos) path = path.substr(0, q);
    if (faulty || !path.starts_with("/users/") || path.find('/', 7) != std::string_view::npos) continue;
    std::string id;
    const bool id_ok = decode_user_id(path.substr(7), id).empty();
    const auto verb = req.method();
    if (verb != bhttp::verb::get && verb != bhttp::verb::head && verb != bhttp::verb::put &&
        verb != bhttp::verb::delete_) {
      check(status == 405, "other method on /users/{id} not 405", detail);
      continue;
    }
    if (!id_ok) {
      check(status == 400, "invalid id not 400", detail);
      continue;
    }
    // Conditional requests answer 304, 412 or 400 (a malformed or unsupported condition) besides
    // what the map says; whatever they answer, the model follows what was done.
    const bool conditional =
        req.find(bhttp::field::if_match) != req.end() || req.find(bhttp::field::if_none_match) != req.end();
    const auto it = model.find(id);
    if (verb == bhttp::verb::get || verb == bhttp::verb::head) {
      if (conditional && (status == 304 || status == 400)) {
        check(status == 400 || it != model.end(), "304 for an absent user", detail);
      } else if (it == model.end()) {
        check(status == 404, "GET of an absent user not 404", detail);
      } else {
        check(status == 200 && body.at("name").as_string() == it->second && body.at("id").as_string() == id,
              "GET does not return the last name stored", detail);
        check(res.line_value("ETag").has_value(), "GET without an ETag", detail);
      }
    } else if (verb == bhttp::verb::put) {
      if (!check_json_content_type(req[bhttp::field::content_type]).empty()) {
        check(status == 415, "PUT without JSON Content-Type not 415", detail);
        continue;
      }
      std::string name;
      if (!parse_put_body(req.body(), id, name).empty()) {
        check(status == 400, "invalid body not 400", detail);
        continue;
      }
      if (conditional && (status == 412 || status == 400)) continue;
      check(status == (it == model.end() ? 201u : 200u), "PUT status", detail);
      check(res.body() == user_json(id, name), "PUT body", detail);
      check(res.line_value("ETag").has_value(), "PUT without an ETag", detail);
      model[id] = name;
    } else {
      if (conditional && (status == 412 || status == 400)) continue;
      check(status == (it == model.end() ? 404u : 204u), "DELETE status", detail);
      if (it != model.end()) model.erase(it);
    }
  }

  // Stopped within the input (a few ms of the service's own timers), so that everything an input
  // allocates is freed by its end and LeakSanitizer checks each input on its own.
  bool stopped = false;
  asio::co_spawn(io(), world->service.stop(), [&stopped](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
    stopped = true;
  });
  while (!stopped)
    io().run_one_for(10ms);
  world.reset();
  io().poll();
  return 0;
}
