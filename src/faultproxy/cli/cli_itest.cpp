// End to end: the faultproxy-cli binary, run as a child process (piped, and under a pseudo-terminal
// for the TTY output), against a real faultproxy server started on a free port. Replays every
// toxiproxy-cli invocation of the API transcript (sections 24 and 25) and compares stdout, stderr
// and exit codes byte for byte; then checks what the server holds, the program-name variants, and
// the one-line errors for an unreachable or a hung server.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "faultproxy/cli/http_client.h"
#include "faultproxy/cli/transcript_cases.h"
#include "testing/servers.h"

namespace faultproxy::cli {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct Outcome {
  int code = -1;
  std::string out;
  std::string err;
};

// Reads every fd until all are closed (or fail), bounded by `deadline`.
void drain(std::vector<std::pair<int, std::string*>> fds, std::chrono::steady_clock::time_point deadline) {
  while (!fds.empty() && std::chrono::steady_clock::now() < deadline) {
    std::vector<pollfd> pfds;
    for (auto& [fd, sink] : fds)
      pfds.push_back({fd, POLLIN, 0});
    if (::poll(pfds.data(), pfds.size(), 100) < 0) break;
    for (std::size_t i = pfds.size(); i-- > 0;) {
      if (pfds[i].revents == 0) continue;
      char buf[4096];
      const ssize_t n = ::read(fds[i].first, buf, sizeof buf);
      if (n > 0) {
        fds[i].second->append(buf, static_cast<std::size_t>(n));
      } else {
        ::close(fds[i].first);  // EOF, or EIO on a pty whose slave side closed
        fds.erase(fds.begin() + static_cast<std::ptrdiff_t>(i));
      }
    }
  }
  for (auto& [fd, sink] : fds)
    ::close(fd);
}

int reap(pid_t pid, std::chrono::steady_clock::time_point deadline) {
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(5ms);
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::vector<char*> c_args(const std::string& bin, const std::vector<std::string>& args) {
  std::vector<char*> argv{const_cast<char*>(bin.c_str())};
  for (const auto& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  return argv;
}

void set_env(const std::map<std::string, std::string>& env) {
  ::unsetenv("TOXIPROXY_URL");
  ::unsetenv("FAULTPROXY_CLI_TIMEOUT_MS");
  for (const auto& [k, v] : env)
    ::setenv(k.c_str(), v.c_str(), 1);
}

// Runs `bin args...` with stdout and stderr on pipes.
Outcome run_piped(const std::string& bin, const std::vector<std::string>& args,
                  const std::map<std::string, std::string>& env = {}) {
  int out_pipe[2], err_pipe[2];
  if (::pipe(out_pipe) != 0 || ::pipe(err_pipe) != 0) throw std::runtime_error("pipe failed");
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out_pipe[1], STDOUT_FILENO);
    ::dup2(err_pipe[1], STDERR_FILENO);
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    set_env(env);
    auto argv = c_args(bin, args);
    ::execv(bin.c_str(), argv.data());
    _exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  Outcome o;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  drain({{out_pipe[0], &o.out}, {err_pipe[0], &o.err}}, deadline);
  o.code = reap(pid, deadline);
  return o;
}

// Runs `bin args...` on a pseudo-terminal (stdout and stderr both on it); CRLF becomes LF.
Outcome run_tty(const std::string& bin, const std::vector<std::string>& args) {
  int master = -1;
  const pid_t pid = ::forkpty(&master, nullptr, nullptr, nullptr);
  if (pid < 0) throw std::runtime_error("forkpty failed");
  if (pid == 0) {
    set_env({});
    auto argv = c_args(bin, args);
    ::execv(bin.c_str(), argv.data());
    _exit(127);
  }
  Outcome o;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  drain({{master, &o.out}}, deadline);
  o.code = reap(pid, deadline);
  std::string lf;
  for (std::size_t i = 0; i < o.out.size(); ++i) {
    if (o.out[i] == '\r' && i + 1 < o.out.size() && o.out[i + 1] == '\n') continue;
    lf += o.out[i];
  }
  o.out = lf;
  return o;
}

class CliEndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    api_port_ = testing_support::free_port();
    server_ = testing_support::Process::spawn(
        {FAULTPROXY_BIN, "-host", "127.0.0.1", "-port", std::to_string(api_port_)},
        dir_.path() / "faultproxy.log");
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (!testing_support::port_accepts(api_port_)) {
      ASSERT_TRUE(server_.running()) << "faultproxy exited; see " << (dir_.path() / "faultproxy.log");
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "faultproxy did not listen";
      std::this_thread::sleep_for(20ms);
    }
    // toxiproxy-cli's name, so that every text is the transcript's
    toxiproxy_cli_ = (dir_.path() / "toxiproxy-cli").string();
    fs::create_symlink(FAULTPROXY_CLI_BIN, toxiproxy_cli_);
  }

  std::string api() const { return "127.0.0.1:" + std::to_string(api_port_); }

  std::string get(const std::string& path) {
    HttpClient client(api(), {});
    HttpOutcome r = client.send("GET", path, std::nullopt);
    return r.response ? r.response->body : r.error;
  }

  static std::string addr() { return "127.0.0.1:" + std::to_string(testing_support::free_port()); }

  testing_support::TempDir dir_;
  std::uint16_t api_port_ = 0;
  testing_support::Process server_;
  std::string toxiproxy_cli_;
};

TEST_F(CliEndToEnd, ReplaysTheToxiproxyCliTranscript) {
  const std::map<std::string, std::string> vars = {{"H", api()},     {"ABC", addr()},  {"ECHO", addr()},
                                                   {"CLI", addr()},  {"CLI2", addr()}, {"UP", addr()},
                                                   {"DEAD", addr()}, {"E", "\x1b"}};
  // The transcript's starting state: "a b/c" and "echo".
  for (const auto& [name, listen] : {std::pair{"a b/c", "ABC"}, std::pair{"echo", "ECHO"}}) {
    const Outcome r =
        run_piped(toxiproxy_cli_, {"-h", api(), "create", "-l", vars.at(listen), "-u", vars.at("UP"), name});
    ASSERT_EQ(r.code, 0) << r.out << r.err;
  }
  int step = 0;
  for (const auto& c : testdata::transcript_cases()) {
    std::vector<std::string> args;
    for (const auto& a : c.args)
      args.push_back(testdata::expand(a, vars));
    SCOPED_TRACE("step " + std::to_string(step++) + ": " + ::testing::PrintToString(args));
    if (c.tty) {
      const Outcome r = run_tty(toxiproxy_cli_, args);
      EXPECT_EQ(r.out, testdata::expand(c.out + c.err, vars));
      EXPECT_EQ(r.code, c.code);
      continue;
    }
    std::map<std::string, std::string> env;
    if (c.env_url) env["TOXIPROXY_URL"] = "http://" + api();
    const Outcome r = run_piped(toxiproxy_cli_, args, env);
    EXPECT_EQ(r.out, testdata::expand(c.out, vars));
    EXPECT_EQ(r.err, testdata::expand(c.err, vars));
    EXPECT_EQ(r.code, c.code);
    if (c.args.size() > 5 && c.args[3] == "add" && c.args[5] == "bandwidth") {
      // After the two `toxic add`s the server holds exactly what Toxiproxy held (transcript section 24).
      EXPECT_EQ(
          get("/proxies/cliproxy/toxics"),
          R"([{"attributes":{"rate":100},"name":"bw","type":"bandwidth","stream":"upstream","toxicity":0.5},)"
          R"({"attributes":{"latency":100,"jitter":10},"name":"latency_downstream","type":"latency",)"
          R"("stream":"downstream","toxicity":1}])");
    }
  }
}

TEST_F(CliEndToEnd, CommandsChangeWhatTheServerHolds) {
  const std::string cli = FAULTPROXY_CLI_BIN;
  const std::string listen = addr();
  ASSERT_EQ(run_piped(cli, {"-h", api(), "c", "-l", listen, "-u", addr(), "p"}).code, 0);
  ASSERT_EQ(
      run_piped(cli, {"-h", api(), "t", "a", "-t", "slicer", "-a", "average_size=10,delay=5", "-d", "p"})
          .code,
      0);
  ASSERT_EQ(run_piped(cli, {"-h", api(), "t", "u", "-n", "slicer_downstream", "--tox", "0.25", "-a",
                            "delay=7", "p"})
                .code,
            0);
  EXPECT_EQ(get("/proxies/p/toxics/slicer_downstream"),
            R"({"attributes":{"average_size":10,"size_variation":0,"delay":7},"name":"slicer_downstream",)"
            R"("type":"slicer","stream":"downstream","toxicity":0.25})");
  const Outcome inspect = run_piped(cli, {"-h", api(), "i", "p"});
  EXPECT_EQ(inspect.out,
            "slicer_downstream\ttype=slicer\tstream=downstream\ttoxicity=0.25\tattributes=[\taverage_size="
            "10\tdelay=7\t"
            "size_variation=0\t]\n");
  ASSERT_EQ(run_piped(cli, {"-h", api(), "t", "d", "-n", "slicer_downstream", "p"}).code, 0);
  EXPECT_EQ(get("/proxies/p/toxics"), "[]");
  EXPECT_EQ(run_piped(cli, {"-h", api(), "tog", "p"}).out, "Proxy p is now disabled\n");
  EXPECT_FALSE(testing_support::port_accepts(static_cast<std::uint16_t>(std::stoi(listen.substr(10)))));
  EXPECT_EQ(run_piped(cli, {"-h", api(), "tog", "p"}).out, "Proxy p is now enabled\n");
  EXPECT_TRUE(testing_support::port_accepts(static_cast<std::uint16_t>(std::stoi(listen.substr(10)))));
  EXPECT_EQ(run_piped(cli, {"-h", api(), "d", "p"}).out, "Deleted proxy p\n");
  EXPECT_EQ(run_piped(cli, {"-h", api(), "ls"}).out, "");
}

// faultproxy's client_cidr through `-a client_cidr=...`: set, shown, changed, cleared, refused.
TEST_F(CliEndToEnd, ClientCidrThroughTheAttributeFlag) {
  const std::string cli = FAULTPROXY_CLI_BIN;
  ASSERT_EQ(run_piped(cli, {"-h", api(), "c", "-l", addr(), "-u", addr(), "p"}).code, 0);
  ASSERT_EQ(run_piped(cli, {"-h", api(), "t", "a", "-t", "timeout", "-a", "timeout=0", "-a",
                            "client_cidr=127.0.1.2/32", "p"})
                .code,
            0);
  EXPECT_EQ(
      get("/proxies/p/toxics/timeout_downstream"),
      R"({"attributes":{"timeout":0},"name":"timeout_downstream","type":"timeout","stream":"downstream",)"
      R"("toxicity":1,"client_cidr":"127.0.1.2/32"})");
  EXPECT_EQ(run_piped(cli, {"-h", api(), "i", "p"}).out,
            "timeout_downstream\ttype=timeout\tstream=downstream\ttoxicity=1.00\tclient_cidr=127.0.1.2/32\t"
            "attributes=[\ttimeout=0\t]\n");
  ASSERT_EQ(
      run_piped(cli, {"-h", api(), "t", "u", "-n", "timeout_downstream", "-a", "client_cidr=::1/128", "p"})
          .code,
      0);
  EXPECT_NE(get("/proxies/p/toxics/timeout_downstream").find(R"("client_cidr":"::1/128"})"),
            std::string::npos);
  const Outcome bad = run_piped(
      cli, {"-h", api(), "t", "u", "-n", "timeout_downstream", "-a", "client_cidr=10.0.0.0/40", "p"});
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("HTTP 400: bad request body: client_cidr: invalid CIDR address: 10.0.0.0/40"),
            std::string::npos)
      << bad.err;
  ASSERT_EQ(
      run_piped(cli, {"-h", api(), "t", "u", "-n", "timeout_downstream", "-a", "client_cidr=", "p"}).code, 0);
  EXPECT_EQ(
      get("/proxies/p/toxics/timeout_downstream"),
      R"({"attributes":{"timeout":0},"name":"timeout_downstream","type":"timeout","stream":"downstream",)"
      R"("toxicity":1})");
}

// faultproxy's own toxics and attributes through `toxic add|update -t ... -a ...`, the time window
// through `-a start_after_ms=... -a duration_ms=...`; the server's 400s are printed.
TEST_F(CliEndToEnd, NewToxicsAndTimeWindowThroughTheAttributeFlag) {
  const std::string cli = FAULTPROXY_CLI_BIN;
  ASSERT_EQ(run_piped(cli, {"-h", api(), "c", "-l", addr(), "-u", addr(), "p"}).code, 0);
  const std::vector<std::vector<std::string>> adds = {
      {"-t", "packet_loss", "-a", "loss_rate=0.3", "-a", "correlation=0.25"},
      {"-t", "tcp_loss", "-u", "-a", "burst=2", "-a", "rto_ms=300"},
      {"-t", "corrupt", "-a", "rate=0.001"},
      {"-t", "slow_open", "-a", "delay=250"},
      {"-t", "latency", "-n", "lat", "-a", "latency=100", "-a", "jitter=10", "-a", "distribution=pareto"},
      {"-t", "bandwidth", "-a", "rate=50", "-a", "per_proxy=true"},
      {"-t", "refuse", "-a", "start_after_ms=60000", "-a", "duration_ms=2000"},
  };
  for (const auto& add : adds) {
    std::vector<std::string> args = {"-h", api(), "t", "a"};
    args.insert(args.end(), add.begin(), add.end());
    args.push_back("p");
    const Outcome r = run_piped(cli, args);
    EXPECT_EQ(r.code, 0) << add[1] << ": " << r.err;
  }
  EXPECT_EQ(
      run_piped(cli, {"-h", api(), "i", "p"}).out,
      "tcp_loss_upstream\ttype=tcp_loss\tstream=upstream\ttoxicity=1.00\tattributes=[\tburst=2\t"
      "loss_rate=0.01\trto_ms=300\t]\n"
      "packet_loss_downstream\ttype=packet_loss\tstream=downstream\ttoxicity=1.00\tattributes=[\t"
      "correlation=0.25\tloss_rate=0.3\t]\n"
      "corrupt_downstream\ttype=corrupt\tstream=downstream\ttoxicity=1.00\tattributes=[\trate=0.001\t]\n"
      "slow_open_downstream\ttype=slow_open\tstream=downstream\ttoxicity=1.00\tattributes=[\tdelay=250\t]\n"
      "lat\ttype=latency\tstream=downstream\ttoxicity=1.00\tattributes=[\tdistribution=pareto\tjitter=10\t"
      "latency=100\t]\n"
      "bandwidth_downstream\ttype=bandwidth\tstream=downstream\ttoxicity=1.00\tattributes=[\tper_proxy=true\t"
      "rate=50\t]\n"
      "refuse_downstream\ttype=refuse\tstream=downstream\ttoxicity=1.00\tstart_after_ms=60000\t"
      "duration_ms=2000\tattributes=[\t]\n");
  ASSERT_EQ(run_piped(cli, {"-h", api(), "t", "u", "-n", "lat", "-a", "distribution=uniform", "-a",
                            "duration_ms=600000", "p"})
                .code,
            0);
  EXPECT_EQ(
      get("/proxies/p/toxics/lat"),
      R"({"attributes":{"latency":100,"jitter":10},"name":"lat","type":"latency","stream":"downstream",)"
      R"("toxicity":1,"duration_ms":600000})");
  const Outcome bad =
      run_piped(cli, {"-h", api(), "t", "a", "-t", "packet_loss", "-n", "x", "-a", "loss_rate=2", "p"});
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("HTTP 400: bad request body: loss_rate: not between 0 and 1: 2"), std::string::npos)
      << bad.err;
  const Outcome bad_window =
      run_piped(cli, {"-h", api(), "t", "u", "-n", "lat", "-a", "start_after_ms=soon", "p"});
  EXPECT_EQ(bad_window.code, 1);
  // An update decodes into an anonymous struct, as Toxiproxy's does: Go names the field ".start_after_ms".
  EXPECT_NE(
      bad_window.err.find("HTTP 400: bad request body: json: cannot unmarshal string into Go struct field "
                          ".start_after_ms of type int64"),
      std::string::npos)
      << bad_window.err;
}

TEST_F(CliEndToEnd, NamedFaultproxyCliItSaysSo) {
  const Outcome help = run_piped(FAULTPROXY_CLI_BIN, {"help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("   faultproxy-cli - Simulate network and system conditions\n"), std::string::npos);
  EXPECT_EQ(help.out.find("toxiproxy-cli"), std::string::npos);
  const Outcome tty = run_tty(FAULTPROXY_CLI_BIN, {"-h", "http://" + api(), "list"});
  EXPECT_EQ(tty.code, 0);
  EXPECT_NE(tty.out.find("\x1b[31mno proxies\n"), std::string::npos) << tty.out;
  EXPECT_NE(tty.out.find("Hint: create a proxy with `faultproxy-cli create`\n"), std::string::npos)
      << tty.out;
}

TEST_F(CliEndToEnd, AHungServerGivesOneLineWithinTheDeadline) {
  server_.pause();  // SIGSTOP: connections are accepted by the kernel, nothing answers
  const auto start = std::chrono::steady_clock::now();
  const Outcome r =
      run_piped(FAULTPROXY_CLI_BIN, {"-h", api(), "list"}, {{"FAULTPROXY_CLI_TIMEOUT_MS", "300"}});
  const auto elapsed = std::chrono::steady_clock::now() - start;
  server_.resume();
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(
      r.err,
      "Failed to retrieve proxies: fail to request: Get \"http://" + api() +
          "/proxies\": Client.Timeout exceeded while awaiting the response (no answer within 300 ms)\n");
  EXPECT_LT(elapsed, 5s);  // 300 ms deadline plus process start-up, with a generous margin
  const Outcome bad = run_piped(FAULTPROXY_CLI_BIN, {"list"}, {{"FAULTPROXY_CLI_TIMEOUT_MS", "soon"}});
  EXPECT_EQ(bad.code, 1);
  EXPECT_EQ(bad.err, "FAULTPROXY_CLI_TIMEOUT_MS must be a positive number of milliseconds, got 'soon'\n");
}

}  // namespace
}  // namespace faultproxy::cli
