#include "agent/packet/packet.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "packet_builder.h"

namespace popguard::packet {
namespace {

using test::Flow;
using test::Packet;

std::string Text(std::span<const uint8_t> bytes) { return {bytes.begin(), bytes.end()}; }

std::array<uint8_t, 16> Address(std::string_view text) {
  std::array<uint8_t, 16> addr{};
  const std::string copy(text);
  const int family = copy.find(':') == std::string::npos ? AF_INET : AF_INET6;
  EXPECT_EQ(inet_pton(family, copy.c_str(), addr.data()), 1) << copy;
  return addr;
}

void Store16(std::vector<uint8_t>& frame, size_t offset, uint16_t v) {
  frame.at(offset) = static_cast<uint8_t>(v >> 8);
  frame.at(offset + 1) = static_cast<uint8_t>(v);
}

// Where the payload starts, checked against the builder's own layout: the
// span must point into the frame, not at a copy.
void ExpectPayloadAt(const Decoded& d, const std::vector<uint8_t>& frame, size_t offset,
                     std::string_view payload) {
  ASSERT_TRUE(d.has_tcp);
  EXPECT_EQ(d.tcp.payload.data(), frame.data() + offset);
  EXPECT_EQ(Text(d.tcp.payload), payload);
}

TEST(DecodeEthernetTest, Ipv4Tcp) {
  Packet p;
  const std::vector<uint8_t> frame = p.Eth()
                                         .IPv4("10.0.0.1", "192.168.7.2")
                                         .Tcp(40000, 110)
                                         .Seq(0x01020304)
                                         .Ack(0xa0b0c0d0)
                                         .Flags(test::kAck | test::kPsh)
                                         .Payload("USER alice\r\n")
                                         .Build();
  const Decoded d = DecodeEthernet(frame);
  ASSERT_EQ(d.status, DecodeStatus::kTcp) << d.error;
  EXPECT_TRUE(d.error.empty());
  EXPECT_EQ(d.tcp.family, 4);
  EXPECT_EQ(d.tcp.src, Address("10.0.0.1"));
  EXPECT_EQ(d.tcp.dst, Address("192.168.7.2"));
  EXPECT_EQ(d.tcp.src_port, 40000);
  EXPECT_EQ(d.tcp.dst_port, 110);
  EXPECT_EQ(d.tcp.seq, 0x01020304u);
  EXPECT_EQ(d.tcp.ack, 0xa0b0c0d0u);
  EXPECT_EQ(d.tcp.flags, test::kAck | test::kPsh);
  ExpectPayloadAt(d, frame, p.PayloadOffset(), "USER alice\r\n");
}

TEST(DecodeEthernetTest, Ipv6Tcp) {
  Packet p;
  const std::vector<uint8_t> frame = p.Eth()
                                         .IPv6("2001:db8::1", "2001:db8:ffff::2")
                                         .Tcp(110, 51000)
                                         .Seq(0xfffffff0)
                                         .Ack(7)
                                         .Flags(test::kSyn | test::kAck)
                                         .Payload("+OK ready\r\n")
                                         .Build();
  const Decoded d = DecodeEthernet(frame);
  ASSERT_EQ(d.status, DecodeStatus::kTcp) << d.error;
  EXPECT_EQ(d.tcp.family, 6);
  EXPECT_EQ(d.tcp.src, Address("2001:db8::1"));
  EXPECT_EQ(d.tcp.dst, Address("2001:db8:ffff::2"));
  EXPECT_EQ(d.tcp.src_port, 110);
  EXPECT_EQ(d.tcp.dst_port, 51000);
  EXPECT_EQ(d.tcp.seq, 0xfffffff0u);
  EXPECT_EQ(d.tcp.ack, 7u);
  EXPECT_EQ(d.tcp.flags, test::kSyn | test::kAck);
  ExpectPayloadAt(d, frame, p.PayloadOffset(), "+OK ready\r\n");
}

TEST(DecodeEthernetTest, FlowFramesBothDirections) {
  Flow flow("10.1.1.1", 40000, "10.2.2.2", 110);
  const std::vector<uint8_t> to_server = flow.ToServer("STAT\r\n");
  const Decoded up = DecodeEthernet(to_server);
  ASSERT_EQ(up.status, DecodeStatus::kTcp) << up.error;
  EXPECT_EQ(up.tcp.src, Address("10.1.1.1"));
  EXPECT_EQ(up.tcp.dst_port, 110);
  EXPECT_EQ(up.tcp.seq, flow.client_isn + 1);
  EXPECT_EQ(up.tcp.ack, flow.server_isn + 1);
  EXPECT_EQ(Text(up.tcp.payload), "STAT\r\n");

  const std::vector<uint8_t> to_client = flow.ToClient("+OK 2 320\r\n");
  const Decoded down = DecodeEthernet(to_client);
  ASSERT_EQ(down.status, DecodeStatus::kTcp) << down.error;
  EXPECT_EQ(down.tcp.src, Address("10.2.2.2"));
  EXPECT_EQ(down.tcp.src_port, 110);
  EXPECT_EQ(down.tcp.ack, flow.ClientNextSeq());
  EXPECT_EQ(Text(down.tcp.payload), "+OK 2 320\r\n");
}

TEST(DecodeEthernetTest, Ipv6ExtensionHeadersAreSkipped) {
  Packet p;
  const std::vector<uint8_t> frame = p.Eth()
                                         .IPv6("2001:db8::1", "2001:db8::2")
                                         .Ipv6Ext(test::kIpv6HopByHop, {})
                                         .Ipv6Ext(test::kIpv6Routing, {0, 0, 0, 0, 0, 0})
                                         // 24 bytes: a length field of 2 units.
                                         .Ipv6Ext(test::kIpv6DestOpts, std::vector<uint8_t>(20, 0))
                                         .Tcp(40000, 110)
                                         .Seq(42)
                                         .Payload("PASS secret\r\n")
                                         .Build();
  ASSERT_EQ(p.L4Offset(), 14u + 40 + 8 + 8 + 24);
  const Decoded d = DecodeEthernet(frame);
  ASSERT_EQ(d.status, DecodeStatus::kTcp) << d.error;
  EXPECT_EQ(d.tcp.src_port, 40000);
  EXPECT_EQ(d.tcp.seq, 42u);
  ExpectPayloadAt(d, frame, p.PayloadOffset(), "PASS secret\r\n");
}

// AH counts 4-octet units (less 2) where the other headers count 8-octet
// units (less 1); 16 bytes is 2 in one and 1 in the other.
TEST(DecodeEthernetTest, Ipv6AuthenticationHeaderUsesItsOwnLengthUnits) {
  Packet p;
  std::vector<uint8_t> frame = p.Eth()
                                   .IPv6("2001:db8::1", "2001:db8::2")
                                   .Ipv6Ext(test::kIpv6DestOpts, std::vector<uint8_t>(14, 0))
                                   .Tcp(40000, 110)
                                   .Payload("LIST\r\n")
                                   .Build();
  const size_t ext = p.L3Offset() + test::kIpv6HeaderLen;
  ASSERT_EQ(frame[ext + 1], 1) << "a 16-byte header in 8-octet units";
  frame[p.L3Offset() + 6] = test::kIpv6Auth;
  frame[ext + 1] = 2;
  const Decoded d = DecodeEthernet(frame);
  ASSERT_EQ(d.status, DecodeStatus::kTcp) << d.error;
  EXPECT_EQ(d.tcp.dst_port, 110);
  ExpectPayloadAt(d, frame, p.PayloadOffset(), "LIST\r\n");
}

// The kernel stops after six; the userspace decoder need not.
TEST(DecodeEthernetTest, ManyIpv6ExtensionHeaders) {
  Packet p;
  p.Eth().IPv6("2001:db8::1", "2001:db8::2");
  for (int i = 0; i < 10; ++i) p.Ipv6Ext(test::kIpv6DestOpts, {});
  const std::vector<uint8_t> frame = p.Tcp(40000, 110).Payload("QUIT\r\n").Build();
  const Decoded d = DecodeEthernet(frame);
  ASSERT_EQ(d.status, DecodeStatus::kTcp) << d.error;
  ExpectPayloadAt(d, frame, p.PayloadOffset(), "QUIT\r\n");
}

TEST(DecodeEthernetTest, SingleVlanTag) {
  Packet p;
  const std::vector<uint8_t> frame =
      p.Eth().Vlan(100).IPv4("10.0.0.1", "10.0.0.2").Tcp(40000, 110).Payload("NOOP\r\n").Build();
  ASSERT_EQ(p.L3Offset(), 18u);
  const Decoded d = DecodeEthernet(frame);
  ASSERT_EQ(d.status, DecodeStatus::kTcp) << d.error;
  EXPECT_EQ(d.tcp.src, Address("10.0.0.1"));
  ExpectPayloadAt(d, frame, p.PayloadOffset(), "NOOP\r\n");
}

class TwoTagsTest : public testing::TestWithParam<std::pair<uint16_t, uint16_t>> {};

TEST_P(TwoTagsTest, DecodesUnderBothTags) {
  Packet p;
  std::vector<uint8_t> frame = p.Eth()
                                   .Vlan(100)
                                   .Vlan(200)
                                   .IPv6("2001:db8::1", "2001:db8::2")
                                   .Tcp(40000, 110)
                                   .Payload("RETR 1\r\n")
                                   .Build();
  Store16(frame, 12, GetParam().first);
  Store16(frame, 16, GetParam().second);
  const Decoded d = DecodeEthernet(frame);
  ASSERT_EQ(d.status, DecodeStatus::kTcp) << d.error;
  EXPECT_EQ(d.tcp.family, 6);
  ExpectPayloadAt(d, frame, p.PayloadOffset(), "RETR 1\r\n");
}

INSTANTIATE_TEST_SUITE_P(AnyCombination, TwoTagsTest,
                         testing::Values(std::pair<uint16_t, uint16_t>{0x88a8, 0x8100},
                                         std::pair<uint16_t, uint16_t>{0x8100, 0x8100},
                                         std::pair<uint16_t, uint16_t>{0x88a8, 0x88a8},
                                         std::pair<uint16_t, uint16_t>{0x8100, 0x88a8}));

TEST(DecodeEthernetTest, ThirdVlanTagIsNotFollowed) {
  const std::vector<uint8_t> frame =
      Packet().Eth().Vlan(1).Vlan(2).Vlan(3).IPv4("10.0.0.1", "10.0.0.2").Tcp(40000, 110).Build();
  const Decoded d = DecodeEthernet(frame);
  EXPECT_EQ(d.status, DecodeStatus::kNotTcp);
  EXPECT_FALSE(d.has_tcp);
}

TEST(DecodeEthernetTest, Ipv4Options) {
  Packet p;
  const std::vector<uint8_t> frame =
      p.Eth()
          .IPv4("10.0.0.1", "10.0.0.2")
          // Router alert, then a record-route option with room for two hops.
          .Ipv4Options({0x94, 0x04, 0x00, 0x00, 0x07, 0x0b, 0x04, 0, 0, 0, 0, 0, 0, 0, 0})
          .Tcp(40000, 110)
          .Seq(9)
          .Payload("UIDL\r\n")
          .Build();
  ASSERT_EQ(p.L4Offset(), 14u + 20 + 16);
  const Decoded d = DecodeEthernet(frame);
  ASSERT_EQ(d.status, DecodeStatus::kTcp) << d.error;
  EXPECT_EQ(d.tcp.src_port, 40000);
  EXPECT_EQ(d.tcp.seq, 9u);
  ExpectPayloadAt(d, frame, p.PayloadOffset(), "UIDL\r\n");
}

TEST(DecodeEthernetTest, TcpOptions) {
  Packet p;
  const std::vector<uint8_t> frame =
      p.Eth()
          .IPv4("10.0.0.1", "10.0.0.2")
          .Tcp(40000, 110)
          // MSS, SACK permitted, timestamps, window scale.
          .TcpOptions({2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7})
          .Flags(test::kSyn)
          .Payload("early data")
          .Build();
  ASSERT_EQ(p.PayloadOffset() - p.L4Offset(), 40u);
  const Decoded d = DecodeEthernet(frame);
  ASSERT_EQ(d.status, DecodeStatus::kTcp) << d.error;
  EXPECT_EQ(d.tcp.flags, test::kSyn);
  ExpectPayloadAt(d, frame, p.PayloadOffset(), "early data");
}

TEST(DecodeEthernetTest, Ipv4FirstFragment) {
  const std::vector<uint8_t> frame = Packet()
                                         .Eth()
                                         .IPv4("10.0.0.1", "10.0.0.2")
                                         .MoreFragments(true)
                                         .Tcp(40000, 110)
                                         .Payload("USER al")
                                         .Build();
  const Decoded d = DecodeEthernet(frame);
  EXPECT_EQ(d.status, DecodeStatus::kFragment);
  EXPECT_FALSE(d.has_tcp);
  EXPECT_TRUE(d.error.empty());
  EXPECT_EQ(d.tcp.family, 4);
  EXPECT_EQ(d.tcp.src, Address("10.0.0.1"));
  EXPECT_EQ(d.tcp.dst, Address("10.0.0.2"));
  EXPECT_EQ(d.tcp.src_port, 0) << "a fragment's ports are not decoded";
}

TEST(DecodeEthernetTest, Ipv4LaterFragment) {
  const std::vector<uint8_t> frame = Packet()
                                         .Eth()
                                         .IPv4("10.0.0.1", "10.0.0.2")
                                         .FragmentOffset(3)
                                         .RawL4({'i', 'c', 'e', '\r', '\n'})
                                         .Build();
  const Decoded d = DecodeEthernet(frame);
  EXPECT_EQ(d.status, DecodeStatus::kFragment);
  EXPECT_EQ(d.tcp.src, Address("10.0.0.1"));
}

// The protocol field is in every IPv4 fragment, so a UDP fragment is known
// not to be TCP, as the kernel classifies it too.
TEST(DecodeEthernetTest, Ipv4UdpFragmentIsNotTcp) {
  const std::vector<uint8_t> frame = Packet()
                                         .Eth()
                                         .IPv4("10.0.0.1", "10.0.0.2")
                                         .FragmentOffset(100)
                                         .RawL4({1, 2, 3, 4})
                                         .L4Proto(test::kIpProtoUdp)
                                         .Build();
  EXPECT_EQ(DecodeEthernet(frame).status, DecodeStatus::kNotTcp);
}

TEST(DecodeEthernetTest, Ipv6Fragments) {
  const std::vector<uint8_t> first = Packet()
                                         .Eth()
                                         .IPv6("2001:db8::1", "2001:db8::2")
                                         .Ipv6Fragment(0, true, 77)
                                         .Tcp(40000, 110)
                                         .Payload("USER al")
                                         .Build();
  const Decoded d = DecodeEthernet(first);
  EXPECT_EQ(d.status, DecodeStatus::kFragment);
  EXPECT_FALSE(d.has_tcp);
  EXPECT_EQ(d.tcp.family, 6);
  EXPECT_EQ(d.tcp.src, Address("2001:db8::1"));
  EXPECT_EQ(d.tcp.dst, Address("2001:db8::2"));

  const std::vector<uint8_t> later = Packet()
                                         .Eth()
                                         .IPv6("2001:db8::1", "2001:db8::2")
                                         .Ipv6Ext(test::kIpv6HopByHop, {})
                                         .Ipv6Fragment(1, false, 77)
                                         .RawL4({'i', 'c', 'e', '\r', '\n'})
                                         .Build();
  EXPECT_EQ(DecodeEthernet(later).status, DecodeStatus::kFragment);

  const std::vector<uint8_t> udp = Packet()
                                       .Eth()
                                       .IPv6("2001:db8::1", "2001:db8::2")
                                       .Ipv6Fragment(0, true, 78)
                                       .Udp(53, 53)
                                       .Payload("query")
                                       .Build();
  EXPECT_EQ(DecodeEthernet(udp).status, DecodeStatus::kNotTcp);
}

TEST(DecodeEthernetTest, UdpIsNotTcp) {
  for (const bool v6 : {false, true}) {
    Packet p;
    p.Eth();
    if (v6) {
      p.IPv6("2001:db8::1", "2001:db8::2");
    } else {
      p.IPv4("10.0.0.1", "10.0.0.2");
    }
    const std::vector<uint8_t> frame = p.Udp(40000, 110).Payload("USER alice\r\n").Build();
    const Decoded d = DecodeEthernet(frame);
    EXPECT_EQ(d.status, DecodeStatus::kNotTcp) << "v6=" << v6;
    EXPECT_FALSE(d.has_tcp);
    EXPECT_TRUE(d.error.empty());
  }
}

TEST(DecodeEthernetTest, OtherEthertypesAreNotTcp) {
  std::vector<uint8_t> frame =
      Packet().Eth().IPv4("10.0.0.1", "10.0.0.2").Tcp(40000, 110).Payload("x").Build();
  Store16(frame, 12, 0x0806);  // ARP
  EXPECT_EQ(DecodeEthernet(frame).status, DecodeStatus::kNotTcp);
}

TEST(DecodeEthernetTest, EthernetPaddingIsIgnored) {
  for (const bool v6 : {false, true}) {
    Packet p;
    p.Eth();
    if (v6) {
      p.IPv6("2001:db8::1", "2001:db8::2");
    } else {
      p.IPv4("10.0.0.1", "10.0.0.2");
    }
    std::vector<uint8_t> frame = p.Tcp(110, 40000).Payload("+OK\r\n").Build();
    frame.resize(frame.size() + 20, 0xee);
    const Decoded d = DecodeEthernet(frame);
    ASSERT_EQ(d.status, DecodeStatus::kTcp) << "v6=" << v6 << ": " << d.error;
    ExpectPayloadAt(d, frame, p.PayloadOffset(), "+OK\r\n");
  }
}

TEST(DecodeEthernetTest, PaddedEmptySegmentHasEmptyPayload) {
  std::vector<uint8_t> frame =
      Packet().Eth().IPv4("10.0.0.1", "10.0.0.2").Tcp(40000, 110).Flags(test::kAck).Build();
  ASSERT_EQ(frame.size(), 54u);
  frame.resize(60, 0);  // the Ethernet minimum
  const Decoded d = DecodeEthernet(frame);
  ASSERT_EQ(d.status, DecodeStatus::kTcp) << d.error;
  EXPECT_TRUE(d.tcp.payload.empty());
}

// GSO/TSO captures: the length field is 0 and the frame is the datagram.
TEST(DecodeEthernetTest, ZeroIpLengthMeansToTheEndOfTheFrame) {
  const std::string payload(70000, 'z');
  Packet v4;
  const std::vector<uint8_t> big = v4.Eth()
                                       .IPv4("10.0.0.1", "10.0.0.2")
                                       .Tcp(110, 40000)
                                       .Payload(payload)
                                       .IpTotalLength(0)
                                       .Build();
  const Decoded d4 = DecodeEthernet(big);
  ASSERT_EQ(d4.status, DecodeStatus::kTcp) << d4.error;
  EXPECT_EQ(d4.tcp.payload.size(), payload.size());
  EXPECT_EQ(d4.tcp.payload.data(), big.data() + v4.PayloadOffset());

  Packet v6;
  const std::vector<uint8_t> jumbo = v6.Eth()
                                         .IPv6("2001:db8::1", "2001:db8::2")
                                         .Ipv6Ext(test::kIpv6HopByHop, {})
                                         .Tcp(110, 40000)
                                         .Payload(payload)
                                         .IpTotalLength(0)
                                         .Build();
  const Decoded d6 = DecodeEthernet(jumbo);
  ASSERT_EQ(d6.status, DecodeStatus::kTcp) << d6.error;
  EXPECT_EQ(d6.tcp.payload.size(), payload.size());
}

TEST(DecodeEthernetTest, LengthBeyondTheFrameIsTruncatedButUsable) {
  Packet p;
  const std::vector<uint8_t> frame = p.Eth()
                                         .IPv4("10.0.0.1", "10.0.0.2")
                                         .Tcp(40000, 110)
                                         .Seq(5)
                                         .Payload("RETR 1\r\n")
                                         .IpTotalLength(20 + 20 + 8 + 100)
                                         .Build();
  const Decoded d = DecodeEthernet(frame);
  EXPECT_EQ(d.status, DecodeStatus::kTruncated);
  EXPECT_EQ(d.tcp.seq, 5u);
  ExpectPayloadAt(d, frame, p.PayloadOffset(), "RETR 1\r\n");
  EXPECT_EQ(
      d.error,
      "the IPv4 total length ends the datagram at offset 162 but the frame ends at offset 62");
}

struct CutCase {
  const char* name;
  std::vector<uint8_t> frame;
  size_t payload_offset;
};

std::vector<CutCase> CutCases() {
  std::vector<CutCase> cases;
  {
    Packet p;
    std::vector<uint8_t> frame = p.Eth()
                                     .Vlan(10)
                                     .Vlan(20)
                                     .IPv4("10.0.0.1", "10.0.0.2")
                                     .Ipv4Options({0x94, 0x04, 0, 0})
                                     .Tcp(40000, 110)
                                     .TcpOptions({2, 4, 0x05, 0xb4})
                                     .Payload("USER alice\r\n")
                                     .Build();
    cases.push_back({"qinq_ipv4_options", std::move(frame), p.PayloadOffset()});
  }
  {
    Packet p;
    std::vector<uint8_t> frame = p.Eth()
                                     .Vlan(10)
                                     .IPv6("2001:db8::1", "2001:db8::2")
                                     .Ipv6Ext(test::kIpv6HopByHop, {})
                                     .Ipv6Ext(test::kIpv6DestOpts, std::vector<uint8_t>(12, 0))
                                     .Tcp(40000, 110)
                                     .TcpOptions({1, 1, 4, 2})
                                     .Payload("PASS secret\r\n")
                                     .Build();
    cases.push_back({"vlan_ipv6_ext", std::move(frame), p.PayloadOffset()});
  }
  return cases;
}

// Each prefix is copied to a buffer of exactly its size, so any read past
// the end is an overflow the sanitizer build reports.
TEST(DecodeEthernetTest, EveryTruncationPoint) {
  for (const CutCase& c : CutCases()) {
    for (size_t n = 0; n < c.frame.size(); ++n) {
      SCOPED_TRACE(std::string(c.name) + " cut to " + std::to_string(n) + " bytes");
      const std::vector<uint8_t> prefix(c.frame.begin(), c.frame.begin() + n);
      const Decoded d = DecodeEthernet(prefix);
      ASSERT_EQ(d.status, DecodeStatus::kTruncated);
      EXPECT_NE(d.error.find("offset"), std::string::npos) << d.error;
      if (n < c.payload_offset) {
        EXPECT_FALSE(d.has_tcp);
      } else {
        ASSERT_TRUE(d.has_tcp);
        EXPECT_EQ(d.tcp.src_port, 40000);
        EXPECT_EQ(d.tcp.payload.data(), prefix.data() + c.payload_offset);
        EXPECT_EQ(d.tcp.payload.size(), n - c.payload_offset);
      }
    }
    EXPECT_EQ(DecodeEthernet(c.frame).status, DecodeStatus::kTcp) << c.name;
  }
}

TEST(DecodeEthernetTest, TruncationMessagesNameTheHeaderAndOffset) {
  const std::vector<uint8_t> frame =
      Packet().Eth().IPv4("10.0.0.1", "10.0.0.2").Tcp(40000, 110).Build();
  EXPECT_EQ(DecodeEthernet(std::span(frame).first(10)).error,
            "Ethernet header at offset 0 needs 14 bytes but the frame ends at offset 10");
  EXPECT_EQ(DecodeEthernet(std::span(frame).first(40)).error,
            "TCP header at offset 34 needs 20 bytes but the frame ends at offset 40");
}

TEST(DecodeEthernetTest, MalformedIpv4) {
  const auto base = [] { return Packet().Eth().IPv4("10.0.0.1", "10.0.0.2").Tcp(40000, 110); };

  const Decoded short_ihl = DecodeEthernet(base().BadIhl(4).Build());
  EXPECT_EQ(short_ihl.status, DecodeStatus::kMalformed);
  EXPECT_EQ(short_ihl.error, "IPv4 header at offset 14 has IHL 4 words, under the minimum of 5");

  std::vector<uint8_t> v6_in_v4 = base().Build();
  v6_in_v4[14] = 0x65;
  EXPECT_EQ(DecodeEthernet(v6_in_v4).status, DecodeStatus::kMalformed);

  const Decoded under_header = DecodeEthernet(base().IpTotalLength(19).Build());
  EXPECT_EQ(under_header.status, DecodeStatus::kMalformed);

  // Room for the IP header but not the TCP header: the datagram is wrong
  // however much the frame holds.
  const Decoded no_room = DecodeEthernet(base().IpTotalLength(30).Build());
  EXPECT_EQ(no_room.status, DecodeStatus::kMalformed);
  EXPECT_EQ(no_room.error,
            "TCP header at offset 34 needs 20 bytes but the IPv4 total length ends the datagram "
            "at offset 44");

  // IHL 15 claims 60 bytes of header in a datagram of 40.
  const Decoded long_ihl = DecodeEthernet(base().BadIhl(15).Build());
  EXPECT_EQ(long_ihl.status, DecodeStatus::kMalformed);
}

TEST(DecodeEthernetTest, MalformedTcp) {
  const auto base = [] {
    return Packet().Eth().IPv4("10.0.0.1", "10.0.0.2").Tcp(40000, 110).Payload("0123456789");
  };
  const Decoded short_offset = DecodeEthernet(base().TcpDataOffset(4).Build());
  EXPECT_EQ(short_offset.status, DecodeStatus::kMalformed);
  EXPECT_FALSE(short_offset.has_tcp);
  EXPECT_EQ(short_offset.error,
            "TCP header at offset 34 has data offset 4 words, under the minimum of 5");

  // 60 bytes of header claimed where the datagram has 30 after the IP header.
  const Decoded long_offset = DecodeEthernet(base().TcpDataOffset(15).Build());
  EXPECT_EQ(long_offset.status, DecodeStatus::kMalformed);
  EXPECT_FALSE(long_offset.has_tcp);

  // With no IP length to bound it, the same header runs off the frame.
  EXPECT_EQ(DecodeEthernet(base().TcpDataOffset(15).IpTotalLength(0).Build()).status,
            DecodeStatus::kTruncated);
}

TEST(DecodeEthernetTest, MalformedIpv6) {
  std::vector<uint8_t> v4_in_v6 =
      Packet().Eth().IPv6("2001:db8::1", "2001:db8::2").Tcp(40000, 110).Build();
  v4_in_v6[14] = 0x40;
  EXPECT_EQ(DecodeEthernet(v4_in_v6).status, DecodeStatus::kMalformed);

  // The payload length ends the datagram inside the destination options.
  const Decoded inside_ext = DecodeEthernet(Packet()
                                                .Eth()
                                                .IPv6("2001:db8::1", "2001:db8::2")
                                                .Ipv6Ext(test::kIpv6DestOpts, {})
                                                .Tcp(40000, 110)
                                                .IpTotalLength(4)
                                                .Build());
  EXPECT_EQ(inside_ext.status, DecodeStatus::kMalformed);
  EXPECT_EQ(inside_ext.error,
            "IPv6 destination options header at offset 54 needs 8 bytes but the IPv6 payload "
            "length ends the datagram at offset 58");
}

// Random corruption of valid frames, as a fuzzer would feed them: no crash
// (or sanitizer report), and the result keeps its own promises.
TEST(DecodeEthernetTest, CorruptedFramesKeepInvariants) {
  std::mt19937 rng(20240611);
  std::vector<std::vector<uint8_t>> seeds;
  for (CutCase& c : CutCases()) seeds.push_back(std::move(c.frame));
  seeds.push_back(Packet()
                      .Eth()
                      .IPv6("2001:db8::1", "2001:db8::2")
                      .Ipv6Fragment(0, true, 1)
                      .Tcp(1, 2)
                      .Payload("abc")
                      .Build());
  for (int round = 0; round < 20000; ++round) {
    std::vector<uint8_t> mutated = seeds[rng() % seeds.size()];
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < flips; ++i) mutated[rng() % mutated.size()] = static_cast<uint8_t>(rng());
    // A fresh buffer of exactly the cut size: a shrunk vector keeps its
    // capacity, where the sanitizer would not notice an overread.
    const std::vector<uint8_t> frame(mutated.begin(),
                                     mutated.begin() + rng() % (mutated.size() + 1));
    const Decoded d = DecodeEthernet(frame);
    const bool failed =
        d.status == DecodeStatus::kTruncated || d.status == DecodeStatus::kMalformed;
    ASSERT_EQ(d.error.empty(), !failed) << "round " << round;
    if (d.status == DecodeStatus::kTcp) {
      ASSERT_TRUE(d.has_tcp) << "round " << round;
    }
    if (d.has_tcp) {
      ASSERT_TRUE(d.status == DecodeStatus::kTcp || d.status == DecodeStatus::kTruncated);
      ASSERT_GE(d.tcp.payload.data(), frame.data());
      ASSERT_LE(d.tcp.payload.data() + d.tcp.payload.size(), frame.data() + frame.size());
    }
  }
}

}  // namespace
}  // namespace popguard::packet
