// One logical line to one Rule. Internal to the rule parser.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "agent/rules/ast.h"
#include "agent/rules/classifications.h"
#include "agent/rules/lexer.h"
#include "agent/rules/variables.h"

namespace popguard::rules::internal {

struct RuleFailure {
  SyntaxError error;
  std::optional<uint32_t> sid;  // when the rule's sid could be read, to name the rule
};

// Fills `rule` (location excepted) or says why not: the first error only, so
// one bad option does not cascade into follow-on complaints.
bool ParseRule(const LogicalLine& line, const Variables& variables,
               const Classifications& classifications, Rule* rule, RuleFailure* failure);

}  // namespace popguard::rules::internal
