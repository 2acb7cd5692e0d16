#include "faultproxy/cli/go_compat.h"

#include <locale.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <vector>

namespace faultproxy::cli::go {
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

// encoding/json floatEncoder: 'f' format unless the magnitude is below 1e-6 or from 1e21, then 'e'
// with "e-07" shortened to "e-7".
template <typename F>
std::optional<std::string> json_float(F v) {
  if (std::isnan(v) || std::isinf(v)) return std::nullopt;
  const F a = std::fabs(v);
  if (a != 0 && (a < F(1e-6) || a >= F(1e21))) {
    std::string s = to_chars_string(v, std::chars_format::scientific);
    const std::size_t n = s.size();
    if (n >= 4 && s[n - 4] == 'e' && s[n - 3] == '-' && s[n - 2] == '0') {
      s[n - 2] = s[n - 1];
      s.pop_back();
    }
    return s;
  }
  return to_chars_string(v, std::chars_format::fixed);
}

// utf8.DecodeRuneInString: the code point and its length, or (-1, 1) for an invalid encoding.
std::pair<long, std::size_t> decode_rune(std::string_view s, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return {b0, 1};
  auto cont = [&](std::size_t k) {
    return i + k < s.size() && (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
  };
  auto bits = [&](std::size_t k) { return static_cast<long>(static_cast<unsigned char>(s[i + k]) & 0x3F); };
  if (b0 >= 0xC2 && b0 <= 0xDF && cont(1)) return {((b0 & 0x1FL) << 6) | bits(1), 2};
  if (b0 >= 0xE0 && b0 <= 0xEF && cont(1) && cont(2)) {
    const long r = ((b0 & 0x0FL) << 12) | (bits(1) << 6) | bits(2);
    if (r >= 0x800 && (r < 0xD800 || r > 0xDFFF)) return {r, 3};
  }
  if (b0 >= 0xF0 && b0 <= 0xF4 && cont(1) && cont(2) && cont(3)) {
    const long r = ((b0 & 0x07L) << 18) | (bits(1) << 12) | (bits(2) << 6) | bits(3);
    if (r >= 0x10000 && r <= 0x10FFFF) return {r, 4};
  }
  return {-1, 1};
}

std::size_t rune_count(std::string_view s) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < s.size(); ++n)
    i += decode_rune(s, i).second;
  return n;
}

// text/tabwriter's column formatting (flags 0, padchar ' ', left aligned).
class TabWriter {
 public:
  TabWriter(const std::vector<std::vector<std::string>>& lines, int minwidth, int padding)
      : lines_(lines), minwidth_(minwidth), padding_(padding) {}

  std::string run() {
    format(0, lines_.size());
    return std::move(out_);
  }

 private:
  static int width(const std::string& cell) { return static_cast<int>(rune_count(cell)); }

  void write_lines(std::size_t line0, std::size_t line1) {
    for (std::size_t i = line0; i < line1; ++i) {
      const auto& line = lines_[i];
      for (std::size_t j = 0; j < line.size(); ++j) {
        out_ += line[j];
        if (j < widths_.size()) out_.append(static_cast<std::size_t>(widths_[j] - width(line[j])), ' ');
      }
      if (i + 1 != lines_.size()) out_ += '\n';
    }
  }

  void format(std::size_t line0, std::size_t line1) {
    const std::size_t column = widths_.size();
    for (std::size_t current = line0; current < line1; ++current) {
      if (column + 1 >= lines_[current].size()) continue;  // no cell in this column
      write_lines(line0, current);
      line0 = current;
      int w = minwidth_;
      for (; current < line1; ++current) {
        const auto& line = lines_[current];
        if (column + 1 >= line.size()) break;
        w = std::max(w, width(line[column]) + padding_);
      }
      widths_.push_back(w);
      format(line0, current);
      widths_.pop_back();
      line0 = current;
      if (current == line1) break;
    }
    write_lines(line0, line1);
  }

  const std::vector<std::vector<std::string>>& lines_;
  int minwidth_;
  int padding_;
  std::vector<int> widths_;
  std::string out_;
};

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

std::optional<std::string> json_float64(double v) {
  return json_float(v);
}
std::optional<std::string> json_float32(float v) {
  return json_float(v);
}

std::string json_quote(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() + 2);
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
  return out;
}

std::string tabwrite(std::string_view text, int minwidth, int padding) {
  std::vector<std::vector<std::string>> lines(1);
  lines.back().emplace_back();
  for (char c : text) {
    if (c == '\n') {
      lines.emplace_back();
      lines.back().emplace_back();
    } else if (c == '\t') {
      lines.back().emplace_back();
    } else {
      lines.back().back() += c;
    }
  }
  return TabWriter(lines, minwidth, padding).run();
}

}  // namespace faultproxy::cli::go
