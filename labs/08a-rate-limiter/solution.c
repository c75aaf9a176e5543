/* Lab 08a — a per-source rate limiter (token bucket): a solution.
 *
 * A bucket holds whole tokens and the time up to which it has been refilled (last_ns). A packet
 * first adds the tokens earned since then — one per NS_PER_TOKEN nanoseconds — and moves last_ns
 * forward by exactly the time those tokens stand for, so the rest of a token's time is kept for
 * the next packet. A full bucket earns nothing: last_ns jumps to now. Then the packet takes a
 * token, or is dropped if there is none. A new source starts full and pays its first token.
 *
 * `buckets` is an LRU hash: senders can make up source addresses, and once more of them than the
 * map holds have come by, a new source's update evicts the source seen least recently, so the new
 * one is limited like any other. In a plain hash that update fails on a full map, the source never
 * gets a bucket, and all its packets pass.
 *
 * Two CPUs may update one bucket at the same moment (the read-modify-write is not atomic), so
 * under load a source can get a packet or two more than its due; an exact limiter takes a
 * bpf_spin_lock, which an LRU hash's values cannot hold (lesson 08's policer keeps its locks in an
 * array).
 */
#include "parsing_helpers.h"

#define RATE  20                            /* tokens per second, per source */
#define BURST 10                            /* the most tokens a bucket holds */
#define NS_PER_TOKEN (1000000000ULL / RATE) /* one token every 50 ms */

struct bucket {
	u64 tokens;
	u64 last_ns;
};

/* IPv4 source address → its bucket. An LRU hash: when it is full, a new source takes the place
 * of the one seen least recently (a plain BPF_HASH would have no room for it, and let it pass). */
BPF_TABLE("lru_hash", u32, struct bucket, buckets, 1024);

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
