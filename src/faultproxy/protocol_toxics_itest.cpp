// The protocol-aware toxics end to end: the faultproxy binary in front of a real redis-server
// (hiredis client), a real MariaDB (Connector/C client, as the service uses it) and an HTTP/1.1
// upstream, toxics added through the API and faultproxy-cli, checked from what the clients see.
// Timing bounds are generous (the machine is shared).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <mysql.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <sstream>
#include <thread>

#include "faultproxy/cli/cli.h"
#include "faultproxy/http_parser.h"
#include "testing/servers.h"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using faultproxy::cli::HttpClient;
using faultproxy::cli::HttpClientSettings;

class Faultproxy {
 public:
  Faultproxy() {
    port_ = testing_support::free_port();
    process_ = testing_support::Process::spawn({FAULTPROXY_BINARY, "-host", "127.0.0.1", "-port",
                                                std::to_string(port_), "-proxy-metrics", "-seed", "7"},
                                               dir_.path() / "faultproxy.log");
    const auto deadline = Clock::now() + 20s;
    while (Clock::now() < deadline && !call("GET", "/version").response)
      std::this_thread::sleep_for(20ms);
  }
  faultproxy::cli::HttpOutcome call(std::string_view method, std::string_view path,
                                    std::optional<std::string> body = std::nullopt) {
    return HttpClient("127.0.0.1:" + std::to_string(port_), HttpClientSettings{}).send(method, path, body);
  }
  // POST/PATCH/DELETE expecting `status`; returns the body.
  std::string expect(unsigned status, std::string_view method, std::string_view path,
                     std::optional<std::string> body = std::nullopt) {
    auto r = call(method, path, std::move(body));
    EXPECT_TRUE(r.response) << r.error;
    if (!r.response) return {};
    EXPECT_EQ(r.response->status, status) << r.response->body;
    return r.response->body;
  }
  std::uint16_t proxy(const std::string& name, std::uint16_t upstream) {
    const std::string body =
        expect(201, "POST", "/proxies",
               R"({"name":")" + name + R"(","listen":"127.0.0.1:0","upstream":"127.0.0.1:)" +
                   std::to_string(upstream) + "\"}");
    const auto p = body.find("\"listen\":\"127.0.0.1:");
    return static_cast<std::uint16_t>(std::stoi(body.substr(p + 20)));
  }
  // faultproxy-cli with these arguments; returns its exit code, output in `out`.
  int cli(std::vector<std::string> args, std::string* out = nullptr) {
    args.insert(args.begin(), {"-h", "127.0.0.1:" + std::to_string(port_)});
    std::ostringstream o, e;
    const int rc = faultproxy::cli::run_cli(
        "faultproxy-cli", args, {}, {o, e, false},
        [](const std::string& url) { return std::make_unique<HttpClient>(url, HttpClientSettings{}); });
    if (out) *out = o.str() + e.str();
    return rc;
  }

 private:
  testing_support::TempDir dir_;
  std::uint16_t port_ = 0;
  testing_support::Process process_;
};

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// ---- redis ----------------------------------------------------------------------------------------

struct RedisReply {
  int type = 0;
  std::string str;
};

RedisReply command(redisContext* c, const char* format, ...) {
  va_list ap;
  va_start(ap, format);
  auto* r = static_cast<redisReply*>(redisvCommand(c, format, ap));
  va_end(ap);
  RedisReply out;
  if (!r) return out;
  out.type = r->type;
  if (r->str) out.str.assign(r->str, r->len);
  freeReplyObject(r);
  return out;
}

TEST(ProtocolToxicsItest, RedisErrorAndDelayWithHiredis) {
  testing_support::TempDir dir;
  auto redis = testing_support::RedisServer::start(dir.path() / "redis");
  Faultproxy fp;
  const auto port = fp.proxy("redis", redis.port());
  redisContext* c = redisConnect("127.0.0.1", port);
  ASSERT_TRUE(c && !c->err);
  EXPECT_EQ(command(c, "SET k before").str, "OK");

  // Added while the connection is open (as in a failover), through the CLI, default stream.
  std::string out;
  ASSERT_EQ(
      fp.cli({"toxic", "add", "-t", "redis_error", "-n", "ro", "-a", "commands=set,EVALSHA", "redis"}, &out),
      0)
      << out;
  auto r = command(c, "SET k after");
  EXPECT_EQ(r.type, REDIS_REPLY_ERROR);
  EXPECT_EQ(r.str, "READONLY You can't write against a read only replica.");
  EXPECT_EQ(command(c, "GET k").str, "before");  // the SET never reached Redis

  // Pipelined: each reply in its place.
  redisAppendCommand(c, "GET k");
  redisAppendCommand(c, "SET k x");
  redisAppendCommand(c, "INCR n");
  std::vector<RedisReply> replies;
  for (int i = 0; i < 3; ++i) {
    void* raw = nullptr;
    ASSERT_EQ(redisGetReply(c, &raw), REDIS_OK);
    auto* rr = static_cast<redisReply*>(raw);
    replies.push_back({rr->type, rr->str ? std::string(rr->str, rr->len) : std::to_string(rr->integer)});
    freeReplyObject(rr);
  }
  EXPECT_EQ(replies[0].str, "before");
  EXPECT_EQ(replies[1].type, REDIS_REPLY_ERROR);
  EXPECT_EQ(replies[2].str, "1");

  // Another error text through the API; then removed: writes work again on the same connection.
  fp.expect(200, "POST", "/proxies/redis/toxics/ro",
            R"({"attributes":{"error":"OOM command not allowed when used memory > 'maxmemory'."}})");
  EXPECT_EQ(command(c, "SET k y").str, "OOM command not allowed when used memory > 'maxmemory'.");
  const std::string metrics = fp.expect(200, "GET", "/metrics");
  EXPECT_NE(
      metrics.find("faultproxy_toxic_actions_total{proxy=\"redis\",toxic=\"ro\",type=\"redis_error\"} 3"),
      std::string::npos)
      << metrics;
  fp.expect(204, "DELETE", "/proxies/redis/toxics/ro");
  EXPECT_EQ(command(c, "SET k z").str, "OK");

  fp.expect(200, "POST", "/proxies/redis/toxics",
            R"({"type":"redis_delay","stream":"upstream","attributes":{"commands":"GET","latency":300}})");
  auto t = Clock::now();
  EXPECT_EQ(command(c, "SET k w").str, "OK");
  EXPECT_LT(ms_since(t), 250);
  t = Clock::now();
  EXPECT_EQ(command(c, "GET k").str, "w");
  EXPECT_GE(ms_since(t), 290);
  redisFree(c);
}

// ---- mysql ----------------------------------------------------------------------------------------

class Maria {
 public:
  Maria(std::uint16_t port, bool compress = false) {
    m_ = mysql_init(nullptr);
    if (compress) mysql_options(m_, MYSQL_OPT_COMPRESS, nullptr);
    ok_ = mysql_real_connect(m_, "127.0.0.1", "root", "", "t", port, nullptr, 0) != nullptr;
  }
  ~Maria() { mysql_close(m_); }
  bool ok() const { return ok_; }
  // 0 on success, else the error number; `error` gets "<sqlstate> <message>".
  unsigned query(const std::string& sql, std::string* error = nullptr) {
    if (mysql_real_query(m_, sql.data(), sql.size()) != 0) return fail(error);
    if (MYSQL_RES* res = mysql_store_result(m_)) {
      MYSQL_ROW row = mysql_fetch_row(res);
      last_ = row && row[0] ? row[0] : "";
      mysql_free_result(res);
    }
    return mysql_errno(m_);
  }
  const std::string& value() const { return last_; }
  unsigned prepared(const std::string& sql, std::string* error = nullptr) {
    MYSQL_STMT* s = mysql_stmt_init(m_);
    unsigned rc = 0;
    if (mysql_stmt_prepare(s, sql.data(), sql.size()) != 0 || mysql_stmt_execute(s) != 0) {
      rc = mysql_stmt_errno(s);
      if (error) *error = std::string(mysql_stmt_sqlstate(s)) + " " + mysql_stmt_error(s);
    }
    mysql_stmt_close(s);
    return rc;
  }

 private:
  unsigned fail(std::string* error) {
    if (error) *error = std::string(mysql_sqlstate(m_)) + " " + mysql_error(m_);
    return mysql_errno(m_);
  }
  MYSQL* m_;
  bool ok_ = false;
  std::string last_;
};

TEST(ProtocolToxicsItest, MysqlErrorAndDelayWithConnectorC) {
  testing_support::TempDir dir;
  auto db = testing_support::MariaDbServer::start(dir.path() / "db");
  db.sql("CREATE DATABASE t; CREATE TABLE t.kv (k INT PRIMARY KEY, v INT)");
  Faultproxy fp;
  const auto port = fp.proxy("mysql", db.port());
  Maria m(port);
  ASSERT_TRUE(m.ok());

  fp.expect(200, "POST", "/proxies/mysql/toxics",
            R"({"name":"deadlock","type":"mysql_error","attributes":{"statement":"^\\s*update"}})");
  ASSERT_EQ(m.query("START TRANSACTION"), 0u);
  ASSERT_EQ(m.query("INSERT INTO kv VALUES (1, 1)"), 0u);
  std::string error;
  EXPECT_EQ(m.query("update kv SET v = 2", &error), 1213u);
  EXPECT_EQ(error, "40001 Deadlock found when trying to get lock; try restarting transaction");
  // As in MariaDB, the deadlock rolled the whole transaction back.
  ASSERT_EQ(m.query("COMMIT"), 0u);
  ASSERT_EQ(m.query("SELECT COUNT(*) FROM kv"), 0u);
  EXPECT_EQ(m.value(), "0");

  // Prepared statements: matched on the text given at prepare time.
  fp.expect(200, "PATCH", "/proxies/mysql/toxics/deadlock", R"({"attributes":{"code":1290}})");
  ASSERT_EQ(m.query("INSERT INTO kv VALUES (2, 2)"), 0u);
  EXPECT_EQ(m.prepared("UPDATE kv SET v = 3 WHERE k = 2", &error), 1290u);
  EXPECT_EQ(
      error,
      "HY000 The MariaDB server is running with the --read-only option so it cannot execute this statement");
  EXPECT_EQ(m.prepared("SELECT v FROM kv WHERE k = 2"), 0u);

  // A compressed connection is passed through untouched.
  {
    Maria compressed(port, /*compress=*/true);
    ASSERT_TRUE(compressed.ok());
    EXPECT_EQ(compressed.query("UPDATE kv SET v = 4 WHERE k = 2"), 0u);
  }

  // 2013: the connection is cut in the middle of the answer.
  fp.expect(200, "PATCH", "/proxies/mysql/toxics/deadlock",
            R"({"attributes":{"code":2013,"statement":"FROM kv"}})");
  EXPECT_EQ(m.query("SELECT k, v FROM kv"), 2013u);
  fp.expect(204, "DELETE", "/proxies/mysql/toxics/deadlock");

  Maria fresh(port);
  ASSERT_TRUE(fresh.ok());
  fp.expect(200, "POST", "/proxies/mysql/toxics",
            R"({"type":"mysql_delay","attributes":{"statement":"^select","latency":300}})");
  auto t = Clock::now();
  EXPECT_EQ(fresh.query("SELECT v FROM kv WHERE k = 2"), 0u);
  EXPECT_EQ(fresh.value(), "4");
  EXPECT_GE(ms_since(t), 290);
  t = Clock::now();
  EXPECT_EQ(fresh.query("DO 1"), 0u);
  EXPECT_LT(ms_since(t), 250);
}

// ---- http -----------------------------------------------------------------------------------------

// A keep-alive HTTP/1.1 upstream answering each request with its target as the body.
class HttpUpstream {
 public:
  HttpUpstream() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 16);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        const int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        std::thread([this, c] { serve(c); }).detach();
      }
    });
  }
  ~HttpUpstream() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::uint16_t port() const { return port_; }
  int requests() const { return requests_; }

 private:
  void serve(int c) {
    faultproxy::HttpScanner s(faultproxy::HttpScanner::Mode::requests);
    char buf[4096];
    std::string target;
    for (;;) {
      const ssize_t n = ::recv(c, buf, sizeof buf, 0);
      if (n <= 0) break;
      std::string_view in(buf, static_cast<std::size_t>(n));
      while (!in.empty()) {
        const std::size_t used = s.feed(in);
        in.remove_prefix(used);
        if (s.head_now()) target = s.head().target;
        if (s.ended()) {
          ++requests_;
          const std::string r =
              "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(target.size()) + "\r\n\r\n" + target;
          ::send(c, r.data(), r.size(), MSG_NOSIGNAL);
        }
        if (used == 0) break;
      }
    }
    ::close(c);
  }
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<int> requests_{0};
  std::thread thread_;
};

// Sends `requests` at once on one connection; returns everything read until `responses` bodies
// ("HTTP/1.1" status lines) came back or the connection closed.
std::string pipelined(std::uint16_t port, const std::string& requests, int responses) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return "connect failed";
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::send(fd, requests.data(), requests.size(), MSG_NOSIGNAL);
  std::string got;
  char buf[4096];
  auto count = [&got] {
    int n = 0;
    for (auto p = got.find("HTTP/1.1 "); p != std::string::npos; p = got.find("HTTP/1.1 ", p + 1))
      ++n;
    return n;
  };
  while (count() < responses) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  std::this_thread::sleep_for(50ms);  // anything extra would show up
  const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
  if (n > 0) got.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return got;
}

TEST(ProtocolToxicsItest, HttpAbortAndDelayWithKeepAliveAndPipelining) {
  HttpUpstream upstream;
  Faultproxy fp;
  const auto port = fp.proxy("web", upstream.port());
  std::string out;
  ASSERT_EQ(fp.cli({"toxic", "add", "-t", "http_abort", "-n", "abort", "-a", "status=503", "-a",
                    "method=POST", "-a", "path_prefix=/users", "-a", "body=fault", "web"},
                   &out),
            0)
      << out;
  const std::string get = "GET /users/1 HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string post = "POST /users HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";
  const std::string get2 = "GET /other HTTP/1.1\r\nHost: x\r\n\r\n";
  EXPECT_EQ(pipelined(port, get + post + get2, 3),
            "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n/users/1"
            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 5\r\ncontent-type: text/plain\r\n\r\nfault"
            "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n/other");
  EXPECT_EQ(upstream.requests(), 2);

  // Header-controlled (status 0): only requests asking for it.
  fp.expect(200, "PATCH", "/proxies/web/toxics/abort",
            R"({"attributes":{"status":0,"method":"","path_prefix":""}})");
  EXPECT_EQ(pipelined(port, "GET /a HTTP/1.1\r\nx-envoy-fault-abort-request: 418\r\n\r\n" + get2, 2),
            "HTTP/1.1 418 Fault\r\ncontent-length: 5\r\ncontent-type: text/plain\r\n\r\nfault"
            "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n/other");
  fp.expect(204, "DELETE", "/proxies/web/toxics/abort");

  fp.expect(200, "POST", "/proxies/web/toxics",
            R"({"name":"slow","type":"http_delay","attributes":{"path_prefix":"/slow","latency":300}})");
  auto t = Clock::now();
  EXPECT_EQ(pipelined(port, get2, 1), "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n/other");
  EXPECT_LT(ms_since(t), 250);
  t = Clock::now();
  EXPECT_EQ(pipelined(port, "GET /slow HTTP/1.1\r\n\r\n", 1),
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n/slow");
  EXPECT_GE(ms_since(t), 290);

  // Bad attributes: a clear 400, nothing added.
  const std::string bad =
      fp.expect(400, "POST", "/proxies/web/toxics", R"({"type":"http_abort","attributes":{"status":99}})");
  EXPECT_NE(bad.find("bad request body: attributes.status: an HTTP status 200..599"), std::string::npos)
      << bad;
}

}  // namespace
