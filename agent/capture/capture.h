// Reading pcap and pcapng captures for `popguard-agent replay`, and turning
// their frames into Ethernet frames, because the kernel programs the replay
// feeds only understand Ethernet.
//
// Nothing here throws: a capture that cannot be opened or is damaged part way
// leaves an error value on the reader, after every frame read before the
// damage has been handed out, so replay can process what there is and still
// exit non-zero.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

// Only the pointer crosses this header; <pcap/pcap.h> stays in capture.cc.
struct pcap;

namespace popguard::capture {

// One captured record, in the link layer of its capture.
struct Frame {
  // Since the Unix epoch; microsecond captures are scaled up by libpcap.
  int64_t timestamp_ns = 0;
  // The DLT_* value libpcap reports for the capture.
  int link_type = 0;
  // Bytes stored in the capture; `bytes.size() == caplen`.
  uint32_t caplen = 0;
  // Bytes the frame had on the wire.
  uint32_t wirelen = 0;
  // The capture's snaplen cut the frame short (caplen < wirelen), so headers
  // or payload near the end may be missing.
  bool truncated = false;
  std::vector<uint8_t> bytes;
};

// Why reading a capture stopped before its end, or never started.
struct CaptureError {
  std::string path;
  // Zero-based index of the record that could not be read; absent when the
  // file could not be opened at all.
  std::optional<uint64_t> record_index;
  // Where in the file reading of that record began; absent when unknown.
  std::optional<int64_t> byte_offset;
  // Human-readable, naming the path, record index and offset when known.
  std::string message;
};

// The link types ToEthernet can convert, i.e. the ones replay accepts.
bool IsSupportedLinkType(int link_type);

// "DLT_EN10MB (1)", for error messages.
std::string LinkTypeName(int link_type);

// Reads one capture file, frame by frame, in file order.
class CaptureReader {
 public:
  // Never fails outright: if the file is missing, is not a capture, or has a
  // link type ToEthernet cannot convert, the reader has error() set and
  // Next() returns nothing.
  static CaptureReader Open(const std::string& path);

  CaptureReader(CaptureReader&&) noexcept;
  CaptureReader& operator=(CaptureReader&&) noexcept;
  ~CaptureReader();

  // The next frame, or nullopt once the capture is exhausted or damaged;
  // error() tells the two apart.
  std::optional<Frame> Next();

  // Set when reading ended early (or never began).
  const std::optional<CaptureError>& error() const { return error_; }
  bool ok() const { return !error_.has_value(); }

  const std::string& path() const { return path_; }
  // The capture's DLT_* value; -1 when the file could not be opened.
  int link_type() const { return link_type_; }
  // Frames handed out so far.
  uint64_t frame_count() const { return frame_count_; }
  // Sum of their caplen: what was actually read, not what was on the wire.
  uint64_t byte_count() const { return byte_count_; }

 private:
  struct PcapCloser {
    void operator()(pcap* handle) const;
  };

  explicit CaptureReader(std::string path);
  void Fail(std::optional<uint64_t> record_index,
            std::optional<int64_t> byte_offset, const std::string& reason);

  std::string path_;
  std::unique_ptr<pcap, PcapCloser> handle_;
  int link_type_ = -1;
  bool finished_ = false;
  uint64_t frame_count_ = 0;
  uint64_t byte_count_ = 0;
  std::optional<CaptureError> error_;
};

// The outcome of ToEthernet: a frame, or why there is none.
struct EthernetResult {
  std::vector<uint8_t> frame;
  std::string error;
  bool ok() const { return error.empty(); }
};

// Rewrites a frame of any supported link type as an Ethernet II frame: an
// Ethernet frame is copied as is; otherwise the link header is replaced by a
// synthesised 14-byte Ethernet header carrying the payload's ethertype, with
// zero MAC addresses except that a cooked (SLL, SLL2) capture's 6-byte link
// address becomes the source. Fails on unsupported link types (naming the
// DLT), on frames too short for their link header, and on payloads whose
// network protocol cannot be told.
EthernetResult ToEthernet(const Frame& frame);

}  // namespace popguard::capture
