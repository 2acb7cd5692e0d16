// Readiness of the data plane's sockets: one epoll set per worker, each socket registered once.
//
// Asio re-arms a socket with an `epoll_ctl(EPOLL_CTL_MOD)` on every `async_wait`, and registers it
// in its own set as well: a proxied request/response paid two `epoll_ctl` per round trip, and a new
// connection six. A Poller keeps the data sockets in an epoll set of its own instead, each added
// once (edge-triggered, reading and writing) and removed by its close(2); the set's own descriptor
// is waited for through the worker's io_context, so timers, posts and the control plane stay Asio's.
// A socket's events go to its owner (SocketEvents), which must treat them as edges: "something may
// have changed", to be acted on only by a read or write that then says EAGAIN.
//
// While its worker busy polls (dataplane.h), the loop calls poll() itself and arms the wait through
// the io_context only before it sleeps (manual arming): one `epoll_ctl` per sleep, not per event.
//
// Usage:
//   Poller poller(context);                      // a worker's; auto-armed unless set_manual_arming
//   DataSocket s(fd, &owner);                    // owner: SocketEvents, gets on_events(s, events)
//   poller.add(s);                               // once; close(2) removes it
//   poller.poll();                               // or let the io_context run the armed wait
#pragma once

#include <sys/epoll.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <cstddef>
#include <cstdint>
#include <system_error>

namespace faultproxy {

class DataSocket;

// Whoever owns data sockets: told of their events (EPOLLIN, EPOLLOUT, EPOLLRDHUP, EPOLLERR, EPOLLHUP).
class SocketEvents {
 public:
  virtual ~SocketEvents() = default;
  virtual void on_events(DataSocket& socket, std::uint32_t events) = 0;
};

// A non-blocking TCP socket of the data plane: its descriptor, and whom its events go to. Closed by
// close() or its destructor. The owner must outlive any event already taken from the set (see
// Poller::poll): the data plane keeps a closed connection until the events being handled are done.
class DataSocket {
 public:
  DataSocket() = default;
  DataSocket(int fd, SocketEvents* owner) : fd_(fd), owner_(owner) {}
  ~DataSocket() { close(); }
  DataSocket(const DataSocket&) = delete;
  DataSocket& operator=(const DataSocket&) = delete;

  // Takes `fd` (closing the one held); events go to `owner`.
  void reset(int fd, SocketEvents* owner);
  void close();
  int fd() const { return fd_; }
  bool is_open() const { return fd_ >= 0; }
  SocketEvents* owner() const { return owner_; }

 private:
  int fd_ = -1;
  SocketEvents* owner_ = nullptr;
};

class Poller {
 public:
  explicit Poller(boost::asio::io_context& context);
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;

  // Watches `socket` (open) until it is closed. Errors: those of epoll_ctl.
  std::error_code add(DataSocket& socket);
  // Hands out the events ready now, each to its socket's owner; returns how many.
  std::size_t poll();
  // Manual arming: the owner of the loop calls arm() before it sleeps, and poll() as it pleases.
  // Otherwise (the default) the wait is armed again after each poll it triggers.
  void set_manual_arming(bool manual) { manual_ = manual; }
  // Asks the io_context to run poll() once the set has events (nothing when already asked).
  void arm();

 private:
  boost::asio::posix::stream_descriptor set_;
  std::array<epoll_event, 64> events_{};
  bool armed_ = false, manual_ = false;
};

}  // namespace faultproxy
