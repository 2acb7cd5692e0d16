// Fuzz target: Redis replies as the clients receive them, through their reader (ReplyReader) and,
// as the reference, hiredis' own reader (with the same array limit: its default would allocate
// whatever count it reads). The first byte chooses the size of the pieces the rest is fed in.
//
// Checked, besides memory safety, leaks and UB: every reply ours returns, hiredis returns too, the
// same at every depth (types, integers, every byte of strings, element counts); where hiredis
// fails, ours has failed by then; ours never waits for bytes it has (every reply hiredis returns,
// ours returns too, unless it has failed on bytes hiredis lets pass: it is stricter, see
// redis_reply_reader.h). Every reply is then screened as the client screens replies (is_noscript).
#include <hiredis/hiredis.h>

#include <algorithm>

#include "clients/hiredis_reference.h"
#include "clients/redis_detail.h"
#include "clients/redis_reply_reader.h"
#include "support/fuzz_support.h"

namespace {

using clients::redis::Reply;
using clients::redis::ReplyReader;
using fuzz_support::check;

// hiredis' default reply functions, but an array over the clients' limit is refused as theirs is.
redisReplyObjectFunctions limited_default_functions(const redisReplyObjectFunctions& defaults) {
  static const redisReplyObjectFunctions* base = &defaults;
  redisReplyObjectFunctions f = defaults;
  f.createArray = [](const redisReadTask* task, int elements) -> void* {
    if (elements < 0 || elements > clients::redis::kMaxReplyElements) return nullptr;
    return base->createArray(task, elements);
  };
  return f;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t piece = 1 + data[0] % 64;
  const auto* bytes = reinterpret_cast<const char*>(data + 1);
  const std::size_t n = size - 1;

  // Ours, fed piece by piece, taking every reply each piece completes.
  ReplyReader ours;
  std::vector<Reply> replies;
  for (std::size_t at = 0; at < n && !ours.failed(); at += piece) {
    ours.feed(std::string_view(bytes + at, std::min(piece, n - at)));
    Reply r;
    while (ours.next(r) == ReplyReader::Status::reply)
      replies.push_back(std::move(r));
  }
  for (const Reply& r : replies)
    (void)clients::redis::detail::is_noscript(r);

  // hiredis, fed at once.
  redisReader* reader = redisReaderCreate();
  check(reader != nullptr, "redisReaderCreate");
  static redisReplyObjectFunctions limited = limited_default_functions(*reader->fn);
  reader->fn = &limited;
  redisReaderFeed(reader, bytes, n);
  std::size_t i = 0;
  for (;; ++i) {
    void* raw = nullptr;
    if (redisReaderGetReply(reader, &raw) != REDIS_OK) {
      check(ours.failed(), "hiredis fails where ours reads on");
      check(i >= replies.size(), "ours returned a reply where hiredis fails");
      break;
    }
    if (raw == nullptr) {
      check(i == replies.size(), "ours returned a reply hiredis does not have");
      break;
    }
    if (i < replies.size()) {
      check(clients::redis::detail::same_as_hiredis(static_cast<redisReply*>(raw), replies[i]),
            "a reply differs from hiredis' own");
    } else {
      check(ours.failed(), "ours waits for bytes it has (hiredis returned a reply)");
    }
    freeReplyObject(raw);
    if (i >= replies.size()) break;
  }
  redisReaderFree(reader);
  return 0;
}
