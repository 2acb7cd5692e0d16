#include "soak/history.h"

#include <gtest/gtest.h>

namespace soak {
namespace {

TEST(Names, RoundTripAndStayWithin255Bytes) {
  bool multibyte = false, escaped = false;
  for (std::uint64_t seq = 1; seq < 5000; ++seq) {
    const std::string name = make_name("w12-345", seq);
    ASSERT_LE(name.size(), 255u);
    ASSERT_EQ(parse_name("w12-345", name), seq) << name;
    multibyte |= name.find("\xe2\x98\x83") != std::string::npos;
    escaped |= name.find('"') != std::string::npos || name.find('\\') != std::string::npos;
  }
  EXPECT_TRUE(multibyte);
  EXPECT_TRUE(escaped);
}

TEST(Names, RejectAnythingElse) {
  const std::string name = make_name("w1-2", 77);
  EXPECT_FALSE(parse_name("w1-3", name));        // another user's value
  EXPECT_FALSE(parse_name("w1-2", name + "x"));  // longer
  if (name.size() > 10) {
    EXPECT_FALSE(parse_name("w1-2", name.substr(0, name.size() - 1)));  // truncated
  }
  EXPECT_FALSE(parse_name("w1-2", "w1-2~077~"));  // leading zero
  EXPECT_FALSE(parse_name("w1-2", "w1-2~~"));
  EXPECT_FALSE(parse_name("w1-2", ""));
  EXPECT_FALSE(parse_name("w1-2", "w1-2"));
  std::string flipped = name;
  flipped[flipped.size() / 2] ^= 0x01;
  EXPECT_NE(parse_name("w1-2", flipped), std::optional<std::uint64_t>(77));
}

TEST(Statuses, AllowedPerOperation) {
  EXPECT_TRUE(allowed_status(Op::get, 200));
  EXPECT_TRUE(allowed_status(Op::get, 404));
  EXPECT_TRUE(allowed_status(Op::get, 503));
  EXPECT_FALSE(allowed_status(Op::get, 201));
  EXPECT_FALSE(allowed_status(Op::get, 500));
  EXPECT_TRUE(allowed_status(Op::put, 201));
  EXPECT_FALSE(allowed_status(Op::put, 204));
  EXPECT_FALSE(allowed_status(Op::put, 404));
  EXPECT_TRUE(allowed_status(Op::del, 204));
  EXPECT_TRUE(allowed_status(Op::del, 404));
  EXPECT_FALSE(allowed_status(Op::del, 200));
  EXPECT_FALSE(allowed_status(Op::del, kReset));
}

Record put(std::int64_t seq, int status, std::int64_t sent, std::int64_t done, bool short_circuit = false) {
  Record r;
  r.op = Op::put;
  r.id = 0;
  r.state = seq;
  r.status = status;
  r.sent_us = sent;
  r.done_us = done;
  r.short_circuit = short_circuit;
  return r;
}

Record del(int status, std::int64_t sent, std::int64_t done) {
  Record r;
  r.op = Op::del;
  r.status = status;
  r.sent_us = sent;
  r.done_us = done;
  return r;
}

Record get(State state, std::int64_t sent, std::int64_t done, Source source = Source::origin,
           bool stale = false) {
  Record r;
  r.op = Op::get;
  r.state = state;
  r.status = state == kAbsent ? 404 : 200;
  r.sent_us = sent;
  r.done_us = done;
  r.source = source;
  r.stale = stale;
  return r;
}

TEST(Effects, ClassifiesAnswers) {
  EXPECT_EQ(effect_of(put(1, 201, 0, 1)), Effect::applied);
  EXPECT_EQ(effect_of(put(1, 200, 0, 1)), Effect::applied);
  EXPECT_EQ(effect_of(del(204, 0, 1)), Effect::applied);
  EXPECT_EQ(effect_of(del(404, 0, 1)), Effect::applied);
  EXPECT_EQ(effect_of(put(1, 503, 0, 1)), Effect::unknown);
  EXPECT_EQ(effect_of(put(1, 503, 0, 1, true)), Effect::none);
  EXPECT_EQ(effect_of(put(1, kTimeout, 0, 1)), Effect::unknown);
  EXPECT_EQ(effect_of(put(1, kRefused, 0, 1)), Effect::unknown);
  EXPECT_EQ(effect_of(put(1, 400, 0, 1)), Effect::none);
}

TEST(Final, LatestAcknowledgedWins) {
  History h({"a"});
  h.add(put(1, 201, 0, 10));
  h.add(put(2, 200, 20, 30));
  EXPECT_EQ(h.check_final(0, 2).kind, FinalVerdict::ok);
  EXPECT_EQ(h.check_final(0, 1).kind, FinalVerdict::lost);
  EXPECT_EQ(h.check_final(0, kAbsent).kind, FinalVerdict::lost);
  EXPECT_EQ(h.check_final(0, 9).kind, FinalVerdict::unknown);
  EXPECT_EQ(h.check_final(0, kUnparsable).kind, FinalVerdict::unknown);
}

TEST(Final, NothingWrittenMeansAbsent) {
  History h({"a"});
  EXPECT_EQ(h.check_final(0, kAbsent).kind, FinalVerdict::ok);
  h.add(put(1, 503, 0, 10, true));  // MariaDB never called
  EXPECT_EQ(h.check_final(0, kAbsent).kind, FinalVerdict::ok);
  EXPECT_EQ(h.check_final(0, 1).kind, FinalVerdict::unknown);
}

TEST(Final, UnknownOutcomesAfterTheLastAcknowledgementMayLand) {
  History h({"a"});
  h.add(put(1, 201, 0, 10));
  h.add(put(2, 503, 20, 30));
  h.add(del(kTimeout, 40, 50));
  EXPECT_EQ(h.check_final(0, 1).kind, FinalVerdict::ok);
  EXPECT_EQ(h.check_final(0, 2).kind, FinalVerdict::ok_unacknowledged);
  EXPECT_EQ(h.check_final(0, kAbsent).kind, FinalVerdict::ok_unacknowledged);
}

TEST(Final, AnUnknownOutcomeBeforeTheLastAcknowledgementIsALostUpdate) {
  History h({"a"});
  h.add(put(1, 503, 0, 10));
  h.add(put(2, 200, 20, 30));
  const auto v = h.check_final(0, 1);
  EXPECT_EQ(v.kind, FinalVerdict::late_unacknowledged);
  EXPECT_NE(v.detail.find("seq 1"), std::string::npos);
}

TEST(Final, DeleteNotFoundCountsAsApplied) {
  History h({"a"});
  h.add(put(1, 201, 0, 10));
  h.add(del(204, 20, 30));
  h.add(del(404, 40, 50));
  EXPECT_EQ(h.check_final(0, kAbsent).kind, FinalVerdict::ok);
  EXPECT_EQ(h.check_final(0, 1).kind, FinalVerdict::lost);
}

TEST(Reads, MustNotBeOlderThanWhatWasAcknowledgedBeforeThem) {
  History h({"a"});
  h.add(put(1, 201, 0, 10));
  h.add(put(2, 200, 20, 30));
  h.add(get(2, 40, 45));                       // fine
  h.add(get(1, 40, 45));                       // older than seq 2, acknowledged at 30
  h.add(get(1, 25, 45));                       // sent while seq 2 was in flight: fine
  h.add(get(1, 40, 45, Source::cache));        // stale from the cache, unmarked
  h.add(get(1, 40, 45, Source::cache, true));  // marked stale: allowed
  const auto r = h.check_reads();
  ASSERT_EQ(r.origin.size(), 1u);
  EXPECT_EQ(r.origin[0].read, 3u);
  EXPECT_EQ(r.origin[0].expected, 2);
  ASSERT_EQ(r.cache.size(), 1u);
  EXPECT_EQ(r.cache[0].read, 5u);
  EXPECT_EQ(r.marked_stale, 1u);
  EXPECT_TRUE(r.unknown.empty());
}

TEST(Reads, ValuesNoWriteProducedAreUnknown) {
  History h({"a"});
  h.add(put(1, 201, 0, 10));
  h.add(get(5, 20, 30));            // never written
  h.add(get(kUnparsable, 20, 30));  // not a name of this id
  h.add(put(2, 200, 40, 50));
  h.add(get(2, 20, 30, Source::cache, true));  // marked stale, but seq 2 was sent only at 40
  const auto r = h.check_reads();
  EXPECT_EQ(r.unknown.size(), 3u);
}

TEST(Reads, NotFoundAfterAnAcknowledgedPutIsStaleAndAfterADeleteIsFine) {
  History h({"a"});
  h.add(put(1, 201, 0, 10));
  h.add(get(kAbsent, 20, 30));  // the user exists since 10
  h.add(del(204, 40, 50));
  h.add(get(kAbsent, 60, 70));
  h.add(get(1, 60, 70));  // deleted at 50
  const auto r = h.check_reads();
  ASSERT_EQ(r.origin.size(), 2u);
  EXPECT_EQ(r.origin[0].read, 1u);
  EXPECT_EQ(r.origin[1].read, 4u);
}

TEST(Reads, AnOlderUnacknowledgedWriteIsFlagged) {
  History h({"a"});
  h.add(put(1, 503, 0, 10));
  h.add(put(2, 200, 20, 30));
  h.add(get(1, 40, 50));
  const auto r = h.check_reads();
  ASSERT_EQ(r.origin.size(), 1u);
  EXPECT_TRUE(r.origin[0].late_unacknowledged);
}

TEST(Reads, UnknownOutcomeWritesInFlightOrAfterAreAllowed) {
  History h({"a"});
  h.add(put(1, 201, 0, 10));
  h.add(put(2, 503, 20, 30));
  h.add(get(2, 40, 50));  // the 503 write committed after all
  h.add(get(1, 40, 50));  // or it did not
  h.add(put(3, 503, 60, 70, true));
  h.add(get(3, 80, 90));  // MariaDB was never called for seq 3
  const auto r = h.check_reads();
  EXPECT_TRUE(r.unknown.empty());
  ASSERT_EQ(r.origin.size(), 1u);
  EXPECT_EQ(r.origin[0].read, 5u);
}

TEST(Reads, ABoundToleratesStalenessUpToItAndReportsTheLargest) {
  History h({"a"});
  h.add(put(1, 201, 0, 10));
  h.add(put(2, 200, 20, 1'000));
  h.add(get(1, 1'500, 1'600));                 // stale by 500 us
  h.add(get(1, 3'000, 3'100, Source::cache));  // stale by 2,000 us
  h.add(get(2, 3'000, 3'100, Source::origin_replica));
  h.add(get(1, 900, 1'100));  // sent while seq 2 was in flight
  auto r = h.check_reads(1'000);
  EXPECT_EQ(r.within_tolerance, 1u);
  EXPECT_TRUE(r.origin.empty());
  ASSERT_EQ(r.cache.size(), 1u);
  EXPECT_EQ(r.cache[0].read, 3u);
  EXPECT_EQ(r.cache[0].staleness_us, 2'000);
  EXPECT_EQ(r.max_staleness_us, 2'000);
  EXPECT_EQ(r.max_staleness_read, 3u);
  EXPECT_EQ(r.max_staleness_write, 1u);
  EXPECT_EQ(r.checked_origin, 3u);           // origin and origin-replica
  r = h.check_reads(1'000, {{900, 2'500}});  // seq 2 acknowledged with no master until 2,500
  EXPECT_TRUE(r.cache.empty());
  EXPECT_EQ(r.excused, 1u);
  EXPECT_EQ(r.max_excused_us, 2'000);
  r = h.check_reads(1'000, {{900, 1'900}});  // no master until 1,900: read at 3,000 is 1,100 later
  EXPECT_EQ(r.cache.size(), 1u);
  r = h.check_reads();  // strict: both stale reads
  EXPECT_EQ(r.origin.size(), 1u);
  EXPECT_EQ(r.cache.size(), 1u);
  EXPECT_EQ(r.within_tolerance, 0u);
}

TEST(Final, AtAFailoverTheWritesAcknowledgedBeforeTheLossMustBeThere) {
  History h({"a"});
  h.add(put(1, 201, 0, 10));
  h.add(put(2, 200, 20, 30));  // acknowledged before the primary was lost at 50
  h.add(put(3, 503, 60, 70));  // unknown outcome, after
  h.add(put(4, 200, 80, 90));  // acknowledged by the new primary
  EXPECT_EQ(h.check_at(0, 2, 50).kind, FinalVerdict::ok);
  EXPECT_EQ(h.check_at(0, 3, 50).kind, FinalVerdict::ok_unacknowledged);
  EXPECT_EQ(h.check_at(0, 4, 50).kind, FinalVerdict::ok_unacknowledged);
  EXPECT_EQ(h.check_at(0, 1, 50).kind, FinalVerdict::lost);
  EXPECT_EQ(h.check_at(0, kAbsent, 50).kind, FinalVerdict::lost);
}

}  // namespace
}  // namespace soak
