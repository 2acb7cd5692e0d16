// The pure parts of clients::redis::Sentinel: addresses, settings, parsing of Sentinel's replies and
// messages. No coroutines here, so this compiles quickly.
#include "clients/sentinel_detail.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <map>
#include <stdexcept>

#include "clients/redis_detail.h"

namespace clients::redis {

std::string Address::to_string() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

namespace {

std::optional<std::uint16_t> parse_port(std::string_view text) {
  unsigned value = 0;
  if (text.empty() || text.size() > 5) return std::nullopt;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value == 0 || value > 65535)
    return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

std::optional<Address> make_address(std::string_view host, std::string_view port) {
  auto p = parse_port(port);
  if (!p || !detail::is_numeric_ip(host)) return std::nullopt;
  return Address{std::string(host), *p};
}

std::vector<std::string_view> split_spaces(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ')
      ++i;
    const std::size_t start = i;
    while (i < s.size() && s[i] != ' ')
      ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

}  // namespace

std::optional<Address> Address::parse(std::string_view text) {
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return std::nullopt;
    const std::string_view host = text.substr(1, close - 1);
    if (host.find(':') == std::string_view::npos) return std::nullopt;  // brackets are for IPv6
    return make_address(host, text.substr(close + 2));
  }
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  const std::string_view host = text.substr(0, colon);
  if (host.find(':') != std::string_view::npos) return std::nullopt;  // IPv6 needs brackets
  return make_address(host, text.substr(colon + 1));
}

void SentinelSettings::validate() const {
  if (sentinels.empty()) throw std::invalid_argument("sentinel: sentinels must not be empty");
  for (const auto& s : sentinels) {
    if (!detail::is_numeric_ip(s.host) || s.port == 0)
      throw std::invalid_argument("sentinel: sentinels must be numeric IP:port addresses: '" + s.to_string() +
                                  "'");
  }
  if (master_name.empty()) throw std::invalid_argument("sentinel: master_name must not be empty");
  if (master_name.find_first_of(" \r\n") != std::string::npos)
    throw std::invalid_argument("sentinel: master_name must not contain spaces or line breaks");
  if (!source_address.empty() && !detail::is_numeric_ip(source_address))
    throw std::invalid_argument("sentinel: source_address must be empty or a numeric IP address: '" +
                                source_address + "'");
  if (query_timeout.count() <= 0) throw std::invalid_argument("sentinel: query_timeout must be > 0");
  if (connect_timeout.count() <= 0) throw std::invalid_argument("sentinel: connect_timeout must be > 0");
  if (refresh_interval.count() <= 0) throw std::invalid_argument("sentinel: refresh_interval must be > 0");
  if (refresh_min_gap.count() < 0) throw std::invalid_argument("sentinel: refresh_min_gap must be >= 0");
  reconnect.validate();
}

}  // namespace clients::redis

namespace clients::redis::detail {

std::optional<Address> parse_master_address(const Reply& reply) {
  if (!reply.is_array() || reply.elements.size() != 2) return std::nullopt;
  const Reply& ip = reply.elements[0];
  const Reply& port = reply.elements[1];
  if (!ip.is_string() || !port.is_string()) return std::nullopt;
  return make_address(ip.str, port.str);
}

bool replica_is_healthy(std::string_view flags, std::string_view master_link_status) {
  if (master_link_status != "ok") return false;
  std::size_t i = 0;
  while (i <= flags.size()) {
    const auto comma = std::min(flags.find(',', i), flags.size());
    const std::string_view flag = flags.substr(i, comma - i);
    if (flag == "s_down" || flag == "o_down" || flag == "disconnected") return false;
    i = comma + 1;
  }
  return true;
}

std::optional<std::vector<Address>> parse_replicas(const Reply& reply,
                                                   const std::optional<Address>& exclude) {
  if (!reply.is_array()) return std::nullopt;
  std::vector<Address> out;
  for (const Reply& entry : reply.elements) {
    if (!entry.is_array() || entry.elements.size() % 2 != 0) continue;
    std::map<std::string_view, std::string_view> fields;
    for (std::size_t i = 0; i + 1 < entry.elements.size(); i += 2) {
      const Reply& k = entry.elements[i];
      const Reply& v = entry.elements[i + 1];
      if (k.is_string() && v.is_string()) fields.emplace(k.str, v.str);
    }
    const auto ip = fields.find("ip");
    const auto port = fields.find("port");
    const auto flags = fields.find("flags");
    const auto link = fields.find("master-link-status");
    if (ip == fields.end() || port == fields.end() || flags == fields.end() || link == fields.end()) continue;
    if (!replica_is_healthy(flags->second, link->second)) continue;
    auto address = make_address(ip->second, port->second);
    if (!address || (exclude && *address == *exclude)) continue;
    out.push_back(std::move(*address));
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::optional<std::string> parse_role(const Reply& reply) {
  if (!reply.is_array() || reply.elements.empty()) return std::nullopt;
  const Reply& role = reply.elements[0];
  if (!role.is_string() && !role.is_status()) return std::nullopt;
  return role.str;
}

std::optional<SwitchMaster> parse_switch_master(std::string_view payload) {
  const auto parts = split_spaces(payload);
  if (parts.size() != 5) return std::nullopt;
  auto from = make_address(parts[1], parts[2]);
  auto to = make_address(parts[3], parts[4]);
  if (!from || !to) return std::nullopt;
  return SwitchMaster{std::string(parts[0]), std::move(*from), std::move(*to)};
}

std::optional<InstanceEvent> parse_instance_event(std::string_view payload) {
  const auto parts = split_spaces(payload);
  if (parts.size() < 4) return std::nullopt;
  if (parts[0] == "master") return InstanceEvent{"master", std::string(parts[1])};
  const auto at = std::find(parts.begin(), parts.end(), "@");
  if (at == parts.end() || at + 1 == parts.end()) return std::nullopt;
  return InstanceEvent{std::string(parts[0]), std::string(*(at + 1))};
}

std::optional<Push> parse_push(const Reply& reply) {
  if (!reply.is_array() || reply.elements.empty()) return std::nullopt;
  const Reply& kind = reply.elements[0];
  if (!kind.is_string() && !kind.is_status()) return std::nullopt;
  Push p;
  p.kind = kind.str;
  std::transform(p.kind.begin(), p.kind.end(), p.kind.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (reply.elements.size() > 1 && reply.elements[1].is_string()) p.channel = reply.elements[1].str;
  if (reply.elements.size() > 2) {
    const Reply& third = reply.elements[2];
    p.payload = third.is_integer() ? std::to_string(third.integer) : third.str;
  }
  return p;
}

std::string resp_command(const std::vector<std::string>& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) {
    out += "$" + std::to_string(a.size()) + "\r\n";
    out += a;
    out += "\r\n";
  }
  return out;
}

const std::vector<std::string>& sentinel_channels() {
  static const std::vector<std::string> channels{"+switch-master",    "+sdown", "-sdown", "+odown",
                                                 "+convert-to-slave", "+slave"};
  return channels;
}

}  // namespace clients::redis::detail
