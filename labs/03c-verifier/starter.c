/* Lab 03c — make the verifier accept a program.
 *
 * This program is meant to drop UDP datagrams to port 9 (the "discard" service), and to count
 * every other IPv4 packet: per source address in `talkers`, and per IP protocol number (those
 * below 32: ICMP 1, TCP 6, UDP 17...) in `stats`. Everything else passes.
 *
 * It compiles, but the kernel's verifier refuses to load it: it has three bugs, each a way the
 * program could touch memory it must not. The verifier stops at the first one it finds. Run the
 * cell, read the explained error (line, why, fix), correct that line, and run again — three times.
 * Keep what the program does; only make it safe.
 */
#include "parsing_helpers.h"

#define BLOCKED_PORT 9
#define PROTO_SLOTS 32

struct proto_stats {
	u64 packets[PROTO_SLOTS];   /* packets[p]: packets of IP protocol p, for p < PROTO_SLOTS */
};

BPF_ARRAY(stats, struct proto_stats, 1);
BPF_HASH(talkers, u32, u64, 1024);       /* IPv4 source address → packets */

int lab08_stats(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph = data + sizeof(*eth);
	struct udphdr *udph;
	struct proto_stats *s;
	u32 zero = 0, src;
	u64 none = 0, *n;

	if ((void *)(iph + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || iph->ihl < 5)
		return XDP_PASS;

	if (iph->protocol == IPPROTO_UDP) {
		udph = (void *)iph + iph->ihl * 4;
		if (udph->dest == bpf_htons(BLOCKED_PORT))
			return XDP_DROP;
	}

	src = iph->saddr;
	n = talkers.lookup_or_try_init(&src, &none);
	*n += 1;

	s = stats.lookup(&zero);
	if (s)
		s->packets[iph->protocol] += 1;
	return XDP_PASS;
}
