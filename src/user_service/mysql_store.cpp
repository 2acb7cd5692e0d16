#include "user_service/mysql_store.h"

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
  return Outcome<T>::fail(c.failure, std::move(message), c.effect);
}

std::optional<std::uint64_t> as_u64(const mysql::Value& v) {
  if (v.is_uint()) return std::get<std::uint64_t>(v.storage());
  const auto i = v.to_int();
  if (i && *i >= 0) return static_cast<std::uint64_t>(*i);
  return std::nullopt;
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
      case 1205:  // lock wait timeout
      case 1213:  // deadlock
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

MysqlStore::MysqlStore(mysql::Pool& pool, const MysqlConfig& config) : pool_(pool) {
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
  select_sql_ = "SELECT `name`, `version` FROM " + db + ".`user` WHERE `id` = ?";
  upsert_sql_ = "INSERT INTO " + db +
                ".`user` (`id`, `name`, `version`, `updated_at`) "
                "VALUES (?, ?, LAST_INSERT_ID(NEXT VALUE FOR " +
                db +
                ".`user_version`), NOW(6)) "
                "ON DUPLICATE KEY UPDATE `name` = VALUES(`name`), "
                "`version` = LAST_INSERT_ID(NEXT VALUE FOR " +
                db + ".`user_version`), `updated_at` = VALUES(`updated_at`)";
  probe_sql_ = "SELECT 1 FROM " + db + ".`user` LIMIT 1";
  delete_sql_ = "DELETE FROM " + db + ".`user` WHERE `id` = ? RETURNING `version`";
}

asio::awaitable<Outcome<std::optional<StoredUser>>> MysqlStore::get(std::string_view id, Deadline d) {
  using O = Outcome<std::optional<StoredUser>>;
  std::vector<mysql::Value> params;
  params.emplace_back(id);
  auto r = co_await pool_.execute(select_sql_, std::move(params), clients::Deadline(d.at));
  if (!r) co_return from_error<std::optional<StoredUser>>(r.error());
  if (r->rows.empty()) co_return O::success(std::nullopt);
  const auto& row = r->rows.front();
  const auto version = row.size() == 2 ? as_u64(row[1]) : std::nullopt;
  if (!version || !row[0].is_string()) co_return O::fail(Failure::rejected, "unexpected row shape");
  co_return O::success(StoredUser{row[0].string(), *version});
}

asio::awaitable<Outcome<PutResult>> MysqlStore::put(std::string_view id, std::string_view name, Deadline d) {
  std::vector<mysql::Value> params;
  params.reserve(2);
  params.emplace_back(id);
  params.emplace_back(name);
  auto r = co_await pool_.execute(upsert_sql_, std::move(params), clients::Deadline(d.at));
  if (!r) co_return from_error<PutResult>(r.error());
  // The statement ran: an answer we cannot use leaves its effect unknown.
  if (r->affected_rows != 1 && r->affected_rows != 2)
    co_return Outcome<PutResult>::fail(
        Failure::rejected, "unexpected affected rows " + std::to_string(r->affected_rows), Effect::unknown);
  if (r->last_insert_id == 0)
    co_return Outcome<PutResult>::fail(Failure::rejected, "no version returned", Effect::unknown);
  co_return Outcome<PutResult>::success(PutResult{r->affected_rows == 1, r->last_insert_id});
}

asio::awaitable<Outcome<std::optional<std::uint64_t>>> MysqlStore::remove(std::string_view id, Deadline d) {
  using O = Outcome<std::optional<std::uint64_t>>;
  std::vector<mysql::Value> params;
  params.emplace_back(id);
  auto r = co_await pool_.execute(delete_sql_, std::move(params), clients::Deadline(d.at));
  if (!r) co_return from_error<std::optional<std::uint64_t>>(r.error());
  if (r->rows.empty()) co_return O::success(std::nullopt);
  const auto version = r->rows.front().empty() ? std::nullopt : as_u64(r->rows.front()[0]);
  if (!version) co_return O::fail(Failure::rejected, "unexpected RETURNING row", Effect::unknown);
  co_return O::success(*version);
}

asio::awaitable<Outcome<Done>> MysqlStore::probe(Deadline d) {
  auto lease = co_await pool_.acquire(clients::Deadline(d.at));
  if (!lease) co_return from_error<Done>(lease.error());
  mysql::Connection& conn = **lease;
  if (!schema_ready_) {
    for (const auto& ddl : schema_) {
      auto r = co_await conn.query(ddl, clients::Deadline(d.at));
      if (!r) {
        auto o = from_error<Done>(r.error());
        o.message = "creating the schema: " + o.message;
        co_return o;
      }
    }
    schema_ready_ = true;
    common::log::info("MariaDB schema ready");
    co_return Outcome<Done>::success({});
  }
  // A real statement on the table, so a schema dropped under us is noticed and created again.
  auto r = co_await conn.execute(probe_sql_, {}, clients::Deadline(d.at));
  if (!r) {
    if (r.error().server_errno == 1146 || r.error().server_errno == 1049) {
      schema_ready_ = false;
      common::log::warn("MariaDB schema missing; creating it again", {{"error", r.error().message}});
    }
    co_return from_error<Done>(r.error());
  }
  co_return Outcome<Done>::success({});
}

}  // namespace user_service
