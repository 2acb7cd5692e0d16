#include "clients/binlog_detail.h"

#include <gtest/gtest.h>
#include <mysql.h>

#include <string>

namespace clients::mysql::detail {
namespace {

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int x : b)
    s.push_back(static_cast<char>(x));
  return s;
}

std::string le64(std::uint64_t v) {
  std::string s;
  for (int i = 0; i < 8; ++i)
    s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  return s;
}

TEST(BinlogGtid, ParsesAndFormats) {
  auto g = parse_gtid("0-1-42");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->domain, 0U);
  EXPECT_EQ(g->server, 1U);
  EXPECT_EQ(g->sequence, 42U);
  EXPECT_EQ(g->to_string(), "0-1-42");
  EXPECT_EQ(parse_gtid(" 7-4294967295-18446744073709551615 ")->to_string(),
            "7-4294967295-18446744073709551615");
  for (const char* bad :
       {"", "0-1", "0-1-", "a-1-2", "0-1-2-3", "-1-2-3", "0--2", "4294967296-1-1", "0-1-2x"})
    EXPECT_FALSE(parse_gtid(bad)) << bad;
}

TEST(BinlogGtid, PositionParseFormatAdvance) {
  auto empty = GtidPosition::parse("");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
  EXPECT_EQ(empty->to_string(), "");
  EXPECT_TRUE(GtidPosition::parse(" \n"));

  auto p = GtidPosition::parse(" 1-2-3 , 0-1-5 ");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->to_string(), "0-1-5,1-2-3");  // sorted by domain, as the server writes it
  p->advance(Gtid{0, 2, 6});                 // same domain: replaced (a failover changes the server id)
  EXPECT_EQ(p->to_string(), "0-2-6,1-2-3");
  p->advance(Gtid{5, 1, 1});
  p->advance(Gtid{3, 1, 9});
  EXPECT_EQ(p->to_string(), "0-2-6,1-2-3,3-1-9,5-1-1");

  GtidPosition fresh;
  fresh.advance(Gtid{0, 1, 1});
  EXPECT_EQ(fresh.to_string(), "0-1-1");

  for (const char* bad : {"0-1-5,0-2-6", "0-1-5,", ",0-1-5", "0-1-5;1-1-1", "x"})
    EXPECT_FALSE(GtidPosition::parse(bad)) << bad;
}

// users.user: id VARCHAR(255) utf8mb4 (1020 bytes), name VARCHAR(255), version BIGINT UNSIGNED,
// updated_at TIMESTAMP(6).
std::vector<ColumnMeta> user_columns() {
  std::string err;
  auto cols = parse_columns(
      bytes({MYSQL_TYPE_VARCHAR, MYSQL_TYPE_VARCHAR, MYSQL_TYPE_LONGLONG, MYSQL_TYPE_TIMESTAMP2}),
      bytes({0xFC, 0x03, 0xFC, 0x03, 0x06}), err);
  EXPECT_TRUE(cols) << err;
  if (!cols) return {};
  (*cols)[2].is_unsigned = true;
  return *cols;
}

TEST(BinlogColumns, ParsesTableMapMetadata) {
  auto cols = user_columns();
  ASSERT_EQ(cols.size(), 4U);
  EXPECT_EQ(cols[0].length, 1020U);
  EXPECT_EQ(cols[3].decimals, 6U);

  std::string err;
  // CHAR(10) utf8mb4 (40 bytes), ENUM (1 byte), DECIMAL(10,2), BLOB (2-byte length), BIT(12), DOUBLE.
  auto more = parse_columns(bytes({MYSQL_TYPE_STRING, MYSQL_TYPE_STRING, MYSQL_TYPE_NEWDECIMAL,
                                   MYSQL_TYPE_BLOB, MYSQL_TYPE_BIT, MYSQL_TYPE_DOUBLE}),
                            bytes({0xFE, 40, 0xF7, 1, 10, 2, 2, 4, 1, 8}), err);
  ASSERT_TRUE(more) << err;
  EXPECT_EQ((*more)[0].real_type, MYSQL_TYPE_STRING);
  EXPECT_EQ((*more)[0].length, 40U);
  EXPECT_EQ((*more)[1].real_type, MYSQL_TYPE_ENUM);
  EXPECT_EQ((*more)[2].precision, 10U);
  EXPECT_EQ((*more)[2].decimals, 2U);
  EXPECT_EQ((*more)[3].length, 2U);
  EXPECT_EQ((*more)[4].bits, 12U);
  EXPECT_EQ((*more)[5].length, 8U);

  // CHAR(255) utf8mb4 = 1020 bytes: the length's high bits live in the type byte.
  auto wide = parse_columns(bytes({MYSQL_TYPE_STRING}), bytes({0xFE ^ 0x30, 0xFC}), err);
  ASSERT_TRUE(wide) << err;
  EXPECT_EQ((*wide)[0].real_type, MYSQL_TYPE_STRING);
  EXPECT_EQ((*wide)[0].length, 1020U);

  EXPECT_FALSE(parse_columns(bytes({MYSQL_TYPE_VARCHAR}), bytes({0xFC}), err));  // metadata too short
  EXPECT_FALSE(parse_columns(bytes({MYSQL_TYPE_LONG}), bytes({0x01}), err));     // bytes left over
  EXPECT_FALSE(parse_columns(bytes({MYSQL_TYPE_DECIMAL}), "", err));             // pre-5.0 DECIMAL
}

TEST(BinlogColumns, SignednessBitmapIsMostSignificantBitFirstOverNumericColumns) {
  std::string err;
  auto cols =
      parse_columns(bytes({MYSQL_TYPE_LONGLONG, MYSQL_TYPE_VARCHAR, MYSQL_TYPE_LONG, MYSQL_TYPE_TINY}),
                    bytes({0x10, 0x00}), err);
  ASSERT_TRUE(cols) << err;
  ASSERT_TRUE(
      apply_signedness(*cols, bytes({0xA0})));  // 1 0 1: LONGLONG unsigned, LONG signed, TINY unsigned
  EXPECT_TRUE((*cols)[0].is_unsigned);
  EXPECT_FALSE((*cols)[1].is_unsigned);
  EXPECT_FALSE((*cols)[2].is_unsigned);
  EXPECT_TRUE((*cols)[3].is_unsigned);
  EXPECT_FALSE(apply_signedness(*cols, ""));
}

TEST(BinlogRows, DecodesTheUserRow) {
  const auto cols = user_columns();
  const std::string all = bytes({0x0F});
  // null bitmap (no NULL), id "abc" (2-byte length: max 1020 bytes), name "Zoë", version 7,
  // updated_at 2024-01-02 03:04:05.123456 UTC (big-endian seconds, 3 bytes of microseconds).
  const std::string data = bytes({0x00}) + bytes({3, 0}) + "abc" + bytes({4, 0}) + "Zo\xC3\xAB" + le64(7) +
                           bytes({0x65, 0x93, 0x7D, 0x25}) + bytes({0x01, 0xE2, 0x40});
  std::size_t pos = 0;
  Row row;
  bool complete = false;
  auto err = decode_row_image(cols, all, data, pos, row, complete);
  ASSERT_FALSE(err) << *err;
  EXPECT_TRUE(complete);
  EXPECT_EQ(pos, data.size());
  ASSERT_EQ(row.size(), 4U);
  EXPECT_EQ(row[0], Value("abc"));
  EXPECT_EQ(row[1], Value("Zo\xC3\xAB"));
  EXPECT_EQ(row[2], Value(std::uint64_t{7}));
  EXPECT_EQ(row[3], Value("2024-01-02 03:04:05.123456"));
}

TEST(BinlogRows, NullsSignedValuesAndConsecutiveRows) {
  auto cols = user_columns();
  cols[2].is_unsigned = false;
  const std::string all = bytes({0x0F});
  // Row 1: name and updated_at NULL (bits 1 and 3), version -1. Row 2: everything NULL but id.
  const std::string data =
      bytes({0x0A}) + bytes({1, 0}) + "a" + le64(~0ULL) + bytes({0x0E}) + bytes({1, 0}) + "b";
  std::size_t pos = 0;
  Row row;
  bool complete = false;
  ASSERT_FALSE(decode_row_image(cols, all, data, pos, row, complete));
  EXPECT_EQ(row[0], Value("a"));
  EXPECT_TRUE(row[1].is_null());
  EXPECT_EQ(row[2], Value(std::int64_t{-1}));
  EXPECT_TRUE(row[3].is_null());
  ASSERT_FALSE(decode_row_image(cols, all, data, pos, row, complete));
  EXPECT_EQ(row[0], Value("b"));
  EXPECT_TRUE(row[2].is_null());
  EXPECT_EQ(pos, data.size());
}

TEST(BinlogRows, PartialImagesAndTruncation) {
  const auto cols = user_columns();
  // Only id and version present (binlog_row_image=MINIMAL-like): 2 present columns, 1-byte bitmap.
  const std::string data = bytes({0x00}) + bytes({1, 0}) + "a" + le64(3);
  std::size_t pos = 0;
  Row row;
  bool complete = true;
  ASSERT_FALSE(decode_row_image(cols, bytes({0x05}), data, pos, row, complete));
  EXPECT_FALSE(complete);
  EXPECT_EQ(row[0], Value("a"));
  EXPECT_TRUE(row[1].is_null());
  EXPECT_EQ(row[2], Value(std::uint64_t{3}));

  for (std::size_t cut = 0; cut < data.size(); ++cut) {
    pos = 0;
    EXPECT_TRUE(decode_row_image(cols, bytes({0x05}), data.substr(0, cut), pos, row, complete)) << cut;
  }
  pos = 0;  // a length prefix pointing past the end
  EXPECT_TRUE(decode_row_image(cols, bytes({0x01}), bytes({0x00, 0xFF, 0x00, 'a'}), pos, row, complete));
}

TEST(BinlogRows, TemporalAndOtherTypes) {
  std::string err;
  // DATETIME(0), TIME(0), TIME(0), DATE, YEAR, CHAR(10)x4, ENUM, DECIMAL(10,2), DOUBLE, INT24, BLOB.
  auto cols =
      parse_columns(bytes({MYSQL_TYPE_DATETIME2, MYSQL_TYPE_TIME2, MYSQL_TYPE_TIME2, MYSQL_TYPE_DATE,
                           MYSQL_TYPE_YEAR, MYSQL_TYPE_STRING, MYSQL_TYPE_STRING, MYSQL_TYPE_NEWDECIMAL,
                           MYSQL_TYPE_DOUBLE, MYSQL_TYPE_INT24, MYSQL_TYPE_BLOB}),
                    bytes({0, 0, 0, 0xFE, 40, 0xF7, 1, 10, 2, 8, 2}), err);
  ASSERT_TRUE(cols) << err;
  double d = 2.5;
  std::string dbytes(reinterpret_cast<const char*>(&d), 8);
  const std::uint32_t date = (2024U << 9) | (2U << 5) | 29U;
  const std::string data = bytes({0x00, 0x00}) + bytes({0x99, 0xB2, 0x44, 0x31, 0x05}) +
                           bytes({0x80, 0xC8, 0xB8}) + bytes({0x7F, 0xF0, 0x00}) +
                           bytes({static_cast<int>(date & 0xFF), static_cast<int>((date >> 8) & 0xFF),
                                  static_cast<int>(date >> 16)}) +
                           bytes({124}) + bytes({2}) + "hi" + bytes({3}) +
                           bytes({0x80, 0x00, 0x04, 0xD2, 0x38}) + dbytes + bytes({0xFF, 0xFF, 0xFF}) +
                           bytes({3, 0}) + "xyz";
  std::size_t pos = 0;
  Row row;
  bool complete = false;
  auto e = decode_row_image(*cols, bytes({0xFF, 0x07}), data, pos, row, complete);
  ASSERT_FALSE(e) << *e;
  EXPECT_EQ(pos, data.size());
  EXPECT_EQ(row[0], Value("2024-01-02 03:04:05"));
  EXPECT_EQ(row[1], Value("12:34:56"));
  EXPECT_EQ(row[2], Value("-01:00:00"));
  EXPECT_EQ(row[3], Value("2024-02-29"));
  EXPECT_EQ(row[4], Value(std::int64_t{2024}));
  EXPECT_EQ(row[5], Value("hi"));
  EXPECT_EQ(row[6], Value(std::uint64_t{3}));
  EXPECT_EQ(row[7], Value("1234.56"));
  EXPECT_EQ(row[8], Value(2.5));
  EXPECT_EQ(row[9], Value(std::int64_t{-1}));
  EXPECT_EQ(row[10], Value("xyz"));
}

TEST(BinlogValues, Decimals) {
  bool ok = false;
  EXPECT_EQ(decimal_to_text(bytes({0x80, 0x00, 0x04, 0xD2, 0x38}), 10, 2, ok), "1234.56");
  EXPECT_TRUE(ok);
  EXPECT_EQ(decimal_to_text(bytes({0x7F, 0xFF, 0xFB, 0x2D, 0xC7}), 10, 2, ok), "-1234.56");
  EXPECT_EQ(decimal_to_text(bytes({0x80, 0x00, 0x00, 0x00, 0x05}), 10, 2, ok), "0.05");
  // DECIMAL(20,10): 1 leading digit, one group of 9, then a group of 9 and one digit of fraction.
  EXPECT_EQ(decimal_to_text(bytes({0x81, 0x0D, 0xFB, 0x38, 0xD2, 0x00, 0xBC, 0x61, 0x4E, 0x09}), 20, 10, ok),
            "1234567890.0123456789");
  EXPECT_TRUE(ok);
  EXPECT_EQ(decimal_to_text(bytes({0x80}), 2, 0, ok), "0");
  decimal_to_text(bytes({0x80, 0x00}), 10, 2, ok);  // wrong size
  EXPECT_FALSE(ok);
}

TEST(BinlogValues, Timestamps) {
  EXPECT_EQ(timestamp_to_text(0, 0, 6), "0000-00-00 00:00:00.000000");
  EXPECT_EQ(timestamp_to_text(0, 0, 0), "0000-00-00 00:00:00");
  EXPECT_EQ(timestamp_to_text(1704164645, 123456, 3), "2024-01-02 03:04:05.123");
  EXPECT_EQ(timestamp_to_text(1704164645, 500000, 1), "2024-01-02 03:04:05.5");
}

}  // namespace
}  // namespace clients::mysql::detail
