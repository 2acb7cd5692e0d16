// Shared pieces of the dependency clients (clients::redis, clients::mysql): deadlines and the
// reconnect pacing policy.
//
// A Deadline (common/deadline.h) is an absolute point on the steady clock. Every client call takes
// one, built implicitly from a duration ("100 ms from now") or from a time point (for example the
// request's own deadline), so a caller can pass whichever is earlier:
//   co_await redis.command(args, 100ms);
//   co_await redis.command(args, std::min(request_deadline, clients::Deadline(100ms)));
//
// Backoff paces reconnect attempts: exponential growth from `initial` to `max`, each delay drawn
// at random from [(1 - jitter) * base, base] so that many clients that lost the same server do
// not come back in lock-step (no reconnect storm), while `max` bounds how long after a server's
// return the next attempt happens (the recovery time).
//   clients::Backoff backoff({.initial = 25ms, .max = 500ms});
//   auto delay = backoff.next();   // 12.5..25 ms, then 25..50, ... capped at 250..500 ms
//   backoff.reset();               // after a success
//   delay = backoff.next(AttemptError::refused);  // 12.5..25 ms again: nothing listens yet
//
// A refused attempt (the host answered at once: connection refused or reset, closed during the
// handshake) is cheap to repeat, and the server may be back any moment: the next attempt comes after
// `initial`, so a returning server is found within ~`initial`. Attempts that time out (a blackholed or
// frozen host) cost a connect timeout each and grow the delay up to `max`.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>
#include <string_view>

#include "common/deadline.h"

namespace clients {

using Clock = common::Clock;

// The one deadline type (src/common/deadline.h).
using common::Deadline;

struct BackoffPolicy {
  std::chrono::milliseconds initial{25};  // delay after the first failure (before jitter)
  std::chrono::milliseconds max{500};     // cap: bounds the time to notice a server's return
  double multiplier = 2.0;                // growth per consecutive failure, >= 1
  double jitter = 0.5;                    // 0 = fixed delays, 1 = "full jitter" in [0, base]

  // Throws std::invalid_argument naming the bad field (a configuration error, found at start).
  void validate() const;
};

// How a connect attempt failed, which decides how soon to try again.
enum class AttemptError {
  refused,  // answered at once: refused, reset, closed during the handshake
  slow,     // timed out, or anything else: back off exponentially
};

// Whether a connect failure's text (strerror(3) based, as the clients report it) says the host answered
// at once: connection refused, connection reset, or closed by the server.
bool refused_text(std::string_view error);

// Not thread-safe: one per reconnect loop.
class Backoff {
 public:
  explicit Backoff(BackoffPolicy policy = {}, std::uint64_t seed = std::random_device{}());

  // The delay to wait before the next attempt. A slow failure counts one more consecutive failure
  // (the delay grows); a refused one starts again from `initial` (see above).
  std::chrono::milliseconds next(AttemptError error = AttemptError::slow);
  // After a success: the next failure starts again from `initial`.
  void reset() { failures_ = 0; }
  unsigned failures() const { return failures_; }
  const BackoffPolicy& policy() const { return policy_; }

 private:
  BackoffPolicy policy_;
  unsigned failures_ = 0;
  std::mt19937_64 rng_;
};

// A write(2) or a send(2) without MSG_NOSIGNAL to a connection the server has closed raises SIGPIPE,
// whose default action kills the process. The clients call this (once per process, idempotent)
// when they are constructed: it sets SIGPIPE to SIG_IGN unless the program installed a handler.
void ignore_sigpipe();

}  // namespace clients
