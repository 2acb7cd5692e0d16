#include "faultproxy/mysql_parser.h"

#include <gtest/gtest.h>

namespace faultproxy {
namespace {

std::string packet(std::uint8_t seq, std::string_view payload) {
  std::string out;
  out.push_back(static_cast<char>(payload.size() & 0xff));
  out.push_back(static_cast<char>((payload.size() >> 8) & 0xff));
  out.push_back(static_cast<char>((payload.size() >> 16) & 0xff));
  out.push_back(static_cast<char>(seq));
  out += payload;
  return out;
}

struct Seen {
  std::uint8_t seq;
  std::uint32_t length;
  std::string prefix;
  std::size_t end;
};

std::vector<Seen> scan(std::string_view stream, std::size_t piece, std::size_t capture) {
  MysqlPacketScanner s(capture);
  std::vector<Seen> out;
  std::string prefix;
  std::size_t offset = 0;
  while (offset < stream.size()) {
    std::string_view chunk = stream.substr(offset, piece);
    while (!chunk.empty()) {
      const std::size_t n = s.feed(chunk);
      offset += n;
      chunk.remove_prefix(n);
      if (s.prefix_now()) prefix = s.prefix();
      if (s.ended()) out.push_back({s.sequence_id(), s.payload_length(), prefix, offset});
    }
  }
  return out;
}

TEST(MysqlPacketScanner, PacketsAndPrefixesAtEveryChunkBoundary) {
  const std::string stream = packet(0, "\x03SELECT 1") + packet(1, "") + packet(7, std::string(300, 'z'));
  for (std::size_t piece = 1; piece <= stream.size(); ++piece) {
    const auto seen = scan(stream, piece, 4);
    ASSERT_EQ(seen.size(), 3u) << piece;
    EXPECT_EQ(seen[0].seq, 0);
    EXPECT_EQ(seen[0].length, 9u);
    EXPECT_EQ(seen[0].prefix, "\x03SEL");
    EXPECT_EQ(seen[0].end, 13u);
    EXPECT_EQ(seen[1].seq, 1);
    EXPECT_EQ(seen[1].prefix, "");
    EXPECT_EQ(seen[2].seq, 7);
    EXPECT_EQ(seen[2].length, 300u);
    EXPECT_EQ(seen[2].prefix, "zzzz");
    EXPECT_EQ(seen[2].end, stream.size());
  }
}

TEST(MysqlPacketScanner, ExtendCaptureReadsMoreOfThePayload) {
  const std::string stream = packet(0, "\x03SELECT * FROM t") + packet(0, "\x0e");
  for (std::size_t piece = 1; piece <= stream.size(); ++piece) {
    MysqlPacketScanner s(1);
    std::vector<std::string> prefixes;
    std::string_view rest = stream;
    std::size_t fed = 0;
    while (fed < stream.size()) {
      std::string_view chunk = rest.substr(fed, piece);
      while (!chunk.empty()) {
        const std::size_t n = s.feed(chunk);
        fed += n;
        chunk.remove_prefix(n);
        if (s.prefix_now()) {
          prefixes.push_back(s.prefix());
          if (s.prefix() == "\x03") {
            s.extend_capture(100);
            if (s.prefix_complete()) prefixes.push_back("complete at once");
          }
        }
      }
    }
    ASSERT_EQ(prefixes.size(), 3u) << piece;
    EXPECT_EQ(prefixes[1], "\x03SELECT * FROM t");
    EXPECT_EQ(prefixes[2], "\x0e");
  }
}

TEST(MysqlPacketScanner, LargePayloadsAreCountedNotBuffered) {
  const std::string big(MysqlPacketScanner::kMaxPayload, 'q');
  const std::string stream = packet(0, big) + packet(1, "tail");
  const auto seen = scan(stream, 65536, 16);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].length, MysqlPacketScanner::kMaxPayload);
  EXPECT_EQ(seen[0].prefix.size(), 16u);
  EXPECT_EQ(seen[1].prefix, "tail");
}

TEST(MysqlClientHello, TellsTlsAndCompressionApart) {
  auto hello = [](std::uint32_t flags, std::uint8_t seq = 1) {
    std::string payload;
    for (int i = 0; i < 4; ++i)
      payload.push_back(static_cast<char>((flags >> (8 * i)) & 0xff));
    payload += std::string(28, '\0');
    return packet(seq, payload);
  };
  const auto plain = inspect_client_hello(hello(0x200 | 0x8000));
  EXPECT_TRUE(plain.valid);
  EXPECT_FALSE(plain.tls);
  EXPECT_FALSE(plain.compress);
  EXPECT_TRUE(inspect_client_hello(hello(0x200 | 0x800)).tls);
  EXPECT_TRUE(inspect_client_hello(hello(0x200 | 0x20)).compress);
  EXPECT_FALSE(inspect_client_hello(hello(0x200, 0)).valid);            // not the handshake's sequence id
  EXPECT_FALSE(inspect_client_hello(hello(0x8000)).valid);              // pre-4.1 protocol
  EXPECT_FALSE(inspect_client_hello(hello(0x200).substr(0, 7)).valid);  // too short to tell
}

TEST(MysqlPackets, ErrorAndQueryPacketsAreFramed) {
  const std::string err = mysql_error_packet(1, 1213, "40001", "Deadlock");
  EXPECT_EQ(err, packet(1, std::string("\xff\xbd\x04#40001Deadlock", 17)));
  EXPECT_EQ(mysql_error_packet(1, 1205, "HY", "x").substr(8, 5), "HY000");  // padded to 5
  EXPECT_EQ(mysql_query_packet("DO 0"), packet(0,
                                               "\x03"
                                               "DO 0"));
  EXPECT_EQ(mysql_le("\x01\x02\x03\x04", 4), 0x04030201u);
  EXPECT_EQ(mysql_le("\x01", 4), 1u);
}

}  // namespace
}  // namespace faultproxy
