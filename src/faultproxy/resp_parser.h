// Incremental RESP (Redis serialization protocol, RESP2 and RESP3) framing, for the protocol-aware
// toxics: where each top-level value ends, whatever the chunk boundaries, without buffering values.
//
// Two modes. `commands` reads what a client sends: arrays of bulk strings, or inline commands (a
// text line, as telnet sends them); it captures the command's name and first argument (upper-cased,
// at most 64 bytes each) and reports the name as soon as it is known, so that a toxic can decide
// before the rest (a large value) arrives. `replies` reads what a server sends and tells replies to
// commands from out-of-band values (RESP3 pushes, attributes).
//
// Usage:
//   RespScanner s(RespScanner::Mode::commands);
//   while (!chunk.empty()) {
//     const std::size_t n = s.feed(chunk);   // stops at each point of interest
//     if (s.name_known_now()) decide(s.name());
//     if (s.ended()) finish_command(s.counts());
//     chunk.remove_prefix(n);
//   }
//   if (s.failed()) ...                        // not RESP: the caller stops interpreting the stream
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace faultproxy {

class RespScanner {
 public:
  enum class Mode : std::uint8_t { commands, replies };
  explicit RespScanner(Mode mode) : mode_(mode) {}

  // Consumes bytes from the front of `data` up to the next point of interest (a value ended, a
  // command's name became known) or the end of `data`; returns how many. Consumes nothing once
  // failed.
  std::size_t feed(std::string_view data);

  // After feed(): a top-level value ended at the last byte consumed.
  bool ended() const { return ended_; }
  // After feed(): the command's name became known at the last byte consumed (commands mode).
  bool name_known_now() const { return name_now_; }
  // The current (or just ended) command's name and first argument, upper-cased; "" when absent,
  // longer than 64 bytes or not a string.
  const std::string& name() const { return name_; }
  const std::string& first_argument() const { return arg1_; }
  // The value that ended is a command (commands mode: not an empty line or an empty array, which
  // Redis ignores) or a reply to one (replies mode: not a push or an attribute).
  bool counts() const { return counts_; }
  // The stream is not RESP (or exceeds its limits): nothing more is interpreted.
  bool failed() const { return state_ == State::failed; }
  // Between two top-level values.
  bool at_boundary() const { return state_ == State::type && stack_.empty(); }

 private:
  enum class State : std::uint8_t {
    type,
    number,
    number_lf,
    line,
    bulk,
    bulk_cr,
    bulk_lf,
    inline_line,
    failed
  };
  void start_value(char type);
  void number_done();
  void value_done();
  void capture_inline(char c);
  void fail() { state_ = State::failed; }

  Mode mode_;
  State state_ = State::type;
  char type_ = 0;      // type byte of the value being read
  char top_type_ = 0;  // type byte of the current top-level value
  bool negative_ = false;
  int digits_ = 0;
  std::int64_t number_ = 0;
  std::int64_t bulk_left_ = 0;
  std::size_t inline_len_ = 0;
  int inline_word_ = 0;  // inline commands: index of the word being read (-1 between words)
  bool inline_in_word_ = false;
  std::vector<std::int64_t> stack_;  // elements left in each open aggregate
  std::int64_t top_count_ = 0;       // elements of the top-level array (commands mode)
  std::string name_, arg1_;
  std::string* capture_ = nullptr;  // the bulk string being captured into name_ or arg1_
  bool capture_overflow_ = false;
  bool ended_ = false, name_now_ = false, counts_ = false, name_known_ = false;
};

}  // namespace faultproxy
