#include "faultproxy/pipeline.h"

#include <gtest/gtest.h>

#include <optional>
#include <random>

namespace faultproxy {
namespace {

using namespace std::chrono_literals;

const TimePoint T0 = TimePoint{} + 1000s;

ToxicSpec spec(std::uint64_t id, std::string name, ToxicType type, Attributes a, float toxicity = 1.0f,
               std::uint64_t version = 1) {
  return ToxicSpec{id, version, std::move(name), type, toxicity, a};
}

// What the link's writer would write: data up to a close or reset (the link ends there).
std::string drain(Pipeline& p, std::vector<EventKind>* terminals = nullptr) {
  std::string s;
  bool ended = false;
  while (!p.output().empty()) {
    Event e = p.output().take_front();
    if (e.kind == EventKind::close || e.kind == EventKind::reset) ended = true;
    if (e.kind == EventKind::data) {
      if (!ended) s += e.bytes;
    } else if (terminals) {
      terminals->push_back(e.kind);
    }
  }
  return s;
}

TEST(Pipeline, WithoutToxicsEverythingPassesAtOnce) {
  Pipeline p(1);
  p.push(Event::data("abc", T0), T0);
  EXPECT_EQ(p.run(T0), kNever);
  EXPECT_EQ(drain(p), "abc");
  EXPECT_TRUE(p.idle());
}

TEST(Pipeline, StagesChainInOrder) {
  Pipeline p(1);
  p.apply({spec(1, "lat", ToxicType::latency, {100}), spec(2, "lim", ToxicType::limit_data, {4})}, T0);
  p.push(Event::data("abcdef", T0), T0);
  EXPECT_EQ(p.run(T0), T0 + 100ms);
  EXPECT_EQ(p.buffered_bytes(), 6u);
  p.run(T0 + 100ms);
  std::vector<EventKind> t;
  EXPECT_EQ(drain(p, &t), "abcd");
  EXPECT_EQ(t, std::vector<EventKind>{EventKind::close});
}

TEST(Pipeline, RemovingAStageFlushesWhatItHeldInOrder) {
  Pipeline p(1);
  p.apply({spec(1, "lat", ToxicType::latency, {1000})}, T0);
  p.push(Event::data("one,", T0), T0);
  p.push(Event::data("two,", T0 + 1ms), T0 + 1ms);
  p.run(T0 + 2ms);
  EXPECT_TRUE(p.output().empty());
  p.apply({}, T0 + 3ms);
  p.push(Event::data("three", T0 + 4ms), T0 + 4ms);
  p.run(T0 + 4ms);
  EXPECT_EQ(drain(p), "one,two,three");
  EXPECT_TRUE(p.idle());
}

TEST(Pipeline, UpdateKeepsHeldDataAndAppliesNewAttributesToNewData) {
  Pipeline p(1);
  p.apply({spec(1, "lat", ToxicType::latency, {100})}, T0);
  p.push(Event::data("a", T0), T0);
  p.run(T0);
  p.apply({spec(1, "lat", ToxicType::latency, {300}, 1.0f, 2)}, T0 + 10ms);
  p.push(Event::data("b", T0 + 20ms), T0 + 20ms);
  EXPECT_EQ(p.run(T0 + 20ms), T0 + 100ms);
  p.run(T0 + 100ms);
  EXPECT_EQ(drain(p), "a");
  EXPECT_EQ(p.run(T0 + 101ms), T0 + 320ms);
}

TEST(Pipeline, ToxicityIsDecidedOncePerConnectionAndToxic) {
  int affected = 0;
  for (std::uint64_t conn = 0; conn < 400; ++conn) {
    Pipeline p(mix64(conn));
    p.apply({spec(1, "lat", ToxicType::latency, {100}, 0.5f)}, T0);
    bool delayed_first = false;
    for (int i = 0; i < 5; ++i) {
      const TimePoint t = T0 + std::chrono::seconds(i);
      p.push(Event::data("x", t), t);
      p.run(t);
      const bool delayed = p.output().empty();
      if (i == 0) delayed_first = delayed;
      EXPECT_EQ(delayed, delayed_first) << "connection " << conn << " changed its mind";
      p.run(t + 200ms);
      drain(p);
    }
    affected += delayed_first ? 1 : 0;
  }
  EXPECT_GT(affected, 140);
  EXPECT_LT(affected, 260);
  EXPECT_EQ(toxicity_roll(42, "lat"), toxicity_roll(42, "lat"));
  EXPECT_NE(toxicity_roll(42, "lat"), toxicity_roll(43, "lat"));
}

// Toxiproxy #603: toxicity 0 never acts, on any connection, for any stream toxic.
TEST(Pipeline, ToxicityZeroNeverActs) {
  const ToxicType types[] = {ToxicType::latency,    ToxicType::bandwidth,   ToxicType::slow_close,
                             ToxicType::timeout,    ToxicType::reset_peer,  ToxicType::slicer,
                             ToxicType::limit_data, ToxicType::packet_loss, ToxicType::tcp_loss,
                             ToxicType::corrupt};
  for (std::uint64_t conn = 0; conn < 2000; ++conn) {
    Pipeline p(mix64(conn));
    int activations = 0;
    p.on_activation([&](const ToxicSpec&) { ++activations; });
    std::vector<ToxicSpec> toxics;
    for (std::size_t i = 0; i < std::size(types); ++i) {
      Attributes a = default_attributes(types[i]);
      if (types[i] == ToxicType::packet_loss) a[0] = 1.0;
      toxics.push_back(spec(i + 1, "t" + std::to_string(conn % 7) + std::to_string(i), types[i], a, 0.0f));
    }
    p.apply(toxics, T0);
    p.push(Event::data("payload", T0), T0);
    p.push(Event::terminal(EventKind::eof, T0), T0);
    EXPECT_EQ(p.run(T0), kNever);
    std::vector<EventKind> terminals;
    EXPECT_EQ(drain(p, &terminals), "payload") << "connection " << conn;
    EXPECT_EQ(terminals, std::vector<EventKind>{EventKind::eof});
    EXPECT_EQ(activations, 0);
    for (const auto& t : toxics)
      EXPECT_FALSE(p.acting(t.id));
  }
}

TEST(Pipeline, ToxicityUpdateMovesTheThresholdNotTheDice) {
  Pipeline p(7);
  p.apply({spec(1, "lat", ToxicType::latency, {100}, 0.0f)}, T0);
  p.push(Event::data("a", T0), T0);
  p.run(T0);
  EXPECT_EQ(drain(p), "a");
  p.apply({spec(1, "lat", ToxicType::latency, {100}, 1.0f, 2)}, T0 + 1ms);
  p.push(Event::data("b", T0 + 1ms), T0 + 1ms);
  p.run(T0 + 1ms);
  EXPECT_EQ(drain(p), "");
  p.apply({spec(1, "lat", ToxicType::latency, {100}, 0.0f, 3)}, T0 + 2ms);  // deactivation flushes
  p.run(T0 + 2ms);
  EXPECT_EQ(drain(p), "b");
}

TEST(Pipeline, TimeoutRemovalClosesOnlyWhereItWasActive) {
  Pipeline active(1), inactive(1);
  active.apply({spec(1, "t", ToxicType::timeout, {0}, 1.0f)}, T0);
  inactive.apply({spec(1, "t", ToxicType::timeout, {0}, 0.0f)}, T0);
  active.apply({}, T0 + 1s);
  inactive.apply({}, T0 + 1s);
  std::vector<EventKind> a, i;
  drain(active, &a);
  drain(inactive, &i);
  EXPECT_EQ(a, std::vector<EventKind>{EventKind::close});
  EXPECT_TRUE(i.empty());
}

TEST(Pipeline, ActivationsAreReported) {
  Pipeline p(1);
  std::vector<std::string> seen;
  p.on_activation([&](const ToxicSpec& s) { seen.push_back(s.name); });
  p.apply({spec(1, "on", ToxicType::noop, {}, 1.0f), spec(2, "off", ToxicType::noop, {}, 0.0f)}, T0);
  EXPECT_EQ(seen, std::vector<std::string>{"on"});
}

// The catalog's scenario on one link: the upstream answers a PING every 20 ms; reset_peer 300 is
// added and removed 50-310 ms later. Removed before it fired: every byte passes, in order, and the
// link lives on. Removed after: the link was reset, and what came out before is a prefix.
TEST(Pipeline, RemovingResetPeerBeforeItFiresLosesNoByte) {
  for (int phase = 0; phase < 20; phase += 7) {
    for (int remove_after = 50; remove_after <= 310; remove_after += 10) {
      Pipeline p(1);
      std::string sent, received;
      std::vector<EventKind> terminals;
      const TimePoint added = T0 + std::chrono::milliseconds(phase);
      bool removed = false;
      std::optional<TimePoint> first_after_add;
      for (int ms = 0; ms <= 700; ++ms) {
        const TimePoint now = T0 + std::chrono::milliseconds(ms);
        if (now == added) p.apply({spec(1, "rp", ToxicType::reset_peer, {300})}, now);
        if (now == added + std::chrono::milliseconds(remove_after)) {
          p.apply({}, now);
          removed = true;
        }
        if (ms % 20 == 0) {
          const std::string pong = "+PONG" + std::to_string(ms / 20) + "\r\n";
          sent += pong;
          if (now >= added && !first_after_add) first_after_add = now;
          p.push(Event::data(pong, now), now);
        }
        p.run(now);
        received += drain(p, &terminals);
        if (!terminals.empty()) break;
      }
      const bool fired_first = added + std::chrono::milliseconds(remove_after) >= *first_after_add + 300ms;
      if (fired_first) {
        EXPECT_FALSE(removed && terminals.empty());
        EXPECT_EQ(terminals, std::vector<EventKind>{EventKind::reset}) << phase << " " << remove_after;
        EXPECT_EQ(sent.compare(0, received.size(), received), 0);
      } else {
        EXPECT_TRUE(removed);
        EXPECT_TRUE(terminals.empty()) << phase << " " << remove_after;
        EXPECT_EQ(received, sent) << phase << " " << remove_after;
        EXPECT_TRUE(p.idle());
      }
    }
  }
}

// Data that reached a toxic before an update keeps the schedule it had (apply brings the chain up
// to date first), even if the link had not run since it arrived.
TEST(Pipeline, UpdateDoesNotRescheduleDataAlreadyInside) {
  Pipeline p(1);
  p.apply({spec(1, "lat", ToxicType::latency, {100})}, T0);
  p.push(Event::data("a", T0), T0);
  p.push(Event::data("b", T0 + 5ms), T0 + 5ms);  // no run() in between
  p.apply({spec(1, "lat", ToxicType::latency, {300}, 1.0f, 2)}, T0 + 10ms);
  EXPECT_EQ(p.run(T0 + 10ms), T0 + 100ms);
  p.run(T0 + 100ms);
  EXPECT_EQ(drain(p), "a");
  EXPECT_EQ(p.run(T0 + 101ms), T0 + 105ms);
  p.run(T0 + 105ms);
  EXPECT_EQ(drain(p), "b");
}

// A toxic whose time had come when it was removed acted first.
TEST(Pipeline, RemovalAfterTheDueTimeStillFires) {
  Pipeline p(1);
  p.apply({spec(1, "rp", ToxicType::reset_peer, {100})}, T0);
  p.push(Event::data("x", T0), T0);
  EXPECT_EQ(p.run(T0), T0 + 100ms);
  p.apply({}, T0 + 150ms);  // the timer had not run yet
  std::vector<EventKind> t;
  EXPECT_EQ(drain(p, &t), "");
  EXPECT_EQ(t, std::vector<EventKind>{EventKind::reset});
}

TEST(Pipeline, DeactivatedTimeoutPassesTheEndItHeld) {
  Pipeline p(1);
  p.apply({spec(1, "t", ToxicType::timeout, {0})}, T0);
  p.push(Event::data("swallowed", T0), T0);
  p.push(Event::terminal(EventKind::eof, T0 + 1ms), T0 + 1ms);
  p.run(T0 + 1ms);
  std::vector<EventKind> t;
  EXPECT_EQ(drain(p, &t), "");
  p.apply({spec(1, "t", ToxicType::timeout, {0}, 0.0f, 2)}, T0 + 2ms);
  p.run(T0 + 2ms);
  EXPECT_EQ(drain(p, &t), "");
  EXPECT_EQ(t, std::vector<EventKind>{EventKind::eof});
}

// Random adds, updates and removals of every toxic that holds or passes data (reset_peer and
// limit_data with bounds never reached, so that they hold and count without ending the link) while
// data flows: the output is exactly the input, in order, whatever the schedule.
TEST(Pipeline, LiveChangesNeverLoseDuplicateOrReorderBytes) {
  for (std::uint64_t trial = 0; trial < 60; ++trial) {
    std::mt19937_64 rng(trial);
    Pipeline p(trial);
    std::vector<ToxicSpec> toxics;
    std::uint64_t next_id = 1, version = 1;
    std::string sent, received;
    TimePoint now = T0;
    for (int step = 0; step < 400; ++step) {
      now += std::chrono::microseconds(rng() % 3000);
      const int action = static_cast<int>(rng() % 10);
      if (action < 5) {
        std::string chunk;
        const int n = 1 + static_cast<int>(rng() % 200);
        for (int i = 0; i < n; ++i)
          chunk += static_cast<char>('!' + (sent.size() + i) % 90);
        sent += chunk;
        p.push(Event::data(chunk, now), now);
      } else if (action < 7 && toxics.size() < 4) {
        // Every toxic that keeps the bytes (packet_loss and corrupt change them by design).
        const ToxicType types[] = {ToxicType::latency,    ToxicType::bandwidth, ToxicType::slicer,
                                   ToxicType::slow_close, ToxicType::noop,      ToxicType::reset_peer,
                                   ToxicType::limit_data, ToxicType::tcp_loss};
        const ToxicType t = types[rng() % std::size(types)];
        Attributes a = default_attributes(t);
        if (t == ToxicType::latency)
          a = {static_cast<std::int64_t>(rng() % 50), static_cast<std::int64_t>(rng() % 5),
               std::string(rng() % 2 ? "paretonormal" : "uniform")};
        if (t == ToxicType::tcp_loss) a = {0.2, 2.0, static_cast<std::int64_t>(rng() % 30)};
        if (t == ToxicType::bandwidth) a = {1 + static_cast<std::int64_t>(rng() % 100), 0, 0};
        if (t == ToxicType::slicer)
          a = {1 + static_cast<std::int64_t>(rng() % 20), static_cast<std::int64_t>(rng() % 5),
               static_cast<std::int64_t>(rng() % 2000)};
        if (t == ToxicType::slow_close) a = {static_cast<std::int64_t>(rng() % 50), 0, 0};
        if (t == ToxicType::reset_peer) a = {100'000 + static_cast<std::int64_t>(rng() % 1000), 0, 0};
        if (t == ToxicType::limit_data) a = {1'000'000 + static_cast<std::int64_t>(rng() % 1000), 0, 0};
        toxics.push_back(
            spec(next_id, "t" + std::to_string(next_id), t, a, (rng() % 4) ? 1.0f : 0.5f, ++version));
        ++next_id;
        p.apply(toxics, now);
      } else if (action < 8 && !toxics.empty()) {
        auto& t = toxics[rng() % toxics.size()];
        const auto v = static_cast<std::int64_t>(rng() % 40);
        if (t.type == ToxicType::tcp_loss) {
          t.attributes[2] = v;  // rto_ms
        } else {
          t.attributes[0] = t.type == ToxicType::reset_peer   ? 100'000 + v
                            : t.type == ToxicType::limit_data ? 1'000'000 + v
                            : t.type == ToxicType::bandwidth  ? 1 + v
                                                              : v;
        }
        t.toxicity = (rng() % 2) ? 1.0f : 0.0f;
        t.version = ++version;
        p.apply(toxics, now);
      } else if (action < 9 && !toxics.empty()) {
        toxics.erase(toxics.begin() + static_cast<std::ptrdiff_t>(rng() % toxics.size()));
        p.apply(toxics, now);
      }
      p.run(now);
      std::vector<EventKind> terminals;
      received += drain(p, &terminals);
      EXPECT_TRUE(terminals.empty()) << "trial " << trial << " step " << step;
      EXPECT_EQ(received.size() + p.buffered_bytes(), sent.size()) << "trial " << trial << " step " << step;
      EXPECT_EQ(sent.compare(0, received.size(), received), 0) << "trial " << trial << " step " << step;
    }
    toxics.clear();
    p.apply(toxics, now);
    p.run(now);
    received += drain(p);
    EXPECT_EQ(received, sent) << "trial " << trial;
    EXPECT_TRUE(p.idle());
  }
}

// ---- client_cidr: toxics_for_client and the chain it feeds -------------------------------------

ToxicSpec for_net(ToxicSpec s, std::string_view cidr) {
  s.client_cidr = Cidr::parse(cidr);
  EXPECT_TRUE(s.client_cidr) << cidr;
  return s;
}

const std::optional<IpAddress> kClient1 = IpAddress::parse("127.0.1.1");
const std::optional<IpAddress> kClient2 = IpAddress::parse("127.0.1.2");

std::vector<std::uint64_t> ids(const std::vector<ToxicSpec>& v) {
  std::vector<std::uint64_t> out;
  for (const auto& t : v)
    out.push_back(t.id);
  return out;
}

TEST(ToxicsForClient, KeepsToxicsWithoutAFilterAndThoseCoveringTheClient) {
  const std::vector<ToxicSpec> toxics = {spec(1, "all", ToxicType::latency, {10}),
                                         for_net(spec(2, "one", ToxicType::latency, {20}), "127.0.1.2/32"),
                                         for_net(spec(3, "net", ToxicType::latency, {30}), "127.0.1.0/24"),
                                         for_net(spec(4, "v6", ToxicType::latency, {40}), "::1/128")};
  EXPECT_EQ(ids(toxics_for_client(toxics, kClient1, nullptr)), (std::vector<std::uint64_t>{1, 3}));
  EXPECT_EQ(ids(toxics_for_client(toxics, kClient2, nullptr)), (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_EQ(ids(toxics_for_client(toxics, IpAddress::parse("::1"), nullptr)),
            (std::vector<std::uint64_t>{1, 4}));
  EXPECT_EQ(ids(toxics_for_client(toxics, std::nullopt, nullptr)), (std::vector<std::uint64_t>{1}));
}

TEST(ToxicsForClient, AnActingToxicThatStopsCoveringTheClientIsDeactivatedNotRemoved) {
  Pipeline p(1);
  std::vector<ToxicSpec> toxics = {for_net(spec(1, "t", ToxicType::timeout, {0}), "127.0.1.0/24")};
  p.apply(toxics_for_client(toxics, kClient1, &p), T0);
  ASSERT_TRUE(p.acting(1));
  p.push(Event::data("swallowed", T0), T0);
  p.push(Event::terminal(EventKind::eof, T0 + 1ms), T0 + 1ms);
  p.run(T0 + 1ms);
  std::vector<EventKind> t;
  EXPECT_EQ(drain(p, &t), "");
  toxics[0] = for_net(spec(1, "t", ToxicType::timeout, {0}, 1.0f, 2), "127.0.1.2/32");  // updated
  auto mine = toxics_for_client(toxics, kClient1, &p);
  ASSERT_EQ(mine.size(), 1u);
  EXPECT_EQ(mine[0].toxicity, 0.0f);
  p.apply(mine, T0 + 2ms);
  p.run(T0 + 2ms);
  EXPECT_EQ(drain(p, &t), "");
  EXPECT_EQ(t, std::vector<EventKind>{EventKind::eof});  // the end passes on, no close as on removal
  EXPECT_FALSE(p.acting(1));
  // At the next change it is dropped, and the link may go back to its fast path.
  p.apply(toxics_for_client(toxics, kClient1, &p), T0 + 3ms);
  EXPECT_EQ(p.stage_count(), 0u);
  EXPECT_TRUE(p.idle());
}

TEST(Pipeline, AToxicThatComesToCoverTheClientTakesItsPlaceInTheChain) {
  Pipeline p(1);
  std::vector<ToxicSpec> toxics = {for_net(spec(1, "a", ToxicType::latency, {100}), "127.0.1.2/32"),
                                   spec(2, "b", ToxicType::latency, {50})};
  p.apply(toxics_for_client(toxics, kClient1, &p), T0);
  EXPECT_EQ(p.stage_count(), 1u);
  p.push(Event::data("old", T0), T0);
  p.run(T0);
  toxics[0] = for_net(spec(1, "a", ToxicType::latency, {100}, 1.0f, 2), "127.0.1.0/24");
  p.apply(toxics_for_client(toxics, kClient1, &p), T0 + 10ms);
  EXPECT_EQ(p.stage_count(), 2u);
  toxics[1].version = 2;  // a later change finds both where they are: no duplicate stage
  toxics[1].attributes = {60};
  p.apply(toxics_for_client(toxics, kClient1, &p), T0 + 20ms);
  EXPECT_EQ(p.stage_count(), 2u);
  p.push(Event::data("new", T0 + 20ms), T0 + 20ms);
  // "old" was already past a's place: only b delays it. "new" goes through a (100 ms from its read).
  EXPECT_EQ(p.run(T0 + 20ms), T0 + 50ms);
  p.run(T0 + 50ms);
  EXPECT_EQ(drain(p), "old");
  EXPECT_EQ(p.run(T0 + 50ms), T0 + 120ms);
  p.run(T0 + 120ms);
  EXPECT_EQ(drain(p), "new");
}

// As LiveChangesNeverLoseDuplicateOrReorderBytes, with client_cidr changes that move toxics in and
// out of the connection's part.
TEST(Pipeline, ClientFilterChangesNeverLoseDuplicateOrReorderBytes) {
  const std::string_view nets[] = {"", "127.0.1.1/32", "127.0.1.2/32", "127.0.0.0/16"};
  for (std::uint64_t trial = 0; trial < 40; ++trial) {
    std::mt19937_64 rng(trial);
    Pipeline p(trial);
    std::vector<ToxicSpec> toxics;
    std::uint64_t next_id = 1, version = 1;
    std::string sent, received;
    TimePoint now = T0;
    auto set_net = [&](ToxicSpec& t) {
      const auto net = nets[rng() % 4];
      t.client_cidr = net.empty() ? std::nullopt : Cidr::parse(net);
    };
    for (int step = 0; step < 300; ++step) {
      now += std::chrono::microseconds(rng() % 3000);
      const int action = static_cast<int>(rng() % 10);
      if (action < 5) {
        std::string chunk(1 + rng() % 200, ' ');
        for (std::size_t i = 0; i < chunk.size(); ++i)
          chunk[i] = static_cast<char>('!' + (sent.size() + i) % 90);
        sent += chunk;
        p.push(Event::data(chunk, now), now);
      } else if (action < 7 && toxics.size() < 4) {
        const ToxicType types[] = {ToxicType::latency, ToxicType::slicer, ToxicType::bandwidth,
                                   ToxicType::noop};
        const ToxicType t = types[rng() % 4];
        Attributes a{};
        if (t == ToxicType::latency) a = {static_cast<std::int64_t>(rng() % 50), 0, 0};
        if (t == ToxicType::slicer) a = {1 + static_cast<std::int64_t>(rng() % 20), 0, 0};
        if (t == ToxicType::bandwidth) a = {1 + static_cast<std::int64_t>(rng() % 100), 0, 0};
        toxics.push_back(spec(next_id, "t" + std::to_string(next_id), t, a, 1.0f, ++version));
        set_net(toxics.back());
        ++next_id;
      } else if (action < 9 && !toxics.empty()) {
        auto& t = toxics[rng() % toxics.size()];
        set_net(t);
        t.version = ++version;
      } else if (!toxics.empty()) {
        toxics.erase(toxics.begin() + static_cast<std::ptrdiff_t>(rng() % toxics.size()));
      }
      p.apply(toxics_for_client(toxics, kClient1, &p), now);
      ASSERT_LE(p.stage_count(), toxics.size()) << "trial " << trial << " step " << step;
      p.run(now);
      std::vector<EventKind> terminals;
      received += drain(p, &terminals);
      EXPECT_TRUE(terminals.empty()) << "trial " << trial << " step " << step;
      EXPECT_EQ(sent.compare(0, received.size(), received), 0) << "trial " << trial << " step " << step;
    }
    for (auto& t : toxics)  // every one stops covering the client: all of them deactivate
      t.client_cidr = Cidr::parse("127.0.1.2/32"), t.version = ++version;
    p.apply(toxics_for_client(toxics, kClient1, &p), now);
    p.apply(toxics_for_client(toxics, kClient1, &p), now);
    p.run(now);
    received += drain(p);
    EXPECT_EQ(received, sent) << "trial " << trial;
    EXPECT_TRUE(p.idle());
  }
}

}  // namespace
}  // namespace faultproxy
