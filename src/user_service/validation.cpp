#include "user_service/validation.h"

#include <algorithm>
#include <boost/json/basic_parser_impl.hpp>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <set>

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

// Percent-decodes a path segment or query component (RFC 3986: '+' is a plus). False on a bad escape.
bool percent_decode(std::string_view in, std::string& out) {
  out.clear();
  std::size_t i = 0;
  while (i < in.size()) {
    // The bytes up to the next escape, at once (most ids have none).
    const std::size_t escape = std::min(in.find('%', i), in.size());
    out.append(in.data() + i, escape - i);
    if (escape == in.size()) break;
    if (escape + 2 >= in.size()) return false;
    const int hi = hex_value(in[escape + 1]);
    const int lo = hex_value(in[escape + 2]);
    if (hi < 0 || lo < 0) return false;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i = escape + 3;
  }
  return true;
}

}  // namespace

std::string decode_user_id(std::string_view segment, std::string& id) {
  id.clear();
  if (segment.empty()) return "user id is empty";
  if (segment.size() > 3 * kMaxIdBytes) return "user id is longer than 255 bytes";
  if (!percent_decode(segment, id)) return "user id has a bad percent-escape";
  if (id.empty()) return "user id is empty";
  if (id.size() > kMaxIdBytes) return "user id is longer than 255 bytes";
  if (!is_valid_utf8(id)) return "user id is not valid UTF-8";
  if (has_control_character(id)) return "user id contains control characters";
  return {};
}

namespace {

// The events of Boost.JSON's parser for a PUT body: which members the top-level object has (each
// name once), and the string values of "name" and "id". Deeper levels are only counted.
class PutBodyHandler {
 public:
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);
  using error_code = boost::system::error_code;
  using string_view = boost::json::string_view;

  enum class Member { other, name, id };
  struct Field {
    bool present = false;
    bool is_string = false;
    std::string value;
  };

  bool top_is_object = false;
  Field name, id;
  std::vector<std::string> duplicates, unknown;

  bool on_document_begin(error_code&) { return true; }
  bool on_document_end(error_code&) { return true; }
  bool on_array_begin(error_code&) {
    value_starts(false);
    ++depth_;
    return true;
  }
  bool on_array_end(std::size_t, error_code&) {
    --depth_;
    return true;
  }
  bool on_object_begin(error_code&) {
    if (depth_ == 0) top_is_object = true;
    value_starts(false);
    ++depth_;
    return true;
  }
  bool on_object_end(std::size_t, error_code&) {
    --depth_;
    return true;
  }
  bool on_string_part(string_view s, std::size_t, error_code&) {
    if (in_member()) text_.append(s.data(), s.size());
    return true;
  }
  bool on_string(string_view s, std::size_t, error_code&) {
    if (in_member()) {
      text_.append(s.data(), s.size());
      Field* f = field();
      if (f) f->value = std::move(text_);
      text_.clear();
    }
    value_starts(true);
    return true;
  }
  bool on_key_part(string_view s, std::size_t, error_code&) {
    if (depth_ == 1) text_.append(s.data(), s.size());
    return true;
  }
  bool on_key(string_view s, std::size_t, error_code&) {
    if (depth_ != 1) return true;
    text_.append(s.data(), s.size());
    member_ = text_ == "name" ? Member::name : text_ == "id" ? Member::id : Member::other;
    if (!seen_.insert(text_).second) {
      if (std::find(duplicates.begin(), duplicates.end(), text_) == duplicates.end())
        duplicates.push_back(text_);
    } else if (member_ == Member::other) {
      unknown.push_back(text_);
    }
    text_.clear();
    return true;
  }
  bool on_number_part(string_view, error_code&) { return true; }
  bool on_int64(std::int64_t, string_view, error_code&) { return scalar(); }
  bool on_uint64(std::uint64_t, string_view, error_code&) { return scalar(); }
  bool on_double(double, string_view, error_code&) { return scalar(); }
  bool on_bool(bool, error_code&) { return scalar(); }
  bool on_null(error_code&) { return scalar(); }
  bool on_comment_part(string_view, error_code&) { return true; }
  bool on_comment(string_view, error_code&) { return true; }

 private:
  // A value of the top-level object's current member (depth 1) starts.
  bool in_member() const { return depth_ == 1; }
  Field* field() { return member_ == Member::name ? &name : member_ == Member::id ? &id : nullptr; }
  void value_starts(bool is_string) {
    if (!in_member()) return;
    if (Field* f = field()) {
      f->present = true;
      f->is_string = is_string;
    }
    member_ = Member::other;
  }
  bool scalar() {
    value_starts(false);
    return true;
  }

  std::size_t depth_ = 0;
  Member member_ = Member::other;
  std::string text_;  // the key or string being read
  std::set<std::string> seen_;
};

// `"a", "b"` for a message: at most 10 names, each cut to 64 bytes (at a character boundary).
std::string quoted_names(const std::vector<std::string>& names) {
  std::string out;
  for (std::size_t i = 0; i < names.size() && i < 10; ++i) {
    std::string_view n = names[i];
    bool cut = false;
    if (n.size() > 64) {
      std::size_t end = 64;
      while (end > 0 && (static_cast<unsigned char>(n[end]) & 0xC0) == 0x80)
        --end;
      n = n.substr(0, end);
      cut = true;
    }
    if (!out.empty()) out += ", ";
    out += '"';
    out += n;
    out += cut ? "...\"" : "\"";
  }
  if (names.size() > 10) out += " and " + std::to_string(names.size() - 10) + " more";
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

// "v<decimal>" exactly as etag() writes it (no sign, no leading zero), or nullopt.
std::optional<std::uint64_t> version_of_tag(std::string_view opaque) {
  if (opaque.size() < 2 || opaque.size() > 21 || opaque[0] != 'v') return std::nullopt;
  const std::string_view digits = opaque.substr(1);
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (ec != std::errc{} || end != digits.data() + digits.size() || digits[0] == '+') return std::nullopt;
  if (digits.size() > 1 && digits[0] == '0') return std::nullopt;
  return v;
}

}  // namespace

std::string parse_put_body(std::string_view body, std::string_view path_id, std::string& name) {
  name.clear();
  if (body.size() > kMaxBodyBytes) return "request body too large";
  if (body.empty()) return "request body is empty: expected {\"name\": \"...\"}";
  boost::json::parse_options options;
  options.max_depth = 32;
  boost::json::basic_parser<PutBodyHandler> parser(options);
  boost::system::error_code ec;
  const std::size_t used = parser.write_some(false, body.data(), body.size(), ec);
  if (!ec && used < body.size()) ec = boost::json::error::extra_data;
  if (ec) return "request body is not valid JSON: " + ec.message();
  const PutBodyHandler& h = parser.handler();
  if (!h.top_is_object) return "request body must be a JSON object";
  if (!h.duplicates.empty()) return "request body has duplicate members: " + quoted_names(h.duplicates);
  if (!h.unknown.empty())
    return "request body has unknown members: " + quoted_names(h.unknown) +
           " (a user has \"name\", and \"id\" if it is the path's)";
  if (h.id.present) {
    if (!h.id.is_string) return "id must be a string";
    if (h.id.value != path_id) return "id in the body is not the id in the path";
  }
  if (!h.name.present) return "name is missing";
  if (!h.name.is_string) return "name must be a string";
  const std::string& s = h.name.value;
  if (s.empty()) return "name is empty";
  if (s.size() > kMaxNameBytes) return "name is longer than 255 bytes";
  if (!is_valid_utf8(s)) return "name is not valid UTF-8";
  name = s;
  return {};
}

std::string check_json_content_type(std::string_view content_type) {
  if (trim(content_type).empty()) return "Content-Type is missing: send application/json";
  std::string_view rest = content_type;
  const auto semi = rest.find(';');
  if (!iequals(trim(rest.substr(0, semi)), "application/json"))
    return "Content-Type must be application/json";
  while (semi != std::string_view::npos && !rest.empty()) {
    rest = rest.substr(rest.find(';') + 1);
    const auto next = rest.find(';');
    const std::string_view param = trim(rest.substr(0, next));
    const auto eq = param.find('=');
    if (eq != std::string_view::npos && iequals(trim(param.substr(0, eq)), "charset")) {
      std::string_view value = trim(param.substr(eq + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
        value = value.substr(1, value.size() - 2);
      if (!iequals(value, "utf-8")) return "the body must be UTF-8 (Content-Type charset)";
    }
    if (next == std::string_view::npos) break;
  }
  return {};
}

Etag::Etag(std::uint64_t version) {
  text_[0] = '"';
  text_[1] = 'v';
  char* end = std::to_chars(text_.data() + 2, text_.data() + text_.size() - 1, version).ptr;
  *end++ = '"';
  size_ = static_cast<std::size_t>(end - text_.data());
}

bool EntityTags::matches(std::uint64_t version) const {
  return any || std::find(versions.begin(), versions.end(), version) != versions.end();
}

std::string parse_entity_tags(std::string_view header, TagComparison comparison, EntityTags& out) {
  out = {};
  if (trim(header) == "*") {
    out.any = true;
    return {};
  }
  std::string_view rest = header;
  bool any_tag = false;
  while (!rest.empty()) {
    rest = trim(rest);
    if (rest.empty()) break;
    if (rest.front() == ',') {  // empty list elements are allowed
      rest.remove_prefix(1);
      continue;
    }
    bool weak = false;
    if (rest.starts_with("W/")) {
      weak = true;
      rest.remove_prefix(2);
    }
    if (rest.empty() || rest.front() != '"') return "malformed entity tag list (If-Match / If-None-Match)";
    const auto close = rest.find('"', 1);
    if (close == std::string_view::npos) return "malformed entity tag list (If-Match / If-None-Match)";
    const std::string_view opaque = rest.substr(1, close - 1);
    for (const char c : opaque) {
      const auto u = static_cast<unsigned char>(c);
      if (u < 0x21 || u == 0x7F) return "malformed entity tag list (If-Match / If-None-Match)";
    }
    rest.remove_prefix(close + 1);
    rest = trim(rest);
    if (!rest.empty() && rest.front() != ',') return "malformed entity tag list (If-Match / If-None-Match)";
    any_tag = true;
    if (weak && comparison == TagComparison::strong) continue;
    if (const auto v = version_of_tag(opaque)) out.versions.push_back(*v);
  }
  if (!any_tag) return "empty entity tag list (If-Match / If-None-Match)";
  return {};
}

Precondition if_match_precondition(const EntityTags& tags) {
  if (tags.any) return Precondition{Precondition::exists, {}};
  return Precondition{Precondition::version_in, tags.versions};
}

std::string parse_page_query(std::string_view query, PageQuery& out) {
  out = {};
  bool have_limit = false, have_after = false;
  std::string key, value;
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (part.empty()) continue;
    const auto eq = part.find('=');
    if (!percent_decode(part.substr(0, eq), key)) return "query parameter name has a bad percent-escape";
    if (eq == std::string_view::npos) return "query parameter " + quoted_names({key}) + " needs a value";
    if (key == "limit") {
      if (have_limit) return "query parameter \"limit\" is given twice";
      have_limit = true;
      const std::string_view v = part.substr(eq + 1);
      std::uint64_t n = 0;
      const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (v.empty() || ec != std::errc{} || end != v.data() + v.size() || n < 1 || n > kMaxPageSize)
        return "limit must be an integer from 1 to " + std::to_string(kMaxPageSize);
      out.limit = static_cast<std::uint32_t>(n);
    } else if (key == "after") {
      if (have_after) return "query parameter \"after\" is given twice";
      have_after = true;
      const std::string_view v = part.substr(eq + 1);
      if (v.empty()) continue;  // from the first
      if (auto e = decode_user_id(v, out.after); !e.empty()) return "after: " + e;
    } else {
      return "unknown query parameter " + quoted_names({key}) + " (GET /users takes limit and after)";
    }
  }
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

std::string page_json(const std::vector<ListedUser>& users, bool more) {
  std::string out = "{\"users\":[";
  for (std::size_t i = 0; i < users.size(); ++i) {
    if (i > 0) out += ',';
    out += user_json(users[i].id, users[i].name);
  }
  out += "],\"next\":";
  if (more && !users.empty()) {
    out += '"';
    common::log::append_json_escaped(out, users.back().id);
    out += '"';
  } else {
    out += "null";
  }
  out += '}';
  return out;
}

std::string error_json(std::string_view message, std::string_view request_id, std::string_view outcome) {
  std::string out = "{\"error\":\"";
  common::log::append_json_escaped(out, message);
  if (!request_id.empty()) {
    out += "\",\"request_id\":\"";
    common::log::append_json_escaped(out, request_id);
  }
  if (!outcome.empty()) {
    out += "\",\"outcome\":\"";
    common::log::append_json_escaped(out, outcome);
  }
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

std::string parse_request_timeout(std::string_view value, std::chrono::milliseconds& out) {
  constexpr std::string_view kExpected =
      "X-Request-Timeout-Ms must be a whole number of milliseconds (digits only, e.g. 250)";
  if (value.empty()) return std::string(kExpected);
  for (const char c : value)
    if (c < '0' || c > '9') return std::string(kExpected);
  constexpr std::int64_t kMost = 1'000'000'000;
  std::int64_t ms = 0;
  for (const char c : value) {
    ms = ms * 10 + (c - '0');
    if (ms >= kMost) {
      ms = kMost;
      break;
    }
  }
  out = std::chrono::milliseconds(ms);
  return {};
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
