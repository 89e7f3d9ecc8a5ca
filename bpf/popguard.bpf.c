// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * popguard kernel prefilter: one inspection core behind three hooks (XDP
 * ingress, TC egress, TC ingress), sharing one flow map. See DESIGN.md,
 * "Kernel prefilter: the rules it lives by".
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "lib/common.h"
#include "lib/events.h"
#include "lib/parse.h"
#include "lib/pop3.h"
#include "lib/tls.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";


static __always_inline long pg_load(void *ctx, const bool xdp, __u32 off, void *to, __u32 len)
{
	if (xdp)
		return bpf_xdp_load_bytes(ctx, off, to, len);
	return bpf_skb_load_bytes(ctx, off, to, len);
}

/* Copies the window starting at payload offset `start` of the region
 * [base_off, base_off + total) into scratch. Returns its length, 0 past
 * the end, or -1 if the packet could not be read. */
static __always_inline int pg_load_window(void *ctx, const bool xdp, struct pg_scratch *s,
					  __u32 start)
{
	__u32 total = s->info.total, len;

	if (start >= total)
		return 0;
	len = total - start;
	if (len > PG_WIN)
		len = PG_WIN;
	barrier_var(len);
	if (len == 0 || len > PG_WIN)
		return 0;
	if (pg_load(ctx, xdp, s->info.base_off + start, s->buf, len))
		return -1;
	s->info.win_base = start;
	s->info.win_len = len;
	return len;
}

/* Raw send, one window per step: bytes [from, total) of the region go up
 * as records of type raw_type with flags raw_flags. */
static __always_inline int pg_raw_step(void *ctx, const bool xdp, struct pg_flow *flow, __u32 w)
{
	struct pg_scratch *s = pg_scr();
	struct pg_emit_req req = {};
	__u32 start;
	int n;

	if (!s || !flow)
		return 1;
	start = s->info.from + w * PG_WIN;
	n = pg_load_window(ctx, xdp, s, start);
	if (n <= 0)
		return 1;
	req.type = s->info.raw_type;
	req.len = n;
	req.flags = s->info.raw_flags | (w == 0 ? PG_EVF_FIRST : 0) |
		    (start + n >= s->info.total ? PG_EVF_LAST : 0);
	pg_emit(flow, &req);
	return 0;
}

/* Framing, one window per step from payload offset s->info.from. An
 * escalation ends the walk with the rest of the region left for a raw
 * send from s->info.from. */
static __always_inline int pg_frame_step(void *ctx, const bool xdp, struct pg_flow *flow, __u32 w)
{
	struct pg_scratch *s = pg_scr();
	__u32 r, start;
	int n;

	if (!s || !flow)
		return 1;
	start = s->info.from + w * PG_WIN;
	n = pg_load_window(ctx, xdp, s, start);
	if (n == 0)
		return 1;
	if (n < 0) {
		pg_count(PG_CNT_MALFORMED_L4, 1);
		pg_escalate(&flow->dir[s->info.dir & 1]);
		s->info.from = start;
		s->info.res |= PG_WR_ESCALATE;
		return 1;
	}
	r = s->info.dir == PG_DIR_TO_SERVER ? pg_client_window(flow) : pg_server_window(flow);
	s->info.res |= r & (PG_WR_DROP | PG_WR_BLOCK);
	if (r & PG_WR_ESCALATE) {
		s->info.from = start + PG_WR_OFF(r);
		s->info.res |= PG_WR_ESCALATE;
		return 1;
	}
	return 0;
}

/*
 * TLS, one record header per step over the payload region, for the
 * direction in s->info.dir. Ends with PG_WR_ESCALATE in s->info.res when
 * it meets something it cannot follow.
 */
static __always_inline int pg_tls_step(void *ctx, const bool xdp, struct pg_flow *flow)
{
	struct pg_scratch *s = pg_scr();
	struct pg_emit_req req = {};
	struct pg_dir_state *d;
	__u32 off, len, have, need, rlen, start, take;
	__u8 hdr[8] = {}, fresh[8] = {};

	if (!s || !flow)
		return 1;
	d = &flow->dir[s->info.dir & 1];
	off = s->info.tls_off;
	len = s->info.total;
	if (d->tls_left) {
		__u32 skip = len - off < d->tls_left ? len - off : d->tls_left;

		off += skip;
		d->tls_left -= skip;
	}
	s->info.tls_off = off;
	if (off >= len)
		return 1;
	have = d->tls_hdr_len & 3;
	need = 5 - have;
	start = off;
	__builtin_memcpy(hdr, d->tls_hdr, 4);
	take = len - off < need ? len - off : need;
	barrier_var(take);
	if (take == 0 || take > 5)
		return 1;
	if (pg_load(ctx, xdp, s->info.base_off + off, fresh, take)) {
		s->info.res |= PG_WR_ESCALATE;
		return 1;
	}
	/* Append the fresh bytes after the ones kept from the last segment. */
	switch (have) {
	case 0: __builtin_memcpy(hdr, fresh, 5); break;
	case 1: __builtin_memcpy(hdr + 1, fresh, 4); break;
	case 2: __builtin_memcpy(hdr + 2, fresh, 3); break;
	default: __builtin_memcpy(hdr + 3, fresh, 2); break;
	}
	off += take;
	s->info.tls_off = off;
	if (take < need) {
		/* The header is split across segments: keep what is here. */
		__builtin_memcpy(d->tls_hdr, hdr, 4);
		d->tls_hdr_len = have + take;
		return 1;
	}
	d->tls_hdr_len = 0;
	if (!pg_tls_header_ok(hdr)) {
		pg_emit_anomaly(PG_AN_TLS_MALFORMED, 0);
		pg_escalate(d);
		s->info.res |= PG_WR_ESCALATE;
		return 1;
	}
	rlen = (__u32)hdr[3] << 8 | hdr[4];
	d->tls_left = rlen;
	if (hdr[0] == PG_TLS_HEARTBEAT)
		pg_emit_anomaly(PG_AN_TLS_HEARTBEAT, 0);
	if (hdr[0] == PG_TLS_HANDSHAKE) {
		/* The head of a handshake record: this segment's bytes of it, up
		 * to one record's worth. */
		__u32 n = len - start;

		if (n > PG_EVENT_DATA)
			n = PG_EVENT_DATA;
		barrier_var(n);
		if (n > 0 && n <= PG_EVENT_DATA && !pg_load(ctx, xdp, s->info.base_off + start, s->buf, n)) {
			s->info.win_base = start;
			s->info.win_len = n;
			req.type = PG_EV_TLS_RECORD;
			req.flags = PG_EVF_FIRST | PG_EVF_LAST;
			req.len = n;
			pg_emit(flow, &req);
		}
	}
	return 0;
}

/* The walks become bpf_loop callbacks, one set per context type. */
#define PG_HOOK_FUNCS(sfx, is_xdp)                                                             \
	static int pg_raw_cb_##sfx(__u32 i, void *data)                                        \
	{                                                                                      \
		struct pg_loop_ctx *lc = data;                                                 \
		return pg_raw_step(lc->ctx, is_xdp, lc->flow, i);                              \
	}                                                                                      \
	static int pg_frame_cb_##sfx(__u32 i, void *data)                                      \
	{                                                                                      \
		struct pg_loop_ctx *lc = data;                                                 \
		return pg_frame_step(lc->ctx, is_xdp, lc->flow, i);                            \
	}                                                                                      \
	static int pg_tls_cb_##sfx(__u32 i, void *data)                                        \
	{                                                                                      \
		struct pg_loop_ctx *lc = data;                                                 \
		return pg_tls_step(lc->ctx, is_xdp, lc->flow);                                 \
	}

PG_HOOK_FUNCS(xdp, true)
PG_HOOK_FUNCS(skb, false)

/* Body bytes read in place; global functions so each verifies once. */
__noinline __u32 pg_body_fast_xdp(struct xdp_md *ctx, __u8 *match, __u32 payload_off, __u32 len)
{
	if (!match)
		return 0;
	return pg_body_fast((void *)(long)ctx->data, (void *)(long)ctx->data_end, payload_off, len,
			    match);
}

__noinline __u32 pg_body_fast_skb(struct __sk_buff *ctx, __u8 *match, __u32 payload_off, __u32 len)
{
	if (!match)
		return 0;
	return pg_body_fast((void *)(long)ctx->data, (void *)(long)ctx->data_end, payload_off, len,
			    match);
}

static __always_inline __u32 pg_windows(__u32 len)
{
	return (len + PG_WIN - 1) / PG_WIN;
}

/* Sends [from, total) of the region at base_off up as `type` records. */
static __always_inline void pg_send_raw(void *ctx, const bool xdp, struct pg_scratch *s,
					struct pg_flow *flow, __u32 base_off, __u32 total,
					__u32 from, __u8 type, __u8 flags)
{
	struct pg_loop_ctx lc = { .ctx = ctx, .flow = flow };

	s->info.base_off = base_off;
	s->info.total = total;
	s->info.from = from;
	s->info.raw_type = type;
	s->info.raw_flags = flags;
	bpf_loop(pg_windows(total - from), xdp ? (void *)pg_raw_cb_xdp : (void *)pg_raw_cb_skb, &lc, 0);
}

/* Frames payload bytes [from, len) of an in-order segment; what the kernel
 * cannot frame goes up raw. Returns PG_WR_DROP / PG_WR_BLOCK bits. */
static __always_inline __u32 pg_frame(void *ctx, const bool xdp, struct pg_scratch *s,
				      struct pg_flow *flow, __u32 payload_off, __u32 len, __u32 from)
{
	struct pg_loop_ctx lc = { .ctx = ctx, .flow = flow };
	__u32 res;

	s->info.base_off = payload_off;
	s->info.total = len;
	s->info.from = from;
	s->info.res = 0;
	bpf_loop(pg_windows(len - from), xdp ? (void *)pg_frame_cb_xdp : (void *)pg_frame_cb_skb, &lc,
		 0);
	res = s->info.res;
	if (res & PG_WR_ESCALATE) {
		pg_count(PG_CNT_RAW_SEGMENTS, 1);
		pg_send_raw(ctx, xdp, s, flow, payload_off, len, s->info.from, PG_EV_RAW, 0);
	}
	return res;
}

/* Follows the TLS records of a segment; escalates what it cannot follow. */
static __always_inline void pg_tls(void *ctx, const bool xdp, struct pg_scratch *s,
				   struct pg_flow *flow, __u32 payload_off, __u32 len)
{
	struct pg_loop_ctx lc = { .ctx = ctx, .flow = flow };

	s->info.base_off = payload_off;
	s->info.total = len;
	s->info.tls_off = 0;
	s->info.res = 0;
	bpf_loop(PG_TLS_MAX_RECORDS, xdp ? (void *)pg_tls_cb_xdp : (void *)pg_tls_cb_skb, &lc, 0);
	if (!(s->info.res & PG_WR_ESCALATE) && s->info.tls_off < len) {
		/* More records in one packet than the kernel walks. */
		pg_escalate(&flow->dir[s->info.dir & 1]);
		s->info.res |= PG_WR_ESCALATE;
	}
	if (s->info.res & PG_WR_ESCALATE) {
		pg_count(PG_CNT_RAW_SEGMENTS, 1);
		pg_send_raw(ctx, xdp, s, flow, payload_off, len, 0, PG_EV_RAW, 0);
	}
}

static __always_inline int pg_blocked(const struct pg_flow_key *key, __u64 now)
{
	struct pg_addr_key ak = {};
	struct pg_block *b;
	int i;

	b = bpf_map_lookup_elem(&pg_block_flows, key);
	if (b) {
		if (!b->expires_ns || now < b->expires_ns)
			return PG_DROP_BLOCKED_FLOW + 1;
		bpf_map_delete_elem(&pg_block_flows, key);
	}
	ak.family = key->family;
#pragma unroll
	for (i = 0; i < 2; i++) {
		__builtin_memcpy(ak.addr, i ? key->server_addr : key->client_addr, 16);
		b = bpf_map_lookup_elem(&pg_block_addrs, &ak);
		if (!b)
			continue;
		if (!b->expires_ns || now < b->expires_ns)
			return PG_DROP_BLOCKED_SOURCE + 1;
		bpf_map_delete_elem(&pg_block_addrs, &ak);
	}
	return 0;
}

static __always_inline void pg_block_flow(const struct pg_config *cfg, const struct pg_flow_key *key,
					  __u64 now)
{
	struct pg_block b = {};

	if (cfg->mode != PG_MODE_PREVENT)
		return;
	b.expires_ns = cfg->blocklist_ttl_ns ? now + cfg->blocklist_ttl_ns : 0;
	if (!bpf_map_update_elem(&pg_block_flows, key, &b, BPF_ANY))
		pg_set_blocklist_active();
}

/* Counts a drop, or in detect mode a would-drop. Returns 1 to drop. */
static __always_inline int pg_verdict_drop(const struct pg_config *cfg, __u32 reason)
{
	if (cfg->mode == PG_MODE_PREVENT) {
		pg_count(PG_CNT_DROP + reason, 1);
		return 1;
	}
	pg_count(PG_CNT_WOULD_DROP + reason, 1);
	return 0;
}

static __always_inline struct pg_flow *pg_flow_new(struct pg_scratch *s, const struct pg_config *cfg,
						   __u8 port_kind)
{
	/* Built in scratch: a struct pg_flow is too big for the BPF stack. */
	struct pg_flow *f = &s->new_flow;
	struct pg_flow *fp;

	__builtin_memset(f, 0, sizeof(*f));
	f->created_ns = pg_now(s);
	f->id = __sync_fetch_and_add(&pg_next_flow_id, 1) + 1;
	f->respq[0] = PG_RK_GREETING;
	f->q_tail = 1;
	if (port_kind == PG_PORT_POP3_TLS) {
		f->implicit_tls = 1;
		f->phase = PG_PHASE_TLS;
	}
	if (bpf_map_update_elem(&pg_flows, &s->info.key, f, BPF_ANY)) {
		pg_count(PG_CNT_FLOW_CREATE_FAILED, 1);
		return 0;
	}
	fp = bpf_map_lookup_elem(&pg_flows, &s->info.key);
	if (!fp) {
		pg_count(PG_CNT_FLOW_CREATE_FAILED, 1);
		return 0;
	}
	/* An offer left from an earlier connection on the same addresses and
	 * ports must not meet this one. */
	bpf_map_delete_elem(&pg_resync, &s->info.key);
	pg_count(PG_CNT_FLOWS_CREATED, 1);
	return fp;
}

/* Reports a client's SYN for the rules that test TCP flags: the key (s->info)
 * and the flags byte. SYN reports have a budget of their own, so that a SYN
 * flood spends neither the records' budget nor the ring buffer; what it
 * holds back is counted. Not inlined: both programs share one copy. */
__noinline int pg_report_syn(__u32 seq, __u32 tcp_flags)
{
	struct pg_config *cfg = pg_cfg();
	struct pg_scratch *s = pg_scr();
	__u32 idx = PG_BUDGET_SYNS;
	struct pg_budget *b;

	if (!s || !cfg)
		return 0;
	b = bpf_map_lookup_elem(&pg_global_budget, &idx);
	if (b && !pg_take_token(&b->last_ns, &b->tokens, cfg->syn_budget_burst,
				cfg->syn_budget_rate, pg_now(s))) {
		pg_count(PG_CNT_BUDGET_SYN, 1);
		return 0;
	}
	s->buf[0] = tcp_flags & 0xff;
	pg_record_head(s, seq, PG_EV_SYN, 0, 0);
	return pg_output(s, 0, s->buf, 1);
}

/* Everything after classification for a POP3 TCP segment. Returns 1 to drop. */
static __always_inline int pg_tcp(void *ctx, const bool xdp, struct pg_scratch *s,
				  const struct pg_config *cfg, struct pg_parsed *p, __u64 pkt_len,
				  __u8 port_kind)
{
	struct pg_flow *flow;
	struct pg_dir_state *d;
	__u32 payload_len, res = 0, end, from = 0, overlap = 0;
	__u8 raw_flags = 0, dir = s->info.dir;
	int blocked, drop = 0;

	blocked = pg_blocklist_active() ? pg_blocked(&s->info.key, pg_now(s)) : 0;
	if (blocked && pg_verdict_drop(cfg, blocked - 1))
		return 1;

	if (p->payload_off > pkt_len) {
		pg_count(PG_CNT_MALFORMED_L4, 1);
		return 0;
	}
	payload_len = pkt_len - p->payload_off;
	/* Trust the IP length only to trim link-layer padding. */
	if (p->ip_end && p->ip_end < pkt_len) {
		if (p->ip_end < p->payload_off) {
			pg_count(PG_CNT_MALFORMED_L3, 1);
			return 0;
		}
		payload_len = p->ip_end - p->payload_off;
	}
	s->info.seg_seq = p->seq;
	s->info.seg_len = payload_len;
	pg_count(dir == PG_DIR_TO_SERVER ? PG_CNT_PAYLOAD_BYTES_TO_SERVER
					 : PG_CNT_PAYLOAD_BYTES_TO_CLIENT,
		 payload_len);

	flow = bpf_map_lookup_elem(&pg_flows, &s->info.key);
	if (p->tcp_flags & PG_TCP_SYN) {
		if (!(p->tcp_flags & PG_TCP_ACK) && dir == PG_DIR_TO_SERVER && cfg->report_syn)
			pg_report_syn(p->seq, p->tcp_flags);
		if (flow && (flow->dir[dir & 1].flags & PG_DF_HAVE_SEQ)) {
			/* A SYN or SYN-ACK for a direction whose sequence is
			 * known: a repeat of the one that set it changes
			 * nothing, and any other an established endpoint answers
			 * with a challenge ACK and discards, data and all (RFC
			 * 5961). Taking it would let a peer move where the kernel
			 * reads, or clear an escalation; the agent looks instead.
			 * (A new connection reusing the ports looks the same, and
			 * goes up raw.) */
			d = &flow->dir[dir & 1];
			if (p->seq + 1 + payload_len != d->next_seq)
				pg_escalate_dir(flow, dir);
			return 0;
		}
		if (!(p->tcp_flags & PG_TCP_ACK) || !flow) {
			/* A new connection, or a SYN-ACK whose SYN we missed. */
			if (!(p->tcp_flags & PG_TCP_ACK) || dir == PG_DIR_TO_CLIENT)
				flow = pg_flow_new(s, cfg, port_kind);
		}
		if (!flow)
			return 0;
		d = &flow->dir[dir & 1];
		d->next_seq = p->seq + 1 + payload_len;
		d->flags = PG_DF_HAVE_SEQ;
		if ((p->tcp_flags & PG_TCP_ACK) && !(flow->dir[(dir ^ 1) & 1].flags & PG_DF_HAVE_SEQ)) {
			flow->dir[(dir ^ 1) & 1].next_seq = p->ack;
			flow->dir[(dir ^ 1) & 1].flags |= PG_DF_HAVE_SEQ;
		}
		if (payload_len) {
			/* Data on a SYN (TCP Fast Open) is not framed: it goes up
			 * raw, and the framing of what follows is unsure. */
			s->info.seg_seq = p->seq + 1;
			pg_escalate_dir(flow, dir);
			pg_count(PG_CNT_RAW_SEGMENTS, 1);
			pg_send_raw(ctx, xdp, s, flow, p->payload_off, payload_len, 0, PG_EV_RAW, 0);
		}
		return 0;
	}
	if (!payload_len)
		return 0;

	if (!flow) {
		pg_count(PG_CNT_MIDSTREAM_MISS, 1);
		flow = pg_flow_new(s, cfg, port_kind);
		if (!flow) {
			pg_count(PG_CNT_RAW_SEGMENTS, 1);
			pg_send_raw(ctx, xdp, s, &s->orphan_flow, p->payload_off, payload_len, 0,
				    PG_EV_RAW, PG_EVF_NO_STATE);
			return 0;
		}
		flow->q_head = flow->q_tail; /* nothing is known to be pending */
		flow->dir[0].flags = PG_DF_ESCALATED;
		flow->dir[1].flags = PG_DF_ESCALATED;
		pg_count(PG_CNT_ESCALATIONS, 2);
		raw_flags |= PG_EVF_NO_STATE;
	}
	d = &flow->dir[dir & 1];
#ifdef PG_BENCH_REWIND
	/* Benchmark builds only: BPF_PROG_TEST_RUN repeats one packet, and
	 * each repeat must be the same in-order segment; a repeated command
	 * must not fill the response queue. */
	d->next_seq = p->seq;
	if (dir == PG_DIR_TO_SERVER)
		flow->q_head = flow->q_tail;
#endif
	if (dir == PG_DIR_TO_CLIENT) {
		if ((flow->dir[0].flags | d->flags) & PG_DF_ESCALATED)
			pg_try_resync(flow, &s->info.key, p->seq);
		/* Atomic: the client's hook may be escalating this direction. */
		if (!(d->flags & PG_DF_SPOKE))
			__sync_fetch_and_or(&d->flags, PG_DF_SPOKE);
	}
	if (!(d->flags & PG_DF_HAVE_SEQ)) {
		raw_flags |= PG_EVF_NO_STATE;
		d->next_seq = p->seq;
		d->flags |= PG_DF_HAVE_SEQ;
		pg_escalate_dir(flow, dir);
	}

	end = p->seq + payload_len;
	if (p->seq != d->next_seq) {
		if (seq_before(p->seq, d->next_seq)) {
			pg_count(PG_CNT_OVERLAP, 1);
			/* Once escalated the kernel frames nothing (after a gap,
			 * next_seq only marks the furthest byte seen): the agent
			 * reassembles, so the bytes go up as plain data. */
			if (!(d->flags & PG_DF_ESCALATED)) {
				raw_flags |= PG_EVF_OVERLAP;
				overlap = d->next_seq - p->seq;
			}
			/* Bytes past what was inspected were not framed. */
			if (seq_after(end, d->next_seq)) {
				pg_escalate_dir(flow, dir);
				d->next_seq = end;
			}
		} else {
			pg_count(PG_CNT_GAP, 1);
			raw_flags |= PG_EVF_GAP;
			s->info.gap_seq = d->next_seq;
			pg_emit_anomaly(PG_AN_GAP, 0);
			pg_escalate_dir(flow, dir);
			d->next_seq = end;
		}
	} else {
		d->next_seq = end;
	}
	if (p->tcp_flags & PG_TCP_FIN)
		d->next_seq += 1;

	if (payload_len > PG_MAX_SEGMENT) {
		pg_count(PG_CNT_OVERSIZE, 1);
		pg_emit_anomaly(PG_AN_OVERSIZE, 0);
		pg_escalate(d);
		payload_len = PG_MAX_SEGMENT;
	}

	if (raw_flags || (d->flags & PG_DF_ESCALATED)) {
		pg_count(PG_CNT_RAW_SEGMENTS, 1);
		/* Only the bytes already inspected are a retransmission (the
		 * agent checks them against what it has); the rest is new
		 * stream data and goes up without the overlap flag. */
		if (overlap && overlap < payload_len) {
			pg_send_raw(ctx, xdp, s, flow, p->payload_off, overlap, 0, PG_EV_RAW,
				    raw_flags);
			pg_send_raw(ctx, xdp, s, flow, p->payload_off, payload_len, overlap,
				    PG_EV_RAW, raw_flags & ~PG_EVF_OVERLAP);
		} else {
			pg_send_raw(ctx, xdp, s, flow, p->payload_off, payload_len, 0, PG_EV_RAW,
				    raw_flags);
		}
		return 0;
	}

	if (flow->phase == PG_PHASE_STLS_WAIT && dir == PG_DIR_TO_SERVER) {
		__u8 b[2] = {};

		if (payload_len >= 2 && !pg_load(ctx, xdp, p->payload_off, b, 2) &&
		    pg_is_tls_start(b)) {
			flow->phase = PG_PHASE_TLS;
			d->flags &= ~PG_DF_STLS_SENT;
		}
	}
	if (flow->phase == PG_PHASE_TLS) {
		pg_tls(ctx, xdp, s, flow, p->payload_off, payload_len);
		return 0;
	}

	if (dir == PG_DIR_TO_CLIENT && (d->flags & PG_DF_IN_BODY) && !cfg->body_inspection) {
		/* Most server bytes are body: scan them in place first. */
		from = xdp ? pg_body_fast_xdp(ctx, &d->body_match, p->payload_off, payload_len)
			   : pg_body_fast_skb(ctx, &d->body_match, p->payload_off, payload_len);
		if (from >= payload_len)
			return 0;
	}
	res = pg_frame(ctx, xdp, s, flow, p->payload_off, payload_len, from);
	if (res & PG_WR_BLOCK)
		pg_block_flow(cfg, &s->info.key, pg_now(s));
	if (res & PG_WR_DROP)
		drop = pg_verdict_drop(cfg, PG_DROP_LINE_LIMIT);
	return drop;
}

static __always_inline void pg_set_key(struct pg_flow_key *k, const __u32 *client,
				       const __u32 *server, __u16 client_port, __u16 server_port)
{
	__builtin_memcpy(k->client_addr, client, 16);
	__builtin_memcpy(k->server_addr, server, 16);
	k->client_port = client_port;
	k->server_port = server_port;
}

static __always_inline int pg_is_pop3_port(__u16 port_be)
{
	return pg_port_kind[port_be];
}

/*
 * Most packets a mail host sees are not POP3: untagged IPv4 or IPv6 with
 * no extension headers is classified here with a handful of loads and no
 * writes. Returns 1 when the packet is certainly not POP3 (and was
 * counted); anything unusual or POP3 goes on to the full parse.
 */
static __always_inline int pg_quick_non_pop3(void *data, void *data_end, __u32 counter)
{
	struct ethhdr *eth = data;
	struct tcphdr *tcp;

	if ((void *)(eth + 1) > data_end)
		return 0;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end || ip->version != 4 || ip->ihl < 5)
			return 0;
		if (ip->protocol != IPPROTO_TCP)
			goto not_pop3;
		if (ip->frag_off & bpf_htons(0x3fff))
			return 0;
		tcp = (void *)ip + ip->ihl * 4;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end || ip6->version != 6)
			return 0;
		if (ip6->nexthdr == IPPROTO_UDP || ip6->nexthdr == IPPROTO_ICMPV6)
			goto not_pop3;
		if (ip6->nexthdr != IPPROTO_TCP)
			return 0;
		tcp = (void *)(ip6 + 1);
	} else if (eth->h_proto == bpf_htons(ETH_P_8021Q) || eth->h_proto == bpf_htons(ETH_P_8021AD)) {
		return 0;
	} else {
		goto not_pop3;
	}
	if ((void *)(tcp + 1) > data_end || pg_is_pop3_port(tcp->source) ||
	    pg_is_pop3_port(tcp->dest))
		return 0;
not_pop3:
	pg_count(counter, 1);
	return 1;
}

/*
 * The inspection core. `data`/`data_end` is the linear part, `pkt_len`
 * the whole packet. Returns 1 to drop.
 */
static __always_inline int pg_inspect(void *ctx, const bool xdp, __u8 hook, void *data,
				      void *data_end, __u64 pkt_len, int *short_hdr)
{
	__u32 sport, dport, cls_base = PG_CNT_PKT + hook * PG_CLASS__MAX;
	struct pg_config *cfg;
	struct pg_scratch *s;
	struct pg_parsed *p;
	__u8 ks, kd, kind;
	int r;

	if (pg_quick_non_pop3(data, data_end, cls_base + PG_CLASS_NON_POP3))
		return 0;
	cfg = pg_cfg();
	s = pg_scr();
	if (!cfg || !s)
		return 0;
	/* The full parse reads the headers the quick test read again: that
	 * test must stay free of writes for the non-POP3 path to be cheap.
	 * Parsed headers live in scratch: the BPF stack is 512 bytes for the
	 * whole call chain. */
	p = &s->parsed;
	r = pg_parse(data, data_end, pkt_len, p);
	if (r == PG_PARSE_SHORT && short_hdr) {
		*short_hdr = 1;
		return 0;
	}
	if (r == PG_PARSE_NOT_TCP) {
		pg_count(cls_base + PG_CLASS_NON_POP3, 1);
		return 0;
	}
	if (r != PG_PARSE_TCP && r != PG_PARSE_FRAGMENT) {
		pg_count(cls_base + PG_CLASS_MALFORMED, 1);
		pg_count(r == PG_PARSE_BAD_L2 ? PG_CNT_MALFORMED_L2
			 : r == PG_PARSE_BAD_L4 ? PG_CNT_MALFORMED_L4
						: PG_CNT_MALFORMED_L3,
			 1);
		return 0;
	}

	if (r == PG_PARSE_FRAGMENT) {
		/* Non-first fragments carry no ports: every TCP fragment goes up
		 * from its IP header on, whatever the port. */
		pg_count(cls_base + PG_CLASS_FRAGMENT, 1);
		if (xdp)
			pkt_len = bpf_xdp_get_buff_len(ctx);
		__builtin_memset(&s->info, 0, sizeof(s->info));
		s->info.now = 0;
		s->info.hook = hook;
		s->info.key.family = p->family;
		__builtin_memcpy(s->info.key.client_addr, p->saddr, 16);
		__builtin_memcpy(s->info.key.server_addr, p->daddr, 16);
		s->info.seg_len = pkt_len - p->l3_off;
		pg_send_raw(ctx, xdp, s, &s->orphan_flow, p->l3_off, pkt_len - p->l3_off, 0,
			    PG_EV_FRAGMENT, 0);
		return pg_verdict_drop(cfg, PG_DROP_FRAGMENT);
	}

	sport = p->sport;
	dport = p->dport;
	kd = pg_port_kind[dport & 0xffff];
	ks = pg_port_kind[sport & 0xffff];
	if (!kd && !ks) {
		pg_count(cls_base + PG_CLASS_NON_POP3, 1);
		return 0;
	}

	s->info.hook = hook;
	s->info.now = 0;
	s->info.key.family = p->family;
	s->info.key.pad[0] = s->info.key.pad[1] = s->info.key.pad[2] = 0;
	/* The key is oriented client -> server whichever way the packet goes. */
	kind = kd ? kd : ks;
	s->info.dir = kd ? PG_DIR_TO_SERVER : PG_DIR_TO_CLIENT;
	pg_set_key(&s->info.key, kd ? p->saddr : p->daddr, kd ? p->daddr : p->saddr,
		   kd ? p->sport : p->dport, kd ? p->dport : p->sport);
	pg_count(cls_base + (s->info.dir == PG_DIR_TO_SERVER ? PG_CLASS_TO_SERVER
							      : PG_CLASS_TO_CLIENT),
		 1);
	if (xdp)
		pkt_len = bpf_xdp_get_buff_len(ctx);
	return pg_tcp(ctx, xdp, s, cfg, p, pkt_len, kind);
}

/* xdp.frags: multi-buffer packets (jumbo frames, GRO on veth) reach it whole. */
SEC("xdp.frags")
int pg_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	/* The linear length serves classification; the whole length (with
	 * frags) is read only for POP3 packets. */
	return pg_inspect(ctx, true, PG_HOOK_XDP, data, data_end, data_end - data, 0)
		       ? XDP_DROP
		       : XDP_PASS;
}

static __always_inline int pg_tc(struct __sk_buff *skb, __u8 hook)
{
	int short_hdr = 0;
	int drop;

	drop = pg_inspect(skb, false, hook, (void *)(long)skb->data, (void *)(long)skb->data_end,
			  skb->len, &short_hdr);
	if (short_hdr) {
		/* Headers beyond the linear part (a GSO skb keeps only ~86
		 * bytes there): pull enough of them in and parse again. */
		__u32 want = skb->len < 256 ? skb->len : 256;

		if (bpf_skb_pull_data(skb, want))
			return TC_ACT_OK;
		drop = pg_inspect(skb, false, hook, (void *)(long)skb->data,
				  (void *)(long)skb->data_end, skb->len, 0);
	}
	return drop ? TC_ACT_SHOT : TC_ACT_OK;
}

SEC("tc")
int pg_tc_egress(struct __sk_buff *skb)
{
	return pg_tc(skb, PG_HOOK_TC_EGRESS);
}

SEC("tc")
int pg_tc_ingress(struct __sk_buff *skb)
{
	return pg_tc(skb, PG_HOOK_TC_INGRESS);
}
