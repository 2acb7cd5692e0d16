// The MySQL client: Connector/C's non-blocking API (mysql_*_start / mysql_*_cont) driven by Asio
// coroutines, and the pool. The only coroutine-heavy file of src/clients.
//
// How one operation runs (drive()): call _start; while it returns a wait mask, watch the socket
// (mysql_get_socket) for what it asks with a stream_descriptor that is release()d, never closed
// (Connector/C owns the fd), with a timer at the earlier of our deadline and the library's own
// timeout (MYSQL_WAIT_TIMEOUT); then call _cont with what happened.
//
// When our deadline passes (or the operation is cancelled) the operation must not be left
// suspended inside the library: unwind() shuts the socket down and keeps calling _cont (with
// MYSQL_WAIT_TIMEOUT when the library offers it) until the library finishes the operation with an
// error, which it does at once since every read and write now fails. The library thereby frees
// what it allocated (including the half-open socket of an abandoned TCP connect); the connection
// is then closed and never reused.
#include "clients/mysql.h"

#include <arpa/inet.h>
#include <errmsg.h>
#include <mysql.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <unordered_map>

#include "clients/mysql_detail.h"
#include "common/log.h"

namespace clients::mysql {
namespace asio = boost::asio;
using boost::system::error_code;

std::string_view to_string(Errc code) {
  switch (code) {
    case Errc::timeout:
      return "timeout";
    case Errc::connection_lost:
      return "connection_lost";
    case Errc::connect_failed:
      return "connect_failed";
    case Errc::server:
      return "server";
    case Errc::unavailable:
      return "unavailable";
    case Errc::pool_exhausted:
      return "pool_exhausted";
    case Errc::cancelled:
      return "cancelled";
    case Errc::stopped:
      return "stopped";
    case Errc::invalid_argument:
      return "invalid_argument";
  }
  return "unknown";
}

std::string_view to_string(PoolState state) {
  switch (state) {
    case PoolState::idle:
      return "idle";
    case PoolState::starting:
      return "starting";
    case PoolState::up:
      return "up";
    case PoolState::down:
      return "down";
    case PoolState::stopped:
      return "stopped";
  }
  return "unknown";
}

void throw_exception_from_error(const Error& e, const boost::source_location&) {
  throw std::runtime_error("mysql " + std::string(to_string(e.code)) +
                           (e.server_errno != 0 ? " " + std::to_string(e.server_errno) : "") + ": " +
                           e.message);
}

void ConnectSettings::validate() const {
  unsigned char buf[16];
  if (::inet_pton(AF_INET, host.c_str(), buf) != 1 && ::inet_pton(AF_INET6, host.c_str(), buf) != 1)
    throw std::invalid_argument("mysql host must be a numeric IP address (TCP, no DNS): '" + host + "'");
  if (port == 0) throw std::invalid_argument("mysql port must not be 0");
  if (!source_address.empty() && ::inet_pton(AF_INET, source_address.c_str(), buf) != 1 &&
      ::inet_pton(AF_INET6, source_address.c_str(), buf) != 1)
    throw std::invalid_argument("mysql source_address must be a numeric IP address: '" + source_address +
                                "'");
  if (user.empty()) throw std::invalid_argument("mysql user must not be empty");
  if (charset.empty()) throw std::invalid_argument("mysql charset must not be empty");
  if (connect_timeout.count() <= 0) throw std::invalid_argument("mysql connect_timeout must be > 0");
  if (statement_cache_size == 0) throw std::invalid_argument("mysql statement_cache_size must be > 0");
}

void PoolSettings::validate() const {
  connection.validate();
  if (max_size == 0) throw std::invalid_argument("mysql pool max_size must be > 0");
  if (min_size > max_size) throw std::invalid_argument("mysql pool min_size must be <= max_size");
  if (ping_idle_after.count() <= 0) throw std::invalid_argument("mysql pool ping_idle_after must be > 0");
  if (max_idle.count() <= 0) throw std::invalid_argument("mysql pool max_idle must be > 0");
  if (health_check_timeout.count() <= 0)
    throw std::invalid_argument("mysql pool health_check_timeout must be > 0");
  if (maintenance_interval.count() <= 0)
    throw std::invalid_argument("mysql pool maintenance_interval must be > 0");
  reconnect.validate();
}

namespace {

void init_library() {
  static std::once_flag once;
  std::call_once(once, [] { mysql_library_init(0, nullptr, nullptr); });
}

Error error(Errc code, std::string message) {
  return Error{code, 0, {}, std::move(message)};
}

std::string ms_text(Clock::duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

constexpr int kTimerFired = 1 << 16;
constexpr int kIoEvents = MYSQL_WAIT_READ | MYSQL_WAIT_WRITE | MYSQL_WAIT_EXCEPT;

template <typename Sig, typename Arg>
void complete_later(asio::any_completion_handler<Sig> h, Arg r, const asio::any_io_executor& ex) {
  asio::post(ex, asio::append(std::move(h), std::move(r)));
}

}  // namespace

// ---- one connection -----------------------------------------------------------------------------

struct Connection::Impl {
  Impl(asio::any_io_executor executor, ConnectSettings s)
      : ex(std::move(executor)), settings(std::move(s)), sd(ex), timer(ex) {}
  ~Impl() { close(); }

  struct CachedStmt {
    MYSQL_STMT* stmt;
    std::uint64_t last_used;
  };

  asio::any_io_executor ex;
  ConnectSettings settings;
  MYSQL* m = nullptr;
  asio::posix::stream_descriptor sd;  // watches the library's socket; release()d, never closed
  int watched_fd = -1;
  asio::steady_timer timer;
  bool usable = false;
  bool busy = false;             // an operation is in flight
  bool close_when_idle = false;  // the Connection was destroyed while busy
  bool unwind_failed = false;    // the library did not finish an abandoned operation
  std::unordered_map<std::string, CachedStmt> stmts;
  std::uint64_t tick = 0;
  std::uint64_t idle_watch = 0;  // generation of the idle watch; bumped to end it

  // Watches the library's current socket; false if it has none.
  bool watch_socket() {
    const int fd = static_cast<int>(mysql_get_socket(m));
    if (fd < 0) return false;
    if (fd == watched_fd && sd.is_open()) return true;
    if (sd.is_open()) sd.release();
    error_code ec;
    sd.assign(fd, ec);
    watched_fd = ec ? -1 : fd;
    return !ec;
  }

  void close() {
    if (m == nullptr) return;
    usable = false;
    ++idle_watch;
    timer.cancel();
    if (sd.is_open()) sd.release();  // before the library closes the fd
    watched_fd = -1;
    mysql_close(m);  // COM_QUIT if the session is up (a small write; fails at once if shut down)
    m = nullptr;
    // mysql_close detached the statements from the connection: closing them now only frees memory.
    for (auto& [sql, cached] : stmts)
      mysql_stmt_close(cached.stmt);
    stmts.clear();
  }

  // Marks the connection unusable, closes it and returns `e` (for `co_return c.fail(...)`).
  Error fail(Error e) {
    close();
    return e;
  }

  std::optional<Error> begin_op() {
    if (m == nullptr || !usable) return error(Errc::connection_lost, "connection is closed");
    if (busy) return error(Errc::invalid_argument, "connection busy: one operation at a time");
    busy = true;
    end_idle_watch();
    return std::nullopt;
  }
  void end_idle_watch() {
    ++idle_watch;
    error_code ec;
    if (sd.is_open()) sd.cancel(ec);
  }
  void end_op() {
    busy = false;
    if (close_when_idle) close();
  }
};

namespace {

struct OpGuard {
  explicit OpGuard(Connection::Impl& conn) : c(conn) {}
  ~OpGuard() { c.end_op(); }
  OpGuard(const OpGuard&) = delete;
  OpGuard& operator=(const OpGuard&) = delete;
  Connection::Impl& c;
};

// Waits for the socket events in `status` or until `wake`. Completes with the MYSQL_WAIT_* bits
// that occurred (| kTimerFired if the timer expired), or -1 if cancelled.
struct EventWait {
  EventWait(Connection::Impl& conn, asio::any_completion_handler<void(int)> h)
      : c(conn), handler(std::move(h)) {}
  Connection::Impl& c;
  asio::any_completion_handler<void(int)> handler;
  asio::cancellation_slot slot;
  int outstanding = 0;
  int events = 0;
  bool settled = false;
  bool cancelled = false;

  void settle() {
    if (settled) return;
    settled = true;
    error_code ec;
    c.sd.cancel(ec);
    c.timer.cancel();
  }
  void done_one(int ev) {
    events |= ev;
    settle();
    if (--outstanding > 0) return;
    if (slot.is_connected()) slot.clear();
    auto h = std::move(handler);
    std::move(h)(cancelled ? -1 : events);
  }
};

template <typename Token>
auto async_wait_events(Connection::Impl& c, int status, Clock::time_point wake, Token&& token) {
  return asio::async_initiate<Token, void(int)>(
      [&c, status, wake](auto handler) {
        auto w = std::make_shared<EventWait>(c, asio::any_completion_handler<void(int)>(std::move(handler)));
        w->slot = asio::get_associated_cancellation_slot(w->handler);
        if ((status & MYSQL_WAIT_READ) != 0) {
          ++w->outstanding;
          c.sd.async_wait(asio::posix::stream_descriptor::wait_read,
                          [w](const error_code& ec) { w->done_one(ec ? 0 : MYSQL_WAIT_READ); });
        }
        if ((status & MYSQL_WAIT_WRITE) != 0) {
          ++w->outstanding;
          c.sd.async_wait(asio::posix::stream_descriptor::wait_write,
                          [w](const error_code& ec) { w->done_one(ec ? 0 : MYSQL_WAIT_WRITE); });
        }
        ++w->outstanding;
        c.timer.expires_at(wake);
        c.timer.async_wait([w](const error_code& ec) { w->done_one(ec ? 0 : kTimerFired); });
        if (w->slot.is_connected()) {
          w->slot.assign([weak = std::weak_ptr<EventWait>(w)](asio::cancellation_type) {
            if (auto p = weak.lock()) {
              p->cancelled = true;
              p->settle();
            }
          });
        }
      },
      token);
}

enum class Outcome { done, deadline, cancelled, no_socket };

// Finishes an operation we gave up on: every further I/O fails at once, so the library completes
// it (with an error) and frees its state. See the comment at the top of the file.
template <typename Cont>
void unwind(Connection::Impl& c, int status, Cont& cont) {
  c.usable = false;
  const int fd = static_cast<int>(mysql_get_socket(c.m));
  if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
  for (int i = 0; status != 0 && i < 64; ++i)
    status = cont((status & MYSQL_WAIT_TIMEOUT) != 0 ? MYSQL_WAIT_TIMEOUT : (status & kIoEvents));
  if (status != 0) {
    c.unwind_failed = true;
    common::log::warn("mysql operation did not unwind after shutdown; closing the connection anyway");
  }
}

// Runs one non-blocking operation to completion, or until `deadline` / cancellation.
template <typename Start, typename Cont>
asio::awaitable<Outcome> drive(Connection::Impl& c, Deadline deadline, Start start, Cont cont) {
  int status = start();
  while (status != 0) {
    if (!c.watch_socket() && (status & kIoEvents) != 0) {
      unwind(c, status, cont);
      co_return Outcome::no_socket;
    }
    Clock::time_point wake = deadline.at();
    if ((status & MYSQL_WAIT_TIMEOUT) != 0)
      wake = std::min(wake, Clock::now() + std::chrono::milliseconds(mysql_get_timeout_value_ms(c.m)));
    const int ev = co_await async_wait_events(c, status, wake, asio::use_awaitable);
    if (ev < 0) {
      unwind(c, status, cont);
      co_return Outcome::cancelled;
    }
    int happened = ev & kIoEvents;
    if (happened == 0) {
      if (Clock::now() >= deadline.at()) {
        unwind(c, status, cont);
        co_return Outcome::deadline;
      }
      if ((ev & kTimerFired) == 0) continue;  // woken without an event: wait again
      happened = MYSQL_WAIT_TIMEOUT;          // the library's own timeout
    }
    status = cont(happened);
  }
  co_return Outcome::done;
}

Error outcome_error(Outcome o, std::string_view what, Clock::duration budget) {
  switch (o) {
    case Outcome::deadline:
      return error(Errc::timeout,
                   std::string(what) + " did not finish within its deadline (" + ms_text(budget) + ")");
    case Outcome::cancelled:
      return error(Errc::cancelled, std::string(what) + " cancelled");
    case Outcome::no_socket:
    case Outcome::done:
      break;
  }
  return error(Errc::connection_lost, std::string(what) + ": the connection has no socket");
}

Error stmt_error(MYSQL_STMT* stmt) {
  return detail::make_error(mysql_stmt_errno(stmt), mysql_stmt_sqlstate(stmt), mysql_stmt_error(stmt));
}

Error conn_error(MYSQL* m) {
  return detail::make_error(mysql_errno(m), mysql_sqlstate(m), mysql_error(m));
}

// For a failure once the statement was handed to the library to send: unless the server itself
// answered with an error (it refused or aborted the statement), the statement may have run.
Error after_send(Error e) {
  e.outcome_unknown = e.code != Errc::server;
  return e;
}

// Reads every row of a stored prepared-statement result (no I/O: the rows are in memory).
std::optional<Error> read_stmt_rows(MYSQL_STMT* stmt, ResultSet& rs) {
  MYSQL_RES* meta = mysql_stmt_result_metadata(stmt);
  if (meta == nullptr) return stmt_error(stmt);
  const unsigned n = mysql_num_fields(meta);
  const MYSQL_FIELD* fields = mysql_fetch_fields(meta);
  rs.columns.reserve(n);
  for (unsigned i = 0; i < n; ++i)
    rs.columns.emplace_back(fields[i].name, fields[i].name_length);
  detail::ResultBuffers buf;
  detail::prepare_result_buffers(fields, n, buf);
  mysql_free_result(meta);
  if (mysql_stmt_bind_result(stmt, buf.binds.data()) != 0) return stmt_error(stmt);
  for (;;) {
    const int f = mysql_stmt_fetch(stmt);
    if (f == MYSQL_NO_DATA) break;
    if (f == 1) return stmt_error(stmt);
    if (f == MYSQL_DATA_TRUNCATED) {
      bool rebound = false;
      for (unsigned i = 0; i < n; ++i) {
        if (buf.kinds[i] != detail::ColumnKind::bytes || buf.errors[i] == 0) continue;
        detail::rebind_bytes(buf, i, buf.lengths[i]);
        if (mysql_stmt_fetch_column(stmt, &buf.binds[i], i, 0) != 0) return stmt_error(stmt);
        rebound = true;
      }
      // The library keeps its own copy of the binds: point it at the resized buffers.
      if (rebound && mysql_stmt_bind_result(stmt, buf.binds.data()) != 0) return stmt_error(stmt);
    }
    rs.rows.push_back(detail::read_row(buf));
  }
  return std::nullopt;
}

}  // namespace

Connection::Connection(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Connection::~Connection() {
  if (impl_->busy) {
    impl_->close_when_idle = true;  // the operation in flight closes it when it ends
  } else {
    impl_->close();
  }
}

bool Connection::usable() const {
  return impl_->m != nullptr && impl_->usable;
}

bool Connection::in_transaction() const {
  if (impl_->m == nullptr) return false;
  unsigned int status = 0;
  mariadb_get_infov(impl_->m, MARIADB_CONNECTION_SERVER_STATUS, &status);
  return (status & SERVER_STATUS_IN_TRANS) != 0;
}

void Connection::close() {
  if (impl_->busy) {
    impl_->close_when_idle = true;
  } else {
    impl_->close();
  }
}

Connection::executor_type Connection::get_executor() const {
  return impl_->ex;
}

void Connection::watch_idle(std::function<void()> on_lost) {
  Impl& c = *impl_;
  if (c.m == nullptr || !c.usable || c.busy || !c.watch_socket()) return;
  const std::uint64_t generation = ++c.idle_watch;
  c.sd.async_wait(asio::posix::stream_descriptor::wait_read, [weak = std::weak_ptr<Impl>(impl_), generation,
                                                              cb = std::move(on_lost)](const error_code& ec) {
    if (ec) return;
    auto self = weak.lock();
    if (!self || self->busy || self->idle_watch != generation || self->m == nullptr) return;
    self->close();
    if (cb) cb();
  });
}

asio::awaitable<Result<std::unique_ptr<Connection>>> Connection::connect(executor_type executor,
                                                                         ConnectSettings settings,
                                                                         Deadline deadline) {
  try {
    settings.validate();
  } catch (const std::invalid_argument& e) {
    co_return error(Errc::invalid_argument, e.what());
  }
  init_library();
  ignore_sigpipe();
  auto self = std::make_shared<Impl>(std::move(executor), std::move(settings));
  Impl& c = *self;
  c.m = mysql_init(nullptr);
  if (c.m == nullptr) co_return error(Errc::connect_failed, "mysql_init failed (out of memory)");
  mysql_options(c.m, MYSQL_OPT_NONBLOCK, nullptr);
  unsigned protocol = MYSQL_PROTOCOL_TCP;
  mysql_options(c.m, MYSQL_OPT_PROTOCOL, &protocol);
  mysql_options(c.m, MYSQL_SET_CHARSET_NAME, c.settings.charset.c_str());
  // Whole seconds only; it makes the library offer MYSQL_WAIT_TIMEOUT during connect, so that an
  // abandoned TCP connect unwinds cleanly. Our own (exact) deadline is always the shorter one.
  unsigned connect_seconds = static_cast<unsigned>((c.settings.connect_timeout.count() + 999) / 1000) + 1;
  mysql_options(c.m, MYSQL_OPT_CONNECT_TIMEOUT, &connect_seconds);
  my_bool no = 0;
  mysql_options(c.m, MYSQL_OPT_RECONNECT, &no);
  unsigned no_local_infile = 0;
  mysql_options(c.m, MYSQL_OPT_LOCAL_INFILE, &no_local_infile);
  if (!c.settings.source_address.empty())
    mysql_optionsv(c.m, MYSQL_OPT_BIND, c.settings.source_address.c_str());

  const Deadline d = min(deadline, Deadline(c.settings.connect_timeout));
  const auto budget = d.remaining();
  MYSQL* ret = nullptr;
  const char* db = c.settings.database.empty() ? nullptr : c.settings.database.c_str();
  const Outcome out = co_await drive(
      c, d,
      [&] {
        return mysql_real_connect_start(&ret, c.m, c.settings.host.c_str(), c.settings.user.c_str(),
                                        c.settings.password.c_str(), db, c.settings.port, nullptr, 0);
      },
      [&](int ev) { return mysql_real_connect_cont(&ret, c.m, ev); });
  if (out != Outcome::done) co_return c.fail(outcome_error(out, "connect", budget));
  if (ret == nullptr) {
    Error e = conn_error(c.m);
    e.code = Errc::connect_failed;
    co_return c.fail(std::move(e));
  }
  c.usable = true;
  co_return std::make_unique<Connection>(std::move(self));
}

asio::awaitable<Result<ResultSet>> Connection::execute(std::string sql, std::vector<Value> params,
                                                       Deadline deadline) {
  auto self = impl_;  // keeps the state alive even if the Connection goes away meanwhile
  Impl& c = *self;
  if (auto e = c.begin_op()) co_return std::move(*e);
  OpGuard guard(c);
  const auto budget = deadline.remaining();

  // 1. The prepared statement: from the cache, or prepared now (evicting the least recently used).
  MYSQL_STMT* stmt = nullptr;
  if (auto it = c.stmts.find(sql); it != c.stmts.end()) {
    stmt = it->second.stmt;
    it->second.last_used = ++c.tick;
  } else {
    if (c.stmts.size() >= c.settings.statement_cache_size) {
      auto victim = c.stmts.begin();
      for (auto it2 = c.stmts.begin(); it2 != c.stmts.end(); ++it2)
        if (it2->second.last_used < victim->second.last_used) victim = it2;
      MYSQL_STMT* old = victim->second.stmt;
      c.stmts.erase(victim);
      my_bool close_rc = 0;
      const Outcome out = co_await drive(
          c, deadline, [&] { return mysql_stmt_close_start(&close_rc, old); },
          [&](int ev) { return mysql_stmt_close_cont(&close_rc, old, ev); });
      if (out != Outcome::done) co_return c.fail(outcome_error(out, "statement close", budget));
      if (close_rc != 0) co_return c.fail(conn_error(c.m));
    }
    stmt = mysql_stmt_init(c.m);
    if (stmt == nullptr) co_return c.fail(conn_error(c.m));
    c.stmts.emplace(sql, Impl::CachedStmt{stmt, ++c.tick});  // owned by the cache from here on
    int rc = 0;
    const Outcome out = co_await drive(
        c, deadline,
        [&] {
          return mysql_stmt_prepare_start(&rc, stmt, sql.data(), static_cast<unsigned long>(sql.size()));
        },
        [&](int ev) { return mysql_stmt_prepare_cont(&rc, stmt, ev); });
    if (out != Outcome::done) co_return c.fail(outcome_error(out, "prepare", budget));
    if (rc != 0) {
      Error e = stmt_error(stmt);
      if (e.code == Errc::connection_lost) co_return c.fail(std::move(e));
      c.stmts.erase(sql);
      mysql_stmt_close(stmt);  // never prepared on the server: frees memory only
      co_return e;
    }
  }

  // 2. Parameters.
  if (mysql_stmt_param_count(stmt) != params.size())
    co_return error(Errc::invalid_argument, "statement has " + std::to_string(mysql_stmt_param_count(stmt)) +
                                                " placeholders, " + std::to_string(params.size()) +
                                                " parameters given");
  detail::BoundParams bound = detail::bind_params(params);
  if (!bound.binds.empty() && mysql_stmt_bind_param(stmt, bound.binds.data()) != 0) {
    Error e = stmt_error(stmt);
    e.code = Errc::invalid_argument;
    co_return e;
  }

  // 3. Execute, then read the whole result. From here on every failure goes through after_send():
  //    the statement is on its way to the server (or ran), so unless the server answered with an
  //    error, it may have taken effect.
  int rc = 0;
  Outcome out = co_await drive(
      c, deadline, [&] { return mysql_stmt_execute_start(&rc, stmt); },
      [&](int ev) { return mysql_stmt_execute_cont(&rc, stmt, ev); });
  if (out != Outcome::done) co_return after_send(c.fail(outcome_error(out, "execute", budget)));
  if (rc != 0) {
    Error e = stmt_error(stmt);
    if (e.code == Errc::connection_lost) co_return after_send(c.fail(std::move(e)));
    co_return after_send(std::move(e));
  }
  ResultSet rs;
  if (mysql_stmt_field_count(stmt) > 0) {
    my_bool update_max_length = 1;
    mysql_stmt_attr_set(stmt, STMT_ATTR_UPDATE_MAX_LENGTH, &update_max_length);
    out = co_await drive(
        c, deadline, [&] { return mysql_stmt_store_result_start(&rc, stmt); },
        [&](int ev) { return mysql_stmt_store_result_cont(&rc, stmt, ev); });
    if (out != Outcome::done) co_return after_send(c.fail(outcome_error(out, "reading the result", budget)));
    if (rc != 0) {
      Error e = stmt_error(stmt);
      if (e.code == Errc::connection_lost) co_return after_send(c.fail(std::move(e)));
      co_return after_send(std::move(e));
    }
    auto read_error = read_stmt_rows(stmt, rs);
    mysql_stmt_free_result(stmt);  // stored: frees memory only
    if (read_error) {
      if (read_error->code == Errc::connection_lost) co_return after_send(c.fail(std::move(*read_error)));
      co_return after_send(std::move(*read_error));
    }
  } else {
    rs.affected_rows = mysql_stmt_affected_rows(stmt);
  }
  rs.last_insert_id = mysql_stmt_insert_id(stmt);
  rs.warnings = mysql_warning_count(c.m);
  if (mysql_more_results(c.m))
    co_return after_send(
        c.fail(error(Errc::invalid_argument, "statements returning several result sets are not supported")));
  co_return rs;
}

asio::awaitable<Result<ResultSet>> Connection::query(std::string sql, Deadline deadline) {
  auto self = impl_;
  Impl& c = *self;
  if (auto e = c.begin_op()) co_return std::move(*e);
  OpGuard guard(c);
  const auto budget = deadline.remaining();
  int rc = 0;
  Outcome out = co_await drive(
      c, deadline,
      [&] { return mysql_real_query_start(&rc, c.m, sql.data(), static_cast<unsigned long>(sql.size())); },
      [&](int ev) { return mysql_real_query_cont(&rc, c.m, ev); });
  // As in execute(): once the statement is sent, failures go through after_send().
  if (out != Outcome::done) co_return after_send(c.fail(outcome_error(out, "query", budget)));
  if (rc != 0) {
    Error e = conn_error(c.m);
    if (e.code == Errc::connection_lost) co_return after_send(c.fail(std::move(e)));
    co_return after_send(std::move(e));
  }
  ResultSet rs;
  if (mysql_field_count(c.m) > 0) {
    MYSQL_RES* res = nullptr;
    out = co_await drive(
        c, deadline, [&] { return mysql_store_result_start(&res, c.m); },
        [&](int ev) { return mysql_store_result_cont(&res, c.m, ev); });
    if (out != Outcome::done) co_return after_send(c.fail(outcome_error(out, "reading the result", budget)));
    if (res == nullptr) {
      Error e = conn_error(c.m);
      if (e.code == Errc::connection_lost) co_return after_send(c.fail(std::move(e)));
      co_return after_send(std::move(e));
    }
    const unsigned n = mysql_num_fields(res);
    const MYSQL_FIELD* fields = mysql_fetch_fields(res);
    for (unsigned i = 0; i < n; ++i)
      rs.columns.emplace_back(fields[i].name, fields[i].name_length);
    while (MYSQL_ROW row = mysql_fetch_row(res)) {  // stored: no I/O
      const unsigned long* lengths = mysql_fetch_lengths(res);
      Row r;
      r.reserve(n);
      for (unsigned i = 0; i < n; ++i)
        r.push_back(detail::text_value(row[i], lengths[i], fields[i]));
      rs.rows.push_back(std::move(r));
    }
    mysql_free_result(res);
  } else {
    rs.affected_rows = mysql_affected_rows(c.m);
    rs.last_insert_id = mysql_insert_id(c.m);
  }
  rs.warnings = mysql_warning_count(c.m);
  if (mysql_more_results(c.m))
    co_return after_send(
        c.fail(error(Errc::invalid_argument, "statements returning several result sets are not supported")));
  co_return rs;
}

asio::awaitable<Result<void>> Connection::ping(Deadline deadline) {
  auto self = impl_;
  Impl& c = *self;
  if (auto e = c.begin_op()) co_return std::move(*e);
  OpGuard guard(c);
  const auto budget = deadline.remaining();
  int rc = 0;
  const Outcome out = co_await drive(
      c, deadline, [&] { return mysql_ping_start(&rc, c.m); },
      [&](int ev) { return mysql_ping_cont(&rc, c.m, ev); });
  if (out != Outcome::done) co_return c.fail(outcome_error(out, "ping", budget));
  if (rc != 0) {
    Error e = conn_error(c.m);
    e.code = Errc::connection_lost;
    co_return c.fail(std::move(e));
  }
  co_return Result<void>();
}

namespace {
asio::awaitable<Result<void>> run_void(Connection& conn, std::string sql, Deadline deadline) {
  auto r = co_await conn.query(std::move(sql), deadline);
  if (!r) co_return r.error();
  co_return Result<void>();
}
}  // namespace

asio::awaitable<Result<void>> Connection::begin(Deadline deadline) {
  return run_void(*this, "START TRANSACTION", deadline);
}
asio::awaitable<Result<void>> Connection::commit(Deadline deadline) {
  return run_void(*this, "COMMIT", deadline);
}
asio::awaitable<Result<void>> Connection::rollback(Deadline deadline) {
  return run_void(*this, "ROLLBACK", deadline);
}

// ---- the pool -----------------------------------------------------------------------------------

using ConnectionHandler = asio::any_completion_handler<void(Result<std::unique_ptr<Connection>>)>;

struct PoolWaiter {
  explicit PoolWaiter(const asio::any_io_executor& ex) : timer(ex) {}
  std::optional<ConnectionHandler> handler;  // empty once completed
  asio::steady_timer timer;
  asio::cancellation_slot slot;
};

struct Lease::PoolRef : std::enable_shared_from_this<Lease::PoolRef> {
  PoolRef(asio::any_io_executor executor, PoolSettings s)
      : ex(std::move(executor)),
        settings(std::move(s)),
        backoff(settings.reconnect),
        wake(ex),
        retry(ex),
        maintenance_timer(ex) {
    status.since = std::chrono::system_clock::now();
  }

  struct Idle {
    std::unique_ptr<Connection> conn;
    Clock::time_point since;      // returned to the pool (for max_idle)
    Clock::time_point validated;  // last known good (returned or pinged)
  };

  asio::any_io_executor ex;
  PoolSettings settings;
  PoolStatus status;
  Backoff backoff;
  std::deque<Idle> idle;  // front: least recently used
  std::size_t in_use = 0;
  std::size_t connecting = 0;
  std::deque<std::shared_ptr<PoolWaiter>> waiters;
  std::size_t live_waiters = 0;
  asio::steady_timer wake;  // the connector sleeps on it; notify() cancels it
  asio::steady_timer retry;
  asio::steady_timer maintenance_timer;
  asio::cancellation_signal connector_cancel, maintenance_cancel;
  bool started = false;
  bool stopped = false;
  bool failure_logged = false;
  bool attempting_now = false;          // an acquire() asked for an attempt at once: others wait for it too
  Clock::time_point validate_before{};  // idle connections older than this are pinged before use

  std::size_t open() const { return idle.size() + in_use; }

  void set_state(PoolState s) {
    if (status.state == s) return;
    status.state = s;
    status.since = std::chrono::system_clock::now();
  }

  void notify() { wake.cancel(); }

  // Has the connector try at once instead of sleeping out its backoff (while attempts are refused).
  void attempt_now() {
    if (attempting_now) return;
    attempting_now = true;
    retry.cancel();
  }

  bool needs_check(const Idle& item, Clock::time_point now) const {
    return item.validated < validate_before || now - item.validated >= settings.ping_idle_after;
  }

  bool wants_connection() const {
    if (stopped || open() + connecting >= settings.max_size) return false;
    return open() < settings.min_size || live_waiters > connecting;
  }

  // Gives `conn` to the oldest live waiter; false if there is none.
  bool hand_off(std::unique_ptr<Connection>& conn) {
    while (!waiters.empty()) {
      auto w = std::move(waiters.front());
      waiters.pop_front();
      if (!w->handler) continue;
      ConnectionHandler h(std::move(*w->handler));
      w->handler.reset();
      --live_waiters;
      w->timer.cancel();
      if (w->slot.is_connected()) w->slot.clear();
      ++in_use;
      complete_later(std::move(h), Result<std::unique_ptr<Connection>>(std::move(conn)), ex);
      return true;
    }
    return false;
  }

  void complete_waiter(const std::shared_ptr<PoolWaiter>& w, Error e) {
    if (!w->handler) return;
    ConnectionHandler h(std::move(*w->handler));
    w->handler.reset();
    --live_waiters;
    w->timer.cancel();
    complete_later(std::move(h), Result<std::unique_ptr<Connection>>(std::move(e)), ex);
  }

  void fail_waiters(Errc code, const std::string& message) {
    auto list = std::move(waiters);
    waiters.clear();
    for (auto& w : list) {
      if (w->handler && w->slot.is_connected()) w->slot.clear();
      if (w->handler && code == Errc::unavailable) ++status.counters.rejected_unavailable;
      complete_waiter(w, error(code, message));
    }
  }

  void add_waiter(Deadline deadline, ConnectionHandler handler) {
    auto w = std::make_shared<PoolWaiter>(ex);
    w->handler.emplace(std::move(handler));
    w->slot = asio::get_associated_cancellation_slot(*w->handler);
    waiters.push_back(w);
    ++live_waiters;
    w->timer.expires_at(deadline.at());
    w->timer.async_wait([self = shared_from_this(), w, budget = deadline.remaining()](const error_code& ec) {
      if (ec || !w->handler) return;
      if (w->slot.is_connected()) w->slot.clear();
      ++self->status.counters.acquire_timeouts;
      self->complete_waiter(
          w, error(Errc::timeout, "no connection available within the deadline (" + ms_text(budget) + ", " +
                                      std::to_string(self->open()) + " open, all in use)"));
    });
    if (w->slot.is_connected()) {
      w->slot.assign(
          [weak_self = weak_from_this(), weak_w = std::weak_ptr<PoolWaiter>(w)](asio::cancellation_type) {
            auto self = weak_self.lock();
            auto waiter = weak_w.lock();
            if (self && waiter) self->complete_waiter(waiter, error(Errc::cancelled, "acquire cancelled"));
          });
    }
    notify();
  }

  // Parks `conn` as idle (at the back: most recently used, or the front) and watches it, so that
  // a server-side close removes it from the pool at once.
  void push_idle(std::unique_ptr<Connection> conn, Clock::time_point since, Clock::time_point validated,
                 bool front = false) {
    Connection* raw = conn.get();
    if (front) {
      idle.push_front(Idle{std::move(conn), since, validated});
    } else {
      idle.push_back(Idle{std::move(conn), since, validated});
    }
    raw->watch_idle([weak = weak_from_this(), raw] {
      auto self = weak.lock();
      if (!self) return;
      auto it = std::find_if(self->idle.begin(), self->idle.end(),
                             [raw](const Idle& i) { return i.conn.get() == raw; });
      if (it == self->idle.end()) return;
      self->idle.erase(it);
      ++self->status.counters.discarded;
      self->status.last_error = "the server closed an idle connection";
      self->validate_before = Clock::now();
      self->notify();
    });
  }

  void release(std::unique_ptr<Connection> conn) {
    if (in_use > 0) --in_use;
    if (stopped || !conn->usable() || conn->in_transaction()) {
      if (!stopped) {
        ++status.counters.discarded;
        if (!conn->usable()) validate_before = Clock::now();
      }
      conn.reset();
      notify();
      return;
    }
    if (hand_off(conn)) return;
    const auto now = Clock::now();
    push_idle(std::move(conn), now, now);
  }

  void stop() {
    if (stopped) return;
    stopped = true;
    connector_cancel.emit(asio::cancellation_type::terminal);
    maintenance_cancel.emit(asio::cancellation_type::terminal);
    wake.cancel();
    retry.cancel();
    maintenance_timer.cancel();
    idle.clear();
    fail_waiters(Errc::stopped, "pool stopped");
    set_state(PoolState::stopped);
  }
};

namespace {

// A connect attempt that the host refused at once: a client-side error (Connector/C's 2xxx:
// refused, reset, lost during the handshake) that is not our own timeout. Server errors (a login
// rejected, an unknown database) and timeouts back off.
bool refused_attempt(const Error& e) {
  return e.code == Errc::connect_failed && e.server_errno >= 2000 && e.server_errno < 3000;
}

template <typename Token>
auto async_wait_connection(const std::shared_ptr<Lease::PoolRef>& p, Deadline deadline, Token&& token) {
  return asio::async_initiate<Token, void(Result<std::unique_ptr<Connection>>)>(
      [p, deadline](auto handler) { p->add_waiter(deadline, ConnectionHandler(std::move(handler))); }, token);
}

// Keeps min_size connections open and opens more for waiters, up to max_size; paces failed
// attempts with the backoff. One attempt at a time.
asio::awaitable<void> connector(std::shared_ptr<Lease::PoolRef> p) {
  co_await asio::this_coro::throw_if_cancelled(false);
  while (!p->stopped) {
    if (!p->wants_connection()) {
      p->wake.expires_at(Clock::time_point::max());
      co_await p->wake.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    ++p->connecting;
    auto r =
        co_await Connection::connect(p->ex, p->settings.connection, p->settings.connection.connect_timeout);
    --p->connecting;
    if (p->stopped) break;
    p->attempting_now = false;
    if (!r) {
      ++p->status.counters.connect_failures;
      p->status.last_error = r.error().message;
      p->status.refused = refused_attempt(r.error());
      if (p->open() == 0) {
        p->set_state(PoolState::down);
        p->fail_waiters(Errc::unavailable, "cannot connect to MariaDB: " + r.error().message);
      }
      if (!p->failure_logged) {
        common::log::warn("mysql connect failed, retrying with backoff",
                          {{"pool", p->settings.name}, {"error", r.error().message}});
        p->failure_logged = true;
      }
      p->retry.expires_after(p->backoff.next(p->status.refused ? AttemptError::refused : AttemptError::slow));
      co_await p->retry.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    ++p->status.counters.connects;
    p->backoff.reset();
    if (p->status.state != PoolState::up)
      common::log::info("mysql pool up", {{"pool", p->settings.name},
                                          {"address", p->settings.connection.host + ":" +
                                                          std::to_string(p->settings.connection.port)}});
    p->failure_logged = false;
    p->set_state(PoolState::up);
    std::unique_ptr<Connection> conn = std::move(*r);
    if (!p->hand_off(conn)) {
      const auto now = Clock::now();
      p->push_idle(std::move(conn), now, now);
    }
  }
}

// Closes connections idle longer than max_idle (beyond min_size) and pings those that need it.
asio::awaitable<void> maintenance(std::shared_ptr<Lease::PoolRef> p) {
  co_await asio::this_coro::throw_if_cancelled(false);
  while (!p->stopped) {
    p->maintenance_timer.expires_after(p->settings.maintenance_interval);
    co_await p->maintenance_timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (p->stopped) break;
    auto now = Clock::now();
    while (!p->idle.empty() && p->open() > p->settings.min_size &&
           now - p->idle.front().since > p->settings.max_idle) {
      p->idle.pop_front();
      ++p->status.counters.recycled;
      p->notify();
    }
    // Each idle connection is checked at most once per round (the deque changes while we ping).
    std::size_t budget = p->idle.size();
    while (budget-- > 0 && !p->stopped) {
      now = Clock::now();
      auto it =
          std::find_if(p->idle.begin(), p->idle.end(), [&](const auto& i) { return p->needs_check(i, now); });
      if (it == p->idle.end()) break;
      Lease::PoolRef::Idle item = std::move(*it);
      p->idle.erase(it);
      ++p->in_use;
      auto r = co_await item.conn->ping(Deadline(p->settings.health_check_timeout));
      --p->in_use;
      if (!r || p->stopped) {
        if (!r && !p->stopped) {
          ++p->status.counters.health_check_failures;
          ++p->status.counters.discarded;
          p->status.last_error = r.error().message;
          p->validate_before = Clock::now();
        }
        item.conn.reset();
        p->notify();
        continue;
      }
      if (!p->hand_off(item.conn)) p->push_idle(std::move(item.conn), item.since, Clock::now(), true);
    }
  }
}

void spawn(const std::shared_ptr<Lease::PoolRef>& p, asio::awaitable<void> a,
           asio::cancellation_signal& signal, const char* what) {
  asio::co_spawn(p->ex, std::move(a),
                 asio::bind_cancellation_slot(signal.slot(), [what](std::exception_ptr e) {
                   if (!e) return;
                   try {
                     std::rethrow_exception(e);
                   } catch (const std::exception& ex) {
                     common::log::error("mysql pool task failed", {{"task", what}, {"error", ex.what()}});
                   }
                 }));
}

}  // namespace

Lease::Lease(std::shared_ptr<PoolRef> pool, std::unique_ptr<Connection> conn)
    : pool_(std::move(pool)), conn_(std::move(conn)) {}

Lease& Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    release();
    pool_ = std::move(other.pool_);
    conn_ = std::move(other.conn_);
  }
  return *this;
}

Lease::~Lease() {
  release();
}

void Lease::release() {
  if (conn_ && pool_) pool_->release(std::move(conn_));
  conn_.reset();
  pool_.reset();
}

Pool::Pool(executor_type executor, PoolSettings settings) {
  settings.validate();
  init_library();
  ignore_sigpipe();
  impl_ = std::make_shared<Lease::PoolRef>(std::move(executor), std::move(settings));
}

Pool::~Pool() {
  impl_->stop();
}

void Pool::start() {
  auto& p = *impl_;
  if (p.started || p.stopped) return;
  p.started = true;
  p.set_state(PoolState::starting);
  spawn(impl_, connector(impl_), p.connector_cancel, "connector");
  spawn(impl_, maintenance(impl_), p.maintenance_cancel, "maintenance");
}

void Pool::stop() {
  impl_->stop();
}

asio::awaitable<Result<Lease>> Pool::acquire(Deadline deadline) {
  auto p = impl_;
  for (;;) {
    if (p->stopped) co_return error(Errc::stopped, "pool stopped");
    if (!p->started) co_return error(Errc::unavailable, "pool not started");
    while (!p->idle.empty()) {
      Lease::PoolRef::Idle item = std::move(p->idle.back());  // most recently used: warmest
      p->idle.pop_back();
      ++p->in_use;
      if (p->needs_check(item, Clock::now())) {
        auto r = co_await item.conn->ping(min(deadline, Deadline(p->settings.health_check_timeout)));
        if (!r) {
          --p->in_use;
          ++p->status.counters.health_check_failures;
          ++p->status.counters.discarded;
          p->validate_before = Clock::now();
          item.conn.reset();
          p->notify();
          if (deadline.expired()) {
            ++p->status.counters.acquire_timeouts;
            co_return error(Errc::timeout, "no healthy connection within the deadline");
          }
          continue;
        }
      }
      ++p->status.counters.acquired;
      co_return Lease(p, std::move(item.conn));
    }
    if (p->status.state == PoolState::down && p->open() == 0) {
      if (!p->status.refused) {
        ++p->status.counters.rejected_unavailable;
        co_return error(Errc::unavailable, "cannot connect to MariaDB: " + p->status.last_error);
      }
      // Refused at once until now: worth one attempt at once rather than a refusal until the
      // backoff's next one (it costs a refused connect while MariaDB is still down).
      p->attempt_now();
    }
    if (p->live_waiters >= p->settings.max_waiters) {
      ++p->status.counters.rejected_exhausted;
      co_return error(Errc::pool_exhausted, std::to_string(p->live_waiters) + " callers already waiting");
    }
    if (deadline.expired()) {
      ++p->status.counters.acquire_timeouts;
      co_return error(Errc::timeout, "deadline passed before a connection was available");
    }
    auto r = co_await async_wait_connection(p, deadline, asio::use_awaitable);
    if (!r) co_return r.error();
    ++p->status.counters.acquired;
    co_return Lease(p, std::move(*r));
  }
}

asio::awaitable<bool> Pool::connect_now(Deadline deadline) {
  auto p = impl_;
  if (p->stopped || !p->started) co_return false;
  if (p->open() > 0) co_return true;
  if (p->status.state == PoolState::down && !p->status.refused) co_return false;
  // acquire() starts the attempt; its connection is handed to this waiter and goes back to the pool
  // when the lease ends.
  auto lease = co_await acquire(deadline);
  co_return lease.has_value();
}

asio::awaitable<Result<ResultSet>> Pool::execute(std::string sql, std::vector<Value> params,
                                                 Deadline deadline) {
  auto lease = co_await acquire(deadline);
  if (!lease) co_return lease.error();
  Lease l = std::move(*lease);
  co_return co_await l->execute(std::move(sql), std::move(params), deadline);
}

PoolStatus Pool::status() const {
  const auto& p = *impl_;
  PoolStatus s = p.status;
  s.idle = p.idle.size();
  s.in_use = p.in_use;
  s.open = p.open();
  s.connecting = p.connecting;
  s.waiters = p.live_waiters;
  return s;
}

const PoolSettings& Pool::settings() const {
  return impl_->settings;
}

Pool::executor_type Pool::get_executor() const {
  return impl_->ex;
}

}  // namespace clients::mysql
