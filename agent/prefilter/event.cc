#include "agent/prefilter/event.h"

#include <cstring>

namespace popguard {

uint64_t ExtendClock(uint32_t ts_us, uint64_t reference_ns) {
  const uint64_t ref_us = reference_ns / 1000;
  const auto behind = static_cast<int32_t>(static_cast<uint32_t>(ref_us) - ts_us);
  return (ref_us - static_cast<int64_t>(behind)) * 1000;
}

EventDecoder::EventDecoder(size_t capacity, Sweep sweep)
    : capacity_(capacity ? capacity : 1), sweep_(std::move(sweep)) {}

void EventDecoder::Remember(uint32_t id, const pg_flow_key& key) {
  if (current_.size() >= capacity_ && !current_.contains(id)) {
    old_ = std::move(current_);
    current_.clear();
    // Flows were let go: a sweep may find some again.
    swept_since_new_flow_ = false;
  }
  current_[id] = key;
}

const pg_flow_key* EventDecoder::Find(uint32_t id) {
  if (auto it = current_.find(id); it != current_.end()) return &it->second;
  if (auto it = old_.find(id); it != old_.end()) {
    const pg_flow_key key = it->second;
    old_.erase(it);
    Remember(id, key);
    return &current_.at(id);
  }
  if (!sweep_ || swept_since_new_flow_) return nullptr;
  counters_.flow_sweeps++;
  // The kernel holds at most as many flows as the decoder remembers, so
  // they all fit in the current generation and the old one.
  sweep_([&](uint32_t flow_id, const pg_flow_key& key) {
    if (flow_id) Remember(flow_id, key);
  });
  swept_since_new_flow_ = true;
  if (auto it = current_.find(id); it != current_.end()) return &it->second;
  if (auto it = old_.find(id); it != old_.end()) return &it->second;
  return nullptr;
}

bool EventDecoder::Decode(std::span<const uint8_t> record, uint64_t reference_ns, Event* out) {
  counters_.records++;
  pg_event_head head;
  if (record.size() < sizeof(head)) {
    counters_.malformed++;
    return false;
  }
  std::memcpy(&head, record.data(), sizeof(head));
  const bool has_key = head.type & PG_EVH_KEY;
  const size_t key_size = has_key ? sizeof(pg_flow_key) : 0;
  if (record.size() < sizeof(head) + key_size ||
      record.size() > sizeof(head) + key_size + PG_EVENT_DATA) {
    counters_.malformed++;
    return false;
  }
  const size_t len = record.size() - sizeof(head) - key_size;
  if (has_key) {
    std::memcpy(&out->key, record.data() + sizeof(head), sizeof(out->key));
    if (head.flow_id) {
      if (!current_.contains(head.flow_id) && !old_.contains(head.flow_id)) {
        swept_since_new_flow_ = false;
      }
      Remember(head.flow_id, out->key);
    }
  } else if (const pg_flow_key* key = head.flow_id ? Find(head.flow_id) : nullptr) {
    out->key = *key;
  } else {
    counters_.unknown_flow++;
    return false;
  }
  out->ts_ns = ExtendClock(head.ts_us, reference_ns);
  out->flow_id = head.flow_id;
  out->keyed = has_key;
  out->type = head.type & PG_EVH_TYPE_MASK;
  out->seq = head.seq;
  out->expected_seq = out->type == PG_EV_ANOMALY && PG_EVH_ANOMALY(head.meta) == PG_AN_GAP ? head.seq : 0;
  out->len = static_cast<uint16_t>(len);
  out->flags = head.flags;
  out->dir = PG_EVH_DIR(head.meta);
  out->hook = PG_EVH_HOOK(head.meta);
  out->anomaly = PG_EVH_ANOMALY(head.meta);
  std::memcpy(out->data, record.data() + sizeof(head) + key_size, len);
  return true;
}

}  // namespace popguard
