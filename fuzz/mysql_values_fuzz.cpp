// Fuzz target: MariaDB result values as the client decodes them (src/clients/mysql_detail.h):
// text-protocol values for every column type and flag, binary-protocol rows from result buffers
// (lengths and NULL flags as the server reports them), and the conversions user-service applies
// (Value::to_int, Value::to_text).
//
// Input: a column type byte, a flags byte, then the value's bytes. Checked, besides memory safety
// and UB: an integer column's value is an integer exactly when the text is one (and reads back
// through to_text); a bytes column keeps every byte; a reported length beyond the buffer is never
// read past.
#include <charconv>
#include <cstring>

#include "clients/mysql_detail.h"
#include "support/fuzz_support.h"

namespace {

using namespace clients::mysql;
using fuzz_support::check;

constexpr enum_field_types kTypes[] = {
    MYSQL_TYPE_DECIMAL,    MYSQL_TYPE_TINY,   MYSQL_TYPE_SHORT,      MYSQL_TYPE_LONG,
    MYSQL_TYPE_FLOAT,      MYSQL_TYPE_DOUBLE, MYSQL_TYPE_NULL,       MYSQL_TYPE_TIMESTAMP,
    MYSQL_TYPE_LONGLONG,   MYSQL_TYPE_INT24,  MYSQL_TYPE_DATE,       MYSQL_TYPE_TIME,
    MYSQL_TYPE_DATETIME,   MYSQL_TYPE_YEAR,   MYSQL_TYPE_VARCHAR,    MYSQL_TYPE_BIT,
    MYSQL_TYPE_NEWDECIMAL, MYSQL_TYPE_BLOB,   MYSQL_TYPE_VAR_STRING, MYSQL_TYPE_STRING,
    MYSQL_TYPE_GEOMETRY,   MYSQL_TYPE_JSON,
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  MYSQL_FIELD field;
  std::memset(&field, 0, sizeof field);
  field.type = kTypes[data[0] % std::size(kTypes)];
  field.flags = (data[1] & 1) ? UNSIGNED_FLAG : 0;
  const bool is_null = (data[1] & 2) != 0;
  const char* text = reinterpret_cast<const char*>(data + 2);
  const auto length = static_cast<unsigned long>(size - 2);

  const Value v = detail::text_value(is_null ? nullptr : text, length, field);
  const auto kind = detail::column_kind(field.type, field.flags);
  if (is_null) {
    check(v.is_null(), "a NULL text value is not NULL");
  } else if (kind == detail::ColumnKind::bytes) {
    check(v.is_string() && v.string() == std::string_view(text, length), "a bytes value lost bytes");
  } else if (kind == detail::ColumnKind::signed_int) {
    std::int64_t want = 0;
    const auto [p, ec] = std::from_chars(text, text + length, want);
    const bool is_int = ec == std::errc() && p == text + length;
    check(is_int ? (v.to_int() == want) : v.is_string(), "a signed integer column decoded wrongly");
    if (is_int) check(v.to_text() == std::to_string(want), "to_text of an integer");
  } else if (kind == detail::ColumnKind::unsigned_int) {
    std::uint64_t want = 0;
    const auto [p, ec] = std::from_chars(text, text + length, want);
    const bool is_uint = ec == std::errc() && p == text + length;
    check(is_uint ? (v.is_uint() && std::get<std::uint64_t>(v.storage()) == want) : v.is_string(),
          "an unsigned integer column decoded wrongly");
  }
  (void)v.to_int();
  (void)v.to_text();

  // The same column in a binary-protocol row: buffers sized from max_length, then the server's
  // reported length (possibly larger: truncation) and NULL flag.
  field.max_length = length / 2;
  detail::ResultBuffers buffers;
  detail::prepare_result_buffers(&field, 1, buffers);
  if (buffers.kinds[0] == detail::ColumnKind::bytes) {
    const std::size_t n = std::min<std::size_t>(buffers.bytes[0].size(), length);
    std::memcpy(buffers.bytes[0].data(), text, n);
  } else if (length >= 8) {
    std::memcpy(&buffers.ints[0], text, 8);
    std::memcpy(&buffers.doubles[0], text, 8);
  }
  buffers.lengths[0] = length;
  buffers.nulls[0] = is_null ? 1 : 0;
  const Row row = detail::read_row(buffers);
  check(row.size() == 1, "read_row: one value per column");
  (void)row[0].to_text();
  (void)row[0].to_int();

  // Parameters bound from the decoded value (as a value read back and written again).
  std::vector<Value> params{v, row[0]};
  const auto bound = detail::bind_params(params);
  check(bound.binds.size() == 2, "bind_params: one bind per parameter");
  return 0;
}
