// faultproxy-cli: a drop-in for toxiproxy-cli 2.12. The same commands, aliases, flags, help texts,
// output (TTY and piped), error messages and exit codes:
//   0  success (also for help and --version)
//   1  an error: its message on stderr (toxiproxy-cli's text, followed by an empty line when
//      toxiproxy-cli prints one), usage help on stdout where toxiproxy-cli shows it
//   3  an unknown command or subcommand ("No help topic for 'x'")
// Deliberate differences, where toxiproxy-cli's behaviour is a bug or an accident:
//   - a flag parsing error ("Incorrect Usage: ...") goes to stderr and exits 1 (toxiproxy-cli: 0);
//   - `-a k1=v1,k2=v2` is split at commas, as urfave/cli >= 2.4 does (the 2.3.0 build of the
//     transcript sent "v1,k2=v2" as a string value, which the server rejects);
//   - an error body that is not Toxiproxy's JSON (a 404 for an unknown path) is reported as
//     "HTTP 404: 404 page not found" instead of a JSON decoding error;
//   - names are percent-encoded as one path segment ("a b/c" -> a%20b%2Fc), where Go's client
//     would cut a name at '?' or '#' and reject a '%';
//   - trailing slashes of -h/TOXIPROXY_URL are dropped; https is refused with a clear message;
//   - every request has a deadline (FAULTPROXY_CLI_TIMEOUT_MS, see main.cpp; connect: 5 s).
// As in toxiproxy-cli, `toxic update` without --toxicity sets the toxicity back to 1.
// faultproxy's extension: `toxic add|update -a client_cidr=127.0.1.0/24`, `-a start_after_ms=N` and
// `-a duration_ms=N` set the toxic-level fields (sent beside the attributes; `client_cidr=` clears
// the filter), so no new flag changes the help.
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
