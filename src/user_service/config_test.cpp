#include "user_service/config.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>
#include <sstream>

namespace user_service {
namespace {

TEST(Config, DefaultsAreTheDocumentedOnes) {
  const Config c;
  EXPECT_EQ(c.request_deadline.count(), 1000);
  EXPECT_EQ(c.redis.call_deadline.count(), 100);
  EXPECT_EQ(c.mysql.call_deadline.count(), 500);
  EXPECT_EQ(c.resilience.probe_interval.count(), 200);
  EXPECT_EQ(c.resilience.retry_after_s, 1u);
  EXPECT_EQ(c.redis.ttl.count(), 3600);
  EXPECT_EQ(validate(c), "");
}

TEST(Config, JsonFileSetsNestedKeys) {
  Config c;
  EXPECT_EQ(apply_json(c, R"({"listen":"127.0.0.1:9000","redis":{"master":"127.0.0.1:7000",
      "call_deadline_ms":50},"mysql":{"port":7306,"password":"s3cret"},"request_deadline_ms":700})"),
            "");
  EXPECT_EQ(c.listen.port, 9000);
  EXPECT_EQ(c.redis.master.host, "127.0.0.1");
  EXPECT_EQ(c.redis.master.port, 7000);
  EXPECT_EQ(c.redis.call_deadline.count(), 50);
  EXPECT_EQ(c.mysql.port, 7306);
  EXPECT_EQ(c.mysql.password, "s3cret");
  EXPECT_EQ(c.request_deadline.count(), 700);
}

TEST(Config, UnknownKeysAndWrongTypesAreErrors) {
  Config c;
  EXPECT_NE(apply_json(c, R"({"redis":{"mastr":"x:1"}})").find("unknown configuration key \"redis.mastr\""),
            std::string::npos);
  EXPECT_NE(apply_json(c, R"({"bogus":1})").find("unknown"), std::string::npos);
  EXPECT_NE(apply_json(c, R"({"request_deadline_ms":"fast"})"), "");
  EXPECT_NE(apply_json(c, R"({"request_deadline_ms":-5})"), "");
  EXPECT_NE(apply_json(c, R"({"request_deadline_ms":0})").find("out of range"), std::string::npos);
  EXPECT_NE(apply_json(c, R"({"redis":{"master":7000}})"), "");
  EXPECT_NE(apply_json(c, R"({"redis":{"master":"nohost"}})"), "");
  EXPECT_NE(apply_json(c, R"({"redis":{"master":"h:99999"}})"), "");
  EXPECT_NE(apply_json(c, R"({"redis":"x"})"), "");
  EXPECT_NE(apply_json(c, R"({"mysql":{"port":{"a":1}}})"), "");
  EXPECT_NE(apply_json(c, "[1,2]"), "");
  EXPECT_NE(apply_json(c, "{not json"), "");
}

TEST(Config, AddressListsFromFileEnvironmentAndFlags) {
  Config c;
  EXPECT_EQ(apply_json(c, R"({"redis":{"sentinels":["127.0.0.1:26379","127.0.0.2:26380"],"master_name":"m"},
      "mysql":{"endpoints":["127.0.0.1:3306","[::1]:3307"]},"source_address":"127.0.1.2",
      "instance_name":"user-service-2"})"),
            "");
  ASSERT_EQ(c.redis.sentinels.size(), 2u);
  EXPECT_EQ(c.redis.sentinels[1].to_string(), "127.0.0.2:26380");
  EXPECT_EQ(c.redis.master_name, "m");
  ASSERT_EQ(c.mysql.endpoints.size(), 2u);
  EXPECT_EQ(c.mysql.endpoints[1].host, "::1");
  EXPECT_EQ(c.source_address, "127.0.1.2");
  EXPECT_EQ(validate(c), "");
  const char* env[] = {"USER_SERVICE_MYSQL_ENDPOINTS=127.0.0.1:1,127.0.0.1:2", nullptr};
  EXPECT_EQ(apply_env(c, env), "");
  ASSERT_EQ(c.mysql.endpoints.size(), 2u);
  EXPECT_EQ(c.mysql.endpoints[1].port, 2);
  EXPECT_EQ(apply_flag(c, "redis.sentinels", ""), "");
  EXPECT_TRUE(c.redis.sentinels.empty());
  const auto json = boost::json::parse(config_to_json(c));
  EXPECT_EQ(json.at("mysql").at("endpoints").as_array().size(), 2u);
  EXPECT_EQ(json.at("mysql").at("endpoints").at(0).as_string(), "127.0.0.1:1");

  EXPECT_NE(apply_json(c, R"({"mysql":{"endpoints":"127.0.0.1:1"}})"), "");
  EXPECT_NE(apply_json(c, R"({"mysql":{"endpoints":[1]}})"), "");
  EXPECT_NE(apply_json(c, R"({"mysql":{"endpoints":["nohost"]}})"), "");
  EXPECT_NE(apply_flag(c, "mysql.endpoints", "127.0.0.1:1,,"), "");
  Config d;
  EXPECT_EQ(apply_json(d, R"({"redis":{"sentinels":["localhost:26379"]}})"), "");
  EXPECT_NE(validate(d).find("numeric"), std::string::npos);
  Config e;
  e.source_address = "my-host";
  EXPECT_NE(validate(e).find("source_address"), std::string::npos);
}

TEST(Config, EnvironmentOverridesAndUnknownVariablesAreErrors) {
  Config c;
  const char* env[] = {"PATH=/bin", "USER_SERVICE_REDIS_MASTER=127.0.0.1:7001",
                       "USER_SERVICE_MYSQL_PORT=7307", "USER_SERVICE_CACHE_REPAIR_QUEUE_CAPACITY=5", nullptr};
  EXPECT_EQ(apply_env(c, env), "");
  EXPECT_EQ(c.redis.master.port, 7001);
  EXPECT_EQ(c.mysql.port, 7307);
  EXPECT_EQ(c.cache.repair_queue_capacity, 5u);
  const char* bad[] = {"USER_SERVICE_REDIS_MASTR=1", nullptr};
  EXPECT_NE(apply_env(c, bad).find("unknown environment variable USER_SERVICE_REDIS_MASTR"),
            std::string::npos);
  const char* bad_value[] = {"USER_SERVICE_MYSQL_PORT=abc", nullptr};
  EXPECT_NE(apply_env(c, bad_value), "");
  EXPECT_EQ(env_name("redis.master"), "USER_SERVICE_REDIS_MASTER");
}

TEST(Config, PrecedenceIsFileThenEnvThenFlags) {
  const std::string path = ::testing::TempDir() + "/us-config.json";
  {
    FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_TRUE(f);
    std::fputs(R"({"redis":{"master":"127.0.0.1:1001","replica":"127.0.0.1:1002"},"mysql":{"port":1003}})",
               f);
    std::fclose(f);
  }
  const char* env[] = {"USER_SERVICE_REDIS_REPLICA=127.0.0.1:2002", "USER_SERVICE_MYSQL_PORT=2003", nullptr};
  const char* argv[] = {"user-service",      "--config",    path.c_str(),
                        "--mysql.port=3003", "--log_level", "debug"};
  const auto loaded = load_config(6, argv, env);
  ASSERT_EQ(loaded.error, "");
  EXPECT_EQ(loaded.config.redis.master.port, 1001);   // file
  EXPECT_EQ(loaded.config.redis.replica.port, 2002);  // env over file
  EXPECT_EQ(loaded.config.mysql.port, 3003);          // flag over env
  EXPECT_EQ(loaded.config.log_level, "debug");

  const char* unknown[] = {"user-service", "--nope=1"};
  EXPECT_NE(load_config(2, unknown, nullptr).error, "");
  const char* missing[] = {"user-service", "--config", "/nonexistent/x.json"};
  EXPECT_NE(load_config(3, missing, nullptr).error, "");
  const char* named[] = {"user-service", "--redis.master=localhost:6379"};
  EXPECT_NE(load_config(2, named, nullptr).error.find("numeric IP"), std::string::npos);
  const char* prefix[] = {"user-service", "--redis.key_prefix=t"};
  EXPECT_NE(load_config(2, prefix, nullptr).error, "");
  const char* bad_level[] = {"user-service", "--log_level=loud"};
  EXPECT_NE(load_config(2, bad_level, nullptr).error, "");
}

TEST(Config, JsonOutputRedactsThePasswordAndRoundTrips) {
  Config c;
  c.mysql.password = "hunter2";
  c.redis.replica = {"::1", 6390};
  const std::string text = config_to_json(c);
  EXPECT_EQ(text.find("hunter2"), std::string::npos);
  const auto v = boost::json::parse(text);
  EXPECT_EQ(v.at("mysql").at("password").as_string(), "***");
  EXPECT_EQ(v.at("redis").at("call_deadline_ms").as_int64(), 100);
  EXPECT_EQ(v.at("request_deadline_ms").as_int64(), 1000);
  EXPECT_EQ(v.at("redis").at("replica").as_string(), "[::1]:6390");
  // Everything but the redacted password reads back as the same configuration.
  Config back;
  std::string without_password = text;
  ASSERT_EQ(apply_json(back, without_password), "");
  EXPECT_EQ(back.redis.replica.host, "::1");
  EXPECT_EQ(config_to_json(back).size(), text.size());
  for (const auto& key : config_keys())
    EXPECT_FALSE(key.empty());
}

// Found by fuzzing: a key prefix of raw bytes was accepted, and GET /config answered invalid JSON.
TEST(Config, TextSettingsMustBeValidUtf8) {
  Config c;
  c.redis.key_prefix = "\xff\xfeuser:";
  EXPECT_EQ(validate(c), "redis.key_prefix must be valid UTF-8");
  c.redis.key_prefix = "usr:";
  c.mysql.user = "ro\xc3";
  EXPECT_EQ(validate(c), "mysql.user must be valid UTF-8");
  c.mysql.user = "r\xc3\xb6ot";  // "röot": UTF-8 is fine
  EXPECT_EQ(validate(c), "");
  EXPECT_TRUE(boost::json::parse(config_to_json(c)).is_object());
  const char* argv[] = {"user-service", "--redis.key_prefix=\x80x:"};
  EXPECT_NE(load_config(2, argv, nullptr).error.find("UTF-8"), std::string::npos);
}

TEST(Config, HelpListsEveryKey) {
  const char* argv[] = {"user-service", "--help"};
  const auto loaded = load_config(2, argv, nullptr);
  EXPECT_TRUE(loaded.help);
  for (const auto& key : config_keys()) {
    EXPECT_NE(loaded.usage.find("--" + key), std::string::npos) << key;
    EXPECT_NE(loaded.usage.find(env_name(key)), std::string::npos) << key;
  }
}

TEST(Config, VersionStopsReadingArguments) {
  const char* argv[] = {"user-service", "--version", "--no-such-flag"};
  const auto loaded = load_config(3, argv, nullptr);
  EXPECT_TRUE(loaded.version);
  EXPECT_TRUE(loaded.error.empty()) << loaded.error;
}

// Found by fuzz/user_service_config: `--help` followed by a bad argument came back as help with an
// empty usage text (main printed nothing and exited 0). As Go's flag package does, arguments are
// read in order: --help stops there and prints the usage; an error before it is reported.
TEST(Config, HelpStopsReadingArguments) {
  const char* help_first[] = {"user-service", "--help", "--no-such-flag", "stray"};
  const auto loaded = load_config(4, help_first, nullptr);
  EXPECT_TRUE(loaded.help);
  EXPECT_NE(loaded.usage.find("usage: user-service"), std::string::npos);

  const char* error_first[] = {"user-service", "--no-such-flag", "--help"};
  const auto failed = load_config(3, error_first, nullptr);
  EXPECT_FALSE(failed.help);
  EXPECT_NE(failed.error.find("--no-such-flag"), std::string::npos);
}

}  // namespace
}  // namespace user_service

namespace user_service {
namespace {

// The documented example holds every key, and only known keys.
TEST(Config, ExampleFileListsEveryKey) {
  const char* argv[] = {"user-service", "--config", USER_SERVICE_EXAMPLE_CONFIG};
  const auto loaded = load_config(3, argv, nullptr);
  ASSERT_EQ(loaded.error, "");
  std::ifstream in(USER_SERVICE_EXAMPLE_CONFIG);
  std::stringstream text;
  text << in.rdbuf();
  const auto v = boost::json::parse(text.str());
  for (const auto& key : config_keys()) {
    const boost::json::value* node = &v;
    std::string_view path = key;
    for (auto dot = path.find('.'); dot != std::string_view::npos; dot = path.find('.')) {
      node = node->as_object().if_contains(path.substr(0, dot));
      ASSERT_NE(node, nullptr) << key;
      path = path.substr(dot + 1);
    }
    EXPECT_NE(node->as_object().if_contains(path), nullptr) << key;
  }
}

TEST(Config, AdminListenerDefaultsAndMustDifferFromThePublicOne) {
  Config c;
  EXPECT_EQ(c.admin.listen.to_string(), "127.0.0.1:9080");
  EXPECT_EQ(validate(c), "");
  EXPECT_EQ(apply_flag(c, "admin.listen", "127.0.0.1:8080"), "");
  EXPECT_NE(validate(c).find("admin.listen must differ"), std::string::npos) << validate(c);
  EXPECT_NE(apply_flag(c, "admin.listen", "localhost"), "");
}

TEST(Config, ReloadTakesOnlyWhatCanChangeInFlight) {
  Config running;
  Config loaded = running;
  EXPECT_EQ(apply_json(loaded, R"({"log_level":"debug","mysql":{"call_deadline_ms":300,"pool_size":9},
                                   "resilience":{"breaker_failures":5},"listen":"127.0.0.1:9000"})"),
            "");
  const Reload r = plan_reload(running, loaded);
  EXPECT_EQ(r.applied,
            (std::vector<std::string>{"log_level", "mysql.call_deadline_ms", "resilience.breaker_failures"}));
  EXPECT_EQ(r.need_restart, (std::vector<std::string>{"listen", "mysql.pool_size"}));
  EXPECT_EQ(r.effective.log_level, "debug");
  EXPECT_EQ(r.effective.mysql.call_deadline.count(), 300);
  EXPECT_EQ(r.effective.resilience.breaker_failures, 5u);
  EXPECT_EQ(r.effective.mysql.pool_size, running.mysql.pool_size);
  EXPECT_EQ(r.effective.listen, running.listen);
  // Nothing changed: nothing to do.
  const Reload same = plan_reload(running, running);
  EXPECT_TRUE(same.applied.empty());
  EXPECT_TRUE(same.need_restart.empty());
}

}  // namespace
}  // namespace user_service
