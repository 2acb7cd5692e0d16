// Micro-benchmarks of user-service's hot path without sockets: what issue 14 added to a cached GET,
// each on its own (the ETag, the checks of If-None-Match and X-Request-Timeout-Ms). bench/user_service.sh
// prints each one's cost and its share of a cached GET's CPU; nothing is asserted.
//
//   build/release/bench/user_service_bench
//   build/release/bench/user_service_bench --benchmark_filter=UsCachedGet --benchmark_format=csv
#include <benchmark/benchmark.h>

#include <string>

#include "common/http_server.h"
#include "common/version.h"
#include "user_service/validation.h"

namespace {

namespace bhttp = boost::beast::http;

// A cached GET as wrk and curl send it.
common::http::Request cached_get_request() {
  common::http::Request req{bhttp::verb::get, "/users/u-1", 11};
  req.set(bhttp::field::host, "127.0.0.1:17080");
  req.set(bhttp::field::user_agent, "curl/7.88.1");
  req.set(bhttp::field::accept, "*/*");
  return req;
}

// Writes the answer to a cached GET (as Api::read_answer and the server make it: JSON, Date,
// Content-Length; the lines X-Data-Source, X-Request-Id and, when `etag`, ETag) as the server formats
// its head (common::http::append_response_head); returns the bytes, so that nothing is optimised away.
std::size_t cached_get_answer(const common::http::Request& req, bool etag) {
  auto res = common::http::make_response(req, bhttp::status::ok, user_service::user_json("u-1", "Jack"),
                                         "application/json");
  if (etag) res.add_line("ETag", user_service::etag(42).view());
  res.add_line("X-Data-Source", "cache");
  res.add_line("X-Request-Id", "5a1f03c2-1f2e3d");
  res.set(bhttp::field::date, common::http::http_date_now());
  res.prepare_payload();
  std::string head;
  common::http::append_response_head(res, head);
  benchmark::DoNotOptimize(head.data());
  return head.size() + res.body().size();
}

// The parts measured, kept out of line so that callgrind counts each one's instructions per call
// (bench/user_service.sh runs this binary under callgrind too): the answer as before issue 14, the
// answer with the ETag (its cost is the difference), and the lookups every cached GET makes for
// issue 14's request headers, absent as they usually are: If-None-Match (a conditional GET) and
// X-Request-Timeout-Ms (the client's remaining budget).
[[gnu::noinline]] std::size_t answer_before_issue14(const common::http::Request& req) {
  return cached_get_answer(req, false);
}
[[gnu::noinline]] std::size_t answer_with_etag(const common::http::Request& req) {
  return cached_get_answer(req, true);
}
[[gnu::noinline]] bool issue14_header_checks(const common::http::Request& req) {
  const auto none_match = req.equal_range(bhttp::field::if_none_match);
  const auto budget = req.equal_range("X-Request-Timeout-Ms");
  return none_match.first != none_match.second || budget.first != budget.second;
}

void BM_UsCachedGetAnswer(benchmark::State& state) {
  const auto req = cached_get_request();
  const bool etag = state.range(0) != 0;
  for (auto _ : state)
    benchmark::DoNotOptimize(etag ? answer_with_etag(req) : answer_before_issue14(req));
}
BENCHMARK(BM_UsCachedGetAnswer)->Arg(0)->Arg(1);

void BM_UsCachedGetHeaderChecks(benchmark::State& state) {
  const auto req = cached_get_request();
  for (auto _ : state)
    benchmark::DoNotOptimize(issue14_header_checks(req));
}
BENCHMARK(BM_UsCachedGetHeaderChecks);

}  // namespace

int main(int argc, char** argv) {
  if (common::print_version_if_asked(argc, argv, "user_service_bench")) return 0;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
