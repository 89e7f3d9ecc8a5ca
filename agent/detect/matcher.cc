#include "agent/detect/matcher.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <hs/hs.h>
#include <pcre2.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "agent/detect/dfa.h"
#include "agent/pop3/sasl.h"

namespace popguard::detect {

using rules::Buffer;

// ---------------------------------------------------------------- regex

struct CompiledRegex::Impl {
  pcre2_code* code = nullptr;
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  // The regex was JIT-compiled: matched through pcre2_jit_match, which
  // skips pcre2_match's option checks (a third of a short line's cost).
  bool jit = false;
  // Set when the regex is only a choice of words (WordChoice) without /m:
  // matched by comparing, as PCRE2 would match it, for a fraction of a
  // pcre2_match call (rules pick verbs that way on every command).
  std::vector<std::string> words;
  bool caseless = false;
  bool dollar_endonly = false;
  // Hyperscan in prefilter mode on the same regex (a superset of its
  // matches), for a regex PCRE2 must try at every offset: a subject the
  // guard finds nothing in is not given to PCRE2, whose scan costs several
  // times more. Only for a pcre that is not negated: there a PCRE2 error
  // makes the keyword fail, as no match does, so the verdict is the same.
  hs_database_t* guard = nullptr;
  hs_scratch_t* guard_scratch = nullptr;
  // Cheaper still, in front of the guard and PCRE2: a subject with none
  // of the bytes a match can start with (or too short) is no match. For a
  // pcre that is not negated, for the guard's reason.
  std::unique_ptr<StartScreen> screen;

  Result MatchWords(std::string_view subject, size_t start, size_t* begin, size_t* end) const;
};

namespace {

char Fold(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

}  // namespace

// `^` holds at the subject's start only, `$` at its end or, without /E,
// before a newline that ends it; the match is the word, never the newline.
CompiledRegex::Result CompiledRegex::Impl::MatchWords(std::string_view subject, size_t start,
                                                      size_t* begin, size_t* end) const {
  if (start > 0) return Result::kNoMatch;
  // With /i the words were folded when compiled: only the subject is here.
  auto is_word = [&](std::string_view text) {
    for (const std::string& word : words) {
      if (word.size() != text.size()) continue;
      size_t k = 0;
      while (k < text.size() && (caseless ? Fold(text[k]) : text[k]) == word[k]) ++k;
      if (k == text.size()) return true;
    }
    return false;
  };
  size_t length = subject.size();
  if (!is_word(subject)) {
    if (dollar_endonly || !subject.ends_with('\n')) return Result::kNoMatch;
    length -= 1;
    if (!is_word(subject.substr(0, length))) return Result::kNoMatch;
  }
  *begin = 0;
  *end = length;
  return Result::kMatch;
}

uint32_t Pcre2Options(const rules::PcreModifiers& m) {
  uint32_t options = PCRE2_NEVER_UTF | PCRE2_NEVER_UCP;
  if (m.caseless) options |= PCRE2_CASELESS;
  if (m.dotall) options |= PCRE2_DOTALL;
  if (m.multiline) options |= PCRE2_MULTILINE;
  if (m.extended) options |= PCRE2_EXTENDED;
  if (m.anchored) options |= PCRE2_ANCHORED;
  if (m.dollar_endonly) options |= PCRE2_DOLLAR_ENDONLY;
  if (m.ungreedy) options |= PCRE2_UNGREEDY;
  return options;
}

std::unique_ptr<CompiledRegex> CompiledRegex::Compile(const rules::PcreMatch& pcre,
                                                      std::string* error) {
  const rules::PcreModifiers& m = pcre.modifiers;
  int code = 0;
  PCRE2_SIZE at = 0;
  pcre2_code* compiled = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pcre.regex.data()),
                                       pcre.regex.size(), Pcre2Options(m), &code, &at, nullptr);
  if (!compiled) {
    std::array<PCRE2_UCHAR, 256> message{};
    pcre2_get_error_message(code, message.data(), message.size());
    *error = "pcre \"" + pcre.regex + "\": " + reinterpret_cast<const char*>(message.data()) +
             " at offset " + std::to_string(at);
    return nullptr;
  }
  std::unique_ptr<CompiledRegex> regex(new CompiledRegex());
  regex->impl_ = std::make_unique<Impl>();
  regex->impl_->code = compiled;
  // JIT is an optimisation only: interpretation gives the same answers.
  regex->impl_->jit = pcre2_jit_compile(compiled, PCRE2_JIT_COMPLETE) == 0;
  regex->impl_->data = pcre2_match_data_create_from_pattern(compiled, nullptr);
  regex->impl_->context = pcre2_match_context_create(nullptr);
  if (!m.multiline) regex->impl_->words = WordChoice(pcre.regex);
  regex->impl_->caseless = m.caseless;
  if (m.caseless) {
    for (std::string& word : regex->impl_->words) {
      std::transform(word.begin(), word.end(), word.begin(), Fold);
    }
  }
  regex->impl_->dollar_endonly = m.dollar_endonly;
  // Suricata's defaults (detect.pcre.match-limit, match-limit-recursion);
  // the O modifier lifts them.
  if (!m.override_match_limit) {
    pcre2_set_match_limit(regex->impl_->context, 3500);
    pcre2_set_depth_limit(regex->impl_->context, 1500);
  }
  uint32_t first_code_type = 0;
  uint8_t* first_bitmap = nullptr;
  uint32_t all_options = 0;
  pcre2_pattern_info(compiled, PCRE2_INFO_FIRSTCODETYPE, &first_code_type);
  pcre2_pattern_info(compiled, PCRE2_INFO_FIRSTBITMAP, &first_bitmap);
  pcre2_pattern_info(compiled, PCRE2_INFO_ALLOPTIONS, &all_options);
  const bool every_offset =
      first_code_type == 0 && !first_bitmap && !(all_options & PCRE2_ANCHORED);
  if (!pcre.negated && regex->impl_->words.empty()) regex->impl_->screen = StartScreen::Build(pcre);
  // Hyperscan has no /x; a regex it refuses simply gets no guard.
  if (!pcre.negated && every_offset && !m.extended && regex->impl_->words.empty()) {
    hs_compile_error_t* hs_error = nullptr;
    if (hs_compile(pcre.regex.c_str(), PrefilterFlags(m) | HS_FLAG_SINGLEMATCH, HS_MODE_BLOCK,
                   nullptr, &regex->impl_->guard, &hs_error) != HS_SUCCESS) {
      hs_free_compile_error(hs_error);
    } else if (hs_alloc_scratch(regex->impl_->guard, &regex->impl_->guard_scratch) != HS_SUCCESS) {
      hs_free_database(regex->impl_->guard);
      regex->impl_->guard = nullptr;
    }
  }
  return regex;
}

CompiledRegex::~CompiledRegex() {
  if (!impl_) return;
  hs_free_scratch(impl_->guard_scratch);
  hs_free_database(impl_->guard);
  pcre2_match_context_free(impl_->context);
  pcre2_match_data_free(impl_->data);
  pcre2_code_free(impl_->code);
}

CompiledRegex::Result CompiledRegex::Search(std::string_view subject, size_t start, size_t* begin,
                                            size_t* end) const {
  if (!impl_->words.empty()) return impl_->MatchWords(subject, start, begin, end);
  if (impl_->screen && !impl_->screen->MayMatch(subject)) return Result::kNoMatch;
  if (impl_->guard) {
    bool found = false;
    hs_error_t rc = hs_scan(
        impl_->guard, subject.data(), static_cast<unsigned>(subject.size()), 0,
        impl_->guard_scratch,
        [](unsigned, unsigned long long, unsigned long long, unsigned, void* raw) -> int {
          *static_cast<bool*>(raw) = true;
          return 1;  // one match settles it
        },
        &found);
    // HS_SCAN_TERMINATED is the callback stopping the scan.
    if (rc == HS_SUCCESS && !found) return Result::kNoMatch;
  }
  const auto* bytes = reinterpret_cast<PCRE2_SPTR>(subject.data());
  int rc = impl_->jit ? pcre2_jit_match(impl_->code, bytes, subject.size(), start, 0, impl_->data,
                                        impl_->context)
                      : pcre2_match(impl_->code, bytes, subject.size(), start, 0, impl_->data,
                                    impl_->context);
  if (rc == PCRE2_ERROR_NOMATCH) return Result::kNoMatch;
  if (rc < 0) return Result::kError;
  const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(impl_->data);
  *begin = ovector[0];
  *end = ovector[1];
  return Result::kMatch;
}

// ---------------------------------------------------------------- helpers

namespace {

size_t BufferIndex(Buffer buffer) { return static_cast<size_t>(buffer); }
constexpr size_t kBufferCount = static_cast<size_t>(Buffer::kBase64Data) + 1;

bool ParseDigits(std::string_view text, rules::NumberBase base, uint64_t* value) {
  unsigned radix = base == rules::NumberBase::kHex ? 16 : base == rules::NumberBase::kOct ? 8 : 10;
  size_t i = 0;
  while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
  uint64_t v = 0;
  size_t digits = 0;
  for (; i < text.size(); ++i, ++digits) {
    char c = Fold(text[i]);
    unsigned d;
    if (c >= '0' && c <= '9') {
      d = static_cast<unsigned>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      d = static_cast<unsigned>(c - 'a' + 10);
    } else {
      break;
    }
    if (d >= radix) break;
    v = v * radix + d;
  }
  *value = v;
  return digits > 0;
}

}  // namespace

size_t FindPattern(std::string_view haystack, std::string_view pattern, size_t from, size_t to,
                   bool nocase) {
  to = std::min(to, haystack.size());
  if (from > to || to - from < pattern.size()) return std::string_view::npos;
  if (!nocase) {
    // One place only (startswith, bsize of the pattern's length): compare,
    // rather than find's search. The caseless loop below tries one place.
    if (to - from == pattern.size()) {
      return haystack.substr(from, pattern.size()) == pattern ? from : std::string_view::npos;
    }
    size_t pos = haystack.substr(0, to).find(pattern, from);
    return pos;
  }
  for (size_t pos = from; pos + pattern.size() <= to; ++pos) {
    size_t k = 0;
    while (k < pattern.size() && Fold(haystack[pos + k]) == Fold(pattern[k])) ++k;
    if (k == pattern.size()) return pos;
  }
  return std::string_view::npos;
}

unsigned PrefilterFlags(const rules::PcreModifiers& modifiers) {
  return HS_FLAG_PREFILTER | HS_FLAG_ALLOWEMPTY | (modifiers.caseless ? HS_FLAG_CASELESS : 0) |
         (modifiers.dotall ? HS_FLAG_DOTALL : 0) | (modifiers.multiline ? HS_FLAG_MULTILINE : 0);
}

std::vector<std::string> WordChoice(std::string_view regex) {
  if (regex.size() < 3 || regex.front() != '^' || regex.back() != '$') return {};
  std::string_view body = regex.substr(1, regex.size() - 2);
  const bool group = body.starts_with("(?:") && body.ends_with(")");
  if (group) body = body.substr(3, body.size() - 4);
  std::vector<std::string> words;
  for (size_t start = 0; start <= body.size();) {
    size_t bar = body.find('|', start);
    if (bar == std::string_view::npos) bar = body.size();
    std::string_view word = body.substr(start, bar - start);
    const bool alnum = std::all_of(word.begin(), word.end(), [](char c) {
      return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
    });
    if (word.empty() || !alnum) return {};
    words.emplace_back(word);
    start = bar + 1;
  }
  if (!group && words.size() > 1) return {};
  return words;
}

std::string DecodeBase64Lenient(std::string_view text) {
  std::string out;
  uint32_t quantum = 0;
  int have = 0;
  for (char c : text) {
    int v = pop3::Base64Sextet(c);
    if (v < 0) {
      if (c == '=' && have >= 2) {
        out.push_back(static_cast<char>(quantum >> (have == 2 ? 4 : 10)));
        if (have == 3) out.push_back(static_cast<char>(quantum >> 2));
      }
      break;
    }
    quantum = (quantum << 6) | static_cast<uint32_t>(v);
    if (++have == 4) {
      out.push_back(static_cast<char>(quantum >> 16));
      out.push_back(static_cast<char>(quantum >> 8));
      out.push_back(static_cast<char>(quantum));
      quantum = 0;
      have = 0;
    }
  }
  return out;
}

// ---------------------------------------------------------------- matcher

struct Matcher::State {
  const Unit* unit = nullptr;
  std::array<size_t, kBufferCount> cursor{};
  std::optional<std::string> base64;
  int steps = 0;
  bool aborted = false;
  MatchCounters* counters = nullptr;

  std::optional<std::string_view> Get(Buffer buffer) const {
    if (buffer == Buffer::kBase64Data) {
      if (!base64) return std::nullopt;
      return std::string_view(*base64);
    }
    return unit->Get(buffer);
  }
};

namespace {

// Whether a keyword's verdict depends on where the keywords before it
// matched: a relative one reads its buffer's cursor, base64_data reads what
// base64_decode made of it.
bool ReadsEarlierMatches(const rules::Detection& detection) {
  if (std::holds_alternative<rules::Base64Decode>(detection)) return true;
  if (std::visit([](const auto& k) { return k.buffer; }, detection) == Buffer::kBase64Data) {
    return true;
  }
  if (const auto* content = std::get_if<rules::ContentMatch>(&detection)) {
    return content->distance || content->within;
  }
  if (const auto* pcre = std::get_if<rules::PcreMatch>(&detection)) {
    return pcre->modifiers.relative;
  }
  if (const auto* at = std::get_if<rules::IsDataAt>(&detection)) return at->relative;
  if (const auto* test = std::get_if<rules::ByteTest>(&detection)) return test->relative;
  return false;
}

// Cheapest first: a size or position test, then a search for a literal,
// then a regex.
int Cost(const rules::Detection& detection) {
  if (std::holds_alternative<rules::PcreMatch>(detection)) return 2;
  if (std::holds_alternative<rules::ContentMatch>(detection)) return 1;
  return 0;
}

}  // namespace

Matcher::Matcher(const std::vector<rules::Detection>& detections,
                 std::vector<std::unique_ptr<CompiledRegex>> regexes)
    : detections_(detections), regexes_(std::move(regexes)) {
  if (std::none_of(detections_.begin(), detections_.end(), ReadsEarlierMatches)) {
    conjunction_.resize(detections_.size());
    for (size_t i = 0; i < conjunction_.size(); ++i) conjunction_[i] = i;
    std::stable_sort(conjunction_.begin(), conjunction_.end(), [&](size_t a, size_t b) {
      return Cost(detections_[a]) < Cost(detections_[b]);
    });
  }
}

bool Matcher::Matches(const Unit& unit, MatchCounters* counters) const {
  State state;
  state.unit = &unit;
  state.counters = counters;
  if (!conjunction_.empty()) {
    return std::all_of(conjunction_.begin(), conjunction_.end(),
                       [&](size_t index) { return HoldsAlone(state, index); });
  }
  bool matched = Eval(state, 0);
  if (state.aborted) counters->step_limit_hits++;
  return matched && !state.aborted;
}

bool Matcher::HoldsAlone(State& state, size_t index) const {
  const rules::Detection& detection = detections_[index];
  if (const auto* content = std::get_if<rules::ContentMatch>(&detection)) {
    std::optional<std::string_view> buf = state.Get(content->buffer);
    if (!buf) return false;
    const Window window = ContentWindow(*content, buf->size(), 0);
    return (Find(*content, *buf, window, window.start) != std::string_view::npos) !=
           content->negated;
  }
  if (const auto* pcre = std::get_if<rules::PcreMatch>(&detection)) {
    std::optional<std::string_view> buf = state.Get(pcre->buffer);
    if (!buf) return false;
    size_t begin = 0;
    size_t end = 0;
    const CompiledRegex::Result result = regexes_[index]->Search(*buf, 0, &begin, &end);
    if (result == CompiledRegex::Result::kError) {
      state.counters->pcre_errors++;
      return false;
    }
    return (result == CompiledRegex::Result::kMatch) != pcre->negated;
  }
  return Holds(state, detection);
}

bool Matcher::Eval(State& state, size_t index) const {
  if (state.aborted) return false;
  if (index == detections_.size()) return true;
  if (++state.steps > kMaxSteps) {
    state.aborted = true;
    return false;
  }
  const rules::Detection& detection = detections_[index];
  if (const auto* content = std::get_if<rules::ContentMatch>(&detection)) {
    return EvalContent(state, index, *content);
  }
  if (const auto* pcre = std::get_if<rules::PcreMatch>(&detection)) {
    return EvalPcre(state, index, *pcre);
  }
  if (const auto* decode = std::get_if<rules::Base64Decode>(&detection)) {
    std::optional<std::string_view> buf = state.Get(decode->buffer);
    if (!buf) return false;
    size_t from =
        (decode->relative ? state.cursor[BufferIndex(decode->buffer)] : 0) + decode->offset;
    std::string decoded;
    if (from < buf->size()) {
      std::string_view text = buf->substr(from);
      if (decode->bytes) text = text.substr(0, *decode->bytes);
      decoded = DecodeBase64Lenient(text);
    }
    if (decoded.empty()) return false;
    std::optional<std::string> saved = std::move(state.base64);
    size_t saved_cursor = state.cursor[BufferIndex(Buffer::kBase64Data)];
    state.base64 = std::move(decoded);
    state.cursor[BufferIndex(Buffer::kBase64Data)] = 0;
    if (Eval(state, index + 1)) return true;
    state.base64 = std::move(saved);
    state.cursor[BufferIndex(Buffer::kBase64Data)] = saved_cursor;
    return false;
  }
  if (!Holds(state, detection)) return false;
  return Eval(state, index + 1);
}

bool Matcher::Holds(const State& state, const rules::Detection& detection) const {
  if (const auto* isdataat = std::get_if<rules::IsDataAt>(&detection)) {
    std::optional<std::string_view> buf = state.Get(isdataat->buffer);
    if (!buf) return false;
    size_t cursor = state.cursor[BufferIndex(isdataat->buffer)];
    bool present = isdataat->relative ? cursor + isdataat->position <= buf->size()
                                      : isdataat->position < buf->size();
    if (present == isdataat->negated) return false;
    return true;
  }
  if (const auto* test = std::get_if<rules::ByteTest>(&detection)) {
    std::optional<std::string_view> buf = state.Get(test->buffer);
    if (!buf) return false;
    int64_t at =
        (test->relative ? static_cast<int64_t>(state.cursor[BufferIndex(test->buffer)]) : 0) +
        test->offset;
    if (at < 0 || static_cast<size_t>(at) + test->bytes > buf->size()) return false;
    std::string_view field = buf->substr(static_cast<size_t>(at), test->bytes);
    uint64_t value = 0;
    if (test->string_base) {
      if (!ParseDigits(field, *test->string_base, &value)) return false;
    } else {
      for (size_t i = 0; i < field.size(); ++i) {
        size_t k = test->endian == rules::Endian::kBig ? i : field.size() - 1 - i;
        value = (value << 8) | static_cast<uint8_t>(field[k]);
      }
    }
    if (test->bitmask) {
      value &= *test->bitmask;
      if (*test->bitmask != 0) value >>= __builtin_ctzll(*test->bitmask);
    }
    bool result = false;
    switch (test->op) {
      case rules::ByteTestOperator::kLess:
        result = value < test->value;
        break;
      case rules::ByteTestOperator::kGreater:
        result = value > test->value;
        break;
      case rules::ByteTestOperator::kEqual:
        result = value == test->value;
        break;
      case rules::ByteTestOperator::kLessEqual:
        result = value <= test->value;
        break;
      case rules::ByteTestOperator::kGreaterEqual:
        result = value >= test->value;
        break;
      case rules::ByteTestOperator::kAnd:
        result = (value & test->value) != 0;
        break;
      case rules::ByteTestOperator::kOr:
        result = (value ^ test->value) != 0;
        break;
    }
    if (result == test->negated) return false;
    return true;
  }
  const auto& size = std::get<rules::BufferSize>(detection);
  std::optional<std::string_view> buf = state.Get(size.buffer);
  return buf && size.test.Matches(buf->size());
}

Matcher::Window Matcher::ContentWindow(const rules::ContentMatch& content, size_t length,
                                       size_t cursor) {
  const size_t plen = content.pattern.size();
  int64_t start = 0;
  int64_t end = static_cast<int64_t>(length);
  if (content.startswith) {
    end = static_cast<int64_t>(plen);
  } else if (content.distance || content.within) {
    // Both count from the end of the previous match (Snort's reading, which
    // the parser's "leaves no room" check also follows).
    start = static_cast<int64_t>(cursor) + content.distance.value_or(0);
    if (content.within) end = static_cast<int64_t>(cursor) + *content.within;
  } else {
    start = content.offset.value_or(0);
    if (content.depth) end = start + *content.depth;
  }
  start = std::max<int64_t>(start, 0);
  end = std::min<int64_t>(end, static_cast<int64_t>(length));
  if (content.endswith) {
    // Only an occurrence ending at the buffer's end counts.
    if (end < static_cast<int64_t>(length) ||
        static_cast<int64_t>(length - std::min(length, plen)) < start) {
      start = end + 1;
    } else {
      start = static_cast<int64_t>(length - plen);
    }
  }
  return {start, end};
}

size_t Matcher::Find(const rules::ContentMatch& content, std::string_view buf, Window window,
                     int64_t from) {
  if (from > window.end) return std::string_view::npos;
  return FindPattern(buf, content.pattern, static_cast<size_t>(from),
                     static_cast<size_t>(window.end), content.nocase);
}

bool Matcher::EvalContent(State& state, size_t index, const rules::ContentMatch& content) const {
  std::optional<std::string_view> buf = state.Get(content.buffer);
  if (!buf) return false;
  size_t& cursor = state.cursor[BufferIndex(content.buffer)];
  const Window window = ContentWindow(content, buf->size(), cursor);
  if (content.negated) {
    if (Find(content, *buf, window, window.start) != std::string_view::npos) return false;
    return Eval(state, index + 1);
  }
  const size_t saved = cursor;
  for (size_t pos = Find(content, *buf, window, window.start); pos != std::string_view::npos;
       pos = Find(content, *buf, window, static_cast<int64_t>(pos) + 1)) {
    cursor = pos + content.pattern.size();
    if (Eval(state, index + 1)) return true;
    if (state.aborted) break;
  }
  cursor = saved;
  return false;
}

bool Matcher::EvalPcre(State& state, size_t index, const rules::PcreMatch& pcre) const {
  std::optional<std::string_view> buf = state.Get(pcre.buffer);
  if (!buf) return false;
  const CompiledRegex& regex = *regexes_[index];
  size_t& cursor = state.cursor[BufferIndex(pcre.buffer)];
  // A relative pcre sees the buffer from the cursor on, so `^` anchors there,
  // as in Suricata.
  const size_t base = pcre.modifiers.relative ? std::min(cursor, buf->size()) : 0;
  std::string_view subject = buf->substr(base);
  size_t begin = 0;
  size_t end = 0;
  CompiledRegex::Result result = regex.Search(subject, 0, &begin, &end);
  if (result == CompiledRegex::Result::kError) {
    state.counters->pcre_errors++;
    return false;
  }
  if (pcre.negated) {
    if (result == CompiledRegex::Result::kMatch) return false;
    return Eval(state, index + 1);
  }
  const size_t saved = cursor;
  while (result == CompiledRegex::Result::kMatch) {
    cursor = base + end;
    if (Eval(state, index + 1)) return true;
    if (state.aborted || begin + 1 > subject.size()) break;
    result = regex.Search(subject, begin + 1, &begin, &end);
    if (result == CompiledRegex::Result::kError) state.counters->pcre_errors++;
  }
  cursor = saved;
  return false;
}

}  // namespace popguard::detect
