#include "user_service/cache_ledger.h"

#include <gtest/gtest.h>

namespace user_service {
namespace {

using namespace std::chrono_literals;

CacheEntry value(std::uint64_t v, std::string name = "n") {
  return CacheEntry{v, false, std::move(name)};
}
CacheEntry tomb(std::uint64_t v) {
  return CacheEntry{v, true, {}};
}

TEST(CacheLedger, SupersedesRule) {
  EXPECT_TRUE(supersedes(value(2), value(1)));
  EXPECT_FALSE(supersedes(value(1), value(2)));
  EXPECT_FALSE(supersedes(value(2), value(2)));
  EXPECT_TRUE(supersedes(tomb(2), value(2)));  // a delete of version 2 beats version 2's value
  EXPECT_FALSE(supersedes(value(2), tomb(2)));
  EXPECT_TRUE(supersedes(value(3), tomb(2)));  // re-created after the delete
}

TEST(CacheLedger, FailedUpdateIsQueuedAndMakesOlderEntriesStale) {
  CacheLedger l(10, 10, 10s, 0s);
  const auto now = Clock::now();
  EXPECT_FALSE(l.known_stale("u", value(5), true));
  l.record_write("u", value(6, "Joe"), false, now);
  EXPECT_EQ(l.pending(), 1u);
  EXPECT_TRUE(l.known_stale("u", value(5), true));
  EXPECT_TRUE(l.known_stale("u", value(5), false));  // a queued repair: stale on the master too
  EXPECT_FALSE(l.known_stale("u", value(6), true));
  EXPECT_FALSE(l.known_stale("u", value(7), true));
  EXPECT_FALSE(l.known_stale("other", value(1), true));
  // A newer failed write replaces the queued one: one slot per user.
  l.record_write("u", value(8, "Jim"), false, now);
  EXPECT_EQ(l.pending(), 1u);
  auto batch = l.take_repairs(10);
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch[0].entry.version, 8u);
  EXPECT_EQ(batch[0].entry.name, "Jim");
  EXPECT_TRUE(l.take_repairs(10).empty());  // in flight
  l.repair_finished("u", value(8, "Jim"), true, now);
  EXPECT_EQ(l.pending(), 0u);
  EXPECT_EQ(l.watched(), 1u);
  EXPECT_TRUE(l.known_stale("u", value(7), true));    // still remembered: a lagging replica is recognised
  EXPECT_FALSE(l.known_stale("u", value(7), false));  // but the master acknowledged it: trusted
  l.expire(now + 11s);
  EXPECT_EQ(l.watched(), 0u);
  EXPECT_FALSE(l.known_stale("u", value(7), true));
}

TEST(CacheLedger, FailedRepairIsRetriedAndNewerWriteDuringRepairKeepsItQueued) {
  CacheLedger l(10, 10, 10s, 0s);
  const auto now = Clock::now();
  l.record_write("u", value(6), false, now);
  auto b = l.take_repairs(10);
  l.repair_finished("u", value(6), false, now);
  EXPECT_EQ(l.pending(), 1u);
  b = l.take_repairs(10);
  ASSERT_EQ(b.size(), 1u);
  l.record_write("u", value(9), false, now);  // arrives while the repair of 6 is in flight
  l.repair_finished("u", value(6), true, now);
  EXPECT_EQ(l.pending(), 1u);
  b = l.take_repairs(10);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].entry.version, 9u);
}

// Found by the chaos soak: PUT (cache update failed, queued), its repair in flight, then DELETE of
// that same version (tombstone queued); the value's repair succeeded and the ledger, comparing
// versions only, forgot the tombstone: the deleted user was served from the cache.
TEST(CacheLedger, ADeleteRecordedWhileTheValuesRepairIsInFlightStaysQueued) {
  CacheLedger l(10, 10, 0s, 0s);
  const auto now = Clock::now();
  l.record_write("u", value(6, "Joe"), false, now);
  auto b = l.take_repairs(10);
  ASSERT_EQ(b.size(), 1u);
  l.record_write("u", tomb(6), false, now);  // DELETE RETURNING version 6
  l.repair_finished("u", b[0].entry, true, now);
  EXPECT_EQ(l.pending(), 1u);
  EXPECT_TRUE(l.known_stale("u", value(6, "Joe"), false));
  b = l.take_repairs(10);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_TRUE(b[0].entry.tombstone);
  l.repair_finished("u", b[0].entry, true, now);
  EXPECT_EQ(l.pending(), 0u);
}

TEST(CacheLedger, OlderWriteNeverReplacesNewerKnowledge) {
  CacheLedger l(10, 10, 10s, 0s);
  const auto now = Clock::now();
  l.record_write("u", value(9), false, now);
  l.record_write("u", value(7), true, now);  // a slower, older write finishing last
  EXPECT_EQ(l.pending(), 1u);
  EXPECT_TRUE(l.known_stale("u", value(8), true));
  l.record_write("u", tomb(9), false, now);
  EXPECT_TRUE(l.known_stale("u", value(9), true));
}

TEST(CacheLedger, OverflowMakesTheCacheUntrustedUntilMarked) {
  CacheLedger l(2, 10, 10s, 0s);
  const auto now = Clock::now();
  l.record_write("a", value(1), false, now);
  l.record_write("b", value(2), false, now);
  EXPECT_FALSE(l.untrusted());
  l.record_write("a", value(3), false, now);  // same user: no new slot
  EXPECT_FALSE(l.untrusted());
  l.record_write("c", value(4), false, now);
  EXPECT_TRUE(l.untrusted());
  EXPECT_EQ(l.overflows(), 1u);
  EXPECT_EQ(l.pending(), 0u);
  EXPECT_TRUE(l.known_stale("zzz", value(100), true));
  l.mark_trusted(now);
  EXPECT_FALSE(l.known_stale("zzz", value(100), false));
  EXPECT_TRUE(l.known_stale("zzz", value(100), true));  // the replica: see below
}

TEST(CacheLedger, RecentWritesAreBoundedByCapacity) {
  CacheLedger l(1, 3, 10s, 0s);  // watched entries: at most 1 + 3
  const auto now = Clock::now();
  for (std::uint64_t i = 0; i < 10; ++i)
    l.record_write("u" + std::to_string(i), value(i + 1), true, now);
  EXPECT_EQ(l.watched(), 4u);
  EXPECT_TRUE(l.known_stale("u9", value(1), true));
  EXPECT_FALSE(l.known_stale("u0", value(0), true));
}

// Without recent writes (the default), an update the master received from the repair queue is still
// unknown to a replica that lags: it stays known-stale for replica reads until a replica read shows
// it, or for the replica lag window.
TEST(CacheLedger, RepairedEntryStaysStaleForTheReplicaUntilItCatchesUp) {
  CacheLedger l(10, 10, 0s, 5s);
  const auto now = Clock::now();
  l.record_write("u", value(6, "Joe"), false, now);
  l.record_write("d", tomb(7), false, now);
  for (const auto& r : l.take_repairs(10))
    l.repair_finished(r.id, r.entry, true, now);
  EXPECT_EQ(l.pending(), 0u);
  EXPECT_EQ(l.watched(), 2u);
  EXPECT_FALSE(l.known_stale("u", value(5), false));  // the master has it
  EXPECT_TRUE(l.known_stale("u", value(5), true));    // the replica may not yet
  EXPECT_TRUE(l.known_stale("d", value(7), true));    // a deleted user's old value on the replica
  // A replica read still showing the old value changes nothing; one showing the update (or a newer
  // one) ends the watch.
  l.replica_caught_up("u", value(5));
  EXPECT_TRUE(l.known_stale("u", value(5), true));
  l.replica_caught_up("u", value(6, "Joe"));
  EXPECT_EQ(l.watched(), 1u);
  EXPECT_FALSE(l.known_stale("u", value(5), true));
  // Otherwise the window ends it.
  l.expire(now + 4s);
  EXPECT_TRUE(l.known_stale("d", value(7), true));
  l.expire(now + 6s);
  EXPECT_EQ(l.watched(), 0u);
  EXPECT_FALSE(l.known_stale("d", value(7), true));
}

TEST(CacheLedger, WithoutAReplicaLagWindowARepairedEntryIsForgotten) {
  CacheLedger l(10, 10, 0s, 0s);
  const auto now = Clock::now();
  l.record_write("u", value(6), false, now);
  for (const auto& r : l.take_repairs(10))
    l.repair_finished(r.id, r.entry, true, now);
  EXPECT_EQ(l.watched(), 0u);
  EXPECT_FALSE(l.known_stale("u", value(5), true));
}

// A write whose update reached the master while an older one of the same user was still queued:
// the master was away for that user a moment ago, so the replica is not trusted for it either.
TEST(CacheLedger, WriteAppliedOverAQueuedRepairIsWatchedForTheReplica) {
  CacheLedger l(10, 10, 0s, 5s);
  const auto now = Clock::now();
  l.record_write("u", value(6), false, now);
  l.record_write("u", value(8), true, now);
  EXPECT_EQ(l.pending(), 0u);
  EXPECT_FALSE(l.known_stale("u", value(6), false));
  EXPECT_TRUE(l.known_stale("u", value(6), true));
  EXPECT_FALSE(l.known_stale("u", value(8), true));
  // A plain write to another user is not watched (recent writes are off).
  l.record_write("v", value(9), true, now);
  EXPECT_EQ(l.watched(), 1u);
  EXPECT_FALSE(l.known_stale("v", value(1), true));
}

TEST(CacheLedger, MasterUpdatesAfterAnUnknownOutcomeAreWatched) {
  CacheLedger l(10, 10, 0s, 5s);
  const auto now = Clock::now();
  l.record_master_update("u", value(6), now);
  EXPECT_TRUE(l.known_stale("u", value(5), true));
  EXPECT_FALSE(l.known_stale("u", value(5), false));
  l.record_master_update("d", tomb(4), now);
  EXPECT_TRUE(l.known_stale("d", value(4), true));
  // A queued repair stays queued.
  l.record_write("q", value(3), false, now);
  l.record_master_update("q", value(5), now);
  EXPECT_EQ(l.pending(), 1u);
  const auto batch = l.take_repairs(10);
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch[0].entry.version, 5u);
}

TEST(CacheLedger, AfterAnInvalidationTheReplicaIsTrustedOnlyOnceItCanHaveCaughtUp) {
  CacheLedger l(1, 10, 0s, 5s);
  const auto now = Clock::now();
  l.record_write("a", value(1), false, now);
  l.record_write("b", value(2), false, now);  // overflow
  ASSERT_TRUE(l.untrusted());
  l.mark_trusted(now);
  EXPECT_FALSE(l.untrusted());
  EXPECT_FALSE(l.known_stale("zzz", value(100), false));
  EXPECT_TRUE(l.known_stale("zzz", value(100), true));
  EXPECT_TRUE(l.replica_untrusted());
  l.expire(now + 6s);
  EXPECT_FALSE(l.replica_untrusted());
  EXPECT_FALSE(l.known_stale("zzz", value(100), true));
}

TEST(CacheLedger, WatchedEntriesAreBoundedAndAFreshWatchOutlivesAnOldRecord) {
  CacheLedger l(2, 1, 0s, 5s);  // at most 3 watched
  const auto now = Clock::now();
  for (std::uint64_t i = 0; i < 6; ++i)
    l.record_master_update("u" + std::to_string(i), value(i + 1), now + std::chrono::seconds(i));
  EXPECT_EQ(l.watched(), 3u);
  EXPECT_FALSE(l.known_stale("u0", value(0), true));  // the oldest were forgotten
  EXPECT_TRUE(l.known_stale("u5", value(0), true));
  // Queued again, then applied again: watched from the new time on, not the old record's.
  l.record_write("u5", value(20), false, now + 6s);
  l.record_write("u5", value(21), true, now + 8s);
  l.expire(now + 11s);  // past u5's first window (5 + 5 s), not its second (8 + 5 s)
  EXPECT_TRUE(l.known_stale("u5", value(20), true));
  l.expire(now + 14s);
  EXPECT_FALSE(l.known_stale("u5", value(20), true));
  EXPECT_EQ(l.watched(), 0u);
}

}  // namespace
}  // namespace user_service

namespace user_service {
namespace {

TEST(CacheLedger, KnownEntryIsWhatKnownStaleComparesWith) {
  CacheLedger off(10, 10, 0s, 0s), on(10, 10, 10s, 0s);
  const auto now = Clock::now();
  EXPECT_FALSE(off.known_entry("u", true));
  off.record_write("u", value(6, "Joe"), false, now);  // queued: known for both nodes
  ASSERT_TRUE(off.known_entry("u", false));
  EXPECT_EQ(off.known_entry("u", true)->version, 6u);
  auto batch = off.take_repairs(10);
  off.repair_finished("u", value(6, "Joe"), true, now);  // applied; no recent writes: forgotten
  EXPECT_FALSE(off.known_entry("u", true));
  on.record_write("u", tomb(7), true, now);  // applied, remembered for the replica only
  EXPECT_FALSE(on.known_entry("u", false));
  ASSERT_TRUE(on.known_entry("u", true));
  EXPECT_TRUE(on.known_entry("u", true)->tombstone);
}

}  // namespace
}  // namespace user_service
