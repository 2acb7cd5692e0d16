#include "faultproxy/http_parser.h"

#include <gtest/gtest.h>

namespace faultproxy {
namespace {

struct Seen {
  std::string method, target;
  int status = 0;
  std::size_t head_end = 0, end = 0;
  bool interim = false, keep_alive = true, switched = false;
};

// Feeds `stream` in pieces; `methods` are the requests answered, in order (responses mode).
std::vector<Seen> scan(HttpScanner::Mode mode, std::string_view stream, std::size_t piece,
                       std::vector<std::string> methods = {}, bool* failed = nullptr, bool finish = false) {
  HttpScanner s(mode);
  std::vector<Seen> out;
  Seen cur;
  std::size_t offset = 0, answered = 0;
  if (mode == HttpScanner::Mode::responses && !methods.empty()) s.answering(methods[0]);
  while (offset < stream.size() && !s.failed() && !s.switched()) {
    std::string_view chunk = stream.substr(offset, piece);
    while (!chunk.empty()) {
      const std::size_t n = s.feed(chunk);
      if (n == 0) break;
      offset += n;
      chunk.remove_prefix(n);
      if (s.head_now()) {
        cur = {s.head().method,
               s.head().target,
               s.head().status,
               offset,
               0,
               false,
               s.head().keep_alive(),
               false};
      }
      if (s.ended()) {
        cur.end = offset;
        cur.interim = s.interim();
        cur.switched = s.switched();
        out.push_back(cur);
        if (!s.interim() && ++answered < methods.size()) s.answering(methods[answered]);
      }
    }
  }
  if (finish && s.finish()) {
    cur.end = offset;
    out.push_back(cur);
  }
  if (failed) *failed = s.failed();
  return out;
}

TEST(HttpScanner, PipelinedRequestsAtEveryChunkBoundary) {
  const std::string stream =
      "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /users HTTP/1.1\r\nContent-Length: 5\r\nX-Fault: yes\r\n\r\nhello"
      "PUT /c HTTP/1.1\r\nTransfer-Encoding: gzip, "
      "chunked\r\n\r\n3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nT: v\r\n\r\n"
      "\r\nGET /d HTTP/1.0\r\n\r\n";
  for (std::size_t piece = 1; piece <= stream.size(); ++piece) {
    bool failed = true;
    const auto seen = scan(HttpScanner::Mode::requests, stream, piece, {}, &failed);
    ASSERT_FALSE(failed) << piece;
    ASSERT_EQ(seen.size(), 4u) << piece;
    EXPECT_EQ(seen[0].method, "GET");
    EXPECT_EQ(seen[0].end, 28u);
    EXPECT_EQ(seen[1].method, "POST");
    EXPECT_EQ(seen[1].target, "/users");
    EXPECT_EQ(seen[1].end - seen[1].head_end, 5u);
    EXPECT_EQ(seen[2].method, "PUT");
    EXPECT_EQ(seen[3].target, "/d");
    EXPECT_FALSE(seen[3].keep_alive);  // HTTP/1.0 without keep-alive
    EXPECT_EQ(seen[3].end, stream.size());
  }
}

TEST(HttpScanner, ResponsesFollowTheRequestsTheyAnswer) {
  const std::string stream =
      "HTTP/1.1 100 Continue\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"  // to a HEAD: no body
      "HTTP/1.1 204 No Content\r\n\r\n"
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
      "HTTP/1.1 500 Oops\r\nConnection: close\r\n\r\nuntil the end";
  for (std::size_t piece = 1; piece <= stream.size(); ++piece) {
    bool failed = true;
    const auto seen = scan(HttpScanner::Mode::responses, stream, piece, {"POST", "HEAD", "GET", "GET", "GET"},
                           &failed, /*finish=*/true);
    ASSERT_FALSE(failed) << piece;
    ASSERT_EQ(seen.size(), 6u) << piece;
    EXPECT_TRUE(seen[0].interim);
    EXPECT_EQ(seen[1].status, 200);
    EXPECT_EQ(seen[2].end, seen[2].head_end);  // HEAD
    EXPECT_EQ(seen[3].status, 204);
    EXPECT_EQ(seen[5].status, 500);
    EXPECT_FALSE(seen[5].keep_alive);
    EXPECT_EQ(seen[5].end, stream.size());  // ended by the close
  }
}

TEST(HttpScanner, UpgradesAndConnectSwitchProtocols) {
  auto seen = scan(HttpScanner::Mode::requests,
                   "GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello", 5);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_TRUE(seen[0].switched);
  seen = scan(HttpScanner::Mode::requests, "CONNECT h:443 HTTP/1.1\r\n\r\n\x16\x03", 64);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_TRUE(seen[0].switched);
  seen = scan(HttpScanner::Mode::responses, "HTTP/1.1 101 Switching Protocols\r\n\r\nbinary", 3, {"GET"});
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_TRUE(seen[0].switched);
}

TEST(HttpScanner, MalformedMessagesFail) {
  for (const char* bad :
       {"GET\r\n\r\n", "GET / HTTP/2.0\r\n\r\n", "GET / HTTP/1.1\r\nNo colon\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"}) {
    bool failed = false;
    scan(HttpScanner::Mode::requests, bad, 2, {}, &failed);
    EXPECT_TRUE(failed) << bad;
  }
  bool failed = false;
  scan(HttpScanner::Mode::requests, "GET /" + std::string(HttpScanner::kMaxHead, 'a'), 1000, {}, &failed);
  EXPECT_TRUE(failed);
}

TEST(HttpHead, HeadersAreCaseInsensitiveAndTrimmed) {
  HttpScanner s(HttpScanner::Mode::requests);
  s.feed("GET / HTTP/1.1\r\nX-Fault:   on \r\nconnection: keep-alive, close\r\n\r\n");
  ASSERT_TRUE(s.head_now());
  EXPECT_EQ(s.head().header("x-fault").value_or(""), "on");
  EXPECT_FALSE(s.head().header("x-other").has_value());
  EXPECT_FALSE(s.head().keep_alive());
}

}  // namespace
}  // namespace faultproxy
