#include "faultproxy/go/tabwriter.h"

#include <algorithm>
#include <vector>

#include "faultproxy/go/utf8.h"

namespace faultproxy::go {
namespace {

// text/tabwriter's column formatting (flags 0, padchar ' ', left aligned).
class TabWriter {
 public:
  TabWriter(const std::vector<std::vector<std::string>>& lines, int minwidth, int padding)
      : lines_(lines), minwidth_(minwidth), padding_(padding) {}

  std::string run() {
    format(0, lines_.size());
    return std::move(out_);
  }

 private:
  static int width(const std::string& cell) { return static_cast<int>(rune_count(cell)); }

  void write_lines(std::size_t line0, std::size_t line1) {
    for (std::size_t i = line0; i < line1; ++i) {
      const auto& line = lines_[i];
      for (std::size_t j = 0; j < line.size(); ++j) {
        out_ += line[j];
        if (j < widths_.size()) out_.append(static_cast<std::size_t>(widths_[j] - width(line[j])), ' ');
      }
      if (i + 1 != lines_.size()) out_ += '\n';
    }
  }

  void format(std::size_t line0, std::size_t line1) {
    const std::size_t column = widths_.size();
    for (std::size_t current = line0; current < line1; ++current) {
      if (column + 1 >= lines_[current].size()) continue;  // no cell in this column
      write_lines(line0, current);
      line0 = current;
      int w = minwidth_;
      for (; current < line1; ++current) {
        const auto& line = lines_[current];
        if (column + 1 >= line.size()) break;
        w = std::max(w, width(line[column]) + padding_);
      }
      widths_.push_back(w);
      format(line0, current);
      widths_.pop_back();
      line0 = current;
      if (current == line1) break;
    }
    write_lines(line0, line1);
  }

  const std::vector<std::vector<std::string>>& lines_;
  int minwidth_;
  int padding_;
  std::vector<int> widths_;
  std::string out_;
};

}  // namespace

std::string tabwrite(std::string_view text, int minwidth, int padding) {
  std::vector<std::vector<std::string>> lines(1);
  lines.back().emplace_back();
  for (char c : text) {
    if (c == '\n') {
      lines.emplace_back();
      lines.back().emplace_back();
    } else if (c == '\t') {
      lines.back().emplace_back();
    } else {
      lines.back().back() += c;
    }
  }
  return TabWriter(lines, minwidth, padding).run();
}

}  // namespace faultproxy::go
