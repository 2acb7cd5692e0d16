#include "user_service/config.h"

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <boost/json.hpp>
#include <cctype>
#include <charconv>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <variant>

#include "common/log.h"
#include "user_service/validation.h"

namespace user_service {
namespace {

namespace json = boost::json;
using Seconds = std::chrono::seconds;

// A pointer to the setting a key controls.
using Target = std::variant<Millis*, Seconds*, std::uint32_t*, std::uint16_t*, std::string*, HostPort*,
                            std::vector<HostPort>*>;

struct Key {
  std::string_view path;
  std::function<Target(Config&)> target;
  std::uint64_t min = 0;  // numeric keys: inclusive range
  std::uint64_t max = std::numeric_limits<std::uint32_t>::max();
  bool secret = false;
};

// The one table of settings: file, environment, flags, validation and GET /config all read it.
const std::vector<Key>& keys() {
  static const std::vector<Key> table = {
      {"listen", [](Config& c) -> Target { return &c.listen; }},
      {"admin.listen", [](Config& c) -> Target { return &c.admin.listen; }},
      {"instance_name", [](Config& c) -> Target { return &c.instance_name; }},
      {"source_address", [](Config& c) -> Target { return &c.source_address; }},
      {"request_deadline_ms", [](Config& c) -> Target { return &c.request_deadline; }, 1, 600'000},
      {"list_deadline_ms", [](Config& c) -> Target { return &c.list_deadline; }, 1, 600'000},
      {"shutdown_grace_ms", [](Config& c) -> Target { return &c.shutdown_grace; }, 0, 600'000},
      {"log_level", [](Config& c) -> Target { return &c.log_level; }},
      {"http.request_timeout_ms", [](Config& c) -> Target { return &c.http.request_timeout; }, 1, 3'600'000},
      {"http.idle_timeout_ms", [](Config& c) -> Target { return &c.http.idle_timeout; }, 1, 3'600'000},
      {"http.max_connections", [](Config& c) -> Target { return &c.http.max_connections; }, 1, 1'000'000},
      {"redis.master", [](Config& c) -> Target { return &c.redis.master; }},
      {"redis.replica", [](Config& c) -> Target { return &c.redis.replica; }},
      {"redis.sentinels", [](Config& c) -> Target { return &c.redis.sentinels; }},
      {"redis.master_name", [](Config& c) -> Target { return &c.redis.master_name; }},
      {"redis.discovery_deadline_ms", [](Config& c) -> Target { return &c.redis.discovery_deadline; }, 1,
       60'000},
      {"redis.discovery_interval_ms", [](Config& c) -> Target { return &c.redis.discovery_interval; }, 10,
       3'600'000},
      {"redis.call_deadline_ms", [](Config& c) -> Target { return &c.redis.call_deadline; }, 1, 60'000},
      {"redis.connect_timeout_ms", [](Config& c) -> Target { return &c.redis.connect_timeout; }, 1, 60'000},
      {"redis.reconnect_min_ms", [](Config& c) -> Target { return &c.redis.reconnect_min; }, 1, 60'000},
      {"redis.reconnect_max_ms", [](Config& c) -> Target { return &c.redis.reconnect_max; }, 1, 60'000},
      {"redis.replica_max_lag_ms", [](Config& c) -> Target { return &c.redis.replica_max_lag; }, 0, 60'000},
      {"redis.key_prefix", [](Config& c) -> Target { return &c.redis.key_prefix; }},
      {"redis.ttl_s", [](Config& c) -> Target { return &c.redis.ttl; }, 1, 365ull * 24 * 3600},
      {"mysql.host", [](Config& c) -> Target { return &c.mysql.host; }},
      {"mysql.port", [](Config& c) -> Target { return &c.mysql.port; }, 1, 65535},
      {"mysql.endpoints", [](Config& c) -> Target { return &c.mysql.endpoints; }},
      {"mysql.user", [](Config& c) -> Target { return &c.mysql.user; }},
      {"mysql.password", [](Config& c) -> Target { return &c.mysql.password; }, 0, 0, true},
      {"mysql.database", [](Config& c) -> Target { return &c.mysql.database; }},
      {"mysql.call_deadline_ms", [](Config& c) -> Target { return &c.mysql.call_deadline; }, 1, 60'000},
      {"mysql.connect_timeout_ms", [](Config& c) -> Target { return &c.mysql.connect_timeout; }, 1, 60'000},
      {"mysql.pool_size", [](Config& c) -> Target { return &c.mysql.pool_size; }, 1, 256},
      {"mysql.reconnect_min_ms", [](Config& c) -> Target { return &c.mysql.reconnect_min; }, 1, 60'000},
      {"mysql.reconnect_max_ms", [](Config& c) -> Target { return &c.mysql.reconnect_max; }, 1, 60'000},
      {"mysql.clock_skew_ms", [](Config& c) -> Target { return &c.mysql.clock_skew; }, 0, 60'000},
      {"mysql.max_in_flight", [](Config& c) -> Target { return &c.mysql.max_in_flight; }, 0, 4096},
      {"mysql.max_queued", [](Config& c) -> Target { return &c.mysql.max_queued; }, 0, 1'000'000},
      {"resilience.breaker_failures", [](Config& c) -> Target { return &c.resilience.breaker_failures; }, 1,
       1000},
      {"resilience.probe_interval_ms", [](Config& c) -> Target { return &c.resilience.probe_interval; }, 10,
       60'000},
      {"resilience.retry_after_s", [](Config& c) -> Target { return &c.resilience.retry_after_s; }, 0, 3600},
      {"resilience.read_retries", [](Config& c) -> Target { return &c.resilience.read_retries; }, 0, 5},
      {"resilience.retry_budget_percent",
       [](Config& c) -> Target { return &c.resilience.retry_budget_percent; }, 0, 100},
      {"resilience.retry_budget_per_s", [](Config& c) -> Target { return &c.resilience.retry_budget_per_s; },
       0, 10'000},
      {"cache.repair_queue_capacity", [](Config& c) -> Target { return &c.cache.repair_queue_capacity; }, 1,
       10'000'000},
      {"cache.recent_writes_capacity", [](Config& c) -> Target { return &c.cache.recent_writes_capacity; }, 0,
       10'000'000},
      {"cache.recent_writes_window_ms", [](Config& c) -> Target { return &c.cache.recent_writes_window; }, 0,
       3'600'000},
      {"cache.replica_lag_window_ms", [](Config& c) -> Target { return &c.cache.replica_lag_window; }, 0,
       3'600'000},
      {"cache.max_background_fills", [](Config& c) -> Target { return &c.cache.max_background_fills; }, 0,
       100'000},
      {"cache.feed_server_id", [](Config& c) -> Target { return &c.cache.feed_server_id; }, 0, 4'294'967'295},
      {"cache.feed_lease_ms", [](Config& c) -> Target { return &c.cache.feed_lease; }, 40, 60'000},
  };
  return table;
}

const Key* find_key(std::string_view path) {
  for (const auto& k : keys())
    if (k.path == path) return &k;
  return nullptr;
}

bool is_prefix_of_some_key(std::string_view prefix) {
  for (const auto& k : keys()) {
    if (k.path.size() > prefix.size() && k.path.starts_with(prefix) && k.path[prefix.size()] == '.')
      return true;
  }
  return false;
}

std::string parse_host_port(std::string_view text, HostPort& out) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size())
    return "expected host:port, got \"" + std::string(text) + "\"";
  std::string_view host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string_view port_text = text.substr(colon + 1);
  unsigned port = 0;
  const auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc{} || p != port_text.data() + port_text.size() || port == 0 || port > 65535)
    return "invalid port in \"" + std::string(text) + "\"";
  for (const char c : host) {
    if (std::isspace(static_cast<unsigned char>(c)) || std::iscntrl(static_cast<unsigned char>(c)))
      return "invalid host in \"" + std::string(text) + "\"";
  }
  out.host.assign(host);
  out.port = static_cast<std::uint16_t>(port);
  return {};
}

std::string range_error(const Key& key, std::uint64_t v) {
  if (v < key.min || v > key.max) {
    return std::string(key.path) + ": " + std::to_string(v) + " is out of range [" + std::to_string(key.min) +
           ", " + std::to_string(key.max) + "]";
  }
  return {};
}

// Stores an unsigned number into whatever the key targets.
std::string store_number(const Key& key, Config& config, std::uint64_t v) {
  if (auto e = range_error(key, v); !e.empty()) return e;
  return std::visit(
      [&](auto* p) -> std::string {
        using T = std::remove_pointer_t<decltype(p)>;
        if constexpr (std::is_same_v<T, Millis>) {
          *p = Millis(static_cast<Millis::rep>(v));
        } else if constexpr (std::is_same_v<T, Seconds>) {
          *p = Seconds(static_cast<Seconds::rep>(v));
        } else if constexpr (std::is_same_v<T, std::uint32_t> || std::is_same_v<T, std::uint16_t>) {
          *p = static_cast<T>(v);
        } else {
          return std::string(key.path) + ": expected a string, got a number";
        }
        return {};
      },
      key.target(config));
}

std::string store_string(const Key& key, Config& config, std::string_view s, bool from_text) {
  return std::visit(
      [&](auto* p) -> std::string {
        using T = std::remove_pointer_t<decltype(p)>;
        if constexpr (std::is_same_v<T, std::string>) {
          *p = std::string(s);
          return {};
        } else if constexpr (std::is_same_v<T, HostPort>) {
          if (auto e = parse_host_port(s, *p); !e.empty()) return std::string(key.path) + ": " + e;
          return {};
        } else if constexpr (std::is_same_v<T, std::vector<HostPort>>) {
          // From the environment or a flag: "h:p,h:p" (empty: none). In a file: a JSON array.
          if (!from_text) return std::string(key.path) + ": expected an array of \"host:port\" strings";
          p->clear();
          for (std::string_view rest = s; !rest.empty();) {
            const auto comma = rest.find(',');
            HostPort hp;
            if (auto e = parse_host_port(rest.substr(0, comma), hp); !e.empty())
              return std::string(key.path) + ": " + e;
            p->push_back(std::move(hp));
            rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
          }
          return {};
        } else {
          if (!from_text) return std::string(key.path) + ": expected a number, got a string";
          std::uint64_t v = 0;
          const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
          if (s.empty() || ec != std::errc{} || end != s.data() + s.size())
            return std::string(key.path) + ": expected a non-negative integer, got \"" + std::string(s) +
                   "\"";
          return store_number(key, config, v);
        }
      },
      key.target(config));
}

std::string apply_json_value(Config& config, const std::string& path, const json::value& v) {
  const Key* key = find_key(path);
  if (!key) {
    if (v.is_object() && (path.empty() || is_prefix_of_some_key(path))) {
      for (const auto& [name, child] : v.as_object()) {
        const std::string child_path = path.empty() ? std::string(name) : path + "." + std::string(name);
        if (auto e = apply_json_value(config, child_path, child); !e.empty()) return e;
      }
      return {};
    }
    return "unknown configuration key \"" + path + "\"";
  }
  if (v.is_string()) return store_string(*key, config, v.as_string(), false);
  const Target target = key->target(config);
  if (auto* const* list = std::get_if<std::vector<HostPort>*>(&target); list && v.is_array()) {
    (*list)->clear();
    for (const auto& item : v.as_array()) {
      HostPort hp;
      if (!item.is_string()) return path + ": expected an array of \"host:port\" strings";
      if (auto e = parse_host_port(item.as_string(), hp); !e.empty()) return path + ": " + e;
      (*list)->push_back(std::move(hp));
    }
    return {};
  }
  if (v.is_uint64()) return store_number(*key, config, v.as_uint64());
  if (v.is_int64()) {
    if (v.as_int64() < 0) return path + ": must not be negative";
    return store_number(*key, config, static_cast<std::uint64_t>(v.as_int64()));
  }
  if (std::holds_alternative<std::vector<HostPort>*>(target))
    return path + ": expected an array of \"host:port\" strings";
  return path + ": expected a " +
         std::string(std::holds_alternative<std::string*>(target) || std::holds_alternative<HostPort*>(target)
                         ? "string"
                         : "non-negative integer");
}

}  // namespace

std::string HostPort::to_string() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

std::vector<std::string> config_keys() {
  std::vector<std::string> out;
  for (const auto& k : keys())
    out.emplace_back(k.path);
  return out;
}

std::string env_name(std::string_view key) {
  std::string out = "USER_SERVICE_";
  for (const char c : key)
    out.push_back(c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  return out;
}

std::string apply_json(Config& config, std::string_view json_text) {
  boost::system::error_code ec;
  json::value v = json::parse(json_text, ec);
  if (ec) return "configuration is not valid JSON: " + ec.message();
  if (!v.is_object()) return "configuration must be a JSON object";
  return apply_json_value(config, "", v);
}

std::string apply_env(Config& config, const char* const* envp) {
  if (!envp) return {};
  static constexpr std::string_view prefix = "USER_SERVICE_";
  for (; *envp; ++envp) {
    const std::string_view entry(*envp);
    if (!entry.starts_with(prefix)) continue;
    const auto eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string_view name = entry.substr(0, eq);
    const Key* key = nullptr;
    for (const auto& k : keys()) {
      if (env_name(k.path) == name) key = &k;
    }
    if (!key) return "unknown environment variable " + std::string(name);
    if (auto e = store_string(*key, config, entry.substr(eq + 1), true); !e.empty())
      return std::string(name) + ": " + e;
  }
  return {};
}

std::string apply_flag(Config& config, std::string_view key_path, std::string_view value) {
  const Key* key = find_key(key_path);
  if (!key) return "unknown flag --" + std::string(key_path);
  return store_string(*key, config, value, true);
}

std::string validate(const Config& c) {
  if (!common::log::parse_level(c.log_level)) return "log_level: unknown level \"" + c.log_level + "\"";
  if (c.redis.reconnect_min > c.redis.reconnect_max)
    return "redis.reconnect_min_ms must not exceed redis.reconnect_max_ms";
  if (c.mysql.reconnect_min > c.mysql.reconnect_max)
    return "mysql.reconnect_min_ms must not exceed mysql.reconnect_max_ms";
  // Every setting is text, shown as JSON by GET /config: bytes that are not UTF-8 are refused
  // (found by fuzzing: a key prefix of raw bytes made GET /config answer invalid JSON).
  Config copy = c;  // the key table hands out mutable pointers
  for (const auto& key : keys()) {
    const auto target = key.target(copy);
    if (const auto* text = std::get_if<std::string*>(&target); text && !is_valid_utf8(**text))
      return std::string(key.path) + " must be valid UTF-8";
  }
  if (c.redis.key_prefix.empty()) return "redis.key_prefix must not be empty";
  if (("tombstone:" + c.redis.key_prefix).starts_with(c.redis.key_prefix))
    return "redis.key_prefix must not be a prefix of \"tombstone:\" + itself (tombstone keys would collide)";
  // The clients do no DNS lookups on the event loop: every address is numeric.
  if (c.admin.listen == c.listen && c.listen.port != 0)
    return "admin.listen must differ from listen (" + c.listen.to_string() + ")";
  const std::pair<const char*, const std::string*> hosts[] = {{"listen", &c.listen.host},
                                                              {"admin.listen", &c.admin.listen.host},
                                                              {"redis.master", &c.redis.master.host},
                                                              {"redis.replica", &c.redis.replica.host},
                                                              {"mysql.host", &c.mysql.host}};
  const auto numeric = [](const std::string& host) {
    boost::system::error_code ec;
    boost::asio::ip::make_address(host, ec);
    return !ec;
  };
  for (const auto& [key, host] : hosts) {
    if (!numeric(*host))
      return std::string(key) + ": \"" + *host + "\" is not a numeric IP address (use 127.0.0.1)";
  }
  const std::pair<const char*, const std::vector<HostPort>*> lists[] = {
      {"redis.sentinels", &c.redis.sentinels}, {"mysql.endpoints", &c.mysql.endpoints}};
  for (const auto& [key, list] : lists) {
    for (const auto& hp : *list) {
      if (!numeric(hp.host))
        return std::string(key) + ": \"" + hp.host + "\" is not a numeric IP address (use 127.0.0.1)";
    }
    if (list->size() > 16) return std::string(key) + ": at most 16 addresses";
  }
  if (!c.source_address.empty() && !numeric(c.source_address))
    return "source_address: \"" + c.source_address + "\" is not a numeric IP address";
  if (!c.redis.sentinels.empty() && c.redis.master_name.empty())
    return "redis.master_name must not be empty when redis.sentinels is set";
  if (c.instance_name.empty()) return "instance_name must not be empty";
  if (c.mysql.host.empty()) return "mysql.host must not be empty";
  if (c.mysql.database.empty()) return "mysql.database must not be empty";
  for (const char ch : c.mysql.database) {
    // The database name is written into CREATE DATABASE (identifiers cannot be bound as parameters).
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_' && ch != '$')
      return "mysql.database may only contain letters, digits, '_' and '$'";
  }
  return {};
}

namespace {
bool reloadable(std::string_view key) {
  static constexpr std::string_view kReloadable[] = {"log_level",
                                                     "request_deadline_ms",
                                                     "list_deadline_ms",
                                                     "redis.call_deadline_ms",
                                                     "mysql.call_deadline_ms",
                                                     "resilience.breaker_failures",
                                                     "resilience.probe_interval_ms",
                                                     "resilience.retry_after_s",
                                                     "resilience.read_retries"};
  return std::find(std::begin(kReloadable), std::end(kReloadable), key) != std::end(kReloadable);
}
}  // namespace

Reload plan_reload(const Config& running, const Config& loaded_in) {
  Reload out{running, {}, {}};
  Config loaded = loaded_in;  // the key table hands out mutable pointers
  for (const auto& key : keys()) {
    const Target now = key.target(out.effective), next = key.target(loaded);
    std::visit(
        [&](auto* current) {
          const auto* wanted = *std::get_if<decltype(current)>(&next);
          if (*current == *wanted) return;
          if (reloadable(key.path)) {
            *current = *wanted;
            out.applied.emplace_back(key.path);
          } else {
            out.need_restart.emplace_back(key.path);
          }
        },
        now);
  }
  return out;
}

std::string config_to_json(const Config& config_in) {
  Config config = config_in;  // the key table hands out mutable pointers
  json::object root;
  for (const auto& key : keys()) {
    json::value v = std::visit(
        [&](auto* p) -> json::value {
          using T = std::remove_pointer_t<decltype(p)>;
          if constexpr (std::is_same_v<T, Millis> || std::is_same_v<T, Seconds>) {
            return json::value(static_cast<std::int64_t>(p->count()));
          } else if constexpr (std::is_same_v<T, std::uint32_t> || std::is_same_v<T, std::uint16_t>) {
            return json::value(static_cast<std::uint64_t>(*p));
          } else if constexpr (std::is_same_v<T, std::string>) {
            if (key.secret) return json::value(p->empty() ? "" : "***");
            return json::value(*p);
          } else if constexpr (std::is_same_v<T, std::vector<HostPort>>) {
            json::array a;
            for (const auto& hp : *p)
              a.emplace_back(hp.to_string());
            return a;
          } else {
            return json::value(p->to_string());
          }
        },
        key.target(config));
    json::object* obj = &root;
    std::string_view path = key.path;
    for (auto dot = path.find('.'); dot != std::string_view::npos; dot = path.find('.')) {
      json::value& child = (*obj)[path.substr(0, dot)];
      if (!child.is_object()) child = json::object();
      obj = &child.as_object();
      path = path.substr(dot + 1);
    }
    (*obj)[path] = std::move(v);
  }
  return json::serialize(root);
}

LoadedConfig load_config(int argc, const char* const* argv, const char* const* envp) {
  LoadedConfig out;
  std::string config_file;
  std::vector<std::pair<std::string, std::string>> flags;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg(argv[i]);
    if (arg == "--help" || arg == "-h") {
      out.help = true;  // as Go's flag package: the rest is not read
      break;
    }
    if (arg == "--print-config") {
      out.print = true;
      continue;
    }
    if (arg == "--print-schema") {
      out.print_schema = true;
      continue;
    }
    if (arg == "--version") {
      out.version = true;
      return out;
    }
    if (!arg.starts_with("--")) {
      out.error = "unexpected argument \"" + std::string(arg) + "\" (flags are --key=value)";
      return out;
    }
    arg.remove_prefix(2);
    std::string name, value;
    if (const auto eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    } else {
      name = arg;
      if (i + 1 >= argc) {
        out.error = "flag --" + name + " needs a value";
        return out;
      }
      value = argv[++i];
    }
    if (name == "config") {
      config_file = value;
    } else if (!find_key(name)) {
      out.error = "unknown flag --" + name;
      return out;
    } else {
      flags.emplace_back(std::move(name), std::move(value));
    }
  }
  if (out.help) {
    std::ostringstream u;
    u << "usage: user-service [--config FILE] [--print-config | --print-schema] [--version] [--KEY=VALUE "
         "...]\n"
      << "Settings (JSON path = flag; environment variable in brackets), defaults:\n";
    const json::value defaults = json::parse(config_to_json(Config{}));
    for (const auto& k : keys()) {
      const json::value* v = &defaults;
      std::string_view path = k.path;
      for (auto dot = path.find('.'); dot != std::string_view::npos; dot = path.find('.')) {
        v = &v->as_object().at(path.substr(0, dot));
        path = path.substr(dot + 1);
      }
      u << "  --" << k.path << "  [" << env_name(k.path) << "]  " << json::serialize(v->as_object().at(path))
        << "\n";
    }
    out.usage = u.str();
    return out;
  }
  if (!config_file.empty()) {
    std::ifstream in(config_file, std::ios::binary);
    if (!in) {
      out.error = "cannot read configuration file " + config_file;
      return out;
    }
    std::ostringstream text;
    text << in.rdbuf();
    if (auto e = apply_json(out.config, text.str()); !e.empty()) {
      out.error = config_file + ": " + e;
      return out;
    }
  }
  if (auto e = apply_env(out.config, envp); !e.empty()) {
    out.error = e;
    return out;
  }
  for (const auto& [name, value] : flags) {
    if (auto e = apply_flag(out.config, name, value); !e.empty()) {
      out.error = "--" + name + ": " + e;
      return out;
    }
  }
  out.error = validate(out.config);
  return out;
}

}  // namespace user_service
