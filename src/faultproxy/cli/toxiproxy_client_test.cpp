#include "faultproxy/cli/toxiproxy_client.h"

#include <gtest/gtest.h>

#include <cmath>
#include <deque>
#include <limits>

namespace faultproxy::cli {
namespace {

// Answers each request with the next scripted outcome and records what was asked.
class ScriptedTransport final : public Transport {
 public:
  void reply(unsigned status, std::string body) {
    script_.push_back({HttpResponse{status, std::move(body)}, {}});
  }
  void fail(std::string error) { script_.push_back({std::nullopt, std::move(error)}); }

  HttpOutcome send(std::string_view method, std::string_view path,
                   const std::optional<std::string>& body) override {
    sent.push_back(std::string(method) + " " + std::string(path) + (body ? " " + *body : ""));
    if (script_.empty()) return {std::nullopt, "unexpected request"};
    HttpOutcome next = script_.front();
    script_.pop_front();
    return next;
  }

  std::vector<std::string> sent;

 private:
  std::deque<HttpOutcome> script_;
};

constexpr const char* kProxyJson =
    R"({"name":"p","listen":"127.0.0.1:1","upstream":"127.0.0.1:2","enabled":true,"Logger":{},"toxics":[)"
    R"({"attributes":{"latency":100,"jitter":0},"name":"lat","type":"latency","stream":"downstream","toxicity":0.5}]})";

TEST(ParseAttributes, NumbersWhenGoParsesThemElseStrings) {
  Attributes a =
      parse_attributes({"latency=100", "jitter=1_0", "rate=10KB", "noequals", "x=a=b", "latency=7", "e="});
  EXPECT_EQ(std::get<double>(a.at("latency")), 7.0);  // the last one wins
  EXPECT_EQ(std::get<double>(a.at("jitter")), 10.0);
  EXPECT_EQ(std::get<std::string>(a.at("rate")), "10KB");
  EXPECT_EQ(std::get<std::string>(a.at("x")), "a=b");
  EXPECT_EQ(std::get<std::string>(a.at("e")), "");
  EXPECT_EQ(a.count("noequals"), 0u);
}

TEST(Encode, BodiesAreByteForByteGoMarshal) {
  EXPECT_EQ(*encode_new_proxy("a b", "127.0.0.1:1", "x:2").value,
            R"({"name":"a b","listen":"127.0.0.1:1","upstream":"x:2","enabled":true,"toxics":null})");
  ToxicOptions add{"p", "", "latency", "downstream", 1.0f, parse_attributes({"latency=100", "jitter=10"})};
  EXPECT_EQ(
      *encode_add_toxic(add).value,
      R"({"name":"","type":"latency","stream":"downstream","toxicity":1,"attributes":{"jitter":10,"latency":100}})");
  add.toxicity = 0.1f;
  add.attributes = parse_attributes({"rate=1e21", "mode=<fast>"});
  EXPECT_EQ(*encode_add_toxic(add).value,
            R"({"name":"","type":"latency","stream":"downstream","toxicity":0.1,)"
            R"("attributes":{"mode":"\u003cfast\u003e","rate":1e+21}})");
  EXPECT_EQ(*encode_update_toxic(1.0f, {}).value, R"({"attributes":{},"toxicity":1})");
  EXPECT_EQ(*encode_update_toxic(0.25f, parse_attributes({"jitter=2.5"})).value,
            R"({"attributes":{"jitter":2.5},"toxicity":0.25})");
}

TEST(ToxicFields, TakenOutOfTheAttributesAndSentBesideThem) {
  std::vector<std::string> raw = {
      "latency=100",         "client_cidr=127.0.1.0/24", "client_cidrx=1", "client_cidr=::1/128",
      "start_after_ms=1000", "duration_ms=3s",           "novalue"};
  const ToxicFields f = take_toxic_fields(raw);
  EXPECT_EQ(f.client_cidr, "::1/128");  // the last one wins
  EXPECT_EQ(f.start_after_ms, AttributeValue(1000.0));
  EXPECT_EQ(f.duration_ms, AttributeValue(std::string("3s")));  // sent as given: the server says why not
  EXPECT_EQ(raw, (std::vector<std::string>{"latency=100", "client_cidrx=1", "novalue"}));
  EXPECT_EQ(take_toxic_fields(raw).client_cidr, std::nullopt);
  std::vector<std::string> clear = {"client_cidr="};
  EXPECT_EQ(take_toxic_fields(clear).client_cidr, "");
  ToxicOptions add{"p",
                   "n",
                   "latency",
                   "downstream",
                   1.0f,
                   parse_attributes({"latency=100"}),
                   {.client_cidr = "127.0.1.2/32"}};
  EXPECT_EQ(*encode_add_toxic(add).value,
            R"({"name":"n","type":"latency","stream":"downstream","toxicity":1,"attributes":{"latency":100},)"
            R"("client_cidr":"127.0.1.2/32"})");
  add.fields = {.start_after_ms = 250.0, .duration_ms = 3000.0};
  EXPECT_EQ(*encode_add_toxic(add).value,
            R"({"name":"n","type":"latency","stream":"downstream","toxicity":1,"attributes":{"latency":100},)"
            R"("start_after_ms":250,"duration_ms":3000})");
  EXPECT_EQ(*encode_update_toxic(1.0f, {}, {.client_cidr = ""}).value,
            R"({"attributes":{},"toxicity":1,"client_cidr":""})");
  EXPECT_EQ(*encode_update_toxic(1.0f, {}, {.duration_ms = 0.0}).value,
            R"({"attributes":{},"toxicity":1,"duration_ms":0})");
  EXPECT_EQ(encode_update_toxic(1.0f, {}, {.duration_ms = 1.0 / 0.0}).error, "json: unsupported value: +Inf");
  auto t = decode_toxic(
      go::json::parse_first(
          R"({"attributes":{},"name":"n","type":"timeout","stream":"downstream","toxicity":1,"client_cidr":"::1/128","start_after_ms":5,"duration_ms":700})")
          .value);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t.value->client_cidr, "::1/128");
  EXPECT_EQ(t.value->start_after_ms, 5);
  EXPECT_EQ(t.value->duration_ms, 700);
  EXPECT_EQ(decode_toxic(go::json::parse_first(R"({"duration_ms":"x"})").value).error,
            "json: cannot unmarshal string into Go struct field Toxic.duration_ms of type int64");
}

TEST(Encode, NonFiniteNumbersFailAsInGo) {
  EXPECT_EQ(encode_update_toxic(1.0f, parse_attributes({"latency=inf"})).error,
            "json: unsupported value: +Inf");
  EXPECT_EQ(encode_update_toxic(std::numeric_limits<float>::quiet_NaN(), {}).error,
            "json: unsupported value: NaN");
}

TEST(Encode, ProxySaveCarriesItsToxics) {
  auto p = decode_proxy(go::json::parse_first(kProxyJson).value);
  ASSERT_TRUE(p.ok()) << p.error;
  p.value->enabled = false;
  EXPECT_EQ(
      *encode_proxy(*p.value).value,
      R"({"name":"p","listen":"127.0.0.1:1","upstream":"127.0.0.1:2","enabled":false,"toxics":[)"
      R"({"name":"lat","type":"latency","stream":"downstream","toxicity":0.5,"attributes":{"jitter":0,"latency":100}}]})");
}

TEST(Decode, ReportsTypeMismatchesLikeGo) {
  EXPECT_EQ(decode_proxy(go::json::parse_first(R"({"name":1})").value).error,
            "json: cannot unmarshal number into Go struct field Proxy.name of type string");
  EXPECT_EQ(decode_proxy(go::json::parse_first(R"({"enabled":"yes"})").value).error,
            "json: cannot unmarshal string into Go struct field Proxy.enabled of type bool");
  auto ok = decode_proxy(go::json::parse_first(R"({"name":"x","toxics":null,"extra":[1]})").value);
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(ok.value->toxics.empty());
}

TEST(Decode, ReadsAsGosDecoderDoes) {
  // Keys match fields case-insensitively; the document's order decides which error comes first.
  auto t = decode_toxic(
      go::json::parse_first(R"({"Name":"n","TOXICITY":0.5,"attributes":{"a":[1,{"b":null}]}})").value);
  ASSERT_TRUE(t.ok()) << t.error;
  EXPECT_EQ(t.value->name, "n");
  EXPECT_EQ(t.value->toxicity, 0.5f);
  ASSERT_EQ(t.value->attributes.at("a").items.size(), 2u);
  EXPECT_EQ(t.value->attributes.at("a").items[1].members.at(0).key, "b");
  EXPECT_EQ(decode_toxic(go::json::parse_first(R"({"toxicity":1e39,"name":1})").value).error,
            "json: cannot unmarshal number 1e39 into Go struct field Toxic.toxicity of type float32");
  EXPECT_EQ(
      decode_toxic(go::json::parse_first(R"({"attributes":[]})").value).error,
      "json: cannot unmarshal array into Go struct field Toxic.attributes of type toxiproxy.Attributes");
  EXPECT_EQ(decode_proxy(go::json::parse_first(R"({"toxics":[1]})").value).error,
            "json: cannot unmarshal number into Go struct field Proxy.toxics of type toxiproxy.Toxic");
  EXPECT_EQ(decode_proxy(go::json::parse_first(R"("x")").value).error,
            "json: cannot unmarshal string into Go value of type toxiproxy.Proxy");
}

TEST(ProxyPath, EncodesEverythingOutsidePathCharacters) {
  EXPECT_EQ(proxy_path("redis-master"), "/proxies/redis-master");
  EXPECT_EQ(proxy_path("a b/c?d#e%f"), "/proxies/a%20b%2Fc%3Fd%23e%25f");
  EXPECT_EQ(proxy_path("x:y@z"), "/proxies/x:y@z");
}

TEST(Client, ErrorsCarryTheServerMessageAndGoPrefixes) {
  ScriptedTransport t;
  ToxiproxyClient client(t);
  t.reply(409, "{\"error\":\"proxy already exists\",\"status\":409}\n");
  EXPECT_EQ(client.create_proxy("p", "l", "u").error, "Create: HTTP 409: proxy already exists");
  t.fail("Get \"http://h/proxies\": dial tcp h: connect: connection refused");
  EXPECT_EQ(client.proxies().error,
            "fail to request: Get \"http://h/proxies\": dial tcp h: connect: connection refused");
  t.reply(404, "404 page not found\n");
  EXPECT_EQ(client.proxy("x").error, "HTTP 404: 404 page not found");
  t.reply(405, "");
  EXPECT_EQ(client.proxy("x").error, "HTTP 405: no error message (status 405)");
  t.reply(200, "not json");
  EXPECT_EQ(client.proxy("x").error.rfind("invalid JSON in the server's answer", 0), 0u);
  t.reply(200, "[]");
  EXPECT_EQ(client.proxies().error,
            "json: cannot unmarshal array into Go value of type map[string]*toxiproxy.Proxy");
}

TEST(Client, AddToxicLooksTheProxyUpFirstAndWrapsErrors) {
  ScriptedTransport t;
  ToxiproxyClient client(t);
  ToxicOptions add{"p", "n", "latency", "upstream", 1.0f, {}};
  t.reply(404, "{\"error\":\"proxy not found\",\"status\":404}\n");
  EXPECT_EQ(client.add_toxic(add).error, "failed to retrieve proxy with name `p`: HTTP 404: proxy not found");
  t.reply(200, kProxyJson);
  t.reply(400, "{\"error\":\"invalid toxic type\",\"status\":400}\n");
  EXPECT_EQ(client.add_toxic(add).error,
            "failed to add toxic to proxy p: AddToxic: HTTP 400: invalid toxic type");
  ASSERT_EQ(t.sent.size(), 3u);
  EXPECT_EQ(t.sent[1], "GET /proxies/p");
  EXPECT_EQ(
      t.sent[2],
      R"(POST /proxies/p/toxics {"name":"n","type":"latency","stream":"upstream","toxicity":1,"attributes":{}})");
  t.reply(200, kProxyJson);
  add.attributes = parse_attributes({"latency=nan"});
  EXPECT_EQ(client.add_toxic(add).error, "failed to add toxic to proxy p: json: unsupported value: NaN");
}

TEST(Client, UpdateAndRemoveAddressTheToxicByEscapedName) {
  ScriptedTransport t;
  ToxiproxyClient client(t);
  ToxicOptions update{"p", "my toxic", "", "", 1.0f, parse_attributes({"jitter=5"})};
  t.reply(200, kProxyJson);
  t.reply(404, "{\"error\":\"toxic not found\",\"status\":404}\n");
  EXPECT_EQ(client.update_toxic(update).error,
            "failed to update toxic 'my toxic' of proxy 'p': HTTP 404: toxic not found");
  EXPECT_EQ(t.sent.back(), R"(PATCH /proxies/p/toxics/my%20toxic {"attributes":{"jitter":5},"toxicity":1})");
  t.reply(200, kProxyJson);
  t.reply(204, "");
  EXPECT_TRUE(client.remove_toxic(update).ok());
  EXPECT_EQ(t.sent.back(), "DELETE /proxies/p/toxics/my%20toxic");
}

}  // namespace
}  // namespace faultproxy::cli
