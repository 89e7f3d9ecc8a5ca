// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The benchmark floor: what an attached XDP program costs doing nothing. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("xdp")
int pg_floor(struct xdp_md *ctx)
{
	return XDP_PASS;
}
