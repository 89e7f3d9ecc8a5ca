// The agent's per-flow state, keyed like the kernel's flow map. Bounded in
// two ways, both counted and both reported to an optional callback so the
// owner can flush what a flow still holds (e.g. StreamReassembler::SkipTo)
// instead of losing it silently: least recently used flows are evicted at
// capacity, and flows idle for idle_timeout_ns are expired.
//
// Time is whatever the caller passes (the kernel's pg clock: capture time in
// replay, monotonic live), never read here, so replays behave like live
// runs. Timestamps going backwards are treated as no time passing.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <unordered_map>
#include <utility>

#include "agent/flow/flow_key.h"
#include "bpf/popguard.h"

namespace popguard::flow {

struct FlowTableOptions {
  // Like the kernel map by default; 0 means unbounded.
  size_t capacity = PG_MAX_FLOWS;
  uint64_t idle_timeout_ns = 600'000'000'000;  // POP3 servers' 10 minutes
  uint64_t hash_seed = 0;
};

struct FlowTableCounters {
  uint64_t inserted = 0;
  uint64_t evicted_capacity = 0;
  uint64_t expired_idle = 0;
};

enum class EvictReason { kCapacity, kIdle };

template <typename State>
class FlowTable {
 public:
  using EvictSink = std::function<void(const pg_flow_key& key, State& state, EvictReason)>;

  explicit FlowTable(FlowTableOptions options = {})
      : options_(options), index_(0, FlowKeyHash{options.hash_seed}, FlowKeyEqual{}) {}

  // Called with each flow just before it is evicted or expired; must not
  // use the table.
  void OnEvict(EvictSink sink) { on_evict_ = std::move(sink); }

  // The state of the flow, made (value-initialized) if absent or expired;
  // marks the flow used at now_ns. *inserted says whether it was made.
  State& FindOrInsert(const pg_flow_key& key, uint64_t now_ns, bool* inserted = nullptr) {
    Advance(now_ns);
    if (State* state = Touch(key)) {
      if (inserted != nullptr) *inserted = false;
      return *state;
    }
    if (options_.capacity > 0 && lru_.size() >= options_.capacity) {
      Evict(std::prev(lru_.end()), EvictReason::kCapacity);
    }
    lru_.push_front(Entry{key, State{}, now_});
    index_.emplace(key, lru_.begin());
    ++counters_.inserted;
    if (inserted != nullptr) *inserted = true;
    return lru_.front().state;
  }

  // The state of the flow, or nullptr if absent or expired; marks it used.
  State* Find(const pg_flow_key& key, uint64_t now_ns) {
    Advance(now_ns);
    return Touch(key);
  }

  // Removes a flow the caller is done with (it ended); no callback.
  bool Erase(const pg_flow_key& key) {
    auto found = index_.find(key);
    if (found == index_.end()) return false;
    lru_.erase(found->second);
    index_.erase(found);
    return true;
  }

  // Expires every flow idle for idle_timeout_ns at now_ns; returns how many.
  // Lookups expire only the flow they hit, so call this periodically.
  size_t ExpireIdle(uint64_t now_ns) {
    Advance(now_ns);
    size_t expired = 0;
    while (!lru_.empty() && Idle(lru_.back())) {
      Evict(std::prev(lru_.end()), EvictReason::kIdle);
      ++expired;
    }
    return expired;
  }

  size_t size() const { return lru_.size(); }
  const FlowTableCounters& counters() const { return counters_; }

  // Visits flows from most to least recently used, without touching them.
  template <typename Visit>
  void ForEach(Visit&& visit) {
    for (Entry& entry : lru_) visit(entry.key, entry.state);
  }

 private:
  struct Entry {
    pg_flow_key key;
    State state;
    uint64_t last_used_ns;
  };
  using Lru = std::list<Entry>;

  // Stamps come from a clock that never goes back, so the LRU list is also
  // ordered by stamp and idle flows gather at its tail.
  void Advance(uint64_t now_ns) { now_ = std::max(now_, now_ns); }

  bool Idle(const Entry& entry) const {
    return now_ - entry.last_used_ns >= options_.idle_timeout_ns;
  }

  State* Touch(const pg_flow_key& key) {
    auto found = index_.find(key);
    if (found == index_.end()) return nullptr;
    typename Lru::iterator entry = found->second;
    if (Idle(*entry)) {
      Evict(entry, EvictReason::kIdle);
      return nullptr;
    }
    entry->last_used_ns = now_;
    lru_.splice(lru_.begin(), lru_, entry);
    return &entry->state;
  }

  void Evict(typename Lru::iterator entry, EvictReason reason) {
    if (reason == EvictReason::kCapacity) {
      ++counters_.evicted_capacity;
    } else {
      ++counters_.expired_idle;
    }
    if (on_evict_) on_evict_(entry->key, entry->state, reason);
    index_.erase(entry->key);
    lru_.erase(entry);
  }

  FlowTableOptions options_;
  FlowTableCounters counters_;
  EvictSink on_evict_;
  uint64_t now_ = 0;
  Lru lru_;
  std::unordered_map<pg_flow_key, typename Lru::iterator, FlowKeyHash, FlowKeyEqual> index_;
};

}  // namespace popguard::flow
