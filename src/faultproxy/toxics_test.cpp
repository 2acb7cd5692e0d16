#include "faultproxy/toxics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <thread>

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

// ---- faultproxy's own toxics and attributes ----------------------------------------------------

Attributes with(ToxicType type, std::initializer_list<std::pair<std::size_t, AttributeValue>> values) {
  Attributes a = default_attributes(type);
  for (const auto& [i, v] : values)
    a[i] = v;
  return a;
}

TEST(PacketLoss, DropsWholeChunksAtTheRateAndPassesTheEnd) {
  Harness none(ToxicType::packet_loss, with(ToxicType::packet_loss, {{0, 0.0}}));
  Harness all(ToxicType::packet_loss, with(ToxicType::packet_loss, {{0, 1.0}}));
  Harness some(ToxicType::packet_loss, with(ToxicType::packet_loss, {{0, 0.2}}), 3);
  for (int i = 0; i < 10'000; ++i) {
    const std::string chunk = "<" + std::to_string(i) + ">";
    none.data(chunk, T0);
    all.data(chunk, T0);
    some.data(chunk, T0);
  }
  for (Harness* h : {&none, &all, &some}) {
    h->terminal(EventKind::eof, T0);
    EXPECT_EQ(h->step(T0), kNever);
    EXPECT_EQ(h->out().back().kind, EventKind::eof);
  }
  EXPECT_EQ(none.out().size(), 10'001u);
  EXPECT_EQ(all.out().size(), 1u);
  const double kept = static_cast<double>(some.out().size() - 1) / 10'000;
  EXPECT_NEAR(kept, 0.8, 0.03);
  // What passes is whole chunks, in order, unchanged.
  int last = -1;
  for (std::size_t i = 0; i + 1 < some.out().size(); ++i) {
    const std::string& b = some.out()[i].bytes;
    const int n = std::stoi(b.substr(1));
    EXPECT_EQ(b, "<" + std::to_string(n) + ">");
    EXPECT_GT(n, last);
    last = n;
  }
}

TEST(PacketLoss, CorrelationMakesLossesComeInBursts) {
  Harness h(ToxicType::packet_loss, with(ToxicType::packet_loss, {{0, 0.1}, {1, 0.8}}), 5);
  constexpr int kChunks = 20'000;
  for (int i = 0; i < kChunks; ++i)
    h.data(std::to_string(i), T0);
  h.step(T0);
  std::vector<bool> dropped(kChunks, true);
  for (const auto& o : h.out())
    dropped[static_cast<std::size_t>(std::stoi(o.bytes))] = false;
  int drops = 0, after_drop = 0, drop_after_drop = 0;
  for (int i = 0; i < kChunks; ++i) {
    drops += dropped[i];
    if (i > 0 && dropped[i - 1]) {
      ++after_drop;
      drop_after_drop += dropped[i];
    }
  }
  // Right after a drop: 0.1 + 0.8; otherwise 0.1.
  EXPECT_NEAR(static_cast<double>(drop_after_drop) / after_drop, 0.9, 0.03);
  EXPECT_GT(drops, kChunks / 3);  // stationary: 0.1 / (1 - 0.9 + 0.1) = 0.5
}

TEST(PacketLoss, SameSeedSameDrops) {
  auto run = [](std::uint64_t seed) {
    Harness h(ToxicType::packet_loss, default_attributes(ToxicType::packet_loss), seed);
    for (int i = 0; i < 500; ++i)
      h.data(std::to_string(i) + ",", T0);
    h.step(T0);
    return h.bytes();
  };
  EXPECT_EQ(run(11), run(11));
  EXPECT_NE(run(11), run(12));
}

// One-segment chunks an hour apart: each one's delay is its own stall.
std::vector<std::chrono::milliseconds> tcp_loss_stalls(const Attributes& a, int chunks, std::uint64_t seed) {
  Harness h(ToxicType::tcp_loss, a, seed);
  for (int i = 0; i < chunks; ++i)
    h.data("x", T0 + std::chrono::hours(i));
  h.step(T0 + std::chrono::hours(chunks + 1));
  std::vector<std::chrono::milliseconds> stalls;
  for (int i = 0; i < chunks; ++i)
    stalls.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(
        h.out()[static_cast<std::size_t>(i)].at - (T0 + std::chrono::hours(i))));
  return stalls;
}

TEST(TcpLoss, LossesAreStallsOfTheRtoDoublingWithinABurst) {
  const auto stalls =
      tcp_loss_stalls(with(ToxicType::tcp_loss, {{0, 0.05}, {1, 3.0}, {2, std::int64_t{200}}}), 40'000, 9);
  int lost = 0, bursts = 0, in_a_row = 0;
  for (const auto s : stalls) {
    if (s.count() == 0) {
      in_a_row = 0;
      continue;
    }
    ++lost;
    if (in_a_row == 0) ++bursts;
    // 200, 400, 800, ... ms, capped at Linux's TCP_RTO_MAX (120 s).
    EXPECT_EQ(s.count(), std::min<std::int64_t>(std::int64_t{200} << std::min(in_a_row, 20), 120'000))
        << "loss " << in_a_row + 1 << " of a burst";
    ++in_a_row;
  }
  EXPECT_NEAR(static_cast<double>(lost) / 40'000, 0.05, 0.01);  // loss_rate
  EXPECT_NEAR(static_cast<double>(lost) / bursts, 3.0, 0.4);    // burst: mean losses in a row
}

TEST(TcpLoss, NothingIsLostAndOrderIsKept) {
  Harness h(ToxicType::tcp_loss, with(ToxicType::tcp_loss, {{0, 0.3}, {1, 1.0}}), 4);
  std::string sent;
  for (int i = 0; i < 300; ++i) {
    const std::string chunk(1 + static_cast<std::size_t>(i * 37 % 5000), static_cast<char>('a' + i % 26));
    sent += chunk;
    h.data(chunk, T0 + std::chrono::milliseconds(i));
  }
  h.terminal(EventKind::eof, T0 + 300ms);
  TimePoint t = T0;
  while ((t = h.step(t)) != kNever) {
  }
  EXPECT_EQ(h.bytes(), sent);
  EXPECT_EQ(h.out().back().kind, EventKind::eof);
  for (std::size_t i = 1; i < h.out().size(); ++i)
    EXPECT_GE(h.out()[i].at, h.out()[i - 1].at);  // a stall holds everything behind it
  // 30% of segments lost: chunks are held for the RTO (200 ms, doubled in a row) or behind one.
  int held = 0;
  for (std::size_t i = 0; i < 300; ++i)
    held += h.out()[i].at >= T0 + std::chrono::milliseconds(i) + 200ms;
  EXPECT_GT(held, 100);
}

TEST(TcpLoss, BigChunksAreManySegments) {
  // 1% per segment: a 64 KiB chunk (46 segments) stalls far more often than a 100-byte one.
  int big = 0, small = 0;
  Harness hb(ToxicType::tcp_loss, default_attributes(ToxicType::tcp_loss), 2);
  Harness hs(ToxicType::tcp_loss, default_attributes(ToxicType::tcp_loss), 2);
  for (int i = 0; i < 2000; ++i) {
    hb.data(std::string(65536, 'b'), T0 + std::chrono::hours(i));
    hs.data(std::string(100, 's'), T0 + std::chrono::hours(i));
  }
  hb.step(T0 + std::chrono::hours(3000));
  hs.step(T0 + std::chrono::hours(3000));
  for (int i = 0; i < 2000; ++i) {
    big += hb.out()[static_cast<std::size_t>(i)].at != T0 + std::chrono::hours(i);
    small += hs.out()[static_cast<std::size_t>(i)].at != T0 + std::chrono::hours(i);
  }
  EXPECT_NEAR(big / 2000.0, 1 - std::pow(0.99, 46), 0.05);
  EXPECT_NEAR(small / 2000.0, 0.01, 0.01);
}

TEST(TcpLoss, RemovalReleasesEverythingHeld) {
  Harness h(ToxicType::tcp_loss, with(ToxicType::tcp_loss, {{0, 0.5}, {1, 1.0}, {2, std::int64_t{100'000}}}),
            1);
  for (int i = 0; i < 50; ++i)
    h.data("c" + std::to_string(i), T0);
  h.step(T0);
  h.flush(T0 + 1ms, true);
  std::string want;
  for (int i = 0; i < 50; ++i)
    want += "c" + std::to_string(i);
  EXPECT_EQ(h.bytes(), want);
}

TEST(Corrupt, FlipsOneBitOfBytesAtTheRate) {
  const std::string data(1 << 20, '\x5a');
  Harness h(ToxicType::corrupt, with(ToxicType::corrupt, {{0, 0.01}}), 8);
  for (std::size_t off = 0; off < data.size(); off += 32 * 1024)
    h.data(data.substr(off, 32 * 1024), T0);
  h.terminal(EventKind::eof, T0);
  h.step(T0);
  const std::string got = h.bytes();
  ASSERT_EQ(got.size(), data.size());
  std::size_t flipped = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const unsigned diff = static_cast<unsigned char>(got[i] ^ data[i]);
    if (diff == 0) continue;
    ++flipped;
    EXPECT_EQ(diff & (diff - 1), 0u) << "more than one bit flipped at " << i;
  }
  EXPECT_NEAR(static_cast<double>(flipped) / static_cast<double>(data.size()), 0.01, 0.001);
  EXPECT_EQ(h.out().back().kind, EventKind::eof);
}

TEST(Corrupt, RateZeroAndOne) {
  Harness zero(ToxicType::corrupt, with(ToxicType::corrupt, {{0, 0.0}}));
  Harness one(ToxicType::corrupt, with(ToxicType::corrupt, {{0, 1.0}}));
  zero.data("abcdef", T0);
  one.data("abcdef", T0);
  zero.step(T0);
  one.step(T0);
  EXPECT_EQ(zero.bytes(), "abcdef");
  const std::string o = one.bytes();
  ASSERT_EQ(o.size(), 6u);
  for (std::size_t i = 0; i < 6; ++i)
    EXPECT_NE(o[i], "abcdef"[i]);
}

// Latency's distribution: the delays (ms) of many chunks read an hour apart (so that none waits
// for the one before it).
std::vector<double> latency_delays(const std::string& distribution, std::int64_t latency,
                                   std::int64_t jitter) {
  Harness h(ToxicType::latency, {latency, jitter, distribution}, 21);
  constexpr int kChunks = 20'000;
  for (int i = 0; i < kChunks; ++i)
    h.data("x", T0 + std::chrono::hours(i));
  h.step(T0 + std::chrono::hours(kChunks + 1));
  std::vector<double> d;
  for (int i = 0; i < kChunks; ++i)
    d.push_back(std::chrono::duration<double, std::milli>(h.out()[static_cast<std::size_t>(i)].at -
                                                          (T0 + std::chrono::hours(i)))
                    .count());
  return d;
}

double mean(const std::vector<double>& v) {
  return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

double stddev(const std::vector<double>& v) {
  const double m = mean(v);
  double s = 0;
  for (double x : v)
    s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size()));
}

TEST(LatencyDistribution, NormalHasTheLatencyAsMeanAndTheJitterAsStandardDeviation) {
  const auto d = latency_delays("normal", 100, 10);
  EXPECT_NEAR(mean(d), 100, 0.5);
  EXPECT_NEAR(stddev(d), 10, 0.5);
  EXPECT_GE(*std::min_element(d.begin(), d.end()), 100 - 4 * 10);  // netem's tables stop at 4 jitters
  EXPECT_LE(*std::max_element(d.begin(), d.end()), 100 + 4 * 10);
}

TEST(LatencyDistribution, ParetoHasALongRightTail) {
  for (const std::string dist : {"pareto", "paretonormal"}) {
    auto d = latency_delays(dist, 100, 10);
    std::sort(d.begin(), d.end());
    const double median = d[d.size() / 2];
    EXPECT_NEAR(mean(d), 100, 1.0) << dist;  // netem's tables have mean 0
    EXPECT_LT(median, mean(d)) << dist;      // skewed right
    EXPECT_GT(d.back() - 100, 100 - d.front()) << dist;
    EXPECT_LE(d.back(), 100 + 4 * 10 + 0.01) << dist;
  }
  const auto p = latency_delays("pareto", 100, 10);
  EXPECT_GE(*std::min_element(p.begin(), p.end()), 100 - 10 * 2.0 / 3 - 0.01);  // Pareto's minimum
}

TEST(LatencyDistribution, UniformIsToxiproxysAndZeroJitterIsExact) {
  // "uniform" is what latency always did: the same draws for the same seed.
  Harness a(ToxicType::latency, {100, 20}, 7), b(ToxicType::latency, {100, 20, std::string("uniform")}, 7);
  for (int i = 0; i < 100; ++i) {
    a.data("x", T0);
    b.data("x", T0);
  }
  a.step(T0 + 1h);
  b.step(T0 + 1h);
  for (std::size_t i = 0; i < 100; ++i)
    EXPECT_EQ(a.out()[i].at, b.out()[i].at);
  for (const std::string dist : {"normal", "pareto", "paretonormal"}) {
    const auto d = latency_delays(dist, 50, 0);
    EXPECT_EQ(*std::min_element(d.begin(), d.end()), 50);
    EXPECT_EQ(*std::max_element(d.begin(), d.end()), 50);
  }
}

TEST(BandwidthPerProxy, ConnectionsShareTheRate) {
  auto shared = std::make_shared<SharedSchedule>();
  const Attributes a = {std::int64_t{10}, true};  // 10 KB/s = 10 bytes/ms, for the whole proxy
  struct Link {
    std::unique_ptr<Stage> stage;
    EventQueue in;
    TimePoint done{};
  };
  std::vector<Link> ls(3);
  for (auto& l : ls) {
    l.stage = make_stage(ToxicType::bandwidth, a, 1, shared);
    l.in.push_back(Event::data(std::string(500, 'x'), T0));
  }
  for (TimePoint now = T0; now <= T0 + 300ms; now += 1ms)
    for (auto& l : ls)
      l.stage->step(l.in, now, [&](Event&&, TimePoint at) { l.done = at; });
  // 1500 bytes at 10 bytes/ms: the three finish at 50, 100 and 150 ms, not all at 50.
  std::vector<TimePoint> done = {ls[0].done, ls[1].done, ls[2].done};
  std::sort(done.begin(), done.end());
  EXPECT_EQ(done[0], T0 + 50ms);
  EXPECT_EQ(done[1], T0 + 100ms);
  EXPECT_EQ(done[2], T0 + 150ms);
  // Without per_proxy each connection has the rate to itself.
  Harness alone(ToxicType::bandwidth, {std::int64_t{10}, false});
  alone.data(std::string(500, 'x'), T0);
  EXPECT_EQ(alone.step(T0), T0 + 50ms);
}

TEST(BandwidthPerProxy, TheScheduleHandsOutDisjointSlotsAcrossThreads) {
  SharedSchedule schedule;
  constexpr int kThreads = 4, kEach = 5000;
  std::vector<std::vector<TimePoint>> ends(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i)
    threads.emplace_back([&, i] {
      for (int k = 0; k < kEach; ++k)
        ends[static_cast<std::size_t>(i)].push_back(schedule.reserve(T0, 1us));
    });
  for (auto& t : threads)
    t.join();
  // Every slot is 1 us and they are back to back from T0: the ends are T0 + 1..N us, each once.
  std::vector<TimePoint> all;
  for (const auto& e : ends)
    all.insert(all.end(), e.begin(), e.end());
  std::sort(all.begin(), all.end());
  for (std::size_t k = 0; k < all.size(); ++k)
    ASSERT_EQ(all[k], T0 + std::chrono::microseconds(k + 1));
}

TEST(BandwidthPerProxy, SwitchingModesMidChunkKeepsEveryByte) {
  auto shared = std::make_shared<SharedSchedule>();
  auto stage = make_stage(ToxicType::bandwidth, {std::int64_t{1}, true}, 1, shared);  // 100-byte pieces
  EventQueue in;
  std::string sent;
  for (int i = 0; i < 5; ++i) {
    sent += std::string(250, static_cast<char>('a' + i));
    in.push_back(Event::data(std::string(250, static_cast<char>('a' + i)), T0));
  }
  std::string got;
  const Emitter out = [&](Event&& e, TimePoint) { got += e.bytes; };
  TimePoint now = T0;
  for (int round = 0; round < 4000 && got.size() < sent.size(); ++round) {
    now += 7ms;
    if (round % 17 == 0) stage->update({std::int64_t{1}, round % 34 == 0}, now);
    stage->step(in, now, out);
  }
  EXPECT_EQ(got, sent);
}

TEST(Validation, RangesAndNames) {
  EXPECT_EQ(validate_attributes(ToxicType::latency, default_attributes(ToxicType::latency)), std::nullopt);
  EXPECT_EQ(validate_attributes(ToxicType::latency, {100, 10, std::string("gauss")}),
            "distribution: not one of uniform, normal, pareto, paretonormal: gauss");
  EXPECT_EQ(validate_attributes(ToxicType::packet_loss, with(ToxicType::packet_loss, {{0, 1.5}})),
            "loss_rate: not between 0 and 1: 1.5");
  EXPECT_EQ(validate_attributes(ToxicType::packet_loss, with(ToxicType::packet_loss, {{1, -0.1}})),
            "correlation: not between 0 and 1: -0.1");
  EXPECT_EQ(validate_attributes(ToxicType::tcp_loss, with(ToxicType::tcp_loss, {{1, 0.5}})),
            "burst: less than 1: 0.5");
  EXPECT_EQ(validate_attributes(ToxicType::tcp_loss, with(ToxicType::tcp_loss, {{0, 0.6}})),
            "loss_rate: at most 0.5 with burst 1: 0.6");
  EXPECT_EQ(validate_attributes(ToxicType::tcp_loss, with(ToxicType::tcp_loss, {{0, 0.6}, {1, 2.0}})),
            std::nullopt);
  EXPECT_EQ(validate_attributes(ToxicType::tcp_loss, with(ToxicType::tcp_loss, {{2, std::int64_t{-1}}})),
            "rto_ms: less than 0: -1");
  EXPECT_EQ(validate_attributes(ToxicType::corrupt, with(ToxicType::corrupt, {{0, 2.0}})),
            "rate: not between 0 and 1: 2");
  EXPECT_EQ(validate_attributes(ToxicType::slow_open, with(ToxicType::slow_open, {{0, std::int64_t{-5}}})),
            "delay: less than 0: -5");
  // Toxiproxy's toxics take any integer, as Toxiproxy does.
  EXPECT_EQ(validate_attributes(ToxicType::timeout, {-5}), std::nullopt);
}

TEST(Registry, KnowsOurTypesWithTheirDefaults) {
  for (auto name : {"packet_loss", "tcp_loss", "corrupt", "slow_open", "refuse"}) {
    const auto* t = find_toxic_type(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(&toxic_type_info(t->type), t);
  }
  EXPECT_EQ(default_attributes(ToxicType::packet_loss), (Attributes{0.1, 0.0}));
  EXPECT_EQ(default_attributes(ToxicType::tcp_loss), (Attributes{0.01, 1.0, std::int64_t{200}}));
  EXPECT_EQ(default_attributes(ToxicType::corrupt), (Attributes{0.0001}));
  EXPECT_EQ(default_attributes(ToxicType::slow_open), (Attributes{std::int64_t{1000}}));
  EXPECT_EQ(default_attributes(ToxicType::latency), (Attributes{0, 0, std::string("uniform")}));
  EXPECT_EQ(default_attributes(ToxicType::bandwidth), (Attributes{0, false}));
  EXPECT_EQ(find_toxic_type("slow_open")->scope, ToxicScope::connection);
  EXPECT_EQ(find_toxic_type("refuse")->scope, ToxicScope::listener);
  EXPECT_EQ(find_toxic_type("tcp_loss")->scope, ToxicScope::stream);
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
