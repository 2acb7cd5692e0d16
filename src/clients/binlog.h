// clients::mysql::BinlogReader: the row changes of one MariaDB table, read from the server's
// binary log as a replica would (COM_BINLOG_DUMP from a GTID position), delivered in commit order
// and in whole transactions, with the GTID position to resume from.
//
// What it is for: a change feed (for example to keep a cache coherent with the database across
// instances and crashes). The consumer applies a batch, stores batch.position durably, and after a
// restart starts again from the stored position: nothing committed after it is missed, nothing
// before it is delivered again.
//
// Usage (inside a coroutine running on the reader's executor):
//   clients::mysql::BinlogReader reader(io.get_executor(),
//       {.connection = {.host = "127.0.0.1", .port = 3306, .user = "root"},
//        .server_id = 1001, .database = "users", .table = "user"});
//   reader.start(stored_position);                     // "" = only changes from now on
//   for (;;) {
//     auto batch = co_await reader.next(256, 1s);
//     if (!batch) { log(batch.error().message); continue; }   // it reconnects by itself
//     for (const auto& c : batch->changes) apply(c.kind, c.row);   // row[0] = id, ...
//     if (!batch->changes.empty()) store(batch->position);
//   }
//
// Server requirements: log_bin on, binlog_format=ROW, binlog_row_image=FULL (checked at each
// connect: a server without them fails the stream with a clear error), GTIDs (always on in
// MariaDB), a user with REPLICATION SLAVE (root in tests), and a server_id unique among the
// server's replicas and readers (the server disconnects an older reader that uses the same id).
//
// Guarantees:
// - Order and atomicity: changes arrive in binlog (commit) order; a batch holds whole
//   transactions only (a transaction larger than max_changes arrives alone, whole); changes of
//   other tables are skipped, and transactions without changes of the table still advance the
//   position. Batch::position is the GTID position (as @@gtid_binlog_pos writes it, one
//   "domain-server-seq" per replication domain) after the batch's last transaction.
// - Resuming: start(p) with a position returned by a batch (or position()) delivers exactly the
//   transactions committed after it. start("") resolves the server's @@gtid_binlog_pos when the
//   first connection is established (status().connected): changes committed before that are not
//   delivered.
// - Failures: a stream failure (connect refused, connection lost, server error such as a position
//   the server no longer has) is reported by next() as an Error, after the complete transactions
//   read before it; the reader then reconnects by itself with backoff (settings.reconnect), from
//   the position after the last transaction it queued, so that across a failure no change is lost
//   or duplicated. A transaction cut by the failure is read again whole. While the server stays
//   unreachable each failed attempt is reported (at most one error is queued at a time).
// - Deadlines: the connection is established within connection.connect_timeout. next() completes
//   as soon as at least one transaction with changes is available, or at its deadline with an empty
//   batch (whose position still reflects skipped transactions). A dead peer (no data and no
//   heartbeat, which the server sends every `heartbeat` while idle) is detected after
//   read_timeout (whole seconds: Connector/C's MYSQL_OPT_READ_TIMEOUT).
// - Backpressure: at most queue_capacity transactions wait for next(); beyond that the reader
//   stops reading (the server then holds the stream; after its net_write_timeout, 60 s by
//   default, it drops it and the reader reconnects from where it was).
// - Values: each Row has every column of the table in table order: for insert and update the
//   row after the change (RowChange::before: the row before an update), for remove the row before
//   it. Integers are int64 (uint64 when UNSIGNED: from the table map's SIGNEDNESS metadata when
//   binlog_row_metadata is MINIMAL or FULL, else from information_schema.COLUMNS read at connect),
//   FLOAT/DOUBLE double, NULL null, CHAR/VARCHAR/TEXT/BLOB/BIT their bytes, DECIMAL its text
//   ("-12.50"), DATE "YYYY-MM-DD", DATETIME "YYYY-MM-DD HH:MM:SS[.ffffff]", TIMESTAMP the same in
//   UTC, TIME "[-]HH:MM:SS[.f]", YEAR int64, ENUM and SET their index and bitmask (uint64). A row
//   image without every column (binlog_row_image other than FULL) fails the stream.
// - Threading: Connector/C's replication API blocks, so each reader runs it on ONE thread of its
//   own, started by start() and joined by stop() (the only thread it adds). That thread hands
//   transactions to the executor through the bounded queue; every member function must be called
//   on the executor (which must run on one thread at a time). stop() blocks only for the moment the
//   thread needs to notice: it shuts the connection's socket down, which ends a blocked read or
//   connect at once.
// - Lifetime: stop() (also run by the destructor) fails a pending next() with `stopped`; destroy
//   the reader before its executor's execution context.
// - Cancellation: Asio terminal cancellation of a pending next() completes it with `cancelled`
//   (nothing is lost: queued transactions stay queued).
// - Limits: DDL (ALTER, TRUNCATE, DROP) is not delivered (TRUNCATE removes rows without row
//   events), nor are changes a session wrote with binlog_format=STATEMENT (the global setting is
//   checked, a session's is not). XA transactions are delivered at XA PREPARE, as if committed.
//   A failover to a server whose binlog does not hold the stored position (transactions lost with
//   the old primary, or purged binlogs) fails every attempt with the server's error 1236 until the
//   consumer starts again from a new position (and resynchronises what it derives from the table).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "clients/mysql.h"
#include "clients/support.h"

namespace clients::mysql {

struct RowChange {
  enum class Kind : std::uint8_t { insert, update, remove };
  Kind kind = Kind::insert;
  std::string database{};
  std::string table{};
  Row row{};  // all columns in table order: the after image (insert/update), the before image (remove)
  std::string gtid{};  // the transaction's GTID, "domain-server-seq"
  Row before{};        // update only: the row before the change (an UPDATE may change the key too)
};
std::string_view to_string(RowChange::Kind kind);

struct Batch {
  std::vector<RowChange> changes{};
  std::string position{};  // the GTID position after the batch's last complete transaction
};

struct BinlogSettings {
  ConnectSettings connection{};  // `database` is not used; connect_timeout bounds each connect
  std::uint32_t server_id = 0;   // unique replica id (required, > 0)
  std::string database{};        // only changes of database.table are delivered (others skipped)
  std::string table{};
  std::chrono::milliseconds heartbeat{500};  // the server sends one when idle this long
  std::chrono::seconds read_timeout{2};      // no event or heartbeat this long: the stream failed
  std::size_t queue_capacity = 1024;         // transactions waiting for next(), at most
  BackoffPolicy reconnect{};                 // pacing of reconnect attempts after a failure

  // Throws std::invalid_argument naming the bad field.
  void validate() const;
};

struct BinlogCounters {
  std::uint64_t events = 0;  // binlog events read (heartbeats included)
  std::uint64_t heartbeats = 0;
  std::uint64_t transactions = 0;  // complete transactions read (all tables)
  std::uint64_t changes = 0;       // row changes of the table queued
  std::uint64_t connects = 0;      // streams opened
  std::uint64_t failures = 0;      // failed connects and broken streams
};

struct BinlogStatus {
  bool running = false;    // started and not stopped
  bool connected = false;  // a stream is open (the server answered the dump request)
  std::string last_error{};
  std::string read_position{};  // after the last transaction read from the server
  std::size_t queued = 0;       // transactions (and errors) waiting for next()
  BinlogCounters counters{};
};

class BinlogReader {
 public:
  using executor_type = boost::asio::any_io_executor;

  // Validates the settings (throws std::invalid_argument); no I/O, no thread until start().
  BinlogReader(executor_type executor, BinlogSettings settings);
  ~BinlogReader();  // stop()
  BinlogReader(const BinlogReader&) = delete;
  BinlogReader& operator=(const BinlogReader&) = delete;

  // Opens the stream from `gtid_position` ("" = the server's current @@gtid_binlog_pos, i.e. only
  // new changes) on the reader's thread. Throws std::invalid_argument for a malformed position and
  // std::logic_error when called twice.
  void start(std::string gtid_position);

  // The next changes: completes as soon as at least one complete transaction's changes are
  // available (up to max_changes, ending at a transaction boundary), or with an empty Batch at the
  // deadline. An Error when the stream failed (connection lost, the server no longer has the
  // position, ...); the reader then reconnects by itself, with backoff, from the position after
  // the last batch delivered. Errors: `stopped` after stop(), `invalid_argument` before start(),
  // with max_changes 0, or while another next() is pending; `cancelled`.
  boost::asio::awaitable<Result<Batch>> next(std::size_t max_changes, Deadline deadline);

  // The position after the last delivered batch (or skipped transactions drained by next()); before
  // that, the position given to start() (once resolved, for "").
  std::string position() const;
  // Closes the connection, joins the thread, fails a pending next() with `stopped`. Idempotent.
  void stop();
  BinlogStatus status() const;
  const BinlogSettings& settings() const;
  executor_type get_executor() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;  // shared with the thread and with posted completions
};

}  // namespace clients::mysql
