// faultproxy-cli: see cli.h. Environment:
//   TOXIPROXY_URL               the server when -h/--host is not given (default http://localhost:8474)
//   FAULTPROXY_CLI_TIMEOUT_MS   deadline of each API request in ms (default 30000, as Go's client);
//                               connecting is bounded by min(5000, this)
// The program calls itself by the name it was invoked as (urfave/cli's default), so a symlink named
// toxiproxy-cli prints exactly what toxiproxy-cli prints.
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "faultproxy/cli/cli.h"

int main(int argc, char** argv) {
  using namespace faultproxy::cli;
  std::string program = argc > 0 ? std::filesystem::path(argv[0]).filename().string() : "faultproxy-cli";
  if (program.empty()) program = "faultproxy-cli";

  HttpClientSettings settings;
  if (const char* timeout = std::getenv("FAULTPROXY_CLI_TIMEOUT_MS");
      timeout != nullptr && *timeout != '\0') {
    long ms = 0;
    const char* end = timeout + std::char_traits<char>::length(timeout);
    auto [ptr, ec] = std::from_chars(timeout, end, ms);
    if (ec != std::errc() || ptr != end || ms <= 0) {
      std::cerr << "FAULTPROXY_CLI_TIMEOUT_MS must be a positive number of milliseconds, got '" << timeout
                << "'\n";
      return 1;
    }
    settings.request_timeout = std::chrono::milliseconds(ms);
  }

  CliEnvironment env;
  if (const char* url = std::getenv("TOXIPROXY_URL")) env.toxiproxy_url = url;

  std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);
  CliIo io{std::cout, std::cerr, ::isatty(STDOUT_FILENO) == 1};
  const int code = run_cli(program, args, env, io, [&settings](const std::string& endpoint) {
    return std::make_unique<HttpClient>(endpoint, settings);
  });
  std::cout.flush();
  return code;
}
