// Shared harness for kernel tests: a private, unpinned instance of the real
// programs, driven with BPF_PROG_TEST_RUN, with helpers to read what came up
// the ring buffer.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "agent/prefilter/prefilter.h"
#include "flow_key.h"
#include "packet_builder.h"

namespace popguard::test {

inline constexpr uint64_t kNow = 1'000'000'000'000ull;  // fixed clock: 1000 s

class KernelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "kernel tests load BPF programs: run as root";
    // Per-CPU state (the global budget) must stay on one CPU.
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    sched_setaffinity(0, sizeof(one), &one);
    pf_ = Instance(Options());
    pf_->Reset();
    config_ = DefaultConfig();
    config_.clock_mode = PG_CLOCK_FIXED;
    config_.clock_ns = kNow;
    pf_->SetConfig(config_);
  }

  virtual PrefilterOptions Options() const { return {}; }

  // Loading verifies three programs, which takes seconds: tests share one
  // instance per option set and reset it between tests.
  static std::shared_ptr<Prefilter> Instance(const PrefilterOptions& o) {
    static std::vector<std::pair<PrefilterOptions, std::shared_ptr<Prefilter>>> cache;
    for (auto& [opts, pf] : cache)
      if (opts.flow_map_entries == o.flow_map_entries && opts.ring_buffer_bytes == o.ring_buffer_bytes)
        return pf;
    cache.emplace_back(o, std::make_shared<Prefilter>(o));
    return cache.back().second;
  }

  void Apply() { pf_->SetConfig(config_); }

  void TearDown() override {
    if (!HasFailure()) return;
    for (const auto& e : events_)
      std::fprintf(stderr, "event type=%u dir=%u flags=%#x anomaly=%u seq=%u len=%u\n", e.type, e.dir,
                   e.flags, e.anomaly, e.seq, e.len);
  }

  int Run(const std::vector<uint8_t>& frame, Hook hook = Hook::kXdp) {
    int ret = pf_->TestRun(hook, frame);
    auto evs = pf_->DrainEvents();
    events_.insert(events_.end(), evs.begin(), evs.end());
    return ret;
  }

  // Runs the frames of a conversation, each direction through the hook that
  // sees it on a mail server: client->server at XDP, server->client at TC.
  void Server(const std::vector<uint8_t>& frame) { ASSERT_EQ(Run(frame, Hook::kTcEgress), 0); }
  void Client(const std::vector<uint8_t>& frame) { ASSERT_EQ(Run(frame, Hook::kXdp), 2); }

  std::vector<Event> Events(uint8_t type) const {
    std::vector<Event> out;
    for (const auto& e : events_)
      if (e.type == type) out.push_back(e);
    return out;
  }

  std::vector<uint8_t> Anomalies() const {
    std::vector<uint8_t> out;
    for (const auto& e : events_)
      if (e.type == PG_EV_ANOMALY) out.push_back(e.anomaly);
    return out;
  }

  size_t CountAnomaly(uint8_t code) const {
    size_t n = 0;
    for (const auto& e : events_) n += e.type == PG_EV_ANOMALY && e.anomaly == code;
    return n;
  }

  // The bytes of all events of a type, in order.
  std::string Bytes(uint8_t type) const {
    std::string out;
    for (const auto& e : events_)
      if (e.type == type) out.append(reinterpret_cast<const char*>(e.data), e.len);
    return out;
  }

  // Server lines as strings, one per line (chunks joined).
  std::vector<std::string> ServerLines() const {
    std::vector<std::string> out;
    std::string cur;
    for (const auto& e : events_) {
      if (e.type != PG_EV_SERVER_LINE) continue;
      cur.append(reinterpret_cast<const char*>(e.data), e.len);
      if (e.flags & PG_EVF_LINE_END) {
        out.push_back(cur);
        cur.clear();
      }
    }
    if (!cur.empty()) out.push_back(cur);
    return out;
  }

  uint64_t Counter(int idx) const { return pf_->ReadCounters()[idx]; }

  std::shared_ptr<Prefilter> pf_;
  pg_config config_{};
  std::vector<Event> events_;
};

// A client/server pair with the handshake already run through the kernel.
struct Conversation {
  Flow flow{"10.1.0.1", 40000, "10.1.0.2", 110};
  pg_flow_key key = KeyV4("10.1.0.1", 40000, "10.1.0.2", 110);
};

}  // namespace popguard::test
