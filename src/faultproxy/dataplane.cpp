#include "faultproxy/dataplane.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <cstring>

#include "common/log.h"
#include "common/scheduling.h"

namespace faultproxy {

void count_activation(const ProxyRuntime& runtime, const ToxicSpec& spec, Direction direction) {
  if (!runtime.registry) return;
  runtime.registry
      ->counter("faultproxy_toxic_activations_total", "Connections on which a toxic started acting.",
                {{"proxy", runtime.name},
                 {"toxic", spec.name},
                 {"type", std::string(toxic_type_info(spec.type).name)},
                 {"direction", std::string(direction_name(direction))}})
      .inc();
}

// A connection is its two links' host, and what its protocol toxics' stages ask about it
// (ProtocolSession).
class Connection final : public LinkHost, public ProtocolSession, public SocketEvents {
 public:
  // Takes `client_fd` (accepted, non-blocking).
  Connection(Worker& w, int client_fd, std::shared_ptr<ProxyRuntime> rt, SnapshotPtr snap,
             std::uint64_t index)
      : LinkHost(w.context, w.pool),
        worker_(w),
        client_(client_fd, this),
        runtime_(std::move(rt)),
        snapshot_(std::move(snap)),
        index_(index),
        up_(*this, wiring(Direction::upstream)),
        down_(*this, wiring(Direction::downstream)) {
    runtime_->live.fetch_add(1, std::memory_order_relaxed);
  }
  ~Connection() { runtime_->live.fetch_sub(1, std::memory_order_relaxed); }

  // Watches the client socket and reaches the upstream (false: the client socket could not be
  // watched, the connection is closed).
  bool start();
  void apply(SnapshotPtr snap);
  // The toxics of the current snapshot for one link: the snapshot's own list, or this client's
  // part of it when some toxic has a client_cidr.
  void apply_to(Link& link, TimePoint now);
  void close() { teardown(false); }

  // LinkHost
  const Link& opposite(const Link& link) const override { return &link == &up_ ? down_ : up_; }
  std::uint64_t link_seed(Direction d) const override {
    return mix64(runtime_->seed ^ mix64(index_ * 2 + static_cast<std::uint64_t>(d)));
  }
  ProtocolSession* session() override { return this; }
  std::string_view proxy_name() const override { return runtime_->name; }
  bool keep_client_head(const char* data, std::size_t n) override {
    client_head_.keep(data, n);
    return !client_head_.full();
  }
  void link_finished(Link&) override {
    if (up_.finished() && down_.finished()) close();
  }
  void close_connection(bool reset) override { teardown(reset); }
  void toxic_activated(const ToxicSpec& spec, Direction direction) override {
    count_activation(*runtime_, spec, direction);
  }

  // SocketEvents: a socket's edge goes to the link that reads it and the one that writes it.
  void on_events(DataSocket& socket, std::uint32_t events) override;

  // ProtocolSession
  void wake_downstream() override;
  bool quiet() const override { return !up_.holds_data_after_toxics() && !down_.holds_data(); }
  std::string_view client_head() const override { return client_head_.view(); }
  void count_action(const std::string& toxic_name, ToxicType type) override;

 private:
  std::shared_ptr<Connection> self() { return std::static_pointer_cast<Connection>(shared_from_this()); }
  LinkWiring wiring(Direction d) {
    const bool up = d == Direction::upstream;
    return {.direction = d,
            .source = up ? &client_ : &upstream_,
            .destination = up ? &upstream_ : &client_,
            .counters = &runtime_->counters[static_cast<int>(d)],
            .keeps_client_head = up};
  }
  const std::optional<IpAddress>& client_address();
  // The sum of the delays of the snapshot's slow_open toxics acting on this connection.
  std::chrono::milliseconds open_delay(bool count);
  // Waits until accepted_at_ + delay, then connects (at once if that has passed).
  void wait_then_connect(std::chrono::milliseconds delay);
  void connect_upstream();
  // Connects to endpoints_[next_endpoint_++]; on failure, to the next one if any.
  void connect_next();
  void connect_direct(const tcp::endpoint& ep);
  void finish_connect();
  void arm_connect_timer();
  void on_connected();
  void connect_failed(const boost::system::error_code& ec);
  void teardown(bool rst);

  // Every idle connection is one of these (bench/: RSS per idle connection): rarely used state
  // sits behind pointers, flags and small fields share the padding.
  Worker& worker_;
  DataSocket client_, upstream_;
  std::shared_ptr<ProxyRuntime> runtime_;
  SnapshotPtr snapshot_;
  std::uint64_t index_;
  Link up_, down_;
  std::unique_ptr<asio::steady_timer> connect_timer_;
  std::unique_ptr<tcp::resolver> resolver_;
  std::vector<tcp::endpoint> endpoints_;  // an upstream name's addresses, tried in turn
  std::size_t next_endpoint_ = 0;
  // slow_open: the connection waits before it connects upstream (open_timer_ set while it waits).
  TimePoint accepted_at_{};
  std::unique_ptr<asio::steady_timer> open_timer_;
  // The client's address, looked up (getpeername) the first time a snapshot filters by client.
  std::optional<IpAddress> client_address_;
  ClientHead client_head_;  // filled by up_ through keep_client_head
  bool client_address_known_ = false;
  bool connecting_ = false, connected_ = false, closed_ = false;
  bool wake_posted_ = false;
};

// ---- Connection --------------------------------------------------------------------------------

void Connection::wake_downstream() {
  if (wake_posted_) return;
  wake_posted_ = true;
  asio::post(worker_.context, [self = self()] {
    self->wake_posted_ = false;
    self->down_.pump();
  });
}

void Connection::count_action(const std::string& toxic_name, ToxicType type) {
  if (!runtime_->registry) return;
  runtime_->registry
      ->counter("faultproxy_toxic_actions_total",
                "Commands, statements or requests a protocol toxic answered, replaced, cut or delayed.",
                {{"proxy", runtime_->name},
                 {"toxic", toxic_name},
                 {"type", std::string(toxic_type_info(type).name)}})
      .inc();
}

const std::optional<IpAddress>& Connection::client_address() {
  if (!client_address_known_) {
    client_address_known_ = true;
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    // Fails only when the client is gone already (ENOTCONN after its RST): no client_cidr
    // covers it then, and the connection is about to close anyway.
    if (::getpeername(client_.fd(), reinterpret_cast<sockaddr*>(&ss), &len) == 0)
      client_address_ = IpAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss), len);
  }
  return client_address_;
}

void Connection::apply_to(Link& link, TimePoint now) {
  const auto& toxics = snapshot_->by_direction[static_cast<int>(link.direction())];
  if (!snapshot_->client_filtered) return link.apply(toxics, now);
  link.apply(toxics_for_client(toxics, client_address(), link.pipeline()), now);
}

std::chrono::milliseconds Connection::open_delay(bool count) {
  std::int64_t total = 0;
  for (auto d : {Direction::upstream, Direction::downstream}) {
    for (const ToxicSpec& t : snapshot_->on_open[static_cast<int>(d)]) {
      if (t.client_cidr && !(client_address() && t.client_cidr->contains(*client_address()))) continue;
      if (toxicity_roll(link_seed(d), t.name) >= static_cast<double>(t.toxicity)) continue;
      total = std::min(total + std::clamp<std::int64_t>(t.attributes.integer(0), 0, kMaxMillis), kMaxMillis);
      if (count) count_activation(*runtime_, t, d);
    }
  }
  return std::chrono::milliseconds(total);
}

bool Connection::start() {
  if (const auto ec = worker_.poller.add(client_)) {
    common::log::warn("unable to watch a client connection",
                      {{"proxy", runtime_->name}, {"error", ec.message()}});
    close();
    return false;
  }
  const TimePoint now = Clock::now();
  accepted_at_ = now;
  apply_to(up_, now);
  apply_to(down_, now);
  if (!snapshot_->on_open[0].empty() || !snapshot_->on_open[1].empty()) {
    if (const auto delay = open_delay(/*count=*/true); delay.count() > 0) {
      wait_then_connect(delay);
      return true;
    }
  }
  connect_upstream();
  return true;
}

void Connection::on_events(DataSocket& socket, std::uint32_t events) {
  if (closed_) return;
  const bool client = &socket == &client_;
  if (!client && connecting_) {
    if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) finish_connect();
    return;
  }
  Link::on_socket_events(events, client ? up_ : down_, client ? down_ : up_);
}

void Connection::wait_then_connect(std::chrono::milliseconds delay) {
  if (!open_timer_) open_timer_ = std::make_unique<asio::steady_timer>(worker_.context);
  if (accepted_at_ + delay <= Clock::now()) {
    open_timer_.reset();  // its pending wait, if any, ends with operation_aborted and does nothing
    return connect_upstream();
  }
  open_timer_->expires_at(accepted_at_ + delay);
  open_timer_->async_wait([self = self(), timer = open_timer_.get()](boost::system::error_code ec) {
    if (ec || self->closed_ || self->open_timer_.get() != timer) return;
    self->open_timer_.reset();
    self->connect_upstream();
  });
}

// Reaches the upstream: an IP literal directly, a name through the resolver, then each of its
// addresses in turn.
void Connection::connect_upstream() {
  if (runtime_->upstream_endpoint) return connect_direct(*runtime_->upstream_endpoint);
  arm_connect_timer();
  resolver_ = std::make_unique<tcp::resolver>(worker_.context);
  resolver_->async_resolve(
      runtime_->upstream_host, runtime_->upstream_port,
      [self = self()](boost::system::error_code ec, tcp::resolver::results_type results) {
        if (self->closed_) return;
        if (ec) return self->connect_failed(ec);
        for (const auto& entry : results)
          self->endpoints_.push_back(entry.endpoint());
        self->connect_next();
      });
}

void Connection::connect_next() {
  if (next_endpoint_ >= endpoints_.size()) return connect_failed(asio::error::host_not_found);
  connect_direct(endpoints_[next_endpoint_++]);
}

// The deadline to reach the upstream (its resolve and connects).
void Connection::arm_connect_timer() {
  if (connect_timer_) return;  // one deadline for all the addresses of a name
  connect_timer_ = std::make_unique<asio::steady_timer>(worker_.context, runtime_->connect_timeout);
  connect_timer_->async_wait([self = self()](boost::system::error_code ec) {
    if (ec || self->connected_ || self->closed_) return;
    self->endpoints_.clear();  // no other address either
    self->connect_failed(asio::error::timed_out);
  });
}

// connect(2) at once, the socket watched by the worker's poller from its creation (its first
// EPOLLOUT says the handshake ended). On loopback the handshake has usually completed by the time
// connect(2) returns EINPROGRESS, so asking TCP_INFO at once saves a trip through the event loop.
void Connection::connect_direct(const tcp::endpoint& ep) {
  connecting_ = true;
  const int fd = ::socket(ep.protocol().family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0) return connect_failed(boost::system::error_code(errno, boost::system::system_category()));
  upstream_.reset(fd, this);
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (const auto ec = worker_.poller.add(upstream_))
    return connect_failed(boost::system::error_code(ec.value(), boost::system::system_category()));
  if (::connect(fd, ep.data(), static_cast<socklen_t>(ep.size())) == 0) return on_connected();
  const int err = errno;
  if (err != EINPROGRESS && err != EINTR) {
    return connect_failed(boost::system::error_code(err, boost::system::system_category()));
  }
  // One getsockopt tells both whether the handshake is over and whether it failed.
  tcp_info info{};
  socklen_t len = sizeof info;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) == 0 && info.tcpi_state != TCP_SYN_SENT) {
    if (info.tcpi_state == TCP_ESTABLISHED) return on_connected();
    return finish_connect();  // failed (or closed already): SO_ERROR says why
  }
  arm_connect_timer();  // a timer only for connections that have to wait; on_events finishes
}

// The connect(2) started by connect_direct ended: its outcome is in SO_ERROR.
void Connection::finish_connect() {
  if (closed_ || !connecting_) return;
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(upstream_.fd(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err == 0) {
    // An EPOLLOUT may precede the end of the handshake only on a socket that is still connecting.
    tcp_info info{};
    socklen_t info_len = sizeof info;
    if (::getsockopt(upstream_.fd(), IPPROTO_TCP, TCP_INFO, &info, &info_len) == 0 &&
        info.tcpi_state == TCP_SYN_SENT)
      return;
    return on_connected();
  }
  connect_failed(boost::system::error_code(err, boost::system::system_category()));
}

void Connection::connect_failed(const boost::system::error_code& ec) {
  if (closed_) return;
  upstream_.close();
  if (next_endpoint_ < endpoints_.size()) return connect_next();  // a name's next address
  connecting_ = false;
  if (runtime_->upstream_failures) runtime_->upstream_failures->inc();
  common::log::warn("unable to open connection to upstream",
                    {{"proxy", runtime_->name}, {"upstream", runtime_->upstream}, {"error", ec.message()}});
  close();
}

void Connection::on_connected() {
  if (closed_) return;
  connecting_ = false;
  connected_ = true;
  if (connect_timer_) connect_timer_->cancel();
  resolver_.reset();
  endpoints_.clear();
  endpoints_.shrink_to_fit();
  // The client socket came from accept4 non-blocking and with TCP_NODELAY (from the listening
  // socket); the upstream socket was made non-blocking and with TCP_NODELAY by connect_direct.
  up_.start();
  down_.start();
}

void Connection::apply(SnapshotPtr snap) {
  if (closed_) return;
  snapshot_ = std::move(snap);
  const TimePoint now = Clock::now();
  apply_to(up_, now);
  if (closed_) return;
  apply_to(down_, now);
  // Still waiting for a slow_open: its delay follows the toxics (removed: the connection goes on).
  if (open_timer_ && !closed_) wait_then_connect(open_delay(/*count=*/false));
}

void Connection::teardown(bool rst) {
  if (closed_) return;
  closed_ = true;
  common::log::debug("connection closed", {{"proxy", runtime_->name}, {"index", index_}, {"reset", rst}});
  if (connect_timer_) connect_timer_->cancel();
  if (open_timer_) open_timer_->cancel();
  if (resolver_) resolver_->cancel();
  // up_ reads the client, down_ the upstream: each closes its source (the other's destination).
  up_.close_source(rst);
  down_.close_source(rst);
  upstream_.close();  // when the upstream was still being connected
  up_.stop();
  down_.stop();
  // Kept until the event loop's next turn (Worker::closed): the poller may still hold events of
  // its sockets, taken from the set in the batch this close is part of.
  auto it = worker_.connections.find(runtime_->id);
  if (it == worker_.connections.end()) return;
  auto own = it->second.find(this);
  if (own != it->second.end()) {
    worker_.closed.push_back(std::move(own->second));
    it->second.erase(own);
    if (!worker_.reap_posted) {
      worker_.reap_posted = true;
      asio::post(worker_.context, [w = &worker_] {
        w->reap_posted = false;
        w->closed.clear();
      });
    }
  }
  if (it->second.empty()) worker_.connections.erase(it);
}

// ---- Workers -----------------------------------------------------------------------------------

namespace {
// While busy polling, Asio handlers run between two polls of the data sockets' set.
constexpr int kHandlersPerTurn = 32;
}  // namespace

Workers::Workers(std::size_t count, std::chrono::microseconds busy_poll) : busy_poll_(busy_poll) {
  for (std::size_t i = 0; i < std::max<std::size_t>(count, 1); ++i)
    workers_.push_back(std::make_unique<Worker>());
}

Workers::~Workers() {
  stop();
  for (auto& w : workers_) {
    // Close what is left while the contexts still exist.
    std::vector<std::shared_ptr<Connection>> left;
    for (auto& [id, set] : w->connections)
      for (auto& [ptr, conn] : set)
        left.push_back(conn);
    for (auto& c : left)
      c->close();
    w->connections.clear();
    w->closed.clear();
  }
}

void Workers::start_threads() {
  if (!common::request_short_slices()) common::log::debug("short scheduler slices not available");
  for (std::size_t i = 1; i < workers_.size(); ++i) {
    Worker* w = workers_[i].get();
    w->thread = std::thread([this, w] {
      common::request_short_slices();
      run(*w);
    });
  }
}

void Workers::run_control() {
  run(*workers_[0]);
}

void Workers::run(Worker& worker) const {
  asio::io_context& context = worker.context;
  auto guard = asio::make_work_guard(context);
  if (busy_poll_.count() <= 0) {
    context.run();  // the poller's wait re-arms itself after each batch
    return;
  }
  // The poller's set is polled directly while busy; its wait is armed only before sleeping.
  worker.poller.set_manual_arming(true);
  for (;;) {
    worker.poller.arm();
    if (context.run_one() == 0) break;  // sleeps in epoll_wait until there is something to do
    auto until = Clock::now() + busy_poll_;
    while (!context.stopped()) {
      // Both sets without waiting, in turn: the poller's events, then a bounded number of Asio's
      // handlers (poll() would run them for as long as new ones come: a flood of API requests
      // on worker 0 kept its connections waiting for seconds).
      std::size_t ran = worker.poller.poll();
      for (int i = 0; i < kHandlersPerTurn && context.poll_one() != 0; ++i)
        ++ran;
      if (ran != 0) {
        until = Clock::now() + busy_poll_;
        continue;
      }
      if (Clock::now() >= until) break;
      ::sched_yield();  // whoever else is runnable on this CPU goes first
    }
  }
}

void Workers::stop() {
  for (auto& w : workers_)
    w->context.stop();
  for (auto& w : workers_)
    if (w->thread.joinable()) w->thread.join();
}

void Workers::start_connections(const std::vector<int>& fds, const std::shared_ptr<ProxyRuntime>& runtime,
                                const SnapshotPtr& snapshot, std::uint64_t first_index) {
  batches_.resize(workers_.size());
  for (std::size_t i = 0; i < fds.size(); ++i) {
    batches_[next_].emplace_back(fds[i], first_index + i);
    next_ = (next_ + 1) % workers_.size();
  }
  for (std::size_t k = 0; k < workers_.size(); ++k) {
    if (batches_[k].empty()) continue;
    Worker* w = workers_[k].get();
    asio::post(w->context, [w, batch = std::move(batches_[k]), runtime, snapshot] {
      for (const auto& [fd, index] : batch) {
        auto conn = std::make_shared<Connection>(*w, fd, runtime, snapshot, index);
        w->connections[runtime->id].emplace(conn.get(), conn);
        conn->start();
      }
    });
    batches_[k].clear();  // moved from: empty again, ready for the next call
  }
}

void Workers::apply_toxics(std::uint64_t runtime_id, SnapshotPtr snapshot) {
  for (auto& wp : workers_) {
    Worker* w = wp.get();
    asio::post(w->context, [w, runtime_id, snapshot] {
      auto it = w->connections.find(runtime_id);
      if (it == w->connections.end()) return;
      std::vector<std::shared_ptr<Connection>> conns;
      for (auto& [ptr, conn] : it->second)
        conns.push_back(conn);
      for (auto& c : conns)
        c->apply(snapshot);
    });
  }
}

void Workers::close_connections(std::uint64_t runtime_id) {
  for (auto& wp : workers_) {
    Worker* w = wp.get();
    asio::post(w->context, [w, runtime_id] {
      auto it = w->connections.find(runtime_id);
      if (it == w->connections.end()) return;
      std::vector<std::shared_ptr<Connection>> conns;
      for (auto& [ptr, conn] : it->second)
        conns.push_back(conn);
      for (auto& c : conns)
        c->close();
    });
  }
}

}  // namespace faultproxy
