// user-service settings: plain structs, parsed in one place (config.cpp) from, in increasing order of
// precedence, built-in defaults, one JSON file (--config FILE), USER_SERVICE_* environment variables
// and command-line flags. Every key has one spelling in each: the JSON path `redis.master` is the
// environment variable USER_SERVICE_REDIS_MASTER and the flag --redis.master. Unknown keys in any of
// the three are an error at start, as are values of the wrong type or out of range.
//
// Usage:
//   auto loaded = user_service::load_config(argc, argv, environ);
//   if (!loaded.error.empty()) { std::cerr << loaded.error; return 2; }
//   const user_service::Config& config = loaded.config;
//   std::string json = user_service::config_to_json(config);   // secrets redacted (GET /config)
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace user_service {

using Millis = std::chrono::milliseconds;

// "host:port"; the host is passed to the clients as is (use 127.0.0.1, not localhost, for MariaDB).
struct HostPort {
  std::string host;
  std::uint16_t port = 0;
  std::string to_string() const;
  friend bool operator==(const HostPort&, const HostPort&) = default;
};

struct HttpConfig {
  Millis request_timeout{10'000};  // a started request must arrive completely within this
  Millis idle_timeout{60'000};     // keep-alive connections idle longer are closed
  std::uint32_t max_connections = 10'000;
};

struct RedisConfig {
  HostPort master{"127.0.0.1", 6379};  // static topology: used while `sentinels` is empty
  HostPort replica{"127.0.0.1", 6380};
  std::vector<HostPort> sentinels;  // Sentinel topology: the master (and replicas) of `master_name`
  std::string master_name = "users";
  Millis discovery_deadline{100};   // one Sentinel query or ROLE check
  Millis discovery_interval{1000};  // periodic re-discovery (failovers are also pushed: +switch-master)
  Millis call_deadline{100};        // one command, including queueing behind others on the connection
  Millis connect_timeout{100};      // one connection attempt
  Millis reconnect_min{50};         // backoff between connection attempts: from min, doubling,
  Millis reconnect_max{400};        // up to max, with jitter; max < 1 s so a return is seen within 1 s
  Millis replica_max_lag{1000};     // the replica serves reads only while provably this close to the master
  std::string key_prefix = "user:";
  std::chrono::seconds ttl{3600};  // of every entry and tombstone
};

struct MysqlConfig {
  std::string host = "127.0.0.1";  // the one server, while `endpoints` is empty
  std::uint16_t port = 3306;
  std::vector<HostPort> endpoints;  // a primary and its replicas: writes go where @@read_only = 0
  std::string user = "root";
  std::string password;  // redacted in GET /config and logs
  std::string database = "users";
  Millis call_deadline{500};    // one operation (statement round trips, pool wait included)
  Millis connect_timeout{500};  // one connection attempt (handshake included)
  std::uint32_t pool_size = 4;  // connections at most; requests beyond wait within their deadline
  Millis reconnect_min{50};
  Millis reconnect_max{400};
  // How far MariaDB's clock may be behind this host's. A write statement runs only until its
  // deadline plus this (checked by MariaDB itself), so a write answered 503 cannot take effect later.
  Millis clock_skew{0};
  // Admission control (admission.h): requests doing MariaDB work at once (0: pool_size), and
  // requests waiting for their turn; beyond, or when the wait would not fit the deadline: 503 at once.
  std::uint32_t max_in_flight = 0;
  std::uint32_t max_queued = 64;
  std::uint32_t in_flight_limit() const { return max_in_flight > 0 ? max_in_flight : pool_size; }
};

struct ResilienceConfig {
  std::uint32_t breaker_failures = 3;  // consecutive failures or deadline misses that open a breaker
  Millis probe_interval{200};          // background health probe period (also the half-open probe)
  std::uint32_t retry_after_s = 1;     // the least Retry-After of a 503 (more until an open breaker's probe)
  std::uint32_t read_retries = 1;      // extra attempts of an idempotent read after a lost connection
  // The retry budget of those attempts (retry_budget.h): this share of reads, plus this many a second.
  std::uint32_t retry_budget_percent = 10;
  std::uint32_t retry_budget_per_s = 5;
};

struct CacheConfig {
  std::uint32_t repair_queue_capacity = 10'000;   // distinct users whose cache update awaits the master
  std::uint32_t recent_writes_capacity = 10'000;  // writes remembered to detect a lagging replica
  Millis recent_writes_window{0};                 // ... for this long after they reached the master (0: off)
  Millis replica_lag_window{10'000};         // updates the master got after being away: stale on the replica
                                             // until it shows them, or this long (0: off)
  std::uint32_t max_background_fills = 256;  // concurrent cache fills after misses; more are skipped
  std::uint32_t feed_server_id = 0;  // the cache feed's binlog replica id, unique per instance (0: no feed)
  Millis feed_lease{600};            // the feed's lease on the Redis master (renewed every quarter)
};

struct AdminConfig {
  // /metrics, /config and /health/* for operators (the public port keeps only /health/live and
  // /health/ready, for load balancers).
  HostPort listen{"127.0.0.1", 9080};
};

struct Config {
  HostPort listen{"127.0.0.1", 8080};
  AdminConfig admin;
  std::string instance_name = "user-service";  // in logs, /health/ready and cache-feed lease ownership
  std::string source_address;                  // outgoing connections bind to this IP (empty: any)
  Millis request_deadline{1000};
  Millis list_deadline{1000};   // GET /users: its one MariaDB statement (a page) may use all of it
  Millis shutdown_grace{5000};  // SIGTERM: in-flight requests get this long to finish
  std::string log_level = "info";
  HttpConfig http;
  RedisConfig redis;
  MysqlConfig mysql;
  ResilienceConfig resilience;
  CacheConfig cache;
};

struct LoadedConfig {
  Config config;
  std::string error;          // non-empty: the one-line reason the configuration was refused
  bool help = false;          // --help was given; `usage` holds the text
  bool print = false;         // --print-config was given
  bool print_schema = false;  // --print-schema: MariaDB's DDL as a script for the mariadb client
  bool version = false;       // --version was given: print it and exit
  std::string usage;
};

// Parses the command line (--config FILE, --help, --print-config, --print-schema and one flag per key) and
// the environment (a null-terminated array like `environ`).
LoadedConfig load_config(int argc, const char* const* argv, const char* const* envp);

// The pieces, for tests: each applies on top of `config` and returns an error message or "".
std::string apply_json(Config& config, std::string_view json_text);
std::string apply_env(Config& config, const char* const* envp);
std::string apply_flag(Config& config, std::string_view key, std::string_view value);
std::string validate(const Config& config);

// The effective configuration as a JSON object with the same keys as the file, secrets redacted.
std::string config_to_json(const Config& config);

// SIGHUP: what a running service takes from a configuration loaded anew. Only the log level,
// deadlines, breaker and retry settings change safely in flight; other keys keep their running
// values until a restart.
struct Reload {
  Config effective;                       // `running` with the reloadable changes applied
  std::vector<std::string> applied;       // keys whose new value is in effect
  std::vector<std::string> need_restart;  // keys that changed and were not applied
};
Reload plan_reload(const Config& running, const Config& loaded);

// Every key, as a JSON path (for documentation and tests).
std::vector<std::string> config_keys();
// The environment variable for a key: "redis.master" -> "USER_SERVICE_REDIS_MASTER".
std::string env_name(std::string_view key);

}  // namespace user_service
