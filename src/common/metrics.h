// Prometheus metrics: counters, gauges and histograms with labels, rendered as text format 0.0.4.
//
// A Registry owns metric families. Looking a series up takes a mutex and a map lookup, so hot paths
// look their series up once and keep the reference (references stay valid for the registry's
// lifetime); updating a series is a relaxed atomic operation and never blocks. Values that are
// cheaper to read than to maintain (pool sizes, breaker states) are supplied by collectors that run
// at render time.
//
// Usage:
//   common::metrics::Registry registry;
//   auto& hits = registry.counter("cache_hits_total", "Reads answered from Redis.");
//   hits.inc();
//   auto& latency = registry.histogram("http_request_duration_seconds", "Request latency.",
//                                      common::metrics::default_latency_buckets(),
//                                      {{"route", "/users/{id}"}});
//   latency.observe(0.0012);
//   registry.add_collector([](common::metrics::Writer& w) {
//     w.gauge("pool_connections", "Open connections.", {}, 4);
//   });
//   std::string text = registry.render();
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace common::metrics {

// Label pairs in the order given; rendering keeps that order.
using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void inc(double v = 1.0) { add(value_, v); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  static void add(std::atomic<double>& a, double v) {
    double cur = a.load(std::memory_order_relaxed);
    while (!a.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
    }
  }
  std::atomic<double> value_{0.0};
};

class Gauge {
 public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void inc(double v = 1.0) {
    double cur = value_.load(std::memory_order_relaxed);
    while (!value_.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
    }
  }
  void dec(double v = 1.0) { inc(-v); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double v);
  // Snapshot for rendering and tests: cumulative counts per bucket (last is +Inf), sum, count.
  struct Snapshot {
    std::vector<double> upper_bounds;
    std::vector<std::uint64_t> cumulative;
    double sum = 0;
    std::uint64_t count = 0;
  };
  Snapshot snapshot() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // bounds_.size() + 1 (+Inf)
  std::atomic<double> sum_{0.0};
};

// Buckets from 100 us to 10 s, suited to request and dependency-call latencies.
const std::vector<double>& default_latency_buckets();

// Writes one family or sample at render time; used by collectors.
class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}
  void gauge(std::string_view name, std::string_view help, const Labels& labels, double value);
  void counter(std::string_view name, std::string_view help, const Labels& labels, double value);
  // Emits HELP/TYPE once per name within one render.
  void header(std::string_view name, std::string_view help, std::string_view type);
  void sample(std::string_view name, const Labels& labels, double value);

 private:
  std::string& out_;
  std::vector<std::string> seen_;
};

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  Counter& counter(std::string_view name, std::string_view help, const Labels& labels = {});
  Gauge& gauge(std::string_view name, std::string_view help, const Labels& labels = {});
  Histogram& histogram(std::string_view name, std::string_view help, const std::vector<double>& buckets,
                       const Labels& labels = {});

  using Collector = std::function<void(Writer&)>;
  void add_collector(Collector collector);

  // Prometheus text exposition, families in name order, series in label order.
  std::string render() const;

 private:
  enum class Type { counter, gauge, histogram };
  struct Family {
    std::string help;
    Type type;
    std::map<Labels, std::unique_ptr<Counter>> counters;
    std::map<Labels, std::unique_ptr<Gauge>> gauges;
    std::map<Labels, std::unique_ptr<Histogram>> histograms;
  };
  Family& family(std::string_view name, std::string_view help, Type type);

  mutable std::mutex mutex_;
  std::map<std::string, Family, std::less<>> families_;
  std::vector<Collector> collectors_;
};

// Formats a sample value as Prometheus does (integers without a fraction, +Inf/-Inf/NaN).
std::string format_value(double v);
// Escapes a label value (backslash, quote, newline).
std::string escape_label_value(std::string_view v);

}  // namespace common::metrics
