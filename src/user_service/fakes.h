// In-memory UserStore and CachePort for unit tests of the service logic. Each dependency endpoint
// can be made slow (a delay per call), failing (unavailable at once: nothing sent), hanging (no answer
// until the caller's deadline, then Failure::timeout, as the real clients report a server that
// stopped answering; a store write that hangs has an unknown effect, as MysqlStore reports a statement
// whose deadline passed), rejecting, or desynchronised (the cache reply was another command's:
// Failure::desync); a store write can be applied and its acknowledgement lost (as a timeout, or as
// a connection lost mid-statement). The fake cache applies the same compare-and-set rule as the Lua
// script and can stop replicating to simulate a lagging replica.
//
// Usage:
//   FakeStore store(io.get_executor());
//   FakeCache cache(io.get_executor());
//   store.behaviour.mode = Behaviour::hang;
//   cache.master.behaviour.delay = std::chrono::milliseconds(30);
#pragma once

#include <algorithm>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <exception>
#include <map>
#include <string>

#include "user_service/cache_ledger.h"
#include "user_service/ports.h"

namespace user_service::fakes {

struct Behaviour {
  enum Mode { ok, fail, hang, reject, desync } mode = ok;
  Clock::duration delay{0};
  int fail_next = 0;      // the next N calls fail with `unavailable` (nothing sent), then `mode` applies
  int conflict_next = 0;  // FakeStore writes: the next N are rolled back as MariaDB's deadlock (1213)
  bool ack_lost = false;  // FakeStore writes: applied, then reported as `ack_failure`, Effect::unknown
  Failure ack_failure = Failure::timeout;  // or unavailable: "Lost connection to server during query"
};

// Plays a behaviour out: waits as told (never past the deadline) and says how the call ends.
inline boost::asio::awaitable<Failure> simulate(boost::asio::any_io_executor ex, Behaviour& b, Deadline d,
                                                std::string& message) {
  if (b.fail_next > 0) {
    --b.fail_next;
    message = "connection lost before sending";
    co_return Failure::unavailable;
  }
  if (b.mode == Behaviour::desync) {
    message = "HMGET reply for another user (connection dropped)";
    co_return Failure::desync;
  }
  if (b.mode == Behaviour::fail) {
    message = "connection refused";
    co_return Failure::unavailable;
  }
  if (b.mode == Behaviour::reject) {
    message = "rejected";
    co_return Failure::rejected;
  }
  const auto remaining = d.remaining();
  const bool late = b.mode == Behaviour::hang || b.delay >= remaining;
  const auto wait = late ? remaining : b.delay;
  if (wait.count() > 0) {
    boost::asio::steady_timer t(ex, wait);
    co_await t.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  }
  if (late) {
    message = "deadline exceeded";
    co_return Failure::timeout;
  }
  co_return Failure::none;
}

class FakeStore : public UserStore {
 public:
  explicit FakeStore(boost::asio::any_io_executor ex) : ex_(ex) {}

  Behaviour behaviour;
  std::map<std::string, StoredUser> rows;
  std::uint64_t sequence = 100;  // versions come from one increasing sequence, as in MariaDB
  int calls = 0;
  int probes = 0;
  int connects_now = 0;  // connect_now() calls: half-open trials asking for a connection first

  // As the real pool: a dependency that refuses (Behaviour::fail) refuses the attempt too.
  boost::asio::awaitable<bool> connect_now(Deadline) override {
    ++connects_now;
    co_await boost::asio::post(ex_, boost::asio::use_awaitable);  // as FakeCache::connect_now
    co_return behaviour.mode != Behaviour::fail;
  }

  // get() answers with the row as it was when the call was made (a SELECT that ran before a write
  // that lands while its answer travels), instead of as it is when the delay ends.
  bool answer_as_of_call = false;

  boost::asio::awaitable<Outcome<std::optional<StoredUser>>> get(std::string_view id, Deadline d) override {
    ++calls;
    std::optional<StoredUser> as_of_call;
    if (const auto it = rows.find(std::string(id)); it != rows.end()) as_of_call = it->second;
    std::string m;
    if (auto f = co_await simulate(ex_, behaviour, d, m); f != Failure::none)
      co_return Outcome<std::optional<StoredUser>>::fail(f, m);
    if (answer_as_of_call) co_return Outcome<std::optional<StoredUser>>::success(std::move(as_of_call));
    const auto it = rows.find(std::string(id));
    co_return Outcome<std::optional<StoredUser>>::success(it == rows.end() ? std::nullopt
                                                                           : std::optional(it->second));
  }
  using UserStore::put;
  using UserStore::remove;
  boost::asio::awaitable<Outcome<PutResult>> put(std::string_view id, std::string_view name,
                                                 Precondition when, Deadline d) override {
    ++calls;
    if (auto c = conflict<PutResult>()) co_return *c;
    std::string m;
    if (auto f = co_await simulate(ex_, behaviour, d, m); f != Failure::none)
      co_return Outcome<PutResult>::fail(f, m, write_effect(f));
    if (!holds(when, id)) co_return Outcome<PutResult>::success(PutResult{false, true, 0});
    auto [it, created] = rows.try_emplace(std::string(id));
    it->second = StoredUser{std::string(name), ++sequence};
    if (behaviour.ack_lost)
      co_return Outcome<PutResult>::fail(behaviour.ack_failure, ack_message(), Effect::unknown);
    co_return Outcome<PutResult>::success(PutResult{created, false, it->second.version});
  }
  boost::asio::awaitable<Outcome<RemoveResult>> remove(std::string_view id, Precondition when,
                                                       Deadline d) override {
    ++calls;
    if (auto c = conflict<RemoveResult>()) co_return *c;
    std::string m;
    if (auto f = co_await simulate(ex_, behaviour, d, m); f != Failure::none)
      co_return Outcome<RemoveResult>::fail(f, m, write_effect(f));
    if (!holds(when, id)) co_return Outcome<RemoveResult>::success(RemoveResult{false, true, 0});
    const auto it = rows.find(std::string(id));
    if (it == rows.end()) co_return Outcome<RemoveResult>::success(RemoveResult{});
    const auto v = it->second.version;
    rows.erase(it);
    if (behaviour.ack_lost)
      co_return Outcome<RemoveResult>::fail(behaviour.ack_failure, ack_message(), Effect::unknown);
    co_return Outcome<RemoveResult>::success(RemoveResult{true, false, v});
  }
  boost::asio::awaitable<Outcome<std::vector<ListedUser>>> list(std::string_view after, std::uint32_t limit,
                                                                Deadline d) override {
    ++calls;
    std::string m;
    if (auto f = co_await simulate(ex_, behaviour, d, m); f != Failure::none)
      co_return Outcome<std::vector<ListedUser>>::fail(f, m);
    std::vector<ListedUser> page;
    // std::map<std::string> orders by bytes (char_traits compares as unsigned char), as MariaDB's
    // binary collation does.
    for (auto it = rows.upper_bound(std::string(after)); it != rows.end() && page.size() < limit; ++it)
      page.push_back(ListedUser{it->first, it->second.name, it->second.version});
    co_return Outcome<std::vector<ListedUser>>::success(std::move(page));
  }
  boost::asio::awaitable<Outcome<Done>> probe(Deadline d) override {
    ++probes;
    std::string m;
    if (auto f = co_await simulate(ex_, behaviour, d, m); f != Failure::none)
      co_return Outcome<Done>::fail(f, m);
    co_return Outcome<Done>::success({});
  }

 private:
  bool holds(const Precondition& when, std::string_view id) const {
    const auto it = rows.find(std::string(id));
    switch (when.kind) {
      case Precondition::none:
        return true;
      case Precondition::exists:
        return it != rows.end();
      case Precondition::absent:
        return it == rows.end();
      case Precondition::version_in:
        return it != rows.end() && std::find(when.versions.begin(), when.versions.end(),
                                             it->second.version) != when.versions.end();
    }
    return false;
  }
  // As MysqlStore classifies: a deadline that passed while the statement was out has an unknown
  // effect; a refused connection or a rejected statement certainly left nothing.
  static Effect write_effect(Failure f) { return f == Failure::timeout ? Effect::unknown : Effect::none; }
  // As MysqlStore reports a write MariaDB rolled back over a deadlock (Behaviour::conflict_next).
  template <typename T>
  std::optional<Outcome<T>> conflict() {
    if (behaviour.conflict_next <= 0) return std::nullopt;
    --behaviour.conflict_next;
    auto o = Outcome<T>::fail(Failure::unavailable, "Deadlock found when trying to get lock (1213)");
    o.conflict = true;
    return o;
  }
  std::string ack_message() const {
    return behaviour.ack_failure == Failure::timeout ? "deadline exceeded"
                                                     : "Lost connection to server during query (2013)";
  }

  boost::asio::any_io_executor ex_;
};

class FakeCache : public CachePort {
 public:
  struct Node {
    Behaviour behaviour;
    // get() answers with the entry as it was when the call was made (a reply in flight while the
    // entry changes), instead of as it is when the delay ends.
    bool answer_as_of_call = false;
    std::map<std::string, CacheEntry> entries;
    int calls = 0;  // get/store calls (not pings)
    int connects_now = 0;
  };
  explicit FakeCache(boost::asio::any_io_executor ex) : ex_(ex) {}

  Node master, replica;
  bool replicate = true;  // master writes reach the replica at once

  Node& node(CacheNode n) { return n == CacheNode::master ? master : replica; }

  // Seeds both nodes, as "user X is cached" does through the master.
  void seed(const std::string& id, const CacheEntry& e) {
    master.entries[id] = e;
    if (replicate) replica.entries[id] = e;
  }
  // The replica receives everything the master has (after `replicate = false`).
  void catch_up() {
    replica.entries = master.entries;
    replica_offset = master_offset;
  }

  // What get() does, a coroutine per call that start_get() spawns (RedisCache needs none: it completes
  // the caller's handler from the Redis client's).
  boost::asio::awaitable<Outcome<std::optional<CacheEntry>>> fake_get(CacheNode n, std::string id,
                                                                      Deadline d) {
    auto& nd = node(n);
    ++nd.calls;
    std::optional<CacheEntry> as_of_call;
    if (const auto it = nd.entries.find(std::string(id)); it != nd.entries.end()) as_of_call = it->second;
    std::string m;
    if (auto f = co_await simulate(ex_, nd.behaviour, d, m); f != Failure::none)
      co_return Outcome<std::optional<CacheEntry>>::fail(f, m);
    if (nd.answer_as_of_call) co_return Outcome<std::optional<CacheEntry>>::success(std::move(as_of_call));
    const auto it = nd.entries.find(std::string(id));
    co_return Outcome<std::optional<CacheEntry>>::success(it == nd.entries.end() ? std::nullopt
                                                                                 : std::optional(it->second));
  }
  void start_get(CacheNode n, std::string_view id, Deadline d, GetHandler handler) override {
    boost::asio::co_spawn(
        ex_, fake_get(n, std::string(id), d),
        [h = std::move(handler)](std::exception_ptr e, Outcome<std::optional<CacheEntry>> got) mutable {
          if (e) std::rethrow_exception(e);
          std::move(h)(std::move(got));
        });
  }
  boost::asio::awaitable<Outcome<bool>> store_if_newer(std::string_view id, const CacheEntry& entry,
                                                       Deadline d) override {
    ++master.calls;
    std::string m;
    if (auto f = co_await simulate(ex_, master.behaviour, d, m); f != Failure::none)
      co_return Outcome<bool>::fail(f, m);
    const std::string key(id);
    const auto it = master.entries.find(key);
    if (it != master.entries.end() && !supersedes(entry, it->second)) co_return Outcome<bool>::success(false);
    master.entries[key] = entry;
    ++master_offset;
    if (replicate) {
      replica.entries[key] = entry;
      replica_offset = master_offset;
    }
    co_return Outcome<bool>::success(true);
  }
  // Replication offsets: the master's counts its updates; the replica's follows while `replicate`.
  boost::asio::awaitable<bool> connect_now(CacheNode n, Deadline) override {
    ++node(n).connects_now;
    // As a real connect attempt, never complete within the call (so a caller's state must last).
    co_await boost::asio::post(ex_, boost::asio::use_awaitable);
    co_return node(n).behaviour.mode != Behaviour::fail;
  }
  boost::asio::awaitable<Outcome<CacheProbe>> ping(CacheNode n, Deadline d) override {
    std::string m;
    if (auto f = co_await simulate(ex_, node(n).behaviour, d, m); f != Failure::none)
      co_return Outcome<CacheProbe>::fail(f, m);
    co_return Outcome<CacheProbe>::success({n == CacheNode::master ? master_offset : replica_offset});
  }
  std::uint64_t master_offset = 0, replica_offset = 0;
  boost::asio::awaitable<Outcome<std::uint64_t>> invalidate_values_step(std::uint64_t, Deadline d) override {
    std::string m;
    if (auto f = co_await simulate(ex_, master.behaviour, d, m); f != Failure::none)
      co_return Outcome<std::uint64_t>::fail(f, m);
    std::erase_if(master.entries, [](const auto& kv) { return !kv.second.tombstone; });
    ++master_offset;
    if (replicate) {
      std::erase_if(replica.entries, [](const auto& kv) { return !kv.second.tombstone; });
      replica_offset = master_offset;
    }
    ++invalidations;
    co_return Outcome<std::uint64_t>::success(0);
  }
  int invalidations = 0;

  // The cache feed's lease and position, kept like the Lua scripts keep them (on the master).
  std::string lease_owner;
  Clock::time_point lease_until{};
  std::string position;
  boost::asio::awaitable<Outcome<bool>> take_lease(std::string_view owner, Clock::duration ttl,
                                                   Deadline d) override {
    std::string m;
    if (auto f = co_await simulate(ex_, master.behaviour, d, m); f != Failure::none)
      co_return Outcome<bool>::fail(f, m);
    if (Clock::now() < lease_until && lease_owner != owner) co_return Outcome<bool>::success(false);
    lease_owner = owner;
    lease_until = Clock::now() + ttl;
    co_return Outcome<bool>::success(true);
  }
  boost::asio::awaitable<Outcome<bool>> release_lease(std::string_view owner, Deadline d) override {
    std::string m;
    if (auto f = co_await simulate(ex_, master.behaviour, d, m); f != Failure::none)
      co_return Outcome<bool>::fail(f, m);
    if (lease_owner != owner || Clock::now() >= lease_until) co_return Outcome<bool>::success(false);
    lease_until = {};
    co_return Outcome<bool>::success(true);
  }
  boost::asio::awaitable<Outcome<bool>> save_position(std::string_view owner, std::string_view pos,
                                                      Deadline d) override {
    std::string m;
    if (auto f = co_await simulate(ex_, master.behaviour, d, m); f != Failure::none)
      co_return Outcome<bool>::fail(f, m);
    if (lease_owner != owner || Clock::now() >= lease_until) co_return Outcome<bool>::success(false);
    position = pos;
    co_return Outcome<bool>::success(true);
  }
  boost::asio::awaitable<Outcome<std::string>> load_position(Deadline d) override {
    std::string m;
    if (auto f = co_await simulate(ex_, master.behaviour, d, m); f != Failure::none)
      co_return Outcome<std::string>::fail(f, m);
    co_return Outcome<std::string>::success(position);
  }

 private:
  boost::asio::any_io_executor ex_;
};

// A change feed whose transactions a test commits: a list of committed changes with positions
// "0-1-<n>"; a reader started after position p gets the changes after p. Can be made failing.
class FakeChangeSource : public ChangeSource {
 public:
  explicit FakeChangeSource(boost::asio::any_io_executor ex) : ex_(ex) {}

  std::vector<Change> log;  // committed, in order; change i has position "0-1-<i+1>"
  Behaviour behaviour;
  bool running = false;
  std::string started_from;

  void commit(std::string id, CacheEntry e) { log.push_back(Change{std::move(id), std::move(e)}); }

  void start(std::string position) override {
    running = true;
    started_from = position;
    next_ = position.empty() ? log.size() : static_cast<std::size_t>(std::stoull(position.substr(4)));
  }
  void stop() override { running = false; }
  boost::asio::awaitable<Outcome<ChangeBatch>> next(std::size_t max, Deadline d) override {
    std::string m;
    if (auto f = co_await simulate(ex_, behaviour, Deadline::after(std::chrono::milliseconds(1)), m);
        f != Failure::none)
      co_return Outcome<ChangeBatch>::fail(f, m);
    boost::asio::steady_timer t(ex_);
    while (running && next_ >= log.size() && !d.expired()) {
      t.expires_after(std::chrono::milliseconds(2));
      co_await t.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    }
    ChangeBatch b;
    while (running && next_ < log.size() && b.changes.size() < max)
      b.changes.push_back(log[next_++]);
    b.position = "0-1-" + std::to_string(next_);
    co_return Outcome<ChangeBatch>::success(std::move(b));
  }

 private:
  boost::asio::any_io_executor ex_;
  std::size_t next_ = 0;
};

}  // namespace user_service::fakes
