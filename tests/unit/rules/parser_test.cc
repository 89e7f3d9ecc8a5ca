#include "agent/rules/parser.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "tests/unit/rules/test_util.h"

namespace popguard::rules {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::Parse;
using testing::ParseOk;

std::vector<std::string> Messages(const std::vector<Diagnostic>& errors) {
  std::vector<std::string> out;
  for (const Diagnostic& error : errors) out.push_back(error.ToString());
  return out;
}

TEST(ParseRulesTest, CommentsBlankLinesAndDisabledRules) {
  ParseResult result = Parse(
      "# a comment\n"
      "\n"
      "   \t\n"
      "#alert tcp any any -> any any (msg:\"disabled\"; this is not even valid\n"
      "# drop tcp any any -> any any (sid:2;)\n"
      "# alert me when lunch is ready\n"
      "alert tcp any any -> any 110 (msg:\"live\"; sid:1;)\n"
      "  # indented comment\n");
  EXPECT_TRUE(result.errors.empty());
  ASSERT_EQ(result.rules.size(), 1u);
  EXPECT_EQ(result.rules[0].msg, "live");
  EXPECT_EQ(result.rules[0].location.line, 7);
  EXPECT_EQ(result.rules[0].location.file, "t.rules");
  // Commented rules are counted; prose that merely starts with an action word is not.
  EXPECT_EQ(result.disabled_rules, 2);
}

TEST(ParseRulesTest, ContinuationLinesKeepPhysicalLineNumbers) {
  ParseResult result = Parse(
      "alert tcp any any -> any 110 (msg:\"one\"; \\\n"
      "    content:\"USER\"; \\\n"
      "    sid:1;)\n"
      "alert tcp any any -> any 110 (msg:\"two\"; \\\n"
      "    content:\"PASS\"; \\\n"
      "    frobnicate; sid:2;)\n"
      "alert tcp any any -> any 110 (msg:\"three\"; sid:3;)\n");
  ASSERT_EQ(result.rules.size(), 2u);
  EXPECT_EQ(result.rules[0].location.line, 1);
  EXPECT_EQ(result.rules[0].msg, "one");
  EXPECT_EQ(std::get<ContentMatch>(result.rules[0].detections[0]).pattern, "USER");
  EXPECT_EQ(result.rules[1].location.line, 7);
  ASSERT_EQ(result.errors.size(), 1u);
  EXPECT_EQ(result.errors[0].ToString(), "t.rules:6: sid 2: unknown option 'frobnicate'");
  EXPECT_EQ(result.errors[0].location.column, 5);
}

TEST(ParseRulesTest, ContinuedRuleErrorsPointAtTheirOwnLine) {
  // A rule-wide error (no sid) names the rule's first line; an option error
  // the option's line, even when a continuation joined it mid-option.
  EXPECT_THAT(Messages(Parse("\n"
                             "alert tcp any any -> any 110 (msg:\"x\"; \\\n"
                             "  content:\"a\";)\n")
                           .errors),
              ElementsAre("t.rules:2: rule has no sid"));
  EXPECT_THAT(Messages(Parse("alert tcp any any -> any 110 (sid:4; content:\"USER\"; \\\n"
                             "\\\n"
                             "  depth:2;)\n")
                           .errors),
              ElementsAre("t.rules:1: sid 4: content \"USER\": depth 2 is shorter than the pattern "
                          "(4 bytes); it can never match"));
  EXPECT_THAT(Messages(Parse("alert tcp any any -> any 110 (sid:4; \\\n"
                             "  content:\"a\"; content:\"b\"; \\\n"
                             "  within:0;)\n")
                           .errors),
              ElementsAre(HasSubstr("t.rules:3: sid 4: 'within' must be a number 1..")));
  EXPECT_THAT(Messages(Parse("alert tcp any any -> \\\n"
                             "  any 99999 (sid:4;)\n")
                           .errors),
              ElementsAre(HasSubstr("t.rules:2: sid 4: destination port: '99999'")));
}

TEST(ParseRulesTest, ContinuationJoinsWithoutAddingSpace) {
  // As Suricata: the backslash and newline vanish, nothing is inserted.
  Rule rule = ParseOk("alert tcp any any -> any 110 (msg:\"ab\\\ncd\"; sid:1;)");
  EXPECT_EQ(rule.msg, "abcd");
}

TEST(ParseRulesTest, CommentEndingInBackslashDoesNotSwallowTheNextRule) {
  ParseResult result = Parse(
      "# note \\\n"
      "alert tcp any any -> any 110 (sid:1;)\n");
  EXPECT_TRUE(result.errors.empty());
  ASSERT_EQ(result.rules.size(), 1u);
  EXPECT_EQ(result.rules[0].location.line, 2);
}

TEST(ParseRulesTest, ContinuationAtEndOfFile) {
  ParseResult result = Parse("alert tcp any any -> any 110 (sid:1;) \\");
  EXPECT_TRUE(result.errors.empty());
  EXPECT_EQ(result.rules.size(), 1u);
}

TEST(ParseRulesTest, CrLfLineEndings) {
  ParseResult result = Parse(
      "alert tcp any any -> any 110 (msg:\"a\"; \\\r\n sid:1;)\r\n"
      "alert tcp any any -> any 110 (sid:2;)\r\n");
  EXPECT_TRUE(result.errors.empty());
  ASSERT_EQ(result.rules.size(), 2u);
  EXPECT_EQ(result.rules[1].location.line, 3);
}

TEST(ParseRulesTest, ThreeBadRulesGiveThreeErrorsAndGoodRulesLoad) {
  ParseResult result = Parse(
      "alert tcp any any -> any 110 (sid:1;)\n"
      "alert tcp any any -> any 110 (content:\"x\"; byte_jump:1,0; sid:2;)\n"
      "alert tcp any any -> any 110 (sid:3;)\n"
      "alert udp any any -> any 110 (sid:4;)\n"
      "alert tcp any any -> any 110 (msg:\"no sid\";)\n"
      "alert tcp any any -> any 110 (sid:6;)\n");
  EXPECT_THAT(Messages(result.errors),
              ElementsAre(HasSubstr("t.rules:2: sid 2: unsupported option 'byte_jump'"),
                          HasSubstr("t.rules:4: sid 4: protocol 'udp' cannot carry POP3"),
                          "t.rules:5: rule has no sid"));
  ASSERT_EQ(result.rules.size(), 3u);
  EXPECT_EQ(result.rules[0].sid, 1u);
  EXPECT_EQ(result.rules[1].sid, 3u);
  EXPECT_EQ(result.rules[2].sid, 6u);
}

TEST(ParseRulesTest, StructuralErrors) {
  auto error = [](std::string_view text) { return Messages(Parse(text).errors); };
  EXPECT_THAT(error("alert tcp any any -> any 110 sid:1;"),
              ElementsAre("t.rules:1: missing '(' and the option list"));
  EXPECT_THAT(error("alert tcp any any -> any 110 (sid:1;"),
              ElementsAre("t.rules:1: missing ')' at the end of the rule"));
  EXPECT_THAT(error("alert tcp any any -> any 110 (sid:1;) extra"),
              ElementsAre("t.rules:1: text after the closing ')'"));
  EXPECT_THAT(error("alert tcp any any -> any 110 (msg:\"open; sid:1;)"),
              ElementsAre("t.rules:1: unterminated quoted string"));
  EXPECT_THAT(error("alert tcp any any -> any 110 (sid:1;; rev:1;)"),
              ElementsAre("t.rules:1: empty option (two semicolons in a row?)"));
  EXPECT_THAT(error("alert tcp any any -> any 110 (msg:\"x\" sid:1;)"),
              ElementsAre(HasSubstr("unexpected text after the msg string")));
  EXPECT_THAT(error("alert tcp any any -> any 110 (content \"x\"; sid:1;)"),
              ElementsAre("t.rules:1: malformed option 'content \"x\"' (missing ';' before "
                          "it?)"));
}

TEST(ParseRulesTest, ColumnsPointAtTheOption) {
  ParseResult result = Parse("alert tcp any any -> any 110 (sid:1; nocase;)");
  ASSERT_EQ(result.errors.size(), 1u);
  EXPECT_EQ(result.errors[0].location.line, 1);
  EXPECT_EQ(result.errors[0].location.column, 38);
}

TEST(ParseRulesTest, QuotesProtectSemicolonsAndParentheses) {
  Rule rule = ParseOk("alert tcp any any -> any 110 (msg:\"a; b) c\"; content:\"x;)\"; sid:1;)");
  EXPECT_EQ(rule.msg, "a; b) c");
  EXPECT_EQ(std::get<ContentMatch>(rule.detections[0]).pattern, "x;)");
}

TEST(ParseRulesTest, LastSemicolonIsOptionalAndKeywordsIgnoreCase) {
  Rule rule = ParseOk("alert tcp any any -> any 110 (MSG:\"x\"; Content:\"a\"; NoCase; sid:1)");
  EXPECT_EQ(rule.sid, 1u);
  EXPECT_TRUE(std::get<ContentMatch>(rule.detections[0]).nocase);
}

TEST(ParseRulesTest, DuplicateSidInOneFile) {
  ParseResult result = Parse(
      "alert tcp any any -> any 110 (sid:7;)\n"
      "alert tcp any any -> any 110 (sid:8;)\n"
      "alert tcp any any -> any 110 (sid:7; rev:2;)\n"
      "alert tcp any any -> any 110 (gid:142; sid:7;)\n"
      "alert tcp any any -> any 110 (gid:142; sid:7;)\n");
  EXPECT_THAT(Messages(result.errors),
              ElementsAre("t.rules:3: duplicate sid 7 (first at t.rules:1)",
                          "t.rules:5: duplicate sid 142:7 (first at t.rules:4)"));
  ASSERT_EQ(result.rules.size(), 3u);
  EXPECT_EQ(result.rules[0].rev, 0u);  // the first one stays
}

TEST(RuleSetTest, DuplicatesAcrossFiles) {
  RuleSet set;
  set.Add(
      ParseRules("alert tcp any any -> any 110 (sid:1;)\n"
                 "# alert tcp any any -> any 110 (sid:9;)\n",
                 "a.rules", Variables()));
  set.Add(
      ParseRules("\nalert tcp any any -> any 110 (sid:2;)\n"
                 "alert tcp any any -> any 110 (sid:1;)\n"
                 "alert tcp any any -> any 110 (bogus; sid:3;)\n",
                 "b.rules", Variables()));
  EXPECT_THAT(Messages(set.errors()),
              ElementsAre("b.rules:4: sid 3: unknown option 'bogus'",
                          "b.rules:3: duplicate sid 1 (first at a.rules:1)"));
  ASSERT_EQ(set.rules().size(), 2u);
  EXPECT_EQ(set.rules()[0].location.file, "a.rules");
  EXPECT_EQ(set.rules()[1].sid, 2u);
  EXPECT_EQ(set.disabled_rules(), 1);
}

TEST(ParseRuleFileTest, ReadsFilesAndReportsIoErrors) {
  std::string path =
      ::testing::TempDir() + "popguard_rules_test_" + std::to_string(getpid()) + ".rules";
  {
    std::ofstream out(path);
    out << "alert tcp any any -> any $POP3_PORTS (msg:\"file\"; sid:1;)\n"
        << "alert tcp any any -> any 110 (sid:x;)\n";
  }
  ParseResult result = ParseRuleFile(path);
  std::remove(path.c_str());
  ASSERT_EQ(result.rules.size(), 1u);
  EXPECT_EQ(result.rules[0].location.file, path);
  EXPECT_THAT(Messages(result.errors),
              ElementsAre(path + ":2: 'sid' must be a number 1..4294967295, "
                                 "got 'x'"));

  ParseResult missing = ParseRuleFile("/nonexistent/popguard.rules");
  EXPECT_TRUE(missing.rules.empty());
  EXPECT_THAT(Messages(missing.errors),
              ElementsAre("/nonexistent/popguard.rules: cannot read: No such file or directory"));
  EXPECT_THAT(Messages(ParseRuleFile(::testing::TempDir()).errors),
              ElementsAre(HasSubstr("cannot read: Is a directory")));
}

}  // namespace
}  // namespace popguard::rules
