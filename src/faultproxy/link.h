// One direction of a proxied connection: a Link reads its source socket and writes its destination
// socket, through the direction's toxics when it has some.
//
// Without toxics (the fast path) it copies bytes with a buffer borrowed from its worker's pool only
// while data flows (an idle link holds none), or moves a bulk transfer with splice(2) through a
// pipe borrowed the same way; with toxics (the staged path) it reads timestamped
// chunks into a Pipeline and writes what the pipeline releases. apply() switches between the two at
// any moment without losing, duplicating or reordering bytes. A FIN from the source becomes a
// shutdown(SHUT_WR) of the destination once everything before it is written (a half-close: the
// other direction keeps flowing).
//
// A link knows its connection only through LinkHost: the worker's event loop and buffers, what a
// link needs now and then (its opposite, its toxics' seed, the protocol session), and three events
// (its end passed on; the connection must close, with or without a RST; a toxic started acting).
// Each direction's lifecycle is one Flow value; the connection closes both sockets with
// close_source() on each link.
//
// Usage (what the data plane's Connection does; link_test.cpp does the same with its own host):
//   struct Conn : LinkHost { Link up, down; ... };    // made with std::make_shared; opposite(up) is down
//   up.apply(toxics, now);                            // any time, also before start()
//   up.start(); down.start();                         // once both sockets are connected
//   // LinkHost::link_finished: both finished() -> close; close_connection(reset):
//   up.close_source(reset); down.close_source(reset); up.stop(); down.stop();
#pragma once

#include <sys/types.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "common/metrics.h"
#include "faultproxy/pipeline.h"
#include "faultproxy/poller.h"

namespace faultproxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

enum class Direction : std::uint8_t { upstream = 0, downstream = 1 };
std::string_view direction_name(Direction d);

// The staged path dates each chunk by its arrival, not its read: a latency toxic then hides the
// wake-up of a sleeping worker (tens of microseconds, a millisecond at worst on a busy machine) and
// a connection's setup (its first bytes wait in the socket until the upstream is connected:
// milliseconds when many connections come at once). Never before the link's toxics existed, and
// not by a stamp older than kMaxArrivalLead (a wall-clock step would date bytes that far off).
inline constexpr auto kMaxArrivalLead = std::chrono::milliseconds(50);
// Asks the kernel to stamp what `fd` receives (SO_TIMESTAMPNS).
void enable_arrival_stamps(int fd);
// A non-blocking recv(2) that also sets `arrived`: the receive stamp of the last segment read,
// carried from the wall clock to the steady clock by its age, or `now` without a stamp, when the
// wall clock stepped, or when the stamp is older than kMaxArrivalLead.
ssize_t recv_dated(int fd, char* buf, std::size_t want, TimePoint now, TimePoint& arrived);

// Read buffers and splice pipes, recycled per worker so that the data path does not allocate per
// chunk and idle links hold neither. A pipe lets the fast path move a bulk transfer with splice(2):
// the bytes go from socket to socket through the kernel, never copied into the proxy.
class BufferPool {
 public:
  static constexpr std::size_t kSmall = 16 * 1024;
  static constexpr std::size_t kLarge = 256 * 1024;
  static constexpr std::size_t size(bool large) { return large ? kLarge : kSmall; }
  // A buffer of size(large) bytes.
  std::unique_ptr<char[]> acquire(bool large);
  // Takes `buffer` (of size(large) bytes) back; it is null afterwards.
  void release(std::unique_ptr<char[]>& buffer, bool large);
  std::size_t cached() const { return small_.size() + large_.size(); }

  // A pipe lent to a link, by its slot in the pool (kNoPipe: none).
  static constexpr std::uint32_t kNoPipe = ~std::uint32_t{0};
  struct Pipe {
    int read_fd = -1, write_fd = -1;
    std::uint32_t capacity = 0;  // bytes (F_SETPIPE_SZ: 1 MiB, else 256 KiB)
  };
  BufferPool() = default;
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;
  // An empty pipe, or kNoPipe when none can be had: the process did not ignore SIGPIPE when the
  // pool first made one (splice(2) cannot be told MSG_NOSIGNAL), or the kernel refused one of
  // 256 KiB (pipe-user-pages-soft; not asked again until a pipe is given back).
  std::uint32_t acquire_pipe();
  const Pipe& pipe(std::uint32_t slot) const { return pipes_[slot]; }
  // Takes the pipe in `slot` back (kNoPipe afterwards); one that still holds bytes (`empty` false:
  // its connection closed) is closed, its bytes dropped.
  void release_pipe(std::uint32_t& slot, bool empty);
  // Pipes lent since the pool was made (tests).
  std::uint64_t pipes_lent() const { return pipes_lent_; }

 private:
  std::vector<std::unique_ptr<char[]>> small_, large_;
  std::vector<Pipe> pipes_;            // by slot; a closed one has fds -1
  std::vector<std::uint32_t> idle_;    // slots of open, empty pipes not lent
  std::vector<std::uint32_t> vacant_;  // slots of closed pipes
  std::uint64_t pipes_lent_ = 0;
  bool refused_ = false;                 // the kernel refused the last pipe asked for
  std::optional<bool> sigpipe_ignored_;  // asked when the first pipe is made
};

// The client's first bytes (up to 8), kept by the upstream link: a MySQL toxic added later reads
// there whether the connection negotiated TLS or compression.
struct ClientHead {
  std::array<char, 8> bytes{};
  std::uint8_t size = 0;
  bool full() const { return size == bytes.size(); }
  void keep(const char* data, std::size_t n);
  std::string_view view() const { return {bytes.data(), size}; }
};

// What the links of one direction of a proxy count (null: not counted).
struct LinkCounters {
  common::metrics::Counter* received = nullptr;  // bytes read
  common::metrics::Counter* sent = nullptr;      // bytes written
};

class Link;

// What a link needs of its connection. Owned by a shared_ptr (the links' posted pumps and timer
// waits keep it alive); its virtual functions are called on a connection's events, never per chunk. What a
// link needs only now and then (its seed, its opposite, the session, a name for logs, the client's first
// bytes) is asked here rather than stored in each link: an idle connection stays small.
class LinkHost : public std::enable_shared_from_this<LinkHost> {
 public:
  LinkHost(asio::io_context& context, BufferPool& pool) : context_(context), pool_(pool) {}
  virtual ~LinkHost() = default;
  asio::io_context& context() const { return context_; }
  BufferPool& pool() const { return pool_; }

  // The other link of the connection (its source is `link`'s destination).
  virtual const Link& opposite(const Link& link) const = 0;
  // The random state of the toxics of the link in direction `d` (asked when its first toxic comes).
  virtual std::uint64_t link_seed(Direction d) const = 0;
  // For protocol toxics (null: they pass everything).
  virtual ProtocolSession* session() { return nullptr; }
  // In log lines.
  virtual std::string_view proxy_name() const = 0;
  // The upstream link hands its reads here until this returns false (ClientHead: nothing more wanted).
  virtual bool keep_client_head(const char* /*data*/, std::size_t /*n*/) { return false; }

  // `link` passed its source's end on (finished() is true now).
  virtual void link_finished(Link& link) = 0;
  // The connection must end: an I/O error, the source reset, or a toxic's close / reset (`reset`:
  // with a TCP RST). Stops both links (Link::stop) before it returns.
  virtual void close_connection(bool reset) = 0;
  // A toxic started acting on `link` (for metrics).
  virtual void toxic_activated(const ToxicSpec& spec, Direction direction) = 0;

 private:
  asio::io_context& context_;
  BufferPool& pool_;
};

// How one link is wired: its sockets (owned by the connection) and what it counts.
struct LinkWiring {
  Direction direction = Direction::upstream;
  DataSocket* source = nullptr;
  DataSocket* destination = nullptr;
  const LinkCounters* counters = nullptr;  // null: not counted; must outlive the link
  bool keeps_client_head = false;          // upstream link: LinkHost::keep_client_head
};

class Link {
 public:
  // One direction's lifecycle, in order (stopped may follow any of them).
  enum class Flow : std::uint8_t {
    waiting,       // not started: the upstream is not connected yet; toxics may already be applied
    open,          // bytes flow
    source_ended,  // the source said EOF; its end still waits behind unwritten bytes or in the toxics
    finished,      // the end was passed on (the destination shut down, or the connection closes)
    stopped,       // the connection closed: nothing more happens
  };

  Link(LinkHost& host, const LinkWiring& wiring);
  ~Link();
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  // Brings the link's toxics in line with `toxics` (empty: back to the fast path once what the
  // toxics hold is written).
  void apply(const std::vector<ToxicSpec>& toxics, TimePoint now);
  // Starts moving bytes (both sockets connected).
  void start();
  // Reads and writes what can be, arming waits and the toxics' timer for the rest.
  void pump();
  // An edge of a socket's readiness (Poller events), passed on to the link that reads the socket
  // and the one that writes it: each pumps if it was waiting for that.
  static void on_socket_events(std::uint32_t events, Link& reader, Link& writer);
  // The connection closes: timers and waits end, buffers go back to the pool.
  void stop();
  // Closes the source socket as the connection ends, before stop(): with a RST when `reset`;
  // otherwise with a FIN that does not turn into a RST (what the peer sent and nobody will read is
  // discarded first).
  void close_source(bool reset);

  Flow flow() const { return flow_; }
  Direction direction() const { return direction_; }
  const Pipeline* pipeline() const;
  // The end was passed on.
  bool finished() const { return flow_ == Flow::finished; }
  // The source said EOF: nothing is left unread on it, and nothing more will come.
  bool source_ended() const { return flow_ == Flow::source_ended || flow_ == Flow::finished; }
  // Bytes read and not yet written (in the toxics or the fast path's buffer).
  bool holds_data() const;
  // A buffer or a pipe borrowed from the pool (an idle link holds neither).
  bool holds_buffer() const { return buf_ != nullptr || pipe_ != BufferPool::kNoPipe; }
  // The fast path moves this link's bytes through a pipe (a bulk transfer: splice(2)).
  bool splicing() const { return pipe_ != BufferPool::kNoPipe; }
  // Bytes the toxics released and not yet written.
  bool holds_data_after_toxics() const;

 private:
  // The staged path's state, made with the first toxic and dropped when the link goes back to
  // its fast path (link.cpp).
  struct Staged;

  bool running() const { return flow_ != Flow::waiting && flow_ != Flow::stopped; }
  bool flush();
  bool read_once(TimePoint now);
  ssize_t write_fast(int fd);
  void pass_end();
  void arm_read();
  void arm_write();
  // `closing`: the source's end (FIN) or an error is pending behind whatever data is there.
  void on_readable(bool closing);
  void on_writable();
  void arm_timer();
  void release_buffer();

  // 64 bytes, two per connection: pointers, the fast path's offsets and pipe, then one-byte state.
  LinkHost& host_;
  DataSocket* source_;
  DataSocket* destination_;
  const LinkCounters* counters_;
  std::unique_ptr<Staged> staged_;
  std::unique_ptr<char[]> buf_;                // BufferPool::size(buf_large_) bytes
  std::uint32_t fast_len_ = 0, fast_off_ = 0;  // in buf_, or in the pipe
  std::uint32_t pipe_ = BufferPool::kNoPipe;   // the pool's slot of the pipe held (splicing)
  Direction direction_;
  Flow flow_ = Flow::waiting;
  bool buf_large_ : 1 = false;
  // Pending work, independent of each other and of the flow: waiting for the source's or the
  // destination's next edge, a pump posted to the event loop, a pump running (not reentrant).
  bool read_wait_ : 1 = false, write_wait_ : 1 = false, pump_posted_ : 1 = false, in_pump_ : 1 = false;
  // Fast path hints: the last read filled the buffer (a bulk transfer: once it is written, read
  // through a pipe, or into a kLarge buffer when the pool has no pipe to lend); the last
  // read returned less than asked, so the socket was drained and the next read would only say
  // EAGAIN (wait for readiness instead: epoll is edge-triggered, data that arrived since is
  // reported as a new edge; an edge that comes while the link does not wait clears the hint).
  bool large_ : 1 = false, drained_ : 1 = false;
  bool keeps_client_head_ : 1 = false;  // the client's first bytes still go to the host
  // The source's FIN or an error was reported: a short read no longer means drained (the end is
  // reported once, and is read only by a read after the data).
  bool end_pending_ : 1 = false;
};

}  // namespace faultproxy
