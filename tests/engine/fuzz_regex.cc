// libFuzzer entry for the engine's own regex subset (agent/detect/dfa.h)
// against PCRE2 itself: for any regex PCRE2 accepts and any subject, an
// AnchoredDfa that builds must say what PCRE2 says, and a StartScreen that
// builds must never turn away a subject PCRE2 matches. Either being wrong
// would lose detections, so each disagreement traps.
//
// Input: one byte of modifiers (bit 0 /i, bit 1 /s, bit 2 /A), the regex,
// a NUL, the subject. Seeds (regex_seeds/): the shipped rules' response and
// USER regexes and regexes that use each construct of the subset.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "agent/detect/dfa.h"
#include "agent/detect/matcher.h"

namespace {

// PCRE2's verdict from offset 0, or nullopt when it gives up (match limit).
std::optional<bool> Pcre2Matches(const popguard::rules::PcreMatch& pcre, std::string_view subject) {
  int code = 0;
  PCRE2_SIZE at = 0;
  pcre2_code* compiled =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pcre.regex.data()), pcre.regex.size(),
                    popguard::detect::Pcre2Options(pcre.modifiers), &code, &at, nullptr);
  if (!compiled) return std::nullopt;
  pcre2_match_data* data = pcre2_match_data_create_from_pattern(compiled, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  pcre2_set_match_limit(context, 100000);
  pcre2_set_depth_limit(context, 10000);
  const int rc = pcre2_match(compiled, reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(),
                             0, 0, data, context);
  pcre2_match_context_free(context);
  pcre2_match_data_free(data);
  pcre2_code_free(compiled);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) return std::nullopt;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  const size_t nul = rest.find('\0');
  if (nul == std::string_view::npos) return 0;
  popguard::rules::PcreMatch pcre;
  pcre.regex = std::string(rest.substr(0, nul));
  pcre.modifiers.caseless = data[0] & 1;
  pcre.modifiers.dotall = data[0] & 2;
  pcre.modifiers.anchored = data[0] & 4;
  const std::string_view subject = rest.substr(nul + 1);

  std::unique_ptr<popguard::detect::AnchoredDfa> dfa =
      popguard::detect::AnchoredDfa::Build({&pcre});
  std::unique_ptr<popguard::detect::StartScreen> screen =
      popguard::detect::StartScreen::Build(pcre);
  if (!dfa && !screen) return 0;
  const std::optional<bool> want = Pcre2Matches(pcre, subject);
  if (!want) return 0;
  if (dfa && (dfa->Matches(subject) != 0) != *want) __builtin_trap();
  if (screen && *want && !screen->MayMatch(subject)) __builtin_trap();
  return 0;
}
