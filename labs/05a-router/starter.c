/* Lab 05a — a router in XDP.
 *
 * Task: this program runs on both interfaces of the router (eth0 towards the client, eth1 towards
 * the server). Forward IPv4 packets between them yourself, as the router's stack would, but from
 * XDP: ask the kernel's routing and neighbour tables with bpf_fib_lookup(), then
 *   - write the next hop's MAC as destination and the outgoing interface's MAC as source,
 *   - decrement the TTL, keeping the IPv4 header checksum right,
 *   - count the packet in `redirected` (slot 0) and send it out with bpf_redirect(fib.ifindex, 0).
 * Leave everything else to the stack with XDP_PASS: non-IPv4 frames (ARP, IPv6), VLAN-tagged
 * frames (parse_ethhdr() steps over the tags, but the router has no VLAN interfaces to route them
 * from), packets the lookup does not answer with BPF_FIB_LKUP_RET_SUCCESS (e.g. packets for the
 * router itself), and packets whose TTL is 1 or less (the stack sends the ICMP "time exceeded").
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

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (parse_iphdr(&nh, data_end, &iph) < 0)
		return XDP_PASS;

	/* TODO: fill fib (family, addresses, ..., the ingress interface), call bpf_fib_lookup(),
	 * and forward the packet when the answer is BPF_FIB_LKUP_RET_SUCCESS */
	return XDP_PASS;
}
