// Fuzz target: Redis replies as the clients receive them. The same bytes go through two hiredis
// reply readers: the clients' (detail::build_replies: Reply values built in place, arrays limited)
// and, as the reference, hiredis' own reply objects (with the same array limit, kept here: the
// default reader would allocate whatever count it reads). Every reply is then screened as the
// client screens replies (is_noscript).
//
// Checked, besides memory safety, leaks and UB in our callbacks: every built reply is faithful to
// hiredis' own at every depth (types, integers, every byte of strings, element counts), and the
// readers fail exactly where the other does.
#include <hiredis/hiredis.h>

#include "clients/redis_detail.h"
#include "support/fuzz_support.h"

namespace {

using clients::redis::Reply;
using fuzz_support::check;

bool faithful(const redisReply* r, const Reply& c) {
  if (r == nullptr) return c.is_nil();
  switch (r->type) {
    case REDIS_REPLY_STRING:
      return c.is_string() && c.str == std::string_view(r->str, r->len);
    case REDIS_REPLY_STATUS:
      return c.is_status() && c.str == std::string_view(r->str, r->len);
    case REDIS_REPLY_ERROR:
      return c.is_error() && c.str == std::string_view(r->str, r->len);
    case REDIS_REPLY_INTEGER:
      return c.is_integer() && c.integer == r->integer;
    case REDIS_REPLY_ARRAY:
      if (!c.is_array() || c.elements.size() != r->elements) return false;
      for (std::size_t i = 0; i < r->elements; ++i)
        if (!faithful(r->element[i], c.elements[i])) return false;
      return true;
    default:
      return c.is_nil();
  }
}

// hiredis' default reply functions, but an array over the clients' limit is refused as theirs is.
redisReplyObjectFunctions limited_default_functions(const redisReplyObjectFunctions& defaults) {
  static const redisReplyObjectFunctions* base = &defaults;
  redisReplyObjectFunctions f = defaults;
  f.createArray = [](const redisReadTask* task, int elements) -> void* {
    if (elements < 0 || elements > clients::redis::detail::kMaxReplyElements) return nullptr;
    return base->createArray(task, elements);
  };
  return f;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  redisReader* reader = redisReaderCreate();
  redisReader* built = redisReaderCreate();
  check(reader != nullptr && built != nullptr, "redisReaderCreate");
  static redisReplyObjectFunctions limited = limited_default_functions(*reader->fn);
  reader->fn = &limited;
  clients::redis::detail::build_replies(built);
  // Fed in two pieces, as replies arrive split across reads.
  const std::size_t half = size / 2;
  const auto* bytes = reinterpret_cast<const char*>(data);
  redisReaderFeed(reader, bytes, half);
  redisReaderFeed(built, bytes, half);
  bool fed_rest = false;
  for (int i = 0; i < 1000; ++i) {
    void* raw = nullptr;
    void* in_place = nullptr;
    const int status = redisReaderGetReply(reader, &raw);
    const int built_status = redisReaderGetReply(built, &in_place);
    check(status == built_status, "the readers disagree on an error");
    check((raw == nullptr) == (in_place == nullptr), "the readers disagree on a complete reply");
    if (status != REDIS_OK) break;  // protocol error: the client drops the connection
    if (raw == nullptr) {
      if (fed_rest) break;
      redisReaderFeed(reader, bytes + half, size - half);
      redisReaderFeed(built, bytes + half, size - half);
      fed_rest = true;
      continue;
    }
    const Reply reply = clients::redis::detail::take_built_reply(in_place);
    check(faithful(static_cast<redisReply*>(raw), reply), "a built reply differs from hiredis' own");
    (void)clients::redis::detail::is_noscript(reply);
    freeReplyObject(raw);
  }
  redisReaderFree(reader);
  redisReaderFree(built);
  return 0;
}
