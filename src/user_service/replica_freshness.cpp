#include "user_service/replica_freshness.h"

namespace user_service {

namespace {
// Samples kept while the replica lags: at one per probe interval (200 ms), far beyond any max_lag.
constexpr std::size_t kMaxSamples = 256;
}  // namespace

void ReplicaFreshness::master_offset(std::uint64_t offset, Clock::time_point at) {
  // An offset going back is another history (a failover the topology has not reported yet).
  if (last_master_ && offset < *last_master_) forget();
  last_master_ = offset;
  if (replica_ && offset <= *replica_) {
    // Already held by the replica: nothing to wait for.
    master_.clear();
    if (!caught_up_ || at > *caught_up_) caught_up_ = at;
    return;
  }
  if (master_.size() == kMaxSamples) master_.pop_front();
  master_.push_back({offset, at});
}

void ReplicaFreshness::replica_offset(std::uint64_t offset) {
  if (replica_ && offset < *replica_) {
    // A full resynchronisation (or another node): what it held before says nothing now.
    caught_up_.reset();
  }
  replica_ = offset;
  while (!master_.empty() && master_.front().offset <= offset) {
    if (!caught_up_ || master_.front().at > *caught_up_) caught_up_ = master_.front().at;
    master_.pop_front();
  }
}

void ReplicaFreshness::forget() {
  master_.clear();
  last_master_.reset();
  replica_.reset();
  caught_up_.reset();
}

}  // namespace user_service
