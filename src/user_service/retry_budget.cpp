#include "user_service/retry_budget.h"

#include <algorithm>

namespace user_service {

RetryBudget::RetryBudget(std::uint32_t percent, std::uint32_t per_second)
    : per_read_(percent / 100.0),
      per_second_(per_second),
      capacity_(std::max(1.0, 10.0 * per_second)),
      tokens_(capacity_) {}

void RetryBudget::accrue(common::Clock::time_point now) {
  if (started_ && now > last_) {
    tokens_ = std::min(capacity_, tokens_ + per_second_ * std::chrono::duration<double>(now - last_).count());
  }
  if (!started_ || now > last_) last_ = now;
  started_ = true;
}

void RetryBudget::deposit(common::Clock::time_point now) {
  accrue(now);
  tokens_ = std::min(capacity_, tokens_ + per_read_);
}

bool RetryBudget::withdraw(common::Clock::time_point now) {
  accrue(now);
  if (tokens_ < 1.0 - 1e-9) return false;  // ten deposits of 0.1 make a token, in floating point too
  tokens_ = std::max(0.0, tokens_ - 1.0);
  return true;
}

double RetryBudget::tokens(common::Clock::time_point now) {
  accrue(now);
  return tokens_;
}

}  // namespace user_service
