#include "user_service/validation.h"

#include <gtest/gtest.h>

namespace user_service {
namespace {

TEST(Validation, Utf8) {
  EXPECT_TRUE(is_valid_utf8("plain"));
  EXPECT_TRUE(is_valid_utf8("J\xC3\xA1nos \xF0\x9F\x98\x80"));
  EXPECT_FALSE(is_valid_utf8("\xC3"));              // truncated
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));          // overlong
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xFF"));
}

TEST(Validation, UserIds) {
  std::string id;
  EXPECT_EQ(decode_user_id("u-12345abde234", id), "");
  EXPECT_EQ(id, "u-12345abde234");
  EXPECT_EQ(decode_user_id("a%20b%2Fc", id), "");
  EXPECT_EQ(id, "a b/c");
  EXPECT_EQ(decode_user_id("%27%3B%20DROP%20TABLE", id), "");
  EXPECT_EQ(id, "'; DROP TABLE");
  EXPECT_EQ(decode_user_id(std::string(255, 'x'), id), "");
  EXPECT_NE(decode_user_id(std::string(256, 'x'), id), "");
  EXPECT_NE(decode_user_id("", id), "");
  EXPECT_NE(decode_user_id("a%0Ab", id), "");    // newline
  EXPECT_NE(decode_user_id("a%00b", id), "");    // NUL
  EXPECT_NE(decode_user_id("a%7Fb", id), "");    // DEL
  EXPECT_NE(decode_user_id("a%C2%85", id), "");  // C1 control
  EXPECT_NE(decode_user_id("a%ZZ", id), "");
  EXPECT_NE(decode_user_id("a%2", id), "");
  EXPECT_NE(decode_user_id("a%", id), "");
  EXPECT_NE(decode_user_id("%FF", id), "");  // not UTF-8
  EXPECT_EQ(decode_user_id("%C3%A9", id), "");
  EXPECT_EQ(id, "\xC3\xA9");
}

TEST(Validation, PutBodies) {
  std::string name;
  EXPECT_EQ(parse_put_body(R"({"name":"Jack"})", name), "");
  EXPECT_EQ(name, "Jack");
  EXPECT_EQ(parse_put_body(R"({"name":"'; DROP TABLE user; --","x":1})", name), "");
  EXPECT_EQ(name, "'; DROP TABLE user; --");
  EXPECT_EQ(parse_put_body(R"({"name":"\u00e9\ud83d\ude00"})", name), "");
  EXPECT_EQ(name, "\xC3\xA9\xF0\x9F\x98\x80");
  EXPECT_EQ(parse_put_body("{\"name\":\"" + std::string(255, 'n') + "\"}", name), "");
  EXPECT_NE(parse_put_body("{\"name\":\"" + std::string(256, 'n') + "\"}", name), "");
  EXPECT_NE(parse_put_body("", name), "");
  EXPECT_NE(parse_put_body("{", name), "");
  EXPECT_NE(parse_put_body("{\"name\":\"a\"} trailing", name), "");
  EXPECT_NE(parse_put_body("[]", name), "");
  EXPECT_NE(parse_put_body("{}", name), "");
  EXPECT_NE(parse_put_body(R"({"name":""})", name), "");
  EXPECT_NE(parse_put_body(R"({"name":5})", name), "");
  EXPECT_NE(parse_put_body(R"({"name":null})", name), "");
  EXPECT_NE(parse_put_body("{\"name\":\"\xFF\"}", name), "");
  EXPECT_NE(parse_put_body(R"({"name":"\ud800"})", name), "");  // lone surrogate
  EXPECT_NE(parse_put_body(std::string(40, '[') + std::string(40, ']'), name), "");
}

TEST(Validation, JsonOutputIsEscaped) {
  EXPECT_EQ(user_json("a\"b", "x\\y\n"), R"({"id":"a\"b","name":"x\\y\n"})");
  EXPECT_EQ(error_json("bad \"thing\""), R"({"error":"bad \"thing\""})");
}

TEST(Validation, RequestIds) {
  EXPECT_TRUE(acceptable_request_id("abc-123"));
  EXPECT_FALSE(acceptable_request_id(""));
  EXPECT_FALSE(acceptable_request_id("a b"));
  EXPECT_FALSE(acceptable_request_id(std::string(129, 'a')));
  EXPECT_FALSE(acceptable_request_id("a\x01"));
}

TEST(Validation, RequestStartInSecondsMillisecondsOrMicroseconds) {
  using namespace std::chrono;
  EXPECT_EQ(parse_request_start("t=1700000000")->time_since_epoch(), seconds(1700000000));
  EXPECT_EQ(parse_request_start("t=1700000000123")->time_since_epoch(), milliseconds(1700000000123));
  EXPECT_EQ(parse_request_start("t=1700000000123456")->time_since_epoch(), microseconds(1700000000123456));
  for (const char* bad :
       {"", "t=", "1700000000", "t=17000000001", "t=-700000000", "t=170000000x", " t=1700000000"})
    EXPECT_FALSE(parse_request_start(bad).has_value()) << bad;
}

}  // namespace
}  // namespace user_service
