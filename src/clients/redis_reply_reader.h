// clients::redis::ReplyReader: Redis replies (RESP2) parsed from a byte stream into Reply values,
// whatever pieces the bytes arrive in. Used by the Redis client and the Sentinel client.
//
// The bytes are read straight into the reader's own buffer (no copy on the way) and parsed where
// they lie; a reply's array elements are built in place as they complete, so a reply split across
// reads is never parsed twice, and memory follows the bytes received, not the sizes announced.
// As strict as hiredis 0.14's reader, whose place it took (numbers as Redis writes them: no '+', no
// leading zero, no "-0"; a negative length other than -1 is an error), and stricter: a bulk string
// must end in CRLF, and arrays are limited in size (kMaxReplyElements) and nesting (kMaxReplyDepth),
// lines in length (kMaxReplyLine). Each of those means the stream is not what Redis sends, and the
// caller drops the connection. (The fuzz target fuzz/redis_reply checks it against hiredis.)
//
// Usage:
//   ReplyReader reader;
//   std::span<char> room = reader.buffer();       // read into it ...
//   reader.commit(n);                             // ... the n bytes that came (or: feed(bytes))
//   Reply r;
//   while (reader.next(r) == ReplyReader::Status::reply) use(std::move(r));
//   if (reader.failed()) drop_connection(reader.error());
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "clients/redis.h"

namespace clients::redis {

// The largest array reply accepted (our commands get 2-3 elements, SCAN ~500 keys).
inline constexpr std::int64_t kMaxReplyElements = 1 << 20;
// Arrays within arrays, the outermost counted, empty and nil ones too (Sentinel's replies nest 2
// deep; hiredis allowed as many).
inline constexpr std::size_t kMaxReplyDepth = 8;
// A status, error, number or length line, CRLF excluded.
inline constexpr std::size_t kMaxReplyLine = 1 << 20;
// A bulk string (Redis' own proto-max-bulk-len default).
inline constexpr std::int64_t kMaxBulkLength = std::int64_t{512} << 20;

class ReplyReader {
 public:
  enum class Status : std::uint8_t {
    reply,       // `out` holds the next reply
    incomplete,  // the bytes so far end within a reply: read more
    error,       // the stream is not RESP2: error() says why; every later call says so again
  };

  ReplyReader() = default;
  ReplyReader(const ReplyReader&) = delete;
  ReplyReader& operator=(const ReplyReader&) = delete;

  // Room for the next read: at least 4 KiB, and what the bulk string under way still needs, up to
  // 1 MiB (so one read can take the rest of it). Valid until the next call of buffer(), commit(),
  // feed() or next().
  std::span<char> buffer();
  // The first `n` bytes of buffer() hold what was read.
  void commit(std::size_t n);
  // Copies `bytes` in (for bytes that were read elsewhere).
  void feed(std::string_view bytes);

  Status next(Reply& out);
  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }
  // Bytes received and not yet returned as a reply.
  std::size_t buffered() const { return end_ - begin_; }

 private:
  enum class Item : std::uint8_t { value, array, incomplete, error };
  Item parse_item(Reply& slot, std::size_t& count);
  Status fail(std::string why);
  Item error_item(std::string why);

  std::vector<char> buf_;
  std::size_t begin_ = 0;  // the first byte not parsed yet
  std::size_t end_ = 0;    // the end of what was received
  std::size_t need_ = 0;   // bytes from begin_ the item under way needs, when known
  // The reply under way, and its open arrays, outermost first: each with the number of elements
  // its header announced and of those complete.
  struct Open {
    Reply* array;
    std::size_t count;
    std::size_t done;
  };
  Reply root_;
  std::vector<Open> open_;
  std::string error_;
};

}  // namespace clients::redis
