// The data plane: worker threads, and the proxied connections they run.
//
// A fixed set of workers, each an io_context run by one thread (worker 0 is run by the caller,
// which also runs the control plane: API server, listeners). A connection lives on one worker for
// its whole life, so nothing in it is shared between threads; the control plane talks to it only
// by posting to its worker.
//
// A connection is two links (link.h), upstream (client -> upstream server) and downstream (upstream
// server -> client), each copying bytes on its fast path or through its toxics. Half-closes are
// propagated (a FIN from one side becomes a shutdown(SHUT_WR) towards the other); the connection is
// closed when both directions ended, when a toxic ends it (close, or reset with a TCP RST), or on
// an I/O error.
// While `slow_open` toxics act on a new connection, it waits their delay before it connects
// upstream (its client's bytes stay unread in the kernel meanwhile).
//
// Busy polling: after handling I/O, a worker keeps polling its sockets and timers for up to
// `busy_poll` before it sleeps in epoll_wait, yielding the CPU (sched_yield) whenever another thread
// can run. A reply that arrives within that window is read at once, without the wake-up of a
// sleeping thread (an inter-processor interrupt and a context switch; on this project's 2-core VM
// about 10 us of each proxied round trip). An idle proxy costs nothing: the window restarts only
// when there was something to do. 0 turns it off (HAProxy's `busy-polling`, off by default there).
//
// Usage (what main and ProxyCollection do):
//   Workers workers(2, std::chrono::microseconds(50));
//   auto runtime = std::make_shared<ProxyRuntime>(...);      // per started proxy
//   workers.start_connections(accepted_fds, runtime, snapshot, first_index);  // worker 0
//   workers.apply_toxics(runtime->id, new_snapshot);          // after an API change
//   workers.close_connections(runtime->id);                   // proxy disabled / deleted
#pragma once

#include <array>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/metrics.h"
#include "faultproxy/link.h"
#include "faultproxy/pipeline.h"
#include "faultproxy/poller.h"

namespace faultproxy {

// The toxics of one proxy at one moment, per direction, in order. Immutable once published.
struct ToxicSnapshot {
  std::array<std::vector<ToxicSpec>, 2> by_direction;  // stream toxics, indexed by Direction
  // slow_open toxics (by the direction they were added for): a new connection waits the sum of
  // the delays of those acting on it before it connects upstream. Empty for nearly every proxy.
  std::array<std::vector<ToxicSpec>, 2> on_open;
  // Some toxic has a client_cidr: each connection takes its own part (toxics_for_client). False,
  // connections use by_direction as is and never look up their client's address.
  bool client_filtered = false;
};

using SnapshotPtr = std::shared_ptr<const ToxicSnapshot>;

// What the connections of one started proxy share. Created on each start of a proxy (a restart
// after a listen/upstream change is a new runtime), read-only but for its counters.
struct ProxyRuntime {
  std::uint64_t id = 0;
  std::string name, listen, upstream;
  std::string upstream_host, upstream_port;           // split once
  std::optional<tcp::endpoint> upstream_endpoint;     // when the host is an IP literal
  std::uint64_t seed = 0;                             // -seed, mixed with the proxy name
  std::chrono::milliseconds connect_timeout{10'000};  // to reach the upstream
  // Prometheus series (null when proxy metrics are off); index: Direction.
  std::array<LinkCounters, 2> counters{};
  common::metrics::Counter* accepted = nullptr;
  common::metrics::Counter* upstream_failures = nullptr;
  common::metrics::Registry* registry = nullptr;  // for toxic activation counters
  std::atomic<std::int64_t> live{0};              // open connections
};

// Counts, in faultproxy_toxic_activations_total, that a toxic started acting (no-op without proxy
// metrics).
void count_activation(const ProxyRuntime& runtime, const ToxicSpec& spec, Direction direction);

class Connection;

struct Worker {
  asio::io_context context{1};
  Poller poller{context};  // the readiness of its connections' sockets
  BufferPool pool;
  // The worker owns its connections until they close; keyed by proxy runtime id.
  std::unordered_map<std::uint64_t, std::unordered_map<Connection*, std::shared_ptr<Connection>>> connections;
  // Connections closed during the current turn of the loop, freed at the next: events of their
  // sockets the poller took in the same batch may still be handed to them.
  std::vector<std::shared_ptr<Connection>> closed;
  bool reap_posted = false;
  std::thread thread;
};

class Workers {
 public:
  explicit Workers(std::size_t count, std::chrono::microseconds busy_poll = {});
  ~Workers();
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;

  // The control plane's context (worker 0): run by the caller of run_control().
  asio::io_context& control() { return workers_[0]->context; }
  // Worker 0's data sockets' readiness (tests).
  Poller& control_poller() { return workers_[0]->poller; }
  std::size_t size() const { return workers_.size(); }

  // Starts the threads of workers 1..n-1 (worker 0 is run by the caller of run_control()). Every
  // worker thread, the caller included, asks the scheduler for short time slices
  // (common::request_short_slices(), common/scheduling.h).
  void start_threads();
  // Runs worker 0 (the control plane and its share of connections) on the calling thread until
  // stop() or control().stop().
  void run_control();
  // Stops every context and joins the threads.
  void stop();

  // Hands accepted client sockets (non-blocking fds) to the workers, round robin, with one post per
  // worker that gets any; fds[i] is the connection of index first_index + i. Control thread only.
  void start_connections(const std::vector<int>& fds, const std::shared_ptr<ProxyRuntime>& runtime,
                         const SnapshotPtr& snapshot, std::uint64_t first_index);
  void apply_toxics(std::uint64_t runtime_id, SnapshotPtr snapshot);
  void close_connections(std::uint64_t runtime_id);

 private:
  // Runs one worker's context and poller until it is stopped, busy polling as described above.
  void run(Worker& worker) const;

  std::vector<std::unique_ptr<Worker>> workers_;
  std::chrono::microseconds busy_poll_;
  std::size_t next_ = 0;
  std::vector<std::vector<std::pair<int, std::uint64_t>>> batches_;  // start_connections' scratch
};

}  // namespace faultproxy
