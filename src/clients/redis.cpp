// The Redis client: hiredis' async API driven by Asio. Callback style on purpose (no coroutines
// here): the data path is a handful of small handlers, and this file compiles quickly.
//
// Ownership and re-entrancy rules, which everything below follows:
// - Client::Impl is shared: every timer handler holds a shared_ptr to it, so handlers that run
//   after the Client is gone find it alive (and stopped).
// - Conn wraps one redisAsyncContext and is the hiredis event-library adapter (ac->ev.data). Its
//   socket is watched with a stream_descriptor that is release()d in hiredis' cleanup hook, never
//   closed by Asio (hiredis closes the fd). `ac` becomes nullptr in that hook: hiredis may free the
//   context inside redisAsyncHandleRead/Write, so every handler re-checks it.
// - Inside hiredis callbacks we only copy replies, update counters and post: no hiredis call, no
//   user code. Completion handlers always run from a post, never inside hiredis.
// - Every command is an entry of its connection's `pending` queue, in the order given to hiredis;
//   hiredis calls the reply callback exactly once per command, in that order (with NULL when the
//   context is freed), which pops it. So a command needs no allocation of its own: its entry holds
//   its handler, and one timer per connection (set to the earliest deadline outstanding) completes
//   the commands whose deadline passed.
// - Commands are formatted into one reused buffer and handed to hiredis preformatted, and written
//   by a posted flush (one per batch of commands issued together) rather than after waiting for the
//   socket to be writable: only a write that cannot take everything waits for writability.
#include "clients/redis.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <poll.h>

#include <algorithm>
#include <boost/asio/append.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

#include "clients/redis_detail.h"
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
// executor if it has one (never inline, never inside hiredis).
template <typename Sig, typename Arg>
void complete_later(asio::any_completion_handler<Sig> h, Arg r, const asio::any_io_executor& ex) {
  asio::post(ex, asio::append(std::move(h), std::move(r)));
}

std::string ms_text(std::chrono::milliseconds d) {
  return std::to_string(d.count()) + " ms";
}

enum class HandshakeStep : std::uintptr_t { auth = 1, select = 2, ping = 3 };

}  // namespace

struct Conn : std::enable_shared_from_this<Conn> {
  Conn(Client::Impl* owner_impl, std::weak_ptr<Client::Impl> owner_weak, const asio::any_io_executor& ex,
       std::uint64_t conn_id)
      : impl(owner_impl), owner(std::move(owner_weak)), sd(ex), deadline_timer(ex), id(conn_id) {}

  Client::Impl* impl;                 // valid while `ac` is (the Impl frees `ac` before dying)
  std::weak_ptr<Client::Impl> owner;  // for posted work, which may outlive the Impl
  redisAsyncContext* ac = nullptr;
  asio::posix::stream_descriptor sd;
  bool want_read = false, want_write = false;  // what hiredis asked for
  bool reading = false, writing = false;       // an async_wait is in flight
  bool flush_posted = false;                   // a flush() is posted
  bool flushing = false;                       // inside flush(): a write that left bytes waits
  bool ready = false;                          // handshake done
  bool handshake_failed = false;
  // A user command awaiting its reply, in the order given to hiredis: its handler (empty once
  // completed: deadline, cancellation), deadline, when it was queued, and when hiredis had written
  // it out (known when its output buffer empties: the delWrite hook).
  struct Command {
    std::uint64_t seq;
    Clock::time_point deadline;
    Clock::time_point queued;
    Clock::time_point written = Clock::time_point::max();
    std::optional<Client::Handler> handler{};
    asio::cancellation_slot slot{};
    bool on_executor = false;  // the handler runs on the client's executor (Client::on_client_executor)
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
  Clock::time_point last_read{};   // the latest readable event (bytes or EOF from the server)
  Clock::time_point last_write{};  // the latest writable event while output was pending

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

  // Replies completed while hiredis parses what one read brought: their handlers run once hiredis
  // has returned, in reply order, each resumed at once rather than through a post of its own.
  bool in_read = false;
  struct ReadCompletion {
    Client::Handler handler;
    Result result;
    bool on_executor;
  };
  std::vector<ReadCompletion> read_completions, running_completions;
  void run_read_completions();

  void arm_read();
  void arm_write();
  // hiredis has output: a flush is posted (once per batch of commands), or, before the TCP connect
  // completes or after a write that could not take everything, a wait for writability.
  void want_to_write();
  void flush();
  void on_cleanup();
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
    if (conn && conn->ac) {
      stopped = true;
      redisAsyncFree(conn->ac);
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
  std::string command_buffer;  // reused for every command formatted

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
    if (conn && conn->ac) {
      conn->close_reason = "client stopped";
      redisAsyncFree(conn->ac);  // completes every outstanding command (with `stopped`)
    }
    conn.reset();
    set_state(State::stopped);
    complete_waiters(false);
  }

  bool reset(std::string_view reason, std::uint64_t id) {
    if (stopped || !conn || !conn->ready || conn->ac == nullptr) return false;
    if (id != 0 && conn->id != id) return false;
    ++status.counters.resets;
    common::log::warn("redis connection reset", {{"client", settings.name}, {"reason", reason}});
    // As for a stall: hiredis completes everything outstanding (NULL replies: connection_lost),
    // then the cleanup hook posts on_closed(), which schedules the reconnect with backoff.
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
      // `conn` no longer points at it, so its on_closed() (posted by the cleanup hook) is ignored:
      // account for it here. hiredis completes its outstanding commands with NULL replies, which
      // lost_error() turns into `connection_lost` with this reason.
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
  void send_handshake(Conn& c, const std::vector<std::string>& args, HandshakeStep step);
  // Formats `args` into command_buffer and hands them to hiredis (false: the context is closing).
  // Args: std::vector<std::string> or std::span<const std::string_view> (read at once only).
  template <typename Args>
  bool queue_command(Conn& c, const Args& args, redisCallbackFn* fn, void* privdata);
  // `on_executor`: see Client::on_client_executor. `may_wait`: while the server refuses and there is
  // no connection, the command joins one immediate connect attempt instead of failing at once.
  template <typename Args>
  void submit(const Args& args, Deadline deadline, Handler handler, bool on_executor, bool may_wait = true);
  void start_attempt_now();
  // Completes a command: from the handler of the read that brought its reply when `reading` is in
  // one (Conn::run_read_completions), otherwise through a post.
  void finish(Conn::Command& cmd, Result r, bool from_slot = false, Conn* reading = nullptr);
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

// ---- hiredis event-library adapter -------------------------------------------------------------

namespace {

void ev_add_read(void* p) {
  auto* c = static_cast<Conn*>(p);
  c->want_read = true;
  c->arm_read();
}
void ev_del_read(void* p) {
  static_cast<Conn*>(p)->want_read = false;
}
void ev_add_write(void* p) {
  auto* c = static_cast<Conn*>(p);
  c->want_write = true;
  c->want_to_write();
}
void ev_del_write(void* p) {
  auto* c = static_cast<Conn*>(p);
  c->want_write = false;
  c->flushed();  // hiredis stops writing when its output buffer is empty
}
void ev_cleanup(void* p) {
  static_cast<Conn*>(p)->on_cleanup();
}

}  // namespace

void Conn::arm_read() {
  if (reading || ac == nullptr || !want_read) return;
  reading = true;
  sd.async_wait(asio::posix::stream_descriptor::wait_read, [self = shared_from_this()](const error_code& ec) {
    self->reading = false;
    if (ec == asio::error::operation_aborted || self->ac == nullptr) return;
    self->last_read = Clock::now();
    if (self->want_read) {
      self->in_read = true;
      redisAsyncHandleRead(self->ac);  // may free the context (ac -> nullptr)
      self->in_read = false;
      self->run_read_completions();
    }
    self->arm_read();
  });
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

void Conn::arm_write() {
  if (writing || ac == nullptr || !want_write) return;
  writing = true;
  sd.async_wait(asio::posix::stream_descriptor::wait_write,
                [self = shared_from_this()](const error_code& ec) {
                  self->writing = false;
                  if (ec == asio::error::operation_aborted || self->ac == nullptr) return;
                  if (self->want_write) {
                    self->last_write = Clock::now();
                    self->flushing = true;
                    redisAsyncHandleWrite(self->ac);  // may free the context
                    self->flushing = false;
                  }
                  self->arm_write();
                });
}

void Conn::want_to_write() {
  if (ac == nullptr || writing || flush_posted) return;
  if (flushing || (ac->c.flags & REDIS_CONNECTED) == 0) return arm_write();
  flush_posted = true;
  asio::post(sd.get_executor(), [self = shared_from_this()] { self->flush(); });
}

// Writes what hiredis has queued (every command issued since the flush was posted) without asking
// the reactor first: a connected socket almost always takes it. hiredis calls delWrite when all of
// it went out, or addWrite again (then, `flushing`, a wait for writability) when some is left.
void Conn::flush() {
  flush_posted = false;
  if (ac == nullptr || !want_write || writing) return;
  last_write = Clock::now();
  flushing = true;
  redisAsyncHandleWrite(ac);  // may free the context (ac -> nullptr)
  flushing = false;
}

// hiredis is about to free the context (and close the fd). Called inside hiredis.
void Conn::on_cleanup() {
  if (ac != nullptr && close_reason.empty() && ac->c.err != 0) close_reason = ac->c.errstr;
  ac = nullptr;
  want_read = want_write = false;
  deadline_timer.cancel();         // every command is completed by hiredis' NULL replies
  if (sd.is_open()) sd.release();  // cancels our waits; the fd stays hiredis' to close
  asio::post(sd.get_executor(), [self = shared_from_this()] {
    if (auto owner_impl = self->owner.lock()) owner_impl->on_closed(self);
  });
}

// ---- hiredis callbacks (run inside hiredis: copy, count, post; nothing else) --------------------

namespace {

void on_connect_cb(const redisAsyncContext* ac, int status) {
  auto* c = static_cast<Conn*>(ac->data);
  if (status != REDIS_OK && c != nullptr && c->close_reason.empty())
    c->close_reason = std::string("connect failed: ") + (ac->c.err != 0 ? ac->c.errstr : "unknown error");
}

void on_disconnect_cb(const redisAsyncContext* ac, int status) {
  auto* c = static_cast<Conn*>(ac->data);
  if (status != REDIS_OK && c != nullptr && c->close_reason.empty() && ac->c.err != 0)
    c->close_reason = ac->c.errstr;
}

void on_handshake_cb(redisAsyncContext* ac, void* r, void* privdata) {
  auto* c = static_cast<Conn*>(ac->data);
  if (r == nullptr || c == nullptr || c->handshake_failed) return;  // going away: cleanup reports it
  const auto step = static_cast<HandshakeStep>(reinterpret_cast<std::uintptr_t>(privdata));
  const Reply& reply = detail::built_reply(r);
  const char* what = step == HandshakeStep::auth ? "AUTH" : step == HandshakeStep::select ? "SELECT" : "PING";
  const bool ok = step == HandshakeStep::ping ? reply.is_status("PONG") : reply.is_status("OK");
  if (!ok) {
    c->handshake_failed = true;
    c->close_reason =
        std::string("handshake ") + what + " failed: " + (reply.is_error() ? reply.str : "unexpected reply");
    asio::post(c->sd.get_executor(), [self = c->shared_from_this()] {
      if (auto owner_impl = self->owner.lock()) owner_impl->close_conn(self, self->close_reason);
    });
    return;
  }
  if (step == HandshakeStep::ping) c->impl->on_ready(c->shared_from_this());
}

// The reply to the oldest outstanding command (hiredis answers in order).
void on_reply_cb(redisAsyncContext* ac, void* r, void*) {
  auto* c = static_cast<Conn*>(ac->data);
  if (c->pending.empty()) return;  // cannot be: one entry per command given to hiredis
  Conn::Command cmd = std::move(c->pending.front());
  c->pending.pop_front();
  c->unwritten = std::min(c->unwritten, c->pending.size());
  Client::Impl* impl = c->impl;
  if (!cmd.handler) {
    if (r != nullptr) ++impl->status.counters.late_replies;
    return;
  }
  if (r == nullptr) {
    impl->finish(cmd, impl->lost_error(*c), false, c);
    return;
  }
  impl->finish(cmd, std::move(detail::built_reply(r)), false, c);  // hiredis frees the emptied reply
}

}  // namespace

// ---- connection life cycle ----------------------------------------------------------------------

void Client::Impl::connect() {
  if (stopped) return;
  set_state(State::connecting);
  // With a source address, hiredis binds the socket to it (getaddrinfo on a numeric address: no
  // DNS) before its non-blocking connect.
  redisAsyncContext* ac =
      settings.source_address.empty()
          ? redisAsyncConnect(settings.host.c_str(), settings.port)
          : redisAsyncConnectBind(settings.host.c_str(), settings.port, settings.source_address.c_str());
  if (ac == nullptr) return attempt_failed("cannot allocate a hiredis context");
  if (ac->err != 0) {
    std::string reason = std::string("connect failed: ") + ac->errstr;
    redisAsyncFree(ac);
    return attempt_failed(reason);
  }
  auto c = std::make_shared<Conn>(this, weak_from_this(), ex, next_conn_id++);
  error_code ec;
  c->sd.assign(ac->c.fd, ec);
  if (ec) {
    redisAsyncFree(ac);  // no adapter attached yet: hiredis just closes the fd
    return attempt_failed("cannot watch the socket: " + ec.message());
  }
  detail::build_replies(ac->c.reader);
  c->ac = ac;
  ac->data = c.get();
  ac->ev.data = c.get();
  ac->ev.addRead = ev_add_read;
  ac->ev.delRead = ev_del_read;
  ac->ev.addWrite = ev_add_write;
  ac->ev.delWrite = ev_del_write;
  ac->ev.cleanup = ev_cleanup;
  conn = c;
  redisAsyncSetConnectCallback(ac, on_connect_cb);  // arms the first write event
  redisAsyncSetDisconnectCallback(ac, on_disconnect_cb);

  // The handshake is pipelined behind the TCP connect; PING's answer marks the connection ready.
  if (!settings.password.empty()) send_handshake(*c, {"AUTH", settings.password}, HandshakeStep::auth);
  if (settings.database != 0)
    send_handshake(*c, {"SELECT", std::to_string(settings.database)}, HandshakeStep::select);
  send_handshake(*c, {"PING"}, HandshakeStep::ping);

  connect_timer.expires_after(settings.connect_timeout);
  connect_timer.async_wait([self = shared_from_this(), c](const error_code& e) {
    if (e || self->conn != c || c->ready || c->ac == nullptr) return;
    self->close_conn(c, "connect timeout after " + ms_text(self->settings.connect_timeout));
  });
}

void Client::Impl::send_handshake(Conn& c, const std::vector<std::string>& args, HandshakeStep step) {
  if (c.ac == nullptr) return;
  queue_command(c, args, on_handshake_cb, reinterpret_cast<void*>(static_cast<std::uintptr_t>(step)));
}

template <typename Args>
bool Client::Impl::queue_command(Conn& c, const Args& args, redisCallbackFn* fn, void* privdata) {
  command_buffer.clear();
  detail::append_command(command_buffer, args);
  return redisAsyncFormattedCommand(c.ac, fn, privdata, command_buffer.data(), command_buffer.size()) ==
         REDIS_OK;
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
  // Called inside hiredis: waiters are completed by a post (complete_later), so this is safe.
  complete_waiters(true);
}

void Client::Impl::close_conn(const std::shared_ptr<Conn>& c, const std::string& reason) {
  if (!c || c->ac == nullptr) return;
  if (c->close_reason.empty()) c->close_reason = reason;
  redisAsyncFree(c->ac);  // NULL replies for everything outstanding, then the cleanup hook
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
  if (reason.empty() && c.ac != nullptr && c.ac->c.err != 0) reason = c.ac->c.errstr;
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
  if ((!conn || !conn->ready || conn->ac == nullptr) && may_wait && started && status.refused &&
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
  if (!conn || !conn->ready || conn->ac == nullptr) {
    std::string msg = "not connected";
    if (!status.last_error.empty()) msg += ": " + status.last_error;
    return fail_now(std::move(handler), Errc::not_connected, std::move(msg));
  }
  if (conn->pending.size() >= settings.max_pending)
    return fail_now(std::move(handler), Errc::overloaded,
                    std::to_string(conn->pending.size()) + " commands already outstanding");
  if (deadline.expired())
    return fail_now(std::move(handler), Errc::timeout, "deadline passed before sending");

  Conn& c = *conn;
  if (!queue_command(c, args, on_reply_cb, nullptr))
    return fail_now(std::move(handler), Errc::connection_lost, "connection is closing");
  Conn::Command& cmd = c.pending.emplace_back(
      Conn::Command{.seq = c.next_seq++, .deadline = deadline.at(), .queued = Clock::now()});
  ++c.unwritten;
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

void Client::Impl::finish(Conn::Command& cmd, Result r, bool from_slot, Conn* reading) {
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
  if (next != Clock::time_point::max() && c->ac != nullptr) arm_deadline(c, next);
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
    if (self->conn != c || c->ac == nullptr || c->pending.empty()) return;
    // Our own loop may have been late (busy, or the machine loaded): bytes waiting to be read, or
    // a socket ready to take output we have not written yet, are not the server stalling.
    pollfd p{c->ac->c.fd, POLLIN | POLLOUT, 0};
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
  return c && c->ready && c->ac != nullptr ? c->id : 0;
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
