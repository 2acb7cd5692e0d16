// The pure parts of clients::redis::Sentinel: addresses, settings, Sentinel's replies and messages.
#include "clients/sentinel_detail.h"

#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>

#include "clients/redis_detail.h"
#include "clients/redis_reply_reader.h"

namespace clients::redis::detail {
namespace {

using namespace std::chrono_literals;

Reply str(std::string s) {
  return Reply::from_string(std::move(s));
}

// One entry of SENTINEL replicas (abridged: the real one has ~40 fields).
Reply replica_entry(const std::string& ip, const std::string& port, const std::string& flags,
                    const std::string& link = "ok") {
  return Reply::from_array({str("name"), str(ip + ":" + port), str("ip"), str(ip), str("port"), str(port),
                            str("runid"), str("abc"), str("flags"), str(flags), str("master-link-status"),
                            str(link), str("master-host"), str("127.0.0.1"), str("slave-priority"),
                            str("100")});
}

TEST(Address, ParsesNumericAddressesOnly) {
  EXPECT_EQ(Address::parse("127.0.0.1:6379"), (Address{"127.0.0.1", 6379}));
  EXPECT_EQ(Address::parse("[::1]:26379"), (Address{"::1", 26379}));
  EXPECT_EQ(Address::parse("10.1.2.3:1"), (Address{"10.1.2.3", 1}));
  EXPECT_EQ(Address::parse("10.1.2.3:65535"), (Address{"10.1.2.3", 65535}));
  for (const char* bad :
       {"", "127.0.0.1", "127.0.0.1:", ":6379", "localhost:6379", "127.0.0.1:0", "127.0.0.1:65536",
        "127.0.0.1:-1", "127.0.0.1:63 79", "127.0.0.1:6379x", "::1:6379", "[::1]6379",
        "[::1]:", "[127.0.0.1]:6379", "127.0.0.1:+6379", "1.2.3:6379", "127.0.0.1:0006379"}) {
    EXPECT_FALSE(Address::parse(bad).has_value()) << bad;
  }
}

TEST(Address, ToStringRoundTrips) {
  EXPECT_EQ((Address{"127.0.0.1", 6379}).to_string(), "127.0.0.1:6379");
  EXPECT_EQ((Address{"::1", 6379}).to_string(), "[::1]:6379");
  for (const char* s : {"127.0.0.1:6379", "[::1]:26379", "[fe80::1]:1"})
    EXPECT_EQ(Address::parse(s)->to_string(), s);
  EXPECT_LT((Address{"127.0.0.1", 6379}), (Address{"127.0.0.1", 6380}));
}

TEST(SentinelSettings, Validate) {
  const SentinelSettings good{.sentinels = {{"127.0.0.1", 26379}}, .master_name = "users"};
  EXPECT_NO_THROW(good.validate());
  auto with = [&](auto change) {
    SentinelSettings s = good;
    change(s);
    return s;
  };
  EXPECT_THROW(with([](auto& s) { s.sentinels.clear(); }).validate(), std::invalid_argument);
  EXPECT_THROW(with([](auto& s) { s.sentinels = {{"localhost", 26379}}; }).validate(), std::invalid_argument);
  EXPECT_THROW(with([](auto& s) { s.sentinels = {{"127.0.0.1", 0}}; }).validate(), std::invalid_argument);
  EXPECT_THROW(with([](auto& s) { s.master_name = ""; }).validate(), std::invalid_argument);
  EXPECT_THROW(with([](auto& s) { s.master_name = "a b"; }).validate(), std::invalid_argument);
  EXPECT_THROW(with([](auto& s) { s.source_address = "host"; }).validate(), std::invalid_argument);
  EXPECT_NO_THROW(with([](auto& s) { s.source_address = "127.0.1.1"; }).validate());
  EXPECT_THROW(with([](auto& s) { s.query_timeout = 0ms; }).validate(), std::invalid_argument);
  EXPECT_THROW(with([](auto& s) { s.connect_timeout = 0ms; }).validate(), std::invalid_argument);
  EXPECT_THROW(with([](auto& s) { s.refresh_interval = 0ms; }).validate(), std::invalid_argument);
  EXPECT_THROW(with([](auto& s) { s.reconnect.multiplier = 0.5; }).validate(), std::invalid_argument);
}

TEST(SentinelReplies, MasterAddress) {
  EXPECT_EQ(parse_master_address(Reply::from_array({str("127.0.0.1"), str("6380")})),
            (Address{"127.0.0.1", 6380}));
  EXPECT_FALSE(parse_master_address(Reply::nil()));  // the sentinel does not know the name
  EXPECT_FALSE(parse_master_address(Reply::from_error("ERR unknown")));
  EXPECT_FALSE(parse_master_address(Reply::from_array({str("redis-1.example"), str("6380")})));
  EXPECT_FALSE(parse_master_address(Reply::from_array({str("127.0.0.1"), str("0")})));
  EXPECT_FALSE(parse_master_address(Reply::from_array({str("127.0.0.1")})));
  EXPECT_FALSE(parse_master_address(Reply::from_array({str("127.0.0.1"), Reply::from_integer(6380)})));
}

TEST(SentinelReplies, ReplicaHealth) {
  EXPECT_TRUE(replica_is_healthy("slave", "ok"));
  EXPECT_FALSE(replica_is_healthy("slave", "err"));
  EXPECT_FALSE(replica_is_healthy("s_down,slave", "ok"));
  EXPECT_FALSE(replica_is_healthy("slave,o_down", "ok"));
  EXPECT_FALSE(replica_is_healthy("slave,disconnected", "ok"));
  EXPECT_TRUE(replica_is_healthy("slave,promoted", "ok"));
  EXPECT_TRUE(replica_is_healthy("slave,s_downish", "ok")) << "whole flags, not prefixes";
}

TEST(SentinelReplies, ReplicasKeepsTheHealthyOnesSortedWithoutTheMaster) {
  const Reply reply = Reply::from_array({
      replica_entry("127.0.0.1", "7002", "slave"),
      replica_entry("127.0.0.1", "7001", "slave"),
      replica_entry("127.0.0.1", "7003", "s_down,slave,disconnected"),
      replica_entry("127.0.0.1", "7004", "slave", "err"),
      replica_entry("127.0.0.1", "7005", "slave"),  // the master, listed stale as a replica
      replica_entry("host.example", "7006", "slave"),
      replica_entry("127.0.0.1", "7001", "slave"),       // a duplicate
      Reply::from_array({str("ip"), str("127.0.0.1")}),  // no port, flags: skipped
      str("garbage"),
  });
  const auto got = parse_replicas(reply, Address{"127.0.0.1", 7005});
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, (std::vector<Address>{{"127.0.0.1", 7001}, {"127.0.0.1", 7002}}));
  EXPECT_EQ(parse_replicas(Reply::from_array({}))->size(), 0u);
  EXPECT_FALSE(parse_replicas(Reply::from_error("ERR No such master with that name")));
}

TEST(SentinelReplies, Role) {
  EXPECT_EQ(
      parse_role(Reply::from_array({str("master"), Reply::from_integer(3129659), Reply::from_array({})})),
      "master");
  EXPECT_EQ(parse_role(Reply::from_array({str("slave"), str("127.0.0.1"), Reply::from_integer(9999),
                                          str("connected"), Reply::from_integer(3167038)})),
            "slave");
  EXPECT_FALSE(parse_role(Reply::from_error("NOAUTH Authentication required.")));
  EXPECT_FALSE(parse_role(Reply::from_array({})));
  EXPECT_FALSE(parse_role(Reply::from_status("OK")));
}

TEST(SentinelMessages, SwitchMaster) {
  const auto sw = parse_switch_master("users 127.0.0.1 17389 127.0.0.1 17390");
  ASSERT_TRUE(sw);
  EXPECT_EQ(sw->name, "users");
  EXPECT_EQ(sw->from, (Address{"127.0.0.1", 17389}));
  EXPECT_EQ(sw->to, (Address{"127.0.0.1", 17390}));
  EXPECT_TRUE(parse_switch_master("m ::1 1 ::1 2"));
  EXPECT_FALSE(parse_switch_master("users 127.0.0.1 17389 127.0.0.1"));
  EXPECT_FALSE(parse_switch_master("users 127.0.0.1 17389 127.0.0.1 17390 extra"));
  EXPECT_FALSE(parse_switch_master("users 127.0.0.1 17389 redis-2 17390"));
  EXPECT_FALSE(parse_switch_master("users 127.0.0.1 17389 127.0.0.1 0"));
  EXPECT_FALSE(parse_switch_master(""));
}

TEST(SentinelMessages, InstanceEvents) {
  auto e = parse_instance_event("master users 127.0.0.1 17389");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->type, "master");
  EXPECT_EQ(e->master_name, "users");
  e = parse_instance_event("master users 127.0.0.1 17389 #quorum 2/2");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->master_name, "users");
  e = parse_instance_event("slave 127.0.0.1:17390 127.0.0.1 17390 @ users 127.0.0.1 17389");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->type, "slave");
  EXPECT_EQ(e->master_name, "users");
  e = parse_instance_event("sentinel 0f3c 127.0.0.1 17501 @ other 127.0.0.1 1");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->type, "sentinel");
  EXPECT_EQ(e->master_name, "other");
  EXPECT_FALSE(parse_instance_event("slave 127.0.0.1:17390 127.0.0.1 17390 @"));
  EXPECT_FALSE(parse_instance_event("master users"));
}

TEST(SentinelMessages, Pushes) {
  auto p = parse_push(Reply::from_array({str("message"), str("+switch-master"), str("a b c d e")}));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind, "message");
  EXPECT_EQ(p->channel, "+switch-master");
  EXPECT_EQ(p->payload, "a b c d e");
  p = parse_push(Reply::from_array({str("subscribe"), str("+sdown"), Reply::from_integer(2)}));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind, "subscribe");
  EXPECT_EQ(p->payload, "2");
  p = parse_push(Reply::from_array({str("pong"), str("")}));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind, "pong");
  EXPECT_FALSE(parse_push(Reply::from_status("PONG")));
  EXPECT_FALSE(parse_push(Reply::from_array({})));
}

// What the subscriber sends is what a reply reader (and so a server) reads back as the same array.
TEST(SentinelMessages, RespCommandRoundTripsThroughTheReader) {
  std::vector<std::string> args{"SUBSCRIBE"};
  for (const auto& c : sentinel_channels())
    args.push_back(c);
  args.push_back(std::string("bin\0ary\r\n", 9));
  const std::string wire = resp_command(args);
  ReplyReader reader;
  reader.feed(wire);
  Reply r;
  ASSERT_EQ(reader.next(r), ReplyReader::Status::reply);
  ASSERT_TRUE(r.is_array());
  ASSERT_EQ(r.elements.size(), args.size());
  for (std::size_t i = 0; i < args.size(); ++i)
    EXPECT_EQ(r.elements[i].str, args[i]);
  EXPECT_EQ(resp_command({"PING"}), "*1\r\n$4\r\nPING\r\n");
}

}  // namespace
}  // namespace clients::redis::detail
