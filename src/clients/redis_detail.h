// Internals of clients::redis that are pure functions, exposed for unit tests: converting hiredis
// replies into owned values, formatting commands, SHA1 for script identifiers, command screening.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "clients/redis.h"

struct redisReply;
struct redisReader;

namespace clients::redis::detail {

// A deep copy of a hiredis reply (nullptr gives nil). Arrays nest to any depth; strings keep
// every byte (embedded NULs included).
Reply to_reply(const redisReply* reply);

// The largest array reply accepted (our commands get 2 elements, SCAN ~500 keys).
inline constexpr int kMaxReplyElements = 1 << 20;

// Makes `reader` (created with hiredis' default reply functions) refuse an array reply announcing
// more than kMaxReplyElements elements: hiredis 0.14 allocates the element pointers as soon as it
// reads the count, so "*1000000000" from a server took 8 GB before any element arrived. The reader
// reports an out-of-memory error instead and the client drops the connection.
void limit_reply_arrays(redisReader* reader);

// Makes `reader` build every reply as a Reply directly, instead of hiredis' redisReply tree that
// to_reply() would copy: one allocation per reply and one per array, against hiredis' two per
// element and the copy's own. Arrays are limited as by limit_reply_arrays. What such a reader
// returns is read (and may be moved from) with built_reply(); hiredis frees it through the same
// table. Since hiredis itself looks at the `type` and `str` of an error reply no command awaits,
// the object starts with a redisReply header that says them.
//
//   build_replies(ac->c.reader);                    // once, right after redisAsyncConnect
//   Reply r = std::move(built_reply(raw));          // in a reply callback
void build_replies(redisReader* reader);
Reply& built_reply(void* object);

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
