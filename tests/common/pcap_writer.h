// Writes classic pcap files (little-endian, nanosecond timestamps, Ethernet)
// so tests can hand `popguard-agent replay` and the capture reader frames
// built with packet_builder.h:
//
//   WritePcap(path, {flow.Syn(), flow.SynAck(), flow.Ack()});
//
// Written byte by byte rather than through libpcap, so tests that use it
// need no libpcap and the layout on disk is exactly what is written here.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace popguard::test {

inline constexpr uint32_t kPcapMagicNanoseconds = 0xa1b23c4d;
inline constexpr uint32_t kPcapLinkTypeEthernet = 1;  // DLT_EN10MB
// libpcap's own maximum; it rejects records longer than this.
inline constexpr uint32_t kPcapSnaplen = 262144;

// Where WritePcap starts its clock, and how far apart it puts frames.
inline constexpr int64_t kPcapEpochNs = 1'700'000'000'000'000'000;
inline constexpr int64_t kPcapFrameIntervalNs = 1'000'000;

// Throws std::runtime_error naming the path when the file cannot be written.
// The destructor closes the file too, but cannot report a failure to: call
// Close() to learn whether everything reached the file.
class PcapWriter {
 public:
  // Creates (or truncates) the file and writes the file header.
  explicit PcapWriter(std::string path)
      : path_(std::move(path)), file_(std::fopen(path_.c_str(), "wb")) {
    if (!file_) Fail("cannot create");
    Put32(kPcapMagicNanoseconds);
    Put16(2);  // version 2.4
    Put16(4);
    Put32(0);  // thiszone
    Put32(0);  // sigfigs
    Put32(kPcapSnaplen);
    Put32(kPcapLinkTypeEthernet);
  }

  // A frame longer than the snaplen is stored cut to it, with its full
  // length as the wire length, as a capture would store it.
  void Write(int64_t timestamp_ns, std::span<const uint8_t> frame) {
    if (!file_) throw std::logic_error("pcap_writer: write after Close() to " + path_);
    // The file stores unsigned 32-bit seconds.
    if (timestamp_ns < 0 || timestamp_ns / 1'000'000'000 > UINT32_MAX) {
      throw std::out_of_range("pcap_writer: timestamp " + std::to_string(timestamp_ns) +
                              " ns does not fit a pcap record, writing " + path_);
    }
    if (frame.size() > UINT32_MAX) {
      throw std::length_error("pcap_writer: frame too long for a pcap record, writing " + path_);
    }
    const auto wire_len = static_cast<uint32_t>(frame.size());
    const uint32_t cap_len = wire_len < kPcapSnaplen ? wire_len : kPcapSnaplen;
    Put32(static_cast<uint32_t>(timestamp_ns / 1'000'000'000));
    Put32(static_cast<uint32_t>(timestamp_ns % 1'000'000'000));
    Put32(cap_len);
    Put32(wire_len);
    PutBytes(frame.data(), cap_len);
  }

  // Flushes and closes the file; throws if anything written was lost.
  void Close() {
    if (!file_) return;
    const bool ok = std::fclose(file_.release()) == 0;
    if (!ok) Fail("cannot finish writing");
  }

  const std::string& path() const { return path_; }

 private:
  struct FileCloser {
    void operator()(std::FILE* file) const { std::fclose(file); }
  };

  [[noreturn]] void Fail(const std::string& what) const {
    const int error = errno;
    throw std::runtime_error("pcap_writer: " + what + " " + path_ +
                             (error != 0 ? std::string(": ") + std::strerror(error) : ""));
  }

  void PutBytes(const void* data, size_t length) {
    // errno is only meaningful for the call that failed.
    errno = 0;
    if (length != 0 && std::fwrite(data, 1, length, file_.get()) != length) {
      Fail("cannot write to");
    }
  }

  void Put16(uint16_t v) {
    const uint8_t bytes[] = {static_cast<uint8_t>(v), static_cast<uint8_t>(v >> 8)};
    PutBytes(bytes, sizeof(bytes));
  }

  void Put32(uint32_t v) {
    Put16(static_cast<uint16_t>(v));
    Put16(static_cast<uint16_t>(v >> 16));
  }

  std::string path_;
  std::unique_ptr<std::FILE, FileCloser> file_;
};

// Writes frames kPcapFrameIntervalNs apart, the first at kPcapEpochNs, so
// frame i has timestamp kPcapEpochNs + i * kPcapFrameIntervalNs.
inline void WritePcap(const std::string& path, const std::vector<std::vector<uint8_t>>& frames) {
  PcapWriter writer(path);
  int64_t timestamp_ns = kPcapEpochNs;
  for (const std::vector<uint8_t>& frame : frames) {
    writer.Write(timestamp_ns, frame);
    timestamp_ns += kPcapFrameIntervalNs;
  }
  writer.Close();
}

}  // namespace popguard::test
