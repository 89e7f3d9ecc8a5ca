#include "agent/inspect/inspector.h"

#include <arpa/inet.h>

#include <cstring>
#include <utility>

namespace popguard::inspect {

namespace {

detect::FlowTuple TupleOf(const pg_flow_key& key) {
  detect::FlowTuple tuple;
  const bool v6 = key.family == 6;
  tuple.client.v6 = v6;
  tuple.server.v6 = v6;
  std::memcpy(tuple.client.bytes.data(), key.client_addr, v6 ? 16 : 4);
  std::memcpy(tuple.server.bytes.data(), key.server_addr, v6 ? 16 : 4);
  tuple.client_port = ntohs(key.client_port);
  tuple.server_port = ntohs(key.server_port);
  return tuple;
}

// The line end a parsed line had on the wire, from its lengths.
std::string_view LineEnd(uint64_t wire_length, size_t kept, bool truncated) {
  if (truncated || wire_length <= kept) return "";
  return wire_length - kept >= 2 ? "\r\n" : "\n";
}

}  // namespace

struct Inspector::Conversation {
  pg_flow_key key{};
  detect::FlowTuple tuple;
  bool tls_port = false;
  std::unique_ptr<pop3::Session> session;
  std::unique_ptr<flow::StreamReassembler> client;
  std::unique_ptr<flow::StreamReassembler> server;
  detect::FlowRuleState rules;
  // What a hole given up right now is: by default a loss; while skipping to
  // a kernel status line, a body the kernel kept, terminator included; while
  // skipping to where the kernel saw a gap, body bytes it kept (the body may
  // go on); while skipping to a TLS record head, record contents the kernel
  // does not send.
  enum class Hole { kLoss, kKeptBody, kKept, kTlsRecord };
  Hole hole = Hole::kLoss;
  // Scratch for the payload buffer of the unit being inspected.
  std::string payload;
  // The conversation began at the kernel flow's first record, a framed one:
  // the kernel had followed the connection from its handshake, so the
  // streams here start at their first byte.
  bool from_start = false;
  // The kernel sends this flow up raw (an escalation) as far as the agent
  // knows; framed server records say it frames again.
  bool escalated = false;
  // A hole was given up: the session may have lost its place in a line.
  bool lost = false;
  // The last offer to frame again, so an unchanged one is not repeated.
  std::optional<pg_resync> offered;

  // The stream of bytes going one way.
  flow::StreamReassembler& StreamOf(bool to_server) { return to_server ? *client : *server; }
};

Inspector::Inspector(detect::RuleEngine* engine, AlertSink sink, InspectorOptions options)
    : engine_(engine),
      sink_(std::move(sink)),
      options_(std::move(options)),
      flows_(options_.flows) {
  flows_.OnEvict(
      [this](const pg_flow_key&, std::unique_ptr<Conversation>& conversation, flow::EvictReason) {
        if (conversation) FlushHoles(*conversation);
      });
}

Inspector::~Inspector() = default;

Inspector::Conversation& Inspector::Find(const pg_flow_key& key, uint64_t now_ns, bool* created) {
  std::unique_ptr<Conversation>& slot = flows_.FindOrInsert(key, now_ns);
  if (created) *created = !slot;
  if (slot) return *slot;
  counters_.flows++;
  slot = std::make_unique<Conversation>();
  Conversation* c = slot.get();
  c->key = key;
  c->tuple = TupleOf(key);
  auto port = options_.ports.find(c->tuple.server_port);
  c->tls_port = port != options_.ports.end() && port->second == PG_PORT_POP3_TLS;
  c->session = std::make_unique<pop3::Session>(
      [this, c](const pop3::Event& event) { OnPop3Event(*c, event); }, options_.session);
  c->client = std::make_unique<flow::StreamReassembler>(
      [c](std::string_view bytes) {
        if (!c->tls_port) c->session->OnClientData(bytes);
      },
      options_.reassembly);
  c->server = std::make_unique<flow::StreamReassembler>(
      [c](std::string_view bytes) {
        if (!c->tls_port) c->session->OnServerData(bytes);
      },
      options_.reassembly);
  c->client->OnGap([this, c](uint32_t, uint32_t len) {
    CountHole(*c, len);
    c->session->SkipClientBytes(len);
  });
  c->server->OnGap([this, c](uint32_t, uint32_t len) {
    if (c->hole == Conversation::Hole::kKeptBody && c->session->in_body()) {
      counters_.bodies_elided++;
      c->session->SkipServerBytes(len, true);
      return;
    }
    if (c->hole == Conversation::Hole::kKept && c->session->in_body()) {
      c->session->SkipServerBytes(len, false);
      return;
    }
    CountHole(*c, len);
    c->session->SkipServerBytes(len, false);
  });
  auto on_conflict = [this, c](pop3::Direction direction) {
    return [this, c, direction](uint32_t, uint32_t) {
      counters_.overlap_conflicts++;
      detect::Unit unit;
      unit.direction = direction;
      unit.timestamp_ns = now_ns_;
      unit.anomaly = rules::Pop3Event::kReassemblyOverlapDifferentData;
      Inspect(*c, unit);
    };
  };
  c->client->OnConflict(on_conflict(pop3::Direction::kToServer));
  c->server->OnConflict(on_conflict(pop3::Direction::kToClient));
  return *c;
}

void Inspector::CountHole(Conversation& c, uint32_t len) {
  if (c.hole == Conversation::Hole::kTlsRecord) {
    counters_.tls_bytes_skipped += len;
    return;
  }
  counters_.stream_gaps++;
  counters_.stream_gap_bytes += len;
  c.lost = true;
}

Inspector::Conversation& Inspector::FindFor(const Event& event) {
  bool created = false;
  Conversation& c = Find(event.key, event.ts_ns, &created);
  if (created) {
    c.from_start = event.keyed && event.flow_id != 0 &&
                   (event.type == PG_EV_CLIENT_DATA || event.type == PG_EV_SERVER_LINE);
  }
  return c;
}

namespace {

uint8_t KernelKind(pop3::Session::ResponseKind kind) {
  switch (kind) {
    case pop3::Session::ResponseKind::kSingle: return PG_RK_SINGLE;
    case pop3::Session::ResponseKind::kMulti: return PG_RK_MULTI;
    case pop3::Session::ResponseKind::kSasl: return PG_RK_SASL;
    case pop3::Session::ResponseKind::kStls: return PG_RK_STLS;
    case pop3::Session::ResponseKind::kGreeting: return PG_RK_GREETING;
  }
  return PG_RK_SINGLE;
}

}  // namespace

// The kernel takes an offer only where its streams end exactly where the
// agent's do (bpf/lib/pop3.h pg_try_resync), so an offer made while more is
// on its way is harmless: the next one, made when the agent catches up,
// replaces it.
void Inspector::MaybeOfferResync(Conversation& c) {
  if (!options_.offer_resync || !c.escalated || !c.from_start || c.lost || c.tls_port) return;
  if (!c.client->started() || !c.server->started()) return;
  const std::optional<pop3::Session::FramingPoint> point = c.session->Framing();
  if (!point || point->owed.size() > PG_RESPQ_LEN) return;
  pg_resync offer{};
  offer.next_seq[PG_DIR_TO_SERVER] = c.client->next_seq();
  offer.next_seq[PG_DIR_TO_CLIENT] = c.server->next_seq();
  for (size_t i = 0; i < point->owed.size(); ++i) offer.respq[i] = KernelKind(point->owed[i]);
  offer.q_len = static_cast<uint8_t>(point->owed.size());
  offer.phase = point->sasl ? PG_PHASE_SASL : PG_PHASE_CMD;
  offer.server_in_body = point->in_body;
  if (c.offered) {
    offer.gen = c.offered->gen;
    if (std::memcmp(&offer, &*c.offered, sizeof(offer)) == 0) return;
  }
  // Generations are per agent, never 0: the kernel takes each once.
  if (++last_offer_gen_ == 0) ++last_offer_gen_;
  offer.gen = last_offer_gen_;
  c.offered = offer;
  counters_.resync_offers++;
  options_.offer_resync(c.key, offer);
}

// Records that begin a unit of their own (a status line, a TLS record head)
// follow whatever the kernel kept back, so the hole before them is given up
// at once rather than waited for.
void Inspector::AddAfterHole(Conversation& c, flow::StreamReassembler& stream, int hole,
                             const Event& event, std::string_view data) {
  if (stream.started() && flow::SeqBefore(stream.next_seq(), event.seq)) {
    c.hole = static_cast<Conversation::Hole>(hole);
    stream.SkipTo(event.seq);
    c.hole = Conversation::Hole::kLoss;
  }
  stream.Add(event.seq, data);
}

void Inspector::OnKernelEvent(const Event& event) {
  counters_.kernel_events++;
  if (event.type < counters_.kernel_events_by_type.size()) {
    counters_.kernel_events_by_type[event.type]++;
  }
  now_ns_ = static_cast<int64_t>(event.ts_ns);
  const std::string_view data(reinterpret_cast<const char*>(event.data),
                              std::min<size_t>(event.len, PG_EVENT_DATA));
  Conversation* conversation = nullptr;
  switch (event.type) {
    case PG_EV_CLIENT_DATA:
      conversation = &FindFor(event);
      conversation->client->Add(event.seq, data);
      break;
    case PG_EV_SERVER_LINE: {
      Conversation& c = FindFor(event);
      conversation = &c;
      // Only a direction the kernel frames sends lines, and it frames the
      // server direction only when it frames the client's too.
      c.escalated = false;
      if (event.flags & PG_EVF_FIRST) {
        AddAfterHole(c, *c.server, static_cast<int>(Conversation::Hole::kKeptBody), event, data);
      } else {
        c.server->Add(event.seq, data);
      }
      break;
    }
    case PG_EV_TLS_RECORD: {
      // Record heads are stream bytes too: the client's first one tells the
      // session that TLS really started after STLS, as it does without the
      // prefilter.
      Conversation& c = FindFor(event);
      conversation = &c;
      AddAfterHole(c, c.StreamOf(event.dir == PG_DIR_TO_SERVER),
                   static_cast<int>(Conversation::Hole::kTlsRecord), event, data);
      break;
    }
    case PG_EV_SYN:
      // One byte, the segment's TCP flags; anything else was not sent by
      // the kernel programs this agent was built with.
      if (data.size() != 1) {
        counters_.malformed_events++;
        break;
      }
      InspectSyn(event.key, static_cast<uint8_t>(data[0]));
      break;
    case PG_EV_BODY:
      conversation = &FindFor(event);
      conversation->escalated = false;
      conversation->server->Add(event.seq, data);
      break;
    case PG_EV_RAW: {
      Conversation& c = FindFor(event);
      conversation = &c;
      // A retransmission of inspected bytes goes up raw without escalating.
      if (!(event.flags & PG_EVF_OVERLAP)) c.escalated = true;
      flow::StreamReassembler& stream = c.StreamOf(event.dir == PG_DIR_TO_SERVER);
      if (event.flags & PG_EVF_OVERLAP) {
        // A retransmission of bytes the kernel inspected: only what the
        // agent holds can be compared; the rest was a body the kernel kept.
        if (!stream.started()) break;
        const uint32_t held =
            flow::SeqBefore(event.seq, stream.next_seq()) ? stream.next_seq() - event.seq : 0;
        counters_.overlap_bytes_unchecked += data.size() - std::min<size_t>(held, data.size());
        stream.Add(event.seq, data.substr(0, held));
      } else if ((event.flags & PG_EVF_NO_STATE) && (event.flags & PG_EVF_FIRST)) {
        // The kernel lost this flow's state (LRU eviction): what it handled
        // before went up already or was a body it kept; nothing earlier is
        // still on its way.
        AddAfterHole(c, stream, static_cast<int>(Conversation::Hole::kKeptBody), event, data);
      } else {
        stream.Add(event.seq, data);
      }
      break;
    }
    case PG_EV_ANOMALY:
      if (event.anomaly < counters_.kernel_anomalies.size()) {
        counters_.kernel_anomalies[event.anomaly]++;
      }
      // The records after a gap start beyond the hole; where the stream
      // stood lets the bytes of the hole, when they come, be placed.
      if (event.anomaly == PG_AN_GAP) {
        Conversation& c = FindFor(event);
        conversation = &c;
        // The kernel handled everything before the hole: what the agent
        // lacks of it is, while the kernel was not sending the flow raw,
        // TLS record contents it does not send (either way), or body it
        // kept if it was framing the server. The client's plaintext bytes
        // and an escalated flow's all come up, so missing ones were lost.
        const bool tls = c.tls_port || c.session->tls_active();
        const bool kept = !c.escalated && (tls || event.dir == PG_DIR_TO_CLIENT);
        c.escalated = true;
        flow::StreamReassembler& stream = c.StreamOf(event.dir == PG_DIR_TO_SERVER);
        if (!stream.started()) {
          stream.Start(event.expected_seq);
        } else if (flow::SeqBefore(stream.next_seq(), event.expected_seq)) {
          if (kept) c.hole = tls ? Conversation::Hole::kTlsRecord : Conversation::Hole::kKept;
          stream.SkipTo(event.expected_seq);
          c.hole = Conversation::Hole::kLoss;
        }
      }
      // The other kernel anomalies restate what the session parser finds in
      // the same bytes; a budget crossing is the one only the kernel knows.
      if (event.anomaly == PG_AN_FLOW_BUDGET || event.anomaly == PG_AN_GLOBAL_BUDGET) {
        Conversation& c = FindFor(event);
        conversation = &c;
        detect::Unit unit;
        unit.direction =
            event.dir == PG_DIR_TO_SERVER ? pop3::Direction::kToServer : pop3::Direction::kToClient;
        unit.timestamp_ns = now_ns_;
        unit.anomaly = rules::Pop3Event::kEventBudgetExceeded;
        Inspect(c, unit);
      }
      break;
    default:
      // IP fragments are counted only: never legitimate POP3, dropped in
      // prevent mode.
      break;
  }
  // At the end of a segment the agent may stand where the kernel does.
  if (conversation && (event.flags & PG_EVF_LAST || event.type == PG_EV_ANOMALY)) {
    MaybeOfferResync(*conversation);
  }
}

void Inspector::OnPacket(int64_t timestamp_ns, const packet::Decoded& decoded) {
  counters_.packets++;
  switch (decoded.status) {
    case packet::DecodeStatus::kNotTcp:
      counters_.not_pop3++;
      return;
    case packet::DecodeStatus::kFragment:
      counters_.fragments++;
      return;
    case packet::DecodeStatus::kMalformed:
      counters_.malformed++;
      return;
    case packet::DecodeStatus::kTruncated:
      counters_.truncated++;
      if (!decoded.has_tcp) return;
      break;
    case packet::DecodeStatus::kTcp:
      break;
  }
  const packet::TcpPacket& tcp = decoded.tcp;
  const bool to_server = options_.ports.contains(tcp.dst_port);
  if (!to_server && !options_.ports.contains(tcp.src_port)) {
    counters_.not_pop3++;
    return;
  }
  now_ns_ = timestamp_ns;
  pg_flow_key key{};
  const size_t addr_len = tcp.family == 6 ? 16 : 4;
  std::memcpy(key.client_addr, (to_server ? tcp.src : tcp.dst).data(), addr_len);
  std::memcpy(key.server_addr, (to_server ? tcp.dst : tcp.src).data(), addr_len);
  key.client_port = htons(to_server ? tcp.src_port : tcp.dst_port);
  key.server_port = htons(to_server ? tcp.dst_port : tcp.src_port);
  key.family = tcp.family;
  Conversation& c = Find(key, static_cast<uint64_t>(timestamp_ns));
  flow::StreamReassembler& stream = c.StreamOf(to_server);
  uint32_t seq = tcp.seq;
  if (tcp.flags & rules::kTcpSyn) {
    if (to_server && !(tcp.flags & rules::kTcpAck) && engine_->tests_tcp_flags()) {
      InspectSyn(key, tcp.flags);
    }
    // The stream starts after the SYN. On a stream already started, the
    // endpoint discards a SYN, its data too (RFC 5961), and so does the
    // kernel program.
    ++seq;
    if (!stream.Start(seq)) return;
  }
  if (tcp.payload.empty()) return;
  counters_.tcp_payload_bytes += tcp.payload.size();
  stream.Add(
      seq, std::string_view(reinterpret_cast<const char*>(tcp.payload.data()), tcp.payload.size()));
}

void Inspector::FlushHoles(Conversation& conversation) {
  conversation.client->Flush();
  conversation.server->Flush();
}

void Inspector::Finish() {
  flows_.ForEach([this](const pg_flow_key&, std::unique_ptr<Conversation>& conversation) {
    if (conversation) FlushHoles(*conversation);
  });
}

std::optional<detect::Unit> UnitOf(const pop3::Event& event, int64_t timestamp_ns,
                                   std::string* payload) {
  detect::Unit unit;
  unit.direction = event.direction;
  unit.timestamp_ns = timestamp_ns;
  switch (event.kind) {
    case pop3::EventKind::kCommand: {
      const auto& command = std::get<pop3::Command>(event.payload);
      *payload = command.line;
      *payload += LineEnd(command.line_length, command.line.size(), command.truncated);
      unit.Set(rules::Buffer::kPayload, *payload);
      unit.Set(rules::Buffer::kPop3Command, command.verb);
      unit.Set(rules::Buffer::kPop3Args, command.args);
      break;
    }
    case pop3::EventKind::kResponse:
    case pop3::EventKind::kResponseStart: {
      const auto& response = std::get<pop3::Response>(event.payload);
      // A multi-line response was inspected at its first line.
      if (event.kind == pop3::EventKind::kResponse && response.multi_line) return std::nullopt;
      *payload = response.line;
      *payload += LineEnd(response.line_length, response.line.size(), response.truncated);
      unit.Set(rules::Buffer::kPayload, *payload);
      unit.Set(rules::Buffer::kPop3Response, response.line);
      break;
    }
    case pop3::EventKind::kSaslClient: {
      const auto& sasl = std::get<pop3::SaslMessage>(event.payload);
      // The AUTH line carrying an initial response was inspected as a command.
      if (!sasl.initial_response) {
        *payload = sasl.text + "\r\n";
        unit.Set(rules::Buffer::kPayload, *payload);
      }
      unit.Set(rules::Buffer::kPop3Sasl, sasl.decoded);
      break;
    }
    case pop3::EventKind::kSaslServer: {
      // The challenge line itself was a response unit.
      const auto& sasl = std::get<pop3::SaslMessage>(event.payload);
      unit.Set(rules::Buffer::kPop3Sasl, sasl.decoded);
      if (sasl.realm) unit.Set(rules::Buffer::kPop3DigestRealm, *sasl.realm);
      break;
    }
    case pop3::EventKind::kAnomaly: {
      std::optional<rules::Pop3Event> anomaly =
          rules::Pop3EventNamed(std::get<pop3::Anomaly>(event.payload).name);
      if (!anomaly) return std::nullopt;
      unit.anomaly = anomaly;
      break;
    }
    case pop3::EventKind::kTlsStarted:
      return std::nullopt;
  }
  return unit;
}

void Inspector::OnPop3Event(Conversation& c, const pop3::Event& event) {
  if (std::optional<detect::Unit> unit = UnitOf(event, now_ns_, &c.payload)) Inspect(c, *unit);
}

// Apart from any conversation: a SYN flood must not push real
// conversations out of the table, and flags rules use no flow state
// (the engine refuses flowbits in them).
void Inspector::InspectSyn(const pg_flow_key& key, uint8_t tcp_flags) {
  detect::Unit unit;
  unit.direction = pop3::Direction::kToServer;
  unit.timestamp_ns = now_ns_;
  unit.tcp_flags = tcp_flags;
  detect::FlowRuleState no_state;
  alerts_.clear();
  engine_->Inspect(unit, TupleOf(key), &no_state, &alerts_);
  Sink();
}

void Inspector::Inspect(Conversation& c, const detect::Unit& unit) {
  alerts_.clear();
  engine_->Inspect(unit, c.tuple, &c.rules, &alerts_);
  Sink();
}

void Inspector::Sink() {
  for (const detect::Alert& alert : alerts_) {
    counters_.alerts++;
    sink_(alert);
  }
}

}  // namespace popguard::inspect
