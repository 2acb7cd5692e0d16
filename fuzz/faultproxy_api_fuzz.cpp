// Fuzz target: faultproxy's whole HTTP API (faultproxy::Api::handle) in-process, over a real
// ProxyCollection whose listeners bind real sockets: inside a private network namespace
// (fuzz_support::isolate_network), so whatever addresses the input names disturb nobody.
//
// An input is a script of requests (fuzz/support/fuzz_support.h). Checked after every request,
// besides memory safety and UB:
// - the status is one the API documents; a JSON or Go error body is valid JSON, and an error body
//   is {"error": "...", "status": <the HTTP status>};
// - GET /proxies is valid JSON listing exactly the proxies that exist;
// - a request that fails changes nothing (create, update, populate, toxics: all or nothing), seen
//   as an unchanged GET /proxies; but POST /reset, which resets what it can;
// - a successful create/update answers what a GET of the same proxy or toxic then shows.
#include <boost/json.hpp>
#include <memory>
#include <set>

#include "common/log.h"
#include "faultproxy/api.h"
#include "faultproxy/go/json.h"
#include "support/fuzz_support.h"

namespace {

namespace bhttp = boost::beast::http;
using fuzz_support::check;
using namespace faultproxy;

const std::set<unsigned> kStatuses = {200, 201, 204, 304, 400, 403, 404, 405, 409, 500};  // 304: /ui

common::http::Response call(Api& api, bhttp::verb verb, std::string target) {
  common::http::Request req{verb, target, 11};
  req.set(bhttp::field::user_agent, "fuzz");
  return api.handle(req, {});
}

bool valid_json(std::string_view body) {
  boost::system::error_code ec;
  boost::json::parse(body, ec);
  return !ec && faultproxy::go::json::parse_first(body).ok();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  common::log::set_level(common::log::Level::off);
  fuzz_support::isolate_network();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Workers workers(1);
  common::metrics::Registry registry;
  ProxyCollection proxies(workers, {.seed = 1, .proxy_metrics = &registry});
  Api api(proxies, registry, {.proxy_metrics = true});

  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (auto& step : fuzz_support::parse_script(text, 24)) {
    const std::string before = call(api, bhttp::verb::get, "/proxies").body();
    auto& req = step.request;
    const common::http::Response res = api.handle(req, {});
    const unsigned status = res.result_int();
    const std::string detail = std::string(req.method_string()) + " " + std::string(req.target()) + " " +
                               req.body() + "\n-> " + std::to_string(status) + " " + res.body();

    check(kStatuses.contains(status), "unexpected status", detail);
    const auto type = res[bhttp::field::content_type];
    if (type.starts_with("application/json")) check(valid_json(res.body()), "invalid JSON body", detail);
    if (status >= 400 && type == "text/plain; charset=utf-8" && res.body().starts_with("{")) {
      check(valid_json(res.body()), "invalid JSON error body", detail);
      const auto v = boost::json::parse(res.body());
      check(v.at("error").is_string() && v.at("status").to_number<unsigned>() == status,
            "error body status differs from the HTTP status", detail);
    }

    const std::string after = call(api, bhttp::verb::get, "/proxies").body();
    boost::system::error_code ec;
    const auto listing = boost::json::parse(after, ec);
    check(!ec && listing.is_object() && faultproxy::go::json::parse_first(after).ok(),
          "GET /proxies is not valid JSON", after);
    check(listing.as_object().size() == proxies.proxies().size(), "GET /proxies does not list every proxy",
          after);
    // POST /reset is the exception, by design (README): it resets what it can, then answers the
    // first error.
    const bool best_effort = req.method() == bhttp::verb::post && req.target() == "/reset";
    if (status >= 400 && !best_effort)
      check(before == after, "a failed request changed the proxies", detail + "\n" + before + "\n" + after);

    // A successful change answers what a GET then shows.
    if ((status == 200 || status == 201) &&
        (req.method() == bhttp::verb::post || req.method() == bhttp::verb::patch)) {
      std::string_view target = req.target();
      if (const auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
      if (target.starts_with("/proxies") && target.find('%') == std::string_view::npos) {
        const std::string get = std::string(target == "/proxies" ? "" : target);
        if (!get.empty()) {
          const auto shown = call(api, bhttp::verb::get, get);
          if (get.find("/toxics") == std::string::npos || get.rfind('/') > get.find("/toxics")) {
            // An update whose time window (duration_ms) has already ended removes the toxic: it
            // is answered as it was last, and is gone.
            const bool window_ended = req.method() == bhttp::verb::patch && shown.result_int() == 404 &&
                                      res.body().find("\"duration_ms\":") != std::string::npos;
            check((shown.result_int() == 200 && shown.body() == res.body()) || window_ended,
                  "a change answered differs from GET", detail + "\nGET " + get + " -> " + shown.body());
          }
        }
      }
    }
    // Only now the handlers: the accept loops armed by the request, and the timers of time-bounded
    // toxics, whose end removes a toxic whatever the request did (so not between the two GETs).
    workers.control().poll();
  }
  proxies.stop_all();
  workers.control().poll();
  return 0;
}
