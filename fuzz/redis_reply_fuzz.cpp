// Fuzz target: Redis replies as the client receives them: the bytes go through hiredis' reply
// reader configured as the client configures it (detail::limit_reply_arrays) and every reply it
// produces is deep-copied by our clients::redis::detail::to_reply, then screened as the client
// screens replies (is_noscript).
//
// Checked, besides memory safety and UB in our conversion: the copy is faithful to the hiredis
// reply at every depth (types, integers, every byte of strings, element counts).
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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  redisReader* reader = redisReaderCreate();
  check(reader != nullptr, "redisReaderCreate");
  clients::redis::detail::limit_reply_arrays(reader);
  // Fed in two pieces, as replies arrive split across reads.
  const std::size_t half = size / 2;
  redisReaderFeed(reader, reinterpret_cast<const char*>(data), half);
  bool fed_rest = false;
  for (int i = 0; i < 1000; ++i) {
    void* raw = nullptr;
    if (redisReaderGetReply(reader, &raw) != REDIS_OK)
      break;  // protocol error: the client drops the connection
    if (raw == nullptr) {
      if (fed_rest) break;
      redisReaderFeed(reader, reinterpret_cast<const char*>(data) + half, size - half);
      fed_rest = true;
      continue;
    }
    const auto* reply = static_cast<redisReply*>(raw);
    const Reply copy = clients::redis::detail::to_reply(reply);
    check(faithful(reply, copy), "to_reply is not a faithful copy");
    (void)clients::redis::detail::is_noscript(copy);
    freeReplyObject(raw);
  }
  redisReaderFree(reader);
  return 0;
}
