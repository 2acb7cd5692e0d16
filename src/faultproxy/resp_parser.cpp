#include "faultproxy/resp_parser.h"

#include <algorithm>

namespace faultproxy {
namespace {

constexpr std::size_t kCaptureMax = 64;
constexpr std::size_t kMaxDepth = 64;
constexpr std::size_t kMaxInline = 64 * 1024;  // Redis refuses longer inline commands
constexpr int kMaxDigits = 18;

bool is_number_type(char t) {
  switch (t) {
    case '*':
    case '$':
    case '%':
    case '~':
    case '>':
    case '|':
    case '=':
    case '!':
      return true;
    default:
      return false;
  }
}

bool is_line_type(char t) {
  switch (t) {
    case '+':
    case '-':
    case ':':
    case '_':
    case ',':
    case '#':
    case '(':
      return true;
    default:
      return false;
  }
}

bool is_bulk_type(char t) {
  return t == '$' || t == '=' || t == '!';
}

void upper(std::string& s) {
  for (char& c : s)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
}

}  // namespace

void RespScanner::start_value(char type) {
  type_ = type;
  if (stack_.empty()) {
    top_type_ = type;
    name_.clear();
    arg1_.clear();
    name_known_ = false;
  } else if (mode_ == Mode::commands && stack_.size() == 1 && top_type_ == '*') {
    const std::int64_t index = top_count_ - stack_.front();
    capture_ = index == 0 ? &name_ : index == 1 ? &arg1_ : nullptr;
    capture_overflow_ = false;
    if (capture_ && type != '$') capture_ = nullptr;
  }
  if (is_number_type(type)) {
    state_ = State::number;
    negative_ = false;
    digits_ = 0;
    number_ = 0;
  } else if (is_line_type(type)) {
    state_ = State::line;
  } else {
    fail();
  }
}

void RespScanner::number_done() {
  const std::int64_t n = negative_ ? -number_ : number_;
  if (is_bulk_type(type_)) {
    if (n < 0) return value_done();  // null bulk string
    bulk_left_ = n;
    state_ = n == 0 ? State::bulk_cr : State::bulk;
    return;
  }
  if (stack_.empty()) top_count_ = n;
  const std::int64_t elements = (type_ == '%' || type_ == '|') ? 2 * n : n;
  if (elements <= 0) return value_done();  // empty or null aggregate
  if (stack_.size() >= kMaxDepth) return fail();
  stack_.push_back(elements);
  state_ = State::type;
}

void RespScanner::value_done() {
  if (capture_) {
    if (capture_overflow_) capture_->clear();
    upper(*capture_);
    capture_ = nullptr;
  }
  state_ = State::type;
  for (;;) {
    if (stack_.empty()) {
      ended_ = true;
      if (mode_ == Mode::commands) {
        counts_ = top_type_ == '*' && top_count_ > 0;
      } else {
        counts_ = top_type_ != '>' && top_type_ != '|';
      }
      return;
    }
    if (mode_ == Mode::commands && stack_.size() == 1 && top_type_ == '*' && top_count_ == stack_.front()) {
      name_known_ = true;  // element 0 just completed
      name_now_ = true;
    }
    if (--stack_.back() > 0) return;
    stack_.pop_back();
  }
}

void RespScanner::capture_inline(char c) {
  const bool space = c == ' ' || c == '\t';
  if (space) {
    if (inline_in_word_) ++inline_word_;
    inline_in_word_ = false;
    return;
  }
  inline_in_word_ = true;
  std::string* target = inline_word_ == 0 ? &name_ : inline_word_ == 1 ? &arg1_ : nullptr;
  if (target && target->size() <= kCaptureMax) target->push_back(c);
}

std::size_t RespScanner::feed(std::string_view data) {
  ended_ = false;
  name_now_ = false;
  std::size_t i = 0;
  while (i < data.size() && !ended_ && !name_now_) {
    const char c = data[i];
    switch (state_) {
      case State::failed:
        return i;
      case State::type:
        if (stack_.empty() && mode_ == Mode::commands && c != '*') {
          // An inline command: this byte is its first.
          top_type_ = 0;
          name_.clear();
          arg1_.clear();
          name_known_ = false;
          inline_len_ = 0;
          inline_word_ = 0;
          inline_in_word_ = false;
          state_ = State::inline_line;
          continue;  // read this byte again as part of the line
        }
        ++i;
        start_value(c);
        break;
      case State::number:
        ++i;
        if (c == '-' && digits_ == 0 && !negative_) {
          negative_ = true;
        } else if (c >= '0' && c <= '9' && digits_ < kMaxDigits) {
          number_ = number_ * 10 + (c - '0');
          ++digits_;
        } else if (c == '\r' && digits_ > 0) {
          state_ = State::number_lf;
        } else {
          fail();
        }
        break;
      case State::number_lf:
        ++i;
        if (c != '\n') {
          fail();
          break;
        }
        number_done();
        break;
      case State::line: {
        const auto nl = data.find('\n', i);
        if (nl == std::string_view::npos) {
          i = data.size();
          break;
        }
        i = nl + 1;
        value_done();
        break;
      }
      case State::bulk: {
        const auto n = static_cast<std::size_t>(
            std::min<std::int64_t>(bulk_left_, static_cast<std::int64_t>(data.size() - i)));
        if (capture_ && !capture_overflow_) {
          if (capture_->size() + n > kCaptureMax) {
            capture_overflow_ = true;
          } else {
            capture_->append(data.substr(i, n));
          }
        }
        i += n;
        bulk_left_ -= static_cast<std::int64_t>(n);
        if (bulk_left_ == 0) state_ = State::bulk_cr;
        break;
      }
      case State::bulk_cr:
        ++i;
        if (c == '\r') {
          state_ = State::bulk_lf;
        } else {
          fail();
        }
        break;
      case State::bulk_lf:
        ++i;
        if (c == '\n') {
          value_done();
        } else {
          fail();
        }
        break;
      case State::inline_line:
        ++i;
        if (c == '\n') {
          if (name_.size() > kCaptureMax) name_.clear();
          if (arg1_.size() > kCaptureMax) arg1_.clear();
          if (!name_.empty() && name_.back() == '\r') name_.pop_back();
          if (!arg1_.empty() && arg1_.back() == '\r') arg1_.pop_back();
          upper(name_);
          upper(arg1_);
          state_ = State::type;
          ended_ = true;
          counts_ = !name_.empty();  // Redis ignores an empty line
          name_known_ = true;
          name_now_ = true;
          break;
        }
        // Control bytes: not a command typed as text (a binary protocol): fail at once rather
        // than hold bytes until a line end that may never come.
        if (++inline_len_ > kMaxInline || (static_cast<unsigned char>(c) < ' ' && c != '\t' && c != '\r')) {
          fail();
          break;
        }
        capture_inline(c);
        break;
    }
  }
  return i;
}

}  // namespace faultproxy
