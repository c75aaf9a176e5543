/* lesson07_ladder.c — a ladder of XDP programs, each rung doing a little more work per packet.
 *
 * Teaches: what a packet costs inside an XDP program. Every function below is a complete XDP
 * program; lesson 07 runs each on the same frame with BPF_PROG_TEST_RUN, many times over, and
 * reads the kernel's average nanoseconds per run.
 *
 *   rung_pass     return XDP_PASS: nothing but the cost of calling a program at all
 *   rung_drop     return XDP_DROP: in a test run the same cost (the verdict is not carried out)
 *   rung_parse    read Ethernet, IPv4 and UDP headers with parsing_helpers.h, drop UDP port 9
 *   rung_percpu   rung_parse + count the verdict in a per-CPU array (plain additions)
 *   rung_atomic   rung_parse + count the verdict in a shared array (atomic additions)
 *   rung_hash     rung_parse + count per source address in a hash map (hash, lookup, add)
 *   rung_update   rung_parse + bpf_map_update_elem() into a hash map on every packet
 *
 * The parsing rungs are a one-rule firewall: UDP to BLOCKED_PORT is dropped, all else passes.
 * Their verdict depends on what they read, so the compiler cannot leave the parsing out.
 */
#include "parsing_helpers.h"

#ifndef BLOCKED_PORT
#define BLOCKED_PORT 9           /* UDP "discard" */
#endif

struct datarec {
	u64 packets;
	u64 bytes;
};

BPF_PERCPU_ARRAY(percpu_counts, struct datarec, XDP_ACTION_MAX);
BPF_ARRAY(shared_counts, struct datarec, XDP_ACTION_MAX);
BPF_HASH(by_source, __be32, struct datarec, 1024);
BPF_HASH(last_seen, __be32, struct datarec, 1024);

int rung_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

int rung_drop(struct xdp_md *ctx)
{
	return XDP_DROP;
}

/* The firewall rule, shared by the parsing rungs. Sets *saddr (0 when the frame is not IPv4). */
static __always_inline int filter(struct xdp_md *ctx, __be32 *saddr)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = data };
	struct ethhdr *eth;
	struct iphdr *iph;
	struct udphdr *udph;
	int proto;

	*saddr = 0;
	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	proto = parse_iphdr(&nh, data_end, &iph);
	if (proto < 0)
		return XDP_PASS;
	*saddr = iph->saddr;
	if (proto != IPPROTO_UDP || ip_is_later_fragment(iph))
		return XDP_PASS;
	if (parse_udphdr(&nh, data_end, &udph) < 0)
		return XDP_PASS;
	return udph->dest == bpf_htons(BLOCKED_PORT) ? XDP_DROP : XDP_PASS;
}

int rung_parse(struct xdp_md *ctx)
{
	__be32 saddr;

	return filter(ctx, &saddr);
}

int rung_percpu(struct xdp_md *ctx)
{
	__be32 saddr;
	u32 action = filter(ctx, &saddr);
	struct datarec *rec = percpu_counts.lookup(&action);

	if (!rec)
		return XDP_ABORTED;
	rec->packets++;                 /* this CPU's own copy: no other CPU writes it */
	rec->bytes += ctx->data_end - ctx->data;
	return action;
}

int rung_atomic(struct xdp_md *ctx)
{
	__be32 saddr;
	u32 action = filter(ctx, &saddr);
	struct datarec *rec = shared_counts.lookup(&action);

	if (!rec)
		return XDP_ABORTED;
	__sync_fetch_and_add(&rec->packets, 1);      /* every CPU adds to the same slot */
	__sync_fetch_and_add(&rec->bytes, ctx->data_end - ctx->data);
	return action;
}

int rung_hash(struct xdp_md *ctx)
{
	__be32 saddr;
	u32 action = filter(ctx, &saddr);
	struct datarec zero = {}, *rec;

	/* Hash the key, find its entry (inserting a zeroed one for a new source), add in place. */
	rec = by_source.lookup_or_try_init(&saddr, &zero);
	if (rec) {
		__sync_fetch_and_add(&rec->packets, 1);
		__sync_fetch_and_add(&rec->bytes, ctx->data_end - ctx->data);
	}
	return action;
}

int rung_update(struct xdp_md *ctx)
{
	__be32 saddr;
	u32 action = filter(ctx, &saddr);
	struct datarec rec = { .packets = 1, .bytes = ctx->data_end - ctx->data };

	/* Replace the entry on every packet: the map locks the key's bucket, fills a fresh element
	 * from its preallocated pool, links it in place of the old one and gives the old one back.
	 * (This only records the latest frame: a counter looks up and adds in place, as rung_hash
	 * does.) */
	last_seen.update(&saddr, &rec);
	return action;
}
