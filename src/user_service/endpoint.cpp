#include "user_service/endpoint.h"

#include "common/log.h"

namespace user_service {

namespace {

constexpr std::array<std::string_view, 6> kOutcomeNames = {"ok",       "timeout",         "unavailable",
                                                           "rejected", "short_circuited", "desync"};

}  // namespace

Endpoint::Endpoint(std::string name, Clock::duration budget, std::uint32_t breaker_failures,
                   common::metrics::Registry& registry)
    // Every endpoint starts "down" (not yet probed): the first successful probe brings it up, so
    // /health/ready never claims a dependency it has not seen. Slower than half its budget: degraded.
    : health_(std::move(name), breaker_failures, budget / 2, false), budget_(budget) {
  for (std::size_t o = 0; o < kOutcomeNames.size(); ++o) {
    calls_[o] =
        &registry.counter("user_service_dependency_calls_total", "Calls to each dependency by outcome.",
                          {{"dependency", health_.name()}, {"outcome", std::string(kOutcomeNames[o])}});
  }
  trials_ =
      &registry.counter("user_service_breaker_trials_total",
                        "Calls made as a half-open trial while the breaker was open after fast failures.",
                        {{"dependency", health_.name()}});
  duration_ = &registry.histogram(
      "user_service_dependency_call_duration_seconds", "Duration of dependency calls (probes included).",
      common::metrics::default_latency_buckets(), {{"dependency", health_.name()}});
}

void Endpoint::account(Failure f, std::string_view message, Clock::time_point started) {
  const auto elapsed = Clock::now() - started;
  duration_->observe(std::chrono::duration<double>(elapsed).count());
  switch (f) {
    case Failure::none: {
      calls_[ok]->inc();
      const bool was_open = health_.breaker_open();
      health_.record_success(elapsed);
      if (was_open && !probing_ && on_recovered_) on_recovered_();
      return;
    }
    case Failure::timeout:
      calls_[timeout]->inc();
      break;
    case Failure::unavailable:
      calls_[unavailable]->inc();
      break;
    case Failure::rejected:
      calls_[rejected]->inc();
      break;
    case Failure::desync:
      calls_[desync]->inc();
      break;
  }
  health_.record_failure(f, message, elapsed);
  if (common::log::enabled(common::log::Level::debug)) {
    common::log::debug("dependency call failed",
                       {{"dependency", health_.name()}, {"outcome", failure_name(f)}, {"error", message}});
  }
}

void Endpoint::short_circuit() {
  calls_[short_circuited]->inc();
}

boost::asio::awaitable<bool> Endpoint::probe() {
  if (!probe_) co_return false;
  const auto started = Clock::now();
  const Outcome<Done> r = co_await probe_(Deadline::after(budget_));
  probing_ = true;
  account(r.failure, r.message, started);
  probing_ = false;
  if (r.ok() && !health_.initialised()) health_.set_initialised(true);
  co_return r.ok();
}

double Endpoint::calls(std::string_view outcome) const {
  for (std::size_t o = 0; o < kOutcomeNames.size(); ++o)
    if (kOutcomeNames[o] == outcome) return calls_[o]->value();
  return 0;
}

}  // namespace user_service
