#include "user_service/mysql_store.h"

#include <algorithm>

#include "common/log.h"

namespace user_service {

namespace asio = boost::asio;
namespace mysql = clients::mysql;

namespace {

template <typename T>
Outcome<T> from_error(const mysql::Error& e) {
  const ErrorClass c = classify(e);
  std::string message = e.message.empty() ? std::string(mysql::to_string(e.code)) : e.message;
  if (e.server_errno != 0) message += " (" + std::to_string(e.server_errno) + ")";
  auto o = Outcome<T>::fail(c.failure, std::move(message), c.effect);
  o.conflict = c.conflict;
  return o;
}

std::optional<std::uint64_t> as_u64(const mysql::Value& v) {
  if (v.is_uint()) return std::get<std::uint64_t>(v.storage());
  const auto i = v.to_int();
  if (i && *i >= 0) return static_cast<std::uint64_t>(*i);
  return std::nullopt;
}

// The answer of select_sql_: no row, or one (name, version).
Outcome<std::optional<StoredUser>> user_from(const mysql::ResultSet& r) {
  using O = Outcome<std::optional<StoredUser>>;
  if (r.rows.empty()) return O::success(std::nullopt);
  const auto& row = r.rows.front();
  const auto version = row.size() == 2 ? as_u64(row[1]) : std::nullopt;
  if (!version || !row[0].is_string()) return O::fail(Failure::rejected, "unexpected row shape");
  return O::success(StoredUser{row[0].string(), *version});
}

// The answer of list_sql_: rows (id, name, version).
Outcome<std::vector<ListedUser>> users_from(const mysql::ResultSet& r) {
  using O = Outcome<std::vector<ListedUser>>;
  std::vector<ListedUser> users;
  users.reserve(r.rows.size());
  for (const auto& row : r.rows) {
    const auto version = row.size() == 3 ? as_u64(row[2]) : std::nullopt;
    if (!version || !row[0].is_string() || !row[1].is_string())
      return O::fail(Failure::rejected, "unexpected row shape");
    users.push_back(ListedUser{row[0].string(), row[1].string(), *version});
  }
  return O::success(std::move(users));
}

// FIND_IN_SET's list: "5,7" (empty: matches no version).
std::string version_list(const std::vector<std::uint64_t>& versions) {
  std::string out;
  for (const auto v : versions) {
    if (!out.empty()) out += ',';
    out += std::to_string(v);
  }
  return out;
}

}  // namespace

ErrorClass classify(const mysql::Error& e) {
  ErrorClass c;
  // The client knows whether the statement was handed to the server before the failure (see
  // clients::mysql::Error::outcome_unknown); this is the one fact that tells a write that certainly
  // did not happen (a 503 that left nothing behind) from one that may have committed.
  c.effect = e.outcome_unknown ? Effect::unknown : Effect::none;
  if (e.code == mysql::Errc::timeout) {
    c.failure = Failure::timeout;
  } else if (e.code == mysql::Errc::server || e.code == mysql::Errc::invalid_argument) {
    // The server refused this statement; it is up. Except errors that say it cannot work now.
    switch (e.server_errno) {
      case 1040:  // too many connections
      case 1053:  // server shutdown in progress
      case 1146:  // table doesn't exist (schema dropped under us)
      case 1049:  // unknown database
      case 1205:  // lock wait timeout: the statement was rolled back (autocommit: all of it)
      case 1213:  // deadlock: the transaction was rolled back
        c.conflict = e.code == mysql::Errc::server;
        c.failure = Failure::unavailable;
        break;
      case kFencePassedErrno:  // a fence trigger: the write reached its row too late, rolled back
        c.failure = Failure::timeout;
        break;
      case 1290:  // --read-only
      case 1836:  // read-only mode
        c.failure = Failure::unavailable;
        break;
      default:
        c.failure = Failure::rejected;
    }
  } else {
    // connection_lost, connect_failed, unavailable, pool_exhausted, cancelled, stopped.
    c.failure = Failure::unavailable;
  }
  return c;
}

MysqlStore::MysqlStore(std::vector<mysql::Pool*> nodes, const MysqlConfig& config)
    : nodes_(std::move(nodes)),
      roles_(nodes_.size(), Role::unknown),
      primary_(nodes_.size() > 1 ? -1 : 0),
      clock_skew_(config.clock_skew) {
  // The database name is an identifier (validated in config.cpp: letters, digits, '_' and '$').
  const std::string db = "`" + config.database + "`";
  schema_ = {
      "CREATE DATABASE IF NOT EXISTS " + db + " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
      "CREATE SEQUENCE IF NOT EXISTS " + db + ".`user_version` START WITH 1 INCREMENT BY 1 NOCYCLE",
      "CREATE TABLE IF NOT EXISTS " + db +
          ".`user` ("
          "`id` VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL PRIMARY KEY, "
          "`name` VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, "
          "`version` BIGINT UNSIGNED NOT NULL DEFAULT 0, "
          "`updated_at` TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)"
          ") ENGINE=InnoDB",
  };
  // Every write runs only while MariaDB's clock is within its fence (the call's deadline, see
  // fence_us), checked twice. At the statement's start (NOW(6)): one delayed on its way past the
  // moment the service answered 503 changes nothing and takes no lock. Then once it holds the row
  // (SYSDATE(6) in an AFTER trigger, which rolls the statement back): one that started in time but
  // reached its row only later (a lock wait, a stalled thread) cannot land after a write sent once
  // the 503 was answered. A write that passed both holds the row's lock until it commits, so any
  // later write of the row waits for it: writes land in the order of their answers.
  const std::string fence_var = "@user_service_write_fence";
  for (const std::string event : {"insert", "update", "delete"}) {
    const std::string name = "user_write_fence_" + event;
    fence_triggers_.push_back(
        {name, "CREATE TRIGGER IF NOT EXISTS " + db + ".`" + name + "` AFTER " + event + " ON " + db +
                   ".`user` FOR EACH ROW IF UNIX_TIMESTAMP(SYSDATE(6)) * 1000000 > " + fence_var +
                   " THEN SIGNAL SQLSTATE '45000' SET MYSQL_ERRNO = " + std::to_string(kFencePassedErrno) +
                   ", MESSAGE_TEXT = 'the write reached its row after its deadline: rolled back'; END IF"});
  }
  triggers_sql_ = "SELECT `TRIGGER_NAME` FROM information_schema.`TRIGGERS` WHERE `TRIGGER_SCHEMA` = '" +
                  config.database + "' AND `EVENT_OBJECT_TABLE` = 'user'";
  select_sql_ = "SELECT `name`, `version` FROM " + db + ".`user` WHERE `id` = ?";
  // The assignment sets the fence the triggers read; it runs before any row is written.
  const std::string in_time = "UNIX_TIMESTAMP(NOW(6)) * 1000000 <= (" + fence_var + " := ?)";
  // Inserts answer with the row's version and whether it is the one this statement's insert
  // proposed (1: created; an upsert that updated took a later value of the sequence).
  const std::string next_value = "NEXT VALUE FOR " + db + ".`user_version`";
  const std::string proposed = "@user_service_proposed_version";
  const std::string insert = "INSERT INTO " + db +
                             ".`user` (`id`, `name`, `version`, `updated_at`) SELECT ?, ?, (" + proposed +
                             " := " + next_value + "), NOW(6) FROM DUAL WHERE " + in_time;
  const std::string returning = " RETURNING `version`, `version` = " + proposed;
  insert_sql_ = insert + returning;
  upsert_sql_ = insert + " ON DUPLICATE KEY UPDATE `name` = VALUES(`name`), `version` = " + next_value +
                ", `updated_at` = VALUES(`updated_at`)" + returning;
  const std::string next_version = "LAST_INSERT_ID(" + next_value + ")";
  // Conditional writes: the condition is in the statement's WHERE (or is the primary key's
  // uniqueness), so it is checked on the row as the statement locks it.
  update_sql_ = "UPDATE " + db + ".`user` SET `name` = ?, `version` = " + next_version +
                ", `updated_at` = NOW(6) WHERE `id` = ? AND " + in_time;
  update_if_sql_ = update_sql_ + " AND FIND_IN_SET(`version`, ?)";
  probe_sql_ = "SELECT 1 FROM " + db + ".`user` LIMIT 1";
  delete_sql_ = "DELETE FROM " + db + ".`user` WHERE `id` = ? AND " + in_time + " RETURNING `version`";
  delete_if_sql_ = "DELETE FROM " + db + ".`user` WHERE `id` = ? AND " + in_time +
                   " AND FIND_IN_SET(`version`, ?) RETURNING `version`";
  list_sql_ = "SELECT `id`, `name`, `version` FROM " + db + ".`user` WHERE `id` > ? ORDER BY `id` LIMIT ?";
}

std::string MysqlStore::schema_script() const {
  std::string script = "DELIMITER //\n";  // a trigger's body holds `;`
  for (const auto& ddl : schema_)
    script += ddl + "//\n";
  for (const auto& t : fence_triggers_)
    script += t.ddl + "//\n";
  return script + "DELIMITER ;\n";
}

std::int64_t MysqlStore::fence_us(Deadline d) const {
  const auto left = std::chrono::duration_cast<std::chrono::system_clock::duration>(d.at() - Clock::now());
  const auto fence = std::chrono::system_clock::now() + left + clock_skew_;
  return std::chrono::duration_cast<std::chrono::microseconds>(fence.time_since_epoch()).count();
}

asio::awaitable<bool> MysqlStore::connect_now(Deadline d) {
  mysql::Pool* pool = primary_pool();
  if (pool == nullptr) co_return false;
  co_return co_await pool->connect_now(d);
}

asio::awaitable<Outcome<std::optional<StoredUser>>> MysqlStore::get(std::string_view id, Deadline d) {
  using O = Outcome<std::optional<StoredUser>>;
  std::vector<mysql::Value> params;
  params.emplace_back(id);
  mysql::Pool* pool = primary_pool();
  if (!pool) co_return O::fail(Failure::unavailable, "no writable MariaDB endpoint known");
  auto r = co_await pool->execute(select_sql_, std::move(params), d);
  if (!r) co_return from_error<std::optional<StoredUser>>(r.error());
  co_return user_from(*r);
}

asio::awaitable<Outcome<PutResult>> MysqlStore::put(std::string_view id, std::string_view name,
                                                    Precondition when, Deadline d) {
  using O = Outcome<PutResult>;
  mysql::Pool* pool = primary_pool();
  if (!pool) co_return O::fail(Failure::unavailable, "no writable MariaDB endpoint known");
  const bool update = when.kind == Precondition::exists || when.kind == Precondition::version_in;
  const std::string& sql = when.kind == Precondition::none     ? upsert_sql_
                           : when.kind == Precondition::absent ? insert_sql_
                           : when.kind == Precondition::exists ? update_sql_
                                                               : update_if_sql_;
  std::vector<mysql::Value> params;
  params.reserve(4);
  if (update) {
    params.emplace_back(name);
    params.emplace_back(id);
    params.emplace_back(fence_us(d));
    if (when.kind == Precondition::version_in) params.emplace_back(version_list(when.versions));
  } else {
    params.emplace_back(id);
    params.emplace_back(name);
    params.emplace_back(fence_us(d));
  }
  if (!update) {
    auto r = co_await pool->execute(sql, std::move(params), d);
    if (!r) {
      // Create-only, and the row exists: the primary key refused it, nothing was written.
      if (when.kind == Precondition::absent && r.error().is_duplicate_key())
        co_return O::success(PutResult{false, true, 0});
      co_return from_error<PutResult>(r.error());
    }
    // No row returned: the statement reached MariaDB after its fence and wrote nothing.
    if (r->rows.empty())
      co_return O::fail(Failure::timeout, "the statement reached MariaDB after its deadline: not applied");
    // The statement ran: an answer we cannot use leaves its effect unknown.
    const auto& row = r->rows.front();
    const auto version = row.size() == 2 ? as_u64(row[0]) : std::nullopt;
    const auto created = row.size() == 2 ? as_u64(row[1]) : std::nullopt;
    if (r->rows.size() != 1 || !version || !created)
      co_return O::fail(Failure::rejected, "unexpected RETURNING row", Effect::unknown);
    co_return O::success(PutResult{*created == 1, false, *version});
  }
  auto lease = co_await pool->acquire(d);
  if (!lease) co_return from_error<PutResult>(lease.error());
  mysql::Connection& conn = **lease;
  auto r = co_await conn.execute(sql, std::move(params), d);
  if (!r) co_return from_error<PutResult>(r.error());
  // The version always changes, so an UPDATE's changed rows are its matched rows: 0 when the
  // condition did not hold. (0 rows because the fence had passed cannot be answered here: the fence
  // is past the call's deadline, so the call has ended by then.)
  if (r->affected_rows == 0) co_return O::success(PutResult{false, true, 0});
  if (r->affected_rows != 1)
    co_return O::fail(Failure::rejected, "unexpected affected rows " + std::to_string(r->affected_rows),
                      Effect::unknown);
  // A table with triggers answers a write with no insert id (and UPDATE has no RETURNING): the
  // session still holds the version the statement set.
  auto version = co_await conn.execute("SELECT LAST_INSERT_ID()", {}, d);
  if (!version)
    co_return O::fail(classify(version.error()).failure,
                      "the write ran but its version could not be read: " + version.error().message,
                      Effect::unknown);
  const auto v =
      version->rows.size() == 1 && version->rows[0].size() == 1 ? as_u64(version->rows[0][0]) : std::nullopt;
  if (!v || *v == 0) co_return O::fail(Failure::rejected, "no version returned", Effect::unknown);
  co_return O::success(PutResult{false, false, *v});
}

asio::awaitable<Outcome<RemoveResult>> MysqlStore::remove(std::string_view id, Precondition when,
                                                          Deadline d) {
  using O = Outcome<RemoveResult>;
  if (when.kind == Precondition::absent)
    co_return O::fail(Failure::rejected, "a delete cannot require no row");
  mysql::Pool* pool = primary_pool();
  if (!pool) co_return O::fail(Failure::unavailable, "no writable MariaDB endpoint known");
  std::vector<mysql::Value> params;
  params.emplace_back(id);
  params.emplace_back(fence_us(d));
  if (when.kind == Precondition::version_in) params.emplace_back(version_list(when.versions));
  auto r = co_await pool->execute(when.kind == Precondition::version_in ? delete_if_sql_ : delete_sql_,
                                  std::move(params), d);
  if (!r) co_return from_error<RemoveResult>(r.error());
  // No row deleted: none there, or (with a condition) not the one required.
  if (r->rows.empty()) co_return O::success(RemoveResult{false, when.kind != Precondition::none, 0});
  const auto version = r->rows.front().empty() ? std::nullopt : as_u64(r->rows.front()[0]);
  if (!version) co_return O::fail(Failure::rejected, "unexpected RETURNING row", Effect::unknown);
  co_return O::success(RemoveResult{true, false, *version});
}

asio::awaitable<Outcome<std::vector<ListedUser>>> MysqlStore::list(std::string_view after,
                                                                   std::uint32_t limit, Deadline d) {
  mysql::Pool* pool = primary_pool();
  if (!pool)
    co_return Outcome<std::vector<ListedUser>>::fail(Failure::unavailable,
                                                     "no writable MariaDB endpoint known");
  std::vector<mysql::Value> params;
  params.emplace_back(after);
  params.emplace_back(limit);
  auto r = co_await pool->execute(list_sql_, std::move(params), d);
  if (!r) co_return from_error<std::vector<ListedUser>>(r.error());
  co_return users_from(*r);
}

asio::awaitable<Outcome<Done>> MysqlStore::probe(Deadline d) {
  if (nodes_.size() > 1) co_await discover(d);
  mysql::Pool* pool = primary_pool();
  if (!pool) co_return Outcome<Done>::fail(Failure::unavailable, "no MariaDB endpoint answers read_only = 0");
  auto lease = co_await pool->acquire(d);
  if (!lease) co_return from_error<Done>(lease.error());
  mysql::Connection& conn = **lease;
  if (!schema_ready_) {
    auto schema_failed = [](const mysql::Error& e) {
      auto o = from_error<Done>(e);
      o.message = "creating the schema: " + o.message;
      if (e.server_errno == 1419 || e.server_errno == 1142)
        o.message +=
            "; creating the fence triggers takes the TRIGGER privilege and, with binary logging on, SUPER"
            " or log_bin_trust_function_creators (or an administrator runs user-service --print-schema)";
      return o;
    };
    for (const auto& ddl : schema_) {
      auto r = co_await conn.query(ddl, d);
      if (!r) co_return schema_failed(r.error());
    }
    // Only the missing triggers: creating one, even IF NOT EXISTS, takes SUPER with binary logging
    // on, so an account without it works once an administrator created them.
    auto present = co_await conn.query(triggers_sql_, d);
    if (!present) co_return schema_failed(present.error());
    for (const auto& t : fence_triggers_) {
      const bool found = std::any_of(present->rows.begin(), present->rows.end(), [&](const auto& row) {
        return !row.empty() && row[0].is_string() && row[0].string() == t.name;
      });
      if (found) continue;
      auto r = co_await conn.query(t.ddl, d);
      if (!r) co_return schema_failed(r.error());
    }
    schema_ready_ = true;
    common::log::info("MariaDB schema ready");
    co_return Outcome<Done>::success({});
  }
  // A real statement on the table, so a schema dropped under us is noticed and created again.
  auto r = co_await conn.execute(probe_sql_, {}, d);
  if (!r) {
    if (r.error().server_errno == 1146 || r.error().server_errno == 1049) {
      schema_ready_ = false;
      common::log::warn("MariaDB schema missing; creating it again", {{"error", r.error().message}});
    }
    co_return from_error<Done>(r.error());
  }
  co_return Outcome<Done>::success({});
}

asio::awaitable<void> MysqlStore::discover(Deadline d) {
  // One endpoint after the other, each with its share of the budget, so a blackholed one costs only
  // its share (the others are still asked within this probe).
  const auto share = d.remaining() / static_cast<int>(nodes_.size());
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    auto r = co_await nodes_[i]->execute("SELECT @@read_only", {}, Deadline::after(share).at_most(d));
    if (!r || r->rows.empty() || r->rows.front().empty()) {
      roles_[i] = Role::unknown;
      continue;
    }
    const auto ro = r->rows.front().front().to_int();
    roles_[i] = ro && *ro == 0 ? Role::primary : Role::replica;
  }
  const int before = primary_;
  if (primary_ < 0 || roles_[primary_] != Role::primary) {
    // The current primary did not say read_only = 0: the first endpoint that did takes over.
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      if (roles_[i] == Role::primary) {
        primary_ = static_cast<int>(i);
        break;
      }
    }
    // A fenced (read-only) primary is no primary; one that merely did not answer stays until another
    // says it is writable.
    if (primary_ >= 0 && roles_[primary_] == Role::replica) primary_ = -1;
  }
  int replica = -1;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (roles_[i] == Role::replica && static_cast<int>(i) != primary_) {
      replica = static_cast<int>(i);
      if (i == static_cast<std::size_t>(replica_)) break;  // keep the current one while it qualifies
    }
  }
  replica_ = replica;
  if (primary_ != before) {
    // The schema came with replication; the probe's statement on the table finds it missing if not.
    common::log::warn("MariaDB primary changed",
                      {{"primary", primary_ < 0 ? std::string("none") : nodes_[primary_]->settings().name},
                       {"was", before < 0 ? std::string("none") : nodes_[before]->settings().name}});
    if (on_primary_change_) on_primary_change_(primary_);
  }
}

asio::awaitable<Outcome<Done>> MysqlStore::probe_replica(Deadline d) {
  if (replica_ < 0)
    co_return Outcome<Done>::fail(Failure::unavailable, "no MariaDB replica answers read_only = 1");
  auto r = co_await nodes_[replica_]->execute("SELECT 1", {}, d);
  if (!r) co_return from_error<Done>(r.error());
  co_return Outcome<Done>::success({});
}

asio::awaitable<Outcome<mysql::ResultSet>> MysqlStore::replica_execute(const std::string& sql,
                                                                       std::vector<mysql::Value> params,
                                                                       Deadline d) {
  using O = Outcome<mysql::ResultSet>;
  if (replica_ < 0) co_return O::fail(Failure::unavailable, "no MariaDB replica answers read_only = 1");
  auto lease = co_await nodes_[replica_]->acquire(d);
  if (!lease) co_return from_error<mysql::ResultSet>(lease.error());
  mysql::Connection& conn = **lease;
  // What the replica has received (with semi-synchronous replication, every write the primary
  // acknowledged) must be applied before it answers.
  auto status = co_await conn.query("SHOW SLAVE STATUS", d);
  if (!status) co_return from_error<mysql::ResultSet>(status.error());
  std::string received;
  for (std::size_t c = 0; c < status->columns.size(); ++c) {
    if (status->columns[c] == "Gtid_IO_Pos" && !status->rows.empty())
      received = status->rows.front()[c].to_text();
  }
  if (status->rows.empty()) {
    // Not replicating: promoted a moment ago (writable: everything it had is applied, and it is the
    // primary the next probe adopts), or cut off for good (read-only: its data has no bound).
    auto ro = co_await conn.execute("SELECT @@read_only", {}, d);
    if (!ro) co_return from_error<mysql::ResultSet>(ro.error());
    const auto v =
        ro->rows.empty() || ro->rows.front().empty() ? std::nullopt : ro->rows.front().front().to_int();
    if (!v || *v != 0) co_return O::fail(Failure::unavailable, "the replica does not replicate");
  }
  if (!received.empty()) {
    const double seconds = std::chrono::duration<double>(d.remaining()).count();
    std::vector<mysql::Value> wait;
    wait.emplace_back(received);
    wait.emplace_back(seconds);
    auto waited = co_await conn.execute("SELECT MASTER_GTID_WAIT(?, ?)", std::move(wait), d);
    if (!waited) co_return from_error<mysql::ResultSet>(waited.error());
    const auto applied = waited->rows.empty() || waited->rows.front().empty()
                             ? std::nullopt
                             : waited->rows.front().front().to_int();
    if (!applied || *applied != 0)
      co_return O::fail(Failure::timeout, "the replica has not applied " + received + " in time");
  }
  auto r = co_await conn.execute(sql, std::move(params), d);
  if (!r) co_return from_error<mysql::ResultSet>(r.error());
  co_return O::success(std::move(*r));
}

asio::awaitable<Outcome<std::optional<StoredUser>>> MysqlStore::get_from_replica(std::string_view id,
                                                                                 Deadline d) {
  std::vector<mysql::Value> params;
  params.emplace_back(id);
  auto r = co_await replica_execute(select_sql_, std::move(params), d);
  if (!r.ok()) co_return Outcome<std::optional<StoredUser>>::fail(r.failure, std::move(r.message));
  co_return user_from(r.value);
}

asio::awaitable<Outcome<std::vector<ListedUser>>> MysqlStore::list_from_replica(std::string_view after,
                                                                                std::uint32_t limit,
                                                                                Deadline d) {
  std::vector<mysql::Value> params;
  params.emplace_back(after);
  params.emplace_back(limit);
  auto r = co_await replica_execute(list_sql_, std::move(params), d);
  if (!r.ok()) co_return Outcome<std::vector<ListedUser>>::fail(r.failure, std::move(r.message));
  co_return users_from(r.value);
}

std::string MysqlStore::topology_json() const {
  std::string out = "{\"primary\":";
  out += primary_ < 0 ? "null" : "\"" + nodes_[primary_]->settings().name + "\"";
  out += ",\"replica\":";
  out += replica_ < 0 ? "null" : "\"" + nodes_[replica_]->settings().name + "\"";
  out += "}";
  return out;
}

}  // namespace user_service
