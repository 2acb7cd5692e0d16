// Proves the test harness itself: real servers start, replicate, pause and restart.
#include <gtest/gtest.h>

#include <thread>

#include "testing/servers.h"

namespace testing_support {
namespace {

TEST(Servers, RedisReplicaFollowsMasterAndPauseBlackholes) {
  TempDir dir;
  auto master = RedisServer::start(dir.path() / "m");
  auto replica = RedisServer::start(dir.path() / "r", master.port());
  replica.wait_replication_up();
  EXPECT_EQ(master.command("SET k v"), "+OK\r\n");
  std::string got;
  for (int i = 0; i < 200 && got != "$1\r\nv\r\n"; ++i) {
    got = replica.command("GET k");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(got, "$1\r\nv\r\n");
  EXPECT_NE(replica.command("SET k w").find("READONLY"), std::string::npos);

  master.pause();
  EXPECT_TRUE(port_accepts(master.port())) << "a paused server still accepts TCP (kernel backlog)";
  EXPECT_THROW(master.command("PING"), std::runtime_error) << "but never answers";
  master.resume();
  EXPECT_EQ(master.command("PING"), "+PONG\r\n");

  master.stop();
  EXPECT_FALSE(port_accepts(master.port()));
  master.restart();
  EXPECT_EQ(master.command("PING"), "+PONG\r\n");
}

TEST(Servers, NeverAdoptsAnotherServerOnItsPort) {
  TempDir dir;
  auto first = RedisServer::start(dir.path() / "a");
  EXPECT_THROW(RedisServer::start(dir.path() / "b", std::nullopt, first.port()), std::runtime_error);
  EXPECT_EQ(first.command("PING"), "+PONG\r\n");
}

TEST(Servers, MariaDbRunsSqlAndKeepsDataAcrossRestart) {
  TempDir dir;
  auto db = MariaDbServer::start(dir.path() / "db");
  db.sql("CREATE DATABASE t; CREATE TABLE t.x (v INT); INSERT INTO t.x VALUES (42);");
  EXPECT_EQ(db.sql("SELECT v FROM t.x"), "42\n");
  db.restart();
  EXPECT_EQ(db.sql("SELECT v FROM t.x"), "42\n");
  EXPECT_THROW(db.sql("SELECT * FROM nope.nope"), std::runtime_error);
}

}  // namespace
}  // namespace testing_support
