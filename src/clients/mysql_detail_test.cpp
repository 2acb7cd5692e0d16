#include "clients/mysql_detail.h"

#include <gtest/gtest.h>

#include <cstring>

namespace clients::mysql::detail {
namespace {

MYSQL_FIELD field(enum_field_types type, unsigned flags = 0, unsigned long max_length = 0) {
  MYSQL_FIELD f;
  std::memset(&f, 0, sizeof f);
  f.type = type;
  f.flags = flags;
  f.max_length = max_length;
  return f;
}

TEST(MysqlValue, ConstructionAndAccessors) {
  EXPECT_TRUE(Value().is_null());
  EXPECT_TRUE(Value(nullptr).is_null());
  EXPECT_TRUE(Value(42).is_int());
  EXPECT_TRUE(Value(short{-3}).is_int());
  EXPECT_TRUE(Value(42u).is_uint());
  EXPECT_TRUE(Value(1.5).is_double());
  EXPECT_TRUE(Value("x").is_string());
  EXPECT_TRUE(Value(std::string_view("x")).is_string());
  EXPECT_EQ(Value(7).to_int(), 7);
  EXPECT_EQ(Value(7u).to_int(), 7);
  EXPECT_EQ(Value(UINT64_MAX).to_int(), std::nullopt);
  EXPECT_EQ(Value("-12").to_int(), -12);
  EXPECT_EQ(Value("12a").to_int(), std::nullopt);
  EXPECT_EQ(Value("").to_int(), std::nullopt);
  EXPECT_EQ(Value().to_int(), std::nullopt);
  EXPECT_EQ(Value("abc").string(), "abc");
  EXPECT_EQ(Value(5).string(), "");
  EXPECT_EQ(Value().to_text(), "NULL");
  EXPECT_EQ(Value(-5).to_text(), "-5");
  EXPECT_EQ(Value(2.5).to_text(), "2.5");
  EXPECT_EQ(Value(std::string("a\0b", 3)).to_text(), std::string("a\0b", 3));
  EXPECT_EQ(Value(3), Value(std::int64_t{3}));
  EXPECT_NE(Value(3), Value(3u));
}

TEST(BindParams, EveryKindPointsIntoTheValues) {
  const std::string binary("a\0'; DROP TABLE user; --", 24);
  std::vector<Value> params{nullptr, -7, 9u, 0.25, binary, ""};
  BoundParams b = bind_params(params);
  ASSERT_EQ(b.binds.size(), 6u);
  EXPECT_EQ(b.binds[0].buffer_type, MYSQL_TYPE_NULL);

  EXPECT_EQ(b.binds[1].buffer_type, MYSQL_TYPE_LONGLONG);
  EXPECT_EQ(b.binds[1].is_unsigned, 0);
  EXPECT_EQ(*static_cast<std::int64_t*>(b.binds[1].buffer), -7);

  EXPECT_EQ(b.binds[2].buffer_type, MYSQL_TYPE_LONGLONG);
  EXPECT_EQ(b.binds[2].is_unsigned, 1);
  EXPECT_EQ(*static_cast<std::uint64_t*>(b.binds[2].buffer), 9u);

  EXPECT_EQ(b.binds[3].buffer_type, MYSQL_TYPE_DOUBLE);
  EXPECT_EQ(*static_cast<double*>(b.binds[3].buffer), 0.25);

  EXPECT_EQ(b.binds[4].buffer_type, MYSQL_TYPE_STRING);
  ASSERT_NE(b.binds[4].length, nullptr);
  EXPECT_EQ(*b.binds[4].length, 24u) << "explicit length: embedded NULs are kept";
  EXPECT_EQ(std::string(static_cast<const char*>(b.binds[4].buffer), *b.binds[4].length), binary);

  EXPECT_EQ(b.binds[5].buffer_type, MYSQL_TYPE_STRING);
  EXPECT_EQ(*b.binds[5].length, 0u);
  EXPECT_TRUE(bind_params({}).binds.empty());
}

TEST(ColumnKinds, IntegersFloatsAndBytes) {
  EXPECT_EQ(column_kind(MYSQL_TYPE_LONG, 0), ColumnKind::signed_int);
  EXPECT_EQ(column_kind(MYSQL_TYPE_LONGLONG, UNSIGNED_FLAG), ColumnKind::unsigned_int);
  EXPECT_EQ(column_kind(MYSQL_TYPE_TINY, 0), ColumnKind::signed_int);
  EXPECT_EQ(column_kind(MYSQL_TYPE_YEAR, UNSIGNED_FLAG | ZEROFILL_FLAG), ColumnKind::unsigned_int);
  EXPECT_EQ(column_kind(MYSQL_TYPE_DOUBLE, 0), ColumnKind::floating);
  EXPECT_EQ(column_kind(MYSQL_TYPE_FLOAT, 0), ColumnKind::floating);
  EXPECT_EQ(column_kind(MYSQL_TYPE_NEWDECIMAL, 0), ColumnKind::bytes) << "decimals stay exact";
  EXPECT_EQ(column_kind(MYSQL_TYPE_VAR_STRING, 0), ColumnKind::bytes);
  EXPECT_EQ(column_kind(MYSQL_TYPE_BLOB, BINARY_FLAG), ColumnKind::bytes);
  EXPECT_EQ(column_kind(MYSQL_TYPE_DATETIME, 0), ColumnKind::bytes);
}

TEST(ResultBuffers, DecodeARowAsTheLibraryWouldFillIt) {
  const MYSQL_FIELD fields[] = {field(MYSQL_TYPE_LONGLONG), field(MYSQL_TYPE_LONGLONG, UNSIGNED_FLAG),
                                field(MYSQL_TYPE_DOUBLE), field(MYSQL_TYPE_VAR_STRING, 0, 5),
                                field(MYSQL_TYPE_VAR_STRING, 0, 3)};
  ResultBuffers buf;
  prepare_result_buffers(fields, 5, buf);
  ASSERT_EQ(buf.binds.size(), 5u);
  EXPECT_EQ(buf.binds[0].buffer_type, MYSQL_TYPE_LONGLONG);
  EXPECT_EQ(buf.binds[1].is_unsigned, 1);
  EXPECT_EQ(buf.binds[3].buffer_type, MYSQL_TYPE_STRING);
  EXPECT_GE(buf.binds[3].buffer_length, 5u) << "sized from max_length";
  // Simulate what mysql_stmt_fetch writes.
  *static_cast<std::int64_t*>(buf.binds[0].buffer) = -1;
  *static_cast<std::uint64_t*>(buf.binds[1].buffer) = UINT64_MAX;
  *static_cast<double*>(buf.binds[2].buffer) = 3.5;
  std::memcpy(buf.binds[3].buffer, "a\0b\xc3\xab", 5);
  buf.lengths[3] = 5;
  buf.nulls[4] = 1;
  const Row row = read_row(buf);
  ASSERT_EQ(row.size(), 5u);
  EXPECT_EQ(row[0], Value(-1));
  EXPECT_EQ(row[1], Value(UINT64_MAX));
  EXPECT_EQ(row[2], Value(3.5));
  EXPECT_EQ(row[3], Value(std::string("a\0b\xc3\xab", 5)));
  EXPECT_TRUE(row[4].is_null());
  // A truncated value gets a bigger buffer, bound in place.
  rebind_bytes(buf, 3, 100);
  EXPECT_EQ(buf.binds[3].buffer_length, 100u);
  EXPECT_EQ(buf.binds[3].buffer, buf.bytes[3].data());
}

TEST(TextValues, DecodedByColumnType) {
  EXPECT_TRUE(text_value(nullptr, 0, field(MYSQL_TYPE_LONG)).is_null());
  EXPECT_EQ(text_value("-42", 3, field(MYSQL_TYPE_LONG)), Value(-42));
  EXPECT_EQ(text_value("18446744073709551615", 20, field(MYSQL_TYPE_LONGLONG, UNSIGNED_FLAG)),
            Value(UINT64_MAX));
  EXPECT_EQ(text_value("0.5", 3, field(MYSQL_TYPE_DOUBLE)), Value(0.5));
  EXPECT_EQ(text_value("12.30", 5, field(MYSQL_TYPE_NEWDECIMAL)), Value("12.30"));
  EXPECT_EQ(text_value("a\0b", 3, field(MYSQL_TYPE_BLOB)), Value(std::string("a\0b", 3)));
  EXPECT_EQ(text_value("", 0, field(MYSQL_TYPE_VAR_STRING)), Value(""));
}

TEST(Errors, ClassifiedByNumber) {
  // Client-side and session-ending errors make the connection unusable.
  for (unsigned n : {2006u, 2013u, 2014u, 2002u, 5014u, 1053u, 1927u, 1158u, 4031u, 0u})
    EXPECT_TRUE(is_connection_error(n)) << n;
  // The server refused a statement: the connection is fine.
  for (unsigned n : {1062u, 1064u, 1146u, 1205u, 1213u, 1317u, 1406u, 1452u})
    EXPECT_FALSE(is_connection_error(n)) << n;

  const Error dup = make_error(1062, "23000", "Duplicate entry 'x' for key 'PRIMARY'");
  EXPECT_EQ(dup.code, Errc::server);
  EXPECT_TRUE(dup.is_duplicate_key());
  EXPECT_FALSE(dup.is_transient());
  EXPECT_EQ(dup.sqlstate, "23000");
  EXPECT_EQ(dup.server_errno, 1062u);

  const Error gone = make_error(2013, "HY000", "Lost connection to server during query");
  EXPECT_EQ(gone.code, Errc::connection_lost);
  EXPECT_TRUE(gone.is_transient());
  EXPECT_EQ(make_error(2013, nullptr, nullptr).message, "unknown error");
}

}  // namespace
}  // namespace clients::mysql::detail
