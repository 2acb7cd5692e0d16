#include "soak/stores.h"

#include <hiredis/hiredis.h>
#include <mysql.h>
#include <sys/time.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <vector>

namespace soak {

std::optional<std::map<std::string, Row>> read_mariadb(int port, std::string& error) {
  MYSQL* db = mysql_init(nullptr);
  if (db == nullptr) {
    error = "mysql_init failed";
    return std::nullopt;
  }
  const std::unique_ptr<MYSQL, decltype(&mysql_close)> guard(db, &mysql_close);
  const unsigned timeout_s = 5;
  mysql_options(db, MYSQL_OPT_CONNECT_TIMEOUT, &timeout_s);
  mysql_options(db, MYSQL_OPT_READ_TIMEOUT, &timeout_s);
  mysql_options(db, MYSQL_OPT_WRITE_TIMEOUT, &timeout_s);
  mysql_options(db, MYSQL_SET_CHARSET_NAME, "utf8mb4");
  if (mysql_real_connect(db, "127.0.0.1", "root", "", nullptr, static_cast<unsigned>(port), nullptr, 0) ==
      nullptr) {
    error = std::string("connecting to MariaDB: ") + mysql_error(db);
    return std::nullopt;
  }
  if (mysql_query(db, "SELECT `id`, `name`, `version` FROM `users`.`user`") != 0) {
    error = std::string("reading users.user: ") + mysql_error(db);
    return std::nullopt;
  }
  MYSQL_RES* res = mysql_store_result(db);
  if (res == nullptr) {
    error = std::string("reading users.user: ") + mysql_error(db);
    return std::nullopt;
  }
  const std::unique_ptr<MYSQL_RES, decltype(&mysql_free_result)> res_guard(res, &mysql_free_result);
  std::map<std::string, Row> rows;
  while (MYSQL_ROW row = mysql_fetch_row(res)) {
    const unsigned long* len = mysql_fetch_lengths(res);
    if (row[0] == nullptr || row[1] == nullptr || row[2] == nullptr) continue;
    Row r;
    r.name.assign(row[1], len[1]);
    r.version = std::stoull(std::string(row[2], len[2]));
    rows.emplace(std::string(row[0], len[0]), std::move(r));
  }
  return rows;
}

namespace {

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

Reply command(redisContext* c, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> argl;
  for (const auto& a : args) {
    argv.push_back(a.data());
    argl.push_back(a.size());
  }
  return Reply(
      static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), argl.data())));
}

// Every key matching `pattern`.
bool scan(redisContext* c, const std::string& pattern, std::vector<std::string>& keys, std::string& error) {
  std::string cursor = "0";
  do {
    Reply r = command(c, {"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"});
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[1]->type != REDIS_REPLY_ARRAY) {
      error = "SCAN failed: " + std::string(c->err ? c->errstr : (r && r->str ? r->str : "unexpected reply"));
      return false;
    }
    cursor.assign(r->element[0]->str, r->element[0]->len);
    for (std::size_t i = 0; i < r->element[1]->elements; ++i) {
      const redisReply* k = r->element[1]->element[i];
      keys.emplace_back(k->str, k->len);
    }
  } while (cursor != "0");
  return true;
}

}  // namespace

std::optional<CacheSnapshot> read_redis(int port, const std::string& prefix, std::string& error) {
  const timeval tv{5, 0};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port, tv);
  if (c == nullptr || c->err) {
    error = "connecting to Redis :" + std::to_string(port) + ": " + (c ? c->errstr : "out of memory");
    if (c) redisFree(c);
    return std::nullopt;
  }
  const std::unique_ptr<redisContext, decltype(&redisFree)> guard(c, &redisFree);
  redisSetTimeout(c, tv);

  CacheSnapshot snap;
  std::vector<std::string> keys;
  if (!scan(c, prefix + "*", keys, error)) return std::nullopt;
  for (const auto& key : keys) {
    Reply r = command(c, {"HMGET", key, "name", "version"});
    if (!r) {
      error = "HMGET failed: " + std::string(c->errstr);
      return std::nullopt;
    }
    if (r->type == REDIS_REPLY_ERROR) continue;  // not a hash (another type under the prefix): ignored
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
      error = "unexpected HMGET reply for " + key;
      return std::nullopt;
    }
    CacheEntry e;
    if (r->element[0]->type == REDIS_REPLY_STRING) {
      e.has_name = true;
      e.name.assign(r->element[0]->str, r->element[0]->len);
    }
    if (r->element[1]->type == REDIS_REPLY_STRING) {
      e.has_version = true;
      e.version.assign(r->element[1]->str, r->element[1]->len);
    }
    snap.values.emplace(key.substr(prefix.size()), std::move(e));
  }
  keys.clear();
  const std::string tomb_prefix = "tombstone:" + prefix;
  if (!scan(c, tomb_prefix + "*", keys, error)) return std::nullopt;
  for (const auto& key : keys) {
    Reply r = command(c, {"GET", key});
    if (!r) {
      error = "GET failed: " + std::string(c->errstr);
      return std::nullopt;
    }
    if (r->type == REDIS_REPLY_STRING)
      snap.tombstones.emplace(key.substr(tomb_prefix.size()), std::string(r->str, r->len));
  }
  return snap;
}

std::string peek_redis(int port, const std::string& prefix, const std::string& id) {
  const timeval tv{0, 300'000};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port, tv);
  if (c == nullptr || c->err) {
    std::string e = c ? c->errstr : "out of memory";
    if (c) redisFree(c);
    return "unreadable (" + e + ")";
  }
  const std::unique_ptr<redisContext, decltype(&redisFree)> guard(c, &redisFree);
  redisSetTimeout(c, tv);
  Reply v = command(c, {"HMGET", prefix + id, "name", "version"});
  Reply t = command(c, {"GET", "tombstone:" + prefix + id});
  if (!v || !t || v->type != REDIS_REPLY_ARRAY || v->elements != 2) return "unreadable";
  std::string out;
  if (v->element[0]->type == REDIS_REPLY_STRING) {
    out = "value v" + std::string(v->element[1]->type == REDIS_REPLY_STRING ? v->element[1]->str : "?") +
          " " + std::string(v->element[0]->str, v->element[0]->len);
  }
  if (t->type == REDIS_REPLY_STRING) out += (out.empty() ? "" : " + ") + std::string("tombstone v") + t->str;
  return out.empty() ? "nothing" : out;
}

std::optional<bool> mariadb_read_only(int port, int timeout_ms) {
  MYSQL* db = mysql_init(nullptr);
  if (db == nullptr) return std::nullopt;
  const std::unique_ptr<MYSQL, decltype(&mysql_close)> guard(db, &mysql_close);
  const unsigned timeout_s = static_cast<unsigned>(std::max(1, timeout_ms / 1000));
  mysql_options(db, MYSQL_OPT_CONNECT_TIMEOUT, &timeout_s);
  mysql_options(db, MYSQL_OPT_READ_TIMEOUT, &timeout_s);
  mysql_options(db, MYSQL_OPT_WRITE_TIMEOUT, &timeout_s);
  if (mysql_real_connect(db, "127.0.0.1", "root", "", nullptr, static_cast<unsigned>(port), nullptr, 0) ==
      nullptr)
    return std::nullopt;
  if (mysql_query(db, "SELECT @@read_only") != 0) return std::nullopt;
  MYSQL_RES* res = mysql_store_result(db);
  if (res == nullptr) return std::nullopt;
  const std::unique_ptr<MYSQL_RES, decltype(&mysql_free_result)> res_guard(res, &mysql_free_result);
  MYSQL_ROW row = mysql_fetch_row(res);
  if (row == nullptr || row[0] == nullptr) return std::nullopt;
  return std::string(row[0]) != "0";
}

std::optional<RedisRole> redis_role(int port, int timeout_ms) {
  const timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port, tv);
  if (c == nullptr || c->err) {
    if (c) redisFree(c);
    return std::nullopt;
  }
  const std::unique_ptr<redisContext, decltype(&redisFree)> guard(c, &redisFree);
  redisSetTimeout(c, tv);
  Reply r = command(c, {"ROLE"});
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->element[0]->type != REDIS_REPLY_STRING)
    return std::nullopt;
  RedisRole role;
  role.role.assign(r->element[0]->str, r->element[0]->len);
  if (role.role == "master" && r->elements >= 3 && r->element[2]->type == REDIS_REPLY_ARRAY)
    role.replicas = r->element[2]->elements;
  return role;
}

std::optional<std::string> sentinel_master(int port, const std::string& master_name, int timeout_ms) {
  const timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port, tv);
  if (c == nullptr || c->err) {
    if (c) redisFree(c);
    return std::nullopt;
  }
  const std::unique_ptr<redisContext, decltype(&redisFree)> guard(c, &redisFree);
  redisSetTimeout(c, tv);
  Reply r = command(c, {"SENTINEL", "GET-MASTER-ADDR-BY-NAME", master_name});
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
      r->element[1]->type != REDIS_REPLY_STRING)
    return std::nullopt;
  return std::string(r->element[0]->str, r->element[0]->len) + ":" +
         std::string(r->element[1]->str, r->element[1]->len);
}

bool process_stopped(pid_t pid) {
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  std::error_code ec;
  std::size_t tasks = 0;
  for (const auto& t : std::filesystem::directory_iterator(dir, ec)) {
    std::ifstream stat(t.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    const auto paren = line.rfind(')');
    if (paren == std::string::npos || paren + 2 >= line.size()) return false;
    const char state = line[paren + 2];
    if (state != 'T' && state != 't') return false;
    ++tasks;
  }
  return tasks > 0;
}

bool process_alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  const auto paren = line.rfind(')');
  if (paren == std::string::npos || paren + 2 >= line.size()) return false;
  const char state = line[paren + 2];
  return state != 'Z' && state != 'X';
}

std::optional<std::uint64_t> rss_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      std::istringstream in(line.substr(6));
      std::uint64_t kib = 0;
      if (in >> kib) return kib;
    }
  }
  return std::nullopt;
}

}  // namespace soak
