// Command-line flags parsed the way Go's `flag` package parses them (also under urfave/cli v2), so
// that every invocation toxiproxy-server and toxiproxy-cli accept means the same to faultproxy and
// faultproxy-cli:
//   - `-x` and `--x` are the same flag; a value is `-x v`, `-x=v` or `--x=v`; `-tox 0.5` works;
//   - a boolean flag takes no separate value (`-u`), only `-u=false`;
//   - parsing stops at the first argument that is not a flag (`-` alone is an argument) or after `--`;
//     flags written after the proxy name are therefore arguments, as in toxiproxy-cli;
//   - a repeated string flag keeps its last value; a slice flag (`-a k=v`) collects every value,
//     split at commas and trimmed, as urfave/cli's StringSliceFlag does.
// Errors carry Go's own messages ("flag provided but not defined: -x").
//
// Usage:
//   const std::vector<go::FlagSpec> specs = {{{"listen", "l"}, go::FlagKind::kString}, ...};
//   auto parsed = go::parse_flags(args, specs);
//   if (!parsed.error.empty()) ...;
//   parsed.value("listen"), parsed.slice("attribute"), parsed.is_set("upstream"), parsed.args
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace faultproxy::go {

enum class FlagKind { kString, kStringSlice, kBool };

struct FlagSpec {
  std::vector<std::string> names;  // names[0] is the canonical name the results are keyed by
  FlagKind kind = FlagKind::kString;
};

struct ParsedFlags {
  std::map<std::string, std::string> strings;              // by canonical name
  std::map<std::string, std::vector<std::string>> slices;  // by canonical name
  std::map<std::string, bool> bools;                       // by canonical name, only when given
  std::vector<std::string> args;                           // what follows the flags
  bool help_requested = false;  // `-h` where no flag of that name is defined (Go's flag.ErrHelp)
  std::string error;            // Go's message when parsing failed; empty on success

  // The string flag's value, "" when not given (urfave's c.String()).
  std::string value(const std::string& name) const;
  std::vector<std::string> slice(const std::string& name) const;
  bool flag(const std::string& name) const;  // a boolean flag's value, false when not given
};

ParsedFlags parse_flags(const std::vector<std::string>& args, const std::vector<FlagSpec>& specs);

}  // namespace faultproxy::go
