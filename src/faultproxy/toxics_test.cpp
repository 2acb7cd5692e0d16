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
