/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The one header shared by the kernel programs and the C++ agent: map
 * layouts, the ring-buffer event record, counter indexes and configuration.
 * Plain C with fixed-width types only; the C++ side pins every size and
 * offset with static_asserts (agent/layout.h), so a change here that breaks
 * the ABI fails to compile instead of corrupting events.
 */
#ifndef POPGUARD_H
#define POPGUARD_H

#include <linux/types.h>

#define PG_EVENT_DATA 256     /* most payload bytes one event record carries */
#define PG_RESPQ_LEN 8        /* pipelined responses the kernel can expect */
#define PG_LINE_HEAD 16       /* bytes of a line kept to parse verb/status */
#define PG_VERB_MAX 16        /* verbs with their own length thresholds */
#define PG_MAX_SEGMENT 524288 /* payload bytes inspected per packet (BIG TCP max); more is counted, escalated */
#define PG_MAX_FLOWS 65536    /* default flow map size; the loader may shrink it */

/* Which hook saw a packet. */
enum pg_hook {
	PG_HOOK_XDP = 0,
	PG_HOOK_TC_EGRESS = 1,
	PG_HOOK_TC_INGRESS = 2,
	PG_HOOK__MAX = 3,
};

/* How a packet was classified. */
enum pg_class {
	PG_CLASS_NON_POP3 = 0,  /* not TCP, or TCP on no configured port */
	PG_CLASS_TO_SERVER = 1, /* client -> POP3 server */
	PG_CLASS_TO_CLIENT = 2, /* POP3 server -> client */
	PG_CLASS_FRAGMENT = 3,  /* an IPv4/IPv6 fragment carrying TCP */
	PG_CLASS_MALFORMED = 4, /* truncated or inconsistent headers */
	PG_CLASS__MAX = 5,
};

/* Flow direction, also the index into pg_flow.dir[]. */
enum pg_dir {
	PG_DIR_TO_SERVER = 0,
	PG_DIR_TO_CLIENT = 1,
};

/* Why a packet was (or in detect mode would have been) dropped. */
enum pg_drop_reason {
	PG_DROP_LINE_LIMIT = 0,     /* a client line past its hard limit */
	PG_DROP_BLOCKED_FLOW = 1,   /* the flow is in the blocklist */
	PG_DROP_BLOCKED_SOURCE = 2, /* the source address is in the blocklist */
	PG_DROP_FRAGMENT = 3,       /* TCP fragment (never legitimate for POP3) */
	PG_DROP__MAX = 4,
};

/*
 * Per-CPU counters, one u64 each. Packet counters are indexed
 * PG_CNT_PKT + hook * PG_CLASS__MAX + class; drops PG_CNT_DROP + reason.
 * Every way the prefilter can lose or hide data has its own counter.
 */
enum pg_counter {
	PG_CNT_PKT = 0,
	PG_CNT_PAYLOAD_BYTES_TO_SERVER = 15, /* PG_CNT_PKT + PG_HOOK__MAX * PG_CLASS__MAX */
	PG_CNT_PAYLOAD_BYTES_TO_CLIENT,
	PG_CNT_EVENTS,            /* records submitted to the ring buffer */
	PG_CNT_EVENT_BYTES,       /* payload bytes inside those records */
	PG_CNT_RECORD_BYTES,      /* ring-buffer bytes those records took, headers included */
	PG_CNT_RINGBUF_FULL,      /* loss: bpf_ringbuf_reserve failed */
	PG_CNT_BUDGET_FLOW,       /* loss: record suppressed by the per-flow budget */
	PG_CNT_BUDGET_GLOBAL,     /* loss: record suppressed by the global budget */
	PG_CNT_FLOWS_CREATED,
	PG_CNT_FLOW_CREATE_FAILED, /* loss: map update failed */
	PG_CNT_MIDSTREAM_MISS,    /* data on a flow with no state (evicted or never seen) */
	PG_CNT_OVERLAP,           /* segment overlapping bytes already inspected */
	PG_CNT_GAP,               /* segment beyond the next expected byte */
	PG_CNT_RAW_SEGMENTS,      /* segments sent up raw (escalated) */
	PG_CNT_ESCALATIONS,       /* a direction entering escalated mode */
	PG_CNT_OVERSIZE,          /* loss: payload past PG_MAX_SEGMENT not inspected */
	PG_CNT_MALFORMED_L2,
	PG_CNT_MALFORMED_L3,
	PG_CNT_MALFORMED_L4,
	PG_CNT_ANOMALIES,
	PG_CNT_RESYNCS,           /* escalated flows the agent handed framing back to */
	PG_CNT_BUDGET_SYN,        /* loss: client SYN report held back by its budget */
	PG_CNT_DROP,
	PG_CNT_WOULD_DROP = PG_CNT_DROP + PG_DROP__MAX,
	PG_CNT__MAX = PG_CNT_WOULD_DROP + PG_DROP__MAX,
};

/* What a ring-buffer record carries. */
enum pg_event_type {
	PG_EV_CLIENT_DATA = 1, /* in-order client payload, already line-parsed */
	PG_EV_SERVER_LINE = 2, /* server status line, SASL challenge or other line */
	PG_EV_BODY = 3,        /* server multi-line body bytes (body inspection on) */
	PG_EV_RAW = 4,         /* an escalated segment, unparsed; reassemble by seq */
	PG_EV_FRAGMENT = 5,    /* an IP fragment, from the IP header on */
	PG_EV_TLS_RECORD = 6,  /* a TLS record head: 5-byte header and what follows */
	PG_EV_ANOMALY = 7,     /* see PG_EVH_ANOMALY(meta) */
	PG_EV_SYN = 8,         /* a client's SYN without ACK (pg_config.report_syn): one data
				  byte, the segment's TCP flags; the key always follows */
};

/* Set in pg_event_head.type when the flow key follows the head. */
#define PG_EVH_KEY 0x80u
#define PG_EVH_TYPE_MASK 0x7fu

/* Flags of pg_event_head.flags. */
#define PG_EVF_FIRST (1u << 0)     /* first chunk of this segment (or line) */
#define PG_EVF_LAST (1u << 1)      /* last chunk of this segment (or line) */
#define PG_EVF_LINE_END (1u << 2)  /* data ends with the line's LF */
#define PG_EVF_SASL (1u << 3)      /* line belongs to a SASL exchange */
#define PG_EVF_OVERLAP (1u << 4)   /* raw: bytes the kernel already inspected (a retransmission;
				      the new part of a segment goes up in records without it) */
#define PG_EVF_GAP (1u << 5)       /* raw: segment started beyond the next byte */
#define PG_EVF_NO_STATE (1u << 6)  /* raw: the flow had no state */
#define PG_EVF_DROPPED (1u << 7)   /* the packet was dropped (prevent mode) */

enum pg_anomaly {
	PG_AN_NONE = 0,
	PG_AN_LINE_OVER_THRESHOLD = 1, /* client line longer than its verb/phase threshold */
	PG_AN_LINE_HARD_LIMIT = 2,     /* client line past its hard limit */
	PG_AN_FLOW_BUDGET = 3,         /* flow exceeded its event budget */
	PG_AN_GLOBAL_BUDGET = 4,       /* host exceeded the global event budget */
	PG_AN_STLS_CLIENT_INJECTION = 5, /* client bytes after STLS before TLS (CVE-2011-0411) */
	PG_AN_STLS_SERVER_INJECTION = 6, /* server bytes after STLS +OK before TLS (CVE-2021-22947) */
	PG_AN_TLS_HEARTBEAT = 7,
	PG_AN_TLS_MALFORMED = 8,       /* record header with bad type, version or length */
	PG_AN_RESPQ_OVERFLOW = 9,      /* more pipelined commands than the queue holds */
	PG_AN_UNKNOWN_VERB = 10,       /* client verb the kernel cannot frame a response for */
	PG_AN_BAD_TERMINATOR = 11,     /* a body line "." not followed by CRLF */
	PG_AN_UNSOLICITED = 12,        /* server line with no command pending */
	PG_AN_BAD_STATUS = 13,         /* status line not +OK / -ERR / "+ " */
	PG_AN_SERVER_LINE_LONG = 14,   /* server status line over its threshold */
	PG_AN_OVERSIZE = 15,           /* payload past PG_MAX_SEGMENT was not inspected */
	PG_AN_GAP = 16,                /* sequence gap: the direction is escalated */
	PG_AN__MAX = 17,
};

/*
 * Flow key, always oriented client -> server so both directions of a
 * connection share one entry. IPv4 addresses use the first word.
 */
struct pg_flow_key {
	__u32 client_addr[4];
	__u32 server_addr[4];
	__u16 client_port; /* network byte order */
	__u16 server_port; /* network byte order */
	__u8 family;       /* 4 or 6 */
	__u8 pad[3];
};

/*
 * A ring-buffer record is this 16-byte head, then the flow key when the
 * type has PG_EVH_KEY, then data bytes up to the record's end: a record is
 * as long as what it carries (the ring buffer keeps each record's size).
 * Most records are one short command or status line, so a fixed record
 * would be mostly padding. A flow's key goes up with its first record (and
 * with every record of a flow the kernel holds no state for, flow_id 0);
 * later records name the flow by its id. The agent can find an id it has
 * forgotten in pg_flows, whose values carry it.
 */
struct pg_event_head {
	__u32 ts_us;   /* pg clock in microseconds, low 32 bits: the agent extends
			  it from its own reading of the same clock */
	__u32 flow_id; /* pg_flow.id; 0: the flow has no state in the kernel */
	__u32 seq;     /* TCP sequence number of the first data byte; PG_AN_GAP:
			  the first byte of the hole, where the stream stood */
	__u8 type;     /* enum pg_event_type | PG_EVH_KEY */
	__u8 flags;    /* PG_EVF_* */
	__u8 meta;     /* direction, hook and anomaly: PG_EVH_META() */
	__u8 pad;
};

#define PG_EVH_META(dir, hook, anomaly) (((dir) & 1) | ((hook) & 3) << 1 | ((anomaly) & 31) << 3)
#define PG_EVH_DIR(meta) ((meta) & 1)
#define PG_EVH_HOOK(meta) (((meta) >> 1) & 3)
#define PG_EVH_ANOMALY(meta) ((meta) >> 3)

/* The largest record. */
#define PG_RECORD_MAX (sizeof(struct pg_event_head) + sizeof(struct pg_flow_key) + PG_EVENT_DATA)

/* Expected response kinds in the per-flow queue. */
enum pg_resp_kind {
	PG_RK_SINGLE = 0,    /* one status line */
	PG_RK_MULTI = 1,     /* +OK opens a body ending CRLF.CRLF; -ERR is one line */
	PG_RK_SASL = 2,      /* AUTH with a mechanism: "+ " challenges until +OK/-ERR */
	PG_RK_STLS = 3,      /* +OK switches to TLS once the client starts it */
	PG_RK_GREETING = 4,  /* the server banner */
};

/* Flow phase. */
enum pg_phase {
	PG_PHASE_CMD = 0,
	PG_PHASE_SASL = 1,      /* a SASL exchange is running */
	PG_PHASE_STLS_WAIT = 2, /* STLS answered +OK, waiting for a ClientHello */
	PG_PHASE_TLS = 3,       /* only TLS record headers are followed */
};

/* Flags of pg_dir_state.flags. */
#define PG_DF_HAVE_SEQ (1u << 0)  /* next_seq is known */
#define PG_DF_ESCALATED (1u << 1) /* send segments up raw until the agent resyncs */
#define PG_DF_IN_BODY (1u << 2)   /* server: inside a multi-line body */
#define PG_DF_MID_LINE (1u << 3)  /* a line is in progress (its head is in head[]) */
#define PG_DF_OVER_THRESHOLD (1u << 4) /* this line already raised its threshold anomaly */
#define PG_DF_STLS_SENT (1u << 5) /* client: STLS sent, answer pending */
#define PG_DF_OVER_HARD (1u << 6) /* this line already raised its hard-limit anomaly */
#define PG_DF_SPOKE (1u << 7)     /* server: some payload came (before any, a command means
				     no greeting will: the agent's rule too) */

/* Per-direction state. Written only by the hook that sees that direction. */
struct pg_dir_state {
	__u32 next_seq;
	__u32 line_len;     /* bytes of the current line seen so far */
	__u32 flags;        /* PG_DF_* */
	__u32 tls_left;     /* TLS: record body bytes still to skip */
	__u8 head_len;      /* bytes in head[] */
	__u8 body_match;    /* server: bytes of "\n.\r\n" matched at segment end */
	__u8 tls_hdr_len;   /* TLS: header bytes collected in tls_hdr */
	__u8 pad;
	__u8 tls_hdr[4];    /* TLS: partial record header across segments */
	__u8 head[PG_LINE_HEAD]; /* first bytes of the current line */
};

/*
 * Flow state (LRU hash value). The response queue is single-producer
 * (client direction pushes) single-consumer (server direction pops).
 */
struct pg_flow {
	struct pg_dir_state dir[2];
	__u64 created_ns;
	__u64 budget_ns;        /* token-bucket clock of the per-flow event budget */
	__u64 budget_tokens;
	__u8 respq[PG_RESPQ_LEN];
	__u8 q_head;            /* next kind the server direction answers */
	__u8 q_tail;            /* next free slot the client direction fills */
	__u8 phase;             /* enum pg_phase */
	__u8 implicit_tls;      /* the server port is implicit TLS (995) */
	__u8 budget_tripped;    /* records are being suppressed by the flow budget */
	__u8 key_sent;          /* a record with the key went up: later ones carry the id */
	__u8 lost_records;      /* a record of this flow was suppressed or could not be sent:
				   the agent's streams have a hole, so no resync */
	__u8 pad;
	__u32 resync_gen;       /* pg_resync.gen last taken (compare-and-swap: once) */
	__u32 pad2;
	__u64 id;               /* records carry its low 32 bits (0: send the key) */
};

/*
 * The agent's offer to take an escalated flow back to framing (LRU hash
 * keyed like pg_flows). It holds where the agent's reassembled streams end
 * and how the POP3 dialogue stands there, at a line boundary of both. The
 * kernel adopts it only at a server segment that starts exactly where the
 * offer says, when the client direction too ends exactly there: it has
 * seen nothing the agent has not, so the state is what its own framing
 * would have reached. Only the server direction's state hides bytes (a
 * body), and only the hook seeing the server's packets writes it.
 */
struct pg_resync {
	__u32 next_seq[2];          /* per pg_dir: the next byte */
	__u32 gen;                  /* nonzero, new for every offer */
	__u8 respq[PG_RESPQ_LEN];   /* response kinds the server owes, oldest first */
	__u8 q_len;
	__u8 phase;                 /* PG_PHASE_CMD or PG_PHASE_SASL */
	__u8 server_in_body;        /* the server is inside a body, at a line start */
	__u8 pad;
};

/* Value of the ports map; key: the port's two bytes as in the TCP header
 * (network byte order) read as a native __u16, widened to __u32. */
enum pg_port_kind {
	PG_PORT_POP3 = 1,        /* plaintext POP3 with optional STLS */
	PG_PORT_POP3_TLS = 2,    /* implicit TLS (POP3S) */
};

/* Verbs the kernel knows, for per-verb thresholds. */
enum pg_verb {
	PG_VERB_UNKNOWN = 0,
	PG_VERB_USER, PG_VERB_PASS, PG_VERB_APOP, PG_VERB_AUTH, PG_VERB_STAT,
	PG_VERB_LIST, PG_VERB_RETR, PG_VERB_DELE, PG_VERB_NOOP, PG_VERB_RSET,
	PG_VERB_QUIT, PG_VERB_TOP, PG_VERB_UIDL, PG_VERB_CAPA, PG_VERB_STLS,
	PG__VERB_COUNT, /* must stay <= PG_VERB_MAX */
};

enum pg_mode {
	PG_MODE_DETECT = 0,
	PG_MODE_PREVENT = 1,
};

/*
 * Run-time configuration (array map, one entry), filled by the agent from
 * the loaded rules. A zero length threshold or limit means "none".
 */
struct pg_config {
	__u32 mode;                       /* enum pg_mode */
	__u32 body_inspection;            /* send multi-line bodies up */
	__u32 verb_threshold[PG_VERB_MAX]; /* client line length that raises an anomaly */
	__u32 verb_hard_limit[PG_VERB_MAX]; /* client line length that is dropped in prevent mode */
	__u32 sasl_threshold;             /* client line length in a SASL exchange */
	__u32 sasl_hard_limit;
	__u32 server_line_threshold;      /* server status line length (RFC 2449: 512) */
	__u32 flow_budget_burst;          /* per-flow events in a burst (0: unlimited) */
	__u32 flow_budget_rate;           /* per-flow events refilled per second */
	__u32 global_budget_burst;        /* per-CPU events in a burst (0: unlimited) */
	__u32 global_budget_rate;         /* per-CPU events refilled per second */
	__u32 clock_mode;                 /* enum pg_clock_mode */
	__u64 clock_ns;                   /* PG_CLOCK_FIXED: the current time */
	__u64 blocklist_ttl_ns;           /* how long a budget breach blocks a flow */
	__u32 report_syn;                 /* send every client SYN up (rules test TCP flags) */
	__u32 syn_budget_burst;           /* per-CPU SYN reports in a burst (0: unlimited) */
	__u32 syn_budget_rate;            /* per-CPU SYN reports refilled per second */
	__u32 pad;
};

/* Entries of pg_global_budget: the records' budget, and a budget of their
 * own for SYN reports, so that a SYN flood cannot spend the records'. */
enum pg_budget_index {
	PG_BUDGET_RECORDS = 0,
	PG_BUDGET_SYNS = 1,
	PG_BUDGET__MAX,
};

enum pg_clock_mode {
	PG_CLOCK_MONOTONIC = 0, /* bpf_ktime_get_ns() */
	PG_CLOCK_FIXED = 1,     /* pg_config.clock_ns, set by replay from capture time */
};

/* Blocklist value: expiry in pg clock ns (0: never expires). */
struct pg_block {
	__u64 expires_ns;
};

/* Source-address blocklist key. */
struct pg_addr_key {
	__u32 addr[4];
	__u32 family;
};

/* Runtime state written by both sides (array map, one entry). */
struct pg_runtime {
	__u32 blocklist_active; /* set on the first blocklist insert; the agent clears it
				   when it has emptied both blocklists */
	__u32 pad;
};

/* Per-CPU global budget state. */
struct pg_budget {
	__u64 last_ns;
	__u64 tokens;
	__u64 tripped;
};

#endif /* POPGUARD_H */
