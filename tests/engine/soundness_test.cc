// Differential soundness of the kernel prefilter (DESIGN.md, rule 1): the
// alerts with it equal the alerts without it, also when its flow map is so
// small that flows are evicted mid-stream and when its budgets are the
// smallest the agent configures; a flood past a budget is itself an alert.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <utility>

#include "agent/detect/kernel_plan.h"
#include "replay_util.h"

namespace popguard::test {
namespace {

class SoundnessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!IsRoot()) GTEST_SKIP() << "loading the kernel programs needs root";
  }

  // Every case at once, interleaved, in the given shape: three copies make
  // three times as many concurrent flows as the tiny map holds.
  std::string AllCases(const TempDir& dir, Shape shape = {}) {
    const std::string pcap = dir.File("all.pcap");
    WritePcap(pcap, Interleave(AllCaseConversations(shape, 3)));
    return pcap;
  }

  // The capture with the shipped rules and `rules` (rule text) loaded,
  // replayed through the kernel programs and without them.
  static std::pair<RunResult, RunResult> BothWays(const TempDir& dir, const std::string& pcap,
                                                  const std::string& rules) {
    const std::string path = dir.File("extra.rules");
    std::ofstream(path) << rules;
    RunOptions options;
    options.rules = {ShippedRules(), path};
    RunResult with = RunCapture(pcap, options);
    options.prefilter = false;
    return {std::move(with), RunCapture(pcap, options)};
  }

  // The frames as a capture, replayed with the shipped rules through the
  // kernel programs and without them.
  static std::pair<RunResult, RunResult> BothWays(const std::vector<std::vector<uint8_t>>& frames) {
    TempDir dir;
    const std::string pcap = dir.File("capture.pcap");
    WritePcap(pcap, frames);
    return {RunCapture(pcap), Without(pcap)};
  }

  static RunResult Without(const std::string& pcap) {
    RunOptions options;
    options.prefilter = false;
    return RunCapture(pcap, options);
  }
};

TEST_F(SoundnessTest, TinyFlowMapEvictsMidStreamAndAlertsStayTheSame) {
  TempDir dir;
  const std::string pcap = AllCases(dir);
  RunOptions tiny;
  tiny.flow_map_entries = 64;
  RunResult with = RunCapture(pcap, tiny);
  RunResult without = Without(pcap);
  ASSERT_TRUE(with.stats.kernel);
  // The map really evicted: segments arrived for flows it no longer knew.
  EXPECT_GT((*with.stats.kernel)[PG_CNT_MIDSTREAM_MISS], 0u);
  EXPECT_FALSE(without.alerts.empty());
  EXPECT_EQ(with.alerts, without.alerts);
}

// A mailbox download that the kernel cannot frame for a while: an unknown
// command escalates the server direction. The agent offers the kernel its
// place back (pg_resync); the bodies after that stay in the kernel, and an
// attack after it is still seen.
TEST_F(SoundnessTest, EscalatedFlowsAreFramedAgainAndAlertsStayTheSame) {
  std::string body;
  while (body.size() < 20000) body += "Lorem ipsum dolor sit amet, consectetur adipiscing\r\n";
  std::vector<Exchange> dialogue = {
      {false, "+OK POP3 ready\r\n"},
      {true, "USER alice\r\n"},
      {false, "+OK\r\n"},
      {true, "PASS secret\r\n"},
      {false, "+OK logged in\r\n"},
      {true, "XTND XMIT\r\n"},
      {false, "-ERR unknown command\r\n"},
  };
  for (int i = 1; i <= 4; ++i) {
    dialogue.push_back({true, "RETR " + std::to_string(i) + "\r\n"});
    dialogue.push_back({false, "+OK message follows\r\n" + body + ".\r\n"});
  }
  dialogue.push_back({true, "LIST %n%n%n%n\r\n"});
  dialogue.push_back({false, "-ERR no such message\r\n"});
  TempDir dir;
  const std::string pcap = dir.File("escalated.pcap");
  WritePcap(pcap, BuildConversation(dialogue));
  RunResult with = RunCapture(pcap);
  RunResult without = Without(pcap);
  ASSERT_TRUE(with.stats.kernel);
  const Counters& k = *with.stats.kernel;
  EXPECT_EQ(k[PG_CNT_ESCALATIONS], 1u);
  EXPECT_EQ(k[PG_CNT_RESYNCS], 1u);
  EXPECT_GE(with.stats.inspector.resync_offers, 1u);
  // All four bodies were kept: after the resync nothing of them came up.
  EXPECT_EQ(with.stats.inspector.bodies_elided, 4u);
  EXPECT_LT(k[PG_CNT_EVENT_BYTES], 1000u);
  EXPECT_EQ(with.stats.inspector.stream_gaps, 0u);
  EXPECT_FALSE(without.alerts.empty()) << "the format string after the resync";
  EXPECT_EQ(with.alerts, without.alerts);
}

// A client that speaks before any server byte (suricata-verify's
// pop3-auth-01 starts so): the kernel and the agent both take the server's
// first line as the answer, so the kernel frames the whole session and
// keeps its bodies. Events that show pairing are turned into alerts, so a
// difference in pairing is a difference in alerts.
TEST_F(SoundnessTest, CommandBeforeTheGreetingPairsTheSameWithAndWithout) {
  const std::vector<Exchange> dialogue = {
      {true, "CAPA\r\n"},
      {false, "+OK Capability list follows\r\nUSER\r\nSASL PLAIN\r\n.\r\n"},
      {true, "USER alice\r\n"},
      {false, "+OK\r\n"},
      {true, "PASS secret\r\n"},
      {false, "+OK logged in\r\n"},
      {true, "RETR 1\r\n"},
      {false, "+OK\r\nSubject: x\r\n\r\n+OK not a status\r\n.\r\n"},
      {true, "RETR %s%s%s%s\r\n"},
      {false, "-ERR no such message\r\n"},
  };
  TempDir dir;
  const std::string pcap = dir.File("early.pcap");
  WritePcap(pcap, BuildConversation(dialogue));
  const auto [with, without] = BothWays(
      dir, pcap,
      "alert tcp any any -> any any (msg:\"unsolicited\"; app-layer-event:pop3.unsolicited_response; sid:1; rev:1;)\n"
      "alert tcp any any -> any any (msg:\"bad status\"; app-layer-event:pop3.bad_status_token; sid:2; rev:1;)\n");
  ASSERT_TRUE(with.stats.kernel);
  EXPECT_EQ((*with.stats.kernel)[PG_CNT_ESCALATIONS], 0u);
  EXPECT_EQ(with.stats.inspector.bodies_elided, 2u);
  EXPECT_FALSE(without.Sids().contains(1));
  EXPECT_FALSE(without.Sids().contains(2));
  EXPECT_FALSE(without.alerts.empty());
  EXPECT_EQ(with.alerts, without.alerts);
}

// A rule counting connections by their SYNs (as ET's rapid POP3 connection
// rules do): the kernel reports each client SYN only because the rule asks
// for it, and the count reaches its threshold at the same SYN with and
// without the prefilter. A source below the count raises nothing.
TEST_F(SoundnessTest, ConnectionRateRulesCountTheSameSyns) {
  const std::vector<Exchange> login = {
      {false, "+OK POP3 ready\r\n"}, {true, "USER alice\r\n"}, {false, "+OK\r\n"},
      {true, "QUIT\r\n"}, {false, "+OK bye\r\n"}};
  std::vector<std::vector<std::vector<uint8_t>>> conversations;
  for (int i = 0; i < 31; ++i) {
    Shape shape;
    shape.client_ip = "192.0.2.10";
    shape.client_port = static_cast<uint16_t>(41000 + i);
    conversations.push_back(BuildConversation(login, shape));
  }
  for (int i = 0; i < 29; ++i) {
    Shape shape;
    shape.client_ip = "192.0.2.20";
    shape.client_port = static_cast<uint16_t>(42000 + i);
    conversations.push_back(BuildConversation(login, shape));
  }
  TempDir dir;
  const std::string pcap = dir.File("rapid.pcap");
  WritePcap(pcap, Interleave(std::move(conversations)));
  const auto [with, without] =
      BothWays(dir, pcap,
               "alert tcp $EXTERNAL_NET any -> $HOME_NET 110 (msg:\"rapid connections\"; "
               "flow:to_server; flags:S,12; threshold:type both, track by_src, count 30, "
               "seconds 120; sid:1; rev:1;)\n");
  ASSERT_TRUE(with.stats.kernel);
  EXPECT_EQ(with.stats.inspector.kernel_events_by_type[PG_EV_SYN], 60u);
  EXPECT_EQ(with.stats.inspector.malformed_events, 0u);
  EXPECT_EQ(std::count_if(without.alerts.begin(), without.alerts.end(),
                          [](const AlertKey& a) { return std::get<0>(a) == 1; }),
            1);
  EXPECT_EQ(with.alerts, without.alerts);

  // Without such a rule the kernel reports no SYN.
  RunResult shipped = RunCapture(pcap);
  EXPECT_EQ(shipped.stats.inspector.kernel_events_by_type[PG_EV_SYN], 0u);
}

// A client that sends a SYN mid-connection, far ahead and with data, then
// its attack: the server discards such a SYN (RFC 5961), so neither path
// may take its data or move where it reads; the attack is seen both ways.
TEST_F(SoundnessTest, AMidStreamSynMovesNeitherPath) {
  const std::vector<Exchange> dialogue = {
      {false, "+OK POP3 ready\r\n"}, {true, "USER alice\r\n"},      {false, "+OK\r\n"},
      {true, "PASS secret\r\n"},     {false, "+OK logged in\r\n"},
      {true, "LIST %n%n%n%n\r\n"},   {false, "-ERR no such message\r\n"},
  };
  std::vector<std::vector<uint8_t>> frames = BuildConversation(dialogue);
  Flow same("192.0.2.10", 40000, "198.51.100.1", 110);
  // After SYN, SYN-ACK, ACK, greeting, USER and its answer.
  frames.insert(frames.begin() + 6, same.ToServerAt(1u << 30, "LIST 1\r\n", kSyn));
  const auto [with, without] = BothWays(frames);
  ASSERT_TRUE(with.stats.kernel);
  EXPECT_TRUE(without.Sids().contains(9100005));
  EXPECT_EQ(with.alerts, without.alerts);
  EXPECT_EQ(with.stats.inspector.overlap_conflicts, 0u);
  EXPECT_EQ(without.stats.inspector.overlap_conflicts, 0u);
}

// Implicit TLS with a segment missing from the server's records: the
// kernel sends record heads only, so before the gap the agent lacks record
// contents the kernel kept, which are not a loss. The one real hole is
// counted the same, bytes and all, with and without the prefilter.
TEST_F(SoundnessTest, ATlsGapCountsTheSameLossWithAndWithout) {
  auto record = [](char type, size_t length) {
    std::string r = {type, '\x03', '\x03', static_cast<char>(length >> 8),
                     static_cast<char>(length & 0xff)};
    return r + std::string(length, '\x5a');
  };
  const std::vector<Exchange> dialogue = {
      {true, record('\x16', 200)},
      {false, record('\x16', 900) + record('\x17', 900) + record('\x17', 900) +
                  record('\x17', 900)},
      {true, record('\x17', 100)},
  };
  Shape shape;
  shape.server_port = 995;
  shape.segment = 1000;
  std::vector<std::vector<uint8_t>> frames = BuildConversation(dialogue, shape);
  // SYN, SYN-ACK, ACK, the client's hello, then the server's four
  // segments: the third goes missing.
  frames.erase(frames.begin() + 6);
  const auto [with, without] = BothWays(frames);
  ASSERT_TRUE(with.stats.kernel);
  EXPECT_EQ(with.stats.inspector.kernel_anomalies[PG_AN_GAP], 1u);
  EXPECT_EQ(without.stats.inspector.stream_gaps, 1u);
  EXPECT_EQ(without.stats.inspector.stream_gap_bytes, 1000u);
  EXPECT_EQ(with.stats.inspector.stream_gaps, without.stats.inspector.stream_gaps);
  EXPECT_EQ(with.stats.inspector.stream_gap_bytes, without.stats.inspector.stream_gap_bytes);
  EXPECT_GT(with.stats.inspector.tls_bytes_skipped, 0u);
}

TEST_F(SoundnessTest, SmallestBudgetsKeepEverySessionWhole) {
  TempDir dir;
  const std::string pcap = AllCases(dir);
  RunOptions smallest;
  smallest.kernel_config = detect::SmallestBudgets(DefaultConfig());
  RunResult with = RunCapture(pcap, smallest);
  ASSERT_TRUE(with.stats.kernel);
  EXPECT_EQ((*with.stats.kernel)[PG_CNT_BUDGET_FLOW], 0u);
  EXPECT_EQ((*with.stats.kernel)[PG_CNT_BUDGET_GLOBAL], 0u);
  EXPECT_EQ(with.alerts, Without(pcap).alerts);
}

TEST_F(SoundnessTest, SmallestBudgetsAndTinyMapTogetherOnIpv6) {
  TempDir dir;
  Shape v6;
  v6.v6 = true;
  const std::string pcap = AllCases(dir, v6);
  RunOptions both;
  both.flow_map_entries = 64;
  both.kernel_config = detect::SmallestBudgets(DefaultConfig());
  EXPECT_EQ(RunCapture(pcap, both).alerts, Without(pcap).alerts);
}

// One byte per segment costs a record per byte: an attacker who floods the
// kernel to blind it crosses the flow budget, and that is an alert.
TEST_F(SoundnessTest, FloodPastTheFlowBudgetIsAnAlert) {
  TempDir dir;
  Shape one_byte;
  one_byte.segment = 1;
  const std::string pcap = dir.File("flood.pcap");
  WritePcap(pcap, BuildConversation(RuleCases().front().fire, one_byte));
  RunOptions smallest;
  smallest.kernel_config = detect::SmallestBudgets(DefaultConfig());
  RunResult with = RunCapture(pcap, smallest);
  ASSERT_TRUE(with.stats.kernel);
  EXPECT_GT((*with.stats.kernel)[PG_CNT_BUDGET_FLOW], 0u);
  EXPECT_TRUE(with.Sids().contains(9100021));
}

TEST_F(SoundnessTest, EveryCaseInEveryShapeAgreesCaseByCase) {
  // Near misses too: the prefilter must not create alerts either.
  TempDir dir;
  size_t runs = 0;
  for (const RuleCase& c : RuleCases()) {
    for (const auto* dialogue : {&c.fire, &c.near_miss}) {
      for (size_t segment : {size_t{3}, size_t{1400}}) {
        Shape shape;
        shape.segment = segment;
        const std::string pcap = dir.File("case.pcap");
        WritePcap(pcap, BuildConversation(*dialogue, shape));
        RunOptions tiny;
        tiny.flow_map_entries = 64;
        EXPECT_EQ(RunCapture(pcap, tiny).alerts, Without(pcap).alerts)
            << c.name << " segment " << segment;
        ++runs;
      }
    }
  }
  EXPECT_EQ(runs, RuleCases().size() * 4);
}

}  // namespace
}  // namespace popguard::test
