// Fuzz target: RESP framing (faultproxy/resp_parser.h) and the redis toxics over it.
//
// Checked, besides memory safety and UB: the scanner finds the same value ends and names whatever
// the chunking, and always progresses (or has failed); redis_error and redis_delay pass streams
// they match nothing in byte for byte and never lose or reorder the server's bytes (support/
// protocol_fuzz.h).
#include "faultproxy/resp_parser.h"
#include "support/protocol_fuzz.h"

namespace {

using faultproxy::RespScanner;
using fuzz_support::check;

std::vector<std::pair<std::size_t, std::string>> ends(RespScanner::Mode mode, std::string_view s,
                                                      std::size_t piece, bool& failed) {
  RespScanner scanner(mode);
  std::vector<std::pair<std::size_t, std::string>> out;
  std::size_t offset = 0;
  while (offset < s.size() && !scanner.failed()) {
    std::string_view chunk = s.substr(offset, piece);
    while (!chunk.empty()) {
      const std::size_t n = scanner.feed(chunk);
      check(n <= chunk.size(), "consumed more than given");
      if (scanner.failed()) break;
      check(n > 0, "no progress");
      offset += n;
      chunk.remove_prefix(n);
      if (scanner.ended()) out.emplace_back(offset, scanner.name() + " " + scanner.first_argument());
    }
  }
  failed = scanner.failed();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto in = protocol_fuzz::split(data, size);
  for (auto mode : {RespScanner::Mode::commands, RespScanner::Mode::replies}) {
    const std::string& s = mode == RespScanner::Mode::commands ? in.client : in.server;
    bool failed_whole = false, failed_pieces = false;
    const auto whole = ends(mode, s, s.size() + 1, failed_whole);
    const auto pieces = ends(mode, s, in.piece, failed_pieces);
    check(failed_whole == failed_pieces, "failure depends on chunking");
    check(whole == pieces, "value ends depend on chunking");
  }
  using faultproxy::ToxicType;
  protocol_fuzz::check_passthrough(ToxicType::redis_error, {{"commands", std::string("NO-SUCH-COMMAND")}},
                                   "NO-SUCH-COMMAND", in);
  protocol_fuzz::check_passthrough(ToxicType::redis_delay, {{"commands", std::string("NONE")}}, "NONE", in);
  const std::string commands = in.selector & 1 ? "" : "SET,GET,PING";
  protocol_fuzz::check_acting(ToxicType::redis_error, {{"commands", commands}}, in);
  protocol_fuzz::check_acting(ToxicType::redis_delay, {{"commands", commands}, {"latency", std::int64_t{5}}},
                              in);
  return 0;
}
