// libFuzzer entry for event decoding in the inspector: kernel ring-buffer
// records (through the agent's EventDecoder) and, mixed in on the same flows, whole frames through
// DecodeEthernet, down through reassembly, the POP3 session and the rule
// engine.
//
// The input is a script. The first byte picks the options (bit 0: tiny
// reassembly buffers, so the limit paths run; bit 1: tiny session limits;
// bit 2: a flow table of 2 entries with a 1 s idle timeout, so flows are
// evicted and expired mid-conversation; bit 3: streams start just before
// 2^31 instead of just before 2^32; bits 4-7: where below that point).
// Then records, each a 5-byte header and its data:
//   op     bits 0-1 the flow (0: IPv4 to port 110, 1: IPv4 to port 995,
//          2: IPv6 to port 110, 3: flow 0 again); bits 2-4 the kind (0: a
//          frame through OnPacket, else that pg_event_type); bit 5 the
//          direction (1: to the client); bits 6-7 how the sequence number
//          is chosen from the next expected one: in order, overlapping
//          (aux + 1 bytes back), after a gap (aux + 1 bytes on), or a jump
//          (aux bit 7: to about 2^31 away, the serial-number ambiguity;
//          else 256 * aux on, or back when aux is odd)
//   flags  the record's flags, or the TCP flags of a frame
//   len    data bytes that follow: 0-254, 255 meaning 256 (a record
//          carries the first PG_EVENT_DATA of them)
//   aux    the sequence distance above; the record's anomaly = aux % 20;
//          bit 6: the record carries its flow key again; the frame variant
//   time   bits 0-4: steps of 37 ms to add to the clock; bit 5: 61 s
//          more (threshold windows, idle timeout); bit 6: the clock goes
//          5 s back instead; bit 7: odd record (an event type outside the
//          enum, or a record cut short or too long; a frame in a variant:
//          IP length 0, IP length past the frame, Ethernet padding, VLAN)
// Streams start near the wrap point, so sequence numbers cross it within
// the first few hundred bytes. After the script, Finish().
//
// Oracles besides the sanitizers: a decoded record has its flow's key and
// its time to the microsecond, and one that cannot be decoded is counted;
// no inspector or flow-table counter ever decreases; each call counts
// exactly one event or packet; the alerts
// counter equals the alerts the sink saw and what the engine counted;
// every alert names a rule of the engine; a new conversation is counted
// exactly when the flow table inserts one. POPGUARD_FUZZ_VERBOSE=1 prints
// each alert and the counters, to look at what one input does.
#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/detect/engine.h"
#include "agent/flow/reassembler.h"
#include "agent/inspect/inspector.h"
#include "agent/packet/packet.h"
#include "agent/prefilter/event.h"
#include "agent/rules/parser.h"
#include "bpf/popguard.h"

namespace {

using popguard::DecoderCounters;
using popguard::detect::Alert;
using popguard::detect::RuleEngine;
using popguard::inspect::Inspector;
using popguard::inspect::InspectorCounters;
using popguard::inspect::InspectorOptions;

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

bool Verbose() {
  static const bool verbose = std::getenv("POPGUARD_FUZZ_VERBOSE") != nullptr;
  return verbose;
}

// One rule or more for every kind of condition the engine evaluates.
constexpr std::string_view kRules = R"RULES(
alert tcp any any -> any any (msg:"content"; flow:to_server; pop3.command; content:"USER"; bsize:4; sid:1;)
alert tcp any any -> any any (msg:"pcre"; pop3.args; pcre:"/%[0-9]*[nsxp]/"; sid:2;)
alert tcp any any -> any any (msg:"isdataat"; pop3.command; content:"USER"; pop3.args; content:!"@"; isdataat:10; sid:3;)
alert tcp any any -> any any (msg:"isdataat rel"; content:"PASS "; isdataat:5,relative; sid:4;)
alert tcp any any -> any any (msg:"byte_test"; pop3.response; content:"+OK "; byte_test:10,>,4000000000,0,relative,string,dec; sid:5;)
alert tcp any any -> any any (msg:"base64"; pop3.args; base64_decode; base64_data; content:"root"; sid:6;)
alert tcp any any -> any any (msg:"sasl"; flow:to_server; pop3.sasl; content:"admin"; nocase; sid:7;)
alert tcp any any -> any any (msg:"set"; pop3.command; content:"AUTH"; flowbits:set,auth; flowbits:noalert; sid:8;)
alert tcp any any -> any any (msg:"isset"; pop3.response; content:"-ERR"; flowbits:isset,auth; flowbits:unset,auth; sid:9;)
alert tcp any any -> any any (msg:"limit"; pop3.command; content:"PASS"; threshold:type limit, track by_src, count 1, seconds 60; sid:10;)
alert tcp any any -> any any (msg:"threshold"; pop3.command; content:"RETR"; threshold:type threshold, track by_dst, count 3, seconds 10; sid:11;)
alert tcp any any -> any any (msg:"both"; pop3.response; content:"-ERR"; threshold:type both, track by_src, count 2, seconds 5; sid:12;)
alert tcp any any -> any any (msg:"df"; pop3.command; pcre:"/^(?:PASS|APOP|AUTH)$/"; pop3.args; bsize:>0; detection_filter:track by_src, count 3, seconds 60; sid:13;)
alert tcp any any -> any any (msg:"realm"; flow:to_client; pop3.digest_realm; bsize:>=8; sid:14;)
alert tcp any any -> any any (msg:"uidl"; pop3.command; content:"UIDL"; bsize:4; pop3.args; bsize:>0; pcre:!"/^[0-9]{1,10}[ \t]*$/"; sid:15;)
alert tcp any any -> any any (msg:"stat"; pop3.response; content:"+OK"; nocase; startswith; pcre:"/^\+OK[ \t]+(?:-[0-9]|[0-9]{10,})/i"; sid:16;)
alert tcp any any -> any any (msg:"payload"; pkt_data; content:"%"; pcre:"/(?:%[-+#0-9.*$]{0,12}[nspxXdiu][^%]{0,2}){2}/"; sid:17;)
alert tcp any any -> any any (msg:"dist"; content:"A"; content:"B"; distance:0; within:1; sid:18;)
alert tcp any any -> any any (msg:"pcre R"; content:"TOP"; pcre:"/^ +-/R"; sid:19;)
alert tcp any any -> any any (msg:"sasl star"; flow:to_server; flowbits:isset,auth; content:"*"; depth:1; pcre:"/^\*\r?\n/"; sid:20;)
alert tcp any any -> any 110 (msg:"port"; flow:to_server,established; pop3.command; content:"STLS"; sid:21;)
alert tcp any any <> any any (msg:"e1"; app-layer-event:pop3.too_many_transactions; sid:101;)
alert tcp any any <> any any (msg:"e2"; app-layer-event:pop3.request_too_long; sid:102;)
alert tcp any any <> any any (msg:"e3"; app-layer-event:pop3.incorrect_argument_count; sid:103;)
alert tcp any any <> any any (msg:"e4"; app-layer-event:pop3.unknown_command; sid:104;)
alert tcp any any <> any any (msg:"e5"; app-layer-event:pop3.response_too_long; sid:105;)
alert tcp any any <> any any (msg:"e6"; app-layer-event:pop3.bad_status_token; sid:106;)
alert tcp any any <> any any (msg:"e7"; app-layer-event:pop3.unterminated_line; sid:107;)
alert tcp any any <> any any (msg:"e8"; app-layer-event:pop3.sasl_decode_failure; sid:108;)
alert tcp any any <> any any (msg:"e9"; app-layer-event:pop3.unsolicited_response; sid:109;)
alert tcp any any <> any any (msg:"e10"; app-layer-event:pop3.stls_command_injection; sid:110;)
alert tcp any any <> any any (msg:"e11"; app-layer-event:pop3.stls_response_injection; sid:111;)
alert tcp any any <> any any (msg:"e12"; app-layer-event:pop3.lf_without_cr; sid:112;)
alert tcp any any <> any any (msg:"e13"; app-layer-event:pop3.reassembly_overlap_different_data; sid:113;)
)RULES";

// Rules for app-layer events newer than the rest; a parser without them
// refuses these, and they are left out.
constexpr std::string_view kNewerRules = R"RULES(
alert tcp any any <> any any (msg:"e14"; app-layer-event:pop3.event_budget_exceeded; sid:114;)
)RULES";

// Compiled once: Hyperscan compilation costs far more than one input.
// Threshold state therefore carries over between inputs, as it does
// between flows in the agent.
RuleEngine& Engine() {
  static RuleEngine* engine = [] {
    popguard::rules::ParseResult parsed =
        popguard::rules::ParseRules(kRules, "fuzz.rules", popguard::rules::Variables());
    for (const auto& error : parsed.errors) std::fprintf(stderr, "%s\n", error.ToString().c_str());
    Check(parsed.errors.empty());
    popguard::rules::ParseResult newer =
        popguard::rules::ParseRules(kNewerRules, "fuzz-newer.rules", popguard::rules::Variables());
    for (auto& rule : newer.rules) parsed.rules.push_back(std::move(rule));
    popguard::detect::CompileResult compiled = popguard::detect::Compile(std::move(parsed.rules));
    for (const auto& error : compiled.errors) {
      std::fprintf(stderr, "%s\n", error.ToString().c_str());
    }
    Check(compiled.errors.empty() && compiled.engine != nullptr);
    return compiled.engine.release();
  }();
  return *engine;
}

struct FlowSpec {
  uint8_t family;
  std::array<uint8_t, 16> client;
  std::array<uint8_t, 16> server;
  uint16_t client_port;
  uint16_t server_port;
};

const std::array<FlowSpec, 3> kFlows = {{
    {4, {10, 0, 0, 1}, {10, 0, 0, 2}, 40000, 110},
    {4, {10, 0, 0, 3}, {10, 0, 0, 2}, 40001, 995},
    {6,
     {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1},
     {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2},
     40002,
     110},
}};

// Exactly the key OnPacket makes for a frame of this flow.
pg_flow_key KeyOf(const FlowSpec& flow) {
  pg_flow_key key{};
  const size_t len = flow.family == 6 ? 16 : 4;
  std::memcpy(key.client_addr, flow.client.data(), len);
  std::memcpy(key.server_addr, flow.server.data(), len);
  key.client_port = htons(flow.client_port);
  key.server_port = htons(flow.server_port);
  key.family = flow.family;
  return key;
}

void Put16(std::vector<uint8_t>& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}

void Put32(std::vector<uint8_t>& out, uint32_t v) {
  Put16(out, static_cast<uint16_t>(v >> 16));
  Put16(out, static_cast<uint16_t>(v));
}

// An Ethernet frame of one TCP segment of the flow. variant (odd records
// only): 0 IP length 0 ("to the end of the frame"), 1 an IP length 8 bytes
// past the frame (truncated, payload still usable), 2 Ethernet padding
// after the datagram, 3 a VLAN tag.
std::vector<uint8_t> BuildFrame(const FlowSpec& flow, bool to_server, uint32_t seq, uint8_t flags,
                                std::string_view payload, int variant) {
  std::vector<uint8_t> frame;
  frame.reserve(14 + 4 + 40 + 20 + payload.size() + 16);
  for (int i = 0; i < 12; ++i) frame.push_back(static_cast<uint8_t>(2 + (i == 5)));
  if (variant == 3) {
    Put16(frame, 0x8100);
    Put16(frame, 100);
  }
  Put16(frame, flow.family == 6 ? 0x86dd : 0x0800);
  const auto& src = to_server ? flow.client : flow.server;
  const auto& dst = to_server ? flow.server : flow.client;
  const size_t tcp_len = 20 + payload.size();
  uint16_t ip_len = 0;
  if (flow.family == 4) {
    ip_len = static_cast<uint16_t>(20 + tcp_len);
  } else {
    ip_len = static_cast<uint16_t>(tcp_len);
  }
  if (variant == 0) ip_len = 0;
  if (variant == 1) ip_len = static_cast<uint16_t>(ip_len + 8);
  if (flow.family == 4) {
    frame.insert(frame.end(), {0x45, 0});
    Put16(frame, ip_len);
    frame.insert(frame.end(), {0, 1, 0x40, 0, 64, 6, 0, 0});
    frame.insert(frame.end(), src.begin(), src.begin() + 4);
    frame.insert(frame.end(), dst.begin(), dst.begin() + 4);
  } else {
    frame.insert(frame.end(), {0x60, 0, 0, 0});
    Put16(frame, ip_len);
    frame.insert(frame.end(), {6, 64});
    frame.insert(frame.end(), src.begin(), src.end());
    frame.insert(frame.end(), dst.begin(), dst.end());
  }
  Put16(frame, to_server ? flow.client_port : flow.server_port);
  Put16(frame, to_server ? flow.server_port : flow.client_port);
  Put32(frame, seq);
  Put32(frame, 1);
  frame.insert(frame.end(), {0x50, flags, 0xff, 0xff, 0, 0, 0, 0});
  frame.insert(frame.end(), payload.begin(), payload.end());
  if (variant == 2) frame.resize(frame.size() + 6, 0);
  return frame;
}

// Every counter, in one list, to compare snapshots.
std::vector<uint64_t> Flatten(const Inspector& inspector) {
  const InspectorCounters& c = inspector.counters();
  std::vector<uint64_t> all = {c.kernel_events,     c.packets,     c.tcp_payload_bytes,
                               c.not_pop3,          c.fragments,   c.truncated,
                               c.malformed,         c.flows,       c.bodies_elided,
                               c.tls_bytes_skipped, c.stream_gaps, c.stream_gap_bytes,
                               c.overlap_conflicts, c.alerts};
  all.insert(all.end(), c.kernel_events_by_type.begin(), c.kernel_events_by_type.end());
  all.insert(all.end(), c.kernel_anomalies.begin(), c.kernel_anomalies.end());
  const auto& f = inspector.flow_counters();
  all.insert(all.end(), {f.inserted, f.evicted_capacity, f.expired_idle});
  return all;
}

void CheckCounters(const Inspector& inspector, std::vector<uint64_t>& last, uint64_t sink_alerts) {
  std::vector<uint64_t> now = Flatten(inspector);
  Check(now.size() == last.size());
  for (size_t i = 0; i < now.size(); ++i) Check(now[i] >= last[i]);
  Check(inspector.counters().alerts == sink_alerts);
  Check(inspector.counters().flows == inspector.flow_counters().inserted);
  last = std::move(now);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  RuleEngine& engine = Engine();
  const uint8_t knobs = data[0];

  InspectorOptions options;
  if (knobs & 1) {
    options.reassembly.max_buffered = 64 + (knobs >> 4) * 16;
    options.reassembly.history_bytes = knobs >> 5;
  }
  if (knobs & 2) {
    options.session.max_request_line = 4 + (knobs >> 4 & 7) * 4;
    options.session.max_response_line = 4 + (knobs >> 5 & 7) * 4;
    options.session.max_line = 8 + (knobs >> 3 & 15) * 8;
    options.session.max_pending_commands = 1 + (knobs >> 6 & 3);
  }
  if (knobs & 4) {
    options.flows.capacity = 2;
    options.flows.idle_timeout_ns = 1'000'000'000;
  }
  const uint32_t start = ((knobs & 8) ? 0x80000000u : 0u) - 16u * (knobs >> 4) - 8u;

  uint64_t sink_alerts = 0;
  const size_t rule_count = engine.rules().size();
  const popguard::rules::Rule* first_rule = engine.rules().data();
  Inspector inspector(
      &engine,
      [&](const Alert& alert) {
        Check(alert.rule != nullptr && alert.rule >= first_rule &&
              alert.rule < first_rule + rule_count);
        ++sink_alerts;
        if (Verbose()) std::fprintf(stderr, "alert sid %u\n", alert.rule->sid);
      },
      options);
  const uint64_t engine_alerts_before = engine.counters().alerts;

  // next[flow][dir]: the next sequence number the script expects.
  std::array<std::array<uint32_t, 2>, 3> next{};
  for (size_t f = 0; f < next.size(); ++f) {
    for (size_t d = 0; d < 2; ++d) next[f][d] = start - static_cast<uint32_t>(f * 7 + d * 3);
  }
  std::array<pg_flow_key, 3> keys{};
  std::array<bool, 3> key_sent{};
  // Room for two of the three flows: ids sent without their key are
  // sometimes forgotten.
  popguard::EventDecoder decoder(2);
  for (size_t f = 0; f < kFlows.size(); ++f) keys[f] = KeyOf(kFlows[f]);

  std::vector<uint64_t> last = Flatten(inspector);
  uint64_t ts = 1'000'000'000ull * (1 + (knobs & 7));
  size_t at = 1;
  while (at + 5 <= size) {
    const uint8_t op = data[at];
    const uint8_t flags = data[at + 1];
    const uint8_t len_byte = data[at + 2];
    const uint8_t aux = data[at + 3];
    const uint8_t time = data[at + 4];
    at += 5;
    const size_t want = len_byte == 255 ? 256 : len_byte;
    const size_t len = std::min(want, size - at);
    const std::string_view bytes(reinterpret_cast<const char*>(data + at), len);
    at += len;

    const size_t flow = (op & 3) == 3 ? 0 : (op & 3);
    const int kind = op >> 2 & 7;
    const bool to_client = op & 0x20;
    const bool odd = time & 0x80;

    if (time & 0x40) {
      ts -= std::min<uint64_t>(ts, 5'000'000'000ull);
    } else {
      ts += static_cast<uint64_t>(time & 0x1f) * 37'000'000ull;
      if (time & 0x20) ts += 61'000'000'000ull;
    }

    // The stream the record feeds.
    int dir = to_client ? PG_DIR_TO_CLIENT : PG_DIR_TO_SERVER;
    if (kind == PG_EV_CLIENT_DATA) dir = PG_DIR_TO_SERVER;
    if (kind == PG_EV_SERVER_LINE || kind == PG_EV_BODY) dir = PG_DIR_TO_CLIENT;
    uint32_t& expected = next[flow][dir];
    uint32_t seq = expected;
    switch (op >> 6) {
      case 0:
        break;
      case 1:
        seq -= aux + 1u;
        break;
      case 2:
        seq += aux + 1u;
        break;
      default:
        if (aux & 0x80) {
          seq += 0x80000000u + (aux & 0x7f) - 64u;
        } else if (aux & 1) {
          seq -= 256u * aux;
        } else {
          seq += 256u * aux;
        }
        break;
    }

    const std::vector<uint64_t> before = last;
    if (kind == 0) {
      const int variant = odd ? aux & 3 : -1;
      const std::vector<uint8_t> frame =
          BuildFrame(kFlows[flow], !to_client, seq, flags, bytes, variant);
      // A copy of exactly the frame's size, so an overread is an ASan report.
      const std::vector<uint8_t> exact(frame.begin(), frame.end());
      const popguard::packet::Decoded decoded = popguard::packet::DecodeEthernet(exact);
      Check(decoded.has_tcp);
      inspector.OnPacket(static_cast<int64_t>(ts), decoded);
      if (flags & 0x02) seq += 1;  // SYN: the stream starts after it
      CheckCounters(inspector, last, sink_alerts);
      Check(last[1] == before[1] + 1);  // packets
      Check(last[0] == before[0]);      // kernel_events
    } else {
      // The record as the kernel writes it, through the agent's decoder:
      // a flow's first record (and any with aux bit 6) carries the key,
      // the others only the flow's id, which the decoder may have let go.
      const size_t data_len = std::min<size_t>(len, PG_EVENT_DATA);
      const auto id = static_cast<uint32_t>(flow + 1);
      const bool with_key = !key_sent[flow] || (aux & 0x40);
      pg_event_head head{};
      head.ts_us = static_cast<uint32_t>(ts / 1000);
      head.flow_id = id;
      const uint8_t anomaly = aux % 20;
      // A PG_AN_GAP anomaly says where the stream stood before the hole.
      head.seq = kind == PG_EV_ANOMALY && anomaly == PG_AN_GAP ? expected : seq;
      head.type = static_cast<uint8_t>(kind | (with_key ? PG_EVH_KEY : 0));
      head.flags = flags;
      head.meta = static_cast<uint8_t>(PG_EVH_META(to_client ? PG_DIR_TO_CLIENT : PG_DIR_TO_SERVER,
                                                   to_client ? PG_HOOK_TC_EGRESS : PG_HOOK_XDP,
                                                   anomaly));
      std::vector<uint8_t> record(reinterpret_cast<const uint8_t*>(&head),
                                  reinterpret_cast<const uint8_t*>(&head + 1));
      if (with_key) {
        const auto* k = reinterpret_cast<const uint8_t*>(&keys[flow]);
        record.insert(record.end(), k, k + sizeof(pg_flow_key));
      }
      record.insert(record.end(), bytes.begin(), bytes.begin() + data_len);
      if (odd) {
        if (aux & 1) {
          // Maybe none of pg_event_type; the key bit still tells the truth.
          record[offsetof(pg_event_head, type)] =
              static_cast<uint8_t>(((aux ^ flags) & PG_EVH_TYPE_MASK) | (with_key ? PG_EVH_KEY : 0));
        } else {
          // Cut into the head or key, or past the most data a record holds.
          if (aux & 2) {
            record.resize(len_byte % (sizeof(pg_event_head) + (with_key ? sizeof(pg_flow_key) : 0)));
          } else {
            record.resize(sizeof(pg_event_head) + sizeof(pg_flow_key) + PG_EVENT_DATA + 1 + len_byte);
          }
        }
      }
      // An exact-size copy, so an overread is an ASan report.
      const std::vector<uint8_t> exact(record.begin(), record.end());
      const DecoderCounters decoded_before = decoder.counters();
      popguard::Event event;
      if (decoder.Decode(exact, ts, &event)) {
        if (with_key) key_sent[flow] = true;
        Check(std::memcmp(&event.key, &keys[flow], sizeof(pg_flow_key)) == 0);
        Check(event.ts_ns == ts / 1000 * 1000);
        inspector.OnKernelEvent(event);
        CheckCounters(inspector, last, sink_alerts);
        Check(last[0] == before[0] + 1);  // kernel_events
      } else {
        const DecoderCounters& d = decoder.counters();
        Check(d.malformed + d.unknown_flow == decoded_before.malformed + decoded_before.unknown_flow + 1);
        CheckCounters(inspector, last, sink_alerts);
        Check(last[0] == before[0]);
      }
      Check(last[1] == before[1]);  // packets
    }
    if (popguard::flow::SeqBefore(expected, seq + static_cast<uint32_t>(len))) {
      expected = seq + static_cast<uint32_t>(len);
    }
  }
  inspector.Finish();
  CheckCounters(inspector, last, sink_alerts);
  Check(engine.counters().alerts - engine_alerts_before == sink_alerts);
  if (Verbose()) {
    const InspectorCounters& c = inspector.counters();
    std::fprintf(stderr,
                 "events %lu packets %lu flows %lu alerts %lu gaps %lu gap_bytes %lu "
                 "conflicts %lu bodies_elided %lu tls_skipped %lu\n",
                 c.kernel_events, c.packets, c.flows, c.alerts, c.stream_gaps, c.stream_gap_bytes,
                 c.overlap_conflicts, c.bodies_elided, c.tls_bytes_skipped);
  }
  return 0;
}
