#include "common/log.h"

#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace common::log {
namespace {

std::atomic<Level> g_level{Level::info};

void append_timestamp(std::string& out) {
  const auto now = std::chrono::system_clock::now();
  const auto since_epoch = now.time_since_epoch();
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(since_epoch - secs).count();
  const std::time_t t = static_cast<std::time_t>(secs.count());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  const int n =
      std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                    tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long>(micros));
  out.append(buf, static_cast<std::size_t>(n));
}

void append_value(std::string& out, const Value& v) {
  struct Visitor {
    std::string& out;
    void operator()(std::string_view s) const {
      out.push_back('"');
      append_json_escaped(out, s);
      out.push_back('"');
    }
    void operator()(std::int64_t i) const { out += std::to_string(i); }
    void operator()(std::uint64_t u) const { out += std::to_string(u); }
    void operator()(double d) const {
      if (!std::isfinite(d)) {
        out += "null";
        return;
      }
      char buf[32];
      auto [p, ec] = std::to_chars(buf, buf + sizeof buf, d);
      out.append(buf, static_cast<std::size_t>(p - buf));
    }
    void operator()(bool b) const { out += b ? "true" : "false"; }
  };
  std::visit(Visitor{out}, v);
}

// The length of the well-formed UTF-8 sequence at the start of `s` (RFC 3629: no overlongs, no
// surrogates, nothing above U+10FFFF), or 0 if it is not one.
std::size_t utf8_sequence(std::string_view s) {
  const auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = b(0);
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xbf;  // the allowed range of the second byte
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c == 0xe0) lo = 0xa0;  // overlong
    if (c == 0xed) hi = 0x9f;  // surrogates
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c == 0xf0) lo = 0x90;  // overlong
    if (c == 0xf4) hi = 0x8f;  // above U+10FFFF
  } else {
    return 0;
  }
  if (s.size() < n || b(1) < lo || b(1) > hi) return 0;
  for (std::size_t i = 2; i < n; ++i)
    if ((b(i) & 0xc0) != 0x80) return 0;
  return n;
}

}  // namespace

void append_json_escaped(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  const auto plain = [](unsigned char u) { return u >= 0x20 && u < 0x7f && u != '"' && u != '\\'; };
  std::size_t i = 0;
  while (true) {
    // A run of bytes that stand for themselves is appended at once (most text is one run).
    std::size_t run_end = i;
    while (run_end < s.size() && plain(static_cast<unsigned char>(s[run_end])))
      ++run_end;
    out.append(s.data() + i, run_end - i);
    if (run_end == s.size()) return;
    i = run_end;
    const char c = s[i];
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x80) {
      // Bytes that are not UTF-8 cannot be in a JSON text: each becomes U+FFFD (as Go's
      // encoding/json does), so a line stays JSON whatever a client sent.
      const std::size_t n = utf8_sequence(s.substr(i));
      if (n == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(s.substr(i, n));
        i += n;
      }
      continue;
    }
    ++i;
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
      default:  // the other control characters and DEL
        out += "\\u00";
        out.push_back(kHex[u >> 4]);
        out.push_back(kHex[u & 0xf]);
    }
  }
}

std::optional<Level> parse_level(std::string_view name) {
  std::string lower;
  for (char c : name)
    lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  if (lower == "trace") return Level::trace;
  if (lower == "debug") return Level::debug;
  if (lower == "info") return Level::info;
  if (lower == "warn" || lower == "warning") return Level::warn;
  if (lower == "error") return Level::error;
  if (lower == "off" || lower == "none" || lower == "disabled") return Level::off;
  return std::nullopt;
}

std::string_view level_name(Level level) {
  switch (level) {
    case Level::trace:
      return "trace";
    case Level::debug:
      return "debug";
    case Level::info:
      return "info";
    case Level::warn:
      return "warn";
    case Level::error:
      return "error";
    case Level::off:
      return "off";
  }
  return "unknown";
}

void set_level(Level level) {
  g_level.store(level, std::memory_order_relaxed);
}
Level level() {
  return g_level.load(std::memory_order_relaxed);
}

void init_from_env(Level fallback) {
  set_level(fallback);
  const char* env = std::getenv("LOG_LEVEL");
  if (env == nullptr || *env == '\0') return;
  if (auto parsed = parse_level(env)) {
    set_level(*parsed);
  } else {
    warn("unknown LOG_LEVEL, keeping the default",
         {{"LOG_LEVEL", std::string_view(env)}, {"level", level_name(fallback)}});
  }
}

std::string format_line(Level level, std::string_view message, std::initializer_list<Field> fields) {
  std::string line;
  line.reserve(96 + message.size() + fields.size() * 24);
  line += "{\"time\":\"";
  append_timestamp(line);
  line += "\",\"level\":\"";
  line += level_name(level);
  line += "\",\"msg\":\"";
  append_json_escaped(line, message);
  line.push_back('"');
  for (const Field& f : fields) {
    line += ",\"";
    append_json_escaped(line, f.key);
    line += "\":";
    append_value(line, f.value);
  }
  line += "}\n";
  return line;
}

void write(Level level, std::string_view message, std::initializer_list<Field> fields) {
  if (!enabled(level)) return;
  const std::string line = format_line(level, message, fields);
  // One write(2) per line keeps lines whole across threads (stderr is unbuffered, lines are small).
  std::size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(STDERR_FILENO, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace common::log
