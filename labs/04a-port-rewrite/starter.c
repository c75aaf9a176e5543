/* Lab 04a — rewrite destination ports, checksums kept right.
 *
 * Task: UDP datagrams to port 7000 must arrive at port 7001, over IPv4 and IPv6: rewrite the
 * destination port and update the UDP checksum so that the server's kernel accepts them. Over
 * IPv4 a UDP checksum of 0 means "none" and must stay 0. Pass everything (rewritten or not).
 */
#include "parsing_helpers.h"

int lab04_rewrite(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = data };
	struct ethhdr *eth;
	struct iphdr *iph;
	struct udphdr *udph;

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return XDP_PASS;                          /* TODO: IPv6 too */
	if (parse_iphdr(&nh, data_end, &iph) != IPPROTO_UDP)
		return XDP_PASS;
	if (parse_udphdr(&nh, data_end, &udph) < 0)
		return XDP_PASS;
	/* TODO: port 7000 → 7001, and the checksum */
	return XDP_PASS;
}
