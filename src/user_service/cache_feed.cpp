#include "user_service/cache_feed.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <map>

#include "common/log.h"
#include "user_service/cache_ledger.h"

namespace user_service {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);
}  // namespace

CacheFeed::CacheFeed(asio::any_io_executor executor, CacheFeedSettings settings, ChangeSource& source,
                     CachePort& cache, Endpoint& master, common::metrics::Registry& registry)
    : executor_(executor),
      settings_(std::move(settings)),
      source_(source),
      cache_(cache),
      master_(master),
      timer_(executor) {
  changes_ = &registry.counter("user_service_cache_feed_changes_total",
                               "Committed changes the cache feed applied to the Redis master.");
  batches_ = &registry.counter("user_service_cache_feed_batches_total", "Batches the cache feed applied.");
  source_errors_ = &registry.counter("user_service_cache_feed_source_errors_total",
                                     "Failures reading MariaDB's binlog (the feed reconnects by itself).");
  takeovers_ = &registry.counter("user_service_cache_feed_takeovers_total",
                                 "Times this instance took the cache feed's lease.");
  registry.add_collector([this](common::metrics::Writer& w) {
    w.gauge("user_service_cache_feed_holder", "1 while this instance holds the cache feed's lease.", {},
            holder_ ? 1 : 0);
  });
}

void CacheFeed::master_changed() {
  if (holder_) master_changed_ = true;
  timer_.cancel();
}

void CacheFeed::start() {
  if (running_) return;
  running_ = true;
  loop_running_ = true;
  asio::co_spawn(executor_, run(), asio::detached);
}

asio::awaitable<void> CacheFeed::stop() {
  running_ = false;
  timer_.cancel();
  asio::steady_timer poll(executor_);
  while (loop_running_) {
    poll.expires_after(2ms);
    co_await poll.async_wait(use_nothrow);
  }
  if (holder_) co_await lose("stopping");
}

asio::awaitable<bool> CacheFeed::renew() {
  auto r = co_await master_.call<bool>(Deadline::after(master_.budget()), [&](Deadline d) {
    return cache_.take_lease(settings_.owner, settings_.lease_ttl, d);
  });
  if (!r.ok() || !r.value) co_return false;
  renewed_at_ = Clock::now();
  co_return true;
}

asio::awaitable<void> CacheFeed::lose(std::string_view why) {
  holder_ = false;
  source_.stop();
  common::log::warn("cache feed: lease given up", {{"owner", settings_.owner}, {"reason", why}});
  // Best effort: another instance takes over at once instead of after the TTL.
  if (master_.allow()) {
    co_await master_.call<bool>(Deadline::after(master_.budget()),
                                [&](Deadline d) { return cache_.release_lease(settings_.owner, d); });
  }
}

asio::awaitable<bool> CacheFeed::apply(const ChangeBatch& batch) {
  // Coalesced per id, newest first wins: a backlog never sets an entry back in time, even briefly.
  std::map<std::string_view, const CacheEntry*> newest;
  for (const auto& c : batch.changes) {
    auto [it, inserted] = newest.try_emplace(c.id, &c.entry);
    if (!inserted && supersedes(c.entry, *it->second)) it->second = &c.entry;
  }
  if (!running_) co_return false;
  // Every update of the batch is sent at once (pipelined on the master's connection): one round trip
  // a batch, not one a change. One after another, a backlog's batch (after a failover or a takeover)
  // outlasted the lease, another instance took over from the same position, and the feed stalled.
  std::size_t in_flight = newest.size();
  bool ok = true;
  asio::steady_timer all_done(executor_, Clock::time_point::max());
  const auto deadline = Deadline::after(master_.budget());
  for (const auto& change : newest) {
    asio::co_spawn(
        executor_,
        [&, id = change.first, entry = change.second]() -> asio::awaitable<void> {
          auto r = co_await master_.call<bool>(
              deadline, [&](Deadline d) { return cache_.store_if_newer(id, *entry, d); });
          if (r.ok()) {
            changes_->inc();
            ++applied_;
          } else {
            ok = false;
          }
          if (--in_flight == 0) all_done.cancel();
        },
        asio::detached);
  }
  // (All may have ended already: a call fails at once while the breaker is open.)
  if (in_flight > 0) co_await all_done.async_wait(use_nothrow);
  co_return ok;
}

asio::awaitable<void> CacheFeed::run() {
  const auto renew_every = settings_.lease_ttl / 4;
  std::optional<ChangeBatch> pending;  // read, not yet (completely) applied
  Clock::time_point source_ok = Clock::now();
  Clock::time_point stay_out_until{};
  while (running_) {
    if (!holder_) {
      bool took = false;
      if (Clock::now() >= stay_out_until && master_.allow()) took = co_await renew();
      if (took) {
        auto pos = co_await master_.call<std::string>(Deadline::after(master_.budget()),
                                                      [&](Deadline d) { return cache_.load_position(d); });
        if (!pos.ok()) {
          co_await lose("cannot read the feed position: " + pos.message);
          continue;
        }
        holder_ = true;
        takeovers_->inc();
        position_ = pos.value;
        pending.reset();
        source_ok = Clock::now();
        source_.start(position_);
        common::log::info(
            "cache feed: this instance holds the lease",
            {{"owner", settings_.owner}, {"position", position_.empty() ? "(now)" : position_}});
        continue;
      }
      timer_.expires_after(renew_every);
      co_await timer_.async_wait(use_nothrow);
      continue;
    }
    if (master_changed_) {
      // Another Redis master: what the old one took last may not have reached it (replication is
      // asynchronous). Resume from the position stored on the new one, which only covers updates it
      // has (the position is written after the updates it covers, on the same connection): the
      // replay brings back whatever the switch lost.
      master_changed_ = false;
      co_await lose("the Redis master changed; resuming from the position the new master holds");
      continue;
    }
    if (Clock::now() - renewed_at_ >= renew_every) {
      const bool renewed = co_await renew();
      if (!renewed) {
        co_await lose("cannot renew the lease");
        continue;
      }
    }
    if (pending) {
      const bool applied = co_await apply(*pending);
      if (!applied) {
        timer_.expires_after(renew_every / 2);
        co_await timer_.async_wait(use_nothrow);
        continue;
      }
      batches_->inc();
      auto saved = co_await master_.call<bool>(Deadline::after(master_.budget()), [&](Deadline d) {
        return cache_.save_position(settings_.owner, pending->position, d);
      });
      position_ = pending->position;
      pending.reset();
      if (saved.ok() && !saved.value) co_await lose("the lease was taken over");
      continue;
    }
    auto batch = co_await source_.next(settings_.batch, Deadline(renewed_at_ + renew_every));
    if (!batch.ok()) {
      source_errors_->inc();
      if (Clock::now() - source_ok > settings_.lease_ttl) {
        // This instance cannot read the binlog: let one that can take over, and stay out a while.
        co_await lose("cannot read MariaDB's binlog: " + batch.message);
        stay_out_until = Clock::now() + 2 * settings_.lease_ttl;
      } else {
        timer_.expires_after(50ms);
        co_await timer_.async_wait(use_nothrow);
      }
      continue;
    }
    source_ok = Clock::now();
    if (!batch.value.changes.empty()) {
      pending = std::move(batch.value);
    } else if (!batch.value.position.empty() && batch.value.position != position_) {
      // Nothing of ours changed, but the binlog moved on (or a start from "now" was resolved): a
      // successor must resume from here, not from its own "now", which would skip what came between.
      auto saved = co_await master_.call<bool>(Deadline::after(master_.budget()), [&](Deadline d) {
        return cache_.save_position(settings_.owner, batch.value.position, d);
      });
      if (saved.ok() && saved.value) position_ = batch.value.position;
      if (saved.ok() && !saved.value) co_await lose("the lease was taken over");
    }
  }
  loop_running_ = false;
}

std::string CacheFeed::to_json() const {
  std::string out = "{\"holder\":";
  out += holder_ ? "true" : "false";
  out += ",\"owner\":\"";
  common::log::append_json_escaped(out, settings_.owner);
  out += "\",\"position\":\"";
  common::log::append_json_escaped(out, position_);
  out += "\",\"applied\":";
  out += std::to_string(applied_);
  out += "}";
  return out;
}

}  // namespace user_service
