/* Lab 04b — an ICMP echo responder with XDP_TX: a solution.
 *
 * An echo reply is the request with the MAC and IP addresses swapped, the type changed from
 * 8 (echo request) to 0 (echo reply) and a fresh TTL of 64: the reply crosses the routers the
 * request crossed, each taking one off, and what is left of the request's TTL says nothing about
 * that (64 is what Linux sends its own packets with). Swapping leaves the IPv4 header checksum
 * right (a sum does not depend on order); the TTL shares a 16-bit word with the protocol, covered
 * by the IPv4 header checksum, and the type shares one with the code, covered by the ICMP checksum:
 * each checksum is updated for its one word with csum_replace2(). Fragments are passed: the
 * checksum of a fragmented request covers data this frame does not hold. Every request here is
 * for the server; lesson 04's xdp_icmp_echo.c also checks that it is for the host's own address.
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
	old = *(__be16 *)&iph->ttl;             /* the word (ttl, protocol) */
	iph->ttl = 64;
	csum_replace2(&iph->check, old, *(__be16 *)&iph->ttl);
	old = *(__be16 *)icmph;                 /* the word (type, code) */
	icmph->type = ICMP_ECHOREPLY;
	csum_replace2(&icmph->checksum, old, *(__be16 *)icmph);
	return XDP_TX;
}
