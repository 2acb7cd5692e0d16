// UserStore on MariaDB through clients::mysql's bounded pool.
//
// Schema (created by probe() while missing, so the service can start before MariaDB):
//   CREATE DATABASE <db> CHARACTER SET utf8mb4;
//   CREATE SEQUENCE <db>.user_version;                       -- one increasing sequence of versions
//   CREATE TABLE <db>.user (id VARCHAR(255) utf8mb4_nopad_bin PRIMARY KEY, name VARCHAR(255),
//                           version BIGINT UNSIGNED, updated_at TIMESTAMP(6));
//   CREATE TRIGGER <db>.user_write_fence_{insert,update,delete} AFTER ... ON user FOR EACH ROW
//     IF UNIX_TIMESTAMP(SYSDATE(6)) * 1000000 > @user_service_write_fence THEN SIGNAL ...;
// Every write carries its fence (its deadline on this host's clock) and runs only while MariaDB's
// clock is within it: at its start (NOW(6) in the statement, which also sets the variable) and once
// it holds its row (the triggers roll it back), so a write answered 503 cannot land after a write
// sent once that answer was out. With binary logging on, creating the triggers takes SUPER or
// `log_bin_trust_function_creators` (else an administrator runs schema_script(): `user-service
// --print-schema`); the store checks they exist and is not ready without them.
// The id collation is binary and NO PAD, so MariaDB tells apart exactly the ids Redis tells apart
// ("a", "A" and "a " are three users). Every statement is a prepared statement with bound
// parameters, and each operation is a single statement (autocommit; a conditional put then reads
// its version), so a write that failed before it reached MariaDB, or that MariaDB refused, left
// nothing behind (one whose answer was lost may have committed: its failure says Effect::unknown,
// see classify()):
//   get:    SELECT name, version FROM user WHERE id = ?
//   put:    INSERT ... SELECT ?, ?, (@proposed := NEXT VALUE FOR user_version), NOW(6) FROM DUAL
//           ON DUPLICATE KEY UPDATE name = VALUES(name), version = NEXT VALUE FOR user_version,
//             updated_at = VALUES(updated_at)  RETURNING version, version = @proposed
//           -> the new version, and 1 when the row holds the version the insert proposed (created).
//   put if absent (create only): the INSERT alone; a duplicate key (1062) = the row exists.
//   put if it exists / has one of the versions:
//           UPDATE user SET name = ?, version = LAST_INSERT_ID(NEXT VALUE ...), updated_at = NOW(6)
//           WHERE id = ? [AND FIND_IN_SET(version, '5,7')]   -> 0 rows = the condition did not hold;
//           then SELECT LAST_INSERT_ID() on the same connection (UPDATE has no RETURNING, and a
//           table with triggers answers with no insert id).
//   remove: DELETE FROM user WHERE id = ? [AND FIND_IN_SET(version, ?)] RETURNING version
//   list:   SELECT id, name, version FROM user WHERE id > ? ORDER BY id LIMIT ?   (the primary key)
// A condition is checked by the write's own statement on the row it locks, so of concurrent writes
// requiring the same version exactly one succeeds, and the versions keep increasing per id.
// The pool connects without a default database (tables are qualified), so it comes up even while
// the database does not exist yet.
//
// Several endpoints (`mysql.endpoints`: a primary and its replicas, one pool each): every probe asks
// each one `SELECT @@read_only` and the primary is the one that answers 0. The choice is sticky: the
// current primary stays while it says read_only = 0, and another becomes primary only when it says so
// and the current one does not (it is down, or was fenced read-only), so an old primary that returns
// writable never takes a write while the promoted one serves (the stack also restarts every node
// read-only). Writes with no primary known fail at once. Replica reads wait for the replica to apply
// what it received (`Gtid_IO_Pos`, with `MASTER_GTID_WAIT`) before reading. The service's account
// must not have READ ONLY ADMIN (or SUPER), which `read_only` does not restrict.
//
// Usage:
//   clients::mysql::Pool pool(ex, settings);  pool.start();
//   MysqlStore store({&pool}, config.mysql);
//   auto put = co_await store.put("u-1", "Jack", deadline);
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "clients/mysql.h"
#include "user_service/config.h"
#include "user_service/ports.h"

namespace user_service {

// How a MariaDB error counts for the service: the failure class (breakers, metrics, read retries)
// and whether the statement may still have taken effect (Effect::unknown: it was sent and no answer
// said how it ended, e.g. "Lost connection to server during query" or a deadline mid-statement;
// Effect::none: it certainly did not run, e.g. no connection, a pool timeout, a server error reply).
// `conflict`: a lock conflict (deadlock, lock wait timeout) rolled the statement back: safe to repeat.
struct ErrorClass {
  Failure failure = Failure::unavailable;
  Effect effect = Effect::none;
  bool conflict = false;
};
ErrorClass classify(const clients::mysql::Error& e);

// The error the fence triggers raise (MariaDB's own number for a user-defined SIGNAL).
inline constexpr unsigned kFencePassedErrno = 1644;

class MysqlStore : public UserStore {
 public:
  // One pool per endpoint, in the configuration's order; all must outlive the store.
  MysqlStore(std::vector<clients::mysql::Pool*> nodes, const MysqlConfig& config);

  boost::asio::awaitable<Outcome<std::optional<StoredUser>>> get(std::string_view id, Deadline d) override;
  using UserStore::put;
  using UserStore::remove;
  boost::asio::awaitable<Outcome<PutResult>> put(std::string_view id, std::string_view name,
                                                 Precondition when, Deadline d) override;
  boost::asio::awaitable<Outcome<RemoveResult>> remove(std::string_view id, Precondition when,
                                                       Deadline d) override;
  boost::asio::awaitable<Outcome<std::vector<ListedUser>>> list(std::string_view after, std::uint32_t limit,
                                                                Deadline d) override;
  boost::asio::awaitable<Outcome<Done>> probe(Deadline d) override;
  boost::asio::awaitable<bool> connect_now(Deadline d) override;
  bool has_replica() const override { return nodes_.size() > 1; }
  boost::asio::awaitable<Outcome<std::optional<StoredUser>>> get_from_replica(std::string_view id,
                                                                              Deadline d) override;
  boost::asio::awaitable<Outcome<std::vector<ListedUser>>> list_from_replica(std::string_view after,
                                                                             std::uint32_t limit,
                                                                             Deadline d) override;
  boost::asio::awaitable<Outcome<Done>> probe_replica(Deadline d) override;

  // The endpoint that takes writes now, and one that serves replica reads (-1: none known).
  int primary() const { return primary_; }
  int replica() const { return replica_; }
  // Called on the executor whenever the primary changes (the cache feed follows it).
  void on_primary_change(std::function<void(int primary)> f) { on_primary_change_ = std::move(f); }
  // {"primary":"127.0.0.1:3306","replica":...,"endpoints":[{"address":..,"role":..}]}
  std::string topology_json() const;

  bool schema_ready() const { return schema_ready_; }
  // The DDL probe() runs (tables, then the triggers), as a script for the mariadb client.
  std::string schema_script() const;

 private:
  enum class Role { unknown, primary, replica };
  // Asks every endpoint its role and picks the primary and a replica (see above).
  boost::asio::awaitable<void> discover(Deadline d);
  // On the replica, once it applied every transaction it received (within `d`): `sql` with `params`.
  boost::asio::awaitable<Outcome<clients::mysql::ResultSet>> replica_execute(
      const std::string& sql, std::vector<clients::mysql::Value> params, Deadline d);
  // A write's fence: MariaDB runs it only while its clock (microseconds since the epoch) is at most
  // this, the moment `d` ends on this host's clock plus the configured skew.
  std::int64_t fence_us(Deadline d) const;
  clients::mysql::Pool* primary_pool() const { return primary_ < 0 ? nullptr : nodes_[primary_]; }

  std::vector<clients::mysql::Pool*> nodes_;
  std::vector<Role> roles_;  // as last answered
  int primary_ = 0;          // with one endpoint it is the primary, unasked
  int replica_ = -1;
  std::function<void(int)> on_primary_change_;
  Clock::duration clock_skew_;
  std::vector<std::string> schema_;
  // The triggers that check a write's fence once it holds its row (see the constructor).
  struct Trigger {
    std::string name, ddl;
  };
  std::vector<Trigger> fence_triggers_;
  std::string triggers_sql_;  // the names of the table's triggers
  std::string select_sql_, upsert_sql_, insert_sql_, update_sql_, update_if_sql_, delete_sql_, delete_if_sql_,
      list_sql_, probe_sql_;
  bool schema_ready_ = false;
};

}  // namespace user_service
