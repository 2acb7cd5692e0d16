#include "faultproxy/cli/render.h"

#include <gtest/gtest.h>

namespace faultproxy::cli {
namespace {

const std::string E = "\x1b";

Toxic toxic(std::string name, std::string type, std::string stream, float toxicity,
            const std::string& attrs) {
  Toxic t{std::move(name), std::move(type), std::move(stream), toxicity, {}};
  for (const auto& [key, value] : go::json::parse_first(attrs).value.members)
    t.attributes[key] = value;
  return t;
}

TEST(RenderList, PipedIsTabSeparatedWithToxicCounts) {
  ProxyMap proxies;
  proxies["b"] = Proxy{"b", "127.0.0.1:2", "127.0.0.1:9", false, {toxic("t", "noop", "upstream", 1, "{}")}};
  proxies["a"] = Proxy{"a", "127.0.0.1:1", "127.0.0.1:9", true, {}};
  EXPECT_EQ(render_list(proxies, false, "x"),
            "a\t127.0.0.1:1\t127.0.0.1:9\tenabled\t0\n"
            "b\t127.0.0.1:2\t127.0.0.1:9\tdisabled\t1\n");
  EXPECT_EQ(render_list({}, false, "x"), "");
}

TEST(RenderList, TtyPadsWithTabsAndColoursDisabledProxiesRed) {
  ProxyMap proxies;
  proxies["a-very-long-proxy-name"] = Proxy{"a-very-long-proxy-name",
                                            "localhost:12345678",
                                            "u:1",
                                            false,
                                            {toxic("t", "noop", "upstream", 1, "{}")}};
  const std::string out = render_list(proxies, true, "faultproxy-cli");
  // Extra tabs: 3 - (len/8 + 1), never negative: none after the 22-character name, the 18-character
  // listen or the 8-character "disabled", two after the 3-character upstream.
  EXPECT_NE(out.find(E + "[31ma-very-long-proxy-name" + E + "[0m\t" + E + "[34mlocalhost:12345678" + E +
                     "[0m\t" + E + "[33mu:1" + E + "[0m\t\t\t" + E + "[35mdisabled" + E + "[0m\t" + E +
                     "[31m1" + E + "[0m\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("Hint: inspect toxics with `faultproxy-cli inspect <proxyName>`\n"), std::string::npos);
}

TEST(RenderList, TtyWithoutProxies) {
  EXPECT_EQ(
      render_list({}, true, "faultproxy-cli"),
      E + "[32mName\t\t\t" + E + "[34mListen\t\t" + E + "[33mUpstream\t\t" + E + "[35mEnabled\t\t" + E +
          "[31mToxics\n" + E + "[0m" + E +
          "[0m======================================================================================\n" + E +
          "[31mno proxies\n" + E + "[0m\n" + E + "[0mHint: create a proxy with `faultproxy-cli create`\n");
}

TEST(RenderInspect, PipedListsToxicsInServerOrderAndNothingWithoutToxics) {
  Proxy p{"p",
          "l",
          "u",
          true,
          {toxic("up", "latency", "upstream", 0.125f, R"({"latency":5,"jitter":0})"),
           toxic("lim", "limit_data", "downstream", 1, R"({"bytes":1000000})")}};
  EXPECT_EQ(render_inspect(p, false, "x"),
            "up\ttype=latency\tstream=upstream\ttoxicity=0.12\tattributes=[\tjitter=0\tlatency=5\t]\n"
            "lim\ttype=limit_data\tstream=downstream\ttoxicity=1.00\tattributes=[\tbytes=1e+06\t]\n");
  p.toxics.clear();
  EXPECT_EQ(render_inspect(p, false, "x"), "");
}

TEST(RenderInspect, ShowsAClientCidrOnlyWhereSet) {
  Proxy p{"p", "l", "u", true, {toxic("part", "timeout", "downstream", 1, R"({"timeout":0})")}};
  p.toxics[0].client_cidr = "127.0.1.2/32";
  EXPECT_EQ(render_inspect(p, false, "x"),
            "part\ttype=timeout\tstream=downstream\ttoxicity=1.00\tclient_cidr=127.0.1.2/"
            "32\tattributes=[\ttimeout=0\t]\n");
}

TEST(RenderInspect, ShowsATimeWindowOnlyWhereSet) {
  Proxy p{"p", "l", "u", true, {toxic("gate", "refuse", "downstream", 1, R"({})")}};
  p.toxics[0].start_after_ms = 500;
  p.toxics[0].duration_ms = 3000;
  EXPECT_EQ(render_inspect(p, false, "x"),
            "gate\ttype=refuse\tstream=downstream\ttoxicity=1.00\tstart_after_ms=500\tduration_ms=3000\t"
            "attributes=[\t]\n");
}

TEST(RenderInspect, TtyWithoutToxics) {
  Proxy p{"p", "127.0.0.1:1", "127.0.0.1:2", true, {}};
  EXPECT_EQ(render_inspect(p, true, "faultproxy-cli"),
            E + "[35mName: " + E + "[0mp\t" + E + "[34mListen: " + E + "[0m127.0.0.1:1\t" + E +
                "[33mUpstream: " + E + "[0m127.0.0.1:2\n" + E +
                "[0m======================================================================\n" + E +
                "[31mProxy has no toxics enabled.\n" + E + "[0m\n" + E +
                "[0mHint: add a toxic with `faultproxy-cli toxic add`\n");
}

TEST(RenderInspect, TtyWithOnlyUpstreamToxicsSaysSoForDownstream) {
  Proxy p{"p", "l", "u", true, {toxic("x", "slicer", "upstream", 1, R"({"delay":10,"average_size":1})")}};
  const std::string out = render_inspect(p, true, "c");
  EXPECT_NE(
      out.find(
          E + "[32mUpstream toxics:\n" + E + "[0m" + E + "[34mx:" + E +
          "[0m\ttype=slicer\tstream=upstream\ttoxicity=1.00\tattributes=[\taverage_size=1\tdelay=10\t]\n\n" +
          E + "[32mDownstream toxics:\n" + E + "[0m" + E + "[31mProxy has no Downstream toxics enabled.\n" +
          E + "[0m\n"),
      std::string::npos)
      << out;
}

TEST(RenderToggle, ColoursOnlyOnATty) {
  EXPECT_EQ(render_toggle("p", false, false), "Proxy p is now disabled\n");
  EXPECT_EQ(render_toggle("p", true, true),
            "Proxy " + E + "[32mp" + E + "[0m is now " + E + "[32menabled" + E + "[0m\n");
}

TEST(FormatAttribute, AsGoPrintsAnInterfaceValue) {
  EXPECT_EQ(format_attribute(go::json::parse_first("100").value), "100");
  EXPECT_EQ(format_attribute(go::json::parse_first("2.5").value), "2.5");
  EXPECT_EQ(format_attribute(go::json::parse_first("10000000").value), "1e+07");
  EXPECT_EQ(format_attribute(go::json::parse_first("\"10ms\"").value), "10ms");
  EXPECT_EQ(format_attribute(go::json::parse_first("true").value), "true");
  EXPECT_EQ(format_attribute(go::json::parse_first("null").value), "<nil>");
  EXPECT_EQ(format_attribute(go::json::parse_first("[1,\"a\"]").value), "[1 a]");
  EXPECT_EQ(format_attribute(go::json::parse_first("{\"b\":1,\"a\":2}").value), "map[a:2 b:1]");
}

}  // namespace
}  // namespace faultproxy::cli
