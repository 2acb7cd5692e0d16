// Hostile clients for integration tests of the HTTP servers (user-service, faultproxy's API) and of
// faultproxy's proxied listeners: slowloris, floods of idle connections, huge headers, pipelined
// garbage, half-closed connections; plus the "normal client" that keeps measuring how a server
// answers while it is under attack, and the process-level checks (open descriptors) that show a
// server gave back what an attack took.
//
// Everything here is blocking or poll(2)-based and runs on the test's own threads; connections
// are made to 127.0.0.1 and closed with an RST (SO_LINGER 0), so that thousands of them leave no
// TIME_WAIT behind. Call enter_private_network() first (before starting any server) to run the
// test and the servers it spawns in a network namespace of their own: then 10,000 connections use
// none of the machine's ephemeral ports.
//
// Usage:
//   std::string why;
//   if (!testing_support::hostile::enter_private_network(why)) std::cerr << why;  // host network then
//   ... start the server on port ...
//   hostile::NormalClient normal([&] { return hostile::http(port, "GET", "/health/live"); }, 100ms);
//   hostile::Flood idle(port, 10'000);            // 10,000 connections, left idle
//   auto stats = normal.stop();                   // requests, failures, p50/p99/max latency
//   EXPECT_EQ(stats.failures, 0u) << stats.first_failure;
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace testing_support::hostile {

using Millis = std::chrono::milliseconds;

// Moves this process (and every process it starts afterwards) into a new network namespace with
// only `lo`, up. Returns false with the reason when the system does not allow it; the test then
// runs on the host network.
bool enter_private_network(std::string& why);

// Raises this process's soft RLIMIT_NOFILE to its hard limit (children inherit it); returns it.
std::size_t raise_fd_limit();

// Open file descriptors of a process (entries of /proc/<pid>/fd); 0 if unknown.
std::size_t open_fds(pid_t pid);

// One HTTP/1.1 request on a fresh connection, `Connection: close`, bounded by `timeout`.
struct Reply {
  int status = 0;  // 0: no answer (see error)
  std::string head;
  std::string body;
  Millis elapsed{0};
  std::string error;
};
Reply http(std::uint16_t port, std::string_view method, std::string_view target, std::string_view body = {},
           Millis timeout = Millis(5000));

// Sends raw bytes on a fresh connection, optionally half-closes, and reads until the server closes
// or `timeout` passes. `closed` tells which happened.
struct Exchange {
  std::string received;
  bool closed = false;  // the server closed (EOF or RST) before the timeout
  Millis elapsed{0};
};
Exchange raw(std::uint16_t port, std::string_view bytes, bool half_close, Millis timeout);

// Runs `request` every `interval` on its own thread until stop(); a Reply without status, or with
// a 5xx when `fail_on_5xx`, is a failure.
class NormalClient {
 public:
  struct Stats {
    std::size_t requests = 0;
    std::size_t failures = 0;
    Millis p50{0}, p99{0}, max{0};
    std::string first_failure;
    std::string summary() const;  // "N requests, N failures, p50 X ms, p99 X ms, max X ms"
  };
  NormalClient(std::function<Reply()> request, Millis interval, bool fail_on_5xx = true);
  ~NormalClient();
  NormalClient(const NormalClient&) = delete;
  NormalClient& operator=(const NormalClient&) = delete;
  Stats stop();

 private:
  std::function<Reply()> request_;
  Millis interval_;
  bool fail_on_5xx_;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::vector<Millis> latencies_;
  std::size_t failures_ = 0;
  std::string first_failure_;
  std::thread thread_;
};

// Many connections to 127.0.0.1:port, opened together (non-blocking connects, polled until
// established or `timeout`), closed with an RST when destroyed.
class Flood {
 public:
  Flood(std::uint16_t port, std::size_t count, Millis timeout = Millis(30'000));
  ~Flood();
  Flood(const Flood&) = delete;
  Flood& operator=(const Flood&) = delete;

  std::size_t size() const { return fds_.size(); }
  std::size_t established() const { return established_; }
  // Writes `bytes` on every open connection (best effort, non-blocking).
  void send_all(std::string_view bytes);
  // shutdown(SHUT_WR) on every connection.
  void half_close_all();
  // Waits until every connection was closed by the server (or `timeout`); returns how many were.
  // Data the server sent first is collected per connection in received().
  std::size_t wait_closed_by_server(Millis timeout);
  // Connections the server has closed so far (checked without waiting).
  std::size_t closed_by_server();
  const std::vector<std::string>& received() const { return received_; }

 private:
  void poll_once(int timeout_ms);
  std::vector<int> fds_;
  std::vector<bool> closed_;
  std::vector<std::string> received_;
  std::size_t established_ = 0;
};

// Slowloris: `count` connections each sending `header` one byte every `interval` (never reaching
// the end of the header, which has none), until the server closes them all or `give_up` passes.
struct SlowlorisResult {
  std::size_t connections = 0;
  std::size_t closed = 0;  // closed by the server
  Millis last_close{0};    // since the start
  std::size_t bytes_sent = 0;
  std::string answer_sample;  // what the server sent on one of them, if anything
};
SlowlorisResult slowloris(std::uint16_t port, std::size_t count, Millis interval, Millis give_up,
                          std::string_view header = "GET / HTTP/1.1\r\nHost: x\r\nX-Trickle: ");

}  // namespace testing_support::hostile
