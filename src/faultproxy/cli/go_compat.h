// The few pieces of Go's standard library whose exact behaviour toxiproxy-cli's output depends on,
// reimplemented so that faultproxy-cli prints and sends byte-for-byte what toxiproxy-cli does:
//   - strconv.ParseFloat syntax (what `-a key=value` turns into a number, what `--tox` accepts),
//   - fmt's %v of a float64 (how `inspect` prints attribute values: 1e+06, 0.5, 100),
//   - encoding/json's number and string encoding (the request bodies),
//   - text/tabwriter with urfave/cli's settings (the alignment of every help text).
//
// Usage:
//   go::parse_float64("1_000")          -> 1000.0 (Go accepts underscores between digits)
//   go::parse_float64("10ms")           -> nullopt (sent as the string "10ms", as Go does)
//   go::format_float_v(1e6)             -> "1e+06"
//   go::json_float64(100.0)             -> "100"
//   go::tabwrite("a\tb\nccc\td\n")      -> "a    b\nccc  d\n"
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace faultproxy::cli::go {

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

// encoding/json's encoding of a float64 / float32; nullopt for NaN and infinities (Go's Marshal
// fails with "json: unsupported value: <format_float_g(v)>").
std::optional<std::string> json_float64(double v);
std::optional<std::string> json_float32(float v);

// encoding/json's encoding of a string, HTML-safe as json.Marshal does (<, >, & as \u003c...), with
// invalid UTF-8 replaced by \ufffd.
std::string json_quote(std::string_view s);

// text/tabwriter.NewWriter(out, minwidth, tabwidth, padding, ' ', 0) fed `text` and flushed:
// tab-terminated cells of consecutive lines form columns, each padded to its widest cell + padding.
std::string tabwrite(std::string_view text, int minwidth = 1, int padding = 2);

}  // namespace faultproxy::cli::go
