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
