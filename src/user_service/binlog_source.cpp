#include "user_service/binlog_source.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/log.h"

namespace user_service {

namespace asio = boost::asio;
namespace mysql = clients::mysql;

bool change_from_row(const mysql::Row& row, bool removed, Change& out) {
  if (row.size() < 3 || !row[0].is_string() || !row[1].is_string()) return false;
  std::uint64_t version = 0;
  if (row[2].is_uint()) {
    version = std::get<std::uint64_t>(row[2].storage());
  } else if (const auto v = row[2].to_int(); v && *v >= 0) {
    version = static_cast<std::uint64_t>(*v);
  } else {
    return false;
  }
  out.id = row[0].string();
  out.entry = removed ? CacheEntry{version, true, {}} : CacheEntry{version, false, row[1].string()};
  return true;
}

BinlogChangeSource::BinlogChangeSource(asio::any_io_executor executor, const MysqlStore& store,
                                       std::vector<mysql::Pool*> nodes, const Config& config)
    : executor_(executor),
      store_(store),
      nodes_(std::move(nodes)),
      server_id_(config.cache.feed_server_id),
      database_(config.mysql.database) {}

void BinlogChangeSource::start(std::string position) {
  running_ = true;
  position_ = std::move(position);
  open();
}

void BinlogChangeSource::stop() {
  running_ = false;
  reader_.reset();  // stops and joins its thread (its blocking read is interrupted at once)
  node_ = -1;
}

void BinlogChangeSource::open() {
  reader_.reset();
  node_ = store_.primary();
  if (node_ < 0) return;
  mysql::BinlogSettings s;
  s.connection = nodes_[node_]->settings().connection;
  s.connection.database.clear();
  s.server_id = server_id_;
  s.database = database_;
  s.table = "user";
  reader_ = std::make_unique<mysql::BinlogReader>(executor_, s);
  reader_->start(position_);
}

asio::awaitable<Outcome<ChangeBatch>> BinlogChangeSource::next(std::size_t max, Deadline d) {
  using O = Outcome<ChangeBatch>;
  if (!running_) co_return O::fail(Failure::unavailable, "the change feed is stopped");
  if (store_.primary() != node_) {
    // A new primary (or none): read its binlog from where this one stopped.
    if (reader_ && !reader_->position().empty()) position_ = reader_->position();
    open();
  }
  if (!reader_) {
    asio::steady_timer wait(executor_);
    wait.expires_at(d.at());
    co_await wait.async_wait(asio::as_tuple(asio::use_awaitable));
    co_return O::fail(Failure::unavailable, "no MariaDB primary known");
  }
  auto r = co_await reader_->next(max, d);
  if (!r) {
    const auto& e = r.error();
    if (e.server_errno == 1236) {
      common::log::error("cache feed: the primary no longer has the binlog position; resuming from now",
                         {{"position", position_}, {"error", e.message}});
      position_.clear();
      open();
    }
    co_return O::fail(e.code == mysql::Errc::timeout ? Failure::timeout : Failure::unavailable,
                      "binlog: " + e.message);
  }
  ChangeBatch batch;
  batch.position = r->position;
  if (!batch.position.empty()) position_ = batch.position;
  for (const auto& rc : r->changes) {
    Change c;
    const bool removed = rc.kind == mysql::RowChange::Kind::remove;
    if (!change_from_row(rc.row, removed, c)) {
      common::log::warn("cache feed: a row of an unexpected shape skipped", {{"gtid", rc.gtid}});
      continue;
    }
    // An update that changed the id (never done by this service) removes the old id's entry.
    Change old;
    if (rc.kind == mysql::RowChange::Kind::update && change_from_row(rc.before, true, old) && old.id != c.id)
      batch.changes.push_back(std::move(old));
    batch.changes.push_back(std::move(c));
  }
  co_return O::success(std::move(batch));
}

}  // namespace user_service
