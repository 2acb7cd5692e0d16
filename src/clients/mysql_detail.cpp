#include "clients/mysql_detail.h"

#include <errmsg.h>

#include <charconv>
#include <cstring>
#include <stdexcept>

namespace clients::mysql {

std::optional<std::int64_t> Value::to_int() const {
  if (const auto* i = std::get_if<std::int64_t>(&v_)) return *i;
  if (const auto* u = std::get_if<std::uint64_t>(&v_)) {
    if (*u <= static_cast<std::uint64_t>(INT64_MAX)) return static_cast<std::int64_t>(*u);
    return std::nullopt;
  }
  if (const auto* s = std::get_if<std::string>(&v_)) {
    std::int64_t v = 0;
    const char* end = s->data() + s->size();
    auto [ptr, ec] = std::from_chars(s->data(), end, v);
    if (ec == std::errc() && ptr == end && !s->empty()) return v;
  }
  return std::nullopt;
}

const std::string& Value::string() const {
  static const std::string empty;
  if (const auto* s = std::get_if<std::string>(&v_)) return *s;
  return empty;
}

std::string Value::to_text() const {
  struct Visitor {
    std::string operator()(Null) const { return "NULL"; }
    std::string operator()(std::int64_t v) const { return std::to_string(v); }
    std::string operator()(std::uint64_t v) const { return std::to_string(v); }
    std::string operator()(double v) const {
      char buf[64];
      auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, v);
      return ec == std::errc() ? std::string(buf, ptr) : std::string("nan");
    }
    std::string operator()(const std::string& v) const { return v; }
  };
  return std::visit(Visitor{}, v_);
}

namespace detail {

BoundParams bind_params(const std::vector<Value>& params) {
  BoundParams out;
  out.binds.resize(params.size());
  out.lengths.resize(params.size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    MYSQL_BIND& b = out.binds[i];
    std::memset(&b, 0, sizeof b);
    const Value::Storage& v = params[i].storage();
    if (std::holds_alternative<Value::Null>(v)) {
      b.buffer_type = MYSQL_TYPE_NULL;
    } else if (const auto* s = std::get_if<std::int64_t>(&v)) {
      b.buffer_type = MYSQL_TYPE_LONGLONG;
      b.buffer = const_cast<std::int64_t*>(s);
      b.is_unsigned = 0;
    } else if (const auto* u = std::get_if<std::uint64_t>(&v)) {
      b.buffer_type = MYSQL_TYPE_LONGLONG;
      b.buffer = const_cast<std::uint64_t*>(u);
      b.is_unsigned = 1;
    } else if (const auto* d = std::get_if<double>(&v)) {
      b.buffer_type = MYSQL_TYPE_DOUBLE;
      b.buffer = const_cast<double*>(d);
    } else {
      const auto& str = std::get<std::string>(v);
      b.buffer_type = MYSQL_TYPE_STRING;
      b.buffer = const_cast<char*>(str.data());
      b.buffer_length = static_cast<unsigned long>(str.size());
      out.lengths[i] = static_cast<unsigned long>(str.size());
      b.length = &out.lengths[i];
    }
  }
  return out;
}

ColumnKind column_kind(enum_field_types type, unsigned flags) {
  switch (type) {
    case MYSQL_TYPE_TINY:
    case MYSQL_TYPE_SHORT:
    case MYSQL_TYPE_INT24:
    case MYSQL_TYPE_LONG:
    case MYSQL_TYPE_LONGLONG:
    case MYSQL_TYPE_YEAR:
      return (flags & UNSIGNED_FLAG) != 0 ? ColumnKind::unsigned_int : ColumnKind::signed_int;
    case MYSQL_TYPE_FLOAT:
    case MYSQL_TYPE_DOUBLE:
      return ColumnKind::floating;
    default:
      return ColumnKind::bytes;
  }
}

void prepare_result_buffers(const MYSQL_FIELD* fields, unsigned count, ResultBuffers& out) {
  out.kinds.resize(count);
  out.binds.assign(count, MYSQL_BIND{});
  out.ints.assign(count, 0);
  out.doubles.assign(count, 0.0);
  out.bytes.assign(count, std::string());
  out.lengths.assign(count, 0);
  out.nulls.assign(count, 0);
  out.errors.assign(count, 0);
  for (unsigned i = 0; i < count; ++i) {
    MYSQL_BIND& b = out.binds[i];
    std::memset(&b, 0, sizeof b);
    out.kinds[i] = column_kind(fields[i].type, fields[i].flags);
    b.length = &out.lengths[i];
    b.is_null = &out.nulls[i];
    b.error = &out.errors[i];
    switch (out.kinds[i]) {
      case ColumnKind::signed_int:
      case ColumnKind::unsigned_int:
        b.buffer_type = MYSQL_TYPE_LONGLONG;
        b.buffer = &out.ints[i];
        b.is_unsigned = out.kinds[i] == ColumnKind::unsigned_int ? 1 : 0;
        break;
      case ColumnKind::floating:
        b.buffer_type = MYSQL_TYPE_DOUBLE;
        b.buffer = &out.doubles[i];
        break;
      case ColumnKind::bytes:
        b.buffer_type = MYSQL_TYPE_STRING;
        // One spare byte: the library NUL-terminates strings that fit.
        rebind_bytes(out, i, fields[i].max_length + 1);
        break;
    }
  }
}

void rebind_bytes(ResultBuffers& buffers, unsigned i, unsigned long size) {
  buffers.bytes[i].resize(size == 0 ? 1 : size);
  buffers.binds[i].buffer = buffers.bytes[i].data();
  buffers.binds[i].buffer_length = static_cast<unsigned long>(buffers.bytes[i].size());
}

Row read_row(const ResultBuffers& buffers) {
  Row row;
  row.reserve(buffers.kinds.size());
  for (std::size_t i = 0; i < buffers.kinds.size(); ++i) {
    if (buffers.nulls[i] != 0) {
      row.emplace_back();
      continue;
    }
    switch (buffers.kinds[i]) {
      case ColumnKind::signed_int:
        row.emplace_back(static_cast<std::int64_t>(buffers.ints[i]));
        break;
      case ColumnKind::unsigned_int:
        row.emplace_back(buffers.ints[i]);
        break;
      case ColumnKind::floating:
        row.emplace_back(buffers.doubles[i]);
        break;
      case ColumnKind::bytes: {
        const std::size_t n = std::min<std::size_t>(buffers.lengths[i], buffers.bytes[i].size());
        row.emplace_back(std::string(buffers.bytes[i].data(), n));
        break;
      }
    }
  }
  return row;
}

Value text_value(const char* data, unsigned long length, const MYSQL_FIELD& field) {
  if (data == nullptr) return Value();
  const char* end = data + length;
  switch (column_kind(field.type, field.flags)) {
    case ColumnKind::signed_int: {
      std::int64_t v = 0;
      auto [ptr, ec] = std::from_chars(data, end, v);
      if (ec == std::errc() && ptr == end) return Value(v);
      break;
    }
    case ColumnKind::unsigned_int: {
      std::uint64_t v = 0;
      auto [ptr, ec] = std::from_chars(data, end, v);
      if (ec == std::errc() && ptr == end) return Value(v);
      break;
    }
    case ColumnKind::floating: {
      double v = 0;
      auto [ptr, ec] = std::from_chars(data, end, v);
      if (ec == std::errc() && ptr == end) return Value(v);
      break;
    }
    case ColumnKind::bytes:
      break;
  }
  return Value(std::string(data, length));
}

bool is_connection_error(unsigned n) {
  if (n == 0) return true;                  // an unexplained failure: do not trust the session
  if (n >= 2000 && n <= 2999) return true;  // CR_* client errors (gone away, lost, out of sync)
  if (n >= 5000 && n <= 5999) return true;  // CER_* MariaDB Connector/C errors
  switch (n) {
    case 1040:  // ER_CON_COUNT_ERROR (too many connections)
    case 1053:  // ER_SERVER_SHUTDOWN
    case 1152:  // ER_ABORTING_CONNECTION
    case 1153:  // ER_NET_PACKET_TOO_LARGE
    case 1154:
    case 1155:
    case 1156:
    case 1157:
    case 1158:
    case 1159:
    case 1160:
    case 1161:  // ER_NET_* read/write errors
    case 1927:  // ER_CONNECTION_KILLED
    case 4031:  // ER_CLIENT_INTERACTION_TIMEOUT
      return true;
    default:
      return false;
  }
}

Error make_error(unsigned n, const char* sqlstate, const char* message, Errc server_code) {
  Error e{is_connection_error(n) ? Errc::connection_lost : server_code, n,
          sqlstate != nullptr ? sqlstate : "",
          message != nullptr && *message != '\0' ? message : "unknown error"};
  return e;
}

}  // namespace detail
}  // namespace clients::mysql
