/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Header parsing: Ethernet with up to two VLAN tags, IPv4 with options,
 * IPv6 with extension headers, TCP with options. Reads only the linear
 * part through direct packet access; lengths come from the packet, not
 * from IP headers, which BIG TCP sets to 0.
 */
#ifndef PG_LIB_PARSE_H
#define PG_LIB_PARSE_H

#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>

#include "common.h"

#define PG_IPV6_EXT_MAX 6

enum pg_parse_result {
	PG_PARSE_TCP = 0,
	PG_PARSE_NOT_TCP,
	PG_PARSE_FRAGMENT,
	PG_PARSE_SHORT,       /* headers not (all) in the linear part */
	PG_PARSE_BAD_L2,
	PG_PARSE_BAD_L3,
	PG_PARSE_BAD_L4,
};

struct pg_frag_hdr {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;
	__be32 identification;
};

#define PG_TCP_FIN 0x01
#define PG_TCP_SYN 0x02
#define PG_TCP_ACK 0x10

/* Parses [data, data_end). `pkt_len` is the whole packet (linear + paged),
 * used only to detect a header that lies beyond the linear part. */
static __always_inline int pg_parse(void *data, void *data_end, __u64 pkt_len, struct pg_parsed *p)
{
	struct ethhdr *eth = data;
	__u16 proto;
	__u32 off;
	__u8 l4;
	int i;

	if ((void *)(eth + 1) > data_end)
		return pkt_len >= sizeof(*eth) ? PG_PARSE_SHORT : PG_PARSE_BAD_L2;
	proto = eth->h_proto;
	off = sizeof(*eth);

#pragma unroll
	for (i = 0; i < 2; i++) {
		struct vlan_hdr {
			__be16 tci;
			__be16 proto;
		} *vh;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		vh = data + off;
		if ((void *)(vh + 1) > data_end)
			return pkt_len >= off + sizeof(*vh) ? PG_PARSE_SHORT : PG_PARSE_BAD_L2;
		proto = vh->proto;
		off += sizeof(*vh);
	}
	p->l3_off = off;

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data + off;
		__u32 ihl, tot;

		if ((void *)(ip + 1) > data_end)
			return pkt_len >= off + sizeof(*ip) ? PG_PARSE_SHORT : PG_PARSE_BAD_L3;
		ihl = ip->ihl * 4;
		if (ip->version != 4 || ihl < sizeof(*ip))
			return PG_PARSE_BAD_L3;
		tot = bpf_ntohs(ip->tot_len);
		if (tot && tot < ihl)
			return PG_PARSE_BAD_L3;
		p->ip_end = tot ? off + tot : 0;
		p->family = 4;
		p->saddr[0] = ip->saddr;
		p->daddr[0] = ip->daddr;
		p->saddr[1] = p->saddr[2] = p->saddr[3] = 0;
		p->daddr[1] = p->daddr[2] = p->daddr[3] = 0;
		l4 = ip->protocol;
		off += ihl;
		if (l4 != IPPROTO_TCP)
			return PG_PARSE_NOT_TCP;
		if (ip->frag_off & bpf_htons(0x3fff)) /* MF or an offset */
			return PG_PARSE_FRAGMENT;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data + off;
		__u32 plen;

		if ((void *)(ip6 + 1) > data_end)
			return pkt_len >= off + sizeof(*ip6) ? PG_PARSE_SHORT : PG_PARSE_BAD_L3;
		if (ip6->version != 6)
			return PG_PARSE_BAD_L3;
		plen = bpf_ntohs(ip6->payload_len);
		p->ip_end = plen ? off + sizeof(*ip6) + plen : 0;
		p->family = 6;
		__builtin_memcpy(p->saddr, &ip6->saddr, 16);
		__builtin_memcpy(p->daddr, &ip6->daddr, 16);
		l4 = ip6->nexthdr;
		off += sizeof(*ip6);

#pragma unroll
		for (i = 0; i < PG_IPV6_EXT_MAX; i++) {
			struct ipv6_opt_hdr *eh;

			if (l4 != IPPROTO_HOPOPTS && l4 != IPPROTO_ROUTING && l4 != IPPROTO_DSTOPTS &&
			    l4 != IPPROTO_FRAGMENT && l4 != IPPROTO_AH)
				break;
			eh = data + off;
			if ((void *)(eh + 1) > data_end)
				return pkt_len >= off + sizeof(*eh) ? PG_PARSE_SHORT : PG_PARSE_BAD_L3;
			if (l4 == IPPROTO_FRAGMENT) {
				struct pg_frag_hdr *fh = data + off;

				if ((void *)(fh + 1) > data_end)
					return PG_PARSE_BAD_L3;
				/* Any fragment of TCP, first or not, goes up whole. */
				return fh->nexthdr == IPPROTO_TCP ? PG_PARSE_FRAGMENT
								  : PG_PARSE_NOT_TCP;
			}
			/* AH counts its length in 4-octet units, the others in 8. */
			off += l4 == IPPROTO_AH ? ((__u32)eh->hdrlen + 2) * 4
						: ((__u32)eh->hdrlen + 1) * 8;
			l4 = eh->nexthdr;
		}
		if (l4 != IPPROTO_TCP)
			return PG_PARSE_NOT_TCP;
	} else {
		return PG_PARSE_NOT_TCP;
	}

	{
		struct tcphdr *tcp = data + off;
		__u32 doff;

		if ((void *)(tcp + 1) > data_end)
			return pkt_len >= off + sizeof(*tcp) ? PG_PARSE_SHORT : PG_PARSE_BAD_L4;
		doff = tcp->doff * 4;
		if (doff < sizeof(*tcp))
			return PG_PARSE_BAD_L4;
		p->sport = tcp->source;
		p->dport = tcp->dest;
		p->seq = bpf_ntohl(tcp->seq);
		p->ack = bpf_ntohl(tcp->ack_seq);
		p->tcp_flags = ((__u8 *)tcp)[13];
		p->payload_off = off + doff;
	}
	return PG_PARSE_TCP;
}

#endif /* PG_LIB_PARSE_H */
