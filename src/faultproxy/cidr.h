// Client address filters for toxics (the toxic-level field `client_cidr`, our extension): an IPv4
// or IPv6 network in CIDR notation, and the test whether a client's address lies in it.
//
// Addresses live in one 128-bit space: an IPv4 address a.b.c.d is ::ffff:a.b.c.d, an IPv4 network
// a.b.c.d/n is ::ffff:a.b.c.d/(96+n). So "127.0.1.0/24" covers a client at 127.0.1.2 whether the
// proxy's listener is IPv4 or dual-stack (which sees the client as ::ffff:127.0.1.2), and "::/0"
// covers everyone. Parsing is as strict as Go's net.ParseCIDR: a prefix length is required, IPv4
// octets without leading zeros, no IPv6 zone; host bits may be set ("127.0.1.2/24" is 127.0.1.0/24).
//
// Usage:
//   auto net = Cidr::parse("127.0.1.0/24");               // std::nullopt when malformed
//   auto client = IpAddress::from_sockaddr(sa);           // from getpeername()
//   if (net && client && net->contains(*client)) ...
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace faultproxy {

// An IPv4 (mapped) or IPv6 address.
struct IpAddress {
  std::array<std::uint8_t, 16> bytes{};

  // "127.0.0.1", "::1", "::ffff:127.0.0.1"; std::nullopt when malformed.
  static std::optional<IpAddress> parse(std::string_view text);
  // An AF_INET or AF_INET6 socket address; std::nullopt for any other family.
  static std::optional<IpAddress> from_sockaddr(const sockaddr* sa, socklen_t len);
  bool operator==(const IpAddress&) const = default;
};

class Cidr {
 public:
  // "127.0.1.0/24", "::1/128"; std::nullopt when malformed.
  static std::optional<Cidr> parse(std::string_view text);

  bool contains(const IpAddress& a) const;
  // The network in canonical form ("127.0.1.0/24", "fd00::/8"), for logs and tests.
  std::string to_string() const;
  bool operator==(const Cidr&) const = default;

 private:
  IpAddress network_;      // host bits cleared
  std::uint8_t bits_ = 0;  // prefix length in the 128-bit space
  bool v4_ = false;        // written as IPv4 (to_string only)
};

}  // namespace faultproxy
