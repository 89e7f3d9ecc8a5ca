#include "agent/detect/kernel_plan.h"

#include <algorithm>
#include <array>
#include <optional>
#include <string_view>
#include <utility>

namespace popguard::detect {

namespace {

// The first line a server sends may be this long (RFC 2449 section 4).
constexpr uint32_t kServerLineLimit = 512;

constexpr std::array<std::pair<std::string_view, pg_verb>, PG__VERB_COUNT - 1> kVerbs = {{
    {"USER", PG_VERB_USER}, {"PASS", PG_VERB_PASS}, {"APOP", PG_VERB_APOP},
    {"AUTH", PG_VERB_AUTH}, {"STAT", PG_VERB_STAT}, {"LIST", PG_VERB_LIST},
    {"RETR", PG_VERB_RETR}, {"DELE", PG_VERB_DELE}, {"NOOP", PG_VERB_NOOP},
    {"RSET", PG_VERB_RSET}, {"QUIT", PG_VERB_QUIT}, {"TOP", PG_VERB_TOP},
    {"UIDL", PG_VERB_UIDL}, {"CAPA", PG_VERB_CAPA}, {"STLS", PG_VERB_STLS},
}};

// A rule that is exactly "this verb, arguments longer than N" (nothing
// else to match, so every such line matches it): the verb and N.
std::optional<std::pair<size_t, uint64_t>> VerbArgumentLength(const rules::Rule& rule) {
  std::optional<size_t> verb;
  std::optional<uint64_t> longer_than;
  for (const rules::Detection& d : rule.detections) {
    const auto* content = std::get_if<rules::ContentMatch>(&d);
    const auto* size = std::get_if<rules::BufferSize>(&d);
    const auto* at = std::get_if<rules::IsDataAt>(&d);
    if (content && content->buffer == rules::Buffer::kPop3Command && !content->negated &&
        !verb) {
      for (size_t i = 0; i < kVerbs.size(); ++i) {
        if (kVerbs[i].first == content->pattern) verb = i;
      }
      if (!verb) return std::nullopt;
    } else if (size && size->buffer == rules::Buffer::kPop3Command) {
      // bsize on the verb only pins it to exactly the content.
    } else if (size && size->buffer == rules::Buffer::kPop3Args && !longer_than &&
               (size->test.op == rules::Comparison::kGreater ||
                (size->test.op == rules::Comparison::kGreaterEqual && size->test.value > 0))) {
      longer_than = size->test.op == rules::Comparison::kGreater ? size->test.value
                                                                 : size->test.value - 1;
    } else if (at && at->buffer == rules::Buffer::kPop3Args && !at->relative && !at->negated &&
               !longer_than) {
      longer_than = at->position;
    } else {
      return std::nullopt;
    }
  }
  if (!verb || !longer_than || rule.dsize || !rule.flowbits.empty()) return std::nullopt;
  return std::pair(*verb, *longer_than);
}

}  // namespace

pg_config SmallestBudgets(pg_config base) {
  base.flow_budget_burst = kMinFlowBudgetBurst;
  base.flow_budget_rate = kMinFlowBudgetRate;
  base.global_budget_burst = kMinGlobalBudgetBurst;
  base.global_budget_rate = kMinGlobalBudgetRate;
  return base;
}

KernelPlan PlanKernel(const std::vector<rules::Rule>& rules, pg_config base) {
  KernelPlan plan;
  plan.config = base;
  plan.config.body_inspection = 0;
  plan.config.report_syn = 0;
  plan.config.server_line_threshold = kServerLineLimit;
  for (const rules::Rule& rule : rules) {
    if (rule.flags) {
      plan.config.report_syn = 1;
      if (plan.config.syn_budget_burst == 0) {
        plan.config.syn_budget_burst = kSynBudgetBurst;
        plan.config.syn_budget_rate = kSynBudgetRate;
      }
      plan.notes.push_back("sid " + std::to_string(rule.sid) +
                           ": tests TCP flags, so the kernel reports every client SYN");
      continue;
    }
    const auto shape = VerbArgumentLength(rule);
    if (!shape) continue;
    const auto [index, longer_than] = *shape;
    const std::string_view verb = kVerbs[index].first;
    // The longest line the rule lets through: verb, one blank, N bytes of
    // arguments, CR LF. Longer lines have longer arguments, or padding no
    // client sends (extra blanks); the kernel counts bytes, not arguments.
    const auto limit =
        static_cast<uint32_t>(std::min<uint64_t>(verb.size() + 1 + longer_than + 2, UINT32_MAX));
    const pg_verb id = kVerbs[index].second;
    const bool drops = rule.header.action == rules::Action::kDrop ||
                       rule.header.action == rules::Action::kReject;
    uint32_t& slot = drops ? plan.config.verb_hard_limit[id] : plan.config.verb_threshold[id];
    if (slot == 0 || limit < slot) slot = limit;
    plan.notes.push_back("sid " + std::to_string(rule.sid) + ": " + std::string(verb) +
                         " lines over " + std::to_string(limit) + " bytes " +
                         (drops ? "are dropped in the kernel in prevent mode"
                                : "raise an anomaly in the kernel"));
  }
  return plan;
}

}  // namespace popguard::detect
