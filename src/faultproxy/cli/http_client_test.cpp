// The CLI's HTTP client over real loopback sockets, against the project's own HTTP server running
// in-process: requests and answers, and every way reaching the server can fail, each reported as
// one line within its deadline.
#include "faultproxy/cli/http_client.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <mutex>
#include <thread>

#include "common/http_server.h"
#include "testing/servers.h"

namespace faultproxy::cli {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using common::http::Request;
using common::http::RequestInfo;
using common::http::Response;

class HttpClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<common::http::Server>(
        io_.get_executor(), common::http::ServerSettings{},
        [this](Request& req, const RequestInfo&) -> asio::awaitable<Response> {
          std::lock_guard lock(mutex_);
          seen_.push_back(std::string(req.method_string()) + " " + std::string(req.target()) +
                          " host=" + std::string(req[boost::beast::http::field::host]) +
                          " ua=" + std::string(req[boost::beast::http::field::user_agent]) + " ct=" +
                          std::string(req[boost::beast::http::field::content_type]) + " body=" + req.body());
          if (req.target() == "/slow") {
            asio::steady_timer t(co_await asio::this_coro::executor, 2s);
            co_await t.async_wait(asio::use_awaitable);
          }
          if (req.target() == "/big") {
            co_return common::http::make_response(req, boost::beast::http::status::ok,
                                                  std::string(200'000, 'x'), "text/plain");
          }
          co_return common::http::make_response(req, boost::beast::http::status::not_found,
                                                "{\"error\":\"proxy not found\",\"status\":404}\n",
                                                "text/plain");
        });
    ASSERT_FALSE(server_->listen({asio::ip::make_address("127.0.0.1"), 0}));
    port_ = server_->local_endpoint().port();
    server_->start();
    thread_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    auto done = asio::co_spawn(io_, server_->shutdown(100ms), asio::use_future);
    done.wait();
    io_.stop();
    thread_.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  asio::io_context io_;
  std::unique_ptr<common::http::Server> server_;
  std::thread thread_;
  std::uint16_t port_ = 0;
  std::vector<std::string> seen() {
    std::lock_guard lock(mutex_);
    return seen_;
  }

  std::mutex mutex_;
  std::vector<std::string> seen_;  // what the server received, in order
};

TEST_F(HttpClientTest, SendsRequestsAndReturnsAnswersOfAnyStatus) {
  HttpClient client("127.0.0.1:" + std::to_string(port_), {});
  HttpOutcome r = client.send("POST", "/proxies/a%20b", std::string("{\"x\":1}"));
  ASSERT_TRUE(r.response) << r.error;
  EXPECT_EQ(r.response->status, 404u);
  EXPECT_EQ(r.response->body, "{\"error\":\"proxy not found\",\"status\":404}\n");
  r = client.send("GET", "/proxies", std::nullopt);
  ASSERT_TRUE(r.response) << r.error;
  const auto seen = this->seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], "POST /proxies/a%20b host=127.0.0.1:" + std::to_string(port_) +
                         " ua=faultproxy-cli ct=application/json body={\"x\":1}");
  EXPECT_EQ(seen[1].rfind("GET /proxies host=", 0), 0u);
}

TEST_F(HttpClientTest, HostNamesAndPathPrefixesWork) {
  HttpClient client("http://localhost:" + std::to_string(port_) + "/base/", {});
  HttpOutcome r = client.send("GET", "/proxies", std::nullopt);
  ASSERT_TRUE(r.response) << r.error;
  const auto seen = this->seen();
  EXPECT_EQ(seen.at(0).rfind("GET /base/proxies host=localhost:" + std::to_string(port_), 0), 0u)
      << seen.at(0);
}

TEST_F(HttpClientTest, RefusedConnectionIsOneGoStyleLine) {
  const testing_support::RefusingPort nothing;
  const auto port = std::to_string(nothing.port());
  HttpClient client("127.0.0.1:" + port, {});
  const HttpOutcome r = client.send("GET", "/proxies", std::nullopt);
  ASSERT_FALSE(r.response);
  EXPECT_EQ(r.error, "Get \"http://127.0.0.1:" + port + "/proxies\": dial tcp 127.0.0.1:" + port +
                         ": connect: connection refused");
}

TEST_F(HttpClientTest, AServerThatDoesNotAnswerHitsTheRequestDeadline) {
  HttpClientSettings settings;
  settings.request_timeout = 300ms;
  HttpClient client(url(), settings);
  const auto start = std::chrono::steady_clock::now();
  const HttpOutcome r = client.send("DELETE", "/slow", std::nullopt);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.response);
  EXPECT_EQ(r.error,
            "Delete \"" + url() +
                "/slow\": Client.Timeout exceeded while awaiting the response (no answer within 300 ms)");
  EXPECT_GE(elapsed, 300ms);
  EXPECT_LT(elapsed, 1800ms);  // well before the handler answers (2 s)
}

TEST(HttpClientRaw, AListenerThatNeverAcceptsHitsTheRequestDeadline) {
  // The kernel completes the handshake from the backlog, so connect() succeeds but nothing answers.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 8), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  HttpClientSettings settings;
  settings.request_timeout = 200ms;
  HttpClient client("127.0.0.1:" + std::to_string(ntohs(addr.sin_port)), settings);
  const HttpOutcome r = client.send("GET", "/proxies", std::nullopt);
  ::close(fd);
  ASSERT_FALSE(r.response);
  EXPECT_NE(r.error.find("no answer within 200 ms"), std::string::npos) << r.error;
}

TEST(HttpClientRaw, APeerThatClosesWithoutAnsweringIsEof) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 8), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::thread closer([fd] {
    const int c = ::accept(fd, nullptr, nullptr);
    char buf[1024];
    (void)::recv(c, buf, sizeof buf, 0);
    ::close(c);
  });
  HttpClient client("127.0.0.1:" + std::to_string(ntohs(addr.sin_port)), {});
  const HttpOutcome r = client.send("GET", "/proxies", std::nullopt);
  closer.join();
  ::close(fd);
  ASSERT_FALSE(r.response);
  EXPECT_EQ(r.error.substr(r.error.size() - 5), ": EOF") << r.error;
}

TEST_F(HttpClientTest, OversizedAnswersAreRefused) {
  HttpClientSettings settings;
  settings.body_limit = 100'000;
  HttpClient client(url(), settings);
  const HttpOutcome r = client.send("GET", "/big", std::nullopt);
  ASSERT_FALSE(r.response);
  EXPECT_NE(r.error.find("response body larger than 100000 bytes"), std::string::npos) << r.error;
}

TEST(HttpClientUrl, UnsupportedSchemesAndBadUrlsAreReported) {
  HttpClient https("https://127.0.0.1:1", {});
  EXPECT_EQ(https.send("GET", "/proxies", std::nullopt).error,
            "Get \"https://127.0.0.1:1/proxies\": unsupported protocol scheme \"https\" (faultproxy-cli "
            "speaks plain "
            "http)");
  HttpClient bad("http://[::1", {});
  EXPECT_EQ(bad.send("GET", "/proxies", std::nullopt).error.rfind("parse \"http://[::1/proxies\": ", 0), 0u);
  EXPECT_EQ(normalize_endpoint("127.0.0.1:8474"), "http://127.0.0.1:8474");
  EXPECT_EQ(normalize_endpoint("http://h:1//"), "http://h:1");
}

}  // namespace
}  // namespace faultproxy::cli
