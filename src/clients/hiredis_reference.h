// For tests and fuzzing only: whether a Reply is what hiredis' own reader made of the same bytes.
// hiredis 0.14 is the reference the Redis clients' reply parser (redis_reply_reader.h) is checked
// against (redis_reply_reader_test.cpp, fuzz/redis_reply_fuzz.cpp); the clients do not link it.
//
// Usage:
//   void* raw = nullptr;
//   redisReaderGetReply(hiredis_reader, &raw);
//   EXPECT_TRUE(clients::redis::detail::same_as_hiredis(static_cast<redisReply*>(raw), ours));
#pragma once

#include <hiredis/hiredis.h>

#include <string_view>

#include "clients/redis.h"

namespace clients::redis::detail {

// Types, integers, every byte of strings and element counts, at every depth.
inline bool same_as_hiredis(const redisReply* h, const Reply& r) {
  if (h == nullptr) return r.is_nil();
  switch (h->type) {
    case REDIS_REPLY_STRING:
      return r.is_string() && r.str == std::string_view(h->str, h->len);
    case REDIS_REPLY_STATUS:
      return r.is_status() && r.str == std::string_view(h->str, h->len);
    case REDIS_REPLY_ERROR:
      return r.is_error() && r.str == std::string_view(h->str, h->len);
    case REDIS_REPLY_INTEGER:
      return r.is_integer() && r.integer == h->integer;
    case REDIS_REPLY_NIL:
      return r.is_nil();
    case REDIS_REPLY_ARRAY:
      if (!r.is_array() || r.elements.size() != h->elements) return false;
      for (std::size_t i = 0; i < h->elements; ++i)
        if (!same_as_hiredis(h->element[i], r.elements[i])) return false;
      return true;
    default:
      return false;
  }
}

}  // namespace clients::redis::detail
