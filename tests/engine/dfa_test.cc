// The anchored DFA against PCRE2 itself: on every regex of its subset,
// over thousands of generated subjects, its verdict is PCRE2's; what it
// does not know it refuses.
#include "agent/detect/dfa.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "agent/detect/matcher.h"

namespace popguard::detect {
namespace {

struct Case {
  std::string regex;
  bool caseless = false;
  bool dotall = false;
  bool anchored = false;  // /A
};

rules::PcreMatch Pcre(const Case& c) {
  rules::PcreMatch pcre;
  pcre.regex = c.regex;
  pcre.modifiers.caseless = c.caseless;
  pcre.modifiers.dotall = c.dotall;
  pcre.modifiers.anchored = c.anchored;
  return pcre;
}

class Subjects {
 public:
  static constexpr char kEdges[] = "aAzZ0123456789 \t\r\n\x00\x7f\xff-+";
  // Bytes of the regex itself (its literals), and bytes that often sit on
  // a class's edge.
  explicit Subjects(const std::string& regex)
      : alphabet_(regex + std::string(kEdges, sizeof kEdges - 1)) {}

  std::string Next(const std::string& lead) {
    std::string subject = Draw() % 2 ? lead : "";
    const size_t length = Draw() % 25;
    for (size_t k = 0; k < length; ++k) subject += alphabet_[Draw() % alphabet_.size()];
    return subject;
  }

 private:
  size_t Draw() {
    state_ = state_ * 6364136223846793005u + 1442695040888963407u;
    return static_cast<size_t>(state_ >> 33);
  }
  std::string alphabet_;
  uint64_t state_ = 7;
};

bool Pcre2Matches(const CompiledRegex& regex, std::string_view subject) {
  size_t begin = 0;
  size_t end = 0;
  const CompiledRegex::Result result = regex.Search(subject, 0, &begin, &end);
  EXPECT_NE(result, CompiledRegex::Result::kError) << subject;
  return result == CompiledRegex::Result::kMatch;
}

TEST(AnchoredDfaTest, EveryVerdictIsPcre2s) {
  const std::vector<std::pair<Case, std::string>> cases = {
      // The shipped malformed-response rule, and a shorter cousin.
      {{"^\\+OK[ \\t]+(?:-[0-9]|[0-9]{10,}|[0-9]+[ \\t]+(?:-[0-9]|[0-9]{21,}))", true},
       "+ok 12345678"},
      {{"^\\+OK[ \\t]+(?:-[0-9]|[0-9]{3,})", true}, "+OK "},
      {{"^(?:a|bc)*d?[^x-z]{2,4}"}, "bc"},
      {{"^[\\x00-\\x08\\x0b]|^.{5}"}, ""},
      {{"^[\\x00-\\x08\\x0b]|^.{5}", false, true}, ""},
      {{"^\\d+\\s\\w\\W\\D\\S"}, "09"},
      {{"^a.b"}, "a"},
      {{"^[]a-]x"}, "]"},
      {{"^[^a]b", true}, ""},
      {{"\\+OK x", false, false, true}, "+OK "},
      {{"^(a|ab)(c|bcd)(d*)"}, "ab"},
      {{"^x{0}y{2}z{1,3}?"}, "yy"},
      {{"^(?:^a|b)c"}, "a"},
      {{"^A\\x41[\\x61-\\x63]\\-\\/", true}, "aAb-"},
      {{"^(?:ab|a)?b+?"}, "a"},
  };
  for (const auto& [c, lead] : cases) {
    rules::PcreMatch pcre = Pcre(c);
    std::string error;
    std::unique_ptr<CompiledRegex> reference = CompiledRegex::Compile(pcre, &error);
    ASSERT_TRUE(reference) << c.regex << ": " << error;
    std::unique_ptr<AnchoredDfa> dfa = AnchoredDfa::Build({&pcre});
    ASSERT_TRUE(dfa) << c.regex;
    Subjects subjects(c.regex);
    size_t matched = 0;
    const size_t kSubjects = 3000;
    for (size_t i = 0; i < kSubjects; ++i) {
      const std::string subject = subjects.Next(lead);
      const bool want = Pcre2Matches(*reference, subject);
      matched += want;
      ASSERT_EQ(dfa->Matches(subject), want ? 1u : 0u) << c.regex << " on '" << subject << "'";
    }
    // Both verdicts were tested, or the comparison proved little.
    EXPECT_GT(matched, 20u) << c.regex;
    EXPECT_LT(matched, kSubjects - 20) << c.regex;
  }
}

TEST(StartScreenTest, NeverTurnsAwayAMatchYetTurnsAwayOthers) {
  // The shipped USER and PASS argument pcres, and unanchored and mixed
  // regexes of the subset: every subject PCRE2 matches passes the screen,
  // and a good share of the others are turned away.
  const std::vector<std::pair<Case, std::string>> cases = {
      {{"^.{255}|[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f]|%[0-9$]{0,12}(?:[0-9$]|hh?|ll?)n|"
        "%[-+#0-9.*$]{0,12}(?:hh|ll|[hlLqjzt])?[nspxXdiu].*%[-+#0-9.*$]{0,12}(?:hh|ll|[hlLqjzt])?"
        "[nspxXdiu]",
        false, true},
       "%"},
      {{"^.{12}|(?:%[-+#0-9.*$]{0,12}(?:hh|ll|[hlLqjzt])?[nspxXdiu][^%]{0,2}){2}%[-+#0-9.*$]"
        "{0,12}(?:hh|ll|[hlLqjzt])?[nspxXdiu]",
        false, true},
       "%n%"},
      {{"x[0-9]{4}"}, "x12"},
      {{"(?:ab|cd)e+f?", true}, "AB"},
      {{"^\\+OK[ \\t]+(?:-[0-9]|[0-9]{3,})", true}, "+OK "},
      {{"^a{3}|b{2}"}, "a"},
  };
  for (const auto& [c, lead] : cases) {
    rules::PcreMatch pcre = Pcre(c);
    std::string error;
    std::unique_ptr<CompiledRegex> reference = CompiledRegex::Compile(pcre, &error);
    ASSERT_TRUE(reference) << c.regex << ": " << error;
    std::unique_ptr<StartScreen> screen = StartScreen::Build(pcre);
    ASSERT_TRUE(screen) << c.regex;
    Subjects subjects(c.regex);
    size_t matched = 0;
    size_t turned_away = 0;
    const size_t kSubjects = 3000;
    for (size_t i = 0; i < kSubjects; ++i) {
      const std::string subject = subjects.Next(lead);
      const bool may = screen->MayMatch(subject);
      size_t begin = 0;
      size_t end = 0;
      if (reference->Search(subject, 0, &begin, &end) == CompiledRegex::Result::kMatch) {
        ++matched;
        ASSERT_TRUE(may) << c.regex << " on '" << subject << "'";
        // Cut where the match ends, the subject still holds it: the
        // shortest-match bound must hold there too.
        ASSERT_TRUE(screen->MayMatch(subject.substr(0, end)))
            << c.regex << " on '" << subject.substr(0, end) << "'";
      }
      turned_away += !may;
    }
    EXPECT_GT(matched, 20u) << c.regex;
    EXPECT_GT(turned_away, kSubjects / 10) << c.regex;
  }
  // A branch that matches the empty string lets everything through.
  rules::PcreMatch empty = Pcre({"a|b*"});
  EXPECT_FALSE(StartScreen::Build(empty));
}

TEST(AnchoredDfaTest, OneAutomatonAnswersForEachOfSeveralRegexes) {
  rules::PcreMatch ok = Pcre({"^\\+OK [0-9]+"});
  rules::PcreMatch err = Pcre({"^-ERR"});
  rules::PcreMatch any = Pcre({"^[+-]", false, false, false});
  std::unique_ptr<AnchoredDfa> dfa = AnchoredDfa::Build({&ok, &err, &any});
  ASSERT_TRUE(dfa);
  EXPECT_EQ(dfa->Matches("+OK 12 octets"), 0b101u);
  EXPECT_EQ(dfa->Matches("+OK Logged in"), 0b100u);
  EXPECT_EQ(dfa->Matches("-ERR no"), 0b110u);
  EXPECT_EQ(dfa->Matches("* OK"), 0u);
  EXPECT_EQ(dfa->Matches(""), 0u);
  rules::PcreMatch always = Pcre({"^"});
  EXPECT_EQ(AnchoredDfa::Build({&always})->Matches(""), 1u);
  rules::PcreMatch never = Pcre({"^a^b"});
  EXPECT_EQ(AnchoredDfa::Build({&never})->Matches("ab"), 0u);
}

TEST(AnchoredDfaTest, RefusesWhatItDoesNotKnowOrCannotHold) {
  const std::vector<Case> refused = {
      {"^a$"},          {"^a\\b"},    {"^(?=a)"},  {"^(a)\\1"},  {"^a*+b"},
      {"^[[:alpha:]]"}, {"^\\x{41}"}, {"a"},       {"^a|b"},     {"^a{,3}"},
      {"^(?i)a"},       {"^\\Qa\\E"}, {"^\\p{L}"}, {"^a{2}{3}"}, {"^(?:a|b)*a(?:a|b){12}"},
  };
  for (const Case& c : refused) {
    rules::PcreMatch pcre = Pcre(c);
    EXPECT_FALSE(AnchoredDfa::Build({&pcre})) << c.regex;
  }
  rules::PcreMatch multiline = Pcre({"^a"});
  multiline.modifiers.multiline = true;
  EXPECT_FALSE(AnchoredDfa::Build({&multiline}));
  rules::PcreMatch plain = Pcre({"^a"});
  EXPECT_FALSE(AnchoredDfa::Build({&plain, nullptr}));
}

}  // namespace
}  // namespace popguard::detect
