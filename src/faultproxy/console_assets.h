// The web console's static files (ui/), compiled into the binary at build time by ui/embed.cmake.
//
// Usage:
//   for (const ConsoleAsset& a : console_assets())
//     if (a.path == "index.html") serve(a.bytes, a.sha256);
#pragma once

#include <string_view>
#include <vector>

namespace faultproxy {

struct ConsoleAsset {
  std::string_view path;    // relative to ui/: "index.html", "console.js"
  std::string_view bytes;   // the file's content
  std::string_view sha256;  // hex digest of the content (the ETag)
};

const std::vector<ConsoleAsset>& console_assets();

}  // namespace faultproxy
