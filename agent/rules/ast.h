// The typed form of a rule after parsing and validation. The rule compiler
// turns it into Hyperscan databases and the kernel prefilter's configuration,
// so everything a rule can mean is explicit here; nothing is kept as text to
// be re-parsed later.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace popguard::rules {

struct SourceLocation {
  std::string file;
  int line = 0;    // 1-based; 0 when the message concerns the whole file
  int column = 0;  // 1-based; 0 when unknown
};

// ---------------------------------------------------------------- header

enum class Action { kAlert, kDrop, kReject, kPass, kLog };

struct IpAddress {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};  // IPv4 uses the first four

  friend bool operator==(const IpAddress&, const IpAddress&) = default;
};

std::optional<IpAddress> ParseIpAddress(std::string_view text);

// Host bits beyond the prefix are cleared when parsed.
struct IpNetwork {
  IpAddress base;
  int prefix_length = 0;

  bool Contains(const IpAddress& address) const;
};

struct PortRange {
  uint16_t low = 0;
  uint16_t high = 65535;

  bool Contains(uint16_t port) const { return low <= port && port <= high; }
};

// An address or port selector as written in a header: `any`, one network or
// range, or a list `[a,b,!c]` meaning (a ∪ b) \ c (all minus c when the list
// has no positive element). Variables are already substituted.
template <typename Leaf>
struct Selector {
  enum class Kind { kAny, kLeaf, kList };

  Kind kind = Kind::kAny;
  bool negated = false;
  Leaf leaf{};
  std::vector<Selector> elements;

  template <typename Value>
  bool Matches(const Value& value) const {
    return negated != MatchesUnnegated(value);
  }

 private:
  template <typename Value>
  bool MatchesUnnegated(const Value& value) const {
    switch (kind) {
      case Kind::kAny:
        return true;
      case Kind::kLeaf:
        return leaf.Contains(value);
      case Kind::kList:
        break;
    }
    bool has_positive = false;
    bool in_positive = false;
    for (const Selector& element : elements) {
      if (element.negated) {
        if (element.MatchesUnnegated(value)) return false;
      } else {
        has_positive = true;
        in_positive = in_positive || element.MatchesUnnegated(value);
      }
    }
    return !has_positive || in_positive;
  }
};

using AddressSelector = Selector<IpNetwork>;
using PortSelector = Selector<PortRange>;

enum class HeaderForm {
  kFull,          // action proto src sport dir dst dport
  kProtocolOnly,  // Snort 3 `alert tcp ( ... )`: any address, any port, both ways
};

struct Header {
  Action action = Action::kAlert;
  std::string protocol;  // lower case: tcp, pop3, ip, any, tcp-pkt, tcp-stream
  HeaderForm form = HeaderForm::kFull;
  AddressSelector source;
  PortSelector source_ports;
  AddressSelector destination;
  PortSelector destination_ports;
  bool bidirectional = false;  // `<>`, and every kProtocolOnly header
};

// ---------------------------------------------------------------- buffers

// What a payload keyword inspects. Sticky buffer keywords switch it for
// every following payload keyword until the next switch.
enum class Buffer {
  kPayload,       // the reassembled stream, the default (`pkt_data` returns to it)
  kPop3Command,   // `pop3.command`: the verb of a client line
  kPop3Args,      // `pop3.args`: what follows the verb
  kPop3Response,  // `pop3.response`: a server status line or SASL challenge
  kPop3Sasl,      // `pop3.sasl`: decoded SASL data, either direction
  // `pop3.digest_realm`: the realm libcurl 7.26-7.28.1 would copy out of a
  // DIGEST-MD5 challenge (CVE-2013-0249), decoded its lenient way
  kPop3DigestRealm,
  kBase64Data,  // `base64_data`: the output of the last base64_decode
};

std::string_view BufferName(Buffer buffer);

// ---------------------------------------------------------------- payload

struct FastPattern {
  bool only = false;
  // `fast_pattern:offset,length`: use this slice of the pattern only.
  std::optional<uint32_t> slice_offset;
  std::optional<uint32_t> slice_length;
};

struct ContentMatch {
  Buffer buffer = Buffer::kPayload;
  std::string pattern;  // raw bytes: escapes and |hex| already decoded
  bool negated = false;
  bool nocase = false;
  bool startswith = false;
  bool endswith = false;
  std::optional<uint32_t> offset;
  std::optional<uint32_t> depth;
  std::optional<int32_t> distance;
  std::optional<uint32_t> within;
  std::optional<FastPattern> fast_pattern;
};

// The modifier letters after `/regex/` that mean something for POP3 traffic.
// `B` (rawbytes) is accepted and means nothing here; the HTTP buffer letters
// (U I P Q H D M C S Y V W K) are refused by the parser.
struct PcreModifiers {
  bool caseless = false;              // i
  bool dotall = false;                // s
  bool multiline = false;             // m
  bool extended = false;              // x
  bool anchored = false;              // A
  bool dollar_endonly = false;        // E
  bool ungreedy = false;              // G
  bool relative = false;              // R
  bool override_match_limit = false;  // O
};

struct PcreMatch {
  Buffer buffer = Buffer::kPayload;
  std::string regex;  // between the slashes, exactly as written
  bool negated = false;
  PcreModifiers modifiers;
};

struct IsDataAt {
  Buffer buffer = Buffer::kPayload;
  uint32_t position = 0;
  bool negated = false;
  bool relative = false;
};

enum class ByteTestOperator { kLess, kGreater, kEqual, kLessEqual, kGreaterEqual, kAnd, kOr };
enum class Endian { kBig, kLittle };
enum class NumberBase { kHex, kDec, kOct };

struct ByteTest {
  Buffer buffer = Buffer::kPayload;
  uint8_t bytes = 0;  // 1..8 binary, 1..10 as a string
  ByteTestOperator op = ByteTestOperator::kEqual;
  bool negated = false;  // `!op`, also Snort's bare `!` (not equal)
  uint64_t value = 0;
  int32_t offset = 0;
  bool relative = false;
  Endian endian = Endian::kBig;
  std::optional<NumberBase> string_base;  // set: the bytes are digits in that base
  std::optional<uint64_t> bitmask;
};

struct Base64Decode {
  Buffer buffer = Buffer::kPayload;
  std::optional<uint32_t> bytes;  // unset: to the end of the buffer
  uint32_t offset = 0;
  bool relative = false;
};

enum class Comparison { kEqual, kNotEqual, kLess, kLessEqual, kGreater, kGreaterEqual, kRange };

// `n`, `!n`, `<n`, `<=n`, `>n`, `>=n`, or `lo<>hi` (exclusive on both ends).
struct IntegerTest {
  Comparison op = Comparison::kEqual;
  uint64_t value = 0;
  uint64_t high = 0;  // kRange only

  // Inline: the engine tests sizes on most candidates.
  bool Matches(uint64_t x) const {
    switch (op) {
      case Comparison::kEqual:
        return x == value;
      case Comparison::kNotEqual:
        return x != value;
      case Comparison::kLess:
        return x < value;
      case Comparison::kLessEqual:
        return x <= value;
      case Comparison::kGreater:
        return x > value;
      case Comparison::kGreaterEqual:
        return x >= value;
      case Comparison::kRange:
        return value < x && x < high;
    }
    return false;
  }
};

// `bsize`: the length of the current sticky buffer.
struct BufferSize {
  Buffer buffer = Buffer::kPop3Args;
  IntegerTest test;
};

// The payload keywords in rule order: order carries meaning (relative
// matches, the buffer each one reads).
using Detection =
    std::variant<ContentMatch, PcreMatch, IsDataAt, ByteTest, Base64Decode, BufferSize>;

// ---------------------------------------------------------------- non-payload

enum class FlowDirection { kAny, kToServer, kToClient };
enum class FlowState { kAny, kEstablished, kNotEstablished, kStateless };
enum class StreamMode { kAny, kOnlyStream, kNoStream };
enum class FragmentMode { kAny, kOnlyFrag, kNoFrag };

struct Flow {
  FlowDirection direction = FlowDirection::kAny;
  FlowState state = FlowState::kAny;
  StreamMode stream = StreamMode::kAny;
  FragmentMode fragments = FragmentMode::kAny;
};

// TCP flag bits, in header order.
inline constexpr uint8_t kTcpFin = 0x01;
inline constexpr uint8_t kTcpSyn = 0x02;
inline constexpr uint8_t kTcpRst = 0x04;
inline constexpr uint8_t kTcpPsh = 0x08;
inline constexpr uint8_t kTcpAck = 0x10;
inline constexpr uint8_t kTcpUrg = 0x20;
inline constexpr uint8_t kTcpEce = 0x40;
inline constexpr uint8_t kTcpCwr = 0x80;

enum class FlagsMatch {
  kExact,   // exactly these (after the ignore mask); `0` means none set
  kAllOf,   // `+`: these, and any others
  kAnyOf,   // `*`: at least one of these
  kNoneOf,  // `!`: none of these
};

struct TcpFlags {
  uint8_t flags = 0;
  FlagsMatch match = FlagsMatch::kExact;
  uint8_t ignored = 0;  // the `,mask` part: bits left out of the comparison

  // Whether a segment with these TCP flags (the header's low byte) passes.
  bool Matches(uint8_t segment) const {
    const uint8_t seen = segment & static_cast<uint8_t>(~ignored);
    switch (match) {
      case FlagsMatch::kExact:
        return seen == flags;
      case FlagsMatch::kAllOf:
        return (seen & flags) == flags;
      case FlagsMatch::kAnyOf:
        return (seen & flags) != 0;
      case FlagsMatch::kNoneOf:
        return (seen & flags) == 0;
    }
    return false;
  }
};

enum class FlowbitsCommand { kSet, kUnset, kToggle, kIsSet, kIsNotSet };

struct Flowbits {
  FlowbitsCommand command = FlowbitsCommand::kSet;
  std::vector<std::string> names;
  // With several names: `a|b` (any, checks only) or `a&b` (all).
  bool any_of = false;
};

enum class ThresholdType { kThreshold, kLimit, kBoth, kBackoff };
enum class Track { kBySrc, kByDst, kByRule, kByBoth, kByFlow };

struct Threshold {
  ThresholdType type = ThresholdType::kThreshold;
  Track track = Track::kBySrc;
  uint32_t count = 0;
  uint32_t seconds = 0;     // not for kBackoff
  uint32_t multiplier = 0;  // kBackoff only
};

enum class UniqueOn { kSrcPort, kDstPort };

struct DetectionFilter {
  Track track = Track::kBySrc;
  uint32_t count = 0;
  uint32_t seconds = 0;
  std::optional<UniqueOn> unique_on;
};

// The `app-layer-event:pop3.<name>` names: Suricata 8's POP3 parser events
// (rust/src/pop3/pop3.rs), then popguard's own (agent/pop3/event.h).
enum class Pop3Event {
  kTooManyTransactions,
  kRequestTooLong,
  kIncorrectArgumentCount,
  kUnknownCommand,
  kResponseTooLong,
  kBadStatusToken,
  kUnterminatedLine,
  kSaslDecodeFailure,
  kUnsolicitedResponse,
  kStlsCommandInjection,
  kStlsResponseInjection,
  kLfWithoutCr,
  // Suricata's stream-event of the same name, here an app-layer event: a
  // segment overlapping bytes already seen, with different bytes.
  kReassemblyOverlapDifferentData,
  // The kernel prefilter suppressed records of this flow (its per-flow
  // budget) or of the host (the global one): a flood, and a loss.
  kEventBudgetExceeded,
};

std::string_view Pop3EventName(Pop3Event event);
std::optional<Pop3Event> Pop3EventNamed(std::string_view name);
// Every name, in declaration order (the last enumerator is the budget one).
std::span<const std::string_view> Pop3EventNames();

struct Reference {
  std::string type;
  std::string value;
};

enum class Target { kSrcIp, kDestIp };

// ---------------------------------------------------------------- rule

struct Rule {
  SourceLocation location;  // the first physical line of the rule
  Header header;

  uint32_t gid = 1;
  uint32_t sid = 0;
  uint32_t rev = 0;
  std::string msg;
  std::string classtype;
  std::string category;  // the classtype's description (EVE alert.category)
  int priority = 3;      // the classtype's, unless `priority:` says otherwise
  std::vector<Reference> references;
  std::vector<std::pair<std::string, std::string>> metadata;
  std::optional<Target> target;
  std::vector<std::string> services;  // Snort 3 `service:`; always includes pop3

  std::optional<Flow> flow;
  std::optional<TcpFlags> flags;
  std::optional<IntegerTest> dsize;
  std::vector<Flowbits> flowbits;
  bool noalert = false;
  std::optional<Threshold> threshold;
  std::optional<DetectionFilter> detection_filter;
  std::vector<Pop3Event> app_layer_events;
  std::vector<Detection> detections;
};

}  // namespace popguard::rules
