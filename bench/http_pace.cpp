// http_pace: a paced HTTP/1.1 client for the user-service benchmark (bench/user_service.sh). It
// starts one request every `interval` whatever the previous ones are doing (open loop, so a slow
// answer never delays the next request: what a low-rate client sees while a dependency hangs), on
// keep-alive connections taken from a pool (a new one only when every open one is busy), and prints
// one line per request:
//
//   <index> <start ms since the first request> <latency ms> <status or 0 on a transport error> <match>
//
// where <match> is 1 when the response body contains the --match text. The benchmark uses it to
// tell apart, by the service's own answer, a PUT that waited for MariaDB from one refused by the
// open circuit breaker. Latency is from the first byte written to the complete response.
//
//   http_pace --port 8080 --method PUT --path /users/pace-{n} --body '{"name":"x"}'
//             --interval-ms 5 --count 300 [--host 127.0.0.1] [--match TEXT] [--timeout-ms 5000]
//
// `{n}` in the path is replaced by the request's index. One thread, Asio coroutines. Exit code 0
// when every request was sent (whatever the answers), 2 for bad arguments.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "common/version.h"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using Clock = std::chrono::steady_clock;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

struct Settings {
  std::string host = "127.0.0.1";
  unsigned short port = 0;
  bhttp::verb method = bhttp::verb::get;
  std::string path = "/";
  std::string body;
  std::string match;
  std::chrono::microseconds interval{10000};
  int count = 100;
  std::chrono::milliseconds timeout{5000};
};

struct Conn {
  explicit Conn(asio::any_io_executor ex) : stream(ex) {}
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
};

struct Result {
  double start_ms = 0;
  double latency_ms = 0;
  unsigned status = 0;
  bool match = false;
};

class Pacer {
 public:
  Pacer(asio::io_context& io, Settings s) : io_(io), s_(std::move(s)), results_(s_.count) {}

  asio::awaitable<void> run() {
    asio::steady_timer timer(io_);
    t0_ = Clock::now();
    for (int i = 0; i < s_.count; ++i) {
      timer.expires_at(t0_ + s_.interval * i);
      co_await timer.async_wait(use_nothrow);
      ++in_flight_;
      asio::co_spawn(io_, one(i), asio::detached);
    }
  }

  const std::vector<Result>& results() const { return results_; }

 private:
  asio::awaitable<void> one(int index) {
    std::unique_ptr<Conn> conn;
    if (!idle_.empty()) {
      conn = std::move(idle_.back());
      idle_.pop_back();
    } else {
      conn = std::make_unique<Conn>(io_.get_executor());
      conn->stream.expires_after(s_.timeout);
      const asio::ip::tcp::endpoint ep(asio::ip::make_address(s_.host), s_.port);
      auto [ec] = co_await conn->stream.async_connect(ep, use_nothrow);
      if (ec) {
        results_[index] = {ms(Clock::now() - t0_), 0, 0, false};
        --in_flight_;
        co_return;
      }
      boost::system::error_code ignored;
      conn->stream.socket().set_option(asio::ip::tcp::no_delay(true), ignored);
    }
    std::string path = s_.path;
    if (const auto p = path.find("{n}"); p != std::string::npos) path.replace(p, 3, std::to_string(index));
    bhttp::request<bhttp::string_body> req{s_.method, path, 11};
    req.set(bhttp::field::host, s_.host);
    if (!s_.body.empty()) {
      req.set(bhttp::field::content_type, "application/json");
      req.body() = s_.body;
    }
    req.prepare_payload();
    const auto started = Clock::now();
    conn->stream.expires_after(s_.timeout);
    auto [wec, wn] = co_await bhttp::async_write(conn->stream, req, use_nothrow);
    bhttp::response<bhttp::string_body> res;
    boost::system::error_code rec = wec;
    if (!wec) {
      auto [ec, n] = co_await bhttp::async_read(conn->stream, conn->buffer, res, use_nothrow);
      rec = ec;
    }
    const auto finished = Clock::now();
    Result& r = results_[index];
    r.start_ms = ms(started - t0_);
    r.latency_ms = ms(finished - started);
    if (!rec) {
      r.status = res.result_int();
      r.match = !s_.match.empty() && res.body().find(s_.match) != std::string::npos;
      if (res.keep_alive()) idle_.push_back(std::move(conn));
    }
    --in_flight_;
  }

  static double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

  asio::io_context& io_;
  Settings s_;
  std::vector<Result> results_;
  std::vector<std::unique_ptr<Conn>> idle_;
  Clock::time_point t0_;
  int in_flight_ = 0;
};

int usage() {
  std::cerr << "usage: http_pace --port P [--host H] [--method GET|PUT|DELETE] [--path /p/{n}] [--body B]\n"
               "                 [--interval-ms MS] [--count N] [--match TEXT] [--timeout-ms MS]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (common::print_version_if_asked(argc, argv, "http_pace")) return 0;
  Settings s;
  const std::vector<std::string> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); i += 2) {
    if (i + 1 >= args.size()) return usage();
    const std::string& k = args[i];
    const std::string& v = args[i + 1];
    if (k == "--port") {
      s.port = static_cast<unsigned short>(std::atoi(v.c_str()));
    } else if (k == "--host") {
      s.host = v;
    } else if (k == "--method") {
      s.method = bhttp::string_to_verb(v);
      if (s.method == bhttp::verb::unknown) return usage();
    } else if (k == "--path") {
      s.path = v;
    } else if (k == "--body") {
      s.body = v;
    } else if (k == "--match") {
      s.match = v;
    } else if (k == "--interval-ms") {
      s.interval = std::chrono::microseconds(static_cast<long>(std::atof(v.c_str()) * 1000));
    } else if (k == "--count") {
      s.count = std::atoi(v.c_str());
    } else if (k == "--timeout-ms") {
      s.timeout = std::chrono::milliseconds(std::atoi(v.c_str()));
    } else {
      return usage();
    }
  }
  if (s.port == 0 || s.count <= 0 || s.interval.count() <= 0 || s.timeout.count() <= 0) return usage();

  asio::io_context io(1);
  Pacer pacer(io, s);
  asio::co_spawn(io, pacer.run(), asio::detached);
  io.run();
  int i = 0;
  for (const auto& r : pacer.results()) {
    std::printf("%d %.3f %.3f %u %d\n", i++, r.start_ms, r.latency_ms, r.status, r.match ? 1 : 0);
  }
  return 0;
}
