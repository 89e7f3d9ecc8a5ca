// The kernel prefilter's configuration derived from the loaded rules
// (DESIGN.md, rule 1: the prefilter never hides what a rule could match),
// and what each rule costs in the kernel.
//
// Whatever the rules, every client byte, every server status line and SASL
// challenge, and every TLS record head goes up; no rule buffer reads
// message bodies, so bodies stay in the kernel. What rules change is the
// cheap early warning: a rule that tests the length of a command's
// arguments sets that verb's line threshold (an anomaly record when a line
// crosses it) and, for drop and reject rules, its hard limit (prevent mode
// drops the segment that crosses it in XDP, before the server sees it). A
// rule that tests TCP flags makes the kernel report every client SYN.
#pragma once

#include <string>
#include <vector>

#include "agent/rules/ast.h"
#include "bpf/popguard.h"

namespace popguard::detect {

// The smallest event budgets the agent configures: enough for any POP3
// session, bursts of long SASL lines included, so crossing one takes a
// flood (e.g. one byte per segment), and a flood is an alert (sid 9100021).
inline constexpr uint32_t kMinFlowBudgetBurst = 128;  // records
inline constexpr uint32_t kMinFlowBudgetRate = 32;    // records per second
inline constexpr uint32_t kMinGlobalBudgetBurst = 8192;
inline constexpr uint32_t kMinGlobalBudgetRate = 4096;

// The budget of SYN reports when the base sets none, per CPU: what a busy
// mail host's connection rate needs, well short of a SYN flood, which
// would otherwise fill the ring buffer. Reports held back are counted
// (PG_CNT_BUDGET_SYN).
inline constexpr uint32_t kSynBudgetBurst = 4096;
inline constexpr uint32_t kSynBudgetRate = 2048;  // per second

// `base` with the budgets set to those floors.
pg_config SmallestBudgets(pg_config base);

struct KernelPlan {
  pg_config config;
  // One line per rule that changes the kernel's configuration or costs more
  // than the default, e.g. "sid 9100002: USER lines over 261 bytes raise an
  // anomaly in the kernel".
  std::vector<std::string> notes;
};

// `base` (mode, budgets, clock) with the rule-derived fields filled in.
KernelPlan PlanKernel(const std::vector<rules::Rule>& rules, pg_config base);

}  // namespace popguard::detect
