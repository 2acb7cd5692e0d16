// JSON the way Go's encoding/json reads and writes it, so that faultproxy's API answers byte for
// byte as Toxiproxy does: the same syntax error texts ("invalid character 'o' in literal null
// (expecting 'u')", "unexpected EOF", "EOF"), the same type errors ("json: cannot unmarshal string
// into Go struct field Proxy.name of type string"), case-insensitive field names, only the first
// value of a body read (trailing bytes ignored, as json.Decoder does), and the same output escaping
// (<, > and & as \u003c..., float32 numbers in shortest form).
//
// Usage:
//   auto parsed = gojson::parse_first(body);
//   if (!parsed.ok()) return error(400, "bad request body: " + parsed.error);
//   gojson::Decoder d("Proxy");
//   std::string name;
//   for (auto& [key, value] : parsed.value.members) if (d.key_is(key, "name")) d.string(value, "name", name);
//   if (d.failed()) return error(400, "bad request body: " + d.error());
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace faultproxy::gojson {

struct Member;

struct Value {
  enum class Kind { null, boolean, number, string, array, object };
  Kind kind = Kind::null;
  bool boolean = false;
  std::string text;  // string: decoded; number: the literal as written
  std::vector<Value> items;
  // In document order, duplicates kept. (A vector of an incomplete type is allowed; a std::pair
  // holding one is not, and libstdc++ rejects it under clang.)
  std::vector<Member> members;

  // Go's name for the kind in type errors: "string", "number", "bool", "array", "object".
  std::string_view go_kind() const;
};

// One object member; `auto& [key, value] = member` works as it did with std::pair.
struct Member {
  Member(std::string k, Value v) : key(std::move(k)), value(std::move(v)) {}
  std::string key;
  Value value;
};

struct Parsed {
  Value value;
  std::string error;  // empty when ok
  bool ok() const { return error.empty(); }
};

// Reads the first JSON value of `body` (leading whitespace allowed, anything after it ignored).
Parsed parse_first(std::string_view body);

// Decodes fields with Go's rules and remembers the first type error, as json.Unmarshal does.
class Decoder {
 public:
  explicit Decoder(std::string struct_path) : path_(std::move(struct_path)) {}
  // Go matches JSON keys to fields exactly or else case-insensitively.
  static bool key_is(std::string_view key, std::string_view field);

  void string(const Value& v, std::string_view field, std::string& out);
  void boolean(const Value& v, std::string_view field, bool& out);
  void int64(const Value& v, std::string_view field, std::string_view go_type, std::int64_t& out);
  void float32(const Value& v, std::string_view field, float& out);
  void float64(const Value& v, std::string_view field, double& out);
  // A type error for an object-typed field given something else.
  void expect_object(const Value& v, std::string_view field, std::string_view go_type);
  void fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
  }

  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }
  const std::string& path() const { return path_; }

 private:
  void type_error(std::string_view what, std::string_view field, std::string_view go_type);
  std::string path_;
  std::string error_;
};

// Output helpers.
void append_string(std::string& out, std::string_view s);  // a quoted JSON string, Go-escaped
std::string format_float32(float f);                       // Go's float32 encoding: 1, 0.5, 1e-7
std::string format_float64(double f);                      // Go's float64 encoding: 0.1, 1e-7, 1e+21
std::string format_int(std::int64_t v);

}  // namespace faultproxy::gojson
