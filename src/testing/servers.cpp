#include "testing/servers.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace testing_support {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

// Connects to 127.0.0.1:port with a receive timeout; -1 on failure.
int connect_loopback(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const sockaddr_in addr = loopback(port);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

template <typename Pred>
bool wait_until(Pred pred, std::chrono::milliseconds timeout) {
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < give_up) {
    if (pred()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return pred();
}

std::string tail_of(const fs::path& log) {
  std::ifstream in(log);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return s.size() > 2000 ? s.substr(s.size() - 2000) : s;
}

// Runs a command line through /bin/sh, returning (exit status, stdout+stderr).
std::pair<int, std::string> run_shell(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return {-1, "popen failed"};
  std::array<char, 4096> buf{};
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0)
    out.append(buf.data(), n);
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') {
      q += "'\\''";
    } else {
      q.push_back(c);
    }
  }
  return q + "'";
}

}  // namespace

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  fs::path root = base != nullptr && *base != '\0' ? fs::path(base) : fs::path("/tmp");
  std::random_device rd;
  for (int attempt = 0; attempt < 100; ++attempt) {
    fs::path candidate =
        root / ("itest-" + std::to_string(::getpid()) + "-" + std::to_string(rd() % 1000000));
    std::error_code ec;
    if (fs::create_directory(candidate, ec)) {
      path_ = candidate;
      return;
    }
  }
  throw std::runtime_error("cannot create a temporary directory under " + root.string());
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

bool wait_stopped(pid_t pid, std::chrono::milliseconds limit) {
  const auto give_up = std::chrono::steady_clock::now() + limit;
  const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
  while (std::chrono::steady_clock::now() < give_up) {
    bool all = true;
    std::error_code ec;
    for (const auto& task : std::filesystem::directory_iterator(tasks, ec)) {
      std::ifstream in(task.path() / "stat");
      std::string line;
      std::getline(in, line);
      const auto close_paren = line.rfind(')');
      if (close_paren == std::string::npos || close_paren + 2 >= line.size()) continue;  // exited
      const char state = line[close_paren + 2];
      if (state != 'T' && state != 't') all = false;
    }
    if (!ec && all) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

std::uint16_t free_port() {
  // Below the kernel's ephemeral range (32768 and up on Debian), where every outgoing connection
  // of a parallel test takes its source port: such a port passes the bind check below and then
  // makes the server's own bind fail. Under the ranges ./dev uses for its stacks (17000 and up).
  constexpr std::uint16_t kLow = 10000, kHigh = 17000;
  thread_local std::mt19937 pick(
      static_cast<unsigned>(::getpid()) * 2654435761u ^
      static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count()));
  std::uniform_int_distribution<int> in_range(kLow, kHigh - 1);
  for (int attempt = 0; attempt < 200; ++attempt) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) break;
    const auto port = static_cast<std::uint16_t>(in_range(pick));
    sockaddr_in addr = loopback(port);
    const bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    if (free) return port;
  }
  // A crowded range: let the kernel choose (ephemeral, as before).
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr = loopback(0);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    throw std::runtime_error("free_port: bind failed");
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

ListeningProcess spawn_listening(std::size_t port_count,
                                 const std::function<std::vector<std::string>(const PortList&)>& argv_for,
                                 const std::filesystem::path& log,
                                 const std::function<bool(const PortList&)>& ready,
                                 std::chrono::milliseconds limit) {
  ListeningProcess s;
  const auto give_up = std::chrono::steady_clock::now() + limit;
  for (int attempt = 1; attempt <= 5; ++attempt) {
    s.ports.clear();
    for (std::size_t i = 0; i < port_count; ++i)
      s.ports.push_back(free_port());
    s.process = Process::spawn(argv_for(s.ports), log);
    while (std::chrono::steady_clock::now() < give_up) {
      // Ready and still running: a server that exited on a taken port must not pass for ready
      // because another one answers there.
      if (ready(s.ports) && s.process.running()) {
        s.ready = true;
        return s;
      }
      if (!s.process.running()) break;
      std::this_thread::sleep_for(20ms);
    }
    if (s.process.running()) return s;  // out of time, not exited: the caller reports it
  }
  return s;
}

RefusingPort::RefusingPort() {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr = loopback(0);
  if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (fd_ >= 0) ::close(fd_);
    throw std::runtime_error("RefusingPort: bind failed");
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
}

RefusingPort::~RefusingPort() {
  if (fd_ >= 0) ::close(fd_);
}

bool port_accepts(std::uint16_t port) {
  const int fd = connect_loopback(port);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

Process Process::spawn(const std::vector<std::string>& argv, const fs::path& log) {
  std::vector<char*> args;
  for (const auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) throw std::runtime_error("cannot open log " + log.string());
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    const int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
    ::setpgid(0, 0);  // its own group: a Ctrl-C on the test does not reach it twice
    ::execvp(args[0], args.data());
    std::fprintf(stderr, "exec %s failed: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  ::close(log_fd);
  Process p;
  p.pid_ = pid;
  return p;
}

Process::~Process() {
  kill_now();
}

Process::Process(Process&& other) noexcept : pid_(other.pid_), wait_status_(other.wait_status_) {
  other.pid_ = -1;
}

Process& Process::operator=(Process&& other) noexcept {
  if (this != &other) {
    kill_now();
    pid_ = other.pid_;
    wait_status_ = other.wait_status_;
    other.pid_ = -1;
  }
  return *this;
}

bool Process::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    pid_ = -1;
    wait_status_ = status;
    return false;
  }
  return true;
}

void Process::stop(std::chrono::milliseconds grace) {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGCONT);  // a paused process cannot act on SIGTERM
  ::kill(pid_, SIGTERM);
  if (!wait_until([this] { return !running(); }, grace)) kill_now();
}

void Process::kill_now() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  wait_status_ = status;
}

void Process::pause() {
  if (pid_ > 0) ::kill(pid_, SIGSTOP);
}

void Process::resume() {
  if (pid_ > 0) ::kill(pid_, SIGCONT);
}

RedisServer RedisServer::start(const fs::path& dir, std::optional<std::uint16_t> replica_of,
                               std::optional<std::uint16_t> port) {
  RedisServer r;
  r.dir_ = dir;
  r.replica_of_ = replica_of;
  fs::create_directories(dir);
  // A free port can be taken by another process before the server binds it: retry on a new one.
  for (int attempt = 1;; ++attempt) {
    r.port_ = port ? *port : free_port();
    try {
      r.restart();
      return r;
    } catch (const std::runtime_error&) {
      if (port || attempt == 5) throw;
    }
  }
}

void RedisServer::restart() {
  process_.stop();
  std::vector<std::string> argv = {"redis-server",
                                   "--port",
                                   std::to_string(port_),
                                   "--bind",
                                   "127.0.0.1",
                                   "--save",
                                   "",
                                   "--appendonly",
                                   "no",
                                   "--dir",
                                   dir_.string(),
                                   "--daemonize",
                                   "no",
                                   "--repl-diskless-sync-delay",
                                   "0",
                                   "--protected-mode",
                                   "no"};
  if (replica_of_) {
    argv.insert(argv.end(), {"--replicaof", "127.0.0.1", std::to_string(*replica_of_)});
  }
  const fs::path log = dir_ / "redis.log";
  process_ = Process::spawn(argv, log);
  // Ready when it answers, and it is ours: another server may hold the port if the bind failed.
  const std::string ours = "process_id:" + std::to_string(process_.pid()) + "\r\n";
  bool died = false;
  const bool up = wait_until(
      [&] {
        if (!process_.running()) return died = true;  // stop waiting: it failed
        try {
          return command("INFO server").find(ours) != std::string::npos;
        } catch (const std::exception&) {
          return false;
        }
      },
      10s);
  if (!up || died) {
    process_.kill_now();
    throw std::runtime_error("redis-server did not start on port " + std::to_string(port_) + ":\n" +
                             tail_of(log));
  }
}

std::string RedisServer::command(const std::string& line) const {
  return redis_command(port_, line);
}

std::string redis_command(std::uint16_t port, const std::string& line) {
  const int fd = connect_loopback(port);
  if (fd < 0) throw std::runtime_error("cannot connect to redis on port " + std::to_string(port));
  const std::string wire = line + "\r\n";
  if (::send(fd, wire.data(), wire.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(wire.size())) {
    ::close(fd);
    throw std::runtime_error("send to redis failed");
  }
  // Read until the reply looks complete: a single line, or a bulk string of the announced length.
  std::string reply;
  char buf[8192];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    reply.append(buf, static_cast<std::size_t>(n));
    const auto eol = reply.find("\r\n");
    if (eol == std::string::npos) continue;
    if (reply[0] == '$') {
      const long len = std::strtol(reply.c_str() + 1, nullptr, 10);
      if (len < 0 || reply.size() >= eol + 2 + static_cast<std::size_t>(len) + 2) break;
    } else if (reply[0] != '*') {
      break;
    } else {
      // Arrays: good enough for tests to wait briefly for the rest.
      timeval tv{0, 50000};
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
  }
  ::close(fd);
  if (reply.empty()) throw std::runtime_error("no reply from redis on port " + std::to_string(port));
  return reply;
}

void RedisServer::wait_replication_up(std::chrono::milliseconds timeout) const {
  const bool up = wait_until(
      [&] {
        try {
          return command("INFO replication").find("master_link_status:up") != std::string::npos;
        } catch (const std::exception&) {
          return false;
        }
      },
      timeout);
  if (!up) throw std::runtime_error("redis replica on port " + std::to_string(port_) + " did not attach");
}

SentinelServer SentinelServer::start(const fs::path& dir, const std::string& master_name,
                                     std::uint16_t master_port, Options options) {
  SentinelServer r;
  r.dir_ = dir;
  r.master_name_ = master_name;
  fs::create_directories(dir);
  // A free port can be taken by another process before the server binds it: retry on a new one.
  for (int attempt = 1;; ++attempt) {
    r.port_ = free_port();
    {
      std::ofstream conf(dir / "sentinel.conf", std::ios::trunc);
      conf << "port " << r.port_ << "\n"
           << "bind 127.0.0.1\n"
           << "protected-mode no\n"
           << "daemonize no\n"
           << "dir " << dir.string() << "\n"
           << "sentinel monitor " << master_name << " 127.0.0.1 " << master_port << " " << options.quorum
           << "\n"
           << "sentinel down-after-milliseconds " << master_name << " " << options.down_after.count() << "\n"
           << "sentinel failover-timeout " << master_name << " " << options.failover_timeout.count() << "\n"
           << "sentinel parallel-syncs " << master_name << " 1\n";
    }
    try {
      r.restart();
      return r;
    } catch (const std::runtime_error&) {
      if (attempt == 5) throw;
    }
  }
}

void SentinelServer::restart() {
  process_.stop();
  const fs::path log = dir_ / "sentinel.log";
  process_ = Process::spawn({"redis-server", (dir_ / "sentinel.conf").string(), "--sentinel"}, log);
  const std::string ours = "process_id:" + std::to_string(process_.pid()) + "\r\n";
  bool died = false;
  const bool up = wait_until(
      [&] {
        if (!process_.running()) return died = true;
        try {
          return command("INFO server").find(ours) != std::string::npos;
        } catch (const std::exception&) {
          return false;
        }
      },
      10s);
  if (!up || died) {
    process_.kill_now();
    throw std::runtime_error("redis sentinel did not start on port " + std::to_string(port_) + ":\n" +
                             tail_of(log));
  }
}

void SentinelServer::wait_monitoring(int replicas, int sentinels, std::chrono::milliseconds timeout) const {
  // INFO sentinel: "master0:name=users,status=ok,address=127.0.0.1:6379,slaves=2,sentinels=3".
  const std::string name = "name=" + master_name_ + ",";
  auto field = [](const std::string& line, const std::string& key) {
    const auto at = line.find("," + key + "=");
    return at == std::string::npos ? -1 : std::atoi(line.c_str() + at + key.size() + 2);
  };
  std::string last;
  const bool ok = wait_until(
      [&] {
        try {
          last = command("INFO sentinel");
        } catch (const std::exception&) {
          return false;
        }
        const auto at = last.find(name);
        if (at == std::string::npos) return false;
        const std::string line = last.substr(at, last.find("\r\n", at) - at);
        return line.find("status=ok") != std::string::npos && field(line, "slaves") >= replicas &&
               field(line, "sentinels") >= sentinels;
      },
      timeout);
  if (!ok)
    throw std::runtime_error("sentinel on port " + std::to_string(port_) + " does not see " +
                             std::to_string(replicas) + " replica(s) and " + std::to_string(sentinels) +
                             " sentinel(s):\n" + last);
}

MariaDbServer MariaDbServer::start(const fs::path& dir, std::optional<std::uint16_t> port,
                                   MariaDbOptions options) {
  MariaDbServer m;
  m.dir_ = dir;
  m.options_ = std::move(options);
  fs::create_directories(dir);
  // A private tmpdir: the bootstrap's temporary tables in a shared /tmp were seen vanishing while
  // other MariaDB instances ran on the machine ("Error on delete of '/tmp/#sql-temptable-...'").
  fs::create_directories(dir / "tmp");
  const bool fresh = !fs::exists(dir / "data" / "mysql");
  if (fresh) {
    const std::string cmd =
        "mariadb-install-db --no-defaults --user=root --datadir=" + shell_quote((dir / "data").string()) +
        " --tmpdir=" + shell_quote((dir / "tmp").string()) +
        " --auth-root-authentication-method=normal --skip-test-db"
        " --innodb-log-file-size=8M --innodb-buffer-pool-size=32M";
    auto [rc, out] = run_shell(cmd);
    if (rc != 0) throw std::runtime_error("mariadb-install-db failed:\n" + out);
  }
  // A free port can be taken by another process before the server binds it: retry on a new one.
  for (int attempt = 1;; ++attempt) {
    m.port_ = port ? *port : free_port();
    try {
      m.launch();
      break;
    } catch (const std::runtime_error&) {
      if (port || attempt == 5) throw;
    }
  }
  // The installer lets root in from localhost only; clients bound to another loopback source
  // (ConnectSettings::source_address, e.g. 127.0.1.7) would be refused (error 1130). Not written to
  // the binlog: a replica's own local GTIDs would break GTID strict mode when it replicates.
  if (fresh)
    m.sql(
        "SET SESSION sql_log_bin = 0; CREATE USER IF NOT EXISTS 'root'@'127.%';"
        " GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.%' WITH GRANT OPTION;");
  return m;
}

void MariaDbServer::launch() {
  const fs::path log = dir_ / "error.log";
  std::vector<std::string> argv = {"mariadbd",
                                   "--no-defaults",
                                   "--user=root",
                                   "--datadir=" + (dir_ / "data").string(),
                                   "--tmpdir=" + (dir_ / "tmp").string(),
                                   "--bind-address=127.0.0.1",
                                   "--port=" + std::to_string(port_),
                                   "--socket=" + (dir_ / "mysqld.sock").string(),
                                   "--pid-file=" + (dir_ / "mysqld.pid").string(),
                                   "--log-error=" + log.string(),
                                   "--skip-name-resolve",
                                   "--innodb-log-file-size=8M",
                                   "--innodb-buffer-pool-size=32M",
                                   "--max-connections=500"};
  if (options_.server_id > 0) {
    argv.insert(argv.end(), {"--server-id=" + std::to_string(options_.server_id), "--log-bin=mysql-bin",
                             "--relay-log=relay-bin", "--binlog-format=ROW", "--binlog-row-image=FULL",
                             "--gtid-strict-mode=1", "--log-slave-updates=1", "--sync-binlog=1",
                             "--innodb-flush-log-at-trx-commit=1"});
  }
  if (options_.read_only) argv.emplace_back("--read-only=1");
  argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());
  process_ = Process::spawn(argv, dir_ / "stdout.log");
  const std::string ping = "mariadb-admin --no-defaults --protocol=TCP -h127.0.0.1 -P" +
                           std::to_string(port_) + " -uroot --connect-timeout=2 ping";
  const std::string datadir = (dir_ / "data").string();
  bool died = false;
  const bool up = wait_until(
      [&] {
        if (!process_.running()) return died = true;  // stop waiting: it failed
        if (run_shell(ping).first != 0) return false;
        try {
          return sql("SELECT @@datadir").find(datadir) != std::string::npos;  // ours, not another server
        } catch (const std::runtime_error&) {
          return false;
        }
      },
      30s);
  if (!up || died) {
    process_.kill_now();
    throw std::runtime_error("mariadbd did not start on port " + std::to_string(port_) + ":\n" +
                             tail_of(log));
  }
}

void MariaDbServer::restart() {
  process_.stop();
  launch();
}

std::string MariaDbServer::gtid_binlog_pos() const {
  std::string out = sql("SELECT @@GLOBAL.gtid_binlog_pos");
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r'))
    out.pop_back();
  return out;
}

void MariaDbServer::replicate_from(std::uint16_t primary_port, std::chrono::milliseconds timeout) const {
  sql("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=" + std::to_string(primary_port) +
      ", MASTER_USER='root', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1; START SLAVE;");
  std::string last;
  const bool up = wait_until(
      [&] {
        try {
          last = sql("SHOW STATUS LIKE 'Slave_running'");
          return last.find("ON") != std::string::npos;
        } catch (const std::runtime_error& e) {
          last = e.what();
          return false;
        }
      },
      timeout);
  if (!up)
    throw std::runtime_error("replica on port " + std::to_string(port_) +
                             " did not start replicating: " + last + "\n" + tail_of(dir_ / "error.log"));
}

void MariaDbServer::wait_gtid(const std::string& gtid_position, std::chrono::milliseconds timeout) const {
  const std::string seconds = std::to_string(static_cast<double>(timeout.count()) / 1000.0);
  const std::string out = sql("SELECT MASTER_GTID_WAIT('" + gtid_position + "', " + seconds + ")");
  if (out.rfind("0", 0) != 0)
    throw std::runtime_error("replica on port " + std::to_string(port_) + " did not apply " + gtid_position);
}

void MariaDbServer::wait_received(const std::string& gtid_position, std::chrono::milliseconds timeout) const {
  // "D-S-N": the domain's sequence number decides (a single-domain position, as the tests use).
  const auto seq_of = [](const std::string& pos, const std::string& domain) -> long long {
    for (std::size_t at = 0; at < pos.size();) {
      const auto end = std::min(pos.find(',', at), pos.size());
      const std::string item = pos.substr(at, end - at);
      const auto first = item.find('-'), last = item.rfind('-');
      if (first != std::string::npos && last != first && item.substr(0, first) == domain)
        return std::stoll(item.substr(last + 1));
      at = end + 1;
    }
    return -1;
  };
  const std::string domain = gtid_position.substr(0, gtid_position.find('-'));
  const long long want = seq_of(gtid_position, domain);
  const auto until = std::chrono::steady_clock::now() + timeout;
  std::string received;
  while (std::chrono::steady_clock::now() < until) {
    const std::string status = sql("SHOW SLAVE STATUS\\G", /*column_names=*/true);
    const auto at = status.find("Gtid_IO_Pos:");
    if (at != std::string::npos) {
      const auto begin = status.find_first_not_of(' ', at + 12);
      received = status.substr(begin, status.find('\n', begin) - begin);
      if (seq_of(received, domain) >= want) return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  throw std::runtime_error("replica on port " + std::to_string(port_) + " did not receive " + gtid_position +
                           " (received '" + received + "')");
}

std::string MariaDbServer::sql(const std::string& statements, bool column_names) const {
  // One file per call: tests may run statements from several threads at once.
  static std::atomic<unsigned> calls{0};
  const fs::path script =
      dir_ / ("query-" + std::to_string(::getpid()) + "-" + std::to_string(calls++) + ".sql");
  {
    std::ofstream out(script);
    out << statements << "\n";
  }
  auto [rc, out] = run_shell("mariadb --no-defaults --protocol=TCP -h127.0.0.1 -P" + std::to_string(port_) +
                             " -uroot --batch " + (column_names ? "" : "--skip-column-names ") +
                             "--connect-timeout=5 < " + shell_quote(script.string()));
  std::error_code ec;
  fs::remove(script, ec);
  if (rc != 0) throw std::runtime_error("SQL failed: " + out);
  return out;
}

}  // namespace testing_support
