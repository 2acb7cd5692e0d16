#include "common/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>

namespace common::metrics {
namespace {

void append_labels(std::string& out, const Labels& labels, std::string_view extra_key = {},
                   std::string_view extra_value = {}) {
  if (labels.empty() && extra_key.empty()) return;
  out.push_back('{');
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out.push_back(',');
    first = false;
    out += k;
    out += "=\"";
    out += escape_label_value(v);
    out.push_back('"');
  }
  if (!extra_key.empty()) {
    if (!first) out.push_back(',');
    out += extra_key;
    out += "=\"";
    out += extra_value;
    out.push_back('"');
  }
  out.push_back('}');
}

}  // namespace

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    return std::to_string(static_cast<long long>(v));
  }
  char buf[32];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, p);
}

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Histogram::Histogram(std::vector<double> upper_bounds) : bounds_(std::move(upper_bounds)) {
  std::sort(bounds_.begin(), bounds_.end());
  buckets_ = std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1);
}

void Histogram::observe(double v) {
  const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), v);
  buckets_[static_cast<std::size_t>(it - bounds_.begin())].fetch_add(1, std::memory_order_relaxed);
  double cur = sum_.load(std::memory_order_relaxed);
  while (!sum_.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
  }
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.upper_bounds = bounds_;
  s.cumulative.resize(bounds_.size() + 1);
  std::uint64_t running = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = running;
  }
  s.count = running;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

const std::vector<double>& default_latency_buckets() {
  static const std::vector<double> buckets = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                              0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
  return buckets;
}

void Writer::header(std::string_view name, std::string_view help, std::string_view type) {
  if (std::find(seen_.begin(), seen_.end(), name) != seen_.end()) return;
  seen_.emplace_back(name);
  out_ += "# HELP ";
  out_ += name;
  out_.push_back(' ');
  out_ += help;
  out_ += "\n# TYPE ";
  out_ += name;
  out_.push_back(' ');
  out_ += type;
  out_.push_back('\n');
}

void Writer::sample(std::string_view name, const Labels& labels, double value) {
  out_ += name;
  append_labels(out_, labels);
  out_.push_back(' ');
  out_ += format_value(value);
  out_.push_back('\n');
}

void Writer::gauge(std::string_view name, std::string_view help, const Labels& labels, double value) {
  header(name, help, "gauge");
  sample(name, labels, value);
}

void Writer::counter(std::string_view name, std::string_view help, const Labels& labels, double value) {
  header(name, help, "counter");
  sample(name, labels, value);
}

Registry::Family& Registry::family(std::string_view name, std::string_view help, Type type) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    it = families_.emplace(std::string(name), Family{std::string(help), type, {}, {}, {}}).first;
  } else if (it->second.type != type) {
    throw std::logic_error("metric " + std::string(name) + " registered with two types");
  }
  return it->second;
}

Counter& Registry::counter(std::string_view name, std::string_view help, const Labels& labels) {
  std::lock_guard lock(mutex_);
  auto& f = family(name, help, Type::counter);
  auto& slot = f.counters[labels];
  if (!slot) slot = std::make_unique<Counter>();
  return *slot;
}

Gauge& Registry::gauge(std::string_view name, std::string_view help, const Labels& labels) {
  std::lock_guard lock(mutex_);
  auto& f = family(name, help, Type::gauge);
  auto& slot = f.gauges[labels];
  if (!slot) slot = std::make_unique<Gauge>();
  return *slot;
}

Histogram& Registry::histogram(std::string_view name, std::string_view help,
                               const std::vector<double>& buckets, const Labels& labels) {
  std::lock_guard lock(mutex_);
  auto& f = family(name, help, Type::histogram);
  auto& slot = f.histograms[labels];
  if (!slot) slot = std::make_unique<Histogram>(buckets);
  return *slot;
}

void Registry::add_collector(Collector collector) {
  std::lock_guard lock(mutex_);
  collectors_.push_back(std::move(collector));
}

std::string Registry::render() const {
  std::string out;
  std::vector<Collector> collectors;
  {
    std::lock_guard lock(mutex_);
    Writer w(out);
    for (const auto& [name, f] : families_) {
      switch (f.type) {
        case Type::counter:
          w.header(name, f.help, "counter");
          for (const auto& [labels, c] : f.counters)
            w.sample(name, labels, c->value());
          break;
        case Type::gauge:
          w.header(name, f.help, "gauge");
          for (const auto& [labels, g] : f.gauges)
            w.sample(name, labels, g->value());
          break;
        case Type::histogram: {
          w.header(name, f.help, "histogram");
          const std::string bucket_name = name + "_bucket";
          for (const auto& [labels, h] : f.histograms) {
            const auto s = h->snapshot();
            for (std::size_t i = 0; i < s.cumulative.size(); ++i) {
              out += bucket_name;
              const std::string le = i < s.upper_bounds.size() ? format_value(s.upper_bounds[i]) : "+Inf";
              append_labels(out, labels, "le", le);
              out.push_back(' ');
              out += std::to_string(s.cumulative[i]);
              out.push_back('\n');
            }
            w.sample(name + "_sum", labels, s.sum);
            w.sample(name + "_count", labels, static_cast<double>(s.count));
          }
          break;
        }
      }
    }
    collectors = collectors_;
  }
  // Collectors run outside the lock: they may read state guarded by their own locks.
  Writer w(out);
  for (const auto& c : collectors)
    c(w);
  return out;
}

}  // namespace common::metrics
