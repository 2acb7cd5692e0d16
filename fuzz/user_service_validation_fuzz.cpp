// Fuzz target: user-service's request validation and JSON output (src/user_service/validation.h),
// and the JSON-lines log format every request's fields go through (src/common/log.h).
//
// Checked on every input, besides memory safety and UB:
// - is_valid_utf8 agrees with Boost.JSON's UTF-8 validation (an independent implementation);
// - an accepted user id is 1..255 bytes of UTF-8 without controls, and percent-encoding it again
//   decodes to the same id;
// - an accepted PUT body's name is 1..255 bytes of UTF-8 and equals what Boost.JSON reads;
// - user_json / error_json are valid JSON that reads back to exactly what was written;
// - a log line is one valid JSON object whatever bytes its fields hold.
#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/log.h"
#include "support/fuzz_support.h"
#include "user_service/validation.h"

namespace {

namespace json = boost::json;
using fuzz_support::check;

// Boost.JSON's verdict on `s` as the content of a JSON string (only the characters JSON requires
// to be escaped are escaped, so every other byte reaches its UTF-8 validator as is).
bool boost_accepts_utf8(std::string_view s) {
  std::string doc = "\"";
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      doc += '\\';
      doc += c;
    } else if (u < 0x20) {
      doc += "\\u00";
      doc += "0123456789abcdef"[u >> 4];
      doc += "0123456789abcdef"[u & 15];
    } else {
      doc += c;
    }
  }
  doc += '"';
  boost::system::error_code ec;
  json::parse(doc, ec);
  return !ec;
}

std::string percent_encode(std::string_view s) {
  std::string out;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    out += '%';
    out += "0123456789ABCDEF"[u >> 4];
    out += "0123456789ABCDEF"[u & 15];
  }
  return out;
}

json::value parse_or_die(std::string_view doc, std::string_view what) {
  boost::system::error_code ec;
  json::value v = json::parse(doc, ec);
  check(!ec, what, doc);
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  common::log::set_level(common::log::Level::off);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  using namespace user_service;

  const bool utf8 = is_valid_utf8(input);
  check(utf8 == boost_accepts_utf8(input), "is_valid_utf8 disagrees with Boost.JSON", input);

  // The input as the {id} path segment.
  std::string id;
  if (decode_user_id(input, id).empty()) {
    check(!id.empty() && id.size() <= kMaxIdBytes && is_valid_utf8(id), "accepted id out of bounds", id);
    for (std::size_t i = 0; i < id.size(); ++i) {
      const auto u = static_cast<unsigned char>(id[i]);
      check(u >= 0x20 && u != 0x7f, "accepted id has a C0 control or DEL", id);
      check(!(u == 0xc2 && i + 1 < id.size() && static_cast<unsigned char>(id[i + 1]) < 0xa0),
            "accepted id has a C1 control", id);
    }
    std::string again;
    check(decode_user_id(percent_encode(id), again).empty() && again == id, "percent-encoding round trip",
          id);

    const std::string body = user_json(id, "x");
    const auto v = parse_or_die(body, "user_json is not valid JSON");
    check(v.at("id").as_string() == id, "user_json id round trip", body);
  }

  // The input as a PUT body (for the user "u").
  std::string name;
  if (parse_put_body(input, "u", name).empty()) {
    check(!name.empty() && name.size() <= kMaxNameBytes && is_valid_utf8(name), "accepted name out of bounds",
          name);
    const auto v = parse_or_die(input, "accepted body Boost.JSON refuses");
    check(v.is_object() && v.as_object().if_contains("name") &&
              v.as_object().at("name").as_string() == std::string_view(name),
          "accepted name differs from Boost.JSON's", input);
    // Only "name" and "id" (the path's), each once: Boost.JSON's object keeps one value per key, so
    // a body with a repeated member has fewer members there than the event parser saw.
    for (const auto& [key, value] : v.as_object())
      check(key == "name" || (key == "id" && value.is_string() && value.as_string() == "u"),
            "accepted body has a member other than name and the path's id", input);
    const std::string body = user_json("u", name);
    const auto out = parse_or_die(body, "user_json is not valid JSON");
    check(out.at("name").as_string() == std::string_view(name), "user_json name round trip", body);
  }

  // Any text as an error message or a log field: the output must stay valid JSON. Bytes that are
  // not UTF-8 cannot round-trip; valid text must.
  const std::string err = error_json(input);
  const auto ev = parse_or_die(err, "error_json is not valid JSON");
  if (utf8) check(ev.at("error").as_string() == input, "error_json round trip", err);

  const std::string line = common::log::format_line(common::log::Level::info, input, {{"target", input}});
  const auto lv = parse_or_die(line, "log line is not valid JSON");
  check(lv.is_object(), "log line is not an object", line);
  if (utf8) check(lv.at("target").as_string() == input, "log field round trip", line);

  (void)acceptable_request_id(input);
  (void)check_json_content_type(input);

  // The input as an If-Match / If-None-Match header: a tag it accepts is one etag() writes.
  EntityTags tags;
  if (parse_entity_tags(input, TagComparison::weak, tags).empty()) {
    for (const auto version : tags.versions) {
      const std::string tag(etag(version).view());
      check(input.find(tag) != std::string_view::npos, "matched a version the header does not name", input);
    }
  }
  // The input as GET /users's query: an accepted page is within bounds, its `after` a valid id.
  PageQuery page;
  if (parse_page_query(input, page).empty()) {
    check(page.limit >= 1 && page.limit <= kMaxPageSize, "accepted limit out of bounds", input);
    std::string again;
    check(page.after.empty() || decode_user_id(percent_encode(page.after), again).empty(),
          "accepted after is not a valid id", input);
  }
  return 0;
}
