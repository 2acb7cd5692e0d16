// clients::redis::Sentinel: finds the current Redis master (and its healthy replicas) through a set
// of Redis Sentinels, and notices a failover within milliseconds.
//
// What it is for: a cache whose master may be replaced by Sentinel at any moment. The component
// keeps a verified view of the topology in the background; the caller reads it (topology()), is told
// when it changes (on_change), and points its clients::redis::Client objects at the new addresses
// (Client::retarget). Nothing here ever sits on a request's path: discovery runs on its own, every
// network step has a deadline, and a caller that suspects the view is stale (a READONLY reply, a lost
// master connection) calls refresh(), which returns at once.
//
// Usage (on the executor's thread):
//   clients::redis::Sentinel sentinel(io.get_executor(),
//       {.sentinels = {*Address::parse("127.0.0.1:26379"), *Address::parse("127.0.0.1:26380")},
//        .master_name = "users", .source_address = "127.0.1.1"});
//   clients::redis::Client master(io.get_executor(), {.name = "master"});  // address set below
//   sentinel.on_change([&](const clients::redis::Topology& t) {
//     if (t.master) master.retarget(t.master->host, t.master->port);
//   });
//   sentinel.start();
//   if (co_await sentinel.wait_master(2s)) master.start();  // start-up only; requests never wait
//   ...
//   if (reply->is_error() && reply->str.starts_with("READONLY")) sentinel.refresh();
//   sentinel.status();                                        // per-sentinel health, counters
//   sentinel.stop();                                          // or just destroy it
//
// How it follows the Sentinel client guidelines (redis.io, "Sentinel client spec"):
// - Discovery round: the sentinels are asked in turn, `SENTINEL get-master-addr-by-name <name>`, each
//   within `query_timeout` (a sentinel whose connection is down is skipped at once); the answer is
//   verified with `ROLE` on the returned address (a fresh connection, same deadline): only an
//   instance that says `master` is adopted. A sentinel that does not know the name, cannot be
//   reached or hands out an address that is not a master is passed over for the next one. The
//   sentinel whose answer was adopted moves to the front of the order, so the next round asks it
//   first. Then the same sentinel is asked `SENTINEL replicas <name>`: a replica is kept if its flags
//   contain none of s_down, o_down, disconnected and its master-link-status is "ok"; its address is
//   the announced ip/port (in our stack, the faultproxy in front of it).
// - Rounds run every `refresh_interval`, and on refresh() (coalesced: one round at a time, one more
//   queued at most, rounds no closer than `refresh_min_gap`). A round that finds no verified master
//   is retried after the `reconnect` backoff (25 ms growing to 500 ms by default), not after a full
//   refresh_interval.
// - Events: each sentinel gets its own pub/sub connection (bound to `source_address`, connect and
//   SUBSCRIBE confirmed within `connect_timeout`, reconnected with backoff, a PING every
//   `refresh_interval` and a connection that stays silent for a whole interval is dropped), subscribed to
//   +switch-master, +sdown, -sdown, +odown, +convert-to-slave and +slave. On +switch-master for our
//   name, the new address is adopted after the same ROLE check (the view changes within one round trip
//   of the first sentinel announcing the failover), then replicas are re-read. The other events
//   trigger a refresh when they are about our master or one of its replicas (not about sentinels).
// - What the view is: topology() is the last *verified* master. A round that cannot verify any answer
//   (every sentinel down, or the master they name not answering ROLE, as between a master's crash and
//   its replacement) keeps the previous view and counts a failure: the caller's own client notices
//   the dead master anyway, and the first verified master replaces it. A later-started verification
//   always wins over an earlier one that finishes after it, so a slow check of the old master cannot
//   undo a failover already adopted.
// - Addresses are numeric IPs only (no DNS on the event loop): a sentinel announcing hostnames is
//   treated as giving a bad answer.
// - Limits: no AUTH (neither to the sentinels nor for the ROLE check) and no TLS; the list of sentinels
//   is the configured one (no `SENTINEL sentinels` refresh); the answer carries no config epoch, so a
//   sentinel cut off from the others that still names the old master, while the old master is
//   reachable and still says `master` (a partition, not a crash), is believed until a later answer
//   or +switch-master replaces it, as with any client following the spec.
// - Threading: like Client, bound to one executor that runs on one thread at a time; every member
//   function must be called there. on_change listeners and wait_master completions are posted, never
//   invoked inside a member function.
// - Lifetime: stop() (or the destructor) closes every connection, cancels every timer and completes
//   every wait_master with false; no listener runs after it. It is safe with operations in flight:
//   the background work holds the internals alive until it has wound down (within one event-loop turn).
#pragma once

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "clients/support.h"

namespace clients::redis {

// A server's address: a numeric IPv4/IPv6 address and a port.
struct Address {
  std::string host{};
  std::uint16_t port = 0;

  // "127.0.0.1:6379", "[::1]:6379".
  std::string to_string() const;
  // Parses "host:port" (IPv6 as "[host]:port"); nullopt unless host is a numeric IP and port 1..65535.
  static std::optional<Address> parse(std::string_view text);

  friend bool operator==(const Address&, const Address&) = default;
  friend auto operator<=>(const Address&, const Address&) = default;
};

struct SentinelSettings {
  std::vector<Address> sentinels{};  // at least one; numeric addresses
  std::string master_name{};         // the name the sentinels monitor the master under
  std::string source_address{};      // local IP every connection is bound to; empty: any

  std::chrono::milliseconds query_timeout{100};      // each sentinel query and each ROLE check
  std::chrono::milliseconds connect_timeout{200};    // persistent sentinel connections (query, pub/sub)
  std::chrono::milliseconds refresh_interval{1000};  // periodic re-discovery; pub/sub keep-alive
  std::chrono::milliseconds refresh_min_gap{50};     // rounds asked for by refresh() no closer than this
  BackoffPolicy reconnect{};  // sentinel connections, and retrying a round that found no master

  // Throws std::invalid_argument naming the bad field.
  void validate() const;
};

// The verified view.
struct Topology {
  std::optional<Address> master{};  // none until a master has been verified
  std::vector<Address> replicas{};  // healthy replicas, sorted; never the master
  std::uint64_t generation = 0;     // +1 on every change of master or replicas; 0: nothing known yet
};

struct SentinelNodeStatus {
  Address address{};
  // Its query connection is up (handshake answered) and no query on that connection has failed
  // (a timed-out query marks it unreachable until it reconnects: a stalled connection is dropped).
  bool reachable = false;
  bool subscribed = false;   // its event subscription is up
  std::string last_error{};  // the latest problem with it (query, bad answer, subscription)
};

// Counts since construction.
struct SentinelCounters {
  std::uint64_t rounds = 0;                // discovery rounds run
  std::uint64_t discoveries = 0;           // of which: a master was verified
  std::uint64_t failed_rounds = 0;         // of which: none was (view kept, retried with backoff)
  std::uint64_t failed_verifications = 0;  // addresses that did not answer ROLE with "master"
  std::uint64_t switch_master_events = 0;  // +switch-master messages for our name, all sentinels
  std::uint64_t master_changes = 0;        // a different master adopted (the first one included)
  std::uint64_t subscription_drops = 0;    // event connections lost or dropped as silent
};

struct SentinelStatus {
  std::vector<SentinelNodeStatus> sentinels{};  // in the configured order
  Topology topology{};
  SentinelCounters counters{};
};

class Sentinel {
 public:
  using executor_type = boost::asio::any_io_executor;
  using Listener = std::function<void(const Topology&)>;
  using MasterHandler = boost::asio::any_completion_handler<void(bool)>;

  // Validates the settings (throws std::invalid_argument); no I/O until start().
  Sentinel(executor_type executor, SentinelSettings settings);
  ~Sentinel();  // stop()
  Sentinel(const Sentinel&) = delete;
  Sentinel& operator=(const Sentinel&) = delete;

  // Starts discovery and the event subscriptions in the background; idempotent.
  void start();
  // Closes everything, completes every wait_master with false; idempotent. No restart.
  void stop();

  executor_type get_executor() const;

  // The last verified view (a reference that stays valid; its content changes between calls).
  const Topology& topology() const;
  // Adds a listener, called (posted, on the executor) with the new view after each change, in
  // order; never after stop().
  void on_change(Listener listener);
  // Asks for a discovery round now: coalesced with one running or queued, never blocks, never fails.
  void refresh();

  // Completes with true as soon as a master is known (at once if it is), after the on_change
  // listeners have seen it; false at the deadline or on stop(). For start-up and tests; requests
  // never wait for discovery. Signature: void(bool).
  template <typename CompletionToken = const boost::asio::use_awaitable_t<>&>
  auto wait_master(Deadline deadline, CompletionToken&& token = boost::asio::use_awaitable) {
    return boost::asio::async_initiate<CompletionToken, void(bool)>(
        [this](auto handler, Deadline d) { start_wait_master(d, MasterHandler(std::move(handler))); }, token,
        deadline);
  }

  // A snapshot for health checks and metrics.
  SentinelStatus status() const;
  const SentinelSettings& settings() const;

  struct Impl;

 private:
  void start_wait_master(Deadline deadline, MasterHandler handler);

  std::shared_ptr<Impl> impl_;
};

}  // namespace clients::redis
