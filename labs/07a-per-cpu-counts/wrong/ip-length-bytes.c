/* Bug: the bytes are the IPv4 header's total length, so the Ethernet header (and any padding) is not counted. */
#include "parsing_helpers.h"

#define SLOTS 1024               /* ports 0 to 1023 have a slot; higher ones are not counted */

struct datarec {
	u64 packets;
	u64 bytes;
};

BPF_PERCPU_ARRAY(port_stats, struct datarec, SLOTS);

int lab07_count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = data };
	struct ethhdr *eth;
	struct iphdr *iph;
	struct udphdr *udph;
	struct datarec *rec;
	u32 key;

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (parse_iphdr(&nh, data_end, &iph) != IPPROTO_UDP || ip_is_later_fragment(iph))
		return XDP_PASS;
	if (parse_udphdr(&nh, data_end, &udph) < 0)
		return XDP_PASS;

	key = bpf_ntohs(udph->dest);
	if (key >= SLOTS)
		return XDP_PASS;
	rec = port_stats.lookup(&key);
	if (!rec)
		return XDP_PASS;
	rec->packets++;                  /* this CPU's own copy: no other CPU writes it */
	rec->bytes += bpf_ntohs(iph->tot_len);
	return XDP_PASS;
}
