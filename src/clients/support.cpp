#include "clients/support.h"

#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <mutex>
#include <stdexcept>

namespace clients {

void BackoffPolicy::validate() const {
  if (initial.count() <= 0) throw std::invalid_argument("backoff.initial must be > 0 ms");
  if (max < initial) throw std::invalid_argument("backoff.max must be >= backoff.initial");
  if (!(multiplier >= 1.0) || !std::isfinite(multiplier))
    throw std::invalid_argument("backoff.multiplier must be >= 1");
  if (!(jitter >= 0.0 && jitter <= 1.0)) throw std::invalid_argument("backoff.jitter must be in [0, 1]");
}

Backoff::Backoff(BackoffPolicy policy, std::uint64_t seed) : policy_(policy), rng_(seed) {
  policy_.validate();
}

bool refused_text(std::string_view error) {
  // strerror(3) texts, and the Redis client's words (hiredis' before it) for the EOF of a server
  // that accepted and closed at once (a proxy with nothing behind it, a server shutting down).
  for (const int e : {ECONNREFUSED, ECONNRESET}) {
    if (error.find(std::strerror(e)) != std::string_view::npos) return true;
  }
  return error.find("Server closed the connection") != std::string_view::npos;
}

std::chrono::milliseconds Backoff::next(AttemptError error) {
  // base = initial * multiplier^failures, capped at max (computed in double: no overflow). A refused
  // attempt starts the count afresh and does not add to it.
  if (error == AttemptError::refused) failures_ = 0;
  const double cap = static_cast<double>(policy_.max.count());
  double base = static_cast<double>(policy_.initial.count()) *
                std::pow(policy_.multiplier, static_cast<double>(std::min(failures_, 64u)));
  base = std::min(base, cap);
  if (error == AttemptError::slow && failures_ < 1000) ++failures_;
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const double delay = base * (1.0 - policy_.jitter * unit(rng_));
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(delay)));
}

void ignore_sigpipe() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction current {};
    if (::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL &&
        (current.sa_flags & SA_SIGINFO) == 0) {
      struct sigaction ignore {};
      ignore.sa_handler = SIG_IGN;
      sigemptyset(&ignore.sa_mask);
      ::sigaction(SIGPIPE, &ignore, nullptr);
    }
  });
}

}  // namespace clients
