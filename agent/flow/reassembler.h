// Reassembly of one direction of one TCP connection from the kernel's raw
// segment records (PG_EV_RAW in bpf/popguard.h): each record carries the
// sequence number of its first byte and up to PG_EVENT_DATA bytes, so one
// segment arrives as several pieces, and pieces of different segments may
// come in any order, repeated, or overlapping.
//
// Overlap policy: FIRST DATA WINS. Bytes kept for a sequence number are
// never replaced by a later copy, the default of most IDSes (Snort's
// "first" and Suricata's default). XDP and TC see a segment before TCP
// validates it, so the copy seen first may not be the one the receiver
// accepted (DESIGN.md, "Escalate when unsure"): whatever the policy, an
// overlap carrying different bytes is an evasion attempt, reported once
// through OnConflict with the sequence range of the overlap. Identical
// retransmissions are only counted.
//
// Memory is bounded: at most max_buffered out-of-order bytes are held, plus
// the last history_bytes delivered bytes (kept only to check late
// retransmissions for conflicts). When the buffer would exceed its limit,
// the earliest hole is given up; a hole the caller declares dead with
// SkipTo is given up too. Either way OnGap reports it, so the parser can
// resync, and never is a byte lost silently: every byte given to Add is
// delivered, buffered, matched against kept bytes, or counted as dropped.
//
// Sequence numbers compare as RFC 1982 serial numbers: within 2^31 of the
// next expected byte, "before" and "after" survive wrap-around at 2^32.
//
// Callbacks run synchronously inside Add and SkipTo and must not call back
// into the same reassembler.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>

namespace popguard::flow {

// RFC 1982 serial-number order for 32-bit sequence numbers. Undefined (as
// in the RFC) for numbers exactly 2^31 apart; here such a pair is "before".
constexpr bool SeqBefore(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) < 0; }

struct ReassemblerOptions {
  // Out-of-order bytes held waiting for a hole to fill.
  size_t max_buffered = 256 * 1024;
  // Delivered bytes remembered to check late retransmissions for conflicts
  // (up to twice as many are held, to amortize trimming).
  size_t history_bytes = 64 * 1024;
};

struct ReassemblerCounters {
  uint64_t bytes_delivered = 0;
  // Out-of-order bytes held right now.
  uint64_t bytes_buffered = 0;
  // Add calls whose bytes overlapped bytes already kept or delivered,
  // retransmissions and conflicts alike.
  uint64_t overlaps = 0;
  // OnConflict reports.
  uint64_t conflicts = 0;
  // OnGap reports and the total length of the holes they gave up.
  uint64_t gaps_skipped = 0;
  uint64_t gap_bytes = 0;
  // Holes given up because the buffer limit was reached (also counted in
  // gaps_skipped).
  uint64_t limit_gaps = 0;
  // Bytes that could be neither delivered nor checked: they arrived for
  // positions already passed (a hole given up to the limit or SkipTo, data
  // before a mid-stream start) and older than the delivered history.
  uint64_t bytes_dropped = 0;
};

class StreamReassembler {
 public:
  using DataSink = std::function<void(std::string_view bytes)>;
  // seq and len delimit the stream range concerned.
  using RangeSink = std::function<void(uint32_t seq, uint32_t len)>;

  explicit StreamReassembler(DataSink on_data, ReassemblerOptions options = {});

  // An overlap whose bytes differ from the ones kept (the kept ones win).
  void OnConflict(RangeSink sink) { on_conflict_ = std::move(sink); }
  // A hole given up; the next delivered byte is at seq + len.
  void OnGap(RangeSink sink) { on_gap_ = std::move(sink); }

  // Sets the sequence number of the first stream byte (the ISN + 1 of the
  // handshake). Only before any data: returns false, changing nothing, once
  // the stream has started.
  bool Start(uint32_t seq);

  // Accepts bytes starting at sequence number seq, in any order. Without
  // Start, the first call starts the stream at seq (see mid_stream()).
  // bytes.size() must be below 2^31, like any TCP segment.
  void Add(uint32_t seq, std::string_view bytes);

  // Gives up every hole before seq: buffered bytes before seq are delivered
  // and each hole is reported through OnGap. For when the caller knows the
  // missing bytes will never come (the kernel reported the loss, the flow
  // ended). Does nothing for a seq not after next_seq(), or before start.
  void SkipTo(uint32_t seq);

  // Gives up every hole, so all buffered bytes are delivered: the stream
  // has ended and nothing more will come.
  void Flush();

  bool started() const { return started_; }
  // The stream started at the first byte seen rather than at a Start, so
  // bytes before it may exist and the parser must expect to join mid-way.
  bool mid_stream() const { return mid_stream_; }
  // Sequence number of the next byte to deliver.
  uint32_t next_seq() const { return base_seq_ + static_cast<uint32_t>(next_off_); }
  const ReassemblerCounters& counters() const { return counters_; }

 private:
  // Stream offsets are 64-bit distances from the first stream byte, so the
  // buffer is ordered without wrap-around; a sequence number maps to the
  // offset within 2^31 of next_off_.
  int64_t OffsetOf(uint32_t seq) const;
  uint32_t SeqOf(int64_t off) const { return base_seq_ + static_cast<uint32_t>(off); }

  // Tracks one contiguous overlap of a new piece with kept bytes so one
  // overlap gives at most one conflict report even when it spans several
  // kept pieces.
  struct OverlapRun {
    int64_t begin = 0;
    int64_t end = 0;
    bool differs = false;
  };
  void NoteOverlap(OverlapRun& run, int64_t begin, std::string_view kept, std::string_view fresh);
  void FlushOverlap(OverlapRun& run);

  // Both return whether the bytes overlapped kept ones.
  bool CheckAgainstHistory(int64_t off, std::string_view bytes, OverlapRun& run);
  bool Buffer(int64_t off, std::string_view bytes, OverlapRun& run);
  void Deliver();
  void SkipBefore(int64_t target);
  void Emit(std::string_view bytes);

  DataSink on_data_;
  RangeSink on_conflict_;
  RangeSink on_gap_;
  ReassemblerOptions options_;
  ReassemblerCounters counters_;

  bool started_ = false;
  bool mid_stream_ = false;
  uint32_t base_seq_ = 0;
  int64_t next_off_ = 0;
  // Non-overlapping out-of-order pieces, all at or after next_off_.
  std::map<int64_t, std::string> pending_;
  // The delivered bytes just before next_off_, contiguous with it.
  std::string history_;
};

}  // namespace popguard::flow
