#include "agent/flow/reassembler.h"

#include <algorithm>
#include <iterator>
#include <utility>

namespace popguard::flow {

StreamReassembler::StreamReassembler(DataSink on_data, ReassemblerOptions options)
    : on_data_(std::move(on_data)), options_(options) {}

bool StreamReassembler::Start(uint32_t seq) {
  if (started_) return false;
  started_ = true;
  base_seq_ = seq;
  return true;
}

int64_t StreamReassembler::OffsetOf(uint32_t seq) const {
  return next_off_ + static_cast<int32_t>(seq - next_seq());
}

void StreamReassembler::Add(uint32_t seq, std::string_view bytes) {
  if (bytes.empty()) return;
  if (!started_) {
    started_ = true;
    mid_stream_ = true;
    base_seq_ = seq;
  }
  int64_t off = OffsetOf(seq);
  OverlapRun run;
  bool overlapped = false;
  if (off < next_off_) {
    size_t old =
        static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(bytes.size()), next_off_ - off));
    overlapped |= CheckAgainstHistory(off, bytes.substr(0, old), run);
    off += static_cast<int64_t>(old);
    bytes.remove_prefix(old);
  }
  if (!bytes.empty()) overlapped |= Buffer(off, bytes, run);
  FlushOverlap(run);
  if (overlapped) ++counters_.overlaps;
  Deliver();
  while (counters_.bytes_buffered > options_.max_buffered) {
    ++counters_.limit_gaps;
    SkipBefore(pending_.begin()->first);
  }
}

void StreamReassembler::SkipTo(uint32_t seq) {
  if (!started_) return;
  int64_t off = OffsetOf(seq);
  if (off > next_off_) SkipBefore(off);
}

void StreamReassembler::Flush() {
  if (!pending_.empty()) {
    const auto& last = *pending_.rbegin();
    SkipBefore(last.first + static_cast<int64_t>(last.second.size()));
  }
}

bool StreamReassembler::CheckAgainstHistory(int64_t off, std::string_view bytes, OverlapRun& run) {
  int64_t history_begin = next_off_ - static_cast<int64_t>(history_.size());
  if (off < history_begin) {
    size_t lost = static_cast<size_t>(
        std::min<int64_t>(static_cast<int64_t>(bytes.size()), history_begin - off));
    counters_.bytes_dropped += lost;
    off += static_cast<int64_t>(lost);
    bytes.remove_prefix(lost);
  }
  if (bytes.empty()) return false;
  NoteOverlap(
      run, off,
      std::string_view(history_).substr(static_cast<size_t>(off - history_begin), bytes.size()),
      bytes);
  return true;
}

bool StreamReassembler::Buffer(int64_t off, std::string_view bytes, OverlapRun& run) {
  const int64_t end = off + static_cast<int64_t>(bytes.size());
  bool overlapped = false;
  auto it = pending_.upper_bound(off);
  if (it != pending_.begin()) {
    auto prev = std::prev(it);
    if (prev->first + static_cast<int64_t>(prev->second.size()) > off) {
      it = prev;
    }
  }
  int64_t cur = off;
  // Fills [cur, until) with fresh bytes, appending to a piece ending right
  // there so in-order arrival does not fragment the buffer into map nodes.
  auto keep = [&](int64_t until, std::map<int64_t, std::string>::iterator at) {
    std::string_view fresh =
        bytes.substr(static_cast<size_t>(cur - off), static_cast<size_t>(until - cur));
    counters_.bytes_buffered += fresh.size();
    if (at != pending_.begin()) {
      auto prev = std::prev(at);
      if (prev->first + static_cast<int64_t>(prev->second.size()) == cur) {
        prev->second.append(fresh);
        return;
      }
    }
    pending_.emplace_hint(at, cur, std::string(fresh));
  };
  for (; it != pending_.end() && it->first < end; ++it) {
    if (it->first > cur) {
      keep(it->first, it);
      FlushOverlap(run);
      cur = it->first;
    }
    const int64_t overlap_end = std::min(end, it->first + static_cast<int64_t>(it->second.size()));
    const size_t n = static_cast<size_t>(overlap_end - cur);
    NoteOverlap(run, cur,
                std::string_view(it->second).substr(static_cast<size_t>(cur - it->first), n),
                bytes.substr(static_cast<size_t>(cur - off), n));
    overlapped = true;
    cur = overlap_end;
  }
  if (cur < end) keep(end, it);
  return overlapped;
}

void StreamReassembler::NoteOverlap(OverlapRun& run, int64_t begin, std::string_view kept,
                                    std::string_view fresh) {
  if (run.begin == run.end || run.end != begin) {
    FlushOverlap(run);
    run.begin = begin;
  }
  run.end = begin + static_cast<int64_t>(kept.size());
  if (kept != fresh) run.differs = true;
}

void StreamReassembler::FlushOverlap(OverlapRun& run) {
  if (run.differs) {
    ++counters_.conflicts;
    if (on_conflict_) {
      on_conflict_(SeqOf(run.begin), static_cast<uint32_t>(run.end - run.begin));
    }
  }
  run = OverlapRun{};
}

void StreamReassembler::Deliver() {
  while (!pending_.empty() && pending_.begin()->first == next_off_) {
    auto node = pending_.extract(pending_.begin());
    counters_.bytes_buffered -= node.mapped().size();
    Emit(node.mapped());
  }
}

void StreamReassembler::SkipBefore(int64_t target) {
  while (next_off_ < target) {
    const int64_t hole_end = pending_.empty() ? target : std::min(target, pending_.begin()->first);
    const uint32_t gap_seq = next_seq();
    const auto gap_len = static_cast<uint32_t>(hole_end - next_off_);
    ++counters_.gaps_skipped;
    counters_.gap_bytes += gap_len;
    next_off_ = hole_end;
    // History must end at next_off_ to be comparable with late bytes.
    history_.clear();
    if (on_gap_) on_gap_(gap_seq, gap_len);
    Deliver();
  }
}

void StreamReassembler::Emit(std::string_view bytes) {
  next_off_ += static_cast<int64_t>(bytes.size());
  counters_.bytes_delivered += bytes.size();
  history_.append(bytes);
  // Trimming only past twice the limit keeps the erase cost amortized.
  if (history_.size() > 2 * options_.history_bytes) {
    history_.erase(0, history_.size() - options_.history_bytes);
  }
  if (on_data_) on_data_(bytes);
}

}  // namespace popguard::flow
