// From traffic to alerts: per-connection reassembly, the POP3 session
// parser and the rule engine, fed either by the kernel prefilter's
// ring-buffer records (the sensor, and replay) or by whole TCP segments
// (`replay --no-prefilter`). Both paths end in the same reassemblers, so
// what differs between them is only what the kernel chose to keep.
//
// The kernel keeps message bodies: a status line that arrives past a gap
// while the session is inside a body means the body, terminator included,
// was kept in the kernel, and the session skips it. Any other gap is a loss
// (ring buffer full, budget, capture), counted and resynchronised at the
// next line.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent/detect/engine.h"
#include "agent/flow/flow_table.h"
#include "agent/flow/reassembler.h"
#include "agent/packet/packet.h"
#include "agent/pop3/session.h"
#include "agent/prefilter/event.h"

namespace popguard::inspect {

struct InspectorOptions {
  flow::FlowTableOptions flows;
  flow::ReassemblerOptions reassembly;
  pop3::SessionOptions session;
  // Server ports and their kind (PG_PORT_POP3, PG_PORT_POP3_TLS), as the
  // kernel's port map; the no-prefilter path orients flows with it.
  std::unordered_map<uint16_t, uint8_t> ports = {{110, PG_PORT_POP3}, {995, PG_PORT_POP3_TLS}};
  // Receives offers to frame a flow the kernel escalated again
  // (struct pg_resync); unset, none are made.
  std::function<void(const pg_flow_key&, const pg_resync&)> offer_resync;
};

struct InspectorCounters {
  uint64_t kernel_events = 0;
  std::array<uint64_t, 9> kernel_events_by_type{};      // index: pg_event_type
  // Kernel records whose data does not fit their type (a SYN's flags).
  uint64_t malformed_events = 0;
  std::array<uint64_t, PG_AN__MAX> kernel_anomalies{};  // index: pg_anomaly
  uint64_t packets = 0;
  uint64_t tcp_payload_bytes = 0;
  uint64_t not_pop3 = 0;
  uint64_t fragments = 0;
  uint64_t truncated = 0;
  uint64_t malformed = 0;
  uint64_t flows = 0;
  // Bodies the kernel kept, skipped in step with it.
  uint64_t bodies_elided = 0;
  // TLS record contents the kernel did not send (not a loss: not POP3).
  uint64_t tls_bytes_skipped = 0;
  // Losses: holes given up in a stream, and their bytes.
  uint64_t stream_gaps = 0;
  uint64_t stream_gap_bytes = 0;
  // Retransmitted bytes the agent could not compare: the kernel kept the
  // originals (a body). Not a loss of stream data, but unchecked.
  uint64_t overlap_bytes_unchecked = 0;
  // Evasion attempts: overlapping segments whose bytes differ.
  uint64_t overlap_conflicts = 0;
  uint64_t alerts = 0;
  // Offers made to take escalated flows back to kernel framing.
  uint64_t resync_offers = 0;
};

// The unit a POP3 event becomes (detect/unit.h), or nullopt for events
// rules do not see (a multi-line response's end, the switch to TLS). Its
// views point into `event` and `*payload`, which holds the payload buffer.
std::optional<detect::Unit> UnitOf(const pop3::Event& event, int64_t timestamp_ns,
                                   std::string* payload);

class Inspector {
 public:
  using AlertSink = std::function<void(const detect::Alert&)>;

  Inspector(detect::RuleEngine* engine, AlertSink sink, InspectorOptions options = {});
  ~Inspector();
  Inspector(const Inspector&) = delete;
  Inspector& operator=(const Inspector&) = delete;

  // One ring-buffer record of the kernel prefilter.
  void OnKernelEvent(const Event& event);
  // One decoded frame, every TCP payload straight to the agent.
  void OnPacket(int64_t timestamp_ns, const packet::Decoded& decoded);
  // The traffic has ended (end of capture): every hole still open is given
  // up so buffered bytes are inspected, and flows are dropped.
  void Finish();

  const InspectorCounters& counters() const { return counters_; }
  const flow::FlowTableCounters& flow_counters() const { return flows_.counters(); }

 private:
  struct Conversation;

  Conversation& Find(const pg_flow_key& key, uint64_t now_ns, bool* created = nullptr);
  Conversation& FindFor(const Event& event);
  void MaybeOfferResync(Conversation& conversation);
  void OnPop3Event(Conversation& conversation, const pop3::Event& event);
  void Inspect(Conversation& conversation, const detect::Unit& unit);
  // A client's opening SYN, for the rules that test TCP flags.
  void InspectSyn(const pg_flow_key& key, uint8_t tcp_flags);
  // Hands alerts_ to the sink.
  void Sink();
  void FlushHoles(Conversation& conversation);
  void CountHole(Conversation& conversation, uint32_t len);
  void AddAfterHole(Conversation& conversation, flow::StreamReassembler& stream, int hole,
                    const Event& event, std::string_view data);

  detect::RuleEngine* engine_;
  AlertSink sink_;
  InspectorOptions options_;
  flow::FlowTable<std::unique_ptr<Conversation>> flows_;
  InspectorCounters counters_;
  int64_t now_ns_ = 0;
  uint32_t last_offer_gen_ = 0;
  std::vector<detect::Alert> alerts_;
};

}  // namespace popguard::inspect
