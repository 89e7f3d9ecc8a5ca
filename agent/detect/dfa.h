// A deterministic automaton for start-anchored regexes written in a plain
// subset of PCRE: literals, `.`, classes, `\d \s \w` and their negations,
// groups, alternation and quantifiers. It answers whether each regex
// matches at the start of a subject with one table lookup per byte and
// stops at the first byte no match can go on through: on a status line
// like "+OK 12345 octets" that is a dozen lookups, where an hs_scan call
// costs several times more before it reads a byte.
//
// Anything outside the subset (back-references, lookaround, `$`, `\b`,
// inline options, /m, /x, ...) is not guessed at: Build returns null and
// the caller scans with Hyperscan as before.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "agent/rules/ast.h"

namespace popguard::detect {

class AnchoredDfa {
 public:
  static constexpr size_t kMaxPatterns = 64;
  // Past this many states the table stops fitting in a core's caches and
  // the walk stops paying for itself.
  static constexpr size_t kMaxStates = 1024;

  // One automaton for all `pcres` (pcres[i] is bit i of Matches); null
  // when one is null, is not anchored at the subject's start (by `^` on
  // every path or /A), leaves the subset, or the automaton would outgrow
  // kMaxStates.
  static std::unique_ptr<AnchoredDfa> Build(const std::vector<const rules::PcreMatch*>& pcres);

  // Bit i set when pcres[i] matches at the start of `subject`, as PCRE2
  // would find it (a match need not reach the subject's end).
  uint64_t Matches(std::string_view subject) const {
    const uint32_t* table = table_.data();
    uint32_t row = start_;
    uint64_t hits = Accepts(table, row);
    for (char c : subject) {
      row = table[row + column_[static_cast<uint8_t>(c)]];
      if (row == kDead) break;
      hits |= Accepts(table, row);
    }
    return hits;
  }

  size_t states() const { return states_; }

 private:
  // The dead state's row is the first: no pattern, every byte leads back.
  static constexpr uint32_t kDead = 0;
  static constexpr size_t kAcceptWords = 2;
  AnchoredDfa() = default;
  static uint64_t Accepts(const uint32_t* table, uint32_t row) {
    return table[row] | uint64_t{table[row + 1]} << 32;
  }

  // Per state a row: the patterns accepted on reaching it (two words),
  // then the row offset of the next state for each byte class. Bytes no
  // pattern tells apart share a class, so a row has a handful of columns.
  std::vector<uint32_t> table_;
  std::array<uint16_t, 256> column_{};  // a byte's column in every row
  uint32_t start_ = kDead;
  size_t states_ = 0;
};

// A necessary condition for a regex of the same subset to match anywhere
// in a subject, from the bytes its branches can start with and their
// shortest matches: an unanchored branch needs one of its first bytes far
// enough from the end; a branch anchored by `^` needs it at the start and
// the length. A subject it turns away cannot match; one it lets through
// must still be searched. A table lookup per byte, where a Hyperscan scan
// of a short argument costs several hundred instructions before it starts.
class StartScreen {
 public:
  // Null when the regex leaves the subset, has /m or /x, or has a branch
  // that can match the empty string (then every subject passes).
  static std::unique_ptr<StartScreen> Build(const rules::PcreMatch& pcre);

  bool MayMatch(std::string_view subject) const {
    const size_t n = subject.size();
    const auto* bytes = reinterpret_cast<const uint8_t*>(subject.data());
    if (n > 0 && n >= anchored_min_ && anchored_first_[bytes[0]]) return true;
    if (n < unanchored_min_) return false;
    for (size_t i = 0; i + unanchored_min_ <= n; ++i) {
      if (unanchored_first_[bytes[i]]) return true;
    }
    return false;
  }

 private:
  StartScreen() = default;
  std::array<bool, 256> anchored_first_{};
  std::array<bool, 256> unanchored_first_{};
  size_t anchored_min_ = 0;
  size_t unanchored_min_ = 0;
};

}  // namespace popguard::detect
