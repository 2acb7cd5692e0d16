// Internals of clients::mysql that are pure functions over Connector/C structures, exposed for
// unit tests: parameter binding, result buffers and value decoding, error classification.
#pragma once

#include <mysql.h>

#include <cstdint>
#include <string>
#include <vector>

#include "clients/mysql.h"

namespace clients::mysql::detail {

// MYSQL_BIND entries pointing into `params` (which must outlive the execution): strings as
// MYSQL_TYPE_STRING with explicit lengths (binary-safe), integers as LONGLONG (signed or
// unsigned), doubles as DOUBLE, NULL as MYSQL_TYPE_NULL.
struct BoundParams {
  std::vector<MYSQL_BIND> binds;
  std::vector<unsigned long> lengths;
};
BoundParams bind_params(const std::vector<Value>& params);

// How a result column is decoded.
enum class ColumnKind { signed_int, unsigned_int, floating, bytes };
ColumnKind column_kind(enum_field_types type, unsigned flags);

// Output buffers for one row of a prepared statement's result (binary protocol). Byte columns
// are sized from the fields' max_length (STMT_ATTR_UPDATE_MAX_LENGTH); a longer value is reported
// as truncated and re-read with mysql_stmt_fetch_column.
struct ResultBuffers {
  std::vector<ColumnKind> kinds;
  std::vector<MYSQL_BIND> binds;
  std::vector<std::uint64_t> ints;  // signed values are stored in the same 8 bytes
  std::vector<double> doubles;
  std::vector<std::string> bytes;
  std::vector<unsigned long> lengths;
  std::vector<my_bool> nulls;
  std::vector<my_bool> errors;
};
void prepare_result_buffers(const MYSQL_FIELD* fields, unsigned count, ResultBuffers& out);
// Points bind `i` back at its own storage (after a resize for a truncated column).
void rebind_bytes(ResultBuffers& buffers, unsigned i, unsigned long size);
// The current row, decoded (after a successful mysql_stmt_fetch).
Row read_row(const ResultBuffers& buffers);

// A text-protocol value (mysql_fetch_row): nullptr is NULL; integer columns become integers,
// FLOAT/DOUBLE doubles, everything else (DECIMAL, dates, strings, blobs) the bytes as sent.
Value text_value(const char* data, unsigned long length, const MYSQL_FIELD& field);

// True when an error with this number means the connection cannot be used any more (client-side
// errors such as "server has gone away", and server errors that end the session). Other server
// errors (duplicate key, syntax, lock wait timeout ...) leave it usable.
bool is_connection_error(unsigned error_number);

// An Error for `error_number`: connection_lost for connection errors, `server_code` otherwise.
Error make_error(unsigned error_number, const char* sqlstate, const char* message,
                 Errc server_code = Errc::server);

}  // namespace clients::mysql::detail
