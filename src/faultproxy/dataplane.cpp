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
namespace {

// A link stops reading while this much is held in its toxics and unwritten output.
constexpr std::size_t kMaxBuffered = 4 * 1024 * 1024;
// Chunk size on the staged path (Toxiproxy reads 32 KiB at a time).
constexpr std::size_t kStagedRead = 32 * 1024;
// Reads per wake-up before yielding to other connections on the worker.
constexpr int kReadBudget = 16;
constexpr std::size_t kMaxCachedSmall = 256;
constexpr std::size_t kMaxCachedLarge = 8;

bool would_block(int err) {
  return err == EAGAIN || err == EWOULDBLOCK;
}

}  // namespace

std::string_view direction_name(Direction d) {
  return d == Direction::upstream ? "upstream" : "downstream";
}

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

BufferPool::Buffer BufferPool::acquire(std::size_t size) {
  auto& list = size >= kLarge ? large_ : small_;
  Buffer b;
  b.size = size >= kLarge ? kLarge : kSmall;
  if (!list.empty()) {
    b.data = std::move(list.back());
    list.pop_back();
  } else {
    b.data = std::make_unique_for_overwrite<char[]>(b.size);
  }
  return b;
}

void BufferPool::release(Buffer& b) {
  if (!b) return;
  auto& list = b.size >= kLarge ? large_ : small_;
  if (list.size() < (b.size >= kLarge ? kMaxCachedLarge : kMaxCachedSmall)) list.push_back(std::move(b.data));
  b.data.reset();
  b.size = 0;
}

class Link {
 public:
  Link(Connection& c, Direction d) : conn_(c), dir_(d) {}
  void bind(tcp::socket* src, tcp::socket* dst) {
    src_ = src;
    dst_ = dst;
  }
  void apply(const std::vector<ToxicSpec>& toxics, TimePoint now);
  const Pipeline* pipeline() const { return pipeline_.get(); }
  void pump();
  void stop();
  bool finished() const { return eof_sent_; }
  // The source said EOF: nothing is left unread on it, and nothing more will come.
  bool source_ended() const { return src_eof_; }
  // shutdown(SHUT_WR) was called on the destination.
  bool destination_shut() const { return dst_shut_; }
  // Bytes read and not yet written (in the toxics or the fast path's buffer).
  bool holds_data() const { return fast_off_ < fast_len_ || (pipeline_ && pipeline_->buffered_bytes() > 0); }
  // Bytes the toxics released and not yet written.
  bool holds_data_after_toxics() const {
    return fast_off_ < fast_len_ || (pipeline_ && pipeline_->output_bytes() > 0);
  }

 private:
  bool flush();
  bool read_once(TimePoint now);
  void shutdown_dst();
  void arm_read();
  void arm_write();
  void arm_timer();
  void release_buffer();

  Connection& conn_;
  Direction dir_;
  tcp::socket* src_ = nullptr;
  tcp::socket* dst_ = nullptr;
  BufferPool::Buffer buf_;
  std::size_t fast_len_ = 0, fast_off_ = 0;
  std::unique_ptr<Pipeline> pipeline_;
  std::unique_ptr<asio::steady_timer> timer_;
  TimePoint timer_at_ = kNever, wake_ = kNever;
  bool read_wait_ = false, write_wait_ = false, pump_posted_ = false, in_pump_ = false;
  bool src_eof_ = false, eof_pending_fast_ = false, eof_sent_ = false, large_ = false, dst_shut_ = false;
  // The last read returned less than asked: the socket was drained, so the next read would only
  // say EAGAIN. Wait for readiness instead (epoll is edge-triggered: data that arrived since is
  // reported as a new edge).
  bool drained_ = false;
};

// A connection is also what its protocol toxics' stages ask about it (ProtocolSession).
class Connection : public std::enable_shared_from_this<Connection>, public ProtocolSession {
 public:
  Connection(Worker& w, tcp::socket client, std::shared_ptr<ProxyRuntime> rt, SnapshotPtr snap,
             std::uint64_t index)
      : worker_(w),
        client_(std::move(client)),
        upstream_(w.context),
        runtime_(std::move(rt)),
        snapshot_(std::move(snap)),
        index_(index),
        up_(*this, Direction::upstream),
        down_(*this, Direction::downstream) {
    up_.bind(&client_, &upstream_);
    down_.bind(&upstream_, &client_);
    runtime_->live.fetch_add(1, std::memory_order_relaxed);
  }
  ~Connection() { runtime_->live.fetch_sub(1, std::memory_order_relaxed); }

  void start();
  void apply(SnapshotPtr snap);
  // The toxics of the current snapshot for one link: the snapshot's own list, or this client's
  // part of it when some toxic has a client_cidr.
  void apply_to(Link& link, Direction d, TimePoint now);
  void close() { teardown(false); }
  void reset() { teardown(true); }
  void link_finished() {
    if (up_.finished() && down_.finished()) close();
  }

  // ProtocolSession
  void wake_downstream() override;
  bool quiet() const override { return !up_.holds_data_after_toxics() && !down_.holds_data(); }
  std::string_view client_head() const override { return {client_head_.data(), client_head_len_}; }
  void count_action(const std::string& toxic_name, ToxicType type) override;
  // The upstream link keeps the client's first bytes: a MySQL toxic added later reads there
  // whether the connection negotiated TLS or compression.
  void keep_client_head(const char* data, std::size_t n) {
    const std::size_t take = std::min(n, client_head_.size() - client_head_len_);
    std::memcpy(client_head_.data() + client_head_len_, data, take);
    client_head_len_ += take;
  }
  bool client_head_full() const { return client_head_len_ == client_head_.size(); }

  Worker& worker_;
  tcp::socket client_, upstream_;
  std::shared_ptr<ProxyRuntime> runtime_;
  SnapshotPtr snapshot_;
  std::uint64_t index_;
  Link up_, down_;
  bool connected_ = false, closed_ = false;
  std::unique_ptr<asio::steady_timer> connect_timer_;
  std::unique_ptr<tcp::resolver> resolver_;
  // The client's address, looked up (getpeername) the first time a snapshot filters by client.
  std::optional<IpAddress> client_address_;
  bool client_address_known_ = false;
  // slow_open: the connection waits before it connects upstream (open_timer_ set while it waits).
  TimePoint accepted_at_{};
  std::unique_ptr<asio::steady_timer> open_timer_;
  std::array<char, 8> client_head_{};
  std::size_t client_head_len_ = 0;
  bool wake_posted_ = false;

  std::uint64_t link_seed(Direction d) const {
    return mix64(runtime_->seed ^ mix64(index_ * 2 + static_cast<std::uint64_t>(d)));
  }

 private:
  const std::optional<IpAddress>& client_address();
  // The sum of the delays of the snapshot's slow_open toxics acting on this connection.
  std::chrono::milliseconds open_delay(bool count);
  // Waits until accepted_at_ + delay, then connects (at once if that has passed).
  void wait_then_connect(std::chrono::milliseconds delay);
  void connect_upstream();
  void connect_direct(const tcp::endpoint& ep);
  void finish_connect();
  void arm_connect_timer();
  void on_connected();
  void connect_failed(const boost::system::error_code& ec);
  void teardown(bool rst);
};

// ---- Link ------------------------------------------------------------------------------------

void Link::release_buffer() {
  if (buf_) conn_.worker_.pool.release(buf_);
}

void Link::apply(const std::vector<ToxicSpec>& toxics, TimePoint now) {
  if (!pipeline_) {
    if (toxics.empty()) return;
    pipeline_ = std::make_unique<Pipeline>(conn_.link_seed(dir_), &conn_);
    auto runtime = conn_.runtime_;
    const Direction dir = dir_;
    pipeline_->on_activation(
        [runtime, dir](const ToxicSpec& spec) { count_activation(*runtime, spec, dir); });
    if (eof_pending_fast_) {  // the source already ended: its end now goes through the toxics
      eof_pending_fast_ = false;
      pipeline_->push(Event::terminal(EventKind::eof, now), now);
    }
  }
  pipeline_->apply(toxics, now);
  if (conn_.connected_) pump();
}

void Link::stop() {
  if (timer_) timer_->cancel();
  release_buffer();
  pipeline_.reset();
}

void Link::pump() {
  if (conn_.closed_ || in_pump_ || !conn_.connected_) return;
  in_pump_ = true;
  bool again = false;
  for (int reads = 0;; ++reads) {
    if (!flush()) break;
    if (conn_.closed_ || src_eof_ || read_wait_) break;
    if (pipeline_ && pipeline_->buffered_bytes() >= kMaxBuffered) break;  // resumed by writes or the timer
    if (reads >= kReadBudget) {
      again = true;
      break;
    }
    if (drained_) {
      drained_ = false;
      if (fast_len_ == 0) release_buffer();
      arm_read();
      break;
    }
    if (!read_once(Clock::now())) break;
  }
  in_pump_ = false;
  if (conn_.closed_) return;
  arm_timer();
  if (again && !pump_posted_) {
    pump_posted_ = true;
    asio::post(conn_.worker_.context, [self = conn_.shared_from_this(), this] {
      pump_posted_ = false;
      pump();
    });
  }
}

bool Link::read_once(TimePoint now) {
  const int fd = src_->native_handle();
  std::size_t want;
  if (!pipeline_) {
    if (!buf_) buf_ = conn_.worker_.pool.acquire(large_ ? BufferPool::kLarge : BufferPool::kSmall);
    want = buf_.size;
  } else {
    if (!buf_) buf_ = conn_.worker_.pool.acquire(BufferPool::kSmall);
    want = std::min(buf_.size, kStagedRead);
  }
  const ssize_t n = ::recv(fd, buf_.data.get(), want, MSG_DONTWAIT);
  if (n > 0) {
    const auto got = static_cast<std::size_t>(n);
    if (dir_ == Direction::upstream && !conn_.client_head_full()) [[unlikely]]
      conn_.keep_client_head(buf_.data.get(), got);
    // Only for small reads: after a large one, writing it out took long enough for more to arrive.
    drained_ = got < want && got < BufferPool::kSmall;
    if (auto* c = conn_.runtime_->received[static_cast<int>(dir_)]) c->inc(static_cast<double>(got));
    if (!pipeline_) {
      fast_len_ = got;
      fast_off_ = 0;
      if (got == buf_.size) large_ = true;  // a bulk transfer: grow to the large buffer once this is written
      if (got < BufferPool::kSmall / 2) large_ = false;  // small messages: small buffers
    } else {
      pipeline_->push(Event::data(std::string(buf_.data.get(), got), now), now);
    }
    return true;
  }
  if (n == 0) {
    src_eof_ = true;
    if (!pipeline_) {
      eof_pending_fast_ = true;
    } else {
      pipeline_->push(Event::terminal(EventKind::eof, now), now);
    }
    if (fast_len_ == 0) release_buffer();
    return true;  // let flush() pass the end on
  }
  const int err = errno;
  if (err == EINTR) return true;
  if (would_block(err)) {
    if (fast_len_ == 0) release_buffer();  // idle links hold no buffer
    arm_read();
    return false;
  }
  // ECONNRESET and friends: the source is gone, so is the connection.
  common::log::debug("read failed", {{"proxy", conn_.runtime_->name},
                                     {"direction", direction_name(dir_)},
                                     {"error", std::string_view(std::strerror(err))}});
  conn_.close();
  return false;
}

bool Link::flush() {
  if (write_wait_ || conn_.closed_) return false;
  const int fd = dst_->native_handle();
  auto* sent_counter = conn_.runtime_->sent[static_cast<int>(dir_)];
  auto fail = [&](int err) {
    if (err == EINTR) return true;
    if (would_block(err)) {
      arm_write();
    } else {
      common::log::debug("write failed", {{"proxy", conn_.runtime_->name},
                                          {"direction", direction_name(dir_)},
                                          {"error", std::string_view(std::strerror(err))}});
      conn_.close();
    }
    return false;
  };
  // 1. What the fast path read (always older than anything in the pipeline).
  while (fast_off_ < fast_len_) {
    const ssize_t n =
        ::send(fd, buf_.data.get() + fast_off_, fast_len_ - fast_off_, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      fast_off_ += static_cast<std::size_t>(n);
      if (sent_counter) sent_counter->inc(static_cast<double>(n));
      continue;
    }
    if (!fail(errno)) return false;
  }
  if (fast_len_ != 0) {
    fast_len_ = fast_off_ = 0;
    if (large_ && buf_.size < BufferPool::kLarge) release_buffer();
  }
  // 2. What the toxics released.
  if (pipeline_) {
    wake_ = pipeline_->run(Clock::now());
    EventQueue& out = pipeline_->output();
    while (!out.empty()) {
      Event& e = out.front();
      switch (e.kind) {
        case EventKind::data: {
          const std::string_view rest = out.front_rest();
          if (rest.empty()) {
            out.pop_front();
            continue;
          }
          const ssize_t n = ::send(fd, rest.data(), rest.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
          if (n > 0) {
            out.advance_front(static_cast<std::size_t>(n));
            if (sent_counter) sent_counter->inc(static_cast<double>(n));
            if (out.front_rest().empty()) out.pop_front();
            continue;
          }
          if (!fail(errno)) return false;
          continue;
        }
        case EventKind::eof:
          out.pop_front();
          shutdown_dst();
          if (conn_.closed_) return false;
          continue;
        case EventKind::close:
          conn_.close();
          return false;
        case EventKind::reset:
          conn_.reset();
          return false;
      }
    }
    if (pipeline_->idle()) {  // no toxics left and nothing held: back to the fast path
      pipeline_.reset();
      wake_ = kNever;
    }
  }
  if (eof_pending_fast_ && !pipeline_) {
    eof_pending_fast_ = false;
    shutdown_dst();
    if (conn_.closed_) return false;
  }
  return true;
}

void Link::shutdown_dst() {
  if (eof_sent_) return;
  eof_sent_ = true;
  // When the other direction already ended (its source, our destination, said EOF), this end
  // closes the connection: close(2) sends the FIN itself, as nothing is left unread on that socket.
  const Link& other = dir_ == Direction::upstream ? conn_.down_ : conn_.up_;
  if (!(other.finished() && other.source_ended())) {
    ::shutdown(dst_->native_handle(), SHUT_WR);
    dst_shut_ = true;
  }
  conn_.link_finished();
}

void Link::arm_read() {
  if (read_wait_) return;
  read_wait_ = true;
  src_->async_wait(tcp::socket::wait_read,
                   [self = conn_.shared_from_this(), this](boost::system::error_code ec) {
                     read_wait_ = false;
                     if (ec || conn_.closed_) return;
                     pump();
                   });
}

void Link::arm_write() {
  if (write_wait_) return;
  write_wait_ = true;
  dst_->async_wait(tcp::socket::wait_write,
                   [self = conn_.shared_from_this(), this](boost::system::error_code ec) {
                     write_wait_ = false;
                     if (ec || conn_.closed_) return;
                     pump();
                   });
}

void Link::arm_timer() {
  const TimePoint want = pipeline_ ? wake_ : kNever;
  if (want == timer_at_) return;
  timer_at_ = want;
  if (want == kNever) {
    if (timer_) timer_->cancel();
    return;
  }
  if (!timer_) timer_ = std::make_unique<asio::steady_timer>(conn_.worker_.context);
  timer_->expires_at(want);
  timer_->async_wait([self = conn_.shared_from_this(), this, want](boost::system::error_code ec) {
    if (ec || conn_.closed_ || timer_at_ != want) return;
    timer_at_ = kNever;
    pump();
  });
}

// ---- Connection --------------------------------------------------------------------------------

void Connection::wake_downstream() {
  if (wake_posted_) return;
  wake_posted_ = true;
  asio::post(worker_.context, [self = shared_from_this()] {
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
    if (::getpeername(client_.native_handle(), reinterpret_cast<sockaddr*>(&ss), &len) == 0)
      client_address_ = IpAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss), len);
  }
  return client_address_;
}

void Connection::apply_to(Link& link, Direction d, TimePoint now) {
  const auto& toxics = snapshot_->by_direction[static_cast<int>(d)];
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

void Connection::start() {
  const TimePoint now = Clock::now();
  accepted_at_ = now;
  apply_to(up_, Direction::upstream, now);
  apply_to(down_, Direction::downstream, now);
  if (!snapshot_->on_open[0].empty() || !snapshot_->on_open[1].empty()) {
    if (const auto delay = open_delay(/*count=*/true); delay.count() > 0) return wait_then_connect(delay);
  }
  connect_upstream();
}

void Connection::wait_then_connect(std::chrono::milliseconds delay) {
  if (!open_timer_) open_timer_ = std::make_unique<asio::steady_timer>(worker_.context);
  if (accepted_at_ + delay <= Clock::now()) {
    open_timer_.reset();  // its pending wait, if any, ends with operation_aborted and does nothing
    return connect_upstream();
  }
  open_timer_->expires_at(accepted_at_ + delay);
  open_timer_->async_wait(
      [self = shared_from_this(), timer = open_timer_.get()](boost::system::error_code ec) {
        if (ec || self->closed_ || self->open_timer_.get() != timer) return;
        self->open_timer_.reset();
        self->connect_upstream();
      });
}

// Reaches the upstream: an IP literal directly, a name through the resolver.
void Connection::connect_upstream() {
  if (runtime_->upstream_endpoint) return connect_direct(*runtime_->upstream_endpoint);
  arm_connect_timer();
  resolver_ = std::make_unique<tcp::resolver>(worker_.context);
  resolver_->async_resolve(
      runtime_->upstream_host, runtime_->upstream_port,
      [self = shared_from_this()](boost::system::error_code ec, tcp::resolver::results_type results) {
        if (ec || self->closed_) return self->connect_failed(ec ? ec : asio::error::operation_aborted);
        asio::async_connect(self->upstream_, results,
                            [self](boost::system::error_code cec, const tcp::endpoint&) {
                              if (cec) return self->connect_failed(cec);
                              self->on_connected();
                            });
      });
}

// The deadline to reach the upstream: cancels the resolve or connect under way.
void Connection::arm_connect_timer() {
  connect_timer_ = std::make_unique<asio::steady_timer>(worker_.context, runtime_->connect_timeout);
  connect_timer_->async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec || self->connected_ || self->closed_) return;
    boost::system::error_code ignored;
    self->upstream_.cancel(ignored);
    if (self->resolver_) self->resolver_->cancel();
  });
}

// The upstream is an IP literal: connect(2) directly (Asio's async_connect always waits for the
// reactor first, then polls). On loopback the handshake has usually completed by the time connect(2)
// returns EINPROGRESS, so asking TCP_INFO at once saves a trip through the event loop.
void Connection::connect_direct(const tcp::endpoint& ep) {
  boost::system::error_code ec;
  upstream_.open(ep.protocol(), ec);
  if (!ec) upstream_.non_blocking(true, ec);
  if (ec) return connect_failed(ec);
  const int fd = upstream_.native_handle();
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
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
  arm_connect_timer();  // a timer only for connections that have to wait
  upstream_.async_wait(tcp::socket::wait_write, [self = shared_from_this()](boost::system::error_code wec) {
    if (wec) return self->connect_failed(wec);
    self->finish_connect();
  });
}

// The connect(2) started by connect_direct ended: its outcome is in SO_ERROR.
void Connection::finish_connect() {
  if (closed_) return;
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(upstream_.native_handle(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err != 0) return connect_failed(boost::system::error_code(err, boost::system::system_category()));
  on_connected();
}

void Connection::connect_failed(const boost::system::error_code& ec) {
  if (closed_) return;
  if (runtime_->upstream_failures) runtime_->upstream_failures->inc();
  common::log::warn("unable to open connection to upstream",
                    {{"proxy", runtime_->name}, {"upstream", runtime_->upstream}, {"error", ec.message()}});
  close();
}

void Connection::on_connected() {
  if (closed_) return;
  connected_ = true;
  if (connect_timer_) connect_timer_->cancel();
  resolver_.reset();
  // The client socket came from accept4 non-blocking and with TCP_NODELAY (from the listening
  // socket); the upstream socket is non-blocking since its connect, and connect_direct already set
  // TCP_NODELAY on it. Reads and writes pass MSG_DONTWAIT all the same.
  if (!runtime_->upstream_endpoint) {
    const int one = 1;
    ::setsockopt(upstream_.native_handle(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  up_.pump();
  down_.pump();
}

void Connection::apply(SnapshotPtr snap) {
  if (closed_) return;
  snapshot_ = std::move(snap);
  const TimePoint now = Clock::now();
  apply_to(up_, Direction::upstream, now);
  if (closed_) return;
  apply_to(down_, Direction::downstream, now);
  // Still waiting for a slow_open: its delay follows the toxics (removed: the connection goes on).
  if (open_timer_ && !closed_) wait_then_connect(open_delay(/*count=*/false));
}

void Connection::teardown(bool rst) {
  if (closed_) return;
  closed_ = true;
  auto self = shared_from_this();  // keep alive until the end of this function
  common::log::debug("connection closed", {{"proxy", runtime_->name}, {"index", index_}, {"reset", rst}});
  up_.stop();
  down_.stop();
  if (connect_timer_) connect_timer_->cancel();
  if (open_timer_) open_timer_->cancel();
  if (resolver_) resolver_->cancel();
  boost::system::error_code ignored;
  // Per socket: did we read its EOF (up_ reads the client, down_ the upstream), and did we already
  // send our FIN on it (down_ writes to the client, up_ to the upstream)?
  const struct {
    tcp::socket* socket;
    bool eof_read, shut;
  } sockets[] = {{&client_, up_.source_ended(), down_.destination_shut()},
                 {&upstream_, down_.source_ended(), up_.destination_shut()}};
  for (const auto& [s, eof_read, shut] : sockets) {
    if (!s->is_open()) continue;
    const int fd = s->native_handle();
    if (rst) {
      const linger lg{1, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    } else if (!eof_read) {
      // A normal close: FIN first, then discard what the peer sent that nobody will read, so that
      // close(2) does not turn into a RST. After its EOF nothing is unread, and close(2) alone
      // sends the FIN (if shutdown did not already).
      if (!shut) ::shutdown(fd, SHUT_WR);
      char scratch[4096];
      for (int i = 0; i < 64 && ::recv(fd, scratch, sizeof scratch, MSG_DONTWAIT) > 0; ++i) {
      }
    }
    s->close(ignored);
  }
  auto it = worker_.connections.find(runtime_->id);
  if (it != worker_.connections.end()) {
    it->second.erase(this);
    if (it->second.empty()) worker_.connections.erase(it);
  }
}

// ---- Workers -----------------------------------------------------------------------------------

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
  }
}

void Workers::start_threads() {
  if (!common::request_short_slices()) common::log::debug("short scheduler slices not available");
  for (std::size_t i = 1; i < workers_.size(); ++i) {
    Worker* w = workers_[i].get();
    w->thread = std::thread([this, w] {
      common::request_short_slices();
      run(w->context);
    });
  }
}

void Workers::run_control() {
  run(control());
}

void Workers::run(asio::io_context& context) const {
  auto guard = asio::make_work_guard(context);
  if (busy_poll_.count() <= 0) {
    context.run();
    return;
  }
  while (context.run_one() != 0) {  // sleeps in epoll_wait until there is something to do
    auto until = Clock::now() + busy_poll_;
    while (!context.stopped()) {
      if (context.poll() != 0) {  // epoll_wait without waiting, then what became ready
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

void Workers::start_connections(const std::vector<int>& fds, tcp protocol,
                                const std::shared_ptr<ProxyRuntime>& runtime, const SnapshotPtr& snapshot,
                                std::uint64_t first_index) {
  batches_.resize(workers_.size());
  for (std::size_t i = 0; i < fds.size(); ++i) {
    batches_[next_].emplace_back(fds[i], first_index + i);
    next_ = (next_ + 1) % workers_.size();
  }
  for (std::size_t k = 0; k < workers_.size(); ++k) {
    if (batches_[k].empty()) continue;
    Worker* w = workers_[k].get();
    asio::post(w->context, [w, batch = std::move(batches_[k]), protocol, runtime, snapshot] {
      for (const auto& [fd, index] : batch) {
        boost::system::error_code aec;
        tcp::socket socket(w->context);
        socket.assign(protocol, fd, aec);
        if (aec) {
          ::close(fd);
          continue;
        }
        auto conn = std::make_shared<Connection>(*w, std::move(socket), runtime, snapshot, index);
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
