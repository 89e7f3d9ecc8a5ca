// Every shipped rule's attack, reshaped the ways attackers reshape traffic
// to slip past an IDS: each must still be detected, with the kernel
// prefilter and without, and both runs must raise the same alerts.
#include <gtest/gtest.h>

#include <cctype>
#include <functional>

#include "replay_util.h"

namespace popguard::test {
namespace {

bool IsVerb(std::string_view word) {
  static const std::set<std::string> kVerbs = {"USER", "PASS", "APOP", "AUTH", "STAT", "LIST",
                                               "RETR", "DELE", "NOOP", "RSET", "QUIT", "TOP",
                                               "UIDL", "CAPA", "STLS", "XTND"};
  std::string upper(word);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return kVerbs.contains(upper);
}

// Applies `edit(verb, rest)` to every client line that starts with a verb.
std::vector<Exchange> EditCommands(
    const std::vector<Exchange>& dialogue,
    const std::function<std::string(std::string verb, std::string_view rest)>& edit) {
  std::vector<Exchange> out = dialogue;
  for (Exchange& e : out) {
    if (!e.to_server) continue;
    std::string edited;
    std::string_view bytes = e.bytes;
    while (!bytes.empty()) {
      size_t end = bytes.find('\n');
      std::string_view line = bytes.substr(0, end == std::string_view::npos ? end : end + 1);
      bytes.remove_prefix(line.size());
      size_t verb_end = line.find_first_of(" \t\r\n");
      std::string_view verb = line.substr(0, verb_end);
      if (IsVerb(verb)) {
        edited += edit(std::string(verb), line.substr(verb.size()));
      } else {
        edited += line;
      }
    }
    e.bytes = edited;
  }
  return out;
}

std::vector<Exchange> MixedCase(const std::vector<Exchange>& dialogue) {
  return EditCommands(dialogue, [](std::string verb, std::string_view rest) {
    for (size_t i = 0; i < verb.size(); ++i) {
      verb[i] = static_cast<char>(i % 2 ? std::toupper(static_cast<unsigned char>(verb[i]))
                                        : std::tolower(static_cast<unsigned char>(verb[i])));
    }
    return verb + std::string(rest);
  });
}

// The blank after the verb becomes a tab and spaces.
std::vector<Exchange> Tabs(const std::vector<Exchange>& dialogue) {
  return EditCommands(dialogue, [](std::string verb, std::string_view rest) {
    if (!rest.empty() && rest[0] == ' ') return verb + "\t  " + std::string(rest.substr(1));
    return verb + std::string(rest);
  });
}

bool UsesSasl(const std::vector<Exchange>& dialogue) {
  for (const Exchange& e : dialogue) {
    if (e.to_server && (e.bytes.find("AUTH") != std::string::npos ||
                        e.bytes.find("STLS") != std::string::npos)) {
      return true;
    }
  }
  return false;
}

// After the greeting, every command in one write, then every answer in one.
std::vector<Exchange> Pipelined(const std::vector<Exchange>& dialogue) {
  std::vector<Exchange> out = {dialogue.front()};
  Exchange commands{true, ""};
  Exchange answers{false, ""};
  for (size_t i = 1; i < dialogue.size(); ++i) {
    (dialogue[i].to_server ? commands : answers).bytes += dialogue[i].bytes;
  }
  out.push_back(commands);
  out.push_back(answers);
  return out;
}

struct Evasion {
  std::string name;
  Shape shape;
  std::function<std::vector<Exchange>(const std::vector<Exchange>&)> transform;
  bool applies_to_sasl = true;
};

std::vector<Evasion> Evasions() {
  auto same = [](const std::vector<Exchange>& d) { return d; };
  Shape one_byte;
  one_byte.segment = 1;
  Shape reversed;
  reversed.segment = 7;
  reversed.reverse_segments = true;
  Shape v6;
  v6.v6 = true;
  Shape vlan;
  vlan.vlans = {100, 200};
  return {
      {"OneBytePerSegment", one_byte, same},
      {"OutOfOrderSegments", reversed, same},
      {"Ipv6", v6, same},
      {"QinQVlanTags", vlan, same},
      {"MixedCaseVerbs", {}, MixedCase},
      {"TabsAndSpaces", {}, Tabs},
      {"Pipelined", {}, Pipelined, false},
  };
}

class EvasionTest : public ::testing::TestWithParam<std::tuple<size_t, size_t>> {
 protected:
  void SetUp() override {
    if (!IsRoot()) GTEST_SKIP() << "loading the kernel programs needs root";
  }
};

TEST_P(EvasionTest, AttackStillDetectedAndPrefilterAgrees) {
  const RuleCase& c = RuleCases()[std::get<0>(GetParam())];
  const Evasion evasion = Evasions()[std::get<1>(GetParam())];
  if (!evasion.applies_to_sasl && UsesSasl(c.fire)) {
    GTEST_SKIP() << "SASL responses cannot be sent before their challenge";
  }
  TempDir dir;
  const std::string pcap = dir.File("evasion.pcap");
  WritePcap(pcap, BuildConversation(evasion.transform(c.fire), evasion.shape));
  RunResult with = RunCapture(pcap);
  RunOptions no_prefilter;
  no_prefilter.prefilter = false;
  RunResult without = RunCapture(pcap, no_prefilter);
  EXPECT_TRUE(with.Sids().contains(c.sid));
  EXPECT_TRUE(without.Sids().contains(c.sid));
  EXPECT_EQ(with.alerts, without.alerts);
}

std::string EvasionName(const ::testing::TestParamInfo<std::tuple<size_t, size_t>>& info) {
  const RuleCase& c = RuleCases()[std::get<0>(info.param)];
  std::string name = Evasions()[std::get<1>(info.param)].name + "_" + std::to_string(c.sid) +
                     "_" + c.name;
  for (char& ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(Cases, EvasionTest,
                         ::testing::Combine(::testing::Range(size_t{0}, RuleCases().size()),
                                            ::testing::Range(size_t{0}, Evasions().size())),
                         EvasionName);

// A decoy copy of every segment, sent first with the same sequence numbers:
// first data wins, so the decoy is what is inspected, and the overlap
// itself is the alert.
TEST(OverlapTest, ConflictingOverlapsRaiseTheEvasionAlert) {
  if (!IsRoot()) GTEST_SKIP() << "loading the kernel programs needs root";
  Shape shape;
  shape.conflicting_overlap = true;
  TempDir dir;
  const std::string pcap = dir.File("overlap.pcap");
  WritePcap(pcap, BuildConversation(RuleCases().front().fire, shape));
  RunResult with = RunCapture(pcap);
  RunOptions no_prefilter;
  no_prefilter.prefilter = false;
  RunResult without = RunCapture(pcap, no_prefilter);
  EXPECT_TRUE(with.Sids().contains(9100020));
  EXPECT_EQ(with.alerts, without.alerts);
  EXPECT_GT(with.stats.inspector.overlap_conflicts, 0u);
}

}  // namespace
}  // namespace popguard::test
