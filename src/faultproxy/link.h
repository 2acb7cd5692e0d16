// One direction of a proxied connection: a Link reads its source socket and writes its destination
// socket, through the direction's toxics when it has some.
//
// Without toxics (the fast path) it copies bytes with a buffer borrowed from its worker's pool only
// while data flows (an idle link holds none); with toxics (the staged path) it reads timestamped
// chunks into a Pipeline and writes what the pipeline releases. apply() switches between the two at
// any moment without losing, duplicating or reordering bytes. A FIN from the source becomes a
// shutdown(SHUT_WR) of the destination once everything before it is written (a half-close: the
// other direction keeps flowing).
//
// A link knows its connection only through LinkHost: the worker's event loop and buffers, and three
// events (its end passed on; the connection must close, with or without a RST; a toxic started
// acting). Each direction's lifecycle is one Flow value; the connection closes both sockets with
// close_source() on each link.
//
// Usage (what the data plane's Connection does; link_test.cpp does the same with its own host):
//   struct Conn : LinkHost { Link up, down; ... };    // made with std::make_shared
//   up.apply(toxics, now);                            // any time, also before start()
//   up.start(); down.start();                         // once both sockets are connected
//   // LinkHost::link_finished: both finished() -> close; close_connection(reset):
//   up.close_source(reset); down.close_source(reset); up.stop(); down.stop();
#pragma once

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "common/metrics.h"
#include "faultproxy/pipeline.h"

namespace faultproxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

enum class Direction : std::uint8_t { upstream = 0, downstream = 1 };
std::string_view direction_name(Direction d);

// Large read buffers, recycled per worker so that the data path does not allocate per chunk and
// idle links hold none.
class BufferPool {
 public:
  static constexpr std::size_t kSmall = 16 * 1024;
  static constexpr std::size_t kLarge = 256 * 1024;
  struct Buffer {
    std::unique_ptr<char[]> data;
    std::size_t size = 0;
    explicit operator bool() const { return data != nullptr; }
  };
  Buffer acquire(std::size_t size);
  void release(Buffer& b);
  std::size_t cached() const { return small_.size() + large_.size(); }

 private:
  std::vector<std::unique_ptr<char[]>> small_, large_;
};

// The client's first bytes (up to 8), kept by the upstream link: a MySQL toxic added later reads
// there whether the connection negotiated TLS or compression.
struct ClientHead {
  std::array<char, 8> bytes{};
  std::size_t size = 0;
  bool full() const { return size == bytes.size(); }
  void keep(const char* data, std::size_t n);
  std::string_view view() const { return {bytes.data(), size}; }
};

class Link;

// What a link needs of its connection. Owned by a shared_ptr (the links' pending waits keep it
// alive); its virtual functions are called on a connection's events, never per chunk.
class LinkHost : public std::enable_shared_from_this<LinkHost> {
 public:
  // `session`: for protocol toxics (null: they pass everything); `proxy_name`: in log lines, must
  // outlive the host.
  LinkHost(asio::io_context& context, BufferPool& pool, ProtocolSession* session, std::string_view proxy_name)
      : context_(context), pool_(pool), session_(session), proxy_name_(proxy_name) {}
  virtual ~LinkHost() = default;
  asio::io_context& context() const { return context_; }
  BufferPool& pool() const { return pool_; }
  ProtocolSession* session() const { return session_; }
  std::string_view proxy_name() const { return proxy_name_; }

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
  ProtocolSession* session_;
  std::string_view proxy_name_;
};

// How one link is wired: its sockets (owned by the connection) and what it counts.
struct LinkWiring {
  Direction direction = Direction::upstream;
  tcp::socket* source = nullptr;
  tcp::socket* destination = nullptr;
  std::uint64_t seed = 0;                        // its toxics' random state
  ClientHead* client_head = nullptr;             // upstream link only
  common::metrics::Counter* received = nullptr;  // bytes read / written (null: not counted)
  common::metrics::Counter* sent = nullptr;
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

  Link(LinkHost& host, const LinkWiring& wiring)
      : host_(host),
        source_(wiring.source),
        destination_(wiring.destination),
        client_head_(wiring.client_head),
        received_(wiring.received),
        sent_(wiring.sent),
        seed_(wiring.seed),
        direction_(wiring.direction) {}
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;
  // The other direction of the same connection (its source is this link's destination).
  void pair_with(Link& opposite) { opposite_ = &opposite; }

  // Brings the link's toxics in line with `toxics` (empty: back to the fast path once what the
  // toxics hold is written).
  void apply(const std::vector<ToxicSpec>& toxics, TimePoint now);
  // Starts moving bytes (both sockets connected).
  void start();
  // Reads and writes what can be, arming waits and the toxics' timer for the rest.
  void pump();
  // The connection closes: timers and waits end, buffers go back to the pool.
  void stop();
  // Closes the source socket as the connection ends, before stop(): with a RST when `reset`;
  // otherwise with a FIN that does not turn into a RST (what the peer sent and nobody will read is
  // discarded first).
  void close_source(bool reset);

  Flow flow() const { return flow_; }
  Direction direction() const { return direction_; }
  const Pipeline* pipeline() const { return pipeline_.get(); }
  // The end was passed on.
  bool finished() const { return flow_ == Flow::finished; }
  // The source said EOF: nothing is left unread on it, and nothing more will come.
  bool source_ended() const { return flow_ == Flow::source_ended || flow_ == Flow::finished; }
  // Bytes read and not yet written (in the toxics or the fast path's buffer).
  bool holds_data() const { return fast_off_ < fast_len_ || (pipeline_ && pipeline_->buffered_bytes() > 0); }
  // A buffer borrowed from the pool (an idle link holds none).
  bool holds_buffer() const { return static_cast<bool>(buf_); }
  // Bytes the toxics released and not yet written.
  bool holds_data_after_toxics() const {
    return fast_off_ < fast_len_ || (pipeline_ && pipeline_->output_bytes() > 0);
  }

 private:
  bool running() const { return flow_ != Flow::waiting && flow_ != Flow::stopped; }
  bool flush();
  bool read_once(TimePoint now);
  void pass_end();
  void arm_read();
  void arm_write();
  void arm_timer();
  void release_buffer();

  // Pointers first, then the one-byte state, so that a link stays small (two per connection).
  LinkHost& host_;
  tcp::socket* source_;
  tcp::socket* destination_;
  ClientHead* client_head_;
  common::metrics::Counter* received_;
  common::metrics::Counter* sent_;
  Link* opposite_ = nullptr;
  std::uint64_t seed_;
  std::unique_ptr<Pipeline> pipeline_;
  std::unique_ptr<asio::steady_timer> timer_;
  BufferPool::Buffer buf_;
  std::size_t fast_len_ = 0, fast_off_ = 0;
  TimePoint timer_at_ = kNever, wake_ = kNever;
  Direction direction_;
  Flow flow_ = Flow::waiting;
  // Pending work, independent of each other and of the flow: waits armed on the sockets, a pump
  // posted to the event loop, a pump running (pump() is not reentrant).
  bool read_wait_ = false, write_wait_ = false, pump_posted_ = false, in_pump_ = false;
  // Fast path hints: the last read filled the buffer (grow it to kLarge once written); the last
  // read returned less than asked, so the socket was drained and the next read would only say
  // EAGAIN (wait for readiness instead: epoll is edge-triggered, data that arrived since is
  // reported as a new edge).
  bool large_ = false, drained_ = false;
};

}  // namespace faultproxy
