// The Redis client: its own non-blocking socket driven by Asio, and its own reply parser
// (ReplyReader, which the socket reads into). Callback style on purpose (no coroutines here): the
// data path is a handful of small handlers, and this file compiles quickly.
//
// Ownership rules, which everything below follows:
// - Client::Impl is shared: every timer handler holds a shared_ptr to it, so handlers that run
//   after the Client is gone find it alive (and stopped).
// - Conn is one connection: socket, reply parser, output buffer and the queue of commands awaiting
//   replies. Handlers hold it by shared_ptr and return at once once it is closed (`open` false);
//   its `impl` is only used while it is open (the Impl closes its connection before it dies).
// - Every command is an entry of its connection's `pending` queue, in the order written; Redis
//   answers in that order, so each reply pops the oldest entry. A command needs no allocation of
//   its own: its entry holds its handler, and one timer per connection (set to the earliest
//   deadline outstanding) completes the commands whose deadline passed. Closing the connection
//   completes every entry left.
// - Commands are formatted straight into the connection's output buffer and written by a posted
//   flush (one send(2) per batch of commands issued together) rather than after waiting for the
//   socket to be writable: only a write that cannot take everything waits for writability.
// - Replies are read with a speculative recv (Asio's async_read_some: no epoll_ctl per read), and
//   the handlers of the replies one read brings run once it is parsed, in reply order, each
//   called directly when it runs on this executor.
#include "clients/redis.h"

#include <poll.h>

#include <algorithm>
#include <boost/asio/append.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

#include "clients/redis_detail.h"
#include "clients/redis_reply_reader.h"
#include "common/log.h"

namespace clients::redis {
namespace asio = boost::asio;
using boost::system::error_code;

std::string_view to_string(Errc code) {
  switch (code) {
    case Errc::timeout:
      return "timeout";
    case Errc::not_connected:
      return "not_connected";
    case Errc::connection_lost:
      return "connection_lost";
    case Errc::overloaded:
      return "overloaded";
    case Errc::cancelled:
      return "cancelled";
    case Errc::stopped:
      return "stopped";
    case Errc::invalid_argument:
      return "invalid_argument";
  }
  return "unknown";
}

std::string_view to_string(State state) {
  switch (state) {
    case State::idle:
      return "idle";
    case State::connecting:
      return "connecting";
    case State::connected:
      return "connected";
    case State::disconnected:
      return "disconnected";
    case State::stopped:
      return "stopped";
  }
  return "unknown";
}

void throw_exception_from_error(const Error& e, const boost::source_location&) {
  throw std::runtime_error("redis " + std::string(to_string(e.code)) + ": " + e.message);
}

void Settings::validate() const {
  if (!detail::is_numeric_ip(host))
    throw std::invalid_argument("redis host must be a numeric IP address (no DNS on the event loop): '" +
                                host + "'");
  if (!source_address.empty() && !detail::is_numeric_ip(source_address))
    throw std::invalid_argument("redis source_address must be empty or a numeric IP address: '" +
                                source_address + "'");
  if (port == 0) throw std::invalid_argument("redis port must not be 0");
  if (database < 0) throw std::invalid_argument("redis database must be >= 0");
  if (connect_timeout.count() <= 0) throw std::invalid_argument("redis connect_timeout must be > 0");
  if (stall_timeout.count() <= 0) throw std::invalid_argument("redis stall_timeout must be > 0");
  if (max_pending == 0) throw std::invalid_argument("redis max_pending must be > 0");
  reconnect.validate();
}

Script::Script(std::string source) : source_(std::move(source)), sha1_(detail::sha1_hex(source_)) {}

namespace {

// Completes `h` with `r` from a post: through our executor, then on the handler's associated
// executor if it has one (never inline).
template <typename Sig, typename Arg>
void complete_later(asio::any_completion_handler<Sig> h, Arg r, const asio::any_io_executor& ex) {
  asio::post(ex, asio::append(std::move(h), std::move(r)));
}

std::string ms_text(std::chrono::milliseconds d) {
  return std::to_string(d.count()) + " ms";
}

enum class HandshakeStep : std::uint8_t { none, auth, select, ping };

}  // namespace

struct Conn : std::enable_shared_from_this<Conn> {
  Conn(Client::Impl* owner_impl, std::weak_ptr<Client::Impl> owner_weak, const asio::any_io_executor& ex,
       std::uint64_t conn_id)
      : impl(owner_impl), owner(std::move(owner_weak)), socket(ex), deadline_timer(ex), id(conn_id) {}

  Client::Impl* impl;                 // valid while `open` (the Impl closes its connection before dying)
  std::weak_ptr<Client::Impl> owner;  // for posted work, which may outlive the Impl
  asio::ip::tcp::socket socket;
  ReplyReader reader;         // what the socket reads, parsed into replies
  bool open = true;           // until close_conn(): every handler returns at once after it
  bool connected = false;     // the TCP connect completed
  bool reading = false;       // a read is in flight
  bool writing = false;       // a wait for writability is in flight (a write left bytes)
  bool flush_posted = false;  // a flush() is posted
  bool ready = false;         // handshake done
  std::string out;            // commands not yet written, from out_sent on
  std::size_t out_sent = 0;
  // A command awaiting its reply, in the order written: its handler (empty once completed:
  // deadline, cancellation) or, for the handshake's commands, its step; its deadline, when it was
  // queued, and when it had been written out (known when the output buffer empties).
  struct Command {
    std::uint64_t seq;
    Clock::time_point deadline;
    Clock::time_point queued;
    Clock::time_point written = Clock::time_point::max();
    std::optional<Client::Handler> handler{};
    asio::cancellation_slot slot{};
    bool on_executor = false;  // the handler runs on the client's executor (Client::on_client_executor)
    HandshakeStep step = HandshakeStep::none;
  };
  std::deque<Command> pending;
  std::uint64_t next_seq = 0;
  // The one deadline timer of the connection: armed for `deadline_at`, the earliest deadline of the
  // commands outstanding when it was armed (Clock::time_point::max(): not armed).
  asio::steady_timer deadline_timer;
  Clock::time_point deadline_at = Clock::time_point::max();
  std::size_t unwritten = 0;  // how many of the newest entries are not yet known written

  // The outstanding command `seq`, if it still awaits its reply.
  Command* find(std::uint64_t seq) {
    if (pending.empty() || seq < pending.front().seq || seq - pending.front().seq >= pending.size())
      return nullptr;
    return &pending[seq - pending.front().seq];
  }
  Clock::time_point last_read{};   // the latest bytes (or EOF) read from the server
  Clock::time_point last_write{};  // the latest write progress while output was pending

  void flushed() {
    const auto now = Clock::now();
    for (std::size_t i = pending.size() - unwritten; i < pending.size(); ++i)
      pending[i].written = now;
    unwritten = 0;
  }
  // Stall detection counts from here: the later of when the oldest outstanding command reached the
  // socket and the last byte read; while it is still unsent, from the last write progress.
  Clock::time_point stall_reference() const {
    const Command& front = pending.front();
    if (front.written != Clock::time_point::max()) return std::max(front.written, last_read);
    return std::max({front.queued, last_write, last_read});
  }
  std::string close_reason;
  std::uint64_t id;

  // Replies completed while one read is parsed: their handlers run once it is, in reply order,
  // each resumed at once rather than through a post of its own.
  bool in_read = false;
  struct ReadCompletion {
    Client::Handler handler;
    Result result;
    bool on_executor;
  };
  std::vector<ReadCompletion> read_completions, running_completions;
  void run_read_completions();

  void arm_read();
  void on_read(const error_code& ec, std::size_t n);
  // Commands were queued: a flush is posted (once per batch of commands) unless the connect has
  // not completed or a wait for writability is in flight (either writes them when it ends).
  void want_to_write();
  void flush();
  // Writes what `out` holds from out_sent on; waits for writability if the socket takes less.
  void write_out();
};

struct Waiter {
  explicit Waiter(const asio::any_io_executor& ex) : timer(ex) {}
  std::optional<Client::ConnectedHandler> handler;
  asio::steady_timer timer;
  bool one_attempt = false;  // connect_now(): a failed attempt completes it (false)
};

struct Client::Impl : std::enable_shared_from_this<Client::Impl> {
  Impl(asio::any_io_executor executor, Settings s)
      : ex(std::move(executor)),
        settings(std::move(s)),
        backoff(settings.reconnect),
        retry_timer(ex),
        connect_timer(ex),
        watchdog(ex) {
    status.since = std::chrono::system_clock::now();
  }
  ~Impl() {
    // Normally stop() already ran (Client's destructor); this covers an Impl freed by the
    // io_context's destruction while handlers still held it.
    if (conn && conn->open) {
      stopped = true;
      close_conn(conn, "client stopped");
    }
  }

  asio::any_io_executor ex;
  Settings settings;
  Status status;
  Backoff backoff;
  asio::steady_timer retry_timer, connect_timer, watchdog;
  bool watchdog_armed = false;
  bool started = false, stopped = false;
  bool failure_logged = false;  // log the first failed attempt of an outage, not every retry
  std::shared_ptr<Conn> conn;
  std::vector<std::shared_ptr<Waiter>> waiters;
  std::uint64_t next_conn_id = 1;

  void set_state(State s) {
    if (status.state == s) return;
    status.state = s;
    status.since = std::chrono::system_clock::now();
  }

  void start() {
    if (started || stopped) return;
    started = true;
    connect();
  }

  void stop() {
    if (stopped) return;
    stopped = true;
    retry_timer.cancel();
    connect_timer.cancel();
    watchdog.cancel();
    watchdog_armed = false;
    if (conn && conn->open) close_conn(conn, "client stopped");  // outstanding commands: `stopped`
    conn.reset();
    set_state(State::stopped);
    complete_waiters(false);
  }

  bool reset(std::string_view reason, std::uint64_t id) {
    if (stopped || !conn || !conn->ready || !conn->open) return false;
    if (id != 0 && conn->id != id) return false;
    ++status.counters.resets;
    common::log::warn("redis connection reset", {{"client", settings.name}, {"reason", reason}});
    // As for a stall: everything outstanding completes with connection_lost, and the posted
    // on_closed() schedules the reconnect with backoff.
    close_conn(conn, "reset: " + std::string(reason));
    set_state(State::disconnected);  // at once: wait_connected() now waits for the new connection
    return true;
  }

  bool retarget(std::string host, std::uint16_t port) {
    if (stopped) return false;
    if (host == settings.host && port == settings.port) return false;
    const std::string target = host + ":" + std::to_string(port);
    if (port == 0 || !detail::is_numeric_ip(host)) {
      status.last_error = "retarget refused: '" + target + "' is not a numeric IP address and port";
      common::log::warn("redis retarget refused", {{"client", settings.name}, {"address", target}});
      return false;
    }
    common::log::info("redis retarget", {{"client", settings.name},
                                         {"from", settings.host + ":" + std::to_string(settings.port)},
                                         {"to", target}});
    settings.host = std::move(host);
    settings.port = port;
    if (!started) return true;  // start() connects to the new address
    retry_timer.cancel();
    connect_timer.cancel();
    watchdog.cancel();
    watchdog_armed = false;
    if (auto old = std::move(conn)) {
      // `conn` no longer points at it, so its on_closed() (posted by close_conn) is ignored:
      // account for it here. Its outstanding commands complete with `connection_lost` and this
      // reason (lost_error()).
      const std::string reason = "retarget to " + target;
      if (old->ready) {
        ++status.counters.disconnects;
        status.last_error = reason;
      }
      close_conn(old, reason);
    }
    backoff.reset();
    failure_logged = false;
    connect();  // at once: the new address owes us no backoff
    return true;
  }

  void connect();
  void attempt_failed(const std::string& reason);
  void schedule_reconnect();
  void on_ready(const std::shared_ptr<Conn>& c);
  void on_closed(const std::shared_ptr<Conn>& c);
  void close_conn(const std::shared_ptr<Conn>& c, const std::string& reason);
  // Formats `args` into the connection's output buffer, behind a new entry of `pending`, and has
  // them written. Args: std::vector<std::string> or std::span<const std::string_view> (read at once).
  template <typename Args>
  Conn::Command& queue_command(Conn& c, const Args& args, Clock::time_point now);
  // The reply to the oldest outstanding command; a handshake's reply checked by on_handshake_reply.
  void on_reply(Conn& c, Reply&& reply);
  void on_handshake_reply(Conn& c, HandshakeStep step, const Reply& reply);
  // `on_executor`: see Client::on_client_executor. `may_wait`: while the server refuses and there is
  // no connection, the command joins one immediate connect attempt instead of failing at once.
  template <typename Args>
  void submit(const Args& args, Deadline deadline, Handler handler, bool on_executor, bool may_wait = true);
  void start_attempt_now();
  // Completes a command: from the handler of the read that brought its reply when `reading` is in
  // one (Conn::run_read_completions), otherwise through a post.
  void finish(Conn::Command& cmd, Result&& r, bool from_slot = false, Conn* reading = nullptr);
  // The connection's deadline timer: armed for `at`; when it fires, expire_commands().
  void arm_deadline(const std::shared_ptr<Conn>& c, Clock::time_point at);
  // Completes the commands whose deadline passed with `timeout`, re-arms for the next deadline.
  void expire_commands(const std::shared_ptr<Conn>& c);
  void fail_now(Handler handler, Errc code, std::string message);
  void count(const Result& r);
  void arm_watchdog();
  // Completes the waiters (only those of connect_now() when `attempts_only`).
  void complete_waiters(bool connected, bool attempts_only = false);
  void add_waiter(Deadline deadline, Client::ConnectedHandler handler, bool one_attempt);
  Error lost_error(const Conn& c) const;
};

// ---- connection I/O -----------------------------------------------------------------------------

void Conn::arm_read() {
  if (reading || !open || !connected) return;
  reading = true;
  const std::span<char> room = reader.buffer();
  socket.async_read_some(
      asio::buffer(room.data(), room.size()),
      [self = shared_from_this()](const error_code& ec, std::size_t n) { self->on_read(ec, n); });
}

void Conn::on_read(const error_code& ec, std::size_t n) {
  reading = false;
  if (!open) return;
  last_read = Clock::now();
  if (n > 0) {
    reader.commit(n);
    in_read = true;
    Reply reply;
    while (open) {
      const ReplyReader::Status s = reader.next(reply);
      if (s == ReplyReader::Status::error) {
        impl->close_conn(shared_from_this(), "protocol error: " + reader.error());
        break;
      }
      if (s == ReplyReader::Status::incomplete) break;
      impl->on_reply(*this, std::move(reply));
    }
    in_read = false;
    run_read_completions();  // may close this connection, or stop the client
  }
  if (!open) return;
  if (ec == asio::error::eof) return impl->close_conn(shared_from_this(), "Server closed the connection");
  if (ec) return impl->close_conn(shared_from_this(), ec.message());
  arm_read();
}

// A handler on this client's executor (a coroutine of this io_context awaiting its reply) resumes
// here and now, called directly; one on another executor is dispatched to it (queued there).
void Conn::run_read_completions() {
  if (read_completions.empty()) return;
  std::swap(read_completions, running_completions);  // nothing a handler does can touch this list
  for (auto& c : running_completions) {
    if (c.on_executor) {
      std::move(c.handler)(std::move(c.result));
    } else {
      asio::dispatch(asio::append(std::move(c.handler), std::move(c.result)));
    }
  }
  running_completions.clear();
}

void Conn::want_to_write() {
  if (!open || !connected || writing || flush_posted) return;
  flush_posted = true;
  asio::post(socket.get_executor(), [self = shared_from_this()] { self->flush(); });
}

void Conn::flush() {
  flush_posted = false;
  if (!open || writing) return;
  write_out();
}

// Writes without asking the reactor first: a connected socket almost always takes it all.
void Conn::write_out() {
  while (out_sent < out.size()) {
    error_code ec;
    const std::size_t n = socket.write_some(asio::buffer(out.data() + out_sent, out.size() - out_sent), ec);
    out_sent += n;
    if (n > 0) last_write = Clock::now();
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      writing = true;
      socket.async_wait(asio::ip::tcp::socket::wait_write, [self = shared_from_this()](const error_code& e) {
        self->writing = false;
        if (!self->open) return;
        if (e) return self->impl->close_conn(self, e.message());
        self->write_out();
      });
      return;
    }
    if (ec) return impl->close_conn(shared_from_this(), ec.message());
  }
  out.clear();
  out_sent = 0;
  flushed();
}

// ---- connection life cycle ----------------------------------------------------------------------

void Client::Impl::connect() {
  if (stopped) return;
  set_state(State::connecting);
  error_code ec;
  const asio::ip::tcp::endpoint to(asio::ip::make_address(settings.host, ec), settings.port);
  if (ec) return attempt_failed("connect failed: bad address " + settings.host);  // validate() checked it
  auto c = std::make_shared<Conn>(this, weak_from_this(), ex, next_conn_id++);
  c->socket.open(to.protocol(), ec);
  if (!ec) c->socket.non_blocking(true, ec);
  if (!ec) c->socket.set_option(asio::ip::tcp::no_delay(true), ec);
  if (ec) return attempt_failed("connect failed: cannot open a socket: " + ec.message());
  if (!settings.source_address.empty()) {
    // Bound before the connect, so that faults can single out this process's path.
    const auto source = asio::ip::make_address(settings.source_address, ec);
    if (!ec) c->socket.bind(asio::ip::tcp::endpoint(source, 0), ec);
    if (ec)
      return attempt_failed("connect failed: cannot bind to " + settings.source_address + ": " +
                            ec.message());
  }
  conn = c;

  // The handshake is pipelined behind the TCP connect; PING's answer marks the connection ready.
  auto handshake = [&](const std::vector<std::string>& args, HandshakeStep step) {
    queue_command(*c, args, Clock::now()).step = step;
  };
  if (!settings.password.empty()) handshake({"AUTH", settings.password}, HandshakeStep::auth);
  if (settings.database != 0) handshake({"SELECT", std::to_string(settings.database)}, HandshakeStep::select);
  handshake({"PING"}, HandshakeStep::ping);

  c->socket.async_connect(to, [c](const error_code& e) {
    if (!c->open) return;
    if (e) return c->impl->close_conn(c, "connect failed: " + e.message());
    c->connected = true;
    c->last_write = Clock::now();
    c->flush();
    c->arm_read();
  });

  connect_timer.expires_after(settings.connect_timeout);
  connect_timer.async_wait([self = shared_from_this(), c](const error_code& e) {
    if (e || self->conn != c || c->ready || !c->open) return;
    self->close_conn(c, "connect timeout after " + ms_text(self->settings.connect_timeout));
  });
}

template <typename Args>
Conn::Command& Client::Impl::queue_command(Conn& c, const Args& args, Clock::time_point now) {
  detail::append_command(c.out, args);
  Conn::Command& cmd =
      c.pending.emplace_back(Conn::Command{.seq = c.next_seq++, .deadline = {}, .queued = now});
  ++c.unwritten;
  c.want_to_write();
  return cmd;
}

void Client::Impl::on_reply(Conn& c, Reply&& reply) {
  if (c.pending.empty()) return close_conn(c.shared_from_this(), "a reply no command awaits");
  Conn::Command cmd = std::move(c.pending.front());
  c.pending.pop_front();
  c.unwritten = std::min(c.unwritten, c.pending.size());
  if (cmd.step != HandshakeStep::none) return on_handshake_reply(c, cmd.step, reply);
  if (!cmd.handler) {
    ++status.counters.late_replies;
    return;
  }
  finish(cmd, std::move(reply), false, &c);
}

void Client::Impl::on_handshake_reply(Conn& c, HandshakeStep step, const Reply& reply) {
  const char* what = step == HandshakeStep::auth ? "AUTH" : step == HandshakeStep::select ? "SELECT" : "PING";
  const bool ok = step == HandshakeStep::ping ? reply.is_status("PONG") : reply.is_status("OK");
  if (!ok) {
    return close_conn(c.shared_from_this(), std::string("handshake ") + what + " failed: " +
                                                (reply.is_error() ? reply.str : "unexpected reply"));
  }
  if (step == HandshakeStep::ping) on_ready(c.shared_from_this());
}

void Client::Impl::on_ready(const std::shared_ptr<Conn>& c) {
  if (conn != c || stopped) return;
  c->ready = true;
  connect_timer.cancel();
  backoff.reset();
  ++status.counters.connects;
  failure_logged = false;
  set_state(State::connected);
  common::log::info("redis connected", {{"client", settings.name},
                                        {"address", settings.host + ":" + std::to_string(settings.port)}});
  complete_waiters(true);  // posted (complete_later)
}

// Closes the socket (its reads and waits end with operation_aborted and find `open` false),
// completes every outstanding command with lost_error() and posts on_closed().
void Client::Impl::close_conn(const std::shared_ptr<Conn>& c, const std::string& reason) {
  if (!c || !c->open) return;
  if (c->close_reason.empty()) c->close_reason = reason;
  c->open = false;
  error_code ignored;
  c->socket.close(ignored);
  c->deadline_timer.cancel();
  for (Conn::Command& cmd : c->pending) {
    if (cmd.handler) finish(cmd, lost_error(*c), false, c.get());
  }
  c->pending.clear();
  c->unwritten = 0;
  asio::post(ex, [c] {
    if (auto owner_impl = c->owner.lock()) owner_impl->on_closed(c);
  });
}

void Client::Impl::on_closed(const std::shared_ptr<Conn>& c) {
  if (conn != c) return;  // an old connection, or stop() already dealt with it
  conn.reset();
  connect_timer.cancel();
  watchdog.cancel();
  watchdog_armed = false;
  if (stopped) return;
  const std::string reason = c->close_reason.empty() ? "connection closed" : c->close_reason;
  if (!c->ready) return attempt_failed(reason);
  ++status.counters.disconnects;
  status.last_error = reason;
  status.refused = refused_text(reason);
  set_state(State::disconnected);
  common::log::warn("redis connection lost", {{"client", settings.name}, {"error", reason}});
  schedule_reconnect();
}

void Client::Impl::attempt_failed(const std::string& reason) {
  ++status.counters.connect_failures;
  status.last_error = reason;
  status.refused = refused_text(reason);
  set_state(State::disconnected);
  complete_waiters(false, /*attempts_only=*/true);
  if (!failure_logged) {
    common::log::warn("redis connect failed, retrying with backoff",
                      {{"client", settings.name}, {"error", reason}});
    failure_logged = true;
  } else {
    common::log::debug("redis connect failed", {{"client", settings.name}, {"error", reason}});
  }
  schedule_reconnect();
}

void Client::Impl::schedule_reconnect() {
  if (stopped) return;
  retry_timer.expires_after(backoff.next(status.refused ? AttemptError::refused : AttemptError::slow));
  retry_timer.async_wait([self = shared_from_this()](const error_code& ec) {
    if (ec || self->stopped || self->conn) return;
    self->connect();
  });
}

// ---- commands -----------------------------------------------------------------------------------

Error Client::Impl::lost_error(const Conn& c) const {
  if (stopped) return {Errc::stopped, "client stopped"};
  std::string reason = c.close_reason;
  if (reason.empty()) reason = "connection closed";
  return {Errc::connection_lost, "connection lost: " + reason};
}

void Client::Impl::count(const Result& r) {
  auto& k = status.counters;
  if (r) {
    ++k.replies;
    if (r->is_error()) ++k.error_replies;
    return;
  }
  switch (r.error().code) {
    case Errc::timeout:
      ++k.timeouts;
      break;
    case Errc::not_connected:
      ++k.not_connected;
      break;
    case Errc::connection_lost:
      ++k.connection_lost;
      break;
    case Errc::overloaded:
      ++k.overloaded;
      break;
    case Errc::cancelled:
      ++k.cancelled;
      break;
    case Errc::stopped:
      ++k.stopped;
      break;
    case Errc::invalid_argument:
      ++k.invalid;
      break;
  }
}

void Client::Impl::fail_now(Handler handler, Errc code, std::string message) {
  Result r = Error{code, std::move(message)};
  count(r);
  complete_later(std::move(handler), std::move(r), ex);
}

template <typename Args>
void Client::Impl::submit(const Args& args, Deadline deadline, Handler handler, bool on_executor,
                          bool may_wait) {
  if (stopped) return fail_now(std::move(handler), Errc::stopped, "client stopped");
  if (args.empty()) return fail_now(std::move(handler), Errc::invalid_argument, "empty command");
  if (detail::is_unsupported_command(args[0]))
    return fail_now(
        std::move(handler), Errc::invalid_argument,
        std::string(args[0]) + " is not supported (it changes the state of the shared connection)");
  if ((!conn || !conn->ready || !conn->open) && may_wait && started && status.refused &&
      !deadline.expired()) {
    // The server refused at once until now: one attempt now costs a refused connect while it is
    // still down, and sends the command as soon as it is back (a copy of the arguments waits).
    auto then = [self = shared_from_this(), owned = std::vector<std::string>(args.begin(), args.end()),
                 deadline, h = std::move(handler), on_executor](bool connected) mutable {
      if (!connected && deadline.expired())
        return self->fail_now(std::move(h), Errc::timeout, "deadline passed while connecting");
      self->submit(owned, deadline, std::move(h), on_executor, false);
    };
    add_waiter(deadline, Client::ConnectedHandler(std::move(then)), true);
    start_attempt_now();
    return;
  }
  if (!conn || !conn->ready || !conn->open) {
    std::string msg = "not connected";
    if (!status.last_error.empty()) msg += ": " + status.last_error;
    return fail_now(std::move(handler), Errc::not_connected, std::move(msg));
  }
  if (conn->pending.size() >= settings.max_pending)
    return fail_now(std::move(handler), Errc::overloaded,
                    std::to_string(conn->pending.size()) + " commands already outstanding");
  const auto now = Clock::now();
  if (deadline.expired(now))
    return fail_now(std::move(handler), Errc::timeout, "deadline passed before sending");

  Conn& c = *conn;
  Conn::Command& cmd = queue_command(c, args, now);
  cmd.deadline = deadline.at();
  cmd.handler.emplace(std::move(handler));
  cmd.on_executor = on_executor;

  cmd.slot = asio::get_associated_cancellation_slot(*cmd.handler);
  if (cmd.slot.is_connected()) {
    cmd.slot.assign([weak_conn = std::weak_ptr<Conn>(conn), weak_impl = weak_from_this(),
                     seq = cmd.seq](asio::cancellation_type) {
      auto cc = weak_conn.lock();
      auto self = weak_impl.lock();
      if (!cc || !self) return;
      if (Conn::Command* found = cc->find(seq))
        self->finish(*found, Error{Errc::cancelled, "cancelled"}, true);
    });
  }
  if (cmd.deadline < c.deadline_at) arm_deadline(conn, cmd.deadline);
  arm_watchdog();
}

void Client::Impl::finish(Conn::Command& cmd, Result&& r, bool from_slot, Conn* reading) {
  if (!cmd.handler) return;
  Handler h(std::move(*cmd.handler));
  cmd.handler.reset();
  if (!from_slot && cmd.slot.is_connected()) cmd.slot.clear();
  count(r);
  if (reading != nullptr && reading->in_read) {
    reading->read_completions.emplace_back(std::move(h), std::move(r), cmd.on_executor);
    return;
  }
  complete_later(std::move(h), std::move(r), ex);
}

// Re-arming for an earlier deadline aborts the wait in flight (its handler sees the error and does
// nothing). Deadlines mostly come in increasing order (each command's is its call's budget from
// now), so the timer is armed about once per budget, not once per command.
void Client::Impl::arm_deadline(const std::shared_ptr<Conn>& c, Clock::time_point at) {
  c->deadline_at = at;
  c->deadline_timer.expires_at(at);
  c->deadline_timer.async_wait([weak_impl = weak_from_this(), c](const error_code& ec) {
    if (ec) return;
    if (auto self = weak_impl.lock()) self->expire_commands(c);
  });
}

void Client::Impl::expire_commands(const std::shared_ptr<Conn>& c) {
  c->deadline_at = Clock::time_point::max();
  const auto now = Clock::now();
  auto next = Clock::time_point::max();
  for (Conn::Command& cmd : c->pending) {
    if (!cmd.handler) continue;
    if (cmd.deadline <= now) {
      finish(cmd, Error{Errc::timeout, "no reply within the deadline"});
    } else {
      next = std::min(next, cmd.deadline);
    }
  }
  if (next != Clock::time_point::max() && c->open) arm_deadline(c, next);
}

// Drops a connection on which the server has sent nothing for stall_timeout since the oldest
// outstanding command reached it (Conn::stall_reference). Not simply "the oldest command is that
// old": a large burst may take longer than stall_timeout to send and answer while bytes flow.
void Client::Impl::arm_watchdog() {
  if (watchdog_armed || !conn || conn->pending.empty()) return;
  watchdog_armed = true;
  watchdog.expires_at(conn->stall_reference() + settings.stall_timeout);
  watchdog.async_wait([self = shared_from_this(), c = conn](const error_code& ec) {
    if (ec) return;  // cancelled by whoever reset watchdog_armed
    self->watchdog_armed = false;
    if (self->conn != c || !c->open || c->pending.empty()) return;
    // Our own loop may have been late (busy, or the machine loaded): bytes waiting to be read, or
    // a socket ready to take output we have not written yet, are not the server stalling.
    pollfd p{c->socket.native_handle(), POLLIN | POLLOUT, 0};
    if (::poll(&p, 1, 0) == 1) {
      const auto now = Clock::now();
      if ((p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) c->last_read = now;
      if ((p.revents & POLLOUT) != 0 && c->unwritten > 0) c->last_write = now;
    }
    if (Clock::now() - c->stall_reference() >= self->settings.stall_timeout) {
      ++self->status.counters.stalls;
      self->close_conn(c, "no reply for " + ms_text(self->settings.stall_timeout) + ": connection stalled");
      return;
    }
    self->arm_watchdog();
  });
}

void Client::Impl::complete_waiters(bool connected, bool attempts_only) {
  std::vector<std::shared_ptr<Waiter>> list;
  if (attempts_only) {
    std::erase_if(waiters, [&](const std::shared_ptr<Waiter>& w) {
      if (w->one_attempt) list.push_back(w);
      return w->one_attempt;
    });
  } else {
    list = std::move(waiters);
    waiters.clear();
  }
  for (auto& w : list) {
    if (!w->handler) continue;
    ConnectedHandler h(std::move(*w->handler));
    w->handler.reset();
    w->timer.cancel();
    complete_later(std::move(h), connected, ex);
  }
}

// ---- Client -------------------------------------------------------------------------------------

Client::Client(executor_type executor, Settings settings) : executor_(executor) {
  settings.validate();
  ignore_sigpipe();
  impl_ = std::make_shared<Impl>(std::move(executor), std::move(settings));
}

Client::~Client() {
  impl_->stop();
}

void Client::start() {
  impl_->start();
}

void Client::stop() {
  impl_->stop();
}

Client::executor_type Client::get_executor() const {
  return executor_;
}

bool Client::reset(std::string_view reason, std::uint64_t connection_id) {
  return impl_->reset(reason, connection_id);
}

bool Client::retarget(std::string host, std::uint16_t port) {
  return impl_->retarget(std::move(host), port);
}

std::uint64_t Client::connection_id() const {
  const auto& c = impl_->conn;
  return c && c->ready && c->open ? c->id : 0;
}

bool Client::connected() const {
  return impl_->status.state == State::connected;
}

Status Client::status() const {
  Status s = impl_->status;
  s.outstanding = impl_->conn ? impl_->conn->pending.size() : 0;
  return s;
}

const Settings& Client::settings() const {
  return impl_->settings;
}

void Client::start_command(std::vector<std::string> args, Deadline deadline, Handler handler,
                           bool on_executor) {
  impl_->submit(args, deadline, std::move(handler), on_executor);
}

void Client::start_command_view(std::span<const std::string_view> args, Deadline deadline, Handler handler,
                                bool on_executor) {
  impl_->submit(args, deadline, std::move(handler), on_executor);
}

void Client::start_eval(const Script& script, std::vector<std::string> keys, std::vector<std::string> args,
                        Deadline deadline, Handler handler) {
  auto first = detail::eval_command("EVALSHA", script.sha1(), keys, args);
  auto slot = asio::get_associated_cancellation_slot(handler);
  // On NOSCRIPT, the same deadline covers the EVAL that follows (it also caches the script).
  auto on_first = [impl = impl_, source = script.source(), keys = std::move(keys), args = std::move(args),
                   deadline, h = std::move(handler)](Result r) mutable {
    if (r && detail::is_noscript(*r) && !impl->stopped) {
      impl->submit(detail::eval_command("EVAL", source, keys, args), deadline, std::move(h), false);
      return;
    }
    complete_later(std::move(h), std::move(r), impl->ex);
  };
  impl_->submit(std::move(first), deadline, Handler(asio::bind_cancellation_slot(slot, std::move(on_first))),
                false);
}

void Client::start_wait_connected(Deadline deadline, ConnectedHandler handler) {
  auto& impl = *impl_;
  if (impl.stopped || impl.status.state == State::connected) {
    const bool ok = !impl.stopped;
    return complete_later(std::move(handler), ok, impl.ex);
  }
  impl.add_waiter(deadline, std::move(handler), false);
}

void Client::start_connect_now(Deadline deadline, ConnectedHandler handler) {
  auto& impl = *impl_;
  if (impl.stopped || !impl.started || impl.status.state == State::connected || !impl.status.refused) {
    const bool ok = !impl.stopped && impl.status.state == State::connected;
    return complete_later(std::move(handler), ok, impl.ex);
  }
  impl.add_waiter(deadline, std::move(handler), true);
  impl.start_attempt_now();
}

// Connects at once unless an attempt is under way (then its outcome is awaited).
void Client::Impl::start_attempt_now() {
  if (status.state != State::disconnected || conn) return;
  retry_timer.cancel();  // its handler sees operation_aborted and does nothing
  connect();             // may fail at once (attempt_failed completes the waiters)
}

void Client::Impl::add_waiter(Deadline deadline, ConnectedHandler handler, bool one_attempt) {
  auto w = std::make_shared<Waiter>(ex);
  w->handler.emplace(std::move(handler));
  w->one_attempt = one_attempt;
  waiters.push_back(w);
  w->timer.expires_at(deadline.at());
  w->timer.async_wait([self = shared_from_this(), w](const error_code& ec) {
    if (ec || !w->handler) return;
    ConnectedHandler h(std::move(*w->handler));
    w->handler.reset();
    std::erase(self->waiters, w);
    complete_later(std::move(h), false, self->ex);
  });
}

}  // namespace clients::redis
