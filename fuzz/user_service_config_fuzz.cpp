// Fuzz target: user-service's configuration, as main() loads it (user_service::load_config): a JSON
// file, USER_SERVICE_* environment variables and --key=value flags.
//
// Input layout: the file's text, then optionally "\n%%\n" and environment entries one per line,
// then optionally "\n%%\n" and command-line arguments one per line. Checked, besides memory safety
// and UB: an accepted configuration validates; GET /config's JSON (config_to_json) is valid JSON
// and, loaded again as a file, gives the same configuration back.
#include <unistd.h>

#include <boost/json.hpp>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "common/log.h"
#include "support/fuzz_support.h"
#include "user_service/config.h"

namespace {

using fuzz_support::check;

std::vector<std::string> lines(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty() && out.size() < 64) {
    const auto nl = text.find('\n');
    out.emplace_back(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
  }
  return out;
}

std::string config_path;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  common::log::set_level(common::log::Level::off);
  const char* dir = std::getenv("TMPDIR");
  config_path = std::string(dir && *dir ? dir : "/tmp") + "/user-service-config-fuzz-" +
                std::to_string(getpid()) + ".json";
  std::atexit([] { std::remove(config_path.c_str()); });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace user_service;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  static constexpr std::string_view kSep = "\n%%\n";
  std::string_view file = text, env_text, argv_text;
  if (const auto s1 = text.find(kSep); s1 != std::string_view::npos) {
    file = text.substr(0, s1);
    env_text = text.substr(s1 + kSep.size());
    if (const auto s2 = env_text.find(kSep); s2 != std::string_view::npos) {
      argv_text = env_text.substr(s2 + kSep.size());
      env_text = env_text.substr(0, s2);
    }
  }
  {
    std::ofstream out(config_path, std::ios::binary | std::ios::trunc);
    out.write(file.data(), static_cast<std::streamsize>(file.size()));
  }
  // Strings with embedded NULs cannot be environment entries or arguments: cut them there.
  auto env = lines(env_text);
  auto args = lines(argv_text);
  std::vector<const char*> envp, argv = {"user-service", "--config", config_path.c_str()};
  for (auto& e : env)
    envp.push_back(e.c_str());
  envp.push_back(nullptr);
  for (auto& a : args) {
    if (std::string_view(a.c_str()).starts_with("--config")) continue;  // only the fuzzed file is read
    argv.push_back(a.c_str());
  }
  argv.push_back(nullptr);

  const LoadedConfig loaded = load_config(static_cast<int>(argv.size() - 1), argv.data(), envp.data());
  if (loaded.help) {
    check(!loaded.usage.empty(), "--help without a usage text");
    return 0;
  }
  if (!loaded.error.empty()) return 0;

  const Config& c = loaded.config;
  check(validate(c).empty(), "load_config accepted what validate refuses");
  const std::string json = config_to_json(c);
  boost::system::error_code ec;
  const auto v = boost::json::parse(json, ec);
  check(!ec && v.is_object(), "config_to_json is not valid JSON", json);

  Config again;
  const std::string err = apply_json(again, json);
  check(err.empty(), "config_to_json does not load back", err + "\n" + json);
  check(config_to_json(again) == json, "config_to_json round trip", json + "\n" + config_to_json(again));
  return 0;
}
