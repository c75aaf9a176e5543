/* Bug: next() never moves the position on, so every member tail-calls its own slot: it runs again and again until the kernel refuses a tail call (33 in a row at most), and the frame is passed. */
#include "parsing_helpers.h"

#define CHAIN_SLOTS 4

BPF_PROG_ARRAY(chain, CHAIN_SLOTS);
BPF_PERCPU_ARRAY(position, u32, 1);     /* the slot the current frame is at */
BPF_ARRAY(frames, u64, 3);              /* count_proto: 0 IPv4, 1 IPv6, 2 anything else */
BPF_ARRAY(dropped, u64, 1);             /* drop_discard: the frames it dropped */

int lab10a_dispatch(struct xdp_md *ctx)
{
	u32 zero = 0;
	u32 *pos = position.lookup(&zero);

	if (!pos)
		return XDP_PASS;
	*pos = 0;
	chain.call(ctx, 0);     /* does not return if slot 0 holds a program */
	return XDP_PASS;        /* slot 0 is empty: nothing to run */
}

/* The end of every member that lets a frame go on: run the program in the next slot. */
static __always_inline int next(void *ctx)
{
	u32 zero = 0;
	u32 *pos = position.lookup(&zero);

	if (!pos)
		return XDP_PASS;
	chain.call(ctx, *pos);
	return XDP_PASS;        /* the next slot is empty: the chain ends, the frame goes on */
}

int count_proto(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = data };
	struct ethhdr *eth;
	int proto = parse_ethhdr(&nh, data_end, &eth);
	u32 kind = 2;
	u64 *n;

	if (proto == bpf_htons(ETH_P_IP))
		kind = 0;
	else if (proto == bpf_htons(ETH_P_IPV6))
		kind = 1;
	n = frames.lookup(&kind);
	if (n)
		__sync_fetch_and_add(n, 1);
	return next(ctx);
}

int drop_discard(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = data };
	struct ethhdr *eth;
	struct iphdr *iph;
	struct ipv6hdr *ip6h;
	struct udphdr *udph;
	u32 zero = 0;
	u64 *n;
	int proto;

	proto = parse_ethhdr(&nh, data_end, &eth);
	if (proto == bpf_htons(ETH_P_IP)) {
		if (parse_iphdr(&nh, data_end, &iph) != IPPROTO_UDP || ip_is_later_fragment(iph))
			return next(ctx);
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		proto = parse_ip6hdr(&nh, data_end, &ip6h);
		if (skip_ip6hdrext(&nh, data_end, proto) != IPPROTO_UDP)
			return next(ctx);
	} else {
		return next(ctx);
	}
	if (parse_udphdr(&nh, data_end, &udph) < 0 || udph->dest != bpf_htons(9))
		return next(ctx);

	n = dropped.lookup(&zero);
	if (n)
		__sync_fetch_and_add(n, 1);
	return XDP_DROP;
}
