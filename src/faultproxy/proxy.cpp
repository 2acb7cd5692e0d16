#include "faultproxy/proxy.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cctype>
#include <cstring>
#include <set>

#include "common/log.h"

namespace faultproxy {
namespace {

std::string go_endpoint(const tcp::endpoint& ep) {
  const auto a = ep.address();
  if (a.is_v6()) return "[" + a.to_string() + "]:" + std::to_string(ep.port());
  return a.to_string() + ":" + std::to_string(ep.port());
}

std::string go_errno(int err) {
  std::string s = std::strerror(err);
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

struct HostPort {
  std::string host, port;
};

// Go's net.SplitHostPort, with its error texts ("address X: why").
std::variant<HostPort, std::string> split_host_port(const std::string& hp) {
  auto err = [&](std::string_view why) { return "address " + hp + ": " + std::string(why); };
  const auto i = hp.rfind(':');
  if (i == std::string::npos) return err("missing port in address");
  HostPort out;
  std::size_t j = 0, k = 0;
  if (!hp.empty() && hp[0] == '[') {
    const auto end = hp.find(']');
    if (end == std::string::npos) return err("missing ']' in address");
    if (end + 1 == hp.size()) return err("missing port in address");
    if (end + 1 != i)
      return err(hp[end + 1] == ':' ? "too many colons in address" : "missing port in address");
    out.host = hp.substr(1, end - 1);
    j = 1;
    k = end + 1;
  } else {
    out.host = hp.substr(0, i);
    if (out.host.find(':') != std::string::npos) return err("too many colons in address");
  }
  if (hp.find('[', j) != std::string::npos) return err("unexpected '[' in address");
  if (hp.find(']', k) != std::string::npos) return err("unexpected ']' in address");
  out.port = hp.substr(i + 1);
  return out;
}

// Go's LookupPort: numbers, or a service name from /etc/services.
std::variant<std::uint16_t, std::string> parse_port(const std::string& port) {
  if (port.empty()) return std::uint16_t{0};
  const bool numeric = std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (numeric) {
    if (port.size() > 6 || std::stol(port) > 65535) return "address " + port + ": invalid port";
    return static_cast<std::uint16_t>(std::stol(port));
  }
  servent se{};
  servent* result = nullptr;
  char buf[1024];
  if (getservbyname_r(port.c_str(), "tcp", &se, buf, sizeof buf, &result) == 0 && result) {
    return static_cast<std::uint16_t>(ntohs(static_cast<std::uint16_t>(result->s_port)));
  }
  return "address tcp/" + port + ": unknown port";
}

// Host to address as Go's resolver would for a listener: IP literals, localhost, wildcard, names.
std::variant<asio::ip::address, std::string> resolve_host(const std::string& host) {
  if (host.empty()) return asio::ip::address(asio::ip::address_v6::any());
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (!ec) {
    if (addr.is_v4() && addr.to_v4() == asio::ip::address_v4::any())
      return asio::ip::address(asio::ip::address_v6::any());
    return addr;
  }
  if (host == "localhost") return asio::ip::address(asio::ip::address_v4::loopback());
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0 || !res)
    return "lookup " + host + ": no such host";
  std::optional<asio::ip::address> v4, v6;
  for (auto* p = res; p; p = p->ai_next) {
    if (p->ai_family == AF_INET && !v4) {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(p->ai_addr);
      v4 = asio::ip::address_v4(ntohl(sin->sin_addr.s_addr));
    } else if (p->ai_family == AF_INET6 && !v6) {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(p->ai_addr);
      asio::ip::address_v6::bytes_type b;
      std::memcpy(b.data(), &sin6->sin6_addr, 16);
      v6 = asio::ip::address_v6(b, sin6->sin6_scope_id);
    }
  }
  freeaddrinfo(res);
  if (v4) return *v4;
  if (v6) return *v6;
  return "lookup " + host + ": no such host";
}

}  // namespace

TimePoint ToxicDef::starts_at() const {
  return added_at + std::chrono::milliseconds(std::clamp<std::int64_t>(start_after_ms, 0, kMaxMillis));
}

TimePoint ToxicDef::ends_at() const {
  if (duration_ms <= 0) return kNever;
  return starts_at() + std::chrono::milliseconds(std::min(duration_ms, kMaxMillis));
}

bool ToxicDef::in_effect(TimePoint now) const {
  return start_after_ms <= 0 || now >= starts_at();
}

std::vector<const ToxicDef*> Proxy::ordered_toxics() const {
  std::vector<const ToxicDef*> out;
  for (auto d : {Direction::upstream, Direction::downstream})
    for (const auto& t : toxics)
      if (t.direction == d) out.push_back(&t);
  return out;
}

const ToxicDef* Proxy::find_toxic(std::string_view toxic_name) const {
  for (const auto& t : toxics)
    if (t.name == toxic_name) return &t;
  return nullptr;
}

ProxyCollection::ProxyCollection(Workers& workers, Settings settings)
    : workers_(workers), settings_(settings) {}

ProxyCollection::~ProxyCollection() {
  for (auto& [name, p] : proxies_) {
    if (p->listener) {
      p->listener->open = false;
      boost::system::error_code ignored;
      p->listener->acceptor.close(ignored);
    }
  }
}

const Proxy* ProxyCollection::find(std::string_view name) const {
  auto it = proxies_.find(name);
  return it == proxies_.end() ? nullptr : it->second.get();
}

std::variant<BoundListener, ApiError> ProxyCollection::bind(const std::string& listen, bool listen_prefix) {
  const std::string prefix = listen_prefix ? "listen tcp: " : "";
  // As in Toxiproxy, no listen address means any interface, any port.
  auto hp = split_host_port(listen.empty() ? std::string(":0") : listen);
  if (auto* e = std::get_if<std::string>(&hp)) return ApiError{500, prefix + *e};
  const auto& [host, port_text] = std::get<HostPort>(hp);
  auto port = parse_port(port_text);
  if (auto* e = std::get_if<std::string>(&port)) return ApiError{500, prefix + *e};
  auto addr = resolve_host(host);
  if (auto* e = std::get_if<std::string>(&addr)) return ApiError{500, prefix + *e};
  tcp::endpoint ep(std::get<asio::ip::address>(addr), std::get<std::uint16_t>(port));

  auto l = std::make_shared<Listener>(workers_.control());
  boost::system::error_code ec;
  auto& a = l->acceptor;
  a.open(ep.protocol(), ec);
  if (ec && ep.address().is_v6() && ep.address().to_v6().is_unspecified()) {  // no IPv6: plain IPv4 wildcard
    ep = tcp::endpoint(asio::ip::address_v4::any(), ep.port());
    ec.clear();
    a.open(ep.protocol(), ec);
  }
  if (ec) return ApiError{500, "listen tcp " + go_endpoint(ep) + ": socket: " + go_errno(ec.value())};
  a.set_option(asio::socket_base::reuse_address(true), ec);
  // Linux copies TCP_NODELAY to every accepted socket: one setsockopt per proxy, not per connection.
  a.set_option(tcp::no_delay(true), ec);
  if (ep.address().is_v6()) a.set_option(asio::ip::v6_only(false), ec);
  a.bind(ep, ec);
  if (ec) return ApiError{500, "listen tcp " + go_endpoint(ep) + ": bind: " + go_errno(ec.value())};
  a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return ApiError{500, "listen tcp " + go_endpoint(ep) + ": listen: " + go_errno(ec.value())};
  a.non_blocking(true, ec);
  return BoundListener{l, go_endpoint(a.local_endpoint(ec))};
}

std::shared_ptr<ProxyRuntime> ProxyCollection::make_runtime(const Proxy& p, const std::string& listen) {
  auto rt = std::make_shared<ProxyRuntime>();
  rt->id = next_runtime_id_++;
  rt->name = p.name;
  rt->listen = listen;
  rt->upstream = p.upstream;
  rt->seed = mix64(settings_.seed ^ hash_string(p.name, 0x70787279));
  rt->connect_timeout = settings_.connect_timeout;
  auto hp = split_host_port(p.upstream);
  if (auto* v = std::get_if<HostPort>(&hp)) {
    rt->upstream_host = v->host;
    rt->upstream_port = v->port;
    boost::system::error_code ec;
    const auto addr = asio::ip::make_address(v->host, ec);
    const auto port = parse_port(v->port);
    if (!ec && std::holds_alternative<std::uint16_t>(port)) {
      rt->upstream_endpoint = tcp::endpoint(addr, std::get<std::uint16_t>(port));
    }
  } else {
    rt->upstream_host = p.upstream;  // unusable: every connection attempt fails and is reported
    rt->upstream_port = "0";
  }
  if (auto* reg = settings_.proxy_metrics) {
    for (auto d : {Direction::upstream, Direction::downstream}) {
      const common::metrics::Labels labels = {{"direction", std::string(direction_name(d))},
                                              {"listener", listen},
                                              {"proxy", p.name},
                                              {"upstream", p.upstream}};
      rt->counters[static_cast<int>(d)].received = &reg->counter(
          "toxiproxy_proxy_received_bytes_total", "Bytes read from the source of a link.", labels);
      rt->counters[static_cast<int>(d)].sent = &reg->counter(
          "toxiproxy_proxy_sent_bytes_total", "Bytes written to the destination of a link.", labels);
    }
    rt->accepted = &reg->counter("faultproxy_proxy_accepted_connections_total",
                                 "Client connections accepted.", {{"proxy", p.name}});
    rt->upstream_failures = &reg->counter(
        "faultproxy_proxy_upstream_connect_failures_total",
        "Client connections closed because the upstream could not be reached.", {{"proxy", p.name}});
    rt->registry = reg;
  }
  return rt;
}

SnapshotPtr ProxyCollection::snapshot_of(const Proxy& p) const {
  auto s = std::make_shared<ToxicSnapshot>();
  const TimePoint now = Clock::now();
  for (const auto& t : p.toxics) {
    if (!t.in_effect(now)) continue;  // its timer publishes again when it starts
    const ToxicScope scope = toxic_type_info(t.type).scope;
    if (scope == ToxicScope::listener) continue;  // refuse: refresh_refusing
    ToxicSpec spec{t.id, t.version, t.name, t.type, t.toxicity, t.attributes, t.client.cidr, t.schedule};
    if (t.client.cidr) s->client_filtered = true;
    if (!t.protocol) {
      auto& list = scope == ToxicScope::connection ? s->on_open : s->by_direction;
      list[static_cast<int>(t.direction)].push_back(std::move(spec));
      continue;
    }
    // A protocol toxic reads requests whatever its stream; one that answers has a response half
    // on the downstream link, acting whenever the request half does (its toxicity is that half's).
    spec.settings = t.protocol;
    if (has_response_half(t.type)) {
      ToxicSpec response = spec;
      response.response_half = true;
      response.toxicity = 1;
      s->by_direction[static_cast<int>(Direction::downstream)].push_back(std::move(response));
    }
    s->by_direction[static_cast<int>(Direction::upstream)].push_back(std::move(spec));
  }
  return s;
}

void ProxyCollection::publish(Proxy& p) {
  if (!p.listener) return;
  p.listener->snapshot = snapshot_of(p);
  workers_.apply_toxics(p.listener->runtime->id, p.listener->snapshot);
  refresh_refusing(p);
}

void ProxyCollection::refresh_refusing(Proxy& p) {
  if (!p.listener) return;
  const auto& l = p.listener;
  const TimePoint now = Clock::now();
  const ToxicDef* acting = nullptr;
  for (const auto& t : p.toxics) {
    // Toxicity decides once per proxy and toxic, as it does per connection for the others.
    if (t.type == ToxicType::refuse && t.in_effect(now) &&
        toxicity_roll(l->runtime->seed, t.name) < static_cast<double>(t.toxicity)) {
      acting = &t;
      break;
    }
  }
  if (acting && !l->refusing) {
    common::log::info("refusing connections", {{"proxy", p.name}, {"toxic", acting->name}});
    count_activation(*l->runtime,
                     ToxicSpec{acting->id, acting->version, acting->name, acting->type, acting->toxicity},
                     acting->direction);
  }
  const bool was_refusing = l->refusing;
  l->refusing = acting != nullptr;
  // Whoever waits in the backlog is taken now, without waiting for the next readiness report.
  if (was_refusing && !l->refusing) {
    common::log::info("accepting connections again", {{"proxy", p.name}});
    accept_ready(l);
  }
}

void ProxyCollection::admit(ToxicDef& def) {
  def.id = next_toxic_id_++;
  def.version = 1;
  def.added_at = Clock::now();
  if (def.type == ToxicType::bandwidth) def.schedule = std::make_shared<SharedSchedule>();
  schedule(def);
}

void ProxyCollection::schedule(const ToxicDef& def) {
  const TimePoint next = def.in_effect(Clock::now()) ? def.ends_at() : def.starts_at();
  if (next == kNever) {
    toxic_timers_.erase(def.id);
    return;
  }
  auto& timer = toxic_timers_[def.id];
  if (!timer) timer = std::make_unique<asio::steady_timer>(workers_.control());
  timer->expires_at(next);
  timer->async_wait([this, id = def.id, t = timer.get()](boost::system::error_code ec) {
    if (ec) return;  // cancelled, re-armed, or the collection is gone
    auto it = toxic_timers_.find(id);
    if (it == toxic_timers_.end() || it->second.get() != t) return;
    toxic_timer_fired(id);
  });
}

void ProxyCollection::toxic_timer_fired(std::uint64_t toxic_id) {
  for (auto& [name, p] : proxies_) {
    auto t =
        std::find_if(p->toxics.begin(), p->toxics.end(), [&](const ToxicDef& d) { return d.id == toxic_id; });
    if (t == p->toxics.end()) continue;
    if (Clock::now() >= t->ends_at()) {
      common::log::info("time-bounded toxic removed", {{"proxy", p->name}, {"toxic", t->name}});
      toxic_timers_.erase(toxic_id);
      p->toxics.erase(t);
    } else {
      schedule(*t);  // it starts now; next, its end
    }
    publish(*p);
    return;
  }
  toxic_timers_.erase(toxic_id);  // its toxic is gone (removed, reset, proxy replaced)
}

void ProxyCollection::start_listener(Proxy& p, BoundListener bound) {
  p.listen = bound.address;
  p.enabled = true;
  p.listener = std::move(bound.listener);
  p.listener->runtime = make_runtime(p, p.listen);
  p.listener->snapshot = snapshot_of(p);
  common::log::info("started proxy", {{"name", p.name}, {"listen", p.listen}, {"upstream", p.upstream}});
  refresh_refusing(p);
  arm_accept(p.listener);
}

void ProxyCollection::stop_listener(Proxy& p) {
  p.enabled = false;
  if (!p.listener) return;
  p.listener->open = false;
  boost::system::error_code ignored;
  p.listener->acceptor.close(ignored);
  workers_.close_connections(p.listener->runtime->id);
  p.listener.reset();
  common::log::info("stopped proxy", {{"name", p.name}, {"listen", p.listen}});
}

void ProxyCollection::arm_accept(const std::shared_ptr<Listener>& l) {
  if (l->waiting || l->refusing || !l->open) return;
  l->waiting = true;
  l->acceptor.async_wait(tcp::acceptor::wait_read, [this, l](boost::system::error_code ec) {
    l->waiting = false;
    if (ec || !l->open) return;
    accept_ready(l);
  });
}

void ProxyCollection::accept_ready(const std::shared_ptr<Listener>& l) {
  if (l->refusing || !l->open) return;  // refresh_refusing calls again when refusing ends
  accepted_.clear();
  bool backoff = false;
  for (int i = 0; i < 64; ++i) {
    const int fd = ::accept4(l->acceptor.native_handle(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      if (err == EINTR || err == ECONNABORTED) continue;
      if (err != EAGAIN && err != EWOULDBLOCK) {
        common::log::warn("accept failed", {{"proxy", l->runtime->name}, {"error", go_errno(err)}});
        backoff = true;
      }
      break;
    }
    // TCP_NODELAY is inherited from the listening socket (set in bind()).
    if (l->runtime->accepted) l->runtime->accepted->inc();
    if (common::log::enabled(common::log::Level::debug)) {
      common::log::debug("accepted client", {{"proxy", l->runtime->name},
                                             {"listen", l->runtime->listen},
                                             {"upstream", l->runtime->upstream},
                                             {"index", l->next_index + accepted_.size()}});
    }
    accepted_.push_back(fd);
  }
  // One hand-over per worker for all of this wake-up's connections.
  if (!accepted_.empty()) {
    workers_.start_connections(accepted_, l->runtime, l->snapshot, l->next_index);
    l->next_index += accepted_.size();
  }
  if (backoff) {  // EMFILE and friends: try again a little later instead of spinning
    auto timer = std::make_shared<asio::steady_timer>(workers_.control(), std::chrono::milliseconds(50));
    timer->async_wait([this, l, timer](boost::system::error_code) {
      if (l->open) arm_accept(l);
    });
    return;
  }
  arm_accept(l);
}

std::optional<ApiError> ProxyCollection::create(const ProxyConfig& config, bool enabled) {
  if (proxies_.count(config.name)) return ApiError{409, "proxy already exists"};
  auto p = std::make_unique<Proxy>();
  p->name = config.name;
  p->listen = config.listen;
  p->upstream = config.upstream;
  if (enabled) {
    auto bound = bind(config.listen, true);
    if (auto* e = std::get_if<ApiError>(&bound)) return *e;
    start_listener(*p, std::move(std::get<BoundListener>(bound)));
  }
  proxies_.emplace(config.name, std::move(p));
  return std::nullopt;
}

std::optional<ApiError> ProxyCollection::update(std::string_view name,
                                                const std::optional<std::string>& listen,
                                                const std::optional<std::string>& upstream,
                                                std::optional<bool> enabled) {
  auto it = proxies_.find(name);
  if (it == proxies_.end()) return ApiError{404, "proxy not found"};
  Proxy& p = *it->second;
  const std::string new_listen = listen.value_or(p.listen);
  const std::string new_upstream = upstream.value_or(p.upstream);
  const bool new_enabled = enabled.value_or(p.enabled);
  const bool target_changed = new_listen != p.listen || new_upstream != p.upstream;
  if (!target_changed && new_enabled == p.enabled) return std::nullopt;

  if (!new_enabled) {
    stop_listener(p);
    p.listen = new_listen;
    p.upstream = new_upstream;
    return std::nullopt;
  }
  // Enabled afterwards: get the listener first, so that a failure leaves everything as it was.
  std::optional<BoundListener> bound;
  const bool same_socket = p.listener && new_listen == p.listen;
  if (!same_socket) {
    auto attempt = bind(new_listen, false);
    if (auto* e = std::get_if<ApiError>(&attempt)) {
      // The same address spelled differently ("localhost:N" for "127.0.0.1:N") is held by us.
      if (!(p.listener && e->message.find("address already in use") != std::string::npos)) return *e;
      auto probe = split_host_port(new_listen);
      if (!std::holds_alternative<HostPort>(probe)) return *e;
      auto addr = resolve_host(std::get<HostPort>(probe).host);
      auto port = parse_port(std::get<HostPort>(probe).port);
      boost::system::error_code ec;
      const auto current = p.listener->acceptor.local_endpoint(ec);
      if (ec || !std::holds_alternative<asio::ip::address>(addr) ||
          !std::holds_alternative<std::uint16_t>(port) ||
          current != tcp::endpoint(std::get<asio::ip::address>(addr), std::get<std::uint16_t>(port))) {
        return *e;
      }
    } else {
      bound = std::move(std::get<BoundListener>(attempt));
    }
  }
  if (!bound && p.listener && !target_changed) return std::nullopt;
  // Take over: old connections are closed, new ones go to the new target.
  std::shared_ptr<Listener> keep;
  if (!bound) {  // keep the socket, restart the runtime
    keep = p.listener;
    keep->open = false;
    workers_.close_connections(keep->runtime->id);
    auto fresh = std::make_shared<Listener>(workers_.control());
    boost::system::error_code ec;
    const auto ep = keep->acceptor.local_endpoint(ec);
    fresh->acceptor.assign(ep.protocol(), keep->acceptor.release(ec), ec);
    keep->acceptor.close(ec);
    bound = BoundListener{fresh, go_endpoint(ep)};
    p.listener.reset();
  } else {
    stop_listener(p);
  }
  p.upstream = new_upstream;
  start_listener(p, std::move(*bound));
  return std::nullopt;
}

std::optional<ApiError> ProxyCollection::remove(std::string_view name) {
  auto it = proxies_.find(name);
  if (it == proxies_.end()) return ApiError{404, "proxy not found"};
  stop_listener(*it->second);
  proxies_.erase(it);
  return std::nullopt;
}

std::optional<ApiError> ProxyCollection::add_toxic(std::string_view proxy, ToxicDef def) {
  auto it = proxies_.find(proxy);
  if (it == proxies_.end()) return ApiError{404, "proxy not found"};
  Proxy& p = *it->second;
  if (p.find_toxic(def.name)) return ApiError{409, "toxic already exists"};
  admit(def);
  p.toxics.push_back(std::move(def));
  publish(p);
  return std::nullopt;
}

std::optional<ApiError> ProxyCollection::update_toxic(std::string_view proxy, const ToxicDef& updated) {
  auto it = proxies_.find(proxy);
  if (it == proxies_.end()) return ApiError{404, "proxy not found"};
  Proxy& p = *it->second;
  for (auto& t : p.toxics) {
    if (t.name != updated.name) continue;
    t.attributes = updated.attributes;
    t.toxicity = updated.toxicity;
    t.client = updated.client;
    t.start_after_ms = updated.start_after_ms;
    t.duration_ms = updated.duration_ms;
    t.protocol = updated.protocol;
    ++t.version;
    // The window counts from the add, whatever the update: an end already passed removes it now.
    if (Clock::now() >= t.ends_at()) {
      toxic_timer_fired(t.id);
      return std::nullopt;
    }
    schedule(t);
    publish(p);
    return std::nullopt;
  }
  return ApiError{404, "toxic not found"};
}

std::optional<ApiError> ProxyCollection::remove_toxic(std::string_view proxy, std::string_view toxic) {
  auto it = proxies_.find(proxy);
  if (it == proxies_.end()) return ApiError{404, "proxy not found"};
  Proxy& p = *it->second;
  auto t = std::find_if(p.toxics.begin(), p.toxics.end(), [&](const ToxicDef& d) { return d.name == toxic; });
  if (t == p.toxics.end()) return ApiError{404, "toxic not found"};
  toxic_timers_.erase(t->id);
  p.toxics.erase(t);
  publish(p);
  return std::nullopt;
}

std::optional<ApiError> ProxyCollection::reset() {
  std::optional<ApiError> first_error;
  for (auto& [name, p] : proxies_) {
    if (!p->toxics.empty()) {
      for (const auto& t : p->toxics)
        toxic_timers_.erase(t.id);
      p->toxics.clear();
      publish(*p);
    }
    if (!p->enabled) {
      auto bound = bind(p->listen, true);
      if (auto* e = std::get_if<ApiError>(&bound)) {
        if (!first_error) first_error = *e;
        continue;
      }
      start_listener(*p, std::move(std::get<BoundListener>(bound)));
    }
  }
  return first_error;
}

std::optional<ApiError> ProxyCollection::populate(std::vector<PopulateEntry> entries,
                                                  std::vector<std::string>& names) {
  // Phase 1: validate everything and bind every listener we will need; on error release them all.
  std::set<std::string, std::less<>> seen;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto& c = entries[i].config;
    if (c.name.empty())
      return ApiError{400, "missing required field: name at proxy " + std::to_string(i + 1)};
    if (c.upstream.empty())
      return ApiError{400, "missing required field: upstream at proxy " + std::to_string(i + 1)};
    if (!seen.insert(c.name).second)
      return ApiError{400, "duplicate proxy name \"" + c.name + "\" in request"};
  }
  struct Plan {
    bool keep_existing = false;  // identical listen and upstream: kept, connections and toxics too
    std::optional<BoundListener> bound;
  };
  std::vector<Plan> plans(entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    const Proxy* existing = find(e.config.name);
    if (existing && existing->listen == e.config.listen && existing->upstream == e.config.upstream) {
      plans[i].keep_existing = true;
      continue;
    }
    if (!e.enabled) continue;
    // Replacing a running proxy on the very same address: its socket is reused below.
    if (existing && existing->listener) {
      auto probe = split_host_port(e.config.listen);
      if (auto* hp = std::get_if<HostPort>(&probe)) {
        auto addr = resolve_host(hp->host);
        auto port = parse_port(hp->port);
        boost::system::error_code ec;
        const auto current = existing->listener->acceptor.local_endpoint(ec);
        if (!ec && std::holds_alternative<asio::ip::address>(addr) &&
            std::holds_alternative<std::uint16_t>(port) &&
            current == tcp::endpoint(std::get<asio::ip::address>(addr), std::get<std::uint16_t>(port))) {
          continue;  // bound in phase 2 by taking over the socket
        }
      }
    }
    auto bound = bind(e.config.listen, true);
    if (auto* err = std::get_if<ApiError>(&bound)) return *err;  // plans (and their sockets) are released
    plans[i].bound = std::move(std::get<BoundListener>(bound));
  }
  // Phase 2: apply; nothing below fails.
  names.clear();
  for (std::size_t i = 0; i < entries.size(); ++i) {
    auto& e = entries[i];
    auto& plan = plans[i];
    names.push_back(e.config.name);
    auto it = proxies_.find(e.config.name);
    if (plan.keep_existing) {
      if (e.toxics) {
        Proxy& p = *it->second;
        p.toxics.clear();
        for (auto& t : *e.toxics) {
          admit(t);
          p.toxics.push_back(std::move(t));
        }
        publish(p);
      }
      continue;
    }
    std::vector<ToxicDef> toxics;
    if (e.toxics) {
      for (auto& t : *e.toxics) {
        admit(t);
        toxics.push_back(std::move(t));
      }
    }
    if (it != proxies_.end()) {
      Proxy& old = *it->second;
      if (e.enabled && !plan.bound && old.listener) {  // same address: take the socket over
        auto fresh = std::make_shared<Listener>(workers_.control());
        boost::system::error_code ec;
        const auto ep = old.listener->acceptor.local_endpoint(ec);
        fresh->acceptor.assign(ep.protocol(), old.listener->acceptor.release(ec), ec);
        plan.bound = BoundListener{fresh, go_endpoint(ep)};
      }
      stop_listener(old);
      proxies_.erase(it);
    }
    auto p = std::make_unique<Proxy>();
    p->name = e.config.name;
    p->listen = e.config.listen;
    p->upstream = e.config.upstream;
    p->toxics = std::move(toxics);
    if (e.enabled && plan.bound) start_listener(*p, std::move(*plan.bound));
    proxies_.emplace(p->name, std::move(p));
  }
  return std::nullopt;
}

void ProxyCollection::stop_all() {
  for (auto& [name, p] : proxies_)
    stop_listener(*p);
}

}  // namespace faultproxy
