#include "faultproxy/go/tabwriter.h"

#include <gtest/gtest.h>

namespace faultproxy::go {
namespace {

TEST(Tabwrite, AlignsColumnsOfConsecutiveLines) {
  EXPECT_EQ(tabwrite("a\tb\nccc\td\n"), "a    b\nccc  d\n");
  // A line without a tab ends the column block: the next block is aligned on its own.
  EXPECT_EQ(tabwrite("a\tb\nxxxxxxxx\nccc\td"), "a  b\nxxxxxxxx\nccc  d");
  // Empty leading cells indent continuation lines under the text column.
  EXPECT_EQ(tabwrite("   name\tusage\n\tmore\n"), "   name  usage\n         more\n");
  // Widths count characters, not bytes.
  EXPECT_EQ(tabwrite("\xc3\xa9\tx\nab\ty\n"), "\xc3\xa9   x\nab  y\n");
  EXPECT_EQ(tabwrite("no tabs\n"), "no tabs\n");
}

}  // namespace
}  // namespace faultproxy::go
