// libFuzzer entry for the Ethernet-to-TCP decoder. The input is one frame.
// Besides the sanitizers, the result must keep the promises of packet.h:
//   - the payload lies inside the frame (it points into it, never a copy),
//     and is empty unless has_tcp;
//   - kTcp implies has_tcp; has_tcp implies kTcp or kTruncated, and an IP
//     family of 4 or 6; a kFragment knows its family too;
//   - error is non-empty exactly for kTruncated and kMalformed;
//   - IPv4 addresses leave bytes 4..15 zero; no TCP fields without has_tcp;
// and two cheap oracles: decoding is deterministic, and cutting the last
// byte of a frame whose TCP payload was found either removes the payload's
// last byte (when the payload ran to the end of the frame) or changes
// nothing (the byte was Ethernet padding).
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "agent/packet/packet.h"

namespace {

using popguard::packet::Decoded;
using popguard::packet::DecodeEthernet;
using popguard::packet::DecodeStatus;

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

bool Inside(std::span<const uint8_t> part, std::span<const uint8_t> whole) {
  if (part.empty()) return true;
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

void CheckInvariants(const Decoded& d, std::span<const uint8_t> frame) {
  const bool failed = d.status == DecodeStatus::kTruncated || d.status == DecodeStatus::kMalformed;
  Check(d.error.empty() == !failed);
  Check(Inside(d.tcp.payload, frame));
  Check(d.tcp.family == 0 || d.tcp.family == 4 || d.tcp.family == 6);
  if (d.status == DecodeStatus::kTcp) Check(d.has_tcp);
  if (d.status == DecodeStatus::kFragment) Check(d.tcp.family == 4 || d.tcp.family == 6);
  if (d.has_tcp) {
    Check(d.status == DecodeStatus::kTcp || d.status == DecodeStatus::kTruncated);
    Check(d.tcp.family == 4 || d.tcp.family == 6);
  } else {
    Check(d.tcp.payload.empty());
    Check(d.tcp.src_port == 0 && d.tcp.dst_port == 0 && d.tcp.seq == 0 && d.tcp.ack == 0 &&
          d.tcp.flags == 0);
  }
  if (d.tcp.family == 4) {
    for (size_t i = 4; i < 16; ++i) Check(d.tcp.src[i] == 0 && d.tcp.dst[i] == 0);
  }
  if (d.tcp.family == 0) {
    for (size_t i = 0; i < 16; ++i) Check(d.tcp.src[i] == 0 && d.tcp.dst[i] == 0);
  }
}

bool SameResult(const Decoded& a, const Decoded& b) {
  return a.status == b.status && a.has_tcp == b.has_tcp && a.tcp.family == b.tcp.family &&
         a.tcp.src == b.tcp.src && a.tcp.dst == b.tcp.dst && a.tcp.src_port == b.tcp.src_port &&
         a.tcp.dst_port == b.tcp.dst_port && a.tcp.seq == b.tcp.seq && a.tcp.ack == b.tcp.ack &&
         a.tcp.flags == b.tcp.flags;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A buffer of exactly the input's size, so any read past the frame is an
  // ASan report.
  const std::vector<uint8_t> frame(data, data + size);
  const Decoded d = DecodeEthernet(frame);
  CheckInvariants(d, frame);

  const Decoded again = DecodeEthernet(frame);
  Check(SameResult(d, again) && d.error == again.error &&
        d.tcp.payload.data() == again.tcp.payload.data() &&
        d.tcp.payload.size() == again.tcp.payload.size());

  // An empty payload at the very end of the frame has no byte to lose: the
  // cut would reach into the TCP header.
  const size_t offset = d.has_tcp ? static_cast<size_t>(d.tcp.payload.data() - frame.data()) : 0;
  const bool ran_to_end = d.has_tcp && offset + d.tcp.payload.size() == frame.size();
  if (d.has_tcp && (!d.tcp.payload.empty() || !ran_to_end)) {
    const std::vector<uint8_t> cut(frame.begin(), frame.end() - 1);
    const Decoded shorter = DecodeEthernet(cut);
    CheckInvariants(shorter, cut);
    Check(shorter.has_tcp);
    Check(shorter.status == DecodeStatus::kTcp || shorter.status == DecodeStatus::kTruncated);
    // Same headers, so the same fields and the payload at the same offset.
    Check(shorter.tcp.family == d.tcp.family && shorter.tcp.src == d.tcp.src &&
          shorter.tcp.dst == d.tcp.dst && shorter.tcp.src_port == d.tcp.src_port &&
          shorter.tcp.dst_port == d.tcp.dst_port && shorter.tcp.seq == d.tcp.seq &&
          shorter.tcp.ack == d.tcp.ack && shorter.tcp.flags == d.tcp.flags);
    if (!shorter.tcp.payload.empty()) {
      Check(static_cast<size_t>(shorter.tcp.payload.data() - cut.data()) == offset);
    }
    if (ran_to_end) {
      Check(shorter.tcp.payload.size() == d.tcp.payload.size() - 1);
      Check(shorter.status == DecodeStatus::kTruncated || d.status == DecodeStatus::kTcp);
    } else {
      Check(SameResult(shorter, d) && shorter.tcp.payload.size() == d.tcp.payload.size());
    }
  }
  return 0;
}
