// Exact evaluation of one rule's payload keywords on one unit, after the
// Hyperscan prefilter named the rule a candidate. Semantics follow
// Suricata 8's content inspection (detect-engine-content-inspection.c):
// keywords run in rule order, each buffer has its own cursor (the end of the
// last match in it), relative keywords continue from that cursor, and when
// a relative keyword fails the engine backtracks to the next occurrence of
// the content or pcre before it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/detect/unit.h"
#include "agent/rules/ast.h"

namespace popguard::detect {

struct MatchCounters {
  // Evaluations abandoned because backtracking hit kMaxSteps: the rule is
  // treated as not matching, so this is a detection loss and is exported.
  uint64_t step_limit_hits = 0;
  // PCRE2 match errors (match limit, depth limit): also losses.
  uint64_t pcre_errors = 0;
};

// A pcre keyword compiled with PCRE2, owned here.
class CompiledRegex {
 public:
  // nullptr and *error set when PCRE2 refuses the pattern.
  static std::unique_ptr<CompiledRegex> Compile(const rules::PcreMatch& pcre, std::string* error);
  ~CompiledRegex();
  CompiledRegex(const CompiledRegex&) = delete;
  CompiledRegex& operator=(const CompiledRegex&) = delete;

  enum class Result { kMatch, kNoMatch, kError };
  // Searches subject from `start`; on a match sets [*begin, *end).
  Result Search(std::string_view subject, size_t start, size_t* begin, size_t* end) const;

 private:
  CompiledRegex() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class Matcher {
 public:
  // Backtracking steps allowed per evaluation (Suricata's
  // detect.inspection-recursion-limit is 3000).
  static constexpr int kMaxSteps = 3000;

  // `regexes[i]` is the compiled form of detections[i] when that is a pcre.
  Matcher(const std::vector<rules::Detection>& detections,
          std::vector<std::unique_ptr<CompiledRegex>> regexes);

  bool Matches(const Unit& unit, MatchCounters* counters) const;

 private:
  struct State;
  // Where a content may match in a buffer of `length` bytes: it starts in
  // [start, end - its length]; start > end when nowhere.
  struct Window {
    int64_t start;
    int64_t end;
  };
  static Window ContentWindow(const rules::ContentMatch& content, size_t length, size_t cursor);
  static size_t Find(const rules::ContentMatch& content, std::string_view buf, Window window,
                     int64_t from);
  // Rule order with backtracking, as Suricata inspects.
  bool Eval(State& state, size_t index) const;
  bool EvalContent(State& state, size_t index, const rules::ContentMatch& content) const;
  bool EvalPcre(State& state, size_t index, const rules::PcreMatch& pcre) const;
  // A keyword that moves no cursor (isdataat, byte_test, bsize).
  bool Holds(const State& state, const rules::Detection& detection) const;
  // A keyword of a rule none of whose keywords reads an earlier match.
  bool HoldsAlone(State& state, size_t index) const;

  const std::vector<rules::Detection>& detections_;
  std::vector<std::unique_ptr<CompiledRegex>> regexes_;
  // When no keyword reads where an earlier one matched, the rule is the
  // conjunction of its keywords, each true or false on its own: backtracking
  // could only find the same verdict again, as Suricata does not backtrack
  // into a keyword whose successor is not relative. Then this holds every
  // keyword's index, cheapest test first; else it is empty.
  std::vector<size_t> conjunction_;
};

// Helpers shared with the tests.
// Position of `pattern` in haystack[from, to) or npos; `nocase` folds ASCII.
size_t FindPattern(std::string_view haystack, std::string_view pattern, size_t from, size_t to,
                   bool nocase);
// PCRE2's compile options for a pcre's modifiers (8-bit, never UTF or UCP).
uint32_t Pcre2Options(const rules::PcreModifiers& modifiers);
// The Hyperscan flags under which a pcre's regex matches a superset of what
// PCRE2 matches with those modifiers (prefilter mode; there is no flag for
// /x, so an extended regex has none).
unsigned PrefilterFlags(const rules::PcreModifiers& modifiers);
// The words of a regex that is only a choice of words, `^(?:A|B|C)$` or
// `^A$`, each of ASCII letters and digits; empty when it is anything else
// (`^A|B$` too: that is `^A` or `B$`).
std::vector<std::string> WordChoice(std::string_view regex);
// Suricata's base64_decode: RFC 4648 alphabet, stops at the first byte that
// is neither alphabet nor padding, ignores a partial last quantum.
std::string DecodeBase64Lenient(std::string_view text);

}  // namespace popguard::detect
