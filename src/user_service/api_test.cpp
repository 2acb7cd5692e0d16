// The HTTP contract of user-service (routes, status codes, headers, error bodies) over the service
// logic with in-memory fakes; the last tests go through common::http::Server on a real socket.
#include "user_service/api.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>
#include <thread>

#include "user_service/fakes.h"
#include "user_service/validation.h"

namespace user_service {
namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using common::http::Request;
using common::http::Response;
using namespace std::chrono_literals;

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.request_deadline = 400ms;
    config_.redis.call_deadline = 40ms;
    config_.mysql.call_deadline = 150ms;
    config_.resilience.probe_interval = 20ms;
    config_.mysql.password = "topsecret";
    service_ = std::make_unique<Service>(io_.get_executor(), config_, store_, cache_, registry_);
    api_ = std::make_unique<Api>(*service_, config_, registry_);
    service_->start();
    const auto end = Clock::now() + 2s;
    while (service_->overall_state() != DepState::up && Clock::now() < end)
      io_.run_one_for(5ms);
  }
  void TearDown() override {
    auto f = asio::co_spawn(io_, service_->stop(), asio::use_future);
    while (f.wait_for(0s) != std::future_status::ready)
      io_.run_one_for(5ms);
  }

  Response Call(bhttp::verb method, std::string target, std::string body = {},
                std::vector<std::pair<std::string, std::string>> headers = {}) {
    Request req{method, target, 11};
    for (auto& [k, v] : headers)
      req.set(k, v);
    req.body() = std::move(body);
    req.prepare_payload();
    const common::http::RequestInfo info{{}, Clock::now()};
    auto f = asio::co_spawn(io_, api_->handle(req, info), asio::use_future);
    while (f.wait_for(0s) != std::future_status::ready)
      io_.run_one_for(5ms);
    return f.get();
  }

  static std::string ErrorOf(const Response& r) {
    const auto v = boost::json::parse(r.body());
    return std::string(v.at("error").as_string());
  }

  asio::io_context io_;
  Config config_;
  common::metrics::Registry registry_;
  fakes::FakeStore store_{io_.get_executor()};
  fakes::FakeCache cache_{io_.get_executor()};
  std::unique_ptr<Service> service_;
  std::unique_ptr<Api> api_;
};

TEST_F(ApiTest, PutGetDeleteRoundTrip) {
  auto r = Call(bhttp::verb::put, "/users/u-1", R"({"name":"Jack"})");
  EXPECT_EQ(r.result_int(), 201);
  EXPECT_EQ(r.body(), R"({"id":"u-1","name":"Jack"})");
  EXPECT_EQ(r[bhttp::field::content_type], "application/json");
  r = Call(bhttp::verb::put, "/users/u-1", R"({"name":"Joe"})");
  EXPECT_EQ(r.result_int(), 200);
  r = Call(bhttp::verb::get, "/users/u-1");
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_EQ(r.body(), R"({"id":"u-1","name":"Joe"})");
  EXPECT_EQ(r["X-Data-Source"], "cache");
  r = Call(bhttp::verb::delete_, "/users/u-1");
  EXPECT_EQ(r.result_int(), 204);
  EXPECT_TRUE(r.body().empty());
  r = Call(bhttp::verb::get, "/users/u-1");
  EXPECT_EQ(r.result_int(), 404);
  EXPECT_EQ(ErrorOf(r), "no such user");
  EXPECT_EQ(Call(bhttp::verb::delete_, "/users/u-1").result_int(), 404);
}

// A write the load balancer received longer ago than the request deadline (it waited in a stopped
// instance's socket; the balancer answered 504 meanwhile) is not executed: an old write must not land
// after a newer one. A recent X-Request-Start changes nothing.
TEST_F(ApiTest, AWriteOlderThanItsDeadlineIsNotExecuted) {
  using namespace std::chrono;
  const auto ms = [](system_clock::time_point t) {
    return "t=" + std::to_string(duration_cast<milliseconds>(t.time_since_epoch()).count());
  };
  const auto old = ms(system_clock::now() - config_.request_deadline - 500ms);
  auto r = Call(bhttp::verb::delete_, "/users/u-9", {}, {{"X-Request-Start", old}});
  EXPECT_EQ(r.result_int(), 503);
  EXPECT_NE(ErrorOf(r).find("not executed"), std::string::npos);
  EXPECT_EQ(r[bhttp::field::retry_after], "1");
  r = Call(bhttp::verb::put, "/users/u-9", R"({"name":"Old"})", {{"X-Request-Start", old}});
  EXPECT_EQ(r.result_int(), 503);
  EXPECT_EQ(store_.rows.count("u-9"), 0u);
  r = Call(bhttp::verb::put, "/users/u-9", R"({"name":"New"})",
           {{"X-Request-Start", ms(system_clock::now())}});
  EXPECT_EQ(r.result_int(), 201);
  // Malformed values are ignored (the deadline runs from when the service read the request).
  r = Call(bhttp::verb::put, "/users/u-9", R"({"name":"Newer"})", {{"X-Request-Start", "t=12x"}});
  EXPECT_EQ(r.result_int(), 200);
  // A read keeps its own arrival time: the balancer may retry it elsewhere with its first header.
  r = Call(bhttp::verb::get, "/users/u-9", {}, {{"X-Request-Start", old}});
  EXPECT_EQ(r.result_int(), 200);
}

TEST_F(ApiTest, OriginReadsAreMarked) {
  store_.rows["u-2"] = StoredUser{"Joe", 3};
  auto r = Call(bhttp::verb::get, "/users/u-2?x=1");
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_EQ(r["X-Data-Source"], "origin");
}

TEST_F(ApiTest, SqlInjectionIsStoredVerbatim) {
  const std::string evil = "'; DROP TABLE user; --";
  auto r = Call(bhttp::verb::put, "/users/%27%3B%20DROP%20TABLE",
                boost::json::serialize(boost::json::object{{"name", evil}}));
  EXPECT_EQ(r.result_int(), 201);
  EXPECT_EQ(store_.rows["'; DROP TABLE"].name, evil);
  r = Call(bhttp::verb::get, "/users/%27%3B%20DROP%20TABLE");
  EXPECT_EQ(boost::json::parse(r.body()).at("name").as_string(), evil);
  EXPECT_EQ(boost::json::parse(r.body()).at("id").as_string(), "'; DROP TABLE");
}

TEST_F(ApiTest, BadInputIs400WithAJsonError) {
  EXPECT_EQ(Call(bhttp::verb::get, "/users/").result_int(), 400);
  EXPECT_EQ(Call(bhttp::verb::get, "/users/" + std::string(256, 'x')).result_int(), 400);
  EXPECT_EQ(Call(bhttp::verb::get, "/users/" + std::string(255, 'x')).result_int(), 404);
  EXPECT_EQ(Call(bhttp::verb::get, "/users/a%0Ab").result_int(), 400);
  EXPECT_EQ(Call(bhttp::verb::get, "/users/a%FF").result_int(), 400);
  for (const std::string& body : {std::string("not json"), std::string("{}"), std::string(R"({"name":""})"),
                                  std::string(R"({"name":3})"), std::string("{\"name\":\"\xC3\"}"),
                                  std::string(""), "{\"name\":\"" + std::string(256, 'n') + "\"}"}) {
    auto r = Call(bhttp::verb::put, "/users/u", body);
    EXPECT_EQ(r.result_int(), 400) << body;
    EXPECT_FALSE(ErrorOf(r).empty());
  }
  EXPECT_TRUE(store_.rows.empty());
}

TEST_F(ApiTest, UnknownRoutesAndMethods) {
  auto r = Call(bhttp::verb::get, "/nope");
  EXPECT_EQ(r.result_int(), 404);
  EXPECT_EQ(ErrorOf(r), "no such route");
  EXPECT_EQ(Call(bhttp::verb::get, "/users").result_int(), 404);
  EXPECT_EQ(Call(bhttp::verb::get, "/users/a/b").result_int(), 404);
  r = Call(bhttp::verb::post, "/users/u-1", "{}");
  EXPECT_EQ(r.result_int(), 405);
  EXPECT_EQ(r[bhttp::field::allow], "GET, PUT, DELETE");
  r = Call(bhttp::verb::post, "/health/ready");
  EXPECT_EQ(r.result_int(), 405);
  EXPECT_EQ(r[bhttp::field::allow], "GET");
}

TEST_F(ApiTest, RequestIdIsEchoedOrGenerated) {
  auto r = Call(bhttp::verb::get, "/health/live", {}, {{"X-Request-Id", "abc-123"}});
  EXPECT_EQ(r["X-Request-Id"], "abc-123");
  auto a = Call(bhttp::verb::get, "/health/live");
  auto b = Call(bhttp::verb::get, "/health/live", {}, {{"X-Request-Id", "bad id with spaces"}});
  EXPECT_FALSE(a["X-Request-Id"].empty());
  EXPECT_FALSE(b["X-Request-Id"].empty());
  EXPECT_NE(a["X-Request-Id"], b["X-Request-Id"]);
  EXPECT_NE(b["X-Request-Id"], "bad id with spaces");
}

TEST_F(ApiTest, UnavailableIs503WithRetryAfter) {
  store_.behaviour.mode = fakes::Behaviour::fail;
  auto r = Call(bhttp::verb::put, "/users/u", R"({"name":"x"})");
  EXPECT_EQ(r.result_int(), 503);
  EXPECT_EQ(r[bhttp::field::retry_after], "1");
  EXPECT_NE(ErrorOf(r).find("MariaDB"), std::string::npos);
  r = Call(bhttp::verb::get, "/users/u");
  EXPECT_EQ(r.result_int(), 503);
  EXPECT_EQ(r[bhttp::field::retry_after], "1");
  r = Call(bhttp::verb::delete_, "/users/u");
  EXPECT_EQ(r.result_int(), 503);
}

TEST_F(ApiTest, StaleEntryIsMarked) {
  store_.rows["u"] = StoredUser{"Jack", 5};
  cache_.seed("u", CacheEntry{5, false, "Jack"});
  cache_.master.behaviour.mode = fakes::Behaviour::fail;
  EXPECT_EQ(Call(bhttp::verb::put, "/users/u", R"({"name":"Joe"})").result_int(), 200);
  store_.behaviour.mode = fakes::Behaviour::fail;
  auto r = Call(bhttp::verb::get, "/users/u");
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_EQ(r["X-Cache-Stale"], "true");
  EXPECT_EQ(r["X-Data-Source"], "cache");
}

TEST_F(ApiTest, HealthMetricsAndConfig) {
  auto r = Call(bhttp::verb::get, "/health/live");
  EXPECT_EQ(r.result_int(), 200);
  r = Call(bhttp::verb::get, "/health/ready");
  EXPECT_EQ(r.result_int(), 200);
  const auto h = boost::json::parse(r.body());
  EXPECT_EQ(h.at("status").as_string(), "up");
  EXPECT_EQ(h.at("dependencies").at("mysql").at("state").as_string(), "up");
  EXPECT_TRUE(h.at("dependencies").at("redis-master").as_object().contains("since"));
  r = Call(bhttp::verb::get, "/config");
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_EQ(r.body().find("topsecret"), std::string::npos);
  const auto c = boost::json::parse(r.body());
  EXPECT_EQ(c.at("request_deadline_ms").as_int64(), 400);
  EXPECT_EQ(c.at("mysql").at("call_deadline_ms").as_int64(), 150);
  Call(bhttp::verb::get, "/users/nobody");
  r = Call(bhttp::verb::get, "/metrics");
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_NE(
      r.body().find("user_service_http_requests_total{route=\"/users/{id}\",method=\"GET\",status=\"404\","
                    "source=\"origin\"} 1"),
      std::string::npos)
      << r.body();
  EXPECT_NE(r.body().find("user_service_http_request_duration_seconds_bucket"), std::string::npos);
}

TEST_F(ApiTest, ReadinessIs503WhenNothingWorks) {
  store_.behaviour.mode = fakes::Behaviour::fail;
  cache_.master.behaviour.mode = fakes::Behaviour::fail;
  cache_.replica.behaviour.mode = fakes::Behaviour::fail;
  const auto end = Clock::now() + 2s;
  while (service_->ready() && Clock::now() < end)
    io_.run_one_for(5ms);
  auto r = Call(bhttp::verb::get, "/health/ready");
  EXPECT_EQ(r.result_int(), 503);
  EXPECT_EQ(r[bhttp::field::retry_after], "1");
  EXPECT_EQ(boost::json::parse(r.body()).at("dependencies").at("mysql").at("state").as_string(), "down");
}

// Through the real HTTP server: the 64 KiB body limit and the error format of server-side errors.
TEST_F(ApiTest, BodyOver64KiBIs413OverTheWire) {
  common::http::Server server(
      io_.get_executor(), api_->server_settings(),
      [this](Request& req, const common::http::RequestInfo& info) { return api_->handle(req, info); },
      api_->server_errors());
  ASSERT_FALSE(server.listen({asio::ip::make_address("127.0.0.1"), 0}));
  server.start();
  const auto port = server.local_endpoint().port();
  // `reply` belongs to the client thread until it is joined; `answered` tells the loop below when the
  // whole error body has arrived.
  std::string reply;
  std::atomic<bool> answered{false};
  std::thread client([&] {
    asio::io_context cio;
    asio::ip::tcp::socket s(cio);
    s.connect({asio::ip::make_address("127.0.0.1"), port});
    const std::string body = "{\"name\":\"" + std::string(70 * 1024, 'a') + "\"}";
    const std::string head =
        "PUT /users/big HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n";
    boost::system::error_code ec;
    asio::write(s, asio::buffer(head), ec);
    asio::write(s, asio::buffer(body), ec);
    char buf[4096];
    for (;;) {
      const auto n = s.read_some(asio::buffer(buf), ec);
      if (ec) break;
      reply.append(buf, n);
      if (reply.find('}') != std::string::npos) answered = true;
    }
  });
  const auto end = Clock::now() + 5s;
  while (!answered && Clock::now() < end)
    io_.run_one_for(5ms);
  auto f = asio::co_spawn(io_, server.shutdown(100ms), asio::use_future);
  while (f.wait_for(0s) != std::future_status::ready)
    io_.run_one_for(5ms);
  client.join();
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 413")) << reply.substr(0, 200);
  EXPECT_NE(reply.find("{\"error\":\"request body too large\"}"), std::string::npos);
  EXPECT_NE(reply.find("X-Request-Id: "), std::string::npos);
  EXPECT_TRUE(store_.rows.empty());
}

}  // namespace
}  // namespace user_service
