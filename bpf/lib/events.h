/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Ring-buffer output under the per-flow and global budgets. Every record
 * that is not sent is counted by the reason it was not.
 */
#ifndef PG_LIB_EVENTS_H
#define PG_LIB_EVENTS_H

#include "common.h"

/* What to send; passed by pointer because BPF functions take five args. */
struct pg_emit_req {
	__u32 buf_off;   /* first byte in the scratch window */
	__u32 len;       /* bytes to send (several records if long) */
	__u8 type;
	__u8 flags;
	__u8 anomaly;
	__u8 pad;
};

/* Token bucket: refill `rate` per second up to `burst`; burst 0 = unlimited.
 * Returns 1 when a token was taken. */
static __always_inline int pg_take_token(__u64 *last_ns, __u64 *tokens, __u32 burst, __u32 rate,
					 __u64 now)
{
	if (!burst)
		return 1;
	if (!*last_ns || now + 1000000000ull < *last_ns) {
		/* First use, or the clock went back (a new capture in replay). */
		*last_ns = now;
		*tokens = burst;
	} else if (now > *last_ns) {
		__u64 refill = (now - *last_ns) / 1000 * rate / 1000000;

		if (refill) {
			*tokens += refill;
			*last_ns = now;
		}
	}
	if (*tokens > burst)
		*tokens = burst;
	if (!*tokens)
		return 0;
	*tokens -= 1;
	return 1;
}

/*
 * Sends the record in s->rec: its head, filled by the caller, then the flow
 * key if the agent does not know the flow's id yet, then n bytes from src.
 * A flow of 0 (no state) sends the key every time. Returns 1 when sent;
 * a flow whose record could not go is marked as having lost one.
 */
static __always_inline int pg_output(struct pg_scratch *s, struct pg_flow *flow, const __u8 *src,
				     __u32 n)
{
	struct pg_record *r = &s->rec;
	__u32 size = sizeof(r->head) + n, id;
	bool key;

	/* Records carry 32 bits of the id. A flow that has lived through 2^31
	 * newer ones takes a fresh id and sends its key again, so no two live
	 * flows ever go up under the same 32 bits. */
	if (flow && flow->id && (__s64)(pg_next_flow_id - flow->id) >= (1ll << 31)) {
		flow->id = __sync_fetch_and_add(&pg_next_flow_id, 1) + 1;
		flow->key_sent = 0;
	}
	id = flow ? (__u32)flow->id : 0;
	key = !id || !flow->key_sent;

	r->head.flow_id = id;
	/* Constant-size copies; the record's size says how much of them counts. */
	if (key) {
		r->head.type |= PG_EVH_KEY;
		__builtin_memcpy(r->body, &s->info.key, sizeof(s->info.key));
		__builtin_memcpy(r->body + sizeof(s->info.key), src, PG_EVENT_DATA);
		size += sizeof(s->info.key);
	} else {
		__builtin_memcpy(r->body, src, PG_EVENT_DATA);
	}
	/* Bounds for the verifier: callers never pass more. */
	if (n > PG_EVENT_DATA || size > sizeof(*r))
		return 0;
	if (bpf_ringbuf_output(&pg_events, r, size, 0)) {
		pg_count(PG_CNT_RINGBUF_FULL, 1);
		if (flow)
			flow->lost_records = 1;
		return 0;
	}
	if (key && id)
		flow->key_sent = 1;
	pg_count(PG_CNT_EVENTS, 1);
	pg_count(PG_CNT_EVENT_BYTES, n);
	pg_count(PG_CNT_RECORD_BYTES, (size + BPF_RINGBUF_HDR_SZ + 7) & ~7u);
	return 1;
}

static __always_inline void pg_record_head(struct pg_scratch *s, __u32 seq, __u8 type, __u8 flags,
					   __u8 anomaly)
{
	struct pg_event_head *h = &s->rec.head;

	h->ts_us = pg_now(s) / 1000;
	h->seq = seq;
	h->type = type;
	h->flags = flags;
	h->meta = PG_EVH_META(s->info.dir, s->info.hook, anomaly);
	h->pad = 0;
}

/* Global budget, per CPU. Returns 1 when the record may go. A crossing is
 * reported once per crossing with an anomaly record. */
static __always_inline int pg_global_budget_ok(struct pg_scratch *s, const struct pg_config *cfg);

/* Anomaly records carry the key and no data: the flow may have no state. */
static __always_inline int pg_anomaly_record(struct pg_scratch *s, __u32 anomaly, __u32 flags)
{
	pg_record_head(s, anomaly == PG_AN_GAP ? s->info.gap_seq : s->info.seg_seq, PG_EV_ANOMALY,
		       flags, anomaly);
	return pg_output(s, 0, s->buf, 0);
}

static __always_inline int pg_global_budget_ok(struct pg_scratch *s, const struct pg_config *cfg)
{
	__u32 idx = PG_BUDGET_RECORDS;
	struct pg_budget *b;

	if (!cfg->global_budget_burst)
		return 1;
	b = bpf_map_lookup_elem(&pg_global_budget, &idx);
	if (!b)
		return 1;
	if (pg_take_token(&b->last_ns, &b->tokens, cfg->global_budget_burst,
			  cfg->global_budget_rate, pg_now(s))) {
		b->tripped = 0;
		return 1;
	}
	pg_count(PG_CNT_BUDGET_GLOBAL, 1);
	if (!b->tripped) {
		b->tripped = 1;
		pg_count(PG_CNT_ANOMALIES, 1);
		pg_anomaly_record(s, PG_AN_GLOBAL_BUDGET, 0);
	}
	return 0;
}

/* Anomaly records bypass the per-flow budget (a flow blowing its budget is
 * itself what they report) but not the global one. */
__noinline int pg_emit_anomaly(__u32 anomaly, __u32 flags)
{
	struct pg_config *cfg = pg_cfg();
	struct pg_scratch *s = pg_scr();

	if (!s || !cfg)
		return 0;
	pg_count(PG_CNT_ANOMALIES, 1);
	if (!pg_global_budget_ok(s, cfg))
		return 0;
	return pg_anomaly_record(s, anomaly & 0xff, flags & 0xff);
}

/* Sends record i of an emit request. Returns 1 when the flow crossed its
 * budget just now. */
__noinline int pg_emit_chunk(struct pg_flow *flow, struct pg_emit_req *req, __u32 i)
{
	struct pg_config *cfg = pg_cfg();
	struct pg_scratch *s = pg_scr();
	__u32 off, n;
	__u8 flags;

	if (!flow || !req || !cfg || !s || i * PG_EVENT_DATA >= req->len)
		return 0;
	off = req->buf_off + i * PG_EVENT_DATA;
	n = req->len - i * PG_EVENT_DATA;
	flags = req->flags;
	if (i > 0)
		flags &= ~PG_EVF_FIRST;
	if (n > PG_EVENT_DATA) {
		n = PG_EVENT_DATA;
		flags &= ~(PG_EVF_LAST | PG_EVF_LINE_END);
	}
	if (!pg_take_token(&flow->budget_ns, &flow->budget_tokens, cfg->flow_budget_burst,
			   cfg->flow_budget_rate, pg_now(s))) {
		pg_count(PG_CNT_BUDGET_FLOW, 1);
		flow->lost_records = 1;
		if (flow->budget_tripped)
			return 0;
		flow->budget_tripped = 1;
		pg_emit_anomaly(PG_AN_FLOW_BUDGET, 0);
		return 1;
	}
	flow->budget_tripped = 0;
	if (!pg_global_budget_ok(s, cfg)) {
		flow->lost_records = 1;
		return 0;
	}
	pg_record_head(s, s->info.seg_seq + s->info.win_base + off, req->type, flags, req->anomaly);
	pg_output(s, flow, &s->buf[off & PG_WIN_MASK], n);
	return 0;
}

/*
 * Sends req->len bytes of the scratch window as consecutive records, each
 * charged to the flow's budget and the global one. Returns 1 when the flow
 * crossed its budget (the caller blocks it in prevent mode).
 */
__noinline int pg_emit(struct pg_flow *flow, struct pg_emit_req *req)
{
	int tripped = 0;
	__u32 i;

	if (!flow || !req)
		return 0;
	for (i = 0; i < PG_WIN / PG_EVENT_DATA + 1; i++) {
		if (i * PG_EVENT_DATA >= req->len)
			break;
		tripped |= pg_emit_chunk(flow, req, i);
	}
	return tripped;
}

#endif /* PG_LIB_EVENTS_H */
