#include "agent/flow/flow_table.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "agent/flow/flow_key.h"

namespace popguard::flow {
namespace {

pg_flow_key Key(uint16_t client_port, uint32_t client_addr = 0x0a000001) {
  pg_flow_key key{};
  key.client_addr[0] = client_addr;
  key.server_addr[0] = 0x0a000002;
  key.client_port = client_port;
  key.server_port = 110;
  key.family = 4;
  return key;
}

struct Evicted {
  uint16_t port;
  int state;
  EvictReason reason;
  bool operator==(const Evicted&) const = default;
};

// A table of ints that records what it evicts.
struct Harness {
  explicit Harness(FlowTableOptions options) : table(options) {
    table.OnEvict([this](const pg_flow_key& key, int& state, EvictReason reason) {
      evicted.push_back({key.client_port, state, reason});
    });
  }
  FlowTable<int> table;
  std::vector<Evicted> evicted;
};

FlowTableOptions Options(size_t capacity, uint64_t idle_timeout_ns) {
  FlowTableOptions options;
  options.capacity = capacity;
  options.idle_timeout_ns = idle_timeout_ns;
  return options;
}

TEST(FlowKeyTest, EveryFieldTakesPart) {
  const FlowKeyEqual equal;
  const FlowKeyHash hash;
  const pg_flow_key base = Key(1000);
  std::vector<pg_flow_key> variants(7, base);
  variants[0].client_addr[3] ^= 1;
  variants[1].server_addr[2] ^= 1;
  variants[2].client_port ^= 1;
  variants[3].server_port ^= 1;
  variants[4].family = 6;
  variants[5].pad[1] = 1;
  variants[6].server_addr[0] ^= 1;
  EXPECT_TRUE(equal(base, Key(1000)));
  EXPECT_EQ(hash(base), hash(Key(1000)));
  std::unordered_set<size_t> hashes{hash(base)};
  for (const pg_flow_key& v : variants) {
    EXPECT_FALSE(equal(base, v));
    hashes.insert(hash(v));
  }
  EXPECT_EQ(hashes.size(), variants.size() + 1);
}

TEST(FlowKeyTest, SeedChangesTheHash) { EXPECT_NE(FlowKeyHash{1}(Key(1)), FlowKeyHash{2}(Key(1))); }

TEST(FlowTableTest, FindOrInsertMakesOnceThenFinds) {
  Harness h(Options(4, 1000));
  bool inserted = false;
  h.table.FindOrInsert(Key(1), 0, &inserted) = 11;
  EXPECT_TRUE(inserted);
  EXPECT_EQ(h.table.FindOrInsert(Key(1), 1, &inserted), 11);
  EXPECT_FALSE(inserted);
  ASSERT_NE(h.table.Find(Key(1), 2), nullptr);
  EXPECT_EQ(*h.table.Find(Key(1), 2), 11);
  EXPECT_EQ(h.table.Find(Key(2), 2), nullptr);
  EXPECT_EQ(h.table.size(), 1u);
  EXPECT_EQ(h.table.counters().inserted, 1u);
}

TEST(FlowTableTest, CapacityEvictsTheLeastRecentlyUsed) {
  Harness h(Options(3, 1'000'000));
  h.table.FindOrInsert(Key(1), 10) = 1;
  h.table.FindOrInsert(Key(2), 20) = 2;
  h.table.FindOrInsert(Key(3), 30) = 3;
  ASSERT_NE(h.table.Find(Key(1), 40), nullptr);  // 2 is now the oldest
  h.table.FindOrInsert(Key(4), 50) = 4;
  h.table.FindOrInsert(Key(5), 60) = 5;
  EXPECT_EQ(h.evicted,
            (std::vector<Evicted>{{2, 2, EvictReason::kCapacity}, {3, 3, EvictReason::kCapacity}}));
  EXPECT_EQ(h.table.size(), 3u);
  EXPECT_EQ(h.table.Find(Key(2), 70), nullptr);
  EXPECT_NE(h.table.Find(Key(1), 70), nullptr);
  EXPECT_EQ(h.table.counters().evicted_capacity, 2u);
  EXPECT_EQ(h.table.counters().expired_idle, 0u);
  EXPECT_EQ(h.table.counters().inserted, 5u);
  std::vector<uint16_t> order;
  h.table.ForEach([&](const pg_flow_key& key, int&) { order.push_back(key.client_port); });
  EXPECT_EQ(order, (std::vector<uint16_t>{1, 5, 4}));
}

TEST(FlowTableTest, ExpireIdleRemovesOnlyIdleFlows) {
  Harness h(Options(10, 100));
  h.table.FindOrInsert(Key(1), 0) = 1;
  h.table.FindOrInsert(Key(2), 50) = 2;
  h.table.FindOrInsert(Key(3), 80) = 3;
  EXPECT_EQ(h.table.ExpireIdle(99), 0u);
  EXPECT_EQ(h.table.ExpireIdle(150), 2u);
  EXPECT_EQ(h.evicted,
            (std::vector<Evicted>{{1, 1, EvictReason::kIdle}, {2, 2, EvictReason::kIdle}}));
  EXPECT_EQ(h.table.size(), 1u);
  EXPECT_EQ(h.table.counters().expired_idle, 2u);
}

TEST(FlowTableTest, UseKeepsAFlowAlive) {
  Harness h(Options(10, 100));
  h.table.FindOrInsert(Key(1), 0) = 1;
  h.table.FindOrInsert(Key(2), 0) = 2;
  ASSERT_NE(h.table.Find(Key(1), 90), nullptr);
  EXPECT_EQ(h.table.ExpireIdle(120), 1u);
  EXPECT_NE(h.table.Find(Key(1), 120), nullptr);
  EXPECT_EQ(h.table.Find(Key(2), 120), nullptr);
}

TEST(FlowTableTest, LookupOfAnIdleFlowExpiresItAndStartsAfresh) {
  Harness h(Options(10, 100));
  h.table.FindOrInsert(Key(1), 0) = 7;
  bool inserted = false;
  EXPECT_EQ(h.table.FindOrInsert(Key(1), 100, &inserted), 0);
  EXPECT_TRUE(inserted);
  EXPECT_EQ(h.evicted, (std::vector<Evicted>{{1, 7, EvictReason::kIdle}}));
  h.table.FindOrInsert(Key(2), 100);
  EXPECT_EQ(h.table.Find(Key(2), 250), nullptr);
  EXPECT_EQ(h.table.counters().expired_idle, 2u);
}

TEST(FlowTableTest, TimeGoingBackwardsCountsAsNoTime) {
  Harness h(Options(10, 100));
  h.table.FindOrInsert(Key(1), 1000);
  h.table.FindOrInsert(Key(2), 500);  // stamped 1000, not 500
  EXPECT_EQ(h.table.ExpireIdle(1050), 0u);
  EXPECT_EQ(h.table.ExpireIdle(1100), 2u);
}

TEST(FlowTableTest, EraseRemovesWithoutCallback) {
  Harness h(Options(10, 100));
  h.table.FindOrInsert(Key(1), 0);
  EXPECT_TRUE(h.table.Erase(Key(1)));
  EXPECT_FALSE(h.table.Erase(Key(1)));
  EXPECT_EQ(h.table.size(), 0u);
  EXPECT_TRUE(h.evicted.empty());
}

TEST(FlowTableTest, HoldsNonCopyableStateAndManyFlows) {
  FlowTable<std::unique_ptr<std::string>> table(Options(1000, 1'000'000));
  for (uint32_t i = 0; i < 5000; ++i) {
    auto& state = table.FindOrInsert(Key(static_cast<uint16_t>(i), i), i);
    state = std::make_unique<std::string>(std::to_string(i));
  }
  EXPECT_EQ(table.size(), 1000u);
  EXPECT_EQ(table.counters().evicted_capacity, 4000u);
  auto* last = table.Find(Key(4999, 4999), 5000);
  ASSERT_NE(last, nullptr);
  EXPECT_EQ(**last, "4999");
  EXPECT_EQ(table.Find(Key(3999, 3999), 5000), nullptr);
}

}  // namespace
}  // namespace popguard::flow
