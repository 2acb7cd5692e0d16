// clients::redis: an Asio-driven Redis client for one endpoint (host:port): its own non-blocking
// socket and reply parser (redis_reply_reader.h).
//
// What it is for: cache calls that must never hold a request hostage. Every command has a
// deadline and completes by it (with a reply or an error, never an exception); the connection is
// kept up in the background (connect with a deadline, reconnect with exponential backoff and
// jitter); a connection whose replies stop coming is dropped instead of queueing behind it; when
// there is no usable connection, commands fail at once (`not_connected`) so the caller can go
// elsewhere (a replica, the database) instead of waiting.
//
// Usage (inside a coroutine running on the client's executor):
//   clients::redis::Client redis(io.get_executor(), {.host = "127.0.0.1", .port = 6379});
//   redis.start();                                            // connects in the background
//   std::vector<std::string> args{"HGETALL", "user:42"};
//   clients::redis::Result r = co_await redis.command(std::move(args), 100ms);
//   if (!r) log(r.error().message);                           // timeout, not_connected, ...
//   else if (r->is_error()) log(r->str);                      // the server said ERR ...
//   else for (auto& e : r->elements) use(e.str);
//
//   static const clients::redis::Script get(R"(return redis.call('GET', KEYS[1]))");
//   std::vector<std::string> keys{"k"};                       // (GCC 12: no braced list in co_await)
//   auto v = co_await redis.eval(get, std::move(keys), {}, 100ms);  // EVALSHA, EVAL on NOSCRIPT
//   redis.status();                                           // state, since, last error, counts
//   redis.retarget("127.0.0.1", 6380);                        // after a failover: new address now
//   redis.stop();                                             // or just destroy it
//
// Every async operation also takes any Asio completion token as its last argument (the default is
// `use_awaitable`), e.g. a callback: `redis.command(args, 100ms, [](Result r) { ... });`.
//
// Guarantees:
// - Deadlines: an operation completes no later than its deadline (plus event-loop latency): a
//   command whose deadline passes completes at once with `timeout`; its reply, should it arrive
//   later, is discarded. A connect attempt (TCP connect plus the AUTH/SELECT/PING handshake) that
//   does not finish within `connect_timeout` is abandoned and counts as a failed attempt.
// - Stalled connections: if the server sends nothing for `stall_timeout` (default 500 ms, far past
//   any cache deadline) after the oldest outstanding command was written to it (or the socket
//   takes no bytes for that long while it is still unsent), the connection is dropped (every outstanding
//   command completes with `connection_lost`) and re-established with backoff. At most `max_pending` commands
//   are outstanding on the connection; beyond that commands fail at once with `overloaded`. So a slow or
//   blackholed server never builds an unbounded queue, and reconnects are paced by the backoff
//   (the handshake of the new connection must answer within `connect_timeout`).
// - Desynchronised connections: replies are matched to commands in order; a caller that
//   receives a reply that cannot belong to its command calls reset(), which drops the connection
//   (outstanding commands fail with `connection_lost`) and reconnects with backoff.
// - Reconnect: after a lost connection or a failed attempt the next attempt waits
//   Backoff::next() (25 ms growing to 500 ms by default, with jitter); a successful handshake resets
//   it. So the client is connected again at most ~`backoff.max` + one round trip after the server
//   is back. A refused attempt (or a connection reset or closed by the server) keeps the delay at
//   `backoff.initial`: the host answers, so asking again is cheap and finds a returning server at
//   once; attempts that time out back off. connect_now() skips the wait for a caller that needs
//   the server now (a circuit breaker's trial call), but only while attempts are refused.
// - Commands are only sent on an established, handshaken connection; while there is none they
//   fail at once with `not_connected` (no queueing while disconnected). Except while the server
//   refuses at once (Status::refused): then a command joins one immediate connect attempt (a refused
//   connect while the server is still down: `not_connected` in microseconds) and is sent as soon as
//   it succeeds, so the first command after a server's return does not fail for want of the
//   reconnect backoff. Commands issued together pipeline on the one connection; replies are matched
//   in order. Commands issued in one turn of the event loop leave in one send(2), made after that
//   turn without first waiting for the socket to be writable.
// - Cost: a command needs no timer and no allocation of its own in the client (one deadline timer
//   per connection, armed for the earliest deadline outstanding; the command is formatted into the
//   connection's output buffer); what remains is the reply itself (one allocation, one more for an
//   array). A server that sends a reply no command awaits is dropped.
// - Binary-safe: arguments and replies are byte strings (std::string may hold any bytes).
// - No pub/sub: SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE, (P|S)UNSUBSCRIBE, MONITOR and HELLO are rejected
//   with `invalid_argument` (they change the protocol state of the shared connection). Blocking
//   commands (BLPOP ...) must time out before `stall_timeout`, or the connection is dropped.
// - Threading: a Client is bound to the executor given at construction, which must run on one
//   thread at a time (an io_context run by one thread, or a strand). Every member function must be
//   called on that executor. Completion handlers are never invoked inside the initiating call;
//   a reply's handler that runs on this executor is called once its read is parsed, others are
//   posted to the handler's associated executor.
// - Lifetime: stop() (or the destructor) cancels every timer, closes the connection and completes
//   every outstanding operation with `stopped`; it is safe to destroy the Client while operations
//   are in flight (their handlers still run, with `stopped`, and must not touch the Client).
// - Cancellation: Asio per-operation cancellation (e.g. awaitable operators, bind_cancellation_slot)
//   completes a command at once with `cancelled`; its late reply is discarded.
// - SIGPIPE: constructing a Client calls clients::ignore_sigpipe() (see support.h).
#pragma once

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/result.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "clients/support.h"

namespace clients::redis {

// A reply, an owned value: nothing of the parser's memory stays in it.
struct Reply {
  enum class Type : std::uint8_t { nil, integer, string, status, error, array };

  Type type = Type::nil;
  std::int64_t integer = 0;       // Type::integer
  std::string str{};              // Type::string (bulk, binary-safe), Type::status, Type::error
  std::vector<Reply> elements{};  // Type::array (a nil array is Type::nil)

  bool is_nil() const { return type == Type::nil; }
  bool is_integer() const { return type == Type::integer; }
  bool is_string() const { return type == Type::string; }
  bool is_status() const { return type == Type::status; }
  bool is_error() const { return type == Type::error; }
  bool is_array() const { return type == Type::array; }
  // True for a status reply equal to `s` (e.g. "OK", "PONG").
  bool is_status(std::string_view s) const { return type == Type::status && str == s; }

  static Reply nil() { return {}; }
  static Reply from_integer(std::int64_t v) { return {Type::integer, v, {}, {}}; }
  static Reply from_string(std::string s) { return {Type::string, 0, std::move(s), {}}; }
  static Reply from_status(std::string s) { return {Type::status, 0, std::move(s), {}}; }
  static Reply from_error(std::string s) { return {Type::error, 0, std::move(s), {}}; }
  static Reply from_array(std::vector<Reply> e) { return {Type::array, 0, {}, std::move(e)}; }

  friend bool operator==(const Reply&, const Reply&) = default;
};

// Why an operation produced no reply. An error *reply* from the server (e.g. "WRONGTYPE ...") is
// not one of these: it is a successful Result holding a Reply of Type::error.
enum class Errc : std::uint8_t {
  timeout = 1,       // the deadline passed before the reply arrived
  not_connected,     // no established connection when the command was issued
  connection_lost,   // the connection broke (or was dropped as stalled) before the reply
  overloaded,        // max_pending commands already outstanding on the connection
  cancelled,         // per-operation cancellation was requested
  stopped,           // the client was stopped or destroyed
  invalid_argument,  // empty command, or a command this client does not support (see above)
};
std::string_view to_string(Errc code);

struct Error {
  Errc code;
  std::string message{};  // human-readable detail, e.g. "connection lost: Connection reset by peer"
};

using Result = boost::system::result<Reply, Error>;

// Lets Result::value() throw (std::runtime_error with the message) when used off the data path.
[[noreturn]] void throw_exception_from_error(const Error& e, const boost::source_location& loc);

struct Settings {
  std::string host = "127.0.0.1";  // numeric IPv4/IPv6 address: no DNS lookup on the event loop
  std::uint16_t port = 6379;
  std::string password{};      // AUTH on connect when not empty
  int database = 0;            // SELECT on connect when not 0
  std::string name = "redis";  // shown in logs and status
  // Local IP (numeric) the outgoing socket is bound to before connecting; empty: any. Lets faults
  // (a partition, a toxic) hit one process's path and not another's on the same host.
  std::string source_address{};

  std::chrono::milliseconds connect_timeout{200};  // TCP connect + AUTH/SELECT/PING handshake
  std::chrono::milliseconds stall_timeout{500};    // server silent this long: drop the connection
  std::size_t max_pending = 1024;                  // outstanding commands per connection
  BackoffPolicy reconnect{};                       // pacing of reconnect attempts

  // Throws std::invalid_argument naming the bad field.
  void validate() const;
};

enum class State : std::uint8_t {
  idle,          // constructed, start() not called yet
  connecting,    // a connect attempt (TCP + handshake) is under way
  connected,     // established and handshaken: commands are sent
  disconnected,  // waiting (backoff) before the next attempt
  stopped,       // stop() was called
};
std::string_view to_string(State state);

// Counts since construction. Every command completes exactly once, with one of these outcomes.
struct Counters {
  std::uint64_t replies = 0;  // a reply arrived in time (includes error replies)
  std::uint64_t error_replies = 0;
  std::uint64_t timeouts = 0;
  std::uint64_t not_connected = 0;
  std::uint64_t connection_lost = 0;
  std::uint64_t overloaded = 0;
  std::uint64_t cancelled = 0;
  std::uint64_t stopped = 0;
  std::uint64_t invalid = 0;
  std::uint64_t late_replies = 0;  // replies that arrived after their command had completed

  std::uint64_t connects = 0;          // connections established (handshake done)
  std::uint64_t connect_failures = 0;  // attempts that failed or timed out
  std::uint64_t disconnects = 0;       // established connections lost, dropped or closed
  std::uint64_t stalls = 0;            // of which: dropped because replies stopped coming
  std::uint64_t resets = 0;            // of which: dropped by reset()
};

struct Status {
  State state = State::idle;
  std::chrono::system_clock::time_point since{};  // when `state` was entered
  std::string last_error{};                       // the latest connection-level error, if any
  // The latest failed attempt or lost connection was the host answering at once (refused, reset,
  // closed): reconnects stay at the initial backoff and connect_now() may try.
  bool refused = false;
  std::size_t outstanding = 0;  // commands sent and not yet answered
  Counters counters{};
};

// A Lua script, identified by the SHA1 of its source (computed once, here).
class Script {
 public:
  explicit Script(std::string source);
  const std::string& source() const { return source_; }
  const std::string& sha1() const { return sha1_; }  // 40 lowercase hex digits

 private:
  std::string source_;
  std::string sha1_;
};

class Client {
 public:
  using executor_type = boost::asio::any_io_executor;
  using Handler = boost::asio::any_completion_handler<void(Result)>;
  using ConnectedHandler = boost::asio::any_completion_handler<void(bool)>;

  // Validates the settings (throws std::invalid_argument); does no I/O until start().
  Client(executor_type executor, Settings settings);
  ~Client();  // stop()
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Begins connecting in the background; idempotent. Reconnects forever until stop().
  void start();
  // Cancels timers, closes the connection, completes everything outstanding with `stopped`.
  void stop();

  executor_type get_executor() const;

  // Sends one command (name and arguments, binary-safe) and completes with its reply or an error
  // by `deadline`. Signature: void(Result).
  template <typename CompletionToken = const boost::asio::use_awaitable_t<>&>
  auto command(std::vector<std::string> args, Deadline deadline,
               CompletionToken&& token = boost::asio::use_awaitable) {
    return boost::asio::async_initiate<CompletionToken, void(Result)>(
        [this](auto handler, std::vector<std::string> a, Deadline d) {
          const bool here = on_client_executor(handler);
          start_command(std::move(a), d, Handler(std::move(handler)), here);
        },
        token, std::move(args), deadline);
  }

  // The same for a command whose arguments the caller holds: they are read only when the
  // operation starts (formatted at once), so views of the caller's strings do, and nothing is
  // copied or allocated for them.
  template <typename CompletionToken = const boost::asio::use_awaitable_t<>&>
  auto command_view(std::span<const std::string_view> args, Deadline deadline,
                    CompletionToken&& token = boost::asio::use_awaitable) {
    return boost::asio::async_initiate<CompletionToken, void(Result)>(
        [this](auto handler, std::span<const std::string_view> a, Deadline d) {
          const bool here = on_client_executor(handler);
          start_command_view(a, d, Handler(std::move(handler)), here);
        },
        token, args, deadline);
  }

  // EVALSHA with the script's SHA1; if the server does not know the script (NOSCRIPT, e.g. after
  // a restart or SCRIPT FLUSH), EVAL with its source, within the same deadline. `script` must
  // outlive the operation (typically a static).
  template <typename CompletionToken = const boost::asio::use_awaitable_t<>&>
  auto eval(const Script& script, std::vector<std::string> keys, std::vector<std::string> args,
            Deadline deadline, CompletionToken&& token = boost::asio::use_awaitable) {
    return boost::asio::async_initiate<CompletionToken, void(Result)>(
        [this, &script](auto handler, std::vector<std::string> k, std::vector<std::string> a, Deadline d) {
          start_eval(script, std::move(k), std::move(a), d, Handler(std::move(handler)));
        },
        token, std::move(keys), std::move(args), deadline);
  }

  // PING: the cheap end-to-end probe. A healthy answer is a Reply with is_status("PONG").
  template <typename CompletionToken = const boost::asio::use_awaitable_t<>&>
  auto ping(Deadline deadline, CompletionToken&& token = boost::asio::use_awaitable) {
    return command({"PING"}, deadline, std::forward<CompletionToken>(token));
  }

  // Completes with true as soon as the client is connected (at once if it is), false at the
  // deadline or on stop(). For start-up and tests; commands never wait for a connection.
  template <typename CompletionToken = const boost::asio::use_awaitable_t<>&>
  auto wait_connected(Deadline deadline, CompletionToken&& token = boost::asio::use_awaitable) {
    return boost::asio::async_initiate<CompletionToken, void(bool)>(
        [this](auto handler, Deadline d) { start_wait_connected(d, ConnectedHandler(std::move(handler))); },
        token, deadline);
  }

  // Completes with true at once when connected. Otherwise, if the latest attempt was refused
  // (Status::refused), starts an attempt now (or joins the one under way) and completes with its
  // outcome: true once connected, false when it fails or at the deadline. While attempts time out
  // (a blackholed host) it completes with false at once: the caller is not made to wait for one.
  // Signature: void(bool).
  template <typename CompletionToken = const boost::asio::use_awaitable_t<>&>
  auto connect_now(Deadline deadline, CompletionToken&& token = boost::asio::use_awaitable) {
    return boost::asio::async_initiate<CompletionToken, void(bool)>(
        [this](auto handler, Deadline d) { start_connect_now(d, ConnectedHandler(std::move(handler))); },
        token, deadline);
  }

  // Drops the established connection at once, as if it had been lost: every outstanding command
  // completes with `connection_lost` ("connection lost: reset: <reason>"), later commands fail with
  // `not_connected`, and a new connection is made after the reconnect backoff. For a caller that
  // finds a connection unusable although it is up, typically a reply that does not fit its command:
  // the reply stream is then out of step with the commands (bytes lost or injected on the way), so
  // every later reply on that connection would be matched to the wrong command.
  // With `connection_id` (connection_id() read when the command was issued), only that connection
  // is dropped: one established since then is left alone. Returns whether a connection was dropped.
  bool reset(std::string_view reason, std::uint64_t connection_id = 0);
  // Points the client at another server (after a failover): if (host, port) differ from the current
  // address, drops the established connection as reset() does (outstanding commands complete with
  // `connection_lost`, "connection lost: retarget to <host>:<port>"), or abandons a connect attempt
  // in progress, and connects to the new address at once (no backoff wait; later retries back off
  // as usual). settings().host/port reflect the new address from the call on. Before start() it
  // only changes the address; on a stopped client it does nothing. Returns whether the address
  // changed. A host that is not a numeric IP, or port 0, is refused (returns false, logged,
  // status().last_error says why): addresses from clients::redis::Sentinel are always valid.
  bool retarget(std::string host, std::uint16_t port);
  // The established connection (increasing ids, never reused), 0 while there is none. A command
  // issued now is sent on this connection, if on any.
  std::uint64_t connection_id() const;

  bool connected() const;
  // A snapshot for health checks and metrics.
  Status status() const;
  const Settings& settings() const;

  struct Impl;

 private:
  // Whether `handler` runs on this client's executor: then its reply completes it in the handler of
  // the read that brought the reply, called directly (what a dispatch there would do, without the
  // type-erased executor lookup and the queued function). Any other is completed through its own.
  template <typename H>
  bool on_client_executor(const H& handler) const {
    return boost::asio::get_associated_executor(handler, executor_) == executor_;
  }
  void start_command(std::vector<std::string> args, Deadline deadline, Handler handler, bool on_executor);
  void start_command_view(std::span<const std::string_view> args, Deadline deadline, Handler handler,
                          bool on_executor);
  void start_eval(const Script& script, std::vector<std::string> keys, std::vector<std::string> args,
                  Deadline deadline, Handler handler);
  void start_wait_connected(Deadline deadline, ConnectedHandler handler);
  void start_connect_now(Deadline deadline, ConnectedHandler handler);

  executor_type executor_;  // the Impl's too; here for on_client_executor, which this header inlines
  std::shared_ptr<Impl> impl_;
};

}  // namespace clients::redis
