#include "pcap_writer.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "agent/capture/capture.h"
#include "agent/packet/packet.h"
#include "packet_builder.h"

namespace popguard::test {
namespace {

// A fresh path per test, so tests cannot see each other's files.
std::string TempPath() {
  const testing::TestInfo* info = testing::UnitTest::GetInstance()->current_test_info();
  return testing::TempDir() + "popguard_pcap_writer_" + info->name() + ".pcap";
}

std::vector<capture::Frame> ReadAll(const std::string& path) {
  capture::CaptureReader reader = capture::CaptureReader::Open(path);
  std::vector<capture::Frame> frames;
  while (std::optional<capture::Frame> frame = reader.Next()) frames.push_back(std::move(*frame));
  EXPECT_TRUE(reader.ok()) << reader.error()->message;
  EXPECT_EQ(reader.link_type(), 1);
  return frames;
}

TEST(PcapWriterTest, FramesAndTimestampsRoundTrip) {
  Flow flow("10.0.0.1", 40000, "10.0.0.2", 110);
  flow.vlan_ids = {7};
  const std::vector<std::vector<uint8_t>> written = {flow.Syn(), flow.SynAck(), flow.Ack(),
                                                     flow.ToClient("+OK ready\r\n"),
                                                     flow.ToServer("USER alice\r\n")};
  const std::string path = TempPath();
  WritePcap(path, written);

  const std::vector<capture::Frame> read = ReadAll(path);
  ASSERT_EQ(read.size(), written.size());
  for (size_t i = 0; i < read.size(); ++i) {
    SCOPED_TRACE("frame " + std::to_string(i));
    EXPECT_EQ(read[i].bytes, written[i]);
    EXPECT_EQ(read[i].timestamp_ns,
              1'700'000'000'000'000'000 + static_cast<int64_t>(i) * 1'000'000);
    EXPECT_EQ(read[i].link_type, 1);
    EXPECT_EQ(read[i].wirelen, written[i].size());
    EXPECT_FALSE(read[i].truncated);
  }
  const packet::Decoded last = packet::DecodeEthernet(read.back().bytes);
  ASSERT_EQ(last.status, packet::DecodeStatus::kTcp) << last.error;
  EXPECT_EQ(std::string(last.tcp.payload.begin(), last.tcp.payload.end()), "USER alice\r\n");
}

TEST(PcapWriterTest, KeepsNanoseconds) {
  const std::vector<uint8_t> frame =
      Packet().Eth().IPv4("10.0.0.1", "10.0.0.2").Tcp(40000, 110).Build();
  const std::string path = TempPath();
  PcapWriter writer(path);
  writer.Write(1'700'000'000'123'456'789, frame);
  writer.Write(1'700'000'001'000'000'001, frame);
  writer.Close();

  const std::vector<capture::Frame> read = ReadAll(path);
  ASSERT_EQ(read.size(), 2u);
  EXPECT_EQ(read[0].timestamp_ns, 1'700'000'000'123'456'789);
  EXPECT_EQ(read[1].timestamp_ns, 1'700'000'001'000'000'001);
}

TEST(PcapWriterTest, NoFramesIsAValidCapture) {
  const std::string path = TempPath();
  WritePcap(path, {});
  EXPECT_TRUE(ReadAll(path).empty());
}

TEST(PcapWriterTest, FrameLongerThanSnaplenIsCutLikeACapture) {
  std::vector<uint8_t> frame(kPcapSnaplen + 100);
  for (size_t i = 0; i < frame.size(); ++i) frame[i] = static_cast<uint8_t>(i * 31);
  const std::string path = TempPath();
  WritePcap(path, {frame});

  const std::vector<capture::Frame> read = ReadAll(path);
  ASSERT_EQ(read.size(), 1u);
  EXPECT_TRUE(read[0].truncated);
  EXPECT_EQ(read[0].caplen, kPcapSnaplen);
  EXPECT_EQ(read[0].wirelen, frame.size());
  EXPECT_EQ(read[0].bytes, std::vector<uint8_t>(frame.begin(), frame.begin() + kPcapSnaplen));
}

TEST(PcapWriterTest, FailureNamesThePath) {
  const std::string path = testing::TempDir() + "popguard-no-such-dir/out.pcap";
  try {
    PcapWriter writer(path);
    FAIL() << "no error creating " << path;
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(PcapWriterTest, RejectsTimestampsTheFormatCannotHold) {
  PcapWriter writer(TempPath());
  const std::vector<uint8_t> frame(60);
  EXPECT_THROW(writer.Write(-1, frame), std::out_of_range);
  EXPECT_THROW(writer.Write(int64_t{1} << 32 << 30, frame), std::out_of_range);
  writer.Close();
}

}  // namespace
}  // namespace popguard::test
