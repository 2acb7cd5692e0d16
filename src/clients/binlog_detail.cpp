#include "clients/binlog_detail.h"

#include <mysql.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstring>
#include <ctime>

namespace clients::mysql::detail {

namespace {

bool parse_uint(std::string_view s, std::uint64_t& out) {
  if (s.empty()) return false;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

std::uint64_t le(const unsigned char* p, unsigned n) {
  std::uint64_t v = 0;
  for (unsigned i = 0; i < n; ++i)
    v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  return v;
}

std::uint64_t be(const unsigned char* p, unsigned n) {
  std::uint64_t v = 0;
  for (unsigned i = 0; i < n; ++i)
    v = (v << 8) | p[i];
  return v;
}

std::string pad(std::uint64_t v, unsigned width) {
  std::string s = std::to_string(v);
  if (s.size() < width) s.insert(0, width - s.size(), '0');
  return s;
}

// ".ffffff" cut to `decimals` digits ("" for 0).
std::string fraction(std::uint32_t micros, unsigned decimals) {
  if (decimals == 0) return "";
  decimals = std::min(decimals, 6U);
  std::uint32_t div = 1;
  for (unsigned i = decimals; i < 6; ++i)
    div *= 10;
  return "." + pad(micros / div, decimals);
}

// Bytes of the fractional part of TIME2/DATETIME2/TIMESTAMP2 with `decimals` digits, and its
// value in microseconds.
unsigned frac_bytes(unsigned decimals) {
  return (decimals + 1) / 2;
}
std::uint32_t frac_micros(const unsigned char* p, unsigned decimals) {
  switch (frac_bytes(decimals)) {
    case 1:
      return static_cast<std::uint32_t>(p[0]) * 10000;
    case 2:
      return static_cast<std::uint32_t>(be(p, 2)) * 100;
    case 3:
      return static_cast<std::uint32_t>(be(p, 3));
    default:
      return 0;
  }
}

constexpr unsigned kDigitsToBytes[10] = {0, 1, 1, 2, 2, 3, 3, 4, 4, 4};

std::size_t decimal_bin_size(unsigned precision, unsigned scale) {
  const unsigned intg = precision - scale;
  return (intg / 9) * 4 + kDigitsToBytes[intg % 9] + (scale / 9) * 4 + kDigitsToBytes[scale % 9];
}

bool bit(std::string_view bitmap, std::size_t i) {
  return i / 8 < bitmap.size() && ((static_cast<unsigned char>(bitmap[i / 8]) >> (i % 8)) & 1U) != 0;
}

// The number of bytes a non-NULL value of `c` takes at `p` (at most `left` readable), or nullopt.
std::optional<std::size_t> value_size(const ColumnMeta& c, const unsigned char* p, std::size_t left) {
  auto prefixed = [&](unsigned prefix) -> std::optional<std::size_t> {
    if (left < prefix) return std::nullopt;
    return prefix + le(p, prefix);
  };
  switch (c.type) {
    case MYSQL_TYPE_TINY:
    case MYSQL_TYPE_YEAR:
      return 1;
    case MYSQL_TYPE_SHORT:
      return 2;
    case MYSQL_TYPE_INT24:
    case MYSQL_TYPE_DATE:
    case MYSQL_TYPE_NEWDATE:
    case MYSQL_TYPE_TIME:
      return 3;
    case MYSQL_TYPE_LONG:
    case MYSQL_TYPE_TIMESTAMP:
      return 4;
    case MYSQL_TYPE_LONGLONG:
    case MYSQL_TYPE_DATETIME:
      return 8;
    case MYSQL_TYPE_FLOAT:
    case MYSQL_TYPE_DOUBLE:
      return c.length;
    case MYSQL_TYPE_NULL:
      return 0;
    case MYSQL_TYPE_TIMESTAMP2:
      return 4 + frac_bytes(c.decimals);
    case MYSQL_TYPE_DATETIME2:
      return 5 + frac_bytes(c.decimals);
    case MYSQL_TYPE_TIME2:
      return 3 + frac_bytes(c.decimals);
    case MYSQL_TYPE_NEWDECIMAL:
      return decimal_bin_size(c.precision, c.decimals);
    case MYSQL_TYPE_BIT:
      return (c.bits + 7) / 8;
    case MYSQL_TYPE_VARCHAR:
    case MYSQL_TYPE_VAR_STRING:
      return prefixed(c.length < 256 ? 1 : 2);
    case MYSQL_TYPE_STRING:
    case MYSQL_TYPE_ENUM:
    case MYSQL_TYPE_SET:
      if (c.real_type == MYSQL_TYPE_ENUM || c.real_type == MYSQL_TYPE_SET) return c.length;
      return prefixed(c.length < 256 ? 1 : 2);
    case MYSQL_TYPE_TINY_BLOB:
    case MYSQL_TYPE_MEDIUM_BLOB:
    case MYSQL_TYPE_LONG_BLOB:
    case MYSQL_TYPE_BLOB:
    case MYSQL_TYPE_GEOMETRY:
    case 245:  // MYSQL_TYPE_JSON (MySQL)
      return prefixed(c.length);
    default:
      return std::nullopt;
  }
}

std::int64_t sign_extend(std::uint64_t v, unsigned bytes) {
  if (bytes >= 8) return static_cast<std::int64_t>(v);
  const unsigned shift = 64 - 8 * bytes;
  return static_cast<std::int64_t>(v << shift) >> shift;
}

Value integer(const ColumnMeta& c, const unsigned char* p, unsigned bytes) {
  const std::uint64_t raw = le(p, bytes);
  if (c.is_unsigned) return Value(raw);
  return Value(sign_extend(raw, bytes));
}

std::string time2_text(const unsigned char* p, unsigned decimals) {
  // MySQL's my_time_packed_from_binary: a packed value (hms << 24) + microseconds, offset-encoded.
  constexpr std::int64_t kIntOffset = 0x800000;
  std::int64_t packed = 0;
  switch (frac_bytes(decimals)) {
    case 0:
      packed = (static_cast<std::int64_t>(be(p, 3)) - kIntOffset) * (1LL << 24);
      break;
    case 1: {
      std::int64_t intpart = static_cast<std::int64_t>(be(p, 3)) - kIntOffset;
      std::int64_t frac = p[3];
      if (intpart < 0 && frac != 0) {
        ++intpart;
        frac -= 0x100;
      }
      packed = intpart * (1LL << 24) + frac * 10000;
      break;
    }
    case 2: {
      std::int64_t intpart = static_cast<std::int64_t>(be(p, 3)) - kIntOffset;
      std::int64_t frac = static_cast<std::int64_t>(be(p + 3, 2));
      if (intpart < 0 && frac != 0) {
        ++intpart;
        frac -= 0x10000;
      }
      packed = intpart * (1LL << 24) + frac * 100;
      break;
    }
    default:
      packed = static_cast<std::int64_t>(be(p, 6)) - 0x800000000000LL;
      break;
  }
  const bool negative = packed < 0;
  if (negative) packed = -packed;
  const std::int64_t hms = packed >> 24;
  const auto micros = static_cast<std::uint32_t>(packed % (1LL << 24));
  const std::uint64_t hour = (hms >> 12) % (1 << 10);
  const std::uint64_t minute = (hms >> 6) % (1 << 6);
  const std::uint64_t second = hms % (1 << 6);
  return (negative ? "-" : "") + pad(hour, 2) + ":" + pad(minute, 2) + ":" + pad(second, 2) +
         fraction(micros, decimals);
}

std::string date_text(std::uint64_t year, std::uint64_t month, std::uint64_t day) {
  return pad(year, 4) + "-" + pad(month, 2) + "-" + pad(day, 2);
}

// The value of a non-NULL column whose `size` bytes are at `p`.
std::optional<Value> decode_value(const ColumnMeta& c, const unsigned char* p, std::size_t size) {
  switch (c.type) {
    case MYSQL_TYPE_TINY:
      return integer(c, p, 1);
    case MYSQL_TYPE_SHORT:
      return integer(c, p, 2);
    case MYSQL_TYPE_INT24:
      return integer(c, p, 3);
    case MYSQL_TYPE_LONG:
      return integer(c, p, 4);
    case MYSQL_TYPE_LONGLONG:
      return integer(c, p, 8);
    case MYSQL_TYPE_YEAR:
      return Value(static_cast<std::int64_t>(p[0] == 0 ? 0 : 1900 + p[0]));
    case MYSQL_TYPE_FLOAT: {
      if (size != 4) return std::nullopt;
      float f;
      std::memcpy(&f, p, 4);
      return Value(static_cast<double>(f));
    }
    case MYSQL_TYPE_DOUBLE: {
      if (size != 8) return std::nullopt;
      double d;
      std::memcpy(&d, p, 8);
      return Value(d);
    }
    case MYSQL_TYPE_NULL:
      return Value(nullptr);
    case MYSQL_TYPE_TIMESTAMP:
      return Value(timestamp_to_text(static_cast<std::uint32_t>(le(p, 4)), 0, 0));
    case MYSQL_TYPE_TIMESTAMP2:
      return Value(timestamp_to_text(static_cast<std::uint32_t>(be(p, 4)), frac_micros(p + 4, c.decimals),
                                     c.decimals));
    case MYSQL_TYPE_DATE:
    case MYSQL_TYPE_NEWDATE: {
      const std::uint64_t v = le(p, 3);
      return Value(date_text(v >> 9, (v >> 5) & 15, v & 31));
    }
    case MYSQL_TYPE_TIME: {
      std::int64_t v = sign_extend(le(p, 3), 3);
      const bool negative = v < 0;
      if (negative) v = -v;
      return Value((negative ? "-" : "") + pad(v / 10000, 2) + ":" + pad(v / 100 % 100, 2) + ":" +
                   pad(v % 100, 2));
    }
    case MYSQL_TYPE_TIME2:
      return Value(time2_text(p, c.decimals));
    case MYSQL_TYPE_DATETIME: {
      const std::uint64_t v = le(p, 8);
      const std::uint64_t d = v / 1000000, t = v % 1000000;
      return Value(date_text(d / 10000, d / 100 % 100, d % 100) + " " + pad(t / 10000, 2) + ":" +
                   pad(t / 100 % 100, 2) + ":" + pad(t % 100, 2));
    }
    case MYSQL_TYPE_DATETIME2: {
      const std::uint64_t intpart = be(p, 5) - 0x8000000000ULL;
      const std::uint64_t ymd = intpart >> 17, ym = ymd >> 5, hms = intpart % (1 << 17);
      return Value(date_text(ym / 13, ym % 13, ymd % (1 << 5)) + " " + pad(hms >> 12, 2) + ":" +
                   pad((hms >> 6) % (1 << 6), 2) + ":" + pad(hms % (1 << 6), 2) +
                   fraction(frac_micros(p + 5, c.decimals), c.decimals));
    }
    case MYSQL_TYPE_NEWDECIMAL: {
      bool ok = false;
      std::string text = decimal_to_text(std::string_view(reinterpret_cast<const char*>(p), size),
                                         c.precision, c.decimals, ok);
      if (!ok) return std::nullopt;
      return Value(std::move(text));
    }
    case MYSQL_TYPE_BIT:
      return Value(std::string(reinterpret_cast<const char*>(p), size));
    case MYSQL_TYPE_STRING:
    case MYSQL_TYPE_ENUM:
    case MYSQL_TYPE_SET:
      if (c.real_type == MYSQL_TYPE_ENUM || c.real_type == MYSQL_TYPE_SET)
        return Value(le(p, static_cast<unsigned>(std::min<std::size_t>(size, 8))));
      [[fallthrough]];
    case MYSQL_TYPE_VARCHAR:
    case MYSQL_TYPE_VAR_STRING: {
      const std::size_t prefix = c.length < 256 ? 1 : 2;
      return Value(std::string(reinterpret_cast<const char*>(p) + prefix, size - prefix));
    }
    default: {  // the BLOB family: a little-endian length of c.length bytes, then the bytes
      const std::size_t prefix = c.length;
      return Value(std::string(reinterpret_cast<const char*>(p) + prefix, size - prefix));
    }
  }
}

}  // namespace

std::string Gtid::to_string() const {
  return std::to_string(domain) + "-" + std::to_string(server) + "-" + std::to_string(sequence);
}

std::optional<Gtid> parse_gtid(std::string_view text) {
  text = trim(text);
  const auto a = text.find('-');
  if (a == std::string_view::npos) return std::nullopt;
  const auto b = text.find('-', a + 1);
  if (b == std::string_view::npos) return std::nullopt;
  std::uint64_t d = 0, s = 0, n = 0;
  if (!parse_uint(text.substr(0, a), d) || !parse_uint(text.substr(a + 1, b - a - 1), s) ||
      !parse_uint(text.substr(b + 1), n))
    return std::nullopt;
  if (d > UINT32_MAX || s > UINT32_MAX) return std::nullopt;
  return Gtid{static_cast<std::uint32_t>(d), static_cast<std::uint32_t>(s), n};
}

std::optional<GtidPosition> GtidPosition::parse(std::string_view text) {
  GtidPosition pos;
  text = trim(text);
  if (text.empty()) return pos;
  for (;;) {
    const auto comma = text.find(',');
    auto g = parse_gtid(text.substr(0, comma));
    if (!g) return std::nullopt;
    for (const auto& existing : pos.gtids_)
      if (existing.domain == g->domain) return std::nullopt;
    pos.gtids_.push_back(*g);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  std::sort(pos.gtids_.begin(), pos.gtids_.end(),
            [](const Gtid& x, const Gtid& y) { return x.domain < y.domain; });
  return pos;
}

void GtidPosition::advance(const Gtid& gtid) {
  auto it = std::lower_bound(gtids_.begin(), gtids_.end(), gtid.domain,
                             [](const Gtid& g, std::uint32_t d) { return g.domain < d; });
  if (it != gtids_.end() && it->domain == gtid.domain) {
    *it = gtid;
  } else {
    gtids_.insert(it, gtid);
  }
}

std::string GtidPosition::to_string() const {
  std::string s;
  for (const auto& g : gtids_) {
    if (!s.empty()) s += ',';
    s += g.to_string();
  }
  return s;
}

bool is_numeric_type(std::uint8_t type) {
  switch (type) {
    case MYSQL_TYPE_TINY:
    case MYSQL_TYPE_SHORT:
    case MYSQL_TYPE_INT24:
    case MYSQL_TYPE_LONG:
    case MYSQL_TYPE_LONGLONG:
    case MYSQL_TYPE_FLOAT:
    case MYSQL_TYPE_DOUBLE:
    case MYSQL_TYPE_NEWDECIMAL:
    case MYSQL_TYPE_DECIMAL:
      return true;
    default:
      return false;
  }
}

std::optional<std::vector<ColumnMeta>> parse_columns(std::string_view types, std::string_view metadata,
                                                     std::string& error) {
  std::vector<ColumnMeta> cols(types.size());
  std::size_t m = 0;
  auto take = [&](std::size_t n, std::size_t i) -> const unsigned char* {
    if (metadata.size() - m < n) {
      error = "table map metadata too short at column " + std::to_string(i + 1);
      return nullptr;
    }
    const auto* p = reinterpret_cast<const unsigned char*>(metadata.data()) + m;
    m += n;
    return p;
  };
  for (std::size_t i = 0; i < types.size(); ++i) {
    ColumnMeta& c = cols[i];
    c.type = static_cast<std::uint8_t>(types[i]);
    c.real_type = c.type;
    switch (c.type) {
      case MYSQL_TYPE_TINY:
      case MYSQL_TYPE_SHORT:
      case MYSQL_TYPE_INT24:
      case MYSQL_TYPE_LONG:
      case MYSQL_TYPE_LONGLONG:
      case MYSQL_TYPE_YEAR:
      case MYSQL_TYPE_DATE:
      case MYSQL_TYPE_NEWDATE:
      case MYSQL_TYPE_TIME:
      case MYSQL_TYPE_DATETIME:
      case MYSQL_TYPE_TIMESTAMP:
      case MYSQL_TYPE_NULL:
        break;
      case MYSQL_TYPE_FLOAT:
      case MYSQL_TYPE_DOUBLE:
      case MYSQL_TYPE_TINY_BLOB:
      case MYSQL_TYPE_MEDIUM_BLOB:
      case MYSQL_TYPE_LONG_BLOB:
      case MYSQL_TYPE_BLOB:
      case MYSQL_TYPE_GEOMETRY:
      case 245: {  // MYSQL_TYPE_JSON
        const auto* p = take(1, i);
        if (p == nullptr) return std::nullopt;
        c.length = p[0];
        if (c.type != MYSQL_TYPE_FLOAT && c.type != MYSQL_TYPE_DOUBLE && (c.length < 1 || c.length > 4)) {
          error = "bad BLOB length size " + std::to_string(c.length) + " at column " + std::to_string(i + 1);
          return std::nullopt;
        }
        break;
      }
      case MYSQL_TYPE_TIMESTAMP2:
      case MYSQL_TYPE_DATETIME2:
      case MYSQL_TYPE_TIME2: {
        const auto* p = take(1, i);
        if (p == nullptr) return std::nullopt;
        c.decimals = p[0];
        if (c.decimals > 6) {
          error =
              "bad fractional digits " + std::to_string(c.decimals) + " at column " + std::to_string(i + 1);
          return std::nullopt;
        }
        break;
      }
      case MYSQL_TYPE_VARCHAR:
      case MYSQL_TYPE_VAR_STRING: {
        const auto* p = take(2, i);
        if (p == nullptr) return std::nullopt;
        c.length = static_cast<std::uint32_t>(le(p, 2));
        break;
      }
      case MYSQL_TYPE_NEWDECIMAL: {
        const auto* p = take(2, i);
        if (p == nullptr) return std::nullopt;
        c.precision = p[0];
        c.decimals = p[1];
        if (c.decimals > c.precision || c.precision > 65) {
          error = "bad DECIMAL(" + std::to_string(c.precision) + "," + std::to_string(c.decimals) +
                  ") at column " + std::to_string(i + 1);
          return std::nullopt;
        }
        break;
      }
      case MYSQL_TYPE_BIT: {
        const auto* p = take(2, i);
        if (p == nullptr) return std::nullopt;
        c.bits = static_cast<std::uint8_t>(p[1] * 8 + p[0]);
        break;
      }
      case MYSQL_TYPE_STRING:
      case MYSQL_TYPE_ENUM:
      case MYSQL_TYPE_SET: {
        const auto* p = take(2, i);
        if (p == nullptr) return std::nullopt;
        // Field_string::save_field_metadata: real_type ^ ((length & 0x300) >> 4), length & 0xFF.
        if ((p[0] & 0x30) != 0x30) {
          c.real_type = static_cast<std::uint8_t>(p[0] | 0x30);
          c.length = p[1] | (((p[0] & 0x30U) ^ 0x30U) << 4);
        } else {
          c.real_type = p[0];
          c.length = p[1];
        }
        if ((c.real_type == MYSQL_TYPE_ENUM || c.real_type == MYSQL_TYPE_SET) &&
            (c.length < 1 || c.length > 8)) {
          error = "bad ENUM/SET size at column " + std::to_string(i + 1);
          return std::nullopt;
        }
        break;
      }
      default:
        error = "unsupported column type " + std::to_string(c.type) + " at column " + std::to_string(i + 1);
        return std::nullopt;
    }
  }
  if (m != metadata.size()) {
    error = "table map metadata has " + std::to_string(metadata.size() - m) + " unexpected bytes";
    return std::nullopt;
  }
  return cols;
}

bool apply_signedness(std::vector<ColumnMeta>& columns, std::string_view bitmap) {
  std::size_t n = 0;
  for (auto& c : columns) {
    if (!is_numeric_type(c.type)) continue;
    if (n / 8 >= bitmap.size()) return false;
    c.is_unsigned = ((static_cast<unsigned char>(bitmap[n / 8]) << (n % 8)) & 0x80U) != 0;
    ++n;
  }
  return true;
}

std::optional<std::string> decode_row_image(const std::vector<ColumnMeta>& columns, std::string_view present,
                                            std::string_view data, std::size_t& pos, Row& row,
                                            bool& complete) {
  const std::size_t n = columns.size();
  std::size_t n_present = 0;
  complete = true;
  for (std::size_t i = 0; i < n; ++i) {
    if (bit(present, i)) {
      ++n_present;
    } else {
      complete = false;
    }
  }
  const std::size_t null_bytes = (n_present + 7) / 8;
  if (data.size() - pos < null_bytes) return "row image truncated (null bitmap)";
  const std::string_view nulls = data.substr(pos, null_bytes);
  pos += null_bytes;
  row.assign(n, Value());
  std::size_t j = 0;  // index among present columns
  for (std::size_t i = 0; i < n; ++i) {
    if (!bit(present, i)) continue;
    const bool is_null = bit(nulls, j++);
    if (is_null) continue;
    const auto* p = reinterpret_cast<const unsigned char*>(data.data()) + pos;
    const std::size_t left = data.size() - pos;
    const auto size = value_size(columns[i], p, left);
    if (!size)
      return "column " + std::to_string(i + 1) + ": unsupported type " + std::to_string(columns[i].type);
    if (*size > left) return "row image truncated at column " + std::to_string(i + 1);
    auto v = decode_value(columns[i], p, *size);
    if (!v) return "column " + std::to_string(i + 1) + ": undecodable value";
    row[i] = std::move(*v);
    pos += *size;
  }
  return std::nullopt;
}

std::string decimal_to_text(std::string_view bin, unsigned precision, unsigned scale, bool& ok) {
  ok = false;
  if (scale > precision || bin.size() != decimal_bin_size(precision, scale) || bin.empty()) return {};
  std::string b(bin);
  const bool negative = (static_cast<unsigned char>(b[0]) & 0x80U) == 0;
  b[0] = static_cast<char>(static_cast<unsigned char>(b[0]) ^ 0x80U);
  if (negative)
    for (auto& ch : b)
      ch = static_cast<char>(~static_cast<unsigned char>(ch));
  const auto* p = reinterpret_cast<const unsigned char*>(b.data());
  const unsigned intg = precision - scale;
  std::string int_part;
  if (const unsigned lead = kDigitsToBytes[intg % 9]; lead > 0) {
    int_part += std::to_string(be(p, lead));
    p += lead;
  }
  for (unsigned g = 0; g < intg / 9; ++g, p += 4)
    int_part += pad(be(p, 4), 9);
  const auto nz = int_part.find_first_not_of('0');
  int_part = nz == std::string::npos ? "0" : int_part.substr(nz);
  std::string frac_part;
  for (unsigned g = 0; g < scale / 9; ++g, p += 4)
    frac_part += pad(be(p, 4), 9);
  if (const unsigned tail = kDigitsToBytes[scale % 9]; tail > 0) frac_part += pad(be(p, tail), scale % 9);
  ok = true;
  return (negative ? "-" : "") + int_part + (scale > 0 ? "." + frac_part : "");
}

std::string timestamp_to_text(std::uint32_t seconds, std::uint32_t micros, unsigned decimals) {
  if (seconds == 0 && micros == 0) return "0000-00-00 00:00:00" + fraction(0, decimals);
  const std::time_t t = seconds;
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  return date_text(static_cast<std::uint64_t>(tm.tm_year + 1900), static_cast<std::uint64_t>(tm.tm_mon + 1),
                   static_cast<std::uint64_t>(tm.tm_mday)) +
         " " + pad(static_cast<std::uint64_t>(tm.tm_hour), 2) + ":" +
         pad(static_cast<std::uint64_t>(tm.tm_min), 2) + ":" + pad(static_cast<std::uint64_t>(tm.tm_sec), 2) +
         fraction(micros, decimals);
}

}  // namespace clients::mysql::detail
