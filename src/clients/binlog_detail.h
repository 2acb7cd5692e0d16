// Internals of clients::mysql::BinlogReader that are pure functions, exposed for unit tests: GTID
// positions ("0-1-42,1-2-7") and the decoding of row images from ROWS events (the binary layout
// MariaDB writes with binlog_format=ROW, as described by the preceding TABLE_MAP event).
//
// Why our own row decoder rather than Connector/C's mariadb_rpl_extract_rows: the library (3.3.x)
// reads TIMESTAMP2 values in the wrong byte order and does not say how many bytes a row consumed
// when it meets a type it does not know. This one is small, bounds-checked and tested.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "clients/mysql.h"

namespace clients::mysql::detail {

// One MariaDB global transaction id, "domain-server-sequence".
struct Gtid {
  std::uint32_t domain = 0;
  std::uint32_t server = 0;
  std::uint64_t sequence = 0;
  std::string to_string() const;
  friend bool operator==(const Gtid&, const Gtid&) = default;
};
std::optional<Gtid> parse_gtid(std::string_view text);

// A GTID position as MariaDB writes it (@@gtid_binlog_pos, @slave_connect_state): for each
// replication domain, the last transaction seen; "" when none. Kept sorted by domain.
class GtidPosition {
 public:
  // nullopt when malformed or when a domain appears twice. Blanks around entries are ignored.
  static std::optional<GtidPosition> parse(std::string_view text);
  // The position after `gtid`: it replaces its domain's entry.
  void advance(const Gtid& gtid);
  std::string to_string() const;
  const std::vector<Gtid>& gtids() const { return gtids_; }
  bool empty() const { return gtids_.empty(); }

 private:
  std::vector<Gtid> gtids_;
};

// One column as a TABLE_MAP event describes it: the binlog type (MYSQL_TYPE_*), the per-type
// metadata (max length, fractional digits, ...) and whether it is UNSIGNED.
struct ColumnMeta {
  std::uint8_t type = 0;       // as in the event (MYSQL_TYPE_STRING also for CHAR, ENUM, SET)
  std::uint8_t real_type = 0;  // the real type for MYSQL_TYPE_STRING (ENUM, SET or STRING)
  std::uint32_t length = 0;    // VARCHAR/CHAR max bytes, BLOB length bytes, ENUM/SET pack length
  std::uint8_t decimals = 0;   // TIMESTAMP2/DATETIME2/TIME2 fsp; NEWDECIMAL scale
  std::uint8_t precision = 0;  // NEWDECIMAL
  std::uint8_t bits = 0;       // BIT: bit count (up to 64)
  bool is_unsigned = false;
};

// The columns of a TABLE_MAP event from its column types and metadata block; nullopt (with
// `error` set) if the metadata is short or a type is unknown.
std::optional<std::vector<ColumnMeta>> parse_columns(std::string_view types, std::string_view metadata,
                                                     std::string& error);

// Applies the optional SIGNEDNESS metadata of a TABLE_MAP event (binlog_row_metadata MINIMAL or
// FULL): one bit per numeric column, most significant bit first. Returns false if too short.
bool apply_signedness(std::vector<ColumnMeta>& columns, std::string_view bitmap);
// Whether the type counts as numeric for that bitmap (and may carry UNSIGNED).
bool is_numeric_type(std::uint8_t type);

// Decodes one row image at `data[pos]` (null bitmap, then the present columns' values) and
// advances `pos`. `present` is the event's column bitmap (bit i: column i is in the image).
// Columns not present are NULL in `row`; `complete` tells whether every column was present.
// Returns an error text on malformed data.
std::optional<std::string> decode_row_image(const std::vector<ColumnMeta>& columns, std::string_view present,
                                            std::string_view data, std::size_t& pos, Row& row,
                                            bool& complete);

// Value mapping (documented in binlog.h): integers are int64 (uint64 when UNSIGNED), FLOAT and
// DOUBLE double, CHAR/VARCHAR/BLOB/TEXT/BIT the bytes, DECIMAL text ("-12.50"), DATE
// "YYYY-MM-DD", DATETIME "YYYY-MM-DD HH:MM:SS[.ffffff]", TIMESTAMP the same in UTC, TIME
// "[-]HH:MM:SS[.ffffff]", YEAR an int64, ENUM/SET their index/bitmask as uint64.
std::string decimal_to_text(std::string_view bin, unsigned precision, unsigned scale, bool& ok);
std::string timestamp_to_text(std::uint32_t seconds, std::uint32_t micros, unsigned decimals);

}  // namespace clients::mysql::detail
