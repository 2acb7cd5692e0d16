// What `list`, `inspect` and `toggle` print, exactly as toxiproxy-cli 2.12 prints it. Output
// differs with the terminal: on a TTY there are ANSI colours, a header, "None" for no toxics and
// hints; piped (non-TTY) output is tab-separated, header-less and meant for scripts (`inspect`
// prints nothing for a proxy without toxics).
//
// Usage:
//   std::cout << render_list(proxies, isatty(1), "faultproxy-cli");
//   std::cout << render_inspect(proxy, false, "faultproxy-cli");
#pragma once

#include <string>
#include <string_view>

#include "faultproxy/cli/toxiproxy_client.h"

namespace faultproxy::cli {

namespace ansi {
inline constexpr std::string_view kRed = "\x1b[31m";
inline constexpr std::string_view kGreen = "\x1b[32m";
inline constexpr std::string_view kYellow = "\x1b[33m";
inline constexpr std::string_view kBlue = "\x1b[34m";
inline constexpr std::string_view kPurple = "\x1b[35m";
inline constexpr std::string_view kNone = "\x1b[0m";
}  // namespace ansi

std::string render_list(const ProxyMap& proxies, bool tty, std::string_view program);
std::string render_inspect(const Proxy& proxy, bool tty, std::string_view program);
std::string render_toggle(const std::string& name, bool enabled, bool tty);

// fmt.Print of a decoded JSON attribute value: numbers as Go's %v of a float64 ("1e+06").
std::string format_attribute(const go::json::Value& v);

}  // namespace faultproxy::cli
