// UTF-8 as Go's unicode/utf8 reads it, for the go library's JSON and tabwriter (internal).
//
// Usage:
//   auto [rune, size] = go::decode_rune("\xc3\xa9", 0);   // {0xe9, 2}; invalid: {-1, 1}
//   go::rune_count("caf\xc3\xa9");                         // 4
//   go::append_rune(out, 0xfffd);                          // "\xef\xbf\xbd"
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace faultproxy::go {

// utf8.DecodeRuneInString(s[i:]): the code point and its length, or (-1, 1) for an invalid
// encoding (a bad or missing continuation byte, an overlong form, a surrogate, beyond U+10FFFF).
std::pair<long, std::size_t> decode_rune(std::string_view s, std::size_t i);
// utf8.RuneCountInString: each invalid byte counts as one rune.
std::size_t rune_count(std::string_view s);
// utf8.AppendRune for a valid code point.
void append_rune(std::string& out, std::uint32_t cp);

}  // namespace faultproxy::go
