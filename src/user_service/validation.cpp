#include "user_service/validation.h"

#include <boost/json/parser.hpp>
#include <cstdint>

#include "common/log.h"

namespace user_service {

bool is_valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (static_cast<std::size_t>(end - p) <= n) return false;
    for (std::size_t i = 1; i <= n; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    static constexpr std::uint32_t min_for_length[] = {0, 0x80, 0x800, 0x10000};
    if (cp < min_for_length[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    p += n + 1;
  }
  return true;
}

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool has_control_character(std::string_view s) {
  // C0 controls and DEL; C1 controls (U+0080..U+009F) are two bytes C2 80..C2 9F in UTF-8.
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7F) return true;
    if (c == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) < 0xA0) return true;
  }
  return false;
}

}  // namespace

std::string decode_user_id(std::string_view segment, std::string& id) {
  id.clear();
  if (segment.empty()) return "user id is empty";
  if (segment.size() > 3 * kMaxIdBytes) return "user id is longer than 255 bytes";
  id.reserve(segment.size());
  for (std::size_t i = 0; i < segment.size(); ++i) {
    const char c = segment[i];
    if (c != '%') {
      id.push_back(c);
      continue;
    }
    if (i + 2 >= segment.size()) return "user id has a bad percent-escape";
    const int hi = hex_value(segment[i + 1]);
    const int lo = hex_value(segment[i + 2]);
    if (hi < 0 || lo < 0) return "user id has a bad percent-escape";
    id.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  if (id.empty()) return "user id is empty";
  if (id.size() > kMaxIdBytes) return "user id is longer than 255 bytes";
  if (!is_valid_utf8(id)) return "user id is not valid UTF-8";
  if (has_control_character(id)) return "user id contains control characters";
  return {};
}

std::string parse_put_body(std::string_view body, std::string& name) {
  name.clear();
  if (body.size() > kMaxBodyBytes) return "request body too large";
  if (body.empty()) return "request body is empty: expected {\"name\": \"...\"}";
  boost::json::parse_options options;
  options.max_depth = 32;
  boost::json::parser parser({}, options);
  boost::system::error_code ec;
  parser.write(body.data(), body.size(), ec);
  if (ec) return "request body is not valid JSON: " + ec.message();
  const boost::json::value v = parser.release();
  if (!v.is_object()) return "request body must be a JSON object";
  const auto* n = v.as_object().if_contains("name");
  if (!n) return "name is missing";
  if (!n->is_string()) return "name must be a string";
  const auto& s = n->as_string();
  if (s.empty()) return "name is empty";
  if (s.size() > kMaxNameBytes) return "name is longer than 255 bytes";
  const std::string_view sv(s.data(), s.size());
  if (!is_valid_utf8(sv)) return "name is not valid UTF-8";
  name.assign(sv);
  return {};
}

std::string user_json(std::string_view id, std::string_view name) {
  std::string out;
  out.reserve(id.size() + name.size() + 24);
  out += "{\"id\":\"";
  common::log::append_json_escaped(out, id);
  out += "\",\"name\":\"";
  common::log::append_json_escaped(out, name);
  out += "\"}";
  return out;
}

std::string error_json(std::string_view message) {
  std::string out = "{\"error\":\"";
  common::log::append_json_escaped(out, message);
  out += "\"}";
  return out;
}

bool acceptable_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (const char c : id) {
    if (c <= 0x20 || c >= 0x7F) return false;
  }
  return true;
}

std::optional<std::chrono::system_clock::time_point> parse_request_start(std::string_view value) {
  if (!value.starts_with("t=")) return std::nullopt;
  value.remove_prefix(2);
  std::int64_t n = 0;
  for (const char c : value) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  using namespace std::chrono;
  switch (value.size()) {
    case 10:
      return system_clock::time_point(seconds(n));
    case 13:
      return system_clock::time_point(milliseconds(n));
    case 16:
      return system_clock::time_point(duration_cast<system_clock::duration>(microseconds(n)));
    default:
      return std::nullopt;
  }
}

}  // namespace user_service
