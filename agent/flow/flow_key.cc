#include "agent/flow/flow_key.h"

#include <cstring>
#include <type_traits>

namespace popguard::flow {

// Bytewise comparison is only equality if the compiler adds no padding of
// its own.
static_assert(sizeof(pg_flow_key) == 40);
static_assert(std::has_unique_object_representations_v<pg_flow_key>);

namespace {

// splitmix64's finalizer: every input bit affects every output bit.
uint64_t Mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

}  // namespace

bool FlowKeyEqual::operator()(const pg_flow_key& a, const pg_flow_key& b) const {
  return std::memcmp(&a, &b, sizeof(pg_flow_key)) == 0;
}

size_t FlowKeyHash::operator()(const pg_flow_key& key) const {
  uint64_t words[sizeof(pg_flow_key) / sizeof(uint64_t)];
  std::memcpy(words, &key, sizeof(words));
  uint64_t h = Mix(seed ^ 0x9e3779b97f4a7c15ULL);
  for (uint64_t word : words) h = Mix(h ^ word);
  return static_cast<size_t>(h);
}

}  // namespace popguard::flow
