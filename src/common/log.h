// Structured logging: one JSON object per line on stderr, quiet by default.
//
// Both programs log through this. A line carries a UTC timestamp, the level, the message and any
// number of typed fields; lines are written with a single write(2) so that lines from different
// threads never interleave. The level comes from the LOG_LEVEL environment variable (trace, debug,
// info, warn, error, off); the default is info, and the data path logs at debug or below, so a
// healthy process under load prints nothing.
//
// Usage:
//   common::log::init_from_env();                       // once, in main
//   common::log::info("listening", {{"address", "127.0.0.1:8080"}, {"threads", 2}});
//   if (common::log::enabled(common::log::Level::debug)) { ...expensive fields... }
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace common::log {

enum class Level { trace = 0, debug = 1, info = 2, warn = 3, error = 4, off = 5 };

// A field's value: strings are escaped, numbers and booleans written bare.
using Value = std::variant<std::string_view, std::int64_t, std::uint64_t, double, bool>;

struct Field {
  std::string_view key;
  Value value;

  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const char* v) : key(k), value(std::string_view(v)) {}
  Field(std::string_view k, const std::string& v) : key(k), value(std::string_view(v)) {}
  Field(std::string_view k, bool v) : key(k), value(v) {}
  Field(std::string_view k, double v) : key(k), value(v) {}
  Field(std::string_view k, int v) : key(k), value(static_cast<std::int64_t>(v)) {}
  Field(std::string_view k, long v) : key(k), value(static_cast<std::int64_t>(v)) {}
  Field(std::string_view k, long long v) : key(k), value(static_cast<std::int64_t>(v)) {}
  Field(std::string_view k, unsigned v) : key(k), value(static_cast<std::uint64_t>(v)) {}
  Field(std::string_view k, unsigned long v) : key(k), value(static_cast<std::uint64_t>(v)) {}
  Field(std::string_view k, unsigned long long v) : key(k), value(static_cast<std::uint64_t>(v)) {}
};

// Parses "trace".."off" (case-insensitive; "warning" is accepted for warn).
std::optional<Level> parse_level(std::string_view name);
std::string_view level_name(Level level);

void set_level(Level level);
Level level();
inline bool enabled(Level l) {
  return l >= level() && l != Level::off;
}

// Reads LOG_LEVEL; an unknown value keeps the default and logs a warning saying so.
void init_from_env(Level fallback = Level::info);

// Formats one line (exposed for tests); write() prints it if the level is enabled.
std::string format_line(Level level, std::string_view message, std::initializer_list<Field> fields);
void write(Level level, std::string_view message, std::initializer_list<Field> fields = {});

// Appends s to out as the inside of a JSON string (quotes not included). Bytes that are not UTF-8
// become U+FFFD, so the result is valid JSON whatever `s` holds.
void append_json_escaped(std::string& out, std::string_view s);

inline void trace(std::string_view m, std::initializer_list<Field> f = {}) {
  if (enabled(Level::trace)) write(Level::trace, m, f);
}
inline void debug(std::string_view m, std::initializer_list<Field> f = {}) {
  if (enabled(Level::debug)) write(Level::debug, m, f);
}
inline void info(std::string_view m, std::initializer_list<Field> f = {}) {
  if (enabled(Level::info)) write(Level::info, m, f);
}
inline void warn(std::string_view m, std::initializer_list<Field> f = {}) {
  if (enabled(Level::warn)) write(Level::warn, m, f);
}
inline void error(std::string_view m, std::initializer_list<Field> f = {}) {
  if (enabled(Level::error)) write(Level::error, m, f);
}

}  // namespace common::log
