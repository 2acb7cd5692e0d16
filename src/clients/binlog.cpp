// The binlog reader: one thread per reader runs Connector/C's (blocking) replication API and hands
// complete transactions to the executor through a bounded queue; next() takes them from there.
//
// The thread: connect (Connector/C's non-blocking connect driven by poll(2) with our deadline and
// an eventfd that stop() signals), check the server's binlog settings, resolve the start position,
// SET the replica session variables (GTID start state, checksum, heartbeat), COM_BINLOG_DUMP, then
// read events with mariadb_rpl_fetch (MYSQL_OPT_READ_TIMEOUT bounds each read; the server's
// heartbeats keep an idle stream alive). Row events of the table are decoded (binlog_detail.h) and
// collected per transaction (GTID event .. XID/COMMIT); a complete transaction is queued with the
// position after it. On a failure the error is queued, the connection closed and, after a backoff
// delay, the stream reopened from the position after the last queued transaction.
//
// stop() interrupts a blocked read by shutting the connection's socket down: the fd is published
// under the mutex while the connection is open, and the thread unpublishes it (under the same
// mutex) before closing, so stop() never touches a descriptor that was closed and reused.
#include "clients/binlog.h"

#include <arpa/inet.h>
#include <errmsg.h>
#include <mysql.h>
// mariadb_rpl.h needs mysql.h first.
#include <mariadb_rpl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "clients/binlog_detail.h"
#include "clients/mysql_detail.h"
#include "common/log.h"

namespace clients::mysql {
namespace asio = boost::asio;
using boost::system::error_code;

std::string_view to_string(RowChange::Kind kind) {
  switch (kind) {
    case RowChange::Kind::insert:
      return "insert";
    case RowChange::Kind::update:
      return "update";
    case RowChange::Kind::remove:
      return "remove";
  }
  return "unknown";
}

void BinlogSettings::validate() const {
  connection.validate();
  if (server_id == 0) throw std::invalid_argument("binlog server_id must be > 0 (a unique replica id)");
  if (database.empty()) throw std::invalid_argument("binlog database must not be empty");
  if (table.empty()) throw std::invalid_argument("binlog table must not be empty");
  if (heartbeat.count() <= 0) throw std::invalid_argument("binlog heartbeat must be > 0");
  if (read_timeout.count() <= 0) throw std::invalid_argument("binlog read_timeout must be >= 1 s");
  if (read_timeout <= heartbeat)
    throw std::invalid_argument("binlog read_timeout must be longer than the heartbeat period");
  if (queue_capacity == 0) throw std::invalid_argument("binlog queue_capacity must be > 0");
  reconnect.validate();
}

namespace {

Error error(Errc code, std::string message) {
  return Error{code, 0, {}, std::move(message)};
}

Error conn_error(MYSQL* m, std::string_view what) {
  Error e = detail::make_error(mysql_errno(m), mysql_sqlstate(m), mysql_error(m));
  e.message = "binlog " + std::string(what) + ": " + e.message;
  return e;
}

// A complete transaction (changes of the table, possibly none) or a stream failure.
struct Item {
  std::vector<RowChange> changes;
  std::string position;  // after this transaction
  std::optional<Error> error;
  bool is_skip() const { return !error && changes.empty(); }
};

struct Waiter {
  explicit Waiter(const asio::any_io_executor& ex) : timer(ex) {}
  std::optional<asio::any_completion_handler<void(Result<Batch>)>> handler;
  asio::steady_timer timer;
  asio::cancellation_slot slot;
  std::size_t max_changes = 0;
};

}  // namespace

struct BinlogReader::Impl : std::enable_shared_from_this<BinlogReader::Impl> {
  Impl(asio::any_io_executor executor, BinlogSettings s) : ex(std::move(executor)), settings(std::move(s)) {}

  asio::any_io_executor ex;
  const BinlogSettings settings;

  // Shared with the thread, guarded by `mu`.
  mutable std::mutex mu;
  std::condition_variable cv;  // queue space freed, stop requested
  std::deque<Item> queue;
  std::size_t queued_transactions = 0;  // items in `queue` that hold changes or an error
  bool stopping = false;
  bool waiting = false;                  // a next() is pending
  bool notify_posted = false;            // an on_notify() is on its way to the executor
  int fd = -1;                           // the open connection's socket, for stop()
  std::string start_position;            // as given to start(), or resolved by the thread for ""
  std::optional<std::string> delivered;  // the position after what next() handed out
  BinlogStatus status;

  // Executor only.
  int wake_fd = -1;  // eventfd: wakes the thread's poll() while it connects
  std::thread thread;
  bool started = false;
  bool stopped = false;
  std::shared_ptr<Waiter> waiter;

  std::string position_locked() const { return delivered ? *delivered : start_position; }

  // Takes what next() may deliver: whole transactions up to `max_changes` (at least one), skipped
  // transactions (they only advance the position), or an error at the front. nullopt when there is
  // no transaction with changes yet, unless `final` (the deadline: an empty batch).
  std::optional<Result<Batch>> take_locked(std::size_t max_changes, bool final) {
    Batch b;
    bool freed = false;
    while (!queue.empty()) {
      Item& it = queue.front();
      if (it.error) {
        if (!b.changes.empty()) break;
        Error e = std::move(*it.error);
        queue.pop_front();
        --queued_transactions;
        cv.notify_all();
        return Result<Batch>(std::move(e));
      }
      if (!it.changes.empty() && !b.changes.empty() && b.changes.size() + it.changes.size() > max_changes)
        break;
      if (!it.changes.empty()) {
        --queued_transactions;
        freed = true;
        for (auto& c : it.changes)
          b.changes.push_back(std::move(c));
      }
      delivered = std::move(it.position);
      queue.pop_front();
    }
    if (freed) cv.notify_all();
    if (b.changes.empty() && !final) return std::nullopt;
    b.position = position_locked();
    return Result<Batch>(std::move(b));
  }
  std::optional<Result<Batch>> take(std::size_t max_changes, bool final) {
    std::lock_guard lock(mu);
    return take_locked(max_changes, final);
  }

  // Completes the pending next() (posted: never inside the caller's stack).
  void complete(Result<Batch> r, bool from_cancellation_slot = false) {
    auto w = std::move(waiter);
    waiter.reset();
    if (!w || !w->handler) return;
    {
      std::lock_guard lock(mu);
      waiting = false;
    }
    asio::any_completion_handler<void(Result<Batch>)> h(std::move(*w->handler));
    w->handler.reset();
    w->timer.cancel();
    if (!from_cancellation_slot && w->slot.is_connected()) w->slot.clear();
    asio::post(ex, asio::append(std::move(h), std::move(r)));
  }

  void add_waiter(asio::any_completion_handler<void(Result<Batch>)> handler, std::size_t max_changes,
                  Deadline deadline) {
    auto w = std::make_shared<Waiter>(ex);
    w->handler.emplace(std::move(handler));
    w->max_changes = max_changes;
    {
      std::lock_guard lock(mu);
      if (auto r = take_locked(max_changes, false)) {
        asio::any_completion_handler<void(Result<Batch>)> h(std::move(*w->handler));
        asio::post(ex, asio::append(std::move(h), std::move(*r)));
        return;
      }
      waiting = true;
    }
    waiter = w;
    w->slot = asio::get_associated_cancellation_slot(*w->handler);
    w->timer.expires_at(deadline.at());
    w->timer.async_wait([weak = weak_from_this(), w](const error_code& ec) {
      auto self = weak.lock();
      if (ec || !self || self->waiter != w) return;
      auto r = self->take(w->max_changes, true);
      self->complete(std::move(*r));
    });
    if (w->slot.is_connected()) {
      w->slot.assign([weak = weak_from_this(), weak_w = std::weak_ptr<Waiter>(w)](asio::cancellation_type) {
        auto self = weak.lock();
        auto w2 = weak_w.lock();
        if (self && w2 && self->waiter == w2)
          self->complete(error(Errc::cancelled, "next() cancelled"), true);
      });
    }
  }

  // On the executor, after the thread queued a transaction or an error while a next() waited.
  void on_notify() {
    {
      std::lock_guard lock(mu);
      notify_posted = false;
    }
    if (!waiter || !waiter->handler) return;
    if (auto r = take(waiter->max_changes, false)) complete(std::move(*r));
  }

  // ---- thread side ----

  // Queues `item`, waiting while the queue is full. False when stopping.
  bool push(Item item) {
    std::unique_lock lock(mu);
    if (item.is_skip() && !queue.empty() && queue.back().is_skip()) {
      queue.back().position = std::move(item.position);  // coalesced: only the position matters
      return true;
    }
    if (item.error && !queue.empty() && queue.back().error) {
      queue.back() = std::move(item);  // one queued error at a time: the latest
      return true;
    }
    cv.wait(lock, [&] { return stopping || queued_transactions < settings.queue_capacity; });
    if (stopping) return false;
    const bool counts = !item.is_skip();
    queue.push_back(std::move(item));
    if (!counts) return true;
    ++queued_transactions;
    if (waiting && !notify_posted) {
      notify_posted = true;
      asio::post(ex, [self = shared_from_this()] { self->on_notify(); });
    }
    return true;
  }

  bool stop_requested() const {
    std::lock_guard lock(mu);
    return stopping;
  }
};

namespace {

using Impl = BinlogReader::Impl;

// The reader thread's state: the connection, the position, the transaction being read.
class Stream {
 public:
  explicit Stream(Impl& r) : r_(r), backoff_(r.settings.reconnect) {
    std::lock_guard lock(r_.mu);
    resolved_ = !r_.start_position.empty();
    if (resolved_) position_ = *detail::GtidPosition::parse(r_.start_position);
  }

  ~Stream() { close(); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  void run() {
    bool failing = false;
    while (!r_.stop_requested()) {
      Error e = open_and_read();
      close();
      if (r_.stop_requested()) break;
      {
        std::lock_guard lock(r_.mu);
        r_.status.connected = false;
        r_.status.last_error = e.message;
        ++r_.status.counters.failures;
      }
      if (streaming_) failing = false;  // the stream had worked: a new episode
      if (!failing) {
        common::log::warn("binlog stream failed, reconnecting with backoff",
                          {{"table", r_.settings.database + "." + r_.settings.table}, {"error", e.message}});
        failing = true;
      }
      if (!r_.push(Item{{}, {}, std::move(e)})) break;
      const auto delay = backoff_.next();
      std::unique_lock lock(r_.mu);
      r_.cv.wait_for(lock, delay, [&] { return r_.stopping; });
    }
    close();
  }

 private:
  Impl& r_;
  Backoff backoff_;
  detail::GtidPosition position_;  // after the last queued transaction
  bool resolved_ = false;          // position_ known (start("") resolves it at the first connect)
  MYSQL* m_ = nullptr;
  MARIADB_RPL* rpl_ = nullptr;
  bool streaming_ = false;           // the current stream delivered at least one event
  std::vector<bool> unsigned_cols_;  // from information_schema, by ordinal position

  // The transaction being read.
  bool in_tx_ = false;
  bool standalone_ = false;
  detail::Gtid gtid_;
  std::vector<RowChange> changes_;
  std::unordered_map<std::uint64_t, std::optional<std::vector<detail::ColumnMeta>>>
      tables_;  // nullopt: not ours

  void close() {
    {
      std::lock_guard lock(r_.mu);
      r_.fd = -1;
    }
    if (rpl_ != nullptr) mariadb_rpl_close(rpl_);
    rpl_ = nullptr;
    if (m_ != nullptr) mysql_close(m_);
    m_ = nullptr;
    in_tx_ = false;
    changes_.clear();
    tables_.clear();
  }

  // Connects with Connector/C's non-blocking API, polled here with the connect deadline and the
  // stop eventfd.
  std::optional<Error> connect() {
    const auto& cs = r_.settings.connection;
    m_ = mysql_init(nullptr);
    if (m_ == nullptr) return error(Errc::connect_failed, "binlog connect: mysql_init failed");
    mysql_options(m_, MYSQL_OPT_NONBLOCK, nullptr);
    unsigned protocol = MYSQL_PROTOCOL_TCP;
    mysql_options(m_, MYSQL_OPT_PROTOCOL, &protocol);
    mysql_options(m_, MYSQL_SET_CHARSET_NAME, cs.charset.c_str());
    unsigned connect_seconds = static_cast<unsigned>((cs.connect_timeout.count() + 999) / 1000) + 1;
    mysql_options(m_, MYSQL_OPT_CONNECT_TIMEOUT, &connect_seconds);
    unsigned io_seconds = static_cast<unsigned>(r_.settings.read_timeout.count());
    mysql_options(m_, MYSQL_OPT_READ_TIMEOUT, &io_seconds);
    mysql_options(m_, MYSQL_OPT_WRITE_TIMEOUT, &io_seconds);
    my_bool no = 0;
    mysql_options(m_, MYSQL_OPT_RECONNECT, &no);
    if (!cs.source_address.empty()) mysql_optionsv(m_, MYSQL_OPT_BIND, cs.source_address.c_str());

    const auto deadline = Clock::now() + cs.connect_timeout;
    MYSQL* ret = nullptr;
    int status = mysql_real_connect_start(&ret, m_, cs.host.c_str(), cs.user.c_str(), cs.password.c_str(),
                                          nullptr, cs.port, nullptr, 0);
    std::optional<Error> abandoned;
    while (status != 0) {
      const auto now = Clock::now();
      if (r_.stop_requested()) {
        abandoned = error(Errc::stopped, "binlog reader stopped");
      } else if (now >= deadline) {
        abandoned = error(Errc::timeout, "binlog connect did not finish within " +
                                             std::to_string(cs.connect_timeout.count()) + " ms");
      }
      const int sock = static_cast<int>(mysql_get_socket(m_));
      if (abandoned) {
        // Every further I/O fails at once, so the library finishes the connect and frees its state.
        if (sock >= 0) ::shutdown(sock, SHUT_RDWR);
        for (int i = 0; status != 0 && i < 64; ++i)
          status = mysql_real_connect_cont(
              &ret, m_,
              (status & MYSQL_WAIT_TIMEOUT) != 0
                  ? MYSQL_WAIT_TIMEOUT
                  : (status & (MYSQL_WAIT_READ | MYSQL_WAIT_WRITE | MYSQL_WAIT_EXCEPT)));
        if (status != 0) {
          // Never returned: leak the handle rather than free it under the library's feet.
          m_ = nullptr;
          common::log::warn("binlog connect did not unwind after shutdown");
        }
        return abandoned;
      }
      auto wait = std::chrono::ceil<std::chrono::milliseconds>(deadline - now);
      bool library_timer = false;
      if ((status & MYSQL_WAIT_TIMEOUT) != 0) {
        const std::chrono::milliseconds lib(mysql_get_timeout_value_ms(m_));
        if (lib < wait) {
          wait = lib;
          library_timer = true;
        }
      }
      pollfd fds[2] = {};
      fds[0].fd = sock;
      fds[0].events = static_cast<short>(((status & MYSQL_WAIT_READ) != 0 ? POLLIN : 0) |
                                         ((status & MYSQL_WAIT_WRITE) != 0 ? POLLOUT : 0) |
                                         ((status & MYSQL_WAIT_EXCEPT) != 0 ? POLLPRI : 0));
      fds[1].fd = r_.wake_fd;
      fds[1].events = POLLIN;
      const int n = ::poll(fds, 2, static_cast<int>(std::max<std::int64_t>(wait.count(), 0)));
      if (n < 0 && errno != EINTR) {
        abandoned = error(Errc::connect_failed, "binlog connect: poll failed");
        continue;
      }
      int ev = 0;
      const short re = fds[0].revents;
      if ((re & (POLLIN | POLLHUP | POLLERR)) != 0 && (status & MYSQL_WAIT_READ) != 0) ev |= MYSQL_WAIT_READ;
      if ((re & (POLLOUT | POLLHUP | POLLERR)) != 0 && (status & MYSQL_WAIT_WRITE) != 0)
        ev |= MYSQL_WAIT_WRITE;
      if ((re & POLLPRI) != 0 && (status & MYSQL_WAIT_EXCEPT) != 0) ev |= MYSQL_WAIT_EXCEPT;
      if (ev == 0) {
        if (n == 0 && library_timer) {
          ev = MYSQL_WAIT_TIMEOUT;
        } else {
          continue;  // our deadline, a stop request or a spurious wake-up: checked at the top
        }
      }
      status = mysql_real_connect_cont(&ret, m_, ev);
    }
    if (ret == nullptr) {
      Error e = conn_error(m_, "connect");
      e.code = Errc::connect_failed;
      return e;
    }
    std::lock_guard lock(r_.mu);
    if (r_.stopping) return error(Errc::stopped, "binlog reader stopped");
    r_.fd = static_cast<int>(mysql_get_socket(m_));
    return std::nullopt;
  }

  // A blocking query (bounded by MYSQL_OPT_READ_TIMEOUT; stop() shuts the socket down).
  std::optional<Error> query(const std::string& sql,
                             std::vector<std::vector<std::optional<std::string>>>* rows) {
    if (mysql_real_query(m_, sql.data(), static_cast<unsigned long>(sql.size())) != 0)
      return conn_error(m_, "setup");
    MYSQL_RES* res = mysql_store_result(m_);
    if (res == nullptr) {
      if (mysql_field_count(m_) != 0) return conn_error(m_, "setup");
      return std::nullopt;
    }
    const unsigned n = mysql_num_fields(res);
    while (MYSQL_ROW row = mysql_fetch_row(res)) {
      const unsigned long* lengths = mysql_fetch_lengths(res);
      std::vector<std::optional<std::string>> values(n);
      for (unsigned i = 0; i < n; ++i)
        if (row[i] != nullptr) values[i] = std::string(row[i], lengths[i]);
      if (rows != nullptr) rows->push_back(std::move(values));
    }
    mysql_free_result(res);
    return std::nullopt;
  }

  std::string quoted(const std::string& s) {
    std::string out(s.size() * 2 + 1, '\0');
    out.resize(mysql_real_escape_string(m_, out.data(), s.data(), static_cast<unsigned long>(s.size())));
    return "'" + out + "'";
  }

  std::optional<Error> setup() {
    std::vector<std::vector<std::optional<std::string>>> rows;
    if (auto e = query("SELECT @@GLOBAL.log_bin, @@GLOBAL.binlog_format, @@GLOBAL.binlog_row_image, "
                       "@@GLOBAL.gtid_binlog_pos",
                       &rows))
      return e;
    if (rows.size() != 1 || rows[0].size() != 4)
      return error(Errc::connection_lost, "binlog setup: bad reply");
    const auto& v = rows[0];
    if (v[0].value_or("") != "1") return error(Errc::invalid_argument, "binlog: the server's log_bin is OFF");
    if (v[1].value_or("") != "ROW")
      return error(Errc::invalid_argument,
                   "binlog: the server's binlog_format is " + v[1].value_or("NULL") + ", ROW is required");
    if (v[2].value_or("") != "FULL")
      return error(Errc::invalid_argument, "binlog: the server's binlog_row_image is " +
                                               v[2].value_or("NULL") + ", FULL is required");
    if (!resolved_) {
      auto p = detail::GtidPosition::parse(v[3].value_or(""));
      if (!p)
        return error(Errc::connection_lost,
                     "binlog: unreadable @@gtid_binlog_pos '" + v[3].value_or("") + "'");
      position_ = *p;
      resolved_ = true;
      std::lock_guard lock(r_.mu);
      r_.start_position = position_.to_string();
      r_.status.read_position = r_.start_position;
    }
    rows.clear();
    if (auto e = query("SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = " +
                           quoted(r_.settings.database) + " AND TABLE_NAME = " + quoted(r_.settings.table) +
                           " ORDER BY ORDINAL_POSITION",
                       &rows))
      return e;
    unsigned_cols_.clear();
    for (const auto& row : rows)
      unsigned_cols_.push_back(!row.empty() && row[0] && row[0]->find("unsigned") != std::string::npos);
    const auto heartbeat_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(r_.settings.heartbeat).count();
    if (auto e = query("SET @master_binlog_checksum = @@GLOBAL.binlog_checksum, @slave_connect_state = " +
                           quoted(position_.to_string()) +
                           ", @slave_gtid_strict_mode = 1, @mariadb_slave_capability = 4, "
                           "@master_heartbeat_period = " +
                           std::to_string(heartbeat_ns),
                       nullptr))
      return e;
    return std::nullopt;
  }

  Error open_and_read() {
    streaming_ = false;
    if (auto e = connect()) return *e;
    if (auto e = setup()) return *e;
    rpl_ = mariadb_rpl_init(m_);
    if (rpl_ == nullptr) return conn_error(m_, "init");
    mariadb_rpl_optionsv(rpl_, MARIADB_RPL_SERVER_ID, static_cast<unsigned>(r_.settings.server_id));
    mariadb_rpl_optionsv(rpl_, MARIADB_RPL_FLAGS, 0U);
    mariadb_rpl_optionsv(rpl_, MARIADB_RPL_START, 4UL);
    mariadb_rpl_optionsv(rpl_, MARIADB_RPL_VERIFY_CHECKSUM, 1U);
    mariadb_rpl_optionsv(rpl_, MARIADB_RPL_UNCOMPRESS, 1U);
    if (mariadb_rpl_open(rpl_) != 0) return conn_error(m_, "dump request");
    {
      std::lock_guard lock(r_.mu);
      ++r_.status.counters.connects;
    }
    MARIADB_RPL_EVENT* ev = nullptr;
    for (;;) {
      ev = mariadb_rpl_fetch(rpl_, ev);  // frees `ev` when it returns nullptr
      if (ev == nullptr) {
        if (r_.stop_requested()) return error(Errc::stopped, "binlog reader stopped");
        if (mysql_errno(m_) != 0) return conn_error(m_, "stream");
        if (mariadb_rpl_errno(rpl_) != 0)
          return error(Errc::connection_lost, std::string("binlog stream: ") + mariadb_rpl_error(rpl_));
        return error(Errc::connection_lost, "binlog stream: the server ended the stream");
      }
      if (!streaming_) {
        streaming_ = true;
        backoff_.reset();
        std::lock_guard lock(r_.mu);
        r_.status.connected = true;
      }
      std::optional<Error> e = handle(*ev);
      if (e) {
        mariadb_free_rpl_event(ev);
        return *e;
      }
    }
  }

  std::optional<Error> handle(const MARIADB_RPL_EVENT& ev) {
    {
      std::lock_guard lock(r_.mu);
      ++r_.status.counters.events;
      if (ev.event_type == HEARTBEAT_LOG_EVENT) ++r_.status.counters.heartbeats;
    }
    switch (ev.event_type) {
      case GTID_EVENT:
        in_tx_ = true;
        standalone_ = (ev.event.gtid.flags & FL_STANDALONE) != 0;
        gtid_ = detail::Gtid{ev.event.gtid.domain_id, ev.server_id, ev.event.gtid.sequence_nr};
        changes_.clear();
        tables_.clear();
        return std::nullopt;
      case TABLE_MAP_EVENT:
        return table_map(ev);
      case WRITE_ROWS_EVENT_V1:
      case UPDATE_ROWS_EVENT_V1:
      case DELETE_ROWS_EVENT_V1:
      case WRITE_ROWS_COMPRESSED_EVENT_V1:
      case UPDATE_ROWS_COMPRESSED_EVENT_V1:
      case DELETE_ROWS_COMPRESSED_EVENT_V1:
      case WRITE_ROWS_EVENT:
      case UPDATE_ROWS_EVENT:
      case DELETE_ROWS_EVENT:
        return rows(ev);
      case XID_EVENT:
      case XA_PREPARE_LOG_EVENT:
        return commit();
      case QUERY_EVENT:
      case QUERY_COMPRESSED_EVENT: {
        if (!in_tx_) return std::nullopt;
        const std::string_view sql(ev.event.query.statement.str, ev.event.query.statement.length);
        if (sql == "COMMIT") return commit();
        if (sql == "ROLLBACK") {
          changes_.clear();
          return commit();
        }
        if (standalone_) return commit();  // DDL and other one-statement groups
        return std::nullopt;
      }
      default:
        return std::nullopt;  // rotate, format description, GTID list, checkpoint, heartbeat, ...
    }
  }

  std::optional<Error> table_map(const MARIADB_RPL_EVENT& ev) {
    if (!in_tx_) return std::nullopt;
    const auto& tm = ev.event.table_map;
    const std::string_view db(tm.database.str, tm.database.length), table(tm.table.str, tm.table.length);
    if (db != r_.settings.database || table != r_.settings.table) {
      tables_[tm.table_id] = std::nullopt;
      return std::nullopt;
    }
    std::string err;
    auto cols = detail::parse_columns(std::string_view(tm.column_types.str, tm.column_types.length),
                                      std::string_view(tm.metadata.str, tm.metadata.length), err);
    if (!cols)
      return error(Errc::invalid_argument,
                   "binlog: table map of " + std::string(db) + "." + std::string(table) + ": " + err);
    if (tm.signed_indicator != nullptr) {
      // The bitmap's length is not kept by the library: one bit per numeric column.
      std::size_t numeric = 0;
      for (const auto& c : *cols)
        numeric += detail::is_numeric_type(c.type) ? 1 : 0;
      detail::apply_signedness(
          *cols, std::string_view(reinterpret_cast<const char*>(tm.signed_indicator), (numeric + 7) / 8));
    } else if (unsigned_cols_.size() == cols->size()) {
      for (std::size_t i = 0; i < cols->size(); ++i)
        (*cols)[i].is_unsigned = unsigned_cols_[i];
    }
    tables_[tm.table_id] = std::move(*cols);
    return std::nullopt;
  }

  std::optional<Error> rows(const MARIADB_RPL_EVENT& ev) {
    if (!in_tx_) return std::nullopt;
    const auto& re = ev.event.rows;
    auto it = tables_.find(re.table_id);
    if (it == tables_.end() || !it->second) return std::nullopt;  // another table
    const auto& cols = *it->second;
    const std::string where = "binlog: row event of " + r_.settings.database + "." + r_.settings.table + ": ";
    if (re.column_count != cols.size())
      return error(Errc::invalid_argument, where + "column count differs from its table map");
    RowChange::Kind kind;
    switch (ev.event_type) {
      case WRITE_ROWS_EVENT_V1:
      case WRITE_ROWS_COMPRESSED_EVENT_V1:
      case WRITE_ROWS_EVENT:
        kind = RowChange::Kind::insert;
        break;
      case UPDATE_ROWS_EVENT_V1:
      case UPDATE_ROWS_COMPRESSED_EVENT_V1:
      case UPDATE_ROWS_EVENT:
        kind = RowChange::Kind::update;
        break;
      default:
        kind = RowChange::Kind::remove;
        break;
    }
    const std::size_t bitmap_len = (cols.size() + 7) / 8;
    const std::string_view present(reinterpret_cast<const char*>(re.column_bitmap), bitmap_len);
    const std::string_view present_after =
        re.column_update_bitmap != nullptr
            ? std::string_view(reinterpret_cast<const char*>(re.column_update_bitmap), bitmap_len)
            : present;
    const std::string_view data(static_cast<const char*>(re.row_data), re.row_data_size);
    std::size_t pos = 0;
    const std::string gtid = gtid_.to_string();
    while (pos < data.size()) {
      Row before, after;
      bool complete_before = false, complete_after = false;
      if (auto e = detail::decode_row_image(cols, present, data, pos, before, complete_before))
        return error(Errc::invalid_argument, where + *e);
      if (kind == RowChange::Kind::update) {
        if (auto e = detail::decode_row_image(cols, present_after, data, pos, after, complete_after))
          return error(Errc::invalid_argument, where + *e);
      }
      const bool complete = kind == RowChange::Kind::update ? complete_after : complete_before;
      if (!complete)
        return error(Errc::invalid_argument,
                     where + "the row image lacks columns (binlog_row_image must be FULL)");
      if (kind == RowChange::Kind::update) {
        changes_.push_back(RowChange{kind, r_.settings.database, r_.settings.table, std::move(after), gtid,
                                     std::move(before)});
      } else {
        changes_.push_back(
            RowChange{kind, r_.settings.database, r_.settings.table, std::move(before), gtid, {}});
      }
    }
    return std::nullopt;
  }

  std::optional<Error> commit() {
    if (!in_tx_) return std::nullopt;
    in_tx_ = false;
    position_.advance(gtid_);
    Item item{std::move(changes_), position_.to_string(), std::nullopt};
    changes_.clear();
    tables_.clear();
    {
      std::lock_guard lock(r_.mu);
      ++r_.status.counters.transactions;
      r_.status.counters.changes += item.changes.size();
      r_.status.read_position = item.position;
    }
    if (!r_.push(std::move(item))) return error(Errc::stopped, "binlog reader stopped");
    return std::nullopt;
  }
};

// The initiation lives outside the coroutine: GCC 12 destroyed a lambda temporary holding a
// shared_ptr twice when it was built inside the co_await expression.
template <typename Token>
auto async_wait_batch(const std::shared_ptr<Impl>& p, std::size_t max_changes, Deadline deadline,
                      Token&& token) {
  return asio::async_initiate<Token, void(Result<Batch>)>(
      [p, max_changes, deadline](auto handler) {
        p->add_waiter(asio::any_completion_handler<void(Result<Batch>)>(std::move(handler)), max_changes,
                      deadline);
      },
      token);
}

}  // namespace

BinlogReader::BinlogReader(executor_type executor, BinlogSettings settings) {
  settings.validate();
  static std::once_flag once;
  std::call_once(once, [] { mysql_library_init(0, nullptr, nullptr); });
  ignore_sigpipe();
  impl_ = std::make_shared<Impl>(std::move(executor), std::move(settings));
}

BinlogReader::~BinlogReader() {
  stop();
}

void BinlogReader::start(std::string gtid_position) {
  auto& r = *impl_;
  if (r.started || r.stopped) throw std::logic_error("BinlogReader::start: already started or stopped");
  auto parsed = detail::GtidPosition::parse(gtid_position);
  if (!parsed)
    throw std::invalid_argument("binlog start position is not a GTID position: '" + gtid_position + "'");
  r.wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (r.wake_fd < 0) throw std::runtime_error("BinlogReader::start: eventfd failed");
  {
    std::lock_guard lock(r.mu);
    r.start_position = parsed->to_string();
    r.status.read_position = r.start_position;
    r.status.running = true;
  }
  r.started = true;
  r.thread = std::thread([self = impl_] {
    try {
      Stream(*self).run();
    } catch (const std::exception& e) {  // out of memory: the reader ends, next() reports it
      common::log::error("binlog reader thread failed", {{"error", e.what()}});
      {
        std::lock_guard lock(self->mu);
        self->status.running = false;
        self->status.connected = false;
        self->status.last_error = std::string("binlog reader thread failed: ") + e.what();
      }
      self->push(Item{{}, {}, error(Errc::stopped, std::string("binlog reader thread failed: ") + e.what())});
    }
  });
}

asio::awaitable<Result<Batch>> BinlogReader::next(std::size_t max_changes, Deadline deadline) {
  auto self = impl_;
  if (self->stopped) co_return error(Errc::stopped, "binlog reader stopped");
  if (!self->started) co_return error(Errc::invalid_argument, "binlog reader not started");
  if (max_changes == 0) co_return error(Errc::invalid_argument, "next(): max_changes must be > 0");
  if (self->waiter) co_return error(Errc::invalid_argument, "next(): one call at a time");
  if (auto r = self->take(max_changes, deadline.expired())) co_return std::move(*r);
  co_return co_await async_wait_batch(self, max_changes, deadline, asio::use_awaitable);
}

std::string BinlogReader::position() const {
  std::lock_guard lock(impl_->mu);
  return impl_->position_locked();
}

void BinlogReader::stop() {
  auto& r = *impl_;
  if (r.stopped) return;
  r.stopped = true;
  {
    std::lock_guard lock(r.mu);
    r.stopping = true;
    if (r.fd >= 0) ::shutdown(r.fd, SHUT_RDWR);
    r.status.running = false;
    r.status.connected = false;
  }
  r.cv.notify_all();
  if (r.wake_fd >= 0) {
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto n = ::write(r.wake_fd, &one, sizeof one);
  }
  if (r.thread.joinable()) r.thread.join();
  if (r.wake_fd >= 0) ::close(r.wake_fd);
  r.wake_fd = -1;
  r.complete(error(Errc::stopped, "binlog reader stopped"));
}

BinlogStatus BinlogReader::status() const {
  std::lock_guard lock(impl_->mu);
  BinlogStatus s = impl_->status;
  s.queued = impl_->queued_transactions;
  return s;
}

const BinlogSettings& BinlogReader::settings() const {
  return impl_->settings;
}

BinlogReader::executor_type BinlogReader::get_executor() const {
  return impl_->ex;
}

}  // namespace clients::mysql
