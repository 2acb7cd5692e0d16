// A small synchronous HTTP/1.1 client for the Toxiproxy API (Boost.Beast over a private
// io_context), with a connect deadline and a deadline for the whole request, so that the CLI never
// hangs on an unreachable or wedged server. Failures are reported as one line in the form Go's
// net/http client uses, because toxiproxy-cli prints that text:
//   Get "http://127.0.0.1:18999/proxies": dial tcp 127.0.0.1:18999: connect: connection refused
//
// `Transport` is the seam the CLI talks through; tests substitute a scripted one.
//
// Usage:
//   HttpClient client("http://127.0.0.1:8474", {});
//   HttpOutcome r = client.send("GET", "/proxies", std::nullopt);
//   if (!r.response) std::cerr << r.error << "\n"; else use r.response->status, r.response->body;
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace faultproxy::cli {

struct HttpResponse {
  unsigned status = 0;
  std::string body;
};

struct HttpOutcome {
  std::optional<HttpResponse> response;  // set when a complete response arrived, whatever its status
  std::string error;                     // otherwise: what went wrong, one line
};

class Transport {
 public:
  virtual ~Transport() = default;
  // `path` is already percent-encoded ("/proxies/a%20b"). A body is sent as application/json.
  virtual HttpOutcome send(std::string_view method, std::string_view path,
                           const std::optional<std::string>& body) = 0;
};

struct HttpClientSettings {
  std::chrono::milliseconds connect_timeout{5'000};   // resolve + TCP connect
  std::chrono::milliseconds request_timeout{30'000};  // the whole exchange (Go's client: 30 s)
  std::size_t body_limit = 64 * 1024 * 1024;          // thousands of proxies fit easily
  std::string user_agent = "faultproxy-cli";
};

// `-h` / TOXIPROXY_URL as toxiproxy-cli takes it: "host:port" or "http://host:port[/prefix]".
// Adds "http://" when no scheme is given and drops trailing slashes.
std::string normalize_endpoint(std::string_view host);

class HttpClient final : public Transport {
 public:
  HttpClient(std::string endpoint, HttpClientSettings settings);
  HttpOutcome send(std::string_view method, std::string_view path,
                   const std::optional<std::string>& body) override;

 private:
  std::string endpoint_;
  HttpClientSettings settings_;
};

}  // namespace faultproxy::cli
