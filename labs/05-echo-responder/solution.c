/* Lab 05 — an ICMP echo responder with XDP_TX: a solution.
 *
 * An echo reply is the request with the MAC and IP addresses swapped and the type changed from
 * 8 (echo request) to 0 (echo reply). Swapping leaves the IPv4 header checksum right (a sum does
 * not depend on order); the type shares a 16-bit word with the code, so the ICMP checksum is
 * updated for that one word with csum_replace2(). Fragments are passed: the checksum of a
 * fragmented request covers data this frame does not hold.
 */
#include "parsing_helpers.h"

int lab05_echo(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = data };
	struct ethhdr *eth;
	struct iphdr *iph;
	struct icmphdr *icmph;
	__be16 old;

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (parse_iphdr(&nh, data_end, &iph) != IPPROTO_ICMP || ip_is_fragment(iph))
		return XDP_PASS;
	if (parse_icmphdr(&nh, data_end, &icmph) != ICMP_ECHO)
		return XDP_PASS;

	swap_src_dst_mac(eth);
	swap_src_dst_ipv4(iph);
	old = *(__be16 *)icmph;                 /* the word (type, code) */
	icmph->type = ICMP_ECHOREPLY;
	csum_replace2(&icmph->checksum, old, *(__be16 *)icmph);
	return XDP_TX;
}
