// Internals of clients::redis that are pure functions, exposed for unit tests: converting hiredis
// replies into owned values, SHA1 for script identifiers, command screening.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "clients/redis.h"

struct redisReply;

namespace clients::redis::detail {

// A deep copy of a hiredis reply (nullptr gives nil). Arrays nest to any depth; strings keep
// every byte (embedded NULs included).
Reply to_reply(const redisReply* reply);

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

}  // namespace clients::redis::detail
