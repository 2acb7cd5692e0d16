#include "faultproxy/go/strconv.h"

#include <locale.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>

namespace faultproxy::go {
namespace {

char lower(char c) {
  return static_cast<char>(c | ('x' - 'X'));
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_hex_digit(char c) {
  return is_digit(c) || (lower(c) >= 'a' && lower(c) <= 'f');
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

// strconv.underscoreOK: underscores only between digits, or between a base prefix and a digit.
bool underscore_ok(std::string_view s) {
  char saw = '^';
  std::size_t i = 0;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  bool hex = false;
  if (s.size() >= 2 && s[0] == '0' && (lower(s[1]) == 'b' || lower(s[1]) == 'o' || lower(s[1]) == 'x')) {
    i = 2;
    saw = '0';
    hex = lower(s[1]) == 'x';
  }
  for (; i < s.size(); ++i) {
    if (is_digit(s[i]) || (hex && is_hex_digit(s[i]))) {
      saw = '0';
      continue;
    }
    if (s[i] == '_') {
      if (saw != '0') return false;
      saw = '_';
      continue;
    }
    if (saw == '_') return false;
    saw = '!';
  }
  return saw != '_';
}

// strconv.readFloat's syntax check over the whole string (ParseFloat rejects trailing bytes).
bool valid_float_syntax(std::string_view s) {
  std::size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  bool hex = false;
  if (i + 2 < s.size() && s[i] == '0' && lower(s[i + 1]) == 'x') {
    hex = true;
    i += 2;
  }
  bool underscores = false, sawdot = false, sawdigits = false;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '_') {
      underscores = true;
      continue;
    }
    if (c == '.') {
      if (sawdot) break;
      sawdot = true;
      continue;
    }
    if (is_digit(c) || (hex && is_hex_digit(c))) {
      sawdigits = true;
      continue;
    }
    break;
  }
  if (!sawdigits) return false;
  if (i < s.size() && lower(s[i]) == (hex ? 'p' : 'e')) {
    ++i;
    if (i >= s.size()) return false;
    if (s[i] == '+' || s[i] == '-') ++i;
    if (i >= s.size() || !is_digit(s[i])) return false;
    for (; i < s.size() && (is_digit(s[i]) || s[i] == '_'); ++i) {
      if (s[i] == '_') underscores = true;
    }
  } else if (hex) {
    return false;  // a hexadecimal float must have a 'p' exponent
  }
  if (underscores && !underscore_ok(s.substr(0, i))) return false;
  return i == s.size();
}

// strtod in the "C" locale, whatever the process locale is.
double strtod_c(const std::string& s, bool& overflow) {
  static const locale_t c_locale = ::newlocale(LC_ALL_MASK, "C", static_cast<locale_t>(nullptr));
  errno = 0;
  const double v = ::strtod_l(s.c_str(), nullptr, c_locale);
  overflow = errno == ERANGE && std::isinf(v);
  return v;
}

template <typename F>
std::string to_chars_string(F v, std::chars_format fmt) {
  std::array<char, 64> buf{};
  auto res = std::to_chars(buf.data(), buf.data() + buf.size(), v, fmt);
  return std::string(buf.data(), res.ptr);
}

// strconv.FormatFloat(v, 'g', -1, bits): shortest digits; %e when exp < -4 || exp >= 6.
template <typename F>
std::string format_g(F v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  const std::string sci = to_chars_string(v, std::chars_format::scientific);
  const auto e = sci.find('e');
  const int exp = std::atoi(sci.c_str() + e + 1);
  if (exp < -4 || exp >= 6) return sci;  // C++ and Go both write at least two exponent digits
  return to_chars_string(v, std::chars_format::fixed);
}

}  // namespace

std::optional<double> parse_float64(std::string_view s) {
  if (s.empty()) return std::nullopt;
  // strconv.special: optionally signed "inf"/"infinity", unsigned "nan", case-insensitive.
  {
    std::string_view rest = s;
    bool negative = false;
    const bool signed_ = rest[0] == '+' || rest[0] == '-';
    if (signed_) {
      negative = rest[0] == '-';
      rest.remove_prefix(1);
    }
    if (iequals(rest, "inf") || iequals(rest, "infinity")) {
      return negative ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
    }
    if (!signed_ && iequals(rest, "nan")) return std::numeric_limits<double>::quiet_NaN();
  }
  if (!valid_float_syntax(s)) return std::nullopt;
  std::string cleaned;
  cleaned.reserve(s.size());
  for (char c : s) {
    if (c != '_') cleaned += c;
  }
  bool overflow = false;
  const double v = strtod_c(cleaned, overflow);
  if (overflow) return std::nullopt;
  return v;
}

std::optional<float> parse_float32(std::string_view s) {
  const auto d = parse_float64(s);
  if (!d) return std::nullopt;
  const auto f = static_cast<float>(*d);
  if (std::isinf(f) && !std::isinf(*d)) return std::nullopt;  // beyond float32: Go's ErrRange
  return f;
}

std::string format_float_v(double v) {
  return format_g(v);
}
std::string format_float_g(double v) {
  return format_g(v);
}
std::string format_float_g(float v) {
  return format_g(v);
}

std::optional<bool> parse_bool(std::string_view s) {
  if (s == "1" || s == "t" || s == "T" || s == "TRUE" || s == "true" || s == "True") return true;
  if (s == "0" || s == "f" || s == "F" || s == "FALSE" || s == "false" || s == "False") return false;
  return std::nullopt;
}

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace faultproxy::go
