/* Bug: the ICMP header is taken to start 20 bytes after the IPv4 header's start, so IP options are read as ICMP. */
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
	iph = nh.pos;
	if ((void *)(iph + 1) > data_end || iph->protocol != IPPROTO_ICMP || ip_is_fragment(iph))
		return XDP_PASS;
	nh.pos = iph + 1;
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
