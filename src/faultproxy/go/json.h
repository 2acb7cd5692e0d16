// JSON the way Go's encoding/json reads and writes it, for the server's API (what Toxiproxy's
// server answers) and faultproxy-cli (what toxiproxy-cli sends and how it reads answers):
//   - reading: the same syntax error texts ("invalid character 'o' in literal null (expecting
//     'u')", "unexpected EOF", "EOF"), only the first value of a body (trailing bytes ignored, as
//     json.Decoder does), invalid UTF-8 in strings read as U+FFFD;
//   - decoding into fields: Decoder, with Go's type errors ("json: cannot unmarshal string into Go
//     struct field Proxy.name of type string") and case-insensitive field names;
//   - writing: strings HTML-safe as json.Marshal writes them (<, >, & as \u003c..., \b and \f as
//     Go 1.22 does, invalid UTF-8 as \ufffd), float64 and float32 numbers in encoding/json's form.
//
// Usage:
//   auto parsed = go::json::parse_first(body);
//   if (!parsed.ok()) return error(400, "bad request body: " + parsed.error);
//   go::json::Decoder d("Proxy");
//   std::string name;
//   for (auto& [key, value] : parsed.value.members) if (d.key_is(key, "name")) d.string(value, "name", name);
//   if (d.failed()) return error(400, "bad request body: " + d.error());
//   std::string out = "{\"name\":" + go::json::quote(name) + ",\"rate\":" + *go::json::encode_float64(0.5) +
//   "}";
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace faultproxy::go::json {

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
  // The last member whose key is `key` exactly (what a Go map keeps of duplicates), or null.
  const Value* find(std::string_view key) const;
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
  // `struct_path`: the Go struct named in type errors ("Proxy"; "" for an anonymous one).
  explicit Decoder(std::string struct_path) : path_(std::move(struct_path)) {}
  // Go matches JSON keys to fields exactly or else case-insensitively.
  static bool key_is(std::string_view key, std::string_view field);

  // Each leaves `out` as it was for null (as Go does) and records a type error for another kind.
  void string(const Value& v, std::string_view field, std::string& out);
  void boolean(const Value& v, std::string_view field, bool& out);
  void int64(const Value& v, std::string_view field, std::string_view go_type, std::int64_t& out);
  void float32(const Value& v, std::string_view field, float& out);
  void float64(const Value& v, std::string_view field, double& out);
  // A type error for an object-typed field given something else.
  void expect_object(const Value& v, std::string_view field, std::string_view go_type);
  // "json: cannot unmarshal <what> into Go struct field <path>.<field> of type <go_type>" (an
  // empty `field`: the struct's path alone, for a field that is itself a struct)
  void type_error(std::string_view what, std::string_view field, std::string_view go_type);
  void fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
  }

  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }

 private:
  std::string path_;
  std::string error_;
};

// "json: cannot unmarshal <what> into Go value of type <go_type>": a type error outside any struct
// field (a map's value, a whole document).
std::string value_type_error(std::string_view what, std::string_view go_type);

// A quoted JSON string as json.Marshal writes it.
std::string quote(std::string_view s);
void append_quoted(std::string& out, std::string_view s);

// encoding/json's float64 / float32 numbers: shortest digits, exponent form below 1e-6 and from
// 1e21 (1e-7, 1e+21). nullopt for NaN and infinities, which json.Marshal refuses ("json:
// unsupported value: " + go::format_float_g(v)).
std::optional<std::string> encode_float64(double v);
std::optional<std::string> encode_float32(float v);

}  // namespace faultproxy::go::json
