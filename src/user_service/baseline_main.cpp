// user-service-baseline: the same HTTP stack as user-service (common::http::Server, one event-loop
// thread, the same server settings) answering every request with a constant user body. It is the
// reference the benchmark compares cache-hit GETs against (issue 4: at least 0.5x of this).
//
//   user-service-baseline 127.0.0.1:18080
//   wrk -c50 -t2 -d10s http://127.0.0.1:18080/users/u-1
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <iostream>

#include "common/http_server.h"
#include "common/version.h"
#include "user_service/api.h"
#include "user_service/config.h"

int main(int argc, char** argv) {
  if (common::print_version_if_asked(argc, argv, "user-service-baseline")) return 0;
  namespace asio = boost::asio;
  namespace bhttp = boost::beast::http;
  user_service::HostPort listen{"127.0.0.1", 18080};
  if (argc > 1) {
    user_service::Config c;
    if (auto e = user_service::apply_flag(c, "listen", argv[1]); !e.empty()) {
      std::cerr << "user-service-baseline: " << e << "\n";
      return 2;
    }
    listen = c.listen;
  }
  asio::io_context io(1);
  common::http::ServerSettings settings;
  settings.body_limit = 64 * 1024;
  common::http::Server server(
      io.get_executor(), settings,
      [](common::http::Request& req,
         const common::http::RequestInfo&) -> asio::awaitable<common::http::Response> {
        auto res = common::http::make_response(req, bhttp::status::ok, R"({"id":"u-1","name":"Jack"})",
                                               "application/json");
        res.add_line("X-Data-Source", "cache");  // as the service writes it
        co_return res;
      },
      &user_service::Api::error_response);
  if (auto ec = server.listen({asio::ip::make_address(listen.host), listen.port})) {
    std::cerr << "user-service-baseline: cannot listen on " << listen.to_string() << ": " << ec.message()
              << "\n";
    return 1;
  }
  server.start();
  asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code&, int) { io.stop(); });
  io.run();
  return 0;
}
