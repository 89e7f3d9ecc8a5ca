/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * TLS record following (STLS after the handshake starts, and port 995):
 * only record headers are read; handshake record heads go up, heartbeats
 * and malformed headers are anomalies.
 */
#ifndef PG_LIB_TLS_H
#define PG_LIB_TLS_H

#include "events.h"

#define PG_TLS_MAX_RECORDS 64    /* records walked per packet before escalating */
#define PG_TLS_MAX_LEN (16384 + 2048)

#define PG_TLS_HANDSHAKE 22
#define PG_TLS_HEARTBEAT 24

/* 1 when the 5-byte header is one the kernel can follow. */
static __always_inline int pg_tls_header_ok(const __u8 *h)
{
	__u32 len = (__u32)h[3] << 8 | h[4];

	return h[0] >= 20 && h[0] <= 24 && h[1] == 3 && h[2] <= 4 && len > 0 &&
	       len <= PG_TLS_MAX_LEN;
}

/* A ClientHello starts with a handshake record: what STLS must be followed by. */
static __always_inline int pg_is_tls_start(const __u8 *b)
{
	return b[0] == PG_TLS_HANDSHAKE && b[1] == 3;
}

#endif /* PG_LIB_TLS_H */
