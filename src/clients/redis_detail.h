// Internals of clients::redis that are pure functions, exposed for unit tests: formatting commands,
// SHA1 for script identifiers, command screening.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "clients/redis.h"

namespace clients::redis::detail {

// Appends `args` to `out` as one command in the Redis protocol (an array of bulk strings, exactly
// what hiredis' redisFormatCommandArgv writes): formatted in place, so a reused `out` allocates
// nothing once it has grown to the size of the commands it carries.
void append_command(std::string& out, const std::vector<std::string>& args);
void append_command(std::string& out, std::span<const std::string_view> args);

// SHA1 of `data` as 40 lowercase hex digits (what Redis uses to name scripts).
std::string sha1_hex(std::string_view data);

// True for commands that would change the protocol state of a shared connection (pub/sub,
// MONITOR, HELLO); compared case-insensitively.
bool is_unsupported_command(std::string_view name);

// The arguments of EVALSHA/EVAL: verb, sha-or-source, number of keys, keys..., args....
std::vector<std::string> eval_command(std::string_view verb, std::string_view script,
                                      const std::vector<std::string>& keys,
                                      const std::vector<std::string>& args);

// True for an error reply saying the server does not know the script.
bool is_noscript(const Reply& reply);

// True for a numeric IPv4 or IPv6 address (what may be connected to without a DNS lookup).
bool is_numeric_ip(std::string_view host);

}  // namespace clients::redis::detail
