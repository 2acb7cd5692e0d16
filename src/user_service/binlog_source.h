// ChangeSource (ports.h) on MariaDB's binlog, through clients::mysql::BinlogReader: the committed
// changes of the `user` table, from the current primary (MysqlStore's choice: after a promotion the
// reader moves to the new primary and resumes from the same GTID position, which the new primary's
// binlog holds because replicas run with log_slave_updates). A row inserted or updated is its new
// value at its version; a row deleted, a tombstone at the deleted row's version.
//
// A position the primary no longer holds (transactions lost with an old primary, or purged logs)
// fails the stream with error 1236 every time: the source then restarts from the primary's current
// position and says so (error log): changes in between are not replayed. Their writers' own cache
// updates and repair queues still apply them; the README states this limit.
//
// Usage:
//   BinlogChangeSource source(ex, store, nodes, config);   // nodes: the pools, in store order
//   CacheFeed feed(ex, settings, source, cache, service.redis_master(), registry);
#pragma once

#include <memory>
#include <vector>

#include "clients/binlog.h"
#include "clients/mysql.h"
#include "user_service/config.h"
#include "user_service/mysql_store.h"
#include "user_service/ports.h"

namespace user_service {

// The table's row as a change: {id, name, version, updated_at} -> (id, entry). False if the row does
// not have that shape.
bool change_from_row(const clients::mysql::Row& row, bool removed, Change& out);

class BinlogChangeSource : public ChangeSource {
 public:
  BinlogChangeSource(boost::asio::any_io_executor executor, const MysqlStore& store,
                     std::vector<clients::mysql::Pool*> nodes, const Config& config);

  void start(std::string position) override;
  void stop() override;
  boost::asio::awaitable<Outcome<ChangeBatch>> next(std::size_t max, Deadline d) override;

 private:
  void open();

  boost::asio::any_io_executor executor_;
  const MysqlStore& store_;
  std::vector<clients::mysql::Pool*> nodes_;
  std::uint32_t server_id_;
  std::string database_;
  std::unique_ptr<clients::mysql::BinlogReader> reader_;
  int node_ = -1;  // the node reader_ reads
  bool running_ = false;
  std::string position_;
};

}  // namespace user_service
