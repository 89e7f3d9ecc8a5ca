#include "agent/capture/capture.h"

#include <gtest/gtest.h>
#include <pcap/pcap.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

namespace popguard::capture {
namespace {

namespace fs = std::filesystem;

struct Record {
  int64_t timestamp_ns;
  std::vector<uint8_t> bytes;
  // Zero means "as captured"; larger simulates a snaplen cut.
  uint32_t wirelen = 0;
};

// A fresh path per test, so tests cannot see each other's files.
std::string TempPath(const std::string& suffix) {
  const testing::TestInfo* info =
      testing::UnitTest::GetInstance()->current_test_info();
  return testing::TempDir() + "popguard_capture_" + info->test_suite_name() +
         "_" + info->name() + suffix;
}

// Writes records with libpcap's own dumper, so the reader is checked against
// the library's notion of the format rather than a hand-rolled one.
void WriteCapture(const std::string& path, int link_type,
                  const std::vector<Record>& records) {
  pcap_t* dead = pcap_open_dead_with_tstamp_precision(
      link_type, 65535, PCAP_TSTAMP_PRECISION_NANO);
  ASSERT_NE(dead, nullptr);
  pcap_dumper_t* dumper = pcap_dump_open(dead, path.c_str());
  ASSERT_NE(dumper, nullptr) << pcap_geterr(dead);
  for (const Record& record : records) {
    pcap_pkthdr header{};
    header.ts.tv_sec = record.timestamp_ns / 1'000'000'000;
    header.ts.tv_usec = record.timestamp_ns % 1'000'000'000;
    header.caplen = static_cast<uint32_t>(record.bytes.size());
    header.len = record.wirelen != 0 ? record.wirelen : header.caplen;
    pcap_dump(reinterpret_cast<u_char*>(dumper), &header, record.bytes.data());
  }
  pcap_dump_close(dumper);
  pcap_close(dead);
}

std::vector<Frame> ReadAll(CaptureReader& reader) {
  std::vector<Frame> frames;
  while (std::optional<Frame> frame = reader.Next()) {
    frames.push_back(std::move(*frame));
  }
  return frames;
}

// A minimal IPv4/TCP packet from port 110 to 40000.
std::vector<uint8_t> Ipv4Tcp() {
  std::vector<uint8_t> packet = {
      0x45, 0x00, 0x00, 0x28, 0x00, 0x01, 0x00, 0x00, 0x40, 0x06,
      0x00, 0x00, 10,   0,    0,    1,    10,   0,    0,    2,  // IPv4
      0x00, 0x6E, 0x9C, 0x40, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
      0x00, 0x00, 0x50, 0x10, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00,  // TCP
  };
  return packet;
}

std::vector<uint8_t> Ipv6Header() {
  std::vector<uint8_t> packet(40, 0);
  packet[0] = 0x60;
  packet[6] = 59;  // No next header.
  packet[7] = 64;
  return packet;
}

std::vector<uint8_t> Concat(std::vector<uint8_t> head,
                            const std::vector<uint8_t>& tail) {
  head.insert(head.end(), tail.begin(), tail.end());
  return head;
}

std::vector<uint8_t> EthernetIpv4() {
  return Concat({0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00},
                Ipv4Tcp());
}

// pkttype "sent by us", hatype Ethernet, 6-byte address, protocol IPv4.
std::vector<uint8_t> SllIpv4() {
  return Concat({0x00, 0x04, 0x00, 0x01, 0x00, 0x06, 0xAA, 0xBB, 0xCC, 0xDD,
                 0xEE, 0xFF, 0x00, 0x00, 0x08, 0x00},
                Ipv4Tcp());
}

// Protocol IPv6, ifindex 3, hatype Ethernet, pkttype host, 6-byte address.
std::vector<uint8_t> Sll2Ipv6() {
  return Concat({0x86, 0xDD, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x01,
                 0x00, 0x06, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x00, 0x00},
                Ipv6Header());
}

uint16_t EthertypeOf(const std::vector<uint8_t>& ethernet) {
  return static_cast<uint16_t>(ethernet.at(12) << 8 | ethernet.at(13));
}

// The TCP ports of an Ethernet frame, looking through 802.1Q tags; nullopt
// for anything that is not TCP over IPv4 or IPv6 without extension headers.
std::optional<std::pair<uint16_t, uint16_t>> TcpPorts(
    const std::vector<uint8_t>& ethernet) {
  size_t offset = 12;
  const auto read16 = [&ethernet](size_t at) {
    return static_cast<uint16_t>(ethernet[at] << 8 | ethernet[at + 1]);
  };
  if (ethernet.size() < offset + 2) return std::nullopt;
  uint16_t ethertype = read16(offset);
  while (ethertype == 0x8100 && ethernet.size() >= offset + 6) {
    offset += 4;
    ethertype = read16(offset);
  }
  offset += 2;
  size_t tcp = 0;
  if (ethertype == 0x0800 && ethernet.size() >= offset + 20 &&
      ethernet[offset + 9] == 6) {
    tcp = offset + (ethernet[offset] & 0x0F) * 4;
  } else if (ethertype == 0x86DD && ethernet.size() >= offset + 40 &&
             ethernet[offset + 6] == 6) {
    tcp = offset + 40;
  } else {
    return std::nullopt;
  }
  if (ethernet.size() < tcp + 4) return std::nullopt;
  return std::make_pair(read16(tcp), read16(tcp + 2));
}

void ExpectRoundTrip(int link_type, const std::vector<Record>& records) {
  const std::string path = TempPath(".pcap");
  WriteCapture(path, link_type, records);
  CaptureReader reader = CaptureReader::Open(path);
  ASSERT_TRUE(reader.ok()) << reader.error()->message;
  EXPECT_EQ(reader.link_type(), link_type);
  const std::vector<Frame> frames = ReadAll(reader);
  EXPECT_TRUE(reader.ok()) << reader.error()->message;
  ASSERT_EQ(frames.size(), records.size());
  uint64_t bytes = 0;
  for (size_t i = 0; i < frames.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(frames[i].timestamp_ns, records[i].timestamp_ns);
    EXPECT_EQ(frames[i].link_type, link_type);
    EXPECT_EQ(frames[i].bytes, records[i].bytes);
    EXPECT_EQ(frames[i].caplen, records[i].bytes.size());
    bytes += records[i].bytes.size();
  }
  EXPECT_EQ(reader.frame_count(), records.size());
  EXPECT_EQ(reader.byte_count(), bytes);
}

TEST(CaptureReaderTest, ReadsEthernetBackExactly) {
  ExpectRoundTrip(DLT_EN10MB, {{1'700'000'000'123'456'789, EthernetIpv4()},
                               {1'700'000'001'000'000'001, EthernetIpv4()}});
}

TEST(CaptureReaderTest, ReadsRawIpv4BackExactly) {
  ExpectRoundTrip(DLT_RAW, {{5, Ipv4Tcp()}, {999'999'999, Ipv4Tcp()}});
}

TEST(CaptureReaderTest, ReadsSllBackExactly) {
  ExpectRoundTrip(DLT_LINUX_SLL, {{42'000'000'007, SllIpv4()}});
}

TEST(CaptureReaderTest, FlagsFramesCutBySnaplen) {
  const std::string path = TempPath(".pcap");
  WriteCapture(path, DLT_EN10MB,
               {{1, EthernetIpv4()}, {2, EthernetIpv4(), 1514}});
  CaptureReader reader = CaptureReader::Open(path);
  const std::vector<Frame> frames = ReadAll(reader);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_FALSE(frames[0].truncated);
  EXPECT_TRUE(frames[1].truncated);
  EXPECT_EQ(frames[1].wirelen, 1514u);
  EXPECT_EQ(frames[1].caplen, EthernetIpv4().size());
  EXPECT_EQ(reader.byte_count(), 2 * EthernetIpv4().size());
}

TEST(CaptureReaderTest, KeepsFramesBeforeARecordCutShort) {
  const std::string path = TempPath(".pcap");
  const std::vector<uint8_t> packet = EthernetIpv4();
  WriteCapture(path, DLT_EN10MB, {{1, packet}, {2, packet}, {3, packet}});
  fs::resize_file(path, fs::file_size(path) - 10);

  CaptureReader reader = CaptureReader::Open(path);
  ASSERT_TRUE(reader.ok()) << reader.error()->message;
  const std::vector<Frame> frames = ReadAll(reader);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[1].timestamp_ns, 2);
  EXPECT_EQ(frames[1].bytes, packet);
  EXPECT_EQ(reader.frame_count(), 2u);

  ASSERT_FALSE(reader.ok());
  const CaptureError& error = *reader.error();
  EXPECT_EQ(error.path, path);
  EXPECT_EQ(error.record_index, 2u);
  // 24-byte file header, then 16-byte record headers.
  EXPECT_EQ(error.byte_offset, 24 + 2 * (16 + packet.size()));
  EXPECT_NE(error.message.find(path), std::string::npos) << error.message;
  EXPECT_NE(error.message.find("record 2"), std::string::npos) << error.message;
  EXPECT_NE(error.message.find("truncated"), std::string::npos)
      << error.message;
  EXPECT_FALSE(reader.Next().has_value());
}

TEST(CaptureReaderTest, ReportsAMissingFile) {
  const std::string path = TempPath(".does-not-exist");
  CaptureReader reader = CaptureReader::Open(path);
  ASSERT_FALSE(reader.ok());
  EXPECT_FALSE(reader.Next().has_value());
  EXPECT_FALSE(reader.error()->record_index.has_value());
  EXPECT_NE(reader.error()->message.find(path), std::string::npos);
  EXPECT_NE(reader.error()->message.find("No such file"), std::string::npos)
      << reader.error()->message;
  EXPECT_EQ(reader.frame_count(), 0u);
}

TEST(CaptureReaderTest, RejectsATextFile) {
  const std::string path = TempPath(".txt");
  std::ofstream(path) << "USER alice\r\nPASS secret\r\nthis is not a capture\n";
  CaptureReader reader = CaptureReader::Open(path);
  ASSERT_FALSE(reader.ok());
  EXPECT_FALSE(reader.Next().has_value());
  EXPECT_NE(reader.error()->message.find(path), std::string::npos);
  EXPECT_NE(reader.error()->message.find("unknown file format"),
            std::string::npos)
      << reader.error()->message;
}

TEST(CaptureReaderTest, RejectsAnUnsupportedLinkTypeByName) {
  const std::string path = TempPath(".pcap");
  WriteCapture(path, DLT_IEEE802_11, {{1, std::vector<uint8_t>(24, 0)}});
  CaptureReader reader = CaptureReader::Open(path);
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.link_type(), DLT_IEEE802_11);
  EXPECT_NE(reader.error()->message.find("DLT_IEEE802_11"), std::string::npos)
      << reader.error()->message;
  EXPECT_FALSE(reader.Next().has_value());
}

Frame MakeFrame(int link_type, std::vector<uint8_t> bytes) {
  Frame frame;
  frame.link_type = link_type;
  frame.caplen = frame.wirelen = static_cast<uint32_t>(bytes.size());
  frame.bytes = std::move(bytes);
  return frame;
}

struct ConversionCase {
  const char* name;
  int link_type;
  std::vector<uint8_t> bytes;
  uint16_t ethertype;
  // Where the network-layer packet starts in the input.
  size_t payload_offset;
};

class ToEthernetTest : public testing::TestWithParam<ConversionCase> {};

TEST_P(ToEthernetTest, SetsEthertypeAndKeepsPayload) {
  const ConversionCase& c = GetParam();
  const EthernetResult result = ToEthernet(MakeFrame(c.link_type, c.bytes));
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(EthertypeOf(result.frame), c.ethertype);
  const std::vector<uint8_t> payload(
      c.bytes.begin() + static_cast<ptrdiff_t>(c.payload_offset),
      c.bytes.end());
  ASSERT_EQ(result.frame.size(), 14 + payload.size());
  EXPECT_EQ(std::vector<uint8_t>(result.frame.begin() + 14, result.frame.end()),
            payload);
}

std::vector<uint8_t> LoopbackHeader(uint32_t family, bool big_endian) {
  if (big_endian) {
    return {static_cast<uint8_t>(family >> 24),
            static_cast<uint8_t>(family >> 16),
            static_cast<uint8_t>(family >> 8), static_cast<uint8_t>(family)};
  }
  return {static_cast<uint8_t>(family), static_cast<uint8_t>(family >> 8),
          static_cast<uint8_t>(family >> 16),
          static_cast<uint8_t>(family >> 24)};
}

INSTANTIATE_TEST_SUITE_P(
    LinkTypes, ToEthernetTest,
    testing::Values(
        ConversionCase{"Ethernet", DLT_EN10MB, EthernetIpv4(), 0x0800, 14},
        ConversionCase{"Sll", DLT_LINUX_SLL, SllIpv4(), 0x0800, 16},
        ConversionCase{"Sll2", DLT_LINUX_SLL2, Sll2Ipv6(), 0x86DD, 20},
        ConversionCase{"RawIpv4", DLT_RAW, Ipv4Tcp(), 0x0800, 0},
        ConversionCase{"RawIpv6", DLT_RAW, Ipv6Header(), 0x86DD, 0},
        ConversionCase{"Ipv4", DLT_IPV4, Ipv4Tcp(), 0x0800, 0},
        ConversionCase{"Ipv6", DLT_IPV6, Ipv6Header(), 0x86DD, 0},
        ConversionCase{"NullLittleEndianIpv4", DLT_NULL,
                       Concat(LoopbackHeader(2, false), Ipv4Tcp()), 0x0800, 4},
        ConversionCase{"NullBigEndianIpv6Darwin", DLT_NULL,
                       Concat(LoopbackHeader(30, true), Ipv6Header()), 0x86DD,
                       4},
        ConversionCase{"NullLittleEndianIpv6FreeBsd", DLT_NULL,
                       Concat(LoopbackHeader(28, false), Ipv6Header()), 0x86DD,
                       4},
        ConversionCase{"LoopIpv4", DLT_LOOP,
                       Concat(LoopbackHeader(2, true), Ipv4Tcp()), 0x0800, 4},
        ConversionCase{"LoopIpv6", DLT_LOOP,
                       Concat(LoopbackHeader(24, true), Ipv6Header()), 0x86DD,
                       4}),
    [](const testing::TestParamInfo<ConversionCase>& info) {
      return std::string(info.param.name);
    });

TEST(ToEthernetCookedTest, CopiesLinkAddressAsSource) {
  const EthernetResult result = ToEthernet(MakeFrame(DLT_LINUX_SLL, SllIpv4()));
  ASSERT_TRUE(result.ok()) << result.error;
  const std::vector<uint8_t> destination(result.frame.begin(),
                                         result.frame.begin() + 6);
  const std::vector<uint8_t> source(result.frame.begin() + 6,
                                    result.frame.begin() + 12);
  EXPECT_EQ(destination, std::vector<uint8_t>(6, 0));
  EXPECT_EQ(source, (std::vector<uint8_t>{0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF}));
}

TEST(ToEthernetErrorsTest, NamesAnUnsupportedLinkType) {
  const EthernetResult result =
      ToEthernet(MakeFrame(DLT_IEEE802_11, std::vector<uint8_t>(30, 0)));
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(result.frame.empty());
  EXPECT_NE(result.error.find("DLT_IEEE802_11"), std::string::npos)
      << result.error;
}

TEST(ToEthernetErrorsTest, RejectsFramesShorterThanTheirLinkHeader) {
  EXPECT_FALSE(ToEthernet(MakeFrame(DLT_EN10MB, {1, 2, 3})).ok());
  EXPECT_FALSE(
      ToEthernet(MakeFrame(DLT_LINUX_SLL, std::vector<uint8_t>(15, 0))).ok());
  EXPECT_FALSE(
      ToEthernet(MakeFrame(DLT_LINUX_SLL2, std::vector<uint8_t>(19, 0))).ok());
  EXPECT_FALSE(ToEthernet(MakeFrame(DLT_NULL, {2, 0})).ok());
  EXPECT_FALSE(ToEthernet(MakeFrame(DLT_RAW, {})).ok());
}

TEST(ToEthernetErrorsTest, RejectsUnknownNetworkProtocols) {
  EXPECT_FALSE(ToEthernet(MakeFrame(DLT_RAW, {0x50, 0, 0, 0})).ok());
  EXPECT_FALSE(
      ToEthernet(MakeFrame(DLT_LOOP, Concat({0, 0, 0, 7}, Ipv4Tcp()))).ok());
  // An SLL protocol of 0x0004 means 802.2 LLC, which has no ethertype.
  std::vector<uint8_t> llc = SllIpv4();
  llc[14] = 0x00;
  llc[15] = 0x04;
  EXPECT_FALSE(ToEthernet(MakeFrame(DLT_LINUX_SLL, llc)).ok());
}

// The shared corpus lives outside the repository; without it these tests
// have nothing to check.
std::optional<fs::path> SharedDir() {
  const fs::path dir = POPGUARD_SHARED_DIR;
  if (!fs::is_directory(dir)) return std::nullopt;
  return dir;
}

TEST(CaptureCorpusTest, ReadsNdpiPop3Pcapng) {
  const std::optional<fs::path> shared = SharedDir();
  if (!shared.has_value()) GTEST_SKIP() << POPGUARD_SHARED_DIR " is absent";
  const fs::path path = *shared / "corpus/pcaps/ndpi_pop3.pcapng";
  CaptureReader reader = CaptureReader::Open(path.string());
  ASSERT_TRUE(reader.ok()) << reader.error()->message;
  const std::vector<Frame> frames = ReadAll(reader);
  EXPECT_TRUE(reader.ok()) << reader.error()->message;
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames.size(), reader.frame_count());
  EXPECT_EQ(frames.front().link_type, DLT_EN10MB);
  bool saw_pop3 = false;
  for (const Frame& frame : frames) {
    const EthernetResult ethernet = ToEthernet(frame);
    ASSERT_TRUE(ethernet.ok()) << ethernet.error;
    const auto ports = TcpPorts(ethernet.frame);
    saw_pop3 |=
        ports.has_value() && (ports->first == 110 || ports->second == 110);
  }
  EXPECT_TRUE(saw_pop3);
}

TEST(CaptureCorpusTest, ReadsEveryCorpusCaptureWithoutError) {
  const std::optional<fs::path> shared = SharedDir();
  if (!shared.has_value()) GTEST_SKIP() << POPGUARD_SHARED_DIR " is absent";
  std::vector<fs::path> paths;
  for (const auto& entry : fs::directory_iterator(*shared / "corpus/pcaps")) {
    if (entry.is_regular_file()) paths.push_back(entry.path());
  }
  const fs::path verify = *shared / "corpus/suricata-verify";
  if (fs::is_directory(verify)) {
    for (const auto& entry : fs::directory_iterator(verify)) {
      const fs::path input = entry.path() / "input.pcap";
      if (fs::is_regular_file(input)) paths.push_back(input);
    }
  }
  ASSERT_FALSE(paths.empty());
  for (const fs::path& path : paths) {
    SCOPED_TRACE(path.string());
    CaptureReader reader = CaptureReader::Open(path.string());
    ASSERT_TRUE(reader.ok()) << reader.error()->message;
    size_t converted = 0;
    while (std::optional<Frame> frame = reader.Next()) {
      const EthernetResult ethernet = ToEthernet(*frame);
      EXPECT_TRUE(ethernet.ok()) << ethernet.error;
      converted += ethernet.ok();
    }
    EXPECT_TRUE(reader.ok()) << reader.error()->message;
    EXPECT_GT(reader.frame_count(), 0u);
    EXPECT_EQ(converted, reader.frame_count());
    // The counts document the corpus in the test log.
    std::cout << path.string() << ": " << LinkTypeName(reader.link_type())
              << ", " << reader.frame_count() << " frames, "
              << reader.byte_count() << " bytes\n";
  }
}

}  // namespace
}  // namespace popguard::capture
