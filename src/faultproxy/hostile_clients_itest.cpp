// faultproxy against hostile clients, on its API (slowloris, 10,000 idle connections, 100 KB
// headers, pipelined garbage, half-closed connections) and on a proxied listener (thousands of idle
// connections, each also holding an upstream connection; half-closed connections), each while a
// normal client keeps using the API and a proxied Redis (PING through the proxy) and measuring
// its latency. The binary runs with its defaults (API request timeout 10 s).
//
// Each test runs in a private network namespace when the system allows it (see
// testing/hostile_clients.h), so that its thousands of connections disturb nothing else.
#include <gtest/gtest.h>

#include <iostream>
#include <optional>

#include "testing/hostile_checks.h"
#include "testing/hostile_clients.h"
#include "testing/servers.h"

namespace {

namespace hostile = testing_support::hostile;
using namespace std::chrono_literals;
using hostile::Millis;

constexpr auto kApiRequestTimeout = 10'000ms;  // common::http::ServerSettings' default
constexpr auto kAttackTime = 3000ms;
// Generous: a debug (ASan) build on two shared cores, under attack.
constexpr auto kLatencyBound = 3000ms;
// While 10,000 connections arrive at once and wait in the listen backlog with the normal client's.
constexpr auto kRampLatencyBound = 20'000ms;

class HostileClients : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string why;
    if (!hostile::enter_private_network(why))
      std::cerr << "hostile clients: " << why << "; using the host network\n";
    fd_limit = hostile::raise_fd_limit();
    dir = new testing_support::TempDir();
    redis = new testing_support::RedisServer(testing_support::RedisServer::start(dir->path() / "redis"));
  }
  static void TearDownTestSuite() {
    delete redis;
    delete dir;
  }

  void SetUp() override { StartFaultproxy({}); }

  // `wrapper`: words put before the binary (e.g. prlimit to lower its descriptor limit).
  void StartFaultproxy(std::vector<std::string> wrapper) {
    api_ = testing_support::free_port();
    proxy_ = testing_support::free_port();
    std::vector<std::string> argv = std::move(wrapper);
    const std::vector<std::string> args = {FAULTPROXY_BINARY, "-host", "127.0.0.1", "-port",
                                           std::to_string(api_)};
    argv.insert(argv.end(), args.begin(), args.end());
    faultproxy_ = testing_support::Process::spawn(argv, dir->path() / "faultproxy.log");
    const auto give_up = std::chrono::steady_clock::now() + 20s;
    while (hostile::http(api_, "GET", "/version", {}, 500ms).status != 200 &&
           std::chrono::steady_clock::now() < give_up)
      std::this_thread::sleep_for(50ms);
    const auto created =
        hostile::http(api_, "POST", "/proxies",
                      R"({"name":"redis","listen":"127.0.0.1:)" + std::to_string(proxy_) +
                          R"(","upstream":"127.0.0.1:)" + std::to_string(redis->port()) + "\"}");
    ASSERT_EQ(created.status, 201) << created.error << created.body;
    ASSERT_EQ(Ping().status, 200) << Ping().error;
    baseline_fds_ = hostile::settled_fds(faultproxy_.pid());
  }

  void TearDown() override {
    if (HasFailure()) std::cout << "--- the last lines of its log:\n" << LogTail() << "\n";
    hostile::expect_clean_exit(faultproxy_, "faultproxy", dir->path() / "faultproxy.log");
  }

  // PING through the proxied listener: +PONG, then the connection closes (FIN both ways).
  hostile::Reply Ping() {
    const auto e = hostile::raw(proxy_, "PING\r\n", true, 5000ms);
    hostile::Reply r;
    r.elapsed = e.elapsed;
    if (e.received == "+PONG\r\n" && e.closed) {
      r.status = 200;
    } else {
      r.error = "PING through the proxy: got \"" + e.received + "\"" + (e.closed ? "" : ", not closed");
    }
    return r;
  }

  // Alternately reads a proxy through the API and PINGs Redis through the proxy, every 100 ms.
  std::unique_ptr<hostile::NormalClient> StartNormalClient() {
    return std::make_unique<hostile::NormalClient>(
        [this, n = 0]() mutable {
          if (n++ % 2 == 0) {
            auto r = hostile::http(api_, "GET", "/proxies/redis");
            if (r.status != 200) r.status = 0, r.error += " GET /proxies/redis: " + r.body;
            return r;
          }
          return Ping();
        },
        100ms);
  }

  static std::string LogTail() { return hostile::log_tail(dir->path() / "faultproxy.log"); }

  void ExpectServed(const hostile::NormalClient::Stats& s, std::string_view attack,
                    Millis bound = kLatencyBound, std::size_t min_requests = 6) {
    hostile::expect_served(s, attack, bound, min_requests);
  }

  // The attack's connections are gone: the server holds no more descriptors than before.
  void ExpectDescriptorsReturned() { hostile::expect_descriptors_returned(faultproxy_.pid(), baseline_fds_); }

  static inline testing_support::TempDir* dir = nullptr;
  static inline testing_support::RedisServer* redis = nullptr;
  static inline std::size_t fd_limit = 0;
  testing_support::Process faultproxy_;
  std::uint16_t api_ = 0, proxy_ = 0;
  std::size_t baseline_fds_ = 0;
};

TEST_F(HostileClients, ApiSlowlorisIsClosedAfterTheRequestTimeout) {
  auto normal = StartNormalClient();
  const auto r = hostile::slowloris(api_, 300, 500ms, kApiRequestTimeout + 10s);
  ExpectServed(normal->stop(), "API slowloris");
  EXPECT_EQ(r.connections, 300u);
  EXPECT_EQ(r.closed, r.connections);
  EXPECT_GE(r.last_close, kApiRequestTimeout - 500ms);
  EXPECT_LT(r.last_close, kApiRequestTimeout + 5s);
  std::cout << "[ API slowloris ] " << r.closed << "/" << r.connections << " closed, the last after "
            << r.last_close.count() << " ms\n";
  ExpectDescriptorsReturned();
}

TEST_F(HostileClients, ApiTenThousandIdleConnections) {
  const std::size_t count = std::min<std::size_t>(10'000, fd_limit > 1000 ? fd_limit - 1000 : 0);
  ASSERT_GE(count, 5'000u) << "RLIMIT_NOFILE too low for this test: " << fd_limit;
  auto during_ramp = StartNormalClient();
  std::optional<hostile::Flood> idle;
  idle.emplace(api_, count);
  EXPECT_EQ(idle->established(), count);
  // The ramp: faultproxy accepts them all (a normal client's connection waits in the same listen
  // backlog meanwhile; the debug build on two shared cores takes seconds).
  const auto ramp_start = std::chrono::steady_clock::now();
  const auto give_up = ramp_start + 60s;
  while (hostile::open_fds(faultproxy_.pid()) + 8 < baseline_fds_ + count &&
         std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(50ms);
  const auto ramp = std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - ramp_start);
  ExpectServed(during_ramp->stop(), "the ramp to 10,000 idle connections", kRampLatencyBound, 1);
  // The hold: all of them open and idle, the normal client as fast as ever.
  auto during_hold = StartNormalClient();
  std::this_thread::sleep_for(kAttackTime);
  std::cout << "[ idle flood ] " << idle->established() << " connections established, accepted within "
            << ramp.count() << " ms, " << idle->closed_by_server() << " closed by faultproxy; its fds "
            << hostile::open_fds(faultproxy_.pid()) << "\n";
  EXPECT_EQ(idle->closed_by_server(), 0u)
      << "below the cap, idle connections are kept until the idle timeout";
  ExpectServed(during_hold->stop(), "10,000 idle connections held");
  idle.reset();  // every connection closed (RST)
  ExpectDescriptorsReturned();
}

TEST_F(HostileClients, ApiHugeHeadersAre431AndClosed) {
  auto normal = StartNormalClient();
  std::size_t n = 0;
  ASSERT_NO_FATAL_FAILURE(hostile::huge_headers_attack(api_, "/version", kAttackTime, n));
  std::cout << "[ API huge headers ] " << n << " requests of 100 KB headers, each 431 and closed\n";
  ExpectServed(normal->stop(), "100 KB headers on the API");
  ExpectDescriptorsReturned();
}

TEST_F(HostileClients, ApiPipelinedGarbageGetsAnswersThen400AndClose) {
  auto normal = StartNormalClient();
  std::size_t n = 0;
  ASSERT_NO_FATAL_FAILURE(hostile::pipelined_garbage_attack(
      api_, "/version", "DELETE /proxies/redis HTTP/1.1\r\n\r\n", kAttackTime, n));
  std::cout << "[ API pipelined garbage ] " << n << " connections: 5 answers, then 400 and closed\n";
  EXPECT_EQ(hostile::http(api_, "GET", "/proxies/redis").status, 200) << "nothing after the garbage was run";
  ExpectServed(normal->stop(), "pipelined garbage on the API");
  ExpectDescriptorsReturned();
}

TEST_F(HostileClients, ApiHalfClosedConnectionsAreAnsweredAndClosed) {
  auto normal = StartNormalClient();
  std::size_t n = 0;
  ASSERT_NO_FATAL_FAILURE(hostile::half_closed_attack(api_, "/version", kAttackTime, n));
  std::cout << "[ API half-closed ] " << n << " connections half-closed, each answered or closed at once\n";
  ExpectServed(normal->stop(), "half-closed API connections");
  ExpectDescriptorsReturned();
}

// More idle API connections than faultproxy may open descriptors: the API server's cap fits the
// descriptor limit, so idle connections are shed and a normal client still gets in.
TEST_F(HostileClients, ApiIdleConnectionsBeyondTheDescriptorLimit) {
  faultproxy_.stop();
  StartFaultproxy({"prlimit", "--nofile=1024:1024", "--"});
  baseline_fds_ = hostile::settled_fds(faultproxy_.pid());
  auto normal = StartNormalClient();
  {
    hostile::Flood idle(api_, 2'000, 5s);
    std::this_thread::sleep_for(kAttackTime);
    std::cout << "[ API idle flood beyond the fd limit ] " << idle.established()
              << " connections established, " << idle.closed_by_server() << " closed; faultproxy fds "
              << hostile::open_fds(faultproxy_.pid()) << "\n";
  }
  ExpectServed(normal->stop(), "2,000 idle API connections, 1,024 descriptors");
  ExpectDescriptorsReturned();
}

// Every client connection of a proxy also holds one to the upstream: 4,000 idle clients are 8,000
// descriptors in faultproxy and 4,000 Redis clients.
TEST_F(HostileClients, ProxiedListenerThousandsOfIdleConnections) {
  auto normal = StartNormalClient();
  {
    hostile::Flood idle(proxy_, 4'000);
    EXPECT_EQ(idle.established(), 4'000u);
    std::this_thread::sleep_for(kAttackTime);
    std::cout << "[ proxy idle flood ] " << idle.established() << " connections established, "
              << idle.closed_by_server() << " closed; faultproxy fds " << hostile::open_fds(faultproxy_.pid())
              << "\n";
    EXPECT_EQ(idle.closed_by_server(), 0u) << "an idle proxied connection is not faultproxy's to close";
  }
  ExpectServed(normal->stop(), "4,000 idle proxied connections");
  ExpectDescriptorsReturned();
}

TEST_F(HostileClients, ProxiedListenerHalfClosedConnectionsPropagateTheirEnd) {
  auto normal = StartNormalClient();
  std::size_t rounds = 0;
  for (const auto end = std::chrono::steady_clock::now() + kAttackTime;
       std::chrono::steady_clock::now() < end;) {
    // PING, FIN: Redis answers, sees the end, closes; faultproxy carries both ends through.
    hostile::Flood pings(proxy_, 300);
    pings.send_all("PING\r\n");
    pings.half_close_all();
    // FIN without a byte: Redis closes, so does the client's side.
    hostile::Flood silent(proxy_, 300);
    silent.half_close_all();
    ASSERT_EQ(pings.wait_closed_by_server(5s), 300u);
    ASSERT_EQ(silent.wait_closed_by_server(5s), 300u);
    for (const auto& answer : pings.received())
      ASSERT_EQ(answer, "+PONG\r\n");
    ++rounds;
  }
  std::cout << "[ proxy half-closed ] " << rounds * 600 << " proxied connections half-closed, each ended\n";
  ExpectServed(normal->stop(), "half-closed proxied connections");
  ExpectDescriptorsReturned();
}

}  // namespace
