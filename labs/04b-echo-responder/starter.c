/* Lab 04b — an ICMP echo responder with XDP_TX.
 *
 * Task: answer IPv4 pings (ICMP echo requests) from XDP: turn the request into an echo reply in
 * place and send it back out of the interface it came in on, with XDP_TX. The reply must be
 * valid: addresses swapped, type echo reply, a fresh TTL of 64 (not what was left of the
 * request's), both checksums right. Pass everything else.
 * (The server's kernel is told to ignore pings here: only your program can answer.)
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

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (parse_iphdr(&nh, data_end, &iph) != IPPROTO_ICMP)
		return XDP_PASS;
	if (parse_icmphdr(&nh, data_end, &icmph) != ICMP_ECHO)
		return XDP_PASS;
	/* TODO: make the request a reply and send it back */
	return XDP_PASS;
}
