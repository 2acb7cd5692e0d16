#include "user_service/redis_cache.h"

#include <array>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/deferred.hpp>
#include <charconv>

namespace user_service {

namespace asio = boost::asio;
namespace redis = clients::redis;

namespace {

// KEYS[1] value hash, KEYS[2] tombstone; ARGV: version, ttl ms, "v" (value) or "t" (tombstone), id, name.
// The current entry is whichever of the two exists (a hash without a version counts as version 0;
// a hash that does not name this id is not ours, is never served, and counts as absent); the new one
// replaces it only if it has a higher version, or the same version and is a tombstone. The reply,
// {1, id} if it replaced and {0, id} if not, names the id so that it cannot be mistaken for another
// call's (a command lost on its way leaves the next reply matched to it: see desync()).
constexpr std::string_view kStoreScript = R"lua(
local new = tonumber(ARGV[1])
local tomb = ARGV[3] == 't'
local cur, cur_tomb = nil, false
local t = redis.call('GET', KEYS[2])
if t then cur = tonumber(t) or 0; cur_tomb = true end
local h = redis.call('HMGET', KEYS[1], 'id', 'version')
if h[1] == ARGV[4] then
  local v = tonumber(h[2] or '0') or 0
  if cur == nil or v > cur then cur = v; cur_tomb = false end
end
if cur ~= nil then
  if new < cur then return {0, ARGV[4]} end
  if new == cur and (cur_tomb or not tomb) then return {0, ARGV[4]} end
end
redis.call('DEL', KEYS[1], KEYS[2])
if tomb then
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
else
  redis.call('HSET', KEYS[1], 'id', ARGV[4], 'name', ARGV[5], 'version', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return {1, ARGV[4]}
)lua";

// The cache feed's lease (KEYS[1]) and position (KEYS[2]); every reply is {0|1, <echo of ARGV[1]>},
// so it cannot be mistaken for another command's.
// take: if nobody or ARGV[1] holds the lease, (re)set it to ARGV[1] for ARGV[2] ms.
constexpr std::string_view kTakeLease = R"lua(
local cur = redis.call('GET', KEYS[1])
if cur == false or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {1, ARGV[1]}
end
return {0, ARGV[1]}
)lua";
// release: delete the lease if ARGV[1] holds it.
constexpr std::string_view kReleaseLease = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) return {1, ARGV[1]} end
return {0, ARGV[1]}
)lua";
// save: store the position ARGV[2] only while ARGV[1] holds the lease.
constexpr std::string_view kSavePosition = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[2], ARGV[2]) return {1, ARGV[1]} end
return {0, ARGV[1]}
)lua";

// A GTID position as MariaDB writes it: "domain-server-seq" items separated by commas, or empty.
bool is_gtid_position(std::string_view s) {
  int dashes = 0;
  bool digit = false;
  for (const char c : s) {
    if (c >= '0' && c <= '9') {
      digit = true;
    } else if (c == '-' && digit && dashes < 2) {
      ++dashes;
      digit = false;
    } else if (c == ',' && digit && dashes == 2) {
      dashes = 0;
      digit = false;
    } else {
      return false;
    }
  }
  return s.empty() || (digit && dashes == 2);
}

// Server errors that mean "this node cannot serve now" rather than "this call was wrong".
bool unavailable_reply(const std::string& s) {
  for (std::string_view p : {"LOADING", "READONLY", "MASTERDOWN", "BUSY", "TRYAGAIN", "CLUSTERDOWN"}) {
    if (s.starts_with(p)) return true;
  }
  return false;
}

template <typename T>
Outcome<T> from_error(const redis::Result& r) {
  if (r.has_error()) {
    const auto& e = r.error();
    Failure f = Failure::unavailable;
    if (e.code == redis::Errc::timeout) f = Failure::timeout;
    if (e.code == redis::Errc::invalid_argument) f = Failure::rejected;
    return Outcome<T>::fail(f, e.message.empty() ? std::string(redis::to_string(e.code)) : e.message);
  }
  const auto& s = r->str;
  return Outcome<T>::fail(unavailable_reply(s) ? Failure::unavailable : Failure::rejected, s);
}

// A reply that cannot belong to the command it was matched to: the connection's reply stream is
// out of step with its commands (bytes lost or injected on the way), so every later reply on it would
// be someone else's. The connection that carried the command (`connection`, read when it was issued)
// is dropped and re-established with backoff; the reply is not used.
template <typename T>
Outcome<T> desync(redis::Client& client, std::uint64_t connection, std::string what) {
  if (connection != 0) client.reset(what, connection);  // logs it (warn)
  return Outcome<T>::fail(Failure::desync, std::move(what) + " (connection dropped)", Effect::unknown);
}

bool parse_u64(std::string_view s, std::uint64_t& out) {
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size() && !s.empty();
}

std::string escape_glob(std::string_view s) {
  std::string out;
  for (const char c : s) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

}  // namespace

const redis::Script& RedisCache::store_script() {
  static const redis::Script script{std::string(kStoreScript)};
  return script;
}

RedisCache::RedisCache(redis::Client& master, redis::Client& replica, const RedisConfig& config)
    : master_(master),
      replica_(replica),
      prefix_(config.key_prefix),
      ttl_ms_(std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(config.ttl).count())),
      match_(escape_glob(config.key_prefix) + "*"),
      lease_key_("feed:" + config.key_prefix + "lease"),
      position_key_("feed:" + config.key_prefix + "position") {}

// A cached GET's path: no coroutine of its own. The reply is read in the handler the client calls
// once it is parsed, and the caller's handler is called from there.
void RedisCache::start_get(CacheNode node, std::string_view id, Deadline d, GetHandler handler) {
  redis::Client& c = client(node);
  const std::string key = value_key(id);
  const std::array<std::string_view, 5> args{"HMGET", key, "id", "name", "version"};
  const std::uint64_t connection = c.connection_id();
  // Cancellation reaches the command as it would from the caller's own handler.
  const auto slot = asio::get_associated_cancellation_slot(handler);
  c.command_view(args, d,
                 asio::bind_cancellation_slot(
                     slot, [&c, connection, id, h = std::move(handler)](redis::Result&& r) mutable {
                       std::move(h)(read_entry(c, connection, id, r));
                     }));
}

Outcome<std::optional<CacheEntry>> RedisCache::read_entry(redis::Client& c, std::uint64_t connection,
                                                          std::string_view id, redis::Result& r) {
  using O = Outcome<std::optional<CacheEntry>>;
  if (!r || r->is_error()) return from_error<std::optional<CacheEntry>>(r);
  // Only the reply to this HMGET can have this shape and name this id: anything else is another
  // command's reply (a desynchronised connection), and serving it could give user A's name for B.
  if (!r->is_array() || r->elements.size() != 3)
    return desync<std::optional<CacheEntry>>(c, connection, "HMGET reply of the wrong shape");
  for (const auto& e : r->elements) {
    if (!e.is_nil() && !e.is_string())
      return desync<std::optional<CacheEntry>>(c, connection, "HMGET reply of the wrong shape");
  }
  const auto& hash_id = r->elements[0];
  auto& name = r->elements[1];
  const auto& version = r->elements[2];
  if (hash_id.is_string() && hash_id.str != id)
    return desync<std::optional<CacheEntry>>(c, connection, "HMGET reply for another user");
  // No entry; or a hash that does not name its id (not written by us: never served, and replaced by
  // the next fill, see the script), or without a name.
  if (!hash_id.is_string() || !name.is_string()) return O::success(std::nullopt);
  CacheEntry entry;
  if (version.is_string() && !parse_u64(version.str, entry.version)) {
    return O::success(std::nullopt);  // not ours: never serve what we cannot order
  }
  entry.name = std::move(name.str);
  return O::success(std::move(entry));
}

asio::awaitable<Outcome<bool>> RedisCache::store_if_newer(std::string_view id, const CacheEntry& entry,
                                                          Deadline d) {
  std::vector<std::string> keys;
  keys.reserve(2);
  keys.push_back(value_key(id));
  keys.push_back(tombstone_key(id));
  std::vector<std::string> args;
  args.reserve(5);
  args.push_back(std::to_string(entry.version));
  args.push_back(ttl_ms_);
  args.emplace_back(entry.tombstone ? "t" : "v");
  args.emplace_back(id);
  args.push_back(entry.name);
  const std::uint64_t connection = master_.connection_id();
  const redis::Result r = co_await master_.eval(store_script(), std::move(keys), std::move(args), d);
  if (r && r->is_error() && r->str.starts_with("READONLY") && on_demoted_) on_demoted_();
  if (!r || r->is_error()) co_return from_error<bool>(r);
  if (!r->is_array() || r->elements.size() != 2 || !r->elements[0].is_integer() ||
      (r->elements[0].integer != 0 && r->elements[0].integer != 1) || !r->elements[1].is_string())
    co_return desync<bool>(master_, connection, "unexpected script reply");
  if (r->elements[1].str != id) co_return desync<bool>(master_, connection, "script reply for another user");
  co_return Outcome<bool>::success(r->elements[0].integer == 1);
}

asio::awaitable<bool> RedisCache::connect_now(CacheNode node, Deadline d) {
  co_return co_await client(node).connect_now(d);
}

asio::awaitable<Outcome<CacheProbe>> RedisCache::ping(CacheNode node, Deadline d) {
  using O = Outcome<CacheProbe>;
  redis::Client& c = client(node);
  // A probe may wait for a connection being made (after a failover moved the client), within its
  // deadline: user calls never wait for one.
  if (!c.connected()) co_await c.wait_connected(d);
  const std::uint64_t connection = c.connection_id();
  // Both nodes are asked their ROLE: a demoted master keeps its connections open and answers reads, so
  // only its role tells that writes must go elsewhere; and the replication offsets it gives tell how
  // far behind the master the replica is (replica_freshness.h).
  std::vector<std::string> args{"ROLE"};
  const redis::Result r = co_await c.command(std::move(args), d);
  if (!r && r.error().code == redis::Errc::timeout && connection != 0) {
    // A connected node that does not answer the probe within the deadline has stopped answering
    // (a new connection's handshake then times out too: nothing is lost) or its connection is out of
    // step: a reply lost on the way leaves each later reply matched to the command before it, which
    // timed out and discards it, while replies keep coming so the stall timer never fires. Only a new
    // connection ends that; without it the node stays unusable after the fault is gone.
    c.reset("no reply to the probe within the deadline", connection);
  }
  if (!r || r->is_error()) co_return from_error<CacheProbe>(r);
  if (!r->is_array() || r->elements.empty() || !r->elements[0].is_string())
    co_return desync<CacheProbe>(c, connection, "unexpected ROLE reply");
  const auto& role = r->elements[0].str;
  // ["master", offset, [replicas]]; ["slave", host, port, link state, offset or -1 while unlinked].
  const auto offset_at = [&](std::size_t i) -> std::optional<std::uint64_t> {
    if (r->elements.size() <= i || !r->elements[i].is_integer() || r->elements[i].integer < 0)
      return std::nullopt;
    return static_cast<std::uint64_t>(r->elements[i].integer);
  };
  if (node == CacheNode::replica) {
    if (role == "slave") co_return O::success({offset_at(4)});
    if (role == "master") co_return O::success({});  // not a replica (yet): nothing to compare
    co_return desync<CacheProbe>(c, connection, "unexpected ROLE reply");
  }
  if (role != "master") {
    if (on_demoted_) on_demoted_();
    co_return O::fail(Failure::unavailable, "the master node is a " + role + " now");
  }
  co_return O::success({offset_at(1)});
}

asio::awaitable<Outcome<std::uint64_t>> RedisCache::invalidate_values_step(std::uint64_t cursor, Deadline d) {
  using O = Outcome<std::uint64_t>;
  std::vector<std::string> args;
  args.reserve(6);
  args.emplace_back("SCAN");
  args.push_back(std::to_string(cursor));
  args.emplace_back("MATCH");
  args.push_back(match_);
  args.emplace_back("COUNT");
  args.emplace_back("500");
  std::uint64_t connection = master_.connection_id();
  const redis::Result r = co_await master_.command(std::move(args), d);
  if (!r || r->is_error()) co_return from_error<std::uint64_t>(r);
  std::uint64_t next = 0;
  if (!r->is_array() || r->elements.size() != 2 || !r->elements[0].is_string() ||
      !parse_u64(r->elements[0].str, next) || !r->elements[1].is_array())
    co_return desync<std::uint64_t>(master_, connection, "unexpected SCAN reply");
  const auto& found = r->elements[1].elements;
  for (const auto& k : found) {
    // Only value keys of ours: a key outside the pattern means this is not SCAN's reply.
    if (!k.is_string() || !k.str.starts_with(prefix_))
      co_return desync<std::uint64_t>(master_, connection, "unexpected SCAN reply");
  }
  if (!found.empty()) {
    std::vector<std::string> unlink;
    unlink.reserve(found.size() + 1);
    unlink.emplace_back("UNLINK");
    for (const auto& k : found)
      unlink.push_back(k.str);
    connection = master_.connection_id();
    const redis::Result u = co_await master_.command(std::move(unlink), d);
    if (!u || u->is_error()) co_return from_error<std::uint64_t>(u);
    if (!u->is_integer()) co_return desync<std::uint64_t>(master_, connection, "unexpected UNLINK reply");
  }
  co_return O::success(next);
}

asio::awaitable<Outcome<bool>> RedisCache::lease_script(const redis::Script& script,
                                                        std::vector<std::string> args, std::string_view echo,
                                                        Deadline d) {
  std::vector<std::string> keys{lease_key_, position_key_};
  const std::uint64_t connection = master_.connection_id();
  const redis::Result r = co_await master_.eval(script, std::move(keys), std::move(args), d);
  if (r && r->is_error() && r->str.starts_with("READONLY") && on_demoted_) on_demoted_();
  if (!r || r->is_error()) co_return from_error<bool>(r);
  if (!r->is_array() || r->elements.size() != 2 || !r->elements[0].is_integer() ||
      (r->elements[0].integer != 0 && r->elements[0].integer != 1) || !r->elements[1].is_string() ||
      r->elements[1].str != echo)
    co_return desync<bool>(master_, connection, "unexpected lease script reply");
  co_return Outcome<bool>::success(r->elements[0].integer == 1);
}

asio::awaitable<Outcome<bool>> RedisCache::take_lease(std::string_view owner, Clock::duration ttl,
                                                      Deadline d) {
  static const redis::Script script{std::string(kTakeLease)};
  std::vector<std::string> args{
      std::string(owner), std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(ttl).count())};
  co_return co_await lease_script(script, std::move(args), owner, d);
}

asio::awaitable<Outcome<bool>> RedisCache::release_lease(std::string_view owner, Deadline d) {
  static const redis::Script script{std::string(kReleaseLease)};
  std::vector<std::string> args{std::string(owner)};
  co_return co_await lease_script(script, std::move(args), owner, d);
}

asio::awaitable<Outcome<bool>> RedisCache::save_position(std::string_view owner, std::string_view position,
                                                         Deadline d) {
  static const redis::Script script{std::string(kSavePosition)};
  std::vector<std::string> args{std::string(owner), std::string(position)};
  co_return co_await lease_script(script, std::move(args), owner, d);
}

asio::awaitable<Outcome<std::string>> RedisCache::load_position(Deadline d) {
  std::vector<std::string> args{"GET", position_key_};
  const std::uint64_t connection = master_.connection_id();
  const redis::Result r = co_await master_.command(std::move(args), d);
  if (!r || r->is_error()) co_return from_error<std::string>(r);
  if (r->is_nil()) co_return Outcome<std::string>::success({});
  if (!r->is_string() || !is_gtid_position(r->str))
    co_return desync<std::string>(master_, connection, "unexpected GET reply for the feed position");
  co_return Outcome<std::string>::success(r->str);
}

}  // namespace user_service
