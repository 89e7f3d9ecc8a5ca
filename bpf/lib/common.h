/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Maps, counters, clock and configuration shared by every hook. */
#ifndef PG_LIB_COMMON_H
#define PG_LIB_COMMON_H

#include <stdbool.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "../popguard.h"

/* Payload is processed in windows copied to per-CPU scratch memory, so the
 * same code serves linear and paged data at every hook. */
#define PG_WIN 4096
#define PG_WIN_MASK (PG_WIN - 1)
#define PG_MAX_WINDOWS (PG_MAX_SEGMENT / PG_WIN)


/*
 * Per-packet state in per-CPU scratch memory. Loop state lives here rather
 * than on the stack on purpose: the verifier sees values loaded from a map
 * as unknown, so loop bodies verify once instead of once per path.
 */
struct pg_pktinfo {
	struct pg_flow_key key;
	__u64 now;
	__u32 seg_seq;     /* sequence number of payload byte 0 */
	__u32 gap_seq;     /* PG_AN_GAP: the first byte that did not come */
	__u32 seg_len;     /* payload length */
	__u32 win_base;    /* payload offset of buf[0] */
	__u32 win_len;     /* valid bytes in buf */
	__u32 base_off;    /* packet offset of the region being walked */
	__u32 total;       /* its length */
	__u32 from;        /* raw sends: first byte to send */
	__u32 pos;         /* line walk: next byte in the window */
	__u32 res;         /* accumulated PG_WR_* result */
	__u32 scan_pos;    /* body scan: next byte */
	__u32 scan_end;
	__u32 scan_res;    /* body scan: PG_SCAN_* result */
	__u32 tls_off;     /* TLS walk: next payload byte */
	__u8 hook;
	__u8 dir;
	__u8 raw_type;     /* record type for raw sends */
	__u8 raw_flags;    /* record flags for raw sends */
	__u8 scan_match;   /* body scan: terminator automaton state */
	__u8 injected;     /* client window: STLS injection already reported */
	__u8 pad[2];
};

/* Headers of the packet being inspected (lib/parse.h). */
struct pg_parsed {
	__u32 saddr[4];
	__u32 daddr[4];
	__u32 l3_off;
	__u32 payload_off;
	__u32 ip_end;       /* end of the IP datagram per its header; 0 if it says 0 */
	__u32 seq;
	__u32 ack;
	__u16 sport;        /* network byte order */
	__u16 dport;
	__u8 family;
	__u8 tcp_flags;
};

/* bpf_loop context: only pointers, whose types the verifier keeps. */
struct pg_loop_ctx {
	void *ctx;
	struct pg_flow *flow;
};

/* The record being sent (lib/events.h), at its largest. */
struct pg_record {
	struct pg_event_head head;
	__u8 body[sizeof(struct pg_flow_key) + PG_EVENT_DATA];
};

/* Flow ids, handed out across CPUs and hooks. */
__u64 pg_next_flow_id;

struct pg_scratch {
	struct pg_pktinfo info;
	struct pg_record rec;
	/* Budget holder for events with no flow entry (fragments, flows the
	 * map could not take): a per-CPU budget shared by all of them. */
	struct pg_flow orphan_flow;
	struct pg_flow new_flow;     /* template for a flow being created */
	struct pg_parsed parsed;
	/* Slack past the window lets fixed-size reads at any in-window offset
	 * stay in bounds for the verifier; bytes there are stale. */
	__u8 buf[PG_WIN + PG_EVENT_DATA];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pg_scratch);
} pg_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PG_CNT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} pg_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pg_config);
} pg_config SEC(".maps");

/*
 * The configured ports: enum pg_port_kind, 0 for any other port, indexed by
 * the port as it sits in the TCP header (network byte order read as a
 * native u16). A global array in its own section, which libbpf makes a
 * one-entry array map the agent writes through mmap: the non-POP3 fast
 * path reads it with one load per port, no lookup, no byte swap.
 */
__u8 pg_port_kind[65536] SEC(".data.ports");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PG_MAX_FLOWS);
	__type(key, struct pg_flow_key);
	__type(value, struct pg_flow);
} pg_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct pg_flow_key);
	__type(value, struct pg_block);
} pg_block_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct pg_addr_key);
	__type(value, struct pg_block);
} pg_block_addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PG_BUDGET__MAX);
	__type(key, __u32);
	__type(value, struct pg_budget);
} pg_global_budget SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct pg_flow_key);
	__type(value, struct pg_resync);
} pg_resync SEC(".maps");

/* State the kernel and the agent both write, apart from pg_config, which
 * only the agent writes. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pg_runtime);
} pg_runtime SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} pg_events SEC(".maps");

static __always_inline void pg_count(__u32 idx, __u64 n)
{
	__u64 *c = bpf_map_lookup_elem(&pg_counters, &idx);

	if (c)
		*c += n;
}

static __always_inline struct pg_config *pg_cfg(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&pg_config, &zero);
}

static __always_inline struct pg_scratch *pg_scr(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&pg_scratch, &zero);
}

/* The packet's time, read on first use: most packets (body bytes, TLS
 * records) never need it, and the clock is a helper call. */
static __always_inline __u64 pg_now(struct pg_scratch *s)
{
	struct pg_config *cfg;

	if (s->info.now)
		return s->info.now;
	cfg = pg_cfg();
	if (cfg && cfg->clock_mode == PG_CLOCK_FIXED)
		s->info.now = cfg->clock_ns;
	else
		s->info.now = bpf_ktime_get_ns();
	return s->info.now;
}

/* The blocklists are looked up only when something was ever put in them:
 * three hash lookups per POP3 packet otherwise. */
static __always_inline int pg_blocklist_active(void)
{
	__u32 zero = 0;
	struct pg_runtime *rt = bpf_map_lookup_elem(&pg_runtime, &zero);

	return rt && rt->blocklist_active;
}

static __always_inline void pg_set_blocklist_active(void)
{
	__u32 zero = 0;
	struct pg_runtime *rt = bpf_map_lookup_elem(&pg_runtime, &zero);

	if (rt && !rt->blocklist_active)
		rt->blocklist_active = 1;
}

/* Serial-number arithmetic (RFC 1982) for TCP sequence numbers. */
static __always_inline int seq_before(__u32 a, __u32 b)
{
	return (__s32)(a - b) < 0;
}

static __always_inline int seq_after(__u32 a, __u32 b)
{
	return (__s32)(b - a) < 0;
}

#endif /* PG_LIB_COMMON_H */
