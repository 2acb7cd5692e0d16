#include "user_service/dependency.h"

#include <ctime>

#include "common/log.h"

namespace user_service {

std::string_view failure_name(Failure f) {
  switch (f) {
    case Failure::none:
      return "ok";
    case Failure::timeout:
      return "timeout";
    case Failure::unavailable:
      return "unavailable";
    case Failure::rejected:
      return "rejected";
    case Failure::desync:
      return "desync";
  }
  return "unknown";
}

std::string_view dep_state_name(DepState s) {
  switch (s) {
    case DepState::up:
      return "up";
    case DepState::degraded:
      return "degraded";
    case DepState::down:
      return "down";
  }
  return "unknown";
}

std::string iso8601(std::chrono::system_clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%.*s.%03dZ", static_cast<int>(n), buf, static_cast<int>(ms % 1000));
  return out;
}

Dependency::Dependency(std::string name, std::uint32_t failure_threshold, Clock::duration slow_threshold,
                       bool initialised)
    : name_(std::move(name)),
      threshold_(failure_threshold == 0 ? 1 : failure_threshold),
      slow_threshold_(slow_threshold),
      initialised_(initialised),
      state_(initialised ? DepState::up : DepState::down),
      since_(std::chrono::system_clock::now()) {}

void Dependency::record_success(Clock::duration latency) {
  consecutive_failures_ = 0;
  last_failure_fast_ = false;
  slow_ = latency > slow_threshold_;
  if (open_) {
    open_ = false;
    update_state(/*breaker_logged=*/true);
    if (should_log(common::log::Level::info))
      common::log::info("circuit breaker closed", {{"dependency", name_},
                                                   {"state", dep_state_name(state_)},
                                                   {"changes_not_logged", take_not_logged()}});
  }
  update_state();
}

bool Dependency::record_failure(Failure failure, std::string_view message, Clock::duration latency) {
  if (failure == Failure::none) return false;
  last_error_.assign(message.empty() ? failure_name(failure) : message);
  last_error_at_ = std::chrono::system_clock::now();
  if (failure == Failure::rejected) return false;
  last_failure_fast_ = failure == Failure::unavailable && latency <= slow_threshold_;
  ++consecutive_failures_;
  bool opened = false;
  if (!open_ && consecutive_failures_ >= threshold_) {
    open_ = true;
    opened = true;
    ++openings_;
    update_state(/*breaker_logged=*/true);
    if (should_log(common::log::Level::warn))
      common::log::warn("circuit breaker opened", {{"dependency", name_},
                                                   {"consecutive_failures", consecutive_failures_},
                                                   {"last_error", last_error_},
                                                   {"changes_not_logged", take_not_logged()}});
  }
  update_state();
  return opened;
}

void Dependency::server_changed(std::string_view who) {
  consecutive_failures_ = 0;
  slow_ = false;
  last_failure_fast_ = false;
  if (open_) {
    open_ = false;
    update_state(/*breaker_logged=*/true);
    common::log::info("circuit breaker closed: another server plays the role",
                      {{"dependency", name_}, {"server", who}, {"state", dep_state_name(state_)}});
  }
  update_state();
}

void Dependency::set_initialised(bool initialised, std::string_view why) {
  if (!why.empty()) {
    last_error_.assign(why);
    last_error_at_ = std::chrono::system_clock::now();
  }
  initialised_ = initialised;
  update_state();
}

void Dependency::update_state(bool breaker_logged) {
  DepState s = DepState::up;
  if (open_ || !initialised_) {
    s = DepState::down;
  } else if (consecutive_failures_ > 0 || slow_) {
    s = DepState::degraded;
  }
  if (s != state_) {
    // Between up and degraded a dependency moves on every failed or slow call: debug only. Going
    // down or coming back is worth a line (at most one a second: see should_log).
    const bool downs = s == DepState::down || state_ == DepState::down;
    const auto level = !downs                ? common::log::Level::debug
                       : s == DepState::down ? common::log::Level::warn
                                             : common::log::Level::info;
    // A change the breaker's own line reports is not logged twice.
    if (downs ? !breaker_logged && should_log(level) : common::log::enabled(level)) {
      common::log::write(level, "dependency state changed",
                         {{"dependency", name_},
                          {"from", dep_state_name(state_)},
                          {"to", dep_state_name(s)},
                          {"last_error", last_error_},
                          {"changes_not_logged", downs ? take_not_logged() : 0}});
    }
    state_ = s;
    since_ = std::chrono::system_clock::now();
  }
}

bool Dependency::should_log(common::log::Level level) {
  if (!common::log::enabled(level)) return false;
  const auto now = Clock::now();
  if (logged_once_ && now - last_logged_ < std::chrono::seconds(1)) {
    ++not_logged_;
    return false;
  }
  logged_once_ = true;
  last_logged_ = now;
  return true;
}

std::uint64_t Dependency::take_not_logged() {
  const auto n = not_logged_;
  not_logged_ = 0;
  return n;
}

std::string Dependency::to_json() const {
  std::string out = "{\"state\":\"";
  out += dep_state_name(state_);
  out += "\",\"since\":\"";
  out += iso8601(since_);
  out += "\",\"breaker\":\"";
  out += open_ ? "open" : "closed";
  out += "\",\"consecutive_failures\":";
  out += std::to_string(consecutive_failures_);
  out += ",\"last_error\":";
  if (last_error_.empty()) {
    out += "null";
  } else {
    out += "\"";
    common::log::append_json_escaped(out, last_error_);
    out += "\",\"last_error_at\":\"";
    out += iso8601(last_error_at_);
    out += "\"";
  }
  out += "}";
  return out;
}

}  // namespace user_service
