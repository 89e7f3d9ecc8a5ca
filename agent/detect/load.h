// Rules from files to a running engine, exactly as the agent and
// `popguardctl rules check` both do it: parse every file (a directory means
// its *.rules files, in name order), refuse duplicate sids across files,
// then compile what parsed. One path, so a check that passes means the
// agent loads the same rules.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "agent/detect/engine.h"
#include "agent/rules/parser.h"

namespace popguard::detect {

struct LoadedRules {
  std::unique_ptr<RuleEngine> engine;  // null when nothing could be compiled
  std::vector<std::string> files;      // the rule files read, in load order
  // Parse errors and engine refusals, in file order; each rule named by one.
  std::vector<rules::Diagnostic> errors;
  std::vector<rules::Diagnostic> warnings;
  int disabled_rules = 0;
};

LoadedRules LoadRules(const std::vector<std::string>& paths,
                      const rules::Variables& variables = rules::Variables());

}  // namespace popguard::detect
