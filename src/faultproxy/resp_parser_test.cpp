#include "faultproxy/resp_parser.h"

#include <gtest/gtest.h>

namespace faultproxy {
namespace {

struct Seen {
  std::size_t end;  // offset just past the value
  std::string name, arg;
  bool counts;
};

// Feeds `stream` in pieces of `piece` bytes; collects every value that ended and where the name
// became known.
std::vector<Seen> scan(RespScanner::Mode mode, std::string_view stream, std::size_t piece,
                       std::vector<std::size_t>* names_at = nullptr, bool* failed = nullptr) {
  RespScanner s(mode);
  std::vector<Seen> out;
  std::size_t offset = 0;
  while (offset < stream.size()) {
    std::string_view chunk = stream.substr(offset, piece);
    while (!chunk.empty()) {
      const std::size_t n = s.feed(chunk);
      offset += n;
      chunk.remove_prefix(n);
      if (s.failed()) {
        if (failed) *failed = true;
        return out;
      }
      if (s.name_known_now() && names_at) names_at->push_back(offset);
      if (s.ended()) out.push_back({offset, s.name(), s.first_argument(), s.counts()});
    }
  }
  if (failed) *failed = false;
  return out;
}

TEST(RespScanner, CommandsAtEveryChunkBoundary) {
  const std::string stream =
      "*3\r\n$3\r\nset\r\n$1\r\nk\r\n$5\r\nva\r\nl\r\n"  // a value holding CRLF
      "PING\r\n"                                         // inline
      "\r\n"                                             // an empty line: ignored by Redis
      "*0\r\n"                                           // an empty array: ignored too
      "*2\r\n$6\r\nclient\r\n$5\r\nreply\r\n";
  for (std::size_t piece = 1; piece <= stream.size(); ++piece) {
    std::vector<std::size_t> names;
    bool failed = true;
    const auto seen = scan(RespScanner::Mode::commands, stream, piece, &names, &failed);
    ASSERT_FALSE(failed) << piece;
    ASSERT_EQ(seen.size(), 5u) << piece;
    EXPECT_EQ(seen[0].end, 31u);
    EXPECT_EQ(seen[0].name, "SET");
    EXPECT_EQ(seen[0].arg, "K");
    EXPECT_TRUE(seen[0].counts);
    EXPECT_EQ(seen[1].name, "PING");
    EXPECT_TRUE(seen[1].counts);
    EXPECT_FALSE(seen[2].counts);
    EXPECT_FALSE(seen[3].counts);
    EXPECT_EQ(seen[4].name, "CLIENT");
    EXPECT_EQ(seen[4].arg, "REPLY");
    EXPECT_EQ(seen[4].end, stream.size());
    // The name is known as soon as its bulk string ends, before the rest of the command.
    ASSERT_GE(names.size(), 1u);
    EXPECT_EQ(names[0], 13u) << piece;
  }
}

TEST(RespScanner, RepliesOfEveryTypeAndOutOfBandValues) {
  const std::string stream =
      "+OK\r\n-ERR x\r\n:12\r\n$-1\r\n$0\r\n\r\n*-1\r\n*2\r\n$1\r\na\r\n*1\r\n:1\r\n"
      "_\r\n,1.5\r\n#t\r\n(123\r\n=7\r\ntxt:abc\r\n!3\r\nerr\r\n%1\r\n+k\r\n+v\r\n~1\r\n+m\r\n"
      ">2\r\n+message\r\n+x\r\n"  // a push: not a reply
      "|1\r\n+key\r\n+val\r\n"    // an attribute: not a reply either...
      "+PONG\r\n";                // ...the value after it is
  for (std::size_t piece = 1; piece <= stream.size(); ++piece) {
    bool failed = true;
    const auto seen = scan(RespScanner::Mode::replies, stream, piece, nullptr, &failed);
    ASSERT_FALSE(failed) << piece;
    ASSERT_EQ(seen.size(), 18u) << piece;
    int replies = 0;
    for (const auto& v : seen)
      replies += v.counts;
    EXPECT_EQ(replies, 16);
    EXPECT_FALSE(seen[15].counts);  // push
    EXPECT_FALSE(seen[16].counts);  // attribute
    EXPECT_TRUE(seen[17].counts);
    EXPECT_EQ(seen[17].end, stream.size());
  }
}

TEST(RespScanner, LongNamesAreNotCapturedAndLargeValuesAreNotBuffered) {
  const std::string big(100000, 'x');
  const std::string stream = "*2\r\n$70\r\n" + std::string(70, 'a') + "\r\n$100000\r\n" + big + "\r\n";
  const auto seen = scan(RespScanner::Mode::commands, stream, 4096);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].name, "");
  EXPECT_EQ(seen[0].arg, "");
  EXPECT_EQ(seen[0].end, stream.size());
}

TEST(RespScanner, NotRespFailsAndStaysFailed) {
  for (const char* bad : {"*x\r\n", "*1\r\n$3\r\nabcd\r\n", "*1\r\n?\r\n", "*1\n"}) {
    bool failed = false;
    scan(RespScanner::Mode::commands, bad, 1, nullptr, &failed);
    EXPECT_TRUE(failed) << bad;
  }
  bool failed = false;
  scan(RespScanner::Mode::replies, "hello\r\n", 3, nullptr, &failed);
  EXPECT_TRUE(failed);
  RespScanner s(RespScanner::Mode::replies);
  s.feed("?");
  EXPECT_TRUE(s.failed());
  EXPECT_EQ(s.feed("+OK\r\n"), 0u);
}

TEST(RespScanner, DeepNestingIsRefused) {
  std::string deep;
  for (int i = 0; i < 100; ++i)
    deep += "*1\r\n";
  bool failed = false;
  scan(RespScanner::Mode::replies, deep, 7, nullptr, &failed);
  EXPECT_TRUE(failed);
}

}  // namespace
}  // namespace faultproxy
