// The soak's run as a timeline, for its HTML report (reports/soak/index.html): the answers grouped by
// the second they arrived in (count by status and by data source, latency p50/p99) and the faults as
// windows (from the call that applied one to the call that cleared it), drawn as shaded bands.
//
// Usage:
//   std::vector<Second> s = per_second(history.records(), run_ms);
//   std::vector<FaultWindow> w = fault_windows(applied, run_ms);   // applied: the chaos calls made
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "soak/chaos.h"
#include "soak/history.h"

namespace soak {

struct Second {
  std::int64_t t = 0;                              // seconds since the start of the run
  std::map<std::string, std::uint64_t> by_status;  // "200", "503", "timeout", ...
  // GET 200 by X-Data-Source: cache, cache (stale), origin, origin-replica; "none" if it had none.
  std::map<std::string, std::uint64_t> by_source;
  double p50_ms = 0, p99_ms = 0;  // latency of every answer of the second (0 if there was none)
};

// One answer per record, in the second its answer arrived; seconds with no answer are kept (zeros),
// up to `run_ms` (answers after it go to the last second).
std::vector<Second> per_second(const std::vector<Record>& records, std::int64_t run_ms);

// A chaos call that was made: what, when, on which process (process faults) and whether it worked.
struct AppliedAction {
  Action action;
  std::int64_t at_ms = 0;
  std::string resolved;
  bool ok = false;
};

struct FaultWindow {
  std::int64_t from_ms = 0, to_ms = 0;  // to_ms == from_ms: a moment (a failover)
  std::string target;                   // the proxy, or the process
  std::string what;                     // "latency downstream", "outage (proxy disabled)", "SIGKILL"
  std::string detail;                   // the toxic's JSON body, and each update of it
};

// Pairs what applied a fault with what cleared it: a toxic from its add to its removal, an outage
// from disable to enable, a SIGKILL to the restart, a SIGSTOP to the SIGCONT; POST /reset clears every
// proxy fault. A call that failed applies nothing. What is still open at `end_ms` ends there.
std::vector<FaultWindow> fault_windows(const std::vector<AppliedAction>& applied, std::int64_t end_ms);

}  // namespace soak
