#include "faultproxy/mysql_parser.h"

#include <algorithm>

namespace faultproxy {
namespace {

constexpr std::uint32_t kClientCompress = 0x20;
constexpr std::uint32_t kClientProtocol41 = 0x200;
constexpr std::uint32_t kClientSsl = 0x800;

void put_header(std::string& out, std::size_t payload, std::uint8_t seq) {
  out.push_back(static_cast<char>(payload & 0xff));
  out.push_back(static_cast<char>((payload >> 8) & 0xff));
  out.push_back(static_cast<char>((payload >> 16) & 0xff));
  out.push_back(static_cast<char>(seq));
}

}  // namespace

std::size_t MysqlPacketScanner::feed(std::string_view data) {
  prefix_now_ = false;
  ended_ = false;
  std::size_t i = 0;
  while (i < data.size()) {
    if (!in_payload_) {
      header_[header_got_++] = static_cast<unsigned char>(data[i++]);
      if (header_got_ < 4) continue;
      header_got_ = 0;
      length_ = header_[0] | (header_[1] << 8) | (static_cast<std::uint32_t>(header_[2]) << 16);
      seq_ = header_[3];
      left_ = length_;
      prefix_.clear();
      want_ = std::min<std::size_t>(length_, capture_limit_);
      prefix_done_ = false;
      in_payload_ = true;
    }
    if (!prefix_done_) {
      const std::size_t n = std::min(want_ - prefix_.size(), data.size() - i);
      prefix_.append(data.substr(i, n));
      i += n;
      left_ -= static_cast<std::uint32_t>(n);
      if (prefix_.size() < want_) break;  // data exhausted
      prefix_done_ = true;
      prefix_now_ = true;
    } else {
      const std::size_t skip = std::min<std::size_t>(left_, data.size() - i);
      i += skip;
      left_ -= static_cast<std::uint32_t>(skip);
    }
    if (left_ == 0) {
      in_payload_ = false;
      ended_ = true;
    }
    if (prefix_now_ || ended_) break;
  }
  return i;
}

void MysqlPacketScanner::extend_capture(std::size_t capture) {
  if (!in_payload_ && !ended_) return;
  const std::size_t want = std::min<std::size_t>(length_, capture);
  if (want <= prefix_.size()) return;
  want_ = want;
  prefix_done_ = false;
}

MysqlClientHello inspect_client_hello(std::string_view head) {
  MysqlClientHello h;
  if (head.size() < 8 || static_cast<std::uint8_t>(head[3]) != 1) return h;
  const std::uint32_t length = mysql_le(head, 3);
  const std::uint32_t flags = mysql_le(head.substr(4), 4);
  if (length < 4 || !(flags & kClientProtocol41)) return h;
  h.valid = true;
  h.tls = (flags & kClientSsl) != 0;
  h.compress = (flags & kClientCompress) != 0;
  return h;
}

std::string mysql_error_packet(std::uint8_t sequence_id, std::uint16_t code, std::string_view sqlstate,
                               std::string_view message) {
  message = message.substr(0, MysqlPacketScanner::kMaxPayload - 9);
  std::string out;
  put_header(out, 9 + message.size(), sequence_id);
  out.push_back(static_cast<char>(0xff));
  out.push_back(static_cast<char>(code & 0xff));
  out.push_back(static_cast<char>(code >> 8));
  out.push_back('#');
  std::string state(sqlstate.substr(0, 5));
  state.resize(5, '0');
  out += state;
  out += message;
  return out;
}

std::string mysql_query_packet(std::string_view sql) {
  std::string out;
  put_header(out, 1 + sql.size(), 0);
  out.push_back(static_cast<char>(kComQuery));
  out += sql;
  return out;
}

std::uint32_t mysql_le(std::string_view s, std::size_t bytes) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < bytes && i < s.size(); ++i)
    v |= static_cast<std::uint32_t>(static_cast<unsigned char>(s[i])) << (8 * i);
  return v;
}

}  // namespace faultproxy
