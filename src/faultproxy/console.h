// The web console on the API port (GET /ui: static files compiled into the binary), the toxic
// types' description it builds its forms from (GET /toxic-types), and the API's guard against
// cross-site requests from browsers, which the console passes only as a same-origin page.
//
// Api::handle routes to these; they are pure functions of the request.
//
// Usage:
//   if (path == "/ui" || path.starts_with("/ui/")) return console::serve_file(req, path, api_host);
//   if (auto why = console::cross_site_refusal(req, api_host, /*browser=*/true)) refuse(*why);
//   std::string body = console::toxic_types_json();
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/http_server.h"
#include "faultproxy/toxics.h"

namespace faultproxy::console {

// The header the console sends with every API request. A page of another origin cannot send it
// without a CORS preflight, which the API never grants.
inline constexpr std::string_view kConsoleHeader = "X-Faultproxy-Console";

// GET /ui, /ui/ (index.html) and /ui/<file>: the embedded file with its Content-Type, an ETag
// (304 for a matching If-None-Match), Cache-Control: no-cache, a Content-Security-Policy allowing
// only 'self', nosniff and no framing. Unknown files: 404.
// Served only under a trusted Host (trusted_host); else 403.
common::http::Response serve_file(const common::http::Request& req, std::string_view path,
                                  std::string_view api_host);

// Why `req` is refused as a request a page of another site (or a DNS-rebound name) could have
// made, or nullopt. Every request carrying a browser's Origin or Sec-Fetch-Site is checked; with
// `browser` (a Mozilla/ user agent) also the Host, a missing Origin on a change, and the body's
// Content-Type. `api_host` is the -host flag: a name trusted besides IP literals and localhost.
std::optional<std::string> cross_site_refusal(const common::http::Request& req, std::string_view api_host,
                                              bool browser);

// Whether the Host header names this server in a way no other site can: an IP literal,
// localhost, or `api_host` (DNS rebinding makes any other name suspect).
bool trusted_host(std::string_view host_header, std::string_view api_host);

// What the API's validation enforces on one attribute, for the console's form: the range it
// accepts, the choices, the unit and a line of help. The registry (toxics.h) gives the names,
// kinds and defaults; this only adds to it (the API tests check both agree).
struct AttributeHint {
  std::string_view type;       // "latency"; "" for the fields every toxic has (name, stream, ...)
  std::string_view attribute;  // "jitter"
  std::string_view unit;       // "ms", "KB/s", "" for none
  std::optional<double> min, max;
  std::vector<std::string_view> options;  // the only values accepted, if any
  std::string_view help;
};
const std::vector<AttributeHint>& attribute_hints();

// GET /toxic-types: every toxic type with its attributes (kind, default, range, unit, help) and
// the fields every toxic has. README "Web console" documents the shape.
std::string toxic_types_json();

}  // namespace faultproxy::console
