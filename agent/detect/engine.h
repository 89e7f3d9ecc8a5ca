// The rule engine: parsed rules compiled into one Hyperscan database per
// buffer (multi-pattern, one scan per buffer of a unit), the candidates it
// names confirmed by the exact matcher (matcher.h, PCRE2 for pcre), then
// the per-rule conditions: header, flow direction, flowbits, threshold and
// detection_filter.
//
// Each rule contributes its fast pattern (the content marked fast_pattern,
// else the longest positive content, as Snort and Suricata choose). The
// payload, verb, arguments and status line of a unit are all slices of one
// line, so their literals share one database scanned over the payload: one
// scan per line. A rule that pins pop3.command to exact verbs (`content`
// with `bsize` of its length, or a pcre that is a choice of words) is looked
// up by the unit's verb instead, unless it has a selective literal off the
// verb. A rule with no usable content but a pcre that is a choice of words
// contributes the words; else a plain pcre goes in Hyperscan's prefilter
// mode to its buffer's database; the rest are checked on every unit
// carrying the buffers they read. Each direction has its own databases,
// built from the rules its flow lets see it; a buffer whose patterns are
// all one-byte literals is read through a table of bytes instead of
// hs_scan, whose fixed cost dwarfs a short line; a database whose patterns
// are all start-anchored pcres is walked by a DFA (dfa.h) when they are in
// its subset, else not scanned on a line whose first bytes cannot begin a
// match (AnchoredScreen). Each rule's gate (direction, required buffers,
// size tests that need no cursor) is tested before anything else of it.
//
// Rules the engine cannot honour are refused at compile time with an error
// naming the rule and the option, never loaded half-understood.
#pragma once

#include <hs/hs.h>

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent/detect/dfa.h"
#include "agent/detect/matcher.h"
#include "agent/detect/unit.h"
#include "agent/rules/ast.h"
#include "agent/rules/parser.h"

// PCRE2's types (pcre2.h with PCRE2_CODE_UNIT_WIDTH 8), for pointers only.
struct pcre2_real_code_8;
struct pcre2_real_match_data_8;

namespace popguard::detect {

// Per-flow rule state the caller keeps with its flow (flowbits).
struct FlowRuleState {
  std::vector<bool> flowbits;
};

struct Alert {
  const rules::Rule* rule = nullptr;
  FlowTuple tuple;
  pop3::Direction direction = pop3::Direction::kToServer;
  int64_t timestamp_ns = 0;
  // What the unit was about, for the EVE record's pop3 object.
  std::string command;
  std::string args;
  std::string response;
  std::string anomaly;
};

struct EngineCounters {
  uint64_t units = 0;
  uint64_t scans = 0;           // hs_scan calls
  uint64_t screened = 0;        // buffers an AnchoredScreen spared a scan
  uint64_t automaton_runs = 0;  // buffers an AnchoredDfa decided, with no scan
  uint64_t candidates = 0;      // rules evaluated exactly
  uint64_t matches = 0;         // rules whose conditions all held
  uint64_t alerts = 0;
  uint64_t suppressed = 0;  // matches held back by threshold / detection_filter / noalert
  // Losses: evaluations the engine could not finish, and threshold state
  // given up because its table was full.
  uint64_t scan_errors = 0;
  uint64_t threshold_evictions = 0;
  MatchCounters match;
};

struct CompileResult;

// A screen in front of a database whose patterns are all start-anchored
// pcres (response rules mostly are: `^\+OK...`): whether any line that
// begins with a buffer's first kPrefix bytes could match one of them,
// decided once per distinct prefix by PCRE2's partial matching and
// remembered. A buffer whose prefix cannot start a match needs no hs_scan:
// "+OK Logged in." for a rule that wants a number after "+OK ".
class AnchoredScreen {
 public:
  static constexpr size_t kPrefix = 5;
  // Null unless every pattern came from a start-anchored pcre (`pcres`:
  // each pattern's, null for one that is not a pcre's).
  static std::unique_ptr<AnchoredScreen> For(const std::vector<const rules::PcreMatch*>& pcres);
  ~AnchoredScreen();
  bool MayMatch(std::string_view buffer);

 private:
  AnchoredScreen() = default;
  struct Entry {
    uint64_t key = 0;  // the prefix's bytes and its length
    bool known = false;
    bool alive = false;
  };
  std::vector<::pcre2_real_code_8*> codes_;
  ::pcre2_real_match_data_8* data_ = nullptr;
  std::array<Entry, 64> entries_{};
};

class RuleEngine {
 public:
  ~RuleEngine();
  RuleEngine(const RuleEngine&) = delete;
  RuleEngine& operator=(const RuleEngine&) = delete;

  // Runs `unit` against every rule; matches that alert are appended to *alerts.
  void Inspect(const Unit& unit, const FlowTuple& tuple, FlowRuleState* flow,
               std::vector<Alert>* alerts);

  const std::vector<rules::Rule>& rules() const { return rules_; }
  const EngineCounters& counters() const { return counters_; }
  // Whether some rule tests TCP flags, so client SYNs must be inspected as
  // segment units (Unit::tcp_flags).
  bool tests_tcp_flags() const { return !by_flags_.empty(); }

 private:
  friend CompileResult Compile(std::vector<rules::Rule> rules);
  RuleEngine() = default;

  struct Compiled;
  struct ThresholdState {
    int64_t window_start_ns = 0;
    uint64_t hits = 0;
  };
  // Whose hits a threshold or detection_filter counts: the rule and what it
  // tracks (addresses, ports for by_flow); fields it does not track stay
  // zero. A struct, not a string, so the lookup builds nothing on the heap.
  struct ThresholdKey {
    uint32_t rule = 0;
    uint16_t client_port = 0;
    uint16_t server_port = 0;
    std::array<rules::IpAddress, 2> addresses{};
    friend bool operator==(const ThresholdKey&, const ThresholdKey&) = default;
  };
  // Threshold state by key: open addressing with linear probing in a
  // power-of-two array kept at most half full, so the lookup each
  // thresholded match makes is a hash and a probe or two, where
  // std::unordered_map's bucket was a 64-bit division and its entry a node
  // away.
  class ThresholdTable {
   public:
    static constexpr size_t kMaxEntries = 65536;
    static constexpr size_t kEvictBatch = kMaxEntries / 16;
    // The state for `key`; a new one opens its window at `now_ns`. At
    // kMaxEntries the entries whose `window_ns` has passed go first, then
    // arbitrary ones until kEvictBatch slots are free, counted in
    // *evictions.
    ThresholdState& At(const ThresholdKey& key, int64_t now_ns, int64_t window_ns,
                       uint64_t* evictions);
    size_t size() const { return size_; }

   private:
    // The key's hash is kept to compare before the key: a probe that meets
    // another key mostly settles on one word.
    struct Slot {
      uint64_t hash = 0;
      ThresholdKey key;
      ThresholdState state;
      bool used = false;
    };
    static uint64_t Hash(const ThresholdKey& key);
    Slot& Insert(uint64_t hash, const ThresholdKey& key, const ThresholdState& state);
    // Puts the entries `keep` accepts into `capacity` fresh slots.
    template <class Keep>
    void Rebuild(size_t capacity, Keep keep);

    std::vector<Slot> slots_;
    size_t size_ = 0;
  };

  void InspectUnordered(const Unit& unit, const FlowTuple& tuple, FlowRuleState* flow,
                        std::vector<Alert>* alerts);
  bool HeaderMatches(const rules::Rule& rule, const Compiled& compiled, const Unit& unit,
                     const FlowTuple& tuple) const;
  bool FlowbitsHold(const Compiled& compiled, const FlowRuleState& flow) const;
  void ApplyFlowbits(const Compiled& compiled, FlowRuleState* flow) const;
  bool PassesThreshold(size_t index, const Unit& unit, const FlowTuple& tuple);
  // For a rule whose gate admits the unit (Admits).
  void Evaluate(size_t index, const Unit& unit, const FlowTuple& tuple, FlowRuleState* flow,
                std::vector<Alert>* alerts);
  static Alert MakeAlert(const rules::Rule& rule, const Unit& unit, const FlowTuple& tuple);

  std::vector<rules::Rule> rules_;
  std::vector<std::unique_ptr<Compiled>> compiled_;
  // The rules each byte value names, for a buffer whose patterns are all
  // one-byte literals; `named` is the hot loop's test, one load per byte.
  struct ByteTable {
    std::array<bool, 256> named{};
    std::array<std::vector<unsigned>, 256> rules;
  };
  // The patterns of one unit buffer: a byte table when every pattern is a
  // one-byte literal, else an anchored DFA when every pattern is a
  // start-anchored pcre it can take, else a Hyperscan database.
  struct Database {
    size_t slot = 0;  // in kUnitBuffers
    hs_database_t* database = nullptr;
    std::unique_ptr<ByteTable> bytes;
    std::unique_ptr<AnchoredDfa> dfa;
    std::vector<unsigned> dfa_rules;  // the rule of the DFA's pattern i
    std::unique_ptr<AnchoredScreen> screen;
  };
  // Per direction (pop3::Direction as index): one per unit buffer that some
  // rule seeing that direction has patterns for.
  std::array<std::vector<Database>, 2> databases_;
  hs_scratch_t* scratch_ = nullptr;
  // Rules with no pattern in any database, checked whenever their buffers
  // are present, by direction as databases_; app-layer-event rules, by
  // event.
  std::array<std::vector<size_t>, 2> unindexed_;
  std::unordered_map<int, std::vector<size_t>> by_event_;
  // Rules that test TCP flags, seen by segment units only.
  std::vector<size_t> by_flags_;
  // Rules pinned to exact verbs, by VerbKey: looked up by the unit's verb
  // instead of scanned for.
  class VerbIndex {
   public:
    void Build(const std::unordered_map<uint64_t, std::vector<size_t>>& by_key);
    bool empty() const { return slots_.empty(); }
    // The rules pinned to the verb whose VerbKey is `key`.
    std::span<const uint32_t> Find(uint64_t key) const {
      if (slots_.empty()) return {};
      for (size_t at = (key * 0x9e3779b97f4a7c15) >> shift_;; at = (at + 1) & (slots_.size() - 1)) {
        const Slot& slot = slots_[at];
        if (slot.end == 0) return {};
        if (slot.key == key) return {rules_.data() + slot.begin, slot.end - slot.begin};
      }
    }

   private:
    // Open addressing, at most half full; a slot in use names at least one
    // rule, so end == 0 marks a free one.
    struct Slot {
      uint64_t key = 0;
      uint32_t begin = 0;
      uint32_t end = 0;
    };
    std::vector<Slot> slots_;
    std::vector<uint32_t> rules_;
    unsigned shift_ = 63;
  };
  // A lookup on every command: a multiply and a probe or two in one array,
  // where std::unordered_map's bucket is a division and its rules a node
  // and a vector away.
  VerbIndex by_verb_;
  std::unordered_map<std::string, size_t> flowbit_index_;
  // The rules' port selectors as a bit per port, one per distinct selector:
  // a load where walking a list like [110,995] costs dozens of
  // instructions on every candidate.
  using PortBitmap = std::array<uint64_t, 65536 / 64>;
  std::vector<std::unique_ptr<PortBitmap>> port_bitmaps_;
  ThresholdTable thresholds_;
  // What a candidate must pass before anything else of its rule is read,
  // per rule in one contiguous array and tested inline, before Evaluate is
  // called: most candidates fail here (an overflow rule on a normal line),
  // and a rule's own structures are spread over the heap.
  struct Gate {
    uint64_t seen = 0;              // generation_ of the last unit Evaluate saw it for
    uint32_t required_buffers = 0;  // bit UnitSlot per unit buffer it reads
    uint32_t sizes_begin = 0;       // its tests in size_tests_
    uint32_t sizes_end = 0;
    uint8_t directions = 0;    // bit per pop3::Direction its flow lets it see
    bool header_open = false;  // any address and port: no header to test
  };
  // A length a buffer must have, from bsize, dsize, or an isdataat that
  // needs no cursor (data at N is a buffer longer than N), as a range:
  // every IntegerTest is one range or its complement, tested without a
  // branch on the comparison.
  struct SizeTest {
    uint32_t slot;  // in kUnitBuffers
    bool outside;   // the length must lie outside [low, low + span]
    uint64_t low;
    uint64_t span;
    static SizeTest Of(rules::Buffer buffer, const rules::IntegerTest& test);
    bool Holds(uint64_t length) const { return (length - low <= span) != outside; }
  };
  static Gate GateOf(const rules::Rule& rule, const Compiled& compiled,
                     std::vector<SizeTest>* size_tests);
  bool Admits(size_t index, const Unit& unit) const {
    const Gate& gate = gates_[index];
    if ((gate.required_buffers & ~unit.present()) != 0 ||
        !((gate.directions >> static_cast<unsigned>(unit.direction)) & 1)) {
      return false;
    }
    for (uint32_t i = gate.sizes_begin; i < gate.sizes_end; ++i) {
      const SizeTest& size = size_tests_[i];
      if (!size.Holds(unit.View(kUnitBuffers[size.slot]).size())) return false;
    }
    return true;
  }
  std::vector<Gate> gates_;
  std::vector<SizeTest> size_tests_;
  // Stamps Gate::seen: a rule named twice in one unit is evaluated once.
  uint64_t generation_ = 0;
  EngineCounters counters_;
};

struct CompileResult {
  std::unique_ptr<RuleEngine> engine;  // null only when Hyperscan itself failed
  // Rules refused by the engine (`file:line: sid N: ...`); they are not loaded.
  std::vector<rules::Diagnostic> errors;
  // Rules loaded that will not behave as their author may expect.
  std::vector<rules::Diagnostic> warnings;
};

// Compiles every rule the engine can honour.
CompileResult Compile(std::vector<rules::Rule> rules);

}  // namespace popguard::detect
