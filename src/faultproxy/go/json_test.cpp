#include "faultproxy/go/json.h"

#include <gtest/gtest.h>

#include <limits>

namespace faultproxy::go::json {
namespace {

TEST(Parse, SyntaxErrorsReadLikeGo) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "EOF"},
      {"   ", "EOF"},
      {"{", "unexpected EOF"},
      {"not json", "invalid character 'o' in literal null (expecting 'u')"},
      {"garbage", "invalid character 'g' looking for beginning of value"},
      {"{\"a\" 1}", "invalid character '1' after object key"},
      {"{\"a\":1 \"b\"}", "invalid character '\"' after object key:value pair"},
      {"{1}", "invalid character '1' looking for beginning of object key string"},
      {"[1 2]", "invalid character '2' after array element"},
      {"-x", "invalid character 'x' in numeric literal"},
      {"1.x", "invalid character 'x' after decimal point in numeric literal"},
      {"1ex", "invalid character 'x' in exponent of numeric literal"},
      {"\"a\nb\"", "invalid character '\\n' in string literal"},
      {"\"\\x\"", "invalid character 'x' in string escape code"},
      {"tx", "invalid character 'x' in literal true (expecting 'r')"},
  };
  for (auto [in, want] : cases)
    EXPECT_EQ(parse_first(in).error, want) << in;
  EXPECT_TRUE(parse_first("{} trailing").ok());
  EXPECT_TRUE(parse_first("0 1").ok());
}

TEST(Parse, StringsDecodeEscapesAndReplaceInvalidUtf8ByteByByte) {
  auto p = parse_first(R"("a\u00e9\ud83d\ude00\ud800x\n")");
  ASSERT_TRUE(p.ok()) << p.error;
  EXPECT_EQ(p.value.text, "a\xc3\xa9\xf0\x9f\x98\x80\xef\xbf\xbdx\n");
  p = parse_first("\"\xff\xc3\"");  // two invalid bytes: two U+FFFD
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.value.text, "\xef\xbf\xbd\xef\xbf\xbd");
  p = parse_first("\"\xed\xa0\x80\"");  // an encoded surrogate is invalid too
  EXPECT_EQ(p.value.text, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
}

TEST(Parse, ObjectsKeepMembersInOrderAndFindTakesTheLast) {
  auto p = parse_first(R"({"a":1,"b":[true,null],"a":"x"})");
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p.value.members.size(), 3u);
  EXPECT_EQ(p.value.members[1].value.items.size(), 2u);
  ASSERT_NE(p.value.find("a"), nullptr);
  EXPECT_EQ(p.value.find("a")->text, "x");
  EXPECT_EQ(p.value.find("A"), nullptr);
  EXPECT_EQ(p.value.members[0].value.kind, Value::Kind::number);
  EXPECT_EQ(p.value.members[0].value.text, "1");
}

TEST(Decoder, TypeErrorsReadLikeGoAndTheFirstOneWins) {
  auto p = parse_first(R"({"name":1,"Enabled":"yes","rate":1e39,"count":1.5,"wide":1e400})");
  ASSERT_TRUE(p.ok());
  Decoder d("Proxy");
  std::string name = "kept";
  bool enabled = false;
  float rate = 0;
  std::int64_t count = 0;
  double wide = 0;
  for (const auto& [key, value] : p.value.members) {
    if (Decoder::key_is(key, "name")) d.string(value, "name", name);
    if (Decoder::key_is(key, "enabled")) d.boolean(value, "enabled", enabled);
    if (Decoder::key_is(key, "rate")) d.float32(value, "rate", rate);
    if (Decoder::key_is(key, "count")) d.int64(value, "count", "int64", count);
    if (Decoder::key_is(key, "wide")) d.float64(value, "wide", wide);
  }
  EXPECT_EQ(d.error(), "json: cannot unmarshal number into Go struct field Proxy.name of type string");
  EXPECT_EQ(name, "kept");
  Decoder each("T");
  each.boolean(p.value.members[1].value, "enabled", enabled);
  EXPECT_EQ(each.error(), "json: cannot unmarshal string into Go struct field T.enabled of type bool");
  for (auto [i, want] :
       {std::pair{2, "json: cannot unmarshal number 1e39 into Go struct field T.rate of type float32"},
        std::pair{3, "json: cannot unmarshal number 1.5 into Go struct field T.count of type int64"},
        std::pair{4, "json: cannot unmarshal number 1e400 into Go struct field T.wide of type float64"}}) {
    Decoder one("T");
    const auto& m = p.value.members[static_cast<std::size_t>(i)];
    if (m.key == "rate") one.float32(m.value, "rate", rate);
    if (m.key == "count") one.int64(m.value, "count", "int64", count);
    if (m.key == "wide") one.float64(m.value, "wide", wide);
    EXPECT_EQ(one.error(), want);
  }
}

TEST(Decoder, TypeErrorsOutsideStructFields) {
  Decoder d("ToxicWrapper.attributes");
  d.type_error("string", "", "toxics.LatencyToxic");
  EXPECT_EQ(d.error(),
            "json: cannot unmarshal string into Go struct field ToxicWrapper.attributes of type "
            "toxics.LatencyToxic");
  EXPECT_EQ(value_type_error("array", "map[string]*toxiproxy.Proxy"),
            "json: cannot unmarshal array into Go value of type map[string]*toxiproxy.Proxy");
}

TEST(Decoder, NullLeavesFieldsAndNumbersReadAsGoReadsThem) {
  auto p = parse_first(R"({"toxicity":0.1,"big":3.4028235e38,"n":-42,"s":null})");
  ASSERT_TRUE(p.ok());
  Decoder d("Toxic");
  float toxicity = 1, big = 0;
  std::int64_t n = 0;
  std::string s = "kept";
  d.float32(*p.value.find("toxicity"), "toxicity", toxicity);
  d.float32(*p.value.find("big"), "big", big);
  d.int64(*p.value.find("n"), "n", "int64", n);
  d.string(*p.value.find("s"), "s", s);
  EXPECT_FALSE(d.failed()) << d.error();
  EXPECT_EQ(toxicity, 0.1f);
  EXPECT_EQ(big, std::numeric_limits<float>::max());
  EXPECT_EQ(n, -42);
  EXPECT_EQ(s, "kept");
  EXPECT_TRUE(Decoder::key_is("TOXICITY", "toxicity"));
  EXPECT_FALSE(Decoder::key_is("toxicit", "toxicity"));
}

TEST(Quote, AppendsAndEncodesFloat32LikeTheServerAnswers) {
  std::string s;
  append_quoted(s, "a<b>&\"\\\n\x01\xe2\x80\xa8\xff");
  EXPECT_EQ(s, R"("a\u003cb\u003e\u0026\"\\\n\u0001\u2028\ufffd")");
  EXPECT_EQ(encode_float32(1.0f), "1");
  EXPECT_EQ(encode_float32(0.5f), "0.5");
  EXPECT_EQ(encode_float32(0.1f), "0.1");
  EXPECT_EQ(encode_float32(-1.0f), "-1");
  EXPECT_EQ(encode_float32(1e-7f), "1e-7");
  EXPECT_EQ(encode_float32(1e21f), "1e+21");
  EXPECT_EQ(encode_float32(0.123456789f), "0.12345679");
}

TEST(EncodeFloat, MatchesEncodingJson) {
  EXPECT_EQ(encode_float64(100), "100");
  EXPECT_EQ(encode_float64(0.5), "0.5");
  EXPECT_EQ(encode_float64(0), "0");
  EXPECT_EQ(encode_float64(1e6), "1000000");
  EXPECT_EQ(encode_float64(1e20), "100000000000000000000");
  EXPECT_EQ(encode_float64(1e21), "1e+21");
  EXPECT_EQ(encode_float64(1e-6), "0.000001");
  EXPECT_EQ(encode_float64(1e-7), "1e-7");
  EXPECT_EQ(encode_float64(-1.5e-7), "-1.5e-7");
  EXPECT_EQ(encode_float64(1e-10), "1e-10");
  EXPECT_FALSE(encode_float64(std::numeric_limits<double>::quiet_NaN()).has_value());
  EXPECT_FALSE(encode_float64(std::numeric_limits<double>::infinity()).has_value());
  EXPECT_EQ(encode_float32(0.1f), "0.1");  // float32's shortest digits, not 0.10000000149011612
  EXPECT_EQ(encode_float32(1.0f), "1");
  EXPECT_EQ(encode_float32(0.25f), "0.25");
}

TEST(Quote, MatchesJsonMarshal) {
  EXPECT_EQ(quote("echo"), "\"echo\"");
  EXPECT_EQ(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(quote("<a&b>"), "\"\\u003ca\\u0026b\\u003e\"");
  EXPECT_EQ(quote(std::string("\n\t\r\x01", 4)), "\"\\n\\t\\r\\u0001\"");
  EXPECT_EQ(quote("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
  EXPECT_EQ(quote("bad\xff"), "\"bad\\ufffd\"");
  EXPECT_EQ(quote("\xe2\x80\xa8"), "\"\\u2028\"");
}

TEST(Quote, BackspaceAndFormFeedAsGo122WritesThem) {
  EXPECT_EQ(quote("\b\f\x7f"), "\"\\b\\f\x7f\"");
  EXPECT_EQ(quote("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");  // a surrogate: invalid
  EXPECT_EQ(quote("\xc0\x80"), "\"\\ufffd\\ufffd\"");             // overlong
}

}  // namespace
}  // namespace faultproxy::go::json
