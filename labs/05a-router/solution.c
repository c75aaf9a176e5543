/* Lab 05a — a router in XDP: a solution.
 *
 * bpf_fib_lookup() asks the router's own forwarding and neighbour tables, for a packet that
 * arrived on ctx->ingress_ifindex, the questions the stack would ask: forward it? out of which
 * interface? to which MAC? On BPF_FIB_LKUP_RET_SUCCESS the program does the rest of a router's
 * work — TTL minus one (checksum updated for the word (ttl, protocol)), next hop's MAC as
 * destination, the outgoing interface's MAC as source — and redirects. Every other answer, and a
 * TTL that would expire here, goes to the stack, which knows what to do (deliver locally, resolve
 * the neighbour with ARP, send ICMP time exceeded...). So do VLAN-tagged frames: parse_ethhdr()
 * steps over the tags, but the frame belongs to a VLAN, not to the interface it came in on, which
 * is all the lookup would be told, and bpf_redirect() would send it on with its tag still on.
 */
#include "parsing_helpers.h"

#ifndef AF_INET
#define AF_INET 2
#endif

BPF_PERCPU_ARRAY(redirected, u64, 1);     /* slot 0: packets this program redirected */

int lab06_router(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct bpf_fib_lookup fib = {};
	struct hdr_cursor nh = { .pos = data };
	struct ethhdr *eth;
	struct iphdr *iph;
	u32 slot = 0;
	u64 *n;

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP) || proto_is_vlan(eth->h_proto))
		return XDP_PASS;                 /* not IPv4, or VLAN-tagged: the stack knows */
	if (parse_iphdr(&nh, data_end, &iph) < 0 || iph->ttl <= 1)
		return XDP_PASS;

	fib.family = AF_INET;
	fib.tos = iph->tos;
	fib.l4_protocol = iph->protocol;
	fib.tot_len = bpf_ntohs(iph->tot_len);
	fib.ipv4_src = iph->saddr;
	fib.ipv4_dst = iph->daddr;
	fib.ifindex = ctx->ingress_ifindex;
	if (bpf_fib_lookup(ctx, &fib, sizeof(fib), 0) != BPF_FIB_LKUP_RET_SUCCESS)
		return XDP_PASS;

	ip_decrease_ttl(iph);
	__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
	n = redirected.lookup(&slot);
	if (n)
		*n += 1;
	return bpf_redirect(fib.ifindex, 0);
}
