// RedisTopology's view for /health/ready, without servers (the clients are never started).
#include "user_service/redis_topology.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

namespace user_service {
namespace {

TEST(RedisTopology, JsonWritesAddressesAsTheConfigurationDoes) {
  boost::asio::io_context io;
  Config config;
  config.redis.master = HostPort{"::1", 6379};
  config.redis.replica = HostPort{"127.0.0.1", 6380};
  RedisTopology topology(io.get_executor(), config);
  const std::string text = topology.to_json();
  boost::system::error_code ec;
  const auto json = boost::json::parse(text, ec);
  ASSERT_FALSE(ec) << text;
  EXPECT_EQ(json.at("master"), "[::1]:6379");
  EXPECT_EQ(json.at("replica"), "127.0.0.1:6380");
  EXPECT_EQ(json.at("sentinel"), false);
}

}  // namespace
}  // namespace user_service
