// The real prefilter programs, loaded into this kernel and driven with
// BPF_PROG_TEST_RUN: packet(s) in; verdict, events and counters out.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "kernel_fixture.h"

namespace popguard::test {
namespace {

constexpr int kPass = XDP_PASS;
constexpr int kDrop = XDP_DROP;

std::vector<uint8_t> Vec(std::string_view s) { return {s.begin(), s.end()}; }

int Drop(int reason) { return int{PG_CNT_DROP} + reason; }
int WouldDrop(int reason) { return int{PG_CNT_WOULD_DROP} + reason; }

// ---------------------------------------------------------------------------
// Header variants: a mid-stream client segment must come up raw with exactly
// its payload, whatever the headers in front of it.

struct HeaderCase {
  const char* name;
  std::vector<uint8_t> (*build)(std::string_view payload);
};

const std::string kUser = "USER alice\r\n";

std::vector<uint8_t> V4(std::string_view pl) {
  return Packet().IPv4("10.0.0.1", "10.0.0.2").Tcp(40000, 110).Seq(7).Payload(pl).Build();
}
std::vector<uint8_t> V4Options(std::string_view pl) {
  return Packet()
      .IPv4("10.0.0.1", "10.0.0.2")
      .Ipv4Options({0x94, 0x04, 0x00, 0x00, 0x01, 0x01, 0x01, 0x00})  // router alert + NOPs
      .Tcp(40000, 110)
      .Seq(7)
      .Payload(pl)
      .Build();
}
std::vector<uint8_t> V4TcpOptions(std::string_view pl) {
  return Packet()
      .IPv4("10.0.0.1", "10.0.0.2")
      .Tcp(40000, 110)
      .Seq(7)
      .TcpOptions({1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2})  // NOP NOP timestamps
      .Payload(pl)
      .Build();
}
std::vector<uint8_t> Vlan(std::string_view pl) {
  return Packet().Vlan(100).IPv4("10.0.0.1", "10.0.0.2").Tcp(40000, 110).Seq(7).Payload(pl).Build();
}
std::vector<uint8_t> QinQ(std::string_view pl) {
  return Packet()
      .Vlan(100)
      .Vlan(200)
      .IPv4("10.0.0.1", "10.0.0.2")
      .Tcp(40000, 110)
      .Seq(7)
      .Payload(pl)
      .Build();
}
std::vector<uint8_t> V6(std::string_view pl) {
  return Packet().IPv6("fd00::1", "fd00::2").Tcp(40000, 110).Seq(7).Payload(pl).Build();
}
std::vector<uint8_t> V6Ext(std::string_view pl) {
  return Packet()
      .IPv6("fd00::1", "fd00::2")
      .Ipv6Ext(kIpv6HopByHop, {})
      .Ipv6Ext(kIpv6DestOpts, std::vector<uint8_t>(12, 0))
      .Ipv6Ext(kIpv6Routing, {0, 0, 0, 0, 0, 0})
      .Tcp(40000, 110)
      .Seq(7)
      .Payload(pl)
      .Build();
}
std::vector<uint8_t> V6VlanTcpOptions(std::string_view pl) {
  return Packet()
      .Vlan(7)
      .IPv6("fd00::1", "fd00::2")
      .Ipv6Ext(kIpv6DestOpts, {})
      .Tcp(40000, 110)
      .Seq(7)
      .TcpOptions({2, 4, 0x05, 0xb4})
      .Payload(pl)
      .Build();
}
// BIG TCP sets the IP length to 0: the payload length comes from the packet.
std::vector<uint8_t> V4LengthZero(std::string_view pl) {
  return Packet().IPv4("10.0.0.1", "10.0.0.2").Tcp(40000, 110).Seq(7).Payload(pl).IpTotalLength(0).Build();
}
std::vector<uint8_t> V6LengthZero(std::string_view pl) {
  return Packet().IPv6("fd00::1", "fd00::2").Tcp(40000, 110).Seq(7).Payload(pl).IpTotalLength(0).Build();
}

class HeaderVariantTest : public KernelTest, public ::testing::WithParamInterface<HeaderCase> {};

TEST_P(HeaderVariantTest, MidStreamPayloadComesUpRawAndExact) {
  for (Hook hook : {Hook::kXdp, Hook::kTcEgress, Hook::kTcIngress}) {
    SCOPED_TRACE(static_cast<int>(hook));
    events_.clear();
    pf_->ResetCounters();
    auto frame = GetParam().build(kUser);
    int ret = Run(frame, hook);
    EXPECT_EQ(ret, hook == Hook::kXdp ? kPass : TC_ACT_OK);
    auto c = pf_->ReadCounters();
    EXPECT_EQ(PacketCount(c, hook, PG_CLASS_TO_SERVER), 1u);
    ASSERT_EQ(Events(PG_EV_RAW).size(), 1u);
    auto ev = Events(PG_EV_RAW)[0];
    EXPECT_EQ(std::string(reinterpret_cast<char*>(ev.data), ev.len), kUser);
    EXPECT_EQ(ev.seq, 7u);
    EXPECT_EQ(ev.dir, PG_DIR_TO_SERVER);
    // The first hook finds no state and escalates the flow; the others see
    // the same bytes again, on an escalated flow, where the agent
    // reassembles and the kernel marks no overlap.
    EXPECT_EQ(ev.flags & (PG_EVF_NO_STATE | PG_EVF_OVERLAP),
              hook == Hook::kXdp ? PG_EVF_NO_STATE : 0u);
    EXPECT_EQ(ev.key.server_port, htons(110));
    EXPECT_EQ(ev.key.client_port, htons(40000));
    EXPECT_EQ(c[PG_CNT_MIDSTREAM_MISS], hook == Hook::kXdp ? 1u : 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Headers, HeaderVariantTest,
                         ::testing::Values(HeaderCase{"ipv4", V4}, HeaderCase{"ipv4_options", V4Options},
                                           HeaderCase{"tcp_options", V4TcpOptions},
                                           HeaderCase{"vlan", Vlan}, HeaderCase{"qinq", QinQ},
                                           HeaderCase{"ipv6", V6}, HeaderCase{"ipv6_ext", V6Ext},
                                           HeaderCase{"ipv6_vlan_tcpopt", V6VlanTcpOptions},
                                           HeaderCase{"ipv4_len0", V4LengthZero},
                                           HeaderCase{"ipv6_len0", V6LengthZero}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST_F(KernelTest, EthernetPaddingIsNotPayload) {
  // A 4-byte segment in a minimum-size frame: the IP length trims padding.
  auto frame = Packet().IPv4("10.0.0.1", "10.0.0.2").Tcp(40000, 110).Seq(7).Payload("QUIT").Build();
  frame.resize(64, 0);
  Run(frame);
  ASSERT_EQ(Events(PG_EV_RAW).size(), 1u);
  EXPECT_EQ(Events(PG_EV_RAW)[0].len, 4u);
}

// ---------------------------------------------------------------------------
// What must pass untouched.

TEST_F(KernelTest, NonPop3TrafficPassesWithNoEvent) {
  std::vector<std::vector<uint8_t>> frames = {
      Packet().IPv4("10.0.0.1", "10.0.0.2").Tcp(40000, 80).Payload("GET / HTTP/1.1\r\n").Build(),
      Packet().IPv4("10.0.0.1", "10.0.0.2").Udp(40000, 110).Payload("USER x\r\n").Build(),
      Packet().IPv6("fd00::1", "fd00::2").Tcp(40000, 143).Payload("a LOGIN x y\r\n").Build(),
      Packet().IPv6("fd00::1", "fd00::2").Ipv6Ext(kIpv6HopByHop, {}).Udp(1, 2).Build(),
  };
  // An ARP frame.
  std::vector<uint8_t> arp(42, 0);
  arp[12] = 0x08;
  arp[13] = 0x06;
  frames.push_back(arp);
  for (auto& f : frames) {
    EXPECT_EQ(Run(f, Hook::kXdp), kPass);
    EXPECT_EQ(Run(f, Hook::kTcEgress), TC_ACT_OK);
  }
  EXPECT_TRUE(events_.empty());
  auto c = pf_->ReadCounters();
  EXPECT_EQ(PacketCount(c, Hook::kXdp, PG_CLASS_NON_POP3), frames.size());
  EXPECT_EQ(PacketCount(c, Hook::kTcEgress, PG_CLASS_NON_POP3), frames.size());
  EXPECT_EQ(c[PG_CNT_FLOWS_CREATED], 0u);
}

TEST_F(KernelTest, PortsComeFromTheMap) {
  auto frame = Packet().IPv4("10.0.0.1", "10.0.0.2").Tcp(40000, 1110).Seq(1).Payload("USER a\r\n").Build();
  Run(frame);
  EXPECT_TRUE(events_.empty());
  pf_->SetPort(1110, PG_PORT_POP3);
  Run(frame);
  EXPECT_EQ(Events(PG_EV_RAW).size(), 1u);
  pf_->SetPort(110, 0);
  events_.clear();
  Run(Packet().IPv4("10.0.0.1", "10.0.0.2").Tcp(40001, 110).Seq(1).Payload("USER a\r\n").Build());
  EXPECT_TRUE(events_.empty());
}

// ---------------------------------------------------------------------------
// Malformed and truncated headers pass and are counted.

TEST_F(KernelTest, GarbageAndTruncatedHeadersPassAndAreCounted) {
  auto good = Packet().IPv4("10.0.0.1", "10.0.0.2").Tcp(40000, 110).Payload("USER a\r\n").Build();
  auto good6 = Packet().IPv6("fd00::1", "fd00::2").Ipv6Ext(kIpv6DestOpts, {}).Tcp(40000, 110).Build();
  struct Case {
    std::vector<uint8_t> frame;
    int counter;
    bool tc_runs = true;  // TC test runs refuse a packet cut inside its IP header
  };
  std::vector<Case> cases = {
      {Packet().Vlan(5).IPv4("10.0.0.1", "10.0.0.2").Tcp(1, 110).Truncate(16).Build(), PG_CNT_MALFORMED_L2},
      {Packet().IPv4("10.0.0.1", "10.0.0.2").Tcp(1, 110).Truncate(30).Build(), PG_CNT_MALFORMED_L3, false},
      {Packet().IPv4("10.0.0.1", "10.0.0.2").Tcp(1, 110).BadIhl(3).Build(), PG_CNT_MALFORMED_L3},
      {Packet().IPv6("fd00::1", "fd00::2").Tcp(1, 110).Truncate(40).Build(), PG_CNT_MALFORMED_L3, false},
      // An extension header whose length runs past the packet.
      {std::vector<uint8_t>(good6.begin(), good6.begin() + 14 + 40 + 4), PG_CNT_MALFORMED_L4},
      {Packet().IPv4("10.0.0.1", "10.0.0.2").Tcp(1, 110).Truncate(14 + 20 + 10).Build(), PG_CNT_MALFORMED_L4},
      {Packet().IPv4("10.0.0.1", "10.0.0.2").Tcp(1, 110).TcpDataOffset(2).Build(), PG_CNT_MALFORMED_L4},
      // Data offset pointing past the end of the packet.
      {Packet().IPv4("10.0.0.1", "10.0.0.2").Tcp(1, 110).TcpDataOffset(15).Build(), PG_CNT_MALFORMED_L4},
      // An IP length shorter than its own headers.
      {Packet().IPv4("10.0.0.1", "10.0.0.2").Tcp(1, 110).Payload("x").IpTotalLength(20).Build(),
       PG_CNT_MALFORMED_L3},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(i);
    pf_->ResetCounters();
    EXPECT_EQ(Run(cases[i].frame, Hook::kXdp), kPass);
    if (cases[i].tc_runs) {
      EXPECT_EQ(Run(cases[i].frame, Hook::kTcEgress), TC_ACT_OK);
    }
    EXPECT_EQ(Counter(cases[i].counter), cases[i].tc_runs ? 2u : 1u);
  }
  EXPECT_TRUE(events_.empty());
  EXPECT_EQ(Run(good), kPass);
}

// ---------------------------------------------------------------------------
// Fragments: every TCP fragment goes up from its IP header, whatever the port.

TEST_F(KernelTest, TcpFragmentsEscalateAndDropInPreventMode) {
  auto first = Packet()
                   .IPv4("10.0.0.1", "10.0.0.2")
                   .Ipv4Id(9)
                   .MoreFragments(true)
                   .Tcp(40000, 8080)
                   .Payload("USER a\r\n")
                   .Build();
  auto later = Packet()
                   .IPv4("10.0.0.1", "10.0.0.2")
                   .Ipv4Id(9)
                   .FragmentOffset(4)
                   .RawL4(Vec("PASS secret\r\n"))
                   .Build();
  auto v6 = Packet()
                .IPv6("fd00::1", "fd00::2")
                .Ipv6Fragment(8, false, 77)
                .RawL4(Vec("overlapping bytes"))
                .Build();
  auto udp_frag = Packet().IPv4("10.0.0.1", "10.0.0.2").MoreFragments(true).Udp(1, 2).Payload("x").Build();
  EXPECT_EQ(Run(first), kPass);
  EXPECT_EQ(Run(later), kPass);
  EXPECT_EQ(Run(v6), kPass);
  EXPECT_EQ(Run(udp_frag), kPass);
  auto frags = Events(PG_EV_FRAGMENT);
  ASSERT_EQ(frags.size(), 3u);
  EXPECT_EQ(frags[0].len, first.size() - 14);
  EXPECT_EQ(frags[0].data[0] >> 4, 4);  // starts at the IP header
  EXPECT_EQ(std::string(reinterpret_cast<char*>(frags[1].data) + 20, frags[1].len - 20), "PASS secret\r\n");
  EXPECT_EQ(frags[2].data[0] >> 4, 6);
  auto c = pf_->ReadCounters();
  EXPECT_EQ(PacketCount(c, Hook::kXdp, PG_CLASS_FRAGMENT), 3u);
  EXPECT_EQ(c[WouldDrop(PG_DROP_FRAGMENT)], 3u);
  EXPECT_EQ(c[Drop(PG_DROP_FRAGMENT)], 0u);

  config_.mode = PG_MODE_PREVENT;
  Apply();
  EXPECT_EQ(Run(later), kDrop);
  EXPECT_EQ(Run(later, Hook::kTcEgress), TC_ACT_SHOT);
  EXPECT_EQ(Counter(Drop(PG_DROP_FRAGMENT)), 2u);
}

// ---------------------------------------------------------------------------
// Conversations.

class ConversationTest : public KernelTest {
 protected:
  void SetUp() override {
    KernelTest::SetUp();
    if (IsSkipped()) return;
    Handshake();
  }
  void Handshake() {
    Client(c_.flow.Syn());
    Server(c_.flow.SynAck());
    Client(c_.flow.Ack());
    Server(c_.flow.ToClient("+OK POP3 ready\r\n"));
  }
  pg_flow State() {
    auto f = pf_->LookupFlow(c_.key);
    EXPECT_TRUE(f.has_value());
    return f.value_or(pg_flow{});
  }
  bool Escalated(int dir) { return State().dir[dir].flags & PG_DF_ESCALATED; }

  Conversation c_;
};

// A ring-buffer record's size in the ring: the kernel's 8-byte header and
// the record, 8-byte aligned.
uint64_t RingBytes(size_t record) { return (BPF_RINGBUF_HDR_SZ + record + 7) / 8 * 8; }

TEST_F(ConversationTest, RecordsAreAsLongAsWhatTheyCarryAndTheKeyGoesUpOnce) {
  // The greeting was the flow's first record: head, key and its 16 bytes.
  EXPECT_EQ(Counter(PG_CNT_RECORD_BYTES),
            RingBytes(sizeof(pg_event_head) + sizeof(pg_flow_key) + 16));
  const uint64_t after_greeting = Counter(PG_CNT_RECORD_BYTES);
  Client(c_.flow.ToServer("NOOP\r\n"));
  EXPECT_EQ(Counter(PG_CNT_RECORD_BYTES) - after_greeting, RingBytes(sizeof(pg_event_head) + 6));
  // The agent still gets every record with the flow's key and id.
  ASSERT_EQ(events_.size(), 2u);
  const auto id = static_cast<uint32_t>(State().id);
  EXPECT_NE(id, 0u);
  for (const Event& e : events_) {
    EXPECT_EQ(e.flow_id, id);
    EXPECT_EQ(std::memcmp(&e.key, &c_.key, sizeof(pg_flow_key)), 0);
  }
  EXPECT_EQ(pf_->DecoderStats().unknown_flow, 0u);
  EXPECT_EQ(pf_->DecoderStats().malformed, 0u);
}

TEST_F(ConversationTest, AnIdTheAgentNeverSawIsFoundInTheFlowMap) {
  // As after an agent restart: the kernel sent the key long ago.
  pg_flow f = State();
  f.key_sent = 1;
  f.id += 0x7000'0000;  // an id the decoder has not seen, not older than the others
  pf_->UpdateFlow(c_.key, f);
  const uint64_t sweeps = pf_->DecoderStats().flow_sweeps;
  Client(c_.flow.ToServer("NOOP\r\n"));
  const std::vector<Event> data = Events(PG_EV_CLIENT_DATA);
  ASSERT_EQ(data.size(), 1u);
  EXPECT_EQ(data[0].flow_id, static_cast<uint32_t>(f.id));
  EXPECT_EQ(std::memcmp(&data[0].key, &c_.key, sizeof(pg_flow_key)), 0);
  EXPECT_EQ(pf_->DecoderStats().flow_sweeps, sweeps + 1);
}

TEST_F(ConversationTest, EveryFlowGetsItsOwnId) {
  Flow other("10.1.0.9", 40001, "10.1.0.2", 110);
  Client(other.Syn());
  const std::optional<pg_flow> a = pf_->LookupFlow(c_.key);
  const std::optional<pg_flow> b = pf_->LookupFlow(KeyV4("10.1.0.9", 40001, "10.1.0.2", 110));
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->id, 0u);
  EXPECT_NE(b->id, 0u);
  EXPECT_NE(a->id, b->id);
}

// A client's SYN goes up (key and flags byte) only when the rules test TCP
// flags (pg_config.report_syn); a SYN-ACK never does.
TEST_F(KernelTest, ClientSynsAreReportedOnlyWhenRulesAskForThem) {
  Flow quiet{"10.1.0.1", 40001, "10.1.0.2", 110};
  Client(quiet.Syn());
  EXPECT_TRUE(Events(PG_EV_SYN).empty());

  config_.report_syn = 1;
  Apply();
  Flow asked{"10.1.0.1", 40002, "10.1.0.2", 110};
  Client(asked.Syn());
  Server(asked.SynAck());
  Client(asked.Ack());
  // An ECN-setup SYN, retransmitted: each SYN counts, with its own flags.
  Client(asked.ToServerAt(UINT32_MAX, {}, kSyn | 0x40 | 0x80));
  const std::vector<Event> syns = Events(PG_EV_SYN);
  ASSERT_EQ(syns.size(), 2u);
  EXPECT_EQ(syns[0].len, 1u);
  EXPECT_EQ(syns[0].data[0], kSyn);
  EXPECT_EQ(syns[1].data[0], kSyn | 0x40 | 0x80);
  for (const Event& e : syns) {
    EXPECT_EQ(e.dir, PG_DIR_TO_SERVER);
    EXPECT_TRUE(e.keyed);
    const pg_flow_key key = KeyV4("10.1.0.1", 40002, "10.1.0.2", 110);
    EXPECT_EQ(std::memcmp(&e.key, &key, sizeof key), 0);
  }

  // SYN reports have a budget of their own: past it they are counted, and
  // the records' budget is untouched.
  config_.syn_budget_burst = 2;
  config_.syn_budget_rate = 0;
  Apply();
  for (uint16_t port = 41000; port < 41003; ++port) {
    Flow flood{"10.1.0.9", port, "10.1.0.2", 110};
    Client(flood.Syn());
  }
  EXPECT_EQ(Events(PG_EV_SYN).size(), 4u);
  EXPECT_EQ(Counter(PG_CNT_BUDGET_SYN), 1u);
  EXPECT_EQ(Counter(PG_CNT_BUDGET_GLOBAL), 0u);
}

// A SYN or SYN-ACK for a direction whose sequence the kernel knows: a
// repeat of the first changes nothing; any other (which an established
// endpoint discards) moves nothing and escalates the direction, and its
// data does not go up as a line.
TEST_F(KernelTest, SynOrSynAckOnAKnownDirectionMovesNothing) {
  Conversation c;
  Client(c.flow.Syn());
  Client(c.flow.Syn());
  Server(c.flow.SynAck());
  Server(c.flow.SynAck());
  Client(c.flow.Ack());
  auto state = [&] { return pf_->LookupFlow(c.key).value_or(pg_flow{}); };
  const uint64_t id = state().id;
  EXPECT_FALSE(state().dir[PG_DIR_TO_SERVER].flags & PG_DF_ESCALATED);
  EXPECT_FALSE(state().dir[PG_DIR_TO_CLIENT].flags & PG_DF_ESCALATED);
  Server(c.flow.ToClient("+OK POP3 ready\r\n"));
  const uint32_t next = state().dir[PG_DIR_TO_CLIENT].next_seq;
  EXPECT_EQ(next, c.flow.ServerNextSeq());

  Server(c.flow.ToClientAt(UINT32_MAX - 9, "+OK forged\r\n", kSyn | kAck));
  EXPECT_EQ(state().dir[PG_DIR_TO_CLIENT].next_seq, next);
  EXPECT_TRUE(state().dir[PG_DIR_TO_CLIENT].flags & PG_DF_ESCALATED);
  for (const std::string& line : ServerLines()) EXPECT_EQ(line.find("forged"), std::string::npos);
  EXPECT_EQ(Bytes(PG_EV_RAW).find("forged"), std::string::npos);

  // A client SYN far ahead, mid-connection: the flow is not replaced, the
  // client direction stays where it was and goes up raw from here.
  const uint32_t client_next = state().dir[PG_DIR_TO_SERVER].next_seq;
  Client(c.flow.ToServerAt(1u << 30, "USER forged\r\n", kSyn));
  EXPECT_EQ(state().id, id);
  EXPECT_EQ(state().dir[PG_DIR_TO_SERVER].next_seq, client_next);
  EXPECT_TRUE(state().dir[PG_DIR_TO_SERVER].flags & PG_DF_ESCALATED);
  EXPECT_EQ(Bytes(PG_EV_RAW).find("forged"), std::string::npos);
  EXPECT_EQ(Bytes(PG_EV_CLIENT_DATA).find("forged"), std::string::npos);
  Client(c.flow.ToServer("USER alice\r\n"));
  EXPECT_NE(Bytes(PG_EV_RAW).find("USER alice"), std::string::npos);
}

TEST_F(ConversationTest, GreetingAndCommandsAreFramed) {
  Client(c_.flow.ToServer("USER alice\r\n"));
  Server(c_.flow.ToClient("+OK\r\n"));
  Client(c_.flow.ToServer("PASS secret\r\n"));
  Server(c_.flow.ToClient("+OK logged in\r\n"));
  EXPECT_EQ(Bytes(PG_EV_CLIENT_DATA), "USER alice\r\nPASS secret\r\n");
  EXPECT_EQ(ServerLines(), (std::vector<std::string>{"+OK POP3 ready\r\n", "+OK\r\n", "+OK logged in\r\n"}));
  EXPECT_TRUE(Events(PG_EV_RAW).empty());
  EXPECT_TRUE(Anomalies().empty());
  auto f = State();
  EXPECT_EQ(f.q_head, f.q_tail);
  EXPECT_EQ(Counter(PG_CNT_FLOWS_CREATED), 1u);
  EXPECT_EQ(Counter(PG_CNT_ESCALATIONS), 0u);
}

// Every row of the response-kind table, pipelined in one segment each way,
// with bodies holding lines that look like status lines.
TEST_F(ConversationTest, ResponseKindsPipelined) {
  // Two batches: the queue holds PG_RESPQ_LEN pending responses.
  Client(c_.flow.ToServer("LIST 1\r\nLIST\r\nUIDL 1\r\nUIDL\r\nRETR 1\r\nTOP 1 0\r\n"));
  Server(c_.flow.ToClient(
      "+OK 1 120\r\n"
      "+OK 2 messages\r\n1 120\r\n+OK fake\r\n.\r\n"
      "+OK 1 abc\r\n"
      "+OK\r\n1 abc\r\n-ERR fake\r\n.\r\n"
      "+OK 120 octets\r\nSubject: x\r\n\r\n..dot-stuffed\r\n+OK not a status\r\n.\r\n"
      "+OK\r\nSubject: x\r\n\r\n.\r\n"));
  Client(c_.flow.ToServer("CAPA\r\nAUTH\r\nRETR 9\r\nstat\r\n"));
  Server(c_.flow.ToClient(
      "+OK Capability list follows\r\nUSER\r\nPIPELINING\r\nSTLS\r\n.\r\n"
      "+OK\r\nPLAIN\r\nXOAUTH2\r\n.\r\n"
      "-ERR no such message\r\n"
      "+OK 1 120\r\n"));
  EXPECT_EQ(ServerLines(),
            (std::vector<std::string>{"+OK POP3 ready\r\n", "+OK 1 120\r\n", "+OK 2 messages\r\n",
                                      "+OK 1 abc\r\n", "+OK\r\n", "+OK 120 octets\r\n", "+OK\r\n",
                                      "+OK Capability list follows\r\n", "+OK\r\n",
                                      "-ERR no such message\r\n", "+OK 1 120\r\n"}));
  EXPECT_TRUE(Events(PG_EV_RAW).empty());
  EXPECT_TRUE(Anomalies().empty());
  auto f = State();
  EXPECT_EQ(f.q_head, f.q_tail);
  EXPECT_FALSE(f.dir[1].flags & PG_DF_IN_BODY);
  EXPECT_EQ(Counter(PG_CNT_ESCALATIONS), 0u);
}

TEST_F(ConversationTest, ResponsesSplitAtEveryByteStillFrame) {
  Client(c_.flow.ToServer("RETR 1\r\nLIST 1\r\n"));
  const std::string resp = "+OK\r\nline\r\n..\r\n.\r\n+OK 1 2\r\n";
  for (char ch : resp) Server(c_.flow.ToClient(std::string(1, ch)));
  EXPECT_EQ(ServerLines(), (std::vector<std::string>{"+OK POP3 ready\r\n", "+OK\r\n", "+OK 1 2\r\n"}));
  EXPECT_TRUE(Anomalies().empty());
  EXPECT_EQ(State().q_head, State().q_tail);
}

TEST_F(ConversationTest, BodyTerminatorSplitAcrossSegments) {
  Client(c_.flow.ToServer("RETR 1\r\nRETR 2\r\nRETR 3\r\nNOOP\r\n"));
  Server(c_.flow.ToClient("+OK\r\nbody\r\n"));
  Server(c_.flow.ToClient("."));
  Server(c_.flow.ToClient("\r\n+OK\r\nbody\r\n.\r"));
  Server(c_.flow.ToClient("\n+OK\r\n"));
  // An empty body: the terminator follows the status line directly, split.
  Server(c_.flow.ToClient(".\r\n+OK noop\r\n"));
  EXPECT_EQ(ServerLines(),
            (std::vector<std::string>{"+OK POP3 ready\r\n", "+OK\r\n", "+OK\r\n", "+OK\r\n", "+OK noop\r\n"}));
  EXPECT_TRUE(Anomalies().empty());
}

// Body segments are scanned in place and handed to the window path at the
// first LF '.', at a segment ending in LF, and past the linear part.
TEST_F(ConversationTest, BodyFastPathHandsOverAtDotLines) {
  Client(c_.flow.ToServer("RETR 1\r\nNOOP\r\n"));
  Server(c_.flow.ToClient("+OK 2000 octets\r\n"));
  std::string line = "An ordinary line of a message body, long enough to matter.\r\n";
  Server(c_.flow.ToClient(line + line + "..a dot-stuffed line\r\n" + line + line));  // ends in LF
  Server(c_.flow.ToClient(".. stuffed at the very start after an LF\r\n" + line));
  Server(c_.flow.ToClient(line + line + line));
  EXPECT_TRUE(State().dir[1].flags & PG_DF_IN_BODY);
  Server(c_.flow.ToClient(line + ".\r\n+OK noop\r\n"));
  EXPECT_EQ(ServerLines(), (std::vector<std::string>{"+OK POP3 ready\r\n", "+OK 2000 octets\r\n",
                                                     "+OK noop\r\n"}));
  EXPECT_TRUE(Anomalies().empty());
  EXPECT_FALSE(State().dir[1].flags & PG_DF_IN_BODY);
}

TEST_F(ConversationTest, BodyStaysInKernelUnlessInspectionIsOn) {
  Client(c_.flow.ToServer("RETR 1\r\n"));
  Server(c_.flow.ToClient("+OK\r\nSecret: body\r\n.\r\n"));
  EXPECT_TRUE(Events(PG_EV_BODY).empty());
  config_.body_inspection = 1;
  Apply();
  Client(c_.flow.ToServer("RETR 2\r\n"));
  Server(c_.flow.ToClient("+OK\r\nSecret: body\r\n.\r\n"));
  EXPECT_EQ(Bytes(PG_EV_BODY), "Secret: body\r\n.\r\n");
}

TEST_F(ConversationTest, DotLineEndedByBareLfIsUnsureAndEscalates) {
  Client(c_.flow.ToServer("RETR 1\r\n"));
  Server(c_.flow.ToClient("+OK\r\nx\r\n.\n-ERR hidden?\r\n"));
  EXPECT_EQ(CountAnomaly(PG_AN_BAD_TERMINATOR), 1u);
  EXPECT_TRUE(Escalated(1));
  // What follows the doubtful line goes up raw, so the agent sees it.
  EXPECT_NE(Bytes(PG_EV_RAW).find("-ERR hidden?"), std::string::npos);
  Server(c_.flow.ToClient("+OK more\r\n"));
  EXPECT_NE(Bytes(PG_EV_RAW).find("+OK more"), std::string::npos);
}

TEST_F(ConversationTest, UserLineOneBytePerSegmentIsMeasuredExactly) {
  config_.verb_threshold[PG_VERB_USER] = 20;
  Apply();
  const std::string line = "USER " + std::string(30, 'a') + "\r\n";
  uint32_t base = c_.flow.ClientNextSeq();
  for (char ch : line) Client(c_.flow.ToServer(std::string(1, ch)));
  EXPECT_EQ(Bytes(PG_EV_CLIENT_DATA), line);
  ASSERT_EQ(CountAnomaly(PG_AN_LINE_OVER_THRESHOLD), 1u);
  for (const auto& e : events_) {
    if (e.type == PG_EV_ANOMALY) {
      EXPECT_EQ(e.seq, base + 20);  // the 21st byte crossed it
    }
  }
  // A second line below the threshold raises nothing; the queue framed both.
  Client(c_.flow.ToServer("USER bob\r\n"));
  EXPECT_EQ(CountAnomaly(PG_AN_LINE_OVER_THRESHOLD), 1u);
  auto f = State();
  EXPECT_EQ(static_cast<uint8_t>(f.q_tail - f.q_head), 2u);
  EXPECT_EQ(f.dir[0].line_len, 0u);
}

TEST_F(ConversationTest, ThresholdsArePerVerbWithADefault) {
  config_.verb_threshold[0] = 100;
  config_.verb_threshold[PG_VERB_PASS] = 10;
  Apply();
  Client(c_.flow.ToServer("user " + std::string(50, 'u') + "\r\n"));
  EXPECT_EQ(CountAnomaly(PG_AN_LINE_OVER_THRESHOLD), 0u);
  Client(c_.flow.ToServer("PASS " + std::string(20, 'p') + "\r\n"));
  EXPECT_EQ(CountAnomaly(PG_AN_LINE_OVER_THRESHOLD), 1u);
  Client(c_.flow.ToServer("NOOP" + std::string(120, ' ') + "\r\n"));
  EXPECT_EQ(CountAnomaly(PG_AN_LINE_OVER_THRESHOLD), 2u);
}

TEST_F(ConversationTest, OverlappingSegmentWithDifferentBytesGoesUp) {
  uint32_t off = c_.flow.ClientNextSeq() - (c_.flow.client_isn + 1);
  Client(c_.flow.ToServer("USER alice\r\n"));
  // Same sequence range, other bytes: the copy TCP keeps may be this one.
  Client(c_.flow.ToServerAt(off, "USER evil!\r\n"));
  auto raw = Events(PG_EV_RAW);
  ASSERT_EQ(raw.size(), 1u);
  EXPECT_TRUE(raw[0].flags & PG_EVF_OVERLAP);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(raw[0].data), raw[0].len), "USER evil!\r\n");
  EXPECT_EQ(Counter(PG_CNT_OVERLAP), 1u);
  EXPECT_FALSE(Escalated(0));  // nothing new: framing is intact
  // Partly new bytes: framing is lost, the direction escalates.
  events_.clear();
  Client(c_.flow.ToServerAt(off + 6, "ice\r\nPASS x\r\n"));
  EXPECT_TRUE(Escalated(0));
  EXPECT_TRUE(Escalated(1));
  // The 6 bytes already inspected (off+6 to off+12) and the new ones go up
  // apart, only the first marked as overlap: the agent compares one part
  // and reassembles the other.
  raw = Events(PG_EV_RAW);
  ASSERT_EQ(raw.size(), 2u);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(raw[0].data), raw[0].len), "ice\r\nP");
  EXPECT_TRUE(raw[0].flags & PG_EVF_OVERLAP);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(raw[1].data), raw[1].len), "ASS x\r\n");
  EXPECT_FALSE(raw[1].flags & PG_EVF_OVERLAP);
  EXPECT_EQ(raw[1].seq, raw[0].seq + 6);
}

// After a gap the hole's bytes arrive "before next_seq", but the kernel
// never saw them: they go up as plain data, and the gap record says where
// the hole starts.
TEST_F(ConversationTest, HoleFilledAfterAGapIsNotAnOverlap) {
  uint32_t off = c_.flow.ClientNextSeq() - (c_.flow.client_isn + 1);
  const uint32_t hole_seq = c_.flow.ClientNextSeq();
  Client(c_.flow.ToServerAt(off + 8, "PASS x\r\n"));
  auto gap = Events(PG_EV_ANOMALY);
  ASSERT_EQ(gap.size(), 1u);
  EXPECT_EQ(gap[0].anomaly, PG_AN_GAP);
  EXPECT_EQ(gap[0].expected_seq, hole_seq);
  events_.clear();
  Client(c_.flow.ToServerAt(off, "USER al\r\n"));
  auto raw = Events(PG_EV_RAW);
  ASSERT_EQ(raw.size(), 1u);
  EXPECT_FALSE(raw[0].flags & PG_EVF_OVERLAP);
  EXPECT_EQ(raw[0].seq, hole_seq);
}

TEST_F(ConversationTest, GapEscalatesAndEverythingGoesUpRaw) {
  uint32_t off = c_.flow.ClientNextSeq() - (c_.flow.client_isn + 1);
  Client(c_.flow.ToServerAt(off + 10, "PASS x\r\n"));
  EXPECT_EQ(Counter(PG_CNT_GAP), 1u);
  EXPECT_EQ(CountAnomaly(PG_AN_GAP), 1u);
  ASSERT_EQ(Events(PG_EV_RAW).size(), 1u);
  EXPECT_TRUE(Events(PG_EV_RAW)[0].flags & PG_EVF_GAP);
  EXPECT_TRUE(Escalated(0));
  Client(c_.flow.ToServerAt(off, "USER 12345"));  // the hole, late
  Server(c_.flow.ToClient("+OK\r\n"));
  EXPECT_EQ(Events(PG_EV_RAW).size(), 3u);
  EXPECT_TRUE(Events(PG_EV_CLIENT_DATA).empty());
}

TEST_F(ConversationTest, SequenceNumbersWrap) {
  c_.flow = ::popguard::test::Flow("10.1.0.1", 40001, "10.1.0.2", 110);
  c_.flow.client_isn = 0xffffffffu - 99;  // 2^32 - 100
  c_.flow.server_isn = 0xffffffffu - 3;
  c_.key.client_port = htons(40001);
  events_.clear();
  Handshake();
  std::string all;
  for (int i = 0; i < 20; ++i) {
    std::string cmd = "UIDL " + std::to_string(i + 1) + "\r\n";
    all += cmd;
    Client(c_.flow.ToServer(cmd));
    Server(c_.flow.ToClient("+OK " + std::to_string(i + 1) + " uid\r\n"));
  }
  EXPECT_GT(all.size(), 100u);
  EXPECT_LT(c_.flow.ClientNextSeq(), 1000u);  // it did wrap
  EXPECT_EQ(Bytes(PG_EV_CLIENT_DATA), all);
  EXPECT_EQ(ServerLines().size(), 21u);
  EXPECT_EQ(Counter(PG_CNT_OVERLAP), 0u);
  EXPECT_EQ(Counter(PG_CNT_GAP), 0u);
  EXPECT_TRUE(Events(PG_EV_RAW).empty());
}

// TCP Fast Open: data on the SYN cannot be skipped.
TEST_F(KernelTest, DataOnSynGoesUpRawAndEscalates) {
  Flow f("10.2.0.1", 41001, "10.2.0.2", 110);
  const uint32_t syn_seq = f.ClientNextSeq();
  Client(f.ToServer("USER fastopen\r\n", kSyn));
  auto raw = Events(PG_EV_RAW);
  ASSERT_EQ(raw.size(), 1u);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(raw[0].data), raw[0].len), "USER fastopen\r\n");
  EXPECT_EQ(raw[0].seq, syn_seq + 1);  // the SYN itself takes one sequence number
  auto state = pf_->LookupFlow(KeyV4("10.2.0.1", 41001, "10.2.0.2", 110));
  ASSERT_TRUE(state.has_value());
  EXPECT_TRUE(state->dir[0].flags & PG_DF_ESCALATED);
  EXPECT_TRUE(state->dir[1].flags & PG_DF_ESCALATED);
  // The next client bytes are in order after the SYN's data, and go up.
  Client(f.ToServer("PASS x\r\n"));
  EXPECT_EQ(Events(PG_EV_RAW).size(), 2u);
  EXPECT_EQ(Counter(PG_CNT_OVERLAP) + Counter(PG_CNT_GAP), 0u);
}

TEST_F(KernelTest, MidStreamFlowIsCountedAndEscalated) {
  Flow f("10.2.0.1", 41000, "10.2.0.2", 110);
  f.client_isn = 123456;
  Client(f.ToServer("PASS hunter2\r\n"));
  Server(f.ToClient("+OK\r\n"));
  EXPECT_EQ(Counter(PG_CNT_MIDSTREAM_MISS), 1u);
  EXPECT_EQ(Counter(PG_CNT_FLOWS_CREATED), 1u);
  auto raw = Events(PG_EV_RAW);
  ASSERT_EQ(raw.size(), 2u);
  EXPECT_TRUE(raw[0].flags & PG_EVF_NO_STATE);
  EXPECT_EQ(raw[0].seq, 123457u);
  EXPECT_EQ(raw[1].dir, PG_DIR_TO_CLIENT);
  // Later segments of the flow are raw too, but no longer misses.
  Client(f.ToServer("STAT\r\n"));
  EXPECT_EQ(Counter(PG_CNT_MIDSTREAM_MISS), 1u);
  EXPECT_EQ(Events(PG_EV_RAW).size(), 3u);
}

// As the agent pairs it: a command before any server byte means no greeting
// will come (the connection was picked up late, or a rig sends none), and
// the server's first line answers the command.
class NoGreetingYetTest : public KernelTest {
 protected:
  void SetUp() override {
    KernelTest::SetUp();
    if (IsSkipped()) return;
    Client(c.flow.Syn());
    Server(c.flow.SynAck());
    Client(c.flow.Ack());
  }
  Conversation c;
};

TEST_F(NoGreetingYetTest, CommandBeforeAnyServerByteMeansNoGreeting) {
  Client(c.flow.ToServer("CAPA\r\n"));
  Server(c.flow.ToClient("+OK Capability list follows\r\nUSER\r\n.\r\n"));
  Client(c.flow.ToServer("USER a\r\n"));
  Server(c.flow.ToClient("+OK\r\n"));
  EXPECT_EQ(ServerLines(), (std::vector<std::string>{"+OK Capability list follows\r\n", "+OK\r\n"}));
  EXPECT_TRUE(Events(PG_EV_RAW).empty());
  EXPECT_EQ(Counter(PG_CNT_ESCALATIONS), 0u);
}

TEST_F(NoGreetingYetTest, CommandAfterTheServerSpokeWaitsForTheGreeting) {
  Server(c.flow.ToClient("+OK rea"));
  Client(c.flow.ToServer("CAPA\r\n"));
  Server(c.flow.ToClient("dy\r\n+OK\r\nUSER\r\n.\r\n"));
  EXPECT_EQ(ServerLines(), (std::vector<std::string>{"+OK ready\r\n", "+OK\r\n"}));
  EXPECT_EQ(Counter(PG_CNT_ESCALATIONS), 0u);
}

TEST_F(ConversationTest, UnknownVerbEscalatesTheServerDirection) {
  Client(c_.flow.ToServer("XTND XMIT\r\n"));
  EXPECT_EQ(CountAnomaly(PG_AN_UNKNOWN_VERB), 1u);
  EXPECT_TRUE(Escalated(1));
  Server(c_.flow.ToClient("+OK go ahead\r\n"));
  EXPECT_EQ(Bytes(PG_EV_RAW), "+OK go ahead\r\n");
}

// The agent's offer to frame again, as it would make it: both directions'
// streams end where the kernel's do.
pg_resync OfferAt(const pg_flow& f, uint32_t gen) {
  pg_resync r{};
  r.next_seq[PG_DIR_TO_SERVER] = f.dir[PG_DIR_TO_SERVER].next_seq;
  r.next_seq[PG_DIR_TO_CLIENT] = f.dir[PG_DIR_TO_CLIENT].next_seq;
  r.gen = gen;
  r.phase = PG_PHASE_CMD;
  return r;
}

class ResyncTest : public ConversationTest {
 protected:
  // An unknown verb escalates the server direction; its answer goes up raw.
  void Escalate(const std::string& command) {
    Client(c_.flow.ToServer(command));
    Server(c_.flow.ToClient("-ERR unknown command\r\n"));
    ASSERT_TRUE(Escalated(PG_DIR_TO_CLIENT));
  }
};

// Offers are taken at a server segment: only that hook writes the state
// that hides bytes (a body).
TEST_F(ResyncTest, AnOfferWhereTheKernelStandsTakesTheFlowBackToFraming) {
  Escalate("XFOO\r\n");
  Client(c_.flow.ToServer("RETR 1\r\n"));
  const size_t raw_before = Events(PG_EV_RAW).size();
  pg_resync offer = OfferAt(State(), 1);
  offer.respq[0] = PG_RK_MULTI;  // RETR is owed its answer
  offer.q_len = 1;
  pf_->OfferResync(c_.key, offer);
  // The answer is framed after the resync: its +OK opens a body the kernel keeps.
  Server(c_.flow.ToClient("+OK 20 octets\r\nSubject: hi\r\n\r\nbody\r\n.\r\n"));
  EXPECT_EQ(Counter(PG_CNT_RESYNCS), 1u);
  EXPECT_FALSE(Escalated(PG_DIR_TO_SERVER));
  EXPECT_FALSE(Escalated(PG_DIR_TO_CLIENT));
  EXPECT_EQ(Events(PG_EV_RAW).size(), raw_before);
  EXPECT_EQ(ServerLines().back(), "+OK 20 octets\r\n");
  EXPECT_FALSE(State().dir[PG_DIR_TO_CLIENT].flags & PG_DF_IN_BODY);
  EXPECT_EQ(State().q_head, State().q_tail);
}

TEST_F(ResyncTest, AfterAGapIsFilledTheFlowIsFramedAgain) {
  const uint32_t off = c_.flow.ClientNextSeq() - (c_.flow.client_isn + 1);
  Client(c_.flow.ToServerAt(off + 10, "PASS x\r\n"));
  ASSERT_TRUE(Escalated(PG_DIR_TO_SERVER));
  Client(c_.flow.ToServerAt(off, "USER abc\r\n"));  // the hole, late
  // The agent has both lines: USER and PASS are owed their answers.
  pg_resync offer = OfferAt(State(), 1);
  ASSERT_EQ(offer.next_seq[PG_DIR_TO_SERVER], c_.flow.client_isn + 1 + off + 18);
  offer.respq[0] = offer.respq[1] = PG_RK_SINGLE;
  offer.q_len = 2;
  pf_->OfferResync(c_.key, offer);
  Server(c_.flow.ToClient("+OK\r\n+OK\r\n"));
  EXPECT_EQ(Counter(PG_CNT_RESYNCS), 1u);
  EXPECT_FALSE(Escalated(PG_DIR_TO_SERVER));
  c_.flow.Advance(true, 18);
  Client(c_.flow.ToServer("QUIT\r\n"));
  EXPECT_EQ(Bytes(PG_EV_CLIENT_DATA), "QUIT\r\n");
  Server(c_.flow.ToClient("+OK bye\r\n"));
  EXPECT_EQ(ServerLines().back(), "+OK bye\r\n");
  EXPECT_FALSE(Escalated(PG_DIR_TO_CLIENT));
  EXPECT_EQ(State().q_head, State().q_tail);
}

TEST_F(ResyncTest, AnOfferBehindTheKernelIsNotTaken) {
  Escalate("XFOO\r\n");
  Client(c_.flow.ToServer("NOOP\r\n"));
  pg_resync offer = OfferAt(State(), 1);
  offer.next_seq[PG_DIR_TO_SERVER] -= 1;  // the agent lacks the client's last byte
  pf_->OfferResync(c_.key, offer);
  Server(c_.flow.ToClient("+OK\r\n"));
  EXPECT_EQ(Counter(PG_CNT_RESYNCS), 0u);
  EXPECT_TRUE(Escalated(PG_DIR_TO_CLIENT));
  EXPECT_EQ(Events(PG_EV_RAW).back().dir, PG_DIR_TO_CLIENT);
}

TEST_F(ResyncTest, AClientSegmentDoesNotTakeAnOffer) {
  Escalate("XFOO\r\n");
  pf_->OfferResync(c_.key, OfferAt(State(), 1));
  Client(c_.flow.ToServer("NOOP\r\n"));
  EXPECT_EQ(Counter(PG_CNT_RESYNCS), 0u);
  EXPECT_TRUE(Escalated(PG_DIR_TO_CLIENT));
}

TEST_F(ResyncTest, AnOfferIsTakenOnce) {
  const auto single_owed = [&](uint32_t gen) {
    pg_resync offer = OfferAt(State(), gen);
    offer.respq[0] = PG_RK_SINGLE;
    offer.q_len = 1;
    return offer;
  };
  Escalate("XFOO\r\n");
  Client(c_.flow.ToServer("NOOP\r\n"));
  pf_->OfferResync(c_.key, single_owed(7));
  Server(c_.flow.ToClient("+OK\r\n"));
  ASSERT_EQ(Counter(PG_CNT_RESYNCS), 1u);
  Escalate("XBAR\r\n");
  Client(c_.flow.ToServer("NOOP\r\n"));
  pf_->OfferResync(c_.key, single_owed(7));  // an old offer again
  Server(c_.flow.ToClient("+OK\r\n"));
  EXPECT_EQ(Counter(PG_CNT_RESYNCS), 1u);
  EXPECT_TRUE(Escalated(PG_DIR_TO_CLIENT));
  Client(c_.flow.ToServer("NOOP\r\n"));
  pf_->OfferResync(c_.key, single_owed(8));
  Server(c_.flow.ToClient("+OK\r\n"));
  EXPECT_EQ(Counter(PG_CNT_RESYNCS), 2u);
}

TEST_F(ResyncTest, AnOfferInsideABodyKeepsTheRestOfIt) {
  Escalate("XFOO\r\n");
  Client(c_.flow.ToServer("RETR 1\r\n"));
  Server(c_.flow.ToClient("+OK\r\nfirst line\r\n"));  // raw: still escalated
  pg_resync offer = OfferAt(State(), 1);
  offer.server_in_body = 1;  // the agent owes nothing more: the body is under way
  pf_->OfferResync(c_.key, offer);
  const size_t raw_before = Events(PG_EV_RAW).size();
  const size_t lines_before = ServerLines().size();
  Server(c_.flow.ToClient("second line\r\n.\r\n"));
  EXPECT_EQ(Counter(PG_CNT_RESYNCS), 1u);
  EXPECT_EQ(Events(PG_EV_RAW).size(), raw_before);
  EXPECT_EQ(ServerLines().size(), lines_before);
  EXPECT_FALSE(State().dir[PG_DIR_TO_CLIENT].flags & PG_DF_IN_BODY);
  // The terminator was found: what follows is framed as a status line.
  Client(c_.flow.ToServer("NOOP\r\n"));
  Server(c_.flow.ToClient("+OK\r\n"));
  EXPECT_EQ(ServerLines().back(), "+OK\r\n");
}

TEST_F(ResyncTest, AFlowThatLostRecordsIsNotTakenBack) {
  config_.flow_budget_burst = 1;  // one record, then suppression
  config_.flow_budget_rate = 1;
  Apply();
  Escalate("XFOO\r\n");  // the -ERR's raw record is suppressed
  ASSERT_GT(Counter(PG_CNT_BUDGET_FLOW), 0u);
  EXPECT_TRUE(State().lost_records);
  pf_->OfferResync(c_.key, OfferAt(State(), 1));
  Server(c_.flow.ToClient("+OK\r\n"));
  EXPECT_EQ(Counter(PG_CNT_RESYNCS), 0u);
  EXPECT_TRUE(Escalated(PG_DIR_TO_CLIENT));
}

TEST_F(ResyncTest, ImplicitTlsFlowsAreNotTakenBack) {
  pg_flow f = State();
  f.implicit_tls = 1;
  f.dir[PG_DIR_TO_CLIENT].flags |= PG_DF_ESCALATED;
  pf_->UpdateFlow(c_.key, f);
  pf_->OfferResync(c_.key, OfferAt(f, 1));
  Server(c_.flow.ToClient("+OK\r\n"));
  EXPECT_EQ(Counter(PG_CNT_RESYNCS), 0u);
}

TEST_F(ConversationTest, ResponseQueueOverflowEscalates) {
  std::string cmds;
  for (int i = 0; i < PG_RESPQ_LEN + 1; ++i) cmds += "NOOP\r\n";
  Client(c_.flow.ToServer(cmds));
  EXPECT_EQ(CountAnomaly(PG_AN_RESPQ_OVERFLOW), 1u);
  EXPECT_TRUE(Escalated(1));
}

TEST_F(ConversationTest, BadStatusAndUnsolicitedLinesEscalate) {
  Client(c_.flow.ToServer("NOOP\r\n"));
  Server(c_.flow.ToClient("*OK weird\r\n+OK after\r\n"));
  EXPECT_EQ(CountAnomaly(PG_AN_BAD_STATUS), 1u);
  EXPECT_EQ(ServerLines(), (std::vector<std::string>{"+OK POP3 ready\r\n", "*OK weird\r\n"}));
  EXPECT_EQ(Bytes(PG_EV_RAW), "+OK after\r\n");
}

TEST_F(ConversationTest, UnsolicitedServerLine) {
  Server(c_.flow.ToClient("+OK nobody asked\r\n"));
  EXPECT_EQ(CountAnomaly(PG_AN_UNSOLICITED), 1u);
  EXPECT_TRUE(Escalated(1));
}

TEST_F(ConversationTest, LongServerStatusLineIsAnAnomaly) {
  config_.server_line_threshold = 512;
  Apply();
  Client(c_.flow.ToServer("NOOP\r\n"));
  Server(c_.flow.ToClient("+OK " + std::string(600, 'A') + "\r\n"));
  EXPECT_EQ(CountAnomaly(PG_AN_SERVER_LINE_LONG), 1u);
  ASSERT_EQ(ServerLines().size(), 2u);
  EXPECT_EQ(ServerLines()[1].size(), 606u);  // the whole line went up
}

TEST_F(ConversationTest, SaslChallengesAndResponses) {
  config_.sasl_threshold = 64;
  Apply();
  Client(c_.flow.ToServer("AUTH DIGEST-MD5\r\n"));
  Server(c_.flow.ToClient("+ cmVhbG09ImV4YW1wbGUi\r\n"));
  Client(c_.flow.ToServer(std::string(100, 'Q') + "\r\n"));  // a long SASL response
  Server(c_.flow.ToClient("+ \r\n"));
  Client(c_.flow.ToServer("\r\n"));
  Server(c_.flow.ToClient("+OK authenticated\r\n"));
  Client(c_.flow.ToServer("STAT\r\n"));
  Server(c_.flow.ToClient("+OK 0 0\r\n"));
  auto lines = ServerLines();
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[1], "+ cmVhbG09ImV4YW1wbGUi\r\n");
  bool sasl_flag = false;
  for (const auto& e : Events(PG_EV_SERVER_LINE)) sasl_flag |= (e.flags & PG_EVF_SASL) != 0;
  EXPECT_TRUE(sasl_flag);
  EXPECT_EQ(CountAnomaly(PG_AN_LINE_OVER_THRESHOLD), 1u);  // sasl threshold, not USER's
  EXPECT_EQ(State().phase, PG_PHASE_CMD);
  EXPECT_EQ(State().q_head, State().q_tail);
  EXPECT_TRUE(Events(PG_EV_RAW).empty());
}

// ---------------------------------------------------------------------------
// STLS and TLS.

std::string TlsRecord(uint8_t type, size_t len, char fill = 'x') {
  std::string r;
  r.push_back(static_cast<char>(type));
  r.push_back(3);
  r.push_back(3);
  r.push_back(static_cast<char>(len >> 8));
  r.push_back(static_cast<char>(len & 0xff));
  r.append(len, fill);
  return r;
}

TEST_F(ConversationTest, StlsWithInjectedCommand) {
  Client(c_.flow.ToServer("STLS\r\nUSER injected\r\n"));
  EXPECT_EQ(CountAnomaly(PG_AN_STLS_CLIENT_INJECTION), 1u);
  EXPECT_EQ(Bytes(PG_EV_CLIENT_DATA), "STLS\r\nUSER injected\r\n");
}

TEST_F(ConversationTest, StlsBytesBetweenOkAndHandshakeAreInjection) {
  Client(c_.flow.ToServer("STLS\r\n"));
  Server(c_.flow.ToClient("+OK Begin TLS\r\n"));
  EXPECT_EQ(State().phase, PG_PHASE_STLS_WAIT);
  Client(c_.flow.ToServer("USER late\r\n"));
  EXPECT_EQ(CountAnomaly(PG_AN_STLS_CLIENT_INJECTION), 1u);
}

TEST_F(ConversationTest, StlsRefusedStaysPlaintext) {
  Client(c_.flow.ToServer("STLS\r\n"));
  Server(c_.flow.ToClient("-ERR not now\r\n"));
  Client(c_.flow.ToServer("USER alice\r\n"));
  Server(c_.flow.ToClient("+OK\r\n"));
  EXPECT_TRUE(Anomalies().empty());
  EXPECT_EQ(State().phase, PG_PHASE_CMD);
  EXPECT_EQ(ServerLines().back(), "+OK\r\n");
}

TEST_F(ConversationTest, StlsThenRealHandshakeFollowsRecordsOnly) {
  Client(c_.flow.ToServer("STLS\r\n"));
  Server(c_.flow.ToClient("+OK Begin TLS\r\n"));
  Client(c_.flow.ToServer(TlsRecord(22, 200)));  // ClientHello
  EXPECT_EQ(State().phase, PG_PHASE_TLS);
  Server(c_.flow.ToClient(TlsRecord(22, 90) + TlsRecord(20, 1) + TlsRecord(22, 40)));
  // Application data, even if it looks like POP3, raises nothing.
  Client(c_.flow.ToServer(TlsRecord(23, 30, 'U')));
  Server(c_.flow.ToClient(TlsRecord(23, 3000, '+')));
  auto recs = Events(PG_EV_TLS_RECORD);
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[0].dir, PG_DIR_TO_SERVER);
  EXPECT_EQ(recs[0].data[0], 22);
  EXPECT_EQ(recs[1].dir, PG_DIR_TO_CLIENT);
  EXPECT_TRUE(Anomalies().empty());
  EXPECT_TRUE(Events(PG_EV_CLIENT_DATA).size() == 1);  // only the STLS line
  EXPECT_TRUE(Events(PG_EV_RAW).empty());
}

TEST_F(ConversationTest, ServerBytesAfterStlsOkAreInjection) {
  Client(c_.flow.ToServer("STLS\r\n"));
  Server(c_.flow.ToClient("+OK Begin TLS\r\n+OK injected\r\n"));
  EXPECT_EQ(CountAnomaly(PG_AN_STLS_SERVER_INJECTION), 1u);
  EXPECT_EQ(Bytes(PG_EV_RAW), "+OK injected\r\n");
}

class TlsPortTest : public KernelTest {
 protected:
  void SetUp() override {
    KernelTest::SetUp();
    if (IsSkipped()) return;
    Client(flow_.Syn());
    Server(flow_.SynAck());
    Client(flow_.Ack());
  }
  ::popguard::test::Flow flow_{"10.3.0.1", 42000, "10.3.0.2", 995};
};

TEST_F(TlsPortTest, Port995FollowsRecordHeaders) {
  Client(flow_.ToServer(TlsRecord(22, 300)));
  Server(flow_.ToClient(TlsRecord(22, 2000) + TlsRecord(22, 500)));
  // A record header split across segments.
  std::string rec = TlsRecord(23, 100);
  Client(flow_.ToServer(rec.substr(0, 3)));
  Client(flow_.ToServer(rec.substr(3)));
  Client(flow_.ToServer(TlsRecord(23, 10)));
  EXPECT_EQ(Events(PG_EV_TLS_RECORD).size(), 3u);
  EXPECT_TRUE(Anomalies().empty());
  EXPECT_TRUE(Events(PG_EV_RAW).empty());
  EXPECT_TRUE(Events(PG_EV_CLIENT_DATA).empty());
}

TEST_F(TlsPortTest, HeartbeatAndMalformedRecords) {
  Client(flow_.ToServer(TlsRecord(24, 3)));
  EXPECT_EQ(CountAnomaly(PG_AN_TLS_HEARTBEAT), 1u);
  Client(flow_.ToServer("USER plaintext-on-995\r\n"));
  EXPECT_EQ(CountAnomaly(PG_AN_TLS_MALFORMED), 1u);
  EXPECT_EQ(Bytes(PG_EV_RAW), "USER plaintext-on-995\r\n");
}

// ---------------------------------------------------------------------------
// Prevent mode, blocklists, budgets.

TEST_F(ConversationTest, HardLimitDropsInPreventModeOnly) {
  config_.verb_hard_limit[PG_VERB_PASS] = 64;
  Apply();
  // Over three segments: two would be dropped, one anomaly for the line.
  EXPECT_EQ(Run(c_.flow.ToServer("PASS " + std::string(50, 'A'))), kPass);
  EXPECT_EQ(Run(c_.flow.ToServer(std::string(50, 'A'))), kPass);
  EXPECT_EQ(Run(c_.flow.ToServer("\r\n")), kPass);
  EXPECT_EQ(Counter(WouldDrop(PG_DROP_LINE_LIMIT)), 2u);
  EXPECT_EQ(CountAnomaly(PG_AN_LINE_HARD_LIMIT), 1u);
  Client(c_.flow.ToServer("PASS short\r\n"));
  EXPECT_EQ(Counter(WouldDrop(PG_DROP_LINE_LIMIT)), 2u);
  EXPECT_FALSE(pf_->IsFlowBlocked(c_.key));  // detect mode blocks nothing

  Conversation other;
  other.flow = ::popguard::test::Flow("10.1.0.1", 40002, "10.1.0.2", 110);
  other.key.client_port = htons(40002);
  config_.mode = PG_MODE_PREVENT;
  config_.blocklist_ttl_ns = 60'000'000'000ull;
  Apply();
  Client(other.flow.Syn());
  Server(other.flow.SynAck());
  EXPECT_EQ(Run(other.flow.ToServer("PASS " + std::string(100, 'A') + "\r\n")), kDrop);
  EXPECT_EQ(Counter(Drop(PG_DROP_LINE_LIMIT)), 1u);
  EXPECT_TRUE(pf_->IsFlowBlocked(other.key));
  // The retransmission, and everything else of the flow, is dropped.
  EXPECT_EQ(Run(other.flow.ToServer("QUIT\r\n")), kDrop);
  EXPECT_EQ(Run(other.flow.ToClient("+OK\r\n"), Hook::kTcEgress), TC_ACT_SHOT);
  EXPECT_EQ(Counter(Drop(PG_DROP_BLOCKED_FLOW)), 2u);
}

TEST_F(ConversationTest, BlocklistExpiry) {
  config_.mode = PG_MODE_PREVENT;
  Apply();
  pf_->BlockFlow(c_.key, kNow + 1'000'000'000);  // expires in a second
  EXPECT_EQ(Run(c_.flow.ToServer("NOOP\r\n")), kDrop);
  pf_->BlockFlow(c_.key, kNow - 1);  // already expired
  EXPECT_EQ(Run(c_.flow.ToServer("NOOP\r\n")), kPass);
  EXPECT_FALSE(pf_->IsFlowBlocked(c_.key));  // the kernel removed it

  pg_addr_key src{};
  src.family = 4;
  inet_pton(AF_INET, "10.1.0.1", &src.addr[0]);
  pf_->BlockAddress(src, 0);  // never expires
  EXPECT_EQ(Run(c_.flow.ToServer("NOOP\r\n")), kDrop);
  EXPECT_EQ(Counter(Drop(PG_DROP_BLOCKED_SOURCE)), 1u);
  config_.mode = PG_MODE_DETECT;
  Apply();
  EXPECT_EQ(Run(c_.flow.ToServer("NOOP\r\n")), kPass);
  EXPECT_EQ(Counter(WouldDrop(PG_DROP_BLOCKED_SOURCE)), 1u);
  pf_->BlockAddress(src, kNow - 5);
  config_.mode = PG_MODE_PREVENT;
  Apply();
  EXPECT_EQ(Run(c_.flow.ToServer("NOOP\r\n")), kPass);
}

TEST_F(ConversationTest, FlowBudgetSuppressesCountsAndBlocks) {
  config_.flow_budget_burst = 5;
  config_.flow_budget_rate = 1;
  config_.mode = PG_MODE_PREVENT;
  Apply();
  for (int i = 0; i < 6; ++i) EXPECT_EQ(Run(c_.flow.ToServer("NOOP\r\n")), kPass);
  EXPECT_EQ(Events(PG_EV_CLIENT_DATA).size(), 5u);
  EXPECT_EQ(Counter(PG_CNT_BUDGET_FLOW), 1u);
  EXPECT_EQ(CountAnomaly(PG_AN_FLOW_BUDGET), 1u);
  // Crossing the budget blocklisted the flow.
  EXPECT_TRUE(pf_->IsFlowBlocked(c_.key));
  uint32_t off = c_.flow.ClientNextSeq() - (c_.flow.client_isn + 1);
  EXPECT_EQ(Run(c_.flow.ToServerAt(off, "NOOP\r\n")), kDrop);
  // Tokens come back with time (1 per second here); TCP retransmits.
  pf_->BlockFlow(c_.key, kNow - 1);
  config_.clock_ns = kNow + 3'000'000'000ull;
  Apply();
  EXPECT_EQ(Run(c_.flow.ToServer("NOOP\r\n")), kPass);
  EXPECT_EQ(Events(PG_EV_CLIENT_DATA).size(), 6u);
}

TEST_F(ConversationTest, GlobalBudgetSuppressesAndReportsOnce) {
  config_.global_budget_burst = 3;
  config_.global_budget_rate = 1;
  config_.clock_ns = kNow + 10'000'000'000ull;  // a fresh bucket
  Apply();
  for (int i = 0; i < 6; ++i) Client(c_.flow.ToServer("NOOP\r\n"));
  EXPECT_EQ(Events(PG_EV_CLIENT_DATA).size(), 3u);
  EXPECT_EQ(Counter(PG_CNT_BUDGET_GLOBAL), 3u);
  EXPECT_EQ(CountAnomaly(PG_AN_GLOBAL_BUDGET), 1u);
}

class TinyRingTest : public KernelTest {
 protected:
  PrefilterOptions Options() const override {
    PrefilterOptions o;
    o.ring_buffer_bytes = 4096;
    return o;
  }
};

TEST_F(TinyRingTest, FullRingBufferIsCounted) {
  Flow f("10.4.0.1", 43000, "10.4.0.2", 110);
  Client(f.Syn());
  std::string big(4000, 'A');
  // 16 records of about 280 bytes each cannot fit in 4 KiB; nothing is
  // consumed.
  pf_->TestRun(Hook::kXdp, f.ToServer(big));
  auto c = pf_->ReadCounters();
  EXPECT_GT(c[PG_CNT_RINGBUF_FULL], 0u);
  auto evs = pf_->DrainEvents();
  EXPECT_EQ(evs.size() + c[PG_CNT_RINGBUF_FULL], 16u);
  EXPECT_EQ(c[PG_CNT_EVENTS], evs.size());
}

// ---------------------------------------------------------------------------
// Large payloads: XDP test runs take frags beyond a 3.5 KB head.

TEST_F(ConversationTest, SixtyKiBClientPayloadThroughXdpComesUpWhole) {
  std::string big;
  for (int i = 0; big.size() < 60 * 1024; ++i) big += "NOOP " + std::to_string(i) + "\r\n";
  big.resize(60 * 1024);
  Client(c_.flow.ToServer(big));
  EXPECT_EQ(Bytes(PG_EV_CLIENT_DATA), big);
  EXPECT_EQ(Events(PG_EV_CLIENT_DATA).size(), (big.size() + PG_EVENT_DATA - 1) / PG_EVENT_DATA);
}

TEST_F(ConversationTest, SixtyKiBBodyThroughXdpStaysInKernel) {
  // The mail client side: the server's response arrives at XDP.
  Client(c_.flow.ToServer("RETR 1\r\nNOOP\r\n"));
  std::string body = "+OK\r\n";
  while (body.size() < 60 * 1024) body += "Lorem ipsum dolor sit amet, consectetur adipiscing elit\r\n";
  body += ".\r\n+OK done\r\n";
  EXPECT_EQ(Run(c_.flow.ToClient(body), Hook::kXdp), kPass);
  EXPECT_EQ(ServerLines(), (std::vector<std::string>{"+OK POP3 ready\r\n", "+OK\r\n", "+OK done\r\n"}));
  EXPECT_EQ(Counter(PG_CNT_EVENT_BYTES), 16u + 14u + 5u + 10u);
  EXPECT_EQ(State().q_head, State().q_tail);
}

// 8-bit text fails the body fast path's cheap block test everywhere; the
// exact test must still find only real "LF ." candidates: dot-stuffed
// lines stay in the body, the terminator ends it.
TEST_F(ConversationTest, EightBitBodyWithDotStuffingIsKeptAndEndsAtItsTerminator) {
  Client(c_.flow.ToServer("RETR 1\r\nNOOP\r\n"));
  std::string body = "+OK\r\n";
  for (int i = 0; body.size() < 3000; ++i) {
    body += i % 7 == 3 ? "..sch\xc3\xb6ne Gr\xc3\xbc\xc3\x9f\xc3\xa9 \xe2\x80\x94 \xff\x80\r\n"
                       : "Gr\xc3\xbc\xc3\x9f aus M\xc3\xbcnchen, \xc3\xa7" "a va tr\xc3\xa8s bien.\r\n";
  }
  body += ".\r\n+OK done\r\n";
  EXPECT_EQ(Run(c_.flow.ToClient(body), Hook::kXdp), kPass);
  EXPECT_EQ(ServerLines(), (std::vector<std::string>{"+OK POP3 ready\r\n", "+OK\r\n", "+OK done\r\n"}));
  EXPECT_TRUE(Events(PG_EV_RAW).empty());
  EXPECT_EQ(State().q_head, State().q_tail);
}

TEST_F(ConversationTest, BodySegmentThroughTcEgress) {
  Client(c_.flow.ToServer("RETR 1\r\nNOOP\r\n"));
  std::string body = "+OK\r\n";
  while (body.size() < 3400) body += "line of a message body, nothing to see here.....\r\n";
  body += ".\r\n+OK done\r\n";
  Server(c_.flow.ToClient(body));
  EXPECT_EQ(ServerLines(), (std::vector<std::string>{"+OK POP3 ready\r\n", "+OK\r\n", "+OK done\r\n"}));
}

}  // namespace
}  // namespace popguard::test
