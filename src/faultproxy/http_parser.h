// Incremental HTTP/1.x message framing, for the protocol-aware toxics: where each request (or
// response) head and message ends, whatever the chunk boundaries, with the head parsed (method,
// target, version, status, headers) and bodies only counted (Content-Length, chunked with
// trailers, or until the connection closes).
//
// Requests: keep-alive and pipelined requests follow one another; a request that switches
// protocols (Upgrade, CONNECT) ends HTTP on the connection (`switched()`). Responses: the method of
// the request answered decides whether there is a body (HEAD), so the caller says it beforehand
// (`answering()`); 1xx interim responses are messages that answer no request (`interim()`); 101
// and a 2xx to CONNECT switch protocols.
//
// Usage:
//   HttpScanner s(HttpScanner::Mode::requests);
//   while (!chunk.empty()) {
//     const std::size_t n = s.feed(chunk);
//     if (s.head_now()) decide(s.head().method, s.head().target, s.head().header("x-fault"));
//     if (s.ended()) ...;                       // the whole request, body included
//     chunk.remove_prefix(n);
//   }
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace faultproxy {

// ASCII case-insensitive equality (header names, methods, tokens).
bool http_iequals(std::string_view a, std::string_view b);

struct HttpHead {
  std::string method, target;                                // requests
  int status = 0;                                            // responses
  int minor_version = 1;                                     // HTTP/1.<minor>
  std::vector<std::pair<std::string, std::string>> headers;  // names as sent, values trimmed

  // The first header of that name (case-insensitive).
  std::optional<std::string_view> header(std::string_view name) const;
  // Whether the connection stays open after this message (HTTP/1.1 default, Connection header).
  bool keep_alive() const;
};

class HttpScanner {
 public:
  enum class Mode : std::uint8_t { requests, responses };
  static constexpr std::size_t kMaxHead = 64 * 1024;

  explicit HttpScanner(Mode mode) : mode_(mode) {}

  // Consumes bytes from the front of `data` up to the next point of interest (a head complete, a
  // message ended) or the end of `data`; returns how many. Consumes nothing once failed or switched.
  std::size_t feed(std::string_view data);
  // The connection ended: a response delimited by the close ends here (true if one did).
  bool finish();

  // Responses: the method of the request the next response answers ("" when unknown).
  void answering(std::string_view method) { answering_ = std::string(method); }

  bool head_now() const { return head_now_; }
  bool ended() const { return ended_; }
  bool failed() const { return state_ == State::failed; }
  // The message that ended switched protocols: what follows is not HTTP.
  bool switched() const { return state_ == State::switched; }
  // Responses: the message that ended was a 1xx interim response (it answers no request).
  bool interim() const { return interim_; }
  bool at_boundary() const { return state_ == State::head && head_buf_.empty(); }
  const HttpHead& head() const { return head_; }

 private:
  enum class State : std::uint8_t {
    head,
    body_fixed,
    chunk_size,
    chunk_data,
    chunk_data_crlf,
    trailers,
    body_until_close,
    failed,
    switched
  };
  bool parse_head();
  void message_done();
  bool frame_body();

  Mode mode_;
  State state_ = State::head;
  std::string head_buf_;
  HttpHead head_;
  std::string answering_;
  std::uint64_t left_ = 0;
  std::string line_;  // chunk size line or trailer line being read
  bool head_now_ = false, ended_ = false, interim_ = false, switch_after_ = false;
};

}  // namespace faultproxy
