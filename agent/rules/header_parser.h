// The rule header: action, protocol, addresses, ports, direction, with
// variables substituted. Internal to the rule parser.
#pragma once

#include <cstddef>
#include <string_view>

#include "agent/rules/ast.h"
#include "agent/rules/lexer.h"
#include "agent/rules/variables.h"

namespace popguard::rules::internal {

// `text` is everything before the option list's '(' and starts at `offset`
// in the logical line.
bool ParseHeader(std::string_view text, size_t offset, const Variables& variables, Header* header,
                 SyntaxError* error);

}  // namespace popguard::rules::internal
