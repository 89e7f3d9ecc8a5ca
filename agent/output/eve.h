// Alerts as Suricata EVE JSON records, one per line, the layout SIEMs and
// Suricata tooling already parse (DESIGN.md, "Public interfaces").
#pragma once

#include <cstdint>
#include <string>

#include "agent/detect/engine.h"

namespace popguard::output {

// What the sensor did about the alert: Suricata's `allowed` / `blocked`.
enum class AlertAction { kAllowed, kBlocked };

// One `event_type: alert` record, without a trailing newline.
std::string EveAlert(const detect::Alert& alert, AlertAction action);

// Suricata's timestamp form, "2026-11-27T01:02:03.123456+0000" (UTC).
std::string EveTimestamp(int64_t unix_ns);

// Suricata's flow_id: one number per connection, the same for both
// directions, stable within a run.
uint64_t FlowId(const detect::FlowTuple& tuple);

}  // namespace popguard::output
