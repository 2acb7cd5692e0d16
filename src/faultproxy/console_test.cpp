// The web console through Api::handle: /ui's files and headers, /toxic-types against the registry
// and the API's own validation, and the guard against cross-site requests, which the console
// passes only as a same-origin page.
#include "faultproxy/console.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cmath>

#include "faultproxy/api.h"
#include "faultproxy/console_assets.h"
#include "testing/servers.h"

namespace faultproxy {
namespace {

namespace bhttp = common::http::bhttp;
namespace json = boost::json;

constexpr const char* kBrowser = "Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/120.0";
constexpr const char* kHost = "127.0.0.1:8474";
constexpr const char* kSelf = "http://127.0.0.1:8474";

struct Reply {
  int status;
  std::string body;
  bhttp::fields headers;
  std::string header(std::string_view name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : std::string(it->value());
  }
};

// What a request carries besides method, target and body; the defaults are the console's own.
struct Marks {
  std::string agent = kBrowser;
  std::string host = kHost;
  std::optional<std::string> origin = kSelf;
  std::optional<std::string> fetch_site = "same-origin";
  std::optional<std::string> console = "1";
  std::string content_type = "application/json";
};

class ConsoleTest : public ::testing::Test {
 protected:
  ConsoleTest()
      : workers_(1), proxies_(workers_, {.seed = 1}), api_(proxies_, registry_, {.api_host = "fp.test"}) {}

  Reply call(bhttp::verb method, const std::string& target, const std::string& body, const Marks& m) {
    common::http::Request req{method, target, 11};
    req.set(bhttp::field::user_agent, m.agent);
    req.set(bhttp::field::host, m.host);
    if (m.origin) req.set(bhttp::field::origin, *m.origin);
    if (m.fetch_site) req.set("Sec-Fetch-Site", *m.fetch_site);
    if (m.console) req.set(console::kConsoleHeader, *m.console);
    if (!body.empty()) req.set(bhttp::field::content_type, m.content_type);
    req.body() = body;
    req.prepare_payload();
    auto res = api_.handle(req, {});
    Reply r{static_cast<int>(res.result_int()), res.body(), {}};
    for (const auto& f : res)
      r.headers.set(f.name_string(), f.value());
    return r;
  }
  Reply get(const std::string& target, Marks m = {}) {
    m.origin.reset();  // a browser's same-origin GET carries no Origin
    return call(bhttp::verb::get, target, "", m);
  }
  // As curl sends it: no browser marks at all.
  Reply plain(bhttp::verb method, const std::string& target, const std::string& body = "") {
    return call(method, target, body,
                {.agent = "curl/7.88.1", .origin = {}, .fetch_site = {}, .console = {}, .content_type = ""});
  }

  std::string make_proxy(const std::string& name) {
    const std::string listen = "127.0.0.1:" + std::to_string(testing_support::free_port());
    auto r = plain(bhttp::verb::post, "/proxies",
                   R"({"name":")" + name + R"(","listen":")" + listen + R"(","upstream":"127.0.0.1:1"})");
    EXPECT_EQ(r.status, 201) << r.body;
    return listen;
  }
  std::string proxies() { return plain(bhttp::verb::get, "/proxies").body; }

  Workers workers_;
  common::metrics::Registry registry_;
  ProxyCollection proxies_;
  Api api_;
};

TEST_F(ConsoleTest, ServesTheConsoleWithItsContentTypeCachingAndPolicy) {
  for (const char* path : {"/ui", "/ui/", "/ui/index.html"}) {
    auto r = get(path);
    ASSERT_EQ(r.status, 200) << path;
    EXPECT_EQ(r.header("Content-Type"), "text/html; charset=utf-8");
    EXPECT_NE(r.body.find(R"(<script type="module" src="/ui/console.js">)"), std::string::npos);
  }
  auto r = get("/ui");
  EXPECT_EQ(
      r.header("Content-Security-Policy"),
      "default-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'");
  EXPECT_EQ(r.header("Cache-Control"), "no-cache");
  EXPECT_EQ(r.header("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(r.header("X-Frame-Options"), "DENY");
  EXPECT_EQ(r.header("ETag").size(), 34u);  // a quoted 128-bit prefix of the SHA-256
  EXPECT_EQ(get("/ui/console.js").header("Content-Type"), "text/javascript; charset=utf-8");
  EXPECT_EQ(get("/ui/console.css").header("Content-Type"), "text/css; charset=utf-8");
  // curl may fetch it too, and without a console header.
  EXPECT_EQ(plain(bhttp::verb::get, "/ui").status, 200);
}

TEST_F(ConsoleTest, EveryEmbeddedFileIsServedAsCompiledAndRevalidatedByItsEtag) {
  ASSERT_GE(console_assets().size(), 3u);
  for (const ConsoleAsset& a : console_assets()) {
    auto r = get("/ui/" + std::string(a.path));
    ASSERT_EQ(r.status, 200) << a.path;
    EXPECT_EQ(r.body, a.bytes);
    const std::string etag = r.header("ETag");
    EXPECT_EQ(etag, "\"" + std::string(a.sha256.substr(0, 32)) + "\"");
    common::http::Request req{bhttp::verb::get, "/ui/" + std::string(a.path), 11};
    req.set(bhttp::field::host, kHost);
    req.set(bhttp::field::if_none_match, "\"other\", " + etag);
    auto res = api_.handle(req, {});
    EXPECT_EQ(res.result_int(), 304);
    EXPECT_TRUE(res.body().empty());
    EXPECT_EQ(res[bhttp::field::etag], etag);
  }
}

TEST_F(ConsoleTest, UnknownFilesAndOtherMethodsAreRefused) {
  EXPECT_EQ(get("/ui/nosuch.js").status, 404);
  EXPECT_EQ(get("/ui/../version").status, 404);
  const Reply post = call(bhttp::verb::post, "/ui", "{}", {});
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.header("Allow"), "GET, HEAD");
  EXPECT_EQ(call(bhttp::verb::delete_, "/ui/console.js", "", {}).status, 405);
}

// HEAD is answered as GET is (the HTTP server then sends the header alone): link checkers and
// monitoring probe the console with it.
TEST_F(ConsoleTest, HeadIsAnsweredAsGet) {
  const Reply got = get("/ui");
  const Reply head = call(bhttp::verb::head, "/ui", "", {});
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.header("ETag"), got.header("ETag"));
  EXPECT_EQ(head.header("Content-Type"), got.header("Content-Type"));
  EXPECT_EQ(head.body.size(), got.body.size());  // what Content-Length will say
  EXPECT_EQ(call(bhttp::verb::head, "/ui/nosuch.js", "", {}).status, 404);
}

TEST_F(ConsoleTest, TheConsoleIsNotServedUnderAnUntrustedHostName) {
  // DNS rebinding: evil.example resolving to 127.0.0.1 would make its page same-origin with ours.
  EXPECT_EQ(get("/ui", {.host = "evil.example:8474"}).status, 403);
  EXPECT_EQ(get("/ui", {.host = "localhost:8474"}).status, 200);
  EXPECT_EQ(get("/ui", {.host = "[::1]:8474"}).status, 200);
  EXPECT_EQ(get("/ui", {.host = "FP.test:8474"}).status, 200);  // the -host name
  EXPECT_EQ(get("/ui", {.host = ""}).status, 403);
}

TEST_F(ConsoleTest, TheConsolesSameOriginRequestsAreAccepted) {
  const std::string listen = "127.0.0.1:" + std::to_string(testing_support::free_port());
  auto r = call(bhttp::verb::post, "/proxies",
                R"({"name":"db","listen":")" + listen + R"(","upstream":"127.0.0.1:1"})", {});
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(get("/proxies").status, 200);
  EXPECT_EQ(
      call(bhttp::verb::post, "/proxies/db/toxics", R"({"type":"latency","attributes":{"latency":5}})", {})
          .status,
      200);
  EXPECT_EQ(call(bhttp::verb::patch, "/proxies/db", R"({"enabled":false})", {}).status, 200);
  EXPECT_EQ(call(bhttp::verb::delete_, "/proxies/db/toxics/latency_downstream", "", {}).status, 204);
  EXPECT_EQ(call(bhttp::verb::post, "/reset", "", {}).status, 204);
  // Browsers that send no Sec-Fetch-Site (older ones) are judged by Origin and Host alone.
  EXPECT_EQ(call(bhttp::verb::post, "/reset", "", {.fetch_site = {}}).status, 204);
  EXPECT_EQ(get("/version", {.host = "localhost:8474"}).status, 200);
}

TEST_F(ConsoleTest, CrossOriginPostsAreRefusedAndChangeNothing) {
  const std::string body = R"({"name":"x","listen":"127.0.0.1:0","upstream":"127.0.0.1:1"})";
  const std::string before = proxies();
  struct Case {
    const char* what;
    Marks marks;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"another origin",
       {.origin = "http://evil.example"},
       "Origin http://evil.example is not this server's"},
      {"an opaque origin", {.origin = "null"}, "Origin null is not this server's"},
      {"a cross-site fetch", {.fetch_site = "cross-site"}, "Sec-Fetch-Site is cross-site"},
      {"a same-site fetch", {.fetch_site = "same-site"}, "Sec-Fetch-Site is same-site"},
      {"no Origin on a change", {.origin = {}}, "a change from a browser must carry its Origin"},
      {"a rebound host name",
       {.host = "evil.example:8474", .origin = "http://evil.example:8474"},
       "Host evil.example:8474 is not an IP address"},
      {"a form's content type", {.content_type = "text/plain"}, "Content-Type must be application/json"},
      {"a form's content type",
       {.content_type = "application/x-www-form-urlencoded"},
       "Content-Type must be"},
  };
  for (const Case& c : cases) {
    auto r = call(bhttp::verb::post, "/proxies", body, c.marks);
    EXPECT_EQ(r.status, 403) << c.what;
    EXPECT_NE(r.body.find(std::string("cross-site request refused: ") + c.message), std::string::npos)
        << c.what << ": " << r.body;
    EXPECT_EQ(r.header("Content-Type"), "text/plain; charset=utf-8");
  }
  // Without the console's header a browser gets Toxiproxy's answer, whatever else it sends.
  auto r = call(bhttp::verb::post, "/proxies", body, {.console = {}});
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.body, "User agent not allowed\n");
  EXPECT_EQ(call(bhttp::verb::post, "/proxies", body, {.console = "0"}).body, "User agent not allowed\n");
  EXPECT_EQ(proxies(), before);
}

TEST_F(ConsoleTest, ClientsWithABrowsersMarksAreCheckedWhateverTheirAgent) {
  make_proxy("db");
  const std::string before = proxies();
  Marks m{.agent = "SomeBrowser/1.0", .origin = "http://evil.example", .console = {}};
  EXPECT_EQ(call(bhttp::verb::delete_, "/proxies/db", "", m).status, 403);
  m = {.agent = "SomeBrowser/1.0", .origin = {}, .fetch_site = "cross-site", .console = {}};
  EXPECT_EQ(call(bhttp::verb::post, "/reset", "", m).status, 403);
  EXPECT_EQ(proxies(), before);
  // Without them (curl, Toxiproxy's clients, the CLI): as before, any Host, any content type.
  EXPECT_EQ(call(bhttp::verb::patch, "/proxies/db", R"({"enabled":false})",
                 {.agent = "curl/7.88.1",
                  .host = "anything:1",
                  .origin = {},
                  .fetch_site = {},
                  .console = {},
                  .content_type = "text/plain"})
                .status,
            200);
}

TEST_F(ConsoleTest, APreflightIsNeverGranted) {
  common::http::Request req{bhttp::verb::options, "/proxies", 11};
  req.set(bhttp::field::host, kHost);
  req.set(bhttp::field::origin, "http://evil.example");
  req.set(bhttp::field::access_control_request_method, "POST");
  req.set(bhttp::field::access_control_request_headers, "x-faultproxy-console");
  auto res = api_.handle(req, {});
  EXPECT_EQ(res.result_int(), 405);
  EXPECT_EQ(res.find(bhttp::field::access_control_allow_origin), res.end());
  EXPECT_EQ(res.find(bhttp::field::access_control_allow_headers), res.end());
}

TEST_F(ConsoleTest, TrustedHosts) {
  for (const char* h : {"127.0.0.1", "127.0.0.1:1", "[::1]:8474", "10.1.2.3:80", "LOCALHOST:8474", "fp.test"})
    EXPECT_TRUE(console::trusted_host(h, "fp.test")) << h;
  for (const char* h :
       {"", ":8474", "evil.example", "localhost.evil.example:8474", "[::1", "[::1]evil", "fp.test.evil:1"})
    EXPECT_FALSE(console::trusted_host(h, "fp.test")) << h;
  EXPECT_FALSE(console::trusted_host("anything", ""));
}

// ------------------------------------------------------------------------------------ /toxic-types

const json::object* find_named(const json::array& items, std::string_view name) {
  for (const auto& v : items)
    if (v.as_object().at("name").as_string() == name) return &v.as_object();
  return nullptr;
}

TEST_F(ConsoleTest, ToxicTypesDescribeTheRegistry) {
  auto r = get("/toxic-types");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Content-Type"), "application/json");
  const json::object doc = json::parse(r.body).as_object();
  const json::array& types = doc.at("types").as_array();
  ASSERT_EQ(types.size(), toxic_types().size());
  for (const ToxicTypeInfo& info : toxic_types()) {
    const json::object* t = find_named(types, info.name);
    ASSERT_NE(t, nullptr) << info.name;
    const json::array& attrs = t->at("attributes").as_array();
    ASSERT_EQ(attrs.size(), info.attributes.size()) << info.name;
    const Attributes defaults = default_attributes(info.type);
    for (std::size_t i = 0; i < attrs.size(); ++i) {
      const json::object& a = attrs[i].as_object();
      EXPECT_EQ(a.at("name").as_string(), info.attributes[i].name);
      const json::value& d = a.at("default");
      switch (info.attributes[i].kind) {
        case AttributeKind::integer:
          EXPECT_EQ(a.at("kind").as_string(), "integer");
          EXPECT_EQ(d.as_int64(), defaults.integer(i));
          break;
        case AttributeKind::number:
          EXPECT_EQ(a.at("kind").as_string(), "number");
          EXPECT_DOUBLE_EQ(d.to_number<double>(), defaults.number(i));
          break;
        case AttributeKind::text:
          EXPECT_EQ(a.at("kind").as_string(), "string");
          EXPECT_EQ(d.as_string(), defaults.text(i));
          break;
        case AttributeKind::flag:
          EXPECT_EQ(a.at("kind").as_string(), "boolean");
          EXPECT_EQ(d.as_bool(), defaults.flag(i));
          break;
      }
    }
  }
  EXPECT_EQ(find_named(types, "slow_open")->at("scope").as_string(), "connection");
  EXPECT_EQ(find_named(types, "refuse")->at("scope").as_string(), "listener");
  const json::array& fields = doc.at("fields").as_array();
  for (const char* f : {"name", "stream", "toxicity", "client_cidr", "start_after_ms", "duration_ms"}) {
    const json::object* field = find_named(fields, f);
    ASSERT_NE(field, nullptr) << f;
    EXPECT_TRUE(field->contains("help")) << f;
  }
  EXPECT_EQ(find_named(fields, "stream")->at("default").as_string(), "downstream");
  EXPECT_EQ(find_named(fields, "toxicity")->at("default").to_number<double>(), 1.0);
  EXPECT_EQ(find_named(fields, "start_after_ms")->at("min").to_number<double>(), 0.0);
  // Browsers other than the console are refused here as on every API route.
  EXPECT_EQ(get("/toxic-types", {.console = {}}).status, 403);
  EXPECT_EQ(plain(bhttp::verb::post, "/toxic-types").status, 405);
}

// The hints' ranges and choices are what the API enforces: each bound is accepted, and a step
// beyond it refused, with everything else at its default. The fields every toxic has (type "")
// are tried on a noop toxic.
TEST_F(ConsoleTest, AttributeHintsAgreeWithTheApisValidation) {
  make_proxy("p");
  int n = 0;
  auto status_with = [&](std::string_view type, std::string_view field, const std::string& value) {
    const std::string name = "t" + std::to_string(++n);
    const std::string set = "\"" + std::string(field) + "\":" + value;
    const std::string body = type.empty() ? R"({"name":")" + name + R"(","type":"noop",)" + set + "}"
                                          : R"({"name":")" + name + R"(","type":")" + std::string(type) +
                                                R"(","attributes":{)" + set + "}}";
    auto r = plain(bhttp::verb::post, "/proxies/p/toxics", body);
    if (r.status == 200) plain(bhttp::verb::delete_, "/proxies/p/toxics/" + name);
    return r.status;
  };
  for (const console::AttributeHint& h : console::attribute_hints()) {
    const std::string what = std::string(h.type) + "." + std::string(h.attribute);
    bool integer = true;
    if (!h.type.empty()) {
      const ToxicTypeInfo* info = find_toxic_type(h.type);
      ASSERT_NE(info, nullptr) << what;
      const auto spec = std::find_if(info->attributes.begin(), info->attributes.end(),
                                     [&](const AttributeSpec& s) { return s.name == h.attribute; });
      ASSERT_NE(spec, info->attributes.end()) << what;
      integer = spec->kind == AttributeKind::integer;
    } else if (h.min || h.max) {
      // Of the common fields only these integers have bounds.
      ASSERT_TRUE(h.attribute == "start_after_ms" || h.attribute == "duration_ms") << what;
    }
    const double step = integer ? 1 : 0.001;
    auto text = [&](double v) {
      return integer ? std::to_string(static_cast<long long>(v)) : json::serialize(json::value(v));
    };
    if (h.min) {
      EXPECT_EQ(status_with(h.type, h.attribute, text(*h.min)), 200) << what;
      EXPECT_EQ(status_with(h.type, h.attribute, text(*h.min - step)), 400) << what;
    }
    if (h.max) {
      EXPECT_EQ(status_with(h.type, h.attribute, text(*h.max)), 200) << what;
      EXPECT_EQ(status_with(h.type, h.attribute, text(*h.max + step)), 400) << what;
    }
    for (std::string_view option : h.options)
      EXPECT_EQ(status_with(h.type, h.attribute, json::serialize(json::string(option))), 200)
          << what << option;
    if (!h.options.empty()) {
      EXPECT_EQ(status_with(h.type, h.attribute, "\"nosuch\""), 400) << what;
    }
  }
  EXPECT_EQ(plain(bhttp::verb::get, "/proxies/p/toxics").body, "[]");
}

}  // namespace
}  // namespace faultproxy
