#include "agent/rules/option_parser.h"

#include <algorithm>
#include <limits>
#include <type_traits>
#include <utility>

#include "agent/rules/text.h"

// What the engine does with each option. Anything not listed as accepted is
// an error naming the option and the rule: an IPS that silently ignored part
// of a rule would alert (or drop) on traffic the author never meant.
//
// Accepted, metadata only (they shape the alert, not the match):
//   msg sid gid rev classtype priority reference metadata target
//   service        Snort 3; must include pop3 (other services are moot here)
//   rawbytes       content modifier; a no-op, POP3 has no normalized buffer
//   pcre /B        the rawbytes letter, the same no-op
//
// Accepted, detection:
//   content (Suricata `content:"x"; nocase;` and Snort 3 `content:"x",nocase`)
//   nocase offset depth distance within fast_pattern startswith endswith
//   pcre (letters i s m x A E G R O B)  isdataat  byte_test  bsize  dsize
//   flow  flags  flowbits (set unset toggle isset isnotset noalert)  noalert
//   threshold  detection_filter  base64_decode  base64_data  pkt_data
//   app-layer-event:pop3.<Suricata 8 or popguard event>
//   pop3.command pop3.args pop3.response pop3.sasl pop3.digest_realm
//                                                    (popguard sticky buffers)
//
// Refused, with the reason in the error (see kRefused below), e.g.:
//   HTTP keywords and pcre letters U I P Q H D M C S Y V W K (no HTTP here),
//   other protocols' keywords (dns., tls., ssh., smb., ...), file_data,
//   byte_jump byte_extract byte_math, flowint xbits hostbits, tag replace,
//   IP/TCP/ICMP header keywords other than flags, lua, dataset, ...
//   flowbits groups (Snort 2.9 setx/reset, third argument), byte_test dce,
//   pcre capture variables. Unknown names are refused as unknown.

namespace popguard::rules::internal {
namespace {

// Suricata's bound for positions and distances (payload-keywords.rst).
constexpr int64_t kMaxPosition = 1 << 20;

struct Refusal {
  std::string_view keyword;
  std::string_view reason;
};

constexpr Refusal kRefused[] = {
    {"uricontent", "HTTP URI buffer; POP3 has no HTTP"},
    {"urilen", "HTTP URI buffer; POP3 has no HTTP"},
    {"file_data", "message bodies are not a rule buffer (they stay in the kernel)"},
    {"file.data", "message bodies are not a rule buffer (they stay in the kernel)"},
    {"byte_jump", "cursor jumps by values read from the stream are not supported"},
    {"byte_extract", "stream-extracted variables are not supported"},
    {"byte_math", "stream-extracted variables are not supported"},
    {"flowint", "flow integer variables are not supported"},
    {"flowvar", "flow string variables are not supported"},
    {"pktvar", "packet variables are not supported"},
    {"xbits", "host/ip-pair bits are not supported"},
    {"hostbits", "host bits are not supported"},
    {"tag", "packet tagging is not supported"},
    {"replace", "payload rewriting is not supported"},
    {"stream_size", "stream byte counts are not tracked per rule"},
    {"window", "TCP window is not kept for rules"},
    {"seq", "TCP sequence numbers are not kept for rules"},
    {"ack", "TCP acknowledgement numbers are not kept for rules"},
    {"tcp.mss", "TCP options are not kept for rules"},
    {"tcp.hdr", "TCP headers are not kept for rules"},
    {"ttl", "IP header fields are not kept for rules"},
    {"tos", "IP header fields are not kept for rules"},
    {"id", "IP header fields are not kept for rules"},
    {"ipopts", "IP header fields are not kept for rules"},
    {"fragbits", "IP header fields are not kept for rules"},
    {"fragoffset", "IP header fields are not kept for rules"},
    {"ip_proto", "IP header fields are not kept for rules"},
    {"sameip", "IP header fields are not kept for rules"},
    {"itype", "ICMP cannot carry POP3"},
    {"icode", "ICMP cannot carry POP3"},
    {"icmp_id", "ICMP cannot carry POP3"},
    {"icmp_seq", "ICMP cannot carry POP3"},
    {"rpc", "SunRPC cannot carry POP3"},
    {"asn1", "ASN.1 decoding is not supported"},
    {"lua", "scripted detection is not supported"},
    {"luajit", "scripted detection is not supported"},
    {"dataset", "datasets are not supported"},
    {"datarep", "datasets are not supported"},
    {"iprep", "IP reputation is not supported"},
    {"geoip", "GeoIP is not supported"},
    {"entropy", "entropy tests are not supported"},
    {"absent", "absent-buffer tests are not supported"},
    {"bypass", "flow bypass is not supported"},
    {"config", "per-rule engine configuration is not supported"},
    {"requires", "engine feature requirements are not evaluated"},
    {"filestore", "file extraction is not supported"},
    {"session", "Snort session logging is not supported"},
    {"resp", "active responses other than the rule action are not supported"},
    {"react", "active responses other than the rule action are not supported"},
    {"logto", "per-rule log files are not supported"},
    {"activates", "Snort 1 dynamic rules are not supported"},
    {"activated_by", "Snort 1 dynamic rules are not supported"},
    {"count", "Snort 1 dynamic rules are not supported"},
    {"raw_data", "Snort 3 raw_data: POP3 buffers are not normalized, use pkt_data"},
};

// Snort 2 content modifiers and prefixes that select another protocol.
constexpr std::string_view kForeignPrefixes[] = {
    "http_",   "http.", "http2.", "dns.",  "tls.",       "ssh.",      "smb.", "dce_",
    "dcerpc.", "ftp",   "smtp.",  "imap.", "krb5",       "snmp.",     "sip.", "dnp3",
    "modbus",  "enip",  "mqtt.",  "rfb.",  "ike.",       "ja3",       "ja4",  "quic.",
    "ldap.",   "file.", "email.", "mime.", "websocket.", "pgsql.",    "nfs",  "tftp",
    "dhcp.",   "sd_",   "ssl_",   "gtp_",  "cip_",       "s7commplus"};

constexpr std::pair<std::string_view, Buffer> kStickyBuffers[] = {
    {"pop3.command", Buffer::kPop3Command},          {"pop3.args", Buffer::kPop3Args},
    {"pop3.response", Buffer::kPop3Response},        {"pop3.sasl", Buffer::kPop3Sasl},
    {"pop3.digest_realm", Buffer::kPop3DigestRealm},
};

constexpr std::pair<std::string_view, Track> kTracks[] = {
    {"by_src", Track::kBySrc},   {"by_dst", Track::kByDst},   {"by_rule", Track::kByRule},
    {"by_both", Track::kByBoth}, {"by_flow", Track::kByFlow},
};

template <typename T, size_t N>
std::optional<T> Lookup(const std::pair<std::string_view, T> (&table)[N], std::string_view key) {
  for (const auto& [name, value] : table) {
    if (name == key) return value;
  }
  return std::nullopt;
}

// What a byte_extract variable name looks like, for a precise refusal.
bool IsVariableLike(std::string_view text) {
  return !text.empty() && ((text[0] >= 'a' && text[0] <= 'z') ||
                           (text[0] >= 'A' && text[0] <= 'Z') || text[0] == '_');
}

bool IsIdentifier(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string Quote(std::string_view text) { return "'" + std::string(text) + "'"; }

std::string Describe(const ContentMatch& content) {
  return std::string("content ") + (content.negated ? "!" : "") + "\"" +
         Printable(content.pattern) + "\"";
}

// `key value` as threshold, detection_filter, base64_decode and metadata
// write their parameters.
std::pair<std::string_view, std::string_view> SplitKeyValue(std::string_view text) {
  text = Trim(text);
  size_t space = 0;
  while (space < text.size() && !IsSpace(text[space])) ++space;
  return {text.substr(0, space), Trim(text.substr(space))};
}

enum class Side { kAny, kToServer, kToClient };

Side BufferSide(Buffer buffer) {
  switch (buffer) {
    case Buffer::kPop3Command:
    case Buffer::kPop3Args:
      return Side::kToServer;
    case Buffer::kPop3Response:
    case Buffer::kPop3DigestRealm:
      return Side::kToClient;
    default:
      return Side::kAny;
  }
}

Side EventSide(Pop3Event event) {
  switch (event) {
    case Pop3Event::kRequestTooLong:
    case Pop3Event::kIncorrectArgumentCount:
    case Pop3Event::kUnknownCommand:
      return Side::kToServer;
    case Pop3Event::kResponseTooLong:
    case Pop3Event::kBadStatusToken:
    case Pop3Event::kUnsolicitedResponse:
    case Pop3Event::kStlsResponseInjection:
      return Side::kToClient;
    case Pop3Event::kStlsCommandInjection:
      return Side::kToServer;
    case Pop3Event::kTooManyTransactions:
    case Pop3Event::kUnterminatedLine:
    case Pop3Event::kSaslDecodeFailure:
    case Pop3Event::kLfWithoutCr:
    case Pop3Event::kReassemblyOverlapDifferentData:
    case Pop3Event::kEventBudgetExceeded:
      return Side::kAny;
  }
  return Side::kAny;
}

Buffer DetectionBuffer(const Detection& detection) {
  return std::visit([](const auto& d) { return d.buffer; }, detection);
}

}  // namespace

const OptionParser::Keyword OptionParser::kKeywords[] = {
    {"msg", &OptionParser::OnMsg},
    {"sid", &OptionParser::OnSid},
    {"gid", &OptionParser::OnGid},
    {"rev", &OptionParser::OnRev},
    {"classtype", &OptionParser::OnClasstype},
    {"priority", &OptionParser::OnPriority},
    {"reference", &OptionParser::OnReference},
    {"metadata", &OptionParser::OnMetadata},
    {"target", &OptionParser::OnTarget},
    {"service", &OptionParser::OnService},
    {"content", &OptionParser::OnContent},
    {"nocase", &OptionParser::OnContentModifier},
    {"offset", &OptionParser::OnContentModifier},
    {"depth", &OptionParser::OnContentModifier},
    {"distance", &OptionParser::OnContentModifier},
    {"within", &OptionParser::OnContentModifier},
    {"fast_pattern", &OptionParser::OnContentModifier},
    {"startswith", &OptionParser::OnContentModifier},
    {"endswith", &OptionParser::OnContentModifier},
    {"rawbytes", &OptionParser::OnContentModifier},
    {"pcre", &OptionParser::OnPcre},
    {"isdataat", &OptionParser::OnIsDataAt},
    {"byte_test", &OptionParser::OnByteTest},
    {"base64_decode", &OptionParser::OnBase64Decode},
    {"base64_data", &OptionParser::OnBase64Data},
    {"bsize", &OptionParser::OnBsize},
    {"pop3.command", &OptionParser::OnStickyBuffer},
    {"pop3.args", &OptionParser::OnStickyBuffer},
    {"pop3.response", &OptionParser::OnStickyBuffer},
    {"pop3.sasl", &OptionParser::OnStickyBuffer},
    {"pop3.digest_realm", &OptionParser::OnStickyBuffer},
    {"pkt_data", &OptionParser::OnPktData},
    {"dsize", &OptionParser::OnDsize},
    {"flow", &OptionParser::OnFlow},
    {"flags", &OptionParser::OnFlags},
    {"flowbits", &OptionParser::OnFlowbits},
    {"noalert", &OptionParser::OnNoalert},
    {"threshold", &OptionParser::OnThreshold},
    {"detection_filter", &OptionParser::OnDetectionFilter},
    {"app-layer-event", &OptionParser::OnAppLayerEvent},
};

bool OptionParser::Apply(const RawOption& option, SyntaxError* error) {
  error_ = error;
  for (const Keyword& keyword : kKeywords) {
    if (keyword.name == option.key) return (this->*keyword.handler)(option);
  }
  return Refuse(option);
}

bool OptionParser::Fail(size_t offset, std::string message) {
  *error_ = {offset, std::move(message)};
  return false;
}

bool OptionParser::RequireValue(const RawOption& option) {
  if (option.has_value && !option.value.empty()) return true;
  return Fail(option.key_offset, Quote(option.key) + " needs a value");
}

bool OptionParser::RequireNoValue(const RawOption& option) {
  if (!option.has_value) return true;
  return Fail(option.key_offset, Quote(option.key) + " takes no value");
}

bool OptionParser::Once(const RawOption& option) {
  if (seen_.insert(option.key).second) return true;
  return Fail(option.key_offset, Quote(option.key) + " given twice");
}

bool OptionParser::Refuse(const RawOption& option) {
  for (const Refusal& refusal : kRefused) {
    if (refusal.keyword == option.key) {
      return Fail(option.key_offset,
                  "unsupported option " + Quote(option.key) + ": " + std::string(refusal.reason));
    }
  }
  if (option.key.rfind("pop3.", 0) == 0) {
    return Fail(option.key_offset, "unknown POP3 keyword " + Quote(option.key) +
                                       " (the POP3 buffers are pop3.command, pop3.args, "
                                       "pop3.response, pop3.sasl, pop3.digest_realm)");
  }
  for (std::string_view prefix : kForeignPrefixes) {
    if (option.key.rfind(prefix, 0) == 0) {
      return Fail(option.key_offset, "unsupported option " + Quote(option.key) +
                                         ": it inspects another protocol, not POP3");
    }
  }
  return Fail(option.key_offset, "unknown option " + Quote(option.key));
}

// ---------------------------------------------------------------- metadata

bool OptionParser::OnMsg(const RawOption& option) {
  if (!RequireValue(option) || !Once(option)) return false;
  bool negated = false;
  std::string_view inner;
  std::string_view rest;
  size_t rest_offset = 0;
  if (!ParseQuoted(option.value, option.value_offset, false, &negated, &inner, &rest,
                   &rest_offset)) {
    return false;
  }
  if (!rest.empty()) return Fail(rest_offset, "unexpected text after the msg string");
  std::string msg;
  for (size_t i = 0; i < inner.size(); ++i) {
    if (inner[i] == '\\' && i + 1 < inner.size()) ++i;
    msg += inner[i];
  }
  rule_->msg = std::move(msg);
  return true;
}

bool OptionParser::OnSid(const RawOption& option) {
  if (!RequireValue(option) || !Once(option)) return false;
  int64_t sid = 0;
  if (!ParseNumber(option.value, option.value_offset, "sid", 1,
                   std::numeric_limits<uint32_t>::max(), &sid)) {
    return false;
  }
  rule_->sid = static_cast<uint32_t>(sid);
  return true;
}

bool OptionParser::OnGid(const RawOption& option) {
  if (!RequireValue(option) || !Once(option)) return false;
  int64_t gid = 0;
  if (!ParseNumber(option.value, option.value_offset, "gid", 1,
                   std::numeric_limits<uint32_t>::max(), &gid)) {
    return false;
  }
  rule_->gid = static_cast<uint32_t>(gid);
  return true;
}

bool OptionParser::OnRev(const RawOption& option) {
  if (!RequireValue(option) || !Once(option)) return false;
  int64_t rev = 0;
  if (!ParseNumber(option.value, option.value_offset, "rev", 0,
                   std::numeric_limits<uint32_t>::max(), &rev)) {
    return false;
  }
  rule_->rev = static_cast<uint32_t>(rev);
  return true;
}

bool OptionParser::OnClasstype(const RawOption& option) {
  if (!RequireValue(option) || !Once(option)) return false;
  const Classification* classification = classifications_.Find(option.value);
  if (classification == nullptr) {
    return Fail(option.value_offset, "unknown classtype " + Quote(option.value));
  }
  rule_->classtype = classification->name;
  rule_->category = classification->description;
  if (!explicit_priority_) rule_->priority = classification->priority;
  return true;
}

bool OptionParser::OnPriority(const RawOption& option) {
  if (!RequireValue(option) || !Once(option)) return false;
  int64_t priority = 0;
  if (!ParseNumber(option.value, option.value_offset, "priority", 1, 255, &priority)) {
    return false;
  }
  rule_->priority = static_cast<int>(priority);
  explicit_priority_ = true;
  return true;
}

bool OptionParser::OnReference(const RawOption& option) {
  if (!RequireValue(option)) return false;
  size_t comma = option.value.find(',');
  std::string_view type = Trim(option.value.substr(0, comma));
  std::string_view value =
      comma == std::string_view::npos ? std::string_view() : Trim(option.value.substr(comma + 1));
  if (type.empty() || value.empty()) {
    return Fail(option.value_offset, "reference must be 'type,value', got " + Quote(option.value));
  }
  rule_->references.push_back({std::string(type), std::string(value)});
  return true;
}

bool OptionParser::OnMetadata(const RawOption& option) {
  if (!RequireValue(option)) return false;
  for (const Piece& entry : SplitTopLevel(option.value, ',')) {
    auto [key, value] = SplitKeyValue(entry.text);
    if (key.empty() || value.empty()) {
      return Fail(option.value_offset + entry.offset,
                  "metadata entry " + Quote(entry.text) + " is not 'key value'");
    }
    rule_->metadata.emplace_back(std::string(key), std::string(value));
  }
  return true;
}

bool OptionParser::OnTarget(const RawOption& option) {
  if (!RequireValue(option) || !Once(option)) return false;
  if (option.value == "src_ip") {
    rule_->target = Target::kSrcIp;
  } else if (option.value == "dest_ip") {
    rule_->target = Target::kDestIp;
  } else {
    return Fail(option.value_offset,
                "target must be src_ip or dest_ip, got " + Quote(option.value));
  }
  return true;
}

bool OptionParser::OnService(const RawOption& option) {
  if (!RequireValue(option) || !Once(option)) return false;
  for (const Piece& service : SplitTopLevel(option.value, ',')) {
    rule_->services.push_back(ToLower(service.text));
  }
  if (std::find(rule_->services.begin(), rule_->services.end(), "pop3") == rule_->services.end()) {
    return Fail(option.value_offset,
                "service " + Quote(option.value) + " does not include pop3, the only service here");
  }
  return true;
}

// ---------------------------------------------------------------- payload

bool OptionParser::ParseQuoted(std::string_view value, size_t offset, bool allow_negation,
                               bool* negated, std::string_view* inner, std::string_view* rest,
                               size_t* rest_offset) {
  size_t i = 0;
  if (allow_negation && i < value.size() && value[i] == '!') {
    *negated = true;
    ++i;
    while (i < value.size() && IsSpace(value[i])) ++i;
  }
  if (i >= value.size() || value[i] != '"') {
    return Fail(offset + i, "expected a quoted string, got " + Quote(value));
  }
  size_t open = i++;
  while (i < value.size() && value[i] != '"') i += value[i] == '\\' ? 2 : 1;
  if (i >= value.size()) return Fail(offset + open, "unterminated quoted string");
  *inner = value.substr(open + 1, i - open - 1);
  std::string_view after = value.substr(i + 1);
  *rest = Trim(after);
  *rest_offset = offset + i + 1 + (rest->empty() ? 0 : rest->data() - after.data());
  return true;
}

bool OptionParser::DecodeContent(std::string_view raw, size_t offset, std::string* pattern) {
  bool hex = false;
  size_t hex_start = 0;
  int high_nibble = -1;
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (hex) {
      if (c == '|') {
        if (high_nibble >= 0) return Fail(offset + i, "odd number of hex digits in |...|");
        hex = false;
      } else if (IsSpace(c)) {
        if (high_nibble >= 0) return Fail(offset + i, "hex byte split by a space in |...|");
      } else if (int nibble = HexValue(c); nibble >= 0) {
        if (high_nibble < 0) {
          high_nibble = nibble;
        } else {
          pattern->push_back(static_cast<char>(high_nibble << 4 | nibble));
          high_nibble = -1;
        }
      } else {
        return Fail(offset + i,
                    Quote(std::string_view(&raw[i], 1)) + " is not a hex digit in |...|");
      }
    } else if (c == '|') {
      hex = true;
      hex_start = i;
    } else if (c == '\\') {
      char next = i + 1 < raw.size() ? raw[i + 1] : '\0';
      if (next != '"' && next != ';' && next != '\\' && next != ':') {
        return Fail(offset + i, "unknown escape in content (only \\\" \\; \\\\ \\: are allowed)");
      }
      pattern->push_back(next);
      ++i;
    } else {
      pattern->push_back(c);
    }
  }
  if (hex) return Fail(offset + hex_start, "unterminated |hex| segment");
  return true;
}

void OptionParser::AddDetection(Detection detection, size_t offset) {
  if (unused_sticky_ && DetectionBuffer(detection) == buffer_) unused_sticky_.reset();
  rule_->detections.push_back(std::move(detection));
  detection_offsets_.push_back(offset);
}

bool OptionParser::OnContent(const RawOption& option) {
  if (!RequireValue(option)) return false;
  ContentMatch content;
  content.buffer = buffer_;
  std::string_view inner;
  std::string_view rest;
  size_t rest_offset = 0;
  if (!ParseQuoted(option.value, option.value_offset, true, &content.negated, &inner, &rest,
                   &rest_offset)) {
    return false;
  }
  size_t inner_offset =
      static_cast<size_t>(inner.data() - option.value.data()) + option.value_offset;
  if (!DecodeContent(inner, inner_offset, &content.pattern)) return false;
  if (content.pattern.empty()) return Fail(option.value_offset, "empty content");
  if (!rest.empty()) {
    // Snort 3 writes modifiers inside the option: content:"x",nocase,depth 4
    if (rest.front() != ',') return Fail(rest_offset, "unexpected text after the content string");
    for (const Piece& piece : SplitTopLevel(rest.substr(1), ',')) {
      auto [name, argument] = SplitKeyValue(piece.text);
      size_t at = rest_offset + 1 + piece.offset;
      std::optional<std::string_view> value;
      if (!argument.empty()) value = argument;
      static constexpr std::string_view kInline[] = {"nocase",
                                                     "fast_pattern",
                                                     "fast_pattern_offset",
                                                     "fast_pattern_length",
                                                     "offset",
                                                     "depth",
                                                     "distance",
                                                     "within"};
      if (std::find(std::begin(kInline), std::end(kInline), name) == std::end(kInline)) {
        return Fail(at, "unknown content modifier " + Quote(piece.text));
      }
      if (!ApplyContentModifier(content, name, value, at)) return false;
    }
  }
  AddDetection(std::move(content), option.key_offset);
  return true;
}

bool OptionParser::OnContentModifier(const RawOption& option) {
  ContentMatch* target = nullptr;
  for (auto it = rule_->detections.rbegin(); it != rule_->detections.rend(); ++it) {
    auto* content = std::get_if<ContentMatch>(&*it);
    if (content != nullptr && content->buffer == buffer_) {
      target = content;
      break;
    }
  }
  if (target == nullptr) {
    std::string where = buffer_ == Buffer::kPayload
                            ? ""
                            : " in the " + std::string(BufferName(buffer_)) + " buffer";
    return Fail(option.key_offset, Quote(option.key) + " needs a preceding content" + where);
  }
  std::optional<std::string_view> value;
  if (option.has_value) value = option.value;
  return ApplyContentModifier(*target, option.key, value,
                              option.has_value ? option.value_offset : option.key_offset);
}

bool OptionParser::ApplyContentModifier(ContentMatch& content, std::string_view name,
                                        std::optional<std::string_view> value, size_t offset) {
  auto twice = [&] { return Fail(offset, Quote(name) + " given twice for " + Describe(content)); };
  auto flag = [&](bool* field) {
    if (value) return Fail(offset, Quote(name) + " takes no value");
    if (*field) return twice();
    *field = true;
    return true;
  };
  auto number = [&](auto* field, int64_t min, int64_t max) {
    if (!value || value->empty()) return Fail(offset, Quote(name) + " needs a value");
    if (field->has_value()) return twice();
    int64_t parsed = 0;
    if (!ParseNumber(*value, offset, name, min, max, &parsed, true)) return false;
    *field = static_cast<typename std::remove_reference_t<decltype(*field)>::value_type>(parsed);
    return true;
  };
  // Snort 3's fast_pattern_offset/_length imply fast_pattern.
  auto slice = [&](std::optional<uint32_t> FastPattern::*field, int64_t min) {
    if (!content.fast_pattern) content.fast_pattern.emplace();
    return number(&(*content.fast_pattern.*field), min, kMaxPosition);
  };

  if (name == "nocase") return flag(&content.nocase);
  if (name == "startswith") return flag(&content.startswith);
  if (name == "endswith") return flag(&content.endswith);
  if (name == "rawbytes") {
    // POP3 has no normalized form of the payload, so raw is all there is.
    if (value) return Fail(offset, "'rawbytes' takes no value");
    return true;
  }
  if (name == "offset") return number(&content.offset, 0, kMaxPosition);
  if (name == "depth") return number(&content.depth, 1, kMaxPosition);
  if (name == "distance") return number(&content.distance, -kMaxPosition, kMaxPosition);
  if (name == "within") return number(&content.within, 1, kMaxPosition);
  if (name == "fast_pattern_offset") return slice(&FastPattern::slice_offset, 0);
  if (name == "fast_pattern_length") return slice(&FastPattern::slice_length, 1);

  // fast_pattern, fast_pattern:only, fast_pattern:offset,length
  if (content.fast_pattern) {
    const FastPattern& existing = *content.fast_pattern;
    bool implied_by_slice = !existing.only && (existing.slice_offset || existing.slice_length);
    if (value || !implied_by_slice) return twice();
    return true;
  }
  FastPattern fast_pattern;
  if (value) {
    std::vector<Piece> parts = SplitTopLevel(*value, ',');
    if (parts.size() == 1 && parts[0].text == "only") {
      fast_pattern.only = true;
    } else if (parts.size() == 2) {
      int64_t slice_offset = 0;
      int64_t slice_length = 0;
      if (!ParseNumber(parts[0].text, offset + parts[0].offset, "fast_pattern offset", 0,
                       kMaxPosition, &slice_offset) ||
          !ParseNumber(parts[1].text, offset + parts[1].offset, "fast_pattern length", 1,
                       kMaxPosition, &slice_length)) {
        return false;
      }
      fast_pattern.slice_offset = static_cast<uint32_t>(slice_offset);
      fast_pattern.slice_length = static_cast<uint32_t>(slice_length);
    } else {
      return Fail(offset,
                  "fast_pattern takes no value, 'only' or 'offset,length', got " + Quote(*value));
    }
  }
  content.fast_pattern = fast_pattern;
  return true;
}

bool OptionParser::OnPcre(const RawOption& option) {
  if (!RequireValue(option)) return false;
  PcreMatch pcre;
  pcre.buffer = buffer_;
  std::string_view inner;
  std::string_view rest;
  size_t rest_offset = 0;
  if (!ParseQuoted(option.value, option.value_offset, true, &pcre.negated, &inner, &rest,
                   &rest_offset)) {
    return false;
  }
  if (!rest.empty()) {
    return Fail(rest_offset, rest.front() == ','
                                 ? "pcre capture variables (flow:/pkt:/alert:) are not supported"
                                 : "unexpected text after the pcre string");
  }
  size_t inner_offset =
      static_cast<size_t>(inner.data() - option.value.data()) + option.value_offset;
  size_t last_slash = inner.rfind('/');
  if (inner.empty() || inner.front() != '/' || last_slash == 0) {
    return Fail(inner_offset, "pcre must be written \"/regex/modifiers\"");
  }
  // Escapes stay: in a regex `\;` and `\"` already mean `;` and `"`, and
  // `\\` must stay a literal backslash.
  pcre.regex = std::string(inner.substr(1, last_slash - 1));
  if (pcre.regex.empty()) return Fail(inner_offset, "empty regex");
  std::string_view letters = inner.substr(last_slash + 1);
  for (size_t i = 0; i < letters.size(); ++i) {
    char c = letters[i];
    size_t at = inner_offset + last_slash + 1 + i;
    PcreModifiers& m = pcre.modifiers;
    switch (c) {
      case 'i':
        m.caseless = true;
        break;
      case 's':
        m.dotall = true;
        break;
      case 'm':
        m.multiline = true;
        break;
      case 'x':
        m.extended = true;
        break;
      case 'A':
        m.anchored = true;
        break;
      case 'E':
        m.dollar_endonly = true;
        break;
      case 'G':
        m.ungreedy = true;
        break;
      case 'R':
        m.relative = true;
        break;
      case 'O':
        m.override_match_limit = true;
        break;
      case 'B':
        break;  // rawbytes: POP3 buffers are raw already
      case 'U':
      case 'I':
      case 'P':
      case 'Q':
      case 'H':
      case 'D':
      case 'M':
      case 'C':
      case 'S':
      case 'Y':
      case 'V':
      case 'W':
      case 'K':
        return Fail(
            at, "pcre modifier '" + std::string(1, c) + "' selects an HTTP buffer; POP3 has none");
      default:
        return Fail(at, "unknown pcre modifier '" + std::string(1, c) + "'");
    }
  }
  AddDetection(std::move(pcre), option.key_offset);
  return true;
}

bool OptionParser::OnIsDataAt(const RawOption& option) {
  if (!RequireValue(option)) return false;
  IsDataAt isdataat;
  isdataat.buffer = buffer_;
  std::vector<Piece> parts = SplitTopLevel(option.value, ',');
  std::string_view position = parts[0].text;
  if (!position.empty() && position.front() == '!') {
    isdataat.negated = true;
    position = Trim(position.substr(1));
  }
  int64_t parsed = 0;
  if (!ParseNumber(position, option.value_offset + parts[0].offset, "isdataat", 0, kMaxPosition,
                   &parsed, true)) {
    return false;
  }
  isdataat.position = static_cast<uint32_t>(parsed);
  for (size_t i = 1; i < parts.size(); ++i) {
    if (parts[i].text == "relative") {
      isdataat.relative = true;
    } else if (parts[i].text != "rawbytes") {  // rawbytes: a no-op, as for content
      return Fail(option.value_offset + parts[i].offset,
                  "isdataat takes 'relative' or 'rawbytes' after the position, got " +
                      Quote(parts[i].text));
    }
  }
  AddDetection(std::move(isdataat), option.key_offset);
  return true;
}

bool OptionParser::OnByteTest(const RawOption& option) {
  if (!RequireValue(option)) return false;
  std::vector<Piece> parts = SplitTopLevel(option.value, ',');
  auto at = [&](size_t i) { return option.value_offset + parts[i].offset; };
  if (parts.size() < 4) {
    return Fail(option.value_offset,
                "byte_test needs 'bytes, operator, value, offset', got " + Quote(option.value));
  }
  ByteTest test;
  test.buffer = buffer_;
  int64_t bytes = 0;
  if (!ParseNumber(parts[0].text, at(0), "byte_test byte count", 1, 10, &bytes)) return false;
  test.bytes = static_cast<uint8_t>(bytes);

  std::string_view op = parts[1].text;
  if (op == "!") {
    op = "=";  // Snort 2's bare `!`: not equal
    test.negated = true;
  } else if (!op.empty() && op.front() == '!') {
    op.remove_prefix(1);
    test.negated = true;
  }
  static constexpr std::pair<std::string_view, ByteTestOperator> kOperators[] = {
      {"<", ByteTestOperator::kLess},
      {">", ByteTestOperator::kGreater},
      {"=", ByteTestOperator::kEqual},
      {"<=", ByteTestOperator::kLessEqual},
      {">=", ByteTestOperator::kGreaterEqual},
      {"&", ByteTestOperator::kAnd},
      {"^", ByteTestOperator::kOr},
  };
  std::optional<ByteTestOperator> parsed_op = Lookup(kOperators, op);
  if (!parsed_op) {
    return Fail(at(1), "byte_test operator must be [!]<, >, =, <=, >=, & or ^, got " +
                           Quote(parts[1].text));
  }
  test.op = *parsed_op;

  std::optional<uint64_t> value =
      ParseUnsignedOrHex(parts[2].text, std::numeric_limits<uint64_t>::max());
  if (!value) {
    return Fail(
        at(2), IsVariableLike(parts[2].text) && IsIdentifier(parts[2].text)
                   ? "byte_test value " + Quote(parts[2].text) +
                         " is a variable; byte_extract variables are not supported"
                   : "byte_test value must be a decimal or 0x number, got " + Quote(parts[2].text));
  }
  test.value = *value;
  int64_t offset = 0;
  if (!ParseNumber(parts[3].text, at(3), "byte_test offset", -65535, 65535, &offset, true)) {
    return false;
  }
  test.offset = static_cast<int32_t>(offset);

  std::optional<Endian> endian;
  for (size_t i = 4; i < parts.size(); ++i) {
    auto [word, argument] = SplitKeyValue(parts[i].text);
    if (word == "relative" && argument.empty()) {
      test.relative = true;
    } else if ((word == "big" || word == "little") && argument.empty()) {
      Endian e = word == "big" ? Endian::kBig : Endian::kLittle;
      if (endian && *endian != e) return Fail(at(i), "byte_test is both big and little endian");
      endian = e;
    } else if (word == "string") {
      // `string,dec` (Snort) or `string dec`.
      std::string_view base = argument;
      if (base.empty() && i + 1 < parts.size()) base = parts[++i].text;
      if (base == "hex") {
        test.string_base = NumberBase::kHex;
      } else if (base == "dec") {
        test.string_base = NumberBase::kDec;
      } else if (base == "oct") {
        test.string_base = NumberBase::kOct;
      } else {
        return Fail(at(i), "byte_test string needs hex, dec or oct, got " + Quote(base));
      }
    } else if (word == "bitmask") {
      std::optional<uint64_t> mask =
          ParseUnsignedOrHex(argument, std::numeric_limits<uint64_t>::max());
      if (!mask || *mask == 0) {
        return Fail(at(i), "byte_test bitmask needs a non-zero number, got " + Quote(argument));
      }
      test.bitmask = *mask;
    } else if (word == "dce") {
      return Fail(at(i), "byte_test 'dce' reads DCE/RPC byte order; POP3 has no DCE/RPC");
    } else {
      return Fail(at(i), "unknown byte_test parameter " + Quote(parts[i].text));
    }
  }
  test.endian = endian.value_or(Endian::kBig);
  if (!test.string_base && test.bytes > 8) {
    return Fail(at(0), "byte_test reads at most 8 bytes as a binary number (10 with 'string')");
  }
  AddDetection(std::move(test), option.key_offset);
  return true;
}

bool OptionParser::OnBase64Decode(const RawOption& option) {
  Base64Decode decode;
  decode.buffer = buffer_;
  if (option.has_value && !option.value.empty()) {
    std::set<std::string_view> seen;
    for (const Piece& part : SplitTopLevel(option.value, ',')) {
      auto [word, argument] = SplitKeyValue(part.text);
      size_t at = option.value_offset + part.offset;
      if (!seen.insert(word).second) {
        return Fail(at, "base64_decode " + Quote(word) + " given twice");
      }
      int64_t number = 0;
      if (word == "relative" && argument.empty()) {
        decode.relative = true;
      } else if (word == "bytes") {
        if (!ParseNumber(argument, at, "base64_decode bytes", 1, kMaxPosition, &number)) {
          return false;
        }
        decode.bytes = static_cast<uint32_t>(number);
      } else if (word == "offset") {
        if (!ParseNumber(argument, at, "base64_decode offset", 0, kMaxPosition, &number)) {
          return false;
        }
        decode.offset = static_cast<uint32_t>(number);
      } else {
        return Fail(at, "base64_decode takes 'bytes N', 'offset N' and 'relative', got " +
                            Quote(part.text));
      }
    }
  }
  unread_base64_decode_ = option.key_offset;
  AddDetection(decode, option.key_offset);
  return true;
}

bool OptionParser::OnBase64Data(const RawOption& option) {
  if (!RequireNoValue(option)) return false;
  bool decoded =
      std::any_of(rule_->detections.begin(), rule_->detections.end(),
                  [](const Detection& d) { return std::holds_alternative<Base64Decode>(d); });
  if (!decoded) return Fail(option.key_offset, "base64_data needs a base64_decode before it");
  unread_base64_decode_.reset();
  return SwitchBuffer(option, Buffer::kBase64Data);
}

bool OptionParser::OnBsize(const RawOption& option) {
  if (!RequireValue(option)) return false;
  if (buffer_ == Buffer::kPayload) {
    return Fail(
        option.key_offset,
        "bsize measures a sticky buffer; put pop3.command, pop3.args, pop3.response, "
        "pop3.sasl, pop3.digest_realm or base64_data before it (dsize measures the payload)");
  }
  BufferSize size;
  size.buffer = buffer_;
  if (!ParseIntegerTest(option.value, option.value_offset, std::numeric_limits<uint64_t>::max(),
                        "bsize", &size.test)) {
    return false;
  }
  AddDetection(size, option.key_offset);
  return true;
}

bool OptionParser::CheckStickyUsed() {
  if (!unused_sticky_) return true;
  return Fail(unused_sticky_->offset,
              "sticky buffer " + Quote(unused_sticky_->keyword) +
                  " has no content, pcre or other payload keyword after it");
}

// A sticky buffer nothing reads is a mistake (the keywords meant for it went
// elsewhere); the payload, which pkt_data returns to, needs no reader.
bool OptionParser::SwitchBuffer(const RawOption& option, Buffer buffer) {
  if (!CheckStickyUsed()) return false;
  buffer_ = buffer;
  if (buffer != Buffer::kPayload) unused_sticky_ = PendingSticky{option.key, option.key_offset};
  return true;
}

bool OptionParser::OnStickyBuffer(const RawOption& option) {
  return RequireNoValue(option) && SwitchBuffer(option, *Lookup(kStickyBuffers, option.key));
}

bool OptionParser::OnPktData(const RawOption& option) {
  return RequireNoValue(option) && SwitchBuffer(option, Buffer::kPayload);
}

// ---------------------------------------------------------------- non-payload

bool OptionParser::ParseNumber(std::string_view text, size_t offset, std::string_view what,
                               int64_t min, int64_t max, int64_t* value, bool position) {
  text = Trim(text);
  std::optional<int64_t> parsed = ParseSigned(text, min, max);
  if (parsed) {
    *value = *parsed;
    return true;
  }
  if (position && IsVariableLike(text) && IsIdentifier(text)) {
    return Fail(offset, Quote(what) + " takes a number; " + Quote(text) +
                            " looks like a byte_extract variable, which is not supported");
  }
  return Fail(offset, Quote(what) + " must be a number " + std::to_string(min) + ".." +
                          std::to_string(max) + ", got " + Quote(text));
}

bool OptionParser::ParseIntegerTest(std::string_view text, size_t offset, uint64_t max,
                                    std::string_view what, IntegerTest* test) {
  text = Trim(text);
  auto number = [&](std::string_view digits, uint64_t* out) {
    std::optional<uint64_t> parsed = ParseUnsigned(Trim(digits), max);
    if (!parsed) {
      return Fail(offset, Quote(what) +
                              " must be n, !n, <n, <=n, >n, >=n or lo<>hi with numbers "
                              "0.." +
                              std::to_string(max) + ", got " + Quote(text));
    }
    *out = *parsed;
    return true;
  };
  if (size_t range = text.find("<>"); range != std::string_view::npos) {
    test->op = Comparison::kRange;
    if (!number(text.substr(0, range), &test->value) ||
        !number(text.substr(range + 2), &test->high)) {
      return false;
    }
    if (test->value + 1 >= test->high) {
      return Fail(offset,
                  Quote(what) + " range " + Quote(text) + " is empty (both ends are exclusive)");
    }
    return true;
  }
  static constexpr std::pair<std::string_view, Comparison> kPrefixes[] = {
      {"<=", Comparison::kLessEqual}, {">=", Comparison::kGreaterEqual}, {"<", Comparison::kLess},
      {">", Comparison::kGreater},    {"!", Comparison::kNotEqual},      {"=", Comparison::kEqual},
  };
  test->op = Comparison::kEqual;
  for (const auto& [prefix, op] : kPrefixes) {
    if (text.substr(0, prefix.size()) == prefix) {
      test->op = op;
      text.remove_prefix(prefix.size());
      break;
    }
  }
  return number(text, &test->value);
}

bool OptionParser::OnDsize(const RawOption& option) {
  if (!RequireValue(option) || !Once(option)) return false;
  IntegerTest test;
  if (!ParseIntegerTest(option.value, option.value_offset, 65535, "dsize", &test)) return false;
  rule_->dsize = test;
  dsize_offset_ = option.key_offset;
  return true;
}

bool OptionParser::OnFlow(const RawOption& option) {
  if (!RequireValue(option) || !Once(option)) return false;
  Flow flow;
  // Each aspect is set by one word; a second, different word conflicts.
  std::string_view direction_word;
  std::string_view state_word;
  std::string_view stream_word;
  std::string_view frag_word;
  for (const Piece& piece : SplitTopLevel(option.value, ',')) {
    std::string word = ToLower(piece.text);
    size_t at = option.value_offset + piece.offset;
    auto set = [&](std::string_view aspect, std::string_view* previous, auto* field, auto value) {
      if (!previous->empty() && *field != value) {
        return Fail(at, "conflicting flow " + std::string(aspect) + " " + Quote(*previous) +
                            " and " + Quote(piece.text));
      }
      *previous = piece.text;
      *field = value;
      return true;
    };
    bool ok;
    if (word == "to_server" || word == "from_client") {
      ok = set("directions", &direction_word, &flow.direction, FlowDirection::kToServer);
    } else if (word == "to_client" || word == "from_server") {
      ok = set("directions", &direction_word, &flow.direction, FlowDirection::kToClient);
    } else if (word == "established") {
      ok = set("states", &state_word, &flow.state, FlowState::kEstablished);
    } else if (word == "not_established") {
      ok = set("states", &state_word, &flow.state, FlowState::kNotEstablished);
    } else if (word == "stateless") {
      ok = set("states", &state_word, &flow.state, FlowState::kStateless);
    } else if (word == "only_stream") {
      ok = set("stream modes", &stream_word, &flow.stream, StreamMode::kOnlyStream);
    } else if (word == "no_stream") {
      ok = set("stream modes", &stream_word, &flow.stream, StreamMode::kNoStream);
    } else if (word == "only_frag") {
      ok = set("fragment modes", &frag_word, &flow.fragments, FragmentMode::kOnlyFrag);
    } else if (word == "no_frag") {
      ok = set("fragment modes", &frag_word, &flow.fragments, FragmentMode::kNoFrag);
    } else {
      ok = Fail(at, "unknown flow option " + Quote(piece.text));
    }
    if (!ok) return false;
  }
  rule_->flow = flow;
  return true;
}

bool OptionParser::OnFlags(const RawOption& option) {
  if (!RequireValue(option) || !Once(option)) return false;
  std::vector<Piece> parts = SplitTopLevel(option.value, ',');
  if (parts.size() > 2) {
    return Fail(option.value_offset,
                "flags takes '[+*!]flags[,ignored]', got " + Quote(option.value));
  }
  auto bit = [](char c) -> uint8_t {
    switch (c) {
      case 'F':
      case 'f':
        return kTcpFin;
      case 'S':
      case 's':
        return kTcpSyn;
      case 'R':
      case 'r':
        return kTcpRst;
      case 'P':
      case 'p':
        return kTcpPsh;
      case 'A':
      case 'a':
        return kTcpAck;
      case 'U':
      case 'u':
        return kTcpUrg;
      case 'E':
      case 'e':
      case '2':
        return kTcpEce;  // '1' and '2': pre-RFC 3168 names
      case 'C':
      case 'c':
      case '1':
        return kTcpCwr;
      default:
        return 0;
    }
  };
  TcpFlags flags;
  std::string_view spec = parts[0].text;
  size_t at = option.value_offset + parts[0].offset;
  auto modifier = [](char c) -> std::optional<FlagsMatch> {
    switch (c) {
      case '+':
        return FlagsMatch::kAllOf;
      case '*':
        return FlagsMatch::kAnyOf;
      case '!':
        return FlagsMatch::kNoneOf;
      default:
        return std::nullopt;
    }
  };
  // The modifier goes first (Suricata) or last (old Snort: `A+`).
  if (!spec.empty() && modifier(spec.front())) {
    flags.match = *modifier(spec.front());
    spec.remove_prefix(1);
  }
  if (!spec.empty() && modifier(spec.back())) {
    if (flags.match != FlagsMatch::kExact) {
      return Fail(at, "flags has a modifier at both ends of " + Quote(parts[0].text));
    }
    flags.match = *modifier(spec.back());
    spec.remove_suffix(1);
  }
  if (spec == "0") {
    if (flags.match != FlagsMatch::kExact) {
      return Fail(at, "flags 0 (no flag set) takes no modifier");
    }
  } else {
    if (spec.empty()) return Fail(at, "flags needs at least one of FSRPAUCE or 0");
    for (char c : spec) {
      if (c == '0') return Fail(at, "flags 0 (no flag set) cannot be combined with other flags");
      if (bit(c) == 0) {
        return Fail(at,
                    "unknown TCP flag '" + std::string(1, c) + "' (expected FSRPAUCE, 12 or 0)");
      }
      flags.flags |= bit(c);
    }
  }
  if (parts.size() == 2) {
    for (char c : parts[1].text) {
      if (bit(c) == 0) {
        return Fail(option.value_offset + parts[1].offset,
                    "unknown TCP flag '" + std::string(1, c) + "' in the ignore mask");
      }
      flags.ignored |= bit(c);
    }
  }
  rule_->flags = flags;
  return true;
}

bool OptionParser::OnFlowbits(const RawOption& option) {
  if (!RequireValue(option)) return false;
  std::vector<Piece> parts = SplitTopLevel(option.value, ',');
  std::string command = ToLower(parts[0].text);
  if (command == "noalert") {
    if (parts.size() != 1) return Fail(option.value_offset, "flowbits:noalert takes no name");
    rule_->noalert = true;
    return true;
  }
  static constexpr std::pair<std::string_view, FlowbitsCommand> kCommands[] = {
      {"set", FlowbitsCommand::kSet},           {"unset", FlowbitsCommand::kUnset},
      {"toggle", FlowbitsCommand::kToggle},     {"isset", FlowbitsCommand::kIsSet},
      {"isnotset", FlowbitsCommand::kIsNotSet},
  };
  std::optional<FlowbitsCommand> parsed = Lookup(kCommands, command);
  if (!parsed) {
    return Fail(
        option.value_offset,
        command == "setx" || command == "reset"
            ? "flowbits " + Quote(parts[0].text) + " (Snort flowbit groups) is not supported"
            : "unknown flowbits command " + Quote(parts[0].text) +
                  " (expected set, unset, toggle, isset, isnotset or noalert)");
  }
  if (parts.size() != 2) {
    return Fail(option.value_offset, parts.size() > 2
                                         ? "flowbits groups (a third argument) are not supported"
                                         : "flowbits " + Quote(parts[0].text) + " needs a name");
  }
  Flowbits flowbits;
  flowbits.command = *parsed;
  std::string_view names = parts[1].text;
  size_t at = option.value_offset + parts[1].offset;
  bool any = names.find('|') != std::string_view::npos;
  bool all = names.find('&') != std::string_view::npos;
  if (any && all) return Fail(at, "flowbits names mix '|' and '&'");
  if (any && *parsed != FlowbitsCommand::kIsSet && *parsed != FlowbitsCommand::kIsNotSet) {
    return Fail(at, "flowbits '|' (any of) only applies to isset and isnotset");
  }
  flowbits.any_of = any;
  for (const Piece& name : SplitTopLevel(names, any ? '|' : '&')) {
    if (!IsIdentifier(name.text)) {
      return Fail(at + name.offset,
                  "flowbit name " + Quote(name.text) + " must be letters, digits, '_', '.' or '-'");
    }
    flowbits.names.emplace_back(name.text);
  }
  rule_->flowbits.push_back(std::move(flowbits));
  return true;
}

bool OptionParser::OnNoalert(const RawOption& option) {
  if (!RequireNoValue(option)) return false;
  rule_->noalert = true;
  return true;
}

bool OptionParser::OnThreshold(const RawOption& option) {
  if (!RequireValue(option) || !Once(option)) return false;
  if (rule_->detection_filter) {
    return Fail(option.key_offset, "threshold and detection_filter cannot be used together");
  }
  Threshold threshold;
  std::set<std::string_view> seen;
  for (const Piece& part : SplitTopLevel(option.value, ',')) {
    auto [key, value] = SplitKeyValue(part.text);
    size_t at = option.value_offset + part.offset;
    if (!seen.insert(key).second) return Fail(at, "threshold " + Quote(key) + " given twice");
    int64_t number = 0;
    if (key == "type") {
      static constexpr std::pair<std::string_view, ThresholdType> kTypes[] = {
          {"threshold", ThresholdType::kThreshold},
          {"limit", ThresholdType::kLimit},
          {"both", ThresholdType::kBoth},
          {"backoff", ThresholdType::kBackoff},
      };
      std::optional<ThresholdType> type = Lookup(kTypes, value);
      if (!type) {
        return Fail(
            at, "threshold type must be threshold, limit, both or backoff, got " + Quote(value));
      }
      threshold.type = *type;
    } else if (key == "track") {
      std::optional<Track> track = Lookup(kTracks, value);
      if (!track) {
        return Fail(at,
                    "threshold track must be by_src, by_dst, by_rule, by_both or by_flow, "
                    "got " +
                        Quote(value));
      }
      threshold.track = *track;
    } else if (key == "count" || key == "seconds" || key == "multiplier") {
      if (!ParseNumber(value, at, "threshold " + std::string(key), 1,
                       std::numeric_limits<uint32_t>::max(), &number)) {
        return false;
      }
      uint32_t& field = key == "count"     ? threshold.count
                        : key == "seconds" ? threshold.seconds
                                           : threshold.multiplier;
      field = static_cast<uint32_t>(number);
    } else {
      return Fail(at, "unknown threshold parameter " + Quote(part.text));
    }
  }
  for (std::string_view required : {"type", "track", "count"}) {
    if (!seen.count(required)) {
      return Fail(option.value_offset, "threshold needs " + Quote(required));
    }
  }
  if (threshold.type == ThresholdType::kBackoff) {
    if (!seen.count("multiplier") || seen.count("seconds")) {
      return Fail(option.value_offset, "threshold type backoff takes multiplier, not seconds");
    }
    if (threshold.track != Track::kByFlow) {
      return Fail(option.value_offset, "threshold type backoff needs track by_flow");
    }
  } else if (!seen.count("seconds") || seen.count("multiplier")) {
    return Fail(option.value_offset, "threshold needs 'seconds' (multiplier is for backoff only)");
  }
  rule_->threshold = threshold;
  return true;
}

bool OptionParser::OnDetectionFilter(const RawOption& option) {
  if (!RequireValue(option) || !Once(option)) return false;
  if (rule_->threshold) {
    return Fail(option.key_offset, "threshold and detection_filter cannot be used together");
  }
  DetectionFilter filter;
  std::set<std::string_view> seen;
  for (const Piece& part : SplitTopLevel(option.value, ',')) {
    auto [key, value] = SplitKeyValue(part.text);
    size_t at = option.value_offset + part.offset;
    if (!seen.insert(key).second) {
      return Fail(at, "detection_filter " + Quote(key) + " given twice");
    }
    int64_t number = 0;
    if (key == "track") {
      std::optional<Track> track = Lookup(kTracks, value);
      if (!track) {
        return Fail(at,
                    "detection_filter track must be by_src, by_dst, by_rule, by_both or "
                    "by_flow, got " +
                        Quote(value));
      }
      filter.track = *track;
    } else if (key == "count" || key == "seconds") {
      if (!ParseNumber(value, at, "detection_filter " + std::string(key), 1,
                       std::numeric_limits<uint32_t>::max(), &number)) {
        return false;
      }
      (key == "count" ? filter.count : filter.seconds) = static_cast<uint32_t>(number);
    } else if (key == "unique_on") {
      if (value == "src_port") {
        filter.unique_on = UniqueOn::kSrcPort;
      } else if (value == "dst_port") {
        filter.unique_on = UniqueOn::kDstPort;
      } else {
        return Fail(at,
                    "detection_filter unique_on must be src_port or dst_port, got " + Quote(value));
      }
    } else {
      return Fail(at, "unknown detection_filter parameter " + Quote(part.text));
    }
  }
  for (std::string_view required : {"track", "count", "seconds"}) {
    if (!seen.count(required)) {
      return Fail(option.value_offset, "detection_filter needs " + Quote(required));
    }
  }
  rule_->detection_filter = filter;
  return true;
}

bool OptionParser::OnAppLayerEvent(const RawOption& option) {
  if (!RequireValue(option)) return false;
  std::string_view name = option.value;
  constexpr std::string_view kPrefix = "pop3.";
  std::optional<Pop3Event> event;
  if (name.substr(0, kPrefix.size()) == kPrefix)
    event = Pop3EventNamed(name.substr(kPrefix.size()));
  if (!event) {
    std::string known;
    for (std::string_view event_name : Pop3EventNames()) {
      known += (known.empty() ? "" : ", ") + std::string(kPrefix) + std::string(event_name);
    }
    return Fail(option.value_offset,
                "app-layer-event " + Quote(name) + " is not a POP3 event (known: " + known + ")");
  }
  rule_->app_layer_events.push_back(*event);
  event_offsets_.push_back(option.key_offset);
  return true;
}

// ---------------------------------------------------------------- whole rule

bool OptionParser::CheckContent(const ContentMatch& content, size_t offset) {
  std::string what = Describe(content);
  bool absolute = content.offset || content.depth;
  bool relative = content.distance || content.within;
  auto length = static_cast<int64_t>(content.pattern.size());
  if (content.startswith && (absolute || relative)) {
    return Fail(offset, what +
                            ": startswith cannot be mixed with offset, depth, distance or "
                            "within");
  }
  if (absolute && relative) {
    return Fail(offset, what +
                            ": offset/depth (from the buffer start) cannot be mixed with "
                            "distance/within (from the previous match)");
  }
  if (content.depth && *content.depth < length) {
    return Fail(offset, what + ": depth " + std::to_string(*content.depth) +
                            " is shorter than the pattern (" + std::to_string(length) +
                            " bytes); it can never match");
  }
  if (content.within) {
    int64_t needed = content.distance.value_or(0) + length;
    if (*content.within < needed) {
      return Fail(offset, what + ": within " + std::to_string(*content.within) +
                              " leaves no room for the pattern (needs at least " +
                              std::to_string(needed) + "); it can never match");
    }
  }
  if (!content.fast_pattern) return true;
  const FastPattern& fp = *content.fast_pattern;
  if (content.buffer == Buffer::kBase64Data) {
    return Fail(offset, what + ": fast_pattern cannot apply to decoded base64_data");
  }
  if (fp.only && (content.negated || absolute || relative)) {
    return Fail(offset, what +
                            ": fast_pattern:only cannot be negated or positioned "
                            "(offset, depth, distance, within)");
  }
  if (content.negated && (absolute || relative)) {
    return Fail(offset, what + ": a negated, positioned content cannot be the fast_pattern");
  }
  if (fp.slice_offset.has_value() != fp.slice_length.has_value()) {
    return Fail(offset, what + ": fast_pattern needs both an offset and a length");
  }
  if (fp.slice_offset && *fp.slice_offset + int64_t{*fp.slice_length} > length) {
    return Fail(offset, what + ": fast_pattern slice " + std::to_string(*fp.slice_offset) + "," +
                            std::to_string(*fp.slice_length) + " runs past the pattern (" +
                            std::to_string(length) + " bytes)");
  }
  return true;
}

// A relative keyword continues from the previous match in the same buffer;
// with no content or pcre before it there is nothing to continue from.
bool OptionParser::CheckRelativeAnchors() {
  std::set<Buffer> anchored;
  for (size_t i = 0; i < rule_->detections.size(); ++i) {
    const Detection& detection = rule_->detections[i];
    Buffer buffer = DetectionBuffer(detection);
    std::string keyword;
    if (const auto* content = std::get_if<ContentMatch>(&detection)) {
      if (content->distance || content->within) {
        keyword =
            std::string(content->distance ? "distance" : "within") + " on " + Describe(*content);
      }
    } else if (const auto* pcre = std::get_if<PcreMatch>(&detection)) {
      if (pcre->modifiers.relative) keyword = "pcre /R";
    } else if (const auto* isdataat = std::get_if<IsDataAt>(&detection)) {
      if (isdataat->relative) keyword = "isdataat relative";
    } else if (const auto* test = std::get_if<ByteTest>(&detection)) {
      if (test->relative) keyword = "byte_test relative";
    } else if (const auto* decode = std::get_if<Base64Decode>(&detection)) {
      if (decode->relative) keyword = "base64_decode relative";
    }
    if (!keyword.empty() && !anchored.count(buffer)) {
      return Fail(detection_offsets_[i],
                  keyword + ": nothing before it in the " + std::string(BufferName(buffer)) +
                      " buffer to be relative to (use offset/depth, or an absolute form)");
    }
    if (std::holds_alternative<ContentMatch>(detection) ||
        std::holds_alternative<PcreMatch>(detection)) {
      anchored.insert(buffer);
    }
  }
  return true;
}

// A rule matches one direction of a flow: client buffers and server
// buffers cannot both hold, nor contradict `flow`.
bool OptionParser::CheckDirections() {
  struct Source {
    std::string name;
    Side side;
    size_t offset;
  };
  std::vector<Source> sources;
  for (size_t i = 0; i < rule_->detections.size(); ++i) {
    Buffer buffer = DetectionBuffer(rule_->detections[i]);
    if (BufferSide(buffer) != Side::kAny) {
      sources.push_back(
          {std::string(BufferName(buffer)), BufferSide(buffer), detection_offsets_[i]});
    }
  }
  for (size_t i = 0; i < rule_->app_layer_events.size(); ++i) {
    Pop3Event event = rule_->app_layer_events[i];
    if (EventSide(event) != Side::kAny) {
      sources.push_back({"app-layer-event pop3." + std::string(Pop3EventName(event)),
                         EventSide(event), event_offsets_[i]});
    }
  }
  auto describe = [](Side side) {
    return side == Side::kToServer ? "client-to-server" : "server-to-client";
  };
  for (const Source& source : sources) {
    if (source.side != sources.front().side) {
      return Fail(source.offset, source.name + " is " + describe(source.side) + " data but " +
                                     sources.front().name + " is " +
                                     describe(sources.front().side) +
                                     "; one rule matches one direction");
    }
    if (rule_->flow && rule_->flow->direction != FlowDirection::kAny) {
      Side flow_side =
          rule_->flow->direction == FlowDirection::kToServer ? Side::kToServer : Side::kToClient;
      if (flow_side != source.side) {
        return Fail(source.offset, source.name + " is " + describe(source.side) +
                                       " data but the rule says flow:" +
                                       (flow_side == Side::kToServer ? "to_server" : "to_client"));
      }
    }
  }
  return true;
}

bool OptionParser::Finish(size_t rule_offset, SyntaxError* error) {
  error_ = error;
  if (!CheckStickyUsed()) return false;
  if (unread_base64_decode_) {
    return Fail(*unread_base64_decode_,
                "base64_decode has no base64_data after it to read the "
                "decoded bytes");
  }
  if (rule_->sid == 0) return Fail(rule_offset, "rule has no sid");

  const ContentMatch* fast_pattern = nullptr;
  for (size_t i = 0; i < rule_->detections.size(); ++i) {
    const auto* content = std::get_if<ContentMatch>(&rule_->detections[i]);
    if (content == nullptr) continue;
    if (!CheckContent(*content, detection_offsets_[i])) return false;
    if (content->fast_pattern) {
      if (fast_pattern != nullptr) {
        return Fail(detection_offsets_[i], "fast_pattern on both " + Describe(*fast_pattern) +
                                               " and " + Describe(*content) + "; only one allowed");
      }
      fast_pattern = content;
    }
  }
  if (!CheckRelativeAnchors() || !CheckDirections()) return false;

  bool app_layer =
      !rule_->app_layer_events.empty() ||
      std::any_of(rule_->detections.begin(), rule_->detections.end(), [](const Detection& d) {
        return DetectionBuffer(d) != Buffer::kPayload && DetectionBuffer(d) != Buffer::kBase64Data;
      });
  if (dsize_offset_ && app_layer) {
    return Fail(*dsize_offset_,
                "dsize measures the payload and cannot be combined with POP3 "
                "buffers or events (use bsize on the buffer)");
  }
  return true;
}

}  // namespace popguard::rules::internal
