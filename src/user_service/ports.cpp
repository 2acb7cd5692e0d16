#include "user_service/ports.h"

namespace user_service {

// A store of one MariaDB server has no replica.
boost::asio::awaitable<Outcome<std::optional<StoredUser>>> UserStore::get_from_replica(std::string_view,
                                                                                       Deadline) {
  co_return Outcome<std::optional<StoredUser>>::fail(Failure::unavailable, "no MariaDB replica configured");
}

boost::asio::awaitable<Outcome<std::vector<ListedUser>>> UserStore::list_from_replica(std::string_view,
                                                                                      std::uint32_t,
                                                                                      Deadline) {
  co_return Outcome<std::vector<ListedUser>>::fail(Failure::unavailable, "no MariaDB replica configured");
}

boost::asio::awaitable<Outcome<Done>> UserStore::probe_replica(Deadline) {
  co_return Outcome<Done>::fail(Failure::unavailable, "no MariaDB replica configured");
}

// Nothing to connect: the call itself is the trial.
boost::asio::awaitable<bool> UserStore::connect_now(Deadline) {
  co_return true;
}

boost::asio::awaitable<bool> CachePort::connect_now(CacheNode, Deadline) {
  co_return true;
}

// A cache without a feed lease (the fakes, unless a test gives them one).
boost::asio::awaitable<Outcome<bool>> CachePort::take_lease(std::string_view, Clock::duration, Deadline) {
  co_return Outcome<bool>::fail(Failure::rejected, "no feed lease here");
}

boost::asio::awaitable<Outcome<bool>> CachePort::release_lease(std::string_view, Deadline) {
  co_return Outcome<bool>::fail(Failure::rejected, "no feed lease here");
}

boost::asio::awaitable<Outcome<bool>> CachePort::save_position(std::string_view, std::string_view, Deadline) {
  co_return Outcome<bool>::fail(Failure::rejected, "no feed lease here");
}

boost::asio::awaitable<Outcome<std::string>> CachePort::load_position(Deadline) {
  co_return Outcome<std::string>::fail(Failure::rejected, "no feed lease here");
}

}  // namespace user_service
