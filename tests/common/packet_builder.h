// Builds raw Ethernet frames for driving the XDP/TC programs through
// BPF_PROG_TEST_RUN. Everything a well-formed packet needs (lengths,
// checksums, header-length fields) is computed by Build(); the explicit
// override setters exist so tests can feed the parsers malformed input, and
// Build() never repairs them.
//
//   std::vector<uint8_t> frame = Packet()
//       .Eth()
//       .Vlan(100)
//       .IPv4("10.0.0.1", "10.0.0.2")
//       .Tcp(40000, 110).Seq(1).Ack(1).Flags(kAck | kPsh)
//       .Payload("USER alice\r\n")
//       .Build();
//
// Flow keeps sequence numbers for a whole TCP conversation.
#ifndef POPGUARD_TESTS_COMMON_PACKET_BUILDER_H_
#define POPGUARD_TESTS_COMMON_PACKET_BUILDER_H_

#include <arpa/inet.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace popguard::test {

using Mac = std::array<uint8_t, 6>;

// TCP flags, as in the low byte of the flags field.
inline constexpr uint8_t kFin = 0x01;
inline constexpr uint8_t kSyn = 0x02;
inline constexpr uint8_t kRst = 0x04;
inline constexpr uint8_t kPsh = 0x08;
inline constexpr uint8_t kAck = 0x10;
inline constexpr uint8_t kUrg = 0x20;

inline constexpr uint16_t kEthTypeIpv4 = 0x0800;
inline constexpr uint16_t kEthTypeIpv6 = 0x86dd;
inline constexpr uint16_t kEthTypeVlan = 0x8100;  // 802.1Q
inline constexpr uint16_t kEthTypeQinQ = 0x88a8;  // 802.1ad service tag

inline constexpr uint8_t kIpProtoTcp = 6;
inline constexpr uint8_t kIpProtoUdp = 17;
inline constexpr uint8_t kIpv6HopByHop = 0;
inline constexpr uint8_t kIpv6Routing = 43;
inline constexpr uint8_t kIpv6Fragment = 44;
inline constexpr uint8_t kIpv6DestOpts = 60;
inline constexpr uint8_t kIpv6Auth = 51;

inline constexpr size_t kEthHeaderLen = 14;
inline constexpr size_t kVlanTagLen = 4;
inline constexpr size_t kIpv4HeaderLen = 20;
inline constexpr size_t kIpv6HeaderLen = 40;
inline constexpr size_t kIpv6FragmentHeaderLen = 8;
inline constexpr size_t kTcpHeaderLen = 20;
inline constexpr size_t kUdpHeaderLen = 8;
// Both IHL and the TCP data offset are 4-bit counts of 32-bit words.
inline constexpr size_t kMaxOptionsLen = 40;

// Locally administered, so they can never collide with a real NIC.
inline constexpr Mac kDefaultClientMac = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
inline constexpr Mac kDefaultServerMac = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};

namespace internal {

inline void Append16(std::vector<uint8_t>& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}

inline void Append32(std::vector<uint8_t>& out, uint32_t v) {
  Append16(out, static_cast<uint16_t>(v >> 16));
  Append16(out, static_cast<uint16_t>(v));
}

inline void Store16(std::vector<uint8_t>& out, size_t offset, uint16_t v) {
  out[offset] = static_cast<uint8_t>(v >> 8);
  out[offset + 1] = static_cast<uint8_t>(v);
}

inline void AppendBytes(std::vector<uint8_t>& out,
                        std::span<const uint8_t> bytes) {
  out.insert(out.end(), bytes.begin(), bytes.end());
}

// Partial one's-complement sum; 64 bits so no payload size can overflow it
// before folding.
inline uint64_t SumBytes(std::span<const uint8_t> bytes, uint64_t sum = 0) {
  for (size_t i = 0; i + 1 < bytes.size(); i += 2) {
    sum += static_cast<uint64_t>(bytes[i]) << 8 | bytes[i + 1];
  }
  if (bytes.size() % 2 != 0) sum += static_cast<uint64_t>(bytes.back()) << 8;
  return sum;
}

inline uint16_t FoldChecksum(uint64_t sum) {
  while (sum >> 16 != 0) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

template <size_t N>
std::array<uint8_t, N> ParseAddress(std::string_view text, int family) {
  std::array<uint8_t, N> addr{};
  // inet_pton needs a NUL-terminated string, which a string_view may lack.
  const std::string copy(text);
  if (inet_pton(family, copy.c_str(), addr.data()) != 1) {
    throw std::invalid_argument("packet_builder: bad IP address '" + copy +
                                "'");
  }
  return addr;
}

// Zero padding is an End-of-Option-List for both IPv4 and TCP, so the
// padded list stays valid.
inline std::vector<uint8_t> PadOptions(std::vector<uint8_t> options) {
  options.resize((options.size() + 3) / 4 * 4, 0);
  if (options.size() > kMaxOptionsLen) {
    throw std::length_error("packet_builder: options exceed 40 bytes");
  }
  return options;
}

}  // namespace internal

class Packet {
 public:
  Packet& Eth(const Mac& src = kDefaultClientMac,
              const Mac& dst = kDefaultServerMac) {
    src_mac_ = src;
    dst_mac_ = dst;
    return *this;
  }

  // Each call adds one tag inside the previous ones. With two or more tags
  // the outermost is an 802.1ad service tag, as on a real QinQ trunk.
  Packet& Vlan(uint16_t id) {
    vlan_ids_.push_back(id & 0x0fff);
    return *this;
  }

  Packet& IPv4(std::string_view src, std::string_view dst) {
    l3_ = L3::kIpv4;
    src_addr_ = ToVector(internal::ParseAddress<4>(src, AF_INET));
    dst_addr_ = ToVector(internal::ParseAddress<4>(dst, AF_INET));
    return *this;
  }

  Packet& Ipv4Options(std::vector<uint8_t> options) {
    ipv4_options_ = internal::PadOptions(std::move(options));
    return *this;
  }

  Packet& Ipv4Id(uint16_t id) {
    ipv4_id_ = id;
    return *this;
  }

  Packet& FragmentOffset(uint16_t offset_in_8byte_units) {
    if (offset_in_8byte_units > 0x1fff) {
      throw std::out_of_range("packet_builder: fragment offset is 13 bits");
    }
    fragment_offset_ = offset_in_8byte_units;
    return *this;
  }

  Packet& MoreFragments(bool more) {
    more_fragments_ = more;
    return *this;
  }

  Packet& IPv6(std::string_view src, std::string_view dst) {
    l3_ = L3::kIpv6;
    src_addr_ = ToVector(internal::ParseAddress<16>(src, AF_INET6));
    dst_addr_ = ToVector(internal::ParseAddress<16>(dst, AF_INET6));
    return *this;
  }

  // Appends an extension header whose layout is "next header, length in
  // 8-octet units minus one, data" (hop-by-hop, routing, destination
  // options). `data` is everything after the two-byte prefix; it is padded
  // to an 8-octet boundary, with Pad1/PadN for the option-carrying headers
  // so the padding itself parses as options.
  Packet& Ipv6Ext(uint8_t next_header_type, std::vector<uint8_t> data) {
    if (next_header_type == kIpv6Fragment || next_header_type == kIpv6Auth) {
      // The fragment header has a fixed layout and AH counts 4-octet units;
      // computing their length the generic way would be silently wrong.
      throw std::invalid_argument(
          "packet_builder: use Ipv6Fragment(); AH is not supported");
    }
    const size_t total = (2 + data.size() + 7) / 8 * 8;
    if (total / 8 - 1 > 0xff) {
      throw std::length_error("packet_builder: extension header too long");
    }
    const size_t pad = total - 2 - data.size();
    const bool has_options =
        next_header_type == kIpv6HopByHop || next_header_type == kIpv6DestOpts;
    std::vector<uint8_t> body;
    body.push_back(static_cast<uint8_t>(total / 8 - 1));
    internal::AppendBytes(body, data);
    if (has_options && pad == 1) {
      body.push_back(0);  // Pad1
    } else if (has_options && pad >= 2) {
      body.push_back(1);  // PadN
      body.push_back(static_cast<uint8_t>(pad - 2));
      body.resize(body.size() + pad - 2, 0);
    } else {
      body.resize(body.size() + pad, 0);
    }
    ipv6_ext_.push_back({next_header_type, std::move(body)});
    return *this;
  }

  Packet& Ipv6Fragment(uint16_t offset_units, bool more, uint32_t id) {
    if (offset_units > 0x1fff) {
      throw std::out_of_range("packet_builder: fragment offset is 13 bits");
    }
    std::vector<uint8_t> body = {0};  // reserved
    internal::Append16(
        body, static_cast<uint16_t>(offset_units << 3 | (more ? 1 : 0)));
    internal::Append32(body, id);
    ipv6_ext_.push_back({kIpv6Fragment, std::move(body)});
    return *this;
  }

  Packet& Tcp(uint16_t sport, uint16_t dport) {
    l4_ = L4::kTcp;
    sport_ = sport;
    dport_ = dport;
    return *this;
  }

  Packet& Seq(uint32_t seq) {
    seq_ = seq;
    return *this;
  }

  Packet& Ack(uint32_t ack) {
    ack_ = ack;
    return *this;
  }

  // Defaults to kAck alone: most segments a test sends are mid-stream.
  Packet& Flags(uint8_t flags) {
    tcp_flags_ = flags;
    return *this;
  }

  Packet& Window(uint16_t window) {
    window_ = window;
    return *this;
  }

  Packet& TcpOptions(std::vector<uint8_t> options) {
    tcp_options_ = internal::PadOptions(std::move(options));
    return *this;
  }

  Packet& Udp(uint16_t sport, uint16_t dport) {
    l4_ = L4::kUdp;
    sport_ = sport;
    dport_ = dport;
    return *this;
  }

  // The IP payload verbatim, with no L4 header: what a non-first fragment
  // carries. The protocol field is TCP unless L4Proto() says otherwise.
  Packet& RawL4(std::vector<uint8_t> bytes) {
    l4_ = L4::kRaw;
    payload_ = std::move(bytes);
    return *this;
  }

  // Sets the IPv4 protocol / last IPv6 next-header value. The TCP/UDP
  // checksum still uses the real protocol, so a lying value is the only
  // defect in the packet.
  Packet& L4Proto(uint8_t proto) {
    l4_proto_ = proto;
    return *this;
  }

  Packet& Payload(std::string_view text) {
    payload_.assign(text.begin(), text.end());
    return *this;
  }

  Packet& Payload(std::vector<uint8_t> bytes) {
    payload_ = std::move(bytes);
    return *this;
  }

  // --- Deliberate defects; Build() writes them as given. ---

  // Keeps the first n bytes of the finished frame (after checksumming, so
  // the surviving bytes are exactly those of the complete packet).
  Packet& Truncate(size_t n) {
    truncate_ = n;
    return *this;
  }

  // Only the IHL field changes: the emitted header is still 20 bytes plus
  // options, and its checksum is valid for the bytes as written.
  Packet& BadIhl(uint8_t ihl) {
    bad_ihl_ = ihl & 0x0f;
    return *this;
  }

  // Only the data-offset field changes; the header bytes emitted do not.
  Packet& TcpDataOffset(uint8_t words) {
    tcp_data_offset_ = words & 0x0f;
    return *this;
  }

  // IPv4 total length or IPv6 payload length. 0 is what BIG TCP (and an
  // IPv6 jumbogram) puts there; it is also the only way to build a packet
  // whose real length does not fit the 16-bit field.
  Packet& IpTotalLength(uint16_t length) {
    ip_length_ = length;
    return *this;
  }

  std::vector<uint8_t> Build() {
    Validate();
    std::vector<uint8_t> l4 = BuildL4();
    const std::vector<uint8_t> l3 = l3_ == L3::kIpv4
                                        ? BuildIpv4Header(l4.size())
                                        : BuildIpv6Header(l4.size());
    FillL4Checksum(l4);

    std::vector<uint8_t> frame;
    internal::AppendBytes(frame, dst_mac_);
    internal::AppendBytes(frame, src_mac_);
    for (size_t i = 0; i < vlan_ids_.size(); ++i) {
      const bool service_tag = i == 0 && vlan_ids_.size() > 1;
      internal::Append16(frame, service_tag ? kEthTypeQinQ : kEthTypeVlan);
      internal::Append16(frame, vlan_ids_[i]);
    }
    internal::Append16(frame, l3_ == L3::kIpv4 ? kEthTypeIpv4 : kEthTypeIpv6);
    l3_offset_ = frame.size();
    internal::AppendBytes(frame, l3);
    l4_offset_ = frame.size();
    internal::AppendBytes(frame, l4);
    payload_offset_ = l4_offset_ + l4.size() - payload_.size();

    if (truncate_ && *truncate_ < frame.size()) frame.resize(*truncate_);
    built_ = true;
    return frame;
  }

  // Offsets into the last frame Build() returned, as laid out before any
  // Truncate(). For RawL4() the payload starts at the L4 offset.
  size_t L3Offset() const { return CheckBuilt(l3_offset_); }
  size_t L4Offset() const { return CheckBuilt(l4_offset_); }
  size_t PayloadOffset() const { return CheckBuilt(payload_offset_); }

 private:
  enum class L3 { kNone, kIpv4, kIpv6 };
  enum class L4 { kNone, kTcp, kUdp, kRaw };

  // Everything but the leading next-header byte, which depends on what
  // follows and is only known at Build().
  struct ExtHeader {
    uint8_t type;
    std::vector<uint8_t> body;
  };

  template <size_t N>
  static std::vector<uint8_t> ToVector(const std::array<uint8_t, N>& a) {
    return {a.begin(), a.end()};
  }

  size_t CheckBuilt(size_t offset) const {
    if (!built_) throw std::logic_error("packet_builder: call Build() first");
    return offset;
  }

  // Mixing families is a mistake in the test, not a malformed packet worth
  // building, so it fails loudly instead of emitting something surprising.
  void Validate() const {
    if (l3_ == L3::kNone) {
      throw std::logic_error("packet_builder: IPv4() or IPv6() required");
    }
    if (l4_ == L4::kNone) {
      throw std::logic_error(
          "packet_builder: Tcp(), Udp() or RawL4() required");
    }
    const bool v4 = l3_ == L3::kIpv4;
    if (v4 && !ipv6_ext_.empty()) {
      throw std::logic_error("packet_builder: IPv6 extension on IPv4");
    }
    if (!v4 && (!ipv4_options_.empty() || ipv4_id_ || fragment_offset_ ||
                more_fragments_ || bad_ihl_)) {
      throw std::logic_error("packet_builder: IPv4-only field on IPv6");
    }
    if (l4_ != L4::kTcp && (tcp_data_offset_ || !tcp_options_.empty())) {
      throw std::logic_error("packet_builder: TCP field without Tcp()");
    }
  }

  uint8_t NativeProto() const {
    return l4_ == L4::kUdp ? kIpProtoUdp : kIpProtoTcp;
  }

  std::vector<uint8_t> BuildL4() const {
    std::vector<uint8_t> l4;
    if (l4_ == L4::kTcp) {
      const size_t header_len = kTcpHeaderLen + tcp_options_.size();
      const uint8_t data_offset =
          tcp_data_offset_.value_or(static_cast<uint8_t>(header_len / 4));
      internal::Append16(l4, sport_);
      internal::Append16(l4, dport_);
      internal::Append32(l4, seq_);
      internal::Append32(l4, ack_);
      l4.push_back(static_cast<uint8_t>(data_offset << 4));
      l4.push_back(tcp_flags_);
      internal::Append16(l4, window_);
      internal::Append16(l4, 0);  // checksum, filled later
      internal::Append16(l4, 0);  // urgent pointer
      internal::AppendBytes(l4, tcp_options_);
    } else if (l4_ == L4::kUdp) {
      const size_t length = kUdpHeaderLen + payload_.size();
      if (length > 0xffff) {
        throw std::length_error("packet_builder: UDP datagram too long");
      }
      internal::Append16(l4, sport_);
      internal::Append16(l4, dport_);
      internal::Append16(l4, static_cast<uint16_t>(length));
      internal::Append16(l4, 0);  // checksum, filled later
    }
    internal::AppendBytes(l4, payload_);
    return l4;
  }

  uint16_t LengthField(size_t real_length) const {
    if (ip_length_) return *ip_length_;
    if (real_length > 0xffff) {
      throw std::length_error(
          "packet_builder: length overflows 16 bits; set IpTotalLength(0)");
    }
    return static_cast<uint16_t>(real_length);
  }

  std::vector<uint8_t> BuildIpv4Header(size_t l4_len) const {
    const size_t header_len = kIpv4HeaderLen + ipv4_options_.size();
    const uint8_t ihl = bad_ihl_.value_or(static_cast<uint8_t>(header_len / 4));
    std::vector<uint8_t> h;
    h.push_back(static_cast<uint8_t>(0x40 | ihl));
    h.push_back(0);  // DSCP/ECN
    internal::Append16(h, LengthField(header_len + l4_len));
    internal::Append16(h, ipv4_id_.value_or(0));
    internal::Append16(h, static_cast<uint16_t>((more_fragments_ ? 0x2000 : 0) |
                                                fragment_offset_.value_or(0)));
    h.push_back(64);  // TTL
    h.push_back(l4_proto_.value_or(NativeProto()));
    internal::Append16(h, 0);  // checksum, filled below
    internal::AppendBytes(h, src_addr_);
    internal::AppendBytes(h, dst_addr_);
    internal::AppendBytes(h, ipv4_options_);
    internal::Store16(h, 10, internal::FoldChecksum(internal::SumBytes(h)));
    return h;
  }

  std::vector<uint8_t> BuildIpv6Header(size_t l4_len) const {
    const uint8_t last = l4_proto_.value_or(NativeProto());
    std::vector<uint8_t> ext;
    for (size_t i = 0; i < ipv6_ext_.size(); ++i) {
      ext.push_back(i + 1 < ipv6_ext_.size() ? ipv6_ext_[i + 1].type : last);
      internal::AppendBytes(ext, ipv6_ext_[i].body);
    }
    std::vector<uint8_t> h;
    internal::Append32(h, 0x60000000);  // version 6, no class, no flow label
    internal::Append16(h, LengthField(ext.size() + l4_len));
    h.push_back(ipv6_ext_.empty() ? last : ipv6_ext_.front().type);
    h.push_back(64);  // hop limit
    internal::AppendBytes(h, src_addr_);
    internal::AppendBytes(h, dst_addr_);
    internal::AppendBytes(h, ext);
    return h;
  }

  // The pseudo-header takes the IPv6 destination field as is: with a
  // routing header that is not the final destination, which tests that care
  // must account for themselves.
  void FillL4Checksum(std::vector<uint8_t>& l4) const {
    if (l4_ == L4::kRaw) return;  // a fragment's checksum covers bytes we lack
    uint64_t sum = internal::SumBytes(src_addr_);
    sum = internal::SumBytes(dst_addr_, sum);
    sum += NativeProto();
    sum += l4.size();  // one's-complement sum of its 16-bit halves
    sum = internal::SumBytes(l4, sum);
    uint16_t checksum = internal::FoldChecksum(sum);
    // For UDP, zero means "no checksum" (and is illegal over IPv6).
    if (l4_ == L4::kUdp && checksum == 0) checksum = 0xffff;
    internal::Store16(l4, l4_ == L4::kTcp ? 16 : 6, checksum);
  }

  Mac src_mac_ = kDefaultClientMac;
  Mac dst_mac_ = kDefaultServerMac;
  std::vector<uint16_t> vlan_ids_;

  L3 l3_ = L3::kNone;
  std::vector<uint8_t> src_addr_;
  std::vector<uint8_t> dst_addr_;
  std::vector<uint8_t> ipv4_options_;
  std::optional<uint16_t> ipv4_id_;
  std::optional<uint16_t> fragment_offset_;
  bool more_fragments_ = false;
  std::vector<ExtHeader> ipv6_ext_;

  L4 l4_ = L4::kNone;
  uint16_t sport_ = 0;
  uint16_t dport_ = 0;
  uint32_t seq_ = 0;
  uint32_t ack_ = 0;
  uint8_t tcp_flags_ = kAck;
  uint16_t window_ = 65535;
  std::vector<uint8_t> tcp_options_;
  std::optional<uint8_t> l4_proto_;
  std::vector<uint8_t> payload_;

  std::optional<size_t> truncate_;
  std::optional<uint8_t> bad_ihl_;
  std::optional<uint8_t> tcp_data_offset_;
  std::optional<uint16_t> ip_length_;

  bool built_ = false;
  size_t l3_offset_ = 0;
  size_t l4_offset_ = 0;
  size_t payload_offset_ = 0;
};

// One TCP connection between a client and a server. Sequence numbers are
// kept as offsets from ISN + 1, so the handshake is optional (mid-stream
// tests just start sending) and client_isn / server_isn may be changed at
// any time before the first frame.
class Flow {
 public:
  Flow(std::string client_ip, uint16_t client_port, std::string server_ip,
       uint16_t server_port, bool v6 = false)
      : client_ip_(std::move(client_ip)),
        server_ip_(std::move(server_ip)),
        client_port_(client_port),
        server_port_(server_port),
        v6_(v6) {}

  uint32_t client_isn = 1000;
  uint32_t server_isn = 5000;
  std::vector<uint16_t> vlan_ids;  // outermost first, on every frame

  std::vector<uint8_t> Syn() { return Emit(true, client_isn, 0, kSyn, {}); }

  std::vector<uint8_t> SynAck() {
    return Emit(false, server_isn, ClientNextSeq(), kSyn | kAck, {});
  }

  // The client acknowledging everything the server has sent so far.
  std::vector<uint8_t> Ack() {
    return Emit(true, ClientNextSeq(), ServerNextSeq(), kAck, {});
  }

  // Sends at the next sequence number and advances it by the payload
  // length, plus one for SYN or FIN.
  std::vector<uint8_t> ToServer(std::string_view payload,
                                uint8_t flags = kAck | kPsh) {
    std::vector<uint8_t> frame = ToServerAt(client_sent_, payload, flags);
    client_sent_ += SequenceSpace(payload, flags);
    return frame;
  }

  std::vector<uint8_t> ToClient(std::string_view payload,
                                uint8_t flags = kAck | kPsh) {
    std::vector<uint8_t> frame = ToClientAt(server_sent_, payload, flags);
    server_sent_ += SequenceSpace(payload, flags);
    return frame;
  }

  // Sends at ISN + 1 + offset without advancing, for retransmissions,
  // overlaps and gaps. The ack is the current one.
  std::vector<uint8_t> ToServerAt(uint32_t offset, std::string_view payload,
                                  uint8_t flags = kAck | kPsh) {
    return Emit(true, client_isn + 1 + offset, ServerNextSeq(), flags, payload);
  }

  std::vector<uint8_t> ToClientAt(uint32_t offset, std::string_view payload,
                                  uint8_t flags = kAck | kPsh) {
    return Emit(false, server_isn + 1 + offset, ClientNextSeq(), flags,
                payload);
  }

  // Moves a side's next sequence number on by `bytes` already sent with
  // the *At forms (out of order, in pieces).
  void Advance(bool to_server, uint32_t bytes) {
    (to_server ? client_sent_ : server_sent_) += bytes;
  }

  std::vector<uint8_t> FinToServer() { return ToServer({}, kFin | kAck); }
  std::vector<uint8_t> FinToClient() { return ToClient({}, kFin | kAck); }

  // The next sequence number each side will send, which is also what the
  // other side acknowledges.
  uint32_t ClientNextSeq() const { return client_isn + 1 + client_sent_; }
  uint32_t ServerNextSeq() const { return server_isn + 1 + server_sent_; }

  // Where the TCP payload starts in the last frame returned.
  size_t PayloadOffset() const {
    if (!payload_offset_)
      throw std::logic_error("packet_builder: no frame yet");
    return *payload_offset_;
  }

 private:
  static uint32_t SequenceSpace(std::string_view payload, uint8_t flags) {
    return static_cast<uint32_t>(payload.size()) + ((flags & kSyn) ? 1 : 0) +
           ((flags & kFin) ? 1 : 0);
  }

  std::vector<uint8_t> Emit(bool to_server, uint32_t seq, uint32_t ack,
                            uint8_t flags, std::string_view payload) {
    Packet p;
    if (to_server) {
      p.Eth(kDefaultClientMac, kDefaultServerMac);
    } else {
      p.Eth(kDefaultServerMac, kDefaultClientMac);
    }
    for (uint16_t id : vlan_ids) p.Vlan(id);
    const std::string& src = to_server ? client_ip_ : server_ip_;
    const std::string& dst = to_server ? server_ip_ : client_ip_;
    if (v6_) {
      p.IPv6(src, dst);
    } else {
      p.IPv4(src, dst);
    }
    p.Tcp(to_server ? client_port_ : server_port_,
          to_server ? server_port_ : client_port_)
        .Seq(seq)
        // A real stack leaves the field zero when ACK is not set.
        .Ack((flags & kAck) ? ack : 0)
        .Flags(flags)
        .Payload(payload);
    std::vector<uint8_t> frame = p.Build();
    payload_offset_ = p.PayloadOffset();
    return frame;
  }

  std::string client_ip_;
  std::string server_ip_;
  uint16_t client_port_;
  uint16_t server_port_;
  bool v6_;
  uint32_t client_sent_ = 0;
  uint32_t server_sent_ = 0;
  std::optional<size_t> payload_offset_;
};

}  // namespace popguard::test

#endif  // POPGUARD_TESTS_COMMON_PACKET_BUILDER_H_
