// Internals of clients::redis that are pure functions, exposed for unit tests: a hiredis reply
// reader building owned values, formatting commands, SHA1 for script identifiers, command screening.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "clients/redis.h"

struct redisReader;

namespace clients::redis::detail {

// The largest array reply accepted (our commands get 2 elements, SCAN ~500 keys).
inline constexpr int kMaxReplyElements = 1 << 20;

// Makes `reader` build every reply as a Reply directly, instead of hiredis' redisReply tree: one
// allocation per reply and one per array, against hiredis' two per element plus a copy into a
// Reply. An array reply announcing more than kMaxReplyElements elements is refused (hiredis 0.14
// would allocate its element pointers as soon as it reads the count: "*1000000000" took 8 GB); the
// reader reports out of memory and the connection is dropped. What such a reader returns is taken
// with take_built_reply() (built_reply() reads it in place; the reader's freeObject frees it).
//
//   ReaderPtr reader = make_reader();               // a reader that builds Replies
//   redisReaderFeed(reader.get(), bytes, n);
//   void* raw = nullptr;
//   redisReaderGetReply(reader.get(), &raw);        // raw: a reply, or nullptr (need more bytes)
//   Reply r = take_built_reply(raw);
void build_replies(redisReader* reader);
Reply& built_reply(void* object);
Reply take_built_reply(void* object);

struct ReaderFree {
  void operator()(redisReader* r) const;
};
using ReaderPtr = std::unique_ptr<redisReader, ReaderFree>;
// A new reader set up by build_replies (null if hiredis cannot allocate one).
ReaderPtr make_reader();

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
