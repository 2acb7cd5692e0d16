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
