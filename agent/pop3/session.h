// One POP3 connection as the agent sees it: the in-order client and server
// byte streams, in arbitrary chunks, turned into Events (event.h) for the
// detection engine.
//
// Framing follows the kernel prefilter (bpf/lib/pop3.h): the greeting comes
// first (unless a command arrives before any server byte: then there is
// none); pipelined commands are answered in order; "LIST n", "UIDL n" and
// every -ERR are one line; LIST, UIDL, RETR, TOP, CAPA and a bare AUTH
// answered +OK carry a body ending at a "." line ("..": dot-stuffing);
// "AUTH mech [initial-response]" starts SASL, where "+" challenges make the
// client's lines SASL responses ("*" cancels) until +OK or -ERR; STLS
// answered +OK hands the connection to TLS. Commands are case-insensitive,
// spaces and tabs separate tokens, lines end with CRLF or a bare LF. Bodies
// are counted, never stored, and no line is kept beyond max_line bytes, so
// memory stays bounded whatever the peers send.
//
// Events go to the sink synchronously, in stream order. Anomalies are emitted
// when detected: length anomalies when the limit is crossed (before the event
// of their line), the others after the event of their line; for a multi-line
// response a kResponseStart event comes at its first line and the kResponse
// event at its "." line, after any anomaly of its first line. The same bytes
// in any chunking give the same events.
//
// Bytes the caller could not or need not read are skipped with
// Skip{Client,Server}Bytes: the kernel prefilter keeps message bodies, and
// reassembly gives up holes it cannot fill.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/pop3/event.h"

namespace popguard::pop3 {

struct SessionOptions {
  // request_too_long when a command line, line end included, is longer.
  // Suricata 8's parser (sawp-pop3 CLIENT_COMMAND_MAX_LEN) allows 256, one
  // more than the 255 of RFC 2449 section 4. SASL response lines are exempt
  // (RFC 5034 section 4); the AUTH command line itself is not.
  size_t max_request_line = 256;
  // response_too_long when the first line of a response, line end included,
  // is longer (RFC 2449 section 4, sawp-pop3 SERVER_RESP_FIRST_LINE_MAX_LEN).
  // SASL challenges are exempt (RFC 5034 section 4).
  size_t max_response_line = 512;
  // unterminated_line when a line runs past this many bytes with no LF;
  // a line keeps at most max(max_line, 64) bytes, the rest is only counted.
  size_t max_line = 4096;
  // too_many_transactions when a command arrives while this many await their
  // response (Suricata's pop3 max-tx defaults to 256); that command is not
  // queued, so its response is unsolicited.
  size_t max_pending_commands = 256;
};

class Session {
 public:
  using EventSink = std::function<void(const Event&)>;

  // What the server owes a command (or the connection, its greeting).
  enum class ResponseKind : uint8_t { kSingle, kMulti, kSasl, kStls, kGreeting };

  // How the dialogue stands at a line boundary of both streams: enough for
  // the kernel to frame what follows as it would have (bpf/lib/pop3.h).
  struct FramingPoint {
    std::vector<ResponseKind> owed;  // oldest first
    bool sasl = false;               // a SASL exchange is running
    bool in_body = false;            // the server is inside a multi-line body
  };

  // The sink must not call back into this Session.
  explicit Session(EventSink sink, SessionOptions options = {});

  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void OnClientData(std::string_view bytes);
  void OnServerData(std::string_view bytes);

  // `bytes` of the stream will never be seen. A partial line is dropped
  // (the next byte starts a line). On the server side inside a body,
  // `body_ended` says the skipped bytes include the body's terminator, as
  // when the kernel kept the body: the kResponse event is emitted then,
  // with body_elided set.
  void SkipClientBytes(uint64_t bytes);
  void SkipServerBytes(uint64_t bytes, bool body_ended);

  // Inside a multi-line response body.
  bool in_body() const { return body_.has_value(); }

  SessionState state() const { return state_; }
  // STLS was answered +OK.
  bool tls_started() const { return tls_ != TlsPhase::kNone; }
  // The client has sent its first TLS bytes after STLS: both directions
  // are TLS records from here on.
  bool tls_active() const { return tls_ == TlsPhase::kActive; }
  size_t pending_commands() const { return pending_.size(); }
  // nullopt while either stream is inside a line, once STLS is in play
  // (TLS is followed by record, not by line), or once a command was not
  // queued (too many pending).
  std::optional<FramingPoint> Framing() const;

 private:

  // After STLS +OK, server bytes before the client's first TLS byte are an
  // injection (CVE-2021-22947): TLS clients speak first.
  enum class TlsPhase : uint8_t { kNone, kAwaitingClient, kActive };

  struct PendingCommand {
    Verb verb = Verb::kUnknown;
    ResponseKind kind = ResponseKind::kSingle;
    std::string mechanism;  // AUTH: upper-cased, at most kMaxMechanism bytes
  };

  // The line of one direction being assembled.
  struct Line {
    std::string kept;
    uint64_t start = 0;
    uint64_t length = 0;  // bytes so far, the LF excluded
    size_t keep_limit = 0;
    bool active = false;
    bool ends_with_cr = false;
    bool protocol_limit_reported = false;
    bool line_limit_reported = false;
  };

  struct Stream {
    uint64_t offset = 0;  // bytes of this direction consumed so far
    Line line;
  };

  // A complete line as the handlers see it.
  struct CompleteLine {
    std::string_view content;  // without CR LF, at most the kept bytes
    uint64_t start = 0;
    uint64_t wire_length = 0;  // line end included
    bool truncated = false;
    bool ends_with_cr = false;
  };

  void Consume(Direction direction, std::string_view bytes);
  void BeginLine(Direction direction);
  void CheckLineLimits(Direction direction, bool complete);
  std::optional<size_t> ProtocolLimit(Direction direction) const;
  void EndLine(Direction direction);

  void HandleClientLine(const CompleteLine& line);
  void HandleSaslResponse(const CompleteLine& line);
  void QueueCommand(const Command& command, uint64_t offset);
  void HandleServerLine(const CompleteLine& line);
  void HandleBodyLine(const CompleteLine& line);
  void HandleChallenge(const CompleteLine& line, const PendingCommand& auth);
  bool IsSaslChallenge(std::string_view line) const;

  void Emit(EventKind kind, Direction direction, uint64_t offset,
            decltype(Event::payload) payload = {});
  void EmitAnomaly(Direction direction, uint64_t offset, std::string_view name);

  EventSink sink_;
  SessionOptions options_;
  SessionState state_ = SessionState::kAuthorization;
  TlsPhase tls_ = TlsPhase::kNone;

  Stream client_;
  Stream server_;
  bool client_line_is_sasl_ = false;
  bool server_line_in_body_ = false;

  bool greeting_pending_ = true;
  std::deque<PendingCommand> pending_;
  bool queue_overflow_reported_ = false;
  // A command was not queued (overflow): the owed list is incomplete for
  // good, so Framing() has nothing sure to offer.
  bool commands_dropped_ = false;
  size_t pending_stls_ = 0;
  bool stls_command_injection_reported_ = false;
  bool stls_response_injection_reported_ = false;

  // A "+" challenge was accepted and no +OK/-ERR has ended the exchange yet.
  bool sasl_active_ = false;
  std::string sasl_mechanism_;

  // The multi-line response whose body is being counted.
  std::optional<Response> body_;
  uint64_t body_offset_ = 0;
  Verb body_verb_ = Verb::kUnknown;
  bool body_lf_reported_ = false;
};

}  // namespace popguard::pop3
