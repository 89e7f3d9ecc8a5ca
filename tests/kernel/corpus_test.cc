// Real POP3 captures (../shared/corpus) through the real kernel programs,
// packet by packet on the capture's clock: every client byte must come up,
// and real servers must be framed without doubt. Skips when the corpus is
// absent.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "agent/capture/capture.h"
#include "agent/prefilter/prefilter.h"

namespace popguard::test {
namespace {

namespace fs = std::filesystem;

const fs::path kCorpus = fs::path(POPGUARD_SHARED_DIR) / "corpus";

// TCP payload of an Ethernet frame, parsed independently of the kernel:
// returns false for anything but an unfragmented TCP segment.
bool TcpPayload(const std::vector<uint8_t>& f, uint16_t* sport, uint16_t* dport, size_t* len) {
  size_t off = 14;
  if (f.size() < off) return false;
  uint16_t type = f[12] << 8 | f[13];
  while (type == 0x8100 || type == 0x88a8) {
    if (f.size() < off + 4) return false;
    type = f[off + 2] << 8 | f[off + 3];
    off += 4;
  }
  size_t ip_end;
  if (type == 0x0800) {
    if (f.size() < off + 20 || f[off + 9] != 6) return false;
    if ((f[off + 6] & 0x3f) | f[off + 7]) return false;  // a fragment
    ip_end = off + (f[off + 2] << 8 | f[off + 3]);
    off += (f[off] & 0x0f) * 4;
  } else if (type == 0x86dd) {
    if (f.size() < off + 40 || f[off + 6] != 6) return false;
    ip_end = off + 40 + (f[off + 4] << 8 | f[off + 5]);
    off += 40;
  } else {
    return false;
  }
  if (f.size() < off + 20) return false;
  *sport = f[off] << 8 | f[off + 1];
  *dport = f[off + 2] << 8 | f[off + 3];
  size_t payload = off + (f[off + 12] >> 4) * 4;
  size_t end = std::min(ip_end, f.size());
  *len = end > payload ? end - payload : 0;
  return true;
}

struct Replay {
  std::vector<Event> events;
  uint64_t client_payload = 0;  // bytes the capture sends to port 110
  Counters counters{};
};

Replay ReplayCapture(Prefilter& pf, const fs::path& file) {
  Replay r;
  pf.Reset();
  pg_config cfg = DefaultConfig();
  cfg.clock_mode = PG_CLOCK_FIXED;
  auto reader = capture::CaptureReader::Open(file.string());
  EXPECT_TRUE(reader.ok()) << file;
  while (auto frame = reader.Next()) {
    auto eth = capture::ToEthernet(*frame);
    EXPECT_TRUE(eth.ok()) << eth.error;
    if (!eth.ok()) continue;
    uint16_t sport, dport;
    size_t len;
    if (TcpPayload(eth.frame, &sport, &dport, &len) && dport == 110) r.client_payload += len;
    cfg.clock_ns = frame->timestamp_ns;
    pf.SetConfig(cfg);
    pf.TestRun(Hook::kXdp, eth.frame);
    auto evs = pf.DrainEvents();
    r.events.insert(r.events.end(), evs.begin(), evs.end());
  }
  EXPECT_TRUE(reader.ok()) << reader.error()->message;
  r.counters = pf.ReadCounters();
  return r;
}

uint64_t ClientBytesUp(const Replay& r) {
  uint64_t n = 0;
  for (const auto& e : r.events)
    if (e.dir == PG_DIR_TO_SERVER && (e.type == PG_EV_CLIENT_DATA || e.type == PG_EV_RAW)) n += e.len;
  return n;
}

std::map<int, int> AnomalyCounts(const Replay& r) {
  std::map<int, int> out;
  for (const auto& e : r.events)
    if (e.type == PG_EV_ANOMALY) out[e.anomaly]++;
  return out;
}

class CorpusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "kernel tests load BPF programs: run as root";
    if (!fs::exists(kCorpus)) GTEST_SKIP() << kCorpus << " is absent";
    if (!pf_) pf_ = std::make_unique<Prefilter>();
  }
  static std::unique_ptr<Prefilter> pf_;
};
std::unique_ptr<Prefilter> CorpusTest::pf_;

// Plaintext sessions on port 110: every client byte comes up (as framed
// client data, or raw where the flow was escalated).
TEST_F(CorpusTest, PlaintextCapturesSendEveryClientByte) {
  for (const char* name :
       {"pcaps/zeek_pop3_pop3.pcap", "pcaps/ndpi_pop3.pcapng", "suricata-verify/pop3/input.pcap",
        "suricata-verify/pop3-02-bug-7709/input.pcap",
        // Truncated; and a session with no greeting.
        "suricata-verify/pop3-03-bug-7709/input.pcap", "suricata-verify/pop3-auth-01/input.pcap"}) {
    SCOPED_TRACE(name);
    Replay r = ReplayCapture(*pf_, kCorpus / name);
    EXPECT_GT(r.client_payload, 0u);
    EXPECT_EQ(ClientBytesUp(r), r.client_payload);
    EXPECT_EQ(r.counters[PG_CNT_RINGBUF_FULL], 0u);
  }
}

// Complete sessions with real servers: the kernel frames every response
// without doubt, so status lines come up and nothing is escalated. In
// pop3-auth-01 the client speaks first and no greeting comes.
TEST_F(CorpusTest, RealServersAreFramedWithoutDoubt) {
  for (const char* name : {"pcaps/zeek_pop3_pop3.pcap", "pcaps/ndpi_pop3.pcapng",
                           "suricata-verify/pop3/input.pcap",
                           "suricata-verify/pop3-02-bug-7709/input.pcap",
                           "suricata-verify/pop3-auth-01/input.pcap"}) {
    SCOPED_TRACE(name);
    Replay r = ReplayCapture(*pf_, kCorpus / name);
    auto anomalies = AnomalyCounts(r);
    EXPECT_EQ(anomalies[PG_AN_BAD_TERMINATOR], 0);
    EXPECT_EQ(anomalies[PG_AN_BAD_STATUS], 0);
    EXPECT_EQ(anomalies[PG_AN_UNSOLICITED], 0);
    EXPECT_EQ(anomalies[PG_AN_STLS_CLIENT_INJECTION], 0);
    EXPECT_EQ(anomalies[PG_AN_STLS_SERVER_INJECTION], 0);
    EXPECT_EQ(r.counters[PG_CNT_ESCALATIONS], 0u);
    size_t lines = 0;
    for (const auto& e : r.events) lines += e.type == PG_EV_SERVER_LINE && (e.flags & PG_EVF_FIRST);
    EXPECT_GT(lines, 0u);
  }
}

// Redis on 6379 answers "+OK" and "+PONG": nothing of it concerns POP3.
TEST_F(CorpusTest, RedisLookalikeRaisesNothing) {
  Replay r = ReplayCapture(*pf_, kCorpus / "pcaps/zeek_pop3_redis-50-pings.pcap");
  EXPECT_TRUE(r.events.empty());
  EXPECT_EQ(r.counters[PG_CNT_FLOWS_CREATED], 0u);
  EXPECT_GT(PacketCount(r.counters, Hook::kXdp, PG_CLASS_NON_POP3), 100u);
}

// STLS then TLS, and implicit TLS on 995: plaintext inspection stops at the
// switch, record heads come up, and nothing is taken for injection.
TEST_F(CorpusTest, TlsCapturesFollowRecordsWithoutInjectionAlarms) {
  for (const char* name : {"pcaps/zeek_tls_pop3-starttls.pcap", "pcaps/ndpi_pop3_stls.pcap",
                           "pcaps/ndpi_pops.pcapng"}) {
    SCOPED_TRACE(name);
    Replay r = ReplayCapture(*pf_, kCorpus / name);
    size_t records = 0;
    for (const auto& e : r.events) records += e.type == PG_EV_TLS_RECORD;
    EXPECT_GT(records, 0u);
    auto anomalies = AnomalyCounts(r);
    EXPECT_EQ(anomalies[PG_AN_STLS_CLIENT_INJECTION], 0);
    EXPECT_EQ(anomalies[PG_AN_STLS_SERVER_INJECTION], 0);
    EXPECT_EQ(anomalies[PG_AN_TLS_MALFORMED], 0);
  }
}

}  // namespace
}  // namespace popguard::test
