// Userspace side of the kernel prefilter: one loaded instance of the BPF
// programs and maps (private, or later pinned for the live sensor), its
// configuration, test runs, events and counters.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "agent/prefilter/event.h"
#include "agent/prefilter/layout.h"

struct bpf_object;
struct ring_buffer;

namespace popguard {

// Raised for every failure to load, configure or attach, with what failed
// and the kernel's reason.
class PrefilterError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class Hook { kXdp, kTcEgress, kTcIngress };

struct PrefilterOptions {
  uint32_t flow_map_entries = PG_MAX_FLOWS;
  uint32_t ring_buffer_bytes = 4u << 20;  // power of two, at least a page
  // The BPF object to load; empty means the one built into this binary.
  // Benchmarks pass a build of the same sources with test-only hooks.
  std::span<const uint8_t> object;
};

// The settings the kernel starts from before any rule says otherwise:
// detect mode, no thresholds, no budgets, monotonic clock.
pg_config DefaultConfig();

using Counters = std::array<uint64_t, PG_CNT__MAX>;

class Prefilter {
 public:
  explicit Prefilter(const PrefilterOptions& options = {});
  ~Prefilter();
  Prefilter(const Prefilter&) = delete;
  Prefilter& operator=(const Prefilter&) = delete;

  void SetConfig(const pg_config& config);
  pg_config Config() const;
  // kind 0 removes the port.
  void SetPort(uint16_t port, uint8_t kind);

  // One BPF_PROG_TEST_RUN of `packet` (an Ethernet frame). Returns the
  // program's return value; `duration_ns` gets the kernel's mean per run.
  int TestRun(Hook hook, std::span<const uint8_t> packet, uint32_t repeat = 1,
              uint32_t* duration_ns = nullptr) const;

  // Everything the ring buffer holds now, decoded. Records that cannot be
  // decoded are counted in DecoderStats().
  std::vector<Event> DrainEvents();
  const DecoderCounters& DecoderStats() const { return decoder_.counters(); }

  // Per-CPU counters summed over CPUs.
  Counters ReadCounters() const;
  void ResetCounters();

  // Forgets all dynamic state (flows, blocklists, budgets, counters,
  // pending events) and restores the default configuration and ports.
  void Reset();

  std::optional<pg_flow> LookupFlow(const pg_flow_key& key) const;
  void UpdateFlow(const pg_flow_key& key, const pg_flow& flow);
  // Offers the kernel to frame an escalated flow again (struct pg_resync).
  void OfferResync(const pg_flow_key& key, const pg_resync& offer);
  void BlockFlow(const pg_flow_key& key, uint64_t expires_ns);
  void BlockAddress(const pg_addr_key& key, uint64_t expires_ns);
  bool IsFlowBlocked(const pg_flow_key& key) const;

  int ProgramFd(Hook hook) const;

 private:
  int MapFd(const char* name) const;
  void ClearHashMap(const char* name, size_t key_size);
  void SetBlocklistActive(bool active);

  static int OnRecord(void* ctx, void* data, size_t size);
  EventDecoder NewDecoder(uint32_t flow_map_entries);

  uint32_t flow_map_entries_;
  bpf_object* obj_ = nullptr;
  int prog_fd_[3] = {-1, -1, -1};
  ring_buffer* ring_ = nullptr;
  uint8_t* ports_ = nullptr;  // pg_port_kind, mapped from the kernel
  EventDecoder decoder_;
  // The kernel's clock when the records were read: the fixed clock if the
  // configuration sets one, else CLOCK_MONOTONIC (bpf_ktime_get_ns).
  std::optional<uint64_t> clock_fixed_ns_;
  uint64_t drain_clock_ns_ = 0;
  std::vector<Event> pending_;
};

// Keeps a program attached to an interface; detaches on destruction.
class Attachment {
 public:
  static Attachment Xdp(const Prefilter& prefilter, int ifindex, bool skb_mode);
  static Attachment Tc(const Prefilter& prefilter, int ifindex, bool egress);
  Attachment(Attachment&& other) noexcept;
  Attachment& operator=(Attachment&&) = delete;
  ~Attachment();

 private:
  enum class Kind { kNone, kXdp, kTc };
  Attachment(Kind kind, int ifindex, bool egress, uint32_t xdp_flags)
      : kind_(kind), ifindex_(ifindex), egress_(egress), xdp_flags_(xdp_flags) {}
  Kind kind_;
  int ifindex_;
  bool egress_;
  uint32_t xdp_flags_;
};

// Sum of the counters of one hook over every class.
uint64_t PacketCount(const Counters& c, Hook hook, pg_class cls);

}  // namespace popguard
