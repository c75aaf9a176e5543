/* Lab 03b — parse IPv6 and VLAN, drop every other ICMPv6 echo request.
 *
 * Task: drop ICMPv6 echo requests whose sequence number is odd (1, 3, 5, ...), whether the
 * frame carries no VLAN tag, one (802.1Q) or two (QinQ), and whatever IPv6 extension headers
 * come before the ICMPv6 header. Pass everything else: even sequence numbers, echo replies,
 * neighbour discovery, IPv4.
 */
#include "parsing_helpers.h"

int lab03_echo(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6h;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IPV6))   /* TODO: a VLAN tag hides the ethertype */
		return XDP_PASS;
	ip6h = (void *)(eth + 1);
	if ((void *)(ip6h + 1) > data_end)
		return XDP_PASS;
	/* TODO: find the ICMPv6 header; drop echo requests with an odd sequence number */
	return XDP_PASS;
}
