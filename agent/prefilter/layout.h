// The kernel/user ABI: bpf/popguard.h is the one definition; these checks
// make a layout change that the other side would misread fail to compile.
#pragma once

#include <cstddef>

#include "bpf/popguard.h"

static_assert(sizeof(pg_flow_key) == 40);
static_assert(offsetof(pg_flow_key, client_port) == 32);
static_assert(offsetof(pg_flow_key, family) == 36);
static_assert(sizeof(pg_event_head) == 16);
static_assert(offsetof(pg_event_head, seq) == 8);
static_assert(offsetof(pg_event_head, type) == 12);
static_assert(offsetof(pg_event_head, meta) == 14);
static_assert(PG_AN__MAX <= 32, "the anomaly has five bits of pg_event_head.meta");
static_assert(PG_HOOK__MAX <= 4, "the hook has two bits of pg_event_head.meta");
static_assert(sizeof(pg_dir_state) == 40);
static_assert(sizeof(pg_flow) == 2 * sizeof(pg_dir_state) + 56);
static_assert(offsetof(pg_flow, resync_gen) == 120);
static_assert(offsetof(pg_flow, id) == 128);
static_assert(sizeof(pg_resync) == 24);
static_assert(offsetof(pg_resync, respq) == 12);
static_assert(offsetof(pg_resync, q_len) == 12 + PG_RESPQ_LEN);
static_assert(offsetof(pg_flow, respq) == 104);
static_assert(sizeof(pg_config) == 200);
static_assert(offsetof(pg_config, report_syn) == 184);
static_assert(offsetof(pg_config, clock_ns) == 168);
static_assert(sizeof(pg_block) == 8);
static_assert(sizeof(pg_runtime) == 8);
static_assert(sizeof(pg_addr_key) == 20);
static_assert(PG_CNT_PAYLOAD_BYTES_TO_SERVER ==
              PG_CNT_PKT + int{PG_HOOK__MAX} * int{PG_CLASS__MAX});
static_assert(PG__VERB_COUNT <= PG_VERB_MAX);
static_assert((PG_VERB_MAX & (PG_VERB_MAX - 1)) == 0, "verb index is masked");
static_assert((PG_RESPQ_LEN & (PG_RESPQ_LEN - 1)) == 0, "queue index is masked");
