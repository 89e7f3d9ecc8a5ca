#include "agent/rules/parser.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>

#include "agent/rules/lexer.h"
#include "agent/rules/rule_parser.h"

namespace popguard::rules {
namespace {

using SeenRules = std::map<std::pair<uint32_t, uint32_t>, SourceLocation>;

// Records the rule's gid:sid, or says where it was first seen.
std::optional<Diagnostic> Claim(SeenRules& seen, const Rule& rule) {
  auto [it, inserted] = seen.try_emplace({rule.gid, rule.sid}, rule.location);
  if (inserted) return std::nullopt;
  std::string id = rule.gid == 1 ? std::to_string(rule.sid)
                                 : std::to_string(rule.gid) + ":" + std::to_string(rule.sid);
  return Diagnostic{rule.location, "duplicate sid " + id + " (first at " + it->second.file + ":" +
                                       std::to_string(it->second.line) + ")"};
}

}  // namespace

std::string Diagnostic::ToString() const {
  if (location.line == 0) return location.file + ": " + message;
  return location.file + ":" + std::to_string(location.line) + ": " + message;
}

ParseResult ParseRules(std::string_view text, std::string_view file_name,
                       const Variables& variables, const Classifications& classifications) {
  ParseResult result;
  internal::SplitLines lines = internal::SplitIntoLogicalLines(text);
  result.disabled_rules = lines.disabled_rules;
  SeenRules seen;
  for (const internal::LogicalLine& line : lines.rules) {
    Rule rule;
    internal::RuleFailure failure;
    if (!internal::ParseRule(line, variables, classifications, &rule, &failure)) {
      auto [error_line, column] = line.Locate(failure.error.offset);
      std::string prefix = failure.sid ? "sid " + std::to_string(*failure.sid) + ": " : "";
      result.errors.push_back(
          {{std::string(file_name), error_line, column}, prefix + failure.error.message});
      continue;
    }
    auto [first_line, first_column] = line.Locate(0);
    rule.location = {std::string(file_name), first_line, first_column};
    if (std::optional<Diagnostic> duplicate = Claim(seen, rule)) {
      result.errors.push_back(std::move(*duplicate));
      continue;
    }
    result.rules.push_back(std::move(rule));
  }
  return result;
}

ParseResult ParseRuleFile(const std::string& path, const Variables& variables,
                          const Classifications& classifications) {
  // stdio rather than iostreams: a directory opens fine and only the read
  // fails, and iostreams would report that as an empty file.
  auto fail = [&](int error) {
    ParseResult result;
    result.errors.push_back({{path, 0, 0}, std::string("cannot read: ") + std::strerror(error)});
    return result;
  };
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) return fail(errno);
  std::string contents;
  char chunk[1 << 16];
  size_t n;
  while ((n = std::fread(chunk, 1, sizeof chunk, file.get())) > 0) contents.append(chunk, n);
  if (std::ferror(file.get())) return fail(errno);
  return ParseRules(contents, path, variables, classifications);
}

void RuleSet::Add(ParseResult result) {
  disabled_rules_ += result.disabled_rules;
  for (Diagnostic& error : result.errors) errors_.push_back(std::move(error));
  for (Rule& rule : result.rules) {
    if (std::optional<Diagnostic> duplicate = Claim(first_seen_, rule)) {
      errors_.push_back(std::move(*duplicate));
    } else {
      rules_.push_back(std::move(rule));
    }
  }
}

}  // namespace popguard::rules
