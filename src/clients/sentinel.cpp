// clients::redis::Sentinel: discovery rounds, the ROLE check and the event subscriptions, as
// coroutines on the component's executor.
//
// Ownership and cancellation rules, which everything below follows:
// - Sentinel::Impl is shared: each background coroutine (the round loop, one subscription loop per
//   sentinel, each +switch-master verification) holds a shared_ptr to it, so it outlives the
//   Sentinel until they have wound down.
// - stop() makes every pending wait complete promptly: it stops the query Clients (their commands
//   complete with `stopped`), closes every raw connection (RespConn, kept in a registry) and cancels
//   every timer. Each coroutine checks `stopped` after every co_await and returns.
// - Deadlines on raw connections: a timer that cancels the socket's operations when it fires; a
//   generation number makes a late-firing timer harmless.
#include "clients/sentinel.h"

#include <algorithm>
#include <array>
#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <exception>

#include "clients/redis.h"
#include "clients/redis_detail.h"
#include "clients/redis_reply_reader.h"
#include "clients/sentinel_detail.h"
#include "common/log.h"

namespace clients::redis {
namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

std::string ms_text(std::chrono::milliseconds d) {
  return std::to_string(d.count()) + " ms";
}

// One raw RESP connection, for what clients::redis::Client does not do: a one-shot ROLE check and
// a pub/sub subscription. Every step takes a deadline; close() ends whatever is pending at once.
class RespConn : public std::enable_shared_from_this<RespConn> {
 public:
  explicit RespConn(const asio::any_io_executor& ex) : socket_(ex), timer_(ex) {}

  // Empty on success, else what went wrong.
  asio::awaitable<std::string> connect(const Address& to, const std::string& source, Deadline d) {
    error_code ec;
    const auto ip = asio::ip::make_address(to.host, ec);
    if (ec) co_return "bad address " + to.to_string();
    const tcp::endpoint ep(ip, to.port);
    socket_.open(ep.protocol(), ec);
    if (ec) co_return "cannot open a socket: " + ec.message();
    if (!source.empty()) {
      const auto src = asio::ip::make_address(source, ec);
      if (!ec) socket_.bind(tcp::endpoint(src, 0), ec);
      if (ec) co_return "cannot bind to " + source + ": " + ec.message();
    }
    arm(d);
    auto [e] = co_await socket_.async_connect(ep, kTuple);
    disarm();
    if (e) co_return timed_out_ ? "connect timeout" : "connect failed: " + e.message();
    socket_.set_option(tcp::no_delay(true), ec);
    co_return "";
  }

  asio::awaitable<std::string> write(std::string bytes, Deadline d) {
    arm(d);
    auto [e, n] = co_await asio::async_write(socket_, asio::buffer(bytes), kTuple);
    disarm();
    if (e) co_return timed_out_ ? "write timeout" : "write failed: " + e.message();
    co_return "";
  }

  struct Read {
    std::optional<Reply> reply;
    bool timed_out = false;
    std::string error{};
  };
  // The next reply; timed_out (and no error) if none is complete by the deadline.
  asio::awaitable<Read> read(Deadline d) {
    for (;;) {
      Reply reply;
      const ReplyReader::Status s = reader_.next(reply);
      if (s == ReplyReader::Status::error)
        co_return Read{std::nullopt, false, "protocol error: " + reader_.error()};
      if (s == ReplyReader::Status::reply) co_return Read{std::move(reply)};
      arm(d);
      const std::span<char> room = reader_.buffer();
      auto [e, n] = co_await socket_.async_read_some(asio::buffer(room.data(), room.size()), kTuple);
      disarm();
      reader_.commit(n);
      if (!e) continue;
      if (timed_out_) co_return Read{std::nullopt, true};
      if (e == asio::error::eof) co_return Read{std::nullopt, false, "connection closed by the server"};
      co_return Read{std::nullopt, false, "read failed: " + e.message()};
    }
  }

  void close() {
    error_code ignored;
    socket_.close(ignored);
    timer_.cancel();
  }

 private:
  void arm(Deadline d) {
    timed_out_ = false;
    timer_.expires_at(d.at());
    timer_.async_wait([weak = weak_from_this(), gen = ++generation_](const error_code& ec) {
      auto self = weak.lock();
      if (ec || !self || self->generation_ != gen) return;
      self->timed_out_ = true;
      error_code ignored;
      self->socket_.cancel(ignored);
    });
  }
  void disarm() {
    ++generation_;
    timer_.cancel();
  }

  tcp::socket socket_;
  asio::steady_timer timer_;
  ReplyReader reader_;
  std::uint64_t generation_ = 0;
  bool timed_out_ = false;
};

struct Node {
  Node(const asio::any_io_executor& ex, const Address& a, const SentinelSettings& s)
      : address(a), sub_backoff(s.reconnect), sub_timer(ex) {
    Settings cs;
    cs.host = a.host;
    cs.port = a.port;
    cs.name = "sentinel " + a.to_string();
    cs.source_address = s.source_address;
    cs.connect_timeout = s.connect_timeout;
    cs.reconnect = s.reconnect;
    client = std::make_unique<Client>(ex, std::move(cs));
    status.address = a;
  }
  Address address;
  std::unique_ptr<Client> client;       // SENTINEL queries
  SentinelNodeStatus status;            // `reachable` is computed by status()
  std::uint64_t failed_connection = 0;  // the query connection on which a query last failed
  Backoff sub_backoff;
  asio::steady_timer sub_timer;
};

struct Waiter {
  explicit Waiter(const asio::any_io_executor& ex) : timer(ex) {}
  std::optional<Sentinel::MasterHandler> handler;
  asio::steady_timer timer;
};

}  // namespace

struct Sentinel::Impl : std::enable_shared_from_this<Sentinel::Impl> {
  Impl(asio::any_io_executor executor, SentinelSettings s)
      : ex(std::move(executor)), settings(std::move(s)), round_backoff(settings.reconnect), round_timer(ex) {
    for (std::size_t i = 0; i < settings.sentinels.size(); ++i) {
      nodes.push_back(std::make_unique<Node>(ex, settings.sentinels[i], settings));
      order.push_back(i);
    }
  }

  asio::any_io_executor ex;
  SentinelSettings settings;
  std::vector<std::unique_ptr<Node>> nodes;  // configured order; never resized after construction
  std::vector<std::size_t> order;            // who is asked first
  Topology topology;
  SentinelCounters counters;
  std::vector<Listener> listeners;
  std::vector<std::shared_ptr<Waiter>> waiters;
  std::vector<std::weak_ptr<RespConn>> conns;  // closed by stop()
  std::vector<Address> switch_verifying;       // +switch-master targets being checked
  Backoff round_backoff;
  asio::steady_timer round_timer;
  bool started = false, stopped = false;
  bool refresh_pending = false, idle_wait = false;
  bool failure_logged = false;
  Clock::time_point last_round_start{};
  std::uint64_t verify_seq = 0, adopted_seq = 0;

  void start();
  void stop();
  void refresh();

  template <typename F>
  void spawn(F&& coroutine_fn) {
    asio::co_spawn(ex, std::forward<F>(coroutine_fn), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        common::log::error("sentinel task failed", {{"error", x.what()}});
      }
    });
  }

  std::shared_ptr<RespConn> make_conn() {
    std::erase_if(conns, [](const auto& w) { return w.expired(); });
    auto c = std::make_shared<RespConn>(ex);
    conns.push_back(c);
    return c;
  }

  void move_to_front(std::size_t idx) {
    auto it = std::find(order.begin(), order.end(), idx);
    if (it != order.end()) std::rotate(order.begin(), it, it + 1);
  }

  Clock::duration gap_left() const {
    const auto left = last_round_start + settings.refresh_min_gap - Clock::now();
    return left > Clock::duration::zero() ? left : Clock::duration::zero();
  }

  asio::awaitable<void> round_loop(std::shared_ptr<Impl> keep_alive);
  asio::awaitable<bool> round();
  asio::awaitable<std::string> check_master(const Address& a);
  asio::awaitable<void> subscription_loop(std::shared_ptr<Impl> keep_alive, std::size_t idx);
  asio::awaitable<std::string> subscribe_once(std::size_t idx);
  asio::awaitable<void> adopt_switch(std::shared_ptr<Impl> keep_alive, Address to, std::size_t from_idx);
  void on_message(std::size_t idx, const detail::Push& push);
  void adopt(const Address& master, std::optional<std::vector<Address>> replicas, std::uint64_t seq);
  void complete_waiters(bool known);
};

// ---- life cycle ---------------------------------------------------------------------------------

void Sentinel::Impl::start() {
  if (started || stopped) return;
  started = true;
  for (auto& n : nodes)
    n->client->start();
  spawn([self = shared_from_this()] { return self->round_loop(self); });
  for (std::size_t i = 0; i < nodes.size(); ++i)
    spawn([self = shared_from_this(), i] { return self->subscription_loop(self, i); });
}

void Sentinel::Impl::stop() {
  if (stopped) return;
  stopped = true;
  round_timer.cancel();
  for (auto& n : nodes) {
    n->client->stop();
    n->sub_timer.cancel();
    n->status.subscribed = false;
  }
  for (auto& w : conns)
    if (auto c = w.lock()) c->close();
  conns.clear();
  complete_waiters(false);
}

void Sentinel::Impl::refresh() {
  if (!started || stopped) return;
  refresh_pending = true;
  if (idle_wait) round_timer.cancel();  // wakes the round loop; a running round sees the flag after
}

void Sentinel::Impl::complete_waiters(bool known) {
  auto list = std::move(waiters);
  waiters.clear();
  for (auto& w : list) {
    if (!w->handler) continue;
    MasterHandler h(std::move(*w->handler));
    w->handler.reset();
    w->timer.cancel();
    asio::post(ex, asio::append(std::move(h), known));
  }
}

// ---- discovery ----------------------------------------------------------------------------------

asio::awaitable<void> Sentinel::Impl::round_loop(std::shared_ptr<Impl> keep_alive) {
  (void)keep_alive;
  while (!stopped) {
    refresh_pending = false;
    last_round_start = Clock::now();
    ++counters.rounds;
    const bool ok = co_await round();
    if (stopped) break;
    Clock::duration wait;
    if (ok) {
      ++counters.discoveries;
      round_backoff.reset();
      failure_logged = false;
      wait = settings.refresh_interval;
    } else {
      ++counters.failed_rounds;
      if (!failure_logged) {
        std::string errors;
        for (const auto& n : nodes)
          errors += (errors.empty() ? "" : "; ") + n->address.to_string() + ": " + n->status.last_error;
        common::log::warn("sentinel: no verified master this round, keeping the last view; retrying",
                          {{"master_name", settings.master_name}, {"errors", errors}});
        failure_logged = true;
      }
      wait = round_backoff.next();
    }
    if (refresh_pending) wait = std::min(wait, gap_left());
    idle_wait = true;
    round_timer.expires_after(wait);
    co_await round_timer.async_wait(kTuple);
    idle_wait = false;
    if (stopped) break;
    if (const auto left = gap_left(); left > Clock::duration::zero()) {  // woken early by refresh()
      round_timer.expires_after(left);
      co_await round_timer.async_wait(kTuple);
    }
  }
}

// One pass over the sentinels, in order, until one hands out an address that ROLE confirms.
asio::awaitable<bool> Sentinel::Impl::round() {
  const auto ask = order;
  for (const std::size_t idx : ask) {
    if (stopped) co_return false;
    Node& n = *nodes[idx];
    Client& c = *n.client;
    Deadline d(settings.query_timeout);
    // A connection still being made gets the query's deadline; one that is down (waiting for its
    // backoff) is skipped at once: the next sentinel may answer now.
    if (c.status().state == State::connecting) co_await c.wait_connected(d);
    if (stopped) co_return false;
    std::vector<std::string> args{"SENTINEL", "get-master-addr-by-name", settings.master_name};
    const std::uint64_t connection = c.connection_id();
    Result r = co_await c.command(std::move(args), d);
    if (stopped) co_return false;
    if (!r) {
      n.failed_connection = connection;
      n.status.last_error = "get-master-addr-by-name: " + r.error().message;
      continue;
    }
    n.failed_connection = 0;
    if (r->is_error()) {
      n.status.last_error = "get-master-addr-by-name: " + r->str;
      continue;
    }
    const auto master = detail::parse_master_address(*r);
    if (!master) {
      n.status.last_error = r->is_nil() ? "does not know master '" + settings.master_name + "'"
                                        : "malformed answer to get-master-addr-by-name";
      continue;
    }
    const std::uint64_t seq = ++verify_seq;
    const std::string why = co_await check_master(*master);
    if (stopped) co_return false;
    if (!why.empty()) {
      ++counters.failed_verifications;
      n.status.last_error = "answered " + master->to_string() + ", which is not a verified master: " + why;
      common::log::debug("sentinel answer failed the ROLE check",
                         {{"sentinel", n.address.to_string()}, {"error", n.status.last_error}});
      continue;
    }
    std::vector<std::string> rargs{"SENTINEL", "replicas", settings.master_name};
    Result rr = co_await c.command(std::move(rargs), Deadline(settings.query_timeout));
    if (stopped) co_return false;
    std::optional<std::vector<Address>> replicas;
    if (rr && !rr->is_error()) replicas = detail::parse_replicas(*rr, master);
    if (!replicas)
      n.status.last_error = "replicas: " + (!rr              ? rr.error().message
                                            : rr->is_error() ? rr->str
                                                             : "malformed");
    move_to_front(idx);
    adopt(*master, std::move(replicas), seq);
    co_return true;
  }
  co_return false;
}

// Empty if `a` answers ROLE with "master" within query_timeout, else why not.
asio::awaitable<std::string> Sentinel::Impl::check_master(const Address& a) {
  auto conn = make_conn();
  const Deadline d(settings.query_timeout);
  std::string err = co_await conn->connect(a, settings.source_address, d);
  static const std::string kRole = detail::resp_command(std::vector<std::string>{"ROLE"});
  if (err.empty() && !stopped) err = co_await conn->write(kRole, d);
  if (err.empty() && !stopped) {
    const RespConn::Read got = co_await conn->read(d);
    if (got.timed_out) {
      err = "no answer to ROLE within " + ms_text(settings.query_timeout);
    } else if (!got.reply) {
      err = got.error;
    } else if (const auto role = detail::parse_role(*got.reply); !role) {
      err = got.reply->is_error() ? "ROLE: " + got.reply->str : "malformed ROLE reply";
    } else if (*role != "master") {
      err = "ROLE says " + *role;
    }
  }
  conn->close();
  if (stopped) co_return "stopped";
  co_return err;
}

void Sentinel::Impl::adopt(const Address& master, std::optional<std::vector<Address>> replicas,
                           std::uint64_t seq) {
  if (seq < adopted_seq) {
    // A verification started later has been adopted meanwhile (a failover seen through
    // +switch-master): this older answer may be the old master. Look again instead.
    refresh();
    return;
  }
  adopted_seq = seq;
  Topology next = topology;
  const bool new_master = next.master != master;
  next.master = master;
  if (replicas) {
    next.replicas = std::move(*replicas);
  } else {
    std::erase(next.replicas, master);
  }
  if (!new_master && next.replicas == topology.replicas) return;
  next.generation = topology.generation + 1;
  if (new_master) {
    ++counters.master_changes;
    common::log::info("sentinel: redis master",
                      {{"master_name", settings.master_name},
                       {"address", master.to_string()},
                       {"previous", topology.master ? topology.master->to_string() : ""}});
  }
  topology = std::move(next);
  // Listeners run from a post, with this view, in order; never after stop().
  asio::post(ex, [self = shared_from_this(), snapshot = topology] {
    for (std::size_t i = 0; i < self->listeners.size() && !self->stopped; ++i) {
      const Listener l = self->listeners[i];  // a listener may add listeners
      l(snapshot);
    }
  });
  // After the listeners (posted first): a caller woken by wait_master finds its clients retargeted.
  if (new_master) complete_waiters(true);
}

// ---- events -------------------------------------------------------------------------------------

asio::awaitable<void> Sentinel::Impl::subscription_loop(std::shared_ptr<Impl> keep_alive, std::size_t idx) {
  (void)keep_alive;
  Node& n = *nodes[idx];
  while (!stopped) {
    const std::string err = co_await subscribe_once(idx);
    if (stopped) break;
    if (n.status.subscribed) ++counters.subscription_drops;
    n.status.subscribed = false;
    n.status.last_error = "events: " + err;
    common::log::debug("sentinel subscription down", {{"sentinel", n.address.to_string()}, {"error", err}});
    n.sub_timer.expires_after(n.sub_backoff.next());
    co_await n.sub_timer.async_wait(kTuple);
  }
}

// Connects, subscribes, then handles messages until the connection ends; returns why it ended.
asio::awaitable<std::string> Sentinel::Impl::subscribe_once(std::size_t idx) {
  Node& n = *nodes[idx];
  auto conn = make_conn();
  struct Closer {
    std::shared_ptr<RespConn> c;
    ~Closer() { c->close(); }
  } closer{conn};

  const Deadline setup(settings.connect_timeout);
  std::string err = co_await conn->connect(n.address, settings.source_address, setup);
  if (stopped) co_return "stopped";
  if (!err.empty()) co_return err;
  const auto& channels = detail::sentinel_channels();
  std::vector<std::string> args{"SUBSCRIBE"};
  args.insert(args.end(), channels.begin(), channels.end());
  err = co_await conn->write(detail::resp_command(args), setup);
  if (stopped) co_return "stopped";
  if (!err.empty()) co_return err;
  for (std::size_t confirmed = 0; confirmed < channels.size();) {
    const RespConn::Read got = co_await conn->read(setup);
    if (stopped) co_return "stopped";
    if (got.timed_out) co_return "SUBSCRIBE not confirmed within " + ms_text(settings.connect_timeout);
    if (!got.reply) co_return got.error;
    if (got.reply->is_error()) co_return "SUBSCRIBE: " + got.reply->str;
    const auto push = detail::parse_push(*got.reply);
    if (!push) co_return "unexpected reply to SUBSCRIBE";
    if (push->kind == "subscribe") {
      ++confirmed;
    } else {
      on_message(idx, *push);
    }
  }
  n.status.subscribed = true;
  n.sub_backoff.reset();
  common::log::debug("sentinel subscription up", {{"sentinel", n.address.to_string()}});
  refresh();  // events may have been missed while it was down

  // Keep-alive: a PING every refresh_interval; a connection that sent nothing during a whole
  // interval after a PING is dead (a paused or partitioned sentinel keeps TCP open).
  bool heard = true;
  auto next_tick = Clock::now() + settings.refresh_interval;
  for (;;) {
    const RespConn::Read got = co_await conn->read(next_tick);
    if (stopped) co_return "stopped";
    if (got.timed_out) {
      if (!heard) co_return "silent for " + ms_text(settings.refresh_interval) + " after a PING";
      heard = false;
      static const std::string kPing = detail::resp_command(std::vector<std::string>{"PING"});
      err = co_await conn->write(kPing, Deadline(settings.connect_timeout));
      if (stopped) co_return "stopped";
      if (!err.empty()) co_return err;
      next_tick = Clock::now() + settings.refresh_interval;
      continue;
    }
    if (!got.reply) co_return got.error;
    heard = true;
    if (const auto push = detail::parse_push(*got.reply)) on_message(idx, *push);
  }
}

void Sentinel::Impl::on_message(std::size_t idx, const detail::Push& push) {
  if (push.kind != "message") return;  // "pong", late "subscribe" confirmations
  if (push.channel == "+switch-master") {
    const auto sw = detail::parse_switch_master(push.payload);
    if (!sw || sw->name != settings.master_name) return;
    ++counters.switch_master_events;
    move_to_front(idx);  // it knows the new configuration
    if (topology.master == sw->to) {
      refresh();  // already adopted (another sentinel's message, or a round): replicas may change
      return;
    }
    if (std::find(switch_verifying.begin(), switch_verifying.end(), sw->to) != switch_verifying.end()) return;
    common::log::info("sentinel: +switch-master", {{"sentinel", nodes[idx]->address.to_string()},
                                                   {"from", sw->from.to_string()},
                                                   {"to", sw->to.to_string()}});
    switch_verifying.push_back(sw->to);
    spawn([self = shared_from_this(), to = sw->to, idx] { return self->adopt_switch(self, to, idx); });
    return;
  }
  // A master or replica of ours changed state; events about sentinels do not change the view.
  const auto event = detail::parse_instance_event(push.payload);
  if (event && event->master_name == settings.master_name && event->type != "sentinel") refresh();
}

asio::awaitable<void> Sentinel::Impl::adopt_switch(std::shared_ptr<Impl> keep_alive, Address to,
                                                   std::size_t from_idx) {
  (void)keep_alive;
  const std::uint64_t seq = ++verify_seq;
  const std::string why = co_await check_master(to);
  std::erase(switch_verifying, to);
  if (stopped) co_return;
  if (!why.empty()) {
    ++counters.failed_verifications;
    nodes[from_idx]->status.last_error =
        "+switch-master to " + to.to_string() + ", which is not a verified master: " + why;
    common::log::warn("sentinel: +switch-master target failed the ROLE check",
                      {{"address", to.to_string()}, {"error", why}});
  } else {
    adopt(to, std::nullopt, seq);
  }
  refresh();  // the replicas (or, after a failed check, the master) from a full round
}

// ---- Sentinel -----------------------------------------------------------------------------------

Sentinel::Sentinel(executor_type executor, SentinelSettings settings) {
  settings.validate();
  ignore_sigpipe();
  impl_ = std::make_shared<Impl>(std::move(executor), std::move(settings));
}

Sentinel::~Sentinel() {
  impl_->stop();
}

void Sentinel::start() {
  impl_->start();
}

void Sentinel::stop() {
  impl_->stop();
}

Sentinel::executor_type Sentinel::get_executor() const {
  return impl_->ex;
}

const Topology& Sentinel::topology() const {
  return impl_->topology;
}

void Sentinel::on_change(Listener listener) {
  if (listener) impl_->listeners.push_back(std::move(listener));
}

void Sentinel::refresh() {
  impl_->refresh();
}

SentinelStatus Sentinel::status() const {
  SentinelStatus s;
  for (const auto& n : impl_->nodes) {
    s.sentinels.push_back(n->status);
    const Client& c = *n->client;
    s.sentinels.back().reachable = c.connected() && c.connection_id() != n->failed_connection;
  }
  s.topology = impl_->topology;
  s.counters = impl_->counters;
  return s;
}

const SentinelSettings& Sentinel::settings() const {
  return impl_->settings;
}

void Sentinel::start_wait_master(Deadline deadline, MasterHandler handler) {
  auto& impl = *impl_;
  if (impl.stopped || impl.topology.master) {
    const bool ok = !impl.stopped;
    asio::post(impl.ex, asio::append(std::move(handler), ok));
    return;
  }
  auto w = std::make_shared<Waiter>(impl.ex);
  w->handler.emplace(std::move(handler));
  impl.waiters.push_back(w);
  w->timer.expires_at(deadline.at());
  w->timer.async_wait([self = impl_, w](const error_code& ec) {
    if (ec || !w->handler) return;
    MasterHandler h(std::move(*w->handler));
    w->handler.reset();
    std::erase(self->waiters, w);
    asio::post(self->ex, asio::append(std::move(h), false));
  });
}

}  // namespace clients::redis
