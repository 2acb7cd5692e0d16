#include "faultproxy/http_parser.h"

#include <algorithm>

#include "common/http_token.h"

namespace faultproxy {
namespace {

constexpr std::size_t kMaxLine = 4096;  // chunk-size and trailer lines

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// True if the comma-separated list `value` holds `token` (case-insensitive).
bool list_has(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    const auto comma = value.find(',');
    if (http_iequals(trim(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

std::optional<std::uint64_t> parse_decimal(std::string_view s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

// Reads a line into `line` (without its '\n'); true once complete. False with `line` cleared and
// `overflow` set if it grows beyond kMaxLine.
bool read_line(std::string_view data, std::size_t& i, std::string& line, bool& overflow) {
  const auto nl = data.find('\n', i);
  const std::size_t end = nl == std::string_view::npos ? data.size() : nl;
  line.append(data.substr(i, end - i));
  i = nl == std::string_view::npos ? data.size() : nl + 1;
  if (line.size() > kMaxLine) overflow = true;
  return nl != std::string_view::npos;
}

// Whether `line` (the first line of a head, complete or not, without its LF) can still begin a
// request (or response): a stream that is not HTTP fails at its first bytes instead of being held
// while the scanner waits for the end of a head that never comes.
bool plausible_start(std::string_view line, HttpScanner::Mode mode) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  auto version_prefix = [](std::string_view v) {
    constexpr std::string_view kVersion = "HTTP/1.";
    if (v.size() <= kVersion.size()) return kVersion.substr(0, v.size()) == v;
    return v.substr(0, kVersion.size()) == kVersion && v[kVersion.size()] >= '0' && v[kVersion.size()] <= '9';
  };
  if (mode == HttpScanner::Mode::responses) return version_prefix(line.substr(0, 8));
  std::size_t i = 0;
  while (i < line.size() && common::http::is_http_token_char(line[i]))
    ++i;
  if (i > 32) return false;  // no method is that long
  if (i == line.size()) return true;
  if (i == 0 || line[i] != ' ') return false;
  std::size_t j = i + 1;
  while (j < line.size() && static_cast<unsigned char>(line[j]) > ' ' && line[j] != 0x7f)
    ++j;
  if (j == line.size()) return true;
  return line[j] == ' ' && version_prefix(line.substr(j + 1));
}

}  // namespace

bool http_iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

std::optional<std::string_view> HttpHead::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (http_iequals(k, name)) return std::string_view(v);
  return std::nullopt;
}

bool HttpHead::keep_alive() const {
  if (auto c = header("connection")) {
    if (list_has(*c, "close")) return false;
    if (list_has(*c, "keep-alive")) return true;
  }
  return minor_version >= 1;
}

bool HttpScanner::parse_head() {
  head_ = HttpHead{};
  std::string_view rest(head_buf_);
  bool first = true;
  while (!rest.empty()) {
    const auto nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;  // the end of the head
    if (first) {
      first = false;
      if (!plausible_start(line, mode_)) return false;  // what a partial line would have failed on
      auto version = [this](std::string_view v) {
        if (v.size() != 8 || v.substr(0, 7) != "HTTP/1." || v[7] < '0' || v[7] > '9') return false;
        head_.minor_version = v[7] - '0';
        return true;
      };
      const auto sp1 = line.find(' ');
      if (sp1 == std::string_view::npos) return false;
      if (mode_ == Mode::requests) {
        const auto sp2 = line.find(' ', sp1 + 1);
        if (sp2 == std::string_view::npos) return false;
        head_.method = std::string(line.substr(0, sp1));
        head_.target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
        if (!common::http::is_http_token(head_.method) || head_.target.empty() ||
            !version(line.substr(sp2 + 1)))
          return false;
      } else {
        if (!version(line.substr(0, sp1))) return false;
        const std::string_view code = line.substr(sp1 + 1, 3);
        const auto status = parse_decimal(code);
        if (code.size() != 3 || !status || *status < 100) return false;
        head_.status = static_cast<int>(*status);
      }
      continue;
    }
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || !common::http::is_http_token(line.substr(0, colon))) return false;
    head_.headers.emplace_back(std::string(line.substr(0, colon)), std::string(trim(line.substr(colon + 1))));
  }
  return !first;
}

// Sets the state for the body of the message whose head was just parsed; false if its framing is
// invalid.
bool HttpScanner::frame_body() {
  interim_ = false;
  switch_after_ = false;
  auto length_framing = [this](bool until_close_otherwise) {
    if (auto te = head_.header("transfer-encoding")) {
      const auto last = te->rfind(',');
      if (http_iequals(trim(last == std::string_view::npos ? *te : te->substr(last + 1)), "chunked")) {
        state_ = State::chunk_size;
        line_.clear();
        return true;
      }
      if (!until_close_otherwise) return false;  // a request must say where its body ends
      state_ = State::body_until_close;
      return true;
    }
    if (auto cl = head_.header("content-length")) {
      const auto n = parse_decimal(*cl);
      if (!n) return false;
      left_ = *n;
      state_ = State::body_fixed;
      if (left_ == 0) message_done();
      return true;
    }
    if (until_close_otherwise) {
      state_ = State::body_until_close;
    } else {
      message_done();
    }
    return true;
  };
  if (mode_ == Mode::requests) {
    switch_after_ = http_iequals(head_.method, "CONNECT") ||
                    (head_.header("upgrade") && list_has(head_.header("connection").value_or(""), "upgrade"));
    return length_framing(false);
  }
  const int s = head_.status;
  if (s == 101 || (http_iequals(answering_, "CONNECT") && s >= 200 && s < 300)) {
    switch_after_ = true;
    message_done();
    return true;
  }
  if (s < 200 || s == 204 || s == 304 || http_iequals(answering_, "HEAD")) {
    interim_ = s < 200;
    message_done();
    return true;
  }
  return length_framing(true);
}

void HttpScanner::message_done() {
  ended_ = true;
  head_buf_.clear();
  state_ = switch_after_ ? State::switched : State::head;
}

bool HttpScanner::finish() {
  if (state_ != State::body_until_close) return false;
  message_done();
  return true;
}

std::size_t HttpScanner::feed(std::string_view data) {
  head_now_ = false;
  ended_ = false;
  std::size_t i = 0;
  bool overflow = false;
  while (i < data.size() && !head_now_ && !ended_) {
    switch (state_) {
      case State::failed:
      case State::switched:
        return i;
      case State::head: {
        if (head_buf_.empty() && (data[i] == '\r' || data[i] == '\n')) {
          ++i;  // empty lines before a message are allowed (RFC 9112 2.2)
          break;
        }
        const std::size_t old = head_buf_.size();
        const std::size_t take = std::min(data.size() - i, kMaxHead + 4 - old);
        head_buf_.append(data.substr(i, take));
        std::size_t end = std::string::npos;
        for (std::size_t p = old >= 2 ? old - 2 : 0; p < head_buf_.size(); ++p) {
          if (head_buf_[p] != '\n') continue;
          if (p + 1 < head_buf_.size() && head_buf_[p + 1] == '\n') {
            end = p + 2;
            break;
          }
          if (p + 2 < head_buf_.size() && head_buf_[p + 1] == '\r' && head_buf_[p + 2] == '\n') {
            end = p + 3;
            break;
          }
        }
        if (end == std::string::npos) {
          i += take;
          const std::string_view first_line = std::string_view(head_buf_).substr(0, head_buf_.find('\n'));
          if (head_buf_.size() > kMaxHead || !plausible_start(first_line, mode_)) state_ = State::failed;
          break;
        }
        i += end - old;
        head_buf_.resize(end);
        if (!parse_head()) {
          state_ = State::failed;
          break;
        }
        head_now_ = true;
        if (!frame_body()) state_ = State::failed;
        break;
      }
      case State::body_fixed:
      case State::chunk_data: {
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(left_, data.size() - i));
        i += n;
        left_ -= n;
        if (left_ > 0) break;
        if (state_ == State::body_fixed) {
          message_done();
        } else {
          state_ = State::chunk_data_crlf;
          line_.clear();
        }
        break;
      }
      case State::chunk_size: {
        if (!read_line(data, i, line_, overflow)) break;
        std::string_view l = trim(line_);
        l = l.substr(0, std::min(l.find(';'), l.size()));
        l = trim(l);
        std::uint64_t size = 0;
        if (l.empty() || l.size() > 15) {
          state_ = State::failed;
          break;
        }
        for (char c : l) {
          const char d = lower(c);
          if (d >= '0' && d <= '9') {
            size = size * 16 + static_cast<std::uint64_t>(d - '0');
          } else if (d >= 'a' && d <= 'f') {
            size = size * 16 + static_cast<std::uint64_t>(d - 'a' + 10);
          } else {
            state_ = State::failed;
            break;
          }
        }
        if (state_ == State::failed) break;
        line_.clear();
        left_ = size;
        state_ = size == 0 ? State::trailers : State::chunk_data;
        break;
      }
      case State::chunk_data_crlf:
        if (!read_line(data, i, line_, overflow)) break;
        if (!trim(line_).empty()) {
          state_ = State::failed;
          break;
        }
        line_.clear();
        state_ = State::chunk_size;
        break;
      case State::trailers:
        if (!read_line(data, i, line_, overflow)) break;
        if (trim(line_).empty()) {
          message_done();
        } else {
          line_.clear();
        }
        break;
      case State::body_until_close:
        i = data.size();
        break;
    }
    if (overflow) state_ = State::failed;
  }
  return i;
}

}  // namespace faultproxy
