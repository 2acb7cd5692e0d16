#include "soak/timeline.h"

#include <algorithm>
#include <cmath>

namespace soak {

namespace {

// The nearest-rank percentile of sorted values.
double rank(const std::vector<std::int64_t>& sorted_us, double p) {
  if (sorted_us.empty()) return 0;
  const auto i = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted_us.size())));
  return static_cast<double>(sorted_us[std::clamp<std::size_t>(i, 1, sorted_us.size()) - 1]) / 1000.0;
}

std::string source_label(const Record& r) {
  return r.stale ? "cache (stale)" : std::string(source_name(r.source));
}

}  // namespace

std::vector<Second> per_second(const std::vector<Record>& records, std::int64_t run_ms) {
  const std::int64_t n = std::max<std::int64_t>(1, (run_ms + 999) / 1000);
  std::vector<Second> out(static_cast<std::size_t>(n));
  std::vector<std::vector<std::int64_t>> latencies(out.size());
  for (std::size_t k = 0; k < out.size(); ++k)
    out[k].t = static_cast<std::int64_t>(k);
  for (const Record& r : records) {
    const auto k = static_cast<std::size_t>(std::clamp<std::int64_t>(r.done_us / 1'000'000, 0, n - 1));
    ++out[k].by_status[status_name(r.status)];
    if (r.op == Op::get && r.status == 200) ++out[k].by_source[source_label(r)];
    latencies[k].push_back(r.done_us - r.sent_us);
  }
  for (std::size_t k = 0; k < out.size(); ++k) {
    std::sort(latencies[k].begin(), latencies[k].end());
    out[k].p50_ms = rank(latencies[k], 0.50);
    out[k].p99_ms = rank(latencies[k], 0.99);
  }
  return out;
}

std::vector<FaultWindow> fault_windows(const std::vector<AppliedAction>& applied, std::int64_t end_ms) {
  std::vector<FaultWindow> done;
  std::map<std::string, FaultWindow> open;  // "proxy/toxic", "proxy/" (outage), "process"
  const auto close = [&](const std::string& key, std::int64_t at) {
    const auto it = open.find(key);
    if (it == open.end()) return;
    it->second.to_ms = at;
    done.push_back(std::move(it->second));
    open.erase(it);
  };
  for (const AppliedAction& c : applied) {
    const Action& a = c.action;
    if (!c.ok) continue;
    switch (a.kind) {
      case Action::add_toxic:
        close(a.proxy + "/" + a.toxic, c.at_ms);
        open[a.proxy + "/" + a.toxic] =
            FaultWindow{c.at_ms, c.at_ms, a.proxy, a.type + " " + a.stream, a.body};
        break;
      case Action::update_toxic:
        if (const auto it = open.find(a.proxy + "/" + a.toxic); it != open.end())
          it->second.detail += "; at " + std::to_string(c.at_ms) + " ms: " + a.body;
        break;
      case Action::remove_toxic:
        close(a.proxy + "/" + a.toxic, c.at_ms);
        break;
      case Action::disable:
        close(a.proxy + "/", c.at_ms);
        open[a.proxy + "/"] = FaultWindow{c.at_ms, c.at_ms, a.proxy, "outage (proxy disabled)", ""};
        break;
      case Action::enable:
        close(a.proxy + "/", c.at_ms);
        break;
      case Action::reset:
        for (auto it = open.begin(); it != open.end();) {
          const auto next = std::next(it);
          if (it->first != "process") close(it->first, c.at_ms);
          it = next;
        }
        break;
      case Action::kill:
      case Action::stop:
        close("process", c.at_ms);
        open["process"] = FaultWindow{c.at_ms, c.at_ms, c.resolved.empty() ? a.target : c.resolved,
                                      a.kind == Action::kill ? "SIGKILL" : "SIGSTOP", a.target};
        break;
      case Action::resume:
      case Action::restart:
        close("process", c.at_ms);
        break;
      case Action::failover:
        done.push_back(FaultWindow{c.at_ms, c.at_ms, "mariadb", "./dev failover mysql", c.resolved});
        break;
    }
  }
  for (auto& [key, w] : open) {
    w.to_ms = std::max(end_ms, w.from_ms);
    done.push_back(std::move(w));
  }
  std::stable_sort(done.begin(), done.end(),
                   [](const FaultWindow& a, const FaultWindow& b) { return a.from_ms < b.from_ms; });
  return done;
}

}  // namespace soak
