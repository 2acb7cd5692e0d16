// Go's strconv and fmt number rules, for what the server and faultproxy-cli read and print:
//   - strconv.ParseFloat syntax (what `-a key=value` turns into a number, what `--tox` accepts,
//     what the JSON decoder stores in float fields),
//   - strconv.FormatFloat(v, 'g', -1, ...) and fmt's %v of a float64 (how `inspect` prints
//     attribute values: 1e+06, 0.5, 100),
//   - strconv.ParseBool and strconv.Quote (the flag package's values and messages).
//
// Usage:
//   go::parse_float64("1_000")          -> 1000.0 (Go accepts underscores between digits)
//   go::parse_float64("10ms")           -> nullopt (toxiproxy-cli then sends the string "10ms")
//   go::format_float_v(1e6)             -> "1e+06"
//   go::parse_bool("T")                 -> true
//   go::quote("a\"b")                   -> "\"a\\\"b\""
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace faultproxy::go {

// strconv.ParseFloat(s, 64): the value, or nullopt where Go returns an error (bad syntax, or a
// magnitude beyond float64 that Go reports as ErrRange). "inf", "+Infinity", "NaN" are accepted.
std::optional<double> parse_float64(std::string_view s);

// strconv.ParseFloat(s, 32) narrowed to float32: nullopt on bad syntax or float32 overflow.
std::optional<float> parse_float32(std::string_view s);

// fmt.Sprint(float64): %g with the shortest round-trip digits, exponent form below 1e-4 and from 1e+06.
std::string format_float_v(double v);

// strconv.FormatFloat(v, 'g', -1, 64 or 32): used in Go's "json: unsupported value: " message.
std::string format_float_g(double v);
std::string format_float_g(float v);

// strconv.ParseBool: 1 t T TRUE true True / 0 f F FALSE false False.
std::optional<bool> parse_bool(std::string_view s);

// strconv.Quote (fmt's %q) for printable ASCII text: quotes and backslashes escaped.
std::string quote(std::string_view s);

}  // namespace faultproxy::go
