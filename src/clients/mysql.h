// clients::mysql: MariaDB/MySQL connections and a bounded connection pool, on MariaDB
// Connector/C's non-blocking API driven by Asio.
//
// What it is for: storage calls with exact, sub-second deadlines that never block the event loop.
// Each call (connect, statement, ping, acquire) completes by its deadline with a result or a
// classified error; nothing on the data path throws. Statements are server-side prepared
// statements with bound parameters (cached per connection), so values are never spliced into
// SQL: "'; DROP TABLE user; --" is stored verbatim.
//
// Usage (inside a coroutine running on the pool's executor):
//   clients::mysql::Pool pool(io.get_executor(),
//                             {.connection = {.host = "127.0.0.1", .port = 3306, .user = "root",
//                                             .database = "users"},
//                              .max_size = 8});
//   pool.start();                                      // opens min_size connections, retries
//   std::vector<clients::mysql::Value> params{id};           // (GCC 12: no braced list in co_await)
//   auto r = co_await pool.execute("SELECT name FROM user WHERE id = ?", std::move(params), 500ms);
//   if (!r) { if (r.error().code == clients::mysql::Errc::timeout) ...; }
//   else if (r->rows.empty()) ... else use(r->rows[0][0].string());
//
//   // A transaction: one connection, leased for the duration.
//   auto lease = co_await pool.acquire(deadline);
//   if (!lease) ...;
//   auto& conn = **lease;
//   if (auto b = co_await conn.begin(deadline); !b) ...;
//   std::vector<clients::mysql::Value> p{name, id};
//   auto w = co_await conn.execute("UPDATE user SET name = ? WHERE id = ?", std::move(p), deadline);
//   co_await (w ? conn.commit(deadline) : conn.rollback(deadline));
//   // the lease returns the connection to the pool when destroyed
//
// Guarantees:
// - Deadlines: connect, every statement, ping and acquire complete by their deadline (plus
//   event-loop latency), to the millisecond. When a deadline passes mid-operation, the socket is
//   shut down, Connector/C is driven to finish the operation with an error at once (nothing is left
//   suspended inside the library), the connection is closed (never reused) and the call reports
//   `timeout`. The server may still finish a statement it had started (e.g. commit a write whose
//   acknowledgement was late): the one ambiguity a timeout cannot remove.
// - No blocking: sockets are watched by Asio (mysql_get_socket), Connector/C's own timeouts
//   (MYSQL_WAIT_TIMEOUT) are honoured, the host must be a numeric IP (no DNS), TCP only.
// - Results: integer columns come back as int64 (uint64 when UNSIGNED), FLOAT/DOUBLE as double,
//   NULL as null, everything else (DECIMAL, dates, text, blobs) as the bytes the server sent.
// - Errors are classified (Errc), with the server's error number, SQLSTATE and message when the
//   server answered (e.g. 1062 for a duplicate key). A server error leaves the connection usable;
//   a client-side error (lost connection, protocol) or a timeout makes it unusable. Every error
//   also says whether the statement may still have taken effect (Error::outcome_unknown), so a
//   caller can tell a write that certainly did not happen from one whose fate is unknown.
// - Pool: at most max_size connections. acquire() waits in a FIFO queue (at most max_waiters;
//   beyond that it fails at once with `pool_exhausted`) and fails with `timeout` at its deadline.
//   While no connection can be opened (the last attempt failed and none is open) acquire fails at
//   once with `unavailable` instead of waiting; unless that attempt was refused at once (below): then
//   the connector tries again at once and acquire waits for that attempt (a refused connect while
//   MariaDB is still down, its first connection as soon as it is back). Broken or timed-out
//   connections are discarded when returned and replaced in the background; connect attempts are
//   paced by exponential backoff with jitter (25 ms growing to 500 ms by default) and continue
//   forever, so a pool started while MariaDB is down serves as soon as it is up (within
//   ~backoff.max). Attempts the host refuses at once (refused, reset, closed during the handshake:
//   PoolStatus::refused) stay at backoff.initial. Idle connections are
//   watched (a server that closes them, e.g. on restart, removes them from the pool at once),
//   pinged before being lent when idle longer than ping_idle_after or after another connection was
//   lost, pinged in the background, and closed after max_idle (keeping min_size open). acquire()
//   before start() fails with `unavailable`.
// - Transactions: a connection returned to the pool inside a transaction is closed (the server
//   rolls back), never lent again.
// - Threading: Connection and Pool are bound to the executor given at construction, which must run
//   on one thread at a time; call every member function on it. One operation at a time per
//   Connection (a second concurrent call fails with `invalid_argument`).
// - Lifetime: stop() fails waiters with `stopped`, closes idle connections and stops background
//   work; leased connections are closed when returned. Leases and operations in flight keep what
//   they need alive, so destroying the Pool with work in flight is safe.
// - Cancellation: Asio terminal cancellation of an operation's coroutine (e.g. awaitable
//   operators) abandons it like a timeout (the connection is closed) and reports `cancelled`.
// - Not supported: multi-statements, CALL with several result sets, LOAD DATA LOCAL, TLS.
// - Bootstrapping a schema: a pool whose `database` does not exist yet fails to connect (server
//   error 1049) and keeps retrying; create it with Connection::connect(...) with an empty
//   `database` and query("CREATE DATABASE IF NOT EXISTS ..."), and the pool comes up by itself.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "clients/support.h"

namespace clients::mysql {

// A column value or a statement parameter: NULL, a signed or unsigned integer, a double, or a
// byte string (any bytes; text is UTF-8 with the default utf8mb4 connection charset).
class Value {
 public:
  struct Null {
    friend bool operator==(Null, Null) = default;
  };
  using Storage = std::variant<Null, std::int64_t, std::uint64_t, double, std::string>;

  Value() = default;
  Value(std::nullptr_t) {}  // NOLINT: implicit so that {nullptr, 42, "x"} builds parameters
  template <std::signed_integral I>
  Value(I v) : v_(static_cast<std::int64_t>(v)) {}  // NOLINT
  template <std::unsigned_integral U>
  Value(U v) : v_(static_cast<std::uint64_t>(v)) {}  // NOLINT
  Value(double v) : v_(v) {}                         // NOLINT
  Value(std::string v) : v_(std::move(v)) {}         // NOLINT
  Value(std::string_view v) : v_(std::string(v)) {}  // NOLINT
  Value(const char* v) : v_(std::string(v)) {}       // NOLINT

  bool is_null() const { return std::holds_alternative<Null>(v_); }
  bool is_int() const { return std::holds_alternative<std::int64_t>(v_); }
  bool is_uint() const { return std::holds_alternative<std::uint64_t>(v_); }
  bool is_double() const { return std::holds_alternative<double>(v_); }
  bool is_string() const { return std::holds_alternative<std::string>(v_); }

  // The integer value of an int or uint (if it fits), or of a string holding a decimal integer.
  std::optional<std::int64_t> to_int() const;
  // The string, or empty for other kinds; see also to_text().
  const std::string& string() const;
  // Any non-NULL value as text (integers in decimal); "NULL" for NULL. For logs and tests.
  std::string to_text() const;

  const Storage& storage() const { return v_; }
  friend bool operator==(const Value&, const Value&) = default;

 private:
  Storage v_;
};

using Row = std::vector<Value>;

struct ResultSet {
  std::vector<std::string> columns{};  // column names (empty for statements without a result)
  std::vector<Row> rows{};             // each row has columns.size() values
  std::uint64_t affected_rows = 0;     // INSERT/UPDATE/DELETE (changed rows, MySQL semantics)
  std::uint64_t last_insert_id = 0;    // AUTO_INCREMENT value of the last INSERT, if any
  unsigned warnings = 0;
};

enum class Errc : std::uint8_t {
  timeout = 1,       // the deadline passed (the connection used was closed)
  connection_lost,   // the connection broke (server gone, reset, protocol error)
  connect_failed,    // could not establish a connection (refused, auth error, ...)
  server,            // the server refused the statement (see server_errno); connection still usable
  unavailable,       // pool: no connection can be opened right now (the last attempt failed)
  pool_exhausted,    // pool: max_waiters callers are already waiting
  cancelled,         // Asio cancellation was requested
  stopped,           // the pool was stopped or the connection closed
  invalid_argument,  // wrong parameter count, unsupported statement, connection busy
};
std::string_view to_string(Errc code);

struct Error {
  Errc code;
  unsigned server_errno = 0;  // MariaDB/MySQL error number, when the server or library gave one
  std::string sqlstate{};     // e.g. "23000"
  std::string message{};
  // Whether the statement may have taken effect although the call failed: true when the failure
  // came after the statement was (or may have been) handed to the server and no reply said how it
  // ended: a deadline or a cancellation mid-statement, the connection lost while the server ran it
  // or answered it ("Lost connection to server during query"), a reply we could not read. A write
  // that failed so may still have committed. False when the statement is known not to have run:
  // connect, pool (acquire, unavailable, exhausted), prepare and bind failures, and the server's own
  // error replies (it refused or aborted the statement: an autocommit statement is rolled back).
  bool outcome_unknown = false;

  bool is_duplicate_key() const { return code == Errc::server && server_errno == 1062; }
  // True when retrying on another connection may succeed (nothing was refused by the server).
  bool is_transient() const {
    return code == Errc::timeout || code == Errc::connection_lost || code == Errc::connect_failed ||
           code == Errc::unavailable || code == Errc::pool_exhausted;
  }
};

template <typename T>
using Result = boost::system::result<T, Error>;

// Lets Result<T>::value() throw (std::runtime_error with the message) when used off the data path.
[[noreturn]] void throw_exception_from_error(const Error& e, const boost::source_location& loc);

struct ConnectSettings {
  std::string host = "127.0.0.1";  // numeric IPv4/IPv6 address (TCP; no DNS, no Unix socket)
  std::uint16_t port = 3306;
  std::string user = "root";
  std::string password{};
  std::string database{};  // default schema, may be empty
  std::string charset = "utf8mb4";
  std::chrono::milliseconds connect_timeout{500};  // TCP connect + authentication
  std::size_t statement_cache_size = 64;           // prepared statements kept per connection
  // Local IP address to bind outgoing connections to (MYSQL_OPT_BIND), so that the server, a
  // proxy or a firewall sees (and can single out) this client by its source; empty = any.
  // Numeric IPv4/IPv6 only.
  std::string source_address{};

  // Throws std::invalid_argument naming the bad field.
  void validate() const;
};

class Connection {
 public:
  using executor_type = boost::asio::any_io_executor;

  // Opens a connection within min(deadline, now + settings.connect_timeout).
  static boost::asio::awaitable<Result<std::unique_ptr<Connection>>> connect(executor_type executor,
                                                                             ConnectSettings settings,
                                                                             Deadline deadline);
  ~Connection();  // closes without blocking (after the operation in flight, if any, ends)
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Prepares `sql` (once per connection: cached), binds `params` to its '?' placeholders, executes
  // it and reads the whole result.
  boost::asio::awaitable<Result<ResultSet>> execute(std::string sql, std::vector<Value> params,
                                                    Deadline deadline);
  // Runs fixed SQL over the text protocol (no parameters): DDL, SET, transaction control. Never
  // build `sql` from untrusted input: use execute() with parameters.
  boost::asio::awaitable<Result<ResultSet>> query(std::string sql, Deadline deadline);
  boost::asio::awaitable<Result<void>> ping(Deadline deadline);
  boost::asio::awaitable<Result<void>> begin(Deadline deadline);  // START TRANSACTION
  boost::asio::awaitable<Result<void>> commit(Deadline deadline);
  boost::asio::awaitable<Result<void>> rollback(Deadline deadline);

  // False once an operation timed out, was cancelled or lost the connection, or after close().
  bool usable() const;
  bool in_transaction() const;
  // Closes now (non-blocking), or when the operation in flight ends.
  void close();
  // For pools: while no operation runs, watch the socket. A healthy idle session receives nothing,
  // so readability means the server closed it (restart, KILL, wait_timeout): the connection is then
  // closed at once and `on_lost` runs (on the executor). Ends with the next operation or close().
  void watch_idle(std::function<void()> on_lost);
  executor_type get_executor() const;

  struct Impl;
  explicit Connection(std::shared_ptr<Impl> impl);

 private:
  std::shared_ptr<Impl> impl_;  // shared with operations in flight
};

struct PoolSettings {
  ConnectSettings connection{};
  std::size_t max_size = 8;       // connections open or being opened, at most
  std::size_t min_size = 1;       // kept open even when idle (and retried while down)
  std::size_t max_waiters = 256;  // acquire() callers queued at most; beyond: pool_exhausted
  std::chrono::milliseconds ping_idle_after{5000};      // ping before lending if idle this long
  std::chrono::milliseconds max_idle{60000};            // close idle connections beyond min_size
  std::chrono::milliseconds health_check_timeout{200};  // deadline of those pings
  std::chrono::milliseconds maintenance_interval{1000};
  BackoffPolicy reconnect{};
  std::string name = "mysql";  // shown in logs and status

  void validate() const;
};

enum class PoolState : std::uint8_t {
  idle,      // constructed, start() not called yet
  starting,  // started, no connect attempt finished yet
  up,        // a connection is open, or the last connect attempt succeeded
  down,      // no connection open and the last connect attempt failed
  stopped,
};
std::string_view to_string(PoolState state);

struct PoolCounters {
  std::uint64_t acquired = 0;
  std::uint64_t acquire_timeouts = 0;
  std::uint64_t rejected_unavailable = 0;
  std::uint64_t rejected_exhausted = 0;
  std::uint64_t connects = 0;
  std::uint64_t connect_failures = 0;
  std::uint64_t discarded = 0;  // connections closed because broken, timed out or mid-transaction
  std::uint64_t recycled = 0;   // idle connections closed after max_idle
  std::uint64_t health_check_failures = 0;
};

struct PoolStatus {
  PoolState state = PoolState::idle;
  std::chrono::system_clock::time_point since{};  // when `state` was entered
  std::string last_error{};
  bool refused = false;  // the latest failed attempt was refused at once (not a timeout, not the server)
  std::size_t open = 0;  // idle + in_use
  std::size_t idle = 0;
  std::size_t in_use = 0;  // leased (including connections being health-checked)
  std::size_t connecting = 0;
  std::size_t waiters = 0;
  PoolCounters counters{};
};

class Pool;

// A connection borrowed from a Pool; returns it when destroyed (or on release()).
class Lease {
 public:
  Lease() = default;
  Lease(Lease&& other) noexcept = default;
  Lease& operator=(Lease&& other) noexcept;
  ~Lease();

  Connection& operator*() const { return *conn_; }
  Connection* operator->() const { return conn_.get(); }
  explicit operator bool() const { return conn_ != nullptr; }
  // Returns the connection now (closed instead if unusable or inside a transaction).
  void release();

  struct PoolRef;  // implementation detail: the pool's shared state
  Lease(std::shared_ptr<PoolRef> pool, std::unique_ptr<Connection> conn);

 private:
  std::shared_ptr<PoolRef> pool_;
  std::unique_ptr<Connection> conn_;
};

class Pool {
 public:
  using executor_type = boost::asio::any_io_executor;

  // Validates the settings (throws std::invalid_argument); does no I/O until start().
  Pool(executor_type executor, PoolSettings settings);
  ~Pool();  // stop()
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  void start();
  void stop();

  boost::asio::awaitable<Result<Lease>> acquire(Deadline deadline);
  // True at once when a connection is open. Otherwise, if the pool is down and its latest attempt
  // was refused (PoolStatus::refused), an attempt starts now (or the one under way is joined) and the
  // result is its outcome within `deadline`; the connection it opens goes to the pool (not down yet:
  // the connection being opened). While attempts time out or the server rejects the login, false at
  // once: the caller is not made to wait for an attempt.
  boost::asio::awaitable<bool> connect_now(Deadline deadline);
  // acquire + Connection::execute + release, all within `deadline`.
  boost::asio::awaitable<Result<ResultSet>> execute(std::string sql, std::vector<Value> params,
                                                    Deadline deadline);

  PoolStatus status() const;
  const PoolSettings& settings() const;
  executor_type get_executor() const;

 private:
  std::shared_ptr<Lease::PoolRef> impl_;
};

}  // namespace clients::mysql
