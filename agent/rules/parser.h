// Rule text to typed, validated rules: Suricata and Snort 2 syntax, the
// Snort 3 forms seen in community rules (`content:"x",nocase`,
// `service:pop3`, `alert tcp ( ... )`), and popguard's POP3 sticky buffers.
//
// Errors never throw: each is `file:line: message`, collected, and a bad
// rule never stops the good ones around it from loading.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/rules/ast.h"
#include "agent/rules/classifications.h"
#include "agent/rules/variables.h"

namespace popguard::rules {

struct Diagnostic {
  SourceLocation location;
  std::string message;

  // `file:line: message`, or `file: message` for whole-file problems.
  std::string ToString() const;
};

struct ParseResult {
  std::vector<Rule> rules;
  std::vector<Diagnostic> errors;
  int disabled_rules = 0;  // `# alert ...` lines: skipped, not parsed
};

// One rule per logical line (a trailing backslash joins the next line);
// `#` comments and blank lines are skipped. Errors name the physical line of
// the offending option, so a rule continued over lines is reported where the
// problem is. A gid:sid given twice is an error on the later rule.
ParseResult ParseRules(std::string_view text, std::string_view file_name,
                       const Variables& variables,
                       const Classifications& classifications = Classifications::Builtin());

// Reads and parses a file; failing to read it is an error in the result.
ParseResult ParseRuleFile(const std::string& path, const Variables& variables = Variables(),
                          const Classifications& classifications = Classifications::Builtin());

// The rules of several files, as the agent loads them: a gid:sid already
// loaded from an earlier file is refused with `duplicate sid N (first at
// file:line)`.
class RuleSet {
 public:
  void Add(ParseResult result);

  const std::vector<Rule>& rules() const { return rules_; }
  const std::vector<Diagnostic>& errors() const { return errors_; }
  int disabled_rules() const { return disabled_rules_; }

 private:
  std::vector<Rule> rules_;
  std::vector<Diagnostic> errors_;
  int disabled_rules_ = 0;
  std::map<std::pair<uint32_t, uint32_t>, SourceLocation> first_seen_;
};

}  // namespace popguard::rules
