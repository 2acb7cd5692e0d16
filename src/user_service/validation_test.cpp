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
  const auto parse = [&](std::string_view body) { return parse_put_body(body, "u-1", name); };
  EXPECT_EQ(parse(R"({"name":"Jack"})"), "");
  EXPECT_EQ(name, "Jack");
  EXPECT_EQ(parse(R"({"name":"'; DROP TABLE user; --"})"), "");
  EXPECT_EQ(name, "'; DROP TABLE user; --");
  EXPECT_EQ(parse(R"({"name":"\u00e9\ud83d\ude00"})"), "");
  EXPECT_EQ(name, "\xC3\xA9\xF0\x9F\x98\x80");
  EXPECT_EQ(parse("{\"name\":\"" + std::string(255, 'n') + "\"}"), "");
  EXPECT_NE(parse("{\"name\":\"" + std::string(256, 'n') + "\"}"), "");
  EXPECT_NE(parse(""), "");
  EXPECT_NE(parse("{"), "");
  EXPECT_NE(parse("{\"name\":\"a\"} trailing"), "");
  EXPECT_EQ(parse(" {\"name\":\"a\"} \n"), "");
  EXPECT_NE(parse("[]"), "");
  EXPECT_NE(parse("\"name\""), "");
  EXPECT_NE(parse("{}"), "");
  EXPECT_NE(parse(R"({"name":""})"), "");
  EXPECT_NE(parse(R"({"name":5})"), "");
  EXPECT_NE(parse(R"({"name":null})"), "");
  EXPECT_NE(parse(R"({"name":{"first":"J"}})"), "");
  EXPECT_NE(parse(R"({"name":["J"]})"), "");
  EXPECT_NE(parse("{\"name\":\"\xFF\"}"), "");
  EXPECT_NE(parse(R"({"name":"\ud800"})"), "");  // lone surrogate
  EXPECT_NE(parse(std::string(40, '[') + std::string(40, ']')), "");
}

// A member given twice, or one a user does not have, is refused by name (a typo must not be
// silently dropped, and which of two values wins is nobody's guess).
TEST(Validation, PutBodiesNameDuplicateAndUnknownMembers) {
  std::string name;
  EXPECT_EQ(parse_put_body(R"({"name":"A","name":"B"})", "u", name),
            R"(request body has duplicate members: "name")");
  EXPECT_EQ(
      parse_put_body(R"({"nmae":"A","x":{"name":1},"name":"B"})", "u", name),
      R"(request body has unknown members: "nmae", "x" (a user has "name", and "id" if it is the path's))");
  EXPECT_EQ(name, "");
  // Only the top level counts: nested objects may repeat names (they are refused as unknown anyway).
  EXPECT_NE(parse_put_body(R"({"name":"A","x":{"a":1,"a":2}})", "u", name).find(R"(unknown members: "x")"),
            std::string::npos);
  // Keys are compared after unescaping: "n\u0061me" is "name".
  EXPECT_NE(parse_put_body(R"({"name":"A","n\u0061me":"B"})", "u", name).find("duplicate"),
            std::string::npos);
  // Long and many names are cut in the message.
  std::string many = "{\"name\":\"A\"";
  for (int i = 0; i < 12; ++i)
    many += ",\"" + std::string(100, static_cast<char>('a' + i)) + "\":1";
  many += "}";
  const std::string e = parse_put_body(many, "u", name);
  EXPECT_NE(e.find("\"" + std::string(64, 'a') + "...\""), std::string::npos) << e;
  EXPECT_NE(e.find("and 2 more"), std::string::npos) << e;
  // "id" is accepted when it is the path's (a GET's body sent back), refused otherwise.
  EXPECT_EQ(parse_put_body(R"({"id":"u-1","name":"A"})", "u-1", name), "");
  EXPECT_EQ(name, "A");
  EXPECT_EQ(parse_put_body(R"({"id":"u-2","name":"A"})", "u-1", name),
            "id in the body is not the id in the path");
  EXPECT_EQ(parse_put_body(R"({"id":1,"name":"A"})", "u-1", name), "id must be a string");
}

TEST(Validation, PutContentType) {
  EXPECT_EQ(check_json_content_type("application/json"), "");
  EXPECT_EQ(check_json_content_type("Application/JSON"), "");
  EXPECT_EQ(check_json_content_type("application/json; charset=utf-8"), "");
  EXPECT_EQ(check_json_content_type("application/json;charset=\"UTF-8\""), "");
  EXPECT_EQ(check_json_content_type("application/json ; foo=bar"), "");
  EXPECT_NE(check_json_content_type(""), "");
  EXPECT_NE(check_json_content_type("text/plain"), "");
  EXPECT_NE(check_json_content_type("application/x-www-form-urlencoded"), "");
  EXPECT_NE(check_json_content_type("application/jsonx"), "");
  EXPECT_NE(check_json_content_type("application/merge-patch+json"), "");
  EXPECT_NE(check_json_content_type("application/json; charset=latin1"), "");
}

TEST(Validation, EntityTags) {
  EXPECT_EQ(etag(42).view(), "\"v42\"");
  EXPECT_EQ(etag(0).view(), "\"v0\"");
  EXPECT_EQ(etag(UINT64_MAX).view(), "\"v18446744073709551615\"");
  EntityTags t;
  EXPECT_EQ(parse_entity_tags("\"v42\"", TagComparison::strong, t), "");
  EXPECT_FALSE(t.any);
  EXPECT_EQ(t.versions, std::vector<std::uint64_t>{42});
  EXPECT_TRUE(t.matches(42));
  EXPECT_FALSE(t.matches(41));
  EXPECT_EQ(parse_entity_tags(" * ", TagComparison::strong, t), "");
  EXPECT_TRUE(t.any);
  EXPECT_TRUE(t.matches(7));
  // Lists, empty elements, foreign tags (match nothing), and weak tags: only weak comparison.
  EXPECT_EQ(parse_entity_tags("\"v1\", ,\"abc\",W/\"v2\",\"v03\",\"v\"", TagComparison::strong, t), "");
  EXPECT_EQ(t.versions, std::vector<std::uint64_t>{1});
  EXPECT_EQ(parse_entity_tags("\"v1\",W/\"v2\"", TagComparison::weak, t), "");
  EXPECT_EQ(t.versions, (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(parse_entity_tags("\"v99999999999999999999\"", TagComparison::weak, t), "");  // > 2^64
  EXPECT_TRUE(t.versions.empty());
  for (const char* bad : {"", "v1", "\"v1", "\"v1\" \"v2\"", "*, \"v1\"", "W/v1", "\"v 1\"", ","})
    EXPECT_NE(parse_entity_tags(bad, TagComparison::weak, t), "") << bad;
  // What If-Match requires of the row.
  EXPECT_EQ(if_match_precondition(EntityTags{true, {}}).kind, Precondition::exists);
  const Precondition p = if_match_precondition(EntityTags{false, {3, 4}});
  EXPECT_EQ(p.kind, Precondition::version_in);
  EXPECT_EQ(p.versions, (std::vector<std::uint64_t>{3, 4}));
}

TEST(Validation, PageQuery) {
  PageQuery q;
  EXPECT_EQ(parse_page_query("", q), "");
  EXPECT_EQ(q.limit, 100u);
  EXPECT_EQ(q.after, "");
  EXPECT_EQ(parse_page_query("limit=1000&after=a%20b%2Fc", q), "");
  EXPECT_EQ(q.limit, 1000u);
  EXPECT_EQ(q.after, "a b/c");
  EXPECT_EQ(parse_page_query("after=&limit=1&", q), "");
  EXPECT_EQ(q.limit, 1u);
  EXPECT_EQ(q.after, "");
  EXPECT_EQ(parse_page_query("after=a+b", q), "");  // RFC 3986: '+' is a plus
  EXPECT_EQ(q.after, "a+b");
  for (const char* bad : {"limit=0", "limit=1001", "limit=", "limit=-1", "limit=1x",
                          "limit=99999999999999999999", "limit=5&limit=6", "after=a&after=b", "after=%FF",
                          "after=%0A", "after=%2", "cursor=x", "limit", "%zz=1"})
    EXPECT_NE(parse_page_query(bad, q), "") << bad;
  EXPECT_NE(parse_page_query("lmit=5", q).find("\"lmit\""), std::string::npos);
}

TEST(Validation, JsonOutputIsEscaped) {
  EXPECT_EQ(user_json("a\"b", "x\\y\n"), R"({"id":"a\"b","name":"x\\y\n"})");
  EXPECT_EQ(error_json("bad \"thing\""), R"({"error":"bad \"thing\""})");
  EXPECT_EQ(error_json("x", "r-1", "unknown"), R"({"error":"x","request_id":"r-1","outcome":"unknown"})");
  EXPECT_EQ(page_json({{"a", "A", 1}, {"b\"", "B", 2}}, true),
            R"({"users":[{"id":"a","name":"A"},{"id":"b\"","name":"B"}],"next":"b\""})");
  EXPECT_EQ(page_json({{"a", "A", 1}}, false), R"({"users":[{"id":"a","name":"A"}],"next":null})");
  EXPECT_EQ(page_json({}, false), R"({"users":[],"next":null})");
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

TEST(Validation, RequestTimeoutIsWholeMilliseconds) {
  using std::chrono::milliseconds;
  milliseconds ms{-1};
  EXPECT_EQ(parse_request_timeout("250", ms), "");
  EXPECT_EQ(ms, milliseconds(250));
  EXPECT_EQ(parse_request_timeout("0", ms), "");
  EXPECT_EQ(ms, milliseconds(0));
  EXPECT_EQ(parse_request_timeout("99999999999999999999999", ms), "");
  EXPECT_EQ(ms, milliseconds(1'000'000'000));
  for (const char* bad : {"", "-5", "+5", "1.5", "5ms", " 5", "0x10", "1e3"}) {
    const auto e = parse_request_timeout(bad, ms);
    EXPECT_NE(e.find("X-Request-Timeout-Ms"), std::string::npos) << bad;
  }
}

}  // namespace
}  // namespace user_service
