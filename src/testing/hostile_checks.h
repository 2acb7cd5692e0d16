// GoogleTest checks and HTTP attacks shared by the hostile-client integration tests of every HTTP
// server we ship (user-service, faultproxy's API: src/*/hostile_clients_itest.cpp). The attacks
// and the normal client themselves are in hostile_clients.h; this header adds what each test
// asserts around them, so that both servers are held to the same standard.
//
// The attacks repeat for `duration`, assert every answer (ASSERT_*: wrap the call in
// ASSERT_NO_FATAL_FAILURE) and report how many connections they made through `connections`.
//
// Usage:
//   auto normal = StartNormalClient();
//   std::size_t n = 0;
//   ASSERT_NO_FATAL_FAILURE(hostile::huge_headers_attack(port, "/health/live", 3000ms, n));
//   hostile::expect_served(normal->stop(), "100 KB headers", 3000ms);
//   hostile::expect_descriptors_returned(server.pid(), baseline_fds);
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>

#include "testing/hostile_clients.h"
#include "testing/servers.h"

namespace testing_support::hostile {

// The last `max` bytes of a log file (printed when a test fails).
inline std::string log_tail(const std::filesystem::path& log, std::size_t max = 4000) {
  std::ifstream in(log);
  std::stringstream all;
  all << in.rdbuf();
  const std::string text = all.str();
  return text.substr(text.size() > max ? text.size() - max : 0);
}

// The normal client was served throughout `attack`: at least `min_requests` requests, none failed,
// none slower than `bound`. The figures go to the output and to the JUnit report.
inline void expect_served(const NormalClient::Stats& s, std::string_view attack, Millis bound,
                          std::size_t min_requests = 6) {
  std::cout << "[ normal client during " << attack << " ] " << s.summary() << "\n";
  ::testing::Test::RecordProperty(std::string(attack), s.summary());
  EXPECT_GE(s.requests, min_requests);
  EXPECT_EQ(s.failures, 0u) << s.first_failure;
  EXPECT_LT(s.max, bound) << s.summary();
}

// The server's open descriptors once they stop changing (three equal samples 100 ms apart, 3 s at
// most): a baseline taken right after a request would count that request's connection if the
// server had not closed it yet.
inline std::size_t settled_fds(pid_t pid) {
  std::size_t last = open_fds(pid), same = 0;
  for (int i = 0; i < 30 && same < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const std::size_t now = open_fds(pid);
    same = now == last ? same + 1 : 0;
    last = now;
  }
  return last;
}

// The attack's connections are gone: the server holds at most a few more descriptors than before
// it (waits up to 10 s for them to be closed).
inline void expect_descriptors_returned(pid_t pid, std::size_t baseline) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::size_t now = open_fds(pid);
  while (now > baseline + 8 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    now = open_fds(pid);
  }
  EXPECT_LE(now, baseline + 8) << "descriptors before the attack: " << baseline;
}

// The server survived the test and exits cleanly on SIGTERM: status 0 (LeakSanitizer, on in the
// debug build, fails it with 23 when anything leaked; any sanitizer report makes it non-zero).
inline void expect_clean_exit(Process& server, std::string_view name, const std::filesystem::path& log) {
  EXPECT_TRUE(server.running()) << name << " died under attack";
  server.stop();
  const auto status = server.wait_status();
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << name << ": exit status " << (WIFEXITED(*status) ? WEXITSTATUS(*status) : -1) << ", signal "
      << (WIFSIGNALED(*status) ? WTERMSIG(*status) : 0) << "\n"
      << log_tail(log);
}

// Rounds of 50 connections each sending `GET target` with a 100 KB header: every one is answered
// 431 and closed.
inline void huge_headers_attack(std::uint16_t port, std::string_view target, Millis duration,
                                std::size_t& connections) {
  const std::string request = "GET " + std::string(target) +
                              " HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(100 * 1024, 'a') + "\r\n\r\n";
  connections = 0;
  for (const auto end = std::chrono::steady_clock::now() + duration;
       std::chrono::steady_clock::now() < end;) {
    Flood big(port, 50);
    big.send_all(request);
    ASSERT_EQ(big.wait_closed_by_server(std::chrono::seconds(10)), 50u);
    for (const auto& answer : big.received())
      ASSERT_TRUE(answer.starts_with("HTTP/1.1 431")) << answer.substr(0, 200);
    connections += 50;
  }
}

// Rounds of 100 connections each pipelining 5 `GET target`, then garbage, then `after` (a request
// that must never run): each gets exactly 5 answers 200, a 400, and is closed.
inline void pipelined_garbage_attack(std::uint16_t port, std::string_view target, std::string_view after,
                                     Millis duration, std::size_t& connections) {
  std::string bytes;
  for (int i = 0; i < 5; ++i)
    bytes += "GET " + std::string(target) + " HTTP/1.1\r\nHost: x\r\n\r\n";
  bytes += "\x01\x02\x03 garbage \xff\xfe\r\n\r\n";
  bytes += after;
  connections = 0;
  for (const auto end = std::chrono::steady_clock::now() + duration;
       std::chrono::steady_clock::now() < end;) {
    Flood pipelined(port, 100);
    pipelined.send_all(bytes);
    ASSERT_EQ(pipelined.wait_closed_by_server(std::chrono::seconds(10)), 100u);
    for (const auto& answer : pipelined.received()) {
      std::size_t responses = 0, ok = 0;
      for (auto p = answer.find("HTTP/1.1 "); p != std::string::npos; p = answer.find("HTTP/1.1 ", p + 1)) {
        ++responses;
        if (answer.compare(p, 15, "HTTP/1.1 200 OK") == 0) ++ok;
      }
      ASSERT_EQ(ok, 5u) << answer.substr(0, 300);
      ASSERT_EQ(responses, 6u) << "nothing after the 400: " << answer.substr(0, 300);
      ASSERT_NE(answer.find("HTTP/1.1 400 Bad Request"), std::string::npos) << answer.substr(0, 300);
    }
    connections += 100;
  }
}

// Rounds of 3 x 200 connections: a complete `GET target` then FIN (answered 200, then closed), FIN
// without a byte and FIN in the middle of a header (closed at once, no answer). "At once": within
// 1.5 s, far sooner than any timeout of our servers (request 2-10 s, idle 60 s).
inline void half_closed_attack(std::uint16_t port, std::string_view target, Millis duration,
                               std::size_t& connections) {
  const std::string request = "GET " + std::string(target) + " HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string partial_request = "GET " + std::string(target) + " HTTP/1.1\r\nHost:";
  connections = 0;
  for (const auto end = std::chrono::steady_clock::now() + duration;
       std::chrono::steady_clock::now() < end;) {
    Flood complete(port, 200);
    complete.send_all(request);
    complete.half_close_all();
    Flood silent(port, 200);
    silent.half_close_all();
    Flood partial(port, 200);
    partial.send_all(partial_request);
    partial.half_close_all();
    ASSERT_EQ(complete.wait_closed_by_server(Millis(1500)), 200u);
    ASSERT_EQ(silent.wait_closed_by_server(Millis(1500)), 200u);
    ASSERT_EQ(partial.wait_closed_by_server(Millis(1500)), 200u);
    for (const auto& answer : complete.received())
      ASSERT_TRUE(answer.starts_with("HTTP/1.1 200 OK")) << answer.substr(0, 200);
    for (const auto& answer : silent.received())
      ASSERT_EQ(answer, "");
    for (const auto& answer : partial.received())
      ASSERT_EQ(answer, "");
    connections += 600;
  }
}

}  // namespace testing_support::hostile
