// An HTTP/1.1 server on Boost.Beast: one coroutine per connection, keep-alive, pipelining,
// `Expect: 100-continue`, and the limits a server facing hostile clients needs (header and body
// size, a deadline for a request to arrive once its first byte did, an idle timeout between
// requests, a connection cap that sheds idle connections first), plus a graceful shutdown that
// drains in-flight requests.
//
// Both user-service and faultproxy's API serve through it. The application supplies a coroutine
// that turns a request into a response, and a function that formats the errors the server itself
// detects (malformed request: 400, header too large: 431, body too large: 413), so that each
// program keeps its own error body format.
//
// Threading: the server and all its connections run on the one executor given at construction.
// Pass a strand if the io_context behind it is run by several threads.
//
// Usage:
//   asio::io_context io;
//   common::http::Server server(io.get_executor(), {}, [](common::http::Request& req,
//                                                         const common::http::RequestInfo&)
//       -> asio::awaitable<common::http::Response> {
//     co_return common::http::make_response(req, http::status::ok, "{}", "application/json");
//   });
//   if (auto ec = server.listen({asio::ip::make_address("127.0.0.1"), 8080})) { ...report ec... }
//   server.start();
//   io.run();
//   ... later, on SIGTERM: co_await server.shutdown(std::chrono::seconds(5));
#pragma once

#include <algorithm>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/http_token.h"

namespace common::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

using Request = bhttp::request<bhttp::string_body>;

// The name of a header line: a literal of the program's own, checked when it is compiled.
class LineName {
 public:
  consteval LineName(const char* name) : name_(name) {  // NOLINT: implicit, from a literal
    if (!is_http_token(name_)) throw "a header line's name must be an HTTP token";
  }
  constexpr std::string_view view() const { return name_; }

 private:
  std::string_view name_;
};

// A response's fields: Beast's, and header lines the application formats itself, which the server
// writes after them as they are. A field costs Beast an allocation and a place in its ordered tree
// (~0.4k instructions); the lines of an answer share one buffer. For the fields of every answer on
// a hot path (a cached read's ETag, request id, source) that nothing reads back before it is sent.
//   res.add_line("ETag", "\"v7\"");
//   res.line_value("etag");  // "\"v7\"" (fields, then lines, by name in any case: tests)
class ResponseFields : public bhttp::fields {
 public:
  // Adds "name: value". A value with a CR, LF or NUL could end the line (or the head) early: it is
  // not added (false).
  bool add_line(LineName name, std::string_view value) {
    bool unsafe = false;
    for (const char c : value)
      unsafe |= c == '\r' || c == '\n' || c == '\0';
    if (unsafe) return false;
    if (lines_.capacity() < kLinesCapacity) lines_.reserve(kLinesCapacity);
    const std::string_view n = name.view();
    const std::size_t at = lines_.size();
    lines_.resize(at + n.size() + 2 + value.size() + 2);
    char* p = lines_.data() + at;
    p = std::copy(n.begin(), n.end(), p);
    *p++ = ':';
    *p++ = ' ';
    p = std::copy(value.begin(), value.end(), p);
    *p++ = '\r';
    *p = '\n';
    return true;
  }
  // The lines added, each ending in CRLF.
  const std::string& lines() const { return lines_; }
  // The value of the first field, then line, named `name`; none if there is neither.
  std::optional<std::string_view> line_value(std::string_view name) const;

 private:
  static constexpr std::size_t kLinesCapacity = 128;  // an answer's lines, in one allocation
  std::string lines_;
};

using Response = bhttp::message<false, bhttp::string_body, ResponseFields>;

struct ServerSettings {
  // Once the first byte of a request has arrived, the whole request (header and body) must arrive
  // within this; a slowloris client is disconnected when it expires.
  std::chrono::milliseconds request_timeout{10'000};
  // How long a keep-alive connection may sit idle between requests.
  std::chrono::milliseconds idle_timeout{60'000};
  // How long writing a response may take before the client is considered gone.
  std::chrono::milliseconds write_timeout{30'000};
  std::uint32_t header_limit = 16 * 1024;  // larger header: 431
  std::uint64_t body_limit = 1024 * 1024;  // larger body: 413
  // Open connections at most. A connection accepted beyond this takes the place of the one idle
  // the longest (waiting for a first or next request: closing it is what an idle timeout does);
  // only if every connection is busy with a request is the new one closed at once.
  std::size_t max_connections = 20'000;
  // Descriptors left to the rest of the process (dependency connections, files, logs): when the
  // descriptor limit (RLIMIT_NOFILE, read at start()) minus this is lower than max_connections,
  // it is the cap, so that a flood of connections never leaves the process without descriptors.
  std::size_t reserved_descriptors = 128;
  bool add_date_header = true;  // `Date:` on every response, as Go and nginx do
};

// What the server knows of a request besides the message itself.
struct RequestInfo {
  asio::ip::tcp::endpoint remote;
  std::chrono::steady_clock::time_point received;  // when the complete request had been read
};

using Handler = std::function<asio::awaitable<Response>(Request&, const RequestInfo&)>;

// Formats an error the server detected itself; `version` is the request's HTTP version (11 if unknown).
using ErrorResponder =
    std::function<Response(bhttp::status status, std::string_view message, unsigned version)>;

// The default ErrorResponder: `{"error":"<message>"}` as application/json.
Response json_error(bhttp::status status, std::string_view message, unsigned version);

// A response with the request's version and keep-alive, the given body and Content-Type.
Response make_response(const Request& req, bhttp::status status, std::string body,
                       std::string_view content_type);
// The same, into `res`, which must be as default-constructed (no message built and then moved).
void fill_response(Response& res, const Request& req, bhttp::status status, std::string body,
                   std::string_view content_type);

// The current time as an IMF-fixdate (`Thu, 26 Nov 2026 23:34:33 GMT`), cached per second (the
// reference stays valid; it changes each second on this thread).
const std::string& http_date_now();

// Appends the response's head (status line, fields, lines, blank line) to `out`: the bytes Beast's
// serializer writes for its status line and fields, then its lines as they are, made in one pass into
// one buffer instead of Beast's sequence of a buffer per field. The server writes every response as
// this head and its body (Content-Length, set when it finalizes the response: never chunked) in one
// gather write.
void append_response_head(const Response& res, std::string& out);

class Server {
 public:
  Server(asio::any_io_executor executor, ServerSettings settings, Handler handler,
         ErrorResponder errors = json_error);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens (SO_REUSEADDR). Returns the error instead of throwing.
  boost::system::error_code listen(const asio::ip::tcp::endpoint& endpoint);
  asio::ip::tcp::endpoint local_endpoint() const;

  // Starts accepting connections; call after a successful listen().
  void start();

  // Stops accepting, closes idle connections, lets requests in flight finish within `grace`, then
  // closes what is left. Completes when no connection remains.
  asio::awaitable<void> shutdown(std::chrono::milliseconds grace);

  std::size_t connection_count() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// Raises the soft RLIMIT_NOFILE to the hard limit, so thousands of connections can be held.
void raise_open_file_limit();

}  // namespace common::http
