// Shared by the protocol parser fuzz targets (resp_parser, mysql_parser, http_parser): the input's
// layout and the checks every protocol toxic must pass whatever the bytes.
//
// Input: byte 0 picks the chunk size (1..64) the streams are cut into, byte 1 the attributes of
// the toxic under test; the rest is the client's stream, then "\n%%\n", then the server's.
//
// Checked for each toxic, besides memory safety and UB:
//   - a toxic that matches nothing (its sentinel is not in the client's stream) passes both
//     streams byte for byte, whatever the chunking (a message cut by the end of the input is held
//     until the toxic is removed, then passes);
//   - a toxic that matches everything never lets through more than the client sent, and never
//     changes what it lets through to the client but by adding its own answers.
//
// Usage (in a target):
//   auto in = protocol_fuzz::split(data, size);
//   protocol_fuzz::check_passthrough(ToxicType::redis_error, {{"commands", std::string("NONE")}},
//                                    "NONE", in);
#pragma once

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "faultproxy/protocol_test_support.h"
#include "support/fuzz_support.h"

namespace protocol_fuzz {

using faultproxy::AttributeValue;
using faultproxy::ToxicType;
using Attributes = std::vector<std::pair<std::string, AttributeValue>>;

struct Input {
  std::size_t piece = 1;
  std::uint8_t selector = 0;
  std::string client, server;
};

inline Input split(const std::uint8_t* data, std::size_t size) {
  Input in;
  if (size < 2) return in;
  in.piece = 1 + data[0] % 64;
  in.selector = data[1];
  const std::string_view rest(reinterpret_cast<const char*>(data) + 2, size - 2);
  const auto sep = rest.find("\n%%\n");
  in.client = std::string(rest.substr(0, sep));
  if (sep != std::string_view::npos) in.server = std::string(rest.substr(sep + 4));
  return in;
}

// Client bytes first, then the server's, then both again interleaved by halves.
inline void drive(faultproxy::testing_protocols::Connection2& c, const Input& in) {
  const std::size_t half_c = in.client.size() / 2, half_s = in.server.size() / 2;
  c.client_sends(std::string_view(in.client).substr(0, half_c), in.piece);
  c.server_sends(std::string_view(in.server).substr(0, half_s), in.piece);
  c.client_sends(std::string_view(in.client).substr(half_c), in.piece);
  c.server_sends(std::string_view(in.server).substr(half_s), in.piece);
  c.now += std::chrono::hours(1);  // every delay has run out
  c.run();
}

// `text` occurs in `s`, letters of any case.
inline bool contains_ignoring_case(std::string_view s, std::string_view text) {
  const auto same = [](unsigned char a, unsigned char b) { return std::tolower(a) == std::tolower(b); };
  return std::search(s.begin(), s.end(), text.begin(), text.end(), same) != s.end();
}

// `attributes` make the toxic match only messages that name `sentinel` (a command, method, path or
// statement no real client sends); a client stream that happens to contain it is not checked.
inline void check_passthrough(ToxicType type, const Attributes& attributes, std::string_view sentinel,
                              const Input& in, const std::string& head = "") {
  if (contains_ignoring_case(in.client, sentinel)) return;
  faultproxy::testing_protocols::Connection2 c(type, attributes);
  c.session.head = head;
  drive(c, in);
  // A message whose decision point was not reached yet (the end of the stream cuts it) is held;
  // removing the toxic lets it go.
  fuzz_support::check(in.client.compare(0, c.to_server().size(), c.to_server()) == 0,
                      "a toxic matching nothing changed the client's stream");
  fuzz_support::check(in.server.compare(0, c.to_client().size(), c.to_client()) == 0,
                      "a toxic matching nothing changed the server's stream");
  c.remove_toxic();
  fuzz_support::check(c.to_server() == in.client,
                      "a toxic matching nothing lost bytes of the client's stream");
  fuzz_support::check(c.to_client() == in.server,
                      "a toxic matching nothing lost bytes of the server's stream");
}

inline void check_acting(ToxicType type, const Attributes& attributes, const Input& in,
                         const std::string& head = "") {
  faultproxy::testing_protocols::Connection2 c(type, attributes);
  c.session.head = head;
  drive(c, in);
  c.remove_toxic();  // what was held for a decision goes too
  fuzz_support::check(c.to_server().size() <= 3 * in.client.size() + 16,
                      "the server got more than the client sent (and stand-ins)");
  // What the server sent reaches the client in order, with the toxic's answers in between (or is
  // cut short when the toxic closes the connection).
  std::size_t at = 0;
  for (char ch : c.to_client())
    if (at < in.server.size() && ch == in.server[at]) ++at;
  fuzz_support::check(at == in.server.size() || c.client_closed() || type == ToxicType::mysql_error,
                      "the server's bytes did not all reach the client in order");
}

}  // namespace protocol_fuzz
