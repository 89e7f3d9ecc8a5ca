// Hashing and equality for the kernel's flow key (bpf/popguard.h), so the
// agent's tables find a flow under exactly the key the kernel reported it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "bpf/popguard.h"

namespace popguard::flow {

// Every byte of the key takes part, padding included: the kernel zeroes
// the padding, and comparing it too keeps equality and hashing consistent
// with the kernel map, which compares keys bytewise.
struct FlowKeyEqual {
  bool operator()(const pg_flow_key& a, const pg_flow_key& b) const;
};

// Peers choose addresses and ports, so a fixed hash would let them pile
// flows into one bucket; a per-table seed (FlowTableOptions::hash_seed)
// makes collisions hard to precompute.
struct FlowKeyHash {
  uint64_t seed = 0;
  size_t operator()(const pg_flow_key& key) const;
};

}  // namespace popguard::flow
