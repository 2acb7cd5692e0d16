#include "clients/redis_detail.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace clients::redis::detail {
namespace {

// Every reply of `wire`, built by a reader made as the clients make theirs (make_reader), fed in
// pieces of `piece` bytes as replies arrive split across reads. Stops at the first protocol error
// (then `error` is set).
std::vector<Reply> parse_all(const std::string& wire, std::size_t piece, bool* error = nullptr) {
  ReaderPtr reader = make_reader();
  std::vector<Reply> out;
  for (std::size_t at = 0; at < wire.size(); at += piece) {
    EXPECT_EQ(redisReaderFeed(reader.get(), wire.data() + at, std::min(piece, wire.size() - at)), REDIS_OK);
    for (;;) {
      void* obj = nullptr;
      if (redisReaderGetReply(reader.get(), &obj) != REDIS_OK) {
        if (error != nullptr) *error = true;
        return out;
      }
      if (obj == nullptr) break;
      out.push_back(take_built_reply(obj));
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

// Found by fuzz/redis_reply: an array reply's announced size was allocated at once ("*1155555555"
// asked for 9 GB). The reader refuses it as an error; arrays within the limit still parse.
TEST(RedisReply, HugeArrayCountIsAnErrorNotAnAllocation) {
  bool error = false;
  EXPECT_TRUE(parse_all("*1155555555\r\n:1\r\n", 64, &error).empty());
  EXPECT_TRUE(error);
  EXPECT_EQ(parse("*2\r\n$1\r\na\r\n*1\r\n:7\r\n"),
            Reply::from_array({Reply::from_string("a"), Reply::from_array({Reply::from_integer(7)})}));
}

TEST(RedisReply, Scalars) {
  EXPECT_EQ(parse("+OK\r\n"), Reply::from_status("OK"));
  EXPECT_TRUE(parse("+PONG\r\n").is_status("PONG"));
  EXPECT_EQ(parse("-ERR wrong type\r\n"), Reply::from_error("ERR wrong type"));
  EXPECT_EQ(parse(":-42\r\n"), Reply::from_integer(-42));
  EXPECT_EQ(parse(":9223372036854775807\r\n"), Reply::from_integer(INT64_MAX));
  EXPECT_EQ(parse("$5\r\nhello\r\n"), Reply::from_string("hello"));
  EXPECT_EQ(parse("$0\r\n\r\n"), Reply::from_string(""));
  EXPECT_TRUE(parse("$-1\r\n").is_nil());
  EXPECT_TRUE(parse("*-1\r\n").is_nil());
}

TEST(RedisReply, BulkStringsAreBinarySafe) {
  const std::string bytes("a\0b\r\n\xff\xfe", 7);
  const Reply r = parse("$7\r\n" + bytes + "\r\n");
  ASSERT_TRUE(r.is_string());
  EXPECT_EQ(r.str, bytes);
  EXPECT_EQ(r.str.size(), 7u);
  const std::string unicode = "Zo\xc3\xab \xf0\x9f\x98\x80";  // "Zoë 😀"
  EXPECT_EQ(parse("$" + std::to_string(unicode.size()) + "\r\n" + unicode + "\r\n").str, unicode);
}

TEST(RedisReply, NestedArraysKeepStructureAndOwnTheirData) {
  const Reply r = parse("*4\r\n$2\r\nid\r\n:7\r\n*2\r\n$-1\r\n+x\r\n*0\r\n");
  ASSERT_TRUE(r.is_array());
  ASSERT_EQ(r.elements.size(), 4u);
  EXPECT_EQ(r.elements[0], Reply::from_string("id"));
  EXPECT_EQ(r.elements[1], Reply::from_integer(7));
  ASSERT_TRUE(r.elements[2].is_array());
  EXPECT_TRUE(r.elements[2].elements[0].is_nil());
  EXPECT_EQ(r.elements[2].elements[1], Reply::from_status("x"));
  EXPECT_TRUE(r.elements[3].is_array());
  EXPECT_TRUE(r.elements[3].elements.empty());
}

// However the bytes arrive (the fuzz target compares every reply with hiredis' own objects).
TEST(RedisReply, TheSameRepliesHoweverTheBytesArrive) {
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
  const std::vector<Reply> built = parse_all(all, 5);
  ASSERT_EQ(built.size(), wires.size());
  for (std::size_t i = 0; i < wires.size(); ++i)
    EXPECT_EQ(built[i], parse(wires[i])) << wires[i];
}

TEST(RedisReply, NothingIsLeftBehindOnErrors) {
  // A protocol error in the middle of an array: the partly built reply is freed by the reader
  // (ASan's leak check in the debug build).
  bool error = false;
  EXPECT_TRUE(parse_all("*3\r\n:1\r\n$2\r\nab\r\n?bad\r\n", 64, &error).empty());
  EXPECT_TRUE(error);
  // An incomplete reply still held when the reader is freed.
  EXPECT_TRUE(parse_all("*2\r\n$3\r\nabc\r\n", 64).empty());
}

// The reader the client makes: replies come out whole, one after another, each freed by its taker.
TEST(RedisReply, MakeReaderBuildsRepliesOneAfterAnother) {
  ReaderPtr reader = make_reader();
  ASSERT_TRUE(reader);
  const std::string wire = "-ERR max number of clients reached\r\n:5\r\n*2\r\n$1\r\na\r\n";
  ASSERT_EQ(redisReaderFeed(reader.get(), wire.data(), wire.size()), REDIS_OK);
  void* obj = nullptr;
  ASSERT_EQ(redisReaderGetReply(reader.get(), &obj), REDIS_OK);
  ASSERT_NE(obj, nullptr);
  EXPECT_EQ(take_built_reply(obj), Reply::from_error("ERR max number of clients reached"));
  ASSERT_EQ(redisReaderGetReply(reader.get(), &obj), REDIS_OK);
  ASSERT_NE(obj, nullptr);
  EXPECT_EQ(built_reply(obj), Reply::from_integer(5));
  reader->fn->freeObject(obj);
  ASSERT_EQ(redisReaderGetReply(reader.get(), &obj), REDIS_OK);
  EXPECT_EQ(obj, nullptr) << "the array is not complete yet";
  ASSERT_EQ(redisReaderFeed(reader.get(), "$1\r\nb\r\n", 7), REDIS_OK);
  ASSERT_EQ(redisReaderGetReply(reader.get(), &obj), REDIS_OK);
  ASSERT_NE(obj, nullptr);
  EXPECT_EQ(take_built_reply(obj), Reply::from_array({Reply::from_string("a"), Reply::from_string("b")}));
}

TEST(Sha1, MatchesKnownVectorsAndRedisScriptIds) {
  EXPECT_EQ(sha1_hex(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  EXPECT_EQ(sha1_hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(sha1_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  EXPECT_EQ(sha1_hex(std::string(1000000, 'a')), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
  // 55 and 56 bytes straddle the padding boundary.
  EXPECT_EQ(sha1_hex(std::string(55, 'x')).size(), 40u);
  EXPECT_NE(sha1_hex(std::string(55, 'x')), sha1_hex(std::string(56, 'x')));
  // What `SCRIPT LOAD "return 1"` answers.
  EXPECT_EQ(sha1_hex("return 1"), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
  EXPECT_EQ(Script("return 1").sha1(), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
}

TEST(Commands, StateChangingCommandsAreRejectedCaseInsensitively) {
  for (const char* c :
       {"SUBSCRIBE", "psubscribe", "SSubscribe", "unsubscribe", "PUNSUBSCRIBE", "monitor", "HELLO"})
    EXPECT_TRUE(is_unsupported_command(c)) << c;
  for (const char* c : {"GET", "hgetall", "EVALSHA", "SUBSCRIBEX", "", "PING"})
    EXPECT_FALSE(is_unsupported_command(c)) << c;
}

// The client formats commands itself (no allocation per command): byte for byte what hiredis'
// own formatter writes, binary arguments and empty ones included; commands append one after another.
TEST(Commands, FormattedAsHiredisFormatsThem) {
  const std::vector<std::vector<std::string>> commands = {
      {"PING"},
      {"HMGET", "user:u-1", "id", "name", "version"},
      {"SET", std::string("k\0\r\n", 4), ""},
      {"SET", "big", std::string(100000, 'x')},
      {"MSET", std::string(9, 'a'), std::string(10, 'b'), std::string(99, 'c'), std::string(100, 'd'), "1",
       "2", "3", "4", "5", "6"},  // lengths and a count at each number of digits' edge
  };
  std::string all;
  std::string hiredis_all;
  for (const auto& args : commands) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    char* expected = nullptr;
    const int n = redisFormatCommandArgv(&expected, static_cast<int>(args.size()), argv.data(), lens.data());
    ASSERT_GT(n, 0);
    hiredis_all.append(expected, static_cast<std::size_t>(n));
    std::string one;
    append_command(one, args);
    EXPECT_EQ(one, std::string(expected, static_cast<std::size_t>(n))) << args[0];
    redisFreeCommand(expected);
    const std::vector<std::string_view> views(args.begin(), args.end());
    std::string from_views;
    append_command(from_views, std::span<const std::string_view>(views));
    EXPECT_EQ(from_views, one) << args[0];
    append_command(all, args);
  }
  EXPECT_EQ(all, hiredis_all);
  std::string ping;
  append_command(ping, {"PING"});
  EXPECT_EQ(ping, "*1\r\n$4\r\nPING\r\n");
}

TEST(Commands, EvalArgumentsAndNoscriptDetection) {
  const auto cmd = eval_command("EVALSHA", "abc", {"k1", "k2"}, {"a"});
  EXPECT_EQ(cmd, (std::vector<std::string>{"EVALSHA", "abc", "2", "k1", "k2", "a"}));
  EXPECT_EQ(eval_command("EVAL", "return 1", {}, {}), (std::vector<std::string>{"EVAL", "return 1", "0"}));
  EXPECT_TRUE(is_noscript(Reply::from_error("NOSCRIPT No matching script. Please use EVAL.")));
  EXPECT_FALSE(is_noscript(Reply::from_error("ERR NOSCRIPT later")));
  EXPECT_FALSE(is_noscript(Reply::from_status("NOSCRIPT")));
}

}  // namespace
}  // namespace clients::redis::detail
