/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * POP3 framing in the kernel: client line lengths and verbs, the queue of
 * responses the server owes, status lines and multi-line bodies. The
 * window functions work on the scratch window; anything they cannot frame
 * escalates the direction, and the caller sends the rest up raw.
 */
#ifndef PG_LIB_POP3_H
#define PG_LIB_POP3_H

#include "events.h"
#include "scan.h"

#define PG_MAX_LINES 512 /* lines framed per window before escalating */

/* Window results. */
#define PG_WR_DROP (1u << 0)     /* prevent mode: drop the packet */
#define PG_WR_BLOCK (1u << 1)    /* blocklist the flow (budget or hard limit) */
#define PG_WR_ESCALATE (1u << 2) /* escalated at offset PG_WR_OFF(result) */
#define PG_WR_OFF(r) ((r) >> 16)

#define PG_HEAD_VERB_MASK 0xff
#define PG_HEAD_HAS_ARG (1u << 8)
#define PG_HEAD_SURE (1u << 9)       /* has-argument is known */
#define PG_HEAD_VERB_DONE (1u << 10) /* the verb token is complete */

#define PG_ST_OK 1
#define PG_ST_ERR 2
#define PG_ST_CONT 3
#define PG_ST_BAD 4

static __always_inline void pg_escalate(struct pg_dir_state *d)
{
	if (!(d->flags & PG_DF_ESCALATED)) {
		__sync_fetch_and_or(&d->flags, PG_DF_ESCALATED);
		pg_count(PG_CNT_ESCALATIONS, 1);
	}
}

/* Escalates a direction. The client direction feeds the queue of
 * responses the server direction frames by, so losing it loses both. */
static __always_inline void pg_escalate_dir(struct pg_flow *flow, __u32 dir)
{
	pg_escalate(&flow->dir[dir & 1]);
	if (dir == PG_DIR_TO_SERVER)
		pg_escalate(&flow->dir[PG_DIR_TO_CLIENT]);
}

/* Appends up to n bytes at buf[pos] to the line head. */
static __always_inline void pg_head_capture(struct pg_scratch *s, struct pg_dir_state *d,
					    __u32 pos, __u32 n)
{
	__u32 have = d->head_len;
	int k;

	if (have >= PG_LINE_HEAD)
		return;
#pragma unroll
	for (k = 0; k < PG_LINE_HEAD; k++) {
		if (k < n && have + k < PG_LINE_HEAD)
			d->head[(have + k) & (PG_LINE_HEAD - 1)] = s->buf[(pos + k) & PG_WIN_MASK];
	}
	d->head_len = have + n > PG_LINE_HEAD ? PG_LINE_HEAD : have + n;
}

static __always_inline __u8 pg_upper(__u8 c)
{
	return c >= 'a' && c <= 'z' ? c - 32 : c;
}

static __always_inline int pg_is_blank(__u8 c)
{
	return c == ' ' || c == '\t';
}

#define PG_V(a, b, c, d) ((__u32)(a) | (__u32)(b) << 8 | (__u32)(c) << 16 | (__u32)(d) << 24)

static __always_inline __u32 pg_verb_id(__u32 v)
{
	switch (v) {
	case PG_V('U', 'S', 'E', 'R'): return PG_VERB_USER;
	case PG_V('P', 'A', 'S', 'S'): return PG_VERB_PASS;
	case PG_V('A', 'P', 'O', 'P'): return PG_VERB_APOP;
	case PG_V('A', 'U', 'T', 'H'): return PG_VERB_AUTH;
	case PG_V('S', 'T', 'A', 'T'): return PG_VERB_STAT;
	case PG_V('L', 'I', 'S', 'T'): return PG_VERB_LIST;
	case PG_V('R', 'E', 'T', 'R'): return PG_VERB_RETR;
	case PG_V('D', 'E', 'L', 'E'): return PG_VERB_DELE;
	case PG_V('N', 'O', 'O', 'P'): return PG_VERB_NOOP;
	case PG_V('R', 'S', 'E', 'T'): return PG_VERB_RSET;
	case PG_V('Q', 'U', 'I', 'T'): return PG_VERB_QUIT;
	case PG_V('T', 'O', 'P', 0): return PG_VERB_TOP;
	case PG_V('U', 'I', 'D', 'L'): return PG_VERB_UIDL;
	case PG_V('C', 'A', 'P', 'A'): return PG_VERB_CAPA;
	case PG_V('S', 'T', 'L', 'S'): return PG_VERB_STLS;
	default: return PG_VERB_UNKNOWN;
	}
}

/*
 * Parses the client line head: verb (case-insensitive), then whether an
 * argument follows the blanks. `line_done` says the whole line is known.
 */
__noinline __u32 pg_parse_head(struct pg_dir_state *d, __u32 line_done)
{
	__u32 verb = 0, vlen = 0, res = 0, in_verb = 1, n;
	int k;

	if (!d)
		return 0;
	n = d->head_len;
	for (k = 0; k < PG_LINE_HEAD; k++) {
		__u8 c;

		if (k >= n)
			break;
		c = d->head[k];
		if (in_verb) {
			if (pg_is_blank(c) || c == '\r' || c == '\n') {
				in_verb = 0;
				res |= PG_HEAD_VERB_DONE;
			} else if (vlen < 4) {
				verb |= (__u32)pg_upper(c) << (vlen * 8);
				vlen++;
				continue;
			} else {
				/* Five letters or more: no verb the kernel knows. */
				verb = 0xffffffff;
				res |= PG_HEAD_VERB_DONE | PG_HEAD_SURE;
				break;
			}
		}
		if (pg_is_blank(c))
			continue;
		if (c != '\r' && c != '\n')
			res |= PG_HEAD_HAS_ARG;
		res |= PG_HEAD_SURE;
		break;
	}
	if (line_done && n < PG_LINE_HEAD)
		res |= PG_HEAD_SURE | PG_HEAD_VERB_DONE;
	if (!(res & PG_HEAD_VERB_DONE))
		return res;
	return res | pg_verb_id(verb);
}

static __always_inline __u32 pg_resp_kind(__u32 verb, __u32 has_arg)
{
	switch (verb) {
	case PG_VERB_LIST:
	case PG_VERB_UIDL:
		return has_arg ? PG_RK_SINGLE : PG_RK_MULTI;
	case PG_VERB_AUTH:
		return has_arg ? PG_RK_SASL : PG_RK_MULTI;
	case PG_VERB_RETR:
	case PG_VERB_TOP:
	case PG_VERB_CAPA:
		return PG_RK_MULTI;
	case PG_VERB_STLS:
		return PG_RK_STLS;
	default:
		return PG_RK_SINGLE;
	}
}

static __always_inline void pg_line_reset(struct pg_dir_state *d)
{
	d->line_len = 0;
	d->head_len = 0;
	d->flags &= ~(PG_DF_MID_LINE | PG_DF_OVER_THRESHOLD | PG_DF_OVER_HARD);
}

/*
 * Takes an escalated flow back to framing at a server segment starting at
 * `seq`, when the agent's offer in pg_resync stands exactly there and where
 * the client direction stands now (struct pg_resync). A client packet
 * racing on the other hook can only have sent its bytes raw or queued its
 * kinds into the queue the offer replaces: either way the kernel ends up
 * owing fewer responses than the server sends, which escalates again and
 * hides nothing. The compare-and-swap takes each offer once.
 */
static __always_inline void pg_try_resync(struct pg_flow *flow, const struct pg_flow_key *key,
					  __u32 seq)
{
	struct pg_resync *r = bpf_map_lookup_elem(&pg_resync, key);
	__u32 prev, i;

	if (!r || flow->implicit_tls || flow->lost_records || r->q_len > PG_RESPQ_LEN ||
	    r->phase > PG_PHASE_SASL)
		return;
	if (!(flow->dir[0].flags & flow->dir[1].flags & PG_DF_HAVE_SEQ) ||
	    r->next_seq[PG_DIR_TO_SERVER] != flow->dir[PG_DIR_TO_SERVER].next_seq ||
	    r->next_seq[PG_DIR_TO_CLIENT] != flow->dir[PG_DIR_TO_CLIENT].next_seq ||
	    seq != r->next_seq[PG_DIR_TO_CLIENT])
		return;
	prev = flow->resync_gen;
	if (prev == r->gen || __sync_val_compare_and_swap(&flow->resync_gen, prev, r->gen) != prev)
		return;
	for (i = 0; i < 2; i++) {
		struct pg_dir_state *d = &flow->dir[i];

		pg_line_reset(d);
		d->flags = PG_DF_HAVE_SEQ | (d->flags & PG_DF_SPOKE);
		d->body_match = 0;
		d->tls_left = 0;
		d->tls_hdr_len = 0;
	}
	if (r->server_in_body) {
		flow->dir[PG_DIR_TO_CLIENT].flags |= PG_DF_IN_BODY;
		flow->dir[PG_DIR_TO_CLIENT].body_match = 1; /* right after an LF */
	}
	__builtin_memcpy(flow->respq, r->respq, PG_RESPQ_LEN);
	flow->q_head = 0;
	flow->q_tail = r->q_len;
	flow->phase = r->phase;
	bpf_map_delete_elem(&pg_resync, key);
	pg_count(PG_CNT_RESYNCS, 1);
}

/* A complete client command: queue the response it will get. */
static __always_inline void pg_client_line_done(struct pg_flow *flow, __u32 head)
{
	struct pg_dir_state *srv = &flow->dir[PG_DIR_TO_SERVER ^ 1];
	__u32 verb = head & PG_HEAD_VERB_MASK;
	__u8 depth;

	if (flow->phase == PG_PHASE_SASL)
		return; /* a SASL response: the AUTH entry stays at the head */
	if (verb == PG_VERB_UNKNOWN) {
		pg_emit_anomaly(PG_AN_UNKNOWN_VERB, 0);
		pg_escalate(srv);
		return;
	}
	if (!(head & PG_HEAD_SURE) && (verb == PG_VERB_LIST || verb == PG_VERB_UIDL ||
				       verb == PG_VERB_AUTH)) {
		pg_escalate(srv);
		return;
	}
	depth = flow->q_tail - flow->q_head;
	/* A command before any server byte: the connection was picked up
	 * after the greeting, or the server sends none (a test rig). The
	 * server's first line answers the command, as the agent pairs it. */
	if (depth == 1 && flow->respq[flow->q_head & (PG_RESPQ_LEN - 1)] == PG_RK_GREETING &&
	    !(flow->dir[PG_DIR_TO_CLIENT].flags & PG_DF_SPOKE)) {
		flow->q_head++;
		depth = 0;
	}
	if (depth >= PG_RESPQ_LEN) {
		pg_emit_anomaly(PG_AN_RESPQ_OVERFLOW, 0);
		pg_escalate(srv);
		return;
	}
	flow->respq[flow->q_tail & (PG_RESPQ_LEN - 1)] =
		pg_resp_kind(verb, head & PG_HEAD_HAS_ARG);
	/* The slot is written before the tail moves, so the server side
	 * never reads an unwritten kind. */
	asm volatile("" ::: "memory");
	flow->q_tail++;
	if (verb == PG_VERB_STLS)
		flow->dir[PG_DIR_TO_SERVER].flags |= PG_DF_STLS_SENT;
}

/* Whether client bytes now are injected after STLS (CVE-2011-0411): the
 * STLS answer is still pending, or it was +OK and no TLS started. */
static __always_inline int pg_stls_pending(struct pg_flow *flow)
{
	struct pg_dir_state *c = &flow->dir[PG_DIR_TO_SERVER];

	if (!(c->flags & PG_DF_STLS_SENT))
		return 0;
	if (flow->phase == PG_PHASE_STLS_WAIT || flow->q_tail != flow->q_head)
		return 1;
	c->flags &= ~PG_DF_STLS_SENT; /* refused with -ERR: plaintext goes on */
	return 0;
}

static __always_inline __u32 pg_limit(const __u32 *per_verb, __u32 verb)
{
	__u32 v = per_verb[verb & (PG_VERB_MAX - 1)];

	return v ? v : per_verb[0];
}

/* One client line (or the part of it in this window). Returns 1 to stop. */
static int pg_client_line_cb(__u32 idx, void *data)
{
	struct pg_loop_ctx *lc = data;
	struct pg_config *cfg = pg_cfg();
	struct pg_scratch *s = pg_scr();
	struct pg_flow *flow = lc->flow;
	struct pg_dir_state *d;
	__u32 pos, end, lf, stop, head, verb, thr, hard, sasl;

	if (!flow || !cfg || !s)
		return 1;
	d = &flow->dir[PG_DIR_TO_SERVER];
	pos = s->info.pos;
	end = s->info.win_len;
	if (pos >= end || end > PG_WIN)
		return 1;
	if (!s->info.injected && pg_stls_pending(flow)) {
		s->info.injected = 1;
		pg_emit_anomaly(PG_AN_STLS_CLIENT_INJECTION, 0);
	}
	lf = pg_find_lf(pos, end);
	stop = lf < end ? lf + 1 : end;
	pg_head_capture(s, d, pos, stop - pos);
	d->line_len += stop - pos;
	d->flags |= PG_DF_MID_LINE;
	head = pg_parse_head(d, lf < end);
	verb = head & PG_HEAD_VERB_MASK;
	sasl = flow->phase == PG_PHASE_SASL;
	thr = sasl ? cfg->sasl_threshold : pg_limit(cfg->verb_threshold, verb);
	hard = sasl ? cfg->sasl_hard_limit : pg_limit(cfg->verb_hard_limit, verb);
	if (thr && d->line_len > thr && !(d->flags & PG_DF_OVER_THRESHOLD)) {
		d->flags |= PG_DF_OVER_THRESHOLD;
		pg_emit_anomaly(PG_AN_LINE_OVER_THRESHOLD, 0);
	}
	if (hard && d->line_len > hard) {
		/* Every segment carrying the line past its limit is dropped;
		 * the anomaly is raised once per line. */
		s->info.res |= PG_WR_DROP | PG_WR_BLOCK;
		if (!(d->flags & PG_DF_OVER_HARD)) {
			d->flags |= PG_DF_OVER_HARD;
			pg_emit_anomaly(PG_AN_LINE_HARD_LIMIT,
					cfg->mode == PG_MODE_PREVENT ? PG_EVF_DROPPED : 0);
		}
	}
	if (lf < end) {
		pg_client_line_done(flow, head);
		pg_line_reset(d);
	}
	s->info.pos = stop;
	return 0;
}

/*
 * Client window: everything goes up as PG_EV_CLIENT_DATA; lines are
 * measured for thresholds and hard limits, and complete commands queue
 * the response kinds the server direction will frame.
 */
__noinline __u32 pg_client_window(struct pg_flow *flow)
{
	struct pg_scratch *s = pg_scr();
	struct pg_loop_ctx lc = { .flow = flow };
	struct pg_emit_req req = {};
	__u32 end;

	if (!flow || !s)
		return 0;
	end = s->info.win_len;
	req.type = PG_EV_CLIENT_DATA;
	req.len = end;
	req.flags = (s->info.win_base == 0 ? PG_EVF_FIRST : 0) |
		    (s->info.win_base + end >= s->info.seg_len ? PG_EVF_LAST : 0);
	s->info.res = pg_emit(flow, &req) ? PG_WR_BLOCK : 0;
	s->info.pos = 0;
	s->info.injected = 0;
	bpf_loop(PG_MAX_LINES, pg_client_line_cb, &lc, 0);
	if (s->info.pos < end)
		/* The bytes are already up as client data; only framing is lost. */
		pg_escalate_dir(flow, PG_DIR_TO_SERVER);
	return s->info.res;
}

static __always_inline __u32 pg_status_of(const struct pg_dir_state *d)
{
	__u8 c0 = d->head[0], c1 = pg_upper(d->head[1]), c2 = pg_upper(d->head[2]),
	     c3 = pg_upper(d->head[3]);

	if (d->head_len >= 3 && c0 == '+' && c1 == 'O' && c2 == 'K' &&
	    (d->head_len == 3 || pg_is_blank(c3) || c3 == '\r' || c3 == '\n'))
		return PG_ST_OK;
	if (d->head_len >= 4 && c0 == '-' && c1 == 'E' && c2 == 'R' && c3 == 'R')
		return PG_ST_ERR;
	if (d->head_len >= 2 && c0 == '+' && (c1 == ' ' || c1 == '\r' || c1 == '\n'))
		return PG_ST_CONT;
	return PG_ST_BAD;
}

/* A complete server status line. Returns 0, or 1 when the kernel cannot
 * frame what follows (the caller escalates). */
static __always_inline int pg_server_line_done(struct pg_flow *flow, struct pg_dir_state *d)
{
	__u32 st = pg_status_of(d);
	__u8 kind;

	if (flow->q_head == flow->q_tail) {
		pg_emit_anomaly(PG_AN_UNSOLICITED, 0);
		return 1;
	}
	kind = flow->respq[flow->q_head & (PG_RESPQ_LEN - 1)];
	if (st == PG_ST_BAD || (st == PG_ST_CONT && kind != PG_RK_SASL)) {
		pg_emit_anomaly(PG_AN_BAD_STATUS, 0);
		return 1;
	}
	if (st == PG_ST_CONT) {
		flow->phase = PG_PHASE_SASL; /* a challenge: the exchange goes on */
		return 0;
	}
	flow->q_head++;
	if (kind == PG_RK_SASL) {
		flow->phase = PG_PHASE_CMD;
	} else if (kind == PG_RK_STLS && st == PG_ST_OK) {
		flow->phase = PG_PHASE_STLS_WAIT;
	} else if (kind == PG_RK_MULTI && st == PG_ST_OK) {
		d->flags |= PG_DF_IN_BODY;
		d->body_match = 1; /* right after an LF: "." alone ends an empty body */
	}
	return 0;
}

#define PG_STOP_ESCALATE(s, pos)                                                          \
	({                                                                                 \
		(s)->info.res |= PG_WR_ESCALATE | (pos) << 16;                            \
		1;                                                                         \
	})

/* One server line or body stretch in this window. Returns 1 to stop. */
static int pg_server_line_cb(__u32 idx, void *data)
{
	struct pg_loop_ctx *lc = data;
	struct pg_config *cfg = pg_cfg();
	struct pg_scratch *s = pg_scr();
	struct pg_flow *flow = lc->flow;
	struct pg_emit_req req = {};
	struct pg_dir_state *d;
	__u32 pos, end, lf, stop, r, before;

	if (!flow || !cfg || !s)
		return 1;
	d = &flow->dir[PG_DIR_TO_CLIENT];
	pos = s->info.pos;
	end = s->info.win_len;
	if (pos >= end || end > PG_WIN)
		return 1;

	if (d->flags & PG_DF_IN_BODY) {
		r = pg_scan_body(&d->body_match, pos, end);
		if (r & PG_SCAN_UNSURE) {
			pg_emit_anomaly(PG_AN_BAD_TERMINATOR, 0);
			pg_escalate(d);
			return PG_STOP_ESCALATE(s, pos);
		}
		stop = r & PG_SCAN_FOUND ? r & PG_SCAN_POS_MASK : end;
		if (cfg->body_inspection) {
			req.type = PG_EV_BODY;
			req.buf_off = pos;
			req.len = stop - pos;
			if (pg_emit(flow, &req))
				s->info.res |= PG_WR_BLOCK;
		}
		/* The entry was taken off the queue at the +OK. */
		if (r & PG_SCAN_FOUND)
			d->flags &= ~PG_DF_IN_BODY;
		s->info.pos = stop;
		return 0;
	}
	if (!(d->flags & PG_DF_MID_LINE) && flow->phase == PG_PHASE_STLS_WAIT) {
		/* Nothing may follow the STLS +OK before the handshake
		 * (CVE-2021-22947). */
		pg_emit_anomaly(PG_AN_STLS_SERVER_INJECTION, 0);
		pg_escalate(d);
		return PG_STOP_ESCALATE(s, pos);
	}
	lf = pg_find_lf(pos, end);
	stop = lf < end ? lf + 1 : end;
	before = d->line_len;
	pg_head_capture(s, d, pos, stop - pos);
	d->line_len += stop - pos;
	d->flags |= PG_DF_MID_LINE;

	req.type = PG_EV_SERVER_LINE;
	req.flags = (before == 0 ? PG_EVF_FIRST : 0) |
		    (lf < end ? PG_EVF_LAST | PG_EVF_LINE_END : 0) |
		    (flow->phase == PG_PHASE_SASL ? PG_EVF_SASL : 0);
	req.buf_off = pos;
	req.len = stop - pos;
	if (pg_emit(flow, &req))
		s->info.res |= PG_WR_BLOCK;
	if (cfg->server_line_threshold && d->line_len > cfg->server_line_threshold &&
	    !(d->flags & PG_DF_OVER_THRESHOLD)) {
		d->flags |= PG_DF_OVER_THRESHOLD;
		pg_emit_anomaly(PG_AN_SERVER_LINE_LONG, 0);
	}
	s->info.pos = stop;
	if (lf < end) {
		int unsure = pg_server_line_done(flow, d);

		pg_line_reset(d);
		if (unsure) {
			pg_escalate(d);
			return PG_STOP_ESCALATE(s, stop);
		}
	}
	return 0;
}

/*
 * Server window: status lines and SASL challenges go up whole, bodies are
 * scanned for their terminator and stay in the kernel unless body
 * inspection is on.
 */
__noinline __u32 pg_server_window(struct pg_flow *flow)
{
	struct pg_scratch *s = pg_scr();
	struct pg_loop_ctx lc = { .flow = flow };

	if (!flow || !s)
		return 0;
	s->info.res = 0;
	s->info.pos = 0;
	bpf_loop(PG_MAX_LINES, pg_server_line_cb, &lc, 0);
	if (!(s->info.res & PG_WR_ESCALATE) && s->info.pos < s->info.win_len) {
		pg_escalate(&flow->dir[PG_DIR_TO_CLIENT]);
		s->info.res |= PG_WR_ESCALATE | s->info.pos << 16;
	}
	return s->info.res;
}

#endif /* PG_LIB_POP3_H */
