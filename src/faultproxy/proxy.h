// The control plane: the named proxies, their listeners and toxics, with Toxiproxy 2.12's
// semantics for every operation the HTTP API offers. Everything here runs on the control thread
// (worker 0); connections are reached only through Workers.
//
// Errors carry Toxiproxy's status codes and messages (ApiError). Where Toxiproxy leaves things half
// done we do better: a failed create, update or populate changes nothing.
//
// Ours besides: time-bounded toxics (start_after_ms, duration_ms: a control-thread timer per toxic
// publishes its start and removes it at its end) and `refuse` (the listener stops accepting while
// one acts; clients wait in the kernel's backlog).
//
// Usage:
//   ProxyCollection proxies(workers, {.seed = 42});
//   if (auto err = proxies.create({"redis", "127.0.0.1:0", "127.0.0.1:6379"}, true)) ...err->message...
//   proxies.add_toxic("redis", def);        // def validated by the API layer
//   proxies.reset();
#pragma once

#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/metrics.h"
#include "faultproxy/dataplane.h"

namespace faultproxy {

struct ApiError {
  int status = 500;
  std::string message;
};

// A toxic's `client_cidr` (our extension): as sent (echoed verbatim), and parsed. Empty: every client.
struct ClientFilter {
  std::string text;
  std::optional<Cidr> cidr;
};

struct ToxicDef {
  std::uint64_t id = 0;
  std::uint64_t version = 0;
  std::string name;
  ToxicType type = ToxicType::noop;
  std::string stream = "downstream";  // as sent: "UPSTREAM" is accepted and echoed as such
  Direction direction = Direction::downstream;
  float toxicity = 1.0f;
  Attributes attributes{};
  ClientFilter client{};
  // Our extension (time-bounded toxics): the toxic takes effect start_after_ms after it was added
  // and removes itself duration_ms after that (0: it stays). Set by the control plane: added_at.
  std::int64_t start_after_ms = 0, duration_ms = 0;
  TimePoint added_at{};
  std::shared_ptr<SharedSchedule> schedule{};  // bandwidth: the proxy-wide schedule for per_proxy

  TimePoint starts_at() const;
  TimePoint ends_at() const;  // kNever when it stays
  // Its start_after_ms has passed by `now`.
  bool in_effect(TimePoint now) const;
  // Protocol toxics: their attributes compiled (protocol_toxics.h), shared by every connection.
  std::shared_ptr<const ToxicSettings> protocol{};
};

struct ProxyConfig {
  std::string name, listen, upstream;
};

// A listening proxy: what its accept loop needs, shared with the loop's pending handler.
struct Listener {
  explicit Listener(asio::io_context& ctx) : acceptor(ctx) {}
  tcp::acceptor acceptor;
  std::shared_ptr<ProxyRuntime> runtime;
  SnapshotPtr snapshot;
  std::uint64_t next_index = 0;
  bool open = true;
  bool waiting = false;   // an async_wait for the next connection is pending
  bool refusing = false;  // a `refuse` toxic acts: nothing is accepted, clients wait in the backlog
};

struct Proxy {
  std::string name, listen, upstream;
  bool enabled = false;
  std::vector<ToxicDef> toxics;  // in insertion order
  std::shared_ptr<Listener> listener;

  // Toxics as the API lists them: upstream ones first, then downstream, each in insertion order.
  std::vector<const ToxicDef*> ordered_toxics() const;
  const ToxicDef* find_toxic(std::string_view toxic_name) const;
};

// A listen address resolved and bound, or the Go-style error saying why not.
struct BoundListener {
  std::shared_ptr<Listener> listener;
  std::string address;  // as bound: "127.0.0.1:43121"
};

class ProxyCollection {
 public:
  struct Settings {
    std::uint64_t seed = 0;
    common::metrics::Registry* proxy_metrics = nullptr;  // null: proxy metrics off
    std::chrono::milliseconds connect_timeout{10'000};
  };
  ProxyCollection(Workers& workers, Settings settings);
  ~ProxyCollection();

  const std::map<std::string, std::unique_ptr<Proxy>, std::less<>>& proxies() const { return proxies_; }
  const Proxy* find(std::string_view name) const;

  // POST /proxies. Listen must be bindable when enabled; nothing is created on error.
  std::optional<ApiError> create(const ProxyConfig& config, bool enabled);
  // PATCH /proxies/{name}: fields left empty keep their values. On error nothing changes.
  std::optional<ApiError> update(std::string_view name, const std::optional<std::string>& listen,
                                 const std::optional<std::string>& upstream, std::optional<bool> enabled);
  std::optional<ApiError> remove(std::string_view name);

  struct PopulateEntry {
    ProxyConfig config;
    bool enabled = true;
    std::optional<std::vector<ToxicDef>> toxics;  // our extension; absent: Toxiproxy's behaviour
  };
  // POST /populate and -config: all or nothing. Returns the resulting proxies' names in order.
  std::optional<ApiError> populate(std::vector<PopulateEntry> entries, std::vector<std::string>& names);

  std::optional<ApiError> add_toxic(std::string_view proxy, ToxicDef def);
  // The toxic named `updated.name` takes updated's toxicity, attributes (and a protocol toxic's
  // compiled ones), client filter and timing (validated and merged by the API layer); its identity, stream
  // and add time stay.
  std::optional<ApiError> update_toxic(std::string_view proxy, const ToxicDef& updated);
  std::optional<ApiError> remove_toxic(std::string_view proxy, std::string_view toxic);
  // POST /reset: every proxy enabled, every toxic removed; live connections survive.
  std::optional<ApiError> reset();

  // Stops every listener and closes every connection (shutdown).
  void stop_all();

  // Resolves and binds `listen` as Go's net.Listen would, with Go's error texts. `listen_prefix`
  // selects the wording of address errors ("listen tcp: address ..." on create, "address ..." on
  // update, as Toxiproxy 2.12 answers).
  std::variant<BoundListener, ApiError> bind(const std::string& listen, bool listen_prefix);

 private:
  std::shared_ptr<ProxyRuntime> make_runtime(const Proxy& p, const std::string& listen);
  void start_listener(Proxy& p, BoundListener bound);
  void stop_listener(Proxy& p);
  void publish(Proxy& p);
  SnapshotPtr snapshot_of(const Proxy& p) const;
  void accept_ready(const std::shared_ptr<Listener>& l);
  void arm_accept(const std::shared_ptr<Listener>& l);
  // Starts or stops refusing as the proxy's `refuse` toxics say.
  void refresh_refusing(Proxy& p);
  // Gives a newly added toxic its add time and its timer for start_after_ms / duration_ms.
  void admit(ToxicDef& def);
  // Arms (or drops) the toxic's timer for its next start or end.
  void schedule(const ToxicDef& def);
  void toxic_timer_fired(std::uint64_t toxic_id);

  Workers& workers_;
  Settings settings_;
  std::map<std::string, std::unique_ptr<Proxy>, std::less<>> proxies_;
  std::uint64_t next_runtime_id_ = 1;
  std::uint64_t next_toxic_id_ = 1;
  std::vector<int> accepted_;  // accept_ready's scratch
  // Timers of time-bounded toxics, by toxic id (a fired timer whose toxic is gone does nothing).
  std::map<std::uint64_t, std::unique_ptr<asio::steady_timer>> toxic_timers_;
};

}  // namespace faultproxy
