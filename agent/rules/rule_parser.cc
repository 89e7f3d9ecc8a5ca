#include "agent/rules/rule_parser.h"

#include <limits>
#include <string>
#include <vector>

#include "agent/rules/header_parser.h"
#include "agent/rules/option_parser.h"
#include "agent/rules/text.h"

namespace popguard::rules::internal {

bool ParseRule(const LogicalLine& line, const Variables& variables,
               const Classifications& classifications, Rule* rule, RuleFailure* failure) {
  std::string_view text = line.text();
  SyntaxError& error = failure->error;
  size_t open = text.find('(');
  if (open == std::string_view::npos) {
    error = {text.size(), "missing '(' and the option list"};
    return false;
  }
  size_t close = text.rfind(')');
  if (close == std::string_view::npos || close < open) {
    error = {text.size(), "missing ')' at the end of the rule"};
    return false;
  }
  if (!Trim(text.substr(close + 1)).empty()) {
    error = {close + 1, "text after the closing ')'"};
    return false;
  }
  std::vector<RawOption> options;
  if (!SplitOptions(text.substr(open + 1, close - open - 1), open + 1, &options, &error)) {
    return false;
  }
  // Read the sid first so every later error can name the rule.
  for (const RawOption& option : options) {
    if (option.key != "sid") continue;
    std::optional<uint64_t> sid = ParseUnsigned(option.value, std::numeric_limits<uint32_t>::max());
    if (sid && *sid > 0) failure->sid = static_cast<uint32_t>(*sid);
    break;
  }
  if (!ParseHeader(text.substr(0, open), 0, variables, &rule->header, &error)) return false;
  OptionParser parser(rule, classifications);
  for (const RawOption& option : options) {
    if (!parser.Apply(option, &error)) return false;
  }
  return parser.Finish(0, &error);
}

}  // namespace popguard::rules::internal
