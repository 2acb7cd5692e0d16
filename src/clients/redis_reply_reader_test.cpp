#include "clients/redis_reply_reader.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "clients/hiredis_reference.h"

namespace clients::redis {
namespace {

// Every reply of `wire`, fed in pieces of `piece` bytes as replies arrive split across reads
// (through buffer() and commit(), as the clients read). Stops at the first error (then `error` is
// set to its words).
std::vector<Reply> parse_all(const std::string& wire, std::size_t piece, std::string* error = nullptr) {
  ReplyReader reader;
  std::vector<Reply> out;
  for (std::size_t at = 0; at < wire.size(); at += piece) {
    for (std::size_t n = std::min(piece, wire.size() - at), done = 0; done < n;) {
      const std::span<char> room = reader.buffer();
      const std::size_t k = std::min(n - done, room.size());
      std::copy_n(wire.data() + at + done, k, room.data());
      reader.commit(k);
      done += k;
    }
    Reply r;
    for (;;) {
      const ReplyReader::Status s = reader.next(r);
      if (s == ReplyReader::Status::error) {
        if (error != nullptr) *error = reader.error();
        return out;
      }
      if (s == ReplyReader::Status::incomplete) break;
      out.push_back(std::move(r));
    }
  }
  return out;
}

// The one reply of `wire`, fed at once.
Reply parse(const std::string& wire) {
  std::vector<Reply> replies = parse_all(wire, std::max<std::size_t>(wire.size(), 1));
  EXPECT_EQ(replies.size(), 1u) << "not one complete reply: " << wire;
  return replies.empty() ? Reply::nil() : std::move(replies.front());
}

std::string error_of(const std::string& wire) {
  std::string error;
  EXPECT_TRUE(parse_all(wire, wire.size(), &error).empty()) << wire;
  return error;
}

TEST(ReplyReader, Scalars) {
  EXPECT_EQ(parse("+OK\r\n"), Reply::from_status("OK"));
  EXPECT_TRUE(parse("+PONG\r\n").is_status("PONG"));
  EXPECT_EQ(parse("-ERR wrong type\r\n"), Reply::from_error("ERR wrong type"));
  EXPECT_EQ(parse(":-42\r\n"), Reply::from_integer(-42));
  EXPECT_EQ(parse(":9223372036854775807\r\n"), Reply::from_integer(INT64_MAX));
  EXPECT_EQ(parse(":-9223372036854775808\r\n"), Reply::from_integer(INT64_MIN));
  EXPECT_EQ(parse("$5\r\nhello\r\n"), Reply::from_string("hello"));
  EXPECT_EQ(parse("$0\r\n\r\n"), Reply::from_string(""));
  EXPECT_EQ(parse("+\r\n"), Reply::from_status(""));
  EXPECT_EQ(parse("+a\rb\r\n"), Reply::from_status("a\rb")) << "a CR alone does not end a line";
  EXPECT_TRUE(parse("$-1\r\n").is_nil());
  EXPECT_TRUE(parse("*-1\r\n").is_nil());
}

TEST(ReplyReader, BulkStringsAreBinarySafe) {
  const std::string bytes("a\0b\r\n\xff\xfe", 7);
  const Reply r = parse("$7\r\n" + bytes + "\r\n");
  ASSERT_TRUE(r.is_string());
  EXPECT_EQ(r.str, bytes);
  const std::string unicode = "Zo\xc3\xab \xf0\x9f\x98\x80";  // "Zoë 😀"
  EXPECT_EQ(parse("$" + std::to_string(unicode.size()) + "\r\n" + unicode + "\r\n").str, unicode);
}

TEST(ReplyReader, NestedArraysKeepStructure) {
  const Reply r = parse("*4\r\n$2\r\nid\r\n:7\r\n*2\r\n$-1\r\n+x\r\n*0\r\n");
  EXPECT_EQ(r, Reply::from_array({Reply::from_string("id"), Reply::from_integer(7),
                                  Reply::from_array({Reply::nil(), Reply::from_status("x")}),
                                  Reply::from_array({})}));
  EXPECT_EQ(parse("*2\r\n*2\r\n*1\r\n:1\r\n*0\r\n-ERR inner\r\n"),
            Reply::from_array(
                {Reply::from_array({Reply::from_array({Reply::from_integer(1)}), Reply::from_array({})}),
                 Reply::from_error("ERR inner")}));
}

TEST(ReplyReader, TheSameRepliesHoweverTheBytesArrive) {
  const std::vector<std::string> wires = {
      "+OK\r\n",
      "-ERR wrong type\r\n",
      ":-42\r\n",
      "$5\r\nhello\r\n",
      "$0\r\n\r\n",
      "$-1\r\n",
      "*-1\r\n",
      "*0\r\n",
      std::string("$7\r\na\0b\r\n\xff\xfe\r\n", 13),
      "*3\r\n$2\r\nid\r\n$-1\r\n$33\r\nname longer than the small buffer\r\n",
      "*4\r\n$2\r\nid\r\n:7\r\n*2\r\n$-1\r\n+x\r\n*0\r\n",
      "*2\r\n*2\r\n*1\r\n:1\r\n*0\r\n-ERR inner\r\n",
  };
  std::string all;
  for (const auto& w : wires) {
    all += w;
    for (std::size_t piece : {w.size(), std::size_t{1}, std::size_t{3}}) {
      const std::vector<Reply> built = parse_all(w, piece);
      ASSERT_EQ(built.size(), 1u) << w;
      EXPECT_EQ(built[0], parse(w)) << w;
    }
  }
  // Back to back, as pipelined replies arrive.
  for (std::size_t piece : {std::size_t{1}, std::size_t{5}, all.size()}) {
    const std::vector<Reply> built = parse_all(all, piece);
    ASSERT_EQ(built.size(), wires.size());
    for (std::size_t i = 0; i < wires.size(); ++i)
      EXPECT_EQ(built[i], parse(wires[i])) << wires[i];
  }
}

// Replies larger than the buffer: it grows to what a bulk string announces (one read can take the
// rest of it), and back once they are taken.
TEST(ReplyReader, LargeRepliesGrowTheBufferAndLeaveItSmall) {
  const std::string value(1 << 20, 'v');
  const std::string bulk = "$" + std::to_string(value.size()) + "\r\n" + value + "\r\n";
  ReplyReader reader;
  reader.feed(bulk.substr(0, 100));
  Reply r;
  ASSERT_EQ(reader.next(r), ReplyReader::Status::incomplete);
  EXPECT_GE(reader.buffer().size(), bulk.size() - 100) << "room for the rest of the announced string";
  // A size announced is not allocated beyond 1 MiB ahead: memory follows what was received.
  ReplyReader big;
  big.feed("$536870912\r\n");
  ASSERT_EQ(big.next(r), ReplyReader::Status::incomplete);
  EXPECT_LE(big.buffer().size(), 2u * 1024 * 1024);
  reader.feed(bulk.substr(100));
  ASSERT_EQ(reader.next(r), ReplyReader::Status::reply);
  EXPECT_EQ(r.str, value);
  EXPECT_EQ(reader.buffered(), 0u);
  EXPECT_LE(reader.buffer().size(), 16u * 1024);

  // An array of many elements, fed a few bytes at a time: each element is parsed once.
  std::string keys = "*2\r\n$1\r\n0\r\n*5000\r\n";
  Reply expected = Reply::from_array({Reply::from_string("0"), Reply::from_array({})});
  for (int i = 0; i < 5000; ++i) {
    const std::string k = "user:" + std::to_string(i);
    keys += "$" + std::to_string(k.size()) + "\r\n" + k + "\r\n";
    expected.elements[1].elements.push_back(Reply::from_string(k));
  }
  const std::vector<Reply> built = parse_all(keys, 7);
  ASSERT_EQ(built.size(), 1u);
  EXPECT_EQ(built[0], expected);
}

// Anything that is not what Redis sends is an error (the client drops the connection), and the
// reader stays failed: no later reply is taken from a stream out of step.
TEST(ReplyReader, WhatRedisDoesNotSendIsAnErrorThatStays) {
  EXPECT_EQ(error_of("?bad\r\n"), "got '?' as a reply type byte");
  EXPECT_EQ(error_of(std::string("\x01x\r\n")), "got 0x01 as a reply type byte");
  EXPECT_EQ(error_of(":12a\r\n"), "not an integer reply: 12a");
  EXPECT_EQ(error_of(":\r\n"), "not an integer reply: ");
  EXPECT_EQ(error_of(":+1\r\n"), "not an integer reply: +1");
  EXPECT_EQ(error_of(":9223372036854775808\r\n"), "not an integer reply: 9223372036854775808");
  EXPECT_EQ(error_of(":01\r\n"), "not an integer reply: 01");
  EXPECT_EQ(error_of(":-0\r\n"), "not an integer reply: -0");
  EXPECT_EQ(error_of("$-0\r\n\r\n"), "not a bulk string length: -0");
  EXPECT_EQ(error_of("*00\r\n"), "not an array length (or over the limit): 00");
  EXPECT_EQ(error_of("$-2\r\n"), "not a bulk string length: -2");
  EXPECT_EQ(error_of("$3\r\nabcd\r\n"), "a bulk string not followed by CRLF");
  EXPECT_EQ(error_of("$536870913\r\n"), "not a bulk string length: 536870913");
  EXPECT_EQ(error_of("*-2\r\n"), "not an array length (or over the limit): -2");
  // Announced sizes are refused over the limit, and never allocated up front (fuzzing found
  // "*1155555555" asking hiredis for 9 GB).
  EXPECT_EQ(error_of("*1155555555\r\n:1\r\n"), "not an array length (or over the limit): 1155555555");
  EXPECT_EQ(parse_all("*1048576\r\n:1\r\n", 64).size(), 0u) << "within the limit: waits for the elements";
  std::string deep;
  for (int i = 0; i < 9; ++i)
    deep += "*1\r\n";
  EXPECT_EQ(error_of(deep + ":1\r\n"), "arrays nested deeper than 8");
  EXPECT_EQ(parse(deep.substr(4) + ":1\r\n").elements.size(), 1u) << "8 deep is fine";
  EXPECT_EQ(error_of(deep.substr(4) + "*0\r\n"), "arrays nested deeper than 8") << "an empty one counts";

  ReplyReader reader;
  reader.feed("*3\r\n:1\r\n$2\r\nab\r\n?bad\r\n+OK\r\n");
  Reply r;
  EXPECT_EQ(reader.next(r), ReplyReader::Status::error);
  EXPECT_TRUE(reader.failed());
  reader.feed("+OK\r\n");
  EXPECT_EQ(reader.next(r), ReplyReader::Status::error);
  EXPECT_EQ(reader.error(), "got '?' as a reply type byte");
}

TEST(ReplyReader, AnEndlessLineIsAnError) {
  ReplyReader reader;
  reader.feed("+");
  const std::string chunk(64 * 1024, 'x');
  Reply r;
  ReplyReader::Status s = ReplyReader::Status::incomplete;
  for (int i = 0; i < 40 && s == ReplyReader::Status::incomplete; ++i) {
    reader.feed(chunk);
    s = reader.next(r);
  }
  EXPECT_EQ(s, ReplyReader::Status::error);
  EXPECT_EQ(reader.error(), "a reply line longer than 1 MiB");
}

// The reader the client uses: replies come out whole, one after another.
TEST(ReplyReader, RepliesComeOutOneAfterAnother) {
  ReplyReader reader;
  reader.feed("-ERR max number of clients reached\r\n:5\r\n*2\r\n$1\r\na\r\n");
  Reply r;
  ASSERT_EQ(reader.next(r), ReplyReader::Status::reply);
  EXPECT_EQ(r, Reply::from_error("ERR max number of clients reached"));
  ASSERT_EQ(reader.next(r), ReplyReader::Status::reply);
  EXPECT_EQ(r, Reply::from_integer(5));
  ASSERT_EQ(reader.next(r), ReplyReader::Status::incomplete) << "the array is not complete yet";
  reader.feed("$1\r\nb\r\n");
  ASSERT_EQ(reader.next(r), ReplyReader::Status::reply);
  EXPECT_EQ(r, Reply::from_array({Reply::from_string("a"), Reply::from_string("b")}));
  EXPECT_EQ(reader.next(r), ReplyReader::Status::incomplete);
  EXPECT_EQ(reader.buffered(), 0u);
}

// ---- against hiredis' own reader, on replies as Redis writes them ----------------------------------

void random_reply(std::mt19937& rng, int depth, std::string& wire) {
  const int kind = static_cast<int>(rng() % (depth < 3 ? 7 : 6));
  auto text = [&](std::size_t max_len, bool line) {
    std::string s(rng() % (max_len + 1), ' ');
    for (auto& c : s) {
      c = static_cast<char>(rng() % 256);
      if (line && (c == '\r' || c == '\n')) c = 'x';
    }
    return s;
  };
  switch (kind) {
    case 0:
      wire += "+" + text(20, true) + "\r\n";
      break;
    case 1:
      wire += "-ERR " + text(20, true) + "\r\n";
      break;
    case 2:
      wire += ":" +
              std::to_string(static_cast<std::int64_t>(rng()) - static_cast<std::int64_t>(rng()) * 4096) +
              "\r\n";
      break;
    case 3: {
      const std::string s = text(rng() % 8 == 0 ? 40000 : 40, false);
      wire += "$" + std::to_string(s.size()) + "\r\n" + s + "\r\n";
      break;
    }
    case 4:
      wire += "$-1\r\n";
      break;
    case 5:
      wire += "*-1\r\n";
      break;
    default: {
      const int n = static_cast<int>(rng() % 6);
      wire += "*" + std::to_string(n) + "\r\n";
      for (int i = 0; i < n; ++i)
        random_reply(rng, depth + 1, wire);
    }
  }
}

TEST(ReplyReader, ReadsWhatHiredisReads) {
  std::mt19937 rng(15);
  for (int round = 0; round < 200; ++round) {
    std::string wire;
    const int replies = 1 + static_cast<int>(rng() % 20);
    for (int i = 0; i < replies; ++i)
      random_reply(rng, 0, wire);
    const std::size_t piece = 1 + rng() % (rng() % 2 == 0 ? 16 : 20000);
    const std::vector<Reply> ours = parse_all(wire, piece);
    ASSERT_EQ(ours.size(), static_cast<std::size_t>(replies)) << "round " << round;

    std::unique_ptr<redisReader, void (*)(redisReader*)> theirs(redisReaderCreate(), redisReaderFree);
    ASSERT_EQ(redisReaderFeed(theirs.get(), wire.data(), wire.size()), REDIS_OK);
    for (const Reply& r : ours) {
      void* raw = nullptr;
      ASSERT_EQ(redisReaderGetReply(theirs.get(), &raw), REDIS_OK);
      ASSERT_NE(raw, nullptr);
      EXPECT_TRUE(detail::same_as_hiredis(static_cast<redisReply*>(raw), r)) << "round " << round;
      freeReplyObject(raw);
    }
  }
}

}  // namespace
}  // namespace clients::redis
