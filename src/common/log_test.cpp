#include "common/log.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace common::log {
namespace {

TEST(Log, LineIsOneJsonObjectWithTypedFields) {
  const std::string line = format_line(Level::warn, "dependency \"down\"\n",
                                       {{"dep", "mysql"}, {"attempt", 3}, {"ok", false}, {"ratio", 0.5}});
  ASSERT_FALSE(line.empty());
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "a message's newline must be escaped";
  const auto v = boost::json::parse(line).as_object();
  EXPECT_EQ(v.at("level").as_string(), "warn");
  EXPECT_EQ(v.at("msg").as_string(), "dependency \"down\"\n");
  EXPECT_EQ(v.at("dep").as_string(), "mysql");
  EXPECT_EQ(v.at("attempt").as_int64(), 3);
  EXPECT_EQ(v.at("ok").as_bool(), false);
  EXPECT_DOUBLE_EQ(v.at("ratio").as_double(), 0.5);
  EXPECT_TRUE(v.at("time").as_string().ends_with("Z"));
}

TEST(Log, ControlCharactersAreEscaped) {
  std::string out;
  append_json_escaped(out, std::string_view("a\x01\x7f"
                                            "b",
                                            4));
  EXPECT_EQ(out, "a\\u0001\\u007fb");
  out = "[";
  append_json_escaped(out, "say \"hi\" \\ 1\n2\r3\t.");
  EXPECT_EQ(out, "[say \\\"hi\\\" \\\\ 1\\n2\\r3\\t.") << "runs of plain text around each escape";
  out.clear();
  append_json_escaped(out, "");
  EXPECT_EQ(out, "");
}

// Found by fuzz/user_service_validation: bytes that are not UTF-8 (a request target, a client's
// header) were copied into the line as they were, and the line was no longer JSON.
TEST(Log, InvalidUtf8BecomesReplacementCharacters) {
  const std::string_view bad[] = {"\xff",     "\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                  "a\xe2\x82"};
  for (const auto s : bad) {
    const std::string line = format_line(Level::info, "m", {{"target", s}});
    boost::system::error_code ec;
    const auto v = boost::json::parse(line, ec);
    ASSERT_FALSE(ec) << line;
    EXPECT_NE(v.at("target").as_string().find("\xef\xbf\xbd"), std::string::npos) << line;
  }
  std::string out;
  append_json_escaped(out,
                      "a\xff"
                      "b\xc3\xa9\xf0\x9f\x98\x80\xe2\x82");
  EXPECT_EQ(out,
            "a\\ufffd"
            "b\xc3\xa9\xf0\x9f\x98\x80\\ufffd\\ufffd")
      << "valid UTF-8 is kept as is";
}

TEST(Log, ParsesLevels) {
  EXPECT_EQ(parse_level("DEBUG"), Level::debug);
  EXPECT_EQ(parse_level("warning"), Level::warn);
  EXPECT_EQ(parse_level("off"), Level::off);
  EXPECT_EQ(parse_level("loud"), std::nullopt);
}

TEST(Log, LevelFiltersLines) {
  const Level saved = level();
  set_level(Level::error);
  EXPECT_FALSE(enabled(Level::info));
  EXPECT_TRUE(enabled(Level::error));
  set_level(Level::off);
  EXPECT_FALSE(enabled(Level::error));
  set_level(saved);
}

}  // namespace
}  // namespace common::log
