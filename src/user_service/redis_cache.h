// CachePort on the real Redis master/replica pair, through clients::redis (one Client per node).
//
// Layout in Redis (prefix configurable, default "user:"):
//   user:{id}            hash {id, name, version}, TTL redis.ttl_s    - a cached user
//   tombstone:user:{id}  string "<version>", TTL redis.ttl_s          - a deleted user
//   feed:user:lease      string "<owner>", TTL the lease's            - the cache feed's lease
//   feed:user:position   string "<GTID position>"                     - where the feed resumes
// At most one of the two exists for an id. Every update goes through one Lua script on the master
// that compares versions and replaces the entry only with a newer one (see README.md), so an older
// value can never overwrite a newer value or resurrect a deleted user, whatever order concurrent
// writers' and readers' updates arrive in. Reads are one HMGET on the master (or the replica).
//
// Every reply is checked against its command: an HMGET reply must have three fields (id, name,
// version), each a string or nil, and name the id asked for; the script answers 0 or 1; PING answers
// PONG; ROLE (the probes) an array naming a role (and a replication offset); SCAN answers a cursor and keys
// under the prefix. A reply that fails its check belongs to another command: the connection's replies are out
// of step with its commands (bytes lost or injected between us and Redis). The call then fails with
// Failure::desync, its reply unused, and the connection it came on is dropped and re-established
// (clients::redis::Client::reset), so no later command is matched to a wrong reply either. A hash that does
// not name its id was not written by this service: it is never served (a miss) and the next fill replaces it.
//
// Usage:
//   clients::redis::Client master(ex, {...}), replica(ex, {...});
//   RedisCache cache(master, replica, config.redis);
//   auto got = co_await cache.get(CacheNode::master, "u-1", deadline);
#pragma once

#include <functional>
#include <string>

#include "clients/redis.h"
#include "user_service/config.h"
#include "user_service/ports.h"

namespace user_service {

class RedisCache : public CachePort {
 public:
  RedisCache(clients::redis::Client& master, clients::redis::Client& replica, const RedisConfig& config);

  boost::asio::awaitable<Outcome<bool>> store_if_newer(std::string_view id, const CacheEntry& entry,
                                                       Deadline d) override;
  boost::asio::awaitable<Outcome<CacheProbe>> ping(CacheNode node, Deadline d) override;
  boost::asio::awaitable<bool> connect_now(CacheNode node, Deadline d) override;
  boost::asio::awaitable<Outcome<std::uint64_t>> invalidate_values_step(std::uint64_t cursor,
                                                                        Deadline d) override;
  boost::asio::awaitable<Outcome<bool>> take_lease(std::string_view owner, Clock::duration ttl,
                                                   Deadline d) override;
  boost::asio::awaitable<Outcome<bool>> release_lease(std::string_view owner, Deadline d) override;
  boost::asio::awaitable<Outcome<bool>> save_position(std::string_view owner, std::string_view position,
                                                      Deadline d) override;
  boost::asio::awaitable<Outcome<std::string>> load_position(Deadline d) override;

  // Called when the master node turns out not to be one (ROLE says replica, or a write answered
  // READONLY: what a demoted master does), so the topology is re-resolved at once.
  void on_master_demoted(std::function<void()> f) { on_demoted_ = std::move(f); }

  // Built in one allocation (a cached GET's path).
  std::string value_key(std::string_view id) const {
    std::string key;
    key.reserve(prefix_.size() + id.size());
    return key.append(prefix_).append(id);
  }
  std::string tombstone_key(std::string_view id) const { return "tombstone:" + prefix_ + std::string(id); }

  // The compare-and-set script (exposed for tests and the README).
  static const clients::redis::Script& store_script();

 protected:
  void start_get(CacheNode node, std::string_view id, Deadline d, GetHandler handler) override;

 private:
  clients::redis::Client& client(CacheNode n) { return n == CacheNode::master ? master_ : replica_; }
  // The HMGET's reply as get()'s outcome (and a reply out of step drops its connection).
  static Outcome<std::optional<CacheEntry>> read_entry(clients::redis::Client& c, std::uint64_t connection,
                                                       std::string_view id, clients::redis::Result& r);

  clients::redis::Client& master_;
  clients::redis::Client& replica_;
  std::function<void()> on_demoted_;
  std::string prefix_;
  std::string ttl_ms_;
  std::string match_;
  std::string lease_key_, position_key_;
  // Runs one of the lease scripts (reply {0|1, <echo>}); false if the script said 0.
  boost::asio::awaitable<Outcome<bool>> lease_script(
      const clients::redis::Script& script, std::vector<std::string> args, std::string_view echo,
      Deadline d);  // SCAN pattern for value keys (prefix with glob characters escaped)
};

}  // namespace user_service
