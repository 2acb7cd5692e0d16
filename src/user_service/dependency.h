// The health and circuit breaker of one dependency endpoint (mysql, redis-master, redis-replica).
//
// Breaker: closed while calls succeed; opens after `failure_threshold` consecutive failures or
// deadline misses (Failure::timeout / unavailable / desync; a rejected statement is not the server's
// fault and does not count). While open, allow() is false and callers fail at once instead of
// calling; the background prober (service.h) keeps probing every ~200 ms and the first success closes
// it, so recovery needs no user traffic. A success of a call that was already in flight closes it too.
//
// Half-open trials: when the latest failure was a fast one (the dependency refused at once: a
// connection refused or reset, caught within `slow_threshold`), a user call may itself try the
// dependency while the breaker is open, one at a time (begin_trial/end_trial): the dependency answers
// such a call in microseconds while it is down, and the first call after its return succeeds instead
// of waiting for the next probe. After a slow failure (a timeout, a blackhole) there is no trial: no
// user call pays a deadline for a dead dependency, the probe alone finds it back.
//
// Logs: the breaker opening and closing, and the state going down or back (at most one line a second
// per dependency); up <-> degraded only at debug level.
//
// State for /health/ready: down while the breaker is open or the dependency is not initialised
// (MariaDB before its schema exists); degraded while closed but the last call or probe failed or was
// slower than `slow_threshold`; up otherwise. `since` is when the state last changed.
//
// Single-threaded: used from the service's one event-loop thread only.
//
// Usage:
//   Dependency db("mysql", 3, std::chrono::milliseconds(250));
//   if (!db.allow()) co_return fail_fast();
//   auto r = co_await store.get(id, deadline);
//   r.ok() ? db.record_success(elapsed) : db.record_failure(r.failure, r.message, elapsed);
//   if (!db.allow() && db.trial_allowed()) { db.begin_trial(); ...call...; record; db.end_trial(); }
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/log.h"
#include "user_service/ports.h"

namespace user_service {

enum class DepState { up = 0, degraded = 1, down = 2 };
std::string_view dep_state_name(DepState s);

class Dependency {
 public:
  Dependency(std::string name, std::uint32_t failure_threshold, Clock::duration slow_threshold,
             bool initialised = true);

  const std::string& name() const { return name_; }
  // Whether a user call may be made now.
  bool allow() const { return initialised_ && !open_; }
  bool breaker_open() const { return open_; }
  bool initialised() const { return initialised_; }

  void record_success(Clock::duration latency);
  // Returns true if this failure opened the breaker. `latency`: how long the failed call took (a
  // failure within slow_threshold that is not a timeout is a fast one: see half-open trials).
  bool record_failure(Failure failure, std::string_view message,
                      Clock::duration latency = Clock::duration::max());

  // While the breaker is open: whether a user call may be the half-open trial now (initialised, the
  // latest failure was fast, no trial in flight).
  bool trial_allowed() const { return initialised_ && open_ && last_failure_fast_ && !trial_in_flight_; }
  bool trial_in_flight() const { return trial_in_flight_; }
  void begin_trial() { trial_in_flight_ = true; }
  void end_trial() { trial_in_flight_ = false; }
  void set_initialised(bool initialised, std::string_view why = {});
  // New settings (SIGHUP): they apply from the next call on; an open breaker stays open.
  void reconfigure(std::uint32_t failure_threshold, Clock::duration slow_threshold) {
    threshold_ = failure_threshold;
    slow_threshold_ = slow_threshold;
  }
  // Another server plays this role now (a promoted MariaDB primary): the failures that opened the
  // breaker were the old server's, so it closes and counting starts afresh.
  void server_changed(std::string_view who);

  DepState state() const { return state_; }
  std::chrono::system_clock::time_point since() const { return since_; }
  const std::string& last_error() const { return last_error_; }
  std::chrono::system_clock::time_point last_error_at() const { return last_error_at_; }
  std::uint32_t consecutive_failures() const { return consecutive_failures_; }
  std::uint64_t breaker_openings() const { return openings_; }

  // {"state":"up","since":"...","breaker":"closed","consecutive_failures":0,"last_error":...}
  std::string to_json() const;

 private:
  void update_state(bool breaker_logged = false);
  // Breaker and down/up lines: at most one a second per dependency (one that flaps between failing
  // and answering would write several a second); the next line written counts those that were not.
  bool should_log(common::log::Level level);
  std::uint64_t take_not_logged();

  std::string name_;
  std::uint32_t threshold_;
  Clock::duration slow_threshold_;
  bool initialised_;
  bool open_ = false;
  bool slow_ = false;
  bool last_failure_fast_ = false;
  bool trial_in_flight_ = false;
  std::uint32_t consecutive_failures_ = 0;
  std::uint64_t openings_ = 0;
  DepState state_ = DepState::up;
  std::chrono::system_clock::time_point since_;
  std::string last_error_;
  std::chrono::system_clock::time_point last_error_at_{};
  bool logged_once_ = false;
  Clock::time_point last_logged_{};
  std::uint64_t not_logged_ = 0;
};

// ISO 8601 UTC with milliseconds, e.g. 2026-11-27T01:02:03.456Z.
std::string iso8601(std::chrono::system_clock::time_point t);

}  // namespace user_service
