// Ring-buffer records decoded for the agent: the packed head unpacked, the
// flow key restored from the record or from the flow's id, the kernel's
// 32-bit microsecond clock extended to nanoseconds.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <unordered_map>

#include "agent/prefilter/layout.h"

namespace popguard {

struct Event {
  uint64_t ts_ns = 0;  // pg clock, microsecond resolution
  pg_flow_key key{};
  uint32_t flow_id = 0;  // 0: the kernel held no state for the flow
  uint32_t seq = 0;      // TCP sequence number of data[0]
  uint32_t expected_seq = 0;  // PG_AN_GAP: the hole's first byte
  uint16_t len = 0;           // valid bytes in data[]
  uint8_t type = 0;           // enum pg_event_type
  uint8_t dir = 0;            // enum pg_dir
  uint8_t hook = 0;           // enum pg_hook
  uint8_t flags = 0;          // PG_EVF_*
  uint8_t anomaly = 0;        // enum pg_anomaly
  // The record carried the key: with a flow_id, the flow's first record.
  bool keyed = false;
  uint8_t data[PG_EVENT_DATA] = {};
};

// Every record the decoder could not turn into an event is counted here.
struct DecoderCounters {
  uint64_t records = 0;
  uint64_t malformed = 0;     // loss: shorter than its head and key, or too long
  uint64_t unknown_flow = 0;  // loss: an id neither remembered nor in pg_flows
  uint64_t flow_sweeps = 0;   // reads of pg_flows to find forgotten ids
};

// The kernel's microsecond clock keeps its low 32 bits (71 minutes); the
// event lies within half of that from `reference_ns`, a reading of the same
// clock taken when the record was read.
uint64_t ExtendClock(uint32_t ts_us, uint64_t reference_ns);

class EventDecoder {
 public:
  // Calls its argument with the id and key of every flow the kernel holds.
  using Sweep = std::function<void(const std::function<void(uint32_t, const pg_flow_key&)>&)>;

  // Remembers about `capacity` (and at most twice that many) flows by the
  // records that used them last; `sweep` finds the others (may be empty).
  explicit EventDecoder(size_t capacity, Sweep sweep = {});

  // `record` is exactly what the ring buffer holds: its size gives the
  // data's. False when the record is malformed or names a flow that cannot
  // be found.
  bool Decode(std::span<const uint8_t> record, uint64_t reference_ns, Event* out);

  const DecoderCounters& counters() const { return counters_; }

 private:
  const pg_flow_key* Find(uint32_t id);
  void Remember(uint32_t id, const pg_flow_key& key);

  // Two generations: a lookup that hits the old one moves the entry to the
  // current one; when the current one is full it becomes the old one. An
  // LRU approximation with no per-record list upkeep.
  size_t capacity_;
  std::unordered_map<uint32_t, pg_flow_key> current_;
  std::unordered_map<uint32_t, pg_flow_key> old_;
  Sweep sweep_;
  // A sweep finds every flow the kernel holds: until a new flow shows up
  // or the decoder lets flows go, another one would find nothing more.
  bool swept_since_new_flow_ = false;
  DecoderCounters counters_;
};

}  // namespace popguard
