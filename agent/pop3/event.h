// What the POP3 dialogue parser reports: commands, responses, SASL data,
// anomalies and the switch to TLS, each tied to a direction and a stream
// offset so the detection engine can anchor alerts.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace popguard::pop3 {

// Anomaly names. The first five are Suricata 8's pop3 app-layer events
// (rules/pop3-events.rules) with the same meaning; the rest are popguard's.
namespace anomaly {
inline constexpr std::string_view kTooManyTransactions = "too_many_transactions";
inline constexpr std::string_view kRequestTooLong = "request_too_long";
inline constexpr std::string_view kIncorrectArgumentCount = "incorrect_argument_count";
inline constexpr std::string_view kUnknownCommand = "unknown_command";
inline constexpr std::string_view kResponseTooLong = "response_too_long";
inline constexpr std::string_view kBadStatusToken = "bad_status_token";
inline constexpr std::string_view kUnterminatedLine = "unterminated_line";
inline constexpr std::string_view kSaslDecodeFailure = "sasl_decode_failure";
inline constexpr std::string_view kUnsolicitedResponse = "unsolicited_response";
inline constexpr std::string_view kStlsCommandInjection = "stls_command_injection";
inline constexpr std::string_view kStlsResponseInjection = "stls_response_injection";
inline constexpr std::string_view kLfWithoutCr = "lf_without_cr";
}  // namespace anomaly

enum class Direction : uint8_t { kToServer, kToClient };

// RFC 1939 section 3.
enum class SessionState : uint8_t { kAuthorization, kTransaction, kUpdate };

// The commands of RFC 1939, 2449 (CAPA), 2595 (STLS) and 5034 (AUTH).
enum class Verb : uint8_t {
  kUnknown,
  kUser,
  kPass,
  kApop,
  kAuth,
  kStat,
  kList,
  kRetr,
  kDele,
  kNoop,
  kRset,
  kQuit,
  kTop,
  kUidl,
  kCapa,
  kStls,
};

// The upper-case keyword of a known verb; empty for kUnknown.
std::string_view VerbName(Verb verb);

// How verbs and SASL mechanism names are upper-cased: ASCII letters only.
inline char Upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

enum class ResponseStatus : uint8_t {
  kOk,            // "+OK", any case, then a blank or the end of the line
  kErr,           // "-ERR", any case, whatever follows
  kContinuation,  // "+" then a space or the end of the line (a SASL challenge)
  kBad,           // anything else
};

struct Command {
  std::string verb;             // upper-cased keyword
  std::string raw_verb;         // the keyword as sent
  std::string args;             // everything after the blanks that follow the keyword, as sent
  std::string normalized_args;  // the blank-separated arguments joined by single spaces
  std::string line;             // the whole line without its line end
  Verb verb_id = Verb::kUnknown;
  uint64_t arg_count = 0;    // blank-separated arguments (spaces and tabs separate)
  uint64_t line_length = 0;  // bytes on the wire, line end included
  bool truncated = false;    // `line` (and what derives from it) lost bytes past max_line
  SessionState state = SessionState::kAuthorization;  // when the command arrived
  bool operator==(const Command&) const = default;
};

// RFC 1939 "msg octets" (LIST) or "count octets" (STAT); numbers saturate at
// UINT64_MAX so absurd values stay visible.
struct ScanListing {
  uint64_t number = 0;
  uint64_t octets = 0;
  bool operator==(const ScanListing&) const = default;
};

struct Response {
  ResponseStatus status = ResponseStatus::kBad;
  std::string status_token;  // the status as sent ("+OK", "-ERR", "+", or the first word)
  std::string text;          // the first line after the status token and the blanks after it
  std::string line;          // the whole first line without its line end
  std::string answers;       // VerbName() of the command answered; empty when none
  bool greeting = false;
  uint64_t line_length = 0;  // first line bytes on the wire, line end included
  bool truncated = false;
  // A body followed, ended by a "." line. Its lines are counted between the
  // first line and the "." line; bytes are on the wire, line ends included,
  // before unstuffing.
  bool multi_line = false;
  // The body was skipped rather than read (Session::SkipServerBytes): the
  // kernel kept it, so body_lines and the listing fields are unknown.
  bool body_elided = false;
  uint64_t body_lines = 0;
  uint64_t body_bytes = 0;
  // +OK to STAT, or to LIST with an argument.
  std::optional<ScanListing> scan;
  // Multi-line LIST: each field's maximum, and the lines that are not "n m".
  std::optional<ScanListing> listing_max;
  uint64_t listing_malformed = 0;
  SessionState state = SessionState::kAuthorization;  // after this response
  bool operator==(const Response&) const = default;
};

struct SaslMessage {
  std::string mechanism;  // upper-cased, from the AUTH command
  std::string text;       // the base64 text as sent (for a challenge, after "+" and blanks)
  std::string decoded;    // strict base64 (DecodeBase64); "=" alone is the empty response
  bool decoded_ok = false;
  bool cancelled = false;         // the client line "*" (RFC 5034 section 4)
  bool initial_response = false;  // carried on the AUTH command line
  bool truncated = false;         // the line exceeded max_line; its kept prefix was decoded
  // DIGEST-MD5 challenges only: what libcurl 7.26-7.28.1 decodes and the realm
  // it copies (CVE-2013-0249); see sasl.h.
  std::optional<std::string> libcurl_decoded;
  std::optional<std::string> realm;
  bool operator==(const SaslMessage&) const = default;
};

struct Anomaly {
  std::string_view name;  // one of the anomaly:: constants
  bool operator==(const Anomaly&) const = default;
};

enum class EventKind : uint8_t {
  kCommand,     // payload Command
  kResponse,    // payload Response; for a multi-line one, at its "." line
  kResponseStart,  // payload Response: a multi-line response's first line, when it arrives
  kSaslClient,  // payload SaslMessage
  kSaslServer,  // payload SaslMessage
  kAnomaly,     // payload Anomaly
  kTlsStarted,  // no payload
};

struct Event {
  EventKind kind = EventKind::kAnomaly;
  Direction direction = Direction::kToServer;
  // Offset in this direction's stream of the first byte of the line the event
  // is about; for stls_response_injection the first injected byte, for
  // kTlsStarted the byte after the STLS +OK line.
  uint64_t offset = 0;
  std::variant<std::monostate, Command, Response, SaslMessage, Anomaly> payload;
  bool operator==(const Event&) const = default;
};

}  // namespace popguard::pop3
