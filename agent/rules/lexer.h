// From file text to rules as written: logical lines, the header/option
// split and the option list. Internal to the rule parser.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace popguard::rules::internal {

// A rule joined from its physical lines, remembering where each character
// came from so errors can name the physical line and column.
class LogicalLine {
 public:
  void Append(std::string_view piece, int line, int column);

  const std::string& text() const { return text_; }
  // 1-based physical line and column of text()[offset] (offset may be size()).
  std::pair<int, int> Locate(size_t offset) const;

 private:
  struct Piece {
    size_t offset;
    int line;
    int column;
  };
  std::string text_;
  std::vector<Piece> pieces_;
};

struct SplitLines {
  std::vector<LogicalLine> rules;
  int disabled_rules = 0;
};

SplitLines SplitIntoLogicalLines(std::string_view text);

struct SyntaxError {
  size_t offset = 0;  // into the logical line
  std::string message;
};

// One `key` or `key:value` of a rule body.
struct RawOption {
  std::string key;         // lower case
  std::string_view value;  // trimmed, escapes intact; empty when there is no ':'
  bool has_value = false;
  size_t key_offset = 0;    // into the logical line
  size_t value_offset = 0;  // into the logical line
};

// Splits `body` (the text between the parentheses, starting at `offset` in
// the logical line) at semicolons outside quotes and not escaped.
bool SplitOptions(std::string_view body, size_t offset, std::vector<RawOption>* options,
                  SyntaxError* error);

}  // namespace popguard::rules::internal
