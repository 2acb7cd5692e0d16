#include "clients/redis_detail.h"

#include <arpa/inet.h>

#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>

namespace clients::redis::detail {

namespace {

std::size_t decimal_digits(std::size_t n) {
  std::size_t digits = 1;
  for (; n >= 10; n /= 10)
    ++digits;
  return digits;
}

// "<kind><n>\r\n" at `p`; returns the end.
char* put_header(char* p, char kind, std::size_t n) {
  *p++ = kind;
  p = std::to_chars(p, p + 20, n).ptr;  // 20 digits always fit
  *p++ = '\r';
  *p++ = '\n';
  return p;
}

// Sized first, then written in place: one growth of `out` at most, no append's checks per piece.
template <typename Args>
void append_args(std::string& out, const Args& args) {
  std::size_t size = decimal_digits(args.size()) + 3;
  for (const auto& a : args)
    size += decimal_digits(a.size()) + 3 + a.size() + 2;
  const std::size_t at = out.size();
  out.resize(at + size);
  char* p = put_header(out.data() + at, '*', args.size());
  for (const auto& a : args) {
    p = put_header(p, '$', a.size());
    if (!a.empty()) std::memcpy(p, a.data(), a.size());
    p += a.size();
    *p++ = '\r';
    *p++ = '\n';
  }
}

}  // namespace

void append_command(std::string& out, const std::vector<std::string>& args) {
  append_args(out, args);
}

void append_command(std::string& out, std::span<const std::string_view> args) {
  append_args(out, args);
}

namespace {

std::uint32_t rotl(std::uint32_t v, int n) {
  return (v << n) | (v >> (32 - n));
}

// FIPS 180-4 SHA-1 over a whole message held in memory.
std::array<std::uint8_t, 20> sha1(std::string_view data) {
  std::uint32_t h[5] = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u};
  std::string msg(data);
  const std::uint64_t bit_len = static_cast<std::uint64_t>(data.size()) * 8u;
  msg.push_back(static_cast<char>(0x80));
  while (msg.size() % 64 != 56)
    msg.push_back('\0');
  for (int i = 7; i >= 0; --i)
    msg.push_back(static_cast<char>((bit_len >> (i * 8)) & 0xffu));

  std::uint32_t w[80];
  for (std::size_t chunk = 0; chunk < msg.size(); chunk += 64) {
    for (int i = 0; i < 16; ++i) {
      const auto* p = reinterpret_cast<const unsigned char*>(msg.data() + chunk + 4 * i);
      w[i] = (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
             std::uint32_t{p[3]};
    }
    for (int i = 16; i < 80; ++i)
      w[i] = rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    std::uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; ++i) {
      std::uint32_t f, k;
      if (i < 20) {
        f = (b & c) | (~b & d);
        k = 0x5A827999u;
      } else if (i < 40) {
        f = b ^ c ^ d;
        k = 0x6ED9EBA1u;
      } else if (i < 60) {
        f = (b & c) | (b & d) | (c & d);
        k = 0x8F1BBCDCu;
      } else {
        f = b ^ c ^ d;
        k = 0xCA62C1D6u;
      }
      const std::uint32_t t = rotl(a, 5) + f + e + k + w[i];
      e = d;
      d = c;
      c = rotl(b, 30);
      b = a;
      a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
  }
  std::array<std::uint8_t, 20> out{};
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 4; ++j)
      out[4 * i + j] = static_cast<std::uint8_t>((h[i] >> (24 - 8 * j)) & 0xffu);
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const char x = (a[i] >= 'A' && a[i] <= 'Z') ? static_cast<char>(a[i] - 'A' + 'a') : a[i];
    if (x != b[i]) return false;
  }
  return true;
}

}  // namespace

std::string sha1_hex(std::string_view data) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(40);
  for (std::uint8_t byte : sha1(data)) {
    hex.push_back(digits[byte >> 4]);
    hex.push_back(digits[byte & 0xf]);
  }
  return hex;
}

bool is_unsupported_command(std::string_view name) {
  static constexpr std::string_view banned[] = {"subscribe",    "psubscribe",   "ssubscribe", "unsubscribe",
                                                "punsubscribe", "sunsubscribe", "monitor",    "hello"};
  for (auto b : banned)
    if (iequals(name, b)) return true;
  return false;
}

std::vector<std::string> eval_command(std::string_view verb, std::string_view script,
                                      const std::vector<std::string>& keys,
                                      const std::vector<std::string>& args) {
  std::vector<std::string> cmd;
  cmd.reserve(3 + keys.size() + args.size());
  cmd.emplace_back(verb);
  cmd.emplace_back(script);
  cmd.push_back(std::to_string(keys.size()));
  cmd.insert(cmd.end(), keys.begin(), keys.end());
  cmd.insert(cmd.end(), args.begin(), args.end());
  return cmd;
}

bool is_noscript(const Reply& reply) {
  return reply.is_error() && reply.str.rfind("NOSCRIPT", 0) == 0;
}

bool is_numeric_ip(std::string_view host) {
  const std::string h(host);  // inet_pton wants a NUL-terminated string
  if (h.size() != host.size() || h.find('\0') != std::string::npos) return false;
  unsigned char buf[16];
  return ::inet_pton(AF_INET, h.c_str(), buf) == 1 || ::inet_pton(AF_INET6, h.c_str(), buf) == 1;
}

}  // namespace clients::redis::detail
