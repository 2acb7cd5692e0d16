#include "user_service/redis_topology.h"

#include <algorithm>

#include "common/log.h"

namespace user_service {

namespace redis = clients::redis;

namespace {

redis::Settings client_settings(const Config& config, const HostPort& endpoint, std::string name) {
  redis::Settings s;
  s.host = endpoint.host;
  s.port = endpoint.port;
  s.name = std::move(name);
  s.source_address = config.source_address;
  s.connect_timeout = config.redis.connect_timeout;
  s.reconnect.initial = config.redis.reconnect_min;
  s.reconnect.max = config.redis.reconnect_max;
  return s;
}

redis::SentinelSettings sentinel_settings(const Config& config) {
  redis::SentinelSettings s;
  for (const auto& hp : config.redis.sentinels)
    s.sentinels.push_back(redis::Address{hp.host, hp.port});
  s.master_name = config.redis.master_name;
  s.source_address = config.source_address;
  s.query_timeout = config.redis.discovery_deadline;
  s.connect_timeout = config.redis.connect_timeout;
  s.refresh_interval = config.redis.discovery_interval;
  s.reconnect.initial = config.redis.reconnect_min;
  s.reconnect.max = config.redis.reconnect_max;
  return s;
}

}  // namespace

RedisTopology::RedisTopology(boost::asio::any_io_executor executor, const Config& config)
    : master_(executor, client_settings(config, config.redis.master, "redis-master")),
      replica_(executor, client_settings(config, config.redis.replica, "redis-replica")) {
  if (!config.redis.sentinels.empty())
    sentinel_ = std::make_unique<redis::Sentinel>(executor, sentinel_settings(config));
}

void RedisTopology::start(std::function<void()> on_master_changed, std::function<void()> on_replica_changed) {
  on_master_changed_ = std::move(on_master_changed);
  on_replica_changed_ = std::move(on_replica_changed);
  if (!sentinel_) {
    master_.start();
    replica_.start();
    clients_started_ = true;
    return;
  }
  sentinel_->on_change([this](const redis::Topology& t) { adopt(t); });
  sentinel_->start();
}

void RedisTopology::adopt(const redis::Topology& t) {
  if (!t.master) return;  // keep the last known master until one is verified again
  const bool moved = master_.retarget(t.master->host, t.master->port);
  // The replica: the current one while Sentinel reports it healthy, else the first it reports; none
  // healthy: the master itself (reads then have no second node to fall back to).
  const redis::Address current{replica_.settings().host, replica_.settings().port};
  redis::Address replica = *t.master;
  if (std::find(t.replicas.begin(), t.replicas.end(), current) != t.replicas.end()) {
    replica = current;
  } else if (!t.replicas.empty()) {
    replica = t.replicas.front();
  }
  const bool replica_moved = replica_.retarget(replica.host, replica.port);
  if (moved || !clients_started_) {
    common::log::info("Redis topology", {{"master", t.master->to_string()},
                                         {"replica", replica.to_string()},
                                         {"generation", static_cast<long long>(t.generation)}});
  }
  if (!clients_started_) {
    master_.start();
    replica_.start();
    clients_started_ = true;
  }
  if (moved && on_master_changed_) on_master_changed_();
  if (replica_moved && !moved && on_replica_changed_) on_replica_changed_();
}

void RedisTopology::stop() {
  if (sentinel_) sentinel_->stop();
  master_.stop();
  replica_.stop();
}

void RedisTopology::refresh() {
  if (sentinel_) sentinel_->refresh();
}

std::string RedisTopology::to_json() const {
  // Addresses as the configuration writes them ("[::1]:6379" for IPv6), JSON-escaped: a host comes
  // from a Sentinel's answer.
  const auto address = [](std::string& out, const redis::Client& c) {
    out += '"';
    common::log::append_json_escaped(out, HostPort{c.settings().host, c.settings().port}.to_string());
    out += '"';
  };
  std::string out = "{\"sentinel\":";
  out += sentinel_ ? "true" : "false";
  out += ",\"master\":";
  address(out, master_);
  out += ",\"replica\":";
  address(out, replica_);
  if (sentinel_) {
    const auto st = sentinel_->status();
    out += ",\"master_changes\":" + std::to_string(st.counters.master_changes);
    out += ",\"sentinels_reachable\":";
    out += std::to_string(
        std::count_if(st.sentinels.begin(), st.sentinels.end(), [](const auto& s) { return s.reachable; }));
  }
  out += "}";
  return out;
}

}  // namespace user_service
