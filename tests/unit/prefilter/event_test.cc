// The agent's decoding of ring-buffer records: sizes, flow keys by id,
// forgotten ids found again, and the 32-bit microsecond clock.
#include "agent/prefilter/event.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace popguard {
namespace {

pg_flow_key Key(uint8_t last_octet) {
  pg_flow_key k{};
  k.client_addr[0] = 0x0100000a | uint32_t{last_octet} << 24;
  k.server_addr[0] = 0x0200000a;
  k.client_port = 0x409c;
  k.server_port = 0x6e00;
  k.family = 4;
  return k;
}

// A record as the kernel writes it.
std::vector<uint8_t> Record(uint32_t flow_id, const pg_flow_key* key, const std::string& data,
                            uint8_t type = PG_EV_CLIENT_DATA, uint32_t ts_us = 5, uint32_t seq = 100,
                            uint8_t meta = PG_EVH_META(PG_DIR_TO_SERVER, PG_HOOK_XDP, 0)) {
  pg_event_head head{};
  head.ts_us = ts_us;
  head.flow_id = flow_id;
  head.seq = seq;
  head.type = static_cast<uint8_t>(type | (key ? PG_EVH_KEY : 0));
  head.flags = PG_EVF_FIRST;
  head.meta = meta;
  const size_t key_size = key ? sizeof(*key) : 0;
  std::vector<uint8_t> out(sizeof(head) + key_size + data.size());
  std::memcpy(out.data(), &head, sizeof(head));
  if (key) std::memcpy(out.data() + sizeof(head), key, key_size);
  std::memcpy(out.data() + sizeof(head) + key_size, data.data(), data.size());
  return out;
}

bool SameKey(const pg_flow_key& a, const pg_flow_key& b) { return std::memcmp(&a, &b, sizeof(a)) == 0; }

std::string Data(const Event& e) { return std::string(reinterpret_cast<const char*>(e.data), e.len); }

constexpr uint64_t kRef = 1'000'000'000'000ull;

TEST(EventDecoderTest, KeyOnceThenTheIdNamesTheFlow) {
  EventDecoder d(8);
  const pg_flow_key k = Key(1);
  Event e;
  ASSERT_TRUE(d.Decode(Record(7, &k, "USER a\r\n"), kRef, &e));
  EXPECT_TRUE(SameKey(e.key, k));
  EXPECT_EQ(e.flow_id, 7u);
  EXPECT_EQ(e.type, PG_EV_CLIENT_DATA);
  EXPECT_EQ(Data(e), "USER a\r\n");
  EXPECT_EQ(e.seq, 100u);
  ASSERT_TRUE(d.Decode(Record(7, nullptr, "PASS b\r\n", PG_EV_CLIENT_DATA, 6, 108), kRef, &e));
  EXPECT_TRUE(SameKey(e.key, k));
  EXPECT_EQ(Data(e), "PASS b\r\n");
  EXPECT_EQ(e.seq, 108u);
  EXPECT_EQ(d.counters().records, 2u);
  EXPECT_EQ(d.counters().unknown_flow, 0u);
}

TEST(EventDecoderTest, MetaUnpacksDirectionHookAndAnomaly) {
  EventDecoder d(8);
  const pg_flow_key k = Key(1);
  Event e;
  ASSERT_TRUE(d.Decode(Record(0, &k, "", PG_EV_ANOMALY, 5, 4242,
                              PG_EVH_META(PG_DIR_TO_CLIENT, PG_HOOK_TC_INGRESS, PG_AN_GAP)),
                       kRef, &e));
  EXPECT_EQ(e.type, PG_EV_ANOMALY);
  EXPECT_EQ(e.dir, PG_DIR_TO_CLIENT);
  EXPECT_EQ(e.hook, PG_HOOK_TC_INGRESS);
  EXPECT_EQ(e.anomaly, PG_AN_GAP);
  EXPECT_EQ(e.expected_seq, 4242u);
  EXPECT_EQ(e.len, 0u);
  ASSERT_TRUE(d.Decode(Record(0, &k, "", PG_EV_ANOMALY, 5, 4242,
                              PG_EVH_META(PG_DIR_TO_SERVER, PG_HOOK_XDP, PG_AN_OVERSIZE)),
                       kRef, &e));
  EXPECT_EQ(e.anomaly, PG_AN_OVERSIZE);
  EXPECT_EQ(e.expected_seq, 0u) << "only a gap says where the stream stood";
}

TEST(EventDecoderTest, FlowWithoutStateAlwaysCarriesItsKey) {
  EventDecoder d(8);
  Event e;
  EXPECT_FALSE(d.Decode(Record(0, nullptr, "x"), kRef, &e));
  EXPECT_EQ(d.counters().unknown_flow, 1u);
}

TEST(EventDecoderTest, MalformedSizesAreCountedNotRead) {
  EventDecoder d(8);
  const pg_flow_key k = Key(1);
  Event e;
  std::vector<uint8_t> r = Record(7, &k, "");
  r.resize(sizeof(pg_event_head) + sizeof(pg_flow_key) - 1);  // key cut
  EXPECT_FALSE(d.Decode(r, kRef, &e));
  EXPECT_FALSE(d.Decode(std::vector<uint8_t>(sizeof(pg_event_head) - 1), kRef, &e));
  EXPECT_FALSE(d.Decode(Record(7, &k, std::string(PG_EVENT_DATA + 1, 'A')), kRef, &e));
  EXPECT_EQ(d.counters().malformed, 3u);
  ASSERT_TRUE(d.Decode(Record(7, &k, std::string(PG_EVENT_DATA, 'A')), kRef, &e));
  EXPECT_EQ(e.len, PG_EVENT_DATA);
}

TEST(EventDecoderTest, ForgottenIdIsFoundInTheFlowMapOncePerNewFlow) {
  const pg_flow_key k1 = Key(1), k2 = Key(2), k3 = Key(3);
  std::vector<std::pair<uint32_t, pg_flow_key>> kernel = {{1, k1}, {2, k2}};
  int sweeps = 0;
  EventDecoder d(1, [&](const auto& visit) {
    ++sweeps;
    for (const auto& [id, key] : kernel) visit(id, key);
  });
  Event e;
  ASSERT_TRUE(d.Decode(Record(1, &k1, "a"), kRef, &e));
  ASSERT_TRUE(d.Decode(Record(2, &k2, "b"), kRef, &e));
  ASSERT_TRUE(d.Decode(Record(3, &k3, "c"), kRef, &e));  // flow 1 falls out of two generations
  ASSERT_TRUE(d.Decode(Record(1, nullptr, "d"), kRef, &e));
  EXPECT_TRUE(SameKey(e.key, k1));
  EXPECT_EQ(sweeps, 1);
  // An id the kernel does not hold either: one sweep finds nothing, and
  // without a new flow no second sweep is tried.
  EXPECT_FALSE(d.Decode(Record(9, nullptr, "e"), kRef, &e));
  EXPECT_FALSE(d.Decode(Record(9, nullptr, "f"), kRef, &e));
  EXPECT_EQ(d.counters().unknown_flow, 2u);
  EXPECT_EQ(d.counters().flow_sweeps, 1u);
  EXPECT_EQ(sweeps, 1);
  const uint64_t before = d.counters().flow_sweeps;
  kernel.push_back({9, Key(9)});
  ASSERT_TRUE(d.Decode(Record(10, &k3, "g"), kRef, &e));  // a new flow
  ASSERT_TRUE(d.Decode(Record(9, nullptr, "h"), kRef, &e));
  EXPECT_TRUE(SameKey(e.key, Key(9)));
  EXPECT_EQ(d.counters().flow_sweeps, before + 1);
}

TEST(EventDecoderTest, RecentlyUsedFlowsSurviveAGeneration) {
  const pg_flow_key k1 = Key(1), k2 = Key(2), k3 = Key(3);
  EventDecoder d(2);
  Event e;
  ASSERT_TRUE(d.Decode(Record(1, &k1, "a"), kRef, &e));
  ASSERT_TRUE(d.Decode(Record(2, &k2, "b"), kRef, &e));
  ASSERT_TRUE(d.Decode(Record(3, &k3, "c"), kRef, &e));  // {1,2} become the old generation
  ASSERT_TRUE(d.Decode(Record(1, nullptr, "d"), kRef, &e));  // back into the current one
  EXPECT_TRUE(SameKey(e.key, k1));
  ASSERT_TRUE(d.Decode(Record(4, &k3, "e"), kRef, &e));  // {3,1} old, 2 forgotten
  EXPECT_TRUE(d.Decode(Record(1, nullptr, "f"), kRef, &e));
  EXPECT_FALSE(d.Decode(Record(2, nullptr, "g"), kRef, &e));
}

TEST(ExtendClockTest, LowBitsAreWidenedAroundTheReference) {
  const uint64_t ref_ns = 5'000'000'123'456ull;  // 5000 s
  const auto low = [](uint64_t us) { return static_cast<uint32_t>(us); };
  EXPECT_EQ(ExtendClock(low(5'000'000'123ull), ref_ns), 5'000'000'123'000ull);
  // An event 30 minutes before the reference and one a second after it.
  EXPECT_EQ(ExtendClock(low(3'200'000'000ull), ref_ns), 3'200'000'000'000ull);
  EXPECT_EQ(ExtendClock(low(5'001'000'000ull), ref_ns), 5'001'000'000'000ull);
  // Across the 2^32 microsecond wrap (71.6 minutes).
  const uint64_t wrap_us = 1ull << 32;
  EXPECT_EQ(ExtendClock(low(wrap_us - 10), (wrap_us + 10) * 1000), (wrap_us - 10) * 1000);
  EXPECT_EQ(ExtendClock(low(wrap_us + 10), (wrap_us - 10) * 1000), (wrap_us + 10) * 1000);
}

}  // namespace
}  // namespace popguard
