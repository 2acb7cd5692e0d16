// Fuzz target: HTTP/1.x framing (faultproxy/http_parser.h) and the http toxics over it.
//
// Checked, besides memory safety and UB: the scanner finds the same heads and message ends
// whatever the chunking; http_abort and http_delay pass streams they match nothing in byte for
// byte, and never lose or reorder the server's bytes (support/protocol_fuzz.h).
#include "faultproxy/http_parser.h"
#include "support/protocol_fuzz.h"

namespace {

using faultproxy::HttpScanner;
using fuzz_support::check;

std::vector<std::string> messages(HttpScanner::Mode mode, std::string_view s, std::size_t piece) {
  HttpScanner scanner(mode);
  std::vector<std::string> out;
  std::size_t offset = 0;
  while (offset < s.size() && !scanner.failed() && !scanner.switched()) {
    std::string_view chunk = s.substr(offset, piece);
    while (!chunk.empty()) {
      const std::size_t n = scanner.feed(chunk);
      check(n <= chunk.size(), "consumed more than given");
      if (scanner.failed() || scanner.switched()) break;
      check(n > 0, "no progress");
      offset += n;
      chunk.remove_prefix(n);
      if (scanner.head_now()) out.push_back("head " + std::to_string(offset) + " " + scanner.head().method);
      if (scanner.ended()) out.push_back("end " + std::to_string(offset));
    }
  }
  out.push_back(scanner.failed() ? "failed" : scanner.switched() ? "switched" : "ok");
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto in = protocol_fuzz::split(data, size);
  for (auto mode : {HttpScanner::Mode::requests, HttpScanner::Mode::responses}) {
    const std::string& s = mode == HttpScanner::Mode::requests ? in.client : in.server;
    check(messages(mode, s, s.size() + 1) == messages(mode, s, in.piece), "messages depend on chunking");
  }
  using faultproxy::ToxicType;
  protocol_fuzz::check_passthrough(ToxicType::http_abort, {{"method", std::string("NOSUCHMETHOD")}},
                                   "NOSUCHMETHOD", in);
  protocol_fuzz::check_passthrough(ToxicType::http_delay, {{"path_prefix", std::string("/no/such/path")}},
                                   "/no/such/path", in);
  const double percentage = (in.selector & 1) ? 100.0 : 50.0;
  protocol_fuzz::check_acting(ToxicType::http_abort, {{"percentage", percentage}}, in);
  protocol_fuzz::check_acting(ToxicType::http_delay,
                              {{"percentage", percentage}, {"latency", std::int64_t{5}}}, in);
  return 0;
}
