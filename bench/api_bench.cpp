// Micro-benchmarks of the control path, both ends of it, without sockets: faultproxy's API answering
// in-process (Api::handle: routing, JSON in and out, the proxy collection) and faultproxy-cli turning
// the answer into its output. `./dev bench` runs them after the proxy benchmark; they print times
// per operation, nothing is asserted.
//
//   build/release/bench/api_bench [--benchmark_filter=List]
#include <benchmark/benchmark.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/version.h"
#include "faultproxy/api.h"
#include "faultproxy/cli/render.h"
#include "faultproxy/cli/toxiproxy_client.h"
#include "faultproxy/dataplane.h"
#include "faultproxy/go/json.h"
#include "faultproxy/proxy.h"

namespace {

namespace bhttp = common::http::bhttp;

// An API over `count` proxies (ephemeral listen ports), each with a latency and a bandwidth toxic.
struct ApiEnv {
  explicit ApiEnv(int count) : workers(1), proxies(workers, {.seed = 1}), api(proxies, registry, {}) {
    for (int i = 0; i < count; ++i) {
      const std::string name = "proxy_" + std::to_string(i);
      call(bhttp::verb::post, "/proxies",
           R"({"name":")" + name + R"(","listen":"127.0.0.1:0","upstream":"127.0.0.1:9"})");
      call(bhttp::verb::post, "/proxies/" + name + "/toxics",
           R"({"type":"latency","attributes":{"latency":100}})");
      call(bhttp::verb::post, "/proxies/" + name + "/toxics",
           R"({"type":"bandwidth","stream":"upstream","attributes":{"rate":1000}})");
    }
  }

  common::http::Response call(bhttp::verb method, std::string target, std::string body = "") {
    common::http::Request req{method, std::move(target), 11};
    req.set(bhttp::field::user_agent, "api_bench");
    req.body() = std::move(body);
    req.prepare_payload();
    return api.handle(req, {});
  }

  faultproxy::Workers workers;
  common::metrics::Registry registry;
  faultproxy::ProxyCollection proxies;
  faultproxy::Api api;
};

void BM_ApiListProxies(benchmark::State& state) {
  ApiEnv env(static_cast<int>(state.range(0)));
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto res = env.call(bhttp::verb::get, "/proxies");
    bytes += res.body().size();
    benchmark::DoNotOptimize(res);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
}
BENCHMARK(BM_ApiListProxies)->Arg(10)->Arg(1000)->Unit(benchmark::kMicrosecond);

void BM_ApiAddAndRemoveToxic(benchmark::State& state) {
  ApiEnv env(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    auto added = env.call(bhttp::verb::post, "/proxies/proxy_0/toxics",
                          R"({"name":"t","type":"slicer","attributes":{"average_size":10,"delay":5}})");
    auto removed = env.call(bhttp::verb::delete_, "/proxies/proxy_0/toxics/t");
    if (added.result_int() != 200 || removed.result_int() != 204) state.SkipWithError("API call failed");
  }
}
BENCHMARK(BM_ApiAddAndRemoveToxic)->Arg(10)->Arg(1000)->Unit(benchmark::kMicrosecond);

void BM_ApiUpdateToxic(benchmark::State& state) {
  ApiEnv env(10);
  long jitter = 0;
  for (auto _ : state) {
    auto res = env.call(bhttp::verb::patch, "/proxies/proxy_3/toxics/latency_downstream",
                        R"({"attributes":{"jitter":)" + std::to_string(++jitter % 50) + "}}");
    if (res.result_int() != 200) state.SkipWithError("API call failed");
  }
}
BENCHMARK(BM_ApiUpdateToxic)->Unit(benchmark::kMicrosecond);

// faultproxy-cli `list`: decoding GET /proxies and rendering the piped table.
void BM_CliDecodeAndRenderList(benchmark::State& state) {
  ApiEnv env(static_cast<int>(state.range(0)));
  const std::string body = env.call(bhttp::verb::get, "/proxies").body();
  for (auto _ : state) {
    faultproxy::cli::ProxyMap proxies;
    const auto parsed = faultproxy::go::json::parse_first(body);
    for (const auto& [name, value] : parsed.value.members) {
      proxies[name] = *faultproxy::cli::decode_proxy(value).value;
    }
    std::string out = faultproxy::cli::render_list(proxies, false, "faultproxy-cli");
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_CliDecodeAndRenderList)->Arg(10)->Arg(1000)->Unit(benchmark::kMicrosecond);

void BM_CliEncodeAddToxic(benchmark::State& state) {
  faultproxy::cli::ToxicOptions options{
      "p",          "t",  "latency",
      "downstream", 0.5f, faultproxy::cli::parse_attributes({"latency=100", "jitter=10"})};
  for (auto _ : state) {
    auto body = faultproxy::cli::encode_add_toxic(options);
    benchmark::DoNotOptimize(body);
  }
}
BENCHMARK(BM_CliEncodeAddToxic);

}  // namespace

int main(int argc, char** argv) {
  if (common::print_version_if_asked(argc, argv, "api_bench")) return 0;
  common::log::init_from_env(common::log::Level::warn);  // quiet unless LOG_LEVEL says otherwise
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
