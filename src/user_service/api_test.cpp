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
#include <functional>
#include <thread>

#include "testing/event_loop.h"
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
    Start();
  }
  void Start() {
    service_ = std::make_unique<Service>(io_.get_executor(), config_, store_, cache_, *registry_);
    api_ = std::make_unique<Api>(*service_, config_, *registry_);
    service_->start();
    WaitUntil([&] { return service_->overall_state() == DepState::up; });
  }
  void TearDown() override { Stop(); }
  void Stop() { testing_support::run(io_, service_->stop()); }
  // A service and API with other settings.
  void Restart(const std::function<void(Config&)>& change) {
    Stop();
    api_.reset();
    service_.reset();
    registry_ = std::make_unique<common::metrics::Registry>();  // the old service's collectors go too
    io_.restart();  // it may have run out of work while the old service stopped
    change(config_);
    Start();
  }
  bool WaitUntil(const std::function<bool()>& cond, Clock::duration limit = 2s) {
    return testing_support::wait_for(io_, cond, limit);
  }

  Response Call(bhttp::verb method, std::string target, std::string body = {},
                std::vector<std::pair<std::string, std::string>> headers = {},
                Api::Listener listener = Api::Listener::public_port) {
    Request req{method, target, 11};
    if (method == bhttp::verb::put) req.set(bhttp::field::content_type, "application/json");
    for (auto& [k, v] : headers)
      req.set(k, v);
    req.body() = std::move(body);
    req.prepare_payload();
    const common::http::RequestInfo info{{}, Clock::now()};
    return testing_support::run(io_, api_->handle(req, info, listener));
  }
  Response Admin(std::string target) {
    return Call(bhttp::verb::get, std::move(target), {}, {}, Api::Listener::admin);
  }

  static std::string ErrorOf(const Response& r) {
    const auto v = boost::json::parse(r.body());
    return std::string(v.at("error").as_string());
  }
  // A header the answer writes, a field or a line ("" if none).
  static std::string Header(const Response& r, std::string_view name) {
    return std::string(r.line_value(name).value_or(""));
  }

  asio::io_context io_;
  Config config_;
  std::unique_ptr<common::metrics::Registry> registry_ = std::make_unique<common::metrics::Registry>();
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
  EXPECT_EQ(Header(r, "X-Data-Source"), "cache");
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
  EXPECT_EQ(Header(r, "X-Data-Source"), "origin");
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
  EXPECT_EQ(Call(bhttp::verb::get, "/users/a/b").result_int(), 404);
  EXPECT_EQ(Call(bhttp::verb::get, "/userss").result_int(), 404);
  r = Call(bhttp::verb::post, "/users/u-1", "{}");
  EXPECT_EQ(r.result_int(), 405);
  EXPECT_EQ(r[bhttp::field::allow], "GET, HEAD, PUT, DELETE");
  r = Call(bhttp::verb::post, "/health/ready");
  EXPECT_EQ(r.result_int(), 405);
  EXPECT_EQ(r[bhttp::field::allow], "GET, HEAD");
  r = Call(bhttp::verb::put, "/users", R"({"name":"x"})");
  EXPECT_EQ(r.result_int(), 405);
  EXPECT_EQ(r[bhttp::field::allow], "GET, HEAD");
}

TEST_F(ApiTest, RequestIdIsEchoedOrGenerated) {
  auto r = Call(bhttp::verb::get, "/health/live", {}, {{"X-Request-Id", "abc-123"}});
  EXPECT_EQ(Header(r, "X-Request-Id"), "abc-123");
  auto a = Call(bhttp::verb::get, "/health/live");
  auto b = Call(bhttp::verb::get, "/health/live", {}, {{"X-Request-Id", "bad id with spaces"}});
  EXPECT_FALSE(Header(a, "X-Request-Id").empty());
  EXPECT_FALSE(Header(b, "X-Request-Id").empty());
  EXPECT_NE(Header(a, "X-Request-Id"), Header(b, "X-Request-Id"));
  EXPECT_NE(Header(b, "X-Request-Id"), "bad id with spaces");
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
  EXPECT_EQ(Header(r, "X-Cache-Stale"), "true");
  EXPECT_EQ(Header(r, "X-Data-Source"), "cache");
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
  r = Admin("/config");
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_EQ(r.body().find("topsecret"), std::string::npos);
  const auto c = boost::json::parse(r.body());
  EXPECT_EQ(c.at("request_deadline_ms").as_int64(), 400);
  EXPECT_EQ(c.at("mysql").at("call_deadline_ms").as_int64(), 150);
  Call(bhttp::verb::get, "/users/nobody");
  r = Admin("/metrics");
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_NE(
      r.body().find("user_service_http_requests_total{route=\"/users/{id}\",method=\"GET\",status=\"404\","
                    "source=\"origin\"} 1"),
      std::string::npos)
      << r.body();
  EXPECT_NE(r.body().find("user_service_http_request_duration_seconds_bucket"), std::string::npos);
}

TEST_F(ApiTest, OperatorsRoutesAreOnlyOnTheAdminListenerAndUsersOnlyOnThePublicOne) {
  EXPECT_EQ(Call(bhttp::verb::get, "/metrics").result_int(), 404);
  EXPECT_EQ(Call(bhttp::verb::get, "/config").result_int(), 404);
  EXPECT_EQ(Admin("/users/u-1").result_int(), 404);
  EXPECT_EQ(Admin("/users").result_int(), 404);
  for (const char* both : {"/health/live", "/health/ready"}) {
    EXPECT_EQ(Call(bhttp::verb::get, both).result_int(), 200) << both;
    EXPECT_EQ(Admin(both).result_int(), 200) << both;
  }
  EXPECT_EQ(Admin("/metrics").result_int(), 200);
  EXPECT_EQ(Admin("/config").result_int(), 200);
}

TEST_F(ApiTest, ReloadChangesTheDeadlinesAndWhatConfigShows) {
  Config next = config_;
  next.request_deadline = 250ms;
  next.resilience.retry_after_s = 7;
  next.redis.ttl = std::chrono::seconds(60);
  const Reload r = plan_reload(config_, next);
  EXPECT_EQ(r.applied, (std::vector<std::string>{"request_deadline_ms", "resilience.retry_after_s"}));
  EXPECT_EQ(r.need_restart, (std::vector<std::string>{"redis.ttl_s"}));
  service_->reload(r.effective);
  api_->reload(r.effective);
  const auto c = boost::json::parse(Admin("/config").body());
  EXPECT_EQ(c.at("request_deadline_ms").as_int64(), 250);
  EXPECT_EQ(c.at("redis").at("ttl_s").as_int64(), 3600);
  // The new Retry-After: MariaDB refuses, the write is answered 503.
  store_.behaviour.fail_next = 1;
  const auto w = Call(bhttp::verb::put, "/users/rl", R"({"name":"Ann"})");
  EXPECT_EQ(w.result_int(), 503);
  EXPECT_EQ(w[bhttp::field::retry_after], "7");
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

// ---- HTTP semantics (issue 14) ----------------------------------------------------------------

TEST_F(ApiTest, PutNeedsJsonContentType) {
  for (const char* type :
       {"", "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin1"}) {
    auto r = Call(bhttp::verb::put, "/users/ct", R"({"name":"x"})", {{"Content-Type", type}});
    EXPECT_EQ(r.result_int(), 415) << type;
    EXPECT_NE(ErrorOf(r).find("UTF-8") == std::string::npos ? ErrorOf(r).find("application/json") : 0,
              std::string::npos)
        << type;
  }
  EXPECT_TRUE(store_.rows.empty());
  auto r = Call(bhttp::verb::put, "/users/ct", R"({"name":"x"})",
                {{"Content-Type", "application/json; charset=utf-8"}});
  EXPECT_EQ(r.result_int(), 201);
  // DELETE has no body: no Content-Type needed.
  EXPECT_EQ(Call(bhttp::verb::delete_, "/users/ct").result_int(), 204);
}

TEST_F(ApiTest, PutBodyNamesDuplicateAndUnknownMembers) {
  auto r = Call(bhttp::verb::put, "/users/u", R"({"name":"A","name":"B"})");
  EXPECT_EQ(r.result_int(), 400);
  EXPECT_NE(ErrorOf(r).find(R"(duplicate members: "name")"), std::string::npos) << ErrorOf(r);
  r = Call(bhttp::verb::put, "/users/u", R"({"name":"A","email":"a@b","nick":"x"})");
  EXPECT_EQ(r.result_int(), 400);
  EXPECT_NE(ErrorOf(r).find(R"(unknown members: "email", "nick")"), std::string::npos) << ErrorOf(r);
  EXPECT_TRUE(store_.rows.empty());
  // A user as GET returns it can be sent back.
  r = Call(bhttp::verb::put, "/users/u", R"({"id":"u","name":"A"})");
  EXPECT_EQ(r.result_int(), 201);
}

TEST_F(ApiTest, HeadIsGetWithoutTheBodyAndEveryUserAnswerHasAnETag) {
  auto r = Call(bhttp::verb::put, "/users/h", R"({"name":"Jack"})");
  ASSERT_EQ(r.result_int(), 201);
  const std::string tag = "\"v" + std::to_string(store_.rows["h"].version) + "\"";
  EXPECT_EQ(Header(r, "ETag"), tag);
  r = Call(bhttp::verb::get, "/users/h");
  EXPECT_EQ(Header(r, "ETag"), tag);
  EXPECT_EQ(Header(r, "X-Data-Source"), "cache");
  // The handler answers HEAD as GET (the server sends the header only: see the wire test below).
  r = Call(bhttp::verb::head, "/users/h");
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_EQ(Header(r, "ETag"), tag);
  EXPECT_EQ(Header(r, "X-Data-Source"), "cache");
  EXPECT_EQ(Call(bhttp::verb::head, "/users/nobody").result_int(), 404);
  EXPECT_EQ(Call(bhttp::verb::head, "/health/live").result_int(), 200);
  // From MariaDB: the row's version.
  store_.rows["o"] = StoredUser{"Olga", 7};
  r = Call(bhttp::verb::get, "/users/o");
  EXPECT_EQ(Header(r, "X-Data-Source"), "origin");
  EXPECT_EQ(Header(r, "ETag"), "\"v7\"");
  r = Call(bhttp::verb::put, "/users/h", R"({"name":"Joe"})");
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_EQ(Header(r, "ETag"), "\"v" + std::to_string(store_.rows["h"].version) + "\"");
  EXPECT_NE(Header(r, "ETag"), tag);
  r = Admin("/metrics");
  EXPECT_NE(r.body().find("route=\"/users/{id}\",method=\"HEAD\",status=\"200\""), std::string::npos);
}

TEST_F(ApiTest, IfNoneMatchOnGetIs304) {
  store_.rows["n"] = StoredUser{"Nan", 9};
  auto r = Call(bhttp::verb::get, "/users/n", {}, {{"If-None-Match", "\"v9\""}});
  EXPECT_EQ(r.result_int(), 304);
  EXPECT_TRUE(r.body().empty());
  EXPECT_EQ(Header(r, "ETag"), "\"v9\"");
  EXPECT_EQ(Call(bhttp::verb::get, "/users/n", {}, {{"If-None-Match", "\"v8\", W/\"v9\""}}).result_int(),
            304);
  EXPECT_EQ(Call(bhttp::verb::head, "/users/n", {}, {{"If-None-Match", "*"}}).result_int(), 304);
  r = Call(bhttp::verb::get, "/users/n", {}, {{"If-None-Match", "\"v8\""}});
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_EQ(r.body(), R"({"id":"n","name":"Nan"})");
  EXPECT_EQ(Call(bhttp::verb::get, "/users/none", {}, {{"If-None-Match", "*"}}).result_int(), 404);
  r = Call(bhttp::verb::get, "/users/n", {}, {{"If-None-Match", "v9"}});
  EXPECT_EQ(r.result_int(), 400);
}

TEST_F(ApiTest, IfMatchMakesPutAndDeleteConditional) {
  ASSERT_EQ(Call(bhttp::verb::put, "/users/c", R"({"name":"A"})").result_int(), 201);
  const std::uint64_t v1 = store_.rows["c"].version;
  const std::string t1 = "\"v" + std::to_string(v1) + "\"";
  auto r = Call(bhttp::verb::put, "/users/c", R"({"name":"B"})", {{"If-Match", t1}});
  EXPECT_EQ(r.result_int(), 200);
  const std::string t2 = Header(r, "ETag");
  EXPECT_NE(t2, t1);
  // The same If-Match again: the version moved on.
  r = Call(bhttp::verb::put, "/users/c", R"({"name":"C"})", {{"If-Match", t1}});
  EXPECT_EQ(r.result_int(), 412);
  EXPECT_EQ(Header(r, "ETag"), t2);
  EXPECT_NE(ErrorOf(r).find("current version is " + t2.substr(1, t2.size() - 2)), std::string::npos)
      << ErrorOf(r);
  EXPECT_EQ(boost::json::parse(r.body()).at("outcome").as_string(), "not_applied");
  EXPECT_EQ(store_.rows["c"].name, "B");
  // Weak tags never match for If-Match; a list matches if any tag does; * if the user exists.
  EXPECT_EQ(Call(bhttp::verb::put, "/users/c", R"({"name":"C"})", {{"If-Match", "W/" + t2}}).result_int(),
            412);
  EXPECT_EQ(
      Call(bhttp::verb::put, "/users/c", R"({"name":"C"})", {{"If-Match", t1 + ", " + t2}}).result_int(),
      200);
  EXPECT_EQ(Call(bhttp::verb::put, "/users/c", R"({"name":"D"})", {{"If-Match", "*"}}).result_int(), 200);
  EXPECT_EQ(store_.rows["c"].name, "D");
  // If-Match on a user that does not exist: 412, nothing created.
  r = Call(bhttp::verb::put, "/users/absent", R"({"name":"X"})", {{"If-Match", "*"}});
  EXPECT_EQ(r.result_int(), 412);
  EXPECT_FALSE(r.line_value("ETag"));
  EXPECT_EQ(store_.rows.count("absent"), 0u);
  // DELETE: with an old version 412 and the user stays; with the current one 204.
  const std::string now = "\"v" + std::to_string(store_.rows["c"].version) + "\"";
  EXPECT_EQ(Call(bhttp::verb::delete_, "/users/c", {}, {{"If-Match", t1}}).result_int(), 412);
  EXPECT_EQ(store_.rows.count("c"), 1u);
  EXPECT_EQ(Call(bhttp::verb::delete_, "/users/c", {}, {{"If-Match", now}}).result_int(), 204);
  EXPECT_EQ(Call(bhttp::verb::get, "/users/c").result_int(), 404);
  EXPECT_EQ(Call(bhttp::verb::delete_, "/users/c", {}, {{"If-Match", now}}).result_int(), 412);
  // Malformed or unsupported conditions are 400, never ignored.
  EXPECT_EQ(Call(bhttp::verb::put, "/users/c", R"({"name":"X"})", {{"If-Match", "v1"}}).result_int(), 400);
  EXPECT_EQ(Call(bhttp::verb::put, "/users/c", R"({"name":"X"})", {{"If-None-Match", "\"v1\""}}).result_int(),
            400);
  EXPECT_EQ(Call(bhttp::verb::delete_, "/users/c", {}, {{"If-None-Match", "*"}}).result_int(), 400);
  EXPECT_EQ(Call(bhttp::verb::put, "/users/c", R"({"name":"X"})", {{"If-Match", "*"}, {"If-None-Match", "*"}})
                .result_int(),
            412);
  EXPECT_EQ(store_.rows.count("c"), 0u);
}

TEST_F(ApiTest, IfNoneMatchStarOnPutCreatesOnly) {
  auto r = Call(bhttp::verb::put, "/users/once", R"({"name":"First"})", {{"If-None-Match", "*"}});
  EXPECT_EQ(r.result_int(), 201);
  const std::string tag = Header(r, "ETag");
  r = Call(bhttp::verb::put, "/users/once", R"({"name":"Second"})", {{"If-None-Match", "*"}});
  EXPECT_EQ(r.result_int(), 412);
  EXPECT_EQ(Header(r, "ETag"), tag);
  EXPECT_EQ(store_.rows["once"].name, "First");
  EXPECT_EQ(Call(bhttp::verb::get, "/users/once").body(), R"({"id":"once","name":"First"})");
}

// A 412 brings the cache to what MariaDB holds: a value cached for a user whose row is gone (a DELETE
// whose answer was lost) would otherwise keep showing a version no If-Match can ever match.
TEST_F(ApiTest, APreconditionFailureRepairsACachedValueWhoseRowIsGone) {
  cache_.seed("ghost", CacheEntry{5, false, "Boo"});
  auto r = Call(bhttp::verb::get, "/users/ghost");
  ASSERT_EQ(r.result_int(), 200);
  ASSERT_EQ(Header(r, "ETag"), "\"v5\"");
  r = Call(bhttp::verb::put, "/users/ghost", R"({"name":"Boo2"})", {{"If-Match", "\"v5\""}});
  EXPECT_EQ(r.result_int(), 412);
  EXPECT_NE(ErrorOf(r).find("no such user"), std::string::npos);
  EXPECT_EQ(Call(bhttp::verb::get, "/users/ghost").result_int(), 404);
  EXPECT_TRUE(cache_.master.entries["ghost"].tombstone);
}

// Error bodies carry the request id and what the client needs; never a dependency's own words.
TEST_F(ApiTest, ErrorBodiesCarryTheRequestIdAndNoInternals) {
  auto r = Call(bhttp::verb::get, "/users/%ZZ", {}, {{"X-Request-Id", "rid-1"}});
  EXPECT_EQ(r.result_int(), 400);
  EXPECT_EQ(boost::json::parse(r.body()).at("request_id").as_string(), "rid-1");
  r = Call(bhttp::verb::get, "/nope");
  EXPECT_EQ(boost::json::parse(r.body()).at("request_id").as_string(), Header(r, "X-Request-Id"));

  store_.behaviour.mode = fakes::Behaviour::fail;  // "connection refused", nothing sent
  r = Call(bhttp::verb::put, "/users/e", R"({"name":"x"})");
  EXPECT_EQ(r.result_int(), 503);
  auto body = boost::json::parse(r.body());
  EXPECT_EQ(body.at("request_id").as_string(), Header(r, "X-Request-Id"));
  EXPECT_EQ(body.at("outcome").as_string(), "not_applied");
  EXPECT_NE(ErrorOf(r).find("nothing was written"), std::string::npos) << r.body();
  EXPECT_EQ(r.body().find("refused"), std::string::npos) << r.body();
  r = Call(bhttp::verb::get, "/users/e");
  EXPECT_EQ(r.result_int(), 503);
  EXPECT_EQ(r.body().find("refused"), std::string::npos) << r.body();
  EXPECT_FALSE(boost::json::parse(r.body()).as_object().contains("outcome"));
  // Once the breaker is open MariaDB is not asked: the body says so (and still nothing written).
  ASSERT_TRUE(WaitUntil([&] { return service_->mysql().health().breaker_open(); }));
  r = Call(bhttp::verb::delete_, "/users/e");
  EXPECT_EQ(r.result_int(), 503);
  EXPECT_NE(ErrorOf(r).find("MariaDB unavailable"), std::string::npos) << r.body();
  EXPECT_EQ(boost::json::parse(r.body()).at("outcome").as_string(), "not_applied");
}

// The connection was lost after MariaDB had the statement: the write may have been applied. The
// answer says so, and that repeating the PUT is safe.
TEST_F(ApiTest, AWriteWithAnUnknownOutcomeSaysSoAndThatRetryingIsSafe) {
  store_.behaviour.ack_lost = true;
  store_.behaviour.ack_failure = Failure::unavailable;  // "Lost connection to server during query"
  auto r = Call(bhttp::verb::put, "/users/u", R"({"name":"Maybe"})");
  EXPECT_EQ(r.result_int(), 503);
  EXPECT_EQ(r[bhttp::field::retry_after], "1");
  const auto body = boost::json::parse(r.body());
  EXPECT_EQ(body.at("outcome").as_string(), "unknown");
  EXPECT_NE(ErrorOf(r).find("may or may not have been applied"), std::string::npos) << r.body();
  EXPECT_NE(ErrorOf(r).find("retrying the same PUT is safe"), std::string::npos) << r.body();
  EXPECT_EQ(r.body().find("Lost connection"), std::string::npos) << r.body();
  // And it is: the retry lands on the same user.
  store_.behaviour.ack_lost = false;
  r = Call(bhttp::verb::put, "/users/u", R"({"name":"Maybe"})");
  EXPECT_EQ(r.result_int(), 200);  // the first one had been applied
  EXPECT_EQ(Call(bhttp::verb::get, "/users/u").body(), R"({"id":"u","name":"Maybe"})");
}

TEST_F(ApiTest, ListsUsersByPagesInByteOrder) {
  for (const char* id : {"b", "a", "B", "a ", "\xC3\xA9", "c"})
    store_.rows[id] = StoredUser{std::string("n-") + id, 1};
  auto r = Call(bhttp::verb::get, "/users?limit=2");
  ASSERT_EQ(r.result_int(), 200) << r.body();
  EXPECT_EQ(Header(r, "X-Data-Source"), "origin");
  EXPECT_EQ(r.body(), R"({"users":[{"id":"B","name":"n-B"},{"id":"a","name":"n-a"}],"next":"a"})");
  r = Call(bhttp::verb::get, "/users?limit=2&after=a");
  EXPECT_EQ(r.body(), R"({"users":[{"id":"a ","name":"n-a "},{"id":"b","name":"n-b"}],"next":"b"})");
  r = Call(bhttp::verb::get, "/users?after=b&limit=2");
  EXPECT_EQ(r.body(),
            "{\"users\":[{\"id\":\"c\",\"name\":\"n-c\"},{\"id\":\"\xC3\xA9\",\"name\":\"n-\xC3\xA9\"}],"
            "\"next\":null}");
  r = Call(bhttp::verb::get, "/users");
  EXPECT_EQ(boost::json::parse(r.body()).at("users").as_array().size(), 6u);
  EXPECT_EQ(Call(bhttp::verb::head, "/users?limit=1").result_int(), 200);
  for (const char* bad : {"/users?limit=0", "/users?limit=1001", "/users?page=2", "/users?after=%FF"}) {
    r = Call(bhttp::verb::get, bad);
    EXPECT_EQ(r.result_int(), 400) << bad;
    EXPECT_FALSE(ErrorOf(r).empty());
  }
  store_.behaviour.mode = fakes::Behaviour::fail;
  r = Call(bhttp::verb::get, "/users");
  EXPECT_EQ(r.result_int(), 503);
  EXPECT_EQ(r[bhttp::field::retry_after], "1");
  EXPECT_NE(ErrorOf(r).find("cannot list users now"), std::string::npos);
}

// A page is one statement that may take the list's whole deadline (list_deadline_ms), not the
// budget of a single user's read (mysql.call_deadline_ms).
TEST_F(ApiTest, ListHasItsOwnDeadline) {
  Restart([](Config& c) {
    c.list_deadline = 900ms;
    c.resilience.breaker_failures = 1000;  // the slow probes must not open the breaker here
  });
  store_.rows["a"] = StoredUser{"A", 1};
  store_.behaviour.delay = 500ms;  // over a user read's 150 ms and the request deadline (400 ms)
  auto started = Clock::now();
  auto r = Call(bhttp::verb::get, "/users");
  EXPECT_EQ(r.result_int(), 200) << r.body();
  EXPECT_GE(Clock::now() - started, 500ms);
  r = Call(bhttp::verb::get, "/users/a");
  EXPECT_EQ(r.result_int(), 503);
  store_.behaviour.mode = fakes::Behaviour::hang;
  started = Clock::now();
  r = Call(bhttp::verb::get, "/users");
  const auto took = Clock::now() - started;
  EXPECT_EQ(r.result_int(), 503);
  EXPECT_NE(ErrorOf(r).find("did not answer within the deadline"), std::string::npos) << r.body();
  EXPECT_GE(took, 850ms);
  EXPECT_LT(took, 900ms + 1s);  // a loaded machine's slack
}

// Retry-After says when the service expects to call MariaDB again: while its breaker is open, at the
// next probe (never less than resilience.retry_after_s).
TEST_F(ApiTest, RetryAfterReflectsTheNextProbe) {
  Restart([](Config& c) { c.resilience.probe_interval = 5s; });
  store_.behaviour.mode = fakes::Behaviour::fail;
  for (int i = 0; i < 3; ++i)
    Call(bhttp::verb::put, "/users/r", R"({"name":"x"})");
  ASSERT_TRUE(service_->mysql().health().breaker_open());
  auto r = Call(bhttp::verb::put, "/users/r", R"({"name":"x"})");
  EXPECT_EQ(r.result_int(), 503);
  const int after = std::stoi(std::string(r[bhttp::field::retry_after]));
  EXPECT_GE(after, 3);  // the next probe is ~5 s after the first, which ran at start
  EXPECT_LE(after, 5);
  r = Call(bhttp::verb::get, "/users/r");
  EXPECT_EQ(std::stoi(std::string(r[bhttp::field::retry_after])), after);
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
  // The body carries the request id of the header.
  const auto id_at = reply.find("X-Request-Id: ");
  ASSERT_NE(id_at, std::string::npos);
  const std::string id = reply.substr(id_at + 14, reply.find("\r\n", id_at) - id_at - 14);
  EXPECT_NE(reply.find("{\"error\":\"request body too large\",\"request_id\":\"" + id + "\"}"),
            std::string::npos)
      << reply;
  EXPECT_TRUE(store_.rows.empty());
}

// ---- deadline propagation and load shedding (issue 14 section 3) --------------------------------

TEST_F(ApiTest, RequestTimeoutHeaderMustBeWholeMilliseconds) {
  for (const char* bad : {"-1", "1.5", "soon", ""}) {
    const auto r = Call(bhttp::verb::get, "/users/u", {}, {{"X-Request-Timeout-Ms", bad}});
    EXPECT_EQ(r.result_int(), 400) << bad;
    EXPECT_NE(ErrorOf(r).find("X-Request-Timeout-Ms"), std::string::npos) << bad;
    EXPECT_FALSE(Header(r, "X-Request-Id").empty());
  }
  // Not on routes it does not apply to.
  EXPECT_EQ(Call(bhttp::verb::get, "/health/live", {}, {{"X-Request-Timeout-Ms", "x"}}).result_int(), 200);
  // Twice: which one would the client mean?
  Request twice{bhttp::verb::get, "/users/u", 11};
  twice.insert("X-Request-Timeout-Ms", "100");
  twice.insert("X-Request-Timeout-Ms", "200");
  const common::http::RequestInfo info{{}, Clock::now()};
  const auto r = testing_support::run(io_, api_->handle(twice, info));
  EXPECT_EQ(r.result_int(), 400);
  EXPECT_NE(ErrorOf(r).find("X-Request-Timeout-Ms"), std::string::npos);
}

TEST_F(ApiTest, ASpentBudgetIs504AtOnceAndNothingIsExecuted) {
  const int calls = store_.calls;
  auto r = Call(bhttp::verb::put, "/users/u", R"({"name":"x"})",
                {{"X-Request-Timeout-Ms", "0"}, {"X-Request-Id", "req-504"}});
  EXPECT_EQ(r.result_int(), 504);
  EXPECT_EQ(Header(r, "X-Request-Id"), "req-504");
  const auto body = boost::json::parse(r.body());
  EXPECT_EQ(body.at("request_id").as_string(), "req-504");
  EXPECT_EQ(body.at("outcome").as_string(), "not_applied");
  EXPECT_NE(ErrorOf(r).find("X-Request-Timeout-Ms"), std::string::npos);
  r = Call(bhttp::verb::get, "/users?limit=5", {}, {{"X-Request-Timeout-Ms", "0"}});
  EXPECT_EQ(r.result_int(), 504);
  EXPECT_EQ(store_.calls, calls);
}

TEST_F(ApiTest, TheClientsBudgetShortensTheDeadlineNeverLengthensIt) {
  Restart([](Config& c) {
    c.request_deadline = 400ms;
    c.mysql.call_deadline = 400ms;
  });
  store_.behaviour.mode = fakes::Behaviour::hang;
  auto t0 = Clock::now();
  auto r = Call(bhttp::verb::get, "/users/u", {}, {{"X-Request-Timeout-Ms", "50"}});
  const auto short_budget = Clock::now() - t0;
  EXPECT_EQ(r.result_int(), 503);
  EXPECT_GE(short_budget, 45ms);
  EXPECT_LT(short_budget, 250ms);  // the configured 400 ms would be far above
  t0 = Clock::now();
  r = Call(bhttp::verb::get, "/users/u2", {}, {{"X-Request-Timeout-Ms", "999999999999"}});
  const auto long_budget = Clock::now() - t0;
  EXPECT_EQ(r.result_int(), 503);
  EXPECT_GE(long_budget, 350ms);
  EXPECT_LT(long_budget, 1000ms);  // the configured deadline, not the client's
}

TEST_F(ApiTest, ShedRequestsGet503AtOnceSayingSo) {
  Restart([](Config& c) {
    c.mysql.max_in_flight = 1;
    c.mysql.max_queued = 0;
  });
  store_.behaviour.delay = 100ms;  // under the MariaDB budget
  // One write holds the only turn at MariaDB.
  Request first{bhttp::verb::put, "/users/first", 11};
  first.set(bhttp::field::content_type, "application/json");
  first.body() = R"({"name":"x"})";
  first.prepare_payload();
  const common::http::RequestInfo first_info{{}, Clock::now()};  // handle() keeps a reference
  auto held = asio::co_spawn(io_, api_->handle(first, first_info), asio::use_future);
  testing_support::settle(io_, 20ms);
  const auto t0 = Clock::now();
  auto r = Call(bhttp::verb::put, "/users/second", R"({"name":"y"})");
  EXPECT_LT(Clock::now() - t0, 100ms);
  EXPECT_EQ(r.result_int(), 503);
  EXPECT_FALSE(r[bhttp::field::retry_after].empty());
  EXPECT_NE(ErrorOf(r).find("shed"), std::string::npos) << r.body();
  EXPECT_EQ(boost::json::parse(r.body()).at("outcome").as_string(), "not_applied");
  r = Call(bhttp::verb::get, "/users/nobody");
  EXPECT_EQ(r.result_int(), 503);
  EXPECT_NE(ErrorOf(r).find("shed"), std::string::npos) << r.body();
  ASSERT_TRUE(WaitUntil([&] { return held.wait_for(0s) == std::future_status::ready; }));
  EXPECT_EQ(held.get().result_int(), 201);
  r = Admin("/metrics");
  EXPECT_NE(r.body().find("user_service_requests_shed_total{reason=\"queue_full\"} 2"), std::string::npos);
}

}  // namespace
}  // namespace user_service
