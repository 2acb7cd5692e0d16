#include "testing/hostile_clients.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace testing_support::hostile {
namespace {

using Clock = std::chrono::steady_clock;

Millis since(Clock::time_point t) {
  return std::chrono::duration_cast<Millis>(Clock::now() - t);
}

bool write_file(const char* path, const std::string& text) {
  const int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

// Closing with SO_LINGER 0 sends an RST: no TIME_WAIT is left on either side.
void close_hard(int fd) {
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::close(fd);
}

// A blocking connection with send and receive timeouts; -1 on failure.
int connect_blocking(std::uint16_t port, Millis timeout) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval tv{static_cast<time_t>(timeout.count() / 1000),
             static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  const sockaddr_in addr = loopback(port);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool send_all_blocking(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// Reads until EOF, an error or `deadline`; true if the peer closed (EOF or RST).
bool read_until_closed(int fd, std::string& out, Clock::time_point deadline) {
  char buf[16384];
  for (;;) {
    const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      out.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    return true;  // 0: EOF; <0: ECONNRESET and the like
  }
}

}  // namespace

bool enter_private_network(std::string& why) {
  if (::unshare(CLONE_NEWNET) != 0) {
    const uid_t uid = ::getuid();
    const gid_t gid = ::getgid();
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0 || !write_file("/proc/self/setgroups", "deny") ||
        !write_file("/proc/self/uid_map", std::to_string(uid) + " " + std::to_string(uid) + " 1\n") ||
        !write_file("/proc/self/gid_map", std::to_string(gid) + " " + std::to_string(gid) + " 1\n")) {
      why = std::string("no private network namespace: ") + std::strerror(errno);
      return false;
    }
  }
  const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  const bool up = s >= 0 && ::ioctl(s, SIOCGIFFLAGS, &ifr) == 0 &&
                  (ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING),
                   ::ioctl(s, SIOCSIFFLAGS, &ifr) == 0);
  if (s >= 0) ::close(s);
  if (!up) {
    why = std::string("cannot bring lo up in the new network namespace: ") + std::strerror(errno);
    std::abort();  // half-isolated: no loopback at all; nothing sensible can run
  }
  return true;
}

std::size_t raise_fd_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
  return static_cast<std::size_t>(lim.rlim_cur);
}

std::size_t open_fds(pid_t pid) {
  std::error_code ec;
  std::size_t n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++n;
  return n;
}

Reply http(std::uint16_t port, std::string_view method, std::string_view target, std::string_view body,
           Millis timeout) {
  Reply r;
  const auto start = Clock::now();
  const int fd = connect_blocking(port, timeout);
  if (fd < 0) {
    r.error = std::string("connect: ") + std::strerror(errno);
    r.elapsed = since(start);
    return r;
  }
  std::string req = std::string(method) + " " + std::string(target) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
                    "User-Agent: hostile-clients-itest\r\nConnection: close\r\n";
  if (!body.empty() || method == "PUT" || method == "POST" || method == "PATCH") {
    req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  req += "\r\n";
  req += body;
  std::string in;
  if (!send_all_blocking(fd, req)) {
    r.error = std::string("send: ") + std::strerror(errno);
  } else if (!read_until_closed(fd, in, start + timeout)) {
    r.error = "no complete answer within " + std::to_string(timeout.count()) + " ms";
  }
  close_hard(fd);
  r.elapsed = since(start);
  const auto end_of_head = in.find("\r\n\r\n");
  if (in.starts_with("HTTP/1.") && in.size() > 12 && end_of_head != std::string::npos) {
    r.status = std::atoi(in.c_str() + 9);
    r.head = in.substr(0, end_of_head);
    r.body = in.substr(end_of_head + 4);
  } else if (r.error.empty()) {
    r.error = "not an HTTP response: " + in.substr(0, 200);
  }
  return r;
}

Exchange raw(std::uint16_t port, std::string_view bytes, bool half_close, Millis timeout) {
  Exchange e;
  const auto start = Clock::now();
  const int fd = connect_blocking(port, timeout);
  if (fd < 0) return e;
  send_all_blocking(fd, bytes);
  if (half_close) ::shutdown(fd, SHUT_WR);
  e.closed = read_until_closed(fd, e.received, start + timeout);
  close_hard(fd);
  e.elapsed = since(start);
  return e;
}

std::string NormalClient::Stats::summary() const {
  return std::to_string(requests) + " requests, " + std::to_string(failures) + " failures, p50 " +
         std::to_string(p50.count()) + " ms, p99 " + std::to_string(p99.count()) + " ms, max " +
         std::to_string(max.count()) + " ms";
}

NormalClient::NormalClient(std::function<Reply()> request, Millis interval, bool fail_on_5xx)
    : request_(std::move(request)), interval_(interval), fail_on_5xx_(fail_on_5xx) {
  thread_ = std::thread([this] {
    while (!stop_) {
      const auto next = Clock::now() + interval_;
      const Reply r = request_();
      {
        std::lock_guard lock(mutex_);
        latencies_.push_back(r.elapsed);
        if (r.status == 0 || (fail_on_5xx_ && r.status >= 500)) {
          if (failures_++ == 0) {
            first_failure_ = r.error.empty() ? "status " + std::to_string(r.status) + ": " + r.body : r.error;
          }
        }
      }
      while (!stop_ && Clock::now() < next)
        std::this_thread::sleep_for(Millis(5));
    }
  });
}

NormalClient::~NormalClient() {
  stop();
}

NormalClient::Stats NormalClient::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mutex_);
  Stats s;
  s.requests = latencies_.size();
  s.failures = failures_;
  s.first_failure = first_failure_;
  if (!latencies_.empty()) {
    auto sorted = latencies_;
    std::sort(sorted.begin(), sorted.end());
    s.p50 = sorted[sorted.size() / 2];
    s.p99 = sorted[std::min(sorted.size() - 1, sorted.size() * 99 / 100)];
    s.max = sorted.back();
  }
  return s;
}

Flood::Flood(std::uint16_t port, std::size_t count, Millis timeout) {
  const sockaddr_in addr = loopback(port);
  fds_.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) break;
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS) {
      ::close(fd);
      break;
    }
    fds_.push_back(fd);
  }
  closed_.assign(fds_.size(), false);
  received_.assign(fds_.size(), {});
  // Wait for every connect to complete (writable), as the server's backlog drains.
  std::vector<bool> done(fds_.size(), false);
  const auto give_up = Clock::now() + timeout;
  while (established_ < fds_.size() && Clock::now() < give_up) {
    std::vector<pollfd> p;
    std::vector<std::size_t> index;
    for (std::size_t i = 0; i < fds_.size(); ++i) {
      if (done[i]) continue;
      p.push_back({fds_[i], POLLOUT, 0});
      index.push_back(i);
    }
    if (::poll(p.data(), p.size(), 100) <= 0) continue;
    for (std::size_t k = 0; k < p.size(); ++k) {
      if (p[k].revents == 0) continue;
      const std::size_t i = index[k];
      done[i] = true;
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fds_[i], SOL_SOCKET, SO_ERROR, &err, &len);
      if (err == 0) {
        ++established_;
      } else {
        closed_[i] = true;
      }
    }
    if (std::all_of(done.begin(), done.end(), [](bool d) { return d; })) break;
  }
}

Flood::~Flood() {
  for (const int fd : fds_)
    close_hard(fd);
}

void Flood::send_all(std::string_view bytes) {
  for (std::size_t i = 0; i < fds_.size(); ++i) {
    if (closed_[i]) continue;
    std::string_view rest = bytes;
    while (!rest.empty()) {
      const ssize_t n = ::send(fds_[i], rest.data(), rest.size(), MSG_NOSIGNAL);
      if (n <= 0) break;  // full (EAGAIN) or gone: best effort
      rest.remove_prefix(static_cast<std::size_t>(n));
    }
  }
}

void Flood::half_close_all() {
  for (std::size_t i = 0; i < fds_.size(); ++i)
    if (!closed_[i]) ::shutdown(fds_[i], SHUT_WR);
}

void Flood::poll_once(int timeout_ms) {
  std::vector<pollfd> p;
  std::vector<std::size_t> index;
  for (std::size_t i = 0; i < fds_.size(); ++i) {
    if (closed_[i]) continue;
    p.push_back({fds_[i], POLLIN, 0});
    index.push_back(i);
  }
  if (p.empty() || ::poll(p.data(), p.size(), timeout_ms) <= 0) return;
  char buf[16384];
  for (std::size_t k = 0; k < p.size(); ++k) {
    if (p[k].revents == 0) continue;
    const std::size_t i = index[k];
    for (;;) {
      const ssize_t n = ::recv(fds_[i], buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        received_[i].append(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
      closed_[i] = true;  // EOF or reset
      break;
    }
  }
}

std::size_t Flood::closed_by_server() {
  poll_once(0);
  return static_cast<std::size_t>(std::count(closed_.begin(), closed_.end(), true));
}

std::size_t Flood::wait_closed_by_server(Millis timeout) {
  const auto give_up = Clock::now() + timeout;
  while (Clock::now() < give_up) {
    poll_once(50);
    if (std::all_of(closed_.begin(), closed_.end(), [](bool c) { return c; })) break;
  }
  return static_cast<std::size_t>(std::count(closed_.begin(), closed_.end(), true));
}

SlowlorisResult slowloris(std::uint16_t port, std::size_t count, Millis interval, Millis give_up,
                          std::string_view header) {
  SlowlorisResult result;
  const auto start = Clock::now();
  Flood flood(port, count);
  result.connections = flood.established();
  std::vector<std::size_t> sent(flood.size(), 0);
  const auto end = start + give_up;
  std::string filler(1, 'a');
  std::size_t step = 0;
  while (Clock::now() < end) {
    // One more byte on every open connection: the header first, then an endless value.
    const std::string_view next = step < header.size() ? header.substr(step, 1) : std::string_view(filler);
    flood.send_all(next);
    result.bytes_sent += flood.size() - flood.closed_by_server();
    ++step;
    const auto tick_end = Clock::now() + interval;
    while (Clock::now() < tick_end) {
      const std::size_t closed = flood.closed_by_server();
      if (closed > result.closed) {
        result.closed = closed;
        result.last_close = since(start);
      }
      if (closed == flood.size()) break;
      std::this_thread::sleep_for(Millis(10));
    }
    if (result.closed == flood.size()) break;
  }
  for (const auto& r : flood.received()) {
    if (!r.empty()) {
      result.answer_sample = r.substr(0, 200);
      break;
    }
  }
  return result;
}

}  // namespace testing_support::hostile
