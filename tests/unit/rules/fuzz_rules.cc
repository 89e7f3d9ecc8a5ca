// libFuzzer entry for the rule parser: any bytes as a rule file must parse
// without crashing, hanging or leaking, every error must point inside the
// input, and loading the same rules twice must refuse every one as a
// duplicate. Seeds: shared/corpus/rules.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "agent/rules/parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using popguard::rules::ParseResult;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  static const popguard::rules::Variables kVariables;
  ParseResult result = popguard::rules::ParseRules(text, "fuzz.rules", kVariables);

  int lines = 1 + static_cast<int>(std::count(text.begin(), text.end(), '\n'));
  for (const popguard::rules::Diagnostic& error : result.errors) {
    if (error.location.line < 1 || error.location.line > lines || error.location.column < 1 ||
        error.message.empty()) {
      __builtin_trap();
    }
  }
  for (const popguard::rules::Rule& rule : result.rules) {
    if (rule.sid == 0 || rule.location.line < 1 || rule.location.line > lines) __builtin_trap();
  }

  popguard::rules::RuleSet set;
  size_t parsed = result.rules.size();
  size_t errors = result.errors.size();
  set.Add(result);
  set.Add(std::move(result));
  if (set.rules().size() != parsed || set.errors().size() != 2 * errors + parsed) __builtin_trap();
  return 0;
}
