/* Bug: the buckets are a plain hash: once made-up sources fill it, a new source finds no room and every packet of it passes. */
#include "parsing_helpers.h"

#define RATE  20                            /* tokens per second, per source */
#define BURST 10                            /* the most tokens a bucket holds */
#define NS_PER_TOKEN (1000000000ULL / RATE) /* one token every 50 ms */

struct bucket {
	u64 tokens;
	u64 last_ns;
};

BPF_HASH(buckets, u32, struct bucket, 1024);   /* IPv4 source address → its bucket */

int lab07_limit(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = data };
	struct ethhdr *eth;
	struct iphdr *iph;
	struct bucket *b;
	u64 now, earned;
	u32 src;

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (parse_iphdr(&nh, data_end, &iph) < 0)
		return XDP_PASS;

	src = iph->saddr;
	now = bpf_ktime_get_ns();
	b = buckets.lookup(&src);
	if (!b) {
		struct bucket fresh = { .tokens = BURST - 1, .last_ns = now };

		buckets.update(&src, &fresh);
		return XDP_PASS;
	}

	/* another CPU may have moved last_ns past the time this one read */
	earned = now > b->last_ns ? (now - b->last_ns) / NS_PER_TOKEN : 0;
	if (b->tokens + earned >= BURST) {
		b->tokens = BURST;
		b->last_ns = now;
	} else {
		b->tokens += earned;
		b->last_ns += earned * NS_PER_TOKEN;
	}
	if (b->tokens == 0)
		return XDP_DROP;
	b->tokens--;
	return XDP_PASS;
}
