// faultproxy: a drop-in for toxiproxy-server.
//
//   faultproxy [-host localhost] [-port 8474] [-config proxies.json] [-seed N] [-proxy-metrics]
//              [-runtime-metrics] [-threads N] [-busy-poll-us N] [-version]
//
// Flags are read as Go's flag package reads them (-flag value, -flag=value, --flag); LOG_LEVEL sets
// the log level. SIGTERM or SIGINT: stop accepting, close every connection, exit 0.
#include <netdb.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <limits>
#include <random>
#include <sstream>
#include <thread>

#include "common/http_server.h"
#include "common/log.h"
#include "common/metrics.h"
#include "faultproxy/api.h"
#include "faultproxy/dataplane.h"
#include "faultproxy/go/flag.h"
#include "faultproxy/go/strconv.h"
#include "faultproxy/proxy.h"

namespace {

namespace asio = boost::asio;
using namespace faultproxy;

struct Flags {
  std::string host = "localhost";
  std::string port = "8474";
  std::string config;
  std::optional<std::int64_t> seed;
  bool proxy_metrics = false;
  bool runtime_metrics = false;
  bool version = false;
  std::size_t threads = 2;
  std::int64_t busy_poll_us = 50;
};

void usage(std::ostream& out) {
  out << "Usage of faultproxy:\n"
         "  -busy-poll-us int\n        Microseconds a worker keeps polling after I/O before it sleeps; 0: "
         "off (default 50)\n"
         "  -config string\n        JSON file containing proxies to create on startup\n"
         "  -host string\n        Host for faultproxy's API to listen on (default \"localhost\")\n"
         "  -port string\n        Port for faultproxy's API to listen on (default \"8474\")\n"
         "  -proxy-metrics\n        enable metrics for proxies\n"
         "  -runtime-metrics\n        enable runtime-related metrics\n"
         "  -seed int\n        Seed for randomizing toxics with\n"
         "  -threads int\n        Worker threads for proxied connections (default 2)\n"
         "  -version\n        print the version\n";
}

// Go's flag package (go/flag.h): -name, --name, -name=value, -name value; bools take no separate
// value. Errors are printed as Go prints them; the caller then prints the usage.
std::optional<Flags> parse_flags(int argc, char** argv) {
  const std::vector<go::FlagSpec> specs = {
      {{"host"}, go::FlagKind::kString},        {{"port"}, go::FlagKind::kString},
      {{"config"}, go::FlagKind::kString},      {{"seed"}, go::FlagKind::kString},
      {{"threads"}, go::FlagKind::kString},     {{"busy-poll-us"}, go::FlagKind::kString},
      {{"proxy-metrics"}, go::FlagKind::kBool}, {{"runtime-metrics"}, go::FlagKind::kBool},
      {{"version", "v"}, go::FlagKind::kBool},
  };
  const go::ParsedFlags parsed = go::parse_flags(std::vector<std::string>(argv + 1, argv + argc), specs);
  if (parsed.help_requested) {
    usage(std::cout);
    std::exit(0);
  }
  if (!parsed.error.empty()) {
    std::cerr << parsed.error << "\n";
    return std::nullopt;
  }
  Flags f;
  if (parsed.strings.contains("host")) f.host = parsed.value("host");
  if (parsed.strings.contains("port")) f.port = parsed.value("port");
  f.config = parsed.value("config");
  f.proxy_metrics = parsed.flag("proxy-metrics");
  f.runtime_metrics = parsed.flag("runtime-metrics");
  f.version = parsed.flag("version");
  // Integer flags, in base 10; ours also have a range.
  const struct {
    const char* name;
    std::int64_t lo, hi;
  } integers[] = {
      {"seed", std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max()},
      {"threads", 1, 64},
      {"busy-poll-us", 0, 10'000}};
  for (const auto& [name, lo, hi] : integers) {
    if (!parsed.strings.contains(name)) continue;
    const std::string v = parsed.value(name);
    std::int64_t n = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || p != v.data() + v.size() || n < lo || n > hi) {
      const bool range =
          ec == std::errc::result_out_of_range || (ec == std::errc() && p == v.data() + v.size());
      std::cerr << "invalid value " << go::quote(v) << " for flag -" << name << ": "
                << (range ? "value out of range" : "parse error") << "\n";
      return std::nullopt;
    }
    if (std::string_view(name) == "seed") f.seed = n;
    if (std::string_view(name) == "threads") f.threads = static_cast<std::size_t>(n);
    if (std::string_view(name) == "busy-poll-us") f.busy_poll_us = n;
  }
  return f;
}

std::optional<asio::ip::tcp::endpoint> api_endpoint(const Flags& f) {
  std::uint16_t port = 0;
  auto [p, ec] = std::from_chars(f.port.data(), f.port.data() + f.port.size(), port);
  if (ec != std::errc() || p != f.port.data() + f.port.size()) return std::nullopt;
  boost::system::error_code aec;
  auto addr = asio::ip::make_address(f.host, aec);
  if (!aec) return asio::ip::tcp::endpoint(addr, port);
  if (f.host == "localhost") return asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), port);
  if (f.host.empty()) return asio::ip::tcp::endpoint(asio::ip::address_v6::any(), port);
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(f.host.c_str(), nullptr, &hints, &res) != 0 || !res) return std::nullopt;
  const auto* sin = reinterpret_cast<const sockaddr_in*>(res->ai_addr);
  asio::ip::tcp::endpoint ep(asio::ip::address_v4(ntohl(sin->sin_addr.s_addr)), port);
  freeaddrinfo(res);
  return ep;
}

}  // namespace

int main(int argc, char** argv) {
  auto flags = parse_flags(argc, argv);
  if (!flags) {
    usage(std::cerr);
    return 2;
  }
  if (flags->version) {
    std::cout << "faultproxy version " << kFaultproxyVersion << " (toxiproxy-server " << kToxiproxyVersion
              << " API)\n";
    return 0;
  }
  common::log::init_from_env();
  common::http::raise_open_file_limit();
  ::signal(SIGPIPE, SIG_IGN);

  const std::uint64_t seed = flags->seed
                                 ? static_cast<std::uint64_t>(*flags->seed)
                                 : (std::uint64_t{std::random_device{}()} << 32) ^ std::random_device{}();

  Workers workers(flags->threads, std::chrono::microseconds(flags->busy_poll_us));
  common::metrics::Registry registry;
  ProxyCollection proxies(workers,
                          {.seed = seed, .proxy_metrics = flags->proxy_metrics ? &registry : nullptr});
  Api api(proxies, registry,
          {.proxy_metrics = flags->proxy_metrics,
           .runtime_metrics = flags->runtime_metrics,
           .api_host = flags->host});
  if (flags->runtime_metrics) {
    registry.add_collector([threads = flags->threads](common::metrics::Writer& w) {
      w.gauge("faultproxy_worker_threads", "Threads running proxied connections.", {},
              static_cast<double>(threads));
    });
  }

  common::log::info("starting faultproxy", {{"version", kFaultproxyVersion},
                                            {"toxiproxy_api", kToxiproxyVersion},
                                            {"threads", static_cast<unsigned long>(flags->threads)},
                                            {"busy_poll_us", flags->busy_poll_us}});

  if (!flags->config.empty()) {
    std::ifstream in(flags->config, std::ios::binary);
    if (!in) {
      common::log::error("error reading config file", {{"config", flags->config}});
      return 1;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    auto parsed = parse_populate(ss.str());
    std::optional<ApiError> err;
    std::vector<std::string> names;
    if (auto* e = std::get_if<ApiError>(&parsed)) {
      err = *e;
    } else {
      err = proxies.populate(std::move(std::get<std::vector<ProxyCollection::PopulateEntry>>(parsed)), names);
    }
    if (err) {
      common::log::error("failed to populate proxies from file",
                         {{"config", flags->config}, {"error", err->message}});
      return 1;
    }
    common::log::info("populated proxies from file", {{"config", flags->config}, {"proxies", names.size()}});
  }

  const auto endpoint = api_endpoint(*flags);
  if (!endpoint) {
    common::log::error("cannot resolve the API address", {{"host", flags->host}, {"port", flags->port}});
    return 1;
  }
  common::http::Server server(
      workers.control().get_executor(), {},
      [&api](common::http::Request& req, const common::http::RequestInfo& info)
          -> asio::awaitable<common::http::Response> { co_return api.handle(req, info); },
      Api::server_error);
  if (auto ec = server.listen(*endpoint)) {
    common::log::error("cannot listen", {{"address", endpoint->address().to_string() + ":" + flags->port},
                                         {"error", ec.message()}});
    return 1;
  }
  server.start();
  common::log::info("API listening", {{"address", endpoint->address().to_string() + ":" +
                                                      std::to_string(server.local_endpoint().port())}});

  asio::signal_set signals(workers.control(), SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int signo) {
    if (ec) return;
    common::log::info("shutting down", {{"signal", signo}});
    proxies.stop_all();  // listeners closed, connections told to close
    asio::co_spawn(
        workers.control(),
        [&]() -> asio::awaitable<void> {
          co_await server.shutdown(std::chrono::milliseconds(1000));
          // Let the workers run the closes just posted to them.
          asio::steady_timer t(workers.control(), std::chrono::milliseconds(50));
          co_await t.async_wait(asio::use_awaitable);
          workers.control().stop();
        },
        asio::detached);
  });

  workers.start_threads();
  workers.run_control();
  workers.stop();
  common::log::info("stopped");
  return 0;
}
