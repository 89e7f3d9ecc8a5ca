#include "agent/capture/capture.h"

#include <pcap/pcap.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <string_view>
#include <utility>

namespace popguard::capture {
namespace {

constexpr size_t kEthernetHeaderLength = 14;
constexpr size_t kEthernetTypeOffset = 12;
constexpr size_t kSllHeaderLength = 16;
constexpr size_t kSll2HeaderLength = 20;
constexpr size_t kLoopbackHeaderLength = 4;

constexpr uint16_t kEthertypeIpv4 = 0x0800;
constexpr uint16_t kEthertypeIpv6 = 0x86DD;
// Below this an Ethernet type/length field is an 802.3 length, so cooked
// captures use such values for non-Ethernet-II protocols.
constexpr uint16_t kMinimumEthertype = 0x0600;

using MacAddress = std::array<uint8_t, 6>;

uint16_t ReadBig16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}

uint32_t ReadBig32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
         static_cast<uint32_t>(p[2]) << 8 | p[3];
}

uint32_t ByteSwap32(uint32_t v) {
  return (v >> 24) | ((v >> 8) & 0xFF00) | ((v << 8) & 0xFF0000) | (v << 24);
}

std::string Hex16(uint16_t v) {
  char text[8];
  std::snprintf(text, sizeof(text), "0x%04x", v);
  return text;
}

// BSD loopback headers hold the capturing OS's socket address family, whose
// IPv6 value differs between systems, so every known one is accepted.
std::optional<uint16_t> EthertypeForFamily(uint32_t family) {
  switch (family) {
    case 2:
      return kEthertypeIpv4;
    case 10:  // Linux
    case 24:  // NetBSD, OpenBSD, BSD/OS
    case 28:  // FreeBSD
    case 30:  // macOS
      return kEthertypeIpv6;
    default:
      return std::nullopt;
  }
}

// Raw IP captures carry no protocol field, so the IP version nibble decides.
std::optional<uint16_t> EthertypeForIpVersion(const uint8_t* payload,
                                              size_t length) {
  if (length == 0) return std::nullopt;
  switch (payload[0] >> 4) {
    case 4:
      return kEthertypeIpv4;
    case 6:
      return kEthertypeIpv6;
    default:
      return std::nullopt;
  }
}

EthernetResult ConversionError(const Frame& frame, const std::string& reason) {
  return {{}, LinkTypeName(frame.link_type) + " frame: " + reason};
}

EthernetResult Synthesise(const Frame& frame, size_t header_length,
                          uint16_t ethertype, const MacAddress& source) {
  EthernetResult result;
  result.frame.resize(kEthernetHeaderLength + frame.bytes.size() -
                      header_length);
  // Destination stays zero: nothing downstream routes on it.
  std::copy(source.begin(), source.end(), result.frame.begin() + 6);
  result.frame[kEthernetTypeOffset] = static_cast<uint8_t>(ethertype >> 8);
  result.frame[kEthernetTypeOffset + 1] = static_cast<uint8_t>(ethertype);
  std::copy(frame.bytes.begin() + static_cast<ptrdiff_t>(header_length),
            frame.bytes.end(), result.frame.begin() + kEthernetHeaderLength);
  return result;
}

EthernetResult FromCooked(const Frame& frame, size_t header_length,
                          uint16_t protocol, uint8_t address_length,
                          const uint8_t* address) {
  if (protocol < kMinimumEthertype) {
    return ConversionError(
        frame, "protocol " + Hex16(protocol) + " is not an ethertype");
  }
  MacAddress source{};
  if (address_length == source.size()) {
    std::copy(address, address + source.size(), source.begin());
  }
  return Synthesise(frame, header_length, protocol, source);
}

}  // namespace

bool IsSupportedLinkType(int link_type) {
  switch (link_type) {
    case DLT_EN10MB:
    case DLT_LINUX_SLL:
    case DLT_LINUX_SLL2:
    case DLT_RAW:
    case DLT_IPV4:
    case DLT_IPV6:
    case DLT_NULL:
    case DLT_LOOP:
      return true;
    default:
      return false;
  }
}

std::string LinkTypeName(int link_type) {
  const char* name = pcap_datalink_val_to_name(link_type);
  std::string text = name != nullptr ? std::string("DLT_") + name : "DLT_?";
  return text + " (" + std::to_string(link_type) + ")";
}

void CaptureReader::PcapCloser::operator()(pcap* handle) const {
  pcap_close(handle);
}

CaptureReader::CaptureReader(std::string path) : path_(std::move(path)) {}
CaptureReader::CaptureReader(CaptureReader&&) noexcept = default;
CaptureReader& CaptureReader::operator=(CaptureReader&&) noexcept = default;
CaptureReader::~CaptureReader() = default;

CaptureReader CaptureReader::Open(const std::string& path) {
  CaptureReader reader(path);
  char errbuf[PCAP_ERRBUF_SIZE] = "";
  // Nanoseconds so pcapng and nanosecond pcap keep their full resolution.
  reader.handle_.reset(pcap_open_offline_with_tstamp_precision(
      path.c_str(), PCAP_TSTAMP_PRECISION_NANO, errbuf));
  if (reader.handle_ == nullptr) {
    // libpcap names the path in some messages and not others.
    std::string_view reason = errbuf;
    if (const std::string prefix = path + ": "; reason.starts_with(prefix)) {
      reason.remove_prefix(prefix.size());
    }
    reader.Fail(std::nullopt, std::nullopt, std::string(reason));
    return reader;
  }
  reader.link_type_ = pcap_datalink(reader.handle_.get());
  if (!IsSupportedLinkType(reader.link_type_)) {
    reader.Fail(std::nullopt, std::nullopt,
                "unsupported link type " + LinkTypeName(reader.link_type_));
  }
  return reader;
}

std::optional<Frame> CaptureReader::Next() {
  if (handle_ == nullptr || finished_ || error_.has_value()) {
    return std::nullopt;
  }
  // libpcap reports no offsets, but it reads through this stdio stream, so
  // its position before the read is where the next record starts.
  std::optional<int64_t> offset;
  if (FILE* file = pcap_file(handle_.get()); file != nullptr) {
    if (const long position = std::ftell(file); position >= 0) {
      offset = position;
    }
  }
  pcap_pkthdr* header = nullptr;
  const u_char* data = nullptr;
  const int status = pcap_next_ex(handle_.get(), &header, &data);
  if (status == 1) {
    Frame frame;
    // With nanosecond precision libpcap stores nanoseconds in tv_usec.
    frame.timestamp_ns =
        static_cast<int64_t>(header->ts.tv_sec) * 1'000'000'000 +
        header->ts.tv_usec;
    frame.link_type = link_type_;
    frame.caplen = header->caplen;
    frame.wirelen = header->len;
    frame.truncated = header->caplen < header->len;
    frame.bytes.assign(data, data + header->caplen);
    ++frame_count_;
    byte_count_ += header->caplen;
    return frame;
  }
  finished_ = true;
  // PCAP_ERROR_BREAK is how pcap_next_ex reports a clean end of file.
  if (status != PCAP_ERROR_BREAK) {
    Fail(frame_count_, offset, pcap_geterr(handle_.get()));
  }
  return std::nullopt;
}

void CaptureReader::Fail(std::optional<uint64_t> record_index,
                         std::optional<int64_t> byte_offset,
                         const std::string& reason) {
  std::string message = path_;
  if (record_index.has_value()) {
    message += ": record " + std::to_string(*record_index);
    if (byte_offset.has_value()) {
      message += " at byte offset " + std::to_string(*byte_offset);
    }
  }
  message += ": " + reason;
  error_ = CaptureError{path_, record_index, byte_offset, std::move(message)};
}

EthernetResult ToEthernet(const Frame& frame) {
  const uint8_t* bytes = frame.bytes.data();
  const size_t length = frame.bytes.size();
  const auto too_short = [&frame, length](size_t needed) {
    return ConversionError(
        frame, std::to_string(length) + " bytes, shorter than its " +
                   std::to_string(needed) + "-byte link header");
  };
  switch (frame.link_type) {
    case DLT_EN10MB:
      if (length < kEthernetHeaderLength) {
        return too_short(kEthernetHeaderLength);
      }
      return {frame.bytes, {}};
    case DLT_LINUX_SLL:
      if (length < kSllHeaderLength) return too_short(kSllHeaderLength);
      // pkttype, hatype, halen, 8-byte address, protocol.
      return FromCooked(frame, kSllHeaderLength, ReadBig16(bytes + 14),
                        static_cast<uint8_t>(ReadBig16(bytes + 4)), bytes + 6);
    case DLT_LINUX_SLL2:
      if (length < kSll2HeaderLength) return too_short(kSll2HeaderLength);
      // protocol, reserved, ifindex, hatype, pkttype, halen, 8-byte address.
      return FromCooked(frame, kSll2HeaderLength, ReadBig16(bytes), bytes[11],
                        bytes + 12);
    case DLT_RAW:
    case DLT_IPV4:
    case DLT_IPV6: {
      const std::optional<uint16_t> ethertype =
          EthertypeForIpVersion(bytes, length);
      if (!ethertype.has_value()) {
        return ConversionError(frame, "payload is neither IPv4 nor IPv6");
      }
      return Synthesise(frame, 0, *ethertype, {});
    }
    case DLT_NULL:
    case DLT_LOOP: {
      if (length < kLoopbackHeaderLength) {
        return too_short(kLoopbackHeaderLength);
      }
      uint32_t family = ReadBig32(bytes);
      // DLT_NULL is in the capturing host's byte order; families are small,
      // so a value with high bits set was written little-endian.
      if (frame.link_type == DLT_NULL && (family & 0xFFFF0000) != 0) {
        family = ByteSwap32(family);
      }
      const std::optional<uint16_t> ethertype = EthertypeForFamily(family);
      if (!ethertype.has_value()) {
        return ConversionError(frame, "address family " +
                                          std::to_string(family) +
                                          " is neither IPv4 nor IPv6");
      }
      return Synthesise(frame, kLoopbackHeaderLength, *ethertype, {});
    }
    default:
      return {{}, "unsupported link type " + LinkTypeName(frame.link_type)};
  }
}

}  // namespace popguard::capture
