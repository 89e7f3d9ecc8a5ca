#include "agent/rules/lexer.h"

#include <algorithm>
#include <array>

#include "agent/rules/text.h"

namespace popguard::rules::internal {

void LogicalLine::Append(std::string_view piece, int line, int column) {
  pieces_.push_back({text_.size(), line, column});
  text_.append(piece);
}

std::pair<int, int> LogicalLine::Locate(size_t offset) const {
  if (pieces_.empty()) return {0, 0};
  auto it = std::upper_bound(pieces_.begin(), pieces_.end(), offset,
                             [](size_t value, const Piece& p) { return value < p.offset; });
  const Piece& piece = *std::prev(it);
  return {piece.line, piece.column + static_cast<int>(offset - piece.offset)};
}

namespace {

// `# alert tcp ... (...)`: a rule switched off by commenting it out, as rule
// distributions ship them. Counted, never parsed.
bool IsDisabledRule(std::string_view comment) {
  static constexpr std::array<std::string_view, 5> kActions = {"alert", "drop", "reject", "pass",
                                                               "log"};
  std::string_view rest = Trim(comment.substr(1));
  for (std::string_view action : kActions) {
    if (rest.size() > action.size() && rest.substr(0, action.size()) == action &&
        IsSpace(rest[action.size()])) {
      return rest.find('(') != std::string_view::npos;
    }
  }
  return false;
}

bool IsKeyChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

}  // namespace

SplitLines SplitIntoLogicalLines(std::string_view text) {
  SplitLines result;
  LogicalLine current;
  bool continuing = false;
  int line_number = 0;
  size_t pos = 0;
  while (true) {
    size_t newline = text.find('\n', pos);
    std::string_view physical = text.substr(
        pos, newline == std::string_view::npos ? std::string_view::npos : newline - pos);
    ++line_number;
    if (!physical.empty() && physical.back() == '\r') physical.remove_suffix(1);

    std::string_view piece = physical;
    int column = 1;
    bool handle = true;
    if (!continuing) {
      size_t lead = 0;
      while (lead < piece.size() && IsSpace(piece[lead])) ++lead;
      piece.remove_prefix(lead);
      column += static_cast<int>(lead);
      // Comment lines are never continued: a comment ending in a backslash
      // must not swallow the rule below it.
      if (piece.empty()) {
        handle = false;
      } else if (piece.front() == '#') {
        if (IsDisabledRule(piece)) ++result.disabled_rules;
        handle = false;
      }
    }
    if (handle) {
      while (!piece.empty() && IsSpace(piece.back())) piece.remove_suffix(1);
      continuing = !piece.empty() && piece.back() == '\\';
      if (continuing) piece.remove_suffix(1);
      current.Append(piece, line_number, column);
      if (!continuing) {
        result.rules.push_back(std::move(current));
        current = LogicalLine();
      }
    }
    if (newline == std::string_view::npos) break;
    pos = newline + 1;
  }
  if (continuing) result.rules.push_back(std::move(current));
  return result;
}

bool SplitOptions(std::string_view body, size_t offset, std::vector<RawOption>* options,
                  SyntaxError* error) {
  auto add = [&](size_t begin, size_t end) {
    std::string_view raw = body.substr(begin, end - begin);
    std::string_view trimmed = Trim(raw);
    size_t at = offset + begin + (trimmed.empty() ? 0 : trimmed.data() - raw.data());
    if (trimmed.empty()) {
      *error = {at, "empty option (two semicolons in a row?)"};
      return false;
    }
    RawOption option;
    size_t colon = trimmed.find(':');
    std::string_view key = Trim(trimmed.substr(0, colon));
    option.key_offset = at;
    if (colon != std::string_view::npos) {
      std::string_view after = trimmed.substr(colon + 1);
      option.value = Trim(after);
      option.has_value = true;
      option.value_offset =
          at + colon + 1 + (option.value.empty() ? 0 : option.value.data() - after.data());
    }
    if (key.empty() || !std::all_of(key.begin(), key.end(), IsKeyChar)) {
      *error = {at, "malformed option '" + std::string(trimmed.substr(0, 40)) +
                        "' (missing ';' before it?)"};
      return false;
    }
    option.key = ToLower(key);
    options->push_back(option);
    return true;
  };

  bool quoted = false;
  size_t quote_start = 0;
  size_t begin = 0;
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (c == '\\') {
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
      quote_start = i;
    } else if (c == ';' && !quoted) {
      if (!add(begin, i)) return false;
      begin = i + 1;
    }
  }
  if (quoted) {
    *error = {offset + quote_start, "unterminated quoted string"};
    return false;
  }
  // The last option's semicolon is optional, as Snort has it.
  if (!Trim(body.substr(begin)).empty()) return add(begin, body.size());
  return true;
}

}  // namespace popguard::rules::internal
