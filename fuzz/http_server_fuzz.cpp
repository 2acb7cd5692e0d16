// Fuzz target: HTTP/1.1 request parsing and connection handling as both programs do it: the input's
// bytes are sent over a real loopback connection (in a private network namespace) to a real
// common::http::Server, whose handler echoes what it was given.
//
// Checked on every input, besides memory safety and UB in the server:
// - the server closes the connection once the client has sent everything and half-closed it (no
//   hang; everything it could parse it answered);
// - what the server sent is a well-formed sequence of HTTP responses, one per request it read
//   (plus interim 100 Continue), with no body on a response to HEAD, nothing after the last one;
// - statuses are the handler's 200 or the server's own 400, 413, 431 (500 for /throw).
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <deque>
#include <memory>
#include <optional>

#include "common/http_server.h"
#include "common/log.h"
#include "support/fuzz_support.h"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::ip::tcp;
using namespace std::chrono_literals;
using fuzz_support::check;

constexpr std::uint64_t kBodyLimit = 64 * 1024;
constexpr std::uint32_t kHeaderLimit = 16 * 1024;

// Shared by every input; the guard keeps it from stopping when it runs out of work between inputs.
// Never destroyed: the server (also never destroyed) lives on it.
asio::io_context& io() {
  static auto* ctx = new asio::io_context;
  static auto guard = asio::make_work_guard(*ctx);
  return *ctx;
}

common::http::Server& server() {
  static auto& s = *new common::http::Server(
      io().get_executor(),
      [] {
        common::http::ServerSettings settings;
        settings.request_timeout = 5s;
        settings.idle_timeout = 5s;
        settings.body_limit = kBodyLimit;
        settings.header_limit = kHeaderLimit;
        return settings;
      }(),
      [](common::http::Request& req,
         const common::http::RequestInfo&) -> asio::awaitable<common::http::Response> {
        if (req.target() == "/throw") throw std::runtime_error("handler failure");
        std::string body = std::string(req.method_string()) + " " + std::string(req.target()) + " " +
                           std::to_string(req.body().size()) + "\n";
        co_return common::http::make_response(req, bhttp::status::ok, std::move(body), "text/plain");
      });
  return s;
}

// What a conforming HTTP/1.1 server could read from `input`: the methods of the complete
// requests, in order, the way the server's parser sees them, up to one that ends the connection.
//
// Beast enforces header_limit on the bytes not yet consumed: fields parsed in an earlier read do
// not count, so a header that arrives in pieces may exceed the limit by up to what the first read
// held (at most about twice the limit; 100 KB is refused, see the hostile-client tests). The
// server's answers are therefore bounded by what a parser reading everything at once accepts with
// the limit and with twice the limit.
std::vector<bhttp::verb> complete_requests(std::string_view input, std::uint32_t header_limit) {
  std::vector<bhttp::verb> verbs;
  while (!input.empty()) {
    bhttp::request_parser<bhttp::string_body> p;
    p.header_limit(header_limit);
    p.body_limit(kBodyLimit);
    p.eager(true);
    boost::system::error_code ec;
    const std::size_t used = p.put(asio::buffer(input.data(), input.size()), ec);
    if (ec || !p.is_done()) break;
    verbs.push_back(p.get().method());
    if (!p.get().keep_alive()) break;  // the server closes after answering it
    input.remove_prefix(used);
  }
  return verbs;
}

struct Exchange {
  std::string response;
  bool done = false;
};

asio::awaitable<void> client(std::string input, std::shared_ptr<Exchange> out, tcp::endpoint server_ep) {
  tcp::socket socket(io());
  co_await socket.async_connect(server_ep, asio::use_awaitable);
  asio::co_spawn(
      io(),
      [&socket, input = std::move(input)]() -> asio::awaitable<void> {
        co_await asio::async_write(socket, asio::buffer(input), asio::as_tuple(asio::use_awaitable));
        boost::system::error_code ignored;
        socket.shutdown(tcp::socket::shutdown_send, ignored);
      },
      asio::detached);
  char buf[16384];
  for (;;) {
    auto [ec, n] = co_await socket.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
    out->response.append(buf, n);
    if (ec) break;
  }
  out->done = true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  common::log::set_level(common::log::Level::off);
  fuzz_support::isolate_network();
  if (auto ec = server().listen({asio::ip::make_address("127.0.0.1"), 0})) {
    std::fprintf(stderr, "listen: %s\n", ec.message().c_str());
    std::exit(1);
  }
  server().start();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  auto ex = std::make_shared<Exchange>();
  asio::co_spawn(io(), client(input, ex, server().local_endpoint()), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  const auto give_up = std::chrono::steady_clock::now() + 3s;
  while (!ex->done || server().connection_count() > 0) {
    check(std::chrono::steady_clock::now() < give_up, "the server did not close a half-closed connection",
          input);
    io().run_one_for(10ms);
  }

  // The answers: one per complete request, well-formed, nothing else.
  const auto verbs = complete_requests(input, 2 * kHeaderLimit);
  const std::size_t at_least = complete_requests(input, kHeaderLimit).size();
  std::string_view rest = ex->response;
  std::size_t answered = 0;
  bool closed_on_error = false;
  while (!rest.empty()) {
    bhttp::response_parser<bhttp::string_body> p;
    p.body_limit(1024 * 1024);
    const bool head = answered < verbs.size() && verbs[answered] == bhttp::verb::head;
    p.skip(head);
    boost::system::error_code ec;
    std::size_t used = p.put(asio::buffer(rest.data(), rest.size()), ec);
    if (!ec && p.is_header_done() && !p.is_done()) {
      used += p.put(asio::buffer(rest.data() + used, rest.size() - used), ec);
    }
    check(!ec && p.is_done(), "the server sent a malformed or truncated response",
          std::string(rest.substr(0, 2000)) + "\n[request]\n" + input);
    rest.remove_prefix(used);
    const unsigned status = p.get().result_int();
    if (status == 100) continue;
    check(status == 200 || status == 400 || status == 413 || status == 431 || status == 500,
          "unexpected status", ex->response);
    if (status != 200 && status != 500) {
      closed_on_error = true;
      check(rest.empty(), "bytes after the server's error response", ex->response);
    }
    ++answered;
  }
  if (!closed_on_error) {
    check(answered >= at_least && answered <= verbs.size(),
          "the server did not answer every complete request",
          std::to_string(answered) + " answers, " + std::to_string(at_least) + ".." +
              std::to_string(verbs.size()) + " requests\n" + ex->response);
  } else {
    check(answered <= verbs.size() + 1, "more answers than requests", ex->response);
  }
  return 0;
}
