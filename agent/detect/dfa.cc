#include "agent/detect/dfa.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <bitset>
#include <map>
#include <optional>
#include <string>
#include <utility>

namespace popguard::detect {

namespace {

using ByteSet = std::bitset<256>;

// Bounds kept small: a repeat is unrolled into copies of its body.
constexpr int kMaxRepeat = 1000;
constexpr size_t kMaxNfaStates = 20000;

ByteSet Range(int low, int high) {
  ByteSet set;
  for (int c = low; c <= high; ++c) set.set(static_cast<size_t>(c));
  return set;
}

ByteSet Byte(int c) { return Range(c, c); }

// PCRE2's tables for the "C" locale: ASCII letters alone have a case.
ByteSet Fold(ByteSet set) {
  for (int c = 'a'; c <= 'z'; ++c) {
    const bool either = set[static_cast<size_t>(c)] || set[static_cast<size_t>(c - 32)];
    set[static_cast<size_t>(c)] = either;
    set[static_cast<size_t>(c - 32)] = either;
  }
  return set;
}

struct Node {
  enum class Kind { kBytes, kCaret, kSequence, kChoice, kRepeat };
  explicit Node(Kind k) : kind(k) {}
  Kind kind;
  ByteSet bytes;               // kBytes
  std::vector<Node> children;  // kSequence, kChoice; kRepeat has one
  int min = 0;                 // kRepeat
  std::optional<int> max;      // kRepeat; none: unbounded
};

// Recursive descent over the subset; any construct it does not know ends
// the parse with nullopt, never with a guess.
class Parser {
 public:
  Parser(std::string_view regex, const rules::PcreModifiers& modifiers)
      : text_(regex), caseless_(modifiers.caseless), dotall_(modifiers.dotall) {}

  std::optional<Node> Parse() {
    std::optional<Node> node = Choice();
    if (!node || at_ != text_.size()) return std::nullopt;
    return node;
  }

 private:
  bool Done() const { return at_ >= text_.size(); }
  char Peek() const { return text_[at_]; }

  std::optional<Node> Choice() {
    Node choice(Node::Kind::kChoice);
    for (;;) {
      std::optional<Node> branch = Sequence();
      if (!branch) return std::nullopt;
      choice.children.push_back(std::move(*branch));
      if (Done() || Peek() != '|') break;
      ++at_;
    }
    return choice;
  }

  std::optional<Node> Sequence() {
    Node sequence(Node::Kind::kSequence);
    while (!Done() && Peek() != '|' && Peek() != ')') {
      std::optional<Node> item = Repeat();
      if (!item) return std::nullopt;
      sequence.children.push_back(std::move(*item));
    }
    return sequence;
  }

  std::optional<int> Number() {
    const size_t from = at_;
    int value = 0;
    while (!Done() && Peek() >= '0' && Peek() <= '9') {
      value = value * 10 + (Peek() - '0');
      if (value > kMaxRepeat) return std::nullopt;
      ++at_;
    }
    if (at_ == from) return std::nullopt;
    return value;
  }

  std::optional<Node> Repeat() {
    std::optional<Node> atom = Atom();
    if (!atom || Done()) return atom;
    Node repeat(Node::Kind::kRepeat);
    switch (Peek()) {
      case '*':
        ++at_;
        break;
      case '+':
        ++at_;
        repeat.min = 1;
        break;
      case '?':
        ++at_;
        repeat.max = 1;
        break;
      case '{': {
        // Only the forms PCRE2 10.42 reads as a quantifier; a brace it
        // takes literally is left to Hyperscan.
        ++at_;
        std::optional<int> low = Number();
        if (!low || Done()) return std::nullopt;
        repeat.min = *low;
        if (Peek() == '}') {
          repeat.max = *low;
        } else if (Peek() == ',') {
          ++at_;
          if (!Done() && Peek() != '}') {
            std::optional<int> high = Number();
            if (!high || *high < *low) return std::nullopt;
            repeat.max = *high;
          }
        }
        if (Done() || Peek() != '}') return std::nullopt;
        ++at_;
        break;
      }
      default:
        return atom;
    }
    if (atom->kind == Node::Kind::kCaret) return std::nullopt;
    if (!Done() && Peek() == '?') {
      ++at_;  // lazy: the same language
    } else if (!Done() && Peek() == '+') {
      return std::nullopt;  // possessive: gives nothing back, a different language
    }
    if (!Done() && (Peek() == '*' || Peek() == '+' || Peek() == '?' || Peek() == '{')) {
      return std::nullopt;
    }
    repeat.children.push_back(std::move(*atom));
    return repeat;
  }

  Node Bytes(ByteSet set) const {
    Node node(Node::Kind::kBytes);
    node.bytes = caseless_ ? Fold(set) : set;
    return node;
  }

  std::optional<Node> Atom() {
    const char c = Peek();
    ++at_;
    switch (c) {
      case '(': {
        // A plain or non-capturing group; every other `(?` form is out.
        if (!Done() && Peek() == '?') {
          if (at_ + 1 >= text_.size() || text_[at_ + 1] != ':') return std::nullopt;
          at_ += 2;
        }
        std::optional<Node> inner = Choice();
        if (!inner || Done() || Peek() != ')') return std::nullopt;
        ++at_;
        return inner;
      }
      case '[':
        return Class();
      case '.':
        return Bytes(dotall_ ? ~ByteSet() : ~Byte('\n'));
      case '^':
        return Node(Node::Kind::kCaret);
      case '$':
      case ')':
      case '*':
      case '+':
      case '?':
      case '{':
        return std::nullopt;
      case '\\': {
        std::optional<ByteSet> set = Escape();
        if (!set) return std::nullopt;
        return Bytes(*set);
      }
      default:
        return Bytes(Byte(static_cast<uint8_t>(c)));
    }
  }

  // After a backslash. The class escapes give a set; the others one byte.
  std::optional<ByteSet> Escape() {
    if (Done()) return std::nullopt;
    const char e = Peek();
    ++at_;
    const ByteSet digit = Range('0', '9');
    // PCRE2's \s: space, \t, \n, \v, \f, \r.
    const ByteSet space = Byte(' ') | Range('\t', '\r');
    const ByteSet word = digit | Range('a', 'z') | Range('A', 'Z') | Byte('_');
    switch (e) {
      case 'd':
        return digit;
      case 'D':
        return ~digit;
      case 's':
        return space;
      case 'S':
        return ~space;
      case 'w':
        return word;
      case 'W':
        return ~word;
      case 't':
        return Byte('\t');
      case 'n':
        return Byte('\n');
      case 'r':
        return Byte('\r');
      case 'f':
        return Byte('\f');
      case 'e':
        return Byte(0x1b);
      case 'a':
        return Byte(0x07);
      case 'x': {
        if (at_ + 2 > text_.size()) return std::nullopt;
        int value = 0;
        for (int i = 0; i < 2; ++i) {
          const char h = text_[at_++];
          const int digit_value = (h >= '0' && h <= '9')   ? h - '0'
                                  : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                                  : (h >= 'A' && h <= 'F') ? h - 'A' + 10
                                                           : -1;
          if (digit_value < 0) return std::nullopt;
          value = value * 16 + digit_value;
        }
        return Byte(value);
      }
      default:
        // A backslash before any other non-alphanumeric byte is that byte;
        // before a letter or digit it is a feature outside the subset
        // (\b is even a different thing inside a class).
        if ((e >= '0' && e <= '9') || (e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z')) {
          return std::nullopt;
        }
        return Byte(static_cast<uint8_t>(e));
    }
  }

  // One class member: its bytes, and the byte itself when it is one (a
  // range's ends must be), else -1.
  struct Member {
    ByteSet bytes;
    int byte = -1;
  };
  std::optional<Member> ClassMember() {
    const char c = Peek();
    ++at_;
    if (c == '[' && !Done() && (Peek() == ':' || Peek() == '.' || Peek() == '=')) {
      return std::nullopt;  // POSIX classes and collating elements
    }
    if (c != '\\') return Member{Byte(static_cast<uint8_t>(c)), static_cast<uint8_t>(c)};
    std::optional<ByteSet> bytes = Escape();
    if (!bytes) return std::nullopt;
    Member member{*bytes};
    if (bytes->count() == 1) {
      for (int b = 0; b < 256; ++b) {
        if ((*bytes)[static_cast<size_t>(b)]) member.byte = b;
      }
    }
    return member;
  }

  std::optional<Node> Class() {
    bool negated = false;
    if (!Done() && Peek() == '^') {
      negated = true;
      ++at_;
    }
    ByteSet set;
    bool first = true;
    for (;;) {
      if (Done()) return std::nullopt;
      if (Peek() == ']' && !first) {
        ++at_;
        break;
      }
      first = false;
      std::optional<Member> low = ClassMember();
      if (!low) return std::nullopt;
      // `a-z`; a `-` before `]` is a literal, and so is one after a class
      // escape, which PCRE2 refuses to make a range of anyway.
      if (low->byte >= 0 && at_ + 1 < text_.size() && Peek() == '-' && text_[at_ + 1] != ']') {
        ++at_;
        std::optional<Member> high = ClassMember();
        if (!high || high->byte < low->byte) return std::nullopt;
        set |= Range(low->byte, high->byte);
        continue;
      }
      set |= low->bytes;
    }
    // Case is folded before negation: /i [^a] takes neither a nor A.
    if (caseless_) set = Fold(set);
    Node node(Node::Kind::kBytes);
    node.bytes = negated ? ~set : set;
    return node;
  }

  std::string_view text_;
  size_t at_ = 0;
  bool caseless_;
  bool dotall_;
};

// Thompson's construction, built back to front: each node is given the
// state that follows it and returns its own first state.
struct NfaState {
  enum class Kind { kBytes, kSplit, kCaret, kAccept };
  static NfaState Reader(const ByteSet& bytes, int out) { return {Kind::kBytes, bytes, out}; }
  static NfaState Split(int out, int other) { return {Kind::kSplit, {}, out, other}; }
  static NfaState Caret(int out) { return {Kind::kCaret, {}, out}; }
  static NfaState Accept(int pattern) { return {Kind::kAccept, {}, -1, -1, pattern}; }
  Kind kind;
  ByteSet bytes;     // kBytes
  int out = -1;      // kBytes, kCaret, kSplit
  int other = -1;    // kSplit
  int pattern = -1;  // kAccept
};

class Nfa {
 public:
  int Add(NfaState state) {
    states_.push_back(std::move(state));
    return static_cast<int>(states_.size()) - 1;
  }

  std::optional<int> Emit(const Node& node, int out) {
    if (states_.size() > kMaxNfaStates) return std::nullopt;
    switch (node.kind) {
      case Node::Kind::kBytes:
        return Add(NfaState::Reader(node.bytes, out));
      case Node::Kind::kCaret:
        return Add(NfaState::Caret(out));
      case Node::Kind::kSequence:
        for (auto it = node.children.rbegin(); it != node.children.rend(); ++it) {
          std::optional<int> entry = Emit(*it, out);
          if (!entry) return std::nullopt;
          out = *entry;
        }
        return out;
      case Node::Kind::kChoice: {
        std::optional<int> entry;
        for (auto it = node.children.rbegin(); it != node.children.rend(); ++it) {
          std::optional<int> branch = Emit(*it, out);
          if (!branch) return std::nullopt;
          entry = entry ? Add(NfaState::Split(*branch, *entry)) : *branch;
        }
        return entry.value_or(out);
      }
      case Node::Kind::kRepeat: {
        const Node& body = node.children.front();
        int tail = out;
        if (!node.max) {
          // A split that loops back through the body or leaves.
          const int loop = Add(NfaState::Split(-1, out));
          std::optional<int> entry = Emit(body, loop);
          if (!entry) return std::nullopt;
          states_[static_cast<size_t>(loop)].out = *entry;
          tail = loop;
        } else {
          // Each optional copy may be skipped straight to `out`.
          for (int k = node.min; k < *node.max; ++k) {
            std::optional<int> entry = Emit(body, tail);
            if (!entry) return std::nullopt;
            tail = Add(NfaState::Split(*entry, out));
          }
        }
        for (int k = 0; k < node.min; ++k) {
          std::optional<int> entry = Emit(body, tail);
          if (!entry) return std::nullopt;
          tail = *entry;
        }
        return tail;
      }
    }
    return std::nullopt;
  }

  // The states reachable from `from` without reading a byte: the byte
  // readers, sorted, and the patterns accepted. `^` holds only before the
  // first byte.
  std::pair<std::vector<int>, uint64_t> Closure(const std::vector<int>& from, bool at_start) const {
    std::vector<int> readers;
    uint64_t accepts = 0;
    // Stamped, not cleared: the subset construction calls this for every
    // state and byte class, and the NFA can be large.
    seen_.resize(states_.size(), 0);
    ++stamp_;
    std::vector<int> stack(from.begin(), from.end());
    while (!stack.empty()) {
      const int id = stack.back();
      stack.pop_back();
      if (id < 0 || seen_[static_cast<size_t>(id)] == stamp_) continue;
      seen_[static_cast<size_t>(id)] = stamp_;
      const NfaState& s = states_[static_cast<size_t>(id)];
      switch (s.kind) {
        case NfaState::Kind::kBytes:
          readers.push_back(id);
          break;
        case NfaState::Kind::kAccept:
          accepts |= uint64_t{1} << s.pattern;
          break;
        case NfaState::Kind::kCaret:
          if (at_start) stack.push_back(s.out);
          break;
        case NfaState::Kind::kSplit:
          stack.push_back(s.out);
          stack.push_back(s.other);
          break;
      }
    }
    std::sort(readers.begin(), readers.end());
    return {readers, accepts};
  }

  const std::vector<NfaState>& states() const { return states_; }

 private:
  std::vector<NfaState> states_;
  mutable std::vector<uint64_t> seen_;
  mutable uint64_t stamp_ = 0;
};

// The parser's `.` (without /s) leaves out LF alone: so does PCRE2's when
// it was built to take LF as the newline, as Debian's is; otherwise
// neither the DFA nor the screen is built.
bool DotTakesAllButLf() {
  uint32_t newline = 0;
  return pcre2_config(PCRE2_CONFIG_NEWLINE, &newline) >= 0 && newline == PCRE2_NEWLINE_LF;
}

// What a node can start with and its shortest match. `anchored` (set for
// a sequence, which is what a top-level branch is) when it begins with `^`:
// it can then only match at the subject's start.
struct Shape {
  ByteSet first;
  size_t min = 0;
  bool nullable = false;
  bool anchored = false;
};

// Lengths past any subject's: a shortest match is counted up to here, which
// keeps the bound a bound however the repeats nest.
constexpr size_t kLongest = size_t{1} << 40;

size_t Capped(size_t value) { return std::min(value, kLongest); }

Shape ShapeOf(const Node& node) {
  Shape shape;
  switch (node.kind) {
    case Node::Kind::kBytes:
      shape.first = node.bytes;
      shape.min = 1;
      break;
    case Node::Kind::kCaret:
      shape.nullable = true;
      break;
    case Node::Kind::kSequence: {
      shape.anchored = !node.children.empty() && node.children.front().kind == Node::Kind::kCaret;
      shape.nullable = true;
      for (const Node& child : node.children) {
        const Shape part = ShapeOf(child);
        if (shape.nullable) shape.first |= part.first;
        shape.nullable = shape.nullable && part.nullable;
        shape.min = Capped(shape.min + part.min);
      }
      break;
    }
    case Node::Kind::kChoice: {
      shape.min = ~size_t{0};
      for (const Node& child : node.children) {
        const Shape part = ShapeOf(child);
        shape.first |= part.first;
        shape.min = std::min(shape.min, part.min);
        shape.nullable = shape.nullable || part.nullable;
      }
      if (node.children.empty()) shape.min = 0;
      break;
    }
    case Node::Kind::kRepeat: {
      const Shape part = ShapeOf(node.children.front());
      if (node.max != 0) shape.first = part.first;
      shape.min = Capped(static_cast<size_t>(node.min) * part.min);
      shape.nullable = node.min == 0 || part.nullable;
      break;
    }
  }
  return shape;
}

}  // namespace

std::unique_ptr<StartScreen> StartScreen::Build(const rules::PcreMatch& pcre) {
  if (!DotTakesAllButLf() || pcre.modifiers.multiline || pcre.modifiers.extended) return nullptr;
  std::optional<Node> root = Parser(pcre.regex, pcre.modifiers).Parse();
  if (!root) return nullptr;
  std::unique_ptr<StartScreen> screen(new StartScreen());
  screen->anchored_min_ = ~size_t{0};
  screen->unanchored_min_ = ~size_t{0};
  ByteSet anchored_first;
  ByteSet unanchored_first;
  for (const Node& branch : root->children) {
    const Shape shape = ShapeOf(branch);
    if (shape.nullable) return nullptr;
    if (shape.anchored || pcre.modifiers.anchored) {
      anchored_first |= shape.first;
      screen->anchored_min_ = std::min(screen->anchored_min_, shape.min);
    } else {
      unanchored_first |= shape.first;
      screen->unanchored_min_ = std::min(screen->unanchored_min_, shape.min);
    }
  }
  for (size_t b = 0; b < 256; ++b) {
    screen->anchored_first_[b] = anchored_first[b];
    screen->unanchored_first_[b] = unanchored_first[b];
  }
  return screen;
}

std::unique_ptr<AnchoredDfa> AnchoredDfa::Build(const std::vector<const rules::PcreMatch*>& pcres) {
  if (pcres.empty() || pcres.size() > kMaxPatterns || !DotTakesAllButLf()) return nullptr;
  Nfa nfa;
  std::vector<int> starts;
  for (size_t i = 0; i < pcres.size(); ++i) {
    const rules::PcreMatch* pcre = pcres[i];
    if (!pcre || pcre->negated || pcre->modifiers.multiline || pcre->modifiers.extended) {
      return nullptr;
    }
    std::optional<Node> root = Parser(pcre->regex, pcre->modifiers).Parse();
    if (!root) return nullptr;
    int out = nfa.Add(NfaState::Accept(static_cast<int>(i)));
    std::optional<int> entry = nfa.Emit(*root, out);
    if (!entry) return nullptr;
    // /A anchors as a `^` in front would.
    if (pcre->modifiers.anchored) entry = nfa.Add(NfaState::Caret(*entry));
    starts.push_back(*entry);
  }
  // Anchored means nothing is read or accepted unless `^` held: from any
  // later offset nothing can start, so walking from the start alone is the
  // search PCRE2 makes.
  if (auto [readers, accepts] = nfa.Closure(starts, /*at_start=*/false);
      !readers.empty() || accepts) {
    return nullptr;
  }

  // Byte classes: bytes that every byte reader takes or leaves alike.
  std::vector<ByteSet> sets;
  for (const NfaState& s : nfa.states()) {
    if (s.kind == NfaState::Kind::kBytes) sets.push_back(s.bytes);
  }
  std::unique_ptr<AnchoredDfa> dfa(new AnchoredDfa());
  std::map<std::vector<bool>, size_t> class_of;
  std::array<size_t, 256> byte_class{};
  std::vector<uint8_t> representative;
  for (size_t byte = 0; byte < 256; ++byte) {
    std::vector<bool> signature(sets.size());
    for (size_t k = 0; k < sets.size(); ++k) signature[k] = sets[k][byte];
    auto [it, inserted] = class_of.emplace(std::move(signature), representative.size());
    if (inserted) representative.push_back(static_cast<uint8_t>(byte));
    byte_class[byte] = it->second;
  }

  // Subset construction; state 0 is the dead state, the empty set.
  const size_t classes = representative.size();
  using Key = std::pair<std::vector<int>, uint64_t>;
  std::map<Key, uint32_t> ids;
  std::vector<std::vector<int>> readers_of;
  std::vector<uint64_t> accepts;
  std::vector<uint32_t> next;  // [state * classes + class]
  auto intern = [&](Key key) -> std::optional<uint32_t> {
    if (auto it = ids.find(key); it != ids.end()) return it->second;
    if (accepts.size() >= kMaxStates) return std::nullopt;
    const auto id = static_cast<uint32_t>(accepts.size());
    accepts.push_back(key.second);
    next.resize(next.size() + classes, kDead);
    readers_of.push_back(key.first);
    ids.emplace(std::move(key), id);
    return id;
  };
  intern({{}, 0});
  std::optional<uint32_t> start = intern(nfa.Closure(starts, /*at_start=*/true));
  if (!start) return nullptr;
  for (uint32_t id = 1; id < accepts.size(); ++id) {
    const std::vector<int> readers = readers_of[id];
    for (size_t c = 0; c < classes; ++c) {
      std::vector<int> after;
      for (int r : readers) {
        const NfaState& s = nfa.states()[static_cast<size_t>(r)];
        if (s.bytes[representative[c]]) after.push_back(s.out);
      }
      if (after.empty()) continue;
      std::optional<uint32_t> target = intern(nfa.Closure(after, /*at_start=*/false));
      if (!target) return nullptr;
      next[id * classes + c] = *target;
    }
  }

  // The walk's table: a row per state, its accepted patterns in the first
  // two words and then its successors as row offsets, so that each step is
  // an add and a load.
  const size_t row = classes + kAcceptWords;
  dfa->table_.assign(accepts.size() * row, 0);
  for (size_t id = 0; id < accepts.size(); ++id) {
    uint32_t* out = &dfa->table_[id * row];
    out[0] = static_cast<uint32_t>(accepts[id]);
    out[1] = static_cast<uint32_t>(accepts[id] >> 32);
    for (size_t c = 0; c < classes; ++c) {
      out[kAcceptWords + c] = static_cast<uint32_t>(next[id * classes + c] * row);
    }
  }
  for (size_t byte = 0; byte < 256; ++byte) {
    dfa->column_[byte] = static_cast<uint16_t>(kAcceptWords + byte_class[byte]);
  }
  dfa->start_ = static_cast<uint32_t>(*start * row);
  dfa->states_ = accepts.size();
  return dfa;
}

}  // namespace popguard::detect
