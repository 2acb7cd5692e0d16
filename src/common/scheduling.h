// Scheduling hints for latency-sensitive threads (faultproxy's workers, the proxy benchmark's
// client and servers).
//
// request_short_slices() asks the kernel to schedule the calling thread with the shortest time
// slice it grants (100 us, Linux >= 6.12: sched_setattr with sched_runtime on SCHED_OTHER). The
// EEVDF scheduler gives a task with a short slice an earlier deadline, so when a timer or a socket
// wakes it on a busy machine it preempts CPU-bound work at once instead of waiting up to a default
// slice (~3 ms): on the loaded 2-core VM this cut the p99 lateness of Asio timer wake-ups from
// ~0.6 ms to ~0.2 ms. Fairness is unchanged (same weight, same nice value, same share of CPU).
// Best effort: false where unsupported.
//
// Usage:
//   std::thread worker([] { common::request_short_slices(); io.run(); });
#pragma once

#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>

namespace common {

inline bool request_short_slices() {
#ifdef SYS_sched_setattr
  // struct sched_attr of <linux/sched/types.h>, which cannot be included next to glibc's <sched.h>.
  struct SchedAttr {
    std::uint32_t size, sched_policy;
    std::uint64_t sched_flags;
    std::int32_t sched_nice;
    std::uint32_t sched_priority;
    std::uint64_t sched_runtime, sched_deadline, sched_period;
  };
  SchedAttr attr{};
  attr.size = sizeof attr;
  attr.sched_policy = SCHED_OTHER;
  attr.sched_nice = static_cast<std::int32_t>(::getpriority(PRIO_PROCESS, 0));  // keep the nice value
  attr.sched_runtime = 100'000;                                                 // ns: the kernel's minimum
  return ::syscall(SYS_sched_setattr, 0, &attr, 0) == 0;
#else
  return false;
#endif
}

}  // namespace common
