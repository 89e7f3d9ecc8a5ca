// Building captures of whole POP3 conversations and replaying them through
// the real chain (kernel programs or not), for the engine tests.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "agent/detect/kernel_plan.h"
#include "agent/detect/load.h"
#include "agent/replay/replay.h"
#include "packet_builder.h"
#include "pcap_writer.h"
#include "rule_cases.h"

namespace popguard::test {

// How a conversation is cut into frames.
struct Shape {
  size_t segment = 1400;  // payload bytes per segment
  bool v6 = false;
  std::vector<uint16_t> vlans;
  // Send each write's segments in reverse order (out of order on the wire).
  bool reverse_segments = false;
  // Each segment is preceded by a decoy with the same sequence numbers and
  // different bytes: first data wins, so the decoy is what gets inspected,
  // and the conflict itself must be reported.
  bool conflicting_overlap = false;
  std::string client_ip;  // default 192.0.2.10 / 2001:db8::10
  uint16_t client_port = 40000;
  uint16_t server_port = 110;
};

// SYN, SYN-ACK, ACK, every write in order (cut per the shape), FINs.
inline std::vector<std::vector<uint8_t>> BuildConversation(const std::vector<Exchange>& exchanges,
                                                           const Shape& shape = {}) {
  std::string client_ip = shape.client_ip;
  if (client_ip.empty()) client_ip = shape.v6 ? "2001:db8::10" : "192.0.2.10";
  Flow flow(client_ip, shape.client_port, shape.v6 ? "2001:db8::1" : "198.51.100.1",
            shape.server_port, shape.v6);
  flow.vlan_ids = shape.vlans;
  std::vector<std::vector<uint8_t>> frames;
  frames.push_back(flow.Syn());
  frames.push_back(flow.SynAck());
  frames.push_back(flow.Ack());
  for (const Exchange& e : exchanges) {
    const uint32_t base = e.to_server ? flow.ClientNextSeq() - flow.client_isn - 1
                                      : flow.ServerNextSeq() - flow.server_isn - 1;
    std::vector<std::vector<uint8_t>> pieces;
    for (size_t at = 0; at < e.bytes.size(); at += shape.segment) {
      std::string_view piece = std::string_view(e.bytes).substr(at, shape.segment);
      const uint32_t offset = base + static_cast<uint32_t>(at);
      if (shape.conflicting_overlap) {
        std::string decoy(piece.size(), 'x');
        pieces.push_back(e.to_server ? flow.ToServerAt(offset, decoy)
                                     : flow.ToClientAt(offset, decoy));
      }
      pieces.push_back(e.to_server ? flow.ToServerAt(offset, piece)
                                   : flow.ToClientAt(offset, piece));
    }
    if (shape.reverse_segments) std::reverse(pieces.begin(), pieces.end());
    for (auto& p : pieces) frames.push_back(std::move(p));
    flow.Advance(e.to_server, static_cast<uint32_t>(e.bytes.size()));
  }
  frames.push_back(flow.FinToServer());
  frames.push_back(flow.FinToClient());
  return frames;
}

// A temporary directory removed with the object.
class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/popguard-test-XXXXXX";
    path_ = mkdtemp(pattern);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline std::string ShippedRules() { return std::string(POPGUARD_SOURCE_DIR) + "/rules"; }

// One alert reduced to what must agree between runs: the rule, the
// direction and what it was about (timestamps differ with the prefilter: a
// multi-line response is finished when the next line arrives).
using AlertKey = std::tuple<uint32_t, int, std::string, std::string, std::string, uint64_t>;

inline AlertKey KeyOf(const detect::Alert& a) {
  const uint64_t flow = (uint64_t{a.tuple.client_port} << 16) | a.tuple.server_port;
  return {a.rule->sid,
          static_cast<int>(a.direction),
          a.command,
          a.args,
          a.response.empty() ? a.anomaly : a.response,
          flow};
}

struct RunResult {
  std::vector<AlertKey> alerts;  // sorted
  replay::ReplayStats stats;
  std::set<uint32_t> Sids() const {
    std::set<uint32_t> sids;
    for (const AlertKey& a : alerts) sids.insert(std::get<0>(a));
    return sids;
  }
};

struct RunOptions {
  bool prefilter = true;
  uint32_t flow_map_entries = PG_MAX_FLOWS;
  pg_config kernel_config = DefaultConfig();
  std::vector<std::string> rules = {ShippedRules()};
};

// One loaded instance of the kernel programs per flow map size, for the
// whole test process.
inline Prefilter* SharedKernel(uint32_t flow_map_entries) {
  static std::map<uint32_t, std::unique_ptr<Prefilter>> kernels;
  std::unique_ptr<Prefilter>& kernel = kernels[flow_map_entries];
  if (!kernel) {
    PrefilterOptions options;
    options.flow_map_entries = flow_map_entries;
    kernel = std::make_unique<Prefilter>(options);
  }
  return kernel.get();
}

inline RunResult RunCapture(const std::string& path, const RunOptions& options = {}) {
  detect::LoadedRules loaded = detect::LoadRules(options.rules);
  if (!loaded.engine) throw std::runtime_error("no rules could be loaded");
  replay::ReplayOptions replay_options;
  replay_options.capture_path = path;
  replay_options.prefilter = options.prefilter;
  replay_options.flow_map_entries = options.flow_map_entries;
  // As the agent does: the rules decide the kernel's thresholds.
  replay_options.kernel_config =
      detect::PlanKernel(loaded.engine->rules(), options.kernel_config).config;
  if (options.prefilter) replay_options.kernel = SharedKernel(options.flow_map_entries);
  RunResult result;
  result.stats = replay::Replay(replay_options, loaded.engine.get(),
                                [&](const detect::Alert& a) { result.alerts.push_back(KeyOf(a)); });
  std::sort(result.alerts.begin(), result.alerts.end());
  return result;
}

inline bool IsRoot() { return geteuid() == 0; }

// Frames of several conversations interleaved round-robin, one frame each
// in turn, so the conversations overlap in time as on a busy server.
inline std::vector<std::vector<uint8_t>> Interleave(
    std::vector<std::vector<std::vector<uint8_t>>> conversations) {
  std::vector<std::vector<uint8_t>> frames;
  for (size_t i = 0;; ++i) {
    bool any = false;
    for (auto& conversation : conversations) {
      if (i >= conversation.size()) continue;
      frames.push_back(std::move(conversation[i]));
      any = true;
    }
    if (!any) return frames;
  }
}

// Every case's fire and near-miss dialogue as its own conversation, `copies`
// times, each from its own client address so per-source counting stays per
// conversation.
inline std::vector<std::vector<std::vector<uint8_t>>> AllCaseConversations(Shape shape = {},
                                                                           int copies = 1) {
  std::vector<std::vector<std::vector<uint8_t>>> conversations;
  uint32_t n = 0;
  for (int copy = 0; copy < copies; ++copy) {
    for (const RuleCase& c : RuleCases()) {
      for (const auto* dialogue : {&c.fire, &c.near_miss}) {
        ++n;
        shape.client_ip =
            shape.v6 ? "2001:db8:1::" + std::to_string(n)
                     : "10.1." + std::to_string(n / 250) + "." + std::to_string(n % 250 + 1);
        shape.client_port = static_cast<uint16_t>(40000 + n);
        conversations.push_back(BuildConversation(*dialogue, shape));
      }
    }
  }
  return conversations;
}

}  // namespace popguard::test
