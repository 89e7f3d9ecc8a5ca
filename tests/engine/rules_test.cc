// Every shipped rule on captures the test builds: its attack must raise it
// and its near miss must not, with the kernel prefilter and without, and
// both runs must raise the same alerts.
#include <gtest/gtest.h>

#include "replay_util.h"

namespace popguard::test {
namespace {

class ShippedRuleTest : public ::testing::TestWithParam<size_t> {
 protected:
  void SetUp() override {
    if (!IsRoot()) GTEST_SKIP() << "loading the kernel programs needs root";
  }
};

std::string CaseName(const ::testing::TestParamInfo<size_t>& info) {
  const RuleCase& c = RuleCases()[info.param];
  std::string name = std::to_string(c.sid) + "_" + c.name;
  for (char& ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return name;
}

TEST_P(ShippedRuleTest, FiresOnAttackNotOnNearMissWithAndWithoutPrefilter) {
  const RuleCase& c = RuleCases()[GetParam()];
  TempDir dir;
  WritePcap(dir.File("fire.pcap"), BuildConversation(c.fire));
  WritePcap(dir.File("miss.pcap"), BuildConversation(c.near_miss));
  for (bool prefilter : {true, false}) {
    SCOPED_TRACE(prefilter ? "prefilter" : "no prefilter");
    RunOptions options;
    options.prefilter = prefilter;
    EXPECT_TRUE(RunCapture(dir.File("fire.pcap"), options).Sids().contains(c.sid));
    EXPECT_FALSE(RunCapture(dir.File("miss.pcap"), options).Sids().contains(c.sid));
  }
  for (const char* file : {"fire.pcap", "miss.pcap"}) {
    RunOptions without;
    without.prefilter = false;
    EXPECT_EQ(RunCapture(dir.File(file)).alerts, RunCapture(dir.File(file), without).alerts)
        << file;
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, ShippedRuleTest, ::testing::Range(size_t{0}, RuleCases().size()),
                         CaseName);

TEST(ShippedRulesTest, EveryAlertingSidHasACase) {
  detect::LoadedRules loaded = detect::LoadRules({ShippedRules()});
  ASSERT_TRUE(loaded.errors.empty()) << loaded.errors.front().ToString();
  std::set<uint32_t> covered;
  for (const RuleCase& c : RuleCases()) covered.insert(c.sid);
  for (uint32_t sid : NoAlertSids()) covered.insert(sid);
  // Cases in other shapes: overlaps (evasion_test.cc), a flood past the
  // budget (soundness_test.cc).
  covered.insert(9100020);
  covered.insert(9100021);
  for (const rules::Rule& rule : loaded.engine->rules()) {
    EXPECT_TRUE(covered.contains(rule.sid)) << "no test case for sid " << rule.sid;
  }
}

}  // namespace
}  // namespace popguard::test
