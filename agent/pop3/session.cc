#include "agent/pop3/session.h"

#include <algorithm>
#include <array>
#include <limits>
#include <utility>
#include <vector>

#include "agent/pop3/sasl.h"

namespace popguard::pop3 {
namespace {

// Enough of a line to classify it, to find a body's "." line and to read a
// scan listing (two 20-digit numbers); body lines keep no more than this.
constexpr size_t kLineHead = 64;

// SASL mechanism names are at most 20 characters (RFC 4422 section 3.1);
// the bound only caps what an attacker can make each queued AUTH hold.
constexpr size_t kMaxMechanism = 64;

// Only DIGEST-MD5 challenges reach the libcurl code of CVE-2013-0249.
constexpr std::string_view kDigestMd5 = "DIGEST-MD5";

constexpr uint64_t kUnlimited = std::numeric_limits<uint64_t>::max();

struct VerbInfo {
  std::string_view name;
  Verb verb;
  uint64_t min_args;
  uint64_t max_args;
};

// Argument counts as in sawp-pop3 (Suricata 8), except PASS: RFC 1939
// section 7 lets a server take the rest of the line as the password, and
// password managers do put spaces in passwords.
constexpr std::array<VerbInfo, 15> kVerbs = {{
    {"USER", Verb::kUser, 1, 1},
    {"PASS", Verb::kPass, 1, kUnlimited},
    {"APOP", Verb::kApop, 2, 2},
    {"AUTH", Verb::kAuth, 1, 2},
    {"STAT", Verb::kStat, 0, 0},
    {"LIST", Verb::kList, 0, 1},
    {"RETR", Verb::kRetr, 1, 1},
    {"DELE", Verb::kDele, 1, 1},
    {"NOOP", Verb::kNoop, 0, 0},
    {"RSET", Verb::kRset, 0, 0},
    {"QUIT", Verb::kQuit, 0, 0},
    {"TOP", Verb::kTop, 2, 2},
    {"UIDL", Verb::kUidl, 0, 1},
    {"CAPA", Verb::kCapa, 0, 0},
    {"STLS", Verb::kStls, 0, 0},
}};

const VerbInfo* FindVerb(std::string_view upper) {
  for (const VerbInfo& info : kVerbs) {
    if (info.name == upper) return &info;
  }
  return nullptr;
}

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

std::string Upper(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](char c) { return pop3::Upper(c); });
  return out;
}

bool StartsWithNoCase(std::string_view text, std::string_view upper_prefix) {
  if (text.size() < upper_prefix.size()) return false;
  for (size_t i = 0; i < upper_prefix.size(); ++i) {
    if (pop3::Upper(text[i]) != upper_prefix[i]) return false;
  }
  return true;
}

std::string_view SkipBlanks(std::string_view text) {
  size_t i = 0;
  while (i < text.size() && IsBlank(text[i])) ++i;
  return text.substr(i);
}

std::vector<std::string_view> SplitBlanks(std::string_view text) {
  std::vector<std::string_view> tokens;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && IsBlank(text[i])) ++i;
    const size_t begin = i;
    while (i < text.size() && !IsBlank(text[i])) ++i;
    if (i > begin) tokens.push_back(text.substr(begin, i - begin));
  }
  return tokens;
}

// The kernel's classification (pg_status_of), so both sides frame alike; a
// CR may still end `line` while its limits are checked mid-line.
ResponseStatus ClassifyStatus(std::string_view line, size_t* token_length) {
  if (StartsWithNoCase(line, "+OK") && (line.size() == 3 || IsBlank(line[3]) || line[3] == '\r')) {
    *token_length = 3;
    return ResponseStatus::kOk;
  }
  if (StartsWithNoCase(line, "-ERR")) {
    *token_length = 4;
    return ResponseStatus::kErr;
  }
  if (!line.empty() && line[0] == '+' && (line.size() == 1 || line[1] == ' ' || line[1] == '\r')) {
    *token_length = 1;
    return ResponseStatus::kContinuation;
  }
  size_t end = 0;
  while (end < line.size() && !IsBlank(line[end])) ++end;
  *token_length = end;
  return ResponseStatus::kBad;
}

// Decimal digits at the front of `text`, consumed; saturates at UINT64_MAX.
std::optional<uint64_t> TakeNumber(std::string_view* text) {
  size_t i = 0;
  uint64_t value = 0;
  while (i < text->size() && (*text)[i] >= '0' && (*text)[i] <= '9') {
    const uint64_t digit = static_cast<uint64_t>((*text)[i] - '0');
    value = value > (kUnlimited - digit) / 10 ? kUnlimited : value * 10 + digit;
    ++i;
  }
  if (i == 0) return std::nullopt;
  text->remove_prefix(i);
  return value;
}

// "n m", blanks between, anything after a blank (RFC 1939 allows text after
// the STAT size).
std::optional<ScanListing> ParseScanListing(std::string_view text) {
  const std::optional<uint64_t> number = TakeNumber(&text);
  if (!number || text.empty() || !IsBlank(text[0])) return std::nullopt;
  text = SkipBlanks(text);
  const std::optional<uint64_t> octets = TakeNumber(&text);
  if (!octets || (!text.empty() && !IsBlank(text[0]))) return std::nullopt;
  return ScanListing{*number, *octets};
}

Command ParseCommand(std::string_view content) {
  Command command;
  size_t verb_end = 0;
  while (verb_end < content.size() && !IsBlank(content[verb_end])) ++verb_end;
  command.raw_verb = std::string(content.substr(0, verb_end));
  command.verb = Upper(command.raw_verb);
  command.args = std::string(SkipBlanks(content.substr(verb_end)));
  const std::vector<std::string_view> tokens = SplitBlanks(command.args);
  for (std::string_view token : tokens) {
    if (!command.normalized_args.empty()) command.normalized_args.push_back(' ');
    command.normalized_args.append(token);
  }
  command.arg_count = tokens.size();
  command.line = std::string(content);
  return command;
}

// RFC 5034 section 4 spells an empty initial response "="; clients send it
// as an empty response as well.
SaslMessage DecodeSasl(std::string_view text, bool truncated) {
  SaslMessage message;
  message.text = std::string(text);
  message.truncated = truncated;
  if (text == "=") {
    message.decoded_ok = true;
    return message;
  }
  // A cut line cannot decode whole; its complete quanta still can.
  const std::optional<std::string> decoded =
      DecodeBase64(truncated ? text.substr(0, text.size() - text.size() % 4) : text);
  message.decoded_ok = decoded.has_value();
  if (decoded) message.decoded = *decoded;
  return message;
}

}  // namespace

std::string_view VerbName(Verb verb) {
  for (const VerbInfo& info : kVerbs) {
    if (info.verb == verb) return info.name;
  }
  return {};
}

Session::Session(EventSink sink, SessionOptions options)
    : sink_(std::move(sink)), options_(options) {}

std::optional<Session::FramingPoint> Session::Framing() const {
  if (client_.line.active || server_.line.active || tls_ != TlsPhase::kNone || pending_stls_ > 0 ||
      commands_dropped_) {
    return std::nullopt;
  }
  FramingPoint point;
  if (greeting_pending_) point.owed.push_back(ResponseKind::kGreeting);
  for (const PendingCommand& command : pending_) point.owed.push_back(command.kind);
  point.sasl = sasl_active_;
  point.in_body = body_.has_value();
  return point;
}

void Session::OnClientData(std::string_view bytes) {
  if (bytes.empty()) return;
  if (tls_ == TlsPhase::kAwaitingClient) tls_ = TlsPhase::kActive;
  if (tls_ == TlsPhase::kActive) {
    client_.offset += bytes.size();
    return;
  }
  Consume(Direction::kToServer, bytes);
}

void Session::OnServerData(std::string_view bytes) {
  if (tls_ == TlsPhase::kActive) {
    server_.offset += bytes.size();
    return;
  }
  Consume(Direction::kToClient, bytes);
}

void Session::SkipClientBytes(uint64_t bytes) {
  client_.offset += bytes;
  client_.line.active = false;
}

void Session::SkipServerBytes(uint64_t bytes, bool body_ended) {
  server_.offset += bytes;
  server_.line.active = false;
  if (!body_) return;
  body_->body_bytes += bytes;
  body_->body_elided = true;
  if (!body_ended) return;
  body_->state = state_;
  Emit(EventKind::kResponse, Direction::kToClient, body_offset_, std::move(*body_));
  body_.reset();
}

void Session::Consume(Direction direction, std::string_view bytes) {
  Stream& stream = direction == Direction::kToServer ? client_ : server_;
  while (!bytes.empty()) {
    if (!stream.line.active) BeginLine(direction);
    const size_t lf = bytes.find('\n');
    const std::string_view part = bytes.substr(0, lf);
    Line& line = stream.line;
    if (!part.empty()) {
      const size_t room = line.keep_limit - std::min(line.keep_limit, line.kept.size());
      line.kept.append(part.substr(0, room));
      line.length += part.size();
      line.ends_with_cr = part.back() == '\r';
      stream.offset += part.size();
      CheckLineLimits(direction, false);
    }
    if (lf == std::string_view::npos) return;
    stream.offset += 1;
    bytes.remove_prefix(lf + 1);
    CheckLineLimits(direction, true);
    EndLine(direction);
  }
}

void Session::BeginLine(Direction direction) {
  Stream& stream = direction == Direction::kToServer ? client_ : server_;
  Line& line = stream.line;
  line.kept.clear();
  line.start = stream.offset;
  line.length = 0;
  line.active = true;
  line.ends_with_cr = false;
  line.protocol_limit_reported = false;
  line.line_limit_reported = false;
  if (direction == Direction::kToServer) {
    client_line_is_sasl_ = sasl_active_;
    line.keep_limit = std::max(options_.max_line, kLineHead);
    if (pending_stls_ > 0 && !stls_command_injection_reported_) {
      stls_command_injection_reported_ = true;
      EmitAnomaly(direction, line.start, anomaly::kStlsCommandInjection);
    }
    return;
  }
  server_line_in_body_ = body_.has_value();
  line.keep_limit = server_line_in_body_ ? kLineHead : std::max(options_.max_line, kLineHead);
  if (tls_ == TlsPhase::kAwaitingClient && !stls_response_injection_reported_) {
    stls_response_injection_reported_ = true;
    EmitAnomaly(direction, line.start, anomaly::kStlsResponseInjection);
  }
}

bool Session::IsSaslChallenge(std::string_view line) const {
  size_t token_length = 0;
  return !greeting_pending_ && !pending_.empty() && pending_.front().kind == ResponseKind::kSasl &&
         ClassifyStatus(line, &token_length) == ResponseStatus::kContinuation;
}

std::optional<size_t> Session::ProtocolLimit(Direction direction) const {
  if (direction == Direction::kToServer) {
    if (client_line_is_sasl_) return std::nullopt;
    return options_.max_request_line;
  }
  if (server_line_in_body_ || IsSaslChallenge(server_.line.kept)) return std::nullopt;
  return options_.max_response_line;
}

void Session::CheckLineLimits(Direction direction, bool complete) {
  Line& line = (direction == Direction::kToServer ? client_ : server_).line;
  const uint64_t wire_length = line.length + (complete ? 1 : 0);
  const std::optional<size_t> protocol_limit = ProtocolLimit(direction);
  const bool protocol_crossed =
      protocol_limit && !line.protocol_limit_reported && wire_length > *protocol_limit;
  const bool line_crossed = !line.line_limit_reported && line.length > options_.max_line;
  const auto report_protocol = [&] {
    line.protocol_limit_reported = true;
    EmitAnomaly(
        direction, line.start,
        direction == Direction::kToServer ? anomaly::kRequestTooLong : anomaly::kResponseTooLong);
  };
  const auto report_line = [&] {
    line.line_limit_reported = true;
    EmitAnomaly(direction, line.start, anomaly::kUnterminatedLine);
  };
  // Both can cross in one chunk: report them in the order the bytes crossed
  // them, so the chunking never changes the events.
  if (protocol_crossed && line_crossed && options_.max_line < *protocol_limit) {
    report_line();
    report_protocol();
    return;
  }
  if (protocol_crossed) report_protocol();
  if (line_crossed) report_line();
}

void Session::EndLine(Direction direction) {
  Line& line = (direction == Direction::kToServer ? client_ : server_).line;
  line.active = false;
  const uint64_t content_length = line.length - (line.ends_with_cr ? 1 : 0);
  if (line.kept.size() > content_length) line.kept.resize(content_length);
  CompleteLine complete;
  complete.content = line.kept;
  complete.start = line.start;
  complete.wire_length = line.length + 1;
  complete.truncated = content_length > line.kept.size();
  complete.ends_with_cr = line.ends_with_cr;
  if (direction == Direction::kToServer) {
    HandleClientLine(complete);
  } else {
    HandleServerLine(complete);
  }
}

void Session::HandleClientLine(const CompleteLine& line) {
  if (client_line_is_sasl_) {
    HandleSaslResponse(line);
    return;
  }
  Command command = ParseCommand(line.content);
  command.line_length = line.wire_length;
  command.truncated = line.truncated;
  command.state = state_;
  const VerbInfo* info = FindVerb(command.verb);
  if (info) command.verb_id = info->verb;
  Emit(EventKind::kCommand, Direction::kToServer, line.start, command);

  if (!info) {
    EmitAnomaly(Direction::kToServer, line.start, anomaly::kUnknownCommand);
  } else if (command.arg_count < info->min_args || command.arg_count > info->max_args) {
    EmitAnomaly(Direction::kToServer, line.start, anomaly::kIncorrectArgumentCount);
  }
  if (!line.ends_with_cr) EmitAnomaly(Direction::kToServer, line.start, anomaly::kLfWithoutCr);

  if (command.verb_id == Verb::kAuth && command.arg_count >= 2) {
    const std::vector<std::string_view> args = SplitBlanks(command.args);
    SaslMessage message = DecodeSasl(args[1], line.truncated);
    message.mechanism = Upper(args[0].substr(0, kMaxMechanism));
    message.initial_response = true;
    Emit(EventKind::kSaslClient, Direction::kToServer, line.start, message);
    if (!message.decoded_ok) {
      EmitAnomaly(Direction::kToServer, line.start, anomaly::kSaslDecodeFailure);
    }
  }
  QueueCommand(command, line.start);
}

void Session::HandleSaslResponse(const CompleteLine& line) {
  SaslMessage message;
  if (line.content == "*") {
    message.text = "*";
    message.cancelled = true;
  } else {
    message = DecodeSasl(line.content, line.truncated);
  }
  message.mechanism = sasl_mechanism_;
  Emit(EventKind::kSaslClient, Direction::kToServer, line.start, message);
  if (!message.cancelled && !message.decoded_ok) {
    EmitAnomaly(Direction::kToServer, line.start, anomaly::kSaslDecodeFailure);
  }
  if (!line.ends_with_cr) EmitAnomaly(Direction::kToServer, line.start, anomaly::kLfWithoutCr);
}

void Session::QueueCommand(const Command& command, uint64_t offset) {
  // Clients wait for the greeting. A command before any server byte means
  // there will be none (a capture that starts after it, a test rig): the
  // first server line then answers this command.
  if (greeting_pending_ && server_.offset == 0 && !server_.line.active) greeting_pending_ = false;
  if (pending_.size() >= options_.max_pending_commands) {
    commands_dropped_ = true;
    if (!queue_overflow_reported_) {
      queue_overflow_reported_ = true;
      EmitAnomaly(Direction::kToServer, offset, anomaly::kTooManyTransactions);
    }
    return;
  }
  PendingCommand pending;
  pending.verb = command.verb_id;
  const bool has_arg = command.arg_count > 0;
  switch (command.verb_id) {
    case Verb::kList:
    case Verb::kUidl:
      pending.kind = has_arg ? ResponseKind::kSingle : ResponseKind::kMulti;
      break;
    case Verb::kAuth:
      pending.kind = has_arg ? ResponseKind::kSasl : ResponseKind::kMulti;
      if (has_arg) pending.mechanism = Upper(SplitBlanks(command.args)[0].substr(0, kMaxMechanism));
      break;
    case Verb::kRetr:
    case Verb::kTop:
    case Verb::kCapa:
      pending.kind = ResponseKind::kMulti;
      break;
    case Verb::kStls:
      pending.kind = ResponseKind::kStls;
      ++pending_stls_;
      stls_command_injection_reported_ = false;
      break;
    default:
      pending.kind = ResponseKind::kSingle;
      break;
  }
  pending_.push_back(std::move(pending));
}

void Session::HandleServerLine(const CompleteLine& line) {
  if (server_line_in_body_) {
    HandleBodyLine(line);
    return;
  }
  size_t token_length = 0;
  Response response;
  response.status = ClassifyStatus(line.content, &token_length);
  response.status_token = std::string(line.content.substr(0, token_length));
  response.text = std::string(SkipBlanks(line.content.substr(token_length)));
  response.line = std::string(line.content);
  response.line_length = line.wire_length;
  response.truncated = line.truncated;
  response.state = state_;
  const bool answers_status =
      response.status == ResponseStatus::kOk || response.status == ResponseStatus::kErr;
  const auto report_line_end = [&] {
    if (!line.ends_with_cr) EmitAnomaly(Direction::kToClient, line.start, anomaly::kLfWithoutCr);
  };

  if (greeting_pending_) {
    response.greeting = answers_status;
    greeting_pending_ = !answers_status;
    Emit(EventKind::kResponse, Direction::kToClient, line.start, response);
    if (!answers_status) EmitAnomaly(Direction::kToClient, line.start, anomaly::kBadStatusToken);
    report_line_end();
    return;
  }
  if (pending_.empty()) {
    Emit(EventKind::kResponse, Direction::kToClient, line.start, response);
    EmitAnomaly(Direction::kToClient, line.start, anomaly::kUnsolicitedResponse);
    if (!answers_status) EmitAnomaly(Direction::kToClient, line.start, anomaly::kBadStatusToken);
    report_line_end();
    return;
  }

  response.answers = std::string(VerbName(pending_.front().verb));
  if (response.status == ResponseStatus::kContinuation &&
      pending_.front().kind == ResponseKind::kSasl) {
    Emit(EventKind::kResponse, Direction::kToClient, line.start, response);
    HandleChallenge(line, pending_.front());
    report_line_end();
    return;
  }
  // A line that is no answer leaves the command waiting for one.
  if (!answers_status) {
    Emit(EventKind::kResponse, Direction::kToClient, line.start, response);
    EmitAnomaly(Direction::kToClient, line.start, anomaly::kBadStatusToken);
    report_line_end();
    return;
  }

  const PendingCommand answered = std::move(pending_.front());
  pending_.pop_front();
  if (pending_.size() < options_.max_pending_commands) queue_overflow_reported_ = false;
  if (answered.kind == ResponseKind::kStls) --pending_stls_;
  const bool ok = response.status == ResponseStatus::kOk;

  if (answered.kind == ResponseKind::kMulti && ok) {
    response.multi_line = true;
    response.state = state_;
    Emit(EventKind::kResponseStart, Direction::kToClient, line.start, response);
    body_ = std::move(response);
    body_offset_ = line.start;
    body_verb_ = answered.verb;
    body_lf_reported_ = false;
    report_line_end();
    return;
  }
  if (answered.kind == ResponseKind::kSasl) sasl_active_ = false;
  if (ok) {
    const bool logs_in = answered.verb == Verb::kPass || answered.verb == Verb::kApop ||
                         answered.kind == ResponseKind::kSasl;
    if (logs_in && state_ == SessionState::kAuthorization) state_ = SessionState::kTransaction;
    if (answered.verb == Verb::kQuit && state_ == SessionState::kTransaction) {
      state_ = SessionState::kUpdate;
    }
    if (answered.verb == Verb::kStat || answered.verb == Verb::kList) {
      response.scan = ParseScanListing(response.text);
    }
  }
  response.state = state_;
  Emit(EventKind::kResponse, Direction::kToClient, line.start, response);
  report_line_end();
  if (answered.kind == ResponseKind::kStls && ok) {
    tls_ = TlsPhase::kAwaitingClient;
    Emit(EventKind::kTlsStarted, Direction::kToClient, server_.offset);
  }
}

void Session::HandleBodyLine(const CompleteLine& line) {
  Response& response = *body_;
  if (!line.ends_with_cr && !body_lf_reported_) {
    body_lf_reported_ = true;
    EmitAnomaly(Direction::kToClient, line.start, anomaly::kLfWithoutCr);
  }
  if (line.content == ".") {
    response.state = state_;
    Emit(EventKind::kResponse, Direction::kToClient, body_offset_, std::move(response));
    body_.reset();
    return;
  }
  ++response.body_lines;
  response.body_bytes += line.wire_length;
  if (body_verb_ != Verb::kList) return;
  std::string_view listing = line.content;
  if (listing.starts_with("..")) listing.remove_prefix(1);
  const std::optional<ScanListing> scan = ParseScanListing(listing);
  if (!scan) {
    ++response.listing_malformed;
    return;
  }
  if (!response.listing_max) response.listing_max.emplace();
  ScanListing& max = *response.listing_max;
  max.number = std::max(max.number, scan->number);
  max.octets = std::max(max.octets, scan->octets);
}

void Session::HandleChallenge(const CompleteLine& line, const PendingCommand& auth) {
  sasl_active_ = true;
  sasl_mechanism_ = auth.mechanism;
  SaslMessage message = DecodeSasl(SkipBlanks(line.content.substr(1)), line.truncated);
  message.mechanism = auth.mechanism;
  if (auth.mechanism == kDigestMd5) {
    // libcurl 7.28.1 pop3_state_auth_digest_resp() decodes its line buffer
    // from the third byte on, past blanks, CR included (the LF is not).
    std::string libcurl_input(
        SkipBlanks(line.content.substr(std::min<size_t>(2, line.content.size()))));
    if (line.ends_with_cr && !line.truncated) libcurl_input.push_back('\r');
    message.libcurl_decoded = DecodeBase64LikeLibcurl728(libcurl_input);
    message.realm = DigestMd5Realm(*message.libcurl_decoded);
  }
  Emit(EventKind::kSaslServer, Direction::kToClient, line.start, message);
  if (!message.decoded_ok) {
    EmitAnomaly(Direction::kToClient, line.start, anomaly::kSaslDecodeFailure);
  }
}

void Session::Emit(EventKind kind, Direction direction, uint64_t offset,
                   decltype(Event::payload) payload) {
  Event event;
  event.kind = kind;
  event.direction = direction;
  event.offset = offset;
  event.payload = std::move(payload);
  sink_(event);
}

void Session::EmitAnomaly(Direction direction, uint64_t offset, std::string_view name) {
  Emit(EventKind::kAnomaly, direction, offset, Anomaly{name});
}

}  // namespace popguard::pop3
