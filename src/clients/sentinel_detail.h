// Internals of clients::redis::Sentinel that are pure functions, exposed for unit tests: reading
// Sentinel's replies and event messages, and writing commands in RESP.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "clients/redis.h"
#include "clients/sentinel.h"

namespace clients::redis::detail {

// The reply to SENTINEL get-master-addr-by-name: a 2-element array [ip, port]. nullopt for a nil
// reply (the sentinel does not know the name), an error reply, or anything malformed (a hostname, a
// bad port).
std::optional<Address> parse_master_address(const Reply& reply);

// A replica is usable for reads unless Sentinel flags it s_down, o_down or disconnected, and only
// when its link to the master is "ok".
bool replica_is_healthy(std::string_view flags, std::string_view master_link_status);

// The reply to SENTINEL replicas: an array of flat field/value arrays. Returns the announced
// addresses (ip, port fields) of the healthy replicas, sorted, without duplicates and without
// `exclude`; nullopt if the reply is not an array at all (an error reply, for example). Malformed
// entries are skipped.
std::optional<std::vector<Address>> parse_replicas(const Reply& reply,
                                                   const std::optional<Address>& exclude = {});

// The role ROLE reports ("master", "slave", "sentinel"); nullopt for anything else.
std::optional<std::string> parse_role(const Reply& reply);

// "+switch-master" payload: "<master-name> <old-ip> <old-port> <new-ip> <new-port>".
struct SwitchMaster {
  std::string name;
  Address from;
  Address to;
};
std::optional<SwitchMaster> parse_switch_master(std::string_view payload);

// An instance event (+sdown, -sdown, +odown, +convert-to-slave, +slave): what kind of instance it is
// about and under which master name. The payload is
// "<type> <name> <ip> <port> @ <master-name> <master-ip> <master-port>" for a replica or a sentinel,
// "master <name> <ip> <port> [...]" for a master. nullopt if malformed.
struct InstanceEvent {
  std::string type;  // "master", "slave", "sentinel"
  std::string master_name;
};
std::optional<InstanceEvent> parse_instance_event(std::string_view payload);

// A pub/sub push: ["message", channel, payload], ["subscribe", channel, count], ["pong", ...].
struct Push {
  std::string kind;  // lowercased first element
  std::string channel;
  std::string payload;
};
std::optional<Push> parse_push(const Reply& reply);

// A command as a RESP array of bulk strings (what clients send).
std::string resp_command(const std::vector<std::string>& args);

// The channels each sentinel connection subscribes to.
const std::vector<std::string>& sentinel_channels();

}  // namespace clients::redis::detail
