#include "faultproxy/cidr.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

namespace faultproxy {
namespace {

IpAddress ip(std::string_view s) {
  auto a = IpAddress::parse(s);
  EXPECT_TRUE(a) << s;
  return a.value_or(IpAddress{});
}

bool in(std::string_view cidr, std::string_view addr) {
  auto c = Cidr::parse(cidr);
  EXPECT_TRUE(c) << cidr;
  return c && c->contains(ip(addr));
}

TEST(Cidr, ParsesIpv4AndIpv6InCanonicalForm) {
  EXPECT_EQ(Cidr::parse("127.0.1.2/32")->to_string(), "127.0.1.2/32");
  EXPECT_EQ(Cidr::parse("127.0.1.0/24")->to_string(), "127.0.1.0/24");
  EXPECT_EQ(Cidr::parse("127.0.1.77/24")->to_string(), "127.0.1.0/24");  // host bits cleared, as Go
  EXPECT_EQ(Cidr::parse("10.1.2.3/9")->to_string(), "10.0.0.0/9");
  EXPECT_EQ(Cidr::parse("0.0.0.0/0")->to_string(), "0.0.0.0/0");
  EXPECT_EQ(Cidr::parse("::1/128")->to_string(), "::1/128");
  EXPECT_EQ(Cidr::parse("fd00:1:2::7/40")->to_string(), "fd00:1::/40");
  EXPECT_EQ(Cidr::parse("::/0")->to_string(), "::/0");
  EXPECT_EQ(Cidr::parse("::ffff:127.0.0.1/104")->to_string(), "::ffff:127.0.0.0/104");
}

TEST(Cidr, RejectsMalformedInput) {
  for (std::string_view bad : {"",
                               "/",
                               "127.0.1.2",
                               "127.0.1.2/",
                               "/24",
                               "127.0.1.2/33",
                               "::1/129",
                               "127.0.1/24",
                               "127.0.1.256/32",
                               "127.0.01.2/32",
                               "127.0.1.2/-1",
                               "127.0.1.2/+8",
                               "127.0.1.2/ 8",
                               " 127.0.1.2/8",
                               "127.0.1.2/8 ",
                               "127.0.1.2/0008",
                               "127.0.1.2/24/8",
                               "fe80::1%eth0/64",
                               "::1/1x",
                               "localhost/8",
                               "abc",
                               "1.2.3.4/3.5",
                               "1:2:3:4:5:6:7:8:9/64"}) {
    EXPECT_FALSE(Cidr::parse(bad)) << bad;
  }
}

TEST(Cidr, MatchesIpv4) {
  EXPECT_TRUE(in("127.0.1.2/32", "127.0.1.2"));
  EXPECT_FALSE(in("127.0.1.2/32", "127.0.1.1"));
  EXPECT_TRUE(in("127.0.1.0/24", "127.0.1.1"));
  EXPECT_TRUE(in("127.0.1.0/24", "127.0.1.255"));
  EXPECT_FALSE(in("127.0.1.0/24", "127.0.2.1"));
  EXPECT_TRUE(in("10.0.0.0/9", "10.127.255.255"));
  EXPECT_FALSE(in("10.0.0.0/9", "10.128.0.0"));
  EXPECT_TRUE(in("0.0.0.0/0", "192.168.1.1"));
  EXPECT_FALSE(in("0.0.0.0/0", "::1"));  // an IPv4 network holds IPv4 clients only
}

TEST(Cidr, MatchesIpv6AndIpv4MappedClients) {
  EXPECT_TRUE(in("::1/128", "::1"));
  EXPECT_FALSE(in("::1/128", "::2"));
  EXPECT_FALSE(in("::1/128", "127.0.0.1"));
  EXPECT_TRUE(in("fd00::/8", "fdab::1"));
  EXPECT_FALSE(in("fd00::/8", "fe00::1"));
  EXPECT_TRUE(in("::/0", "127.0.0.1"));
  // A dual-stack listener sees an IPv4 client as ::ffff:a.b.c.d: the same address here.
  EXPECT_EQ(ip("::ffff:127.0.1.2"), ip("127.0.1.2"));
  EXPECT_TRUE(in("127.0.1.0/24", "::ffff:127.0.1.2"));
  EXPECT_TRUE(in("::ffff:127.0.1.0/120", "127.0.1.9"));
}

TEST(Cidr, ReadsSocketAddresses) {
  sockaddr_in v4{};
  v4.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.1.2", &v4.sin_addr);
  EXPECT_EQ(IpAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&v4), sizeof v4), ip("127.0.1.2"));
  sockaddr_in6 v6{};
  v6.sin6_family = AF_INET6;
  inet_pton(AF_INET6, "::ffff:127.0.1.2", &v6.sin6_addr);
  EXPECT_EQ(IpAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&v6), sizeof v6), ip("127.0.1.2"));
  inet_pton(AF_INET6, "fd00::5", &v6.sin6_addr);
  EXPECT_EQ(IpAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&v6), sizeof v6), ip("fd00::5"));
  sockaddr unix_like{};
  unix_like.sa_family = AF_UNIX;
  EXPECT_FALSE(IpAddress::from_sockaddr(&unix_like, sizeof unix_like));
  EXPECT_FALSE(IpAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&v4), 4));  // truncated
}

}  // namespace
}  // namespace faultproxy
