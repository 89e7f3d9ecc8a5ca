#include "agent/detect/engine.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <set>
#include <utility>

namespace popguard::detect {

using rules::Buffer;

namespace {

constexpr int64_t kNsPerSecond = 1'000'000'000;

constexpr std::array<pop3::Direction, 2> kDirections = {pop3::Direction::kToServer,
                                                        pop3::Direction::kToClient};

size_t DirectionIndex(pop3::Direction direction) { return static_cast<size_t>(direction); }

// Whether the rule's flow keyword lets it see units going this way.
bool FlowAllows(const rules::Rule& rule, pop3::Direction direction) {
  if (!rule.flow) return true;
  switch (rule.flow->direction) {
    case rules::FlowDirection::kToServer:
      return direction == pop3::Direction::kToServer;
    case rules::FlowDirection::kToClient:
      return direction == pop3::Direction::kToClient;
    case rules::FlowDirection::kAny:
      return true;
  }
  return true;
}

std::string Escape(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 4);
  char hex[5];
  for (unsigned char c : bytes) {
    std::snprintf(hex, sizeof hex, "\\x%02x", c);
    out += hex;
  }
  return out;
}

// The buffers that are slices of the payload line: a literal of theirs
// occurs in the payload too (the verb in any case), so one scan of the
// payload finds the candidates of all four.
bool InPayload(Buffer buffer) {
  return buffer == Buffer::kPayload || buffer == Buffer::kPop3Command ||
         buffer == Buffer::kPop3Args || buffer == Buffer::kPop3Response;
}

// The words of a pcre that is only a choice of words (WordChoice) and
// reads its buffer from the start: rules that pick verbs that way are
// indexed by the words. Empty when the pcre is anything else.
std::vector<std::string> WordAlternatives(const rules::PcreMatch& pcre) {
  if (pcre.negated || pcre.modifiers.relative) return {};
  return WordChoice(pcre.regex);
}

struct Pattern {
  std::string expression;
  unsigned flags;
  unsigned id;
  std::string literal;  // the literal `expression` escapes; empty for a regex
  // The pcre keyword whose regex `expression` is, in prefilter mode.
  const rules::PcreMatch* pcre = nullptr;
};

// A verb's key in the verb index: its first 8 bytes upper-cased. Verbs
// are short; longer ones that share a key only add candidates, which the
// matcher settles. Computed on every command, so word-wide: two loads that
// may overlap (the shared bytes agree) instead of a loop, and a byte from
// 'a' to 'z' (7-bit) loses 0x20 in all eight lanes at once.
uint64_t VerbKey(std::string_view verb) {
  const auto* p = reinterpret_cast<const uint8_t*>(verb.data());
  const size_t n = verb.size();
  uint64_t key = 0;
  if (n >= 8) {
    std::memcpy(&key, p, sizeof key);
  } else if (n >= 4) {
    uint32_t low;
    uint32_t high;
    std::memcpy(&low, p, sizeof low);
    std::memcpy(&high, p + n - 4, sizeof high);
    key = low | uint64_t{high} << (8 * (n - 4));
  } else if (n > 0) {
    key = p[0] | uint64_t{p[n / 2]} << (8 * (n / 2)) | uint64_t{p[n - 1]} << (8 * (n - 1));
  }
  constexpr uint64_t kOnes = 0x0101010101010101;
  constexpr uint64_t kHigh = kOnes * 0x80;
  const uint64_t low7 = key & ~kHigh;
  const uint64_t from_a = low7 + kOnes * (0x80 - 'a');
  const uint64_t past_z = low7 + kOnes * (0x80 - 'z' - 1);
  const uint64_t lower = from_a & ~past_z & ~key & kHigh;
  return key ^ (lower >> 2);
}

// The verbs that a rule's pop3.command must be one of for the
// rule to match; empty when the rule leaves the verb open. pop3.command is
// the verb alone, so a content with `bsize` of its own length, or with
// startswith and endswith, is the whole verb, and so is a pcre that is a
// choice of words. VerbKey upper-cases both sides, so nocase and /i stay
// within the set.
std::vector<std::string> PinnedVerbs(const rules::Rule& rule) {
  std::vector<std::string> best;
  auto consider = [&](std::vector<std::string> verbs) {
    if (!verbs.empty() && (best.empty() || verbs.size() < best.size())) best = std::move(verbs);
  };
  for (const rules::Detection& d : rule.detections) {
    if (const auto* content = std::get_if<rules::ContentMatch>(&d);
        content && content->buffer == Buffer::kPop3Command && !content->negated) {
      const bool whole = (content->startswith && content->endswith) ||
                         std::any_of(rule.detections.begin(), rule.detections.end(),
                                     [&](const rules::Detection& other) {
                                       const auto* size = std::get_if<rules::BufferSize>(&other);
                                       return size && size->buffer == Buffer::kPop3Command &&
                                              size->test.op == rules::Comparison::kEqual &&
                                              size->test.value == content->pattern.size();
                                     });
      if (whole) consider({content->pattern});
    }
    // With /m, `^` and `$` also match inside the subject.
    if (const auto* pcre = std::get_if<rules::PcreMatch>(&d);
        pcre && pcre->buffer == Buffer::kPop3Command && !pcre->modifiers.multiline) {
      consider(WordAlternatives(*pcre));
    }
  }
  return best;
}

// Whether a literal names few lines. Short words and status tokens (`+OK`,
// `OK`) occur on most POP3 lines, where a regex in prefilter mode or a
// choice of words names fewer candidates; a rare symbol (`%`, `*`, `-`) is
// selective however short.
bool Selective(std::string_view literal) {
  if (literal.size() >= 4) return true;
  return std::any_of(literal.begin(), literal.end(), [](char c) {
    return !std::isalnum(static_cast<unsigned char>(c)) && c != ' ' && c != '+';
  });
}

bool HyperscanAccepts(const std::string& regex, unsigned flags) {
  hs_database_t* probe = nullptr;
  hs_compile_error_t* error = nullptr;
  if (hs_compile(regex.c_str(), flags, HS_MODE_BLOCK, nullptr, &probe, &error) != HS_SUCCESS) {
    hs_free_compile_error(error);
    return false;
  }
  hs_free_database(probe);
  return true;
}

// Per direction, per unit buffer: the patterns of its database.
using PatternSets = std::array<std::vector<std::vector<Pattern>>, kDirections.size()>;

// Indexes the rule: its patterns go to `patterns` (per scanned buffer, in
// each direction its flow lets it see: a response never meets the command
// rules' patterns), or it goes to `by_verb` under each verb it is pinned
// to; false when nothing can index it. In order of preference: the marked
// fast pattern, a selective literal off the verb, the verbs it is pinned
// to (an exact verb names fewer lines than the verb's literal anywhere on
// them, and costs no scan), a selective literal, a choice of words, a plain
// pcre in Hyperscan's prefilter mode (a superset of its matches), a common
// literal.
bool IndexRule(const rules::Rule& rule, unsigned id, PatternSets* patterns,
               std::unordered_map<uint64_t, std::vector<size_t>>* by_verb) {
  auto add = [&](Buffer buffer, const std::string& expression, unsigned flags,
                 std::string_view literal = {}, const rules::PcreMatch* pcre = nullptr) {
    for (pop3::Direction direction : kDirections) {
      if (!FlowAllows(rule, direction)) continue;
      (*patterns)[DirectionIndex(direction)][UnitSlot(buffer)].push_back(
          {expression, flags | HS_FLAG_SINGLEMATCH, id, std::string(literal), pcre});
    }
  };
  const rules::ContentMatch* fast = nullptr;
  for (const rules::Detection& d : rule.detections) {
    const auto* content = std::get_if<rules::ContentMatch>(&d);
    if (!content || content->negated || content->buffer == Buffer::kBase64Data ||
        content->pattern.empty()) {
      continue;
    }
    if (content->fast_pattern) {
      fast = content;
      break;
    }
    if (!fast || content->pattern.size() > fast->pattern.size()) fast = content;
  }
  auto add_literal = [&] {
    std::string_view literal = fast->pattern;
    if (fast->fast_pattern && fast->fast_pattern->slice_offset) {
      literal =
          literal.substr(*fast->fast_pattern->slice_offset, *fast->fast_pattern->slice_length);
    }
    // The verb buffer is upper-cased; in the payload it is as sent.
    const bool caseless = fast->nocase || fast->buffer == Buffer::kPop3Command;
    add(InPayload(fast->buffer) ? Buffer::kPayload : fast->buffer, Escape(literal),
        caseless ? HS_FLAG_CASELESS : 0, literal);
    return true;
  };
  const std::vector<std::string> verbs = PinnedVerbs(rule);
  if (fast && (fast->fast_pattern || (Selective(fast->pattern) &&
                                      (verbs.empty() || fast->buffer != Buffer::kPop3Command)))) {
    return add_literal();
  }
  if (!verbs.empty()) {
    for (const std::string& verb : verbs) (*by_verb)[VerbKey(verb)].push_back(id);
    return true;
  }
  for (const rules::Detection& d : rule.detections) {
    const auto* pcre = std::get_if<rules::PcreMatch>(&d);
    if (!pcre || !InPayload(pcre->buffer)) continue;
    const std::vector<std::string> words = WordAlternatives(*pcre);
    for (const std::string& word : words) {
      add(Buffer::kPayload, Escape(word), HS_FLAG_CASELESS, word);
    }
    if (!words.empty()) return true;
  }
  for (const rules::Detection& d : rule.detections) {
    const auto* pcre = std::get_if<rules::PcreMatch>(&d);
    if (!pcre || pcre->negated || pcre->modifiers.relative || pcre->modifiers.extended ||
        pcre->buffer == Buffer::kBase64Data) {
      continue;
    }
    const unsigned flags = PrefilterFlags(pcre->modifiers);
    if (!HyperscanAccepts(pcre->regex, flags | HS_FLAG_SINGLEMATCH)) continue;
    // A status line starts the payload, which only adds the line end: a
    // regex with no end anchor that matches one matches the other.
    const bool on_payload = pcre->buffer == Buffer::kPayload ||
                            (pcre->buffer == Buffer::kPop3Response && !pcre->modifiers.multiline &&
                             pcre->regex.find('$') == std::string::npos &&
                             pcre->regex.find("\\z") == std::string::npos &&
                             pcre->regex.find("\\Z") == std::string::npos);
    add(on_payload ? Buffer::kPayload : pcre->buffer, pcre->regex, flags, {}, pcre);
    return true;
  }
  if (fast) return add_literal();
  return false;
}

// The byte table of patterns that are all one-byte literals: on the short
// lines POP3 is made of, a lookup per byte costs a fraction of hs_scan's
// fixed cost.
void FillByteTable(const std::vector<Pattern>& patterns, std::array<bool, 256>* named,
                   std::array<std::vector<unsigned>, 256>* rules) {
  for (const Pattern& p : patterns) {
    const char literal = p.literal.front();
    for (size_t byte = 0; byte < rules->size(); ++byte) {
      const char c = static_cast<char>(byte);
      // Hyperscan's caseless folds ASCII letters only, as Upper does.
      if (c == literal ||
          ((p.flags & HS_FLAG_CASELESS) && pop3::Upper(c) == pop3::Upper(literal))) {
        (*named)[byte] = true;
        (*rules)[byte].push_back(p.id);
      }
    }
  }
}

// The ports a selector takes, a bit each, built as Selector::Matches
// decides: a list is the union of its positive elements (every port when
// it has none) minus its negated ones.
std::array<uint64_t, 1024> PortsOf(const rules::PortSelector& ports) {
  std::array<uint64_t, 1024> bits{};
  auto set_all = [](std::array<uint64_t, 1024>& b, uint64_t word) { b.fill(word); };
  switch (ports.kind) {
    case rules::PortSelector::Kind::kAny:
      set_all(bits, ~uint64_t{0});
      break;
    case rules::PortSelector::Kind::kLeaf:
      for (uint32_t port = ports.leaf.low; port <= ports.leaf.high; ++port) {
        bits[port / 64] |= uint64_t{1} << (port % 64);
      }
      break;
    case rules::PortSelector::Kind::kList: {
      std::array<uint64_t, 1024> positive{};
      std::array<uint64_t, 1024> negative{};
      bool has_positive = false;
      for (const rules::PortSelector& element : ports.elements) {
        rules::PortSelector unnegated = element;
        unnegated.negated = false;
        const std::array<uint64_t, 1024> part = PortsOf(unnegated);
        std::array<uint64_t, 1024>& into = element.negated ? negative : positive;
        has_positive = has_positive || !element.negated;
        for (size_t i = 0; i < into.size(); ++i) into[i] |= part[i];
      }
      if (!has_positive) set_all(positive, ~uint64_t{0});
      for (size_t i = 0; i < bits.size(); ++i) bits[i] = positive[i] & ~negative[i];
      break;
    }
  }
  if (ports.negated) {
    for (uint64_t& word : bits) word = ~word;
  }
  return bits;
}

// Why a rule that tests TCP flags cannot be honoured, or empty when it
// can. The sensor sees flags on one kind of segment only, a client's
// opening SYN (no ACK), reported on its own with no POP3 bytes: the test
// must match nothing else, and the rule must read nothing but the header.
std::string FlagsRefusal(const rules::Rule& rule) {
  bool matches_any = false;
  for (unsigned value = 0; value < 256; ++value) {
    const auto segment = static_cast<uint8_t>(value);
    if (!rule.flags->Matches(segment)) continue;
    matches_any = true;
    if (!(segment & rules::kTcpSyn) || (segment & rules::kTcpAck)) {
      return "flags: popguard sees TCP flags only on a client's opening SYN (SYN without "
             "ACK), and this test also matches other segments";
    }
  }
  if (!matches_any) return "flags: the test matches no segment at all";
  if (!rule.detections.empty() || rule.dsize || !rule.app_layer_events.empty()) {
    return "flags cannot be combined with payload keywords, dsize or app-layer-event: an "
           "opening SYN carries no POP3 bytes";
  }
  if (rule.flow && rule.flow->direction == rules::FlowDirection::kToClient) {
    return "flags with flow:to_client: popguard reports the client's SYN only";
  }
  if (rule.flow && rule.flow->state == rules::FlowState::kEstablished) {
    return "flags with flow:established can never match: an opening SYN belongs to no "
           "established connection";
  }
  if (rule.flow && rule.flow->stream == rules::StreamMode::kOnlyStream) {
    return "flags with flow:only_stream can never match: an opening SYN is no stream data";
  }
  if (!rule.flowbits.empty()) {
    return "flowbits with flags: a SYN report is inspected apart from the connection's "
           "state, so it can neither set nor test a flowbit";
  }
  return {};
}

// Why the engine cannot honour a rule as written, or empty when it can
// (a pcre PCRE2 refuses is found when it is compiled).
std::string Refusal(const rules::Rule& rule) {
  if (rule.header.action == rules::Action::kPass || rule.header.action == rules::Action::kLog) {
    return "action '" + std::string(rule.header.action == rules::Action::kPass ? "pass" : "log") +
           "' is not supported (alert, drop and reject are)";
  }
  if (rule.flow && rule.flow->fragments == rules::FragmentMode::kOnlyFrag) {
    return "flow:only_frag: IP fragments are not reassembled into POP3 lines";
  }
  if (rule.flags) return FlagsRefusal(rule);
  if (rule.flow && rule.flow->state == rules::FlowState::kNotEstablished) {
    return "flow:not_established: POP3 lines only exist on established connections";
  }
  if (!rule.app_layer_events.empty() && !rule.detections.empty()) {
    return "app-layer-event cannot be combined with payload keywords: anomalies are matched on "
           "their own";
  }
  if (rule.app_layer_events.size() > 1) {
    return "more than one app-layer-event in a rule can never match (one anomaly each)";
  }
  return {};
}

rules::Diagnostic Problem(const rules::Rule& rule, const std::string& message) {
  return {rule.location, "sid " + std::to_string(rule.sid) + ": " + message};
}

// The buffer whose bytes a keyword reads: base64_data comes from the
// buffer its base64_decode read.
Buffer SourceBuffer(const rules::Detection& detection, Buffer base64_source) {
  Buffer buffer = std::visit([](const auto& d) { return d.buffer; }, detection);
  return buffer == Buffer::kBase64Data ? base64_source : buffer;
}

}  // namespace

struct RuleEngine::Compiled {
  std::vector<std::unique_ptr<CompiledRegex>> regexes;  // until the matcher takes them
  std::unique_ptr<Matcher> matcher;
  std::vector<std::pair<rules::FlowbitsCommand, std::vector<size_t>>> flowbits;
  // The header's port selectors (null: any port) and whether its address
  // selectors take every address.
  const PortBitmap* source_ports = nullptr;
  const PortBitmap* destination_ports = nullptr;
  bool any_address = false;
  bool any_of = false;
  bool alerts = true;
};

std::unique_ptr<AnchoredScreen> AnchoredScreen::For(
    const std::vector<const rules::PcreMatch*>& pcres) {
  auto screen = std::unique_ptr<AnchoredScreen>(new AnchoredScreen());
  for (const rules::PcreMatch* pcre : pcres) {
    if (!pcre) return nullptr;
    int code = 0;
    PCRE2_SIZE at = 0;
    pcre2_code* compiled =
        pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pcre->regex.data()), pcre->regex.size(),
                      Pcre2Options(pcre->modifiers), &code, &at, nullptr);
    if (!compiled) return nullptr;
    screen->codes_.push_back(compiled);
    uint32_t all = 0;
    pcre2_pattern_info(compiled, PCRE2_INFO_ALLOPTIONS, &all);
    if (!(all & PCRE2_ANCHORED)) return nullptr;
  }
  if (screen->codes_.empty()) return nullptr;
  screen->data_ = pcre2_match_data_create(1, nullptr);
  return screen;
}

AnchoredScreen::~AnchoredScreen() {
  for (pcre2_code* code : codes_) pcre2_code_free(code);
  pcre2_match_data_free(data_);
}

bool AnchoredScreen::MayMatch(std::string_view buffer) {
  static_assert(kPrefix < 8, "the prefix and its length share a word");
  const size_t n = std::min(buffer.size(), kPrefix);
  uint64_t bytes = 0;
  if (buffer.size() >= 8) {
    std::memcpy(&bytes, buffer.data(), sizeof bytes);
    bytes &= (uint64_t{1} << (8 * kPrefix)) - 1;
  } else {
    for (size_t i = 0; i < n; ++i) bytes |= uint64_t{static_cast<uint8_t>(buffer[i])} << (8 * i);
  }
  const uint64_t key = bytes << 8 | n;
  Entry& e = entries_[(key * 0x9e3779b97f4a7c15) >> 58];
  if (e.known && e.key == key) return e.alive;
  // Partial matching says whether any subject that begins with these bytes
  // could match; an error counts as could.
  bool alive = false;
  for (pcre2_code* code : codes_) {
    const int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(buffer.data()), n, 0,
                               PCRE2_PARTIAL_HARD, data_, nullptr);
    if (rc != PCRE2_ERROR_NOMATCH) {
      alive = true;
      break;
    }
  }
  e = {key, true, alive};
  return alive;
}

RuleEngine::~RuleEngine() {
  for (const std::vector<Database>& databases : databases_) {
    for (const Database& db : databases) hs_free_database(db.database);
  }
  hs_free_scratch(scratch_);
}

CompileResult Compile(std::vector<rules::Rule> rules) {
  CompileResult result;
  std::unique_ptr<RuleEngine> engine(new RuleEngine());

  PatternSets patterns;
  for (std::vector<std::vector<Pattern>>& sets : patterns) sets.resize(kUnitBuffers.size());
  std::unordered_map<uint64_t, std::vector<size_t>> by_verb;

  for (rules::Rule& rule : rules) {
    // Options the engine cannot honour: refuse the rule, say which.
    std::string refusal = Refusal(rule);
    auto compiled = std::make_unique<RuleEngine::Compiled>();
    std::vector<std::unique_ptr<CompiledRegex>> regexes(rule.detections.size());
    for (size_t i = 0; i < rule.detections.size() && refusal.empty(); ++i) {
      if (const auto* pcre = std::get_if<rules::PcreMatch>(&rule.detections[i])) {
        std::string error;
        regexes[i] = CompiledRegex::Compile(*pcre, &error);
        if (!regexes[i]) refusal = error;
      }
    }
    if (!refusal.empty()) {
      result.errors.push_back(Problem(rule, refusal));
      continue;
    }
    for (const rules::Flowbits& fb : rule.flowbits) {
      std::vector<size_t> indexes;
      for (const std::string& name : fb.names) {
        auto [it, inserted] = engine->flowbit_index_.emplace(name, engine->flowbit_index_.size());
        indexes.push_back(it->second);
      }
      compiled->any_of = compiled->any_of || fb.any_of;
      compiled->flowbits.emplace_back(fb.command, std::move(indexes));
    }
    compiled->alerts = !rule.noalert;
    // A port selector that names ports (not `any`) and leaves out 110 while
    // taking 995 aims at implicit TLS only.
    auto tls_only = [](const rules::PortSelector& ports) {
      return ports.kind != rules::PortSelector::Kind::kAny && !ports.Matches(uint16_t{110}) &&
             ports.Matches(uint16_t{995});
    };
    const bool only_tls_port =
        rule.header.form == rules::HeaderForm::kFull &&
        (tls_only(rule.header.destination_ports) || tls_only(rule.header.source_ports));
    if (only_tls_port && rule.app_layer_events.empty()) {
      result.warnings.push_back(
          Problem(rule,
                  "only matches port 995 (implicit TLS): POP3 inside TLS is not visible to "
                  "popguard, so this rule will not fire there"));
    }

    const size_t index = engine->rules_.size();
    if (!rule.app_layer_events.empty()) {
      engine->by_event_[static_cast<int>(rule.app_layer_events.front())].push_back(index);
    } else if (rule.flags) {
      engine->by_flags_.push_back(index);
    } else if (!IndexRule(rule, static_cast<unsigned>(index), &patterns, &by_verb)) {
      for (pop3::Direction direction : kDirections) {
        if (FlowAllows(rule, direction)) {
          engine->unindexed_[DirectionIndex(direction)].push_back(index);
        }
      }
    }
    compiled->regexes = std::move(regexes);
    engine->rules_.push_back(std::move(rule));
    engine->compiled_.push_back(std::move(compiled));
  }
  // Matchers refer to their rule's detections, so they are made once
  // rules_ has stopped moving.
  for (size_t i = 0; i < engine->rules_.size(); ++i) {
    RuleEngine::Compiled& c = *engine->compiled_[i];
    c.matcher = std::make_unique<Matcher>(engine->rules_[i].detections, std::move(c.regexes));
  }

  auto port_bitmap = [&](const rules::PortSelector& ports) -> const RuleEngine::PortBitmap* {
    if (ports.kind == rules::PortSelector::Kind::kAny && !ports.negated) return nullptr;
    auto bitmap = std::make_unique<RuleEngine::PortBitmap>(PortsOf(ports));
    for (const auto& known : engine->port_bitmaps_) {
      if (*known == *bitmap) return known.get();
    }
    return engine->port_bitmaps_.emplace_back(std::move(bitmap)).get();
  };
  for (size_t i = 0; i < engine->rules_.size(); ++i) {
    const rules::Header& h = engine->rules_[i].header;
    RuleEngine::Compiled& c = *engine->compiled_[i];
    c.source_ports = port_bitmap(h.source_ports);
    c.destination_ports = port_bitmap(h.destination_ports);
    auto any = [](const rules::AddressSelector& a) {
      return a.kind == rules::AddressSelector::Kind::kAny && !a.negated;
    };
    c.any_address = any(h.source) && any(h.destination);
  }
  engine->by_verb_.Build(by_verb);
  for (size_t i = 0; i < engine->rules_.size(); ++i) {
    engine->gates_.push_back(
        RuleEngine::GateOf(engine->rules_[i], *engine->compiled_[i], &engine->size_tests_));
  }

  for (pop3::Direction direction : kDirections) {
    for (size_t slot = 0; slot < kUnitBuffers.size(); ++slot) {
      const std::vector<Pattern>& set = patterns[DirectionIndex(direction)][slot];
      if (set.empty()) continue;
      if (std::all_of(set.begin(), set.end(),
                      [](const Pattern& p) { return p.literal.size() == 1; })) {
        auto table = std::make_unique<RuleEngine::ByteTable>();
        FillByteTable(set, &table->named, &table->rules);
        RuleEngine::Database& database =
            engine->databases_[DirectionIndex(direction)].emplace_back();
        database.slot = slot;
        database.bytes = std::move(table);
        continue;
      }
      std::vector<const rules::PcreMatch*> pcres;
      for (const Pattern& p : set) pcres.push_back(p.pcre);
      if (std::unique_ptr<AnchoredDfa> dfa = AnchoredDfa::Build(pcres)) {
        RuleEngine::Database& database =
            engine->databases_[DirectionIndex(direction)].emplace_back();
        database.slot = slot;
        database.dfa = std::move(dfa);
        for (const Pattern& p : set) database.dfa_rules.push_back(p.id);
        continue;
      }
      std::vector<const char*> expressions;
      std::vector<unsigned> flags;
      std::vector<unsigned> ids;
      for (const Pattern& p : set) {
        expressions.push_back(p.expression.c_str());
        flags.push_back(p.flags);
        ids.push_back(p.id);
      }
      hs_database_t* database = nullptr;
      hs_compile_error_t* error = nullptr;
      if (hs_compile_multi(expressions.data(), flags.data(), ids.data(),
                           static_cast<unsigned>(expressions.size()), HS_MODE_BLOCK, nullptr,
                           &database, &error) != HS_SUCCESS) {
        result.errors.push_back({{},
                                 "Hyperscan could not compile the " +
                                     std::string(rules::BufferName(kUnitBuffers[slot])) +
                                     " patterns: " + error->message});
        hs_free_compile_error(error);
        return result;
      }
      RuleEngine::Database& scanned = engine->databases_[DirectionIndex(direction)].emplace_back();
      scanned.slot = slot;
      scanned.database = database;
      scanned.screen = AnchoredScreen::For(pcres);
      if (hs_alloc_scratch(database, &engine->scratch_) != HS_SUCCESS) {
        result.errors.push_back({{}, "Hyperscan could not allocate scratch space"});
        return result;
      }
    }
  }
  result.engine = std::move(engine);
  return result;
}

void RuleEngine::VerbIndex::Build(const std::unordered_map<uint64_t, std::vector<size_t>>& by_key) {
  if (by_key.empty()) return;
  size_t capacity = 8;
  while (capacity < 2 * by_key.size()) capacity *= 2;
  slots_.assign(capacity, {});
  shift_ = 64 - static_cast<unsigned>(std::countr_zero(capacity));
  for (const auto& [key, rules] : by_key) {
    size_t at = (key * 0x9e3779b97f4a7c15) >> shift_;
    while (slots_[at].end != 0) at = (at + 1) & (capacity - 1);
    slots_[at].key = key;
    slots_[at].begin = static_cast<uint32_t>(rules_.size());
    for (size_t rule : rules) rules_.push_back(static_cast<uint32_t>(rule));
    slots_[at].end = static_cast<uint32_t>(rules_.size());
  }
}

RuleEngine::SizeTest RuleEngine::SizeTest::Of(Buffer buffer, const rules::IntegerTest& test) {
  constexpr uint64_t kMax = ~uint64_t{0};
  const uint64_t v = test.value;
  // [low, high] and whether the length must lie outside it; an empty range
  // is written as "outside everything", [0, kMax] as the defaults leave it.
  uint64_t low = 0;
  uint64_t high = kMax;
  bool outside = false;
  switch (test.op) {
    case rules::Comparison::kEqual:
      low = high = v;
      break;
    case rules::Comparison::kNotEqual:
      low = high = v;
      outside = true;
      break;
    case rules::Comparison::kLess:
      if (v == 0)
        outside = true;
      else
        high = v - 1;
      break;
    case rules::Comparison::kLessEqual:
      high = v;
      break;
    case rules::Comparison::kGreater:
      if (v == kMax)
        outside = true;
      else
        low = v + 1;
      break;
    case rules::Comparison::kGreaterEqual:
      low = v;
      break;
    case rules::Comparison::kRange:
      // Exclusive on both ends.
      if (test.high <= v + 1 || v == kMax) {
        outside = true;
      } else {
        low = v + 1;
        high = test.high - 1;
      }
      break;
  }
  return {static_cast<uint32_t>(UnitSlot(buffer)), outside, low, high - low};
}

RuleEngine::Gate RuleEngine::GateOf(const rules::Rule& rule, const Compiled& compiled,
                                    std::vector<SizeTest>* size_tests) {
  Gate gate;
  // The unit buffers the rule reads; a rule of the payload by default.
  Buffer base64_source = Buffer::kPayload;
  for (const rules::Detection& d : rule.detections) {
    if (const auto* decode = std::get_if<rules::Base64Decode>(&d)) base64_source = decode->buffer;
    gate.required_buffers |= 1u << UnitSlot(SourceBuffer(d, base64_source));
  }
  if (rule.dsize) gate.required_buffers |= 1u << UnitSlot(Buffer::kPayload);
  if (rule.app_layer_events.empty() && !rule.flags && gate.required_buffers == 0) {
    gate.required_buffers |= 1u << UnitSlot(Buffer::kPayload);
  }
  for (pop3::Direction direction : kDirections) {
    if (FlowAllows(rule, direction)) gate.directions |= 1u << DirectionIndex(direction);
  }
  gate.sizes_begin = static_cast<uint32_t>(size_tests->size());
  if (rule.dsize) size_tests->push_back(SizeTest::Of(Buffer::kPayload, *rule.dsize));
  for (const rules::Detection& d : rule.detections) {
    if (const auto* size = std::get_if<rules::BufferSize>(&d);
        size && size->buffer != Buffer::kBase64Data) {
      size_tests->push_back(SizeTest::Of(size->buffer, size->test));
    }
    // Data at `position` is a buffer longer than that.
    if (const auto* at = std::get_if<rules::IsDataAt>(&d);
        at && !at->relative && at->buffer != Buffer::kBase64Data) {
      rules::IntegerTest longer{
          at->negated ? rules::Comparison::kLessEqual : rules::Comparison::kGreater, at->position};
      size_tests->push_back(SizeTest::Of(at->buffer, longer));
    }
  }
  gate.sizes_end = static_cast<uint32_t>(size_tests->size());
  gate.header_open =
      rule.header.form == rules::HeaderForm::kProtocolOnly ||
      (compiled.any_address && !compiled.source_ports && !compiled.destination_ports);
  return gate;
}

bool RuleEngine::HeaderMatches(const rules::Rule& rule, const Compiled& compiled, const Unit& unit,
                               const FlowTuple& tuple) const {
  const rules::Header& h = rule.header;
  const bool to_server = unit.direction == pop3::Direction::kToServer;
  const rules::IpAddress& src = to_server ? tuple.client : tuple.server;
  const rules::IpAddress& dst = to_server ? tuple.server : tuple.client;
  const uint16_t sport = to_server ? tuple.client_port : tuple.server_port;
  const uint16_t dport = to_server ? tuple.server_port : tuple.client_port;
  auto port_in = [](const PortBitmap* ports, uint16_t port) {
    return !ports || ((*ports)[port / 64] >> (port % 64)) & 1;
  };
  auto oriented = [&](const rules::IpAddress& s, uint16_t sp, const rules::IpAddress& d,
                      uint16_t dp) {
    return port_in(compiled.source_ports, sp) && port_in(compiled.destination_ports, dp) &&
           (compiled.any_address || (h.source.Matches(s) && h.destination.Matches(d)));
  };
  return oriented(src, sport, dst, dport) || (h.bidirectional && oriented(dst, dport, src, sport));
}

bool RuleEngine::FlowbitsHold(const Compiled& compiled, const FlowRuleState& flow) const {
  auto is_set = [&](size_t bit) { return bit < flow.flowbits.size() && flow.flowbits[bit]; };
  for (const auto& [command, bits] : compiled.flowbits) {
    if (command != rules::FlowbitsCommand::kIsSet && command != rules::FlowbitsCommand::kIsNotSet) {
      continue;
    }
    const bool want = command == rules::FlowbitsCommand::kIsSet;
    bool any = false;
    bool all = true;
    for (size_t bit : bits) {
      bool holds = is_set(bit) == want;
      any = any || holds;
      all = all && holds;
    }
    if (compiled.any_of ? !any : !all) return false;
  }
  return true;
}

void RuleEngine::ApplyFlowbits(const Compiled& compiled, FlowRuleState* flow) const {
  for (const auto& [command, bits] : compiled.flowbits) {
    for (size_t bit : bits) {
      if (flow->flowbits.size() <= bit) flow->flowbits.resize(flowbit_index_.size(), false);
      switch (command) {
        case rules::FlowbitsCommand::kSet:
          flow->flowbits[bit] = true;
          break;
        case rules::FlowbitsCommand::kUnset:
          flow->flowbits[bit] = false;
          break;
        case rules::FlowbitsCommand::kToggle:
          flow->flowbits[bit] = !flow->flowbits[bit];
          break;
        default:
          break;
      }
    }
  }
}

uint64_t RuleEngine::ThresholdTable::Hash(const ThresholdKey& key) {
  uint64_t h = key.rule | uint64_t{key.client_port} << 32 | uint64_t{key.server_port} << 48;
  for (const rules::IpAddress& a : key.addresses) {
    for (size_t i = 0; i < a.bytes.size(); i += sizeof(uint64_t)) {
      uint64_t word;
      std::memcpy(&word, a.bytes.data() + i, sizeof word);
      h = (h ^ word) * 0x9e3779b97f4a7c15;
    }
    h = (h ^ a.v6) * 0x9e3779b97f4a7c15;
  }
  // A multiply carries low bits up only; the table indexes by the low bits,
  // so the high ones are folded down (MurmurHash3's finaliser).
  h = (h ^ (h >> 33)) * 0xff51afd7ed558ccd;
  h = (h ^ (h >> 33)) * 0xc4ceb9fe1a85ec53;
  return h ^ (h >> 33);
}

RuleEngine::ThresholdTable::Slot& RuleEngine::ThresholdTable::Insert(uint64_t hash,
                                                                     const ThresholdKey& key,
                                                                     const ThresholdState& state) {
  const size_t mask = slots_.size() - 1;
  size_t at = hash & mask;
  while (slots_[at].used) at = (at + 1) & mask;
  slots_[at] = {hash, key, state, true};
  ++size_;
  return slots_[at];
}

template <class Keep>
void RuleEngine::ThresholdTable::Rebuild(size_t capacity, Keep keep) {
  std::vector<Slot> old = std::exchange(slots_, std::vector<Slot>(capacity));
  size_ = 0;
  for (const Slot& slot : old) {
    if (slot.used && keep(slot)) Insert(slot.hash, slot.key, slot.state);
  }
}

RuleEngine::ThresholdState& RuleEngine::ThresholdTable::At(const ThresholdKey& key, int64_t now_ns,
                                                           int64_t window_ns, uint64_t* evictions) {
  const uint64_t hash = Hash(key);
  if (!slots_.empty()) {
    const size_t mask = slots_.size() - 1;
    for (size_t at = hash & mask; slots_[at].used; at = (at + 1) & mask) {
      if (slots_[at].hash == hash && slots_[at].key == key) return slots_[at].state;
    }
  }
  if (size_ >= kMaxEntries) {
    // One sweep makes room for kEvictBatch keys at least, so that a flood of
    // new keys pays for a sweep once per batch, not once per key: expired
    // entries first, then as many others as needed, counted.
    Rebuild(slots_.size(),
            [&](const Slot& slot) { return now_ns - slot.state.window_start_ns < window_ns; });
    if (size_ > kMaxEntries - kEvictBatch) {
      const size_t excess = size_ - (kMaxEntries - kEvictBatch);
      size_t dropped = 0;
      Rebuild(slots_.size(), [&](const Slot&) { return dropped++ >= excess; });
      *evictions += excess;
    }
  }
  if (2 * (size_ + 1) > slots_.size()) {
    Rebuild(std::max<size_t>(64, 2 * slots_.size()), [](const Slot&) { return true; });
  }
  return Insert(hash, key, ThresholdState{now_ns, 0}).state;
}

bool RuleEngine::PassesThreshold(size_t index, const Unit& unit, const FlowTuple& tuple) {
  const rules::Rule& rule = rules_[index];
  rules::Track track;
  uint32_t count;
  uint32_t seconds;
  if (rule.detection_filter) {
    track = rule.detection_filter->track;
    count = rule.detection_filter->count;
    seconds = rule.detection_filter->seconds;
  } else if (rule.threshold) {
    track = rule.threshold->track;
    count = rule.threshold->count;
    seconds = rule.threshold->seconds;
  } else {
    return true;
  }
  const bool to_server = unit.direction == pop3::Direction::kToServer;
  const rules::IpAddress& src = to_server ? tuple.client : tuple.server;
  const rules::IpAddress& dst = to_server ? tuple.server : tuple.client;
  ThresholdKey key;
  key.rule = static_cast<uint32_t>(index);
  // An IPv4 address is its first four bytes: the rest are not compared.
  auto tracked = [](const rules::IpAddress& a) {
    rules::IpAddress t;
    t.v6 = a.v6;
    std::copy_n(a.bytes.begin(), a.v6 ? 16 : 4, t.bytes.begin());
    return t;
  };
  switch (track) {
    case rules::Track::kBySrc:
      key.addresses[0] = tracked(src);
      break;
    case rules::Track::kByDst:
      key.addresses[0] = tracked(dst);
      break;
    case rules::Track::kByBoth:
      key.addresses = {tracked(src), tracked(dst)};
      break;
    case rules::Track::kByFlow:
      key.addresses = {tracked(tuple.client), tracked(tuple.server)};
      key.client_port = tuple.client_port;
      key.server_port = tuple.server_port;
      break;
    case rules::Track::kByRule:
      break;
  }
  const int64_t window = static_cast<int64_t>(seconds) * kNsPerSecond;
  ThresholdState& state =
      thresholds_.At(key, unit.timestamp_ns, window, &counters_.threshold_evictions);
  if (unit.timestamp_ns - state.window_start_ns >= window) {
    state.window_start_ns = unit.timestamp_ns;
    state.hits = 0;
  }
  const uint64_t hits = ++state.hits;
  if (rule.detection_filter) return hits > count;
  switch (rule.threshold->type) {
    case rules::ThresholdType::kLimit:
      return hits <= count;
    case rules::ThresholdType::kThreshold:
      return count != 0 && hits % count == 0;
    case rules::ThresholdType::kBoth:
      return hits == count;
    case rules::ThresholdType::kBackoff: {
      // Alert on the 1st, then every count-th, count*multiplier-th, ...
      uint64_t next = 1;
      while (next < hits) next = next == 1 ? count : next * rule.threshold->multiplier;
      return next == hits;
    }
  }
  return true;
}

void RuleEngine::Evaluate(size_t index, const Unit& unit, const FlowTuple& tuple,
                          FlowRuleState* flow, std::vector<Alert>* alerts) {
  Gate& gate = gates_[index];
  if (gate.seen == generation_) return;
  gate.seen = generation_;
  const rules::Rule& rule = rules_[index];
  const Compiled& compiled = *compiled_[index];
  if (!gate.header_open && !HeaderMatches(rule, compiled, unit, tuple)) return;
  if (!FlowbitsHold(compiled, *flow)) return;
  counters_.candidates++;
  if (!compiled.matcher->Matches(unit, &counters_.match)) return;
  counters_.matches++;
  ApplyFlowbits(compiled, flow);
  if (!compiled.alerts || !PassesThreshold(index, unit, tuple)) {
    counters_.suppressed++;
    return;
  }
  counters_.alerts++;
  alerts->push_back(MakeAlert(rule, unit, tuple));
}

// Out of line and cold: most evaluations end without an alert, and the
// strings built here would otherwise weigh on every call's prologue.
[[gnu::cold, gnu::noinline]] Alert RuleEngine::MakeAlert(const rules::Rule& rule, const Unit& unit,
                                                         const FlowTuple& tuple) {
  Alert alert;
  alert.rule = &rule;
  alert.tuple = tuple;
  alert.direction = unit.direction;
  alert.timestamp_ns = unit.timestamp_ns;
  alert.command = std::string(unit.Get(Buffer::kPop3Command).value_or(""));
  alert.args = std::string(unit.Get(Buffer::kPop3Args).value_or(""));
  alert.response = std::string(unit.Get(Buffer::kPop3Response).value_or(""));
  if (unit.anomaly) alert.anomaly = std::string(rules::Pop3EventName(*unit.anomaly));
  return alert;
}

// Inline: Inspect is its only caller, and one call per unit less is a
// measurable share of a unit's cost.
[[gnu::always_inline]] inline void RuleEngine::InspectUnordered(const Unit& unit,
                                                                const FlowTuple& tuple,
                                                                FlowRuleState* flow,
                                                                std::vector<Alert>* alerts) {
  counters_.units++;
  ++generation_;
  if (unit.anomaly) {
    auto it = by_event_.find(static_cast<int>(*unit.anomaly));
    if (it == by_event_.end()) return;
    for (size_t index : it->second) {
      if (Admits(index, unit)) Evaluate(index, unit, tuple, flow, alerts);
    }
    return;
  }
  if (unit.tcp_flags) {
    for (size_t index : by_flags_) {
      if (rules_[index].flags->Matches(*unit.tcp_flags) && Admits(index, unit)) {
        Evaluate(index, unit, tuple, flow, alerts);
      }
    }
    return;
  }
  struct Context {
    RuleEngine* engine;
    const Unit* unit;
    const FlowTuple* tuple;
    FlowRuleState* flow;
    std::vector<Alert>* alerts;
    // A rule the index names, evaluated if its gate admits the unit.
    void Candidate(size_t index) const {
      if (engine->Admits(index, *unit)) {
        engine->Evaluate(index, *unit, *tuple, flow, alerts);
      }
    }
  } context{this, &unit, &tuple, flow, alerts};
  const uint32_t present = unit.present();
  // The verb's rules first, as its literals came first in the line.
  if ((present & (1u << UnitSlot(Buffer::kPop3Command))) && !by_verb_.empty()) {
    std::string_view verb = unit.View(Buffer::kPop3Command);
    // A pcre's `$` also matches before a final newline.
    if (verb.ends_with('\n')) verb.remove_suffix(1);
    for (uint32_t index : by_verb_.Find(VerbKey(verb))) context.Candidate(index);
  }
  for (const Database& db : databases_[DirectionIndex(unit.direction)]) {
    if (!(present & (1u << db.slot))) continue;
    std::string_view buffer = unit.View(kUnitBuffers[db.slot]);
    if (db.dfa) {
      counters_.automaton_runs++;
      for (uint64_t hits = db.dfa->Matches(buffer); hits; hits &= hits - 1) {
        context.Candidate(db.dfa_rules[static_cast<size_t>(__builtin_ctzll(hits))]);
      }
      continue;
    }
    if (db.bytes) {
      for (char c : buffer) {
        const auto byte = static_cast<uint8_t>(c);
        if (!db.bytes->named[byte]) continue;
        for (unsigned id : db.bytes->rules[byte]) context.Candidate(id);
      }
      continue;
    }
    if (db.screen && !db.screen->MayMatch(buffer)) {
      counters_.screened++;
      continue;
    }
    counters_.scans++;
    hs_error_t rc = hs_scan(
        db.database, buffer.data(), static_cast<unsigned>(buffer.size()), 0, scratch_,
        [](unsigned id, unsigned long long, unsigned long long, unsigned, void* raw) -> int {
          static_cast<const Context*>(raw)->Candidate(id);
          return 0;
        },
        &context);
    if (rc != HS_SUCCESS) counters_.scan_errors++;
  }
  for (size_t index : unindexed_[DirectionIndex(unit.direction)]) context.Candidate(index);
}

void RuleEngine::Inspect(const Unit& unit, const FlowTuple& tuple, FlowRuleState* flow,
                         std::vector<Alert>* alerts) {
  const size_t first = alerts->size();
  InspectUnordered(unit, tuple, flow, alerts);
  // Hyperscan reports in pattern order per buffer; rule order (file order)
  // makes the output the same whatever the buffers and databases.
  std::sort(alerts->begin() + static_cast<std::ptrdiff_t>(first), alerts->end(),
            [](const Alert& a, const Alert& b) { return a.rule < b.rule; });
}

}  // namespace popguard::detect
