#include "faultproxy/go/json.h"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "faultproxy/go/strconv.h"
#include "faultproxy/go/utf8.h"

namespace faultproxy::go::json {
namespace {

constexpr int kMaxDepth = 1000;

// Go's quoteChar: how a byte is shown in "invalid character ..." messages.
std::string quote_char(unsigned char c) {
  if (c == '\'') return "'\\''";
  if (c == '"') return "'\"'";
  switch (c) {
    case '\n':
      return "'\\n'";
    case '\r':
      return "'\\r'";
    case '\t':
      return "'\\t'";
    case '\a':
      return "'\\a'";
    case '\b':
      return "'\\b'";
    case '\f':
      return "'\\f'";
    case '\v':
      return "'\\v'";
    case '\\':
      return "'\\\\'";
    default:
      break;
  }
  char buf[16];
  if (c < 0x20 || c == 0x7f) {
    std::snprintf(buf, sizeof buf, "'\\x%02x'", c);
    return buf;
  }
  if (c < 0x80) return std::string("'") + static_cast<char>(c) + "'";
  if (c < 0xa0) {
    std::snprintf(buf, sizeof buf, "'\\u%04x'", c);
    return buf;
  }
  // Go shows the byte as the rune U+00XX, UTF-8 encoded.
  std::string s = "'";
  s += static_cast<char>(0xc0 | (c >> 6));
  s += static_cast<char>(0x80 | (c & 0x3f));
  return s + "'";
}

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  Parsed run() {
    Parsed p;
    skip_ws();
    if (pos_ >= s_.size()) {
      p.error = "EOF";
      return p;
    }
    if (!value(p.value, 0)) p.error = error_;
    return p;
  }

 private:
  bool fail_char(std::string_view context) {
    if (pos_ >= s_.size()) {
      error_ = "unexpected EOF";
    } else {
      error_ = "invalid character " + quote_char(static_cast<unsigned char>(s_[pos_])) + " " +
               std::string(context);
    }
    return false;
  }
  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }
  bool value(Value& v, int depth) {
    if (depth > kMaxDepth) {
      error_ = "exceeded max depth";
      return false;
    }
    if (pos_ >= s_.size()) return fail_char("");
    const char c = s_[pos_];
    switch (c) {
      case '{':
        return object(v, depth);
      case '[':
        return array(v, depth);
      case '"':
        v.kind = Value::Kind::string;
        return string(v.text);
      case 't':
        v.kind = Value::Kind::boolean;
        v.boolean = true;
        return literal("true");
      case 'f':
        v.kind = Value::Kind::boolean;
        return literal("false");
      case 'n':
        v.kind = Value::Kind::null;
        return literal("null");
      default:
        if (c == '-' || (c >= '0' && c <= '9')) {
          v.kind = Value::Kind::number;
          return number(v.text);
        }
        return fail_char("looking for beginning of value");
    }
  }
  bool literal(std::string_view word) {
    for (std::size_t i = 1; i < word.size(); ++i) {
      if (pos_ + i >= s_.size()) {
        pos_ += i;
        return fail_char("");
      }
      if (s_[pos_ + i] != word[i]) {
        pos_ += i;
        return fail_char("in literal " + std::string(word) + " (expecting '" + std::string(1, word[i]) +
                         "')");
      }
    }
    pos_ += word.size();
    return true;
  }
  static bool digit(char c) { return c >= '0' && c <= '9'; }
  bool number(std::string& out) {
    const std::size_t start = pos_;
    if (s_[pos_] == '-') {
      ++pos_;
      if (pos_ >= s_.size()) return fail_char("");
      if (!digit(s_[pos_])) return fail_char("in numeric literal");
    }
    if (s_[pos_] == '0') {
      ++pos_;
    } else {
      while (pos_ < s_.size() && digit(s_[pos_]))
        ++pos_;
    }
    if (pos_ < s_.size() && s_[pos_] == '.') {
      ++pos_;
      if (pos_ >= s_.size()) return fail_char("");
      if (!digit(s_[pos_])) return fail_char("after decimal point in numeric literal");
      while (pos_ < s_.size() && digit(s_[pos_]))
        ++pos_;
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (pos_ >= s_.size()) return fail_char("");
      if (!digit(s_[pos_])) return fail_char("in exponent of numeric literal");
      while (pos_ < s_.size() && digit(s_[pos_]))
        ++pos_;
    }
    out.assign(s_.substr(start, pos_ - start));
    return true;
  }
  static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  bool read_u4(std::uint32_t& cp) {
    cp = 0;
    for (int i = 0; i < 4; ++i) {
      if (pos_ >= s_.size()) return fail_char("");
      const int h = hex(s_[pos_]);
      if (h < 0) return fail_char("in \\u hexadecimal character escape");
      cp = cp * 16 + static_cast<std::uint32_t>(h);
      ++pos_;
    }
    return true;
  }
  bool string(std::string& out) {
    ++pos_;  // opening quote
    std::string raw;
    while (true) {
      if (pos_ >= s_.size()) return fail_char("");
      const auto c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        ++pos_;
        break;
      }
      if (c < 0x20) return fail_char("in string literal");
      if (c != '\\') {
        raw += static_cast<char>(c);
        ++pos_;
        continue;
      }
      ++pos_;
      if (pos_ >= s_.size()) return fail_char("");
      const char e = s_[pos_];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          raw += e;
          ++pos_;
          break;
        case 'b':
          raw += '\b';
          ++pos_;
          break;
        case 'f':
          raw += '\f';
          ++pos_;
          break;
        case 'n':
          raw += '\n';
          ++pos_;
          break;
        case 'r':
          raw += '\r';
          ++pos_;
          break;
        case 't':
          raw += '\t';
          ++pos_;
          break;
        case 'u': {
          ++pos_;
          std::uint32_t cp;
          if (!read_u4(cp)) return false;
          if (cp >= 0xd800 && cp < 0xdc00 && pos_ + 1 < s_.size() && s_[pos_] == '\\' &&
              s_[pos_ + 1] == 'u') {
            const std::size_t save = pos_;
            pos_ += 2;
            std::uint32_t lo;
            if (!read_u4(lo)) return false;
            if (lo >= 0xdc00 && lo < 0xe000) {
              cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else {
              pos_ = save;
              cp = 0xfffd;
            }
          } else if (cp >= 0xd800 && cp < 0xe000) {
            cp = 0xfffd;
          }
          append_rune(raw, cp);
          break;
        }
        default:
          return fail_char("in string escape code");
      }
    }
    // Invalid UTF-8 becomes U+FFFD, byte by byte, as Go's decoder does.
    out.clear();
    for (std::size_t i = 0; i < raw.size();) {
      const auto [rune, size] = decode_rune(raw, i);
      if (rune < 0) {
        append_rune(out, 0xfffd);
      } else {
        out.append(raw, i, size);
      }
      i += size;
    }
    return true;
  }
  bool object(Value& v, int depth) {
    v.kind = Value::Kind::object;
    ++pos_;
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      return true;
    }
    while (true) {
      if (pos_ >= s_.size() || s_[pos_] != '"')
        return fail_char("looking for beginning of object key string");
      std::string key;
      if (!string(key)) return false;
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != ':') return fail_char("after object key");
      ++pos_;
      skip_ws();
      Value member;
      if (!value(member, depth + 1)) return false;
      v.members.emplace_back(std::move(key), std::move(member));
      skip_ws();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        skip_ws();
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == '}') {
        ++pos_;
        return true;
      }
      return fail_char("after object key:value pair");
    }
  }
  bool array(Value& v, int depth) {
    v.kind = Value::Kind::array;
    ++pos_;
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      return true;
    }
    while (true) {
      Value item;
      if (!value(item, depth + 1)) return false;
      v.items.push_back(std::move(item));
      skip_ws();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        skip_ws();
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == ']') {
        ++pos_;
        return true;
      }
      return fail_char("after array element");
    }
  }

  std::string_view s_;
  std::size_t pos_ = 0;
  std::string error_;
};

// encoding/json's floatEncoder: 'f' format unless the magnitude is below 1e-6 or from 1e21, then
// 'e' with a one-digit negative exponent unpadded ("1e-07" -> "1e-7").
template <typename F>
std::optional<std::string> encode_float(F v) {
  if (!std::isfinite(v)) return std::nullopt;
  std::array<char, 64> buf{};
  const F a = std::fabs(v);
  if (a != 0 && (a < F(1e-6) || a >= F(1e21))) {
    const auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v, std::chars_format::scientific);
    std::string s(buf.data(), r.ptr);
    const std::size_t n = s.size();
    if (n >= 4 && s[n - 4] == 'e' && s[n - 3] == '-' && s[n - 2] == '0') {
      s[n - 2] = s[n - 1];
      s.pop_back();
    }
    return s;
  }
  const auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v, std::chars_format::fixed);
  return std::string(buf.data(), r.ptr);
}

}  // namespace

std::string_view Value::go_kind() const {
  switch (kind) {
    case Kind::null:
      return "null";
    case Kind::boolean:
      return "bool";
    case Kind::number:
      return "number";
    case Kind::string:
      return "string";
    case Kind::array:
      return "array";
    case Kind::object:
      return "object";
  }
  return "value";
}

const Value* Value::find(std::string_view key) const {
  const Value* found = nullptr;
  for (const Member& m : members)
    if (m.key == key) found = &m.value;
  return found;
}

Parsed parse_first(std::string_view body) {
  return Parser(body).run();
}

bool Decoder::key_is(std::string_view key, std::string_view field) {
  if (key.size() != field.size()) return false;
  for (std::size_t i = 0; i < key.size(); ++i) {
    char a = key[i], b = field[i];
    if (a >= 'A' && a <= 'Z') a = static_cast<char>(a - 'A' + 'a');
    if (b >= 'A' && b <= 'Z') b = static_cast<char>(b - 'A' + 'a');
    if (a != b) return false;
  }
  return true;
}

void Decoder::type_error(std::string_view what, std::string_view field, std::string_view go_type) {
  const std::string where = field.empty() ? path_ : path_ + "." + std::string(field);
  fail("json: cannot unmarshal " + std::string(what) + " into Go struct field " + where + " of type " +
       std::string(go_type));
}

std::string value_type_error(std::string_view what, std::string_view go_type) {
  return "json: cannot unmarshal " + std::string(what) + " into Go value of type " + std::string(go_type);
}

void Decoder::string(const Value& v, std::string_view field, std::string& out) {
  if (v.kind == Value::Kind::null) return;
  if (v.kind != Value::Kind::string) return type_error(v.go_kind(), field, "string");
  out = v.text;
}

void Decoder::boolean(const Value& v, std::string_view field, bool& out) {
  if (v.kind == Value::Kind::null) return;
  if (v.kind != Value::Kind::boolean) return type_error(v.go_kind(), field, "bool");
  out = v.boolean;
}

void Decoder::int64(const Value& v, std::string_view field, std::string_view go_type, std::int64_t& out) {
  if (v.kind == Value::Kind::null) return;
  if (v.kind != Value::Kind::number) return type_error(v.go_kind(), field, go_type);
  std::int64_t x = 0;
  const char* b = v.text.data();
  const char* e = b + v.text.size();
  auto [p, ec] = std::from_chars(b, e, x);
  if (ec != std::errc() || p != e) return type_error("number " + v.text, field, go_type);
  out = x;
}

void Decoder::float32(const Value& v, std::string_view field, float& out) {
  if (v.kind == Value::Kind::null) return;
  if (v.kind != Value::Kind::number) return type_error(v.go_kind(), field, "float32");
  // strconv.ParseFloat(text, 32), as Go's decoder does: beyond float32's range is a type error.
  const auto f = parse_float32(v.text);
  if (!f || !std::isfinite(*f)) return type_error("number " + v.text, field, "float32");
  out = *f;
}

void Decoder::float64(const Value& v, std::string_view field, double& out) {
  if (v.kind == Value::Kind::null) return;
  if (v.kind != Value::Kind::number) return type_error(v.go_kind(), field, "float64");
  const auto d = parse_float64(v.text);
  if (!d || !std::isfinite(*d)) return type_error("number " + v.text, field, "float64");
  out = *d;
}

void Decoder::expect_object(const Value& v, std::string_view field, std::string_view go_type) {
  if (v.kind == Value::Kind::null || v.kind == Value::Kind::object) return;
  type_error(v.go_kind(), field, go_type);
}

void append_quoted(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    const auto [rune, size] = decode_rune(s, i);
    if (rune >= 0 && rune < 0x80) {
      const char c = static_cast<char>(rune);
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        case '\b':  // since Go 1.22 (Toxiproxy 2.12 is built with it); \u0008 before
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        default:
          if (rune < 0x20 || c == '<' || c == '>' || c == '&') {
            out += "\\u00";
            out += kHex[rune >> 4];
            out += kHex[rune & 0xF];
          } else {
            out += c;
          }
      }
    } else if (rune < 0) {
      out += "\\ufffd";
    } else if (rune == 0x2028 || rune == 0x2029) {
      out += rune == 0x2028 ? "\\u2028" : "\\u2029";
    } else {
      out.append(s.substr(i, size));
    }
    i += size;
  }
  out += '"';
}

std::string quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  append_quoted(out, s);
  return out;
}

std::optional<std::string> encode_float64(double v) {
  return encode_float(v);
}

std::optional<std::string> encode_float32(float v) {
  return encode_float(v);
}

}  // namespace faultproxy::go::json
