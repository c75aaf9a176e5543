/* lesson02_sources.c — count packets and bytes per IPv4 source address, in a hash map.
 *
 * Teaches: a hash map, whose keys the program finds in the traffic rather than knowing them in
 * advance. The key is the source address exactly as it is in the packet (__be32, network byte
 * order: xdplab shows it as 10.11.0.1). The first packet from an address inserts its entry;
 * later ones find it and add to it. The map is per-CPU (BPF_PERCPU_HASH), so the additions need
 * no atomics; a reader sums the CPUs' copies.
 *
 * A hash map has a fixed size (max_entries, here 1024): once it is full, packets from new
 * addresses are not counted (the insert fails, and the program carries on). A BPF_LRU_PERCPU_HASH
 * would instead evict the least recently used entry.
 *
 * Everything is passed; frames that are not IPv4 (ARP, IPv6) are not counted.
 */
#include "parsing_helpers.h"

struct datarec {
	u64 packets;
	u64 bytes;
};

BPF_PERCPU_HASH(by_source, __be32, struct datarec, 1024);

int lesson02_sources(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = data };
	struct datarec zero = {}, *rec;
	struct ethhdr *eth;
	struct iphdr *iph;
	__be32 source;

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (parse_iphdr(&nh, data_end, &iph) < 0)
		return XDP_PASS;

	source = iph->saddr;
	/* Find this source's entry, or insert a zeroed one first (bcc's shorthand for a lookup, an
	 * update with BPF_NOEXIST, and a second lookup). NULL when the map is full. */
	rec = by_source.lookup_or_try_init(&source, &zero);
	if (rec) {
		rec->packets++;
		rec->bytes += data_end - data;
	}
	return XDP_PASS;
}
