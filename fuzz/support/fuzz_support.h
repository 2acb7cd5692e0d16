// Helpers shared by the fuzz targets in fuzz/.
//
// - isolate_network(): moves the fuzzing process into a network namespace of its own (loopback
//   only), so that targets which open sockets (faultproxy's API binds every listen address it is
//   given, the HTTP server target connects over loopback thousands of times a second) can neither
//   take a port another program on the machine needs, nor fill its TIME_WAIT table, nor reach a DNS
//   server. Call it from LLVMFuzzerInitialize, before any thread or socket exists.
// - parse_script(): the text format of the API targets' inputs: a sequence of HTTP requests,
//   readable and writable by hand so that seed corpora are meaningful:
//
//       @store=fail @master=ok            <- optional directive lines (target-specific)
//       PUT /users/u-1                    <- method and target
//       X-Request-Id: abc                 <- headers, up to an empty line
//
//       {"name":"Jack"}                   <- body, up to the separator line or the end
//       %%                                <- separator
//       GET /users/u-1
//
//   Requests are made acceptable to the HTTP parser the way Beast's parser would require (targets
//   without control characters or spaces, header names that are tokens, values without CR/LF/NUL),
//   so that the API sees nothing the real server could not hand it.
//
// Usage:
//   extern "C" int LLVMFuzzerInitialize(int*, char***) { fuzz_support::isolate_network(); return 0; }
//   for (const auto& step : fuzz_support::parse_script({data, size})) { ...step.request... }
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/http_server.h"

namespace fuzz_support {

// Enters a fresh network namespace with `lo` up (directly when privileged, else inside a new user
// namespace). Exits the process with a message if that is impossible, unless the environment sets
// FUZZ_ALLOW_HOST_NETWORK=1.
void isolate_network();

struct Step {
  std::vector<std::string> directives;  // the words of the @ lines, without the @
  common::http::Request request;
};

// At most `max_steps` steps are returned (bounding the work per input).
std::vector<Step> parse_script(std::string_view text, std::size_t max_steps = 64);

// Aborts with a message (a finding for libFuzzer) when `ok` is false.
void check(bool ok, std::string_view what, std::string_view detail = {});

}  // namespace fuzz_support
