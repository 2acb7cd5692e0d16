// UserStore on MariaDB through clients::mysql's bounded pool.
//
// Schema (created by probe() while missing, so the service can start before MariaDB):
//   CREATE DATABASE <db> CHARACTER SET utf8mb4;
//   CREATE SEQUENCE <db>.user_version;                       -- one increasing sequence of versions
//   CREATE TABLE <db>.user (id VARCHAR(255) utf8mb4_nopad_bin PRIMARY KEY, name VARCHAR(255),
//                           version BIGINT UNSIGNED, updated_at TIMESTAMP(6));
// The id collation is binary and NO PAD, so MariaDB tells apart exactly the ids Redis tells apart
// ("a", "A" and "a " are three users). Every statement is a prepared statement with bound
// parameters, and each operation is a single statement (one round trip, autocommit), so a write that
// failed before it reached MariaDB, or that MariaDB refused, left nothing behind (one whose answer was
// lost may have committed: its failure says Effect::unknown, see classify()):
//   get:    SELECT name, version FROM user WHERE id = ?
//   put:    INSERT ... VALUES (?, ?, LAST_INSERT_ID(NEXT VALUE FOR user_version), NOW(6))
//           ON DUPLICATE KEY UPDATE name = VALUES(name),
//             version = LAST_INSERT_ID(NEXT VALUE FOR user_version), updated_at = VALUES(updated_at)
//           -> affected rows 1 = created, 2 = updated; the new version is the statement's insert id.
//   remove: DELETE FROM user WHERE id = ? RETURNING version
// The pool connects without a default database (tables are qualified), so it comes up even while
// the database does not exist yet.
//
// Usage:
//   clients::mysql::Pool pool(ex, settings);  pool.start();
//   MysqlStore store(pool, config.mysql);
//   auto put = co_await store.put("u-1", "Jack", deadline);
#pragma once

#include <string>

#include "clients/mysql.h"
#include "user_service/config.h"
#include "user_service/ports.h"

namespace user_service {

// How a MariaDB error counts for the service: the failure class (breakers, metrics, read retries)
// and whether the statement may still have taken effect (Effect::unknown: it was sent and no answer
// said how it ended, e.g. "Lost connection to server during query" or a deadline mid-statement;
// Effect::none: it certainly did not run, e.g. no connection, a pool timeout, a server error reply).
struct ErrorClass {
  Failure failure = Failure::unavailable;
  Effect effect = Effect::none;
};
ErrorClass classify(const clients::mysql::Error& e);

class MysqlStore : public UserStore {
 public:
  MysqlStore(clients::mysql::Pool& pool, const MysqlConfig& config);

  boost::asio::awaitable<Outcome<std::optional<StoredUser>>> get(std::string_view id, Deadline d) override;
  boost::asio::awaitable<Outcome<PutResult>> put(std::string_view id, std::string_view name,
                                                 Deadline d) override;
  boost::asio::awaitable<Outcome<std::optional<std::uint64_t>>> remove(std::string_view id,
                                                                       Deadline d) override;
  boost::asio::awaitable<Outcome<Done>> probe(Deadline d) override;

  bool schema_ready() const { return schema_ready_; }
  // The DDL run by probe(), in order (for tests and documentation).
  const std::vector<std::string>& schema_statements() const { return schema_; }

 private:
  clients::mysql::Pool& pool_;
  std::vector<std::string> schema_;
  std::string select_sql_, upsert_sql_, delete_sql_, probe_sql_;
  bool schema_ready_ = false;
};

}  // namespace user_service
