#include "agent/replay/replay.h"

#include <memory>
#include <utility>

namespace popguard::replay {

ReplayStats Replay(const ReplayOptions& options, detect::RuleEngine* engine,
                   const inspect::Inspector::AlertSink& sink) {
  ReplayStats stats;
  std::unique_ptr<Prefilter> owned;
  Prefilter* kernel = nullptr;
  pg_config config = options.kernel_config;
  if (options.prefilter) {
    if (options.kernel) {
      kernel = options.kernel;
      kernel->Reset();
    } else {
      PrefilterOptions kernel_options;
      kernel_options.flow_map_entries = options.flow_map_entries;
      owned = std::make_unique<Prefilter>(kernel_options);
      kernel = owned.get();
    }
    // The kernel starts with 110 and 995; make its port map the agent's.
    for (uint16_t port : {uint16_t{110}, uint16_t{995}}) {
      if (!options.inspector.ports.contains(port)) kernel->SetPort(port, 0);
    }
    for (const auto& [port, kind] : options.inspector.ports) kernel->SetPort(port, kind);
    config.clock_mode = PG_CLOCK_FIXED;
  }
  inspect::InspectorOptions inspector_options = options.inspector;
  if (kernel) {
    inspector_options.offer_resync = [kernel](const pg_flow_key& key, const pg_resync& offer) {
      kernel->OfferResync(key, offer);
    };
  }
  inspect::Inspector inspector(engine, sink, std::move(inspector_options));
  capture::CaptureReader reader = capture::CaptureReader::Open(options.capture_path);
  while (std::optional<capture::Frame> frame = reader.Next()) {
    stats.frames++;
    stats.bytes += frame->caplen;
    capture::EthernetResult ethernet = capture::ToEthernet(*frame);
    if (!ethernet.ok()) {
      stats.unconvertible_frames++;
      continue;
    }
    if (kernel) {
      config.clock_ns = static_cast<uint64_t>(frame->timestamp_ns);
      kernel->SetConfig(config);
      bool ran = true;
      try {
        kernel->TestRun(Hook::kXdp, ethernet.frame);
      } catch (const PrefilterError&) {
        ran = false;
      }
      for (const Event& event : kernel->DrainEvents()) inspector.OnKernelEvent(event);
      if (ran) continue;
      // The kernel never saw these bytes, so it escalates the flow at the
      // next segment; the agent reads this one itself.
      stats.test_run_errors++;
    }
    inspector.OnPacket(frame->timestamp_ns, packet::DecodeEthernet(ethernet.frame));
  }
  inspector.Finish();
  stats.capture_error = reader.error();
  stats.inspector = inspector.counters();
  stats.flows = inspector.flow_counters();
  stats.engine = engine->counters();
  if (kernel) {
    stats.kernel = kernel->ReadCounters();
    stats.decoder = kernel->DecoderStats();
  }
  return stats;
}

}  // namespace popguard::replay
