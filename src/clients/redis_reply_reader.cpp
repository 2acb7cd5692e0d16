#include "clients/redis_reply_reader.h"

#include <algorithm>
#include <charconv>
#include <cstring>

namespace clients::redis {

namespace {

constexpr std::size_t kInitialBuffer = 16 * 1024;
constexpr std::size_t kMinRoom = 4 * 1024;
// Room made at once for what a bulk string announces; beyond it the buffer grows as bytes come.
constexpr std::size_t kMaxRoomAhead = 1024 * 1024;
// A buffer grown past this for a large reply goes back to kInitialBuffer once it is empty.
constexpr std::size_t kKeepBuffer = 256 * 1024;

// The end of the line starting at `p` (its CR), or null if no CRLF is in [p, end).
const char* find_crlf(const char* p, const char* end) {
  while (p < end) {
    const auto* cr = static_cast<const char*>(std::memchr(p, '\r', static_cast<std::size_t>(end - p)));
    if (cr == nullptr || cr + 1 >= end) return nullptr;
    if (cr[1] == '\n') return cr;
    p = cr + 1;
  }
  return nullptr;
}

enum class Scan : std::uint8_t { done, incomplete, bad };

// The number line at `p` (after its type byte): a whole decimal number as Redis writes it ('-'
// allowed, no '+', no leading zero, no "-0"), within int64, then CRLF. On `done`, `p` is past the
// LF. Digits are read as they come: no search for the CR first.
inline __attribute__((always_inline)) Scan scan_number(const char*& p, const char* end, std::int64_t& out) {
  const char* q = p;
  const bool negative = q < end && *q == '-';
  if (negative) ++q;
  const char* const digits = q;
  std::uint64_t v = 0;
  while (q < end && static_cast<unsigned char>(*q - '0') < 10) {
    v = v * 10 + static_cast<unsigned>(*q - '0');
    if (++q - digits > 19) return Scan::bad;  // 19 digits never overflow 64 bits
  }
  if (q == end || (*q == '\r' && q + 1 == end)) return Scan::incomplete;
  if (q == digits || q[0] != '\r' || q[1] != '\n') return Scan::bad;
  if ((q - digits > 1 && *digits == '0') || (negative && v == 0)) return Scan::bad;  // as Redis writes them
  if (v > (negative ? std::uint64_t{1} << 63 : (std::uint64_t{1} << 63) - 1)) return Scan::bad;
  out = static_cast<std::int64_t>(negative ? 0 - v : v);
  p = q + 2;
  return Scan::done;
}

// What a bad line starts with, for the error's words.
std::string line_start(const char* p, const char* end) {
  const char* q = p;
  while (q < end && q - p < 32 && *q != '\r')
    ++q;
  return std::string(p, q);
}

std::string shown(char c) {
  static constexpr char kHex[] = "0123456789abcdef";
  if (c >= 0x20 && c < 0x7f) return std::string("'") + c + "'";
  const auto u = static_cast<unsigned char>(c);
  return std::string("0x") + kHex[u >> 4] + kHex[u & 0xF];
}

}  // namespace

std::span<char> ReplyReader::buffer() {
  if (begin_ == end_) {
    begin_ = end_ = 0;
    if (buf_.size() > kKeepBuffer) {
      buf_.resize(kInitialBuffer);
      buf_.shrink_to_fit();
    }
  }
  if (buf_.empty()) buf_.resize(kInitialBuffer);
  const std::size_t held = end_ - begin_;
  const std::size_t want = std::clamp(need_ > held ? need_ - held : 0, kMinRoom, kMaxRoomAhead);
  if (buf_.size() - end_ < want) {
    if (begin_ > 0) {
      std::memmove(buf_.data(), buf_.data() + begin_, held);
      begin_ = 0;
      end_ = held;
    }
    if (buf_.size() - end_ < want) buf_.resize(std::max(buf_.size() * 2, end_ + want));
  }
  return {buf_.data() + end_, buf_.size() - end_};
}

void ReplyReader::commit(std::size_t n) {
  end_ += std::min(n, buf_.size() - end_);
}

void ReplyReader::feed(std::string_view bytes) {
  while (!bytes.empty()) {
    const std::span<char> room = buffer();
    const std::size_t n = std::min(room.size(), bytes.size());
    std::memcpy(room.data(), bytes.data(), n);
    commit(n);
    bytes.remove_prefix(n);
  }
}

ReplyReader::Status ReplyReader::fail(std::string why) {
  error_ = std::move(why);
  root_ = Reply{};
  open_.clear();
  begin_ = end_ = need_ = 0;
  return Status::error;
}

ReplyReader::Status ReplyReader::next(Reply& out) {
  if (failed()) return Status::error;
  for (;;) {
    // The element under way: a new one, or the one an earlier call found incomplete.
    Reply* slot = &root_;
    if (!open_.empty()) {
      std::vector<Reply>& elements = open_.back().array->elements;
      slot = elements.size() > open_.back().done ? &elements.back() : &elements.emplace_back();
    }
    std::size_t count = 0;
    switch (parse_item(*slot, count)) {
      case Item::incomplete:
        return Status::incomplete;
      case Item::error:
        return Status::error;
      case Item::array:
        open_.push_back({slot, count, 0});
        continue;
      case Item::value:
        break;
    }
    // A value is complete: so is every array it completes.
    while (!open_.empty()) {
      Open& o = open_.back();
      if (++o.done < o.count) break;
      open_.pop_back();
    }
    if (open_.empty()) {
      out = std::move(root_);
      root_.type = Reply::Type::nil;
      root_.integer = 0;
      root_.str.clear();
      root_.elements.clear();
      return Status::reply;
    }
  }
}

// One item at begin_ into `slot`: a whole value, or the header of an array of `count` elements
// (they follow; room is reserved for a few, the rest grows as they come, so memory follows what
// was received, not what a header announced).
ReplyReader::Item ReplyReader::parse_item(Reply& slot, std::size_t& count) {
  const char* const start = buf_.data() + begin_;
  const char* const end = buf_.data() + end_;
  if (start == end) return Item::incomplete;
  const char kind = *start;
  const char* p = start + 1;
  std::int64_t n = 0;
  switch (kind) {
    case '+':
    case '-': {
      const char* const eol = find_crlf(p, end);
      if (eol == nullptr) {
        if (static_cast<std::size_t>(end - p) > kMaxReplyLine)
          return error_item("a reply line longer than 1 MiB");
        need_ = 0;
        return Item::incomplete;
      }
      slot.type = kind == '+' ? Reply::Type::status : Reply::Type::error;
      slot.str.append(p, eol);
      p = eol + 2;
      break;
    }
    case ':':
      switch (scan_number(p, end, n)) {
        case Scan::incomplete:
          return Item::incomplete;
        case Scan::bad:
          return error_item("not an integer reply: " + line_start(p, end));
        case Scan::done:
          break;
      }
      slot.type = Reply::Type::integer;
      slot.integer = n;
      break;
    case '$': {
      const Scan scan = scan_number(p, end, n);
      if (scan == Scan::incomplete) return Item::incomplete;
      if (scan == Scan::bad || n < -1 || n > kMaxBulkLength)
        return error_item("not a bulk string length: " + line_start(start + 1, end));
      if (n == -1) {
        slot.type = Reply::Type::nil;
        break;
      }
      const auto len = static_cast<std::size_t>(n);
      if (static_cast<std::size_t>(end - p) < len + 2) {
        need_ = static_cast<std::size_t>(p - start) + len + 2;
        return Item::incomplete;
      }
      if (p[len] != '\r' || p[len + 1] != '\n') return error_item("a bulk string not followed by CRLF");
      slot.type = Reply::Type::string;
      slot.str.append(p, len);
      p += len + 2;
      break;
    }
    case '*': {
      if (open_.size() == kMaxReplyDepth) return error_item("arrays nested deeper than 8");
      const Scan scan = scan_number(p, end, n);
      if (scan == Scan::incomplete) return Item::incomplete;
      if (scan == Scan::bad || n < -1 || n > kMaxReplyElements)
        return error_item("not an array length (or over the limit): " + line_start(start + 1, end));
      begin_ = static_cast<std::size_t>(p - buf_.data());
      need_ = 0;
      if (n == -1) {
        slot.type = Reply::Type::nil;
        return Item::value;
      }
      slot.type = Reply::Type::array;
      count = static_cast<std::size_t>(n);
      slot.elements.reserve(std::min<std::size_t>(count, 1024));
      return n == 0 ? Item::value : Item::array;
    }
    default:
      return error_item("got " + shown(kind) + " as a reply type byte");
  }
  begin_ = static_cast<std::size_t>(p - buf_.data());
  need_ = 0;
  return Item::value;
}

ReplyReader::Item ReplyReader::error_item(std::string why) {
  fail(std::move(why));
  return Item::error;
}

}  // namespace clients::redis
