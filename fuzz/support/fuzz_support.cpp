#include "fuzz_support.h"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/http_token.h"

namespace fuzz_support {
namespace {

namespace bhttp = boost::beast::http;

bool write_file(const char* path, const std::string& text) {
  const int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

bool loopback_up() {
  const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return false;
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  bool ok = ::ioctl(s, SIOCGIFFLAGS, &ifr) == 0;
  if (ok) {
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
    ok = ::ioctl(s, SIOCSIFFLAGS, &ifr) == 0;
  }
  ::close(s);
  return ok;
}

std::string_view next_line(std::string_view& text) {
  const auto nl = text.find('\n');
  std::string_view line = text.substr(0, nl);
  text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

Step parse_step(std::string_view block) {
  Step step;
  std::string_view line = next_line(block);
  while (!line.empty() && line.front() == '@') {
    std::string_view words = line;
    while (!words.empty()) {
      const auto sp = words.find(' ');
      std::string_view w = words.substr(0, sp);
      if (!w.empty() && w.front() == '@') w.remove_prefix(1);
      if (!w.empty()) step.directives.emplace_back(w);
      words = sp == std::string_view::npos ? std::string_view{} : words.substr(sp + 1);
    }
    line = next_line(block);
  }
  // Request line: METHOD TARGET (anything after a second space is ignored).
  const auto sp = line.find(' ');
  std::string method(line.substr(0, sp));
  std::string target(sp == std::string_view::npos ? std::string_view{} : line.substr(sp + 1));
  if (const auto sp2 = target.find(' '); sp2 != std::string::npos) target.resize(sp2);
  std::erase_if(method, [](char c) { return !common::http::is_http_token_char(c); });
  if (method.empty()) method = "GET";
  std::erase_if(target, [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7f;
  });
  if (target.empty()) target = "/";

  auto& req = step.request;
  req.version(11);
  if (const auto verb = bhttp::string_to_verb(method); verb != bhttp::verb::unknown) {
    req.method(verb);
  } else {
    req.method_string(method);
  }
  req.target(target);
  for (line = next_line(block); !line.empty(); line = next_line(block)) {
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) continue;
    std::string name(line.substr(0, colon));
    if (!std::all_of(name.begin(), name.end(), [](char c) { return common::http::is_http_token_char(c); }))
      continue;
    std::string value(line.substr(colon + 1));
    std::erase_if(value, [](char c) { return c == '\r' || c == '\n' || c == '\0'; });
    // The parser strips optional whitespace around a value.
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.erase(0, 1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
      value.pop_back();
    // Framing is the server's business: the body below is the whole body.
    const auto field = bhttp::string_to_field(name);
    if (field == bhttp::field::content_length || field == bhttp::field::transfer_encoding) continue;
    req.insert(name, value);
  }
  req.body().assign(block);
  req.prepare_payload();
  return step;
}

}  // namespace

void isolate_network() {
  const char* allow = std::getenv("FUZZ_ALLOW_HOST_NETWORK");
  if (::unshare(CLONE_NEWNET) != 0) {
    const uid_t uid = ::getuid();
    const gid_t gid = ::getgid();
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0 || !write_file("/proc/self/setgroups", "deny") ||
        !write_file("/proc/self/uid_map", std::to_string(uid) + " " + std::to_string(uid) + " 1\n") ||
        !write_file("/proc/self/gid_map", std::to_string(gid) + " " + std::to_string(gid) + " 1\n")) {
      if (allow && std::string_view(allow) == "1") {
        std::fprintf(stderr, "fuzz: no private network namespace (%s); using the host's network\n",
                     std::strerror(errno));
        return;
      }
      std::fprintf(stderr,
                   "fuzz: cannot enter a private network namespace (%s). This target binds and connects "
                   "sockets; set FUZZ_ALLOW_HOST_NETWORK=1 to run it on the host network anyway.\n",
                   std::strerror(errno));
      std::exit(1);
    }
  }
  if (!loopback_up()) {
    std::fprintf(stderr, "fuzz: cannot bring up lo in the private network namespace: %s\n",
                 std::strerror(errno));
    std::exit(1);
  }
}

std::vector<Step> parse_script(std::string_view text, std::size_t max_steps) {
  std::vector<Step> steps;
  static constexpr std::string_view kSeparator = "\n%%\n";
  while (steps.size() < max_steps) {
    const auto sep = text.find(kSeparator);
    steps.push_back(parse_step(text.substr(0, sep)));
    if (sep == std::string_view::npos) break;
    text = text.substr(sep + kSeparator.size());
  }
  return steps;
}

void check(bool ok, std::string_view what, std::string_view detail) {
  if (ok) return;
  std::fprintf(stderr, "fuzz: invariant violated: %.*s\n", static_cast<int>(what.size()), what.data());
  if (!detail.empty()) {
    std::fprintf(stderr, "fuzz: detail: %.*s\n", static_cast<int>(std::min<std::size_t>(detail.size(), 4000)),
                 detail.data());
  }
  std::abort();
}

}  // namespace fuzz_support
