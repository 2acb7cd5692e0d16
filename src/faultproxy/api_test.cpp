// The HTTP API's contract, driven in-process through Api::handle: every route and error of the
// Toxiproxy 2.12 transcript (shared/reference/toxiproxy-2.12-api-transcript.txt), byte for byte
// where the transcript shows bytes.
#include "faultproxy/api.h"

#include <gtest/gtest.h>

#include "testing/servers.h"

namespace faultproxy {
namespace {

namespace bhttp = common::http::bhttp;

struct Reply {
  int status;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // in order
  std::string header(std::string_view name) const {
    for (const auto& [k, v] : headers)
      if (k == name) return v;
    return "";
  }
  std::vector<std::string> names() const {
    std::vector<std::string> n;
    for (const auto& [k, v] : headers)
      n.push_back(k);
    return n;
  }
};

class ApiTest : public ::testing::Test {
 protected:
  ApiTest() : workers_(1), proxies_(workers_, {.seed = 1}), api_(proxies_, registry_, {}) {}

  Reply call(bhttp::verb method, std::string target, std::string body = "",
             std::string agent = "curl/7.88.1") {
    common::http::Request req{method, target, 11};
    req.set(bhttp::field::user_agent, agent);
    req.body() = std::move(body);
    req.prepare_payload();
    auto res = api_.handle(req, {});
    Reply r{static_cast<int>(res.result_int()), res.body(), {}};
    for (const auto& f : res)
      r.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    return r;
  }
  Reply get(std::string t) { return call(bhttp::verb::get, std::move(t)); }
  Reply post(std::string t, std::string b) { return call(bhttp::verb::post, std::move(t), std::move(b)); }
  Reply patch(std::string t, std::string b) { return call(bhttp::verb::patch, std::move(t), std::move(b)); }
  Reply del(std::string t) { return call(bhttp::verb::delete_, std::move(t)); }

  // A proxy named `name` on a free port; returns "127.0.0.1:<port>".
  std::string make_proxy(const std::string& name, const std::string& upstream = "127.0.0.1:18100") {
    const std::string listen = "127.0.0.1:" + std::to_string(testing_support::free_port());
    auto r = post("/proxies", R"({"name":")" + name + R"(","listen":")" + listen + R"(","upstream":")" +
                                  upstream + "\"}");
    EXPECT_EQ(r.status, 201) << r.body;
    return listen;
  }

  static std::string proxy_body(const std::string& name, const std::string& listen,
                                const std::string& upstream, bool enabled = true,
                                const std::string& toxics = "") {
    return R"({"name":")" + name + R"(","listen":")" + listen + R"(","upstream":")" + upstream +
           R"(","enabled":)" + (enabled ? "true" : "false") + R"(,"Logger":{},"toxics":[)" + toxics + "]}";
  }

  void expect_go_error(const Reply& r, int status, const std::string& message) {
    EXPECT_EQ(r.status, status);
    EXPECT_EQ(r.body, R"({"error":")" + message + R"(","status":)" + std::to_string(status) + "}\n");
    EXPECT_EQ(r.names(),
              (std::vector<std::string>{"Content-Type", "X-Content-Type-Options", "X-Toxiproxy-Request-Id"}));
    EXPECT_EQ(r.header("Content-Type"), "text/plain; charset=utf-8");
    EXPECT_EQ(r.header("X-Content-Type-Options"), "nosniff");
  }

  Workers workers_;
  common::metrics::Registry registry_;
  ProxyCollection proxies_;
  Api api_;
};

TEST_F(ApiTest, Version) {
  auto r = get("/version");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "{\"version\": \"2.12.0\"}\n");
  EXPECT_EQ(r.names(), (std::vector<std::string>{"Content-Type", "X-Toxiproxy-Request-Id"}));
  EXPECT_EQ(r.header("Content-Type"), "application/json;charset=utf-8");
  const auto id = r.header("X-Toxiproxy-Request-Id");
  EXPECT_EQ(id.size(), 20u);
  EXPECT_EQ(id.find_first_not_of("0123456789abcdefghijklmnopqrstuv"), std::string::npos);
  EXPECT_NE(id, get("/version").header("X-Toxiproxy-Request-Id"));
}

TEST_F(ApiTest, CreateListGetDelete) {
  auto r = get("/proxies");
  EXPECT_EQ(r.body, "{}");
  EXPECT_EQ(r.header("Content-Type"), "application/json");

  const std::string listen = "127.0.0.1:" + std::to_string(testing_support::free_port());
  r = post("/proxies", R"({"name":"echo","listen":")" + listen + R"(","upstream":"127.0.0.1:18100"})");
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.body, proxy_body("echo", listen, "127.0.0.1:18100"));
  EXPECT_EQ(r.names(), (std::vector<std::string>{"Content-Type", "X-Toxiproxy-Request-Id"}));

  expect_go_error(post("/proxies", R"({"name":"echo","listen":"127.0.0.1:0","upstream":"127.0.0.1:18100"})"),
                  409, "proxy already exists");

  r = get("/proxies/echo");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, proxy_body("echo", listen, "127.0.0.1:18100"));
  expect_go_error(get("/proxies/missing"), 404, "proxy not found");

  r = del("/proxies/echo");
  EXPECT_EQ(r.status, 204);
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(r.names(), (std::vector<std::string>{"X-Toxiproxy-Request-Id"}));
  expect_go_error(del("/proxies/echo"), 404, "proxy not found");
}

TEST_F(ApiTest, CreateErrors) {
  expect_go_error(post("/proxies", R"({"listen":"127.0.0.1:0","upstream":"127.0.0.1:18100"})"), 400,
                  "missing required field: name");
  expect_go_error(post("/proxies", R"({"name":"","upstream":"127.0.0.1:18100"})"), 400,
                  "missing required field: name");
  expect_go_error(post("/proxies", R"({"name":"noup","listen":"127.0.0.1:0"})"), 400,
                  "missing required field: upstream");
  expect_go_error(post("/proxies", ""), 400, "bad request body: EOF");
  expect_go_error(post("/proxies", R"({"name":"bad",)"), 400, "bad request body: unexpected EOF");
  expect_go_error(post("/proxies", "not json"), 400,
                  "bad request body: invalid character 'o' in literal null (expecting 'u')");
  expect_go_error(
      post("/proxies", R"({"name":123,"upstream":"127.0.0.1:18100"})"), 400,
      "bad request body: json: cannot unmarshal number into Go struct field Proxy.name of type string");
  expect_go_error(
      post("/proxies", R"({"name":"x","upstream":"127.0.0.1:18100","enabled":"yes"})"), 400,
      "bad request body: json: cannot unmarshal string into Go struct field Proxy.enabled of type bool");
  expect_go_error(post("/proxies", "[]"), 400,
                  "bad request body: json: cannot unmarshal array into Go value of type toxiproxy.Proxy");
  expect_go_error(post("/proxies", R"({"name":"badlisten","listen":"127.0.0.1:notaport","upstream":"x:1"})"),
                  500, "listen tcp: address tcp/notaport: unknown port");
  expect_go_error(post("/proxies", R"({"name":"nope","listen":"nope","upstream":"x:1"})"), 500,
                  "listen tcp: address nope: missing port in address");
  const std::string taken = make_proxy("holder");
  expect_go_error(post("/proxies", R"({"name":"clash","listen":")" + taken + R"(","upstream":"x:1"})"), 500,
                  "listen tcp " + taken + ": bind: address already in use");
  EXPECT_EQ(get("/proxies/clash").status, 404);  // nothing created
  EXPECT_EQ(get("/proxies/badlisten").status, 404);
}

TEST_F(ApiTest, CreateVariants) {
  // localhost is bound as 127.0.0.1 and echoed so; port 0 is echoed as bound.
  const auto port = std::to_string(testing_support::free_port());
  auto r =
      post("/proxies", R"({"name":"lh","listen":"localhost:)" + port + R"(","upstream":"127.0.0.1:18100"})");
  EXPECT_EQ(r.body, proxy_body("lh", "127.0.0.1:" + port, "127.0.0.1:18100"));
  r = post("/proxies", R"({"name":"any","listen":"127.0.0.1:0","upstream":"127.0.0.1:18100"})");
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.body.find("127.0.0.1:0\""), std::string::npos);
  // No listen: any interface, any port, echoed as bound.
  r = post("/proxies", R"({"name":"nolisten","upstream":"127.0.0.1:18100"})");
  EXPECT_EQ(r.status, 201);
  EXPECT_NE(r.body.find(R"("listen":"[::]:)"), std::string::npos) << r.body;
  // Disabled: not started, listen kept verbatim, upstream not checked.
  r = post("/proxies",
           R"({"name":"off","listen":"localhost:18483","upstream":"nowhere.invalid:1","enabled":false})");
  EXPECT_EQ(r.body, proxy_body("off", "localhost:18483", "nowhere.invalid:1", false));
  // Unknown fields and trailing garbage are ignored; keys match case-insensitively.
  const auto listen = "127.0.0.1:" + std::to_string(testing_support::free_port());
  r = post("/proxies",
           R"({"Name":"extra","listen":")" + listen + R"(","UPSTREAM":"127.0.0.1:18100","foo":1}garbage)");
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.body, proxy_body("extra", listen, "127.0.0.1:18100"));
}

TEST_F(ApiTest, ProxiesAreListedSortedByName) {
  make_proxy("zeta");
  make_proxy("alpha");
  make_proxy("mid");
  const auto body = get("/proxies").body;
  const auto a = body.find("\"alpha\":"), m = body.find("\"mid\":"), z = body.find("\"zeta\":");
  EXPECT_LT(a, m);
  EXPECT_LT(m, z);
}

TEST_F(ApiTest, ToxicDefaultsAndEveryType) {
  make_proxy("echo");
  auto r = post("/proxies/echo/toxics", R"({"type":"latency","attributes":{"latency":100}})");
  EXPECT_EQ(r.status, 200);  // not 201
  EXPECT_EQ(
      r.body,
      R"({"attributes":{"latency":100,"jitter":0},"name":"latency_downstream","type":"latency","stream":"downstream","toxicity":1})");
  r = post(
      "/proxies/echo/toxics",
      R"({"name":"slow_up","type":"bandwidth","stream":"upstream","toxicity":0.5,"attributes":{"rate":1000}})");
  EXPECT_EQ(
      r.body,
      R"({"attributes":{"rate":1000},"name":"slow_up","type":"bandwidth","stream":"upstream","toxicity":0.5})");
  const std::pair<const char*, const char*> defaults[] = {
      {"timeout", R"({"timeout":0})"},    {"slow_close", R"({"delay":0})"},
      {"reset_peer", R"({"timeout":0})"}, {"slicer", R"({"average_size":0,"size_variation":0,"delay":0})"},
      {"limit_data", R"({"bytes":0})"},   {"noop", "{}"}};
  for (auto [type, attrs] : defaults) {
    r = post("/proxies/echo/toxics", R"({"type":")" + std::string(type) + R"(","stream":"upstream"})");
    EXPECT_EQ(r.body, R"({"attributes":)" + std::string(attrs) + R"(,"name":")" + type +
                          R"(_upstream","type":")" + type + R"(","stream":"upstream","toxicity":1})");
  }
  r = post("/proxies/echo/toxics", R"({"type":"bandwidth"})");
  EXPECT_EQ(
      r.body,
      R"({"attributes":{"rate":0},"name":"bandwidth_downstream","type":"bandwidth","stream":"downstream","toxicity":1})");
  // Listing: upstream toxics first (insertion order), then downstream ones.
  r = get("/proxies/echo/toxics");
  const auto up_last = r.body.find("noop_upstream"), down_first = r.body.find("latency_downstream");
  EXPECT_LT(r.body.find("slow_up"), r.body.find("timeout_upstream"));
  EXPECT_LT(up_last, down_first);
  EXPECT_LT(down_first, r.body.find("bandwidth_downstream"));
  EXPECT_EQ(
      get("/proxies/echo").body.find("\"toxics\":[{\"attributes\":{\"rate\":1000},\"name\":\"slow_up\""),
      get("/proxies/echo").body.find("\"toxics\":"));
}

TEST_F(ApiTest, ProtocolToxicsHaveTypedAttributesWithDefaults) {
  make_proxy("db");
  auto r = post("/proxies/db/toxics", R"({"type":"mysql_error","attributes":{"statement":"^update"}})");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(
      r.body,
      R"({"attributes":{"statement":"^update","code":1213,"sqlstate":"40001","message":"Deadlock found when )"
      R"(trying to get lock; try restarting transaction"},"name":"mysql_error_downstream","type":"mysql_error",)"
      R"("stream":"downstream","toxicity":1})");
  // PATCH merges; a derived sqlstate and message follow the new code, numbers are taken for texts.
  r = patch("/proxies/db/toxics/mysql_error_downstream", R"({"attributes":{"code":1205}})");
  EXPECT_NE(r.body.find(R"("code":1205,"sqlstate":"HY000","message":"Lock wait timeout exceeded)"),
            std::string::npos)
      << r.body;
  r = patch("/proxies/db/toxics/mysql_error_downstream", R"({"attributes":{"sqlstate":1000,"message":"x"}})");
  EXPECT_NE(r.body.find(R"("statement":"^update","code":1205,"sqlstate":"01000","message":"x")"),
            std::string::npos)
      << r.body;
  r = post("/proxies/db/toxics",
           R"({"type":"http_abort","stream":"upstream","attributes":{"percentage":12.5}})");
  EXPECT_EQ(
      r.body,
      R"({"attributes":{"status":503,"percentage":12.5,"method":"","path_prefix":"","header":"","body":""},)"
      R"("name":"http_abort_upstream","type":"http_abort","stream":"upstream","toxicity":1})");
  r = post("/proxies/db/toxics", R"({"type":"redis_delay"})");
  EXPECT_EQ(r.body, R"({"attributes":{"commands":"","latency":0,"jitter":0},"name":"redis_delay_downstream",)"
                    R"("type":"redis_delay","stream":"downstream","toxicity":1})");
  for (const char* type : {"redis_error", "mysql_delay", "http_delay"})
    EXPECT_EQ(post("/proxies/db/toxics", R"({"type":")" + std::string(type) + "\"}").status, 200) << type;
}

TEST_F(ApiTest, ProtocolToxicsRejectWrongAttributesAndChangeNothing) {
  make_proxy("db");
  expect_go_error(
      post("/proxies/db/toxics", R"({"type":"mysql_error","attributes":{"code":70000}})"), 400,
      "bad request body: attributes.code: a MariaDB error number, 1..65535 (2000..2999: the client's "
      "own, produced by cutting the connection)");
  expect_go_error(post("/proxies/db/toxics", R"({"type":"mysql_error","attributes":{"statement":"("}})"), 400,
                  "bad request body: attributes.statement: not a valid regular expression: Unmatched marking "
                  "parenthesis ( or \\\\(.  The error occurred while parsing the regular expression: "
                  "'(\\u003e\\u003e\\u003eHERE\\u003e\\u003e\\u003e'.");
  expect_go_error(post("/proxies/db/toxics", R"({"type":"mysql_error","attributes":{"statement":true}})"),
                  400,
                  "bad request body: json: cannot unmarshal bool into Go struct field "
                  "MysqlErrorToxic.attributes.statement of type string");
  expect_go_error(post("/proxies/db/toxics", R"({"type":"http_abort","attributes":{"percentage":"all"}})"),
                  400,
                  "bad request body: json: cannot unmarshal string into Go struct field "
                  "HttpAbortToxic.attributes.percentage of type float64");
  expect_go_error(
      post("/proxies/db/toxics", R"({"type":"redis_error","attributes":{"error":"a\nb"}})"), 400,
      "bad request body: attributes.error: the error reply's text without the leading '-', one line, "
      "not empty");
  EXPECT_EQ(get("/proxies/db/toxics").body, "[]");
  ASSERT_EQ(
      post("/proxies/db/toxics", R"({"name":"d","type":"redis_delay","attributes":{"latency":5}})").status,
      200);
  expect_go_error(patch("/proxies/db/toxics/d", R"({"attributes":{"latency":-5}})"), 400,
                  "bad request body: attributes.latency: milliseconds, 0..1000000000");
  EXPECT_NE(get("/proxies/db/toxics/d").body.find(R"("latency":5)"), std::string::npos);
  // Populate takes them too, all or nothing.
  const std::string l = "127.0.0.1:" + std::to_string(testing_support::free_port());
  auto r = post(
      "/populate",
      R"([{"name":"web","listen":")" + l +
          R"(","upstream":"127.0.0.1:18100","toxics":[{"type":"http_abort","attributes":{"status":1}}]}])");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("attributes.status: an HTTP status 200..599"), std::string::npos) << r.body;
  r = post(
      "/populate",
      R"([{"name":"web","listen":")" + l +
          R"(","upstream":"127.0.0.1:18100","toxics":[{"type":"http_abort","attributes":{"status":429}}]}])");
  EXPECT_EQ(r.status, 201) << r.body;
  EXPECT_NE(r.body.find(R"("status":429,"percentage":100)"), std::string::npos) << r.body;
}

// Protocol toxics take our toxic-level fields too (time window, client_cidr); a PATCH without
// attributes keeps theirs, one with attributes is checked like a create.
TEST_F(ApiTest, ProtocolToxicsTakeTimeWindowsAndClientCidr) {
  make_proxy("db");
  auto r = post("/proxies/db/toxics",
                R"({"name":"ro","type":"redis_error","start_after_ms":100000,"duration_ms":5000,)"
                R"("client_cidr":"10.0.0.0/8","attributes":{"commands":"set"}})");
  EXPECT_EQ(
      r.body,
      R"({"attributes":{"commands":"set","error":"READONLY You can't write against a read only replica."},)"
      R"("name":"ro","type":"redis_error","stream":"downstream","toxicity":1,"client_cidr":"10.0.0.0/8",)"
      R"("start_after_ms":100000,"duration_ms":5000})");
  r = patch("/proxies/db/toxics/ro", R"({"toxicity":0.5,"duration_ms":0})");
  EXPECT_EQ(
      r.body,
      R"({"attributes":{"commands":"set","error":"READONLY You can't write against a read only replica."},)"
      R"("name":"ro","type":"redis_error","stream":"downstream","toxicity":0.5,"client_cidr":"10.0.0.0/8",)"
      R"("start_after_ms":100000})");
  expect_go_error(
      patch("/proxies/db/toxics/ro", R"({"attributes":{"commands":"SET,"},"duration_ms":10})"), 400,
      "bad request body: attributes.commands: a comma-separated list of command names (a trailing comma)");
  EXPECT_EQ(get("/proxies/db/toxics/ro").body, r.body);
  // A number for a text attribute is taken as written for protocol toxics only.
  r = post("/proxies/db/toxics", R"({"name":"me","type":"mysql_error","attributes":{"sqlstate":1000}})");
  EXPECT_NE(r.body.find(R"("sqlstate":"01000")"), std::string::npos) << r.body;
  expect_go_error(
      post("/proxies/db/toxics", R"({"name":"l","type":"latency","attributes":{"distribution":5}})"), 400,
      "bad request body: json: cannot unmarshal number into Go struct field "
      "LatencyToxic.attributes.distribution of type string");
}

TEST_F(ApiTest, ToxicOddButAcceptedInput) {
  make_proxy("echo");
  EXPECT_EQ(
      post("/proxies/echo/toxics", R"({"name":"tox2","type":"latency","toxicity":2})").body,
      R"({"attributes":{"latency":0,"jitter":0},"name":"tox2","type":"latency","stream":"downstream","toxicity":2})");
  EXPECT_EQ(
      post("/proxies/echo/toxics", R"({"name":"toxneg","type":"latency","toxicity":-1})").body,
      R"({"attributes":{"latency":0,"jitter":0},"name":"toxneg","type":"latency","stream":"downstream","toxicity":-1})");
  EXPECT_EQ(
      post("/proxies/echo/toxics", R"({"name":"upper","type":"latency","stream":"UPSTREAM"})").body,
      R"({"attributes":{"latency":0,"jitter":0},"name":"upper","type":"latency","stream":"UPSTREAM","toxicity":1})");
  EXPECT_NE(
      post("/proxies/echo/toxics", R"({"type":"latency","stream":"UPSTREAM"})").body.find("latency_UPSTREAM"),
      std::string::npos);
  EXPECT_EQ(
      post("/proxies/echo/toxics", R"({"name":"t5","type":"latency","attributes":{"nosuch":1}})").body,
      R"({"attributes":{"latency":0,"jitter":0},"name":"t5","type":"latency","stream":"downstream","toxicity":1})");
  EXPECT_EQ(
      post("/proxies/echo/toxics", R"({"name":"neg","type":"latency","attributes":{"latency":-5}})").status,
      200);
  EXPECT_EQ(post("/proxies/echo/toxics",
                 R"({"name":"huge","type":"latency","attributes":{"latency":9223372036854775807}})")
                .status,
            200);
  EXPECT_NE(post("/proxies/echo/toxics", R"({"name":"tiny","type":"latency","toxicity":1e-7})")
                .body.find("\"toxicity\":1e-7}"),
            std::string::npos);
}

TEST_F(ApiTest, ToxicErrorsInToxiproxysOrder) {
  make_proxy("echo");
  post("/proxies/echo/toxics", R"({"type":"latency","attributes":{"latency":100}})");
  expect_go_error(post("/proxies/echo/toxics", R"({"type":"latency","attributes":{"latency":100}})"), 409,
                  "toxic already exists");
  expect_go_error(
      post("/proxies/echo/toxics", R"({"name":"latency_downstream","type":"latency","stream":"upstream"})"),
      409, "toxic already exists");
  expect_go_error(post("/proxies/echo/toxics", R"({"type":"nosuchtoxic"})"), 400, "invalid toxic type");
  expect_go_error(post("/proxies/echo/toxics", R"({"name":"t","type":""})"), 400, "invalid toxic type");
  expect_go_error(post("/proxies/echo/toxics", R"({"name":"t"})"), 400, "invalid toxic type");
  const std::string stream_error = "stream was invalid, can be either upstream or downstream";
  expect_go_error(post("/proxies/echo/toxics", R"({"type":"latency","stream":"sideways"})"), 400,
                  stream_error);
  expect_go_error(post("/proxies/echo/toxics", R"({"name":"abbr","type":"latency","stream":"up"})"), 400,
                  stream_error);
  expect_go_error(post("/proxies/echo/toxics", R"({"name":"e","type":"latency","stream":""})"), 400,
                  stream_error);
  // Stream is checked before the type.
  expect_go_error(post("/proxies/echo/toxics", R"({"type":"nosuch","stream":"x"})"), 400, stream_error);
  expect_go_error(post("/proxies/echo/toxics", R"({"type":"latency",)"), 400,
                  "bad request body: unexpected EOF");
  expect_go_error(post("/proxies/echo/toxics", ""), 400, "bad request body: EOF");
  expect_go_error(
      post("/proxies/echo/toxics", R"({"name":"t3","type":"latency","attributes":{"latency":"abc"}})"), 400,
      "bad request body: json: cannot unmarshal string into Go struct field "
      "LatencyToxic.attributes.latency of type int64");
  expect_go_error(
      post("/proxies/echo/toxics", R"({"name":"t4","type":"latency","attributes":{"latency":1.5}})"), 400,
      "bad request body: json: cannot unmarshal number 1.5 into Go struct field "
      "LatencyToxic.attributes.latency of type int64");
  expect_go_error(
      post("/proxies/echo/toxics", R"({"name":"t6","type":"slicer","attributes":{"delay":true}})"), 400,
      "bad request body: json: cannot unmarshal bool into Go struct field "
      "SlicerToxic.attributes.delay of type int");
  expect_go_error(
      post("/proxies/echo/toxics", R"({"name":"t7","type":"latency","attributes":{"latency":1e30}})"), 400,
      "bad request body: json: cannot unmarshal number 1e30 into Go struct field "
      "LatencyToxic.attributes.latency of type int64");
  // Duplicate is checked before attributes.
  expect_go_error(post("/proxies/echo/toxics", R"({"type":"latency","attributes":{"latency":"abc"}})"), 409,
                  "toxic already exists");
  expect_go_error(post("/proxies/missing/toxics", R"({"type":"latency"})"), 404, "proxy not found");
  expect_go_error(get("/proxies/missing/toxics"), 404, "proxy not found");
  EXPECT_EQ(get("/proxies/echo/toxics").body.find("t3"), std::string::npos);  // nothing half-added
}

TEST_F(ApiTest, ToxicGetUpdateDelete) {
  make_proxy("echo");
  post("/proxies/echo/toxics", R"({"type":"latency","attributes":{"latency":100}})");
  EXPECT_EQ(
      get("/proxies/echo/toxics/latency_downstream").body,
      R"({"attributes":{"latency":100,"jitter":0},"name":"latency_downstream","type":"latency","stream":"downstream","toxicity":1})");
  expect_go_error(get("/proxies/echo/toxics/missing"), 404, "toxic not found");
  expect_go_error(get("/proxies/missing/toxics/latency_downstream"), 404, "proxy not found");

  auto r = patch("/proxies/echo/toxics/latency_downstream", R"({"attributes":{"jitter":10}})");
  EXPECT_EQ(
      r.body,
      R"({"attributes":{"latency":100,"jitter":10},"name":"latency_downstream","type":"latency","stream":"downstream","toxicity":1})");
  r = post("/proxies/echo/toxics/latency_downstream", R"({"toxicity":0.25})");  // deprecated POST
  EXPECT_EQ(
      r.body,
      R"({"attributes":{"latency":100,"jitter":10},"name":"latency_downstream","type":"latency","stream":"downstream","toxicity":0.25})");
  r = patch("/proxies/echo/toxics/latency_downstream",
            R"({"name":"renamed","type":"bandwidth","stream":"upstream","attributes":{"latency":150}})");
  EXPECT_EQ(
      r.body,
      R"({"attributes":{"latency":150,"jitter":10},"name":"latency_downstream","type":"latency","stream":"downstream","toxicity":0.25})");
  expect_go_error(patch("/proxies/echo/toxics/latency_downstream", R"({"attributes":{"latency":"x"}})"), 400,
                  "bad request body: json: cannot unmarshal string into Go struct field "
                  "LatencyToxic.attributes.latency of type int64");
  expect_go_error(patch("/proxies/echo/toxics/latency_downstream", "garbage"), 400,
                  "bad request body: invalid character 'g' looking for beginning of value");
  expect_go_error(patch("/proxies/echo/toxics/missing", R"({"attributes":{"latency":1}})"), 404,
                  "toxic not found");
  expect_go_error(patch("/proxies/missing/toxics/latency_downstream", R"({"attributes":{"latency":1}})"), 404,
                  "proxy not found");
  EXPECT_EQ(
      patch("/proxies/echo/toxics/latency_downstream", R"({"toxicity":5})").body,
      R"({"attributes":{"latency":150,"jitter":10},"name":"latency_downstream","type":"latency","stream":"downstream","toxicity":5})");
  // A failed update changes nothing.
  EXPECT_NE(get("/proxies/echo/toxics/latency_downstream").body.find("\"latency\":150"), std::string::npos);

  r = del("/proxies/echo/toxics/latency_downstream");
  EXPECT_EQ(r.status, 204);
  EXPECT_EQ(r.names(), (std::vector<std::string>{"X-Toxiproxy-Request-Id"}));
  expect_go_error(del("/proxies/echo/toxics/latency_downstream"), 404, "toxic not found");
  expect_go_error(del("/proxies/missing/toxics/latency_downstream"), 404, "proxy not found");
}

TEST_F(ApiTest, ProxyUpdate) {
  const std::string listen = make_proxy("echo");
  post("/proxies/echo/toxics", R"({"type":"latency","attributes":{"latency":100}})");
  const std::string toxic =
      R"({"attributes":{"latency":100,"jitter":0},"name":"latency_downstream","type":"latency","stream":"downstream","toxicity":1})";
  auto r = patch("/proxies/echo", R"({"enabled":false})");
  EXPECT_EQ(r.body, proxy_body("echo", listen, "127.0.0.1:18100", false, toxic));
  r = post("/proxies/echo", R"({"enabled":true})");
  EXPECT_EQ(r.body, proxy_body("echo", listen, "127.0.0.1:18100", true, toxic));
  const std::string moved = "127.0.0.1:" + std::to_string(testing_support::free_port());
  r = patch("/proxies/echo", R"({"listen":")" + moved + "\"}");
  EXPECT_EQ(r.body, proxy_body("echo", moved, "127.0.0.1:18100", true, toxic));  // toxics kept
  r = patch("/proxies/echo", R"({"name":"renamed"})");
  EXPECT_EQ(r.body, proxy_body("echo", moved, "127.0.0.1:18100", true, toxic));
  r = patch("/proxies/echo", "{}");
  EXPECT_EQ(r.status, 200);
  expect_go_error(patch("/proxies/echo", "garbage"), 400,
                  "bad request body: invalid character 'g' looking for beginning of value");
  expect_go_error(patch("/proxies/echo", R"({"listen":"nope"})"), 500,
                  "address nope: missing port in address");
  expect_go_error(patch("/proxies/missing", R"({"enabled":false})"), 404, "proxy not found");
  // A listen address that cannot be bound: error, and (unlike Toxiproxy) nothing changes.
  const std::string other = make_proxy("other");
  expect_go_error(patch("/proxies/echo", R"({"listen":")" + other + "\"}"), 500,
                  "listen tcp " + other + ": bind: address already in use");
  EXPECT_EQ(get("/proxies/echo").body, proxy_body("echo", moved, "127.0.0.1:18100", true, toxic));
  // The same address spelled differently is not a conflict with itself.
  const std::string port = moved.substr(moved.find(':') + 1);
  r = patch("/proxies/echo", R"({"listen":"localhost:)" + port + "\"}");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, proxy_body("echo", moved, "127.0.0.1:18100", true, toxic));
}

TEST_F(ApiTest, ResetEnablesEverythingAndRemovesToxics) {
  const std::string a = make_proxy("a");
  post("/proxies/a/toxics", R"({"type":"latency"})");
  patch("/proxies/a", R"({"enabled":false})");
  const auto port = std::to_string(testing_support::free_port());
  post("/proxies", R"({"name":"off","listen":"localhost:)" + port +
                       R"(","upstream":"nowhere.invalid:1","enabled":false})");
  auto r = call(bhttp::verb::post, "/reset", "ignored body");
  EXPECT_EQ(r.status, 204);
  EXPECT_EQ(r.names(), (std::vector<std::string>{"X-Toxiproxy-Request-Id"}));
  EXPECT_EQ(get("/proxies/a").body, proxy_body("a", a, "127.0.0.1:18100"));
  EXPECT_EQ(get("/proxies/off").body, proxy_body("off", "127.0.0.1:" + port, "nowhere.invalid:1"));
}

TEST_F(ApiTest, Populate) {
  const std::string l1 = "127.0.0.1:" + std::to_string(testing_support::free_port());
  const std::string l2 = "127.0.0.1:" + std::to_string(testing_support::free_port());
  auto r = post("/populate", R"([{"name":"pop1","listen":")" + l1 + R"(","upstream":"127.0.0.1:18100"},)" +
                                 R"({"name":"pop2","listen":")" + l2 +
                                 R"(","upstream":"127.0.0.1:18100","enabled":false}])");
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.body, "{\"proxies\":[" + proxy_body("pop1", l1, "127.0.0.1:18100") + "," +
                        proxy_body("pop2", l2, "127.0.0.1:18100", false) + "]}");
  EXPECT_EQ(r.header("Content-Type"), "application/json");
  // Identical: kept with its toxics.
  post("/proxies/pop1/toxics", R"({"type":"noop"})");
  r = post("/populate", R"([{"name":"pop1","listen":")" + l1 + R"(","upstream":"127.0.0.1:18100"}])");
  EXPECT_EQ(r.status, 201);
  EXPECT_NE(r.body.find("noop_downstream"), std::string::npos);
  // Different upstream: replaced, toxics dropped, same address reused.
  r = post("/populate", R"([{"name":"pop1","listen":")" + l1 + R"(","upstream":"127.0.0.1:18101"}])");
  EXPECT_EQ(r.body, "{\"proxies\":[" + proxy_body("pop1", l1, "127.0.0.1:18101") + "]}");
  r = post("/populate", "[]");
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.body, "{\"proxies\":null}");
  // Errors: JSON, no trailing newline, "proxies":null.
  r = post("/populate", R"([{"name":"pop3","listen":"127.0.0.1:0"}])");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, R"({"error":"missing required field: upstream at proxy 1","status":400,"proxies":null})");
  EXPECT_EQ(r.header("Content-Type"), "application/json");
  r = post("/populate", R"([{"listen":"127.0.0.1:0","upstream":"x:1"}])");
  EXPECT_EQ(r.body, R"({"error":"missing required field: name at proxy 1","status":400,"proxies":null})");
  r = post("/populate", R"({"name":"notarray"})");
  EXPECT_EQ(
      r.body,
      R"({"error":"bad request body: json: cannot unmarshal object into Go value of type []struct { toxiproxy.Proxy; Enabled *bool \"json:\\\"enabled\\\"\" }","status":400,"proxies":null})");
  r = post("/populate", "garbage");
  EXPECT_EQ(
      r.body,
      R"({"error":"bad request body: invalid character 'g' looking for beginning of value","status":400,"proxies":null})");
  // All or nothing: the second entry cannot bind, so the first is not created either.
  const auto before = get("/proxies").body;
  r = post("/populate", R"([{"name":"pop4","listen":"127.0.0.1:0","upstream":"127.0.0.1:18100"},)"
                        R"({"name":"pop5","listen":")" +
                            l1 + R"(","upstream":"127.0.0.1:18100"}])");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body, R"({"error":"listen tcp )" + l1 +
                        R"(: bind: address already in use","status":500,"proxies":null})");
  EXPECT_EQ(get("/proxies").body, before);
  // Our extension: toxics per proxy, validated like POST /proxies/{p}/toxics.
  r = post(
      "/populate",
      R"([{"name":"pt","listen":"127.0.0.1:0","upstream":"x:1","toxics":[{"type":"latency","attributes":{"latency":5}},{"type":"bogus"}]}])");
  EXPECT_EQ(r.body, R"({"error":"invalid toxic type at proxy 1 toxic 2","status":400,"proxies":null})");
  r = post(
      "/populate",
      R"([{"name":"pt","listen":"127.0.0.1:0","upstream":"x:1","toxics":[{"type":"latency","stream":"upstream","attributes":{"latency":5}}]}])");
  EXPECT_EQ(r.status, 201);
  EXPECT_NE(r.body.find(R"("toxics":[{"attributes":{"latency":5,"jitter":0},"name":"latency_upstream")"),
            std::string::npos);
}

// Our extension: the toxic-level client_cidr, echoed only when set.
TEST_F(ApiTest, ClientCidrIsValidatedEchoedAndUpdated) {
  make_proxy("echo");
  auto r =
      post("/proxies/echo/toxics",
           R"({"name":"part","type":"timeout","client_cidr":"127.0.1.2/32","attributes":{"timeout":0}})");
  EXPECT_EQ(r.status, 200) << r.body;
  const std::string with_cidr =
      R"({"attributes":{"timeout":0},"name":"part","type":"timeout","stream":"downstream","toxicity":1,"client_cidr":"127.0.1.2/32"})";
  EXPECT_EQ(r.body, with_cidr);
  EXPECT_EQ(get("/proxies/echo/toxics/part").body, with_cidr);
  EXPECT_NE(get("/proxies/echo").body.find(with_cidr), std::string::npos);
  const auto& snapshot = *proxies_.find("echo")->listener->snapshot;
  EXPECT_TRUE(snapshot.client_filtered);
  ASSERT_EQ(snapshot.by_direction[1].size(), 1u);
  EXPECT_EQ(snapshot.by_direction[1][0].client_cidr, Cidr::parse("127.0.1.2/32"));
  // Empty or null: every client, and the answer is Toxiproxy's to the byte.
  r = post("/proxies/echo/toxics", R"({"name":"all","type":"latency","client_cidr":""})");
  EXPECT_EQ(
      r.body,
      R"({"attributes":{"latency":0,"jitter":0},"name":"all","type":"latency","stream":"downstream","toxicity":1})");
  r = post("/proxies/echo/toxics", R"({"name":"all2","type":"latency","client_cidr":null})");
  EXPECT_EQ(r.body.find("client_cidr"), std::string::npos);
  r = post("/proxies/echo/toxics", R"({"name":"v6","type":"latency","Client_CIDR":"::1/128"})");
  EXPECT_NE(r.body.find(R"("toxicity":1,"client_cidr":"::1/128"})"), std::string::npos) << r.body;
  // Malformed: 400 in Toxiproxy's error format, nothing added.
  for (const std::string bad :
       {"127.0.1.2", "127.0.1.0/33", "::1/129", "127.0.1/24", "abc", " 127.0.1.2/32"}) {
    expect_go_error(
        post("/proxies/echo/toxics", R"({"name":"bad","type":"latency","client_cidr":")" + bad + "\"}"), 400,
        "bad request body: client_cidr: invalid CIDR address: " + bad);
  }
  expect_go_error(post("/proxies/echo/toxics", R"({"name":"bad","type":"latency","client_cidr":24})"), 400,
                  "bad request body: json: cannot unmarshal number into Go struct field "
                  "ToxicWrapper.client_cidr of type string");
  EXPECT_EQ(get("/proxies/echo/toxics/bad").status, 404);
  // Update: a new CIDR, kept when absent or null, "" for every client; a bad one changes nothing.
  r = patch("/proxies/echo/toxics/part", R"({"client_cidr":"127.0.1.0/24"})");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find(R"("client_cidr":"127.0.1.0/24"})"), std::string::npos) << r.body;
  r = patch("/proxies/echo/toxics/part", R"({"attributes":{"timeout":5},"client_cidr":null})");
  EXPECT_EQ(
      r.body,
      R"({"attributes":{"timeout":5},"name":"part","type":"timeout","stream":"downstream","toxicity":1,"client_cidr":"127.0.1.0/24"})");
  expect_go_error(patch("/proxies/echo/toxics/part", R"({"attributes":{"timeout":7},"client_cidr":"x/1"})"),
                  400, "bad request body: client_cidr: invalid CIDR address: x/1");
  EXPECT_NE(get("/proxies/echo/toxics/part").body.find(R"({"timeout":5})"), std::string::npos);
  r = patch("/proxies/echo/toxics/all", R"({"client_cidr":"127.0.1.1/32"})");
  EXPECT_NE(r.body.find(R"("client_cidr":"127.0.1.1/32"})"), std::string::npos) << r.body;
  r = patch("/proxies/echo/toxics/part", R"({"client_cidr":""})");
  EXPECT_EQ(
      r.body,
      R"({"attributes":{"timeout":5},"name":"part","type":"timeout","stream":"downstream","toxicity":1})");
  EXPECT_EQ(proxies_.find("echo")->listener->snapshot->by_direction[1][0].client_cidr, std::nullopt);
  // /populate and -config: the same field and the same errors, naming the entry.
  r = post(
      "/populate",
      R"([{"name":"pc","listen":"127.0.0.1:0","upstream":"x:1","toxics":[{"type":"latency","client_cidr":"127.0.1.0/24"}]}])");
  EXPECT_EQ(r.status, 201) << r.body;
  EXPECT_NE(r.body.find(R"("toxicity":1,"client_cidr":"127.0.1.0/24"})"), std::string::npos) << r.body;
  r = post(
      "/populate",
      R"([{"name":"pc","listen":"127.0.0.1:0","upstream":"x:1","toxics":[{"type":"latency","client_cidr":"127.0.1.0/99"}]}])");
  EXPECT_EQ(
      r.body,
      R"({"error":"bad request body: client_cidr: invalid CIDR address: 127.0.1.0/99 at proxy 1 toxic 1","status":400,"proxies":null})");
}

// faultproxy's own toxics: attributes with their defaults, Go-style type errors, range errors.
TEST_F(ApiTest, NewToxicsTakeTypedAttributesWithDefaults) {
  make_proxy("echo");
  auto r = post("/proxies/echo/toxics", R"({"type":"packet_loss"})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(
      r.body,
      R"({"attributes":{"loss_rate":0.1,"correlation":0},"name":"packet_loss_downstream","type":"packet_loss","stream":"downstream","toxicity":1})");
  r = post(
      "/proxies/echo/toxics",
      R"({"name":"pl","type":"packet_loss","stream":"upstream","attributes":{"loss_rate":0.25,"Correlation":1}})");
  EXPECT_EQ(
      r.body,
      R"({"attributes":{"loss_rate":0.25,"correlation":1},"name":"pl","type":"packet_loss","stream":"upstream","toxicity":1})");
  EXPECT_EQ(
      post("/proxies/echo/toxics", R"({"type":"tcp_loss"})").body,
      R"({"attributes":{"loss_rate":0.01,"burst":1,"rto_ms":200},"name":"tcp_loss_downstream","type":"tcp_loss","stream":"downstream","toxicity":1})");
  EXPECT_EQ(
      post("/proxies/echo/toxics", R"({"type":"corrupt","attributes":{"rate":1e-7}})").body,
      R"({"attributes":{"rate":1e-7},"name":"corrupt_downstream","type":"corrupt","stream":"downstream","toxicity":1})");
  EXPECT_EQ(
      post("/proxies/echo/toxics", R"({"type":"slow_open"})").body,
      R"({"attributes":{"delay":1000},"name":"slow_open_downstream","type":"slow_open","stream":"downstream","toxicity":1})");
  EXPECT_EQ(
      post("/proxies/echo/toxics", R"({"type":"refuse","toxicity":0})").body,
      R"({"attributes":{},"name":"refuse_downstream","type":"refuse","stream":"downstream","toxicity":0})");
  // Latency's distribution and bandwidth's per_proxy appear only when set: Toxiproxy's answers stay.
  EXPECT_EQ(
      post("/proxies/echo/toxics", R"({"name":"l1","type":"latency","attributes":{"latency":100}})").body,
      R"({"attributes":{"latency":100,"jitter":0},"name":"l1","type":"latency","stream":"downstream","toxicity":1})");
  r = post(
      "/proxies/echo/toxics",
      R"({"name":"l2","type":"latency","attributes":{"latency":100,"jitter":10,"distribution":"paretonormal"}})");
  EXPECT_EQ(
      r.body,
      R"({"attributes":{"latency":100,"jitter":10,"distribution":"paretonormal"},"name":"l2","type":"latency","stream":"downstream","toxicity":1})");
  r = patch("/proxies/echo/toxics/l2", R"({"attributes":{"distribution":"uniform"}})");
  EXPECT_EQ(
      r.body,
      R"({"attributes":{"latency":100,"jitter":10},"name":"l2","type":"latency","stream":"downstream","toxicity":1})");
  // toxiproxy-cli sends `-a per_proxy=true` as a string: taken as the boolean.
  EXPECT_EQ(
      post("/proxies/echo/toxics",
           R"({"name":"b1","type":"bandwidth","attributes":{"rate":100,"per_proxy":"true"}})")
          .body,
      R"({"attributes":{"rate":100,"per_proxy":true},"name":"b1","type":"bandwidth","stream":"downstream","toxicity":1})");
  EXPECT_EQ(
      patch("/proxies/echo/toxics/b1", R"({"attributes":{"per_proxy":false}})").body,
      R"({"attributes":{"rate":100},"name":"b1","type":"bandwidth","stream":"downstream","toxicity":1})");
  // Where each kind lands in the data plane's snapshot.
  const auto& snap = *proxies_.find("echo")->listener->snapshot;
  EXPECT_EQ(snap.on_open[1].size(), 1u);  // slow_open: before the upstream connect
  for (const auto& spec : snap.by_direction[1]) {
    EXPECT_NE(spec.type, ToxicType::slow_open);
    EXPECT_NE(spec.type, ToxicType::refuse);
  }
  EXPECT_FALSE(proxies_.find("echo")->listener->refusing);  // toxicity 0 never acts
  EXPECT_EQ(patch("/proxies/echo/toxics/refuse_downstream", R"({"toxicity":1})").status, 200);
  EXPECT_TRUE(proxies_.find("echo")->listener->refusing);
  // A proxy disabled and enabled again comes back refusing while the toxic is there.
  EXPECT_EQ(patch("/proxies/echo", R"({"enabled":false})").status, 200);
  EXPECT_EQ(patch("/proxies/echo", R"({"enabled":true})").status, 200);
  EXPECT_TRUE(proxies_.find("echo")->listener->refusing);
  EXPECT_EQ(del("/proxies/echo/toxics/refuse_downstream").status, 204);
  EXPECT_FALSE(proxies_.find("echo")->listener->refusing);

  // Type errors as Go words them, with the struct of each toxic.
  expect_go_error(
      post("/proxies/echo/toxics", R"({"name":"x","type":"packet_loss","attributes":{"loss_rate":"a"}})"),
      400,
      "bad request body: json: cannot unmarshal string into Go struct field "
      "PacketLossToxic.attributes.loss_rate of type float64");
  expect_go_error(
      post("/proxies/echo/toxics", R"({"name":"x","type":"tcp_loss","attributes":{"rto_ms":1.5}})"), 400,
      "bad request body: json: cannot unmarshal number 1.5 into Go struct field "
      "TcpLossToxic.attributes.rto_ms of type int64");
  expect_go_error(
      post("/proxies/echo/toxics", R"({"name":"x","type":"latency","attributes":{"distribution":5}})"), 400,
      "bad request body: json: cannot unmarshal number into Go struct field "
      "LatencyToxic.attributes.distribution of type string");
  expect_go_error(
      post("/proxies/echo/toxics", R"({"name":"x","type":"bandwidth","attributes":{"per_proxy":1}})"), 400,
      "bad request body: json: cannot unmarshal number into Go struct field "
      "BandwidthToxic.attributes.per_proxy of type bool");
  // Values out of range: 400, nothing added or changed.
  const std::vector<std::pair<std::string, std::string>> bad = {
      {R"({"name":"x","type":"packet_loss","attributes":{"loss_rate":1.5}})",
       "loss_rate: not between 0 and 1: 1.5"},
      {R"({"name":"x","type":"packet_loss","attributes":{"correlation":-1}})",
       "correlation: not between 0 and 1: -1"},
      {R"({"name":"x","type":"tcp_loss","attributes":{"burst":0}})", "burst: less than 1: 0"},
      {R"({"name":"x","type":"tcp_loss","attributes":{"loss_rate":0.9,"burst":2}})",
       "loss_rate: at most 0.6666666666666666 with burst 2: 0.9"},
      {R"({"name":"x","type":"tcp_loss","attributes":{"rto_ms":-200}})", "rto_ms: less than 0: -200"},
      {R"({"name":"x","type":"corrupt","attributes":{"rate":1.01}})", "rate: not between 0 and 1: 1.01"},
      {R"({"name":"x","type":"slow_open","attributes":{"delay":-1}})", "delay: less than 0: -1"},
      {R"({"name":"x","type":"latency","attributes":{"distribution":"gauss"}})",
       "distribution: not one of uniform, normal, pareto, paretonormal: gauss"},
      {R"({"name":"x","type":"refuse","client_cidr":"127.0.1.2/32"})",
       "client_cidr: refuse acts on the listener, before any client is known: 127.0.1.2/32"},
  };
  for (const auto& [body, why] : bad)
    expect_go_error(post("/proxies/echo/toxics", body), 400, "bad request body: " + why);
  EXPECT_EQ(get("/proxies/echo/toxics/x").status, 404);
  expect_go_error(patch("/proxies/echo/toxics/pl", R"({"attributes":{"loss_rate":2}})"), 400,
                  "bad request body: loss_rate: not between 0 and 1: 2");
  EXPECT_NE(get("/proxies/echo/toxics/pl").body.find(R"("loss_rate":0.25)"), std::string::npos);
  // /populate and -config: the same, naming the entry.
  r = post(
      "/populate",
      R"([{"name":"pp","listen":"127.0.0.1:0","upstream":"x:1","toxics":[{"type":"tcp_loss","attributes":{"burst":0.5}}]}])");
  EXPECT_EQ(
      r.body,
      R"({"error":"bad request body: burst: less than 1: 0.5 at proxy 1 toxic 1","status":400,"proxies":null})");
  r = post(
      "/populate",
      R"([{"name":"pp","listen":"127.0.0.1:0","upstream":"x:1","toxics":[{"type":"corrupt","attributes":{"rate":0.5}}]}])");
  EXPECT_EQ(r.status, 201) << r.body;
  EXPECT_NE(r.body.find(R"({"attributes":{"rate":0.5},"name":"corrupt_downstream")"), std::string::npos)
      << r.body;
}

// Our toxic-level start_after_ms and duration_ms: echoed only when set, a window counted from the add.
TEST_F(ApiTest, TimeBoundedToxicsStartLateAndRemoveThemselves) {
  make_proxy("echo");
  using namespace std::chrono_literals;
  auto r = post(
      "/proxies/echo/toxics",
      R"({"name":"later","type":"latency","start_after_ms":150,"duration_ms":60000,"attributes":{"latency":5}})");
  EXPECT_EQ(
      r.body,
      R"({"attributes":{"latency":5,"jitter":0},"name":"later","type":"latency","stream":"downstream","toxicity":1,"start_after_ms":150,"duration_ms":60000})");
  r = post("/proxies/echo/toxics", R"({"name":"brief","type":"timeout","duration_ms":100})");
  EXPECT_EQ(
      r.body,
      R"({"attributes":{"timeout":0},"name":"brief","type":"timeout","stream":"downstream","toxicity":1,"duration_ms":100})");
  auto acting = [&] {
    std::vector<std::string> names;
    for (const auto& t : proxies_.find("echo")->listener->snapshot->by_direction[1])
      names.push_back(t.name);
    return names;
  };
  EXPECT_EQ(acting(), std::vector<std::string>{"brief"});  // "later" is listed, not yet acting
  EXPECT_EQ(get("/proxies/echo/toxics/later").status, 200);
  workers_.control().run_for(400ms);
  EXPECT_EQ(acting(), std::vector<std::string>{"later"});
  EXPECT_EQ(get("/proxies/echo/toxics/brief").status, 404);  // removed itself
  // An update moves the window, still counted from the add: an end already passed removes it now.
  r = patch("/proxies/echo/toxics/later", R"({"duration_ms":1})");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find(R"("start_after_ms":150,"duration_ms":1})"), std::string::npos) << r.body;
  EXPECT_EQ(get("/proxies/echo/toxics/later").status, 404);
  EXPECT_TRUE(acting().empty());
  // 0 is the same as absent; negative and non-integers are refused.
  EXPECT_EQ(
      post("/proxies/echo/toxics", R"({"name":"z","type":"noop","start_after_ms":0,"duration_ms":0})").body,
      R"({"attributes":{},"name":"z","type":"noop","stream":"downstream","toxicity":1})");
  expect_go_error(post("/proxies/echo/toxics", R"({"name":"n","type":"noop","start_after_ms":-1})"), 400,
                  "bad request body: start_after_ms: less than 0: -1");
  expect_go_error(post("/proxies/echo/toxics", R"({"name":"n","type":"noop","duration_ms":"3s"})"), 400,
                  "bad request body: json: cannot unmarshal string into Go struct field "
                  "ToxicWrapper.duration_ms of type int64");
  expect_go_error(patch("/proxies/echo/toxics/z", R"({"duration_ms":-5})"), 400,
                  "bad request body: duration_ms: less than 0: -5");
  // Reset removes time-bounded toxics like any other; their timers then do nothing.
  post("/proxies/echo/toxics", R"({"name":"t","type":"noop","start_after_ms":50,"duration_ms":50})");
  EXPECT_EQ(post("/reset", "").status, 204);
  workers_.control().run_for(200ms);
  EXPECT_TRUE(proxies_.find("echo")->toxics.empty());
}

TEST_F(ApiTest, RoutingErrorsLikeGorillaMux) {
  make_proxy("echo");
  for (const char* path : {"/nosuchpath", "/proxies/", "/version/", "/proxies/a%20b%2Fc", "/metrics"}) {
    auto r = get(path);
    EXPECT_EQ(r.status, 404) << path;
    EXPECT_EQ(r.body, "404 page not found\n");
    EXPECT_EQ(r.names(), (std::vector<std::string>{"Content-Type", "X-Content-Type-Options"}));
  }
  for (auto [method, path] :
       std::vector<std::pair<bhttp::verb, const char*>>{{bhttp::verb::put, "/proxies"},
                                                        {bhttp::verb::delete_, "/proxies"},
                                                        {bhttp::verb::get, "/reset"},
                                                        {bhttp::verb::put, "/proxies/echo"},
                                                        {bhttp::verb::options, "/proxies"},
                                                        {bhttp::verb::head, "/version"}}) {
    auto r = call(method, path);
    EXPECT_EQ(r.status, 405) << path;
    EXPECT_EQ(r.body, "");
    EXPECT_TRUE(r.headers.empty());
  }
  // Percent-decoded names work when they contain no slash.
  post("/proxies", R"({"name":"a b","listen":"127.0.0.1:0","upstream":"x:1"})");
  EXPECT_EQ(get("/proxies/a%20b").status, 200);
}

TEST_F(ApiTest, BrowsersAreRefusedOnMatchedRoutesOnly) {
  for (const char* path : {"/version", "/proxies", "/proxies/nosuch"}) {
    auto r = call(bhttp::verb::get, path, "", "Mozilla/5.0 (X11; Linux x86_64)");
    EXPECT_EQ(r.status, 403);
    EXPECT_EQ(r.body, "User agent not allowed\n");
    EXPECT_EQ(r.names(),
              (std::vector<std::string>{"Content-Type", "X-Content-Type-Options", "X-Toxiproxy-Request-Id"}));
  }
  EXPECT_EQ(call(bhttp::verb::get, "/nosuchpath", "", "Mozilla/5.0").status, 404);
}

TEST_F(ApiTest, ServerErrorsUseTheSameFormat) {
  auto res = Api::server_error(bhttp::status::payload_too_large, "request body too large", 11);
  EXPECT_EQ(res.result_int(), 413);
  EXPECT_EQ(res.body(), "{\"error\":\"request body too large\",\"status\":413}\n");
  EXPECT_EQ(res[bhttp::field::content_type], "text/plain; charset=utf-8");
}

TEST_F(ApiTest, ManyProxiesAndHostileInput) {
  for (int i = 0; i < 2000; ++i) {
    auto r = post("/proxies", R"({"name":"p)" + std::to_string(i) +
                                  R"(","listen":"127.0.0.1:0","upstream":"x:1","enabled":false})");
    ASSERT_EQ(r.status, 201);
  }
  EXPECT_EQ(get("/proxies").status, 200);
  const std::string deep(5000, '[');
  EXPECT_EQ(post("/proxies", deep).status, 400);
  for (const char* body :
       {"{", "{\"", "{\"a\"", "{\"a\":", "[1,", "\"\\u12", "-", "1.", "1e", "tru", "{\"name\":\"\xff\xfe\"}",
        "\x01", "{\"name\":\"a\\x\"}", "nul", "{,}", "{\"a\" 1}", "[1 2]"}) {
    auto r = post("/proxies", body);
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_EQ(r.body.back(), '\n');
  }
}

}  // namespace
}  // namespace faultproxy
