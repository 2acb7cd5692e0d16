// Direct reads of what the stack stores, for the soak's end-of-run checks: MariaDB's `users.user`
// table and the Redis cache entries (`user:*` hashes, `tombstone:user:*`), straight from the servers
// (not through faultproxy, not through user-service), with the plain blocking client libraries and
// short timeouts. Used only once the load has stopped; nothing else runs meanwhile.
//
// Also the two facts about processes the soak needs: whether one is alive, and its resident memory.
//
// Usage:
//   std::string err;
//   auto rows = read_mariadb(3306, err);        // std::nullopt and `err` on failure
//   auto cache = read_redis(6379, "user:", err);
//   auto kib = rss_kib(pid);                     // std::nullopt if it is gone
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace soak {

struct Row {
  std::string name;
  std::uint64_t version = 0;
};

// id -> row of users.user.
std::optional<std::map<std::string, Row>> read_mariadb(int port, std::string& error);

struct CacheEntry {
  std::string name;
  std::string version;  // as stored (the service writes decimal digits)
  bool has_name = false, has_version = false;
};

struct CacheSnapshot {
  std::map<std::string, CacheEntry> values;       // id -> the hash `<prefix><id>`
  std::map<std::string, std::string> tombstones;  // id -> `tombstone:<prefix><id>`
};

std::optional<CacheSnapshot> read_redis(int port, const std::string& prefix, std::string& error);

// What one Redis node holds for one id right now ("value v<version> <name>", "tombstone v<version>",
// "nothing", or the error), for a diagnosis taken the moment something looks wrong.
std::string peek_redis(int port, const std::string& prefix, const std::string& id);

// HA: a MariaDB node's @@read_only (false: the primary), std::nullopt if it does not answer within
// `timeout_ms`.
std::optional<bool> mariadb_read_only(int port, int timeout_ms = 1000);

// HA: a Redis node's ROLE: "master" (with its number of connected replicas) or "slave";
// std::nullopt if it does not answer within `timeout_ms` (stopped, killed).
struct RedisRole {
  std::string role;
  std::size_t replicas = 0;
};
std::optional<RedisRole> redis_role(int port, int timeout_ms = 300);

// HA: what a Sentinel says the master of `master_name` is ("host:port"), std::nullopt if it does not
// answer within `timeout_ms`.
std::optional<std::string> sentinel_master(int port, const std::string& master_name, int timeout_ms = 300);

bool process_alive(pid_t pid);
// Every thread of the process stopped (state T): a SIGSTOP has taken effect.
bool process_stopped(pid_t pid);
std::optional<std::uint64_t> rss_kib(pid_t pid);

}  // namespace soak
