// Incremental framing of the MySQL/MariaDB client/server protocol, for the protocol-aware toxics:
// packets (3-byte little-endian payload length, sequence id, payload) found whatever the chunk
// boundaries, with the first bytes of each payload captured (the command byte and statement text
// of a client's command; the header of a server's answer) and the rest only counted.
//
// Also the few packets the toxics write (an error packet, a COM_QUERY) and what a client's first
// packet says about the connection (TLS or compression asked for: such a connection is passed
// through untouched, its bytes being no longer plain packets).
//
// Usage:
//   MysqlPacketScanner s(/*capture=*/1 << 20);
//   while (!chunk.empty()) {
//     const std::size_t n = s.feed(chunk);     // stops at each point of interest
//     if (s.prefix_now()) decide(s.sequence_id(), s.prefix());  // up to `capture` payload bytes
//     if (s.ended()) ...;                       // the packet's last byte was consumed
//     chunk.remove_prefix(n);
//   }
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace faultproxy {

class MysqlPacketScanner {
 public:
  // A payload this long is continued by the next packet (a message of 16 MiB or more).
  static constexpr std::uint32_t kMaxPayload = 0xFFFFFF;

  explicit MysqlPacketScanner(std::size_t capture) : capture_limit_(capture) {}

  // Consumes bytes from the front of `data` up to the next point of interest (the captured prefix
  // of a payload complete, a packet ended) or the end of `data`; returns how many.
  std::size_t feed(std::string_view data);

  // Captures more of the current packet's payload (up to `capture` bytes in all): a later feed()
  // reports prefix_now() again when they are in, unless prefix_complete() already.
  void extend_capture(std::size_t capture);
  bool prefix_complete() const { return prefix_.size() >= want_; }

  // After feed(): the current packet's prefix (its first min(length, capture) payload bytes) has
  // just been completed. Comes before or with ended().
  bool prefix_now() const { return prefix_now_; }
  // After feed(): the current packet ended at the last byte consumed.
  bool ended() const { return ended_; }
  // Between two packets.
  bool at_boundary() const { return header_got_ == 0 && !in_payload_; }

  std::uint32_t payload_length() const { return length_; }
  std::uint8_t sequence_id() const { return seq_; }
  const std::string& prefix() const { return prefix_; }

 private:
  std::size_t capture_limit_;
  unsigned char header_[4]{};
  std::size_t header_got_ = 0;
  bool in_payload_ = false;
  std::uint32_t length_ = 0, left_ = 0;
  std::uint8_t seq_ = 0;
  std::string prefix_;
  std::size_t want_ = 0;  // prefix bytes wanted for this packet
  bool prefix_done_ = false, prefix_now_ = false, ended_ = false;
};

// Command bytes the toxics look at.
enum MysqlCommand : std::uint8_t {
  kComSleep = 0x00,
  kComQuit = 0x01,
  kComQuery = 0x03,
  kComChangeUser = 0x11,
  kComBinlogDump = 0x12,
  kComStmtPrepare = 0x16,
  kComStmtExecute = 0x17,
  kComStmtSendLongData = 0x18,
  kComStmtClose = 0x19,
  kComBinlogDumpGtid = 0x1e,
  kComStmtBulkExecute = 0xfa,
};

// What a client's first packet (the handshake response, or the TLS request that precedes it)
// says. `valid` is false when the bytes are not such a packet (too short, wrong sequence id).
struct MysqlClientHello {
  bool valid = false;
  bool tls = false;       // CLIENT_SSL: the rest of the connection is TLS
  bool compress = false;  // CLIENT_COMPRESS: packets are wrapped in compressed packets after auth
};
// `head`: at least the first 8 bytes the client sent.
MysqlClientHello inspect_client_hello(std::string_view head);

// An ERR packet: 0xFF, code, '#', SQLSTATE (5 characters), message.
std::string mysql_error_packet(std::uint8_t sequence_id, std::uint16_t code, std::string_view sqlstate,
                               std::string_view message);
// A COM_QUERY packet (sequence id 0) for `sql`.
std::string mysql_query_packet(std::string_view sql);

// A little-endian integer from the first `bytes` bytes of `s` (which must hold them).
std::uint32_t mysql_le(std::string_view s, std::size_t bytes);

}  // namespace faultproxy
