// Request validation and the JSON of user-service's API, kept free of I/O so it is unit-tested and
// fuzzed on its own: ids, PUT bodies and their Content-Type, entity tags (ETag, If-Match,
// If-None-Match), the page query of GET /users, and the response bodies.
//
// Usage:
//   std::string id;
//   if (auto err = decode_user_id(segment, id); !err.empty()) { ...400 {"error": err}... }
//   if (auto err = check_json_content_type(req[field::content_type]); !err.empty()) { ...415... }
//   std::string name;
//   if (auto err = parse_put_body(req.body(), id, name); !err.empty()) { ...400... }
//   std::string body = user_json(id, name);   // {"id":"...","name":"..."}
//   res.add_line("ETag", etag(version).view());  // "v42" (formatted in place)
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "user_service/ports.h"

namespace user_service {

inline constexpr std::size_t kMaxIdBytes = 255;
inline constexpr std::size_t kMaxNameBytes = 255;
inline constexpr std::size_t kMaxBodyBytes = 64 * 1024;

// True if s is well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool is_valid_utf8(std::string_view s);

// Percent-decodes one path segment into `id` and checks it: not empty, at most 255 bytes, valid
// UTF-8, no control characters. Returns "" or the reason it is refused.
std::string decode_user_id(std::string_view segment, std::string& id);

// Parses a PUT body: a JSON object with a string "name" (not empty, at most 255 bytes, valid UTF-8)
// and optionally "id", which must then be the path's id (a user read by GET can be sent back). Any
// other member, and any member given twice, is refused, naming them. Returns "" or the reason.
std::string parse_put_body(std::string_view body, std::string_view path_id, std::string& name);

// A PUT's Content-Type: application/json (case-insensitive), parameters allowed, a charset only if
// UTF-8. Returns "" or the reason it is refused (415).
std::string check_json_content_type(std::string_view content_type);

// The entity tag of a user's version: "v<version>", quoted. Formatted in place: every cached GET
// sets one, and a string would cost it an allocation once versions grow past a few digits.
class Etag {
 public:
  explicit Etag(std::uint64_t version);
  std::string_view view() const { return {text_.data(), size_}; }

 private:
  std::array<char, 24> text_{};  // '"', 'v', at most 20 digits, '"'
  std::size_t size_ = 0;
};
inline Etag etag(std::uint64_t version) {
  return Etag(version);
}

// An If-Match or If-None-Match header (several fields joined by ","): `*`, or a list of entity
// tags. Tags of this service's form ("v<version>") name versions; others match none. If-Match
// compares strongly (W/"v5" matches nothing), If-None-Match weakly (W/"v5" matches version 5).
struct EntityTags {
  bool any = false;  // `*`
  std::vector<std::uint64_t> versions;
  bool matches(std::uint64_t version) const;
};
enum class TagComparison { strong, weak };
// Returns "" or the reason the header is malformed (400).
std::string parse_entity_tags(std::string_view header, TagComparison comparison, EntityTags& out);
// What If-Match requires of the row a write finds.
Precondition if_match_precondition(const EntityTags& tags);

// GET /users?limit=N&after=ID: `limit` 1..1000 (default 100), `after` a percent-encoded id (empty
// or absent: from the first). Unknown or repeated parameters are refused.
inline constexpr std::uint32_t kDefaultPageSize = 100;
inline constexpr std::uint32_t kMaxPageSize = 1000;
struct PageQuery {
  std::uint32_t limit = kDefaultPageSize;
  std::string after;
};
// `query` is the target's part after '?'. Returns "" or the reason it is refused (400).
std::string parse_page_query(std::string_view query, PageQuery& out);

// {"id":"<id>","name":"<name>"}, escaped.
std::string user_json(std::string_view id, std::string_view name);
// {"users":[{"id":..,"name":..},...],"next":"<last id>"|null}: `next` is the `after` of the next
// page, null on the last one.
std::string page_json(const std::vector<ListedUser>& users, bool more);
// {"error":"<message>","request_id":"<id>","outcome":"<outcome>"}, escaped; request_id and outcome
// only when given (outcome: a write's, "not_applied" or "unknown").
std::string error_json(std::string_view message, std::string_view request_id = {},
                       std::string_view outcome = {});

// X-Request-Start (set by the load balancer when it received the request, e.g. HAProxy's
// `t=%Ts%ms`): "t=" and a Unix time in seconds, milliseconds or microseconds (10, 13 or 16 digits).
// nullopt when it is not one of those.
std::optional<std::chrono::system_clock::time_point> parse_request_start(std::string_view value);

// X-Request-Timeout-Ms, the client's remaining budget: a whole number of milliseconds (digits only;
// 0 is a spent budget). Larger than a billion counts as a billion (beyond every deadline the service
// allows). Returns "" or the reason it is refused (400), naming the header.
std::string parse_request_timeout(std::string_view value, std::chrono::milliseconds& out);

// An X-Request-Id a client sent is echoed if it is 1..128 visible ASCII characters; otherwise a new
// one is generated.
bool acceptable_request_id(std::string_view id);

}  // namespace user_service
