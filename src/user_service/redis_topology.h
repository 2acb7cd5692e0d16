// Which Redis servers play master and replica for user-service: fixed (`redis.master`,
// `redis.replica`), or discovered through Redis Sentinel (`redis.sentinels`, `redis.master_name`;
// clients/sentinel.h). It owns the two clients the cache uses and points them at whoever plays each
// role: after a failover (`+switch-master`, seen within milliseconds; or a periodic re-discovery; or a
// demotion the cache noticed: ROLE says replica, a write answered READONLY) the master client is
// moved to the new master at once, and the replica client to a replica Sentinel reports healthy
// (the current one while it stays healthy). With Sentinel, the clients start connecting only once a
// master is known: nothing waits for discovery, and calls meanwhile fail at once (not connected).
//
// Usage (on the service's event loop):
//   RedisTopology redis(ex, config);
//   RedisCache cache(redis.master(), redis.replica(), config.redis);
//   cache.on_master_demoted([&] { redis.refresh(); });
//   redis.start([&] { service.master_changed(); }, [&] { service.replica_changed(); });
//   ...  redis.stop();
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "clients/redis.h"
#include "clients/sentinel.h"
#include "user_service/config.h"

namespace user_service {

class RedisTopology {
 public:
  RedisTopology(boost::asio::any_io_executor executor, const Config& config);
  RedisTopology(const RedisTopology&) = delete;
  RedisTopology& operator=(const RedisTopology&) = delete;

  clients::redis::Client& master() { return master_; }
  clients::redis::Client& replica() { return replica_; }
  const clients::redis::Client& master() const { return master_; }
  const clients::redis::Client& replica() const { return replica_; }
  const clients::redis::Sentinel* sentinel() const { return sentinel_.get(); }

  // Starts the clients (fixed topology) or the discovery; `on_master_changed` runs after the master
  // client was moved to another server.
  // The callbacks run when another node becomes the master, or the replica read from.
  void start(std::function<void()> on_master_changed, std::function<void()> on_replica_changed = {});
  void stop();
  // Re-resolve now (the master turned out not to be one). No-op with a fixed topology.
  void refresh();
  // {"sentinel":true,"master":"h:p","replica":"h:p","failovers_seen":N}
  std::string to_json() const;

 private:
  void adopt(const clients::redis::Topology& t);

  clients::redis::Client master_;
  clients::redis::Client replica_;
  std::unique_ptr<clients::redis::Sentinel> sentinel_;
  std::function<void()> on_master_changed_;
  std::function<void()> on_replica_changed_;
  bool clients_started_ = false;
};

}  // namespace user_service
