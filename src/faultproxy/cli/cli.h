// faultproxy-cli: a drop-in for toxiproxy-cli 2.12. The same commands, aliases, flags, help texts,
// output (TTY and piped), error messages and exit codes:
//   0  success (also for help and --version)
//   1  an error: its message on stderr (toxiproxy-cli's text, followed by an empty line when
//      toxiproxy-cli prints one), usage help on stdout where toxiproxy-cli shows it
//   3  an unknown command or subcommand ("No help topic for 'x'")
// Deliberate differences (toxiproxy-cli behaviour that is a bug): a flag parsing error ("Incorrect
// Usage: ...") exits 1 instead of 0, and goes to stderr.
//
// `run_cli` is the whole program minus the process: arguments, environment, output streams, whether
// stdout is a terminal, and how to reach the server are parameters, so tests drive it directly.
//
// Usage:
//   CliIo io{std::cout, std::cerr, isatty(1) == 1};
//   return run_cli("faultproxy-cli", {"-h", "127.0.0.1:8474", "list"}, env, io,
//                  [](const std::string& url) { return std::make_unique<HttpClient>(url,
//                  HttpClientSettings{}); });
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "faultproxy/cli/http_client.h"

namespace faultproxy::cli {

struct CliEnvironment {
  std::optional<std::string> toxiproxy_url;  // TOXIPROXY_URL: the server when -h is not given
};

struct CliIo {
  std::ostream& out;
  std::ostream& err;
  bool tty = false;  // stdout is a terminal: colours, headers and hints
};

// Makes the transport to the server at `endpoint` (as given by -h / TOXIPROXY_URL / the default).
using TransportFactory = std::function<std::unique_ptr<Transport>(const std::string& endpoint)>;

// `args` excludes the program name. Returns the exit code.
int run_cli(std::string_view program, const std::vector<std::string>& args, const CliEnvironment& env,
            CliIo io, const TransportFactory& transports);

}  // namespace faultproxy::cli
