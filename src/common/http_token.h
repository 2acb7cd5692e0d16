// HTTP tokens (RFC 9110 5.6.2): what a method and a field name are made of. Constant expressions,
// so that a name written in the program is checked when it is compiled (common::http::LineName).
//
// Usage:
//   static_assert(common::http::is_http_token("X-Request-Id"));
//   if (!common::http::is_http_token(method)) ...  // a method a client sent
#pragma once

#include <string_view>

namespace common::http {

constexpr bool is_http_token_char(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

constexpr bool is_http_token(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s) {
    if (!is_http_token_char(c)) return false;
  }
  return true;
}

}  // namespace common::http
