// Request validation and the JSON of user-service's API, kept free of I/O so it is unit-tested and
// fuzzed on its own.
//
// Usage:
//   std::string id;
//   if (auto err = decode_user_id(segment, id); !err.empty()) { ...400 {"error": err}... }
//   std::string name;
//   if (auto err = parse_put_body(req.body(), name); !err.empty()) { ...400... }
//   std::string body = user_json(id, name);   // {"id":"...","name":"..."}
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace user_service {

inline constexpr std::size_t kMaxIdBytes = 255;
inline constexpr std::size_t kMaxNameBytes = 255;
inline constexpr std::size_t kMaxBodyBytes = 64 * 1024;

// True if s is well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool is_valid_utf8(std::string_view s);

// Percent-decodes one path segment into `id` and checks it: not empty, at most 255 bytes, valid
// UTF-8, no control characters. Returns "" or the reason it is refused.
std::string decode_user_id(std::string_view segment, std::string& id);

// Parses a PUT body: a JSON object with a string "name" (not empty, at most 255 bytes, valid UTF-8).
// Other members are ignored. Returns "" or the reason it is refused.
std::string parse_put_body(std::string_view body, std::string& name);

// {"id":"<id>","name":"<name>"}, escaped.
std::string user_json(std::string_view id, std::string_view name);
// {"error":"<message>"}, escaped.
std::string error_json(std::string_view message);

// X-Request-Start (set by the load balancer when it received the request, e.g. HAProxy's
// `t=%Ts%ms`): "t=" and a Unix time in seconds, milliseconds or microseconds (10, 13 or 16 digits).
// nullopt when it is not one of those.
std::optional<std::chrono::system_clock::time_point> parse_request_start(std::string_view value);

// An X-Request-Id a client sent is echoed if it is 1..128 visible ASCII characters; otherwise a new
// one is generated.
bool acceptable_request_id(std::string_view id);

}  // namespace user_service
