// Real dependency servers for integration tests: Redis (master, replica) and MariaDB, each a child
// process on 127.0.0.1 with a free port and its state in a temporary folder that is removed on
// destruction. Tests can stop, restart, pause (SIGSTOP: the server still accepts TCP connections but
// never answers, like a blackhole) and resume them to produce dependency failures without mocks.
//
// Usage:
//   testing_support::TempDir dir;
//   auto master = testing_support::RedisServer::start(dir.path() / "m");
//   auto replica = testing_support::RedisServer::start(dir.path() / "r", master.port());
//   replica.wait_replication_up();
//   auto db = testing_support::MariaDbServer::start(dir.path() / "db");
//   db.sql("CREATE DATABASE users");        // runs the mariadb client over TCP
//   master.pause(); ...; master.resume();
//
//   // Sentinels watching `master` as "users" (quorum 2): a failover ~2-3 s after the master dies.
//   auto s1 = testing_support::SentinelServer::start(dir.path() / "s1", "users", master.port());
//   s1.wait_monitoring(/*replicas=*/1, /*sentinels=*/3);   // once all three know each other
//   s1.command("SENTINEL get-master-addr-by-name users");
//   // MariaDB with the binary log (ROW, GTID), and a GTID replica of it:
//   using testing_support::MariaDbServer;
//   auto primary_db = MariaDbServer::start(dir.path() / "p", {}, {.server_id = 1});
//   auto replica_db = MariaDbServer::start(dir.path() / "r", {}, {.server_id = 2, .read_only = true});
//   replica_db.replicate_from(primary_db.port());
//   primary_db.sql("INSERT ...");
//   replica_db.wait_gtid(primary_db.gtid_binlog_pos());   // applied on the replica
//   // Semi-synchronous replication through extra_args: on the primary
//   // "--rpl-semi-sync-master-enabled=1", "--rpl-semi-sync-master-wait-point=AFTER_SYNC",
//   // "--rpl-semi-sync-master-timeout=250"; on the replica "--rpl-semi-sync-slave-enabled=1" (never
//   // master-enabled on a replica: see shared/reference/local-servers.md).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace testing_support {

// A fresh folder under $TMPDIR (or /tmp), removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A port on 127.0.0.1 that nothing held a moment ago: a random one from 10000-16999 (outside the
// ephemeral range, so no outgoing connection takes it) that binds. Another test can still take it
// before its use: spawn_listening() retries a server on new ports when that happens.
std::uint16_t free_port();

// A port on 127.0.0.1 that refuses connections for as long as this object lives: a socket bound to
// it and never listening holds it, so no other process (a parallel test's server) can take it, as
// one from free_port() could between the pick and its use.
//   RefusingPort nothing;  settings.port = nothing.port();   // every connect: ECONNREFUSED
class RefusingPort {
 public:
  RefusingPort();
  ~RefusingPort();
  RefusingPort(const RefusingPort&) = delete;
  RefusingPort& operator=(const RefusingPort&) = delete;
  std::uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

// True once a TCP connect to 127.0.0.1:port succeeds.
bool port_accepts(std::uint16_t port);

// SIGSTOP is delivered asynchronously: a multi-threaded server may still answer a request right
// after kill(2) returned. Waits until every thread of `pid` is stopped (state T in /proc); false
// if that did not happen within `limit`.
bool wait_stopped(pid_t pid, std::chrono::milliseconds limit);

// A child process; killed (SIGKILL) on destruction if still running.
class Process {
 public:
  Process() = default;
  // Starts argv[0] (looked up in PATH) with stdout and stderr appended to `log`.
  static Process spawn(const std::vector<std::string>& argv, const std::filesystem::path& log);
  ~Process();
  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;

  pid_t pid() const { return pid_; }
  bool running();
  // How it ended (a waitpid status), once reaped by running(), stop() or kill_now().
  std::optional<int> wait_status() const { return wait_status_; }
  // SIGTERM, then SIGKILL if still running after `grace`; reaps the child.
  void stop(std::chrono::milliseconds grace = std::chrono::seconds(5));
  void kill_now();
  void pause();   // SIGSTOP
  void resume();  // SIGCONT

 private:
  pid_t pid_ = -1;
  std::optional<int> wait_status_;
};

// A server started on ports from free_port(), retried on new ports when it exits before it is
// ready (a port taken by another test between the pick and the server's bind):
//   auto s = spawn_listening(2, [](auto& p) { return argv_for(p[0], p[1]); }, log,
//                            [](auto& p) { return answers(p[0]); });
//   ASSERT_TRUE(s.ready) << ...;
struct ListeningProcess {
  Process process;
  std::vector<std::uint16_t> ports;
  bool ready = false;  // false: still not ready after `limit` (or every attempt exited)
};
using PortList = std::vector<std::uint16_t>;
ListeningProcess spawn_listening(std::size_t port_count,
                                 const std::function<std::vector<std::string>(const PortList&)>& argv_for,
                                 const std::filesystem::path& log,
                                 const std::function<bool(const PortList&)>& ready,
                                 std::chrono::milliseconds limit = std::chrono::seconds(20));

class RedisServer {
 public:
  // Starts redis-server on a free port (or `port` if given), no persistence. With `replica_of`,
  // it replicates from 127.0.0.1:replica_of. Waits until it answers PING.
  static RedisServer start(const std::filesystem::path& dir, std::optional<std::uint16_t> replica_of = {},
                           std::optional<std::uint16_t> port = {});

  std::uint16_t port() const { return port_; }
  // Sends one command (inline protocol) and returns the raw reply; throws on connection errors.
  std::string command(const std::string& line) const;
  void wait_replication_up(std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;

  void stop() { process_.stop(); }
  void kill() { process_.kill_now(); }  // SIGKILL: a crash
  // Starts again on the same port with the same settings (data is not kept).
  void restart();
  void pause() { process_.pause(); }
  void resume() { process_.resume(); }
  pid_t pid() const { return process_.pid(); }

 private:
  std::filesystem::path dir_;
  std::optional<std::uint16_t> replica_of_;
  std::uint16_t port_ = 0;
  Process process_;
};

// Sends one command (inline protocol) to 127.0.0.1:port and returns the raw reply; throws on
// connection errors. What RedisServer::command and SentinelServer::command use.
std::string redis_command(std::uint16_t port, const std::string& line);

// A Redis Sentinel (`redis-server <conf> --sentinel`) on a free port, monitoring one master at
// 127.0.0.1:master_port under `master_name`. Its configuration file is fresh and writable in `dir`
// (Sentinel rewrites it: its id, the replicas and sentinels it learns, the epoch), so a restart keeps
// what it knew, like a real deployment.
class SentinelServer {
 public:
  struct Options {
    int quorum = 2;
    std::chrono::milliseconds down_after{1000};        // down-after-milliseconds
    std::chrono::milliseconds failover_timeout{3000};  // failover-timeout
  };
  static SentinelServer start(const std::filesystem::path& dir, const std::string& master_name,
                              std::uint16_t master_port, Options options);
  static SentinelServer start(const std::filesystem::path& dir, const std::string& master_name,
                              std::uint16_t master_port) {
    return start(dir, master_name, master_port, Options{});
  }

  std::uint16_t port() const { return port_; }
  std::string command(const std::string& line) const { return redis_command(port_, line); }
  // Waits until this sentinel sees the master with at least `replicas` replicas and `sentinels`
  // sentinels (itself included), as INFO sentinel reports; throws after `timeout`.
  void wait_monitoring(int replicas, int sentinels,
                       std::chrono::milliseconds timeout = std::chrono::seconds(15)) const;

  void stop() { process_.stop(); }
  void kill() { process_.kill_now(); }
  // Starts again on the same port from its (rewritten) configuration file.
  void restart();
  void pause() { process_.pause(); }
  void resume() { process_.resume(); }
  pid_t pid() const { return process_.pid(); }

 private:
  std::filesystem::path dir_;
  std::string master_name_;
  std::uint16_t port_ = 0;
  Process process_;
};

struct MariaDbOptions {
  // > 0: the binary log is on, as a replicated MariaDB runs it: this server id, log-bin,
  // binlog_format=ROW, binlog_row_image=FULL, gtid_strict_mode, log_slave_updates, sync_binlog=1,
  // innodb_flush_log_at_trx_commit=1. 0: no binary log (the default).
  std::uint32_t server_id = 0;
  bool read_only = false;                 // started --read-only=1 (a replica)
  std::vector<std::string> extra_args{};  // more mariadbd options, e.g. "--binlog-row-metadata=FULL"
};

class MariaDbServer {
 public:
  // Initialises a datadir (once per dir) and starts mariadbd on a free port (or `port`), TCP on
  // 127.0.0.1, root without password, from any 127.x.y.z source address. Waits until it accepts
  // queries.
  static MariaDbServer start(const std::filesystem::path& dir, std::optional<std::uint16_t> port = {},
                             MariaDbOptions options = {});

  std::uint16_t port() const { return port_; }
  // Runs SQL through the mariadb command-line client; returns its tab-separated output (no header).
  // Throws std::runtime_error with the client's error output if it fails.
  // `column_names`: with the header (to read one field of a vertical `\G` listing by its name).
  std::string sql(const std::string& statements, bool column_names = false) const;

  // With the binary log: @@gtid_binlog_pos, e.g. "0-1-42" ("" before the first transaction).
  std::string gtid_binlog_pos() const;
  // Makes this server a GTID replica of 127.0.0.1:primary_port (CHANGE MASTER ... MASTER_USE_GTID=
  // slave_pos, START SLAVE) and waits until both replication threads run.
  void replicate_from(std::uint16_t primary_port,
                      std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
  // Waits until this replica has applied `gtid_position` (MASTER_GTID_WAIT); throws on timeout.
  void wait_gtid(const std::string& gtid_position,
                 std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
  // Waits until this replica has received (not necessarily applied) `gtid_position`, one domain
  // "D-S-N" (SHOW SLAVE STATUS's Gtid_IO_Pos): what semi-synchronous replication guarantees when a
  // write is acknowledged. Throws on timeout.
  void wait_received(const std::string& gtid_position,
                     std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;

  void stop() { process_.stop(); }
  void kill() { process_.kill_now(); }  // SIGKILL: a crash (committed transactions survive)
  void restart();                       // same datadir, port and options: data is kept
  void pause() { process_.pause(); }
  void resume() { process_.resume(); }
  pid_t pid() const { return process_.pid(); }

 private:
  void launch();
  std::filesystem::path dir_;
  std::uint16_t port_ = 0;
  MariaDbOptions options_;
  Process process_;
};

}  // namespace testing_support
