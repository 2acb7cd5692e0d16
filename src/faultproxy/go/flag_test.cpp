#include "faultproxy/go/flag.h"

#include <gtest/gtest.h>

namespace faultproxy::go {
namespace {

const std::vector<FlagSpec> kSpecs = {
    {{"toxicName", "n"}, FlagKind::kString},
    {{"toxicity", "tox"}, FlagKind::kString},
    {{"attribute", "a"}, FlagKind::kStringSlice},
    {{"upstream", "u"}, FlagKind::kBool},
    {{"help"}, FlagKind::kBool},
};

TEST(Flags, SingleAndDoubleDashesAndAliasesAreTheSame) {
  auto p = parse_flags({"-n", "a", "--tox", "0.5", "-upstream", "--a=x=1", "proxy"}, kSpecs);
  ASSERT_EQ(p.error, "");
  EXPECT_EQ(p.value("toxicName"), "a");
  EXPECT_EQ(p.value("toxicity"), "0.5");
  EXPECT_TRUE(p.flag("upstream"));
  EXPECT_EQ(p.slice("attribute"), std::vector<std::string>({"x=1"}));
  EXPECT_EQ(p.args, std::vector<std::string>({"proxy"}));
}

TEST(Flags, ValueWithEqualsAndLastStringWins) {
  auto p = parse_flags({"-n=first", "--toxicName=second", "-n", "=third"}, kSpecs);
  ASSERT_EQ(p.error, "");
  EXPECT_EQ(p.value("toxicName"), "=third");
  EXPECT_TRUE(p.args.empty());
}

TEST(Flags, SliceCollectsSplitsAtCommasAndTrims) {
  auto p = parse_flags({"-a", "latency=100", "-a", "jitter=10, rate=5"}, kSpecs);
  ASSERT_EQ(p.error, "");
  EXPECT_EQ(p.slice("attribute"), std::vector<std::string>({"latency=100", "jitter=10", "rate=5"}));
}

TEST(Flags, ParsingStopsAtTheFirstArgument) {
  auto p = parse_flags({"-n", "x", "proxy", "-u", "--", "-a"}, kSpecs);
  ASSERT_EQ(p.error, "");
  EXPECT_FALSE(p.flag("upstream"));  // after the proxy name: an argument, as in toxiproxy-cli
  EXPECT_EQ(p.args, std::vector<std::string>({"proxy", "-u", "--", "-a"}));
}

TEST(Flags, DoubleDashEndsFlagsAndSingleDashIsAnArgument) {
  auto p = parse_flags({"-u", "--", "-n"}, kSpecs);
  ASSERT_EQ(p.error, "");
  EXPECT_EQ(p.args, std::vector<std::string>({"-n"}));
  p = parse_flags({"-", "-u"}, kSpecs);
  EXPECT_EQ(p.args, std::vector<std::string>({"-", "-u"}));
}

TEST(Flags, BooleansTakeOnlyInlineValues) {
  auto p = parse_flags({"-u=false", "true"}, kSpecs);
  ASSERT_EQ(p.error, "");
  EXPECT_FALSE(p.flag("upstream"));
  EXPECT_EQ(p.args, std::vector<std::string>({"true"}));
  p = parse_flags({"-u=T"}, kSpecs);
  EXPECT_TRUE(p.flag("upstream"));
  EXPECT_EQ(parse_flags({"-u=yes"}, kSpecs).error, "invalid boolean value \"yes\" for -u: parse error");
}

TEST(Flags, GoErrorMessages) {
  EXPECT_EQ(parse_flags({"-x"}, kSpecs).error, "flag provided but not defined: -x");
  EXPECT_EQ(parse_flags({"--nope=1"}, kSpecs).error, "flag provided but not defined: -nope");
  EXPECT_EQ(parse_flags({"-n"}, kSpecs).error, "flag needs an argument: -n");
  EXPECT_EQ(parse_flags({"---n"}, kSpecs).error, "bad flag syntax: ---n");
  EXPECT_EQ(parse_flags({"-=x"}, kSpecs).error, "bad flag syntax: -=x");
}

TEST(Flags, UndefinedHIsAHelpRequest) {
  auto p = parse_flags({"-h"}, kSpecs);
  EXPECT_EQ(p.error, "");
  EXPECT_TRUE(p.help_requested);
  EXPECT_TRUE(parse_flags({"--help"}, kSpecs).flag("help"));
}

}  // namespace
}  // namespace faultproxy::go
