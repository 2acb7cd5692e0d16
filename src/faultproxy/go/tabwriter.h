// Go's text/tabwriter as urfave/cli uses it (NewWriter(out, minwidth, tabwidth, padding, ' ', 0)),
// for faultproxy-cli's help texts and listings: tab-terminated cells of consecutive lines form
// columns, each padded to its widest cell + padding; widths count runes, not bytes.
//
// Usage:
//   go::tabwrite("a\tb\nccc\td\n")      -> "a    b\nccc  d\n"
#pragma once

#include <string>
#include <string_view>

namespace faultproxy::go {

// `text` written to such a tabwriter and flushed.
std::string tabwrite(std::string_view text, int minwidth = 1, int padding = 2);

}  // namespace faultproxy::go
