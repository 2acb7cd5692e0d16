// A minimal HTTP/1.1 client for the soak: one keep-alive connection to one server, one request at
// a time, a timeout over the whole exchange (connect, write, read), and every failure classified
// instead of thrown (refused, reset, closed early, timed out), because the soak counts them.
//
// It is deliberately not the project's own HTTP code (the soak judges that code).
//
// Usage (inside a coroutine on `ex`):
//   HttpClient c(ex, {asio::ip::make_address("127.0.0.1"), 8080});
//   HttpResult r = co_await c.request("GET", "/users/u-1", "", std::chrono::seconds(5));
//   if (r.status > 0) ... r.body, r.header("X-Data-Source") ...
//   else ... status_name(r.status) (soak::Transport), r.error ...
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace soak {

namespace asio = boost::asio;

struct HttpResult {
  int status = 0;     // HTTP status, or a soak::Transport value (below zero)
  std::string error;  // what went wrong, when status < 0
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::chrono::steady_clock::time_point sent, done;  // writing started / answer complete (or error)
  // The value of a header (case-insensitive name), empty if absent.
  std::string_view header(std::string_view name) const;
  bool has_header(std::string_view name) const;
};

class HttpClient {
 public:
  HttpClient(asio::any_io_executor ex, asio::ip::tcp::endpoint server);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Connects if needed (a failed or closed connection is replaced by a new one on the next call).
  asio::awaitable<HttpResult> request(std::string_view method, std::string target, std::string body,
                                      std::chrono::milliseconds timeout);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace soak
