/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Word-at-a-time scanning of the scratch window: finding LF, and finding
 * the CRLF.CRLF that ends a multi-line body. Bytes are tested eight at a
 * time; the byte loop only runs where an LF is followed by '.', which in
 * a mail body is rare.
 */
#ifndef PG_LIB_SCAN_H
#define PG_LIB_SCAN_H

#include "common.h"

#define PG_ONES 0x0101010101010101ull
#define PG_HIGHS 0x8080808080808080ull
#define PG_LOWS 0x7f7f7f7f7f7f7f7full

#define PG_SCAN_NONE 0x10000u       /* no LF / no terminator in the range */
#define PG_SCAN_UNSURE 0x20000u     /* a terminator the kernel cannot be sure of */
#define PG_SCAN_FOUND 0x40000u      /* terminator found; low bits: offset after it */
#define PG_SCAN_POS_MASK 0xffffu

/* Non-zero iff some byte of w is zero (exact as a boolean). */
static __always_inline __u64 pg_has_zero(__u64 v)
{
	return (v - PG_ONES) & ~v & PG_HIGHS;
}

/* 0x80 in exactly the bytes of w equal to c. */
static __always_inline __u64 pg_eq_mask(__u64 w, __u64 c)
{
	__u64 v = w ^ (c * PG_ONES);

	return ~(((v & PG_LOWS) + PG_LOWS) | v | PG_LOWS);
}

/* Index of the lowest byte flagged in a non-zero pg_eq_mask() result. */
static __always_inline __u32 pg_first_byte(__u64 m)
{
	__u64 low = m & -m;

	return ((low >> 7) * 0x0001020304050607ull) >> 56;
}

static __always_inline __u64 pg_load64(const __u8 *buf, __u32 off)
{
	return *(const __u64 *)&buf[off & PG_WIN_MASK];
}

/* Offset of the first LF in buf[pos, end), or PG_SCAN_NONE. */
__noinline __u32 pg_find_lf(__u32 pos, __u32 end)
{
	struct pg_scratch *s = pg_scr();
	__u32 i, p = pos;

	if (!s || end > PG_WIN)
		return PG_SCAN_NONE;
	for (i = 0; i < PG_WIN / 16; i++) {
		__u64 w0, w1;

		if (p + 16 > end)
			break;
		w0 = pg_load64(s->buf, p);
		w1 = pg_load64(s->buf, p + 8);
		if (!(pg_has_zero(w0 ^ ('\n' * PG_ONES)) | pg_has_zero(w1 ^ ('\n' * PG_ONES)))) {
			p += 16;
			continue;
		}
		w0 = pg_eq_mask(w0, '\n');
		if (w0)
			return p + pg_first_byte(w0);
		return p + 8 + pg_first_byte(pg_eq_mask(w1, '\n'));
	}
	for (i = 0; i < 16; i++) {
		if (p >= end)
			break;
		if (s->buf[p & PG_WIN_MASK] == '\n')
			return p;
		p++;
	}
	return PG_SCAN_NONE;
}

/*
 * Terminator automaton over "\n.\r\n", state kept in body_match across
 * windows and segments: 0 nothing, 1 after LF, 2 after LF '.', 3 after
 * LF '.' CR. A line "." followed by a bare LF is what some clients
 * (python's poplib) take as the end and others do not: unsure.
 */
#define PG_BM_TERM 4
#define PG_BM_BAD 5

static __always_inline __u32 pg_body_step(__u32 m, __u8 c)
{
	switch (m) {
	case 1:
		return c == '.' ? 2 : c == '\n' ? 1 : 0;
	case 2:
		return c == '\r' ? 3 : c == '\n' ? PG_BM_BAD : 0;
	case 3:
		return c == '\n' ? PG_BM_TERM : 0;
	default:
		return c == '\n' ? 1 : 0;
	}
}

#define PG_BLOCK 64

#define PG_FAST_BLOCK 64

/* 1 when the 64 bytes at p may hold an LF followed by '.' (p[64] is read
 * as the lookahead of an LF in the last byte). Per word, a byte of
 * t = (w ^ "\n\n..") | (w' ^ "..") is zero exactly where an LF is followed
 * by '.', w' being the word one byte further on. The block test takes the
 * high bits of t - 1 only: set for a zero byte, and for a byte of t at
 * 0x81 or above, which needs a byte of 0x80 or above in the text. Mail is
 * mostly 7-bit, so that cheaper test is exact on it; a block that fails it
 * is tested again exactly before it counts as a candidate, so 8-bit text
 * costs a second pass, not the slow path. */
static __always_inline int pg_block_has_candidate(const __u8 *p)
{
	const __u64 lf = '\n' * PG_ONES, dot = '.' * PG_ONES;
	__u64 acc = 0;
	int j;

#pragma unroll
	for (j = 0; j < PG_FAST_BLOCK / 8; j++)
		acc |= ((*(const __u64 *)(p + 8 * j) ^ lf) | (*(const __u64 *)(p + 8 * j + 1) ^ dot)) -
		       PG_ONES;
	if (!(acc & PG_HIGHS))
		return 0;
	acc = 0;
#pragma unroll
	for (j = 0; j < PG_FAST_BLOCK / 8; j++) {
		__u64 t = (*(const __u64 *)(p + 8 * j) ^ lf) | (*(const __u64 *)(p + 8 * j + 1) ^ dot);

		acc |= (t - PG_ONES) & ~t;
	}
	return (acc & PG_HIGHS) != 0;
}

/*
 * The fast path for body bytes in the linear part of the packet, read in
 * place: 64 bytes per step, no copy, no call. Returns the payload offset
 * from which the window path must take over (an LF followed by '.', a
 * pending partial match, bytes beyond the linear part, a tiny segment), or
 * `len` when the whole payload was scanned, with the automaton state in
 * *match. Candidates are rare in mail bodies: dot-stuffed lines and the
 * terminator itself.
 */
static __always_inline __u32 pg_body_fast(void *data, void *data_end, __u32 payload_off, __u32 len,
					  __u8 *match)
{
	const __u32 need = PG_FAST_BLOCK + 1; /* a block and its lookahead byte */
	__u8 *base, *p;
	__u32 i, off;

	/* The verifier tracks packet ranges only for offsets below 64 KiB in
	 * all; headers longer than 1 KiB take the window path. */
	if (payload_off > 1023 || len < need)
		return 0;
	base = data + payload_off;
	if ((void *)(base + need) > data_end)
		return 0;
	/* A segment after one ending in LF goes on here unless it starts a
	 * dot line; other partial matches take the window path. */
	if (*match && (*match != 1 || base[0] == '.' || base[0] == '\n'))
		return 0;
	for (i = 0; i < PG_WIN / PG_FAST_BLOCK; i++) {
		off = i * PG_FAST_BLOCK;
		if (off + need > len)
			break;
		p = base + off;
		if ((void *)(p + need) > data_end)
			return off;
		if (pg_block_has_candidate(p))
			return off;
	}
	if (i * PG_FAST_BLOCK + need <= len)
		return i * PG_FAST_BLOCK; /* longer than the fast path walks */
	/* The last block ends at the last byte, overlapping the one before:
	 * no byte loop. */
	off = len - need;
	if (off > PG_WIN)
		return 0;
	p = base + off;
	if ((void *)(p + need) > data_end)
		return off;
	if (pg_block_has_candidate(p))
		return off;
	*match = p[PG_FAST_BLOCK] == '\n';
	return len;
}

/* Runs the automaton over buf[p, p+n) for n <= PG_BLOCK + 3; stores the
 * outcome in scratch. Returns 1 when the scan is over. */
static __always_inline int pg_body_bytes(struct pg_scratch *s, __u32 p, __u32 n)
{
	__u32 m = s->info.scan_match, j;

#pragma clang loop unroll(disable)
	for (j = 0; j < PG_BLOCK + 3; j++) {
		if (j >= n)
			break;
		m = pg_body_step(m, s->buf[(p + j) & PG_WIN_MASK]);
		if (m == PG_BM_TERM) {
			s->info.scan_match = 0;
			s->info.scan_res = PG_SCAN_FOUND | (p + j + 1);
			return 1;
		}
		if (m == PG_BM_BAD) {
			s->info.scan_match = 0;
			s->info.scan_res = PG_SCAN_UNSURE | (p + j + 1);
			return 1;
		}
	}
	s->info.scan_match = m;
	s->info.scan_pos = p + n;
	return 0;
}

/*
 * One step of the body scan: a 64-byte block tested word-at-a-time (an LF
 * followed by '.' is a candidate), or the automaton over a few bytes when
 * a candidate or a partial match is pending, or over the tail.
 */
static int pg_body_cb(__u32 idx, void *unused)
{
	struct pg_scratch *s = pg_scr();
	__u32 p, end, j;

	if (!s)
		return 1;
	p = s->info.scan_pos;
	end = s->info.scan_end;
	if (end > PG_WIN || p >= end) {
		s->info.scan_res = PG_SCAN_NONE;
		return 1;
	}
	if (s->info.scan_match)
		return pg_body_bytes(s, p, end - p < 3 ? end - p : 3);
	if (p + PG_BLOCK + 1 > end)
		return pg_body_bytes(s, p, end - p);

	/* Two words per test keeps few registers live: no stack spills. */
#pragma unroll
	for (j = 0; j < PG_BLOCK / 16; j++) {
		__u32 q = p + 16 * j;
		__u64 w0 = pg_load64(s->buf, q), w1 = pg_load64(s->buf, q + 8), c;

		if (!(pg_has_zero(w0 ^ ('\n' * PG_ONES)) | pg_has_zero(w1 ^ ('\n' * PG_ONES))))
			continue;
		c = pg_eq_mask(w0, '\n') & pg_eq_mask(pg_load64(s->buf, q + 1), '.');
		if (!c) {
			q += 8;
			c = pg_eq_mask(w1, '\n') & pg_eq_mask(pg_load64(s->buf, q + 1), '.');
		}
		if (c) {
			/* Resume the automaton just after this LF '.'. */
			s->info.scan_pos = q + pg_first_byte(c) + 2;
			s->info.scan_match = 2;
			return 0;
		}
	}
	s->info.scan_pos = p + PG_BLOCK;
	return 0;
}

/*
 * Scans buf[pos, end) of a multi-line body, automaton state in *match
 * across windows and segments. Returns PG_SCAN_FOUND | offset just after
 * the terminator, PG_SCAN_NONE, or PG_SCAN_UNSURE | offset.
 */
__noinline __u32 pg_scan_body(__u8 *match, __u32 pos, __u32 end)
{
	struct pg_scratch *s = pg_scr();

	if (!s || !match || end > PG_WIN)
		return PG_SCAN_UNSURE | pos;
	s->info.scan_pos = pos;
	s->info.scan_end = end;
	s->info.scan_match = *match;
	s->info.scan_res = PG_SCAN_UNSURE | pos;
	/* Each step consumes a block, or at least one byte of a candidate;
	 * three steps per candidate of at least three bytes bound it. */
	bpf_loop(PG_WIN + PG_WIN / PG_BLOCK + 4, pg_body_cb, 0, 0);
	*match = s->info.scan_match;
	return s->info.scan_res;
}

#endif /* PG_LIB_SCAN_H */
