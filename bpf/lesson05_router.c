/* lesson05_router.c — an IPv4/IPv6 router in XDP: the kernel's routing table, XDP's speed.
 *
 * Teaches: bpf_fib_lookup() and bpf_redirect(). For every IP packet the program asks the kernel's
 * forwarding table (FIB) and neighbour table the same questions the stack would: is this packet to
 * be forwarded, out of which interface, to which next-hop MAC? When the answer is complete
 * (BPF_FIB_LKUP_RET_SUCCESS) the program does a router's work itself — decrement the TTL (IPv6:
 * hop limit), put the next hop's MAC as destination and the outgoing interface's MAC as source —
 * and sends the frame out of that interface with bpf_redirect(ifindex, 0). Anything else goes up
 * the stack with XDP_PASS, which knows how to deal with it: packets for the router itself
 * (NOT_FWDED), a next hop whose MAC is not known yet (NO_NEIGH: the stack resolves it),
 * a TTL about to expire (the stack sends ICMP time exceeded), a packet bigger than the outgoing
 * MTU (FRAG_NEEDED: tot_len is the length from the network header on, for IPv6 payload_len + 40),
 * forwarding switched off (FWD_DISABLED). Packets to a blackhole, unreachable or prohibit route
 * are dropped here — without the ICMP error the stack would send for the last two.
 *
 * `counters` counts frames per action; `fib_results` counts lookups per BPF_FIB_LKUP_RET_* code.
 */
#include "parsing_helpers.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif
#define FIB_RESULTS 16

struct datarec {
	u64 packets;
	u64 bytes;
};

BPF_PERCPU_ARRAY(counters, struct datarec, XDP_ACTION_MAX);
BPF_PERCPU_ARRAY(fib_results, u64, FIB_RESULTS);

static __always_inline int record(struct xdp_md *ctx, u32 action)
{
	struct datarec *rec = counters.lookup(&action);

	if (rec) {
		rec->packets++;
		rec->bytes += ctx->data_end - ctx->data;
	}
	return action;
}

int xdp_router(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct bpf_fib_lookup fib = {};
	struct hdr_cursor nh = { .pos = data };
	struct ethhdr *eth;
	struct iphdr *iph = NULL;
	struct ipv6hdr *ip6h = NULL;
	int proto, rc;
	u32 slot;
	u64 *n;

	proto = parse_ethhdr(&nh, data_end, &eth);
	if (proto < 0 || proto_is_vlan(eth->h_proto))
		return record(ctx, XDP_PASS);          /* too short, or VLAN-tagged: the stack knows */
	if (proto == bpf_htons(ETH_P_IP)) {
		if (parse_iphdr(&nh, data_end, &iph) < 0 || iph->ttl <= 1)
			return record(ctx, XDP_PASS);
		fib.family = AF_INET;
		fib.tos = iph->tos;
		fib.l4_protocol = iph->protocol;
		fib.tot_len = bpf_ntohs(iph->tot_len);
		fib.ipv4_src = iph->saddr;
		fib.ipv4_dst = iph->daddr;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		if (parse_ip6hdr(&nh, data_end, &ip6h) < 0 || ip6h->hop_limit <= 1)
			return record(ctx, XDP_PASS);
		fib.family = AF_INET6;
		fib.flowinfo = *(__be32 *)ip6h & bpf_htonl(0x0FFFFFFF);   /* traffic class + flow label */
		fib.l4_protocol = ip6h->nexthdr;
		fib.tot_len = bpf_ntohs(ip6h->payload_len) + sizeof(*ip6h);   /* + the 40-byte header */
		__builtin_memcpy(fib.ipv6_src, &ip6h->saddr, sizeof(fib.ipv6_src));
		__builtin_memcpy(fib.ipv6_dst, &ip6h->daddr, sizeof(fib.ipv6_dst));
	} else {
		return record(ctx, XDP_PASS);          /* ARP, ... */
	}
	fib.ifindex = ctx->ingress_ifindex;       /* the routing decision depends on where it came in */

	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	slot = rc;
	n = fib_results.lookup(&slot);
	if (n)
		*n += 1;

	switch (rc) {
	case BPF_FIB_LKUP_RET_SUCCESS:
		if (iph)
			ip_decrease_ttl(iph);
		else if (ip6h)
			ip6h->hop_limit--;               /* IPv6 has no header checksum to update */
		__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
		return record(ctx, bpf_redirect(fib.ifindex, 0));
	case BPF_FIB_LKUP_RET_BLACKHOLE:
	case BPF_FIB_LKUP_RET_UNREACHABLE:
	case BPF_FIB_LKUP_RET_PROHIBIT:
		return record(ctx, XDP_DROP);
	default:            /* NOT_FWDED, FWD_DISABLED, UNSUPP_LWT, NO_NEIGH, FRAG_NEEDED, ... */
		return record(ctx, XDP_PASS);
	}
}
