// Built by two tests (CMakeLists.txt), never linked: a header line's name is checked when it is
// compiled, so the call below builds with an HTTP token and does not with a name that is not one.
#include "common/http_server.h"

void add_a_line(common::http::Response& res) {
#if defined(LINE_NAME_CASE_not_a_token)
  res.add_line("Set-Cookie: s=1\r\nX-Id", "v");
#else
  res.add_line("X-Id", "v");
#endif
}
