#include "agent/flow/reassembler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace popguard::flow {
namespace {

struct Range {
  uint32_t seq;
  uint32_t len;
  bool operator==(const Range&) const = default;
};

// Records everything a reassembler reports.
struct Harness {
  explicit Harness(ReassemblerOptions options = {})
      : stream([this](std::string_view bytes) { out.append(bytes); }, options) {
    stream.OnConflict([this](uint32_t seq, uint32_t len) { conflicts.push_back({seq, len}); });
    stream.OnGap([this](uint32_t seq, uint32_t len) { gaps.push_back({seq, len}); });
  }

  StreamReassembler stream;
  std::string out;
  std::vector<Range> conflicts;
  std::vector<Range> gaps;
};

std::string Pattern(size_t n, uint32_t salt = 0) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + salt) % 26);
  return s;
}

struct Piece {
  uint32_t seq;
  std::string bytes;
};

// Cuts data into pieces of 1..max_len bytes, as a segment split across
// event records.
std::vector<Piece> Cut(uint32_t seq, const std::string& data, size_t max_len, std::mt19937& rng) {
  std::vector<Piece> pieces;
  std::uniform_int_distribution<size_t> len(1, max_len);
  for (size_t at = 0; at < data.size();) {
    size_t n = std::min(len(rng), data.size() - at);
    pieces.push_back({seq + static_cast<uint32_t>(at), data.substr(at, n)});
    at += n;
  }
  return pieces;
}

TEST(SeqBeforeTest, FollowsSerialNumberOrderAcrossWrap) {
  EXPECT_TRUE(SeqBefore(1, 2));
  EXPECT_FALSE(SeqBefore(2, 1));
  EXPECT_FALSE(SeqBefore(5, 5));
  EXPECT_TRUE(SeqBefore(0xffffff00u, 0x10u));
  EXPECT_FALSE(SeqBefore(0x10u, 0xffffff00u));
}

TEST(StreamReassemblerTest, InOrderPiecesDeliverImmediately) {
  Harness h;
  ASSERT_TRUE(h.stream.Start(1000));
  h.stream.Add(1000, "USER ");
  EXPECT_EQ(h.out, "USER ");
  h.stream.Add(1005, "bob\r\n");
  EXPECT_EQ(h.out, "USER bob\r\n");
  EXPECT_EQ(h.stream.next_seq(), 1010u);
  EXPECT_FALSE(h.stream.mid_stream());
  EXPECT_EQ(h.stream.counters().bytes_delivered, 10u);
  EXPECT_EQ(h.stream.counters().bytes_buffered, 0u);
  EXPECT_TRUE(h.conflicts.empty());
  EXPECT_TRUE(h.gaps.empty());
}

TEST(StreamReassemblerTest, ReversedPiecesDeliverWhenTheFirstArrives) {
  const std::string data = Pattern(3000);
  std::mt19937 rng(1);
  std::vector<Piece> pieces = Cut(5000, data, 256, rng);
  std::reverse(pieces.begin(), pieces.end());
  Harness h;
  h.stream.Start(5000);
  for (size_t i = 0; i + 1 < pieces.size(); ++i) {
    h.stream.Add(pieces[i].seq, pieces[i].bytes);
  }
  EXPECT_TRUE(h.out.empty());
  EXPECT_EQ(h.stream.counters().bytes_buffered, data.size() - pieces.back().bytes.size());
  h.stream.Add(pieces.back().seq, pieces.back().bytes);
  EXPECT_EQ(h.out, data);
  EXPECT_EQ(h.stream.counters().bytes_buffered, 0u);
  EXPECT_EQ(h.stream.counters().overlaps, 0u);
}

TEST(StreamReassemblerTest, ShuffledPiecesDeliverTheStreamForManySeeds) {
  const std::string data = Pattern(5000, 3);
  for (uint32_t seed = 0; seed < 200; ++seed) {
    std::mt19937 rng(seed);
    std::vector<Piece> pieces = Cut(seed * 7919u, data, 300, rng);
    std::shuffle(pieces.begin(), pieces.end(), rng);
    Harness h;
    h.stream.Start(seed * 7919u);
    for (const Piece& p : pieces) h.stream.Add(p.seq, p.bytes);
    ASSERT_EQ(h.out, data) << "seed " << seed;
    EXPECT_TRUE(h.conflicts.empty());
    EXPECT_TRUE(h.gaps.empty());
    EXPECT_EQ(h.stream.counters().bytes_buffered, 0u);
  }
}

TEST(StreamReassemblerTest, ShuffledOverlappingRetransmissionsAreSilent) {
  const std::string data = Pattern(4000, 5);
  for (uint32_t seed = 0; seed < 100; ++seed) {
    std::mt19937 rng(seed);
    // Two independent cuts of the same bytes overlap each other arbitrarily.
    std::vector<Piece> pieces = Cut(100, data, 200, rng);
    std::vector<Piece> again = Cut(100, data, 333, rng);
    pieces.insert(pieces.end(), again.begin(), again.end());
    std::shuffle(pieces.begin(), pieces.end(), rng);
    Harness h;
    h.stream.Start(100);
    for (const Piece& p : pieces) h.stream.Add(p.seq, p.bytes);
    ASSERT_EQ(h.out, data) << "seed " << seed;
    EXPECT_TRUE(h.conflicts.empty()) << "seed " << seed;
    EXPECT_EQ(h.stream.counters().conflicts, 0u);
    EXPECT_GT(h.stream.counters().overlaps, 0u);
  }
}

TEST(StreamReassemblerTest, OneBytePiecesInAnyOrder) {
  const std::string data = Pattern(700, 11);
  std::vector<uint32_t> order(data.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::mt19937 rng(42);
  std::shuffle(order.begin(), order.end(), rng);
  Harness h;
  h.stream.Start(0);
  for (uint32_t i : order) h.stream.Add(i, data.substr(i, 1));
  EXPECT_EQ(h.out, data);
  EXPECT_EQ(h.stream.counters().bytes_delivered, data.size());
}

TEST(StreamReassemblerTest, WrapsAroundTheSequenceSpace) {
  const uint32_t start = 0xffffffffu - 99;  // 2^32 - 100
  const std::string data = Pattern(1000, 13);
  for (uint32_t seed = 0; seed < 50; ++seed) {
    std::mt19937 rng(seed);
    std::vector<Piece> pieces = Cut(start, data, 64, rng);
    std::shuffle(pieces.begin(), pieces.end(), rng);
    Harness h;
    h.stream.Start(start);
    for (const Piece& p : pieces) h.stream.Add(p.seq, p.bytes);
    ASSERT_EQ(h.out, data) << "seed " << seed;
    EXPECT_EQ(h.stream.next_seq(), start + 1000u);
  }
}

TEST(StreamReassemblerTest, ConflictAcrossTheWrapReportsTheWrappedSeq) {
  Harness h;
  h.stream.Start(0xfffffff0u);
  h.stream.Add(0x00000010u, "later");
  h.stream.Add(0xfffffffeu, "AB");
  h.stream.Add(0x00000010u, "LATER");
  EXPECT_EQ(h.conflicts, (std::vector<Range>{{0x10u, 5}}));
}

TEST(StreamReassemblerTest, ExactRetransmissionIsSilent) {
  Harness h;
  h.stream.Start(1);
  h.stream.Add(1, "RETR 1\r\n");
  h.stream.Add(1, "RETR 1\r\n");
  h.stream.Add(20, "tail");
  h.stream.Add(20, "tail");
  EXPECT_EQ(h.out, "RETR 1\r\n");
  EXPECT_TRUE(h.conflicts.empty());
  EXPECT_EQ(h.stream.counters().overlaps, 2u);
  EXPECT_EQ(h.stream.counters().conflicts, 0u);
  EXPECT_EQ(h.stream.counters().bytes_buffered, 4u);
}

TEST(StreamReassemblerTest, DifferentBytesKeepTheFirstAndReportOnce) {
  Harness h;
  h.stream.Start(100);
  h.stream.Add(110, "PASS secret\r\n");
  h.stream.Add(110, "PASS SECRET\r\n");
  EXPECT_EQ(h.conflicts, (std::vector<Range>{{110, 13}}));
  h.stream.Add(100, "USER bob\r\n");
  EXPECT_EQ(h.out, "USER bob\r\nPASS secret\r\n");
  EXPECT_EQ(h.stream.counters().conflicts, 1u);
}

TEST(StreamReassemblerTest, ConflictWithDeliveredBytesIsReported) {
  Harness h;
  h.stream.Start(0);
  h.stream.Add(0, "DELE 1\r\n");
  h.stream.Add(0, "DELE 9\r\n");
  EXPECT_EQ(h.out, "DELE 1\r\n");
  EXPECT_EQ(h.conflicts, (std::vector<Range>{{0, 8}}));
}

TEST(StreamReassemblerTest, OneOverlapSpanningKeptPiecesIsOneConflict) {
  Harness h;
  h.stream.Start(0);
  h.stream.Add(10, "abcde");
  h.stream.Add(15, "fghij");
  h.stream.Add(10, "abcdeXghij");
  EXPECT_EQ(h.conflicts, (std::vector<Range>{{10, 10}}));
}

TEST(StreamReassemblerTest, SeparateOverlapsAreSeparateConflicts) {
  Harness h;
  h.stream.Start(0);
  h.stream.Add(10, "abc");
  h.stream.Add(20, "xyz");
  h.stream.Add(10, "aBc-------xYz");
  EXPECT_EQ(h.conflicts, (std::vector<Range>{{10, 3}, {20, 3}}));
  h.stream.Add(0, "0123456789");
  EXPECT_EQ(h.out, "0123456789abc-------xyz");
}

TEST(StreamReassemblerTest, PartialOverlapOnTheLeftKeepsTheFirst) {
  Harness h;
  h.stream.Start(0);
  h.stream.Add(10, "KLMNOP");
  h.stream.Add(6, "ghijXLmn");  // overlaps [10, 14): "XLmn" vs "KLMN"
  EXPECT_EQ(h.conflicts, (std::vector<Range>{{10, 4}}));
  h.stream.Add(0, "abcdef");
  EXPECT_EQ(h.out, "abcdefghijKLMNOP");
}

TEST(StreamReassemblerTest, PartialOverlapOnTheRightKeepsTheFirst) {
  Harness h;
  h.stream.Start(0);
  h.stream.Add(10, "KLMNOP");
  h.stream.Add(14, "opQRST");  // overlaps [14, 16): "op" vs "OP"
  EXPECT_EQ(h.conflicts, (std::vector<Range>{{14, 2}}));
  h.stream.Add(0, "abcdefghij");
  EXPECT_EQ(h.out, "abcdefghijKLMNOPQRST");
}

TEST(StreamReassemblerTest, OverlapStraddlingDeliveredAndBufferedBytes) {
  Harness h;
  h.stream.Start(0);
  h.stream.Add(0, "abcd");
  h.stream.Add(6, "ghij");
  // Same bytes over delivered [2, 4), fresh [4, 6), different over [6, 8).
  h.stream.Add(2, "cdEFgX");
  EXPECT_EQ(h.conflicts, (std::vector<Range>{{6, 2}}));
  EXPECT_EQ(h.out, "abcdEFghij");
  EXPECT_EQ(h.stream.counters().overlaps, 1u);
}

TEST(StreamReassemblerTest, GapThenFill) {
  Harness h;
  h.stream.Start(0);
  h.stream.Add(0, "ab");
  h.stream.Add(4, "ef");
  h.stream.Add(8, "ij");
  EXPECT_EQ(h.out, "ab");
  EXPECT_EQ(h.stream.counters().bytes_buffered, 4u);
  h.stream.Add(2, "cd");
  EXPECT_EQ(h.out, "abcdef");
  h.stream.Add(6, "gh");
  EXPECT_EQ(h.out, "abcdefghij");
  EXPECT_TRUE(h.gaps.empty());
  EXPECT_EQ(h.stream.counters().bytes_buffered, 0u);
}

TEST(StreamReassemblerTest, MemoryLimitSkipsTheEarliestHoleAndReportsIt) {
  ReassemblerOptions options;
  options.max_buffered = 100;
  Harness h(options);
  h.stream.Start(0);
  h.stream.Add(0, "head");
  // A hole at [4, 10), then data that never stops coming.
  std::string tail = Pattern(400);
  for (size_t at = 0; at < tail.size(); at += 40) {
    h.stream.Add(10 + static_cast<uint32_t>(at), tail.substr(at, 40));
    EXPECT_LE(h.stream.counters().bytes_buffered, options.max_buffered);
  }
  EXPECT_EQ(h.gaps, (std::vector<Range>{{4, 6}}));
  EXPECT_EQ(h.out, "head" + tail);
  EXPECT_EQ(h.stream.counters().limit_gaps, 1u);
  EXPECT_EQ(h.stream.counters().gaps_skipped, 1u);
  EXPECT_EQ(h.stream.counters().gap_bytes, 6u);
  // The hole's bytes come too late: counted, not delivered, no conflict.
  h.stream.Add(4, "EFGHIJ");
  EXPECT_EQ(h.stream.counters().bytes_dropped, 6u);
  EXPECT_EQ(h.out, "head" + tail);
  EXPECT_TRUE(h.conflicts.empty());
}

TEST(StreamReassemblerTest, MemoryLimitSkipsOnlyAsManyHolesAsNeeded) {
  ReassemblerOptions options;
  options.max_buffered = 10;
  Harness h(options);
  h.stream.Start(0);
  h.stream.Add(10, "AAAA");
  h.stream.Add(20, "BBBB");
  h.stream.Add(30, "CCCC");  // 12 bytes held: only the first hole goes
  EXPECT_EQ(h.gaps, (std::vector<Range>{{0, 10}}));
  EXPECT_EQ(h.out, "AAAA");
  EXPECT_EQ(h.stream.counters().bytes_buffered, 8u);
  h.stream.Add(14, "bbbbbb");
  EXPECT_EQ(h.out, "AAAAbbbbbbBBBB");
}

TEST(StreamReassemblerTest, SkipToReportsEachHoleAndDeliversWhatItHas) {
  Harness h;
  h.stream.Start(0);
  h.stream.Add(0, "ab");
  h.stream.Add(5, "fg");
  h.stream.Add(12, "mn");
  h.stream.SkipTo(10);
  EXPECT_EQ(h.gaps, (std::vector<Range>{{2, 3}, {7, 3}}));
  EXPECT_EQ(h.out, "abfg");
  EXPECT_EQ(h.stream.next_seq(), 10u);
  h.stream.SkipTo(13);
  EXPECT_EQ(h.gaps, (std::vector<Range>{{2, 3}, {7, 3}, {10, 2}}));
  EXPECT_EQ(h.out, "abfgmn");
  EXPECT_EQ(h.stream.next_seq(), 14u);
  EXPECT_EQ(h.stream.counters().gaps_skipped, 3u);
  EXPECT_EQ(h.stream.counters().gap_bytes, 8u);
  EXPECT_EQ(h.stream.counters().limit_gaps, 0u);
}

TEST(StreamReassemblerTest, SkipToThePastOrBeforeStartDoesNothing) {
  Harness h;
  h.stream.SkipTo(50);
  EXPECT_FALSE(h.stream.started());
  h.stream.Start(100);
  h.stream.Add(100, "abc");
  h.stream.SkipTo(101);
  h.stream.SkipTo(103);
  EXPECT_TRUE(h.gaps.empty());
  EXPECT_EQ(h.stream.next_seq(), 103u);
}

TEST(StreamReassemblerTest, MidStreamStartsAtTheFirstByteSeen) {
  Harness h;
  h.stream.Add(7777, "+OK ready\r\n");
  EXPECT_TRUE(h.stream.started());
  EXPECT_TRUE(h.stream.mid_stream());
  EXPECT_EQ(h.out, "+OK ready\r\n");
  EXPECT_FALSE(h.stream.Start(1));
  // Bytes from before the join can never be delivered: counted.
  h.stream.Add(7770, "earlier");
  EXPECT_EQ(h.stream.counters().bytes_dropped, 7u);
  EXPECT_EQ(h.out, "+OK ready\r\n");
}

TEST(StreamReassemblerTest, LateBytesBeyondHistoryAreDroppedNotChecked) {
  ReassemblerOptions options;
  options.history_bytes = 4;
  Harness h(options);
  h.stream.Start(0);
  h.stream.Add(0, "0123456789abcdef");
  h.stream.Add(0, "XXXXXXXXXXXXXXXX");
  // At least the last 4 delivered bytes are checked.
  ASSERT_EQ(h.conflicts.size(), 1u);
  EXPECT_EQ(h.conflicts[0].seq + h.conflicts[0].len, 16u);
  EXPECT_GE(h.conflicts[0].len, 4u);
  EXPECT_EQ(h.stream.counters().bytes_dropped, 16u - h.conflicts[0].len);
}

TEST(StreamReassemblerTest, EmptyAddDoesNotStartTheStream) {
  Harness h;
  h.stream.Add(5, "");
  EXPECT_FALSE(h.stream.started());
  EXPECT_TRUE(h.stream.Start(9));
}

}  // namespace
}  // namespace popguard::flow
