// The two dependencies of user-service, as the service logic sees them: a UserStore (MariaDB, the
// source of truth) and a CachePort (the Redis master/replica pair). The logic in service.h is written
// and unit-tested against these interfaces only; mysql_store.h and redis_cache.h adapt the real clients
// (src/clients), fakes.h provides in-memory versions that can be made slow, failing or hanging.
//
// Contract shared by every method: it is an awaitable that completes by its Deadline (a dependency
// that hangs is abandoned then and reported as Failure::timeout); it never throws for data-plane
// errors; the string_view arguments must stay valid until it completes.
//
// Usage:
//   const Deadline call = Deadline::after(std::chrono::milliseconds(500)).at_most(request_deadline);
//   Outcome<std::optional<StoredUser>> got = co_await store.get("u-1", call);
//   if (!got.ok()) { ...got.failure, got.message... } else if (got.value) { ...got.value->name... }
#pragma once

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/deadline.h"

namespace user_service {

using Clock = common::Clock;

// The one deadline type (common/deadline.h): a dependency call's deadline is the request's,
// shortened to the call's own budget.
using common::Deadline;

// How a dependency call failed. Timeout, unavailable and desync count against the dependency's
// circuit breaker: a rejected statement is the request's fault, not the server's.
enum class Failure {
  none,
  timeout,      // the deadline passed
  unavailable,  // could not connect, connection lost, breaker open, not initialised
  rejected,     // the server answered with an error about this call (bad value, script error)
  desync,       // the reply cannot belong to the call (the connection's reply stream is out of step
                // with its commands); the connection was dropped, the reply must not be used
};

std::string_view failure_name(Failure f);

// Whether a failed call may still have taken effect. What matters for a write: one that failed with
// `unknown` may have committed (only its answer was lost), so what the cache holds for that id must
// be re-checked against the store once it answers again; one that failed with `none` certainly left
// nothing behind. Which failures are which is the adapter's knowledge (mysql_store.h), not the
// Failure's: a timeout waiting for a pooled connection is `none`, a timeout after the statement was
// sent is `unknown`, and so is a connection lost mid-statement.
enum class Effect {
  none,     // not executed: nothing was sent, or the server refused the call
  unknown,  // sent, and no reply said how it ended (timeout, connection lost mid-call, garbled reply)
};

template <typename T>
struct Outcome {
  Failure failure = Failure::none;
  std::string message;  // why it failed, for logs and /health/ready
  T value{};
  Effect effect = Effect::none;  // for failures: may the call still have taken effect?
  // For store failures: MariaDB rolled the statement back over a lock conflict (deadlock 1213, lock
  // wait timeout 1205). Nothing was written, and the same statement run again may well succeed.
  bool conflict = false;

  bool ok() const { return failure == Failure::none; }
  static Outcome success(T v) { return Outcome{Failure::none, {}, std::move(v), Effect::none, false}; }
  static Outcome fail(Failure f, std::string m, Effect e = Effect::none) {
    return Outcome{f, std::move(m), T{}, e, false};
  }
};

using Done = std::monostate;

// ---- MariaDB -------------------------------------------------------------------------------

struct StoredUser {
  std::string name;
  std::uint64_t version = 0;
};

// What a conditional write requires of the row as it is when the write's statement runs (HTTP
// If-Match / If-None-Match: *). The check is part of the write's one statement, so it holds under
// concurrency: of many writes with the same version condition, exactly one finds it true.
struct Precondition {
  enum Kind {
    none,        // unconditional
    exists,      // the row exists (If-Match: *)
    absent,      // the row does not exist: create only (If-None-Match: *)
    version_in,  // the row exists with one of `versions` (If-Match: "v5", ...; empty: never)
  };
  Kind kind = none;
  std::vector<std::uint64_t> versions;
};

struct PutResult {
  bool created = false;
  bool precondition_failed = false;  // nothing was written
  std::uint64_t version = 0;         // the version the row got; later writes of this id get higher ones
};

struct RemoveResult {
  bool removed = false;              // false and !precondition_failed: there was no such row
  bool precondition_failed = false;  // nothing was deleted (the row may or may not exist)
  std::uint64_t version = 0;         // the deleted row's version
};

// One user of a page of GET /users.
struct ListedUser {
  std::string id;
  std::string name;
  std::uint64_t version = 0;
};

class UserStore {
 public:
  virtual ~UserStore() = default;
  // The user, or nullopt when there is no such row.
  virtual boost::asio::awaitable<Outcome<std::optional<StoredUser>>> get(std::string_view id, Deadline d) = 0;
  // (`when` is taken by value: a coroutine must not keep a reference to its caller's temporary.)
  // Insert or update, if `when` holds (else PutResult::precondition_failed, nothing written). On
  // failure, Outcome::effect says whether the write may still have committed (Effect::unknown: the
  // statement reached the server and its answer was lost) or certainly did not.
  virtual boost::asio::awaitable<Outcome<PutResult>> put(std::string_view id, std::string_view name,
                                                         Precondition when, Deadline d) = 0;
  boost::asio::awaitable<Outcome<PutResult>> put(std::string_view id, std::string_view name, Deadline d) {
    return put(id, name, Precondition{}, d);
  }
  // Deletes, if `when` holds; returns the version the deleted row had. Failures carry
  // Outcome::effect as put() does.
  virtual boost::asio::awaitable<Outcome<RemoveResult>> remove(std::string_view id, Precondition when,
                                                               Deadline d) = 0;
  boost::asio::awaitable<Outcome<RemoveResult>> remove(std::string_view id, Deadline d) {
    return remove(id, Precondition{}, d);
  }
  // Up to `limit` users with ids after `after` ("" = from the first), in byte order of the ids.
  virtual boost::asio::awaitable<Outcome<std::vector<ListedUser>>> list(std::string_view after,
                                                                        std::uint32_t limit, Deadline d) = 0;
  // A cheap round trip used by the health prober. It also creates the schema while it is missing,
  // so a store that started before MariaDB becomes usable as soon as MariaDB answers.
  virtual boost::asio::awaitable<Outcome<Done>> probe(Deadline d) = 0;
  // For a circuit breaker's half-open trial (endpoint.h): true when the primary has a connection,
  // or one could be made now by `d` because MariaDB refuses at once while down (the attempt starts
  // at once instead of after the reconnect backoff); false at once while attempts time out. The
  // default (a store without connections to make, like the fakes) says true.
  virtual boost::asio::awaitable<bool> connect_now(Deadline d);

  // With several MariaDB endpoints (a primary and replicas): the calls above go to the primary, the
  // endpoint that answers `@@read_only = 0` (none known: Failure::unavailable at once), and these
  // read from a replica. get_from_replica() and list_from_replica() answer only once the replica has
  // applied every transaction it has received from the primary (with semi-synchronous replication that
  // includes every acknowledged write), within `d`; otherwise Failure::timeout.
  virtual bool has_replica() const { return false; }
  virtual boost::asio::awaitable<Outcome<std::optional<StoredUser>>> get_from_replica(std::string_view id,
                                                                                      Deadline d);
  virtual boost::asio::awaitable<Outcome<std::vector<ListedUser>>> list_from_replica(std::string_view after,
                                                                                     std::uint32_t limit,
                                                                                     Deadline d);
  virtual boost::asio::awaitable<Outcome<Done>> probe_replica(Deadline d);
};

// ---- Redis ---------------------------------------------------------------------------------

enum class CacheNode { master = 0, replica = 1 };

// One cache entry: a value or a tombstone (what a delete leaves, so that an older value arriving
// late cannot resurrect the user). Entries only move forward: see CachePort::store_if_newer.
struct CacheEntry {
  std::uint64_t version = 0;
  bool tombstone = false;
  std::string name;  // empty for tombstones
};

// What a cache node's probe learned.
struct CacheProbe {
  std::optional<std::uint64_t> replication_offset;
};

class CachePort {
 public:
  using GetHandler = boost::asio::any_completion_handler<void(Outcome<std::optional<CacheEntry>>)>;

  virtual ~CachePort() = default;
  // The entry for id on that node, or nullopt when there is none. An entry is only returned when the
  // reply is certainly the one for `id` (it names that id); a reply for another id, or of the wrong
  // shape, is Failure::desync (the connection is dropped and re-established). Any Asio completion
  // token: the default is an awaitable, `boost::asio::deferred` is awaited with no coroutine frame
  // of its own (a cached GET's path). Completes on the service's executor (the one event loop).
  template <typename Token = const boost::asio::use_awaitable_t<>&>
  auto get(CacheNode node, std::string_view id, Deadline d, Token&& token = boost::asio::use_awaitable) {
    return boost::asio::async_initiate<Token, void(Outcome<std::optional<CacheEntry>>)>(
        [this](auto handler, CacheNode n, std::string_view i, Deadline dl) {
          start_get(n, i, dl, GetHandler(std::move(handler)));
        },
        token, node, id, d);
  }
  // On the master, atomically: replaces the entry for id when `entry` is newer (higher version, or the
  // same version and a tombstone over a value) or there is none, and sets the TTL. Returns whether it
  // replaced. Idempotent, so a call whose outcome is unknown (timeout) can be repeated safely.
  virtual boost::asio::awaitable<Outcome<bool>> store_if_newer(std::string_view id, const CacheEntry& entry,
                                                               Deadline d) = 0;
  // The health probe's round trip: the node's role, and its replication offset when it reports one
  // (the master's, or how much of its master's stream a replica has applied: replica_freshness.h).
  virtual boost::asio::awaitable<Outcome<CacheProbe>> ping(CacheNode node, Deadline d) = 0;
  // As UserStore::connect_now, for one node.
  virtual boost::asio::awaitable<bool> connect_now(CacheNode node, Deadline d);
  // One step of removing every value entry (tombstones stay) from the master: scans from `cursor`
  // and returns the next cursor, 0 when the scan is complete. Used after the repair queue overflowed.
  virtual boost::asio::awaitable<Outcome<std::uint64_t>> invalidate_values_step(std::uint64_t cursor,
                                                                                Deadline d) = 0;

  // The cache feed's lease and position (cache_feed.h), on the master beside the entries they cover.
  // take_lease: atomically, if nobody or `owner` holds it, (re)sets it to `owner` for `ttl`; returns
  // whether `owner` holds it now. save_position: stores `position` only while `owner` holds the lease;
  // returns whether it did. load_position: the stored position, "" when there is none.
  virtual boost::asio::awaitable<Outcome<bool>> take_lease(std::string_view owner, Clock::duration ttl,
                                                           Deadline d);
  virtual boost::asio::awaitable<Outcome<bool>> release_lease(std::string_view owner, Deadline d);
  virtual boost::asio::awaitable<Outcome<bool>> save_position(std::string_view owner,
                                                              std::string_view position, Deadline d);
  virtual boost::asio::awaitable<Outcome<std::string>> load_position(Deadline d);

 protected:
  // get(), started: completes `handler` exactly once, never inside this call, on this executor.
  virtual void start_get(CacheNode node, std::string_view id, Deadline d, GetHandler handler) = 0;
};

// ---- the change feed: MariaDB's committed changes, in commit order ----------------------------

// One committed change of a user: its new value, or (deleted) a tombstone at the deleted row's version.
struct Change {
  std::string id;
  CacheEntry entry;
};

struct ChangeBatch {
  std::vector<Change> changes;  // whole transactions, in commit order
  std::string position;         // where to resume after them (a GTID position)
};

class ChangeSource {
 public:
  virtual ~ChangeSource() = default;
  // (Re)starts reading after `position` ("" = only changes committed from now on).
  virtual void start(std::string position) = 0;
  virtual void stop() = 0;
  // The next changes (whole transactions, at most about `max`), or an empty batch at `d`. A failure
  // (MariaDB lost, position gone) leaves the source reconnecting by itself from the last position.
  virtual boost::asio::awaitable<Outcome<ChangeBatch>> next(std::size_t max, Deadline d) = 0;
};

}  // namespace user_service
