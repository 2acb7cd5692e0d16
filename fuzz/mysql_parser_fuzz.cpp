// Fuzz target: MySQL packet framing (faultproxy/mysql_parser.h) and the mysql toxics over it.
//
// Checked, besides memory safety and UB: the scanner finds the same packets and prefixes whatever
// the chunking; mysql_error and mysql_delay pass streams they match nothing in byte for byte
// (support/protocol_fuzz.h), with a plain handshake and with TLS or compression asked for.
#include "faultproxy/mysql_parser.h"
#include "support/protocol_fuzz.h"

namespace {

using faultproxy::MysqlPacketScanner;
using fuzz_support::check;

std::vector<std::string> packets(std::string_view s, std::size_t piece, std::size_t capture) {
  MysqlPacketScanner scanner(capture);
  std::vector<std::string> out;
  std::size_t offset = 0;
  while (offset < s.size()) {
    std::string_view chunk = s.substr(offset, piece);
    while (!chunk.empty()) {
      const std::size_t n = scanner.feed(chunk);
      check(n > 0 && n <= chunk.size(), "no progress, or consumed more than given");
      offset += n;
      chunk.remove_prefix(n);
      if (scanner.prefix_now()) {
        check(scanner.prefix().size() <= capture * 4, "captured beyond the limit");
        if (scanner.prefix().size() == 1 && scanner.prefix()[0] == '\x03')
          scanner.extend_capture(capture * 4);
      }
      if (scanner.ended()) out.push_back(std::to_string(offset) + ":" + scanner.prefix());
    }
  }
  return out;
}

std::string hello(std::uint32_t flags) {
  std::string h = {'\x20', '\0', '\0', '\x01'};
  for (int i = 0; i < 4; ++i)
    h.push_back(static_cast<char>((flags >> (8 * i)) & 0xff));
  return h;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto in = protocol_fuzz::split(data, size);
  const std::size_t capture = 1 + in.selector % 16;
  check(packets(in.client, in.client.size() + 1, capture) == packets(in.client, in.piece, capture),
        "packets depend on chunking");
  using faultproxy::ToxicType;
  const std::string head = hello(in.selector & 2 ? 0x200 | 0x800 : in.selector & 4 ? 0x200 | 0x20 : 0x200);
  protocol_fuzz::check_passthrough(ToxicType::mysql_delay,
                                   {{"statement", std::string("^NO SUCH STATEMENT$")}}, "NO SUCH STATEMENT",
                                   in, head);
  protocol_fuzz::check_passthrough(ToxicType::mysql_error,
                                   {{"statement", std::string("^NO SUCH STATEMENT$")}}, "NO SUCH STATEMENT",
                                   in, head);
  const std::int64_t code = in.selector & 8 ? 2013 : in.selector & 16 ? 1927 : 1213;
  protocol_fuzz::check_acting(ToxicType::mysql_error, {{"code", code}}, in, head);
  protocol_fuzz::check_acting(ToxicType::mysql_delay, {{"latency", std::int64_t{5}}}, in, head);
  return 0;
}
