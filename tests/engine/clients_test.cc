// Real clients against a real server (tests/integration/capture-clients.sh:
// curl, python poplib and fetchmail against dovecot, plain, STLS and 995,
// every SASL mechanism they speak, long logins, pipelining, GSO frames):
// the shipped rules stay quiet, and the prefilter changes no alert.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <filesystem>

#include "replay_util.h"

namespace popguard::test {
namespace {

namespace fs = std::filesystem;

// Captured once for the whole binary.
class ClientCaptures : public ::testing::Environment {
 public:
  static const std::vector<std::string>& Files() { return files_; }
  static const std::string& Problem() { return problem_; }

  void SetUp() override {
    if (!IsRoot()) {
      problem_ = "capturing needs root";
      return;
    }
    dir_ = std::make_unique<TempDir>();
    const std::string command = std::string(POPGUARD_SOURCE_DIR) +
                                "/tests/integration/capture-clients.sh " + dir_->path() +
                                " >" + dir_->File("capture.log") + " 2>&1";
    if (std::system(command.c_str()) != 0) {
      problem_ = "capture-clients.sh failed; see its log:\n" + Slurp(dir_->File("capture.log"));
      return;
    }
    for (const auto& entry : fs::directory_iterator(dir_->path())) {
      if (entry.path().extension() == ".pcap") files_.push_back(entry.path().string());
    }
    std::sort(files_.begin(), files_.end());
  }
  void TearDown() override { dir_.reset(); }

 private:
  static std::string Slurp(const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  std::unique_ptr<TempDir> dir_;
  static inline std::vector<std::string> files_;
  static inline std::string problem_;
};

class ClientsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Root is the only reason to skip; a client or server that fails is a
    // failure, not a skip.
    if (!IsRoot()) GTEST_SKIP() << "capturing needs root";
    ASSERT_TRUE(ClientCaptures::Problem().empty()) << ClientCaptures::Problem();
    ASSERT_GE(ClientCaptures::Files().size(), 20u);
  }
};

TEST_F(ClientsTest, ShippedRulesStayQuietOnRealClients) {
  for (const std::string& capture : ClientCaptures::Files()) {
    RunResult result = RunCapture(capture);
    EXPECT_TRUE(result.alerts.empty()) << capture << ": sid " << std::get<0>(result.alerts[0]);
    EXPECT_EQ(result.stats.inspector.stream_gaps, 0u) << capture;
    EXPECT_EQ(result.stats.test_run_errors, 0u) << capture;
  }
}

TEST_F(ClientsTest, PrefilterChangesNoAlertEvenWithTinyMapAndSmallestBudgets) {
  // The public rules too, when the corpus is there: they alert on these
  // sessions (logins, AUTH), so equality is not trivially true.
  std::vector<std::string> rule_files = {ShippedRules()};
  const std::string public_rules = std::string(POPGUARD_SHARED_DIR) + "/corpus/rules";
  if (fs::is_directory(public_rules)) rule_files.push_back(public_rules);
  for (const std::string& capture : ClientCaptures::Files()) {
    RunOptions without;
    without.rules = rule_files;
    without.prefilter = false;
    RunOptions tiny;
    tiny.rules = rule_files;
    tiny.flow_map_entries = 64;
    tiny.kernel_config = detect::SmallestBudgets(DefaultConfig());
    EXPECT_EQ(RunCapture(capture, tiny).alerts, RunCapture(capture, without).alerts) << capture;
  }
}

// Bodies stay in the kernel: a mailbox download sends up a sliver of its
// bytes.
TEST_F(ClientsTest, MailboxDownloadKeepsBodiesInTheKernel) {
  for (const std::string& capture : ClientCaptures::Files()) {
    if (capture.find("py-basic.pcap") == std::string::npos) continue;
    RunResult result = RunCapture(capture);
    ASSERT_TRUE(result.stats.kernel);
    const Counters& k = *result.stats.kernel;
    const uint64_t payload = k[PG_CNT_PAYLOAD_BYTES_TO_SERVER] + k[PG_CNT_PAYLOAD_BYTES_TO_CLIENT];
    EXPECT_GT(payload, 100'000u);
    EXPECT_LT(k[PG_CNT_EVENT_BYTES] * 20, payload) << "more than 5% of the bytes went up";
    EXPECT_GT(result.stats.inspector.bodies_elided, 0u);
    return;
  }
  FAIL() << "no py-basic.pcap capture";
}

}  // namespace
}  // namespace popguard::test

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new popguard::test::ClientCaptures);
  return RUN_ALL_TESTS();
}
