#include "faultproxy/go/strconv.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace faultproxy::go {
namespace {

TEST(ParseFloat64, AcceptsWhatGoAccepts) {
  EXPECT_EQ(parse_float64("100"), 100.0);
  EXPECT_EQ(parse_float64("-2.5"), -2.5);
  EXPECT_EQ(parse_float64("+7"), 7.0);
  EXPECT_EQ(parse_float64(".5"), 0.5);
  EXPECT_EQ(parse_float64("1."), 1.0);
  EXPECT_EQ(parse_float64("1e3"), 1000.0);
  EXPECT_EQ(parse_float64("1E-2"), 0.01);
  EXPECT_EQ(parse_float64("1_000"), 1000.0);  // underscores between digits
  EXPECT_EQ(parse_float64("0x1p4"), 16.0);    // hexadecimal with a binary exponent
  EXPECT_EQ(parse_float64("0x_1.8p1"), 3.0);  // underscore after the base prefix
  EXPECT_EQ(parse_float64("1e-400"), 0.0);    // underflow is not an error in Go
  EXPECT_EQ(parse_float64("Inf"), std::numeric_limits<double>::infinity());
  EXPECT_EQ(parse_float64("-infinity"), -std::numeric_limits<double>::infinity());
  ASSERT_TRUE(parse_float64("NaN").has_value());
  EXPECT_TRUE(std::isnan(*parse_float64("nan")));
}

TEST(ParseFloat64, RejectsWhatGoRejects) {
  for (const char* s :
       {"",      "abc", "10ms", " 1",   "1 ",   "1e",   "1e+",     ".",     "-",      "1.2.3", "0x10",
        "0x1.8", "_1",  "1_",   "1__0", "1_.5", "+nan", "infinit", "1e400", "-1e400", "0b101", "1,5"}) {
    EXPECT_FALSE(parse_float64(s).has_value()) << "'" << s << "'";
  }
}

TEST(ParseFloat32, RangeIsFloat32s) {
  EXPECT_EQ(parse_float32("0.5"), 0.5f);
  EXPECT_EQ(parse_float32("3e38"), 3e38f);
  EXPECT_FALSE(parse_float32("1e39").has_value());
  EXPECT_FALSE(parse_float32("x").has_value());
  EXPECT_TRUE(std::isinf(*parse_float32("inf")));
}

TEST(FormatFloatV, MatchesGoPrint) {
  EXPECT_EQ(format_float_v(100), "100");
  EXPECT_EQ(format_float_v(0), "0");
  EXPECT_EQ(format_float_v(-0.0), "-0");
  EXPECT_EQ(format_float_v(0.5), "0.5");
  EXPECT_EQ(format_float_v(123456), "123456");
  EXPECT_EQ(format_float_v(1e6), "1e+06");
  EXPECT_EQ(format_float_v(1234567), "1.234567e+06");
  EXPECT_EQ(format_float_v(0.0001), "0.0001");
  EXPECT_EQ(format_float_v(0.00001), "1e-05");
  EXPECT_EQ(format_float_v(1e21), "1e+21");
  EXPECT_EQ(format_float_v(0.1), "0.1");
  EXPECT_EQ(format_float_v(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_float_v(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(format_float_v(std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_EQ(format_float_g(0.1f), "0.1");
}

TEST(ParseBool, TakesGosSpellingsOnly) {
  for (const char* s : {"1", "t", "T", "TRUE", "true", "True"})
    EXPECT_EQ(parse_bool(s), true) << s;
  for (const char* s : {"0", "f", "F", "FALSE", "false", "False"})
    EXPECT_EQ(parse_bool(s), false) << s;
  for (const char* s : {"", "yes", "tRUE", "2", " true"})
    EXPECT_FALSE(parse_bool(s).has_value()) << s;
}

TEST(Quote, EscapesQuotesAndBackslashes) {
  EXPECT_EQ(quote("yes"), "\"yes\"");
  EXPECT_EQ(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
}

}  // namespace
}  // namespace faultproxy::go
