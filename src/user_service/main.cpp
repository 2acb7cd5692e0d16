// user-service: the binary. Reads the configuration (config.h), connects the real clients
// (src/clients) behind the ports, serves the API (api.h) through common::http::Server on one
// event-loop thread, and drains on SIGTERM/SIGINT.
//
//   user-service --config stack/user-service.example.json [--KEY=VALUE ...]
//   user-service --help | --print-config | --print-schema
//
// One thread runs everything (HTTP, Redis, MariaDB, probes): on this 2-core machine the other core
// belongs to Redis/MariaDB (and the load generator); one loop needs no locks on the hot path, and a
// cache hit costs a few microseconds of CPU, so the loop is not the bottleneck before Redis is.
#include <signal.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdio>
#include <functional>
#include <iostream>
#include <random>

#include "clients/mysql.h"
#include "clients/redis.h"
#include "common/http_server.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/version.h"
#include "user_service/api.h"
#include "user_service/binlog_source.h"
#include "user_service/cache_feed.h"
#include "user_service/config.h"
#include "user_service/mysql_store.h"
#include "user_service/redis_cache.h"
#include "user_service/redis_topology.h"
#include "user_service/service.h"

extern char** environ;

namespace {

namespace asio = boost::asio;
using namespace user_service;

clients::BackoffPolicy backoff(Millis min, Millis max) {
  clients::BackoffPolicy p;
  p.initial = min;
  p.max = max;
  return p;
}

clients::mysql::PoolSettings pool_settings(const Config& config, const HostPort& endpoint, std::string name) {
  const MysqlConfig& c = config.mysql;
  clients::mysql::PoolSettings s;
  s.connection.source_address = config.source_address;
  s.connection.host = endpoint.host;
  s.connection.port = endpoint.port;
  s.connection.user = c.user;
  s.connection.password = c.password;
  s.connection.database = "";  // tables are qualified: the pool works before the database exists
  s.connection.connect_timeout = c.connect_timeout;
  s.max_size = c.pool_size;
  s.min_size = 1;
  s.reconnect = backoff(c.reconnect_min, c.reconnect_max);
  s.name = std::move(name);
  return s;
}

// Who holds the cache feed's lease: unique per process, readable in logs.
std::string feed_owner(const Config& config) {
  std::random_device rd;
  char token[16];
  std::snprintf(token, sizeof token, "%08x", static_cast<unsigned>(rd()));
  return config.instance_name + "/" + std::to_string(::getpid()) + "/" + token;
}

// The MariaDB endpoints: `mysql.endpoints`, or the one `mysql.host`/`mysql.port`.
std::vector<HostPort> mysql_endpoints(const MysqlConfig& c) {
  if (!c.endpoints.empty()) return c.endpoints;
  return {HostPort{c.host, c.port}};
}

void add_client_metrics(common::metrics::Registry& registry, const clients::redis::Client& master,
                        const clients::redis::Client& replica,
                        const std::vector<std::unique_ptr<clients::mysql::Pool>>& pools) {
  registry.add_collector([&master, &replica, &pools](common::metrics::Writer& w) {
    for (const auto* c : {&master, &replica}) {
      const auto st = c->status();
      const common::metrics::Labels l{{"node", c->settings().name}};
      w.gauge("user_service_redis_connected", "1 while the Redis connection is established.", l,
              st.state == clients::redis::State::connected ? 1 : 0);
      w.gauge("user_service_redis_outstanding_commands", "Commands sent and not yet answered.", l,
              static_cast<double>(st.outstanding));
      w.counter("user_service_redis_reconnects_total", "Redis connections established.", l,
                static_cast<double>(st.counters.connects));
    }
    // One family at a time (a family's samples must be contiguous), each pool labelled by endpoint.
    const auto each_pool = [&](auto&& write) {
      for (const auto& p : pools)
        write(*p, p->status(), common::metrics::Labels{{"endpoint", p->settings().name}});
    };
    for (const char* state : {"idle", "in_use", "connecting"}) {
      each_pool(
          [&](const clients::mysql::Pool&, const clients::mysql::PoolStatus& ps, common::metrics::Labels l) {
            const std::string_view st(state);
            const double v = st == "idle" ? ps.idle : st == "in_use" ? ps.in_use : ps.connecting;
            l.emplace_back("state", state);
            w.gauge("user_service_mysql_pool_connections", "MariaDB pool connections by state.", l, v);
          });
    }
    each_pool([&](const clients::mysql::Pool&, const clients::mysql::PoolStatus& ps,
                  const common::metrics::Labels& l) {
      w.gauge("user_service_mysql_pool_waiters", "Callers waiting for a pool connection.", l,
              static_cast<double>(ps.waiters));
    });
    each_pool([&](const clients::mysql::Pool& p, const clients::mysql::PoolStatus&,
                  const common::metrics::Labels& l) {
      w.gauge("user_service_mysql_pool_max_size", "Pool size limit.", l,
              static_cast<double>(p.settings().max_size));
    });
    each_pool([&](const clients::mysql::Pool&, const clients::mysql::PoolStatus& ps,
                  const common::metrics::Labels& l) {
      w.counter("user_service_mysql_connects_total", "MariaDB connections opened.", l,
                static_cast<double>(ps.counters.connects));
    });
  });
}

}  // namespace

int main(int argc, char** argv) {
  const LoadedConfig loaded = load_config(argc, argv, environ);
  if (loaded.help) {
    std::cout << loaded.usage;
    return 0;
  }
  if (loaded.version) {
    std::cout << "user-service version " << common::kVersion << "\n";
    return 0;
  }
  if (!loaded.error.empty()) {
    std::cerr << "user-service: " << loaded.error << "\n";
    return 2;
  }
  const Config& config = loaded.config;
  if (loaded.print) {
    std::cout << config_to_json(config) << "\n";
    return 0;
  }
  if (loaded.print_schema) {
    // For an administrator, when the service's account may not create the triggers.
    std::cout << MysqlStore({}, config.mysql).schema_script();
    return 0;
  }
  common::log::set_level(*common::log::parse_level(config.log_level));
  if (std::getenv("LOG_LEVEL")) common::log::init_from_env(*common::log::parse_level(config.log_level));
  common::http::raise_open_file_limit();

  asio::io_context io(1);
  const auto ex = io.get_executor();
  try {
    RedisTopology redis(ex, config);
    clients::redis::Client& master = redis.master();
    clients::redis::Client& replica = redis.replica();
    std::vector<std::unique_ptr<clients::mysql::Pool>> pools;
    std::vector<clients::mysql::Pool*> nodes;
    for (const auto& endpoint : mysql_endpoints(config.mysql)) {
      pools.push_back(
          std::make_unique<clients::mysql::Pool>(ex, pool_settings(config, endpoint, endpoint.to_string())));
      nodes.push_back(pools.back().get());
    }
    RedisCache cache(master, replica, config.redis);
    MysqlStore store(nodes, config.mysql);

    common::metrics::Registry registry;
    add_client_metrics(registry, master, replica, pools);
    Service service(ex, config, store, cache, registry);
    // The cache feed (cache_feed.h), when this instance has a binlog replica id.
    std::unique_ptr<BinlogChangeSource> changes;
    std::unique_ptr<CacheFeed> feed;
    if (config.cache.feed_server_id != 0) {
      changes = std::make_unique<BinlogChangeSource>(ex, store, nodes, config);
      CacheFeedSettings fs;
      fs.owner = feed_owner(config);
      fs.lease_ttl = config.cache.feed_lease;
      feed = std::make_unique<CacheFeed>(ex, fs, *changes, cache, service.redis_master(), registry);
    }
    service.set_topology_json([&] {
      return "\"mysql\":" + store.topology_json() + ",\"redis\":" + redis.to_json() +
             ",\"cache_feed\":" + (feed ? feed->to_json() : std::string("null"));
    });
    cache.on_master_demoted([&] { redis.refresh(); });
    store.on_primary_change([&](int primary) {
      if (primary >= 0) service.mysql().health().server_changed(nodes[primary]->settings().name);
    });
    Api api(service, config, registry);
    common::http::Server server(
        ex, api.server_settings(),
        [&api](common::http::Request& req, const common::http::RequestInfo& info) {
          return api.handle(req, info);
        },
        api.server_errors());
    common::http::Server admin(
        ex, api.server_settings(),
        [&api](common::http::Request& req, const common::http::RequestInfo& info) {
          return api.handle(req, info, Api::Listener::admin);
        },
        api.server_errors());
    for (const auto& [s, address] :
         {std::pair{&server, config.listen}, std::pair{&admin, config.admin.listen}}) {
      const asio::ip::tcp::endpoint endpoint{asio::ip::make_address(address.host), address.port};
      if (auto ec = s->listen(endpoint)) {
        common::log::error("cannot listen", {{"address", address.to_string()}, {"error", ec.message()}});
        return 1;
      }
    }
    redis.start(
        [&] {
          service.master_changed();
          if (feed) feed->master_changed();
        },
        [&] { service.replica_changed(); });
    for (auto& p : pools)
      p->start();
    service.start();
    if (feed) feed->start();
    server.start();
    admin.start();
    const auto bound = server.local_endpoint();
    common::log::info("user-service listening",
                      {{"address", bound.address().to_string() + ":" + std::to_string(bound.port())},
                       {"redis", redis.to_json()},
                       {"mysql",
                        [&] {
                          std::string all;
                          for (const auto* p : nodes)
                            all += (all.empty() ? "" : ",") + p->settings().name;
                          return all;
                        }()},
                       {"admin", config.admin.listen.to_string()},
                       {"instance", config.instance_name},
                       {"threads", 1}});

    // SIGHUP: the configuration is read again as at start (file, environment, flags); what can change
    // in flight does, the rest is logged as needing a restart.
    Config running = config;
    asio::signal_set hangups(io, SIGHUP);
    std::function<void()> wait_hangup = [&] {
      hangups.async_wait([&](const boost::system::error_code& ec, int) {
        if (ec) return;
        const LoadedConfig again = load_config(argc, argv, environ);
        if (!again.error.empty()) {
          common::log::error("configuration not reloaded", {{"error", again.error}});
        } else {
          Reload r = plan_reload(running, again.config);
          running = std::move(r.effective);
          common::log::set_level(*common::log::parse_level(running.log_level));
          if (std::getenv("LOG_LEVEL"))
            common::log::init_from_env(*common::log::parse_level(running.log_level));
          service.reload(running);
          api.reload(running);
          const auto joined = [](const std::vector<std::string>& keys) {
            std::string all;
            for (const auto& k : keys)
              all += (all.empty() ? "" : ",") + k;
            return all;
          };
          common::log::info("configuration reloaded", {{"applied", joined(r.applied)}});
          if (!r.need_restart.empty())
            common::log::warn("configuration changes need a restart", {{"keys", joined(r.need_restart)}});
        }
        wait_hangup();
      });
    };
    wait_hangup();

    asio::signal_set signals(io, SIGTERM, SIGINT);
    signals.async_wait([&](const boost::system::error_code& ec, int signo) {
      if (ec) return;
      common::log::info("draining", {{"signal", signo},
                                     {"grace_ms", static_cast<long long>(config.shutdown_grace.count())}});
      asio::co_spawn(
          io,
          [&]() -> asio::awaitable<void> {
            hangups.cancel();
            co_await server.shutdown(config.shutdown_grace);
            co_await admin.shutdown(std::chrono::milliseconds(0));
            if (feed) co_await feed->stop();
            co_await service.stop();
            redis.stop();
            for (auto& p : pools)
              p->stop();
            common::log::info("stopped");
            io.stop();
          },
          asio::detached);
    });
    io.run();
  } catch (const std::exception& e) {
    // Only configuration errors the clients detect at construction get here; the data path never throws.
    common::log::error("cannot start", {{"error", e.what()}});
    return 2;
  }
  return 0;
}
