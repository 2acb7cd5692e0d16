#include "faultproxy/link.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <cerrno>
#include <cstring>

#include "common/log.h"

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
constexpr std::size_t kMaxIdlePipes = 8;
// A pipe of 1 MiB (the default pipe-max-size) costs less CPU per byte than one of 256 KiB
// (README: Measured); smaller ones take more system calls than they save.
constexpr int kPipeSizes[] = {1024 * 1024, 256 * 1024};
constexpr unsigned kSpliceFlags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;

bool would_block(int err) {
  return err == EAGAIN || err == EWOULDBLOCK;
}

}  // namespace

ssize_t recv_dated(int fd, char* buf, std::size_t want, TimePoint now, TimePoint& arrived) {
  iovec iov{buf, want};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timespec))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  const ssize_t n = ::recvmsg(fd, &msg, MSG_DONTWAIT);
  arrived = now;
  if (n <= 0) return n;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPNS) continue;
    timespec stamp{}, wall{};
    std::memcpy(&stamp, CMSG_DATA(c), sizeof stamp);
    ::clock_gettime(CLOCK_REALTIME, &wall);
    const TimePoint steady = Clock::now();  // the same instant as `wall`, as near as two reads get
    const auto age = std::chrono::seconds(wall.tv_sec - stamp.tv_sec) +
                     std::chrono::nanoseconds(wall.tv_nsec - stamp.tv_nsec);
    if (age > Clock::duration::zero() && age <= kMaxArrivalLead) arrived = std::min(now, steady - age);
  }
  return n;
}

void enable_arrival_stamps(int fd) {
  const int on = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
}

std::string_view direction_name(Direction d) {
  return d == Direction::upstream ? "upstream" : "downstream";
}

std::unique_ptr<char[]> BufferPool::acquire(bool large) {
  auto& list = large ? large_ : small_;
  if (list.empty()) return std::make_unique_for_overwrite<char[]>(size(large));
  auto b = std::move(list.back());
  list.pop_back();
  return b;
}

void BufferPool::release(std::unique_ptr<char[]>& buffer, bool large) {
  if (!buffer) return;
  auto& list = large ? large_ : small_;
  if (list.size() < (large ? kMaxCachedLarge : kMaxCachedSmall)) list.push_back(std::move(buffer));
  buffer.reset();
}

BufferPool::~BufferPool() {
  for (const Pipe& p : pipes_) {
    if (p.read_fd >= 0) ::close(p.read_fd);
    if (p.write_fd >= 0) ::close(p.write_fd);
  }
}

std::uint32_t BufferPool::acquire_pipe() {
  if (!idle_.empty()) {
    const std::uint32_t slot = idle_.back();
    idle_.pop_back();
    ++pipes_lent_;
    return slot;
  }
  if (refused_) return kNoPipe;
  if (!sigpipe_ignored_) {
    struct sigaction pipe_signal {};
    sigpipe_ignored_ = ::sigaction(SIGPIPE, nullptr, &pipe_signal) == 0 && pipe_signal.sa_handler == SIG_IGN;
  }
  if (!*sigpipe_ignored_) return kNoPipe;
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
    refused_ = true;
    return kNoPipe;
  }
  int capacity = -1;
  for (const int size : kPipeSizes) {
    capacity = ::fcntl(fds[1], F_SETPIPE_SZ, size);
    if (capacity >= size) break;
  }
  if (capacity < kPipeSizes[std::size(kPipeSizes) - 1]) {
    ::close(fds[0]);
    ::close(fds[1]);
    refused_ = true;
    return kNoPipe;
  }
  const Pipe pipe{fds[0], fds[1], static_cast<std::uint32_t>(capacity)};
  std::uint32_t slot;
  if (!vacant_.empty()) {
    slot = vacant_.back();
    vacant_.pop_back();
    pipes_[slot] = pipe;
  } else {
    slot = static_cast<std::uint32_t>(pipes_.size());
    pipes_.push_back(pipe);
  }
  ++pipes_lent_;
  return slot;
}

void BufferPool::release_pipe(std::uint32_t& slot, bool empty) {
  if (slot == kNoPipe) return;
  refused_ = false;  // what the kernel refused may be had now
  if (empty && idle_.size() < kMaxIdlePipes) {
    idle_.push_back(slot);
  } else {
    Pipe& p = pipes_[slot];
    ::close(p.read_fd);
    ::close(p.write_fd);
    p = Pipe{};
    vacant_.push_back(slot);
  }
  slot = kNoPipe;
}

void ClientHead::keep(const char* data, std::size_t n) {
  const std::size_t take = std::min(n, bytes.size() - size);
  std::memcpy(bytes.data() + size, data, take);
  size = static_cast<std::uint8_t>(size + take);
}

struct Link::Staged {
  Staged(asio::io_context& context, std::uint64_t seed, ProtocolSession* session, TimePoint now)
      : pipeline(seed, session), timer(context), last_arrival(now) {}
  Pipeline pipeline;
  asio::steady_timer timer;  // armed at timer_at (kNever: not armed)
  TimePoint timer_at = kNever, wake = kNever;
  TimePoint last_arrival;  // chunks are dated in the order they are read, none before the toxics
  bool stamped = false;    // the source socket stamps what it receives
};

Link::Link(LinkHost& host, const LinkWiring& wiring)
    : host_(host),
      source_(wiring.source),
      destination_(wiring.destination),
      counters_(wiring.counters),
      direction_(wiring.direction),
      keeps_client_head_(wiring.keeps_client_head) {}

Link::~Link() = default;

// Two links per connection, idle ones included (bench/: RSS per idle connection).
static_assert(sizeof(Link) <= 64, "keep rarely used link state behind LinkHost or in Staged");

const Pipeline* Link::pipeline() const {
  return staged_ ? &staged_->pipeline : nullptr;
}

bool Link::holds_data() const {
  return fast_off_ < fast_len_ || (staged_ && staged_->pipeline.buffered_bytes() > 0);
}

bool Link::holds_data_after_toxics() const {
  return fast_off_ < fast_len_ || (staged_ && staged_->pipeline.output_bytes() > 0);
}

void Link::release_buffer() {
  host_.pool().release(buf_, buf_large_);
  host_.pool().release_pipe(pipe_, fast_off_ == fast_len_);
}

void Link::apply(const std::vector<ToxicSpec>& toxics, TimePoint now) {
  if (flow_ == Flow::stopped) return;
  if (!staged_) {
    if (toxics.empty()) return;
    staged_ = std::make_unique<Staged>(host_.context(), host_.link_seed(direction_), host_.session(), now);
    if (const int fd = source_->fd(); fd >= 0) {  // else at the first read (an upstream still connecting)
      enable_arrival_stamps(fd);
      staged_->stamped = true;
    }
    staged_->pipeline.on_activation(
        [host = &host_, dir = direction_](const ToxicSpec& spec) { host->toxic_activated(spec, dir); });
    if (flow_ == Flow::source_ended) {  // the source already ended: its end now goes through the toxics
      staged_->pipeline.push(Event::terminal(EventKind::eof, now), now);
    }
  }
  staged_->pipeline.apply(toxics, now);
  pump();
}

void Link::start() {
  if (flow_ != Flow::waiting) return;
  flow_ = Flow::open;
  pump();
}

void Link::stop() {
  flow_ = Flow::stopped;
  release_buffer();
  staged_.reset();  // its timer's pending wait ends with operation_aborted
}

void Link::pump() {
  if (!running() || in_pump_) return;
  in_pump_ = true;
  bool again = false;
  for (int reads = 0;; ++reads) {
    if (!flush()) break;
    if (flow_ != Flow::open || read_wait_) break;
    if (staged_ && staged_->pipeline.buffered_bytes() >= kMaxBuffered)
      break;  // resumed by writes or the timer
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
  if (flow_ == Flow::stopped) return;
  arm_timer();
  if (again && !pump_posted_) {
    pump_posted_ = true;
    asio::post(host_.context(), [self = host_.shared_from_this(), this] {
      pump_posted_ = false;
      pump();
    });
  }
}

bool Link::read_once(TimePoint now) {
  const int fd = source_->fd();
  if (large_ && pipe_ == BufferPool::kNoPipe && !staged_ && !keeps_client_head_) {
    pipe_ = host_.pool().acquire_pipe();                                       // else the large buffer
    if (pipe_ != BufferPool::kNoPipe) host_.pool().release(buf_, buf_large_);  // empty: flush() wrote it
  }
  std::size_t want;
  ssize_t n;
  TimePoint arrived = now;
  if (pipe_ != BufferPool::kNoPipe) {  // empty: flush() wrote the last of it out
    const BufferPool::Pipe& p = host_.pool().pipe(pipe_);
    want = p.capacity;
    n = ::splice(fd, nullptr, p.write_fd, nullptr, want, kSpliceFlags);
  } else {
    if (!buf_) {
      buf_large_ = !staged_ && large_;  // the staged path reads small chunks
      buf_ = host_.pool().acquire(buf_large_);
    }
    const std::size_t size = BufferPool::size(buf_large_);
    want = staged_ ? std::min(size, kStagedRead) : size;
    if (staged_ && !staged_->stamped) {
      enable_arrival_stamps(fd);  // a latency toxic counts from the bytes' arrival
      staged_->stamped = true;
    }
    n = staged_ ? recv_dated(fd, buf_.get(), want, now, arrived) : ::recv(fd, buf_.get(), want, MSG_DONTWAIT);
  }
  if (n > 0) {
    const auto got = static_cast<std::size_t>(n);
    if (keeps_client_head_) [[unlikely]]
      keeps_client_head_ = host_.keep_client_head(buf_.get(), got);
    // Only for small reads: after a large one, writing it out took long enough for more to arrive.
    drained_ = got < want && got < BufferPool::kSmall && !end_pending_;
    if (counters_ && counters_->received) counters_->received->inc(static_cast<double>(got));
    if (!staged_) {
      fast_len_ = static_cast<std::uint32_t>(got);
      fast_off_ = 0;
      if (got == want) large_ = true;  // a bulk transfer: a pipe (or the large buffer) once this is written
      if (got < BufferPool::kSmall / 2) large_ = false;  // small messages: small buffers
    } else {
      arrived = std::max(arrived, staged_->last_arrival);
      staged_->last_arrival = arrived;
      staged_->pipeline.push(Event::data(std::string(buf_.get(), got), arrived), now);
    }
    return true;
  }
  if (n == 0) {
    // Without toxics the end waits in flush() behind the fast path's unwritten bytes.
    flow_ = Flow::source_ended;
    if (staged_) staged_->pipeline.push(Event::terminal(EventKind::eof, now), now);
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
  common::log::debug("read failed", {{"proxy", host_.proxy_name()},
                                     {"direction", direction_name(direction_)},
                                     {"error", std::string_view(std::strerror(err))}});
  host_.close_connection(false);
  return false;
}

bool Link::flush() {
  if (write_wait_ || flow_ == Flow::stopped) return false;
  const int fd = destination_->fd();
  auto* sent_counter = counters_ ? counters_->sent : nullptr;
  auto fail = [&](int err) {
    if (err == EINTR) return true;
    if (would_block(err)) {
      arm_write();
    } else {
      common::log::debug("write failed", {{"proxy", host_.proxy_name()},
                                          {"direction", direction_name(direction_)},
                                          {"error", std::string_view(std::strerror(err))}});
      host_.close_connection(false);
    }
    return false;
  };
  // 1. What the fast path read (always older than anything in the pipeline).
  while (fast_off_ < fast_len_) {
    const ssize_t n = write_fast(fd);
    if (n > 0) {
      fast_off_ += static_cast<std::uint32_t>(n);
      if (sent_counter) sent_counter->inc(static_cast<double>(n));
      continue;
    }
    if (!fail(errno)) return false;
  }
  if (fast_len_ != 0) {
    fast_len_ = fast_off_ = 0;
    if (large_ && !buf_large_) host_.pool().release(buf_, buf_large_);
    if (staged_ || !large_) host_.pool().release_pipe(pipe_, true);  // the next reads copy
  }
  // 2. What the toxics released.
  if (staged_) {
    staged_->wake = staged_->pipeline.run(Clock::now());
    EventQueue& out = staged_->pipeline.output();
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
          pass_end();
          if (flow_ == Flow::stopped) return false;
          continue;
        case EventKind::close:
          host_.close_connection(false);
          return false;
        case EventKind::reset:
          host_.close_connection(true);
          return false;
      }
    }
    // No toxics left and nothing held: back to the fast path (a pending wait of the timer ends
    // with operation_aborted).
    if (staged_->pipeline.idle()) staged_.reset();
  }
  // Without toxics, the source's end follows the bytes just written.
  if (flow_ == Flow::source_ended && !staged_) {
    pass_end();
    if (flow_ == Flow::stopped) return false;
  }
  return true;
}

// Writes what the fast path holds (from fast_off_ to fast_len_), from its pipe or its buffer.
ssize_t Link::write_fast(int fd) {
  const std::size_t left = fast_len_ - fast_off_;
  if (pipe_ != BufferPool::kNoPipe)
    return ::splice(host_.pool().pipe(pipe_).read_fd, nullptr, fd, nullptr, left, kSpliceFlags);
  return ::send(fd, buf_.get() + fast_off_, left, MSG_NOSIGNAL | MSG_DONTWAIT);
}

void Link::pass_end() {
  if (flow_ != Flow::source_ended) return;
  flow_ = Flow::finished;
  // When the other direction already ended (its source, our destination, said EOF and it passed
  // that on), the host closes the connection now: close(2) sends the FIN itself, as nothing is left
  // unread on that socket.
  if (!host_.opposite(*this).finished()) ::shutdown(destination_->fd(), SHUT_WR);
  host_.link_finished(*this);
}

void Link::close_source(bool reset) {
  DataSocket* s = source_;
  if (!s->is_open()) return;
  const int fd = s->fd();
  if (reset) {
    const linger lg{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  } else if (!source_ended()) {
    // A normal close: FIN first, then discard what the peer sent that nobody will read, so that
    // close(2) does not turn into a RST. After its EOF nothing is unread, and close(2) alone sends
    // the FIN (if the opposite link did not shut it down already).
    if (!host_.opposite(*this).finished()) ::shutdown(fd, SHUT_WR);
    char scratch[4096];
    for (int i = 0; i < 64 && ::recv(fd, scratch, sizeof scratch, MSG_DONTWAIT) > 0; ++i) {
    }
  }
  s->close();
}

void Link::arm_read() {
  read_wait_ = true;
}

void Link::arm_write() {
  write_wait_ = true;
}

void Link::on_socket_events(std::uint32_t events, Link& reader, Link& writer) {
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP))
    reader.on_readable((events & (EPOLLRDHUP | EPOLLERR | EPOLLHUP)) != 0);
  if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) writer.on_writable();
}

void Link::on_readable(bool closing) {
  if (closing) end_pending_ = true;
  if (!read_wait_) {
    // Whatever came is read by the next read this link makes anyway; only the hint that the
    // source is drained is stale now.
    drained_ = false;
    return;
  }
  read_wait_ = false;
  if (flow_ != Flow::stopped) pump();
}

void Link::on_writable() {
  if (!write_wait_) return;  // the next write finds out
  write_wait_ = false;
  if (flow_ != Flow::stopped) pump();
}

void Link::arm_timer() {
  if (!staged_) return;
  Staged& st = *staged_;
  if (st.wake == st.timer_at) return;
  st.timer_at = st.wake;
  if (st.wake == kNever) {
    st.timer.cancel();
    return;
  }
  st.timer.expires_at(st.wake);
  st.timer.async_wait([self = host_.shared_from_this(), this, want = st.wake](boost::system::error_code ec) {
    // A wait cancelled, re-armed since, or of a Staged that is gone (its timer too) does nothing.
    if (ec || flow_ == Flow::stopped || !staged_ || staged_->timer_at != want) return;
    staged_->timer_at = kNever;
    pump();
  });
}

}  // namespace faultproxy
