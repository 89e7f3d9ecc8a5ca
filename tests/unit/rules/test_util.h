// Helpers for the rule parser tests: parse one rule, or get its one error.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "agent/rules/parser.h"

namespace popguard::rules::testing {

// A header every option test can share.
inline std::string Rule(std::string_view options) {
  return "alert tcp $EXTERNAL_NET any -> $HOME_NET 110 (" + std::string(options) + ")";
}

inline ParseResult Parse(std::string_view text, const Variables& variables = Variables()) {
  return ParseRules(text, "t.rules", variables);
}

// The rule, which must have parsed without error.
inline ::popguard::rules::Rule ParseOk(std::string_view text,
                                       const Variables& variables = Variables()) {
  ParseResult result = Parse(text, variables);
  for (const Diagnostic& error : result.errors) ADD_FAILURE() << error.ToString();
  if (result.rules.size() != 1) {
    ADD_FAILURE() << "expected one rule from: " << text;
    return {};
  }
  return result.rules.front();
}

// The one error the text must produce, as `file:line: message`.
inline std::string ErrorOf(std::string_view text, const Variables& variables = Variables()) {
  ParseResult result = Parse(text, variables);
  EXPECT_TRUE(result.rules.empty()) << "parsed although it should not: " << text;
  if (result.errors.size() != 1) {
    ADD_FAILURE() << "expected one error, got " << result.errors.size() << " from: " << text;
    return "";
  }
  return result.errors.front().ToString();
}

// A copy, so it can outlive the rule it came from.
template <typename T>
T Only(const ::popguard::rules::Rule& rule) {
  if (rule.detections.size() != 1 || !std::holds_alternative<T>(rule.detections[0])) {
    ADD_FAILURE() << "expected exactly one detection of the asked type";
    return T{};
  }
  return std::get<T>(rule.detections[0]);
}

}  // namespace popguard::rules::testing
