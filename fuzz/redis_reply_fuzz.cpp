// Fuzz target: Redis replies as the clients receive them. The same bytes go through two hiredis
// reply readers: one with hiredis' own reply objects (limited as detail::limit_reply_arrays limits
// them; the Sentinel connections), each reply deep-copied by detail::to_reply; and one building
// Reply values in place (detail::build_replies; the command client). Every reply is then screened
// as the client screens replies (is_noscript).
//
// Checked, besides memory safety, leaks and UB in our callbacks: the copy is faithful to the
// hiredis reply at every depth (types, integers, every byte of strings, element counts), and the
// in-place reader produces exactly the same replies and fails exactly where the other does.
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
  redisReader* built = redisReaderCreate();
  check(reader != nullptr && built != nullptr, "redisReaderCreate");
  clients::redis::detail::limit_reply_arrays(reader);
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
    const auto* reply = static_cast<redisReply*>(raw);
    const Reply copy = clients::redis::detail::to_reply(reply);
    check(faithful(reply, copy), "to_reply is not a faithful copy");
    check(clients::redis::detail::built_reply(in_place) == copy, "a reply built in place differs");
    (void)clients::redis::detail::is_noscript(copy);
    freeReplyObject(raw);
    built->fn->freeObject(in_place);
  }
  redisReaderFree(reader);
  redisReaderFree(built);
  return 0;
}
