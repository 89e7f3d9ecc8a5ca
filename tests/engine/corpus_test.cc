// The public corpus (../shared/corpus; skipped when absent): its rule files
// load, every rule compiled or refused with a reason; its real captures
// raise none of the seed signatures, and every rule set (ours, and the
// public ones) alerts the same with the kernel prefilter as without it.
#include <gtest/gtest.h>

#include <filesystem>

#include "replay_util.h"

namespace popguard::test {
namespace {

namespace fs = std::filesystem;

const std::string kCorpus = std::string(POPGUARD_SHARED_DIR) + "/corpus";

std::vector<std::string> Captures() {
  std::vector<std::string> captures;
  if (!fs::is_directory(kCorpus)) return captures;
  for (const auto& entry : fs::recursive_directory_iterator(kCorpus)) {
    const std::string ext = entry.path().extension().string();
    if (ext == ".pcap" || ext == ".pcapng") captures.push_back(entry.path().string());
  }
  std::sort(captures.begin(), captures.end());
  return captures;
}

std::vector<std::string> PublicRuleFiles() {
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(kCorpus + "/rules")) {
    if (entry.path().extension() == ".rules") files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

class CorpusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::is_directory(kCorpus)) GTEST_SKIP() << kCorpus << " is absent";
  }
};

// Each file on its own (they repeat each other's sids): every rule either
// compiles or is refused naming its sid and why. Today every rule compiles,
// the two ET SCAN rules counting SYN packets included.
TEST_F(CorpusTest, PublicRuleFilesCompileOrAreRefusedWithAReason) {
  std::set<uint32_t> refused;
  size_t compiled = 0;
  for (const std::string& file : PublicRuleFiles()) {
    SCOPED_TRACE(file);
    detect::LoadedRules loaded = detect::LoadRules({file});
    ASSERT_TRUE(loaded.engine);
    compiled += loaded.engine->rules().size();
    for (const rules::Diagnostic& error : loaded.errors) {
      const std::string text = error.ToString();
      const size_t at = text.find(": sid ");
      ASSERT_NE(at, std::string::npos) << text;
      refused.insert(static_cast<uint32_t>(std::stoul(text.substr(at + 6))));
      ADD_FAILURE() << text;
    }
  }
  EXPECT_EQ(refused, (std::set<uint32_t>{}));
  EXPECT_GE(compiled, 60u);
}

TEST_F(CorpusTest, RealCapturesRaiseNoSeedSignature) {
  if (!IsRoot()) GTEST_SKIP() << "loading the kernel programs needs root";
  for (const std::string& capture : Captures()) {
    SCOPED_TRACE(capture);
    RunResult result = RunCapture(capture);
    for (uint32_t sid = 9100001; sid <= 9100006; ++sid) EXPECT_FALSE(result.Sids().contains(sid));
    EXPECT_EQ(result.stats.inspector.stream_gaps, 0u);
  }
}

TEST_F(CorpusTest, EveryRuleSetAlertsTheSameWithAndWithoutThePrefilter) {
  if (!IsRoot()) GTEST_SKIP() << "loading the kernel programs needs root";
  std::vector<std::vector<std::string>> rule_sets = {{ShippedRules()}};
  for (const std::string& file : PublicRuleFiles()) rule_sets.push_back({file});
  size_t alerts = 0;
  for (const std::string& capture : Captures()) {
    for (const auto& rules : rule_sets) {
      SCOPED_TRACE(capture + " with " + rules.front());
      RunOptions with;
      with.rules = rules;
      RunOptions tiny = with;
      tiny.flow_map_entries = 64;
      tiny.kernel_config = detect::SmallestBudgets(DefaultConfig());
      RunOptions without = with;
      without.prefilter = false;
      RunResult reference = RunCapture(capture, without);
      alerts += reference.alerts.size();
      EXPECT_EQ(RunCapture(capture, with).alerts, reference.alerts);
      EXPECT_EQ(RunCapture(capture, tiny).alerts, reference.alerts);
    }
  }
  // The public rules do fire on these captures, so the comparison has teeth.
  EXPECT_GT(alerts, 0u);
}

}  // namespace
}  // namespace popguard::test
