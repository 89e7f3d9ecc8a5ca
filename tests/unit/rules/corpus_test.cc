// The public rule files in shared/corpus/rules: every rule either parses or
// gets a precise error, and what parses means what the rule says.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "agent/rules/parser.h"

#ifndef POPGUARD_SHARED_DIR
#error "POPGUARD_SHARED_DIR must name the shared folder (the build defines it)"
#endif

namespace popguard::rules {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;

// CMake defines the path as a string literal; a shell `-DPOPGUARD_SHARED_DIR="/x"`
// loses the quotes. Stringifying accepts both.
#define POPGUARD_STRINGIFY_INNER(x) #x
#define POPGUARD_STRINGIFY(x) POPGUARD_STRINGIFY_INNER(x)

fs::path CorpusDir() {
  std::string_view dir = POPGUARD_STRINGIFY(POPGUARD_SHARED_DIR);
  if (dir.size() >= 2 && dir.front() == '"') dir = dir.substr(1, dir.size() - 2);
  return fs::path(dir) / "corpus" / "rules";
}

std::vector<fs::path> CorpusFiles() {
  std::vector<fs::path> files;
  for (const fs::directory_entry& entry : fs::directory_iterator(CorpusDir())) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<std::string> Lines(const fs::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Counted without the parser: lines whose first word is an action.
size_t CountRuleLines(const std::vector<std::string>& lines) {
  return std::count_if(lines.begin(), lines.end(), [](const std::string& line) {
    std::string first_word = line.substr(0, line.find_first_of(" \t"));
    for (const char* action : {"alert", "drop", "reject", "pass", "log"}) {
      if (first_word == action) return true;
    }
    return false;
  });
}

#define SKIP_WITHOUT_CORPUS()                                                   \
  if (!fs::is_directory(CorpusDir())) {                                         \
    GTEST_SKIP() << "no rule corpus at " << CorpusDir() << " (shared/ absent)"; \
  }

ParseResult ParseCorpusFile(std::string_view name) {
  return ParseRuleFile((CorpusDir() / name).string());
}

struct Expected {
  std::string_view file;
  size_t parsed;
  int disabled;
};

constexpr Expected kExpected[] = {
    {"et-open-scan_ousshr47-snort_conf.rules", 2, 0},
    {"et-open_kwang3129-opn_ids_rules.rules", 11, 11},
    {"snort-2.2.0-gpl_bailehang-snort_2.2.0.rules", 26, 1},
    {"snort3-builtin-pop-gid142_snort3-snort3.txt", 0, 0},  // documentation only, all comments
    {"snort3-community_Resistine-SnortRules.rules", 22, 0},
    {"suricata-pop3-events_OISF-suricata.rules", 5, 0},
};

TEST(CorpusTest, EveryRuleParsesOrGetsAPreciseError) {
  SKIP_WITHOUT_CORPUS();
  for (const fs::path& file : CorpusFiles()) {
    SCOPED_TRACE(file.string());
    std::vector<std::string> lines = Lines(file);
    ParseResult result = ParseRuleFile(file.string());
    EXPECT_EQ(result.rules.size() + result.errors.size(), CountRuleLines(lines));
    for (const Diagnostic& error : result.errors) {
      EXPECT_EQ(error.location.file, file.string());
      EXPECT_GE(error.location.line, 1);
      EXPECT_LE(error.location.line, static_cast<int>(lines.size()));
      EXPECT_FALSE(error.message.empty());
    }
    // Each rule's reported line is the one that carries its sid.
    for (const Rule& rule : result.rules) {
      ASSERT_GE(rule.location.line, 1);
      ASSERT_LE(rule.location.line, static_cast<int>(lines.size()));
      EXPECT_THAT(lines[rule.location.line - 1],
                  ::testing::HasSubstr("sid:" + std::to_string(rule.sid) + ";"));
    }
  }
}

TEST(CorpusTest, PerFileResults) {
  SKIP_WITHOUT_CORPUS();
  for (const Expected& expected : kExpected) {
    SCOPED_TRACE(std::string(expected.file));
    if (!fs::exists(CorpusDir() / expected.file)) {
      ADD_FAILURE() << "corpus file missing";
      continue;
    }
    ParseResult result = ParseCorpusFile(expected.file);
    EXPECT_EQ(result.rules.size(), expected.parsed);
    EXPECT_EQ(result.disabled_rules, expected.disabled);
    for (const Diagnostic& error : result.errors) ADD_FAILURE() << error.ToString();
  }
}

TEST(CorpusTest, SuricataPop3EventRules) {
  SKIP_WITHOUT_CORPUS();
  ParseResult result = ParseCorpusFile("suricata-pop3-events_OISF-suricata.rules");
  ASSERT_EQ(result.rules.size(), 5u);
  std::vector<Pop3Event> events;
  for (const Rule& rule : result.rules) {
    EXPECT_EQ(rule.header.protocol, "pop3");
    ASSERT_EQ(rule.app_layer_events.size(), 1u);
    events.push_back(rule.app_layer_events[0]);
  }
  EXPECT_THAT(events, ElementsAre(Pop3Event::kTooManyTransactions, Pop3Event::kRequestTooLong,
                                  Pop3Event::kIncorrectArgumentCount, Pop3Event::kUnknownCommand,
                                  Pop3Event::kResponseTooLong));
  EXPECT_FALSE(result.rules[0].flow.has_value());
  EXPECT_EQ(result.rules[1].flow->direction, FlowDirection::kToServer);
  EXPECT_EQ(result.rules[4].flow->direction, FlowDirection::kToClient);
  EXPECT_EQ(result.rules[4].sid, 2236004u);
}

TEST(CorpusTest, EtScanRulesFlagsAndThreshold) {
  SKIP_WITHOUT_CORPUS();
  ParseResult result = ParseCorpusFile("et-open-scan_ousshr47-snort_conf.rules");
  ASSERT_EQ(result.rules.size(), 2u);
  const Rule& rule = result.rules[0];
  EXPECT_EQ(rule.sid, 2002992u);
  EXPECT_EQ(rule.flags->flags, kTcpSyn);
  EXPECT_EQ(rule.flags->ignored, kTcpCwr | kTcpEce);
  EXPECT_EQ(rule.threshold->type, ThresholdType::kBoth);
  EXPECT_EQ(rule.threshold->track, Track::kBySrc);
  EXPECT_EQ(rule.threshold->count, 30u);
  EXPECT_EQ(rule.threshold->seconds, 120u);
  EXPECT_EQ(rule.category, "Misc activity");
  EXPECT_TRUE(rule.header.destination_ports.Matches(uint16_t{110}));
  EXPECT_TRUE(result.rules[1].header.destination_ports.Matches(uint16_t{995}));
  EXPECT_FALSE(result.rules[1].header.destination_ports.Matches(uint16_t{110}));
}

TEST(CorpusTest, EtOpenDropRulesKeepContentIsdataatPcre) {
  SKIP_WITHOUT_CORPUS();
  ParseResult result = ParseCorpusFile("et-open_kwang3129-opn_ids_rules.rules");
  ASSERT_FALSE(result.rules.empty());
  const Rule& auth = result.rules[0];
  EXPECT_EQ(auth.sid, 2101936u);
  EXPECT_EQ(auth.header.action, Action::kDrop);
  ASSERT_EQ(auth.detections.size(), 3u);
  const auto& content = std::get<ContentMatch>(auth.detections[0]);
  EXPECT_EQ(content.pattern, "AUTH");
  EXPECT_TRUE(content.nocase);
  const auto& isdataat = std::get<IsDataAt>(auth.detections[1]);
  EXPECT_EQ(isdataat.position, 50u);
  EXPECT_TRUE(isdataat.relative);
  const auto& pcre = std::get<PcreMatch>(auth.detections[2]);
  EXPECT_EQ(pcre.regex, "^AUTH\\s[^\\n]{50}");
  EXPECT_TRUE(pcre.modifiers.dotall && pcre.modifiers.multiline && pcre.modifiers.caseless);
  EXPECT_EQ(auth.references.size(), 3u);
  EXPECT_EQ(auth.priority, 1);
}

TEST(CorpusTest, Snort22HexContentAndByteTests) {
  SKIP_WITHOUT_CORPUS();
  ParseResult result = ParseCorpusFile("snort-2.2.0-gpl_bailehang-snort_2.2.0.rules");
  auto find = [&](uint32_t sid) -> const Rule& {
    auto it = std::find_if(result.rules.begin(), result.rules.end(),
                           [&](const Rule& r) { return r.sid == sid; });
    EXPECT_NE(it, result.rules.end()) << sid;
    return *it;
  };
  EXPECT_EQ(std::get<ContentMatch>(find(288).detections[0]).pattern,
            "\xD8@\xCD\x80\xE8\xD9\xFF\xFF\xFF/bin/sh");

  const Rule& pct = find(2518);
  ASSERT_EQ(pct.detections.size(), 7u);
  const auto& not_zero = std::get<ByteTest>(pct.detections[2]);  // byte_test:2,!,0,8
  EXPECT_EQ(not_zero.op, ByteTestOperator::kEqual);
  EXPECT_TRUE(not_zero.negated);
  EXPECT_EQ(not_zero.offset, 8);
  const auto& relative = std::get<ByteTest>(pct.detections[6]);  // byte_test:2,>,32768,0,relative
  EXPECT_EQ(relative.op, ByteTestOperator::kGreater);
  EXPECT_EQ(relative.value, 32768u);
  EXPECT_TRUE(relative.relative);

  const Rule& hello = find(2535);
  EXPECT_TRUE(hello.noalert);
  ASSERT_EQ(hello.flowbits.size(), 2u);
  EXPECT_EQ(hello.flowbits[0].command, FlowbitsCommand::kIsNotSet);
  EXPECT_EQ(hello.flowbits[1].command, FlowbitsCommand::kSet);
  EXPECT_THAT(hello.flowbits[1].names, ElementsAre("sslv3.client_hello.request"));

  const Rule& format = find(2250);
  ASSERT_EQ(format.detections.size(), 3u);
  EXPECT_EQ(std::get<ContentMatch>(format.detections[2]).distance, 1);
  EXPECT_TRUE(std::get<ContentMatch>(find(2502).detections[2]).negated);
}

TEST(CorpusTest, Snort3CommunityInlineModifiersAndService) {
  SKIP_WITHOUT_CORPUS();
  ParseResult result = ParseCorpusFile("snort3-community_Resistine-SnortRules.rules");
  ASSERT_EQ(result.rules.size(), 22u);
  for (const Rule& rule : result.rules) {
    EXPECT_THAT(rule.services, ElementsAre("pop3")) << rule.sid;
  }
  const Rule& bsd = result.rules[0];
  EXPECT_EQ(bsd.sid, 286u);
  const auto& content = std::get<ContentMatch>(bsd.detections[0]);
  EXPECT_TRUE(content.nocase);
  EXPECT_TRUE(content.fast_pattern.has_value());
  EXPECT_EQ(content.pattern,
            "^\x0E"
            "1\xC0\xB0;\x8D~\x0E\x89\xFA\x89\xF9");

  auto brute = std::find_if(result.rules.begin(), result.rules.end(),
                            [](const Rule& r) { return r.sid == 2274; });
  ASSERT_NE(brute, result.rules.end());
  EXPECT_EQ(brute->flow->stream, StreamMode::kNoStream);
  EXPECT_EQ(brute->detection_filter->track, Track::kByDst);
  EXPECT_EQ(brute->detection_filter->count, 30u);
  EXPECT_THAT(brute->metadata,
              ElementsAre(std::pair<std::string, std::string>("ruleset", "community")));
}

TEST(CorpusTest, WholeCorpusAsOneRuleSetReportsCrossFileDuplicates) {
  SKIP_WITHOUT_CORPUS();
  RuleSet set;
  size_t parsed = 0;
  for (const fs::path& file : CorpusFiles()) {
    ParseResult result = ParseRuleFile(file.string());
    parsed += result.rules.size();
    set.Add(std::move(result));
  }
  std::set<uint32_t> sids;
  for (const Rule& rule : set.rules()) EXPECT_TRUE(sids.insert(rule.sid).second) << rule.sid;
  for (const Diagnostic& error : set.errors()) {
    EXPECT_THAT(error.message,
                ::testing::MatchesRegex("duplicate sid [0-9]+ \\(first at "
                                        ".*(snort-2\\.2\\.0|et-open-scan).*:[0-9]+\\)"));
    EXPECT_GE(error.location.line, 1);
  }
  EXPECT_EQ(set.errors().front().ToString(),
            (CorpusDir() / "et-open_kwang3129-opn_ids_rules.rules").string() +
                ":90: duplicate sid 2002992 (first at " +
                (CorpusDir() / "et-open-scan_ousshr47-snort_conf.rules").string() + ":5)");
  // ET ships 2002992/3 in both copies; Snort 3 community reuses 20 Snort 2.2 sids.
  EXPECT_EQ(set.errors().size(), 22u);
  EXPECT_EQ(set.rules().size() + set.errors().size(), parsed);
}

}  // namespace
}  // namespace popguard::rules
