#include "faultproxy/cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

namespace faultproxy {
namespace {

constexpr std::array<std::uint8_t, 12> kV4MappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

IpAddress mapped_v4(const std::uint8_t* four) {
  IpAddress a;
  std::copy(kV4MappedPrefix.begin(), kV4MappedPrefix.end(), a.bytes.begin());
  std::copy(four, four + 4, a.bytes.begin() + 12);
  return a;
}

bool is_v4_mapped(const IpAddress& a) {
  return std::equal(kV4MappedPrefix.begin(), kV4MappedPrefix.end(), a.bytes.begin());
}

}  // namespace

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  // inet_pton wants a NUL-terminated string; longer than any address spelling: malformed.
  char buf[INET6_ADDRSTRLEN + 1];
  if (text.empty() || text.size() >= sizeof buf) return std::nullopt;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  if (text.find(':') == std::string_view::npos) {
    std::uint8_t four[4];
    if (inet_pton(AF_INET, buf, four) != 1) return std::nullopt;  // no leading zeros, no short forms
    return mapped_v4(four);
  }
  IpAddress a;
  if (inet_pton(AF_INET6, buf, a.bytes.data()) != 1) return std::nullopt;  // no zone ("%eth0")
  return a;
}

std::optional<IpAddress> IpAddress::from_sockaddr(const sockaddr* sa, socklen_t len) {
  if (sa == nullptr) return std::nullopt;
  if (sa->sa_family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    return mapped_v4(reinterpret_cast<const std::uint8_t*>(&in->sin_addr.s_addr));
  }
  if (sa->sa_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    IpAddress a;
    std::memcpy(a.bytes.data(), &in6->sin6_addr, 16);
    return a;
  }
  return std::nullopt;
}

std::optional<Cidr> Cidr::parse(std::string_view text) {
  const auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  const std::string_view addr_text = text.substr(0, slash);
  const std::string_view len_text = text.substr(slash + 1);
  auto addr = IpAddress::parse(addr_text);
  if (!addr) return std::nullopt;
  const bool v4 = addr_text.find(':') == std::string_view::npos;
  // Decimal digits only (no sign, no spaces), at most three of them.
  if (len_text.empty() || len_text.size() > 3) return std::nullopt;
  unsigned len = 0;
  for (char c : len_text) {
    if (c < '0' || c > '9') return std::nullopt;
    len = len * 10 + static_cast<unsigned>(c - '0');
  }
  if (len > (v4 ? 32u : 128u)) return std::nullopt;
  Cidr c;
  c.v4_ = v4;
  c.bits_ = static_cast<std::uint8_t>(v4 ? 96 + len : len);
  c.network_ = *addr;
  for (unsigned i = 0; i < 16; ++i) {
    const unsigned first_bit = i * 8;
    if (first_bit >= c.bits_) {
      c.network_.bytes[i] = 0;
    } else if (first_bit + 8 > c.bits_) {
      c.network_.bytes[i] &= static_cast<std::uint8_t>(0xff00u >> (c.bits_ - first_bit));
    }
  }
  return c;
}

bool Cidr::contains(const IpAddress& a) const {
  const unsigned full = bits_ / 8;
  if (!std::equal(network_.bytes.begin(), network_.bytes.begin() + full, a.bytes.begin())) return false;
  const unsigned rest = bits_ % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff00u >> rest);
  return (a.bytes[full] & mask) == network_.bytes[full];
}

std::string Cidr::to_string() const {
  char buf[INET6_ADDRSTRLEN];
  if (v4_ && is_v4_mapped(network_)) {
    inet_ntop(AF_INET, network_.bytes.data() + 12, buf, sizeof buf);
    return std::string(buf) + "/" + std::to_string(bits_ - 96);
  }
  inet_ntop(AF_INET6, network_.bytes.data(), buf, sizeof buf);
  return std::string(buf) + "/" + std::to_string(bits_);
}

}  // namespace faultproxy
