#include "faultproxy/go/flag.h"

#include "faultproxy/go/strconv.h"

namespace faultproxy::go {
namespace {

std::string trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\n\r\v\f");
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(" \t\n\r\v\f");
  return std::string(s.substr(first, last - first + 1));
}

}  // namespace

std::string ParsedFlags::value(const std::string& name) const {
  auto it = strings.find(name);
  return it == strings.end() ? std::string() : it->second;
}

std::vector<std::string> ParsedFlags::slice(const std::string& name) const {
  auto it = slices.find(name);
  return it == slices.end() ? std::vector<std::string>() : it->second;
}

bool ParsedFlags::flag(const std::string& name) const {
  auto it = bools.find(name);
  return it != bools.end() && it->second;
}

ParsedFlags parse_flags(const std::vector<std::string>& args, const std::vector<FlagSpec>& specs) {
  ParsedFlags out;
  std::size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string& s = args[i];
    if (s.size() < 2 || s[0] != '-') break;  // not a flag: the arguments start here
    std::size_t minuses = 1;
    if (s[1] == '-') {
      if (s.size() == 2) {  // "--" ends the flags
        ++i;
        break;
      }
      minuses = 2;
    }
    std::string name = s.substr(minuses);
    if (name.empty() || name[0] == '-' || name[0] == '=') {
      out.error = "bad flag syntax: " + s;
      return out;
    }
    std::optional<std::string> inline_value;
    if (auto eq = name.find('=', 1); eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name.resize(eq);
    }
    const FlagSpec* spec = nullptr;
    for (const auto& candidate : specs) {
      for (const auto& n : candidate.names) {
        if (n == name) spec = &candidate;
      }
    }
    if (spec == nullptr) {
      if (name == "help" || name == "h") {
        out.help_requested = true;
        return out;
      }
      out.error = "flag provided but not defined: -" + name;
      return out;
    }
    const std::string& key = spec->names.front();
    if (spec->kind == FlagKind::kBool) {
      if (!inline_value) {
        out.bools[key] = true;
        continue;
      }
      auto b = parse_bool(*inline_value);
      if (!b) {
        out.error = "invalid boolean value " + quote(*inline_value) + " for -" + name + ": parse error";
        return out;
      }
      out.bools[key] = *b;
      continue;
    }
    if (!inline_value) {
      if (i + 1 >= args.size()) {
        out.error = "flag needs an argument: -" + name;
        return out;
      }
      inline_value = args[++i];
    }
    if (spec->kind == FlagKind::kString) {
      out.strings[key] = *inline_value;
    } else {
      auto& values = out.slices[key];
      std::string_view rest = *inline_value;
      while (true) {
        const auto comma = rest.find(',');
        values.push_back(trim(rest.substr(0, comma)));
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
      }
    }
  }
  out.args.assign(args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
  return out;
}

}  // namespace faultproxy::go
