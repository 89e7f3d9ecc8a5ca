#include "agent/packet/packet.h"

#include <algorithm>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>

namespace popguard::packet {
namespace {

constexpr uint16_t kEthTypeIpv4 = 0x0800;
constexpr uint16_t kEthTypeIpv6 = 0x86dd;
constexpr uint16_t kEthTypeVlan = 0x8100;  // 802.1Q
constexpr uint16_t kEthTypeQinQ = 0x88a8;  // 802.1ad
constexpr int kMaxVlanTags = 2;

constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kIpv6HopByHop = 0;
constexpr uint8_t kIpv6Routing = 43;
constexpr uint8_t kIpv6Fragment = 44;
constexpr uint8_t kIpv6Auth = 51;
constexpr uint8_t kIpv6DestOpts = 60;

constexpr size_t kEthHeaderLen = 14;
constexpr size_t kVlanTagLen = 4;
constexpr size_t kIpv4HeaderLen = 20;
constexpr size_t kIpv6HeaderLen = 40;
constexpr size_t kIpv6FragmentHeaderLen = 8;
constexpr size_t kTcpHeaderLen = 20;

const char* Ipv6ExtName(uint8_t type) {
  switch (type) {
    case kIpv6HopByHop:
      return "IPv6 hop-by-hop options header";
    case kIpv6Routing:
      return "IPv6 routing header";
    case kIpv6Auth:
      return "IPv6 authentication header";
    default:
      return "IPv6 destination options header";
  }
}

std::string At(const char* what, size_t offset) {
  return std::string(what) + " at offset " + std::to_string(offset);
}

// One decode. Each Decode* step either sets the final status itself or
// hands on to the next layer.
class Decoder {
 public:
  explicit Decoder(std::span<const uint8_t> frame) : frame_(frame) {}

  Decoded Decode() && {
    DecodeFrame();
    return std::move(out_);
  }

 private:
  // Callers check the bytes with Need first.
  uint16_t Load16(size_t offset) const {
    return static_cast<uint16_t>(frame_[offset] << 8 | frame_[offset + 1]);
  }
  uint32_t Load32(size_t offset) const {
    return static_cast<uint32_t>(Load16(offset)) << 16 | Load16(offset + 2);
  }

  void Fail(DecodeStatus status, std::string error) {
    out_.status = status;
    out_.error = std::move(error);
  }

  // Whether the `length` bytes of `what` at `offset` lie inside the IP
  // datagram (once its header has bounded it) and inside the frame. A header
  // reaching past the datagram is malformed whatever the capture kept; one
  // reaching only past the frame was cut by the capture.
  bool Need(const char* what, size_t offset, size_t length) {
    if (datagram_end_ && (offset > *datagram_end_ || length > *datagram_end_ - offset)) {
      Fail(DecodeStatus::kMalformed,
           At(what, offset) + " needs " + std::to_string(length) + " bytes but the " +
               length_field_ + " ends the datagram at offset " + std::to_string(*datagram_end_));
      return false;
    }
    if (offset > frame_.size() || length > frame_.size() - offset) {
      Fail(DecodeStatus::kTruncated, At(what, offset) + " needs " + std::to_string(length) +
                                         " bytes but the frame ends at offset " +
                                         std::to_string(frame_.size()));
      return false;
    }
    return true;
  }

  void CopyAddresses(size_t src_offset, size_t length) {
    std::copy_n(frame_.begin() + src_offset, length, out_.tcp.src.begin());
    std::copy_n(frame_.begin() + src_offset + length, length, out_.tcp.dst.begin());
  }

  void DecodeFrame() {
    if (!Need("Ethernet header", 0, kEthHeaderLen)) return;
    uint16_t ethertype = Load16(12);
    size_t offset = kEthHeaderLen;
    for (int tags = 0;
         tags < kMaxVlanTags && (ethertype == kEthTypeVlan || ethertype == kEthTypeQinQ); ++tags) {
      if (!Need("VLAN tag", offset, kVlanTagLen)) return;
      ethertype = Load16(offset + 2);
      offset += kVlanTagLen;
    }
    if (ethertype == kEthTypeIpv4) {
      DecodeIpv4(offset);
    } else if (ethertype == kEthTypeIpv6) {
      DecodeIpv6(offset);
    } else {
      out_.status = DecodeStatus::kNotTcp;
    }
  }

  void DecodeIpv4(size_t offset) {
    if (!Need("IPv4 header", offset, kIpv4HeaderLen)) return;
    const int version = frame_[offset] >> 4;
    const size_t header_len = static_cast<size_t>(frame_[offset] & 0x0f) * 4;
    const uint16_t total_len = Load16(offset + 2);
    if (version != 4) {
      Fail(DecodeStatus::kMalformed,
           At("IPv4 header", offset) + " has IP version " + std::to_string(version));
      return;
    }
    if (header_len < kIpv4HeaderLen) {
      Fail(DecodeStatus::kMalformed, At("IPv4 header", offset) + " has IHL " +
                                         std::to_string(header_len / 4) +
                                         " words, under the minimum of 5");
      return;
    }
    if (total_len != 0 && total_len < header_len) {
      Fail(DecodeStatus::kMalformed, At("IPv4 header", offset) + " has total length " +
                                         std::to_string(total_len) + ", shorter than its own " +
                                         std::to_string(header_len) + " bytes");
      return;
    }
    out_.tcp.family = 4;
    CopyAddresses(offset + 12, 4);
    length_field_ = "IPv4 total length";
    if (total_len != 0) datagram_end_ = offset + total_len;
    if (!Need("IPv4 header with options", offset, header_len)) return;
    if (frame_[offset + 9] != kProtoTcp) {
      out_.status = DecodeStatus::kNotTcp;
      return;
    }
    if ((Load16(offset + 6) & 0x3fff) != 0) {  // MF or a fragment offset
      out_.status = DecodeStatus::kFragment;
      return;
    }
    DecodeTcp(offset + header_len);
  }

  void DecodeIpv6(size_t offset) {
    if (!Need("IPv6 header", offset, kIpv6HeaderLen)) return;
    const int version = frame_[offset] >> 4;
    if (version != 6) {
      Fail(DecodeStatus::kMalformed,
           At("IPv6 header", offset) + " has IP version " + std::to_string(version));
      return;
    }
    out_.tcp.family = 6;
    CopyAddresses(offset + 8, 16);
    length_field_ = "IPv6 payload length";
    const uint16_t payload_len = Load16(offset + 4);
    if (payload_len != 0) datagram_end_ = offset + kIpv6HeaderLen + payload_len;
    uint8_t next = frame_[offset + 6];
    offset += kIpv6HeaderLen;
    // Ends: every extension header is at least 8 bytes, and Need stops the
    // walk at the end of the frame.
    for (;;) {
      switch (next) {
        case kProtoTcp:
          DecodeTcp(offset);
          return;
        case kIpv6Fragment:
          if (!Need("IPv6 fragment header", offset, kIpv6FragmentHeaderLen)) return;
          out_.status =
              frame_[offset] == kProtoTcp ? DecodeStatus::kFragment : DecodeStatus::kNotTcp;
          return;
        case kIpv6HopByHop:
        case kIpv6Routing:
        case kIpv6DestOpts:
        case kIpv6Auth: {
          const char* name = Ipv6ExtName(next);
          if (!Need(name, offset, 2)) return;
          // AH counts its length in 4-octet units less 2 (RFC 4302), the
          // others in 8-octet units less 1 (RFC 8200).
          const size_t units = frame_[offset + 1];
          const size_t length = next == kIpv6Auth ? (units + 2) * 4 : (units + 1) * 8;
          if (!Need(name, offset, length)) return;
          next = frame_[offset];
          offset += length;
          break;
        }
        default:
          out_.status = DecodeStatus::kNotTcp;
          return;
      }
    }
  }

  void DecodeTcp(size_t offset) {
    if (!Need("TCP header", offset, kTcpHeaderLen)) return;
    const size_t header_len = static_cast<size_t>(frame_[offset + 12] >> 4) * 4;
    if (header_len < kTcpHeaderLen) {
      Fail(DecodeStatus::kMalformed, At("TCP header", offset) + " has data offset " +
                                         std::to_string(header_len / 4) +
                                         " words, under the minimum of 5");
      return;
    }
    if (!Need("TCP header with options", offset, header_len)) return;
    TcpPacket& tcp = out_.tcp;
    tcp.src_port = Load16(offset);
    tcp.dst_port = Load16(offset + 2);
    tcp.seq = Load32(offset + 4);
    tcp.ack = Load32(offset + 8);
    tcp.flags = frame_[offset + 13];
    out_.has_tcp = true;
    const size_t payload_offset = offset + header_len;
    const size_t end = datagram_end_.value_or(frame_.size());
    if (end > frame_.size()) {
      tcp.payload = frame_.subspan(payload_offset);
      Fail(DecodeStatus::kTruncated, std::string("the ") + length_field_ +
                                         " ends the datagram at offset " + std::to_string(end) +
                                         " but the frame ends at offset " +
                                         std::to_string(frame_.size()));
      return;
    }
    tcp.payload = frame_.subspan(payload_offset, end - payload_offset);
    out_.status = DecodeStatus::kTcp;
  }

  std::span<const uint8_t> frame_;
  // Where the IP datagram ends by its length field, possibly past the end of
  // the frame; unset before the IP header and when the field is 0 ("to the
  // end of the frame").
  std::optional<size_t> datagram_end_;
  // Names that field in messages.
  const char* length_field_ = "";
  Decoded out_;
};

}  // namespace

Decoded DecodeEthernet(std::span<const uint8_t> frame) { return Decoder(frame).Decode(); }

}  // namespace popguard::packet
