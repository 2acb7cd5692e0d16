#include "faultproxy/poller.h"

#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace faultproxy {

void DataSocket::reset(int fd, SocketEvents* owner) {
  close();
  fd_ = fd;
  owner_ = owner;
}

void DataSocket::close() {
  if (fd_ < 0) return;
  ::close(fd_);  // also leaves the epoll set (nothing else holds the file)
  fd_ = -1;
}

namespace {

int new_epoll_set() {
  const int fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  return fd;
}

}  // namespace

Poller::Poller(boost::asio::io_context& context) : set_(context, new_epoll_set()) {}

std::error_code Poller::add(DataSocket& socket) {
  // Edge-triggered, both ways: each arrival of data or of buffer space is one event, so a socket
  // is never re-armed. EPOLLRDHUP tells a peer's FIN that came with data apart from the data
  // (EPOLLERR and EPOLLHUP are always reported).
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.ptr = &socket;
  if (::epoll_ctl(set_.native_handle(), EPOLL_CTL_ADD, socket.fd(), &ev) != 0)
    return {errno, std::generic_category()};
  if (!manual_) arm();
  return {};
}

std::size_t Poller::poll() {
  const int n = ::epoll_wait(set_.native_handle(), events_.data(), static_cast<int>(events_.size()), 0);
  for (int i = 0; i < n; ++i) {
    auto* socket = static_cast<DataSocket*>(events_[i].data.ptr);
    // A socket closed by an earlier event of this batch may still be listed: it says nothing now.
    if (socket->is_open()) socket->owner()->on_events(*socket, events_[i].events);
  }
  return n > 0 ? static_cast<std::size_t>(n) : 0;
}

void Poller::arm() {
  if (armed_) return;
  armed_ = true;
  set_.async_wait(boost::asio::posix::stream_descriptor::wait_read, [this](boost::system::error_code ec) {
    armed_ = false;
    if (ec) return;  // the worker is going away
    poll();
    if (!manual_) arm();
  });
}

}  // namespace faultproxy
