// user-service end to end: the real binary against real Redis master+replica and MariaDB started by
// src/testing, with the default deadlines (request 1000 ms, Redis 100 ms, MariaDB 500 ms). Failures
// are produced by stopping servers (connection refused) and pausing them with SIGSTOP (a blackhole:
// connections are accepted, nothing answers). Through-proxy faults are the catalog's (features/).
// Time bounds are derived from the configured deadlines, with generous margins for a loaded
// 2-core machine running ASan builds.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "testing/servers.h"

extern char** environ;

namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing_support::MariaDbServer;
using testing_support::RedisServer;

constexpr auto kRequestDeadline = 1000ms;
constexpr auto kMysqlDeadline = 500ms;
constexpr auto kRedisDeadline = 100ms;
constexpr auto kSlack = 400ms;  // scheduling margin on a loaded machine
constexpr auto kRecovery = 1000ms;
// A cached read while MariaDB is away: it must not have waited for MariaDB, i.e. it took well under
// MariaDB's deadline (a healthy one takes a millisecond; this is what a loaded machine may add).
constexpr auto kCachedWhileMariaDbAway = kMysqlDeadline / 2;
// MariaDB back after an outage: the pool's next connect attempt comes within the reconnect backoff's
// cap (400 ms), the next probe within its period (200 ms) closes the breaker; an attempt or probe
// under way when it returns may take up to the MariaDB deadline. The contract's 1 s is met with
// room to spare on an idle machine; the bound adds one MariaDB deadline and the slack.
constexpr auto kMariaDbRecovery = kRecovery + kMysqlDeadline + kSlack;
// Failing fast once MariaDB's breaker is open (or MariaDB refuses connections): a few milliseconds
// on an idle machine; the bound only has to show that nothing waited for MariaDB's deadline.
constexpr auto kFailFast = kMysqlDeadline / 5;

struct Reply {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  Clock::duration took{};
  std::string header(const std::string& name) const {
    const auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
  std::string json_string(const char* key) const {
    try {
      return std::string(boost::json::parse(body).at(key).as_string());
    } catch (const std::exception&) {
      return {};
    }
  }
};

Reply Http(std::uint16_t port, http::verb method, const std::string& target, const std::string& body = {},
           const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  Reply out;
  const auto start = Clock::now();
  try {
    asio::io_context io;
    asio::ip::tcp::socket s(io);
    s.connect({asio::ip::make_address("127.0.0.1"), port});
    timeval tv{10, 0};  // a test never hangs on a broken service
    setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    if (!body.empty() || method == http::verb::put) {
      req.set(http::field::content_type, "application/json");
      req.body() = body;
    }
    for (const auto& [k, v] : headers)
      req.set(k, v);
    req.keep_alive(false);
    req.prepare_payload();
    http::write(s, req);
    boost::beast::flat_buffer buf;
    http::response_parser<http::string_body> parser;
    parser.body_limit(16 * 1024 * 1024);
    parser.skip(method == http::verb::head);  // the answer to HEAD has GET's header, no body
    http::read(s, buf, parser);
    auto res = parser.release();
    out.status = res.result_int();
    for (const auto& f : res) {
      std::string name(f.name_string());
      for (auto& c : name)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out.headers[name] = std::string(f.value());
    }
    out.body = res.body();
  } catch (const std::exception& e) {
    out.status = -1;
    out.body = e.what();
  }
  out.took = Clock::now() - start;
  return out;
}

std::string Bulk(const std::string& resp) {  // "$4\r\nJack\r\n" -> "Jack"; nil -> ""
  if (resp.empty() || resp[0] != '$' || resp.starts_with("$-1")) return {};
  const auto eol = resp.find("\r\n");
  const long len = std::strtol(resp.c_str() + 1, nullptr, 10);
  return resp.substr(eol + 2, static_cast<std::size_t>(len));
}

// SIGSTOP takes effect asynchronously: waits until every thread of `pid` is stopped.
void WaitStopped(pid_t pid) {
  if (!testing_support::wait_stopped(pid, 5s)) FAIL() << "process " << pid << " did not stop";
}

bool WaitUntil(const std::function<bool()>& cond, Clock::duration limit, Clock::duration step = 20ms) {
  const auto end = Clock::now() + limit;
  for (;;) {
    if (cond()) return true;
    if (Clock::now() > end) return false;
    std::this_thread::sleep_for(step);
  }
}

long Ms(Clock::duration d) {
  return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

// The real servers, shared by the whole suite (MariaDB's first start costs a second).
struct Servers {
  testing_support::TempDir dir;
  RedisServer master = RedisServer::start(dir.path() / "master");
  RedisServer replica = RedisServer::start(dir.path() / "replica", master.port());
  MariaDbServer db = MariaDbServer::start(dir.path() / "db");
  bool master_up = true, replica_up = true, db_up = true;
  bool master_paused = false, replica_paused = false, db_paused = false;
};
Servers* servers = nullptr;

class UserServiceITest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    servers = new Servers();
    servers->replica.wait_replication_up();
  }
  static void TearDownTestSuite() {
    delete servers;
    servers = nullptr;
  }

  void SetUp() override { StartService(); }

  void TearDown() override {
    StopService();
    // Leave the shared servers as a test found them, whatever happened in it.
    if (servers->master_paused) ResumeMaster();
    if (servers->replica_paused) {
      servers->replica.resume();
      servers->replica_paused = false;
    }
    if (servers->db_paused) ResumeDb();
    if (!servers->master_up) StartMaster();
    if (!servers->replica_up) StartReplica();
    if (!servers->db_up) StartDb();
  }

  // Picks the service's two ports (port_, admin_port_) and returns its command line.
  std::vector<std::string> ServiceArgs(std::uint16_t master, std::uint16_t replica, std::uint16_t db) {
    return ServiceArgsOn(testing_support::free_port(), testing_support::free_port(), master, replica, db);
  }
  std::vector<std::string> ServiceArgsOn(std::uint16_t port, std::uint16_t admin_port, std::uint16_t master,
                                         std::uint16_t replica, std::uint16_t db) {
    port_ = port;
    admin_port_ = admin_port;
    return {USER_SERVICE_BINARY,
            "--listen=127.0.0.1:" + std::to_string(port_),
            "--admin.listen=127.0.0.1:" + std::to_string(admin_port_),
            "--redis.master=127.0.0.1:" + std::to_string(master),
            "--redis.replica=127.0.0.1:" + std::to_string(replica),
            "--mysql.port=" + std::to_string(db),
            "--mysql.database=users_itest",
            "--log_level=info"};
  }

  void StartService(const std::vector<std::string>& extra = {}) {
    auto started = testing_support::spawn_listening(
        2,
        [&](const testing_support::PortList& ports) {
          auto args = ServiceArgsOn(ports[0], ports[1], servers->master.port(), servers->replica.port(),
                                    servers->db.port());
          args.insert(args.end(), extra.begin(), extra.end());
          return args;
        },
        ServiceLog(), [&](const testing_support::PortList&) { return ReadyAndUp(); }, 15s);
    service_ = std::move(started.process);
    ASSERT_TRUE(started.ready) << Ready().body << "\n--- its log:\n" << LogTail();
  }
  bool ReadyAndUp() {
    const Reply r = Ready();
    return r.status == 200 && r.json_string("status") == "up";
  }
  std::string LogTail() const {
    std::ifstream in(ServiceLog());
    std::string all((std::istreambuf_iterator<char>(in)), {});
    return all.size() > 4000 ? all.substr(all.size() - 4000) : all;
  }
  void StopService() { service_.stop(); }
  std::filesystem::path ServiceLog() const { return servers->dir.path() / "user-service.log"; }

  Reply Ready() { return Http(port_, http::verb::get, "/health/ready"); }
  Reply Get(const std::string& id) { return Http(port_, http::verb::get, "/users/" + id); }
  Reply Put(const std::string& id, const std::string& name) {
    return Http(port_, http::verb::put, "/users/" + id,
                boost::json::serialize(boost::json::object{{"name", name}}));
  }
  Reply Delete(const std::string& id) { return Http(port_, http::verb::delete_, "/users/" + id); }

  std::string DepState(const std::string& dep) {
    try {
      return std::string(boost::json::parse(Ready().body).at("dependencies").at(dep).at("state").as_string());
    } catch (const std::exception&) {
      return {};
    }
  }
  bool BreakerOpen(const std::string& dep) {
    try {
      return boost::json::parse(Ready().body).at("dependencies").at(dep).at("breaker").as_string() == "open";
    } catch (const std::exception&) {
      return false;
    }
  }
  std::string DbRow(const std::string& id) {  // "name\tversion\n" or ""
    return servers->db.sql("SELECT name, version FROM users_itest.user WHERE id = '" + id + "'");
  }
  std::string CachedName(const std::string& id) {
    return Bulk(servers->master.command("HGET user:" + id + " name"));
  }
  std::string CachedVersion(const std::string& id) {
    return Bulk(servers->master.command("HGET user:" + id + " version"));
  }

  void StopMaster() {
    servers->master.stop();
    servers->master_up = false;
  }
  void StartMaster() {
    servers->master.restart();
    servers->master_up = true;
  }
  void PauseMaster() {
    servers->master.pause();
    servers->master_paused = true;
    WaitStopped(servers->master.pid());
  }
  void ResumeMaster() {
    servers->master.resume();
    servers->master_paused = false;
  }
  void StopReplica() {
    servers->replica.stop();
    servers->replica_up = false;
  }
  void StartReplica() {
    servers->replica.restart();
    servers->replica_up = true;
  }
  void StopDb() {
    servers->db.stop();
    servers->db_up = false;
  }
  void StartDb() {
    servers->db.restart();
    servers->db_up = true;
  }
  void PauseDb() {
    servers->db.pause();
    servers->db_paused = true;
    WaitStopped(servers->db.pid());
  }
  void ResumeDb() {
    servers->db.resume();
    servers->db_paused = false;
  }

  testing_support::Process service_;
  std::uint16_t port_ = 0;
  std::uint16_t admin_port_ = 0;
};

TEST_F(UserServiceITest, ApiContractAndCacheAside) {
  auto r = Put("api-1", "Jack");
  EXPECT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.body, R"({"id":"api-1","name":"Jack"})");
  EXPECT_FALSE(r.header("x-request-id").empty());
  r = Put("api-1", "Joe");
  EXPECT_EQ(r.status, 200);
  r = Get("api-1");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("x-data-source"), "cache");
  EXPECT_EQ(r.json_string("name"), "Joe");
  // Redis holds the hash with the same version as MariaDB's row.
  EXPECT_EQ(CachedName("api-1"), "Joe");
  EXPECT_EQ(Bulk(servers->master.command("HGET user:api-1 id")), "api-1");
  EXPECT_EQ(DbRow("api-1"), "Joe\t" + CachedVersion("api-1") + "\n");
  const std::string ttl = servers->master.command("TTL user:api-1");
  EXPECT_GT(std::strtol(ttl.c_str() + 1, nullptr, 10), 3500) << ttl;

  // A user only in MariaDB: origin, then cached.
  servers->db.sql("INSERT INTO users_itest.user (id, name) VALUES ('api-2', 'Olga')");
  r = Get("api-2");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("x-data-source"), "origin");
  EXPECT_TRUE(WaitUntil([&] { return Get("api-2").header("x-data-source") == "cache"; }, 2s));

  // Delete: tombstone, 404 afterwards.
  EXPECT_EQ(Delete("api-1").status, 204);
  EXPECT_EQ(CachedName("api-1"), "");
  EXPECT_FALSE(Bulk(servers->master.command("GET tombstone:user:api-1")).empty());
  r = Get("api-1");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.json_string("error"), "no such user");
  EXPECT_EQ(Delete("api-1").status, 404);
  EXPECT_EQ(DbRow("api-1"), "");
  // Re-created after the delete: cached again with a newer version than the tombstone.
  EXPECT_EQ(Put("api-1", "Again").status, 201);
  EXPECT_EQ(CachedName("api-1"), "Again");
  EXPECT_EQ(Bulk(servers->master.command("GET tombstone:user:api-1")), "");

  // Parameterised SQL: stored and returned verbatim.
  const std::string evil = "'; DROP TABLE user; --";
  r = Put("%27%3B%20DROP%20TABLE%20user%3B%20--", evil);
  EXPECT_EQ(r.status, 201) << r.body;
  r = Get("%27%3B%20DROP%20TABLE%20user%3B%20--");
  EXPECT_EQ(r.json_string("name"), evil);
  EXPECT_EQ(r.json_string("id"), evil);
  EXPECT_NE(servers->db.sql("SELECT COUNT(*) FROM users_itest.user"), "");

  // Ids are exact: "a", "A" and "a " are three users; UTF-8 survives the round trip.
  EXPECT_EQ(Put("case-a", "lower").status, 201);
  EXPECT_EQ(Put("case-A", "upper").status, 201);
  EXPECT_EQ(Put("case-a%20", "space").status, 201);
  EXPECT_EQ(Get("case-a").json_string("name"), "lower");
  EXPECT_EQ(Get("case-A").json_string("name"), "upper");
  EXPECT_EQ(Get("case-a%20").json_string("name"), "space");
  EXPECT_EQ(Put("utf8", "J\xC3\xA1nos \xF0\x9F\x98\x80").status, 201);
  EXPECT_EQ(Get("utf8").json_string("name"), "J\xC3\xA1nos \xF0\x9F\x98\x80");
  servers->master.command("DEL user:utf8");
  r = Get("utf8");
  EXPECT_EQ(r.header("x-data-source"), "origin");
  EXPECT_EQ(r.json_string("name"), "J\xC3\xA1nos \xF0\x9F\x98\x80");

  // Bad input.
  EXPECT_EQ(Get("").status, 400);
  EXPECT_EQ(Get(std::string(256, 'x')).status, 400);
  EXPECT_EQ(Get("a%01b").status, 400);
  EXPECT_EQ(Http(port_, http::verb::put, "/users/x", "{\"name\":").status, 400);
  EXPECT_EQ(Http(port_, http::verb::put, "/users/x", "{\"name\":7}").status, 400);
  EXPECT_EQ(Http(port_, http::verb::put, "/users/x", "{\"name\":\"\xFF\"}").status, 400);
  EXPECT_EQ(
      Http(port_, http::verb::put, "/users/x", "{\"name\":\"" + std::string(70 * 1024, 'a') + "\"}").status,
      413);
  r = Http(port_, http::verb::post, "/users/x", "{}");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.header("allow"), "GET, HEAD, PUT, DELETE");
  EXPECT_EQ(Http(port_, http::verb::get, "/nope").status, 404);
  EXPECT_EQ(DbRow("x"), "");
  r = Http(port_, http::verb::get, "/health/live", {}, {{"X-Request-Id", "trace-42"}});
  EXPECT_EQ(r.header("x-request-id"), "trace-42");

  // The running configuration, with the password redacted, and the metrics: on the admin listener.
  EXPECT_EQ(Http(port_, http::verb::get, "/config").status, 404);
  EXPECT_EQ(Http(port_, http::verb::get, "/metrics").status, 404);
  EXPECT_EQ(Http(admin_port_, http::verb::get, "/users/api-1").status, 404);
  EXPECT_EQ(Http(admin_port_, http::verb::get, "/health/ready").status, 200);
  r = Http(admin_port_, http::verb::get, "/config");
  const auto cfg = boost::json::parse(r.body);
  EXPECT_EQ(cfg.at("request_deadline_ms").as_int64(), Ms(kRequestDeadline));
  EXPECT_EQ(cfg.at("mysql").at("call_deadline_ms").as_int64(), Ms(kMysqlDeadline));
  EXPECT_EQ(cfg.at("redis").at("call_deadline_ms").as_int64(), Ms(kRedisDeadline));
  r = Http(admin_port_, http::verb::get, "/metrics");
  EXPECT_NE(
      r.body.find("user_service_http_requests_total{route=\"/users/{id}\",method=\"GET\",status=\"200\","
                  "source=\"cache\"}"),
      std::string::npos);
  EXPECT_NE(r.body.find("user_service_mysql_pool_connections"), std::string::npos);
}

// ---- HTTP semantics (issue 14) -------------------------------------------------------------------

std::string Tag(const std::string& version) {
  return "\"v" + version + "\"";
}

// SIGHUP reads the configuration again: a deadline takes its new value at once, a key that needs a
// restart keeps its running value and the log names it.
TEST_F(UserServiceITest, SighupReloadsWhatCanChangeAndNamesTheRest) {
  StopService();
  const auto file = servers->dir.path() / "reload.json";
  const auto write_config = [&](int deadline_ms, int ttl_s) {
    std::ofstream(file) << R"({"request_deadline_ms":)" << deadline_ms << R"(,"redis":{"ttl_s":)" << ttl_s
                        << "}}";
  };
  write_config(900, 3600);
  StartService({"--config=" + file.string()});
  const auto config = [&] { return boost::json::parse(Http(admin_port_, http::verb::get, "/config").body); };
  EXPECT_EQ(config().at("request_deadline_ms").as_int64(), 900);

  write_config(700, 60);
  ASSERT_EQ(::kill(service_.pid(), SIGHUP), 0);
  EXPECT_TRUE(WaitUntil([&] { return config().at("request_deadline_ms").as_int64() == 700; }, 5s));
  EXPECT_EQ(config().at("redis").at("ttl_s").as_int64(), 3600);
  EXPECT_TRUE(WaitUntil(
      [&] {
        std::ifstream log(ServiceLog());
        std::string line;
        while (std::getline(log, line))
          if (line.find("need a restart") != std::string::npos &&
              line.find("redis.ttl_s") != std::string::npos)
            return true;
        return false;
      },
      2s));
  // Still serving, and a bad file changes nothing.
  std::ofstream(file) << "{";
  ASSERT_EQ(::kill(service_.pid(), SIGHUP), 0);
  EXPECT_EQ(Put("hup-1", "Ann").status, 201);
  EXPECT_EQ(config().at("request_deadline_ms").as_int64(), 700);
}

TEST_F(UserServiceITest, ContentTypeBodiesHeadAndETags) {
  // 415 for anything but JSON (a charset parameter is fine); nothing is written.
  auto r =
      Http(port_, http::verb::put, "/users/ct-1", R"({"name":"Jack"})", {{"Content-Type", "text/plain"}});
  EXPECT_EQ(r.status, 415) << r.body;
  r = Http(port_, http::verb::put, "/users/ct-1", R"({"name":"Jack"})",
           {{"Content-Type", "application/x-www-form-urlencoded"}});
  EXPECT_EQ(r.status, 415);
  EXPECT_EQ(DbRow("ct-1"), "");
  // 400 naming duplicate and unknown members.
  r = Http(port_, http::verb::put, "/users/ct-1", R"({"name":"A","name":"B"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.json_string("error").find(R"("name")"), std::string::npos) << r.body;
  r = Http(port_, http::verb::put, "/users/ct-1", R"({"name":"A","mail":"x"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.json_string("error").find(R"("mail")"), std::string::npos) << r.body;
  EXPECT_EQ(DbRow("ct-1"), "");
  r = Http(port_, http::verb::put, "/users/ct-1", R"({"name":"Jack"})",
           {{"Content-Type", "application/json; charset=utf-8"}});
  EXPECT_EQ(r.status, 201) << r.body;
  // The ETag is MariaDB's version, on the write, a cached read and an uncached one.
  const std::string tag = Tag(CachedVersion("ct-1"));
  EXPECT_EQ(r.header("etag"), tag);
  EXPECT_EQ(DbRow("ct-1"), "Jack\t" + CachedVersion("ct-1") + "\n");
  r = Get("ct-1");
  EXPECT_EQ(r.header("x-data-source"), "cache");
  EXPECT_EQ(r.header("etag"), tag);
  servers->master.command("DEL user:ct-1");
  r = Get("ct-1");
  EXPECT_EQ(r.header("x-data-source"), "origin");
  EXPECT_EQ(r.header("etag"), tag);
  // HEAD over the wire: GET's header (its Content-Length), no body.
  r = Http(port_, http::verb::head, "/users/ct-1");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("etag"), tag);
  EXPECT_EQ(r.header("content-length"), std::to_string(std::string(R"({"id":"ct-1","name":"Jack"})").size()));
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(Http(port_, http::verb::head, "/users/ct-none").status, 404);
  // If-None-Match: 304 without a body while the version is the client's.
  r = Http(port_, http::verb::get, "/users/ct-1", {}, {{"If-None-Match", tag}});
  EXPECT_EQ(r.status, 304);
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(r.header("etag"), tag);
  ASSERT_EQ(Put("ct-1", "Joe").status, 200);
  r = Http(port_, http::verb::get, "/users/ct-1", {}, {{"If-None-Match", tag}});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.json_string("name"), "Joe");
  EXPECT_NE(r.header("etag"), tag);
}

TEST_F(UserServiceITest, ConditionalWritesAndTheCacheStayCoherent) {
  auto r = Http(port_, http::verb::put, "/users/cw-1", R"({"name":"Ann"})", {{"If-None-Match", "*"}});
  EXPECT_EQ(r.status, 201) << r.body;
  const std::string t1 = r.header("etag");
  r = Http(port_, http::verb::put, "/users/cw-1", R"({"name":"Bob"})", {{"If-None-Match", "*"}});
  EXPECT_EQ(r.status, 412) << r.body;
  // A 412's ETag is the current version when MariaDB could be read again within the request's
  // deadline (always, unless the machine is very loaded; ApiTest pins it on the fakes).
  EXPECT_TRUE(r.header("etag").empty() || r.header("etag") == t1) << r.header("etag");
  EXPECT_EQ(r.json_string("outcome"), "not_applied");
  r = Http(port_, http::verb::put, "/users/cw-1", R"({"name":"Cy"})", {{"If-Match", t1}});
  EXPECT_EQ(r.status, 200) << r.body;
  const std::string t2 = r.header("etag");
  EXPECT_EQ(t2, Tag(CachedVersion("cw-1")));
  r = Http(port_, http::verb::put, "/users/cw-1", R"({"name":"Dee"})", {{"If-Match", t1}});
  EXPECT_EQ(r.status, 412);
  EXPECT_TRUE(r.header("etag").empty() || r.header("etag") == t2) << r.header("etag");
  EXPECT_EQ(Get("cw-1").json_string("name"), "Cy");
  EXPECT_EQ(DbRow("cw-1"), "Cy\t" + CachedVersion("cw-1") + "\n");
  EXPECT_EQ(Http(port_, http::verb::delete_, "/users/cw-1", {}, {{"If-Match", t1}}).status, 412);
  EXPECT_EQ(Http(port_, http::verb::delete_, "/users/cw-1", {}, {{"If-Match", t2}}).status, 204);
  EXPECT_EQ(Get("cw-1").status, 404);
  EXPECT_EQ(DbRow("cw-1"), "");
  EXPECT_EQ(Http(port_, http::verb::put, "/users/cw-1", R"({"name":"X"})", {{"If-Match", "*"}}).status, 412);
  EXPECT_EQ(DbRow("cw-1"), "");
}

// Many clients PUT with the same If-Match at once (more MariaDB connections than clients, so the
// statements really race): exactly one wins each round, and MariaDB and the cache hold its write.
TEST_F(UserServiceITest, ConcurrentConditionalPutsExactlyOneWins) {
  StopService();
  StartService({"--mysql.pool_size=16"});
  auto r = Put("race-1", "start");
  ASSERT_EQ(r.status, 201);
  std::string tag = r.header("etag");
  constexpr int kClients = 16;
  for (int round = 0; round < 5; ++round) {
    std::vector<Reply> replies(kClients);
    std::vector<std::thread> clients;
    std::atomic<int> ready{0};
    for (int i = 0; i < kClients; ++i) {
      clients.emplace_back([&, i] {
        ++ready;
        while (ready.load() < kClients)
          std::this_thread::yield();
        replies[i] = Http(port_, http::verb::put, "/users/race-1",
                          boost::json::serialize(boost::json::object{
                              {"name", "r" + std::to_string(round) + "-c" + std::to_string(i)}}),
                          {{"If-Match", tag}});
      });
    }
    for (auto& c : clients)
      c.join();
    int won = 0, lost = 0;
    std::string winner, next_tag;
    for (int i = 0; i < kClients; ++i) {
      if (replies[i].status == 200) {
        ++won;
        winner = "r" + std::to_string(round) + "-c" + std::to_string(i);
        next_tag = replies[i].header("etag");
      } else if (replies[i].status == 412) {
        ++lost;
      } else {
        ADD_FAILURE() << replies[i].status << " " << replies[i].body;
      }
    }
    ASSERT_EQ(won, 1) << "round " << round;
    EXPECT_EQ(lost, kClients - 1) << "round " << round;
    EXPECT_NE(next_tag, tag);
    // MariaDB, the cache and the API agree on the winner at its version.
    EXPECT_EQ(Tag(CachedVersion("race-1")), next_tag);
    EXPECT_EQ(DbRow("race-1"), winner + "\t" + CachedVersion("race-1") + "\n");
    r = Get("race-1");
    EXPECT_EQ(r.json_string("name"), winner);
    EXPECT_EQ(r.header("etag"), next_tag);
    tag = next_tag;
  }
}

TEST_F(UserServiceITest, ListsPagesAndAnswers503WhenMariaDbCannot) {
  // Users from the API and straight from SQL; other tests' users are there too.
  for (const char* id : {"ls-b", "ls-a", "ls-B", "ls-a%20"})
    ASSERT_EQ(Put(id, "x").status, 201);
  servers->db.sql("INSERT INTO users_itest.user (id, name) VALUES ('ls-c', 'sql')");
  std::vector<std::string> seen;
  std::string after;
  for (int pages = 0; pages < 1000; ++pages) {
    std::string target = "/users?limit=3";
    if (!after.empty()) {
      std::string encoded;
      for (const char c : after) {
        char buf[4];
        std::snprintf(buf, sizeof buf, "%%%02X", static_cast<unsigned char>(c));
        encoded += buf;
      }
      target += "&after=" + encoded;
    }
    const Reply r = Http(port_, http::verb::get, target);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("x-data-source"), "origin");
    const auto page = boost::json::parse(r.body);
    const auto& users = page.at("users").as_array();
    EXPECT_LE(users.size(), 3u);
    for (const auto& u : users)
      seen.emplace_back(u.at("id").as_string());
    if (page.at("next").is_null()) break;
    after = std::string(page.at("next").as_string());
    EXPECT_EQ(after, seen.back());
  }
  // Every user once, in byte order, and exactly MariaDB's set.
  std::vector<std::string> sorted = seen;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(seen, sorted);
  EXPECT_EQ(std::adjacent_find(seen.begin(), seen.end()), seen.end());
  const std::string count = servers->db.sql("SELECT COUNT(*) FROM users_itest.user");
  EXPECT_EQ(std::to_string(seen.size()) + "\n", count);
  for (const char* id : {"ls-B", "ls-a", "ls-a ", "ls-b", "ls-c"})
    EXPECT_NE(std::find(seen.begin(), seen.end(), id), seen.end()) << id;
  EXPECT_EQ(Http(port_, http::verb::get, "/users?limit=0").status, 400);
  EXPECT_EQ(Http(port_, http::verb::get, "/users?limit=1001").status, 400);
  EXPECT_EQ(Http(port_, http::verb::get, "/users?cursor=x").status, 400);

  // MariaDB gone: 503 with Retry-After, a body without its words or addresses, the request id.
  StopDb();
  const Reply r = Http(port_, http::verb::get, "/users", {}, {{"X-Request-Id", "list-down-1"}});
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(r.header("retry-after"), "1");
  EXPECT_EQ(r.json_string("request_id"), "list-down-1");
  EXPECT_EQ(r.body.find("127.0.0.1"), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find(std::to_string(servers->db.port())), std::string::npos) << r.body;
  EXPECT_LT(r.took, std::chrono::milliseconds(1000) + kSlack);
  // The details are in the log, with the request id.
  EXPECT_TRUE(WaitUntil(
      [&] {
        std::ifstream log(ServiceLog());
        std::string line;
        while (std::getline(log, line))
          if (line.find("list-down-1") != std::string::npos && line.find("\"detail\"") != std::string::npos)
            return true;
        return false;
      },
      2s));
}

// A write whose answer was lost after MariaDB had it (MariaDB paused mid-statement): 503 saying
// the outcome is unknown and that retrying the PUT is safe; Retry-After as for every 503.
TEST_F(UserServiceITest, AWriteWithAnUnknownOutcomeSaysRetryingIsSafe) {
  ASSERT_EQ(Put("uo-1", "Ann").status, 201);
  PauseDb();
  auto r = Http(port_, http::verb::put, "/users/uo-1", R"({"name":"Bob"})", {{"X-Request-Id", "uo-put-1"}});
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(r.json_string("outcome"), "unknown") << r.body;
  EXPECT_NE(r.json_string("error").find("retrying the same PUT is safe"), std::string::npos) << r.body;
  EXPECT_EQ(r.json_string("request_id"), "uo-put-1");
  EXPECT_FALSE(r.header("retry-after").empty());
  EXPECT_EQ(r.body.find("127.0.0.1"), std::string::npos) << r.body;
  // Once the breaker is open, MariaDB is not asked: nothing was written, certainly.
  ASSERT_TRUE(WaitUntil([&] { return BreakerOpen("mysql"); }, 5s));
  r = Put("uo-2", "Cy");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.json_string("outcome"), "not_applied") << r.body;
  EXPECT_NE(r.json_string("error").find("MariaDB unavailable"), std::string::npos) << r.body;
  EXPECT_EQ(r.header("retry-after"), "1");
  ResumeDb();
  // The retry is safe: the user ends as the retried PUT says.
  EXPECT_TRUE(WaitUntil(
      [&] {
        const int s = Put("uo-1", "Bob").status;
        return s == 200;
      },
      kMariaDbRecovery + 5s, 10ms));
  EXPECT_EQ(DbRow("uo-1"), "Bob\t" + CachedVersion("uo-1") + "\n");
}

TEST_F(UserServiceITest, ConcurrentReadersAndWritersLeaveTheCacheCoherent) {
  const std::vector<std::string> ids = {"cc-0", "cc-1", "cc-2", "cc-3"};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t) * 7919u + 1u);
      for (int i = 0; i < 60; ++i) {
        const auto& id = ids[rng() % ids.size()];
        const int op = static_cast<int>(rng() % 10);
        Reply r;
        if (op < 4) {
          r = Put(id, "t" + std::to_string(t) + "-" + std::to_string(i));
          if (r.status != 200 && r.status != 201) ++errors;
        } else if (op < 5) {
          r = Delete(id);
          if (r.status != 204 && r.status != 404) ++errors;
        } else {
          r = Get(id);
          if (r.status != 200 && r.status != 404) ++errors;
        }
      }
    });
  }
  for (auto& th : threads)
    th.join();
  EXPECT_EQ(errors.load(), 0);
  std::this_thread::sleep_for(200ms);  // background fills land
  for (const auto& id : ids) {
    const std::string row = DbRow(id);
    const std::string name = CachedName(id), version = CachedVersion(id);
    const std::string tomb = Bulk(servers->master.command("GET tombstone:user:" + id));
    if (!name.empty()) {
      // A cached value is exactly MariaDB's row.
      EXPECT_EQ(row, name + "\t" + version + "\n") << id;
    } else if (!row.empty()) {
      // No value cached although the row exists: only a tombstone at least as new may cause that.
      const auto tab = row.find('\t');
      const auto row_version = std::stoull(row.substr(tab + 1));
      ASSERT_FALSE(tomb.empty()) << id << " row " << row;
      EXPECT_GE(std::stoull(tomb), row_version) << id;
    }
    // And the API answers MariaDB's truth.
    const Reply r = Get(id);
    if (row.empty()) {
      EXPECT_EQ(r.status, 404) << id;
    } else {
      EXPECT_EQ(r.json_string("name") + "\t", row.substr(0, row.find('\t') + 1)) << id;
    }
  }
}

TEST_F(UserServiceITest, MariaDbStoppedServesCachedReadsAndRecovers) {
  ASSERT_EQ(Put("mdb-cached", "Jack").status, 201);
  servers->db.sql("INSERT INTO users_itest.user (id, name) VALUES ('mdb-uncached', 'Olga')");
  StopDb();
  auto r = Get("mdb-cached");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("x-data-source"), "cache");
  EXPECT_LT(r.took, kCachedWhileMariaDbAway);
  r = Get("mdb-uncached");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(r.header("retry-after"), "1");
  EXPECT_LT(r.took, kRequestDeadline + kSlack);
  r = Put("mdb-new", "Joe");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(Delete("mdb-cached").status, 503);
  EXPECT_TRUE(WaitUntil([&] { return DepState("mysql") == "down"; }, 3s)) << Ready().body;
  EXPECT_EQ(Ready().status, 200);  // degraded: cached reads still work
  StartDb();
  const auto back = Clock::now();
  // The first write that goes through: 201, or 200 if an earlier attempt during the recovery was
  // answered 503 yet committed (a deadline passed after MariaDB took it: the one ambiguity).
  Reply put;
  EXPECT_TRUE(WaitUntil(
      [&] {
        put = Put("mdb-new", "Joe");
        return put.status == 201 || put.status == 200;
      },
      kMariaDbRecovery + 5s, 10ms))
      << put.status << " " << put.body << " " << Ready().body;
  const auto recovered = Clock::now() - back;
  EXPECT_LT(recovered, kMariaDbRecovery) << Ms(recovered) << " ms";
  // MariaDB holds it, and so does the cache (updated before the answer, or by the repair queue
  // within the recovery bound if the master call missed its deadline on a loaded machine).
  EXPECT_TRUE(WaitUntil(
      [&] {
        const std::string version = CachedVersion("mdb-new");
        return !version.empty() && DbRow("mdb-new") == "Joe\t" + version + "\n";
      },
      kRecovery + kSlack))
      << DbRow("mdb-new") << " cached " << CachedVersion("mdb-new");
  EXPECT_EQ(Get("mdb-uncached").json_string("name"), "Olga");
}

TEST_F(UserServiceITest, MariaDbBlackholedFailsWithinTheDeadlineThenFast) {
  ASSERT_EQ(Put("bh-cached", "Jack").status, 201);
  servers->db.sql("INSERT INTO users_itest.user (id, name) VALUES ('bh-uncached', 'Olga')");
  PauseDb();
  auto r = Get("bh-uncached");
  EXPECT_EQ(r.status, 503);
  EXPECT_GE(r.took, kMysqlDeadline - 50ms);
  EXPECT_LT(r.took, kRequestDeadline + kSlack);
  r = Get("bh-cached");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("x-data-source"), "cache");
  EXPECT_LT(r.took, kCachedWhileMariaDbAway);
  ASSERT_TRUE(WaitUntil([&] { return BreakerOpen("mysql"); }, 5s));
  r = Put("bh-new", "Joe");
  EXPECT_EQ(r.status, 503);
  EXPECT_LT(r.took, kFailFast);
  r = Get("bh-uncached");
  EXPECT_EQ(r.status, 503);
  EXPECT_LT(r.took, kFailFast);
  ResumeDb();
  const auto back = Clock::now();
  EXPECT_TRUE(WaitUntil([&] { return Put("bh-new", "Joe").status == 201; }, 5s, 10ms));
  EXPECT_LT(Clock::now() - back, kMariaDbRecovery);
  EXPECT_EQ(DbRow("bh-new"), "Joe\t" + CachedVersion("bh-new") + "\n");
}

TEST_F(UserServiceITest, MasterStoppedReadsReplicaNeverServesKnownStaleAndRepairs) {
  ASSERT_EQ(Put("ms-1", "Jack").status, 201);
  ASSERT_EQ(Put("ms-2", "Dora").status, 201);
  ASSERT_TRUE(WaitUntil([&] { return Bulk(servers->replica.command("HGET user:ms-2 name")) == "Dora"; }, 2s));
  StopMaster();
  auto r = Get("ms-1");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("x-data-source"), "cache");  // the replica
  EXPECT_EQ(r.json_string("name"), "Jack");
  EXPECT_LT(r.took, kRequestDeadline);
  r = Put("ms-1", "Joe");
  EXPECT_EQ(r.status, 200);
  r = Get("ms-1");  // the replica still says Jack: known stale, so MariaDB answers
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("x-data-source"), "origin");
  EXPECT_EQ(r.json_string("name"), "Joe");
  EXPECT_EQ(Delete("ms-2").status, 204);
  EXPECT_EQ(Get("ms-2").status, 404);
  StartMaster();
  const auto back = Clock::now();
  EXPECT_TRUE(WaitUntil([&] { return CachedName("ms-1") == "Joe"; }, 5s, 10ms));
  EXPECT_LT(Clock::now() - back, kRecovery + kSlack);
  // Repairs land one after another: ms-2's tombstone follows ms-1's value (a loaded machine can
  // put the check between the two).
  EXPECT_TRUE(
      WaitUntil([&] { return !Bulk(servers->master.command("GET tombstone:user:ms-2")).empty(); }, 2s, 10ms));
  r = Get("ms-1");
  EXPECT_EQ(r.header("x-data-source"), "cache");
  EXPECT_EQ(r.json_string("name"), "Joe");
  EXPECT_EQ(Get("ms-2").status, 404);
}

TEST_F(UserServiceITest, MasterBlackholedFallsBackToReplicaThenFast) {
  ASSERT_EQ(Put("mb-1", "Jack").status, 201);
  ASSERT_TRUE(WaitUntil([&] { return Bulk(servers->replica.command("HGET user:mb-1 name")) == "Jack"; }, 2s));
  PauseMaster();
  auto r = Get("mb-1");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("x-data-source"), "cache");
  EXPECT_LT(r.took, kRequestDeadline);
  ASSERT_TRUE(WaitUntil([&] { return BreakerOpen("redis-master"); }, 5s));
  r = Get("mb-1");
  EXPECT_EQ(r.header("x-data-source"), "cache");
  EXPECT_LT(r.took, 50ms);
  r = Put("mb-1", "Joe");
  EXPECT_EQ(r.status, 200);
  EXPECT_LT(r.took, 100ms);
  EXPECT_EQ(Get("mb-1").json_string("name"), "Joe");
  ResumeMaster();
  const auto back = Clock::now();
  EXPECT_TRUE(WaitUntil([&] { return CachedName("mb-1") == "Joe"; }, 5s, 10ms));
  EXPECT_LT(Clock::now() - back, kRecovery + kSlack);
  EXPECT_TRUE(WaitUntil([&] { return Get("mb-1").header("x-data-source") == "cache"; }, 2s));
}

TEST_F(UserServiceITest, BothRedisDownReadsAndWritesMariaDb) {
  ASSERT_EQ(Put("br-1", "Jack").status, 201);
  StopMaster();
  StopReplica();
  auto r = Get("br-1");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("x-data-source"), "origin");
  EXPECT_LT(r.took, kRequestDeadline);
  EXPECT_EQ(Put("br-1", "Joe").status, 200);
  EXPECT_EQ(Get("br-1").json_string("name"), "Joe");
  EXPECT_EQ(Put("br-2", "New").status, 201);
  EXPECT_EQ(Delete("br-2").status, 204);
  StartMaster();
  StartReplica();
  EXPECT_TRUE(WaitUntil([&] { return CachedName("br-1") == "Joe"; }, 3s));
  EXPECT_TRUE(WaitUntil([&] { return Ready().json_string("status") == "up"; }, 5s));
}

TEST_F(UserServiceITest, MasterThenMariaDbDownServesTheStaleEntryMarked) {
  ASSERT_EQ(Put("st-1", "Jack").status, 201);
  ASSERT_TRUE(WaitUntil([&] { return Bulk(servers->replica.command("HGET user:st-1 name")) == "Jack"; }, 2s));
  StopMaster();
  ASSERT_EQ(Put("st-1", "Joe").status, 200);
  StopDb();
  auto r = Get("st-1");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("x-data-source"), "cache");
  EXPECT_EQ(r.header("x-cache-stale"), "true");
  EXPECT_EQ(r.json_string("name"), "Jack");
  EXPECT_EQ(Get("st-unknown").status, 503);
  EXPECT_EQ(Put("st-1", "Jim").status, 503);
}

TEST_F(UserServiceITest, EverythingDownIsAFast503AndTheProcessKeepsRunning) {
  ASSERT_EQ(Put("ed-1", "Jack").status, 201);
  StopMaster();
  StopReplica();
  StopDb();
  EXPECT_TRUE(WaitUntil([&] { return Ready().status == 503; }, 5s));
  for (int i = 0; i < 5; ++i) {
    auto r = Get("ed-1");
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.header("retry-after"), "1");
    EXPECT_LT(r.took, kFailFast);
    r = Put("ed-1", "x");
    EXPECT_EQ(r.status, 503);
    EXPECT_LT(r.took, kFailFast);
  }
  EXPECT_EQ(Http(port_, http::verb::get, "/health/live").status, 200);
  const auto health = boost::json::parse(Ready().body);
  for (const char* dep : {"mysql", "redis-master", "redis-replica"})
    EXPECT_EQ(health.at("dependencies").at(dep).at("state").as_string(), "down") << dep;
  StartDb();
  StartMaster();
  StartReplica();
  EXPECT_TRUE(WaitUntil([&] { return Ready().json_string("status") == "up"; }, 5s));
  EXPECT_EQ(Get("ed-1").json_string("name"), "Jack");
}

TEST_F(UserServiceITest, StartsWithEverythingDownAndBecomesReadyWhenTheyArrive) {
  StopService();
  const std::uint16_t m = testing_support::free_port(), r = testing_support::free_port(),
                      d = testing_support::free_port();
  auto args = ServiceArgs(m, r, d);
  args.push_back("--mysql.database=users_late");
  service_ = testing_support::Process::spawn(args, servers->dir.path() / "user-service-late.log");
  ASSERT_TRUE(WaitUntil([&] { return Http(port_, http::verb::get, "/health/live").status == 200; }, 10s));
  auto ready = Ready();
  EXPECT_EQ(ready.status, 503);
  for (const char* dep : {"\"mysql\"", "\"redis-master\"", "\"redis-replica\""})
    EXPECT_NE(ready.body.find(dep), std::string::npos);
  EXPECT_EQ(Put("late-1", "Jack").status, 503);
  testing_support::TempDir late;
  auto master = RedisServer::start(late.path() / "m", std::nullopt, m);
  auto replica = RedisServer::start(late.path() / "r", m, r);
  auto db = MariaDbServer::start(late.path() / "db", d);
  replica.wait_replication_up();
  const auto back = Clock::now();
  EXPECT_TRUE(WaitUntil([&] { return Ready().json_string("status") == "up"; }, 5s, 10ms)) << Ready().body;
  EXPECT_LT(Clock::now() - back, kRecovery + kSlack);
  EXPECT_EQ(Put("late-1", "Jack").status, 201);
  EXPECT_EQ(db.sql("SELECT name FROM users_late.user WHERE id = 'late-1'"), "Jack\n");
  StopService();
}

// --print-schema prints the DDL the service runs, as a script for the mariadb client: what an
// administrator runs once when the service's account may not create triggers.
TEST_F(UserServiceITest, PrintSchemaIsAScriptThatCreatesTheTablesAndTheFenceTriggers) {
  const auto script = servers->dir.path() / "printed-schema.sql";
  const std::string command = std::string(USER_SERVICE_BINARY) +
                              " --print-schema --mysql.database=users_printed > " + script.string();
  ASSERT_EQ(std::system(command.c_str()), 0);
  std::ifstream in(script);
  std::stringstream text;
  text << in.rdbuf();
  servers->db.sql(text.str());
  EXPECT_EQ(servers->db.sql("SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = "
                            "'users_printed' AND TRIGGER_NAME LIKE 'user_write_fence_%'"),
            "3\n");
  EXPECT_EQ(servers->db.sql("SELECT COUNT(*) FROM users_printed.user"), "0\n");
  servers->db.sql("DROP DATABASE users_printed");
}

TEST_F(UserServiceITest, SigtermDrainsInFlightRequestsAndExitsZero) {
  StopService();
  auto args = ServiceArgs(servers->master.port(), servers->replica.port(), servers->db.port());
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  ASSERT_EQ(posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ), 0);
  ASSERT_TRUE(WaitUntil([&] { return Ready().json_string("status") == "up"; }, 15s));
  servers->db.sql("INSERT INTO users_itest.user (id, name) VALUES ('drain-1', 'Olga')");
  PauseDb();  // the read will take its whole MariaDB deadline
  Reply in_flight;
  std::thread client([&] { in_flight = Get("drain-1"); });
  std::this_thread::sleep_for(150ms);
  ::kill(pid, SIGTERM);
  client.join();
  EXPECT_EQ(in_flight.status, 503);  // answered, not cut
  int status = 0;
  bool exited = WaitUntil([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, 10s);
  if (!exited) ::kill(pid, SIGKILL), ::waitpid(pid, &status, 0);
  ASSERT_TRUE(exited);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  ResumeDb();
}

}  // namespace
