// popguard-agent: the sensor's command line. `replay` runs a capture
// through the kernel programs and the detection engine.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "agent/detect/kernel_plan.h"
#include "agent/detect/load.h"
#include "agent/output/eve.h"
#include "agent/replay/replay.h"

namespace {

using namespace popguard;

void PrintCounters(const replay::ReplayStats& stats, uint64_t alerts) {
  const inspect::InspectorCounters& in = stats.inspector;
  const detect::EngineCounters& engine = stats.engine;
  std::fprintf(stderr,
               "replay: frames %llu, bytes %llu, flows %llu, alerts %llu\n"
               "agent: kernel records %llu, packets %llu, units %llu, scans %llu, "
               "candidates %llu, bodies kept in kernel %llu\n"
               "agent losses: stream gaps %llu (%llu bytes), overlap conflicts %llu, "
               "step limit %llu, pcre errors %llu, scan errors %llu, threshold evictions %llu, "
               "flows evicted %llu, unconvertible frames %llu, test-run errors %llu, "
               "truncated packets %llu, malformed packets %llu, fragments %llu\n",
               (unsigned long long)stats.frames, (unsigned long long)stats.bytes,
               (unsigned long long)in.flows, (unsigned long long)alerts,
               (unsigned long long)in.kernel_events, (unsigned long long)in.packets,
               (unsigned long long)engine.units, (unsigned long long)engine.scans,
               (unsigned long long)engine.candidates, (unsigned long long)in.bodies_elided,
               (unsigned long long)in.stream_gaps, (unsigned long long)in.stream_gap_bytes,
               (unsigned long long)in.overlap_conflicts,
               (unsigned long long)engine.match.step_limit_hits,
               (unsigned long long)engine.match.pcre_errors, (unsigned long long)engine.scan_errors,
               (unsigned long long)engine.threshold_evictions,
               (unsigned long long)stats.flows.evicted_capacity,
               (unsigned long long)stats.unconvertible_frames,
               (unsigned long long)stats.test_run_errors, (unsigned long long)in.truncated,
               (unsigned long long)in.malformed, (unsigned long long)in.fragments);
  std::string anomalies;
  for (size_t i = 1; i < in.kernel_anomalies.size(); ++i) {
    if (in.kernel_anomalies[i] == 0) continue;
    anomalies += " " + std::to_string(i) + "=" + std::to_string(in.kernel_anomalies[i]);
  }
  if (!anomalies.empty())
    std::fprintf(stderr, "kernel anomaly records (pg_anomaly=count):%s\n", anomalies.c_str());
  if (!stats.kernel) return;
  const Counters& k = *stats.kernel;
  const uint64_t payload = k[PG_CNT_PAYLOAD_BYTES_TO_SERVER] + k[PG_CNT_PAYLOAD_BYTES_TO_CLIENT];
  std::fprintf(
      stderr,
      "kernel: payload bytes %llu, records %llu (%llu bytes of payload in them, %.4f of "
      "payload; %llu bytes of ring buffer, %.4f of payload), "
      "escalations %llu, raw segments %llu, anomalies %llu, resyncs %llu of %llu offers\n"
      "kernel losses: ring buffer full %llu, flow budget %llu, global budget %llu, "
      "flow create failed %llu, mid-stream %llu, oversize %llu, "
      "records not decoded %llu, records of unknown flows %llu, records with bad data %llu\n",
      (unsigned long long)payload, (unsigned long long)k[PG_CNT_EVENTS],
      (unsigned long long)k[PG_CNT_EVENT_BYTES],
      payload ? double(k[PG_CNT_EVENT_BYTES]) / double(payload) : 0.0,
      (unsigned long long)k[PG_CNT_RECORD_BYTES],
      payload ? double(k[PG_CNT_RECORD_BYTES]) / double(payload) : 0.0,
      (unsigned long long)k[PG_CNT_ESCALATIONS], (unsigned long long)k[PG_CNT_RAW_SEGMENTS],
      (unsigned long long)k[PG_CNT_ANOMALIES], (unsigned long long)k[PG_CNT_RESYNCS],
      (unsigned long long)in.resync_offers, (unsigned long long)k[PG_CNT_RINGBUF_FULL],
      (unsigned long long)k[PG_CNT_BUDGET_FLOW], (unsigned long long)k[PG_CNT_BUDGET_GLOBAL],
      (unsigned long long)k[PG_CNT_FLOW_CREATE_FAILED],
      (unsigned long long)k[PG_CNT_MIDSTREAM_MISS], (unsigned long long)k[PG_CNT_OVERSIZE],
      (unsigned long long)stats.decoder->malformed,
      (unsigned long long)stats.decoder->unknown_flow, (unsigned long long)in.malformed_events);
}

int RunReplay(const std::string& pcap, const std::vector<std::string>& rule_paths,
              bool no_prefilter) {
  if (!no_prefilter && geteuid() != 0) {
    std::cerr << "popguard-agent replay: loading the kernel programs needs root (CAP_BPF, "
                 "CAP_NET_ADMIN); run as root, or add --no-prefilter to send every packet "
                 "straight to the agent\n";
    return 2;
  }
  detect::LoadedRules loaded = detect::LoadRules(rule_paths);
  for (const rules::Diagnostic& error : loaded.errors) {
    std::cerr << error.ToString() << " (rule not loaded)\n";
  }
  if (!loaded.engine || loaded.engine->rules().empty()) {
    std::cerr << "popguard-agent replay: no rule could be loaded\n";
    return 2;
  }
  replay::ReplayOptions options;
  options.capture_path = pcap;
  options.prefilter = !no_prefilter;
  options.kernel_config = detect::PlanKernel(loaded.engine->rules(), DefaultConfig()).config;
  uint64_t alerts = 0;
  replay::ReplayStats stats;
  try {
    stats = replay::Replay(options, loaded.engine.get(), [&](const detect::Alert& alert) {
      ++alerts;
      std::cout << output::EveAlert(alert, output::AlertAction::kAllowed) << '\n';
    });
  } catch (const PrefilterError& error) {
    std::cerr << "popguard-agent replay: cannot load the kernel programs: " << error.what()
              << "\n(add --no-prefilter to send every packet straight to the agent)\n";
    return 2;
  }
  std::cout.flush();
  PrintCounters(stats, alerts);
  if (stats.capture_error) {
    std::cerr << "popguard-agent replay: " << stats.capture_error->message
              << " (the frames before it were processed)\n";
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"popguard-agent: POP3 intrusion-prevention sensor"};
  app.require_subcommand(1);

  std::string pcap;
  std::vector<std::string> rule_paths;
  bool no_prefilter = false;
  CLI::App* replay = app.add_subcommand(
      "replay",
      "Run a capture through the kernel prefilter and the detection engine; EVE JSON "
      "alerts on stdout, counters on stderr");
  replay->add_option("--pcap", pcap, "Capture to replay (pcap or pcapng)")->required();
  replay
      ->add_option("--rules", rule_paths,
                   "Rule file or directory of *.rules (repeatable; default: the shipped rules)")
      ->default_val(std::vector<std::string>{POPGUARD_DEFAULT_RULES});
  replay->add_flag("--no-prefilter", no_prefilter,
                   "Send every TCP payload straight to the agent (no kernel programs, no root)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // Usage errors exit 2, as getopt-style tools do; --help exits 0.
    return app.exit(error) == 0 ? 0 : 2;
  }
  if (replay->parsed()) return RunReplay(pcap, rule_paths, no_prefilter);
  return 0;
}
