#include "faultproxy/cli/http_client.h"

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <cctype>
#include <cstring>
#include <vector>

namespace faultproxy::cli {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

// Go's url.Error op: "Get", "Post", "Patch", "Delete".
std::string go_op(std::string_view method) {
  std::string op(method);
  for (std::size_t i = 1; i < op.size(); ++i)
    op[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(op[i])));
  return op;
}

// Go prints system errors as their lower-case strerror text ("connection refused").
std::string error_text(const error_code& ec) {
  if (ec == asio::error::eof) return "EOF";
  std::string text =
      ec.category() == boost::system::system_category() ? std::strerror(ec.value()) : ec.message();
  if (!text.empty()) text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  return text;
}

std::string endpoint_text(const tcp::endpoint& ep) {
  const auto addr = ep.address();
  return (addr.is_v6() ? "[" + addr.to_string() + "]" : addr.to_string()) + ":" + std::to_string(ep.port());
}

// Runs the io_context until the operation started by `start` completes; the operation's own
// deadline (tcp_stream::expires_at) bounds it.
template <typename Start>
error_code run_op(asio::io_context& io, Start&& start) {
  error_code result;
  bool done = false;
  start([&](error_code ec, auto&&...) {
    result = ec;
    done = true;
  });
  io.restart();
  io.run();
  if (!done) return asio::error::operation_aborted;
  return result;
}

}  // namespace

std::string normalize_endpoint(std::string_view host) {
  std::string url(host);
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) url = "http://" + url;
  while (url.size() > std::strlen("http://") && url.back() == '/')
    url.pop_back();
  return url;
}

HttpClient::HttpClient(std::string endpoint, HttpClientSettings settings)
    : endpoint_(normalize_endpoint(endpoint)), settings_(std::move(settings)) {}

HttpOutcome HttpClient::send(std::string_view method, std::string_view path,
                             const std::optional<std::string>& body) {
  const std::string url = endpoint_ + std::string(path);
  const std::string prefix = go_op(method) + " \"" + url + "\": ";
  HttpOutcome out;

  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) {
    out.error = "parse \"" + url + "\": " + parsed.error().message();
    return out;
  }
  const boost::urls::url_view u = *parsed;
  if (u.scheme() != "http") {
    out.error = prefix + "unsupported protocol scheme \"" + std::string(u.scheme()) +
                "\" (faultproxy-cli speaks plain http)";
    return out;
  }
  std::string host = u.host_type() == boost::urls::host_type::ipv6 ? u.host_address() : u.host();
  if (host.empty()) {
    out.error = prefix + "http: no Host in request URL";
    return out;
  }
  const std::string port = u.has_port() ? std::string(u.port()) : "80";
  std::string target = u.encoded_path().empty() ? "/" : std::string(u.encoded_path());
  if (u.has_query()) target += "?" + std::string(u.encoded_query());

  const auto start = Clock::now();
  const auto connect_deadline = start + std::min(settings_.connect_timeout, settings_.request_timeout);
  const auto request_deadline = start + settings_.request_timeout;

  asio::io_context io;
  // Resolve: a numeric address needs no lookup; a name goes through getaddrinfo (bounded by the
  // system resolver's own timeouts, which Asio cannot interrupt).
  std::vector<tcp::endpoint> endpoints;
  {
    error_code ec;
    auto addr = asio::ip::make_address(host, ec);
    if (!ec) {
      endpoints.emplace_back(addr, static_cast<unsigned short>(std::stoul(port)));
    } else {
      tcp::resolver resolver(io);
      bool done = false;
      resolver.async_resolve(host, port, [&](error_code e, tcp::resolver::results_type r) {
        ec = e;
        for (const auto& entry : r)
          endpoints.push_back(entry.endpoint());
        done = true;
      });
      io.run_until(connect_deadline);
      if (!done) {
        resolver.cancel();
        io.restart();
        io.run();
        out.error = prefix + "dial tcp: lookup " + host + ": i/o timeout";
        return out;
      }
      if (ec) {
        const bool not_found =
            ec == asio::error::host_not_found || ec == asio::error::host_not_found_try_again;
        out.error =
            prefix + "dial tcp: lookup " + host + ": " + (not_found ? "no such host" : error_text(ec));
        return out;
      }
    }
  }

  beast::tcp_stream stream(io);
  stream.expires_at(connect_deadline);
  tcp::endpoint last_tried;
  error_code ec = run_op(io, [&](auto handler) {
    stream.async_connect(
        endpoints,
        [&last_tried](const error_code&, const tcp::endpoint& next) {
          last_tried = next;
          return true;
        },
        [handler](error_code e, const tcp::endpoint&) mutable { handler(e); });
  });
  if (ec) {
    out.error = prefix + "dial tcp " + endpoint_text(last_tried) + ": " +
                (ec == beast::error::timeout ? std::string("i/o timeout") : "connect: " + error_text(ec));
    return out;
  }

  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, u.has_port() ? u.encoded_host_and_port() : u.encoded_host());
  req.set(http::field::user_agent, settings_.user_agent);
  req.set(http::field::content_type, "application/json");
  if (body) {
    req.body() = *body;
    req.prepare_payload();
  }

  stream.expires_at(request_deadline);
  ec = run_op(io, [&](auto handler) { http::async_write(stream, req, std::move(handler)); });
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(settings_.body_limit);
  if (!ec)
    ec = run_op(io, [&](auto handler) { http::async_read(stream, buffer, parser, std::move(handler)); });
  if (ec) {
    if (ec == beast::error::timeout) {
      out.error = prefix + "Client.Timeout exceeded while awaiting the response (no answer within " +
                  std::to_string(settings_.request_timeout.count()) + " ms)";
    } else if (ec == http::error::end_of_stream || ec == http::error::partial_message) {
      out.error = prefix + "EOF";
    } else if (ec == http::error::body_limit) {
      out.error = prefix + "response body larger than " + std::to_string(settings_.body_limit) + " bytes";
    } else if (ec.category() == boost::system::system_category()) {
      out.error = prefix + "read tcp " + endpoint_text(last_tried) + ": " + error_text(ec);
    } else {
      out.error = prefix + "malformed HTTP response: " + ec.message();
    }
    return out;
  }
  error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  auto res = parser.release();
  out.response = HttpResponse{res.result_int(), std::move(res.body())};
  return out;
}

}  // namespace faultproxy::cli
