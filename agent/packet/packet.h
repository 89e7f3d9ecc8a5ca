// Userspace decoding of Ethernet frames down to the TCP payload, for
// `popguard-agent replay --no-prefilter`, which hands every TCP payload of a
// capture straight to the agent instead of going through the kernel programs.
//
// It classifies packets as bpf/lib/parse.h does, so a replay with and without
// the prefilter sees the same fragments and the same non-TCP traffic:
// Ethernet II with up to two VLAN tags (802.1Q and 802.1ad, in any
// combination), IPv4 with options, IPv6 with hop-by-hop, routing,
// destination-options and AH extension headers, TCP with options. Unlike the
// kernel, which the verifier holds to six, it follows any number of IPv6
// extension headers.
//
// Frames come from untrusted captures: every read is bounds-checked against
// the frame, and lengths in headers are believed only as far as the frame
// bears them out.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>

namespace popguard::packet {

enum class DecodeStatus {
  // A whole TCP segment: headers and all the payload the IP header claims.
  kTcp,
  // Not IPv4/IPv6, or IP not carrying TCP (a third VLAN tag, ARP, UDP, ESP...).
  kNotTcp,
  // A fragment of a TCP datagram: an IPv4 packet with MF set or a non-zero
  // offset, or an IPv6 packet with a fragment header whose next header is
  // TCP. Fragments of other protocols are kNotTcp.
  kFragment,
  // The frame ends before what its headers say it holds. See
  // Decoded::has_tcp for whether the TCP fields are usable.
  kTruncated,
  // A header contradicts itself or the headers before it (wrong IP version,
  // IHL or data offset under 5 words, a length too small for the headers).
  kMalformed,
};

struct TcpPacket {
  uint8_t family = 0;  // 4 or 6; 0 until an IP header has been read
  // IPv4 addresses take the first 4 bytes; the rest stays zero.
  std::array<uint8_t, 16> src{};
  std::array<uint8_t, 16> dst{};
  uint16_t src_port = 0;  // host byte order
  uint16_t dst_port = 0;
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint8_t flags = 0;  // low byte of the TCP flags: FIN=1 SYN=2 RST=4 PSH=8 ACK=16
  // Points into the decoded frame, which must outlive it. Excludes Ethernet
  // padding after the end of the IP datagram.
  std::span<const uint8_t> payload;
};

struct Decoded {
  DecodeStatus status = DecodeStatus::kMalformed;
  // Whether `tcp` holds a whole TCP header's fields: always for kTcp, and for
  // kTruncated when only payload is missing, in which case `tcp.payload` is
  // the part the frame holds (replay still delivers it, and counts the cut).
  // Otherwise only `tcp.family`, `tcp.src` and `tcp.dst` may be set, once the
  // IP header has been read (so a kFragment says whose fragment it is).
  bool has_tcp = false;
  TcpPacket tcp;
  // For kTruncated and kMalformed: what was wrong and at which byte offset of
  // the frame. Empty otherwise.
  std::string error;
};

// IPv4 total length 0 and IPv6 payload length 0 mean "to the end of the
// frame", as in captures of GSO/TSO (BIG TCP) packets and jumbograms.
Decoded DecodeEthernet(std::span<const uint8_t> frame);

}  // namespace popguard::packet
