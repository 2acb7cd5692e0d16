// soak: the chaos soak driver (soak/README.md). It runs concurrent readers and writers against
// user-service while it applies a seeded plan of faults through faultproxy's Toxiproxy API, then
// clears every fault, waits for recovery, checks the invariants and prints a report. Exit status:
// 0 if every invariant held, 1 if one failed (named in the report), 2 on a usage error.
//
// `./dev soak` starts a fresh stack and runs this against it; by hand:
//   build/release/soak/soak --service 127.0.0.1:17080 --faultproxy 127.0.0.1:17474
//     --mariadb-port 17306 --redis-master-port 17379 --redis-replica-port 17380
//     --pid user-service=<pid> --pid faultproxy=<pid> --seconds 60 --seed 42
// Over the HA stack (`./dev soak --ha`): --ha --service <HAProxy> --stack-dir .stack/<name>
//     --stack-name <name> --dev ./dev --node mariadb-1=PORT ... --node redis-1=PORT ...
//     --node user-service-1=PORT ... (process faults by pid file and ./dev restart|failover).
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <cinttypes>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "common/version.h"
#include "soak/chaos.h"
#include "soak/history.h"
#include "soak/http_client.h"
#include "soak/stores.h"
#include "soak/timeline.h"

namespace soak {
namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using namespace std::chrono_literals;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
constexpr State kNoState = -3;  // no write in flight

// ------------------------------------------------------------------------------------ options

struct Options {
  asio::ip::tcp::endpoint service{asio::ip::make_address("127.0.0.1"), 17080};
  asio::ip::tcp::endpoint admin{asio::ip::make_address("127.0.0.1"), 17090};  // GET /config (an instance's)
  asio::ip::tcp::endpoint faultproxy{asio::ip::make_address("127.0.0.1"), 17474};
  int mariadb_port = 17306, redis_master_port = 17379, redis_replica_port = 17380;
  std::vector<std::pair<std::string, pid_t>> pids;
  std::int64_t seconds = 300;
  std::uint64_t seed = 0;
  bool seed_given = false;
  std::string replay;
  std::string report_file, summary_file, chaos_log, history_file;
  std::string data_file;  // the run as JSON, for the HTML report (features/tools/soak-report.mjs)
  bool chaos = true;
  int writers = 6, readers = 10, ids_per_writer = 64;
  int think_ms = 4;                      // mean pause between a worker's requests
  milliseconds client_timeout{5000};     // no answer within this: a hang
  milliseconds recovery_bound{5000};     // faults cleared -> every dependency usable again
  milliseconds recovery_timeout{20000};  // how long to wait at most before judging
  milliseconds coherence_window{1000};   // recovered -> cache agrees with MariaDB
  double rss_growth_limit = 0.10;
  // Growth below this is never a leak: a few pages of allocator arenas and socket buffers that a
  // small process (faultproxy: 5 MB) reaches only once its connections have churned a while.
  double rss_growth_floor_mb = 2.0;
  std::string key_prefix = "user:";
  // HA stack: process faults too; nodes by name (mariadb-K, redis-K: their own ports; user-service-K:
  // its HTTP port); staleness bound of the fresh-reads check (0: strict, the small stack's).
  bool ha = false;
  std::string stack_dir, stack_name, dev_script, process_log;
  std::vector<std::pair<std::string, int>> nodes;
  milliseconds stale_bound{-1};
};

// The nodes whose names are `prefix` followed by a number (redis-1, not redis-sentinel-1).
std::vector<std::pair<std::string, int>> nodes_of(const Options& o, std::string_view prefix) {
  std::vector<std::pair<std::string, int>> out;
  for (const auto& [name, port] : o.nodes) {
    if (name.size() > prefix.size() && name.compare(0, prefix.size(), prefix) == 0 &&
        name.find_first_not_of("0123456789", prefix.size()) == std::string::npos)
      out.emplace_back(name, port);
  }
  return out;
}

// The port of the node of that name (0: no such node).
int node_port(const Options& o, std::string_view name) {
  for (const auto& [n, port] : o.nodes)
    if (n == name) return port;
  return 0;
}

[[noreturn]] void usage(const std::string& error) {
  std::cerr
      << "soak: " << error << "\n"
      << "usage: soak --service HOST:PORT --admin HOST:PORT --faultproxy HOST:PORT --mariadb-port N\n"
         "            --redis-master-port N --redis-replica-port N [--pid NAME=PID]...\n"
         "            [--seconds N] [--seed N] [--replay TEXT] [--report FILE] [--summary FILE]\n"
         "            [--chaos-log FILE] [--history FILE] [--data FILE] [--writers N] [--readers N]\n"
         "            [--ids-per-writer N] [--think-ms N] [--recovery-bound-ms N]\n"
         "            [--rss-growth-limit FRACTION] [--rss-growth-floor-mb MB] [--no-chaos] "
         "[--stale-bound-ms N]\n"
         "       soak --ha --service HAPROXY --admin HOST:PORT --faultproxy HOST:PORT --stack-dir DIR\n"
         "            --stack-name NAME\n"
         "            --dev PATH --node NAME=PORT... [--process-log FILE] [options above]\n"
         "  --history FILE: every request (TSV), written when an invariant failed\n"
         "  --data FILE: the run as JSON (per-second answers, fault windows, invariants) for "
         "features/tools/soak-report.mjs\n"
         "  --no-chaos: load only (apply faults by hand); the final reset and checks still run\n"
         "  --ha: the HA stack: process faults too (by pid file under DIR/pids and ./dev restart|failover\n"
         "        on stack NAME); nodes mariadb-K, redis-K (their ports), user-service-K (HTTP ports);\n"
         "        fresh reads bounded by --stale-bound-ms (default 1000 with --ha, else 0: strict)\n";
  std::exit(2);
}

asio::ip::tcp::endpoint parse_endpoint(const std::string& s) {
  const auto colon = s.rfind(':');
  if (colon == std::string::npos) usage("expected HOST:PORT, got '" + s + "'");
  boost::system::error_code ec;
  const auto addr = asio::ip::make_address(s.substr(0, colon), ec);
  if (ec) usage("not a numeric address: '" + s + "'");
  return {addr, static_cast<unsigned short>(std::stoi(s.substr(colon + 1)))};
}

Options parse_options(int argc, char** argv) {
  if (common::print_version_if_asked(argc, argv, "soak")) std::exit(0);
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage("missing value after " + a);
      return argv[++i];
    };
    const auto number = [&]() -> std::int64_t {
      const std::string v = value();
      char* end = nullptr;
      const long long n = std::strtoll(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || n < 0) usage("expected a number after " + a + ", got '" + v + "'");
      return n;
    };
    if (a == "--service") {
      o.service = parse_endpoint(value());
    } else if (a == "--admin") {
      o.admin = parse_endpoint(value());
    } else if (a == "--faultproxy") {
      o.faultproxy = parse_endpoint(value());
    } else if (a == "--mariadb-port") {
      o.mariadb_port = static_cast<int>(number());
    } else if (a == "--redis-master-port") {
      o.redis_master_port = static_cast<int>(number());
    } else if (a == "--redis-replica-port") {
      o.redis_replica_port = static_cast<int>(number());
    } else if (a == "--pid") {
      const std::string v = value();
      const auto eq = v.find('=');
      if (eq == std::string::npos) usage("--pid wants NAME=PID");
      o.pids.emplace_back(v.substr(0, eq), static_cast<pid_t>(std::stol(v.substr(eq + 1))));
    } else if (a == "--seconds") {
      o.seconds = number();
    } else if (a == "--seed") {
      o.seed = static_cast<std::uint64_t>(number());
      o.seed_given = true;
    } else if (a == "--replay") {
      o.replay = value();
    } else if (a == "--report") {
      o.report_file = value();
    } else if (a == "--summary") {
      o.summary_file = value();
    } else if (a == "--chaos-log") {
      o.chaos_log = value();
    } else if (a == "--history") {
      o.history_file = value();
    } else if (a == "--data") {
      o.data_file = value();
    } else if (a == "--no-chaos") {
      o.chaos = false;
    } else if (a == "--writers") {
      o.writers = static_cast<int>(number());
    } else if (a == "--readers") {
      o.readers = static_cast<int>(number());
    } else if (a == "--ids-per-writer") {
      o.ids_per_writer = static_cast<int>(number());
    } else if (a == "--think-ms") {
      o.think_ms = static_cast<int>(number());
    } else if (a == "--recovery-bound-ms") {
      o.recovery_bound = milliseconds(number());
    } else if (a == "--rss-growth-limit") {
      o.rss_growth_limit = std::stod(value());
    } else if (a == "--rss-growth-floor-mb") {
      o.rss_growth_floor_mb = std::stod(value());
    } else if (a == "--ha") {
      o.ha = true;
    } else if (a == "--stack-dir") {
      o.stack_dir = value();
    } else if (a == "--stack-name") {
      o.stack_name = value();
    } else if (a == "--dev") {
      o.dev_script = value();
    } else if (a == "--process-log") {
      o.process_log = value();
    } else if (a == "--stale-bound-ms") {
      o.stale_bound = milliseconds(number());
    } else if (a == "--node") {
      const std::string v = value();
      const auto eq = v.find('=');
      if (eq == std::string::npos) usage("--node wants NAME=PORT");
      o.nodes.emplace_back(v.substr(0, eq), std::stoi(v.substr(eq + 1)));
    } else if (a == "--help" || a == "-h") {
      usage("help");

    } else {
      usage("unknown option '" + a + "'");
    }
  }
  if (o.seconds < 10) usage("--seconds must be at least 10");
  if (o.writers < 1 || o.readers < 1 || o.ids_per_writer < 1)
    usage("writers, readers and ids must be positive");
  if (!o.seed_given) o.seed = std::random_device{}() % 1'000'000'000ULL;
  if (o.stale_bound.count() < 0) o.stale_bound = o.ha ? milliseconds(1000) : milliseconds(0);
  if (o.ha) {
    if (o.stack_dir.empty() || o.stack_name.empty() || o.dev_script.empty())
      usage("--ha needs --stack-dir, --stack-name and --dev");
    if (nodes_of(o, "mariadb-").empty() || nodes_of(o, "redis-").empty() ||
        nodes_of(o, "user-service-").empty())
      usage("--ha needs --node mariadb-K=PORT, redis-K=PORT and user-service-K=PORT");
  }
  return o;
}

// ------------------------------------------------------------------------------------ the run

struct ChaosCall {
  Action action;
  std::int64_t at_ms = 0;  // when it was sent
  int status = 0;
  std::string error;
  bool ok = false;
  std::string resolved;  // process faults: the process it acted on
  std::int64_t took_ms = 0;
};

struct Proc {
  std::string name;
  pid_t pid = 0;
  std::vector<std::pair<std::int64_t, std::uint64_t>> rss;  // (ms, KiB)
  std::optional<std::uint64_t> baseline, end;
  std::optional<std::int64_t> died_ms;
  bool memory = true;       // judged by the memory invariant
  bool chaos_down = false;  // killed by the chaos, not restarted yet: its death is expected
  int restarts = 0;         // restarted by the chaos (its memory is then not compared)
};

struct Invariant {
  std::string name;
  bool ok = true;
  std::string what;                   // the property, in one line
  std::string figures;                // what was measured
  std::vector<std::string> examples;  // when it failed
};

struct Run {
  explicit Run(Options opts) : o(std::move(opts)), history(make_ids(o)), start(Clock::now()) {}

  static std::vector<std::string> make_ids(const Options& o) {
    std::vector<std::string> ids;
    for (int w = 0; w < o.writers; ++w)
      for (int k = 0; k < o.ids_per_writer; ++k)
        ids.push_back("w" + std::to_string(w) + "-" + std::to_string(k));
    return ids;
  }

  std::int64_t ms_now() const {
    return std::chrono::duration_cast<milliseconds>(Clock::now() - start).count();
  }
  std::int64_t us(Clock::time_point t) const {
    return std::chrono::duration_cast<std::chrono::microseconds>(t - start).count();
  }

  Options o;
  asio::io_context io;
  History history;
  Clock::time_point start;
  std::chrono::system_clock::time_point started_wall;
  milliseconds duration{0}, calm_at{0};
  bool stop = false, sampling = true;
  int workers_running = 0, helpers_running = 0;
  std::int64_t request_deadline_ms = 1000;

  std::vector<ChaosCall> chaos;
  std::vector<Proc> procs;
  std::map<std::pair<Op, int>, std::uint64_t> by_status;
  std::map<std::string, std::uint64_t> by_source;  // GET 200 by X-Data-Source
  std::vector<std::int32_t> latency_us[3];
  std::vector<std::string> bad_answers, transport_errors;
  std::uint64_t bad_answer_count = 0, transport_error_count = 0, over_deadline = 0;
  std::ofstream chaos_log;

  // Per id, as answers arrive: the last acknowledged state and when, whether a write of unknown
  // outcome followed it, the state of a write in flight. A cache read that contradicts them makes
  // the soak look at both Redis nodes at once (a diagnosis for the report; the judgement is History's).
  std::vector<State> acked, in_flight;
  std::vector<std::int64_t> acked_done_us;
  std::vector<bool> unknown_since_ack;
  std::map<std::size_t, std::string> peeks;  // record index -> what master and replica held

  std::optional<std::int64_t> recovered_ms, all_up_ms;  // after the faults were cleared
  std::string last_health;

  // HA: the Redis nodes whose caches are checked (small stack: master and replica), the process
  // fault under way (its component, pid and whether it was a SIGSTOP), how late the plan runs
  // (a restart takes what it takes: the rest of the plan moves with it).
  std::vector<std::pair<std::string, int>> cache_nodes;
  std::string fault_target;
  pid_t fault_pid = 0;
  bool fault_stopped = false;
  milliseconds lag{0};
  // From a SIGKILL/SIGSTOP of the Redis master until a node answers ROLE master again, or while a
  // fault on the master's proxy keeps it from answering within the Redis deadline (us since start).
  std::vector<History::Window> no_master;
  // Those faults present now: "proxy/toxic", "proxy/" for an outage (their watches close the windows).
  std::set<std::string> master_impairments;
  // HA: each proxy's listen address -> its name (GET /proxies at the start): the Sentinels announce
  // the Redis master by its proxy's address.
  std::map<std::string, std::string> proxy_at;
  // After every ./dev failover mysql: the new primary against the writes acknowledged before the old
  // one was lost (durability across the failover, before later writes overwrite the evidence).
  std::int64_t primary_lost_us = -1;
  std::vector<std::string> failover_checks, failover_losses;
  std::vector<Invariant> invariants;
};

std::string utc_text(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[48];
  const auto ms = std::chrono::duration_cast<milliseconds>(t.time_since_epoch()).count() % 1000;
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

asio::awaitable<void> sleep_for(Clock::duration d) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  t.expires_after(d);
  co_await t.async_wait(nothrow);
}

std::optional<json::value> parse_json(std::string_view s) {
  boost::system::error_code ec;
  json::value v = json::parse(s, ec);
  if (ec) return std::nullopt;
  return v;
}

std::string_view str_field(const json::value& v, std::string_view key) {
  if (!v.is_object()) return {};
  const auto* f = v.as_object().if_contains(key);
  if (f == nullptr || !f->is_string()) return {};
  return f->as_string();
}

std::string with_commas(std::uint64_t n) {
  const std::string digits = std::to_string(n);
  std::string s;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) s.push_back(',');
    s.push_back(digits[i]);
  }
  return s;
}

// Judges one answer of user-service and records it.
void record(Run& run, Record rec, const HttpResult& res, const std::string& sent_name) {
  const std::string& id = run.history.ids()[rec.id];
  rec.status = res.status;
  rec.sent_us = run.us(res.sent);
  rec.done_us = run.us(res.done);
  std::string problem;
  if (res.status < 0) {
    ++run.transport_error_count;
    if (run.transport_errors.size() < 10)
      run.transport_errors.push_back(std::string(op_name(rec.op)) + " /users/" + id + ": " +
                                     status_name(res.status) + " (" + res.error + ") at " +
                                     std::to_string(rec.sent_us / 1000) + " ms");
  } else {
    const auto body = parse_json(res.body);
    if (!allowed_status(rec.op, res.status)) problem = "status not allowed for this operation";
    if (res.status == 503) {
      rec.retry_after = res.has_header("Retry-After");
      if (!rec.retry_after) problem = "503 without Retry-After";
      rec.short_circuit =
          body && str_field(*body, "error").find("MariaDB unavailable") != std::string_view::npos;
      if (body) {
        std::string_view why = str_field(*body, "error");
        if (const auto colon = why.find(" now: "); colon != std::string_view::npos)
          why.remove_prefix(colon + 6);
        rec.reason = run.history.intern(why.substr(0, 120));
      }
    }
    const std::string_view source = res.header("X-Data-Source");
    rec.source = source == "cache"            ? Source::cache
                 : source == "origin"         ? Source::origin
                 : source == "origin-replica" ? Source::origin_replica
                                              : Source::none;
    if (const std::string_view by = res.header("X-Served-By"); !by.empty())
      rec.served_by = run.history.intern(by);
    rec.stale = res.header("X-Cache-Stale") == "true";
    if (rec.op == Op::get && res.status == 200) {
      if (!body || str_field(*body, "id") != id) {
        problem = "body is not this user";
        rec.state = kUnparsable;
      } else {
        const auto seq = parse_name(id, str_field(*body, "name"));
        rec.state = seq ? static_cast<State>(*seq) : kUnparsable;
      }
      if (rec.source == Source::none) problem = "200 without X-Data-Source";
      ++run.by_source[rec.stale ? "cache (marked stale)" : std::string(source.empty() ? "none" : source)];
    } else if (rec.op == Op::get) {
      rec.state = kAbsent;
    }
    if (rec.op == Op::put && (res.status == 200 || res.status == 201)) {
      if (!body || str_field(*body, "id") != id || str_field(*body, "name") != sent_name)
        problem = "body is not the stored user";
    }
    if (rec.op == Op::del && res.status == 204 && !res.body.empty()) problem = "204 with a body";
    if ((res.status == 404 || res.status == 503 || (res.status >= 400 && res.status < 500)) &&
        (!body || !body->is_object() || !body->as_object().if_contains("error")))
      problem = "error without a JSON {\"error\"} body";
    const auto latency = std::chrono::duration_cast<std::chrono::microseconds>(res.done - res.sent).count();
    run.latency_us[static_cast<int>(rec.op)].push_back(
        static_cast<std::int32_t>(std::min<std::int64_t>(latency, INT32_MAX)));
    if (latency > (run.request_deadline_ms + 100) * 1000) ++run.over_deadline;
  }
  rec.body_ok = problem.empty();
  if (!problem.empty()) {
    ++run.bad_answer_count;
    if (run.bad_answers.size() < 10)
      run.bad_answers.push_back(std::string(op_name(rec.op)) + " /users/" + id + " -> " +
                                std::to_string(res.status) + ": " + problem +
                                "; body: " + res.body.substr(0, 200));
  }
  ++run.by_status[{rec.op, res.status}];
  if (rec.op != Op::get) {
    run.in_flight[rec.id] = kNoState;
    if (effect_of(rec) == Effect::applied) {
      run.acked[rec.id] = state_after(rec);
      run.acked_done_us[rec.id] = rec.done_us;
      run.unknown_since_ack[rec.id] = false;
    } else if (effect_of(rec) == Effect::unknown) {
      run.unknown_since_ack[rec.id] = true;
    }
  } else if ((res.status == 200 || res.status == 404) && rec.source == Source::cache && !rec.stale &&
             rec.sent_us > run.acked_done_us[rec.id] + run.o.stale_bound.count() * 1000 &&
             !run.unknown_since_ack[rec.id] && rec.state != run.acked[rec.id] &&
             rec.state != run.in_flight[rec.id] && run.peeks.size() < 50) {
    std::string text = "right after:";
    for (const auto& [node, port] : run.cache_nodes) {
      if (node == run.fault_target && run.fault_stopped) continue;  // a stopped node would not answer
      text += (text.back() == ':' ? " " : ", ") + node + " holds " + peek_redis(port, run.o.key_prefix, id);
    }
    run.peeks[run.history.records().size()] = text;
  }
  run.history.add(rec);
}

asio::awaitable<void> writer(Run& run, int w, std::uint64_t seed) {
  HttpClient client(co_await asio::this_coro::executor, run.o.service);
  std::mt19937_64 rng(seed);
  const std::uint32_t first = static_cast<std::uint32_t>(w * run.o.ids_per_writer);
  std::vector<std::uint64_t> next_seq(static_cast<std::size_t>(run.o.ids_per_writer), 0);
  while (!run.stop) {
    const std::uint32_t k =
        static_cast<std::uint32_t>(rng() % static_cast<std::uint64_t>(run.o.ids_per_writer));
    const std::uint32_t id = first + k;
    const std::string& name_id = run.history.ids()[id];
    Record rec;
    rec.id = id;
    if (rng() % 100 < 70) {
      rec.op = Op::put;
      const std::uint64_t seq = ++next_seq[k];
      rec.state = static_cast<State>(seq);
      run.in_flight[id] = rec.state;
      const std::string name = make_name(name_id, seq);
      json::object body;
      body["name"] = name;
      auto res =
          co_await client.request("PUT", "/users/" + name_id, json::serialize(body), run.o.client_timeout);
      record(run, rec, res, name);
    } else {
      rec.op = Op::del;
      run.in_flight[id] = kAbsent;
      auto res = co_await client.request("DELETE", "/users/" + name_id, "", run.o.client_timeout);
      record(run, rec, res, {});
    }
    if (run.o.think_ms > 0)
      co_await sleep_for(milliseconds(rng() % static_cast<std::uint64_t>(2 * run.o.think_ms + 1)));
  }
  --run.workers_running;
}

asio::awaitable<void> reader(Run& run, std::uint64_t seed) {
  HttpClient client(co_await asio::this_coro::executor, run.o.service);
  std::mt19937_64 rng(seed);
  const auto n = run.history.ids().size();
  while (!run.stop) {
    Record rec;
    rec.op = Op::get;
    rec.id = static_cast<std::uint32_t>(rng() % n);
    auto res =
        co_await client.request("GET", "/users/" + run.history.ids()[rec.id], "", run.o.client_timeout);
    record(run, rec, res, {});
    if (run.o.think_ms > 0)
      co_await sleep_for(milliseconds(rng() % static_cast<std::uint64_t>(2 * run.o.think_ms + 1)));
  }
  --run.workers_running;
}

// ------------------------------------------------------------------------------ process faults (HA)

// The pid ./dev recorded for a component (first field of <stack>/pids/<name>.pid), 0 if none.
pid_t recorded_pid(const Run& run, const std::string& component) {
  std::ifstream f(run.o.stack_dir + "/pids/" + component + ".pid");
  long pid = 0;
  if (!(f >> pid) || pid <= 0) return 0;
  return static_cast<pid_t>(pid);
}

Proc* proc_named(Run& run, const std::string& name) {
  for (auto& p : run.procs)
    if (p.name == name) return &p;
  return nullptr;
}

// `./dev <args...>` on the soak's stack (DEV_STACK), its output appended to the process log; polled,
// so the load goes on meanwhile. Returns its exit status (-1: not started or killed after 180 s).
asio::awaitable<int> run_dev(Run& run, std::vector<std::string> args, std::string& error) {
  const std::string log = run.o.process_log.empty() ? "/dev/null" : run.o.process_log;
  const int fd = ::open(log.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  std::string header = "\n=== " + std::to_string(run.ms_now()) + " ms: ./dev";
  for (const auto& a : args)
    header += " " + a;
  header += "\n";
  if (fd >= 0) (void)!::write(fd, header.data(), header.size());
  std::vector<std::string> argv_s{run.o.dev_script};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t child = ::fork();
  if (child == 0) {  // one thread: only async-signal-safe calls until exec anyway
    ::setenv("DEV_STACK", run.o.stack_name.c_str(), 1);
    const int null = ::open("/dev/null", O_RDONLY);
    ::dup2(null, 0);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    ::close_range(3, ~0U, 0);  // the soak's sockets are not the restarted process's business
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  if (fd >= 0) ::close(fd);
  if (child < 0) {
    error = "fork failed";
    co_return -1;
  }
  const auto give_up = Clock::now() + 180s;
  int status = 0;
  while (::waitpid(child, &status, WNOHANG) == 0) {
    if (Clock::now() > give_up) {
      ::kill(child, SIGKILL);
      ::waitpid(child, &status, 0);
      error = "./dev " + args[0] + " did not finish within 180 s";
      co_return -1;
    }
    co_await sleep_for(50ms);
  }
  const int rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (rc != 0)
    error = "./dev " + args[0] + (args.size() > 1 ? " " + args[1] : "") + " exited with status " +
            std::to_string(rc) + " (see the process log)";
  co_return rc;
}

// What the Sentinels say the Redis master is (the first that answers), empty if none does.
std::string sentinels_master(const Run& run) {
  for (const auto& [name, port] : nodes_of(run.o, "redis-sentinel-"))
    if (auto m = sentinel_master(port, "users")) return *m;
  return {};
}

// Which process a role names now: the Redis master (the node the Sentinels announce, if it answers
// ROLE master; else by ROLE, the one with most replicas if two say so), a Redis replica, the
// MariaDB primary (@@read_only = 0); a name is itself.
std::string resolve_target(const Run& run, const Action& a) {
  if (a.target == "redis:master") {
    // The master the instances follow is the one the Sentinels announce (by its proxy's address).
    // ROLE alone can name two: a deposed master answers "master" until the Sentinels reconfigure
    // it, and while the master's proxy is down neither has a replica to tell them apart.
    if (const auto it = run.proxy_at.find(sentinels_master(run)); it != run.proxy_at.end()) {
      if (const int port = node_port(run.o, it->second); port != 0) {
        if (const auto role = redis_role(port); role && role->role == "master") return it->second;
      }
    }
  }
  if (a.target == "redis:master" || a.target == "redis:replica") {
    std::vector<std::string> found;
    std::size_t best = 0;
    for (const auto& [name, port] : nodes_of(run.o, "redis-")) {
      const auto role = redis_role(port);
      if (!role) continue;
      if (a.target == "redis:replica" && role->role == "slave") found.push_back(name);
      if (a.target == "redis:master" && role->role == "master") {
        if (found.empty() || role->replicas > best) found = {name};
        best = std::max(best, role->replicas);
      }
    }
    return found.empty() ? std::string() : found[a.pick % found.size()];
  }
  if (a.target == "mariadb:primary") {
    for (const auto& [name, port] : nodes_of(run.o, "mariadb-"))
      if (mariadb_read_only(port) == false) return name;
    return {};
  }
  return a.target;
}

// Sentinels that had begun a failover finish it though the master is back (within their
// failover-timeout, 3 s, stack/ha/sentinel.conf): the instances then move to the promoted node, which
// lacks what the returned one took meanwhile until the feed replays it. A window of no master that
// ended with the master's return ends at that switch instead (`to_us`, `found` say so).
asio::awaitable<void> await_begun_failover(Run& run, const std::string& was, std::int64_t& to_us,
                                           std::string& found) {
  const auto until = Clock::now() + 3s;
  while (Clock::now() < until && !run.stop) {
    co_await sleep_for(50ms);
    if (const std::string now = sentinels_master(run); !now.empty() && now != was) {
      to_us = run.us(Clock::now());
      found += ", then the Sentinels announce " + now + " (the failover they had begun)";
      co_return;
    }
  }
}

// After the Redis master was killed or stopped: until the Sentinels announce another master
// (+switch-master: what the instances follow), or the lost node, resumed or restarted, answers ROLE
// master again; polled every 50 ms. The window is where the HA contract's staleness bound does not
// hold ("whenever some Redis master is reachable").
asio::awaitable<void> master_watch(Run& run, std::string lost, std::string was, std::int64_t from_us) {
  const auto give_up = Clock::now() + 60s;
  std::string found;
  const int lost_port = node_port(run.o, lost);
  bool back = false;
  while (found.empty() && Clock::now() < give_up) {
    co_await sleep_for(50ms);
    if (const std::string now = sentinels_master(run); !now.empty() && now != was) {
      found = "the Sentinels announce " + now;
    } else if (run.fault_target != lost) {
      if (const auto role = redis_role(lost_port, 200); role && role->role == "master") {
        found = lost + " (back) answers ROLE master";
        back = true;
      }
    }
  }
  std::int64_t to_us = run.us(Clock::now());
  if (back) co_await await_begun_failover(run, was, to_us, found);
  run.no_master.emplace_back(from_us, to_us);
  if (run.chaos_log.is_open())
    run.chaos_log << run.ms_now() << " ms  (no Redis master reachable since " << from_us / 1000 << " ms; now "
                  << (found.empty() ? std::string("none after 60 s") : found) << ")\n";
  --run.helpers_running;
}

// The service's deadline for one Redis command (stack/ha/user-service.json: redis.call_deadline_ms).
constexpr std::int64_t kRedisCallDeadlineMs = 100;
// The soak's load moves up to about 50 KB/s over each instance's one connection to the master (and
// over each replica's link): a toxic letting less than twice that through queues commands (and
// replication) past the deadline.
constexpr double kRedisThroughputNeededKBps = 100;

// Whether a fault keeps a Redis node from answering every command within the service's deadline:
// an outage, a cut or reset connection, a blackhole, latency at or beyond the deadline, or a rate or
// slicing below the throughput the load needs. Milder toxics do not.
bool impairs_redis(const Action& a) {
  if (a.kind == Action::disable) return true;
  if (a.kind != Action::add_toxic) return false;
  boost::system::error_code ec;
  const auto body = boost::json::parse(a.body, ec);
  if (ec || !body.is_object()) return false;
  const auto* attributes = body.as_object().if_contains("attributes");
  const auto number = [&](const char* key) -> std::int64_t {
    if (!attributes || !attributes->is_object()) return 0;
    const auto* v = attributes->as_object().if_contains(key);
    return v && v->is_int64() ? v->as_int64() : 0;
  };
  if (a.type == "timeout" || a.type == "reset_peer" || a.type == "limit_data") return true;
  if (a.type == "latency") return number("latency") + number("jitter") >= kRedisCallDeadlineMs;
  if (a.type == "bandwidth") return static_cast<double>(number("rate")) < kRedisThroughputNeededKBps;
  if (a.type == "slicer" && number("delay") > 0) {
    // average_size bytes per `delay` microseconds.
    const double kbps =
        static_cast<double>(number("average_size")) * 1e6 / static_cast<double>(number("delay")) / 1024;
    return kbps < kRedisThroughputNeededKBps;
  }
  return false;
}

// While a fault on the Redis master's proxy keeps it from answering within the deadline: until the
// fault is removed, or the Sentinels announce another master (they watch the nodes through the same
// proxies). A window where the HA contract's staleness bound does not hold, like master_watch's.
asio::awaitable<void> impaired_master_watch(Run& run, std::string key, std::string was,
                                            std::int64_t from_us) {
  std::string found;
  bool gone = false;
  while (found.empty()) {
    co_await sleep_for(50ms);
    if (run.master_impairments.count(key) == 0 || run.stop) {
      found = "the fault is gone";
      gone = true;
    } else if (const std::string now = sentinels_master(run); !now.empty() && now != was) {
      found = "the Sentinels announce " + now;
    }
  }
  std::int64_t to_us = run.us(Clock::now());
  if (gone) co_await await_begun_failover(run, was, to_us, found);
  run.no_master.emplace_back(from_us, to_us);
  if (run.chaos_log.is_open())
    run.chaos_log << run.ms_now() << " ms  (the Redis master behind a fault on its proxy (" << key
                  << ") since " << from_us / 1000 << " ms; now " << found << ")\n";
  --run.helpers_running;
}

// HA: a fault on the Redis master's proxy that impairs it opens a window; its removal closes it.
void note_master_impairment(Run& run, const Action& a, const asio::any_io_executor& ex) {
  const bool outage = a.kind == Action::disable || a.kind == Action::enable;
  const std::string key = a.proxy + "/" + (outage ? "" : a.toxic);
  switch (a.kind) {
    case Action::add_toxic:
    case Action::disable: {
      if (!impairs_redis(a)) return;
      Action master;
      master.target = "redis:master";
      if (resolve_target(run, master) != a.proxy) return;
      if (!run.master_impairments.insert(key).second) return;
      ++run.helpers_running;
      asio::co_spawn(ex, impaired_master_watch(run, key, sentinels_master(run), run.us(Clock::now())),
                     asio::detached);
      return;
    }
    case Action::remove_toxic:
    case Action::enable:
      run.master_impairments.erase(key);
      return;
    case Action::reset:
      run.master_impairments.clear();
      return;
    default:
      return;
  }
}

template <class Pred>
asio::awaitable<bool> wait_until(Pred pred, Clock::duration limit) {
  const auto until = Clock::now() + limit;
  while (!pred()) {
    if (Clock::now() > until) co_return false;
    co_await sleep_for(10ms);
  }
  co_return true;
}

// Once a restarted component runs again: its new pid, its death no longer expected.
void restarted(Run& run, const std::string& component) {
  if (Proc* p = proc_named(run, component)) {
    p->pid = recorded_pid(run, component);
    p->chaos_down = false;
    p->died_ms.reset();
    ++p->restarts;
  }
}

std::int64_t ms_of(std::int64_t us) {
  return us / 1000;
}

// The new primary, read right after the failover, against every write acknowledged before the old
// primary was lost (or before now, if it was not killed).
void check_after_failover(Run& run) {
  std::string err;
  const std::int64_t cutoff = run.primary_lost_us >= 0 ? run.primary_lost_us : run.us(Clock::now());
  std::optional<std::map<std::string, Row>> rows;
  for (const auto& [name, port] : nodes_of(run.o, "mariadb-"))
    if (mariadb_read_only(port) == false) rows = read_mariadb(port, err);
  if (!rows) {
    run.failover_losses.push_back("after the failover at " + std::to_string(run.ms_now()) +
                                  " ms: cannot read the new primary: " + err);
    return;
  }
  std::size_t lost = 0;
  for (std::uint32_t id = 0; id < run.history.ids().size(); ++id) {
    const std::string& name_id = run.history.ids()[id];
    State stored = kAbsent;
    if (const auto row = rows->find(name_id); row != rows->end()) {
      const auto seq = parse_name(name_id, row->second.name);
      stored = seq ? static_cast<State>(*seq) : kUnparsable;
    }
    const FinalVerdict v = run.history.check_at(id, stored, cutoff);
    if (v.kind == FinalVerdict::lost) {
      ++lost;
      if (run.failover_losses.size() < 10)
        run.failover_losses.push_back("after the failover at " + std::to_string(run.ms_now()) +
                                      " ms: " + v.detail);
    }
  }
  run.failover_checks.push_back("failover at " + std::to_string(run.ms_now()) + " ms (primary lost at " +
                                std::to_string(ms_of(cutoff)) + " ms): " + std::to_string(lost) +
                                " ids miss an acknowledged write");
  run.primary_lost_us = -1;
}

asio::awaitable<void> apply_process_fault(Run& run, const Action& a, ChaosCall& call) {
  call.ok = true;
  switch (a.kind) {
    case Action::kill:
    case Action::stop: {
      const std::string target = resolve_target(run, a);
      if (target.empty()) {
        call.resolved = "(none: no node in that role now; skipped)";
        break;
      }
      call.resolved = target;
      const pid_t pid = recorded_pid(run, target);
      if (pid == 0 || !process_alive(pid)) {
        call.ok = false;
        call.error = target + " does not run (pid " + std::to_string(pid) + ")";
        break;
      }
      run.fault_target = target;
      run.fault_pid = pid;
      run.fault_stopped = a.kind == Action::stop;
      if (a.target == "redis:master") {
        ++run.helpers_running;
        asio::co_spawn(co_await asio::this_coro::executor,
                       master_watch(run, target, sentinels_master(run), run.us(Clock::now())),
                       asio::detached);
      }
      if (a.kind == Action::kill) {
        if (a.target == "mariadb:primary") run.primary_lost_us = run.us(Clock::now());
        if (Proc* p = proc_named(run, target)) p->chaos_down = true;
        ::kill(pid, SIGKILL);
        call.ok = co_await wait_until([pid] { return !process_alive(pid); }, 5s);
      } else {
        ::kill(pid, SIGSTOP);
        call.ok = co_await wait_until([pid] { return process_stopped(pid); }, 5s);
      }
      if (!call.ok)
        call.error = target + " (pid " + std::to_string(pid) + ") did not take the signal within 5 s";
      break;
    }
    case Action::resume:
      if (run.fault_target.empty() || !run.fault_stopped) {
        call.resolved = "(nothing stopped; skipped)";
        break;
      }
      call.resolved = run.fault_target;
      ::kill(run.fault_pid, SIGCONT);
      call.ok = co_await wait_until([&run] { return !process_stopped(run.fault_pid); }, 5s);
      if (!call.ok) call.error = run.fault_target + " is still stopped 5 s after SIGCONT";
      run.fault_target.clear();
      run.fault_stopped = false;
      break;
    case Action::restart: {
      if (run.fault_target.empty() || run.fault_stopped) {
        call.resolved = "(nothing killed; skipped)";
        break;
      }
      call.resolved = run.fault_target;
      std::vector<std::string> restart_args{"restart",
                                            run.fault_target};  // GCC 12: no braced list in co_await
      const int rc = co_await run_dev(run, std::move(restart_args), call.error);
      call.ok = rc == 0;
      if (call.ok) restarted(run, run.fault_target);
      run.fault_target.clear();
      break;
    }
    case Action::failover: {
      call.resolved = "mariadb";
      std::vector<std::string> failover_args{"failover", "mysql"};  // GCC 12: no braced list in co_await
      const int rc = co_await run_dev(run, std::move(failover_args), call.error);
      call.ok = rc == 0;
      if (call.ok) check_after_failover(run);
      break;
    }
    default:
      break;
  }
}

void log_call(Run& run, const Action& a, const ChaosCall& call) {
  if (!run.chaos_log.is_open()) return;
  run.chaos_log << call.at_ms << " ms  " << a.describe();
  if (is_process_fault(a.kind)) {
    run.chaos_log << (call.resolved.empty() ? "" : " -> " + call.resolved) << "  (" << call.took_ms << " ms)"
                  << (call.ok ? "" : "  FAILED: " + call.error) << "\n";
    return;
  }
  run.chaos_log << "  -> " << status_name(call.status)
                << (call.ok ? "" : "  UNEXPECTED (wanted " + std::to_string(a.expect) + "): " + call.error)
                << "\n";
}

asio::awaitable<void> chaos_runner(Run& run, std::vector<Action> plan) {
  const asio::any_io_executor ex = co_await asio::this_coro::executor;
  HttpClient client(ex, run.o.faultproxy);
  for (auto& a : plan) {
    if (a.at + run.lag >= run.duration) break;
    const auto wait = run.start + a.at + run.lag - Clock::now();
    if (wait > 0s) co_await sleep_for(wait);
    if (run.stop) break;
    ChaosCall call;
    call.at_ms = run.ms_now();
    const auto began = Clock::now();
    if (is_process_fault(a.kind)) {
      co_await apply_process_fault(run, a, call);
      // A restart or a failover takes the time it takes: the rest of the plan moves with it.
      run.lag = std::max(run.lag, std::chrono::duration_cast<milliseconds>(Clock::now() - run.start - a.at));
    } else {
      auto res = co_await client.request(a.method, a.path, a.body, 3000ms);
      call.status = res.status;
      call.error = res.status < 0 ? res.error : res.status != static_cast<int>(a.expect) ? res.body : "";
      call.ok = res.status == static_cast<int>(a.expect);
      if (call.ok && run.o.ha) note_master_impairment(run, a, ex);
    }
    call.took_ms = std::chrono::duration_cast<milliseconds>(Clock::now() - began).count();
    log_call(run, a, call);
    call.action = std::move(a);
    run.chaos.push_back(std::move(call));
  }
  --run.helpers_running;
}

// HA, once the load stopped: the process fault under way is undone (SIGCONT, restart; a failover
// first if the MariaDB primary was lost), anything else found dead is started again, and MariaDB
// has a primary.
asio::awaitable<void> make_whole(Run& run) {
  const auto act = [&](Action a) -> asio::awaitable<void> {
    ChaosCall call;
    call.at_ms = run.ms_now();
    const auto began = Clock::now();
    co_await apply_process_fault(run, a, call);
    call.took_ms = std::chrono::duration_cast<milliseconds>(Clock::now() - began).count();
    log_call(run, a, call);
    call.action = std::move(a);
    run.chaos.push_back(std::move(call));
  };
  const auto has_primary = [&] {
    for (const auto& [name, port] : nodes_of(run.o, "mariadb-"))
      if (mariadb_read_only(port) == false) return true;
    return false;
  };
  Action a;
  if (!run.fault_target.empty() && run.fault_stopped) {
    a.kind = Action::resume;
    co_await act(a);
  }
  if (!run.fault_target.empty()) {
    if (run.fault_target.rfind("mariadb-", 0) == 0 && !has_primary()) {
      a.kind = Action::failover;
      co_await act(a);
    }
    a.kind = Action::restart;
    co_await act(a);
  }
  for (auto& p : run.procs) {
    if (process_alive(recorded_pid(run, p.name))) continue;
    ChaosCall call;
    call.at_ms = run.ms_now();
    call.action.kind = Action::restart;
    call.resolved = p.name + " (found dead at the end)";
    std::vector<std::string> start_args{"start", p.name};  // GCC 12: no braced list in co_await
    const int rc = co_await run_dev(run, std::move(start_args), call.error);
    call.ok = rc == 0;
    if (call.ok) restarted(run, p.name);
    log_call(run, call.action, call);
    run.chaos.push_back(std::move(call));
  }
  if (!has_primary()) {
    a.kind = Action::failover;
    co_await act(a);
  }
}

void sample_processes(Run& run) {
  const auto now = run.ms_now();
  for (auto& p : run.procs) {
    if (p.died_ms || p.chaos_down) continue;
    if (!process_alive(p.pid)) {
      p.died_ms = now;
      continue;
    }
    if (const auto kib = rss_kib(p.pid)) p.rss.emplace_back(now, *kib);
  }
}

asio::awaitable<void> sampler(Run& run) {
  const auto baseline_at = run.calm_at + 1000ms;
  bool baseline_taken = false;
  while (run.sampling) {
    sample_processes(run);
    if (!baseline_taken && run.ms_now() >= baseline_at.count()) {
      baseline_taken = true;
      for (auto& p : run.procs)
        if (!p.rss.empty() && !p.died_ms) p.baseline = p.rss.back().second;
    }
    co_await sleep_for(250ms);
  }
  --run.helpers_running;
}

asio::awaitable<void> progress(Run& run) {
  std::uint64_t last = 0;
  while (!run.stop) {
    for (int i = 0; i < 100 && !run.stop; ++i)
      co_await sleep_for(100ms);
    if (run.stop) break;
    std::uint64_t total = 0, ok = 0, nf = 0, unavailable = 0, other = 0;
    for (const auto& [k, n] : run.by_status) {
      total += n;
      if (k.second >= 200 && k.second < 300)
        ok += n;
      else if (k.second == 404)
        nf += n;
      else if (k.second == 503)
        unavailable += n;
      else
        other += n;
    }
    std::printf("  %4" PRId64 " s  %s requests (%s/s)  2xx %s  404 %s  503 %s  other %s  chaos calls %zu\n",
                run.ms_now() / 1000, with_commas(total).c_str(), with_commas((total - last) / 10).c_str(),
                with_commas(ok).c_str(), with_commas(nf).c_str(), with_commas(unavailable).c_str(),
                with_commas(other).c_str(), run.chaos.size());
    std::fflush(stdout);
    last = total;
  }
  --run.helpers_running;
}

// GET /health/ready, parsed: (recovered = every breaker closed, nothing down, repair queue empty).
struct Health {
  bool answered = false, recovered = false, all_up = false;
  std::string text;
};

asio::awaitable<Health> health(HttpClient& client) {
  Health h;
  auto res = co_await client.request("GET", "/health/ready", "", 2000ms);
  if (res.status <= 0) co_return h;
  h.answered = true;
  h.text = res.body;
  const auto v = parse_json(res.body);
  if (!v || !v->is_object()) co_return h;
  const auto* deps = v->as_object().if_contains("dependencies");
  const auto* cache = v->as_object().if_contains("cache");
  if (!deps || !deps->is_object() || !cache || !cache->is_object()) co_return h;
  bool usable = true, up = true;
  for (const auto& [name, d] : deps->as_object()) {
    const auto state = str_field(d, "state");
    if (str_field(d, "breaker") != "closed" || state == "down" || state.empty()) usable = false;
    if (state != "up") up = false;
  }
  const auto* q = cache->as_object().if_contains("repair_queue");
  const bool drained = q && q->is_int64() && q->as_int64() == 0;
  h.recovered = usable && drained;
  h.all_up = up && drained;
  co_return h;
}

// Where /health/ready is asked: the service (small stack), every instance directly (HA).
std::vector<asio::ip::tcp::endpoint> health_targets(const Run& run) {
  if (!run.o.ha) return {run.o.service};
  std::vector<asio::ip::tcp::endpoint> out;
  for (const auto& [name, port] : nodes_of(run.o, "user-service-"))
    out.emplace_back(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port));
  return out;
}

// The stack was just started: wait until every dependency is up, learn the request deadline,
// and start from a faultproxy without faults.
asio::awaitable<bool> preflight(Run& run, std::string& error) {
  HttpClient svc(co_await asio::this_coro::executor, run.o.service);
  HttpClient fp(co_await asio::this_coro::executor, run.o.faultproxy);
  auto reset = co_await fp.request("POST", "/reset", "", 3000ms);
  if (reset.status != 204) {
    error = "faultproxy's POST /reset answered " + status_name(reset.status) + " " + reset.error + reset.body;
    co_return false;
  }
  if (run.o.ha) {
    auto proxies = co_await fp.request("GET", "/proxies", "", 3000ms);
    if (const auto v = parse_json(proxies.body); proxies.status == 200 && v && v->is_object()) {
      for (const auto& [name, proxy] : v->as_object()) {
        const auto* listen = proxy.is_object() ? proxy.as_object().if_contains("listen") : nullptr;
        if (listen && listen->is_string()) run.proxy_at[std::string(listen->as_string())] = std::string(name);
      }
    }
    if (run.proxy_at.empty()) {
      error = "faultproxy's GET /proxies named no proxy: " + status_name(proxies.status) + " " + proxies.body;
      co_return false;
    }
  }
  const auto deadline = Clock::now() + 60s;
  for (const auto& target : health_targets(run)) {
    HttpClient one(co_await asio::this_coro::executor, target);
    Health h;
    while (Clock::now() < deadline) {
      h = co_await health(one);
      if (h.all_up) break;
      co_await sleep_for(100ms);
    }
    if (!h.all_up) {
      error = "user-service did not report every dependency up within 60 s: " + h.text;
      co_return false;
    }
  }
  HttpClient admin(co_await asio::this_coro::executor, run.o.admin);
  auto cfg = co_await admin.request("GET", "/config", "", 2000ms);
  bool learned = false;
  if (const auto v = parse_json(cfg.body); v && v->is_object()) {
    if (const auto* d = v->as_object().if_contains("request_deadline_ms"); d && d->is_int64()) {
      run.request_deadline_ms = d->as_int64();
      learned = true;
    }
  }
  if (!learned) {
    error = "GET /config on the admin listener gave no request_deadline_ms: " + std::to_string(cfg.status) +
            " " + cfg.body;
    co_return false;
  }
  co_return true;
}

std::vector<std::string> proxy_names(const Run& run) {
  if (run.o.ha) return {std::begin(kHaProxies), std::end(kHaProxies)};
  return {std::begin(kProxies), std::end(kProxies)};
}

// The load and the chaos, then every fault cleared and the wait for recovery.
asio::awaitable<void> load_phase(Run& run, std::vector<Action> plan, std::string& setup_error) {
  if (!co_await preflight(run, setup_error)) {
    run.sampling = false;
    co_return;
  }
  auto ex = co_await asio::this_coro::executor;
  run.start = Clock::now();
  run.started_wall = std::chrono::system_clock::now();
  if (run.chaos_log.is_open()) run.chaos_log << "0 ms = " << utc_text(run.started_wall) << "\n";
  std::mt19937_64 seeds(run.o.seed);
  for (int w = 0; w < run.o.writers; ++w) {
    ++run.workers_running;
    asio::co_spawn(ex, writer(run, w, seeds()), asio::detached);
  }
  for (int r = 0; r < run.o.readers; ++r) {
    ++run.workers_running;
    asio::co_spawn(ex, reader(run, seeds()), asio::detached);
  }
  run.helpers_running += 3;
  asio::co_spawn(ex, chaos_runner(run, std::move(plan)), asio::detached);
  asio::co_spawn(ex, sampler(run), asio::detached);
  asio::co_spawn(ex, progress(run), asio::detached);

  co_await sleep_for(run.duration);
  run.stop = true;
  while (run.workers_running > 0 || run.helpers_running > 1)
    co_await sleep_for(10ms);  // the sampler goes on
  if (run.o.ha) co_await make_whole(run);

  // Every fault cleared at once, and checked to be.
  HttpClient fp(ex, run.o.faultproxy);
  ChaosCall clear;
  clear.action.kind = Action::reset;
  clear.action.method = "POST";
  clear.action.path = "/reset";
  clear.action.expect = 204;
  clear.at_ms = run.ms_now();
  const auto cleared_at = Clock::now();
  auto res = co_await fp.request("POST", "/reset", "", 3000ms);
  clear.status = res.status;
  clear.ok = res.status == 204;
  clear.error = res.error + res.body;
  run.chaos.push_back(clear);
  auto proxies = co_await fp.request("GET", "/proxies", "", 3000ms);
  ChaosCall check;
  check.action.kind = Action::reset;
  check.action.method = "GET";
  check.action.path = "/proxies (every proxy enabled, no toxic)";
  check.at_ms = run.ms_now();
  check.status = proxies.status;
  check.ok = false;
  if (const auto v = parse_json(proxies.body); proxies.status == 200 && v && v->is_object()) {
    std::size_t clean = 0;
    for (const std::string& name : proxy_names(run)) {
      const auto* p = v->as_object().if_contains(name);
      if (!p || !p->is_object()) continue;
      const auto* enabled = p->as_object().if_contains("enabled");
      const auto* toxics = p->as_object().if_contains("toxics");
      if (enabled && enabled->is_bool() && enabled->as_bool() && toxics && toxics->is_array() &&
          toxics->as_array().empty())
        ++clean;
    }
    check.ok = clean == proxy_names(run).size();
  }
  if (!check.ok) check.error = proxies.error + proxies.body.substr(0, 300);
  run.chaos.push_back(check);
  if (run.chaos_log.is_open()) {
    run.chaos_log << clear.at_ms << " ms  final reset -> " << status_name(clear.status) << "; proxies "
                  << (check.ok ? "clean" : "NOT clean: " + check.error) << "\n";
  }

  // Recovery: every breaker closed, nothing down, the repair queue drained (on every instance).
  std::vector<std::unique_ptr<HttpClient>> svcs;
  for (const auto& target : health_targets(run))
    svcs.push_back(std::make_unique<HttpClient>(ex, target));
  const auto give_up = cleared_at + run.o.recovery_timeout;
  while (Clock::now() < give_up) {
    bool recovered = true, all_up = true;
    run.last_health.clear();
    for (auto& svc : svcs) {
      const Health h = co_await health(*svc);
      recovered = recovered && h.recovered;
      all_up = all_up && h.all_up;
      if (!h.recovered || !h.all_up) run.last_health += (run.last_health.empty() ? "" : " | ") + h.text;
    }
    const auto since = std::chrono::duration_cast<milliseconds>(Clock::now() - cleared_at).count();
    if (recovered && !run.recovered_ms) run.recovered_ms = since;
    if (all_up && !run.all_up_ms) run.all_up_ms = since;
    if (run.recovered_ms && run.all_up_ms) break;
    co_await sleep_for(50ms);
  }
  run.sampling = false;
  while (run.helpers_running > 0)
    co_await sleep_for(10ms);
}

// After recovery: every id read once through user-service, compared with MariaDB.
asio::awaitable<void> read_back(Run& run, const std::map<std::string, Row>& rows, Invariant& inv) {
  auto ex = co_await asio::this_coro::executor;
  std::size_t next = 0, bad = 0, done_workers = 0, cache = 0, origin = 0;
  const std::size_t workers = 4;
  for (std::size_t w = 0; w < workers; ++w) {
    asio::co_spawn(
        ex,
        [&]() -> asio::awaitable<void> {
          HttpClient client(co_await asio::this_coro::executor, run.o.service);
          while (next < run.history.ids().size()) {
            const std::string& id = run.history.ids()[next++];
            auto res = co_await client.request("GET", "/users/" + id, "", run.o.client_timeout);
            const auto row = rows.find(id);
            std::string problem;
            if (row == rows.end()) {
              if (res.status != 404) problem = "expected 404";
            } else if (res.status != 200) {
              problem = "expected 200";
            } else if (const auto v = parse_json(res.body); !v || str_field(*v, "name") != row->second.name) {
              problem = "name differs from MariaDB's";
            }
            if (res.header("X-Data-Source") == "cache") ++cache;
            if (res.header("X-Data-Source") == "origin") ++origin;
            if (!problem.empty()) {
              ++bad;
              if (inv.examples.size() < 10)
                inv.examples.push_back("GET /users/" + id + " -> " + status_name(res.status) + " " +
                                       res.error + ": " + problem + "; body: " + res.body.substr(0, 200));
            }
          }
          ++done_workers;
        },
        asio::detached);
  }
  while (done_workers < workers)
    co_await sleep_for(5ms);
  inv.ok = bad == 0;
  inv.figures = with_commas(run.history.ids().size()) + " ids read: " + with_commas(cache) + " from cache, " +
                with_commas(origin) + " from origin, " + with_commas(bad) + " wrong";
}

// ------------------------------------------------------------------------------------ checks

std::string ms_text(std::int64_t ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f s", static_cast<double>(ms) / 1000.0);
  return buf;
}

std::string mb_text(double mb) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", mb);
  return buf;
}

std::string percentiles(std::vector<std::int32_t>& v) {
  if (v.empty()) return "-";
  std::sort(v.begin(), v.end());
  const auto at = [&](double q) {
    return static_cast<double>(
               v[std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())))]) /
           1000.0;
  };
  char buf[128];
  std::snprintf(buf, sizeof buf, "p50 %.1f ms  p99 %.1f ms  max %.1f ms", at(0.5), at(0.99),
                static_cast<double>(v.back()) / 1000.0);
  return buf;
}

// Compares the cached values of one Redis node with MariaDB's rows.
std::vector<std::string> cache_disagreements(const std::string& node, const CacheSnapshot& snap,
                                             const std::map<std::string, Row>& rows) {
  std::vector<std::string> out;
  for (const auto& [id, e] : snap.values) {
    const auto row = rows.find(id);
    if (row == rows.end()) {
      out.push_back(node + ": user:" + id + " holds version " + e.version + " but MariaDB has no such user");
    } else if (!e.has_name || !e.has_version || e.name != row->second.name ||
               e.version != std::to_string(row->second.version)) {
      out.push_back(node + ": user:" + id + " holds version " + e.version + ", MariaDB version " +
                    std::to_string(row->second.version) +
                    (e.name != row->second.name ? " (names differ)" : ""));
    }
  }
  return out;
}

// The MariaDB node to judge against: the small stack's, or the HA stack's primary now (-1 if none).
int primary_port(const Run& run, std::string& error) {
  if (!run.o.ha) return run.o.mariadb_port;
  for (const auto& [name, port] : nodes_of(run.o, "mariadb-"))
    if (mariadb_read_only(port) == false) return port;
  error = "no MariaDB node is the primary (@@read_only = 0)";
  return -1;
}

void check_everything(Run& run, const std::string& setup_error) {
  auto& inv = run.invariants;
  if (!setup_error.empty()) {
    inv.push_back({"setup", false, "the fresh stack is ready and faultproxy answers", "", {setup_error}});
    return;
  }
  std::uint64_t total = 0;
  for (const auto& [k, n] : run.by_status)
    total += n;

  {
    Invariant i{"answers", run.bad_answer_count == 0,
                "every answer is allowed for its operation (GET 200/404/503, PUT 200/201/503, DELETE "
                "204/404/503), every 503 carries Retry-After, every body is what its status promises",
                with_commas(total) + " answers, " + with_commas(run.bad_answer_count) + " not allowed",
                run.bad_answers};
    inv.push_back(i);
  }
  inv.push_back({"connections", run.transport_error_count == 0,
                 "no connection to user-service refused, reset or closed without an answer, no request "
                 "unanswered after " +
                     std::to_string(run.o.client_timeout.count() / 1000) + " s",
                 with_commas(run.transport_error_count) + " transport errors", run.transport_errors});

  const ReadReport reads = run.history.check_reads(run.o.stale_bound.count() * 1000, run.no_master);
  {
    Invariant i{
        "values",
        reads.unknown.empty(),
        "every value read is one that was written for that user (no corrupted, truncated, foreign "
        "or future value)",
        with_commas(reads.checked_cache + reads.checked_origin + reads.marked_stale + reads.unknown.size()) +
            " reads answered 200/404, " + with_commas(reads.unknown.size()) + " with an unknown value",
        {}};
    for (std::size_t k = 0; k < reads.unknown.size() && k < 10; ++k)
      i.examples.push_back(reads.unknown[k].detail);
    inv.push_back(i);
  }
  {
    std::size_t late = 0;
    for (const auto* list : {&reads.origin, &reads.cache})
      for (const auto& v : *list)
        late += v.late_unacknowledged ? 1 : 0;
    const std::int64_t bound = run.o.stale_bound.count();
    Invariant i{
        "fresh-reads",
        reads.origin.empty() && reads.cache.empty(),
        bound == 0 ? "no read (from MariaDB, or from the cache unmarked) older than the last write "
                     "acknowledged before it was sent; only X-Cache-Stale answers may be older"
                   : "no read (from MariaDB or a replica, or from the cache unmarked) returns a value "
                     "superseded by a write acknowledged more than " +
                         ms_text(bound) +
                         " before it was sent (the contract across instances); only X-Cache-Stale "
                         "answers may be older",
        with_commas(reads.checked_origin) + " origin reads, " + with_commas(reads.checked_cache) +
            " cache reads, " + with_commas(reads.marked_stale) + " marked stale; older than acknowledged: " +
            with_commas(reads.origin.size()) + " origin, " + with_commas(reads.cache.size()) + " cache (" +
            with_commas(late) + " of them an older 503 write's value)" +
            (bound == 0 ? std::string()
                        : "; " + with_commas(reads.within_tolerance) + " stale within the bound; " +
                              with_commas(reads.excused) +
                              " beyond it but excused (the write they missed was acknowledged while no Redis "
                              "master was reachable, and they were sent within the bound of a master's "
                              "return; largest " +
                              ms_text(reads.max_excused_us / 1000) + ")"),
        {}};
    if (bound > 0) {
      // The largest staleness and what may have caused it: the read, the write it missed, and the
      // chaos around them.
      if (reads.max_staleness_us == 0) {
        i.figures += "\n     largest staleness: none (no unmarked read older than an acknowledged write)";
      } else {
        const Record& r = run.history.records()[reads.max_staleness_read];
        const Record& w = run.history.records()[reads.max_staleness_write];
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.1f ms", static_cast<double>(reads.max_staleness_us) / 1000.0);
        i.figures += "\n     largest staleness: " + std::string(buf) + ": " +
                     run.history.describe(reads.max_staleness_read) + " missed " +
                     run.history.describe(reads.max_staleness_write);
        std::string around;
        for (const auto& c : run.chaos) {
          if (c.at_ms < w.done_us / 1000 - 3000 || c.at_ms > r.done_us / 1000) continue;
          around += (around.empty() ? "" : "; ") + std::to_string(c.at_ms) + " ms " + c.action.describe() +
                    (c.resolved.empty() ? "" : " -> " + c.resolved);
        }
        i.figures +=
            "\n     chaos from 3 s before that write to the read: " + (around.empty() ? "none" : around);
        const auto peek = run.peeks.find(reads.max_staleness_read);
        if (peek != run.peeks.end()) i.figures += "\n     " + peek->second;
        for (const auto& [from, to] : run.no_master) {
          if (w.done_us >= from && w.done_us <= to)
            i.figures += "\n     that write was acknowledged while no Redis master was reachable (" +
                         std::to_string(from / 1000) + " ms to " + std::to_string(to / 1000) + " ms)";
        }
      }
      std::string windows;
      for (const auto& [from, to] : run.no_master)
        windows += (windows.empty() ? "" : ", ") + std::to_string(from / 1000) + "-" +
                   std::to_string(to / 1000) + " ms";
      i.figures +=
          "\n     no Redis master reachable (after a SIGKILL/SIGSTOP of the master, or while a fault on its "
          "proxy kept it from answering within the Redis deadline): " +
          (windows.empty() ? std::string("never") : windows);
    }
    for (std::size_t k = 0; k < reads.origin.size() && i.examples.size() < 6; ++k)
      i.examples.push_back(reads.origin[k].detail);
    for (std::size_t k = 0; k < reads.cache.size() && i.examples.size() < 10; ++k) {
      const auto peek = run.peeks.find(reads.cache[k].read);
      i.examples.push_back(reads.cache[k].detail + (peek == run.peeks.end() ? "" : "; " + peek->second));
    }
    inv.push_back(i);
  }

  // Recovery.
  inv.push_back({"recovery", run.recovered_ms && *run.recovered_ms <= run.o.recovery_bound.count(),
                 "within " + ms_text(run.o.recovery_bound.count()) +
                     " of clearing every fault, every dependency is usable again and the repair queue is "
                     "empty (contract: 1 s; the bound leaves room for a loaded machine)",
                 std::string("usable after ") + (run.recovered_ms ? ms_text(*run.recovered_ms) : "never") +
                     ", every dependency 'up' after " + (run.all_up_ms ? ms_text(*run.all_up_ms) : "never"),
                 run.recovered_ms ? std::vector<std::string>{}
                                  : std::vector<std::string>{"last /health/ready: " + run.last_health}});

  // MariaDB and the cache, after recovery.
  std::string err;
  std::optional<std::map<std::string, Row>> rows;
  {
    Invariant coh{"cache-coherence",
                  false,
                  std::string(run.o.ha ? "after recovery every cached value (every Redis node) agrees with "
                                         "the MariaDB primary's within "
                                       : "after recovery every cached value (master and replica) agrees "
                                         "with MariaDB within ") +
                      ms_text(run.o.coherence_window.count()),
                  "",
                  {}};
    const auto until = Clock::now() + run.o.coherence_window;
    const auto began = Clock::now();
    std::vector<std::string> diffs;
    std::size_t cached = 0, tombstones = 0, polls = 0;
    std::string judged_first = "the master", deposed;
    do {
      if (polls++ > 0) std::this_thread::sleep_for(50ms);
      rows = read_mariadb(primary_port(run, err), err);
      // HA: a master other than the one with most replicas is a deposed master Sentinel has not
      // reconfigured yet (it does once the node is reachable again): no instance uses it; not judged.
      std::vector<std::pair<std::string, int>> judged;
      deposed.clear();
      if (run.o.ha) {
        std::vector<std::optional<RedisRole>> roles;
        std::size_t best = 0;
        std::string master;
        for (const auto& [node, port] : run.cache_nodes) {
          roles.push_back(redis_role(port));
          if (roles.back() && roles.back()->role == "master" &&
              (master.empty() || roles.back()->replicas > best)) {
            master = node;
            best = roles.back()->replicas;
          }
        }
        for (std::size_t n = 0; n < run.cache_nodes.size(); ++n) {
          if (roles[n] && roles[n]->role == "master" && run.cache_nodes[n].first != master)
            deposed += (deposed.empty() ? "" : ", ") + run.cache_nodes[n].first;
          else
            judged.push_back(run.cache_nodes[n]);
        }
      } else {
        judged = run.cache_nodes;
      }
      std::vector<CacheSnapshot> snaps;
      for (const auto& [node, port] : judged) {
        if (!rows) break;
        auto snap = read_redis(port, run.o.key_prefix, err);
        if (!snap) break;
        snaps.push_back(std::move(*snap));
      }
      if (!rows || snaps.size() != judged.size() || snaps.empty()) {
        diffs = {"cannot read the stores: " + err};
        continue;
      }
      diffs.clear();
      for (std::size_t n = 0; n < snaps.size(); ++n) {
        auto more = cache_disagreements(judged[n].first, snaps[n], *rows);
        diffs.insert(diffs.end(), more.begin(), more.end());
      }
      cached = snaps[0].values.size();
      tombstones = snaps[0].tombstones.size();
      if (run.o.ha) judged_first = judged[0].first;
    } while (!diffs.empty() && Clock::now() < until);
    coh.ok = diffs.empty();
    const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - began).count();
    coh.figures = with_commas(cached) + " cached values, " + with_commas(tombstones) + " tombstones on " +
                  judged_first + "; " +
                  (coh.ok ? "agreed after " + ms_text(took) + " (" + std::to_string(polls) + " polls)"
                          : with_commas(diffs.size()) + " disagreements after " + ms_text(took));
    if (!deposed.empty())
      coh.figures += "; not judged: " + deposed + " (a master the Sentinels deposed, not reconfigured yet)";
    for (std::size_t k = 0; k < diffs.size() && k < 10; ++k) {
      // "<node>: user:<id> ...": add what the soak did to that id last.
      std::string text = diffs[k];
      const auto at = text.find("user:");
      const auto end = at == std::string::npos ? at : text.find(' ', at);
      if (end != std::string::npos) {
        const std::string id = text.substr(at + 5, end - at - 5);
        const auto& ids = run.history.ids();
        if (const auto it = std::find(ids.begin(), ids.end(), id); it != ids.end()) {
          if (rows) {
            const auto row = rows->find(id);
            const auto seq = row == rows->end() ? std::nullopt : parse_name(id, row->second.name);
            text += row == rows->end() ? "; MariaDB: absent"
                    : seq              ? "; MariaDB: seq " + std::to_string(*seq)
                                       : "";
          }
          text +=
              "; last writes: " + run.history.last_writes(static_cast<std::uint32_t>(it - ids.begin()), 6);
        }
      }
      coh.examples.push_back(text);
    }
    // Final MariaDB state for the durability check (HA: whichever node is the primary now).
    rows = read_mariadb(primary_port(run, err), err);

    Invariant dur{"durability",
                  false,
                  "every acknowledged write is in MariaDB with the latest acknowledged value (or, after it, "
                  "the value of a later write whose answer was 503 or lost)",
                  "",
                  {}};
    if (!rows) {
      dur.examples.push_back("cannot read MariaDB: " + err);
    } else {
      std::map<FinalVerdict::Kind, std::size_t> kinds;
      for (std::uint32_t id = 0; id < run.history.ids().size(); ++id) {
        const std::string& name_id = run.history.ids()[id];
        State stored = kAbsent;
        if (const auto row = rows->find(name_id); row != rows->end()) {
          const auto seq = parse_name(name_id, row->second.name);
          stored = seq ? static_cast<State>(*seq) : kUnparsable;
        }
        const FinalVerdict v = run.history.check_final(id, stored);
        ++kinds[v.kind];
        if (v.kind != FinalVerdict::ok && v.kind != FinalVerdict::ok_unacknowledged &&
            dur.examples.size() < 10)
          dur.examples.push_back(std::string(verdict_name(v.kind)) + ": " + v.detail);
      }
      std::size_t foreign = 0;
      const std::unordered_set<std::string> known(run.history.ids().begin(), run.history.ids().end());
      for (const auto& [id, row] : *rows) {
        if (!known.contains(id)) {
          ++foreign;
          if (dur.examples.size() < 10) dur.examples.push_back("MariaDB holds a user no writer wrote: " + id);
        }
      }
      const std::size_t bad = kinds[FinalVerdict::late_unacknowledged] + kinds[FinalVerdict::lost] +
                              kinds[FinalVerdict::unknown] + foreign;
      dur.ok = bad == 0 && run.failover_losses.empty();
      dur.figures = with_commas(run.history.applied_writes()) + " acknowledged writes over " +
                    with_commas(run.history.ids().size()) +
                    " ids; final state: " + with_commas(kinds[FinalVerdict::ok]) + " latest acknowledged, " +
                    with_commas(kinds[FinalVerdict::ok_unacknowledged]) + " a later 503 write's, " +
                    with_commas(kinds[FinalVerdict::late_unacknowledged]) +
                    " an earlier 503 write's (lost update), " + with_commas(kinds[FinalVerdict::lost]) +
                    " lost, " + with_commas(kinds[FinalVerdict::unknown]) + " unknown";
      for (const auto& c : run.failover_checks)
        dur.figures += "\n     " + c;
      for (const auto& l : run.failover_losses)
        if (dur.examples.size() < 20) dur.examples.push_back(l);
    }
    inv.push_back(dur);
    inv.push_back(coh);
  }

  // Every id read back through the service.
  {
    Invariant rb{"read-back",
                 false,
                 "after recovery every user reads back (200 or 404, no 503) exactly what MariaDB holds",
                 "",
                 {}};
    if (!rows) {
      rb.examples.push_back("cannot read MariaDB: " + err);
    } else {
      run.io.restart();
      asio::co_spawn(run.io, read_back(run, *rows, rb), asio::detached);
      run.io.run();
    }
    inv.push_back(rb);
  }

  // The processes.
  sample_processes(run);
  {
    Invariant p{"processes",
                true,
                run.o.ha ? "no process exited but those the chaos killed; every SIGKILL/SIGSTOP took effect, "
                           "every restart and failover succeeded, and at the end every process runs"
                         : "user-service and faultproxy never exited",
                "",
                {}};
    for (const auto& pr : run.procs) {
      const bool alive = !pr.died_ms && process_alive(pr.pid);
      if (!alive) {
        p.ok = false;
        p.examples.push_back(pr.name + " (pid " + std::to_string(pr.pid) + ") is gone" +
                             (pr.died_ms ? " since " + ms_text(*pr.died_ms) : std::string()));
      }
      if (run.o.ha) continue;
      p.figures += (p.figures.empty() ? "" : ", ") + pr.name + " pid " + std::to_string(pr.pid) +
                   (alive ? " alive" : " GONE");
    }
    if (run.o.ha) {
      std::map<std::string, std::size_t> n;
      std::size_t failed = 0;
      for (const auto& c : run.chaos) {
        if (!is_process_fault(c.action.kind)) continue;
        const std::string node = c.resolved.substr(0, c.resolved.rfind('-'));  // redis-2 -> redis
        ++n[c.action.kind == Action::kill      ? "SIGKILL " + node
            : c.action.kind == Action::stop    ? "SIGSTOP " + node
            : c.action.kind == Action::resume  ? std::string("SIGCONT")
            : c.action.kind == Action::restart ? std::string("restart")
                                               : std::string("failover")];
        if (!c.ok) {
          ++failed;
          p.ok = false;
          if (p.examples.size() < 10)
            p.examples.push_back(std::to_string(c.at_ms) + " ms " + c.action.describe() + " -> " +
                                 c.resolved + ": " + c.error);
        }
      }
      for (const auto& [what, count] : n)
        p.figures += (p.figures.empty() ? "" : ", ") + std::to_string(count) + " " + what;
      std::size_t alive = 0;
      for (const auto& pr : run.procs)
        alive += !pr.died_ms && process_alive(pr.pid) ? 1 : 0;
      p.figures = "process faults: " + (p.figures.empty() ? std::string("none") : p.figures) + "; " +
                  std::to_string(failed) + " failed; " + std::to_string(alive) + " of " +
                  std::to_string(run.procs.size()) + " processes running at the end";
    }
    if (run.procs.empty()) p.figures = "no pid given: not checked";
    inv.push_back(p);
  }
  {
    Invariant m{"memory",
                true,
                std::string(run.o.ha ? "RSS of the user-service instances, faultproxy and HAProxy"
                                     : "RSS of user-service and faultproxy") +
                    " grew by less than " + std::to_string(static_cast<int>(run.o.rss_growth_limit * 100)) +
                    " % (or " + mb_text(run.o.rss_growth_floor_mb) +
                    " MB, whichever is more) from the warm-up (" + ms_text(run.calm_at.count() + 1000) +
                    ", a calm moment) to the end",
                "",
                {}};
    for (auto& pr : run.procs) {
      if (!pr.memory) continue;
      if (pr.restarts > 0) {
        m.figures += (m.figures.empty() ? "" : "; ") + pr.name + " restarted by the chaos: not compared";
        continue;
      }
      if (!pr.rss.empty()) pr.end = pr.rss.back().second;
      std::uint64_t peak = 0;
      for (const auto& [t, k] : pr.rss)
        peak = std::max(peak, k);
      char buf[256];
      if (!pr.baseline || !pr.end) {
        m.ok = false;
        m.examples.push_back(pr.name + ": no RSS sample " +
                             (pr.baseline ? "at the end" : "after the warm-up"));
        continue;
      }
      const double growth = (static_cast<double>(*pr.end) - static_cast<double>(*pr.baseline)) /
                            static_cast<double>(*pr.baseline);
      std::snprintf(buf, sizeof buf, "%s %.1f MB -> %.1f MB (%+.1f %%, peak %.1f MB)", pr.name.c_str(),
                    static_cast<double>(*pr.baseline) / 1024.0, static_cast<double>(*pr.end) / 1024.0,
                    growth * 100.0, static_cast<double>(peak) / 1024.0);
      m.figures += (m.figures.empty() ? "" : "; ") + std::string(buf);
      // The shape of the curve tells a leak (a steady climb) from a warm-up (a plateau).
      std::string curve;
      for (int k = 0; k <= 10; ++k) {
        const auto& sample =
            pr.rss[std::min(pr.rss.size() - 1, pr.rss.size() * static_cast<std::size_t>(k) / 10)];
        char point[24];
        std::snprintf(point, sizeof point, " %.1f", static_cast<double>(sample.second) / 1024.0);
        curve += point;
      }
      m.figures += "\n     " + pr.name + " RSS (MB) at every tenth of the run:" + curve;
      const double grown_mb = (static_cast<double>(*pr.end) - static_cast<double>(*pr.baseline)) / 1024.0;
      if (growth >= run.o.rss_growth_limit && grown_mb >= run.o.rss_growth_floor_mb) {
        m.ok = false;
        m.examples.push_back(buf);
      }
    }
    if (run.procs.empty()) m.figures = "no pid given: not checked";
    inv.push_back(m);
  }
  {
    Invariant c{"chaos-api",
                true,
                "faultproxy's API answered every chaos call as Toxiproxy would, and after the final reset "
                "every proxy is enabled without toxics",
                "",
                {}};
    std::map<Action::Kind, std::size_t> n;
    std::size_t bad = 0;
    for (const auto& call : run.chaos) {
      if (is_process_fault(call.action.kind)) continue;  // judged by `processes`
      ++n[call.action.kind];
      if (!call.ok) {
        ++bad;
        c.ok = false;
        if (c.examples.size() < 10)
          c.examples.push_back(std::to_string(call.at_ms) + " ms " + call.action.method + " " +
                               call.action.path + " " + call.action.body + " -> " + status_name(call.status) +
                               " (wanted " + std::to_string(call.action.expect) + "): " + call.error);
      }
    }
    c.figures = with_commas(run.chaos.size() -
                            static_cast<std::size_t>(std::count_if(
                                run.chaos.begin(), run.chaos.end(),
                                [](const ChaosCall& k) { return is_process_fault(k.action.kind); }))) +
                " calls: " + std::to_string(n[Action::add_toxic]) + " toxics added, " +
                std::to_string(n[Action::update_toxic]) + " updated, " +
                std::to_string(n[Action::remove_toxic]) + " removed, " + std::to_string(n[Action::disable]) +
                " outages, " + std::to_string(n[Action::enable]) + " recoveries, " +
                std::to_string(n[Action::reset]) + " resets/checks; " + std::to_string(bad) + " unexpected";
    inv.push_back(c);
  }
}

std::string report(Run& run) {
  std::ostringstream out;
  out << "\n==== soak report ====\n";
  out << "seed " << run.o.seed << ", " << run.o.seconds << " s of load "
      << (run.o.chaos ? "and chaos" : "(no chaos)") << " from " << utc_text(run.started_wall) << ", "
      << run.o.writers << " writers, " << run.o.readers << " readers, " << run.history.ids().size()
      << " ids\n";
  out << "replay: " << (run.o.replay.empty() ? "soak ... --seed " + std::to_string(run.o.seed) : run.o.replay)
      << "\n\n";

  std::uint64_t total = 0;
  for (const auto& [k, n] : run.by_status)
    total += n;
  out << "requests: " << with_commas(total) << " ("
      << with_commas(total / static_cast<std::uint64_t>(run.o.seconds)) << "/s)\n";
  for (const Op op : {Op::get, Op::put, Op::del}) {
    std::uint64_t sum = 0;
    std::string line;
    for (const auto& [k, n] : run.by_status) {
      if (k.first != op) continue;
      sum += n;
      line += "  " + status_name(k.second) + ": " + with_commas(n);
    }
    char name[16];
    std::snprintf(name, sizeof name, "%-7s", std::string(op_name(op)).c_str());
    out << "  " << name << with_commas(sum) << "  " << line << "\n";
    out << "          latency " << percentiles(run.latency_us[static_cast<int>(op)]) << "\n";
  }
  out << "  GET 200 by source:";
  for (const auto& [s, n] : run.by_source)
    out << "  " << s << ": " << with_commas(n);
  out << "\n  answers later than the request deadline (" << run.request_deadline_ms
      << " ms) + 100 ms: " << with_commas(run.over_deadline) << "\n\n";

  std::size_t passed = 0, failed = 0;
  for (const auto& i : run.invariants) {
    (i.ok ? passed : failed)++;
    out << (i.ok ? "PASS " : "FAIL ") << i.name << ": " << i.what << "\n";
    if (!i.figures.empty()) out << "     " << i.figures << "\n";
    for (const auto& e : i.examples)
      out << "       - " << e << "\n";
  }
  out << "\nsoak: " << passed << " invariants passed, " << failed << " failed";
  if (failed) {
    out << " (";
    bool first = true;
    for (const auto& i : run.invariants) {
      if (i.ok) continue;
      out << (first ? "" : ", ") << i.name;
      first = false;
    }
    out << ")";
  }
  out << "\nreplay: "
      << (run.o.replay.empty() ? "soak ... --seed " + std::to_string(run.o.seed) : run.o.replay) << "\n";
  return out.str();
}

// The run as JSON for the HTML report: what report() prints, plus the timeline it summarizes.
json::object run_data(const Run& run, const std::string& report_text) {
  std::int64_t end_ms = run.o.seconds * 1000;
  for (const Record& r : run.history.records())
    end_ms = std::max(end_ms, r.done_us / 1000);
  std::vector<AppliedAction> applied;
  for (const ChaosCall& c : run.chaos) {
    applied.push_back(AppliedAction{c.action, c.at_ms, c.resolved, c.ok});
    end_ms = std::max(end_ms, c.at_ms);
  }
  const auto counts = [](const std::map<std::string, std::uint64_t>& m) {
    json::object o;
    for (const auto& [k, n] : m)
      o[k] = n;
    return o;
  };
  json::array seconds;
  for (const Second& s : per_second(run.history.records(), end_ms))
    seconds.push_back(json::object{{"t", s.t},
                                   {"by_status", counts(s.by_status)},
                                   {"by_source", counts(s.by_source)},
                                   {"p50_ms", s.p50_ms},
                                   {"p99_ms", s.p99_ms}});
  json::array faults;
  for (const FaultWindow& w : fault_windows(applied, end_ms))
    faults.push_back(json::object{{"from_ms", w.from_ms},
                                  {"to_ms", w.to_ms},
                                  {"target", w.target},
                                  {"what", w.what},
                                  {"detail", w.detail}});
  json::array invariants;
  for (const Invariant& i : run.invariants) {
    json::array examples;
    for (const auto& e : i.examples)
      examples.push_back(json::string(e));
    invariants.push_back(json::object{
        {"name", i.name}, {"ok", i.ok}, {"what", i.what}, {"figures", i.figures}, {"examples", examples}});
  }
  return json::object{
      {"seed", run.o.seed},
      {"replay", run.o.replay.empty() ? "soak ... --seed " + std::to_string(run.o.seed) : run.o.replay},
      {"started", utc_text(run.started_wall)},
      {"seconds", run.o.seconds},
      {"ha", run.o.ha},
      {"chaos", run.o.chaos},
      {"writers", run.o.writers},
      {"readers", run.o.readers},
      {"ids", run.history.ids().size()},
      {"timeline", seconds},
      {"faults", faults},
      {"invariants", invariants},
      {"report", report_text},
  };
}

}  // namespace
}  // namespace soak

int main(int argc, char** argv) {
  using namespace soak;
  Run run(parse_options(argc, argv));
  const std::size_t n = run.history.ids().size();
  run.acked.assign(n, kAbsent);
  run.in_flight.assign(n, kNoState);
  run.acked_done_us.assign(n, -1);
  run.unknown_since_ack.assign(n, false);
  run.duration = std::chrono::seconds(run.o.seconds);
  // The memory baseline: a calm moment a quarter into the run, but not before 30 s (or half the run):
  // allocators (ASan's above all) keep growing for a while as new kinds of faults come by.
  run.calm_at = std::max<milliseconds>(run.duration / 4, std::min<milliseconds>(30s, run.duration / 2));
  for (const auto& [name, pid] : run.o.pids)
    run.procs.push_back(Proc{name, pid, {}, {}, {}, {}});
  if (run.o.ha) {
    // Every process of the HA stack, by its pid file; memory is judged for those that keep state
    // only in memory by design of this project (not the Redis and MariaDB servers).
    std::error_code ec;
    std::vector<std::string> names;
    for (const auto& f : std::filesystem::directory_iterator(run.o.stack_dir + "/pids", ec))
      if (f.path().extension() == ".pid") names.push_back(f.path().stem().string());
    std::sort(names.begin(), names.end());
    for (const auto& name : names) {
      if (proc_named(run, name)) continue;
      Proc p{name, recorded_pid(run, name), {}, {}, {}, {}};
      p.memory = name == "faultproxy" || name == "haproxy" || name.rfind("user-service", 0) == 0;
      run.procs.push_back(std::move(p));
    }
    run.cache_nodes = nodes_of(run.o, "redis-");
  } else {
    run.cache_nodes = {{"master", run.o.redis_master_port}, {"replica", run.o.redis_replica_port}};
  }
  if (!run.o.chaos_log.empty()) run.chaos_log.open(run.o.chaos_log);

  PlanOptions po;
  po.duration = run.duration;
  po.calm_at = run.calm_at;
  if (run.o.ha) {
    po.proxies.assign(std::begin(kHaProxies), std::end(kHaProxies));
    po.process_faults = true;
    po.instances = static_cast<int>(nodes_of(run.o, "user-service-").size());
  }
  std::vector<Action> plan = run.o.chaos ? make_plan(run.o.seed, po) : std::vector<Action>{};

  const std::string replay =
      run.o.replay.empty() ? "soak ... --seed " + std::to_string(run.o.seed) : run.o.replay;
  std::printf("soak: seed %" PRIu64 ", %" PRId64
              " s, %d writers, %d readers, %zu ids, %zu chaos actions planned\n"
              "soak: replay with: %s\n",
              run.o.seed, run.o.seconds, run.o.writers, run.o.readers, run.history.ids().size(), plan.size(),
              replay.c_str());
  std::fflush(stdout);

  std::string setup_error;
  asio::co_spawn(run.io, load_phase(run, std::move(plan), setup_error), asio::detached);
  run.io.run();
  check_everything(run, setup_error);

  const std::string text = report(run);
  std::fputs(text.c_str(), stdout);
  if (!run.o.report_file.empty()) std::ofstream(run.o.report_file) << text;
  if (!run.o.data_file.empty())
    std::ofstream(run.o.data_file) << json::serialize(run_data(run, text)) << "\n";
  std::size_t failed = 0;
  for (const auto& i : run.invariants)
    failed += i.ok ? 0 : 1;
  if (failed != 0 && !run.o.history_file.empty()) {
    std::ofstream h(run.o.history_file);
    h << "# op\tid\tseq\tstatus\tsent_ms\tdone_ms\tsource\tstale\tshort_circuit\treason\tserved_by\n";
    for (const Record& r : run.history.records()) {
      h << op_name(r.op) << '\t' << run.history.ids()[r.id] << '\t' << r.state << '\t'
        << status_name(r.status) << '\t' << static_cast<double>(r.sent_us) / 1000.0 << '\t'
        << static_cast<double>(r.done_us) / 1000.0 << '\t'
        << (r.source == Source::none ? std::string_view("-") : source_name(r.source)) << '\t' << r.stale
        << '\t' << r.short_circuit << '\t' << run.history.reason_text(r.reason) << '\t'
        << (r.served_by ? run.history.reason_text(r.served_by) : "-") << '\n';
    }
  }
  if (!run.o.summary_file.empty()) {
    std::ofstream s(run.o.summary_file);
    for (const auto& i : run.invariants)
      s << (i.ok ? "pass " : "fail ") << i.name << "\n";
  }
  return failed == 0 ? 0 : 1;
}
