// libFuzzer entry for the stream reassembler. The input is a script: the
// first byte picks the options (bit 0: a tiny buffer limit, so the limit
// path runs; bit 1: a tiny history) and the data mode (bit 2: bytes come
// from the input, else from a fixed reference stream), then records of a
// 16-bit offset from the stream start, a length byte, an op byte (bit 0:
// SkipTo the offset instead of Add) and, in input mode, the bytes. The
// stream starts just before the sequence-number wrap so it runs across it.
// Oracles besides the sanitizers: every delivered byte is the first byte
// added at its position while that position was still ahead (first data
// wins), so reference data never conflicts; deliveries and gaps tile the
// stream exactly; the buffer never exceeds its limit.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "agent/flow/reassembler.h"

namespace {

using popguard::flow::ReassemblerOptions;
using popguard::flow::StreamReassembler;

constexpr uint32_t kStart = 0xffffff00u;

char Reference(uint32_t pos) { return static_cast<char>(pos * 131 + 7); }

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t knobs = data[0];
  const bool from_input = knobs & 4;
  ReassemblerOptions options;
  if (knobs & 1) options.max_buffered = 1 + (knobs >> 3) * 8;
  if (knobs & 2) options.history_bytes = knobs >> 5;

  // first[p]: the byte that must be delivered at stream position p, or -1.
  std::vector<int> first(65536 + 256, -1);
  uint32_t delivered_to = 0;  // stream position after the last output
  StreamReassembler stream(
      [&](std::string_view bytes) {
        for (char c : bytes) {
          Check(first[delivered_to] == static_cast<uint8_t>(c));
          ++delivered_to;
        }
        Check(stream.next_seq() == kStart + delivered_to);
      },
      options);
  uint64_t conflicts = 0;
  stream.OnConflict([&](uint32_t, uint32_t len) {
    Check(len > 0);
    ++conflicts;
  });
  stream.OnGap([&](uint32_t seq, uint32_t len) {
    Check(seq == kStart + delivered_to && len > 0);
    delivered_to += len;
  });
  stream.Start(kStart);

  size_t at = 1;
  std::string piece;
  while (at + 4 <= size) {
    const uint32_t off = data[at] | data[at + 1] << 8;
    const size_t len = data[at + 2];
    const bool skip = data[at + 3] & 1;
    at += 4;
    if (skip) {
      stream.SkipTo(kStart + off);
      continue;
    }
    piece.clear();
    for (size_t i = 0; i < len; ++i) {
      if (from_input) {
        if (at >= size) break;
        piece.push_back(static_cast<char>(data[at++]));
      } else {
        piece.push_back(Reference(off + static_cast<uint32_t>(i)));
      }
    }
    const uint32_t ahead = stream.next_seq() - kStart;
    for (size_t i = 0; i < piece.size(); ++i) {
      if (off + i >= ahead && first[off + i] < 0) {
        first[off + i] = static_cast<uint8_t>(piece[i]);
      }
    }
    stream.Add(kStart + off, piece);
    Check(stream.counters().bytes_buffered <= options.max_buffered);
  }
  Check(stream.counters().conflicts == conflicts);
  if (!from_input) Check(conflicts == 0);
  Check(stream.counters().bytes_delivered + stream.counters().gap_bytes == delivered_to);
  return 0;
}
