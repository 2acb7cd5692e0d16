#include "faultproxy/toxics.h"

#include <gtest/gtest.h>

#include <numeric>

namespace faultproxy {
namespace {

using namespace std::chrono_literals;

const TimePoint T0 = TimePoint{} + 1000s;

struct Out {
  EventKind kind;
  std::string bytes;
  TimePoint at;
};

// Drives one stage like the pipeline does: events in, (event, release time) out.
class Harness {
 public:
  Harness(ToxicType type, Attributes a, std::uint64_t seed = 1) : stage_(make_stage(type, a, seed)) {}
  void data(std::string s, TimePoint t) { in_.push_back(Event::data(std::move(s), t)); }
  void terminal(EventKind k, TimePoint t) { in_.push_back(Event::terminal(k, t)); }
  TimePoint step(TimePoint now) {
    return stage_->step(in_, now, [this](Event&& e, TimePoint at) { out_.push_back({e.kind, e.bytes, at}); });
  }
  void flush(TimePoint now, bool removed) {
    stage_->flush(
        in_, now,
        [this](Event&& e, TimePoint at) {
          out_.push_back({e.kind, e.bytes, at});
        },
        removed);
    while (!in_.empty()) {
      Event e = in_.take_front();
      out_.push_back({e.kind, e.bytes, now});
    }
  }
  Stage& stage() { return *stage_; }
  std::vector<Out>& out() { return out_; }
  std::string bytes() const {
    std::string s;
    for (const auto& o : out_)
      if (o.kind == EventKind::data) s += o.bytes;
    return s;
  }

 private:
  std::unique_ptr<Stage> stage_;
  EventQueue in_;
  std::vector<Out> out_;
};

TEST(Latency, DelaysEachChunkFromItsReadTime) {
  Harness h(ToxicType::latency, {100, 0, 0});
  h.data("a", T0);
  h.data("b", T0 + 30ms);
  EXPECT_EQ(h.step(T0), T0 + 100ms);
  EXPECT_TRUE(h.out().empty());
  EXPECT_EQ(h.step(T0 + 100ms), T0 + 130ms);  // pipelined: b is not serialised behind a
  ASSERT_EQ(h.out().size(), 1u);
  EXPECT_EQ(h.out()[0].at, T0 + 100ms);
  EXPECT_EQ(h.step(T0 + 131ms), kNever);
  ASSERT_EQ(h.out().size(), 2u);
  EXPECT_EQ(h.out()[1].bytes, "b");
  EXPECT_EQ(h.out()[1].at, T0 + 130ms);  // released at its due time even if the step ran late
}

TEST(Latency, JitterStaysInRangeAndKeepsOrder) {
  Harness h(ToxicType::latency, {100, 20, 0}, 7);
  for (int i = 0; i < 200; ++i)
    h.data(std::to_string(i) + ",", T0 + std::chrono::milliseconds(i));
  h.step(T0 + 10s);
  ASSERT_EQ(h.out().size(), 200u);
  TimePoint last{};
  for (int i = 0; i < 200; ++i) {
    const auto read = T0 + std::chrono::milliseconds(i);
    EXPECT_GE(h.out()[i].at, read + 80ms);
    EXPECT_LE(h.out()[i].at, std::max(last, read + 120ms));
    EXPECT_GE(h.out()[i].at, last);
    last = h.out()[i].at;
  }
  std::string expect;
  for (int i = 0; i < 200; ++i)
    expect += std::to_string(i) + ",";
  EXPECT_EQ(h.bytes(), expect);
}

TEST(Latency, EofFollowsTheLastChunkWithoutExtraDelay) {
  Harness h(ToxicType::latency, {50, 0, 0});
  h.data("x", T0);
  h.terminal(EventKind::eof, T0 + 1ms);
  EXPECT_EQ(h.step(T0 + 50ms), kNever);
  ASSERT_EQ(h.out().size(), 2u);
  EXPECT_EQ(h.out()[1].kind, EventKind::eof);
  EXPECT_EQ(h.out()[1].at, T0 + 50ms);
}

TEST(Latency, NegativeLatencyPassesAtOnce) {
  Harness h(ToxicType::latency, {-5, 0, 0});
  h.data("x", T0);
  EXPECT_EQ(h.step(T0), kNever);
  EXPECT_EQ(h.bytes(), "x");
}

TEST(Latency, UpdateKeepsTheScheduleOfHeldChunks) {
  Harness h(ToxicType::latency, {100, 0, 0});
  h.data("a", T0);
  h.data("b", T0 + 10ms);
  EXPECT_EQ(h.step(T0 + 10ms), T0 + 100ms);
  h.data("c", T0 + 15ms);
  h.step(T0 + 16ms);  // c's release time is fixed here, before the update
  h.stage().update({300, 0, 0}, T0 + 20ms);
  h.data("d", T0 + 30ms);
  EXPECT_EQ(h.step(T0 + 100ms), T0 + 110ms);
  EXPECT_EQ(h.step(T0 + 110ms), T0 + 115ms);
  EXPECT_EQ(h.step(T0 + 115ms), T0 + 330ms);
  EXPECT_EQ(h.step(T0 + 330ms), kNever);
  EXPECT_EQ(h.bytes(), "abcd");
  ASSERT_EQ(h.out().size(), 4u);
  EXPECT_EQ(h.out()[1].at, T0 + 110ms);
  EXPECT_EQ(h.out()[2].at, T0 + 115ms);
  EXPECT_EQ(h.out()[3].at, T0 + 330ms);
}

TEST(Latency, LowerLatencyNeverOvertakesHeldChunks) {
  Harness h(ToxicType::latency, {300, 0, 0});
  h.data("a", T0);
  h.step(T0);
  h.stage().update({10, 0, 0}, T0 + 1ms);
  h.data("b", T0 + 2ms);
  EXPECT_EQ(h.step(T0 + 2ms), T0 + 300ms);
  h.step(T0 + 300ms);
  EXPECT_EQ(h.bytes(), "ab");
  EXPECT_EQ(h.out()[1].at, T0 + 300ms);
}

TEST(Latency, RemovalPassesEverythingHeldAtOnceInOrder) {
  Harness h(ToxicType::latency, {300, 50, 0}, 3);
  std::string sent;
  for (int i = 0; i < 20; ++i) {
    sent += "chunk" + std::to_string(i) + ";";
    h.data("chunk" + std::to_string(i) + ";", T0 + std::chrono::milliseconds(20 * i));
    h.step(T0 + std::chrono::milliseconds(20 * i));
  }
  h.terminal(EventKind::eof, T0 + 400ms);
  h.step(T0 + 400ms);
  h.flush(T0 + 401ms, true);
  EXPECT_EQ(h.bytes(), sent);
  EXPECT_EQ(h.out().back().kind, EventKind::eof);
}

TEST(Bandwidth, RateIsKilobytesPerSecondInHundredMillisecondPieces) {
  Harness h(ToxicType::bandwidth, {100, 0, 0});  // 100 KB/s = 100 bytes/ms; pieces of 10000 bytes
  h.data(std::string(25000, 'z'), T0);
  EXPECT_EQ(h.step(T0), T0 + 100ms);
  EXPECT_EQ(h.step(T0 + 100ms), T0 + 200ms);
  EXPECT_EQ(h.step(T0 + 200ms), T0 + 250ms);
  EXPECT_EQ(h.step(T0 + 250ms), kNever);
  ASSERT_EQ(h.out().size(), 3u);
  EXPECT_EQ(h.out()[0].bytes.size(), 10000u);
  EXPECT_EQ(h.out()[2].bytes.size(), 5000u);
  EXPECT_EQ(h.out()[2].at, T0 + 250ms);
  EXPECT_EQ(h.bytes(), std::string(25000, 'z'));
}

TEST(Bandwidth, ChunksQueueBehindEachOther) {
  Harness h(ToxicType::bandwidth, {1, 0, 0});  // 1 byte/ms
  h.data("aaaa", T0);
  h.data("bb", T0);
  h.step(T0 + 1s);
  ASSERT_EQ(h.out().size(), 2u);
  EXPECT_EQ(h.out()[0].at, T0 + 4ms);
  EXPECT_EQ(h.out()[1].at, T0 + 6ms);
}

TEST(Bandwidth, ZeroOrNegativeRatePassesThrough) {
  Harness h(ToxicType::bandwidth, {-3, 0, 0});
  h.data("abc", T0);
  EXPECT_EQ(h.step(T0), kNever);
  EXPECT_EQ(h.bytes(), "abc");
}

TEST(Bandwidth, FlushMidChunkKeepsOnlyTheUnsentRest) {
  Harness h(ToxicType::bandwidth, {1, 0, 0});  // pieces of 100 bytes, 100 ms each
  std::string payload(300, 'a');
  std::iota(payload.begin(), payload.end(), 'a');
  h.data(payload, T0);
  h.step(T0 + 100ms);
  ASSERT_EQ(h.out().size(), 1u);
  h.flush(T0 + 120ms, true);
  EXPECT_EQ(h.bytes(), payload);
}

TEST(Bandwidth, UpdateMidChunkKeepsEveryByteInOrder) {
  Harness h(ToxicType::bandwidth, {1, 0, 0});  // 1 byte/ms, pieces of 100 bytes
  std::string payload(1000, 'a');
  std::iota(payload.begin(), payload.end(), 'a');
  h.data(payload.substr(0, 600), T0);
  h.data(payload.substr(600), T0 + 1ms);
  EXPECT_EQ(h.step(T0 + 150ms), T0 + 200ms);
  h.stage().update({5, 0, 0}, T0 + 150ms);  // the rest of the chunk goes on at 5 bytes/ms from now
  EXPECT_EQ(h.step(T0 + 150ms), T0 + 250ms);
  h.step(T0 + 10s);
  EXPECT_EQ(h.bytes(), payload);
  for (std::size_t i = 1; i < h.out().size(); ++i)
    EXPECT_GE(h.out()[i].at, h.out()[i - 1].at);
}

TEST(SlowClose, UpdateKeepsWhenTheEndArrived) {
  Harness h(ToxicType::slow_close, {500, 0, 0});
  h.terminal(EventKind::eof, T0);
  EXPECT_EQ(h.step(T0), T0 + 500ms);
  h.stage().update({200, 0, 0}, T0 + 100ms);
  EXPECT_EQ(h.step(T0 + 100ms), T0 + 200ms);
}

TEST(SlowClose, DelaysTheEndOnly) {
  Harness h(ToxicType::slow_close, {500, 0, 0});
  h.data("x", T0);
  h.terminal(EventKind::eof, T0 + 10ms);
  EXPECT_EQ(h.step(T0 + 10ms), T0 + 510ms);
  ASSERT_EQ(h.out().size(), 1u);
  EXPECT_EQ(h.step(T0 + 510ms), kNever);
  ASSERT_EQ(h.out().size(), 2u);
  EXPECT_EQ(h.out()[1].kind, EventKind::eof);
}

TEST(SlowClose, RemovalLetsTheEndThroughAtOnce) {
  Harness h(ToxicType::slow_close, {500, 0, 0});
  h.terminal(EventKind::eof, T0);
  h.step(T0);
  h.flush(T0 + 1ms, true);
  ASSERT_EQ(h.out().size(), 1u);
  EXPECT_EQ(h.out()[0].kind, EventKind::eof);
}

TEST(Timeout, ZeroSwallowsDataForever) {
  Harness h(ToxicType::timeout, {0, 0, 0});
  h.stage().activate(T0);
  h.data("x", T0);
  h.terminal(EventKind::eof, T0);
  EXPECT_EQ(h.step(T0 + 1h), kNever);
  EXPECT_TRUE(h.out().empty());
}

TEST(Timeout, ClosesAfterQuietPeriodRestartedByEachChunk) {
  Harness h(ToxicType::timeout, {500, 0, 0});
  h.stage().activate(T0);
  EXPECT_EQ(h.step(T0), T0 + 500ms);
  h.data("x", T0 + 300ms);
  EXPECT_EQ(h.step(T0 + 300ms), T0 + 800ms);
  EXPECT_EQ(h.step(T0 + 800ms), kNever);
  ASSERT_EQ(h.out().size(), 1u);
  EXPECT_EQ(h.out()[0].kind, EventKind::close);
  EXPECT_EQ(h.out()[0].at, T0 + 800ms);
}

TEST(Timeout, RemovalClosesButDeactivationDoesNot) {
  Harness removed(ToxicType::timeout, {0, 0, 0});
  removed.stage().activate(T0);
  removed.data("x", T0);
  removed.step(T0);
  removed.flush(T0 + 1s, true);
  ASSERT_EQ(removed.out().size(), 1u);
  EXPECT_EQ(removed.out()[0].kind, EventKind::close);

  Harness deactivated(ToxicType::timeout, {0, 0, 0});
  deactivated.stage().activate(T0);
  deactivated.flush(T0 + 1s, false);
  EXPECT_TRUE(deactivated.out().empty());
}

TEST(Timeout, DeactivationPassesAHeldEnd) {
  Harness h(ToxicType::timeout, {0, 0, 0});
  h.stage().activate(T0);
  h.data("swallowed", T0);
  h.terminal(EventKind::eof, T0 + 1ms);
  h.step(T0 + 1ms);
  EXPECT_TRUE(h.out().empty());
  h.flush(T0 + 2ms, false);
  ASSERT_EQ(h.out().size(), 1u);
  EXPECT_EQ(h.out()[0].kind, EventKind::eof);
}

TEST(Timeout, UpdateRestartsTheQuietPeriod) {
  Harness h(ToxicType::timeout, {500, 0, 0});
  h.stage().activate(T0);
  EXPECT_EQ(h.step(T0 + 400ms), T0 + 500ms);
  h.stage().update({300, 0, 0}, T0 + 450ms);
  EXPECT_EQ(h.step(T0 + 450ms), T0 + 750ms);
  EXPECT_TRUE(h.out().empty());
}

TEST(ResetPeer, ResetsTimeoutAfterFirstDataAndDropsIt) {
  Harness h(ToxicType::reset_peer, {300, 0, 0});
  EXPECT_EQ(h.step(T0), kNever);  // nothing happens before data
  h.data("x", T0 + 1s);
  EXPECT_EQ(h.step(T0 + 1s), T0 + 1300ms);
  h.data("y", T0 + 1100ms);
  EXPECT_EQ(h.step(T0 + 1300ms), kNever);
  ASSERT_EQ(h.out().size(), 1u);
  EXPECT_EQ(h.out()[0].kind, EventKind::reset);
}

// The catalog's case: a PING every 20 ms, reset_peer 300 added, removed before it fires. Every byte
// the toxic held passes on, in order, and no reset follows.
TEST(ResetPeer, RemovalBeforeItFiresPassesEverythingHeldInOrder) {
  for (bool removed : {true, false}) {  // removal, or deactivation by a toxicity update
    Harness h(ToxicType::reset_peer, {300, 0, 0});
    std::string sent;
    for (int i = 0; i < 10; ++i) {
      const std::string pong = "+PONG" + std::to_string(i) + "\r\n";
      sent += pong;
      const TimePoint t = T0 + std::chrono::milliseconds(20 * i);
      h.data(pong, t);
      EXPECT_EQ(h.step(t), T0 + 300ms) << i;
    }
    EXPECT_TRUE(h.out().empty());
    h.flush(T0 + 250ms, removed);
    EXPECT_EQ(h.bytes(), sent);
    for (const auto& o : h.out())
      EXPECT_EQ(o.kind, EventKind::data);
  }
}

TEST(ResetPeer, HeldEndPassesOnRemoval) {
  Harness h(ToxicType::reset_peer, {300, 0, 0});
  h.data("x", T0);
  h.terminal(EventKind::eof, T0 + 1ms);
  h.step(T0 + 2ms);
  h.flush(T0 + 3ms, true);
  ASSERT_EQ(h.out().size(), 2u);
  EXPECT_EQ(h.out()[0].bytes, "x");
  EXPECT_EQ(h.out()[1].kind, EventKind::eof);
}

TEST(ResetPeer, UpdateKeepsTheCountdownStart) {
  Harness h(ToxicType::reset_peer, {300, 0, 0});
  h.data("x", T0);
  EXPECT_EQ(h.step(T0), T0 + 300ms);
  h.stage().update({100, 0, 0}, T0 + 50ms);
  EXPECT_EQ(h.step(T0 + 50ms), T0 + 100ms);
  h.stage().update({1000, 0, 0}, T0 + 60ms);
  EXPECT_EQ(h.step(T0 + 100ms), T0 + 1000ms);
  EXPECT_TRUE(h.out().empty());
  EXPECT_EQ(h.step(T0 + 1000ms), kNever);
  ASSERT_EQ(h.out().size(), 1u);
  EXPECT_EQ(h.out()[0].kind, EventKind::reset);
  EXPECT_EQ(h.out()[0].at, T0 + 1000ms);
}

TEST(ResetPeer, AfterReactivationCountsFromTheNextEvent) {
  Harness h(ToxicType::reset_peer, {300, 0, 0});
  h.data("a", T0);
  h.step(T0);
  h.flush(T0 + 100ms, false);
  EXPECT_EQ(h.bytes(), "a");
  h.stage().activate(T0 + 500ms);
  EXPECT_EQ(h.step(T0 + 500ms), kNever);
  h.data("b", T0 + 600ms);
  EXPECT_EQ(h.step(T0 + 600ms), T0 + 900ms);
}

TEST(ResetPeer, ZeroTimeoutResetsAtOnce) {
  Harness h(ToxicType::reset_peer, {0, 0, 0});
  h.data("x", T0);
  EXPECT_EQ(h.step(T0), kNever);
  ASSERT_EQ(h.out().size(), 1u);
  EXPECT_EQ(h.out()[0].kind, EventKind::reset);
}

TEST(Slicer, MatchesToxiproxysHalvingForTheTranscriptCase) {
  // Toxiproxy 2.12, average 10, variation 0, 100 bytes: recv sizes 6,6,6,7 repeated 4 times.
  std::mt19937_64 rng(1);
  auto off = slice_offsets(100, 10, 0, rng);
  std::vector<std::size_t> sizes;
  for (std::size_t i = 0; i + 1 < off.size(); i += 2)
    sizes.push_back(off[i + 1] - off[i]);
  std::vector<std::size_t> expect;
  for (int i = 0; i < 4; ++i)
    expect.insert(expect.end(), {6, 6, 6, 7});
  EXPECT_EQ(sizes, expect);
}

TEST(Slicer, SlicesAreDelayedAndComplete) {
  Harness h(ToxicType::slicer, {10, 3, 1000}, 99);
  std::string payload;
  for (int i = 0; i < 1000; ++i)
    payload += static_cast<char>('a' + i % 26);
  h.data(payload, T0);
  h.step(T0);
  EXPECT_EQ(h.out().size(), 1u);
  h.step(T0 + 1s);
  EXPECT_EQ(h.bytes(), payload);
  for (std::size_t i = 0; i < h.out().size(); ++i) {
    EXPECT_EQ(h.out()[i].at, T0 + std::chrono::microseconds(1000) * static_cast<int>(i));
    EXPECT_GE(h.out()[i].bytes.size(), 1u);
    EXPECT_LE(h.out()[i].bytes.size(), 16u);
  }
}

TEST(Slicer, DegenerateAttributesTerminate) {
  for (Attributes a :
       {Attributes{0, 0, 0}, Attributes{-5, -5, -5}, Attributes{3, 100, 0}, Attributes{1, 1, 0}}) {
    Harness h(ToxicType::slicer, a);
    h.data("0123456789abcdef", T0);
    h.step(T0);
    EXPECT_EQ(h.bytes(), "0123456789abcdef");
  }
}

TEST(Slicer, FlushMidChunkKeepsOnlyTheUnsentRest) {
  Harness h(ToxicType::slicer, {2, 0, 1000});
  h.data("abcdefgh", T0);
  h.step(T0 + 1ms);
  h.flush(T0 + 1500us, true);
  EXPECT_EQ(h.bytes(), "abcdefgh");
}

TEST(Slicer, UpdateKeepsTheNextSliceDueAndEveryByte) {
  Harness h(ToxicType::slicer, {2, 0, 1000});  // 2-byte slices 1 ms apart
  h.data("abcdefghij", T0);
  EXPECT_EQ(h.step(T0 + 1ms), T0 + 2ms);
  h.stage().update({5, 0, 10000}, T0 + 1500us);
  EXPECT_EQ(h.step(T0 + 1500us), T0 + 2ms);  // the slice due next keeps its time
  EXPECT_EQ(h.step(T0 + 2ms), T0 + 12ms);    // then the new delay
  h.data("klmnopqrst", T0 + 3ms);            // a new chunk: new sizes
  h.step(T0 + 1s);
  EXPECT_EQ(h.bytes(), "abcdefghijklmnopqrst");
  EXPECT_EQ(h.out().back().bytes.size(), 5u);
}

TEST(LimitData, PassesExactlyTheLimitThenCloses) {
  Harness h(ToxicType::limit_data, {10, 0, 0});
  h.data("aaaaaaaa", T0);
  h.data("bbbbbbbb", T0);
  h.data("cccc", T0);
  h.step(T0);
  EXPECT_EQ(h.bytes(), "aaaaaaaabb");
  ASSERT_EQ(h.out().size(), 3u);
  EXPECT_EQ(h.out()[2].kind, EventKind::close);
}

TEST(LimitData, CountIsKeptAcrossUpdates) {
  Harness h(ToxicType::limit_data, {10, 0, 0});
  h.data("aaaaaa", T0);
  h.step(T0);
  h.stage().update({8, 0, 0}, T0);
  h.data("bbbbbb", T0);
  h.step(T0);
  EXPECT_EQ(h.bytes(), "aaaaaabb");
  EXPECT_EQ(h.out().back().kind, EventKind::close);
}

TEST(LimitData, ZeroClosesAtFirstData) {
  Harness h(ToxicType::limit_data, {0, 0, 0});
  EXPECT_EQ(h.step(T0), kNever);
  EXPECT_TRUE(h.out().empty());
  h.data("x", T0);
  h.step(T0);
  ASSERT_EQ(h.out().size(), 1u);
  EXPECT_EQ(h.out()[0].kind, EventKind::close);
}

TEST(LimitData, RaisedLimitLetsTheRestThroughInOrder) {
  Harness h(ToxicType::limit_data, {100, 0, 0});
  h.data("aaaa", T0);
  h.step(T0);
  h.stage().update({1000, 0, 0}, T0 + 1ms);
  h.data("bbbb", T0 + 2ms);
  h.step(T0 + 2ms);
  h.flush(T0 + 3ms, true);
  EXPECT_EQ(h.bytes(), "aaaabbbb");
  for (const auto& o : h.out())
    EXPECT_EQ(o.kind, EventKind::data);
}

TEST(Noop, PassesEverything) {
  Harness h(ToxicType::noop, {});
  h.data("a", T0);
  h.terminal(EventKind::eof, T0);
  h.step(T0);
  ASSERT_EQ(h.out().size(), 2u);
}

TEST(Registry, KnowsEveryToxiproxyType) {
  for (auto name :
       {"latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data", "noop"}) {
    const auto* t = find_toxic_type(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(&toxic_type_info(t->type), t);
  }
  EXPECT_EQ(find_toxic_type("nosuch"), nullptr);
  EXPECT_EQ(find_toxic_type("LATENCY"), nullptr);
}

}  // namespace
}  // namespace faultproxy
