// `popguard-agent replay`: a capture through the same chain as live
// traffic. With the prefilter, each frame runs through a private, unpinned
// instance of the kernel programs (BPF_PROG_TEST_RUN on the XDP program,
// which takes both directions and frames up to ~73 KB, so GSO captures fit)
// with the kernel's clock set to the frame's capture time, and the agent
// reads the records it produced; without it, every TCP payload goes
// straight to the agent.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "agent/capture/capture.h"
#include "agent/inspect/inspector.h"
#include "agent/prefilter/prefilter.h"

namespace popguard::replay {

struct ReplayOptions {
  std::string capture_path;
  bool prefilter = true;
  uint32_t flow_map_entries = PG_MAX_FLOWS;
  // A loaded instance to reuse instead of loading one (loading verifies the
  // programs, a quarter second each time); it is Reset() first, and its own
  // flow map size applies. Never the live sensor's pinned instance.
  Prefilter* kernel = nullptr;
  // The kernel configuration; its clock is always driven from the capture.
  pg_config kernel_config = DefaultConfig();
  inspect::InspectorOptions inspector;
};

struct ReplayStats {
  uint64_t frames = 0;
  uint64_t bytes = 0;
  // Frames the capture held that could not be made Ethernet, and frames the
  // kernel refused to test-run (too big); the latter still reach the agent.
  uint64_t unconvertible_frames = 0;
  uint64_t test_run_errors = 0;
  std::optional<capture::CaptureError> capture_error;
  inspect::InspectorCounters inspector;
  flow::FlowTableCounters flows;
  detect::EngineCounters engine;
  std::optional<Counters> kernel;  // with the prefilter only
  std::optional<DecoderCounters> decoder;  // with the prefilter only
};

// Replays the capture; alerts go to `sink` as they happen. Throws
// PrefilterError when the kernel programs cannot be loaded
// (e.g. without root); a damaged capture is not an exception: what was read
// is processed and capture_error says where reading stopped.
ReplayStats Replay(const ReplayOptions& options, detect::RuleEngine* engine,
                   const inspect::Inspector::AlertSink& sink);

}  // namespace popguard::replay
