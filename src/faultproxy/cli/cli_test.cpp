#include "faultproxy/cli/cli.h"

#include <gtest/gtest.h>

#include <sstream>

#include "faultproxy/cli/fake_toxiproxy.h"
#include "faultproxy/cli/transcript_cases.h"
#include "testing/servers.h"

namespace faultproxy::cli {
namespace {

// Stands in for any server the test must not contact (localhost:8474 may be someone's stack).
class Unreachable final : public Transport {
 public:
  HttpOutcome send(std::string_view, std::string_view, const std::optional<std::string>&) override {
    return {std::nullopt, "not contacted by this test"};
  }
};

struct Outcome {
  int code;
  std::string out;
  std::string err;
};

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_.add_proxy("a b/c", "127.0.0.1:18490", "127.0.0.1:18100");
    fake_.add_proxy("echo", "127.0.0.1:18480", "127.0.0.1:18100");
  }

  // Runs the CLI; requests to http://127.0.0.1:18474 reach the fake, anything else a real socket.
  Outcome run(const std::vector<std::string>& args, bool tty = false, CliEnvironment env = {},
              std::string_view program = "toxiproxy-cli") {
    std::ostringstream out, err;
    CliIo io{out, err, tty};
    const int code =
        run_cli(program, args, env, io, [this](const std::string& endpoint) -> std::unique_ptr<Transport> {
          endpoints_.push_back(normalize_endpoint(endpoint));
          if (endpoints_.back() == "http://127.0.0.1:18474") return fake_.transport();
          if (endpoints_.back().rfind("http://127.0.0.1:", 0) == 0)
            return std::make_unique<HttpClient>(endpoint, HttpClientSettings{});
          return std::make_unique<Unreachable>();
        });
    return {code, out.str(), err.str()};
  }

  std::string last_body() const { return fake_.requests().back().body; }

  testing::FakeToxiproxy fake_;
  std::vector<std::string> endpoints_;
};

// Every toxiproxy-cli invocation of the API transcript (sections 24 and 25), in order, against an
// in-memory Toxiproxy: same stdout, stderr and exit code, byte for byte.
TEST_F(CliTest, ReplaysTheToxiproxyCliTranscript) {
  const testing_support::RefusingPort dead;
  const std::map<std::string, std::string> vars = {{"H", "127.0.0.1:18474"},
                                                   {"ABC", "127.0.0.1:18490"},
                                                   {"ECHO", "127.0.0.1:18480"},
                                                   {"CLI", "127.0.0.1:18491"},
                                                   {"CLI2", "127.0.0.1:18492"},
                                                   {"UP", "127.0.0.1:18100"},
                                                   {"DEAD", "127.0.0.1:" + std::to_string(dead.port())},
                                                   {"E", "\x1b"}};
  int step = 0;
  for (const auto& c : testdata::transcript_cases()) {
    std::vector<std::string> args;
    for (const auto& a : c.args)
      args.push_back(testdata::expand(a, vars));
    CliEnvironment env;
    if (c.env_url) env.toxiproxy_url = "http://" + vars.at("H");
    const Outcome r = run(args, c.tty, env);
    SCOPED_TRACE("step " + std::to_string(step++) + ": " + ::testing::PrintToString(args));
    EXPECT_EQ(r.out, testdata::expand(c.out, vars));
    EXPECT_EQ(r.err, testdata::expand(c.err, vars));
    EXPECT_EQ(r.code, c.code);
  }
}

TEST_F(CliTest, SendsTheBodiesToxiproxyCliSends) {
  ASSERT_EQ(run({"-h", "127.0.0.1:18474", "create", "-l", "127.0.0.1:1", "-u", "127.0.0.1:2", "p"}).code, 0);
  EXPECT_EQ(last_body(),
            R"({"name":"p","listen":"127.0.0.1:1","upstream":"127.0.0.1:2","enabled":true,"toxics":null})");

  ASSERT_EQ(run({"-h", "127.0.0.1:18474", "t", "a", "-t", "latency", "-a", "latency=100,jitter=5", "p"}).code,
            0);
  EXPECT_EQ(
      last_body(),
      R"({"name":"","type":"latency","stream":"downstream","toxicity":1,"attributes":{"jitter":5,"latency":100}})");

  ASSERT_EQ(run({"-h", "127.0.0.1:18474", "t", "u", "-n", "latency_downstream", "--tox=0.5", "p"}).code, 0);
  EXPECT_EQ(last_body(), R"({"attributes":{},"toxicity":0.5})");

  // Like toxiproxy-cli, an update without --toxicity sets it back to 1.
  ASSERT_EQ(run({"-h", "127.0.0.1:18474", "t", "u", "-n", "latency_downstream", "-a", "jitter=7", "p"}).code,
            0);
  EXPECT_EQ(last_body(), R"({"attributes":{"jitter":7},"toxicity":1})");

  ASSERT_EQ(run({"-h", "127.0.0.1:18474", "tog", "p"}).code, 0);
  EXPECT_EQ(fake_.requests().back().method, "POST");
  EXPECT_EQ(fake_.requests().back().path, "/proxies/p");
  EXPECT_EQ(last_body(),
            R"({"name":"p","listen":"127.0.0.1:1","upstream":"127.0.0.1:2","enabled":false,"toxics":[)"
            R"({"name":"latency_downstream","type":"latency","stream":"downstream","toxicity":1,)"
            R"("attributes":{"jitter":7,"latency":100}}]})");
}

// faultproxy's client_cidr: `-a client_cidr=...` is sent beside the attributes, not among them.
TEST_F(CliTest, ClientCidrGoesBesideTheAttributes) {
  ASSERT_EQ(run({"-h", "127.0.0.1:18474", "create", "-l", "127.0.0.1:1", "-u", "127.0.0.1:2", "p"}).code, 0);
  ASSERT_EQ(run({"-h", "127.0.0.1:18474", "toxic", "add", "-t", "timeout", "-a", "timeout=0", "-a",
                 "client_cidr=127.0.1.2/32", "p"})
                .code,
            0);
  EXPECT_EQ(last_body(), R"({"name":"","type":"timeout","stream":"downstream","toxicity":1,)"
                         R"("attributes":{"timeout":0},"client_cidr":"127.0.1.2/32"})");
  ASSERT_EQ(run({"-h", "127.0.0.1:18474", "t", "u", "-n", "timeout_downstream", "-a",
                 "client_cidr=127.0.1.0/24", "p"})
                .code,
            0);
  EXPECT_EQ(last_body(), R"({"attributes":{},"toxicity":1,"client_cidr":"127.0.1.0/24"})");
  ASSERT_EQ(
      run({"-h", "127.0.0.1:18474", "t", "u", "-n", "timeout_downstream", "-a", "client_cidr=", "p"}).code,
      0);
  EXPECT_EQ(last_body(), R"({"attributes":{},"toxicity":1,"client_cidr":""})");
}

// faultproxy's time window: `-a start_after_ms=... -a duration_ms=...`, beside the attributes too;
// float and string attributes of the new toxics go as toxiproxy-cli sends any attribute.
TEST_F(CliTest, TimeWindowGoesBesideTheAttributes) {
  ASSERT_EQ(run({"-h", "127.0.0.1:18474", "create", "-l", "127.0.0.1:1", "-u", "127.0.0.1:2", "p"}).code, 0);
  ASSERT_EQ(run({"-h", "127.0.0.1:18474", "toxic", "add", "-t", "latency", "-a", "latency=5", "-a",
                 "duration_ms=3000", "-a", "start_after_ms=500", "-a", "distribution=normal", "p"})
                .code,
            0);
  EXPECT_EQ(last_body(),
            R"({"name":"","type":"latency","stream":"downstream","toxicity":1,)"
            R"("attributes":{"distribution":"normal","latency":5},"start_after_ms":500,"duration_ms":3000})");
  ASSERT_EQ(
      run({"-h", "127.0.0.1:18474", "t", "u", "-n", "latency_downstream", "-a", "duration_ms=0", "p"}).code,
      0);
  EXPECT_EQ(last_body(), R"({"attributes":{},"toxicity":1,"duration_ms":0})");
}

TEST_F(CliTest, ToxicityAndStreamChecks) {
  for (const char* tox : {"-0.1", "1.5", "abc", "inf", "1e39"}) {
    const Outcome r =
        run({"-h", "127.0.0.1:18474", "toxic", "add", "-t", "latency", "--toxicity", tox, "echo"});
    EXPECT_EQ(r.code, 1) << tox;
    EXPECT_EQ(r.err, "toxicity should be a float between 0 and 1.\n\n") << tox;
  }
  Outcome r = run({"-h", "127.0.0.1:18474", "toxic", "add", "-t", "latency", "--tox", "nan", "echo"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err,
            "Failed to add toxic: failed to add toxic to proxy echo: json: unsupported value: NaN\n\n");
  r = run({"-h", "127.0.0.1:18474", "toxic", "add", "-t", "latency", "-u", "-d", "echo"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "Only one should be specified: upstream or downstream.\n\n");
  r = run({"-h", "127.0.0.1:18474", "toxic", "add", "-t", "latency", "--tox", "0", "-n", "zero", "echo"});
  EXPECT_EQ(r.code, 0) << r.err;
}

TEST_F(CliTest, UsageErrorsGoToStderrWithHelpOnStdout) {
  Outcome r = run({"-h", "127.0.0.1:18474", "list", "-x"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "Incorrect Usage: flag provided but not defined: -x\n\n");
  EXPECT_EQ(r.out.rfind("NAME:\n   toxiproxy-cli list - list all proxies\n", 0), 0u);

  r = run({"--nope", "list"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "Incorrect Usage. flag provided but not defined: -nope\n\n");
  EXPECT_EQ(r.out.rfind("NAME:\n   toxiproxy-cli - Simulate network and system conditions\n", 0), 0u);

  r = run({"-h"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "Incorrect Usage. flag needs an argument: -h\n\n");

  r = run({"toxic", "add", "-t"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "Incorrect Usage: flag needs an argument: -t\n\n");
  EXPECT_EQ(r.out.rfind("NAME:\n   toxiproxy-cli toxic add - add a new toxic\n", 0), 0u);
}

TEST_F(CliTest, HelpAndUnknownCommands) {
  const Outcome app = run({});
  EXPECT_EQ(app.code, 0);
  EXPECT_EQ(app.out.rfind("NAME:\n   toxiproxy-cli - Simulate", 0), 0u);
  EXPECT_EQ(run({"h"}).out, app.out);
  EXPECT_EQ(run({"--help", "list"}).out, app.out);
  EXPECT_EQ(run({"help", "ls"}).out, run({"list", "--help"}).out);
  EXPECT_EQ(run({"list", "-h"}).out, run({"list", "--help"}).out);
  EXPECT_EQ(run({"toxic", "help", "add"}).out, run({"toxic", "add", "--help"}).out);
  EXPECT_EQ(run({"t", "h"}).out, run({"toxic"}).out);
  EXPECT_EQ(run({"help", "toxic"}).out, run({"toxic", "--help"}).out);
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"nope"}, {"help", "nope"}, {"toxic", "nope"}, {"toxic", "help", "nope"}}) {
    const Outcome r = run(args);
    EXPECT_EQ(r.code, 3);
    EXPECT_EQ(r.err, "No help topic for 'nope'\n");
    EXPECT_EQ(r.out, "");
  }
  EXPECT_TRUE(endpoints_.empty());  // nothing above talked to a server
}

TEST_F(CliTest, ProgramNameAppearsInHelpVersionAndHints) {
  EXPECT_EQ(run({"-v"}, false, {}, "faultproxy-cli").out, "faultproxy-cli version 2.12.0\n");
  const Outcome r = run({"-h", "127.0.0.1:18474", "ls"}, true, {}, "faultproxy-cli");
  EXPECT_NE(r.out.find("Hint: inspect toxics with `faultproxy-cli inspect <proxyName>`"), std::string::npos);
}

TEST_F(CliTest, HostFromFlagOrEnvironmentOrDefault) {
  CliEnvironment env;
  env.toxiproxy_url = "127.0.0.1:18474";
  EXPECT_EQ(run({"list"}, false, env).code, 0);
  EXPECT_EQ(endpoints_.back(), "http://127.0.0.1:18474");
  env.toxiproxy_url = "http://elsewhere:1";
  EXPECT_EQ(run({"--host=http://127.0.0.1:18474/", "list"}, false, env).code, 0);  // the flag wins
  EXPECT_EQ(endpoints_.back(), "http://127.0.0.1:18474");
  env.toxiproxy_url = "";
  run({"--host", "127.0.0.1:1", "ls"}, false, env);
  EXPECT_EQ(endpoints_.back(), "http://127.0.0.1:1");
  const Outcome r = run({"ls"}, false, {});
  EXPECT_EQ(endpoints_.back(), "http://localhost:8474");
  (void)r;
}

TEST_F(CliTest, NamesAreEscapedInPaths) {
  // The whole name is one path segment; like Toxiproxy (gorilla/mux decodes before routing), the fake
  // cannot route a name holding '/', and the CLI says so readably.
  const Outcome r = run({"-h", "127.0.0.1:18474", "inspect", "a b/c"});
  EXPECT_EQ(fake_.requests().back().path, "/proxies/a%20b%2Fc");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "Failed to retrieve proxy a b/c: HTTP 404: 404 page not found\n\n");
  ASSERT_EQ(run({"-h", "127.0.0.1:18474", "create", "-l", "l:1", "-u", "u:1", "x?y#z"}).code, 0);
  const Outcome found = run({"-h", "127.0.0.1:18474", "toggle", "x?y#z"});
  EXPECT_EQ(found.out, "Proxy x?y#z is now disabled\n");
  EXPECT_EQ(fake_.requests().back().path, "/proxies/x%3Fy%23z");
}

TEST_F(CliTest, NonJsonErrorsAreReportedReadably) {
  const Outcome r = run({"-h", "127.0.0.1:18474", "toxic", "update", "-a", "latency=1", "echo"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(
      r.err,
      "Failed to update toxic: failed to update toxic '' of proxy 'echo': HTTP 404: 404 page not found\n\n");
}

TEST_F(CliTest, DeleteAndToggleReportMissingProxies) {
  EXPECT_EQ(run({"-h", "127.0.0.1:18474", "d", "echo"}).out, "Deleted proxy echo\n");
  const Outcome r = run({"-h", "127.0.0.1:18474", "delete", "echo"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "Failed to retrieve proxy echo: HTTP 404: proxy not found\n\n");
}

}  // namespace
}  // namespace faultproxy::cli
