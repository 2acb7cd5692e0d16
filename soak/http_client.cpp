#include "soak/http_client.h"

#include <strings.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <optional>

#include "soak/history.h"

namespace soak {

namespace beast = boost::beast;
namespace http = beast::http;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

int classify(const boost::system::error_code& ec) {
  if (ec == beast::error::timeout) return kTimeout;
  if (ec == asio::error::connection_refused) return kRefused;
  if (ec == asio::error::connection_reset) return kReset;
  if (ec == asio::error::eof || ec == http::error::end_of_stream || ec == http::error::partial_message ||
      ec == asio::error::broken_pipe)
    return kClosed;
  return kOther;
}

}  // namespace

std::string_view HttpResult::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() && ::strncasecmp(k.data(), name.data(), k.size()) == 0) return v;
  }
  return {};
}

bool HttpResult::has_header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() && ::strncasecmp(k.data(), name.data(), k.size()) == 0) return true;
  }
  return false;
}

struct HttpClient::Impl {
  asio::any_io_executor ex;
  asio::ip::tcp::endpoint server;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
};

HttpClient::HttpClient(asio::any_io_executor ex, asio::ip::tcp::endpoint server)
    : impl_(std::make_unique<Impl>(Impl{ex, server, std::nullopt, {}})) {}

HttpClient::~HttpClient() = default;

asio::awaitable<HttpResult> HttpClient::request(std::string_view method, std::string target, std::string body,
                                                std::chrono::milliseconds timeout) {
  Impl& s = *impl_;
  HttpResult out;
  const auto fail = [&](const boost::system::error_code& ec, std::string_view stage) {
    out.status = classify(ec);
    out.error = std::string(stage) + ": " + ec.message();
    out.done = Clock::now();
    if (s.stream) {
      boost::system::error_code ignored;
      s.stream->socket().close(ignored);
      s.stream.reset();
    }
    s.buffer.clear();
  };

  const auto started = Clock::now();
  out.sent = started;
  if (!s.stream) {
    s.stream.emplace(s.ex);
    s.stream->expires_after(timeout);
    auto [ec] = co_await s.stream->async_connect(s.server, nothrow);
    if (ec) {
      fail(ec, "connect");
      co_return out;
    }
    s.stream->socket().set_option(asio::ip::tcp::no_delay(true), ec);
  }
  const auto left = timeout - std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
  s.stream->expires_after(std::max(left, std::chrono::milliseconds(1)));

  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, "127.0.0.1");
  req.set(http::field::user_agent, "soak");
  if (!body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = std::move(body);
  }
  req.keep_alive(true);
  req.prepare_payload();

  out.sent = Clock::now();
  if (auto [ec, n] = co_await http::async_write(*s.stream, req, nothrow); ec) {
    fail(ec, "write");
    co_return out;
  }
  http::response_parser<http::string_body> parser;
  parser.body_limit(4 * 1024 * 1024);
  if (auto [ec, n] = co_await http::async_read(*s.stream, s.buffer, parser, nothrow); ec) {
    fail(ec, "read");
    co_return out;
  }
  out.done = Clock::now();
  auto res = parser.release();
  out.status = static_cast<int>(res.result_int());
  for (const auto& f : res)
    out.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
  out.body = std::move(res.body());
  if (!res.keep_alive()) {
    boost::system::error_code ignored;
    s.stream->socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    s.stream->socket().close(ignored);
    s.stream.reset();
    s.buffer.clear();
  } else {
    s.stream->expires_never();
  }
  co_return out;
}

}  // namespace soak
