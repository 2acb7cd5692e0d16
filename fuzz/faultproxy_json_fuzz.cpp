// Fuzz target: faultproxy's Go-compatible JSON reader and writer (src/faultproxy/go/json.h), the
// parser every API body and the -config file go through.
//
// Checked, besides memory safety and UB:
// - differential against Boost.JSON: a document Boost.JSON accepts whole is accepted by
//   parse_first with the same structure (kinds, arrays, object keys, and strings when the input is
//   UTF-8);
// - writing a parsed value back (append_quoted, numbers as written) and parsing it again gives the
//   same value: Go-escaping round-trips;
// - the Decoder's conversions: an int64 it accepts is the literal's value; a float32 it accepts is
//   finite and encode_float32 writes it so that it reads back exactly.
#include <boost/json.hpp>
#include <cmath>
#include <cstdlib>
#include <string>

#include "faultproxy/go/json.h"
#include "support/fuzz_support.h"

namespace {

namespace gojson = faultproxy::go::json;
namespace json = boost::json;
using fuzz_support::check;
using Kind = gojson::Value::Kind;

void write(const gojson::Value& v, std::string& out) {
  switch (v.kind) {
    case Kind::null:
      out += "null";
      break;
    case Kind::boolean:
      out += v.boolean ? "true" : "false";
      break;
    case Kind::number:
      out += v.text;
      break;
    case Kind::string:
      gojson::append_quoted(out, v.text);
      break;
    case Kind::array:
      out += '[';
      for (std::size_t i = 0; i < v.items.size(); ++i) {
        if (i) out += ',';
        write(v.items[i], out);
      }
      out += ']';
      break;
    case Kind::object:
      out += '{';
      for (std::size_t i = 0; i < v.members.size(); ++i) {
        if (i) out += ',';
        gojson::append_quoted(out, v.members[i].key);
        out += ':';
        write(v.members[i].value, out);
      }
      out += '}';
      break;
  }
}

bool same(const gojson::Value& a, const gojson::Value& b) {
  if (a.kind != b.kind || a.boolean != b.boolean || a.text != b.text || a.items.size() != b.items.size() ||
      a.members.size() != b.members.size())
    return false;
  for (std::size_t i = 0; i < a.items.size(); ++i)
    if (!same(a.items[i], b.items[i])) return false;
  for (std::size_t i = 0; i < a.members.size(); ++i)
    if (a.members[i].key != b.members[i].key || !same(a.members[i].value, b.members[i].value)) return false;
  return true;
}

// Boost.JSON's value against ours. Strings are compared only for UTF-8 input (Go replaces bad bytes
// with U+FFFD; Boost.JSON, told to allow them, keeps them).
bool agrees(const json::value& b, const gojson::Value& g, bool compare_strings) {
  switch (b.kind()) {
    case json::kind::null:
      return g.kind == Kind::null;
    case json::kind::bool_:
      return g.kind == Kind::boolean && g.boolean == b.get_bool();
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_:
      return g.kind == Kind::number;
    case json::kind::string:
      return g.kind == Kind::string && (!compare_strings || g.text == std::string_view(b.get_string()));
    case json::kind::array: {
      const auto& arr = b.get_array();
      if (g.kind != Kind::array || g.items.size() != arr.size()) return false;
      for (std::size_t i = 0; i < arr.size(); ++i)
        if (!agrees(arr[i], g.items[i], compare_strings)) return false;
      return true;
    }
    case json::kind::object: {
      const auto& obj = b.get_object();
      if (g.kind != Kind::object) return false;
      if (obj.size() != g.members.size()) return true;  // duplicate keys: Boost.JSON keeps one
      // No duplicates then: both keep the members in document order. Compared by position, not by
      // key: with bad UTF-8 a key of ours is Go's replacement, which may spell another raw key.
      std::size_t i = 0;
      for (const auto& member : obj) {
        const auto& m = g.members[i++];
        if (compare_strings && m.key != std::string_view(member.key())) return false;
        if (!agrees(member.value(), m.value, compare_strings)) return false;
      }
      return true;
    }
  }
  return false;
}

void decode_everything(const gojson::Value& v, int depth) {
  if (depth > 3) return;
  gojson::Decoder d("Fuzz");
  std::string s;
  bool b = false;
  std::int64_t i = 0;
  float f = 0;
  d.string(v, "s", s);
  d.boolean(v, "b", b);
  gojson::Decoder di("Fuzz");
  di.int64(v, "i", "int64", i);
  if (!di.failed() && v.kind == Kind::number) {
    check(std::to_string(i) == v.text || v.text == "-0", "int64 accepted a literal that is not its value",
          v.text);
  }
  gojson::Decoder df("Fuzz");
  df.float32(v, "f", f);
  if (!df.failed() && v.kind == Kind::number) {
    check(std::isfinite(f), "float32 accepted a non-finite value", v.text);
    const std::string text = gojson::encode_float32(f).value_or("not finite");
    const float back = std::strtof(text.c_str(), nullptr);
    check(back == f, "encode_float32 does not read back", v.text + " -> " + text);
  }
  d.expect_object(v, "o", "Fuzz.Object");
  (void)gojson::Decoder::key_is(s, "name");
  for (const auto& item : v.items)
    decode_everything(item, depth + 1);
  for (const auto& m : v.members)
    decode_everything(m.value, depth + 1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const gojson::Parsed parsed = gojson::parse_first(input);

  // Below parse_first's own limit (1000), so that depth alone never makes the two disagree.
  json::parse_options options;
  options.max_depth = 900;
  options.allow_invalid_utf8 = true;
  boost::system::error_code ec;
  const json::value reference = json::parse(input, ec, {}, options);
  if (!ec) {
    check(parsed.ok(), "Boost.JSON accepts a document parse_first refuses", parsed.error);
    json::parse_options strict;
    strict.max_depth = 900;
    boost::system::error_code utf8_ec;
    json::parse(input, utf8_ec, {}, strict);
    check(agrees(reference, parsed.value, !utf8_ec), "parse_first disagrees with Boost.JSON", input);
  }
  if (!parsed.ok()) {
    check(!parsed.error.empty(), "a failed parse without an error text");
    return 0;
  }

  std::string written;
  write(parsed.value, written);
  const gojson::Parsed again = gojson::parse_first(written);
  check(again.ok(), "a written value does not parse", written + " : " + again.error);
  check(same(parsed.value, again.value), "write/parse round trip", written);
  decode_everything(parsed.value, 0);
  return 0;
}
