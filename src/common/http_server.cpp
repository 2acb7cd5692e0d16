#include "common/http_server.h"

#include <sys/resource.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <ctime>
#include <list>
#include <mutex>
#include <tuple>

#include "common/log.h"

namespace common::http {
namespace {

constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

bool is_disconnect(const boost::system::error_code& ec) {
  return ec == asio::error::eof || ec == bhttp::error::end_of_stream || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::operation_aborted ||
         ec == beast::error::timeout || ec == asio::error::not_connected || ec == asio::error::bad_descriptor;
}

}  // namespace

Response json_error(bhttp::status status, std::string_view message, unsigned version) {
  std::string body = "{\"error\":\"";
  log::append_json_escaped(body, message);
  body += "\"}";
  Response res{status, version};
  res.set(bhttp::field::content_type, "application/json");
  res.body() = std::move(body);
  return res;
}

Response make_response(const Request& req, bhttp::status status, std::string body,
                       std::string_view content_type) {
  Response res;
  fill_response(res, req, status, std::move(body), content_type);
  return res;
}

void fill_response(Response& res, const Request& req, bhttp::status status, std::string body,
                   std::string_view content_type) {
  res.result(status);
  res.version(req.version());
  if (!content_type.empty()) res.set(bhttp::field::content_type, content_type);
  res.keep_alive(req.keep_alive());
  res.body() = std::move(body);
}

const std::string& http_date_now() {
  static thread_local std::time_t cached_second = 0;
  static thread_local std::string cached;
  const std::time_t now = std::time(nullptr);
  if (now != cached_second) {
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[64];
    const std::size_t n = std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    cached.assign(buf, n);
    cached_second = now;
  }
  return cached;
}

std::optional<std::string_view> ResponseFields::line_value(std::string_view name) const {
  if (const auto it = find(name); it != end()) return std::string_view(it->value());
  std::string_view rest = lines_;
  while (!rest.empty()) {
    const std::size_t eol = rest.find("\r\n");
    const std::string_view line = rest.substr(0, eol);
    rest.remove_prefix(eol + 2);
    const std::size_t colon = line.find(':');
    if (beast::iequals(line.substr(0, colon), name)) return line.substr(colon + 2);
  }
  return std::nullopt;
}

void append_response_head(const Response& res, std::string& out) {
  const unsigned version = res.version();
  const unsigned code = res.result_int();
  const std::string_view reason = res.reason();
  char start[] = "HTTP/1.1 200 ";  // "HTTP/X.Y ### ", as Beast writes it
  start[5] = static_cast<char>('0' + version / 10 % 10);
  start[7] = static_cast<char>('0' + version % 10);
  start[9] = static_cast<char>('0' + code / 100 % 10);
  start[10] = static_cast<char>('0' + code / 10 % 10);
  start[11] = static_cast<char>('0' + code % 10);
  out.append(start, 13);
  out.append(reason);
  out.append("\r\n");
  for (const auto& f : res) {
    out.append(f.name_string());
    out.append(": ");
    out.append(f.value());
    out.append("\r\n");
  }
  out.append(res.lines());
  out.append("\r\n");
}

namespace {

// A response as two buffers for one gather write: its head, formatted into `head`, and its body
// (none for an answer to HEAD).
std::array<asio::const_buffer, 2> response_buffers(const Response& res, std::string& head, bool head_only) {
  head.clear();
  append_response_head(res, head);
  return {asio::buffer(head), head_only ? asio::const_buffer() : asio::buffer(res.body())};
}

}  // namespace

void raise_open_file_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
}

struct Server::Impl : std::enable_shared_from_this<Impl> {
  struct Connection {
    explicit Connection(asio::ip::tcp::socket s) : stream(std::move(s)) {}
    beast::tcp_stream stream;
    std::string head;   // the head of the response being written (its capacity kept between them)
    bool busy = false;  // a request is being read, handled or answered
    bool shed = false;  // closed to make room; its session is winding up
    std::list<std::shared_ptr<Connection>>::iterator self;  // its place in `connections`
  };

  Impl(asio::any_io_executor ex, ServerSettings s, Handler h, ErrorResponder e)
      : executor(ex), acceptor(ex), settings(s), handler(std::move(h)), errors(std::move(e)) {}

  asio::any_io_executor executor;
  asio::ip::tcp::acceptor acceptor;
  ServerSettings settings;
  std::size_t max_connections = 0;  // settings.max_connections, lowered to fit the descriptor limit
  Handler handler;
  ErrorResponder errors;
  // Most recently active first: a connection moves to the front when accepted and after each
  // request, so the idle one at the back is the one idle the longest.
  std::list<std::shared_ptr<Connection>> connections;
  bool draining = false;
  std::size_t shed_pending = 0;  // shed connections still in the list (their descriptors are closed)

  // At the cap: closes the connection idle the longest to make room. False if all are busy.
  bool shed_idle_connection() {
    for (auto it = connections.rbegin(); it != connections.rend(); ++it) {
      Connection& c = **it;
      if (c.busy || c.shed) continue;
      boost::system::error_code ignored;
      c.stream.socket().close(ignored);  // its session sees its read aborted and ends
      c.shed = true;
      ++shed_pending;
      return true;
    }
    return false;
  }

  void finalize(Response& res, bool keep_alive) {
    if (settings.add_date_header && res.find(bhttp::field::date) == res.end()) {
      res.set(bhttp::field::date, http_date_now());
    }
    res.keep_alive(keep_alive);
    const auto code = res.result_int();
    // Either way the answer is framed by its length, never chunked (content_length() and
    // prepare_payload() drop `chunked`): the server writes a head and a body of known length.
    if (code == 204 || code == 304 || (code >= 100 && code < 200)) {
      res.body().clear();
      res.content_length(boost::none);
    } else {
      res.prepare_payload();
    }
  }

  asio::awaitable<void> accept_loop() {
    auto self = shared_from_this();
    asio::steady_timer backoff(executor);
    while (acceptor.is_open()) {
      auto [ec, socket] = co_await acceptor.async_accept(use_nothrow);
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) break;
      if (ec) {
        // Out of descriptors (something else took them: the cap leaves a reserve): an idle
        // connection gives one back and the client waiting in the backlog is accepted at once.
        if ((ec == asio::error::no_descriptors || ec == boost::system::errc::too_many_files_open_in_system) &&
            shed_idle_connection()) {
          continue;
        }
        // Otherwise wait a little instead of spinning; the listener stays up.
        log::warn("accept failed", {{"error", ec.message()}});
        backoff.expires_after(std::chrono::milliseconds(50));
        co_await backoff.async_wait(use_nothrow);
        continue;
      }
      if (draining || (connections.size() - shed_pending >= max_connections && !shed_idle_connection())) {
        boost::system::error_code ignored;
        socket.close(ignored);
        continue;
      }
      boost::system::error_code ignored;
      socket.set_option(asio::ip::tcp::no_delay(true), ignored);
      auto conn = std::make_shared<Connection>(std::move(socket));
      connections.push_front(conn);
      conn->self = connections.begin();
      asio::co_spawn(executor, session(conn), asio::detached);
    }
  }

  asio::awaitable<void> session(std::shared_ptr<Connection> conn) {
    auto self = shared_from_this();
    try {
      co_await serve(*conn);
    } catch (const std::exception& e) {
      log::error("http session failed", {{"error", e.what()}});
    }
    boost::system::error_code ignored;
    conn->stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    conn->stream.socket().close(ignored);
    if (conn->shed) --shed_pending;
    connections.erase(conn->self);
  }

  asio::awaitable<void> write_error(Connection& conn, bhttp::status status, std::string_view message,
                                    unsigned version) {
    Response res = errors(status, message, version);
    finalize(res, false);
    conn.stream.expires_after(settings.write_timeout);
    const auto parts = response_buffers(res, conn.head, false);
    auto [ec, n] = co_await asio::async_write(conn.stream, parts, use_nothrow);
    if (ec) co_return;
    // Lingering close: the client may still be sending the request we refused. Closing with unread
    // data makes the kernel send RST, which can destroy our answer before the client reads it; so
    // shut down our side and discard what still arrives, briefly and boundedly.
    boost::system::error_code ignored;
    conn.stream.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
    conn.stream.expires_after(std::chrono::milliseconds(500));
    std::array<char, 16 * 1024> scratch;
    for (std::size_t drained = 0; drained < 4 * 1024 * 1024;) {
      auto [rec, rn] = co_await conn.stream.async_read_some(asio::buffer(scratch), use_nothrow);
      if (rec) break;
      drained += rn;
    }
  }

  asio::awaitable<void> serve(Connection& conn) {
    beast::flat_buffer buffer;
    boost::system::error_code rec;
    const auto remote = conn.stream.socket().remote_endpoint(rec);
    if (rec) co_return;  // already gone
    for (;;) {
      conn.busy = false;
      if (draining) co_return;
      if (buffer.size() == 0) {
        // Idle: wait for the first byte of the next request.
        conn.stream.expires_after(settings.idle_timeout);
        auto [ec, n] = co_await conn.stream.async_read_some(buffer.prepare(4096), use_nothrow);
        if (ec) co_return;
        buffer.commit(n);
      }
      conn.busy = true;

      bhttp::request_parser<bhttp::string_body> parser;
      parser.header_limit(settings.header_limit);
      parser.body_limit(settings.body_limit);
      conn.stream.expires_after(settings.request_timeout);
      auto [hec, hn] = co_await bhttp::async_read_header(conn.stream, buffer, parser, use_nothrow);
      if (!hec && parser.get()[bhttp::field::expect] == "100-continue" && !parser.is_done()) {
        const Response cont{bhttp::status::continue_, parser.get().version()};
        const auto parts = response_buffers(cont, conn.head, false);
        auto [cec, cn] = co_await asio::async_write(conn.stream, parts, use_nothrow);
        if (cec) co_return;
      }
      boost::system::error_code ec = hec;
      if (!ec && !parser.is_done()) {
        auto [bec, bn] = co_await bhttp::async_read(conn.stream, buffer, parser, use_nothrow);
        ec = bec;
      }
      if (ec) {
        const unsigned version = parser.is_header_done() ? parser.get().version() : 11;
        if (ec == bhttp::error::body_limit) {
          co_await write_error(conn, bhttp::status::payload_too_large, "request body too large", version);
        } else if (ec == bhttp::error::header_limit) {
          co_await write_error(conn, bhttp::status::request_header_fields_too_large,
                               "request header too large", version);
        } else if (!is_disconnect(ec) && ec != bhttp::error::partial_message) {
          co_await write_error(conn, bhttp::status::bad_request, "malformed HTTP request: " + ec.message(),
                               version);
        }
        co_return;
      }

      Request req = parser.release();
      conn.stream.expires_never();
      const RequestInfo info{remote, std::chrono::steady_clock::now()};
      Response res;
      bool failed = false;
      try {
        res = co_await handler(req, info);
      } catch (const std::exception& e) {
        log::error("request handler threw",
                   {{"error", e.what()}, {"target", std::string_view(req.target())}});
        failed = true;
      }
      if (failed) res = errors(bhttp::status::internal_server_error, "internal error", req.version());
      const bool keep_alive = req.keep_alive() && res.keep_alive() && !draining;
      finalize(res, keep_alive);
      conn.stream.expires_after(settings.write_timeout);
      // A response to HEAD is the header GET would get (Content-Length included), never a body
      // (RFC 9110 9.3.2).
      const bool head_only = req.method() == bhttp::verb::head;
      boost::system::error_code wec;
      const auto parts = response_buffers(res, conn.head, head_only);
      std::tie(wec, std::ignore) = co_await asio::async_write(conn.stream, parts, use_nothrow);
      if (wec || !keep_alive) co_return;
      connections.splice(connections.begin(), connections, conn.self);  // most recently active
    }
  }
};

Server::Server(asio::any_io_executor executor, ServerSettings settings, Handler handler,
               ErrorResponder errors)
    : impl_(std::make_shared<Impl>(executor, settings, std::move(handler), std::move(errors))) {}

Server::~Server() {
  boost::system::error_code ignored;
  impl_->acceptor.close(ignored);
  for (auto& c : impl_->connections)
    c->stream.socket().close(ignored);
}

boost::system::error_code Server::listen(const asio::ip::tcp::endpoint& endpoint) {
  boost::system::error_code ec;
  auto& a = impl_->acceptor;
  if (a.is_open()) a.close(ec);
  a.open(endpoint.protocol(), ec);
  if (ec) return ec;
  a.set_option(asio::socket_base::reuse_address(true), ec);
  if (ec) return ec;
  a.bind(endpoint, ec);
  if (ec) {
    boost::system::error_code ignored;
    a.close(ignored);
    return ec;
  }
  a.listen(asio::socket_base::max_listen_connections, ec);
  return ec;
}

asio::ip::tcp::endpoint Server::local_endpoint() const {
  boost::system::error_code ec;
  return impl_->acceptor.local_endpoint(ec);
}

void Server::start() {
  auto& impl = *impl_;
  impl.max_connections = impl.settings.max_connections;
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY) {
    const auto limit = static_cast<std::size_t>(lim.rlim_cur);
    const std::size_t reserve = impl.settings.reserved_descriptors;
    const std::size_t fit = limit > reserve + 1 ? limit - reserve : 1;
    if (fit < impl.max_connections) {
      impl.max_connections = fit;
      log::info(
          "connection cap lowered to fit the descriptor limit",
          {{"max_connections", impl.settings.max_connections}, {"descriptor_limit", limit}, {"cap", fit}});
    }
  }
  asio::co_spawn(impl.executor, impl.accept_loop(), asio::detached);
}

asio::awaitable<void> Server::shutdown(std::chrono::milliseconds grace) {
  auto impl = impl_;
  impl->draining = true;
  boost::system::error_code ignored;
  impl->acceptor.close(ignored);
  for (auto& c : impl->connections) {
    if (!c->busy) c->stream.socket().cancel(ignored);
  }
  asio::steady_timer poll(impl->executor);
  const auto give_up = std::chrono::steady_clock::now() + grace;
  while (!impl->connections.empty()) {
    if (std::chrono::steady_clock::now() >= give_up) {
      for (auto& c : impl->connections)
        c->stream.socket().close(ignored);
    }
    poll.expires_after(std::chrono::milliseconds(5));
    co_await poll.async_wait(use_nothrow);
  }
}

std::size_t Server::connection_count() const {
  return impl_->connections.size();
}

}  // namespace common::http
